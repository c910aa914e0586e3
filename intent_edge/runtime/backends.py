"""Inference backends: one small runner interface, one registry, libraries imported only when used.

A runner turns an encoded float32 matrix ``(n, width)`` into ``n`` probabilities. Backends are listed
once in :data:`BACKENDS`, which the predictor, the CLI and (later) the benchmark read. A backend whose
library is missing raises :class:`BackendUnavailable` with the extra to install, not an ImportError.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from intent_edge.errors import BackendUnavailable, BundleError


class Runner(Protocol):
    width: int
    description: str

    def infer(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (float32, shape ``(n,)``) for an encoded float32 matrix ``(n, width)``."""

    def infer_one(self, features: np.ndarray) -> float:
        """The probability for one encoded row given as a ``(1, width)`` matrix: the single-record path."""


@dataclass(frozen=True)
class Backend:
    name: str
    model_format: str  # the variant format it runs, as written in the manifest
    module: str  # the Python module it needs
    install_hint: str
    load: Callable[..., Runner]

    def is_available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        if not self.is_available():
            raise BackendUnavailable(f"backend '{self.name}' needs the Python module '{self.module}', which is not "
                                     f"installed: {self.install_hint}")


def onnxruntime_distributions() -> list[str]:
    """Which ONNX Runtime distributions are installed (both provide the one `onnxruntime` module)."""
    from importlib import metadata

    found = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(name)
            found.append(name)
        except metadata.PackageNotFoundError:
            pass
    return found


PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeRunner:
    """ONNX Runtime: TensorRT, then CUDA, then CPU execution providers, whichever this build offers.

    The providers the session really got are checked against those asked for: a CPU `onnxruntime`
    installed beside `onnxruntime-gpu` silently drops the GPU providers, so both being installed is an
    error, and a GPU provider that was offered but not taken is reported in ``description``."""

    def __init__(self, path: Path, width: int, *, threads: int | None = None):
        self.session, self.description = onnx_session(path, threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(f"{path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        shape = inputs[0].shape
        if inputs[0].type != "tensor(float)" or len(shape) != 2 or shape[1] != width:
            raise BundleError(f"{path}: model input is {inputs[0].type} {shape}; the encoder produces "
                              f"float [batch, {width}]")
        self.width = width
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def infer(self, features: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: features})[0].reshape(-1)

    def infer_one(self, features: np.ndarray) -> float:
        return float(self.session.run([self.output_name], {self.input_name: features})[0][0, 0])


def onnx_session(path: Path, threads: int | None = None):
    """An ONNX Runtime session on the best providers this build offers, and a description saying which
    it got. Refuses two ONNX Runtime distributions side by side and models onnx.checker rejects."""
    import onnxruntime as ort

    if len(onnxruntime_distributions()) > 1:
        raise BackendUnavailable("both onnxruntime and onnxruntime-gpu are installed; they overwrite each "
                                 "other's `onnxruntime` module and the GPU providers silently disappear: "
                                 "pip uninstall one of them (keep onnxruntime-gpu on an NVIDIA host)")
    _check_onnx(path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    available = ort.get_available_providers()
    providers = [p for p in PREFERRED_PROVIDERS if p in available]
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for malformed models
        raise BundleError(f"{path}: ONNX Runtime cannot load this model ({exc})") from None
    got = session.get_providers()
    dropped = [p for p in providers if p not in got]
    return session, f"onnxruntime {ort.__version__} ({', '.join(got)})" + (
        f"; offered but not taken: {', '.join(dropped)}" if dropped else "")


def _check_onnx(path: Path) -> None:
    """Validate an ONNX file with onnx.checker before any runtime touches it, where the onnx package is
    installed (it is with the train extra; a bare runtime relies on ONNX Runtime's own loader checks).
    The checker also refuses external-data references that leave the model's directory."""
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises ValidationError, and plain errors for unreadable external data
        raise BundleError(f"{path}: refused by onnx.checker ({str(exc).splitlines()[0][:300]})") from None


class LiteRTRunner:
    """LiteRT (ai-edge-litert). An interpreter is not thread-safe, so each thread gets its own."""

    def __init__(self, path: Path, width: int, *, threads: int | None = None):
        self.path, self.width, self.threads = str(path), width, threads
        self._local = threading.local()
        try:
            interpreter = self._thread_state(1)[0]
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{path}: LiteRT cannot load this model ({exc})") from None
        detail = interpreter.get_input_details()
        if len(detail) != 1 or list(detail[0]["shape_signature"])[1:] != [width] or detail[0]["dtype"] != np.float32:
            raise BundleError(f"{path}: model input is {detail[0]['dtype'].__name__} {list(detail[0]['shape_signature'])};"
                              f" the encoder produces float32 [batch, {width}]")
        self.description = f"LiteRT ({threads or 'default'} threads)"

    def _thread_state(self, rows: int) -> list:
        """This thread's [interpreter, planned batch size, input index, output index], planned for ``rows``."""
        state = getattr(self._local, "state", None)
        if state is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=self.path, num_threads=self.threads)
            state = self._local.state = [interpreter, None, interpreter.get_input_details()[0]["index"],
                                         interpreter.get_output_details()[0]["index"]]
        if state[1] != rows:  # resizing re-plans memory: only when the batch size changes
            state[0].resize_tensor_input(state[2], [rows, self.width])
            state[0].allocate_tensors()
            state[1] = rows
        return state

    def infer(self, features: np.ndarray) -> np.ndarray:
        interpreter, _, input_index, output_index = self._thread_state(len(features))
        interpreter.set_tensor(input_index, features)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).reshape(-1).copy()

    def infer_one(self, features: np.ndarray) -> float:
        interpreter, _, input_index, output_index = self._thread_state(1)
        interpreter.set_tensor(input_index, features)
        interpreter.invoke()
        return float(interpreter.get_tensor(output_index)[0, 0])


_ORT_HINT = "pip install 'intent-edge[cpu]' (or 'intent-edge[gpu]' on an NVIDIA host; never both)"
_TRT_HINT = ("pip install 'intent-edge[tensorrt]' on an NVIDIA host (tensorrt and cuda-python; TensorRT's "
             "libraries are downloaded from pypi.nvidia.com)")


def _tensorrt_runner(path: Path, width: int, *, threads: int | None = None) -> Runner:
    """Native TensorRT engines (imported only here: tensorrt and cuda-python are an NVIDIA host's extra)."""
    try:
        from intent_edge.runtime.trt_engine import TensorRTRunner

        return TensorRTRunner(path, width, threads=threads)
    except ImportError as exc:
        raise BackendUnavailable(f"backend 'tensorrt' cannot start ({exc}): {_TRT_HINT}") from None

BACKENDS: dict[str, Backend] = {
    "onnxruntime": Backend("onnxruntime", "onnx", "onnxruntime", _ORT_HINT, OnnxRuntimeRunner),
    "litert": Backend("litert", "tflite", "ai_edge_litert", "pip install 'intent-edge[cpu]'", LiteRTRunner),
    "tensorrt": Backend("tensorrt", "engine", "tensorrt", _TRT_HINT, _tensorrt_runner),
}


def backend_for(model_format: str, requested: str = "auto") -> Backend:
    """The backend to run a variant of ``model_format``: the one requested, or the first available."""
    if requested != "auto":
        if requested not in BACKENDS:
            raise BackendUnavailable(f"unknown backend '{requested}'; known: {', '.join(BACKENDS)}")
        backend = BACKENDS[requested]
        if backend.model_format != model_format:
            raise BackendUnavailable(f"backend '{requested}' runs {backend.model_format} models, not {model_format}")
        backend.require()
        return backend
    candidates = [b for b in BACKENDS.values() if b.model_format == model_format]
    if not candidates:
        raise BackendUnavailable(f"no backend runs {model_format} models")
    for backend in candidates:
        if backend.is_available():
            return backend
    candidates[0].require()
    raise AssertionError("unreachable")
