"""Raw-field ONNX graphs: the bundle's encoder composed in front of a model, so that any ONNX Runtime host
(Java, C#, C/C++, Node.js, Go through the C API) scores raw records with no encoder of its own.

The contract a host follows (also written into each graph's ``metadata_props``):

* **Inputs**: one per schema field, shape ``[N, 1]``. Numeric fields are double (float64), so the graph
  sees exactly the number the Python runtime sees (float32 would round a duration such as 86400.123).
  Categorical fields are strings.
* **Input names**: the field name where it is a C identifier (letters, digits, ``_``; not starting with
  a digit); otherwise every other character becomes ``_``. A name that then starts with a digit or with
  ``ie__`` (which the graph keeps for its own names) gets ``f_`` in front, and one that is taken (by an
  earlier field, or by the graph's own ``features``/``probability``) gets ``_2``, ``_3``, ... The metadata
  lists each field with its input name, kind and type.
* **Category text**: text as given; integers as decimal text (``"2"``); booleans as ``"true"`` /
  ``"false"`` (``"True"``, ``"TRUE"``, ``"False"``, ``"FALSE"`` are accepted too). The Python runtime
  also trims surrounding white space; a graph does not, so a host trims before it sends.
* **Odd values**: a NaN number takes the training median and an empty (``""``) or unseen category the
  out-of-vocabulary column, as ``Predictor.load(..., strict=False)`` does. A field that was empty in
  training (``empty_fraction`` above 0 in the encoder spec) also sets its missing-indicator column for
  a NaN number, and sends an empty category to its own empty bucket, as the runtime does in either mode.
  A graph cannot refuse a record, so where the Python runtime refuses infinities and values more than
  1e6 training standard deviations out, the graph clamps the standardised value to +-1e6: it never returns NaN. A strict
  host checks types and finiteness before it scores (the Node example does).
* **Output**: ``probability``, float32 ``[N, 1]``.

Building needs the ``onnx`` package (the ``train`` extra); running needs only ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intent_edge.runtime.encoder import TRANSFORMS, CategoricalFeature, Encoder, NumericFeature, _with_spellings

PREFIX = "ie__"  # every name the encoder part of a graph makes starts with this
ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 2  # LabelEncoder with string keys and int64 values
MAX_STANDARD_SCORE = 1e6
RESERVED = frozenset({"features", "probability"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def input_names(fields: Sequence[str], taken: set[str] = frozenset()) -> dict[str, str]:
    """Each field's graph input name, by the rule in the module docstring."""
    used = set(RESERVED) | set(taken)
    names = {}
    for field in fields:
        base = field if _IDENTIFIER.fullmatch(field) else re.sub(r"[^A-Za-z0-9_]", "_", field)
        if base[:1].isdigit() or not base or base.startswith(PREFIX):
            base = "f_" + base
        name, number = base, 1
        while name in used:
            number += 1
            name = f"{base}_{number}"
        used.add(name)
        names[field] = name
    return names


def spec_sha256(spec: Mapping) -> str:
    """The digest of an encoder spec the manifest and the graphs' metadata carry."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


class GraphBuilder:
    """Collects ONNX nodes and constants; every name it makes starts with :data:`PREFIX`."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{PREFIX}{hint}_{self._count}"

    def node(self, op: str, inputs: Sequence[str], *, domain: str = "", **attributes) -> str:
        from onnx import helper

        output = self._name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=f"{output}_node", domain=domain,
                                           **attributes))
        return output

    def constant(self, value, dtype=np.float64) -> str:
        from onnx import numpy_helper

        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name


def _numeric(graph: GraphBuilder, feature: NumericFeature, x: str) -> str:
    """double [N, 1] -> float [N, 1]: the numeric feature's column, as Encoder.encode_columns computes it."""
    from onnx import TensorProto

    empty = graph.node("IsNaN", [x])
    filled = graph.node("Where", [empty, graph.constant(feature.fill), x])
    transformed = TRANSFORMS[feature.transform].onnx(graph, filled)
    score = graph.node("Div", [graph.node("Sub", [transformed, graph.constant(feature.center)]),
                               graph.constant(feature.scale)])
    clamped = graph.node("Clip", [score, graph.constant(-MAX_STANDARD_SCORE), graph.constant(MAX_STANDARD_SCORE)])
    value = graph.node("Cast", [clamped], to=TensorProto.FLOAT)
    if not feature.may_be_empty:
        return value
    return graph.node("Concat", [value, graph.node("Cast", [empty], to=TensorProto.FLOAT)], axis=1)


def _categorical(graph: GraphBuilder, feature: CategoricalFeature, text: str) -> str:
    """string [N, 1] -> float [N, width]: the one-hot block; unseen text lights the out-of-vocabulary
    column, and empty text the empty bucket where the field may be empty (else out-of-vocabulary too)."""
    lookup = _with_spellings({v: i for i, v in enumerate(feature.vocabulary)})
    unknown = feature.unknown_index
    if feature.may_be_empty:
        lookup.setdefault("", feature.empty_index)
    if not lookup:  # no category was frequent enough: everything lands in the out-of-vocabulary column
        lookup = {PREFIX + "never": unknown}
    index = graph.node("LabelEncoder", [text], domain=ML_DOMAIN, keys_strings=list(lookup),
                       values_int64s=list(lookup.values()), default_int64=unknown)
    hot = graph.node("OneHot", [index, graph.constant(feature.width, np.int64),
                                graph.constant([0.0, 1.0], np.float32)], axis=-1)
    return graph.node("Reshape", [hot, graph.constant([-1, feature.width], np.int64)])


def encoder_model(encoder: Encoder, names: Mapping[str, str], output: str, *, opset: int, ir_version: int):
    """An ONNX model: one input per field (named by ``names``), the encoded float [N, width] as ``output``."""
    from onnx import TensorProto, helper

    graph = GraphBuilder()
    inputs, blocks = [], []
    for feature in encoder.features:
        name = names[feature.name]
        if isinstance(feature, NumericFeature):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N", 1]))
            blocks.append(_numeric(graph, feature, name))
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["N", 1]))
            blocks.append(_categorical(graph, feature, name))
    graph.nodes.append(helper.make_node("Concat", blocks, [output], name=f"{output}_node", axis=1))
    body = helper.make_graph(graph.nodes, "intent_edge_encoder", inputs,
                             [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", encoder.width])],
                             initializer=graph.initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(ML_DOMAIN, ML_OPSET)])
    model.ir_version = ir_version
    return model


def _opsets(model) -> dict[str, int]:
    return {entry.domain: entry.version for entry in model.opset_import}


def compose(front, back, io_map: list[tuple[str, str]]):
    """``front``'s outputs fed into ``back``'s inputs (``io_map``): one model with ``back``'s outputs."""
    from onnx import compose as onnx_compose

    return onnx_compose.merge_models(front, back, io_map=io_map, outputs=[o.name for o in back.graph.output])


def field_table(encoder: Encoder, names: Mapping[str, str]) -> list[dict]:
    return [{"field": f.name, "input": names[f.name],
             "kind": "numeric" if isinstance(f, NumericFeature) else "categorical",
             "dtype": "double" if isinstance(f, NumericFeature) else "string"} for f in encoder.features]


def raw_session_graph(encoder: Encoder, model_path: Path, target: Path, *, metadata: Mapping[str, str]) -> list[dict]:
    """Write the raw-field graph of a session model (input ``features`` [N, width], output ``probability``)
    to ``target``; returns the field table (also in the graph's metadata)."""
    import onnx

    model = onnx.load(str(model_path))
    names = input_names(encoder.names, {n.name for n in model.graph.node} | {i.name for i in model.graph.initializer})
    front = encoder_model(encoder, names, PREFIX + "features", opset=_opsets(model)[""], ir_version=model.ir_version)
    merged = compose(front, model, [(PREFIX + "features", model.graph.input[0].name)])
    fields = field_table(encoder, names)
    _write(merged, target, {**metadata, "intent_edge.fields": json.dumps(fields)})
    return fields


def _write(model, target: Path, metadata: Mapping[str, str]) -> None:
    import onnx

    keep = {p.key: p.value for p in model.metadata_props if p.key not in metadata}
    del model.metadata_props[:]
    for key, value in {**keep, **metadata}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model, full_check=True)
    Path(target).write_bytes(model.SerializeToString())


def host_text(value: Any) -> str:
    """A category value as a host sends it to a raw-field graph (see the module docstring)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def raw_feeds(records: Sequence[Mapping[str, Any]], fields: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """The input tensors for ``records`` (a field missing or None: NaN or empty text)."""
    feeds = {}
    for field in fields:
        values = [record.get(field["field"]) for record in records]
        if field["kind"] == "numeric":
            feeds[field["input"]] = np.array([np.nan if v is None else float(v) for v in values],
                                             dtype=np.float64).reshape(-1, 1)
        else:
            feeds[field["input"]] = np.array([host_text(v) for v in values], dtype=object).reshape(-1, 1)
    return feeds


def lenient_records(records: Sequence[Mapping[str, Any]], encoder: Encoder) -> list[dict]:
    """Copies of ``records`` with one field emptied each (cycling through the fields) and, every third
    record, each category replaced by one the training data never had: what the lenient contract covers."""
    out = []
    for index, record in enumerate(records):
        changed = dict(record)
        changed[encoder.names[index % len(encoder.names)]] = None
        if index % 3 == 0:
            for feature in encoder.features:
                if isinstance(feature, CategoricalFeature) and changed[feature.name] is not None:
                    changed[feature.name] = f"{PREFIX}unseen"
        out.append(changed)
    return out


def raw_tolerance(precision: str):
    """fp32 raw graphs must match the runtime to rounding; a quantized one its own encoded graph fed the
    runtime's encoding to p99 0.002 (its max as for the variant itself)."""
    from intent_edge.parity import TOLERANCES, Tolerance

    return TOLERANCES["fp32"] if precision == "fp32" else Tolerance(p99=2e-3, max=TOLERANCES[precision].max)


def write_raw_variant(encoder: Encoder, model_path: Path, directory: Path, name: str, *, records: list[dict],
                      reference, precision: str, metadata: Mapping[str, str]) -> dict:
    """Build the raw-field graph of the session model at ``model_path`` as ``directory/name``, run it on
    held-out raw ``records`` (and on lenient copies of them: empty values, unseen categories) and compare
    with ``reference`` (the model's runner) fed the Python runtime's encoding of the same records, strict
    and lenient. Returns the variant's ``raw`` manifest entry; a graph that fails is deleted, and its
    entry says why."""
    from intent_edge.parity import compare
    from intent_edge.runtime.backends import load_runner
    from intent_edge.runtime.bundle import describe_file

    target = Path(directory) / name
    tolerance = raw_tolerance(precision)
    try:
        fields = raw_session_graph(encoder, model_path, target, metadata=metadata)
        graph = load_runner("onnxruntime", target)
        results = {}
        for mode, batch, strict in (("strict", records, True),
                                    ("lenient", lenient_records(records, encoder), False)):
            expected = reference.infer(encoder.encode_records(batch, strict=strict))
            results[mode] = compare(expected, graph.run(raw_feeds(batch, fields))[0], tolerance,
                                    reference_name=f"encoded graph fed the Python runtime's {mode} encoding")
    except Exception as exc:  # a graph that cannot be built or run keeps its reason, like a failed variant
        target.unlink(missing_ok=True)
        return {"status": f"failed: {type(exc).__name__}: {exc}"}
    parity = {mode: result.to_json() for mode, result in results.items()}
    if not all(result.passed for result in results.values()):
        target.unlink(missing_ok=True)
        worst = next(mode for mode, result in results.items() if not result.passed)
        return {"status": f"failed parity ({worst}): {results[worst].describe()}", "parity": parity}
    return {"status": "ok", "file": describe_file(directory, name), "fields": fields, "parity": parity}


def raw_metadata(variant: str, threshold: float, encoder_spec: Mapping) -> dict[str, str]:
    from intent_edge.runtime.bundle import BUNDLE_FORMAT_VERSION

    return {"intent_edge.variant": variant, "intent_edge.threshold": repr(float(threshold)),
            "intent_edge.encoder_sha256": spec_sha256(encoder_spec),
            "intent_edge.bundle_format_version": str(BUNDLE_FORMAT_VERSION), "intent_edge.output": "probability"}


# ---- clickstream graphs ----------------------------------------------------------------------------
def _rename_inputs(model, mapping: Mapping[str, str]) -> None:
    for node in model.graph.node:
        node.input[:] = [mapping.get(name, name) for name in node.input]
    for tensor in model.graph.input:
        if tensor.name in mapping:
            tensor.name = mapping[tensor.name]


def event_model(vocabulary: Sequence[str], *, opset: int, ir_version: int):
    """An ONNX model from ``event`` (string [N]) and ``seconds`` since the session's previous event
    (double [N]) to the step's token ids (int32, 1 for an event not in the vocabulary) and gap feature
    (float, ``log1p(max(seconds, 0))``), as :class:`intent_edge.runtime.sequence.SequenceSpec` makes them."""
    from onnx import TensorProto, helper

    graph = GraphBuilder()
    lookup = {event: index + 2 for index, event in enumerate(vocabulary)} or {PREFIX + "never": 1}
    token = graph.node("LabelEncoder", ["event"], domain=ML_DOMAIN, keys_strings=list(lookup),
                       values_int64s=list(lookup.values()), default_int64=1)
    graph.nodes.append(helper.make_node("Cast", [token], [PREFIX + "token"], name=PREFIX + "token_node",
                                        to=TensorProto.INT32))
    gap = TRANSFORMS["log1p"].onnx(graph, "seconds")
    graph.nodes.append(helper.make_node("Cast", [gap], [PREFIX + "gap"], name=PREFIX + "gap_node",
                                        to=TensorProto.FLOAT))
    body = helper.make_graph(graph.nodes, "intent_edge_events",
                             [helper.make_tensor_value_info("event", TensorProto.STRING, ["N"]),
                              helper.make_tensor_value_info("seconds", TensorProto.DOUBLE, ["N"])],
                             [helper.make_tensor_value_info(PREFIX + "token", TensorProto.INT32, ["N"]),
                              helper.make_tensor_value_info(PREFIX + "gap", TensorProto.FLOAT, ["N"])],
                             initializer=graph.initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(ML_DOMAIN, ML_OPSET)])
    model.ir_version = ir_version
    return model


def raw_step_graph(vocabulary: Sequence[str], step_path: Path, target: Path, *, metadata: Mapping[str, str]) -> None:
    """Write a clickstream step that takes the event's name and the seconds since the session's previous
    event (0 for the first) instead of a token id and a gap feature; states in and out as the step's."""
    import onnx

    model = onnx.load(str(step_path))
    _rename_inputs(model, {"event": PREFIX + "step_event", "gap": PREFIX + "step_gap"})
    front = event_model(vocabulary, opset=_opsets(model)[""], ir_version=model.ir_version)
    merged = compose(front, model, [(PREFIX + "token", PREFIX + "step_event"), (PREFIX + "gap", PREFIX + "step_gap")])
    _write(merged, target, {**metadata, "intent_edge.inputs": json.dumps(
        {"event": "string [N]: the event's name, trimmed", "seconds": "double [N]: seconds since the session's "
         "previous event, 0 for its first"})})


def raw_context_graph(encoder: Encoder, context_path: Path, target: Path, *, metadata: Mapping[str, str]) -> list[dict]:
    """Write a hybrid model's session start taking the raw context fields; returns the field table."""
    import onnx

    model = onnx.load(str(context_path))
    names = input_names(encoder.names, {n.name for n in model.graph.node} | {i.name for i in model.graph.initializer}
                        | {o.name for o in model.graph.output})
    front = encoder_model(encoder, names, PREFIX + "context", opset=_opsets(model)[""], ir_version=model.ir_version)
    merged = compose(front, model, [(PREFIX + "context", model.graph.input[0].name)])
    fields = field_table(encoder, names)
    _write(merged, target, {**metadata, "intent_edge.fields": json.dumps(fields)})
    return fields


def event_names(tokens: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Token ids back to event names (padding and unknown tokens to a name not in the vocabulary)."""
    names = np.array([PREFIX + "unseen", PREFIX + "unseen", *vocabulary], dtype=object)
    return names[tokens]
