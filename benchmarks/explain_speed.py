"""Explanations beside shap: speed and agreement on the same model and the same background.

In one process, both warmed up: `Predictor.explain(record, background)` (default estimator) against
shap's PermutationExplainer with its default max_evals, per record, on the bundle's predictor (as
`Predictor.load` gives it; `--threads` to pin inference threads) with a 30-row background of raw
records; and, on a few records, the largest difference from shap's ExactExplainer (the exact values),
with efficiency (base + contributions - predict).

    .venv/bin/python benchmarks/explain_speed.py BUNDLE DATA [--records 20] [--exact-records 3]

BUNDLE is a session bundle and DATA a labelled file of its schema (e.g. the UCI file it was trained on).
Needs shap (the dev extra). Writes explain-speed-DATE.{json,md} into benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.bench import host_description  # noqa: E402
from intent_edge.bench.shap_reference import shap_explainers  # noqa: E402
from intent_edge.data.io import load_dataset  # noqa: E402
from intent_edge.data.schema import Schema  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402


def per_record_seconds(call, items, rounds: int = 5) -> float:
    """The median over ``rounds`` passes of the mean time per item (the machine is noisy)."""
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            call(item)
        means.append((time.perf_counter() - started) / len(items))
    return float(np.median(means))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--records", type=int, default=20, help="records timed")
    parser.add_argument("--exact-records", type=int, default=3, help="records compared with shap's exact values")
    parser.add_argument("--threads", type=int, default=None,
                        help="inference threads of the predictor both use [default: ONNX Runtime's, all cores]")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    predictor = Predictor.load(args.bundle, threads=args.threads)
    dataset = load_dataset(args.data, schema=Schema.from_json(predictor.manifest["schema"]))
    rows = np.random.default_rng(0).permutation(len(dataset.labels))
    background = dataset.features.iloc[rows[:30]].to_dict("records")
    records = dataset.features.iloc[rows[30:30 + args.records]].to_dict("records")
    model, exact, permutation = shap_explainers(predictor, records, background)
    inputs = [model.codes([r]) for r in records]

    for _ in range(2):  # warm both
        permutation(inputs[0])
        predictor.explain(records[0], background)
    shap_seconds = per_record_seconds(permutation, inputs)
    ours_seconds = per_record_seconds(lambda r: predictor.explain(r, background), records)
    method = predictor.explain(records[0], background).method

    names = list(predictor.feature_names)
    differences, efficiency = [], []
    for record, matrix in zip(records[:args.exact_records], inputs, strict=False):
        reference = exact(matrix, max_evals=2 ** 18).values[0]
        ours = predictor.explain(record, background)
        values = np.array([ours.contributions[n] for n in names])
        differences.append(float(np.abs(values - reference).max()))
        efficiency.append(abs(ours.base + values.sum() - predictor.predict(record)))

    date = dt.date.today().isoformat()
    host = host_description()
    result = {"date": date, "host": host, "bundle": str(args.bundle), "data": str(args.data), "fields": len(names),
              "background_rows": len(background), "records_timed": len(records), "method": method,
              "explain_ms": ours_seconds * 1e3, "shap_permutation_ms": shap_seconds * 1e3,
              "speedup": shap_seconds / ours_seconds, "max_abs_difference_from_shap_exact": differences,
              "efficiency_error": efficiency}
    lines = [f"# Explanations beside shap, {date}", "",
             f"Command: `.venv/bin/python benchmarks/explain_speed.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {host['cpu']}, {host['cores']} cores. {len(names)} fields, a background of "
             f"{len(background)} raw records, {len(records)} records timed (median of 5 passes), one process, both "
             "warmed up, the "
             f"bundle's predictor ({predictor.runner.description}, "
             f"{args.threads or 'default'} inference threads) as the model of both.", "",
             "| explainer | ms per record |", "|---|---|",
             f"| intent-edge `explain` ({method}) | {ours_seconds * 1e3:.2f} |",
             f"| shap PermutationExplainer (default max_evals) | {shap_seconds * 1e3:.1f} |", "",
             f"Speed-up: {shap_seconds / ours_seconds:.0f}x. Largest |difference| from shap's ExactExplainer per "
             f"record: {', '.join(f'{d:.4f}' for d in differences)}; efficiency error: "
             f"{', '.join(f'{e:.1e}' for e in efficiency)}."]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"explain-speed-{date}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"explain-speed-{date}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
