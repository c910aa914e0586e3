"""`intent-edge compress`: build smaller and faster variants of a bundle's model, prove each, pick one.

A variant is a *source* model (the original, or one retrained smaller: pruned or distilled) put
through a *conversion* (ONNX fp32, int8 or fp16; LiteRT fp32 or int8). Every variant is

* checked for parity against its own Keras source on raw held-out records, with a tolerance fitting
  its precision (:data:`intent_edge.parity.TOLERANCES`); a variant that fails is not written, but keeps its row;
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from intent_edge.compress.levels import LEVEL_READERS, output_levels, tie_share
from intent_edge.compress.registry import ConversionInput, SourceInput, plan_for, variant_name
from intent_edge.data.io import Dataset
from intent_edge.errors import DataError, UsageError
from intent_edge.export.network import write_native_variant
from intent_edge.fileio import atomic_directory
from intent_edge.monitoring.profile import add_variant_scores
from intent_edge.parity import PARITY_ROWS, compare
from intent_edge.raw_graph import raw_metadata, write_raw_variant
from intent_edge.runtime.backends import BACKENDS
from intent_edge.runtime.bundle import (
    describe_file,
    read_manifest,
    require_session_bundle,
    resolve_file,
    sha256_of,
    write_manifest,
)
from intent_edge.runtime.encoder import Encoder
from intent_edge.train.export import export_onnx
from intent_edge.train.mlp import MLPRecipe, predict_probabilities
from intent_edge.train.pipeline import carve_validation, library_versions, load_keras, rebuild_split, strict_rows

THROUGHPUT_BATCH = 4096
OBJECTIVES = ("latency", "throughput")


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
    config: dict = field(default_factory=dict)
    raw: dict | None = None  # an ONNX variant's raw-field graph: its manifest entry, or why it was not written
    native: dict | None = None  # the native backend's weights file entry, for a dense fp32 ONNX graph
    output_levels: int | None = None  # distinct probabilities its graph can output (None: float32)
    tie_share: float | None = None  # share of held-out rows whose probability equals another row's

    def to_json(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "native"},
                "raw": None if self.raw is None else self.raw["status"]}

    def output_record(self) -> dict:
        return {"levels": self.output_levels, "tie_share": self.tie_share}

    def manifest_entry(self, directory: Path, test_rows: int) -> dict:
        """The bundle manifest's description of this (written) variant."""
        return {"format": self.format, "precision": self.precision, "file": describe_file(directory, self.files[0]),
                "source": self.source, "conversion": self.conversion, "method": self.method, "config": self.config,
                "parity": self.parity,
                "accuracy": {"roc_auc": self.roc_auc, "delta_roc_auc": self.delta_roc_auc, "rows": test_rows},
                "output": self.output_record(),
                "speed": {"latency_us": self.latency_us, "throughput_rows_s": self.throughput_rows_s,
                          "threads": 1, "batch": THROUGHPUT_BATCH},
                **({"raw": self.raw} if self.raw is not None else {}),
                **({"native": self.native} if self.native is not None else {})}


# besides fp32, the variants the native kernel runs: dense fp32 graphs and LiteRT's full-integer models
NATIVE_VARIANTS = ("distilled", "units-50", "sparse-80", "litert-int8", "units-50-litert-int8",
                   "distilled-litert-int8")
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
    parity_records: list[dict]  # the complete ones among them, raw (the raw-field graphs are checked on them)


def evaluation_rows(manifest: dict, dataset: Dataset, encoder: Encoder) -> EvaluationRows:
    """Rebuild the bundle's train/validation/test split from the very file it was trained on."""
    training = manifest["training"]
    if sha256_of(Path(dataset.path)) != training["data"]["sha256"]:
        raise DataError(dataset.path, f"this is not the file the bundle was trained on ({training['data']['file']}, "
                                      "by sha256); compression needs it to rebuild the training and held-out rows")
    train, test = rebuild_split(dataset, training)
    recipe = MLPRecipe.from_json(training["recipe"])
    fit, validation = carve_validation(dataset.labels[train], recipe, training["seed"])
    frame = dataset.features.iloc[train].reset_index(drop=True)
    labels = dataset.labels[train]
    test_frame = dataset.features.iloc[test].reset_index(drop=True)
    parity_records = test_frame.iloc[:PARITY_ROWS].to_dict("records")
    return EvaluationRows(
        fit=(encoder.encode_columns(frame.iloc[fit], strict=False), labels[fit]),
        validation=(encoder.encode_columns(frame.iloc[validation], strict=False), labels[validation]),
        test_x=encoder.encode_columns(test_frame, strict=False), test_y=dataset.labels[test],
        parity_x=encoder.encode_records(parity_records, strict=False),
        parity_records=test_frame.iloc[strict_rows(test_frame, np.arange(min(PARITY_ROWS, len(test_frame))),
                                                   encoder)].to_dict("records"),
    )


def measure_speed(runner, features: np.ndarray, *, single_rows: int = 2000) -> tuple[dict, float]:
    """Single-row latency p50/p99 (microseconds) over distinct rows, and rows/s at batch 4,096."""
    from intent_edge.timing import rows_per_second, time_each

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


def compress_bundle(bundle: str | Path, dataset: Dataset, *, target: str = "cpu", objective: str = "latency",
                    max_auc_drop: float = 0.003, methods: list[str] | None = None,
                    on_step: Callable[[str], None] | None = None) -> dict:
    """Add compressed variants to ``bundle`` (atomically) and return its new manifest."""
    from sklearn.metrics import roc_auc_score

    if objective not in OBJECTIVES:
        raise UsageError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    step = on_step or (lambda _message: None)
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    require_session_bundle(bundle, manifest, "compression")
    plan = plan_for(target, methods)
    encoder = Encoder.from_spec(manifest["encoder"])
    rows = evaluation_rows(manifest, dataset, encoder)
    given = SourceInput(load_keras(bundle, manifest), (*rows.fit, *rows.validation),
                        MLPRecipe.from_json(manifest["training"]["recipe"]), manifest["training"]["seed"])
    kept = {"fp32": manifest["variants"]["fp32"]}  # earlier compression results are replaced

    def load_runner(fmt: str, path: Path):
        backend = next(b for b in BACKENDS.values() if b.model_format == fmt)
        return backend.load_model(path, encoder.width, threads=1)

    with atomic_directory(bundle) as staging:
        fp32 = manifest["variants"]["fp32"]
        carried = [manifest["source_model"]["file"], manifest["golden"]["file"], fp32["file"]]
        if fp32.get("raw", {}).get("status") == "ok":
            carried.append(fp32["raw"]["file"])
        if "native" in fp32:
            carried.append(fp32["native"])
        if "explain" in manifest:
            carried.append(manifest["explain"]["background"]["file"])
        for entry in carried:
            shutil.copy2(resolve_file(bundle, entry), staging / entry["path"])

        fp32_runner = load_runner("onnx", staging / fp32["file"]["path"])
        fp32_probabilities = fp32_runner.infer(rows.test_x)
        held_out_scores = {"fp32": fp32_probabilities}  # each proven variant's, for its monitoring score bins
        original_auc = float(roc_auc_score(rows.test_y, fp32_probabilities))
        table = [VariantRow("fp32", "original", "onnx-fp32", "onnx", "fp32",
                            files=[fp32["file"]["path"]],
                            bytes=fp32["file"]["bytes"], roc_auc=original_auc,
                            delta_roc_auc=0.0, parity=fp32["parity"], raw=fp32.get("raw"),
                            method={"method": "original"},
                            output_levels=output_levels(staging / fp32["file"]["path"], "onnx"),
                            tie_share=tie_share(fp32_probabilities))]
        if "native" not in fp32:  # a bundle from before the native backend gets its weights now
            fp32 = {**fp32, "native": write_native_variant(staging / fp32["file"]["path"], staging, "fp32",
                                                           fp32_runner, rows.parity_x)}
        kept["fp32"] = {**fp32, "output": table[0].output_record()}
        runners = {"fp32": fp32_runner}
        sources: dict[str, dict] = {}
        built: dict[str, tuple] = {}
        for source, conversion in plan:
            if source.name not in built:
                step(f"building source '{source.name}': {source.description}")
                model, how = source.build(given, source.config)
                onnx_path = staging / f".{source.name}.fp32.onnx"
                export_onnx(model, encoder.width, onnx_path)
                built[source.name] = (model, how, onnx_path, predict_probabilities(model, rows.parity_x))
            model, how, onnx_path, reference = built[source.name]
            name = variant_name(source.name, conversion.name)
            row = VariantRow(name, source.name, conversion.name, conversion.format, conversion.precision,
                             config={"source": asdict(source.config), "conversion": asdict(conversion.config)})
            target_path = staging / f"{name}.{conversion.suffix}"
            step(f"variant '{name}'")
            try:
                made = conversion.build(ConversionInput(model, onnx_path, target_path, rows.fit[0]), conversion.config)
                row.method = {**how, "conversion": made}
                runner = load_runner(conversion.format, target_path)
                parity = compare(reference, runner.infer(rows.parity_x), conversion.tolerance)
                row.parity = parity.to_json()
                probabilities = runner.infer(rows.test_x)
                row.roc_auc = float(roc_auc_score(rows.test_y, probabilities))
                row.delta_roc_auc = row.roc_auc - original_auc
                row.tie_share = tie_share(probabilities)
                if conversion.format in LEVEL_READERS:
                    row.output_levels = output_levels(target_path, conversion.format)
                if not parity.passed:
                    row.status = f"failed parity: {parity.describe()}"
            except Exception as exc:  # a conversion that breaks keeps its row in the table, with the reason
                row.status = f"failed: {type(exc).__name__}: {exc}"
            if row.status != "ok":  # its file goes, so it is not timed: LiteRT re-reads the file per batch size
                target_path.unlink(missing_ok=True)
                table.append(row)
                continue
            runners[name] = runner
            held_out_scores[name] = probabilities
            row.files = [target_path.name]
            if name in NATIVE_VARIANTS and (conversion.format, conversion.precision) in (("onnx", "fp32"),
                                                                                           ("tflite", "int8")):
                step(f"variant '{name}': native weights")
                row.native = write_native_variant(target_path, staging, name, runner, rows.parity_x)
            if conversion.format == "onnx":
                step(f"variant '{name}': raw-field graph")
                row.raw = write_raw_variant(encoder, target_path, staging, f"{name}.raw.onnx",
                                            records=rows.parity_records, reference=runner,
                                            precision=conversion.precision,
                                            metadata=raw_metadata(name, manifest["threshold"]["value"],
                                                                  manifest["encoder"]))
            if source.name != "original":
                keras_name = f"{source.name}.keras"
                if not (staging / keras_name).exists():
                    model.save(staging / keras_name)
                    sources[source.name] = {"file": describe_file(staging, keras_name), "method": how,
                                            "config": asdict(source.config)}
                row.files.append(keras_name)
            row.bytes = (staging / row.files[0]).stat().st_size  # the file the runtime loads
            table.append(row)
        for _, _, onnx_path, _ in built.values():
            onnx_path.unlink(missing_ok=True)
        step("timing every variant")
        _time_all(table, runners, rows.test_x)

        best = recommend(table, objective, max_auc_drop)
        if "monitor" in manifest:
            step("monitoring profile: score bins of every variant")
            manifest = {**manifest, "monitor": add_variant_scores(bundle, staging, manifest, held_out_scores,
                                                                  rows.test_y)}
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



def compress_file(bundle: str | Path, data: str | Path, *, sep: str | None = None, **options) -> dict:
    """:func:`compress_bundle` on the bundle's training file at ``data`` (read with the bundle's schema)."""
    from intent_edge.data.io import load_dataset
    from intent_edge.data.schema import Schema

    manifest = read_manifest(bundle)
    require_session_bundle(bundle, manifest, "compression")
    dataset = load_dataset(data, sep=sep, schema=Schema.from_json(manifest["schema"]))
    return compress_bundle(bundle, dataset, **options)
