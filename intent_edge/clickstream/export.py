"""The streaming export: one step of a trained sequence model as an ONNX (and LiteRT) graph.

The step takes, for a batch of sessions, the new event's token id, its gap feature and the state
after the previous event, and returns the probability after this event and the new state:

    inputs  event int32 [batch], gap float32 [batch], one float32 [batch, size] tensor per state
    outputs probability float32 [batch], next_<state> float32 [batch, size] per state

The state is the recurrent one for a GRU (``state``) or LSTM (``state``, ``cell``), and for the causal
CNN a window of recent inputs per convolution (``window_1``, ``window_2``): a session's receptive
field, fixed in size. The manifest lists the names and sizes (``state``, ``state_sizes``).

It is built from the trained weights (the embedding table, the cell or convolutions, the output
Dense), so it computes what the full-sequence model computes, one event at a time: a session's
probability after event k equals the full model's output at position k (parity checked to 1e-5).
The step is plain gathers, matmuls and activations, which any ONNX runtime runs; the full-sequence
model with its masking stays in Keras, where training and evaluation use it.
"""

from __future__ import annotations

from pathlib import Path

from intent_edge import __version__
from intent_edge.errors import ExportError

STEP_OPSET = 17


def _recurrent_step(model, kind: str):
    """The GRU or LSTM cell's arithmetic on constants: ``(state names, sizes, cell_step)``.

    Written out (Keras 3's GRU with ``reset_after`` and its LSTM, both with sigmoid gates and tanh),
    because a traced Keras layer keeps its weights as variables, which the LiteRT converter does not
    freeze from a Keras 3 model; constants convert everywhere."""
    import keras
    import tensorflow as tf

    layer = model.get_layer("encoder")
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        raise ExportError("the streaming step supports the default activations (tanh, sigmoid gates)")
    kernel, recurrent, bias = layer.get_weights()
    units = int(cell.units)
    if kind == "gru":
        if not cell.reset_after:
            raise ExportError("the streaming step supports GRUs with reset_after=True (the Keras default)")

        def gru_step(x, h):
            from_x = tf.matmul(x, kernel) + bias[0]
            from_h = tf.matmul(h, recurrent) + bias[1]
            x_z, x_r, x_h = tf.split(from_x, 3, axis=1)
            h_z, h_r, h_h = tf.split(from_h, 3, axis=1)
            z, r = tf.sigmoid(x_z + h_z), tf.sigmoid(x_r + h_r)
            candidate = tf.tanh(x_h + r * h_h)
            new = z * h + (1.0 - z) * candidate
            return new, [new]

        return ["state"], [units], gru_step

    def lstm_step(x, h, c):
        gates = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
        i, f, g, o = tf.split(gates, 4, axis=1)
        new_c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        new_h = tf.sigmoid(o) * tf.tanh(new_c)
        return new_h, [new_h, new_c]

    return ["state", "cell"], [units, units], lstm_step


STEP_WEIGHTS_VERSION = 1
COMPILED_KINDS = ("gru", "lstm")  # the step kinds `export --format c` compiles


def step_weights(model, kind: str) -> dict:
    """A GRU's or LSTM's step as plain arrays, for ``step.native.npz`` (read with ``allow_pickle=False``):
    what the C export compiles, as :func:`_recurrent_step` computes it (Keras's gate order: z, r, h for
    the GRU with ``bias`` (2, 3 units), input then recurrent; i, f, g, o for the LSTM)."""
    import numpy as np

    if kind not in COMPILED_KINDS:
        raise ExportError(f"no compiled step for a {kind!r} model; the C export takes: {', '.join(COMPILED_KINDS)}")
    kernel, recurrent, bias = model.get_layer("encoder").get_weights()
    head_kernel, head_bias = model.get_layer("probability").get_weights()
    arrays = {"embedding": model.get_layer("event_embedding").get_weights()[0], "kernel": kernel,
              "recurrent": recurrent, "bias": bias, "head_kernel": head_kernel, "head_bias": head_bias}
    return {"format_version": np.array([STEP_WEIGHTS_VERSION]), "kind": np.array([COMPILED_KINDS.index(kind)]),
            **{name: np.ascontiguousarray(value, dtype=np.float32) for name, value in arrays.items()}}


def _convolution_step(model):
    """The causal convolution stack, one position at a time: ``(state names, sizes, step)``.

    A causal Conv1D with kernel ``k`` and dilation ``d`` reads its input at ``t, t-d, ..., t-(k-1)d``,
    so its state is a window of its last ``(k-1)d`` inputs, oldest first (zeros before the session
    starts, which is what causal padding feeds the full model). The state grows with the receptive
    field, not with the session: the work per event is constant."""
    import keras
    import tensorflow as tf

    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    layers = []
    for layer in convolutions:
        if layer.padding != "causal" or tuple(layer.strides) != (1,) or layer.groups != 1:
            raise ExportError(f"the streaming step needs causal, stride-1 convolutions; {layer.name} is not")
        if layer.activation not in (keras.activations.relu, keras.activations.linear):
            raise ExportError(f"the streaming step supports relu or linear convolutions; {layer.name} is not")
        kernel, bias = layer.get_weights()  # kernel (k, inputs, outputs)
        size, inputs = kernel.shape[0], kernel.shape[1]
        dilation = int(layer.dilation_rate[0])
        window = (size - 1) * dilation
        layers.append((kernel, bias, dilation, window, inputs, layer.activation is keras.activations.relu))
    names = [f"window_{n}" for n, (*_, window, _, _) in enumerate(layers, start=1) if window]
    sizes = [window * inputs for *_, window, inputs, _ in layers if window]

    def convolution_step(x, *windows):
        remaining, new_windows = list(windows), []
        for kernel, bias, dilation, window, inputs, relu in layers:
            if window:
                history = tf.reshape(remaining.pop(0), (-1, window, inputs))
                timeline = tf.concat([history, x[:, None, :]], axis=1)  # positions t-window .. t
                new_windows.append(tf.reshape(timeline[:, 1:, :], (-1, window * inputs)))
            else:
                timeline = x[:, None, :]
            # tap j reads position t - (k-1-j)*d, i.e. timeline index window - (k-1-j)*d
            size = kernel.shape[0]
            x = bias + sum(tf.matmul(timeline[:, window - (size - 1 - j) * dilation, :], kernel[j])
                           for j in range(size))
            if relu:
                x = tf.nn.relu(x)
        return x, new_windows

    return names, sizes, convolution_step


def step_graph(model, kind: str):
    """The step as a tf.function with the trained weights as constants, its input signature and its
    description for the manifest (inputs, outputs, state names and widths). The parity check against
    the full Keras model proves the two agree."""
    import tensorflow as tf

    # numpy arrays, turned into constants inside the traced function (captured eager tensors would
    # become extra graph inputs in tf2onnx)
    embedding = model.get_layer("event_embedding").get_weights()[0]
    dense_kernel, dense_bias = model.get_layer("probability").get_weights()
    if kind in ("gru", "lstm", "hybrid"):
        names, sizes, cell_step = _recurrent_step(model, "gru" if kind == "hybrid" else kind)
    elif kind == "cnn":
        names, sizes, cell_step = _convolution_step(model)
    else:
        raise ExportError(f"no streaming step for a {kind!r} model")
    signature = [tf.TensorSpec((None,), tf.int32, name="event"), tf.TensorSpec((None,), tf.float32, name="gap")]
    signature += [tf.TensorSpec((None, size), tf.float32, name=name) for name, size in zip(names, sizes, strict=True)]

    @tf.function(input_signature=signature)
    def step(event, gap, *states):
        x = tf.concat([tf.gather(embedding, event), gap[:, None]], axis=1)
        output, new_states = cell_step(x, *states)
        probability = tf.sigmoid(tf.matmul(output, dense_kernel) + dense_bias)[:, 0]
        # An output may not reuse an input's name (ONNX graphs are in SSA form): state -> next_state.
        return {"probability": probability, **{f"next_{n}": s for n, s in zip(names, new_states, strict=True)}}

    description = {"inputs": ["event", "gap", *names], "outputs": ["probability", *(f"next_{n}" for n in names)],
                   "state": names, "state_sizes": sizes}
    return step, signature, description


def context_graph(model):
    """A hybrid model's session start: encoded context in, the GRU's initial state out (the trained
    ``context_state`` layer, ``tanh(context @ kernel + bias)``), as a tf.function on constants."""
    import tensorflow as tf

    layer = model.get_layer("context_state")
    kernel, bias = layer.get_weights()
    signature = [tf.TensorSpec((None, kernel.shape[0]), tf.float32, name="context")]

    @tf.function(input_signature=signature)
    def start(context):
        return {"state": tf.tanh(tf.matmul(context, kernel) + bias)}

    return start, signature, {"inputs": ["context"], "outputs": ["state"], "width": int(kernel.shape[0])}


def write_onnx(graph, path: str | Path) -> dict:
    """Write a graph (:func:`step_graph` or :func:`context_graph`) as ONNX; returns its description."""
    import tf2onnx

    step, signature, description = graph
    proto, _ = tf2onnx.convert.from_function(step, input_signature=signature, opset=STEP_OPSET)
    produced = [output.name for output in proto.graph.output]
    # tf2onnx names outputs after the traced tensors; give them the dict's names, in the dict's order.
    ordered = sorted(produced, key=lambda name: _output_position(name, description["outputs"]))
    renames = dict(zip(ordered, description["outputs"], strict=True))
    for node in proto.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for output in proto.graph.output:
        output.name = renames[output.name]
    outputs = sorted(proto.graph.output, key=lambda o: description["outputs"].index(o.name))
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    proto.producer_name = "intent-edge"
    proto.producer_version = __version__
    Path(path).write_bytes(proto.SerializeToString())
    return description


def _output_position(name: str, outputs: list[str]) -> int:
    for position, wanted in enumerate(outputs):
        if name.split(":")[0] == wanted or name.split(":")[0].endswith(f"/{wanted}"):
            return position
    raise ValueError(f"cannot tell which step output {name!r} is; expected {outputs}")


def write_litert(graph, path: str | Path, *, int8_weights: bool = False) -> dict:
    """Write a graph as LiteRT (.tflite), builtin ops only, with a ``serving_default`` signature whose
    inputs and outputs carry the same names as the ONNX graph. ``int8_weights``: dynamic-range
    quantization (int8 weights, float activations and state), which needs no calibration data and keeps
    the recurrent state in float, so quantization error does not compound from click to click."""
    import tensorflow as tf

    step, _, description = graph
    converter = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], tf.Module())
    if int8_weights:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    Path(path).write_bytes(converter.convert())
    return description
