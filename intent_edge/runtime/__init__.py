"""The embeddable runtime: numpy and one inference backend, never TensorFlow or pandas.

    from intent_edge.runtime import Predictor
    predictor = Predictor.load("bundle/")
    predictor.predict({"PageValues": 12.5, "Month": "Nov", ...})   # -> 0.83
"""

from intent_edge.errors import BackendUnavailable, BundleError, RecordError
from intent_edge.runtime.backends import BACKENDS
from intent_edge.runtime.encoder import Encoder, canonical_category
from intent_edge.runtime.predictor import Predictor

__all__ = ["BACKENDS", "BackendUnavailable", "BundleError", "Encoder", "Predictor", "RecordError",
           "canonical_category"]
