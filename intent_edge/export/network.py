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

ACTIVATIONS = {"none": 0, "relu": 1, "sigmoid": 2}  # as ie_kernel.h numbers them
NATIVE_FORMAT_VERSION = 1


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


def write_native_variant(onnx_path: Path, directory: Path, variant: str, reference, rows: np.ndarray) -> dict:
    """Write ``variant``'s native weights beside it in ``directory`` and return their manifest file entry.
    Where the native extension is built, its outputs on ``rows`` are first checked against ``reference``
    (the variant's ONNX runner) to the fp32 tolerance; a mismatch raises, as any failed export does."""
    from intent_edge.parity import compare
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import describe_file

    name = native_file_name(variant)
    write_native_weights(onnx_path, Path(directory) / name)
    if BACKENDS["native"].is_available():
        native = BACKENDS["native"].load(Path(directory) / name)
        compare(reference.infer(rows), native.infer(rows), "fp32").require(f"the native weights of {variant}")
    return describe_file(Path(directory), name)
