"""Accuracy benchmark: the default MLP recipe against a logistic regression, by stratified K-fold CV.

Runs on the synthetic default data and, when present, on the shared UCI Online Shoppers file
(``../shared/data/online_shoppers_intention.csv``), and writes a dated Markdown and JSON report into
``benchmarks/results/``. The logistic regression sees the very same encoded features (the bundle's
encoder, fitted per fold on training rows), so the gap is the model's, not the preprocessing's.

    .venv/bin/python benchmarks/accuracy.py            # both data sets, 5 folds, seed 0
    .venv/bin/python benchmarks/accuracy.py --folds 3 --synthetic-rows 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from intent_edge.bench import host_description
from intent_edge.data.io import load_dataset, write_table
from intent_edge.data.synth import generate_sessions
from intent_edge.train.evaluate import ThresholdPolicy, compute_metrics, summarise_folds
from intent_edge.train.mlp import MLPRecipe
from intent_edge.train.pipeline import cross_validate, library_versions

ROOT = Path(__file__).resolve().parents[1]

UCI = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"


def logistic_cv(dataset, folds: int, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from intent_edge.runtime.encoder import Encoder

    results = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(dataset.features, dataset.labels):
        encoder = Encoder.fit(dataset.features.iloc[train], dataset.schema.kinds, dataset.schema.transforms)
        model = LogisticRegression(max_iter=5000).fit(
            encoder.encode_columns(dataset.features.iloc[train], strict=False),
                                                      dataset.labels[train])
        p = model.predict_proba(encoder.encode_columns(dataset.features.iloc[test].reset_index(drop=True),
                                                       strict=False))[:, 1]
        results.append(compute_metrics(dataset.labels[test], p, 0.5))
    return {"folds": results, "summary": summarise_folds(results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-rows", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    sources = []
    synthetic = args.out / "_synthetic.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(generate_sessions(args.synthetic_rows, seed=0), synthetic)
    sources.append((f"synthetic ({args.synthetic_rows} rows, seed 0)", synthetic))
    if UCI.is_file():
        sources.append(("UCI Online Shoppers (12,330 rows)", UCI))
    else:
        print(f"skipping the UCI data: {UCI} is absent")

    report = {"date": dt.date.today().isoformat(), "host": host_description(),
              "libraries": library_versions(), "folds": args.folds, "seed": args.seed,
              "recipe": MLPRecipe().to_json(), "results": {}}
    for name, path in sources:
        dataset = load_dataset(path)
        started = time.perf_counter()
        mlp = cross_validate(dataset, args.folds, MLPRecipe(), args.seed, ThresholdPolicy("max-f1"),
                             on_fold=lambda f, k, name=name: print(f"{name}: MLP fold {f}/{k}", flush=True))
        mlp_seconds = time.perf_counter() - started
        logistic = logistic_cv(dataset, args.folds, args.seed)
        report["results"][name] = {"mlp": mlp["summary"], "mlp_folds": mlp["folds"], "mlp_seconds": mlp_seconds,
                                   "logistic_regression": logistic["summary"]}
    synthetic.unlink()

    lines = [f"# Accuracy benchmark, {report['date']}", "",
             f"{args.folds}-fold stratified CV (shuffle, random_state={args.seed}); mean ± std over folds. "
             f"Host: {report['host']['cpu']}, Python {report['host']['python']}; "
             + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()) + ".", "",
             "Command: `.venv/bin/python benchmarks/accuracy.py`", "",
             "| data | model | ROC-AUC | PR-AUC | F1 (threshold) | Brier | ECE |", "|---|---|---|---|---|---|---|"]
    for name, result in report["results"].items():
        for model, key, note in (("MLP (default recipe)", "mlp", "max-F1 on validation"),
                                 ("logistic regression", "logistic_regression", "0.5")):
            s = result[key]
            lines.append(f"| {name} | {model} | {s['roc_auc']['mean']:.4f} ± {s['roc_auc']['std']:.4f} | "
                         f"{s['pr_auc']['mean']:.4f} ± {s['pr_auc']['std']:.4f} | {s['f1']['mean']:.4f} ({note}) | "
                         f"{s['brier']['mean']:.4f} | {s['calibration_error']['mean']:.4f} |")
    stem = args.out / f"accuracy-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {stem}.md and .json")


if __name__ == "__main__":
    main()
