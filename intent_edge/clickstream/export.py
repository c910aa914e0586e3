"""The streaming export: one step of a trained recurrent model as an ONNX graph.

The step takes, for a batch of sessions, the new event's token id, its gap feature and the recurrent
state after the previous event, and returns the probability after this event and the new state:

    inputs  event int32 [batch], gap float32 [batch], state float32 [batch, units] (+ cell float32
            [batch, units] for an LSTM)
    outputs probability float32 [batch], next_state (+ next_cell) float32 [batch, units]

It is traced from the trained layers themselves (the embedding table, the GRU/LSTM cell, the output
Dense), so it computes what the full-sequence model computes, one event at a time: a session's
probability after event k equals the full model's output at position k (parity checked to 1e-5).
The step is plain gathers, matmuls and activations, which any ONNX runtime runs; the full-sequence
model with its masking stays in Keras, where training and evaluation use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intent_edge import __version__

STEP_OPSET = 17


def state_names(kind: str) -> list[str]:
    """The recurrent state tensors a step carries: ``state`` for a GRU, ``state`` and ``cell`` for an LSTM."""
    if kind == "gru":
        return ["state"]
    if kind == "lstm":
        return ["state", "cell"]
    raise ValueError(f"a {kind!r} model has no recurrent state to stream; streaming needs gru or lstm")


def export_step_onnx(model, kind: str, path: str | Path) -> dict:
    """Write the step graph; returns its input and output names and the state width."""
    import tensorflow as tf
    import tf2onnx

    names = state_names(kind)
    embedding = model.get_layer("event_embedding").embeddings
    cell = model.get_layer("encoder").cell
    dense = model.get_layer("probability")
    units = int(cell.units)
    signature = [tf.TensorSpec((None,), tf.int32, name="event"), tf.TensorSpec((None,), tf.float32, name="gap")]
    signature += [tf.TensorSpec((None, units), tf.float32, name=name) for name in names]

    @tf.function(input_signature=signature)
    def step(event, gap, *states):
        x = tf.concat([tf.gather(embedding, event), gap[:, None]], axis=1)
        output, new_states = cell(x, list(states), training=False)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        return [dense(output)[:, 0], *new_states]

    proto, _ = tf2onnx.convert.from_function(step, input_signature=signature, opset=STEP_OPSET)
    outputs = ["probability", *(f"next_{name}" for name in names)]  # an output may not reuse an input's name
    renames = {old.name: new for old, new in zip(proto.graph.output, outputs, strict=True)}
    for node in proto.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for output in proto.graph.output:
        output.name = renames[output.name]
    proto.producer_name = "intent-edge"
    proto.producer_version = __version__
    Path(path).write_bytes(proto.SerializeToString())
    return {"inputs": ["event", "gap", *names], "outputs": outputs, "state": names, "units": units}


def full_model_prefix_probabilities(model, tokens: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The full-sequence model's probability after every position, ``(sessions, max_length)``."""
    return np.asarray(model.predict({"events": tokens, "gaps": gaps}, batch_size=1024, verbose=0))[..., 0]
