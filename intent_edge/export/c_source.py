"""What both C generators share: C literals that reproduce Python values exactly, the status codes, the
kernel file, and the text functions that strip as Python's str.strip does."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np

KERNEL_NAME = "ie_kernel.h"
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


def c_number(value: float) -> str:
    """A double literal, NaN and the infinities included (math.h's NAN and INFINITY)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return c_double(value)


def floats_literal(values) -> str:
    items = [c_float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    return ",\n".join("    " + ", ".join(items[i:i + 6]) for i in range(0, len(items), 6))


# Python's str.isspace() set, which str.strip() removes: what the C library strips from category text
UNICODE_SPACES = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                  *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)


def kernel_source() -> bytes:
    """The runtime's kernel source, as shipped in the package."""
    return resources.files("intent_edge.runtime").joinpath("kernel", KERNEL_NAME).read_bytes()

def text_helpers(p: str) -> str:
    """C functions that strip text as Python's ``str.strip`` does (``{p}_strip``), for category values and
    event names alike."""
    spaces = ", ".join(f"0x{code:X}" for code in UNICODE_SPACES)
    return f"""static const unsigned int {p}_spaces[] = {{{spaces}}};

/* The code point starting at s[0] (length n >= 1) and its byte length; malformed UTF-8 reads as one
 * byte that is not a space. */
static unsigned int {p}_code_point(const unsigned char *s, size_t n, size_t *length)
{{
    if (s[0] < 0x80 || n < 2) {{ *length = 1; return s[0]; }}
    if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {{
        *length = 2;
        return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    }}
    if (n >= 3 && (s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {{
        *length = 3;
        return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    }}
    *length = 1;
    return 0xFFFFFFFFu;
}}

static int {p}_is_space(unsigned int code)
{{
    size_t i;
    if (code < 0x80) return code == 0x20 || (code >= 0x09 && code <= 0x0D) || (code >= 0x1C && code <= 0x1F);
    for (i = 0; i < sizeof {p}_spaces / sizeof {p}_spaces[0]; i++)
        if ({p}_spaces[i] == code) return 1;
    return 0;
}}

/* text without the white space Python's str.strip() removes, as (start, length) */
static const char *{p}_strip(const char *text, size_t *length)
{{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), step, i, end = 0;
    while (n > 0 && {p}_is_space({p}_code_point(s, n, &step))) {{ s += step; n -= step; }}
    while (n > 0 && s[n - 1] < 0x80 && {p}_is_space(s[n - 1])) n--;  /* ASCII at the end: the usual case */
    if (n == 0 || s[n - 1] < 0x80) {{ *length = n; return (const char *)s; }}
    for (i = 0; i < n; i += step)  /* text ending in a multi-byte character: decode it from the start */
        if (!{p}_is_space({p}_code_point(s + i, n - i, &step))) end = i + step;
    *length = end;
    return (const char *)s;
}}
"""
