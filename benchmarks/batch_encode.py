"""Raw-record batch scoring from a DataFrame: where the time goes between the encoder and the model.

Times, on N synthetic sessions in one process (best of --repeats), `Predictor.encode(frame)` and the
model's batch call on the encoded rows with one inference thread, and reports rows/s for each and for
the two together (what `predict_batch` costs). Rerun it before and after a change to the encoder, on the
same warm machine.

    .venv/bin/python benchmarks/batch_encode.py BUNDLE [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.data.synth import generate_sessions  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402


def best_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a session bundle of the UCI layout")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    predictor = Predictor.load(args.bundle, threads=1)
    frame = generate_sessions(args.rows, seed=5)[list(predictor.feature_names)]
    predictor.encode(frame.iloc[:1000])
    encode = best_seconds(lambda: predictor.encode(frame), args.repeats)
    features = predictor.encode(frame)
    infer = best_seconds(lambda: predictor.runner.infer(features), args.repeats)
    print(f"{args.rows:,} rows: encode {encode:.3f} s ({args.rows / encode:,.0f} rows/s), model {infer:.3f} s "
          f"({args.rows / infer:,.0f} rows/s, 1 thread), together {args.rows / (encode + infer):,.0f} rows/s")


if __name__ == "__main__":
    main()
