"""Export a trained Keras model to ONNX (tf2onnx); :mod:`intent_edge.parity` proves it predicts like Keras.

On Keras 3, ``tf2onnx.convert.from_keras`` fails (KeyError 'keras_tensor_N'); converting a
``tf.function`` with a named ``TensorSpec`` works. The batch dimension stays dynamic.
"""

from __future__ import annotations

from pathlib import Path

from intent_edge import __version__
from intent_edge.train.mlp import INPUT_NAME, OUTPUT_NAME

ONNX_OPSET = 17


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
