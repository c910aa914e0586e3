"""C literals that reproduce Python values exactly, and the status codes the generated library returns."""

from __future__ import annotations

import numpy as np

STATUSES = {"OK": 0, "ERR_MISSING": 1, "ERR_NAN": 2, "ERR_INFINITE": 3, "ERR_OUT_OF_RANGE": 4}


def c_string(text: str) -> str:
    """A C string literal of ``text``'s UTF-8 bytes (octal escapes, which cannot run into a next digit)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 0x20 <= byte < 0x7F and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_float(value: float) -> str:
    """An exact float literal of a float32 value (9 significant digits round-trip a float32)."""
    value = float(np.float32(value))
    return f"{value:.9g}f" if "e" in f"{value:.9g}" or "." in f"{value:.9g}" else f"{value:.9g}.0f"


def c_double(value: float) -> str:
    return repr(float(value)) if "e" in repr(float(value)) or "." in repr(float(value)) else f"{float(value)!r}.0"


def floats_literal(values) -> str:
    items = [c_float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    return ",\n".join("    " + ", ".join(items[i:i + 6]) for i in range(0, len(items), 6))
