"""Post-training conversions of an fp32 ONNX model with ONNX Runtime's own tools.

* ``int8-dynamic``: weights stored as int8, activations quantized per call (no calibration data).
* ``int8-static``: QDQ format, weights per channel, activations with ranges calibrated on training rows.
  The first MatMul is left in fp32 by default: its input is the encoded record, where one tensor-wide
  int8 scale has to cover standardised numbers and 0/1 one-hots at once, and most of the error of a
  fully quantized model comes from there. The saving given up is small (the first layer's weights).
* ``fp16``: weights and arithmetic in float16, inputs and outputs kept float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from intent_edge.train.mlp import INPUT_NAME


class CalibrationRows:
    """An ONNX Runtime calibration reader: ``get_next()`` returns the next input dict, then None.

    The one small protocol every calibrating converter here reads (see also :meth:`batches`)."""

    def __init__(self, features: np.ndarray, batch_size: int = 256, limit: int = 4096):
        self.features = np.ascontiguousarray(features[:limit], dtype=np.float32)
        self.batch_size = batch_size
        self._iterator = self.batches()

    def batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self.features), self.batch_size):
            yield {INPUT_NAME: self.features[start:start + self.batch_size]}

    def get_next(self):
        return next(self._iterator, None)


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantizer logs advice on the root logger ("consider pre-processing"), which would
    land in the middle of the progress display; the pre-processing it suggests is for larger graphs."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def int8_dynamic(source: Path, target: Path) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    return {"method": "int8-dynamic", "weights": "int8 per channel", "activations": "int8 per call"}


def _first_matmul(source: Path) -> list[str]:
    import onnx

    model = onnx.load(str(source))
    return [node.name for node in model.graph.node if node.op_type in ("MatMul", "Gemm")][:1]


def int8_static(source: Path, target: Path, calibration: np.ndarray, *, rows: int = 4096, batch_size: int = 256,
                keep_first_layer_fp32: bool = True) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    excluded = _first_matmul(source) if keep_first_layer_fp32 else []
    with _quiet_root_logger():
        quantize_static(str(source), str(target), CalibrationRows(calibration, batch_size, rows),
                        quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded)
    return {"method": "int8-static", "format": "QDQ", "weights": "int8 per channel",
            "activations": "uint8, MinMax calibration", "calibration_rows": int(min(len(calibration), rows)),
            "fp32_nodes": excluded}


def fp16(source: Path, target: Path) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = OnnxModel(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True))
    # keep_io_types appends its Cast nodes at the end of the node list; onnx.checker (which the runtime
    # runs before loading) insists on topological order.
    converted.topological_sort()
    onnx.save(converted.model, str(target))
    return {"method": "fp16", "weights": "float16", "io": "float32"}


def initializer_types(path: Path) -> dict[str, int]:
    """How many weight tensors of each ONNX data type a model stores (to prove what it really holds)."""
    import onnx

    model = onnx.load(str(path))
    counts: dict[str, int] = {}
    for tensor in model.graph.initializer:
        name = onnx.TensorProto.DataType.Name(tensor.data_type)
        counts[name] = counts.get(name, 0) + 1
    return counts
