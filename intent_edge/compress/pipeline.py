"""`intent-edge compress`: build smaller and faster variants of a bundle's model, prove each, pick one.

A variant is a *source* model (the original, or one retrained smaller: pruned or distilled) put
through a *conversion* (ONNX fp32, int8 or fp16; LiteRT fp32 or int8). Every variant is

* checked for parity against its own Keras source on raw held-out records, with a tolerance fitting
  its precision (:data:`PARITY_TOLERANCE`); a variant that fails is not written, but keeps its row;
* scored for ROC-AUC on the bundle's held-out test rows, against the original fp32 model;
* timed on this host: single-row latency (p50/p99 over distinct rows) and one-thread throughput at
  batch 4,096, encoded input, so the figures compare models and not encoders.

The recommended variant is chosen among those inside the AUC budget (the original counts too): of the
ones within :data:`TIE_BAND` of the fastest for the objective, the smallest file. A few microseconds
between single-row timings are noise on a busy host, and a smaller file is a real gain on a till, so
near-ties go to size; the recommended variant becomes the bundle's default.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from intent_edge.data.io import Dataset
from intent_edge.errors import BundleError, DataError
from intent_edge.fileio import atomic_directory
from intent_edge.runtime.backends import BACKENDS
from intent_edge.runtime.bundle import describe_file, read_manifest, resolve_file, sha256_of, write_manifest
from intent_edge.runtime.encoder import Encoder
from intent_edge.train.export import export_onnx
from intent_edge.train.mlp import MLPRecipe, predict_probabilities
from intent_edge.train.pipeline import carve_validation, library_versions, split_for_test

#: Per precision: the largest p99 and max |difference in probability| against the variant's own Keras
#: source. fp32 must match to rounding. fp16 keeps 11 significant bits (relative error ~5e-4 per
#: operation), so a few thousandths cover three layers. int8 has 256 levels per tensor: p99 0.02 keeps
#: decisions stable for nearly every shopper, while a rare record at the edge of a calibrated range may
#: move further, which the max allows.
PARITY_TOLERANCE = {
    "fp32": {"p99": 1e-5, "max": 1e-5},
    "fp16": {"p99": 2e-3, "max": 1e-2},
    "int8": {"p99": 2e-2, "max": 0.15},
}
PARITY_ROWS = 2000
THROUGHPUT_BATCH = 4096

SOURCES = {
    "original": "the bundle's trained model",
    "sparse-80": "unstructured magnitude pruning to 80% zeros, fine-tuned",
    "units-50": "structured pruning: half of each hidden layer's units removed, fine-tuned",
    "distilled": "a 16-8 student distilled from the original",
}
CONVERSIONS = {
    "onnx-fp32": ("onnx", "fp32"),
    "int8-dynamic": ("onnx", "int8"),
    "int8-static": ("onnx", "int8"),
    "fp16": ("onnx", "fp16"),
    "litert-fp32": ("tflite", "fp32"),
    "litert-int8": ("tflite", "int8"),
    "trt-fp16": ("engine", "fp16"),
    "trt-int8": ("engine", "int8"),
}
FILE_SUFFIX = {"onnx": "onnx", "tflite": "tflite", "engine": "engine"}
#: Which (source, conversion) pairs each target builds. The original's onnx-fp32 is the bundle's fp32.
TARGET_PLANS = {
    "cpu": [("original", c) for c in ("int8-dynamic", "int8-static", "fp16", "litert-fp32", "litert-int8")]
    + [("sparse-80", "onnx-fp32"), ("sparse-80", "int8-static"),
       ("units-50", "onnx-fp32"), ("units-50", "int8-static"), ("units-50", "litert-int8"),
       ("distilled", "onnx-fp32"), ("distilled", "litert-int8")],
    "litert": [("original", "litert-fp32"), ("original", "litert-int8"), ("units-50", "litert-fp32"),
               ("units-50", "litert-int8"), ("distilled", "litert-int8")],
    # TensorRT engines, and the FP16 ONNX model for ONNX Runtime's CUDA/TensorRT providers
    "gpu": [("original", "trt-fp16"), ("original", "trt-int8"), ("original", "fp16"), ("units-50", "trt-fp16"),
            ("units-50", "trt-int8"), ("distilled", "trt-fp16")],
}
OBJECTIVES = ("latency", "throughput")


def variant_name(source: str, conversion: str) -> str:
    if source == "original":
        return conversion
    return source if conversion == "onnx-fp32" else f"{source}-{conversion}"


@dataclass
class VariantRow:
    """One row of the compression table (failed variants keep their row, with the reason)."""

    name: str
    source: str
    conversion: str
    format: str
    precision: str
    status: str = "ok"
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    roc_auc: float | None = None
    delta_roc_auc: float | None = None
    parity: dict | None = None
    latency_us: dict | None = None
    throughput_rows_s: float | None = None
    method: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def manifest_entry(self, directory: Path, test_rows: int) -> dict:
        """The bundle manifest's description of this (written) variant."""
        return {"format": self.format, "precision": self.precision, "file": describe_file(directory, self.files[0]),
                "source": self.source, "method": self.method, "parity": self.parity,
                "accuracy": {"roc_auc": self.roc_auc, "delta_roc_auc": self.delta_roc_auc, "rows": test_rows},
                "speed": {"latency_us": self.latency_us, "throughput_rows_s": self.throughput_rows_s,
                          "threads": 1, "batch": THROUGHPUT_BATCH}}


TIE_BAND = 0.15  # variants this close to the fastest (15% of its latency or throughput) count as equally fast


def recommend(table: list[VariantRow], objective: str, max_auc_drop: float) -> VariantRow:
    """The recommended row: inside the AUC budget, within TIE_BAND of the fastest, then the smallest."""
    eligible = [r for r in table if r.status == "ok" and r.delta_roc_auc >= -max_auc_drop]
    if objective == "latency":
        fastest = min(r.latency_us["p50"] for r in eligible)
        close = [r for r in eligible if r.latency_us["p50"] <= fastest * (1 + TIE_BAND)]
        return min(close, key=lambda r: (r.bytes, r.latency_us["p50"]))
    fastest = max(r.throughput_rows_s for r in eligible)
    close = [r for r in eligible if r.throughput_rows_s >= fastest / (1 + TIE_BAND)]
    return min(close, key=lambda r: (r.bytes, -r.throughput_rows_s))


@dataclass
class EvaluationRows:
    """Rows the compressed models are built and judged on, reconstructed from the bundle's own split."""

    fit: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test_x: np.ndarray
    test_y: np.ndarray
    parity_x: np.ndarray  # held-out raw records through the runtime's per-record encoder


def evaluation_rows(manifest: dict, dataset: Dataset, encoder: Encoder) -> EvaluationRows:
    """Rebuild the bundle's train/validation/test split from the very file it was trained on."""
    training = manifest["training"]
    if sha256_of(Path(dataset.path)) != training["data"]["sha256"]:
        raise DataError(dataset.path, f"this is not the file the bundle was trained on ({training['data']['file']}, "
                                      "by sha256); compression needs it to rebuild the training and held-out rows")
    split, seed = training["split"], training["seed"]
    train, test, _ = split_for_test(dataset, split.get("test_fraction", 0.2), seed, split.get("column"))
    recipe = MLPRecipe.from_json(training["recipe"])
    fit, validation = carve_validation(dataset.labels[train], recipe, seed)
    frame = dataset.features.iloc[train].reset_index(drop=True)
    labels = dataset.labels[train]
    test_frame = dataset.features.iloc[test].reset_index(drop=True)
    parity_records = test_frame.iloc[:PARITY_ROWS].to_dict("records")
    return EvaluationRows(
        fit=(encoder.encode_columns(frame.iloc[fit], strict=False), labels[fit]),
        validation=(encoder.encode_columns(frame.iloc[validation], strict=False), labels[validation]),
        test_x=encoder.encode_columns(test_frame, strict=False), test_y=dataset.labels[test],
        parity_x=encoder.encode_records(parity_records, strict=False),
    )


def parity_figures(reference: np.ndarray, candidate: np.ndarray, precision: str) -> dict:
    difference = np.abs(np.asarray(candidate, np.float64) - np.asarray(reference, np.float64))
    tolerance = PARITY_TOLERANCE[precision]
    return {"reference": "keras source", "rows": int(difference.size), "max_abs_diff": float(difference.max()),
            "p99_abs_diff": float(np.percentile(difference, 99)), "mean_abs_diff": float(difference.mean()),
            "tolerance": tolerance,
            "passed": bool(np.percentile(difference, 99) <= tolerance["p99"] and difference.max() <= tolerance["max"])}


def measure_speed(runner, features: np.ndarray, *, single_rows: int = 2000) -> tuple[dict, float]:
    """Single-row latency p50/p99 (microseconds) over distinct rows, and rows/s at batch 4,096."""
    from intent_edge.bench import rows_per_second, time_each

    rows = [np.ascontiguousarray(features[i % len(features)][None, :]) for i in range(single_rows)]
    p50, p99 = np.percentile(time_each(runner.infer, rows), [50, 99]) / 1000.0
    batch = np.ascontiguousarray(np.resize(features, (THROUGHPUT_BATCH, features.shape[1])))
    return {"p50": float(p50), "p99": float(p99)}, float(rows_per_second(runner.infer, batch, seconds=0.5))


def _time_all(table: list[VariantRow], runners: dict, features: np.ndarray, rounds: int = 3) -> None:
    """Time all variants in interleaved rounds, after all training is over, and keep each one's median:
    timings taken one variant at a time drift with whatever the machine did just before."""
    samples: dict[str, list] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            samples[name].append(measure_speed(runner, features, single_rows=1000))
    for row in table:
        if row.name in samples:
            taken = samples[row.name]
            row.latency_us = {key: float(np.median([t[0][key] for t in taken])) for key in ("p50", "p99")}
            row.throughput_rows_s = float(np.median([t[1] for t in taken]))


def _load_keras(bundle: Path, manifest: dict):
    import keras

    path = resolve_file(bundle, manifest["source_model"]["file"])
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as exc:  # safe mode refuses Lambda layers and other serialised Python code
        if "safe_mode" not in str(exc) and "Lambda" not in str(exc):
            raise
        raise BundleError(f"{bundle}: refused to load {path.name}: it holds code (a Lambda layer or other "
                          f"Python), which safe mode never runs") from None


def _build_source(name: str, original, rows: EvaluationRows, recipe: MLPRecipe, seed: int):
    """The Keras model of a source, and how it was made."""
    from intent_edge.compress.distill import distill
    from intent_edge.compress.pruning import magnitude_prune, prune_units, sparsity

    data = (*rows.fit, *rows.validation)
    if name == "original":
        return original, {"method": "original"}
    if name == "sparse-80":
        model = magnitude_prune(original, 0.8, data, recipe, seed)
        return model, {"method": "magnitude pruning", "target_sparsity": 0.8, "sparsity": sparsity(model)}
    if name == "units-50":
        model, smaller = prune_units(original, 0.5, data, recipe, seed)
        return model, {"method": "structured pruning", "keep_fraction": 0.5, "hidden": list(smaller.hidden)}
    if name == "distilled":
        model, student = distill(original, (16, 8), data, recipe, seed)
        return model, {"method": "distillation", "hidden": list(student.hidden), "alpha": 0.3}
    raise ValueError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")


def _convert(conversion: str, model, onnx_fp32: Path, target: Path, rows: EvaluationRows) -> dict:
    from intent_edge.compress import litert, quantize

    if conversion == "onnx-fp32":
        shutil.copyfile(onnx_fp32, target)
        return {"method": "onnx-fp32"}
    if conversion == "int8-dynamic":
        return quantize.int8_dynamic(onnx_fp32, target)
    if conversion == "int8-static":
        return quantize.int8_static(onnx_fp32, target, rows.fit[0])
    if conversion == "fp16":
        return quantize.fp16(onnx_fp32, target)
    if conversion == "litert-fp32":
        return litert.litert_fp32(model, target)
    if conversion == "litert-int8":
        return litert.litert_int8(model, target, rows.fit[0])
    if conversion in ("trt-fp16", "trt-int8"):
        return _tensorrt_engine(conversion.removeprefix("trt-"), onnx_fp32, target, rows)
    raise ValueError(f"unknown conversion {conversion!r}; known: {', '.join(CONVERSIONS)}")


def _tensorrt_engine(precision: str, onnx_fp32: Path, target: Path, rows: EvaluationRows) -> dict:
    """An engine built from the ONNX model TensorRT's version calls for (see compress.tensorrt)."""
    from intent_edge.compress import quantize, tensorrt

    source = tensorrt.engine_source(precision, tensorrt.tensorrt_major())
    intermediate = target.with_suffix(f".{source}.onnx")
    try:
        if source == "fp16":
            how = quantize.fp16(onnx_fp32, intermediate)
        elif source == "qdq":
            how = quantize.int8_static(onnx_fp32, intermediate, rows.fit[0])
        else:
            shutil.copyfile(onnx_fp32, intermediate)
            how = {"method": "onnx-fp32"}
        return {**tensorrt.build_engine(intermediate, target, width=rows.test_x.shape[1], precision=precision),
                "onnx": how}
    finally:
        intermediate.unlink(missing_ok=True)


def plan_for(target: str, methods: list[str] | None) -> list[tuple[str, str]]:
    if target == "gpu":
        from intent_edge.compress.tensorrt import require_gpu_build

        require_gpu_build()
    if target not in TARGET_PLANS:
        raise ValueError(f"unknown target {target!r}; choose cpu, litert or gpu")
    plan = TARGET_PLANS[target]
    if methods:
        unknown = [m for m in methods if m not in SOURCES and m not in CONVERSIONS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; sources: {', '.join(SOURCES)}; "
                             f"conversions: {', '.join(CONVERSIONS)}")
        chosen_sources = [m for m in methods if m in SOURCES] or list(SOURCES)
        chosen_conversions = [m for m in methods if m in CONVERSIONS] or list(CONVERSIONS)
        plan = [(s, c) for s, c in plan if s in chosen_sources and c in chosen_conversions]
    if not plan:
        raise ValueError(f"--methods {','.join(methods or [])} selects nothing for target {target}")
    return plan


def compress_bundle(bundle: str | Path, dataset: Dataset, *, target: str = "cpu", objective: str = "latency",
                    max_auc_drop: float = 0.003, methods: list[str] | None = None,
                    on_step: Callable[[str], None] | None = None) -> dict:
    """Add compressed variants to ``bundle`` (atomically) and return its new manifest."""
    from sklearn.metrics import roc_auc_score

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    step = on_step or (lambda _message: None)
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    plan = plan_for(target, methods)
    encoder = Encoder.from_spec(manifest["encoder"])
    rows = evaluation_rows(manifest, dataset, encoder)
    recipe = MLPRecipe.from_json(manifest["training"]["recipe"])
    seed = manifest["training"]["seed"]
    original = _load_keras(bundle, manifest)
    kept = {"fp32": manifest["variants"]["fp32"]}  # earlier compression results are replaced

    def load_runner(fmt: str, path: Path):
        backend = next(b for b in BACKENDS.values() if b.model_format == fmt)
        backend.require()
        return backend.load(path, encoder.width, threads=1)

    with atomic_directory(bundle) as staging:
        for entry in (manifest["source_model"]["file"], manifest["golden"]["file"], manifest["variants"]["fp32"]["file"]):
            shutil.copy2(resolve_file(bundle, entry), staging / entry["path"])

        fp32_runner = load_runner("onnx", staging / manifest["variants"]["fp32"]["file"]["path"])
        original_auc = float(roc_auc_score(rows.test_y, fp32_runner.infer(rows.test_x)))
        table = [VariantRow("fp32", "original", "onnx-fp32", "onnx", "fp32",
                            files=[manifest["variants"]["fp32"]["file"]["path"]],
                            bytes=manifest["variants"]["fp32"]["file"]["bytes"], roc_auc=original_auc,
                            delta_roc_auc=0.0, parity=manifest["variants"]["fp32"]["parity"],
                            method={"method": "original"})]
        runners = {"fp32": fp32_runner}
        sources: dict[str, dict] = {}
        built: dict[str, tuple] = {}
        for source, conversion in plan:
            if source not in built:
                step(f"building source '{source}': {SOURCES[source]}")
                model, how = _build_source(source, original, rows, recipe, seed)
                onnx_path = staging / f".{source}.fp32.onnx"
                export_onnx(model, encoder.width, onnx_path)
                built[source] = (model, how, onnx_path, predict_probabilities(model, rows.parity_x))
            model, how, onnx_path, reference = built[source]
            name = variant_name(source, conversion)
            fmt, precision = CONVERSIONS[conversion]
            row = VariantRow(name, source, conversion, fmt, precision)
            target_path = staging / f"{name}.{FILE_SUFFIX[fmt]}"
            step(f"variant '{name}'")
            try:
                row.method = {**how, "conversion": _convert(conversion, model, onnx_path, target_path, rows)}
                runner = load_runner(fmt, target_path)
                row.parity = parity_figures(reference, runner.infer(rows.parity_x), precision)
                row.roc_auc = float(roc_auc_score(rows.test_y, runner.infer(rows.test_x)))
                row.delta_roc_auc = row.roc_auc - original_auc
                runners[name] = runner
                if not row.parity["passed"]:
                    row.status = (f"failed parity: p99 {row.parity['p99_abs_diff']:.2g}, max "
                                  f"{row.parity['max_abs_diff']:.2g} > {PARITY_TOLERANCE[precision]}")
            except Exception as exc:  # a conversion that breaks keeps its row in the table, with the reason
                row.status = f"failed: {type(exc).__name__}: {exc}"
            if row.status != "ok":
                target_path.unlink(missing_ok=True)
                table.append(row)
                continue
            row.files = [target_path.name]
            if source != "original":
                keras_name = f"{source}.keras"
                if not (staging / keras_name).exists():
                    model.save(staging / keras_name)
                    sources[source] = {"file": describe_file(staging, keras_name), "method": how}
                row.files.append(keras_name)
            row.bytes = (staging / row.files[0]).stat().st_size  # the file the runtime loads
            table.append(row)
        for _, _, onnx_path, _ in built.values():
            onnx_path.unlink(missing_ok=True)
        step("timing every variant")
        _time_all(table, runners, rows.test_x)

        best = recommend(table, objective, max_auc_drop)
        variants = dict(kept)
        variants.update((row.name, row.manifest_entry(staging, len(rows.test_y)))
                        for row in table[1:] if row.status == "ok")
        manifest = {**manifest, "variants": variants, "default_variant": best.name, "sources": sources,
                    "libraries": {**manifest["libraries"], **library_versions()},
                    "compression": {"target": target, "objective": objective, "max_auc_drop": max_auc_drop,
                                    "recommended": best.name, "original_roc_auc": original_auc,
                                    "evaluated_on": {"rows": int(len(rows.test_y)), "split": "bundle held-out test"},
                                    "table": [r.to_json() for r in table]}}
        write_manifest(staging, manifest)
    return manifest

