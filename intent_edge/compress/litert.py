"""LiteRT (.tflite) conversion, fp32 and full-integer int8.

``TFLiteConverter.from_keras_model`` has failed on some Keras 3 models, so the model is exported as a
SavedModel first (``model.export``) and that is converted. ``supported_ops`` is restricted to the
builtin op set (int8 builtins for int8), so a model that would need flex ops fails here, at
conversion, and never on the till. Inputs and outputs stay float32; in the int8 model every op in
between is integer, with ranges from a representative dataset of training rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _convert(model, target: Path, configure: Callable) -> None:
    """Export ``model`` as a SavedModel into a temporary directory, convert it with the converter as
    ``configure`` sets it up, and write the flatbuffer to ``target``. The directory is removed either
    way (the converter reads it until ``convert`` returns)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="intent-edge-savedmodel-") as directory:
        model.export(directory, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        configure(converter)
        flatbuffer = converter.convert()
    Path(target).write_bytes(flatbuffer)


def litert_fp32(model, target: Path) -> dict:
    import tensorflow as tf

    def configure(converter):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]

    _convert(model, target, configure)
    return {"method": "litert-fp32", "ops": "TFLITE_BUILTINS"}


def litert_int8(model, target: Path, representative: np.ndarray, rows: int = 1000) -> dict:
    import tensorflow as tf

    sample = np.ascontiguousarray(representative[:rows], dtype=np.float32)

    def configure(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[i:i + 1]] for i in range(len(sample)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    _convert(model, target, configure)
    return {"method": "litert-int8", "ops": "TFLITE_BUILTINS_INT8", "representative_rows": len(sample),
            "io": "float32"}
