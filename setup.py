"""Only the compiled part of the build; everything else is in pyproject.toml.

Two small C extensions, both optional: where no C compiler is available the install still succeeds.
The encoder's single-record fast path (`_fastencode`) then falls back to the pure-Python path, which
gives the same results, only slower; the native backend (`_native`, the network kernel the C export
also ships) is then unavailable with a clear message, and the interpreters run the models.
`intent-edge info` and `intent-edge bench` say what runs.
"""

import os

from setuptools import Extension, setup

# -ffp-contract=off: the kernel's multiplies and adds stay separate, as in the generated C library
# (GCC ignores the pragma that asks for it). MSVC does not contract by default and takes no such flag.
KERNEL_FLAGS = [] if os.name == "nt" else ["-O2", "-ffp-contract=off"]

setup(ext_modules=[
    Extension("intent_edge.runtime._fastencode", ["intent_edge/runtime/_fastencode.c"],
              depends=["intent_edge/runtime/fastencode_api.h"],
              extra_compile_args=["-O2"] if os.name != "nt" else [], optional=True),
    Extension("intent_edge.runtime._native", ["intent_edge/runtime/_native.c"], include_dirs=["intent_edge/runtime"],
              depends=["intent_edge/runtime/kernel/ie_kernel.h", "intent_edge/runtime/fastencode_api.h"],
              extra_compile_args=KERNEL_FLAGS, optional=True),
])
