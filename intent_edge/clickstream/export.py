"""The streaming export: one step of a trained recurrent model as an ONNX graph.

The step takes, for a batch of sessions, the new event's token id, its gap feature and the recurrent
state after the previous event, and returns the probability after this event and the new state:

    inputs  event int32 [batch], gap float32 [batch], state float32 [batch, units] (+ cell float32
            [batch, units] for an LSTM)
    outputs probability float32 [batch], next_state (+ next_cell) float32 [batch, units]

It is built from the trained weights (the embedding table, the GRU/LSTM cell, the output Dense), so
it computes what the full-sequence model computes, one event at a time: a session's
probability after event k equals the full model's output at position k (parity checked to 1e-5).
The step is plain gathers, matmuls and activations, which any ONNX runtime runs; the full-sequence
model with its masking stays in Keras, where training and evaluation use it.
"""

from __future__ import annotations

from pathlib import Path

from intent_edge import __version__

STEP_OPSET = 17


def state_names(kind: str) -> list[str]:
    """The recurrent state tensors a step carries: ``state`` for a GRU, ``state`` and ``cell`` for an LSTM."""
    if kind == "gru":
        return ["state"]
    if kind == "lstm":
        return ["state", "cell"]
    raise ValueError(f"a {kind!r} model has no recurrent state to stream; streaming needs gru or lstm")


def _step_function(model, kind: str):
    """The step as a tf.function with the trained weights as constants, its input signature and names.

    The cell's arithmetic is written out (Keras 3's GRU with ``reset_after`` and its LSTM, both with
    sigmoid gates and tanh), because a traced Keras layer keeps its weights as variables, which the
    LiteRT converter does not freeze from a Keras 3 model; constants convert everywhere. The parity
    check against the full Keras model proves the two agree."""
    import keras
    import tensorflow as tf

    names = state_names(kind)
    layer = model.get_layer("encoder")
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        raise ValueError("the streaming step supports the default activations (tanh, sigmoid gates)")
    # numpy arrays, turned into constants inside the traced function (captured eager tensors would
    # become extra graph inputs in tf2onnx)
    embedding = model.get_layer("event_embedding").get_weights()[0]
    dense_kernel, dense_bias = model.get_layer("probability").get_weights()
    weights = layer.get_weights()
    units = int(cell.units)
    signature = [tf.TensorSpec((None,), tf.int32, name="event"), tf.TensorSpec((None,), tf.float32, name="gap")]
    signature += [tf.TensorSpec((None, units), tf.float32, name=name) for name in names]

    if kind == "gru":
        if not cell.reset_after:
            raise ValueError("the streaming step supports GRUs with reset_after=True (the Keras default)")
        kernel, recurrent, bias = weights

        def cell_step(x, h):
            from_x = tf.matmul(x, kernel) + bias[0]
            from_h = tf.matmul(h, recurrent) + bias[1]
            x_z, x_r, x_h = tf.split(from_x, 3, axis=1)
            h_z, h_r, h_h = tf.split(from_h, 3, axis=1)
            z, r = tf.sigmoid(x_z + h_z), tf.sigmoid(x_r + h_r)
            candidate = tf.tanh(x_h + r * h_h)
            new = z * h + (1.0 - z) * candidate
            return new, [new]
    else:
        kernel, recurrent, bias = weights

        def cell_step(x, h, c):
            gates = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
            i, f, g, o = tf.split(gates, 4, axis=1)
            new_c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            new_h = tf.sigmoid(o) * tf.tanh(new_c)
            return new_h, [new_h, new_c]

    @tf.function(input_signature=signature)
    def step(event, gap, *states):
        x = tf.concat([tf.gather(embedding, event), gap[:, None]], axis=1)
        output, new_states = cell_step(x, *states)
        probability = tf.sigmoid(tf.matmul(output, dense_kernel) + dense_bias)[:, 0]
        # An output may not reuse an input's name (ONNX graphs are in SSA form): state -> next_state.
        return {"probability": probability, **{f"next_{n}": s for n, s in zip(names, new_states, strict=True)}}

    description = {"inputs": ["event", "gap", *names], "outputs": ["probability", *(f"next_{n}" for n in names)],
                   "state": names, "units": units}
    return step, signature, description


def export_step_onnx(model, kind: str, path: str | Path) -> dict:
    """Write the step graph as ONNX; returns its input and output names and the state width."""
    import tf2onnx

    step, signature, description = _step_function(model, kind)
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


def export_step_litert(model, kind: str, path: str | Path, *, int8_weights: bool = False) -> dict:
    """Write the step as LiteRT (.tflite), builtin ops only, with a ``serving_default`` signature whose
    inputs and outputs carry the same names as the ONNX step. ``int8_weights``: dynamic-range
    quantization (int8 weights, float activations and state), which needs no calibration data and keeps
    the recurrent state in float, so quantization error does not compound from click to click."""
    import tensorflow as tf

    step, _, description = _step_function(model, kind)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], tf.Module())
    if int8_weights:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    Path(path).write_bytes(converter.convert())
    return description
