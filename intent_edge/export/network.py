"""A session model's dense layers, read from its ONNX graph, and written as the native backend's weights.

The models the C library and the native backend run are chains of ``MatMul``, ``Add`` and an activation
(``Relu`` between layers, ``Sigmoid`` at the end), as tf2onnx writes a Keras MLP: the fp32 model and the
``distilled``, ``units-50`` and ``sparse-80`` variants. Anything else is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intent_edge.errors import BundleError
from intent_edge.runtime.native import NATIVE_FORMAT_VERSION

ACTIVATIONS = {"none": 0, "relu": 1, "sigmoid": 2}  # as ie_kernel.h numbers them


@dataclass(frozen=True)
class DenseLayer:
    weights: np.ndarray  # float32 [inputs, outputs], row-major as ONNX MatMul stores them
    bias: np.ndarray  # float32 [outputs]
    activation: str

    @property
    def sparsity(self) -> float:
        return float(np.mean(self.weights == 0.0))


def dense_layers(path: Path) -> list[DenseLayer]:
    """The layers of the ONNX graph at ``path``, in order, or BundleError naming the first node that is not
    part of a MatMul, Add, Relu/Sigmoid chain."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    layers, weights, bias = [], None, None
    for node in graph.node:
        if node.op_type == "MatMul" and weights is None and node.input[1] in constants:
            weights = constants[node.input[1]].astype(np.float32)
        elif node.op_type == "Add" and weights is not None and bias is None and node.input[1] in constants:
            bias = constants[node.input[1]].astype(np.float32).reshape(-1)
        elif node.op_type in ("Relu", "Sigmoid") and weights is not None:
            if bias is None:
                bias = np.zeros(weights.shape[1], dtype=np.float32)
            layers.append(DenseLayer(np.ascontiguousarray(weights), bias, node.op_type.lower()))
            weights, bias = None, None
        else:
            raise BundleError(f"{path}: node {node.name or node.op_type} ({node.op_type}) is not part of a dense "
                              "MatMul, Add, Relu/Sigmoid chain, which is what the C library and the native backend "
                              "run")
    if weights is not None or not layers or layers[-1].activation != "sigmoid":
        raise BundleError(f"{path}: the graph does not end in a dense layer with a sigmoid")
    for before, after in zip(layers, layers[1:], strict=False):
        if before.weights.shape[1] != after.weights.shape[0]:
            raise BundleError(f"{path}: layer widths do not chain ({before.weights.shape} then {after.weights.shape})")
    return layers


def write_native_weights(onnx_path: Path, target: Path) -> None:
    """The native backend's weights file for the ONNX variant at ``onnx_path``: an ``.npz`` of plain arrays
    (read with ``allow_pickle=False``), because numpy alone cannot read ONNX."""
    layers = dense_layers(onnx_path)
    arrays = {"format_version": np.array([NATIVE_FORMAT_VERSION]),
              "activations": np.array([ACTIVATIONS[layer.activation] for layer in layers], dtype=np.int32)}
    for index, layer in enumerate(layers):
        arrays[f"weights_{index}"] = layer.weights
        arrays[f"bias_{index}"] = layer.bias
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)


def native_file_name(variant: str) -> str:
    return f"{variant}.native.npz"


def write_native_variant(model_path: Path, directory: Path, variant: str, reference, rows: np.ndarray) -> dict:
    """Write ``variant``'s native weights beside it in ``directory`` and return their manifest file entry:
    from a dense ONNX graph, or from a LiteRT int8 model (``.tflite``). Where the native extension is built,
    its outputs on ``rows`` are first checked against ``reference`` (the variant's own runner) to the fp32
    tolerance, or for int8 to be equal; a mismatch raises, as any failed export does."""
    from intent_edge.parity import compare
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import describe_file

    name = native_file_name(variant)
    int8 = Path(model_path).suffix == ".tflite"
    (write_native_int8 if int8 else write_native_weights)(Path(model_path), Path(directory) / name)
    if BACKENDS["native"].is_available():
        native = BACKENDS["native"].load(Path(directory) / name)
        compare(reference.infer(rows), native.infer(rows), "int8" if int8 else "fp32").require(
            f"the native weights of {variant}")
    return describe_file(Path(directory), name)


def write_native_int8(tflite_path: Path, target: Path) -> None:
    """The native backend's file for a LiteRT int8 variant: the integer layers :func:`int8_network` reads,
    as plain arrays (``precision`` 1)."""
    network = int8_network(tflite_path)
    arrays = {"format_version": np.array([NATIVE_FORMAT_VERSION]), "precision": np.array([1]),
              "scales": np.array([network.input_scale, network.output_scale], dtype=np.float64),
              "zero_points": np.array([network.input_zero_point, network.output_zero_point], dtype=np.int32),
              "logistic": network.logistic.astype(np.int8), "layers": np.array([len(network.layers)])}
    for index, layer in enumerate(network.layers):
        arrays[f"weights_{index}"] = np.ascontiguousarray(layer.weights, dtype=np.int8)
        arrays[f"bias_{index}"] = layer.bias.astype(np.int32)
        arrays[f"multipliers_{index}"] = layer.multipliers.astype(np.int32)
        arrays[f"shifts_{index}"] = layer.shifts.astype(np.int32)
        arrays[f"clamp_{index}"] = np.array([layer.input_zero_point, layer.output_zero_point, layer.low, layer.high],
                                            dtype=np.int32)
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)


@dataclass(frozen=True)
class Int8Layer:
    weights: np.ndarray  # int8 [outputs, inputs], as LiteRT stores them
    bias: np.ndarray  # int32 [outputs]
    multipliers: np.ndarray  # int64 [outputs]: Q31 fixed-point requantisation multipliers
    shifts: np.ndarray  # int [outputs]
    input_zero_point: int
    output_zero_point: int
    low: int  # the clamp after requantisation (a fused ReLU raises it to the output zero point)
    high: int


@dataclass(frozen=True)
class Int8Network:
    """A LiteRT full-integer session model: float input quantised, int8 dense layers, an int8 logistic as
    a 256-entry table, float output dequantised."""

    input_scale: float
    input_zero_point: int
    layers: list[Int8Layer]
    logistic: np.ndarray  # int8 [256]: the logistic's output for each int8 input, -128 first
    output_scale: float
    output_zero_point: int


def quantized_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real`` as a Q31 multiplier and a power-of-two shift."""
    import math

    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    multiplier = round(fraction * (1 << 31))
    if multiplier == 1 << 31:
        multiplier, shift = multiplier // 2, shift + 1
    if not 1 <= 31 - shift <= 62:
        raise BundleError(f"a requantisation scale of {real:g} is out of the range the C library takes")
    return multiplier, shift


def int8_network(path: Path) -> Int8Network:
    """The layers of the LiteRT int8 model at ``path`` (QUANTIZE, FULLY_CONNECTED..., LOGISTIC, DEQUANTIZE),
    read from its tensors with LiteRT, or BundleError naming what does not fit."""
    import math

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    # the op list is LiteRT's private API (_get_ops_details); it is the only view of the graph it offers
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    names = [op["op_name"] for op in ops]
    if (len(names) < 4 or names[0] != "QUANTIZE" or names[-2:] != ["LOGISTIC", "DEQUANTIZE"]
            or any(name != "FULLY_CONNECTED" for name in names[1:-2])):
        raise BundleError(f"{path}: expected QUANTIZE, FULLY_CONNECTED..., LOGISTIC, DEQUANTIZE, found "
                          f"{', '.join(names)}")

    def quantization(index: int) -> tuple[np.ndarray, np.ndarray]:
        parameters = tensors[index]["quantization_parameters"]
        return parameters["scales"].astype(np.float64), parameters["zero_points"].astype(np.int64)

    input_scales, input_zero_points = quantization(ops[0]["outputs"][0])
    layers = []
    for position, op in enumerate(ops[1:-2]):
        source, weights_index, bias_index = (int(i) for i in op["inputs"])
        (in_scale,), (in_zero,) = quantization(source)
        weight_scales, _ = quantization(weights_index)
        (out_scale,), (out_zero,) = quantization(int(op["outputs"][0]))
        weights = interpreter.get_tensor(weights_index).astype(np.int8)
        bias = interpreter.get_tensor(bias_index).astype(np.int64)
        scales = np.broadcast_to(weight_scales, (weights.shape[0],))
        pairs = [quantized_multiplier(float(in_scale) * float(s) / float(out_scale)) for s in scales]
        hidden = position < len(ops) - 4  # every layer but the last has a ReLU, fused into its clamp
        layers.append(Int8Layer(weights, bias, np.array([m for m, _ in pairs], dtype=np.int64),
                                np.array([s for _, s in pairs]), int(in_zero), int(out_zero),
                                max(-128, int(out_zero)) if hidden else -128, 127))
    (logistic_in_scale,), (logistic_in_zero,) = quantization(int(ops[-2]["inputs"][0]))
    (output_scale,), (output_zero,) = quantization(int(ops[-2]["outputs"][0]))
    table = []
    for q in range(-128, 128):
        y = 1.0 / (1.0 + math.exp(-float(logistic_in_scale) * (q - int(logistic_in_zero))))
        table.append(min(127, max(-128, round(y / float(output_scale)) + int(output_zero))))
    return Int8Network(float(input_scales[0]), int(input_zero_points[0]), layers, np.array(table, dtype=np.int8),
                       float(output_scale), int(output_zero))
