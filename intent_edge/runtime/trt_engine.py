"""Native TensorRT engines in the runtime: a serialized engine from the bundle, run with cuda-python.

An engine is specific to the TensorRT version and the GPU model it was built on (the manifest records
both); one that does not match this host fails to deserialize and is reported as such, with the way to
rebuild it (``intent-edge compress BUNDLE --target gpu`` on this host). Device buffers are allocated
once per batch size seen (growing only), so repeated calls allocate nothing. One execution context
serves all threads, one call at a time: a context holds its input shapes and tensor addresses.

Exercised only on an NVIDIA host with ``tensorrt`` and ``cuda-python`` installed (extra ``tensorrt``);
elsewhere the backend reports itself unavailable.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from intent_edge.errors import BackendUnavailable, BundleError


def cuda_device_count() -> int:
    """NVIDIA GPUs visible through cuda-python; 0 without cuda-python, a driver or a GPU."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return 0
    error, count = cudart.cudaGetDeviceCount()
    return count if error == cudart.cudaError_t.cudaSuccess else 0


def _checked(result):
    """cuda-python returns ``(error, *values)``: raise on an error, return the value(s)."""
    from cuda.bindings import runtime as cudart

    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA call failed: {cudart.cudaGetErrorName(error)[1].decode()}")
    return values[0] if len(values) == 1 else values


class TensorRTRunner:
    """One serialized TensorRT engine with one float32 input ``(batch, width)`` and one output."""

    def __init__(self, path: Path, *, threads: int | None = None):
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self._cudart = cudart
        if cuda_device_count() < 1:
            raise BackendUnavailable("TensorRT needs an NVIDIA GPU and its driver; cuda-python sees none")
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            raise BundleError(f"{path}: TensorRT {trt.__version__} cannot load this engine (engines are tied to the "
                              "TensorRT version and GPU model they were built on): rebuild it on this host with "
                              "intent-edge compress BUNDLE --target gpu")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(f"{path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        shape = tuple(engine.get_tensor_shape(self.input_name))
        for name in (self.input_name, self.output_name):
            if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise BundleError(f"{path}: tensor {name} is {engine.get_tensor_dtype(name)}; expected float32 I/O")
        if len(shape) != 2 or shape[1] < 1:
            raise BundleError(f"{path}: engine input is {shape}; expected float32 [batch, width]")
        width = int(shape[1])
        self.max_batch = int(engine.get_tensor_profile_shape(self.input_name, 0)[2][0])
        self.engine, self.width = engine, width
        self.input_names, self.output_names = (self.input_name,), (self.output_name,)
        self.context = engine.create_execution_context()
        self.stream = _checked(cudart.cudaStreamCreate())
        self._lock = threading.Lock()
        self._capacity, self._device_in, self._device_out = 0, None, None
        properties = _checked(cudart.cudaGetDeviceProperties(0))
        self.description = (f"TensorRT {trt.__version__} on {properties.name.decode(errors='replace')} "
                            f"(batch up to {self.max_batch})")

    def _reserve(self, rows: int) -> None:
        if rows <= self._capacity:
            return
        self._free()
        self._device_in = _checked(self._cudart.cudaMalloc(rows * self.width * 4))
        self._device_out = _checked(self._cudart.cudaMalloc(rows * 4))
        self._capacity = rows

    def _free(self) -> None:
        for pointer in (self._device_in, self._device_out):
            if pointer is not None:
                self._cudart.cudaFree(pointer)
        self._capacity, self._device_in, self._device_out = 0, None, None

    def infer(self, features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        out = np.empty(len(features), dtype=np.float32)
        cudart = self._cudart
        with self._lock:
            for start in range(0, len(features), self.max_batch):
                chunk = features[start:start + self.max_batch]
                rows = len(chunk)
                self._reserve(rows)
                self.context.set_input_shape(self.input_name, (rows, self.width))
                self.context.set_tensor_address(self.input_name, int(self._device_in))
                self.context.set_tensor_address(self.output_name, int(self._device_out))
                _checked(cudart.cudaMemcpyAsync(self._device_in, chunk.ctypes.data, chunk.nbytes,
                                                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
                if not self.context.execute_async_v3(self.stream):
                    raise RuntimeError("TensorRT execution failed")
                _checked(cudart.cudaMemcpyAsync(out[start:].ctypes.data, self._device_out, rows * 4,
                                                cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
                _checked(cudart.cudaStreamSynchronize(self.stream))
        return out

    def infer_one(self, features: np.ndarray) -> float:
        return float(self.infer(features)[0])

    def run(self, feeds, outputs=None) -> list[np.ndarray]:
        return [self.infer(feeds[self.input_name])[:, None]]

    def signature(self) -> dict:
        return {"inputs": [{"name": self.input_name, "dtype": "float32", "shape": [None, self.width]}],
                "outputs": [{"name": self.output_name, "dtype": "float32", "shape": [None, 1]}]}

    def __del__(self):
        if getattr(self, "_cudart", None) is not None and getattr(self, "_capacity", 0):
            self._free()
