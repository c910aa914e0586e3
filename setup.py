"""Only the compiled part of the build; everything else is in pyproject.toml.

The encoder's single-record fast path is a small C extension. It is optional: where no C compiler is
available the install still succeeds and the runtime uses the pure-Python path, which gives the same
results (only slower); `intent-edge info` and `intent-edge bench` say which path is in use.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("intent_edge.runtime._fastencode", ["intent_edge/runtime/_fastencode.c"],
                             extra_compile_args=["-O2"], optional=True)])
