"""How many distinct probabilities a variant can output, read from its graph's output quantisation.

An int8 LiteRT variant ends in an int8 LOGISTIC whose scale is 1/256, then a DEQUANTIZE: its
probabilities come in 256 steps, so rows tie in ranking and a threshold moves in steps of 1/256. A
static int8 ONNX variant ends the same way (QuantizeLinear, DequantizeLinear); an fp16 one casts a
float16 probability, of which 15,361 lie between 0 and 1. The count comes from the graph itself, never
from the variant's name. Float32 outputs are reported as ``None``: continuous for every practical purpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# float16 values from 0 to 1 inclusive, subnormals included: the bit patterns 0x0000 to 0x3C00
FLOAT16_LEVELS_IN_UNIT = 0x3C00 + 1


def quantised_levels(dtype, scale: float, zero_point: int) -> int:
    """Integers ``q`` of ``dtype`` whose value ``scale * (q - zero_point)`` lies in [0, 1]."""
    info = np.iinfo(dtype)
    highest = min(info.max, int(np.floor(zero_point + 1.0 / scale + 1e-9)))
    return max(0, highest - max(info.min, zero_point) + 1)


def _tflite_levels(path: Path) -> int | None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    output = interpreter.get_output_details()[0]["index"]
    # the op list is LiteRT's private API (_get_ops_details); it is the only view of the graph it offers
    producer = next((op for op in interpreter._get_ops_details() if output in op["outputs"]), None)
    source = output
    if producer is not None and producer["op_name"] == "DEQUANTIZE":
        source = int(producer["inputs"][0])
    detail = tensors[source]
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(detail["dtype"], np.integer) or not scale:
        return FLOAT16_LEVELS_IN_UNIT if detail["dtype"] == np.float16 else None
    return quantised_levels(detail["dtype"], scale, zero_point)


def _onnx_levels(path: Path) -> int | None:
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    producer = next((node for node in graph.node if graph.output[0].name in node.output), None)
    if producer is None:
        return None
    if producer.op_type == "DequantizeLinear":
        constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        scale = float(constants[producer.input[1]].reshape(-1)[0])
        zero_point = constants.get(producer.input[2]) if len(producer.input) > 2 else None
        if zero_point is None:  # ONNX's default zero point is a uint8 zero
            zero_point = np.zeros(1, dtype=np.uint8)
        return quantised_levels(zero_point.dtype, scale, int(zero_point.reshape(-1)[0]))
    if producer.op_type == "Cast":
        types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
        if types.get(producer.input[0]) == onnx.TensorProto.FLOAT16:
            return FLOAT16_LEVELS_IN_UNIT
    return None


LEVEL_READERS = {"tflite": _tflite_levels, "onnx": _onnx_levels}  # TensorRT engines cannot be read here


def output_levels(path: Path, model_format: str) -> int | None:
    """Distinct probabilities the graph at ``path`` can output, or None for a float32 output."""
    return LEVEL_READERS[model_format](Path(path))


def tie_share(probabilities: np.ndarray) -> float:
    """The share of rows whose probability equals another row's."""
    _, counts = np.unique(np.asarray(probabilities), return_counts=True)
    return float(counts[counts > 1].sum() / max(1, len(probabilities)))


def describe_levels(levels: int | None) -> str:
    """What a variant's output levels mean for ranking and thresholds, in a few words."""
    if levels is None:
        return "continuous (float32)"
    return (f"{levels:,} distinct values in [0, 1]: rows with equal scores tie in ranking, and the threshold "
            "can only fall between those values")
