"""Inference backends: one runner class per backend, one registry, libraries imported only when used.

A runner loads one graph file and runs it: ``run(feeds by input name) -> outputs``. Every graph the
project runs goes through one: session models (encoded rows in, probabilities out), clickstream steps,
a hybrid model's context start, and the graphs that training, compression, bench and the Triton export
check or time. Session models have one float32 input ``[batch, width]`` and one output; for them a runner
also offers ``infer`` (a batch) and ``infer_one`` (the single-record path: no feed dict is built, so it
costs what a bare call costs). A new backend is one runner class and one row in :data:`BACKENDS`.
A backend whose library is missing raises :class:`BackendUnavailable` with the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from intent_edge.errors import BackendUnavailable, BundleError


class Runner(Protocol):
    description: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """The graph's outputs (all, in graph order, or those named) for inputs given by name."""

    def signature(self) -> dict:
        """``{"inputs": [...], "outputs": [...]}``, each ``{"name", "dtype", "shape"}`` (None: dynamic)."""

    def infer(self, features: np.ndarray) -> np.ndarray:
        """Session models: probabilities (float32, ``(n,)``) for an encoded float32 matrix ``(n, width)``."""

    def infer_one(self, features: np.ndarray) -> float:
        """Session models: the probability for one encoded row given as a ``(1, width)`` matrix."""


@dataclass(frozen=True)
class Backend:
    """One way to run a variant. A backend runs the variant's ``file_key`` file, where the variant has one
    (and, with a ``model_format``, is of that format): ONNX Runtime, LiteRT and TensorRT run the variant's
    own file; the native backend runs the weights file beside variants of several formats."""

    name: str
    model_format: str | None  # the variant format it runs, as the manifest writes it (also the file suffix)
    module: str  # the Python module it needs
    install_hint: str
    load: Callable[..., Runner]  # load(path, *, threads=None) -> Runner
    file_key: str = "file"  # the variant entry's key of the file this backend loads
    missing_file_hint: str = ""  # what to do when a variant has no such file

    def variant_file(self, entry: Mapping) -> dict | None:
        """The manifest file entry this backend runs for the variant ``entry``, or None if it cannot."""
        if self.model_format is not None and entry.get("format") != self.model_format:
            return None
        return entry.get(self.file_key)

    def is_available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        if not self.is_available():
            raise BackendUnavailable(f"backend '{self.name}' needs the Python module '{self.module}', which is not "
                                     f"installed: {self.install_hint}")

    def load_model(self, path: Path, width: int, *, threads: int | None = None) -> Runner:
        """A session model: checked to take float32 ``[batch, width]`` and give one output."""
        self.require()
        runner = self.load(path, threads=threads)
        check_session_model(runner, width, path)
        return runner


def check_session_model(runner: Runner, width: int, path: Path) -> None:
    signature = runner.signature()
    inputs, outputs = signature["inputs"], signature["outputs"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise BundleError(f"{path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
    shape = inputs[0]["shape"]
    if inputs[0]["dtype"] != "float32" or len(shape) != 2 or shape[1] != width:
        raise BundleError(f"{path}: model input is {inputs[0]['dtype']} {shape}; the encoder produces "
                          f"float [batch, {width}]")


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
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
               "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
               "tensor(bool)": "bool", "tensor(string)": "string"}


class OnnxRuntimeRunner:
    """ONNX Runtime: TensorRT, then CUDA, then CPU execution providers, whichever this build offers.

    The providers the session really got are checked against those asked for: a CPU `onnxruntime`
    installed beside `onnxruntime-gpu` silently drops the GPU providers, so both being installed is an
    error, and a GPU provider that was offered but not taken is reported in ``description``. Models
    onnx.checker rejects are refused before ONNX Runtime sees them (where onnx is installed)."""

    def __init__(self, path: Path, *, threads: int | None = None):
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
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for malformed models
            raise BundleError(f"{path}: ONNX Runtime cannot load this model ({exc})") from None
        got = self.session.get_providers()
        dropped = [p for p in providers if p not in got]
        self.description = f"onnxruntime {ort.__version__} ({', '.join(got)})" + (
            f"; offered but not taken: {', '.join(dropped)}" if dropped else "")
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._first_input, self._first_output = self.input_names[0], [self.output_names[0]]

    def run(self, feeds, outputs=None):
        return self.session.run(None if outputs is None else list(outputs), dict(feeds))

    def signature(self) -> dict:
        def describe(tensor):
            return {"name": tensor.name, "dtype": _ORT_DTYPES.get(tensor.type, tensor.type),
                    "shape": [d if isinstance(d, int) else None for d in tensor.shape]}

        return {"inputs": [describe(t) for t in self.session.get_inputs()],
                "outputs": [describe(t) for t in self.session.get_outputs()]}

    def infer(self, features: np.ndarray) -> np.ndarray:
        return self.session.run(self._first_output, {self._first_input: features})[0].reshape(-1)

    def infer_one(self, features: np.ndarray) -> float:
        return float(self.session.run(self._first_output, {self._first_input: features})[0][0, 0])


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


XNNPACK_BANNER = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_banner_lock = threading.Lock()
_banner_seen = False


@contextlib.contextmanager
def without_xnnpack_banner() -> Iterator[None]:
    """Keep LiteRT's XNNPACK banner off standard error and pass everything else on.

    LiteRT prints the banner once per process, with C stdio straight to file descriptor 2, when the first
    interpreter allocates its tensors; no setting turns it off short of dropping XNNPACK. Until it has been
    seen, file descriptor 2 is caught around the calls that may print it, and every other line caught
    (LiteRT's real errors, another thread's output) is written back. After that this costs nothing.
    """
    global _banner_seen
    if _banner_seen:
        yield
        return
    with _banner_lock, tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().splitlines(keepends=True)
            kept = [line for line in lines if line.rstrip(b"\r\n") != XNNPACK_BANNER]
            _banner_seen = _banner_seen or len(kept) < len(lines)
            if kept:
                os.write(2, b"".join(kept))


class LiteRTRunner:
    """LiteRT (ai-edge-litert). An interpreter is not thread-safe, so each thread gets its own, one per
    batch size it runs (up to ``PLANNED_SHAPES``, the least recently used let go): resizing re-plans
    memory, and predict's single rows alternating with explain's coalition batches would otherwise
    re-plan on every call. Tensors are addressed by index; names come from the model's
    ``serving_default`` signature where it has one, else from the tensors themselves."""

    PLANNED_SHAPES = 4

    def __init__(self, path: Path, *, threads: int | None = None):
        self.path, self.threads = str(path), threads
        self._local = threading.local()
        try:
            with without_xnnpack_banner():
                interpreter = self._new_interpreter()
                inputs, outputs = _litert_tensors(interpreter)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise BundleError(f"{path}: LiteRT cannot load this model ({exc})") from None
        self._local.planned = OrderedDict({None: interpreter})  # batch size -> interpreter (None: unplanned)
        self.input_names = tuple(inputs)
        self.output_names = tuple(outputs)
        self._inputs, self._outputs = inputs, outputs
        self._input_indices = [detail["index"] for detail in inputs.values()]
        self._first_input = self._input_indices[0]
        self._first_output = next(iter(outputs.values()))["index"]
        self.description = f"LiteRT ({threads or 'default'} threads)"

    def _new_interpreter(self):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=self.path, num_threads=self.threads)

    def interpreter(self, rows: int):
        """This thread's interpreter, planned for ``rows`` rows in every input (bench's bare invoke uses it)."""
        planned = getattr(self._local, "planned", None)
        if planned is None:
            planned = self._local.planned = OrderedDict()
        interpreter = planned.get(rows)
        if interpreter is not None:
            planned.move_to_end(rows)
            return interpreter
        with without_xnnpack_banner():
            interpreter = planned.pop(None, None) or self._new_interpreter()  # the unplanned one first
            for detail in self._inputs.values():
                interpreter.resize_tensor_input(detail["index"], [rows, *list(detail["shape_signature"])[1:]])
            interpreter.allocate_tensors()
        planned[rows] = interpreter
        while len(planned) > self.PLANNED_SHAPES:
            planned.popitem(last=False)
        return interpreter

    def run(self, feeds, outputs=None):
        interpreter = self.interpreter(len(next(iter(feeds.values()))))
        for name, value in feeds.items():
            interpreter.set_tensor(self._inputs[name]["index"], value)
        interpreter.invoke()
        return [interpreter.get_tensor(self._outputs[name]["index"]) for name in (outputs or self.output_names)]

    def signature(self) -> dict:
        def describe(name, detail):
            return {"name": name, "dtype": np.dtype(detail["dtype"]).name,
                    "shape": [None if d < 0 else int(d) for d in detail["shape_signature"]]}

        return {"inputs": [describe(n, d) for n, d in self._inputs.items()],
                "outputs": [describe(n, d) for n, d in self._outputs.items()]}

    def infer(self, features: np.ndarray) -> np.ndarray:
        interpreter = self.interpreter(len(features))
        interpreter.set_tensor(self._first_input, features)
        interpreter.invoke()
        return interpreter.get_tensor(self._first_output).reshape(-1)

    def infer_one(self, features: np.ndarray) -> float:
        interpreter = self.interpreter(1)
        interpreter.set_tensor(self._first_input, features)
        interpreter.invoke()
        return float(interpreter.get_tensor(self._first_output)[0, 0])


def _litert_tensors(interpreter) -> tuple[dict, dict]:
    """Input and output details by name: the ``serving_default`` signature's names where the model has
    one (a signature runner holds views of the tensors, which would block resizing: it is let go)."""
    details = {d["index"]: d for d in (*interpreter.get_input_details(), *interpreter.get_output_details())}
    if "serving_default" in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner("serving_default")
        inputs = {name: details[d["index"]] for name, d in runner.get_input_details().items()}
        outputs = {name: details[d["index"]] for name, d in runner.get_output_details().items()}
        del runner
        return inputs, outputs
    return ({d["name"]: d for d in interpreter.get_input_details()},
            {d["name"]: d for d in interpreter.get_output_details()})


_ORT_HINT = "pip install 'intent-edge[cpu]' (or 'intent-edge[gpu]' on an NVIDIA host; never both)"
_TRT_HINT = ("pip install 'intent-edge[tensorrt]' on an NVIDIA host (tensorrt and cuda-python; TensorRT's "
             "libraries are downloaded from pypi.nvidia.com)")


def _tensorrt_runner(path: Path, *, threads: int | None = None) -> Runner:
    """Native TensorRT engines (imported only here: tensorrt and cuda-python are an NVIDIA host's extra)."""
    try:
        from intent_edge.runtime.trt_engine import TensorRTRunner
    except ImportError as exc:
        raise BackendUnavailable(f"backend 'tensorrt' cannot start ({exc}): {_TRT_HINT}") from None
    return TensorRTRunner(path, threads=threads)


def _native_runner(path: Path, *, threads: int | None = None) -> Runner:
    from intent_edge.runtime.native import NativeRunner

    return NativeRunner(path, threads=threads)


_NATIVE_HINT = "reinstall intent-edge where a C compiler is available (the extension is built at install time)"

# In order of preference for backend="auto": the compiled kernel where the variant has its weights and the
# extension is built, then the interpreters.
BACKENDS: dict[str, Backend] = {
    "native": Backend("native", None, "intent_edge.runtime._native", _NATIVE_HINT, _native_runner, "native",
                      "backend 'native': this variant has no native weights file; rerun `intent-edge compress` "
                      "(or train again) to write it; bundles written before the native backend have none"),
    "onnxruntime": Backend("onnxruntime", "onnx", "onnxruntime", _ORT_HINT, OnnxRuntimeRunner),
    "litert": Backend("litert", "tflite", "ai_edge_litert", "pip install 'intent-edge[cpu]'", LiteRTRunner),
    "tensorrt": Backend("tensorrt", "engine", "tensorrt", _TRT_HINT, _tensorrt_runner),
}


def backend_for(entry: Mapping, requested: str = "auto") -> tuple[Backend, dict]:
    """The backend to run the variant ``entry`` (a manifest variant entry) and the file it loads: the one
    requested, or the first available that can run it."""
    if requested != "auto":
        if requested not in BACKENDS:
            raise BackendUnavailable(f"unknown backend '{requested}'; known: {', '.join(BACKENDS)}")
        backend = BACKENDS[requested]
        file = backend.variant_file(entry)
        if file is None:
            raise BackendUnavailable(backend.missing_file_hint or f"backend '{requested}' runs "
                                     f"{backend.model_format} models, not {entry.get('format')}")
        backend.require()
        return backend, file
    candidates = [(b, b.variant_file(entry)) for b in BACKENDS.values() if b.variant_file(entry) is not None]
    if not candidates:
        raise BackendUnavailable(f"no backend runs {entry.get('format')} models")
    for backend, file in candidates:
        if backend.is_available():
            return backend, file
    candidates[-1][0].require()
    raise AssertionError("unreachable")


def load_runner(backend: str, path: Path, *, threads: int | None = None) -> Runner:
    """A graph on a named backend (after checking its library is installed)."""
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    BACKENDS[backend].require()
    return BACKENDS[backend].load(path, threads=threads)
