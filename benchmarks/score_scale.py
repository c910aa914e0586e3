"""Batch scoring at scale: `intent-edge score` over synthetic files of growing size, in constant memory.

For each size and input format (CSV, Parquet), writes a file of that many synthetic sessions (plus a
session_id column), then runs `intent-edge score BUNDLE FILE --output OUT.parquet --keep session_id` in a
fresh process and records its wall time, rows per second and peak resident memory (VmHWM, read by a
wrapper in the same process). Flat peak memory across sizes is the claim; the report goes to
benchmarks/results/.

    .venv/bin/python benchmarks/score_scale.py BUNDLE [--rows 1000000,10000000] [--formats csv,parquet]

Needs free disk for the largest file (about 1.1 GB of CSV per 10 million rows, written to a temporary
directory and removed afterwards). Parquet inputs have row groups of 500,000 rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.bench import host_description  # noqa: E402

GENERATE_ROWS = 500_000  # rows generated at a time, so writing the input stays in bounded memory too

# Runs the CLI in this process, then reports the process's peak resident memory.
_WRAPPER = """
import sys, time
from intent_edge.cli import app
started = time.perf_counter()
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    seconds = time.perf_counter() - started
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(f"RESULT {seconds} {peak}", flush=True)
"""


def write_input(path: Path, rows: int) -> None:
    from intent_edge.data.synth import generate_sessions

    written = 0
    parquet = None
    binary = path.suffix == ".parquet"
    with open(path, "wb") if binary else open(path, "w", encoding="utf-8", newline="") as handle:
        for part in range((rows + GENERATE_ROWS - 1) // GENERATE_ROWS):
            size = min(GENERATE_ROWS, rows - written)
            frame = generate_sessions(size, seed=1000 + part).drop(columns=["Revenue"])
            frame.insert(0, "session_id", [f"s{written + i:010d}" for i in range(size)])
            if binary:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                parquet = parquet or pq.ParquetWriter(handle, table.schema)
                parquet.write_table(table)
            else:
                frame.to_csv(handle, index=False, header=part == 0)
            written += size
        if parquet is not None:
            parquet.close()


def score_once(bundle: Path, work: Path, rows: int, kind: str) -> dict:
    import pyarrow.parquet as pq

    source = work / f"sessions-{rows}.{kind}"
    print(f"writing {rows:,} rows of {kind} ...", flush=True)
    write_input(source, rows)
    output = work / f"scored-{rows}.parquet"
    command = ["score", str(bundle), str(source), "--output", str(output), "--keep", "session_id"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"scoring failed: {done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    seconds, peak_kib = float(line.split()[1]), int(line.split()[2])
    result = {"rows": rows, "format": kind, "input_mib": source.stat().st_size / 2**20,
              "scored_rows": pq.ParquetFile(output).metadata.num_rows, "seconds_in_process": seconds,
              "wall_seconds": wall, "rows_per_second": rows / seconds, "peak_rss_mib": peak_kib / 1024}
    source.unlink()
    output.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated file sizes in rows")
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated input formats")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for rows in sizes:
            for kind in args.formats.split(","):
                results.append(score_once(args.bundle, Path(work), rows, kind))
                print(json.dumps(results[-1]), flush=True)
    date = dt.date.today().isoformat()
    report = {"date": date, "host": host_description(), "bundle": str(args.bundle), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"score-scale-{date}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Batch scoring at scale, {date}", "",
             f"Command: `.venv/bin/python benchmarks/score_scale.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {report['host']['cpu']}, {report['host']['cores']} cores, Python {report['host']['python']}. "
             "`intent-edge score BUNDLE FILE --output OUT.parquet --keep session_id` in a fresh process, "
             "default chunk of 65,536 rows; peak memory is the process's VmHWM.", "",
             "| rows | input | input MiB | rows scored | seconds | rows/s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rows']:,} | {r['format']} | {r['input_mib']:.0f} | {r['scored_rows']:,} | "
              f"{r['seconds_in_process']:.1f} | {r['rows_per_second']:,.0f} | {r['peak_rss_mib']:.0f} |"
              for r in results]
    (args.out / f"score-scale-{date}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
