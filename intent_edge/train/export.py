"""Export a trained Keras model to ONNX (tf2onnx) and prove the export predicts like Keras.

On Keras 3, ``tf2onnx.convert.from_keras`` fails (KeyError 'keras_tensor_N'); converting a
``tf.function`` with a named ``TensorSpec`` works. The batch dimension stays dynamic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intent_edge import __version__
from intent_edge.errors import IntentEdgeError
from intent_edge.train.mlp import INPUT_NAME, OUTPUT_NAME

ONNX_OPSET = 17
PARITY_TOLERANCE = 1e-5  # max |difference in probability| allowed between an export and Keras


class ParityError(IntentEdgeError):
    """An exported model does not predict like the Keras model it came from."""


def export_onnx(model, width: int, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model`` as ONNX with input ``features`` [batch, width] and output ``probability`` [batch, 1]."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, width), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(features):
        return model(features, training=False)

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=ONNX_OPSET)
    _rename_output(proto, OUTPUT_NAME)
    proto.producer_name = "intent-edge"
    proto.producer_version = __version__
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    Path(path).write_bytes(proto.SerializeToString())


def _rename_output(proto, name: str) -> None:
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name


def check_parity(reference: np.ndarray, exported: np.ndarray, what: str, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Parity figures of ``exported`` against ``reference`` probabilities; raises ParityError past ``tolerance``."""
    difference = np.abs(np.asarray(exported, np.float64).reshape(-1) - np.asarray(reference, np.float64).reshape(-1))
    figures = {"reference": "keras", "rows": int(difference.size), "max_abs_diff": float(difference.max()),
               "p99_abs_diff": float(np.percentile(difference, 99)), "mean_abs_diff": float(difference.mean()),
               "tolerance": tolerance}
    if figures["max_abs_diff"] > tolerance:
        raise ParityError(f"{what} differs from Keras by up to {figures['max_abs_diff']:.3g} in probability "
                          f"over {figures['rows']} rows (tolerance {tolerance:g})")
    return figures
