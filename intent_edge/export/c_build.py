"""`export --format c --build`: compile the generated library with the host's C compiler, run its harness,
and write ``P_build.json``: object sizes (text + data, rodata included, at ``-Os`` and ``-O2``), the
largest stack frame, ns per record in C, and parity with the Python runtime."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from intent_edge.errors import BackendUnavailable, IntentEdgeError

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-pedantic", "-ffp-contract=off")


def find_compiler() -> str:
    """The host's C compiler: $CC, else cc, gcc or clang on the PATH."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise BackendUnavailable("no C compiler found ($CC, cc, gcc or clang): install one (apt-get install gcc)")


def _run(command: list[str], directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=600)


def object_size(compiler: str, directory: Path, source: str, level: str) -> tuple[int, int]:
    """(text + data bytes, largest stack frame in bytes) of ``source`` compiled at ``level``."""
    stem = Path(source).stem
    done = _run([compiler, *STRICT_FLAGS, level, "-fstack-usage", "-c", source, "-o", f"{stem}{level}.o"], directory)
    if done.returncode:
        raise IntentEdgeError(f"{compiler} {level} failed:\n{done.stderr[-2000:]}")
    sizes = _run(["size", "--format=berkeley", f"{stem}{level}.o"], directory)
    text, data = (int(v) for v in sizes.stdout.splitlines()[1].split()[:2])
    usage = (directory / f"{stem}{level}.su").read_text() if (directory / f"{stem}{level}.su").exists() else ""
    frames = [int(line.split("\t")[1]) for line in usage.splitlines() if line.count("\t") >= 2]
    for leftover in (f"{stem}{level}.o", f"{stem}{level}.su"):
        (directory / leftover).unlink(missing_ok=True)
    return text + data, max(frames, default=0)


def build_c(directory: str | Path, prefix: str) -> dict:
    """Compile ``directory``'s library and harness, run the harness, and write ``P_build.json``. Raises
    when the build warns or the harness finds a mismatch (after writing the report)."""
    directory = Path(directory)
    compiler = find_compiler()
    version = _run([compiler, "--version"], directory).stdout.splitlines()[0]
    harness = f"{prefix}_test"
    built = _run([compiler, *STRICT_FLAGS, "-O2", f"{prefix}.c", f"{harness}.c", "-lm", "-o", harness], directory)
    if built.returncode:
        raise IntentEdgeError(f"the harness did not build with {compiler}:\n{built.stderr[-2000:]}")
    ran = _run([f"./{harness}", "--time"], directory)
    summary = re.search(r"cases (\d+), failures (\d+), max \|dp\| (\S+)", ran.stdout)
    speed = re.search(r"ns_per_record (\S+)", ran.stdout)
    sizes = {level: object_size(compiler, directory, f"{prefix}.c", level) for level in ("-Os", "-O2")}
    report = {"compiler": version, "flags": " ".join(STRICT_FLAGS),
              "warnings": [line for line in built.stderr.splitlines() if "warning:" in line],
              "size_bytes": {level.lstrip("-"): size for level, (size, _) in sizes.items()},
              "stack_bytes": max(frame for _, frame in sizes.values()),
              "ns_per_record": float(speed.group(1)) if speed else None,
              "parity": None if summary is None else {
                  "cases": int(summary.group(1)), "failures": int(summary.group(2)),
                  "max_abs_diff": float(summary.group(3)),
                  "against": "the Python runtime on the variant's own file (ONNX Runtime or LiteRT)"}}
    (directory / harness).unlink(missing_ok=True)
    (directory / f"{prefix}_build.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if ran.returncode or report["warnings"] or summary is None:
        raise IntentEdgeError(f"the C library failed its harness or built with warnings; see "
                              f"{directory / f'{prefix}_build.json'}\n{ran.stderr[-2000:]}")
    return report
