"""Export a bundle variant as a Triton Inference Server model repository.

Layout written (atomically, as one directory)::

    REPO/
      MODEL/              the raw-field model: one input per field (TYPE_STRING / TYPE_FP64), records in
        config.pbtxt      onnxruntime backend, input/output names, types and shapes read from the model
                          itself, dynamic batching, instance groups
        1/model.onnx      the variant's raw-field graph, checksum verified on the way
      MODEL_encoded/      the same network without the encoder: one float32 row per record in
      fields.json         the raw model's inputs: field, input name, kind, type
      encoder.json        the bundle's encoder spec: how a client turns raw records into an encoded row
      golden.json         raw records with their encodings and probabilities, to test a client
      README.md           how to call each model

A bundle from before raw-field graphs has only the encoded model, as MODEL. Only ONNX variants are
exported (stock Triton has no LiteRT backend).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from intent_edge.errors import BundleError
from intent_edge.fileio import atomic_directory
from intent_edge.runtime.bundle import read_manifest, require_session_bundle, resolve_file, variant_entry

# Tensor element types (as the runners report them) -> Triton data types.
_TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
                 "int32": "TYPE_INT32", "int8": "TYPE_INT8", "string": "TYPE_STRING", "bool": "TYPE_BOOL"}
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def model_signature(onnx_path: Path) -> dict:
    """Inputs and outputs of an ONNX model as ONNX Runtime sees them: name, dtype and shape per tensor."""
    from intent_edge.runtime.backends import load_runner

    return load_runner("onnxruntime", onnx_path).signature()


def render_config(name: str, signature: dict, *, max_batch_size: int, instances: int, kind: str,
                  max_queue_delay_us: int) -> str:
    """config.pbtxt for the onnxruntime backend. The first dimension of every tensor is the batch, which
    Triton leaves out of ``dims`` when ``max_batch_size`` > 0."""
    def tensors(items: list[dict]) -> str:
        blocks = []
        for item in items:
            if item["dtype"] not in _TRITON_TYPES:
                raise BundleError(f"tensor '{item['name']}' has type {item['dtype']}, which this export does not map")
            dims = item["shape"][1:]
            if any(not isinstance(d, int) for d in dims):
                raise BundleError(f"tensor '{item['name']}' has a dynamic non-batch dimension: {item['shape']}")
            blocks.append(f'  {{\n    name: "{item["name"]}"\n    data_type: {_TRITON_TYPES[item["dtype"]]}\n'
                          f'    dims: [ {", ".join(map(str, dims))} ]\n  }}')
        return ",\n".join(blocks)

    return (f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch_size}\n'
            f"input [\n{tensors(signature['inputs'])}\n]\noutput [\n{tensors(signature['outputs'])}\n]\n"
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}\n"
            f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]\n")


def export_triton(bundle: str | Path, repository: str | Path, *, variant: str | None = None,
                  model_name: str = "intent_edge", max_batch_size: int = 4096, instances: int = 1,
                  gpu: bool = False, max_queue_delay_us: int = 100) -> Path:
    """Write the repository; returns the model directory."""
    if not _MODEL_NAME.fullmatch(model_name):
        raise BundleError(f"model name {model_name!r}: use letters, digits, '_', '.' and '-' only")
    manifest = read_manifest(bundle)
    require_session_bundle(bundle, manifest, "the Triton export")
    name, entry = variant_entry(manifest, variant or _default_onnx_variant(manifest))
    if entry["format"] != "onnx":
        onnx = [n for n, v in manifest["variants"].items() if v["format"] == "onnx"]
        raise BundleError(f"variant '{name}' is {entry['format']}; Triton export takes an ONNX variant: "
                          f"{', '.join(onnx)}")
    source = resolve_file(bundle, entry["file"])
    golden = resolve_file(bundle, manifest["golden"]["file"])
    signature = model_signature(source)
    width = manifest["encoder"]["width"]
    if signature["inputs"][0]["shape"][1:] != [width]:
        raise BundleError(f"{source}: the model input {signature['inputs'][0]['shape']} does not fit the encoder "
                          f"width {width}")
    # The raw-field model is the one clients call by MODEL_NAME (records in); the encoded one stays beside it
    # as MODEL_NAME_encoded for clients that encode themselves. A bundle without a raw graph exports the
    # encoded model alone, under MODEL_NAME, as before.
    models = {model_name: (source, signature)}
    raw = entry.get("raw", {})
    if raw.get("status") == "ok":
        raw_source = resolve_file(bundle, raw["file"])
        models = {model_name: (raw_source, model_signature(raw_source)), f"{model_name}_encoded": (source, signature)}
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    with atomic_directory(repository) as staging:
        for name_in_repository, (path, model) in models.items():
            model_dir = staging / name_in_repository
            (model_dir / "1").mkdir(parents=True)
            shutil.copyfile(path, model_dir / "1" / "model.onnx")
            (model_dir / "config.pbtxt").write_text(
                render_config(name_in_repository, model, max_batch_size=max_batch_size, instances=instances,
                              kind=kind, max_queue_delay_us=max_queue_delay_us), encoding="utf-8")
        (staging / "encoder.json").write_text(json.dumps(manifest["encoder"], indent=2) + "\n", encoding="utf-8")
        if len(models) == 2:
            (staging / "fields.json").write_text(json.dumps(raw["fields"], indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(golden, staging / "golden.json")
        (staging / "README.md").write_text(_guide(manifest, name, model_name, signature,
                                                  raw.get("fields") if len(models) == 2 else None), encoding="utf-8")
    return Path(repository) / model_name


def _default_onnx_variant(manifest: dict) -> str:
    default = manifest.get("default_variant", "fp32")
    return default if manifest["variants"][default]["format"] == "onnx" else "fp32"


def _raw_section(model_name: str, fields: list[dict], threshold: float) -> list[str]:
    rows = [f"| `{f['input']}` | {f['field']} | {f['kind']} | "
            f"{'TYPE_STRING (BYTES)' if f['dtype'] == 'string' else 'TYPE_FP64'} |" for f in fields]
    return [
        f"## `{model_name}`: raw records in", "",
        f"Send one tensor per field, each of shape [batch, 1]; `probability` comes back, shape [batch, 1], "
        f"float32. The decision threshold is {threshold:.6f}. The model encodes the fields itself: numbers as "
        "float64, categories as text (integers as decimal text, booleans as `true`/`false`, trimmed of "
        "surrounding white space). A NaN number takes the training median and an empty or unseen category the "
        "out-of-vocabulary column; infinities are clamped, so check values before sending where they must be "
        "refused.", "",
        "| input | field | kind | Triton type |", "|---|---|---|---|", *rows, "",
        "```python",
        "import numpy as np, tritonclient.http as http",
        "client = http.InferenceServerClient('localhost:8000')",
        "def tensor(field, values):",
        "    text = field['dtype'] == 'string'",
        "    t = http.InferInput(field['input'], [len(values), 1], 'BYTES' if text else 'FP64')",
        "    t.set_data_from_numpy(np.array(values, dtype=object if text else np.float64).reshape(-1, 1))",
        "    return t",
        "fields = json.load(open('fields.json'))   # the table above",
        "inputs = [tensor(f, [r[f['field']] for r in records]) for f in fields]",
        f"probability = client.infer('{model_name}', inputs).as_numpy('probability')[:, 0]",
        "```", "",
        f"`{model_name}_encoded` is the same network without the encoder (below): for clients that encode "
        "records themselves and send one float32 row each, which saves the string lookups on the server.", "",
    ]


def _guide(manifest: dict, variant: str, model_name: str, signature: dict, raw_fields: list[dict] | None) -> str:
    spec = manifest["encoder"]
    input_name, output_name = signature["inputs"][0]["name"], signature["outputs"][0]["name"]
    encoded_name = f"{model_name}_encoded" if raw_fields else model_name
    lines = [
        f"# Triton model repository for `{model_name}` (intent-edge variant `{variant}`)", "",
        "Start Triton with this directory as the model repository, for example:", "",
        "```", "tritonserver --model-repository=$PWD", "```", "",
        "No Triton server runs where this was exported; each configuration is generated from its model's own "
        "input and output signature and checked against it, with Triton's own ModelConfig message, by "
        "intent-edge's tests, not by a live server.", "",
        *(_raw_section(model_name, raw_fields, manifest["threshold"]["value"]) if raw_fields else []),
        f"## `{encoded_name}`: encoded rows in", "",
        f"This model runs without the encoder. Each request row is a float32 vector of width {spec['width']} "
        f"(input `{input_name}`, shape [batch, {spec['width']}]); the output `{output_name}` is the purchase "
        f"probability, shape [batch, 1]. The decision threshold is {manifest['threshold']['value']:.6f}.", "",
        "Build a row from a raw record with `encoder.json`, feature by feature, starting from zeros:", "",
        "- `numeric` at column `offset`: x must be a finite number; with transform `log1p` use "
        "`log1p(max(x, 0))`, with `identity` use x; write `(t - center) / scale`. Refuse a result whose "
        "absolute value exceeds 1e6 (a typing error or an attack).",
        "- `categorical` at columns `offset` .. `offset + width - 1`: make the value a canonical string "
        "(integral numbers as integers, `2.0` -> `2`; booleans and the strings true/false in any case as "
        "`true`/`false`; other text stripped of surrounding white space), then write 1.0 at "
        "`offset + index` of that string in `vocabulary`, or at the last column if it is not there.", "",
        "Arithmetic in float64, then cast to float32. `golden.json` holds raw records with their expected "
        "rows and probabilities: a client's encoder must reproduce the rows (to float32 precision) before "
        "it goes live. In Python, `intent_edge.runtime.encoder.Encoder.from_spec(json.load(open('encoder.json')))"
        ".encode_records(records)` does all of this.", "",
        "## Example (tritonclient)", "",
        "```python",
        "import numpy as np, tritonclient.http as http",
        "client = http.InferenceServerClient('localhost:8000')",
        f"rows = encoder.encode_records(records)            # float32 [n, {spec['width']}]",
        f"request = http.InferInput('{input_name}', rows.shape, 'FP32'); request.set_data_from_numpy(rows)",
        f"probability = client.infer('{encoded_name}', [request]).as_numpy('{output_name}')[:, 0]",
        "```", "",
    ]
    return "\n".join(lines)
