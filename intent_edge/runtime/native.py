"""The native backend's runner: a variant's network from its ``VARIANT.native.npz`` weights, run by the
compiled kernel (``_native.c``, which includes ``kernel/ie_kernel.h``: the same source the C export
ships), so in-process predictions and the generated C library give the same bits.

The weights file holds plain arrays (read with ``allow_pickle=False``, nothing in it can run):
``format_version``, ``activations`` and ``weights_I``/``bias_I`` per layer for a float network; for a
LiteRT int8 model (``precision`` 1) its quantisation, logistic table and integer layers. ``train`` and
``compress`` write it for every variant the kernel runs (dense ONNX graphs: fp32, distilled, units-50,
sparse-80; and the LiteRT int8 family).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from intent_edge.errors import BackendUnavailable, BundleError

NATIVE_FORMAT_VERSION = 1


@contextmanager
def versioned_arrays(path: Path, version: int, what: str) -> Iterator:
    """The arrays of a weights ``.npz`` (read with ``allow_pickle=False``) whose ``format_version`` is
    ``version``; an unreadable file, another version or an array missing is a BundleError naming ``what``."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = int(arrays["format_version"][0])
            if found != version:
                raise BundleError(f"{path}: {what} version {found} is not supported "
                                  f"(this intent-edge reads {version})")
            yield arrays
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise BundleError(f"{path}: not a readable {what} file ({exc})") from None


def read_weights(path: Path) -> tuple[str, object]:
    """A native weights file, opened once and its version checked: ``("float", layers)`` with
    (weights, bias, activation) per layer, checked to chain, or ``("int8", network)`` for a LiteRT int8
    variant (``precision`` 1), as make_int8_network takes it."""
    with versioned_arrays(path, NATIVE_FORMAT_VERSION, "native weights") as arrays:
        if "precision" in arrays.files and int(arrays["precision"][0]) == 1:
            return "int8", _int8_network(arrays)
        activations = arrays["activations"].astype(int).tolist()
        layers = [(np.ascontiguousarray(arrays[f"weights_{i}"], dtype=np.float32),
                   np.ascontiguousarray(arrays[f"bias_{i}"], dtype=np.float32), activation)
                  for i, activation in enumerate(activations)]
    for (weights, bias, _), (after, _, _) in zip(layers, [*layers[1:], (None, None, None)], strict=True):
        if weights.ndim != 2 or bias.shape != (weights.shape[1],) or (
                after is not None and after.shape[0] != weights.shape[1]):
            raise BundleError(f"{path}: the layers' shapes do not chain")
    return "float", layers


def _int8_network(arrays) -> dict:
    scales, zero_points = arrays["scales"].astype(float), arrays["zero_points"].astype(int)
    layers = []
    for i in range(int(arrays["layers"][0])):
        weights = np.ascontiguousarray(arrays[f"weights_{i}"], dtype=np.int8)
        zero_in, zero_out, low, high = (int(v) for v in arrays[f"clamp_{i}"])
        layers.append((weights, *(np.ascontiguousarray(arrays[f"{key}_{i}"], dtype=np.int32)
                                  for key in ("bias", "multipliers", "shifts")),
                       weights.shape[0], zero_in, zero_out, low, high))
    return {"width": layers[0][0].shape[1], "layers": layers,
            "logistic": np.ascontiguousarray(arrays["logistic"], dtype=np.int8),
            "quantization": (float(scales[0]), int(zero_points[0]), float(scales[1]), int(zero_points[1]))}


class NativeRunner:
    """A session model on the compiled kernel: ``infer_one`` for single rows, ``infer`` for batches
    (without the GIL). Thread-safe: the network is read-only and each call has its own scratch."""

    def __init__(self, path: Path, *, threads: int | None = None):
        try:
            from intent_edge.runtime import _native
        except ImportError:
            raise BackendUnavailable("backend 'native' needs the compiled extension intent_edge.runtime._native, "
                                     "which was not built (no C compiler at install time): reinstall intent-edge "
                                     "where a C compiler is available") from None
        self._native = _native
        kind, network = read_weights(Path(path))
        if kind == "int8":
            self.width, self._network = network["width"], _native.make_int8_network(
                network["width"], network["quantization"], network["logistic"], network["layers"])
        else:
            self.width = network[0][0].shape[0]
            self._network = _native.make_network(self.width, [(w, b, w.shape[1], a) for w, b, a in network])
        self.input_names, self.output_names = ("features",), ("probability",)
        self.description = "native (compiled kernel, 1 thread)"
        del threads  # one thread a call: the network is a few thousand multiply-adds

    def signature(self) -> dict:
        return {"inputs": [{"name": "features", "dtype": "float32", "shape": [None, self.width]}],
                "outputs": [{"name": "probability", "dtype": "float32", "shape": [None, 1]}]}

    def infer_one(self, features: np.ndarray) -> float:
        return self._native.infer_one(self._network, features)

    def fuse(self, plan, checked, watch=None):
        """One compiled call from a raw record to its probability: the encoder's fast-path ``plan`` joined
        with this network. A record the fast path does not take goes to ``checked(record)``, which
        encodes it on the checked path (or raises the error that names the field). ``watch``, a
        :meth:`intent_edge.runtime.monitor.Monitor.watch_plan`, has each record counted in C."""
        return self._native.fuse(self._network, plan, checked, watch)

    def infer(self, features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        out = np.empty(len(features), dtype=np.float32)
        self._native.infer(self._network, features, out)
        return out

    def run(self, feeds, outputs=None) -> list[np.ndarray]:
        return [self.infer(next(iter(feeds.values()))).reshape(-1, 1)]
