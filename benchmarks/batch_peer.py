"""Raw-record batch scoring beside LightGBM, the peer a data scientist would ship instead.

On N synthetic sessions in a DataFrame (UCI layout), in one process, best of --repeats:
- `Predictor.predict_batch(frame)`: encode + model, the bundle's default variant, 1 and 2 inference threads;
- LightGBM `predict_proba` with default parameters, trained on the same synthetic data the bundle's size,
  the categorical columns converted to pandas categories inside the timed call (what a caller must do);
- `intent-edge score`-style file scoring is in benchmarks/score_scale.py.
Reports rows/s and the ratio to LightGBM. Needs the `bench` extra (LightGBM).

    .venv/bin/python benchmarks/batch_peer.py BUNDLE [--rows 1000000] [--train-rows 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch_encode import best_seconds  # noqa: E402  (beside this script)

from intent_edge.bench import host_description  # noqa: E402
from intent_edge.data.synth import generate_sessions  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402


def lightgbm_scorer(train_rows: int, categorical: list[str], features: list[str]):
    """A default LightGBM on synthetic sessions; returns a function scoring a raw DataFrame."""
    import lightgbm as lgb
    import pandas as pd

    train = generate_sessions(train_rows, seed=0)
    # Categories in the columns' own types (no text conversion): the fastest conversion a caller can do.
    levels = {c: sorted(train[c].unique()) for c in categorical}

    def to_model_frame(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[features].copy()
        for column in categorical:
            out[column] = pd.Categorical(frame[column], categories=levels[column])
        return out

    model = lgb.LGBMClassifier(verbose=-1, random_state=0, n_jobs=os.cpu_count())
    model.fit(to_model_frame(train), train["Revenue"].astype(int))
    return lambda frame: model.predict_proba(to_model_frame(frame))[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="a session bundle of the UCI layout (e.g. from the synthetic data)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=20_000, help="LightGBM's training rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write batch-peer-DATE.{json,md} here")
    args = parser.parse_args()

    probe = Predictor.load(args.bundle, threads=1)
    features = list(probe.feature_names)
    categorical = [n for n, k in probe.manifest["schema"]["kinds"].items() if k == "categorical"]
    frame = generate_sessions(args.rows, seed=5)[features]
    rows = {}
    for threads in (1, 2):
        predictor = Predictor.load(args.bundle, threads=threads)
        predictor.predict_batch(frame.iloc[:1000])
        rows[f"intent-edge predict_batch ({threads} thread{'s' if threads > 1 else ''})"] = best_seconds(
            lambda p=predictor: p.predict_batch(frame), args.repeats)
    peer = lightgbm_scorer(args.train_rows, categorical, features)
    peer(frame.iloc[:1000])
    rows[f"LightGBM predict_proba ({os.cpu_count()} threads, categories converted)"] = lightgbm = best_seconds(
        lambda: peer(frame), args.repeats)

    date = dt.date.today().isoformat()
    host = host_description()
    lines = [f"# Raw-record batch scoring beside LightGBM, {date}", "",
             f"Command: `.venv/bin/python benchmarks/batch_peer.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {host['cpu']}, {host['cores']} cores. {args.rows:,} synthetic sessions in a DataFrame, "
             f"best of {args.repeats}.", "",
             "| scorer | seconds | rows/s | × LightGBM |", "|---|---|---|---|"]
    lines += [f"| {name} | {seconds:.3f} | {args.rows / seconds:,.0f} | {lightgbm / seconds:.2f} |"
              for name, seconds in rows.items()]
    print("\n".join(lines))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"date": date, "host": host, "rows": args.rows, "bundle": str(args.bundle),
                  "seconds": rows, "ratio_to_lightgbm": {k: lightgbm / v for k, v in rows.items()}}
        (args.out / f"batch-peer-{date}.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / f"batch-peer-{date}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
