"""The network part of the generated C library: float layers (dense, or sparse where most weights are
zero) or int8 layers, as C tables and the code that runs them on the encoded ``row``."""

from __future__ import annotations

import numpy as np

from intent_edge.export.c_source import c_double, floats_literal
from intent_edge.export.network import DenseLayer, Int8Network

SPARSE_BELOW = 0.5  # a layer with more zero weights than this is written sparse


def network_inputs(network) -> int:
    return network.layers[0].weights.shape[1] if isinstance(network, Int8Network) else network[0].weights.shape[0]


def network_source(network, P: str) -> tuple[str, str]:
    """(tables, body): the body turns ``float row[]`` into ``*probability``."""
    return _int8_source(network, P) if isinstance(network, Int8Network) else _float_source(network, P)


def _layer_source(index: int, layer: DenseLayer) -> tuple[str, str]:
    """The layer's tables and its call (input ``a``, output ``b``)."""
    inputs, outputs = layer.weights.shape
    activation = {"relu": "IE_ACTIVATION_RELU", "sigmoid": "IE_ACTIVATION_SIGMOID"}[layer.activation]
    bias = f"static const float layer{index}_bias[{outputs}] = {{\n{floats_literal(layer.bias)}\n}};\n"
    if layer.sparsity > SPARSE_BELOW and outputs <= 65535:
        rows, columns = np.nonzero(layer.weights)
        starts = np.searchsorted(rows, np.arange(inputs + 1))
        values = layer.weights[rows, columns]
        tables = (bias + f"static const int layer{index}_starts[{inputs + 1}] = {{{', '.join(map(str, starts))}}};\n"
                  f"static const unsigned short layer{index}_columns[{max(len(columns), 1)}] = "
                  f"{{{', '.join(map(str, columns)) or '0'}}};\n"
                  f"static const float layer{index}_values[{max(len(values), 1)}] = "
                  f"{{\n{floats_literal(values) or '0.0f'}\n}};\n")
        call = (f"ie_sparse({{in}}, {inputs}, layer{index}_starts, layer{index}_columns, layer{index}_values, "
                f"layer{index}_bias, {outputs}, {activation}, {{out}});")
    else:
        tables = bias + (f"static const float layer{index}_weights[{inputs * outputs}] = "
                         f"{{\n{floats_literal(layer.weights)}\n}};\n")
        call = f"ie_dense({{in}}, {inputs}, layer{index}_weights, layer{index}_bias, {outputs}, {activation}, {{out}});"
    return tables, call



def _float_source(layers: list[DenseLayer], P: str) -> tuple[str, str]:
    tables, calls, buffers = [], [], ["row", "first", "second"]
    for index, layer in enumerate(layers):
        source, call = _layer_source(index, layer)
        tables.append(source)
        into = "probability_out" if index == len(layers) - 1 else buffers[1 + index % 2]
        calls.append("    " + call.format(**{"in": buffers[0] if index == 0 else buffers[1 + (index - 1) % 2],
                                              "out": into}))
    body = (f"    float first[{P}_WIDEST_LAYER], second[{P}_WIDEST_LAYER], probability_out[1];\n"
            "    (void)first; (void)second;\n" + "\n".join(calls) + "\n    *probability = probability_out[0];")
    return "".join(tables), body


def _integers(values, per_line: int = 12) -> str:
    items = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def _int8_source(network: Int8Network, P: str) -> tuple[str, str]:
    tables, calls, buffers = [], [], ["quantized", "first", "second"]
    for index, layer in enumerate(network.layers):
        outputs, inputs = layer.weights.shape
        tables.append(
            f"static const int8_t layer{index}_weights[{outputs * inputs}] = "
            f"{{\n{_integers(layer.weights, 24)}\n}};\n"
            f"static const int32_t layer{index}_bias[{outputs}] = {{\n{_integers(layer.bias)}\n}};\n"
            f"static const int32_t layer{index}_multipliers[{outputs}] = {{\n{_integers(layer.multipliers, 8)}\n}};\n"
            f"static const int layer{index}_shifts[{outputs}] = {{\n{_integers(layer.shifts)}\n}};\n")
        into = "logit" if index == len(network.layers) - 1 else buffers[1 + index % 2]
        source = buffers[0] if index == 0 else buffers[1 + (index - 1) % 2]
        calls.append(f"    ie_dense_int8({source}, {inputs}, {layer.input_zero_point}, layer{index}_weights, "
                     f"layer{index}_bias, layer{index}_multipliers, layer{index}_shifts, {layer.output_zero_point}, "
                     f"{layer.low}, {layer.high}, {outputs}, {into});")
    tables.append(f"static const int8_t logistic[256] = {{\n{_integers(network.logistic, 24)}\n}};\n")
    body = f"""    int8_t quantized[{P}_INPUT_WIDTH], first[{P}_WIDEST_LAYER], second[{P}_WIDEST_LAYER], logit[1];
    (void)first; (void)second;
    ie_quantize(row, {P}_INPUT_WIDTH, {c_double(network.input_scale)}, {network.input_zero_point}, quantized);
""" + "\n".join(calls) + f"""
    *probability = (float)({c_double(network.output_scale)}
                           * (logistic[logit[0] + 128] - ({network.output_zero_point})));"""
    return "".join(tables), body


