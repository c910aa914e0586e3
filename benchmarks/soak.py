"""Soak and concurrency: results identical across threads, resident memory flat over a long run.

    .venv/bin/python benchmarks/soak.py BUNDLE [--threads 8] [--calls 100000] [--soak 1000000]

1. Every record is scored once single-threaded; then ``--threads`` threads each score ``--calls``
   records (cycling through the same distinct records) on one shared Predictor, and every answer must
   equal the single-threaded one exactly.
2. ``--soak`` single predictions in a row, sampling the process's resident memory (VmRSS) every 10%;
   after the first sample (warm-up), RSS must stay within 5% of it.
Writes benchmarks/results/soak-<variant>-<date>.md and exits non-zero if either check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
import time
from pathlib import Path

import numpy as np

from intent_edge.data.synth import generate_sessions
from intent_edge.runtime import Predictor


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--variant", default=None, help="bundle variant (default: the bundle's default)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--soak", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    predictor = Predictor.load(args.bundle, args.variant)
    records = generate_sessions(args.records, seed=77)[list(predictor.feature_names)].to_dict("records")
    expected = np.array([predictor.predict(r) for r in records])

    mismatches, started = [0] * args.threads, time.perf_counter()

    def work(worker: int) -> None:
        for call in range(args.calls):
            index = (call + worker * 7919) % len(records)
            if predictor.predict(records[index]) != expected[index]:
                mismatches[worker] += 1

    threads = [threading.Thread(target=work, args=(w,)) for w in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    concurrent_seconds = time.perf_counter() - started

    samples, step = [], max(1, args.soak // 10)
    started = time.perf_counter()
    for call in range(args.soak):
        predictor.predict(records[call % len(records)])
        if call % step == 0:
            samples.append(rss_mib())
    samples.append(rss_mib())
    soak_seconds = time.perf_counter() - started
    drift = max(abs(s - samples[1]) / samples[1] for s in samples[1:])

    ok = sum(mismatches) == 0 and drift <= 0.05
    lines = [f"# Soak and concurrency, {dt.date.today().isoformat()}", "",
             f"Command: `.venv/bin/python benchmarks/soak.py {' '.join(sys.argv[1:])}`", "",
             f"Bundle variant: {predictor.variant} ({predictor.runner.description}).", "",
             f"- {args.threads} threads x {args.calls:,} predict calls on one shared Predictor: "
             f"{sum(mismatches)} answers differ from the single-threaded run ({concurrent_seconds:.1f} s).",
             f"- {args.soak:,} predictions in a row ({soak_seconds:.1f} s): resident memory "
             + ", ".join(f"{s:.1f}" for s in samples) + " MiB; largest drift after warm-up "
             f"{100 * drift:.2f}% (limit 5%).", "", f"Result: {'PASS' if ok else 'FAIL'}"]
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / f"soak-{predictor.variant}-{dt.date.today().isoformat()}.md"
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
