"""The compression registry: every source model and every conversion, each in one row.

A variant is a *source* (the original model, or one retrained smaller) put through a *conversion*.
Each row names its builder and a small frozen config dataclass whose defaults are the settings used;
``dataclasses.asdict`` of both configs goes into the variant's manifest entry. A conversion row also
carries its format (which is also its file suffix and picks its runtime backend), its precision (which
picks its parity tolerance) and, per compression target, the sources it is built from. Everything that
plans, builds, names or checks a variant reads these two tables: a new conversion is one row.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from intent_edge.compress.distill import LABEL_WEIGHT
from intent_edge.errors import UsageError
from intent_edge.parity import TOLERANCES, Tolerance


# ---- configs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoSettings:
    """For a source or conversion that has nothing to set."""


@dataclass(frozen=True)
class SparsityConfig:
    target_sparsity: float = 0.8


@dataclass(frozen=True)
class UnitsConfig:
    keep_fraction: float = 0.5
    label_weight: float = LABEL_WEIGHT
    importance_rows: int = 4096


@dataclass(frozen=True)
class DistillConfig:
    hidden: tuple[int, ...] = (16, 8)
    label_weight: float = LABEL_WEIGHT


@dataclass(frozen=True)
class Int8StaticConfig:
    calibration_rows: int = 4096
    calibration_batch: int = 256
    keep_first_layer_fp32: bool = True


@dataclass(frozen=True)
class LiteRTInt8Config:
    representative_rows: int = 1000


@dataclass(frozen=True)
class TensorRTConfig:
    max_batch: int = 65536
    opt_batch: int = 4096
    workspace_bytes: int = 1 << 30


# ---- what a builder gets -----------------------------------------------------------------------------
@dataclass
class SourceInput:
    original: object  # the bundle's Keras model
    data: tuple  # (fit_x, fit_y, validation_x, validation_y), encoded
    recipe: object  # the bundle's MLPRecipe
    seed: int


@dataclass
class ConversionInput:
    model: object  # the source's Keras model
    onnx_fp32: Path  # the source exported as fp32 ONNX
    target: Path  # where the variant's file goes
    calibration: np.ndarray  # encoded training rows


# ---- sources -----------------------------------------------------------------------------------------
def _original(given: SourceInput, config: NoSettings):
    return given.original, {"method": "original"}


def _sparse(given: SourceInput, config: SparsityConfig):
    from intent_edge.compress.pruning import magnitude_prune, sparsity

    model = magnitude_prune(given.original, config.target_sparsity, given.data, given.recipe, given.seed)
    return model, {"method": "magnitude pruning", "sparsity": sparsity(model)}


def _units(given: SourceInput, config: UnitsConfig):
    from intent_edge.compress.pruning import prune_units

    model, smaller = prune_units(given.original, config.keep_fraction, given.data, given.recipe, given.seed,
                                 label_weight=config.label_weight, importance_rows=config.importance_rows)
    return model, {"method": "structured pruning", "hidden": list(smaller.hidden)}


def _distilled(given: SourceInput, config: DistillConfig):
    from intent_edge.compress.distill import distill

    model, student = distill(given.original, config.hidden, given.data, given.recipe, given.seed,
                             label_weight=config.label_weight)
    return model, {"method": "distillation", "hidden": list(student.hidden)}


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    build: Callable[[SourceInput, object], tuple[object, dict]]
    config: object


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("original", "the bundle's trained model", _original, NoSettings()),
    Source("sparse-80", "unstructured magnitude pruning to 80% zeros, fine-tuned", _sparse, SparsityConfig(0.8)),
    Source("units-50", "structured pruning: half of each hidden layer's units removed, fine-tuned", _units,
           UnitsConfig(0.5)),
    Source("distilled", "a 16-8 student distilled from the original", _distilled, DistillConfig((16, 8))),
)}


# ---- conversions -------------------------------------------------------------------------------------
def _copy(given: ConversionInput, config: NoSettings) -> dict:
    shutil.copyfile(given.onnx_fp32, given.target)
    return {"method": "onnx-fp32"}


def _int8_dynamic(given: ConversionInput, config: NoSettings) -> dict:
    from intent_edge.compress.quantize import int8_dynamic

    return int8_dynamic(given.onnx_fp32, given.target)


def _int8_static(given: ConversionInput, config: Int8StaticConfig) -> dict:
    from intent_edge.compress.quantize import int8_static

    return int8_static(given.onnx_fp32, given.target, given.calibration, rows=config.calibration_rows,
                       batch_size=config.calibration_batch, keep_first_layer_fp32=config.keep_first_layer_fp32)


def _fp16(given: ConversionInput, config: NoSettings) -> dict:
    from intent_edge.compress.quantize import fp16

    return fp16(given.onnx_fp32, given.target)


def _litert_fp32(given: ConversionInput, config: NoSettings) -> dict:
    from intent_edge.compress.litert import litert_fp32

    return litert_fp32(given.model, given.target)


def _litert_int8(given: ConversionInput, config: LiteRTInt8Config) -> dict:
    from intent_edge.compress.litert import litert_int8

    return litert_int8(given.model, given.target, given.calibration, rows=config.representative_rows)


def _tensorrt(precision: str):
    def build(given: ConversionInput, config: TensorRTConfig) -> dict:
        """An engine built from the ONNX model TensorRT's version calls for (see compress.tensorrt)."""
        from intent_edge.compress import quantize, tensorrt

        source = tensorrt.engine_source(precision, tensorrt.tensorrt_major())
        intermediate = given.target.with_suffix(f".{source}.onnx")
        try:
            if source == "fp16":
                how = quantize.fp16(given.onnx_fp32, intermediate)
            elif source == "qdq":
                how = quantize.int8_static(given.onnx_fp32, intermediate, given.calibration)
            else:
                shutil.copyfile(given.onnx_fp32, intermediate)
                how = {"method": "onnx-fp32"}
            return {**tensorrt.build_engine(intermediate, given.target, width=given.calibration.shape[1],
                                            precision=precision, max_batch=config.max_batch,
                                            opt_batch=config.opt_batch, workspace_bytes=config.workspace_bytes),
                    "onnx": how}
        finally:
            intermediate.unlink(missing_ok=True)

    return build


@dataclass(frozen=True)
class Conversion:
    name: str
    format: str  # onnx, tflite or engine: the runtime backend's model format and the file suffix
    precision: str  # fp32, fp16 or int8: picks the parity tolerance
    build: Callable[[ConversionInput, object], dict]
    config: object
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target -> sources built this way

    @property
    def suffix(self) -> str:
        return self.format

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.precision]


CONVERSIONS: dict[str, Conversion] = {c.name: c for c in (
    # The original's onnx-fp32 is the bundle's own fp32 variant, so it is only built for smaller sources.
    Conversion("onnx-fp32", "onnx", "fp32", _copy, NoSettings(), {"cpu": ("sparse-80", "units-50", "distilled")}),
    Conversion("int8-dynamic", "onnx", "int8", _int8_dynamic, NoSettings(), {"cpu": ("original",)}),
    Conversion("int8-static", "onnx", "int8", _int8_static, Int8StaticConfig(),
               {"cpu": ("original", "sparse-80", "units-50")}),
    Conversion("fp16", "onnx", "fp16", _fp16, NoSettings(), {"cpu": ("original",), "gpu": ("original",)}),
    Conversion("litert-fp32", "tflite", "fp32", _litert_fp32, NoSettings(),
               {"cpu": ("original",), "litert": ("original", "units-50")}),
    Conversion("litert-int8", "tflite", "int8", _litert_int8, LiteRTInt8Config(),
               {"cpu": ("original", "units-50", "distilled"), "litert": ("original", "units-50", "distilled")}),
    Conversion("trt-fp16", "engine", "fp16", _tensorrt("fp16"), TensorRTConfig(),
               {"gpu": ("original", "units-50", "distilled")}),
    Conversion("trt-int8", "engine", "int8", _tensorrt("int8"), TensorRTConfig(), {"gpu": ("original", "units-50")}),
)}
TARGETS = ("cpu", "litert", "gpu")


def variant_name(source: str, conversion: str) -> str:
    if source == "original":
        return conversion
    return source if conversion == "onnx-fp32" else f"{source}-{conversion}"


def _closest(name: str) -> str:
    close = difflib.get_close_matches(name, [*SOURCES, *CONVERSIONS], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def plan_for(target: str, methods: list[str] | None = None) -> list[tuple[Source, Conversion]]:
    """The (source, conversion) pairs ``target`` builds, source by source, narrowed to ``methods`` (names
    of sources and/or conversions) when given."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose {', '.join(TARGETS)}")
    if target == "gpu":
        from intent_edge.compress.tensorrt import require_gpu_build

        require_gpu_build()
    methods = list(methods or [])
    unknown = [m for m in methods if m not in SOURCES and m not in CONVERSIONS]
    if unknown:
        raise UsageError("unknown compression method(s): " + ", ".join(f"{m!r}{_closest(m)}" for m in unknown)
                         + f"; sources: {', '.join(SOURCES)}; conversions: {', '.join(CONVERSIONS)}")
    sources = [m for m in methods if m in SOURCES] or list(SOURCES)
    conversions = [m for m in methods if m in CONVERSIONS] or list(CONVERSIONS)
    plan = [(SOURCES[s], c) for s in SOURCES for c in CONVERSIONS.values()
            if s in sources and c.name in conversions and s in c.targets.get(target, ())]
    if not plan:
        raise UsageError(f"the methods {', '.join(methods)} select nothing for target {target}; it builds: "
                         + ", ".join(sorted({variant_name(s.name, c.name) for s, c in plan_for(target)})))
    return plan
