"""TensorRT engines from ONNX variants, for ``intent-edge compress --target gpu``.

TensorRT 10 and 11 differ in how precision is chosen, so the build branches on the major version:

* TensorRT 11 networks are always strongly typed: every tensor keeps the type the ONNX model gives
  it, and the builder flags FP16/INT8 are gone. FP16 comes from an FP16 ONNX model (weights and
  arithmetic in float16, inputs and outputs kept float32) and INT8 from explicit Q/DQ nodes (the
  static-QDQ model that ``int8-static`` writes).
* TensorRT 10 builds a weakly typed network from the float32 ONNX model and takes FP16 from
  ``BuilderFlag.FP16``; INT8 comes from the same Q/DQ model, which needs ``BuilderFlag.INT8`` to be
  honoured there.

Either way the engine has one optimisation profile over the batch dimension (1 to ``max_batch``,
tuned for ``opt_batch``), float32 input and output, and is judged like every other variant: parity
against its Keras source at its precision's tolerance, ROC-AUC against the original.
"""

from __future__ import annotations

from pathlib import Path

from intent_edge.errors import UsageError

MAX_BATCH = 65536
OPT_BATCH = 4096
WORKSPACE_BYTES = 1 << 30


def tensorrt_major() -> int:
    import tensorrt as trt

    return int(trt.__version__.split(".")[0])


def require_gpu_build() -> None:
    """Refuse early, with the reason, on a host that cannot build engines."""
    from intent_edge.errors import BackendUnavailable
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.trt_engine import cuda_device_count

    BACKENDS["tensorrt"].require()
    if cuda_device_count() < 1:
        raise BackendUnavailable("target gpu builds TensorRT engines, which needs an NVIDIA GPU, its driver and "
                                 f"cuda-python; cuda-python sees no GPU here ({BACKENDS['tensorrt'].install_hint})")


def engine_source(precision: str, major: int) -> str:
    """Which ONNX model an engine of ``precision`` is built from on TensorRT ``major``: ``fp32``,
    ``fp16`` (an FP16 ONNX model) or ``qdq`` (the static Q/DQ model)."""
    if precision == "int8":
        return "qdq"
    if precision == "fp16":
        return "fp16" if major >= 11 else "fp32"
    if precision == "fp32":
        return "fp32"
    raise UsageError(f"unknown engine precision {precision!r}; choose fp32, fp16 or int8")


def build_engine(onnx_path: Path, engine_path: Path, *, width: int, precision: str, max_batch: int = MAX_BATCH,
                 opt_batch: int = OPT_BATCH, workspace_bytes: int = WORKSPACE_BYTES) -> dict:
    """Build and serialize an engine from ``onnx_path`` (the model :func:`engine_source` names)."""
    import tensorrt as trt

    major = tensorrt_major()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in 10 and 11; 11 is strongly typed
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    flags = []
    if major < 11:  # weakly typed: the builder flags allow the lower precisions
        if precision == "fp16":
            flags.append("FP16")
        if precision == "int8":
            flags.append("INT8")
        for flag in flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, width), (min(opt_batch, max_batch), width), (max_batch, width))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT {trt.__version__} could not build a {precision} engine (see its log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    return {"method": f"tensorrt-{precision}", "tensorrt": trt.__version__,
            "typing": "strongly typed (TensorRT 11)" if major >= 11 else f"builder flags {flags or ['none']}",
            "built_from": engine_source(precision, major), "profile": {"input": name, "min": 1,
                                                                        "opt": min(opt_batch, max_batch),
                                                                        "max": max_batch},
            "device": _device_name()}


def _device_name() -> str:
    from cuda.bindings import runtime as cudart

    error, properties = cudart.cudaGetDeviceProperties(0)
    return properties.name.decode(errors="replace") if error == cudart.cudaError_t.cudaSuccess else "unknown"
