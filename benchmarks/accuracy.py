"""Accuracy benchmark: the default MLP recipe against LightGBM, CatBoost and a logistic regression, by
stratified K-fold CV on the same folds.

Runs on the synthetic default data and, when present, on the shared UCI Online Shoppers file
(``../shared/data/online_shoppers_intention.csv``), and writes a dated Markdown and JSON report into
``benchmarks/results/``. The logistic regression sees the very same encoded features (the bundle's
encoder, fitted per fold on training rows), so the gap is the model's, not the preprocessing's. LightGBM
and CatBoost get the raw columns with default parameters and their own categorical handling (pandas
categories for LightGBM, ``cat_features`` for CatBoost): what a data scientist would try first. They
need the ``bench`` extra (``pip install -e '.[bench]'``); without it their rows are skipped, said so.
Beside the means, the MLP's per-fold paired differences against each GBDT: a mean difference of 0.001
is inside the fold-to-fold spread, a paired one shows whether it is consistent.

    .venv/bin/python benchmarks/accuracy.py            # both data sets, 5 folds, seed 0
    .venv/bin/python benchmarks/accuracy.py --folds 3 --synthetic-rows 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

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

    from intent_edge.runtime.encoder import Encoder

    results = []
    for train, test in _folds(dataset, folds, seed):
        encoder = Encoder.fit(dataset.features.iloc[train], dataset.schema.kinds, dataset.schema.transforms)
        model = LogisticRegression(max_iter=5000).fit(
            encoder.encode_columns(dataset.features.iloc[train], strict=False),
                                                      dataset.labels[train])
        p = model.predict_proba(encoder.encode_columns(dataset.features.iloc[test].reset_index(drop=True),
                                                       strict=False))[:, 1]
        results.append(compute_metrics(dataset.labels[test], p, 0.5))
    return {"folds": results, "summary": summarise_folds(results)}


def _folds(dataset, folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds, shuffle=True, random_state=seed).split(dataset.features, dataset.labels)


def lightgbm_cv(dataset, folds: int, seed: int) -> dict:
    import lightgbm as lgb

    from intent_edge.train.teacher import teacher_frame

    frame = teacher_frame(dataset.features, dataset.schema.kinds)  # categories as pandas categories, as the teacher
    results = []
    for train, test in _folds(dataset, folds, seed):
        model = lgb.LGBMClassifier(random_state=seed, verbose=-1).fit(frame.iloc[train], dataset.labels[train])
        results.append(compute_metrics(dataset.labels[test], model.predict_proba(frame.iloc[test])[:, 1], 0.5))
    return {"folds": results, "summary": summarise_folds(results)}


def catboost_cv(dataset, folds: int, seed: int) -> dict:
    from catboost import CatBoostClassifier

    from intent_edge.train.teacher import catboost_frame

    categorical = [n for n, k in dataset.schema.kinds.items() if k == "categorical"]
    frame = catboost_frame(dataset.features, dataset.schema.kinds)  # categories as text, as the teacher
    results = []
    for train, test in _folds(dataset, folds, seed):
        model = CatBoostClassifier(random_seed=seed, verbose=0, thread_count=-1, allow_writing_files=False)
        model.fit(frame.iloc[train], dataset.labels[train], cat_features=categorical)
        results.append(compute_metrics(dataset.labels[test], model.predict_proba(frame.iloc[test])[:, 1], 0.5))
    return {"folds": results, "summary": summarise_folds(results)}


GBDTS = {"LightGBM": lightgbm_cv, "CatBoost": catboost_cv}


def paired(mlp_folds: list[dict], other_folds: list[dict], metric: str) -> dict:
    """The MLP's minus the other model's figure, fold by fold (the same folds)."""
    differences = np.array([a[metric] - b[metric] for a, b in zip(mlp_folds, other_folds, strict=True)])
    return {"folds": differences.tolist(), "mean": float(differences.mean()),
            "std": float(differences.std(ddof=1)), "mlp_better_folds": int((differences > 0).sum())}


def gbdt_rows(dataset, folds: int, seed: int, mlp_folds: list[dict]) -> dict:
    rows = {}
    for name, run in GBDTS.items():
        try:
            started = time.perf_counter()
            result = run(dataset, folds, seed)
        except ImportError as exc:
            print(f"skipping {name}: {exc} (pip install -e '.[bench]')")
            continue
        result["seconds"] = time.perf_counter() - started
        result["mlp_minus"] = {m: paired(mlp_folds, result["folds"], m) for m in ("roc_auc", "pr_auc")}
        rows[name] = result
    return rows


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
                                   "logistic_regression": logistic["summary"],
                                   "gbdt": gbdt_rows(dataset, args.folds, args.seed, mlp["folds"])}
    synthetic.unlink()

    lines = [f"# Accuracy benchmark, {report['date']}", "",
             f"{args.folds}-fold stratified CV (shuffle, random_state={args.seed}); mean ± std over folds. "
             f"Host: {report['host']['cpu']}, Python {report['host']['python']}; "
             + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()) + ".", "",
             "Command: `.venv/bin/python benchmarks/accuracy.py`", "",
             "| data | model | ROC-AUC | PR-AUC | F1 (threshold) | Brier | ECE |", "|---|---|---|---|---|---|---|"]
    for name, result in report["results"].items():
        summaries = [("MLP (default recipe)", result["mlp"], "max-F1 on validation"),
                     *((f"{gbdt} (defaults)", r["summary"], "0.5") for gbdt, r in result["gbdt"].items()),
                     ("logistic regression", result["logistic_regression"], "0.5")]
        for model, s, note in summaries:
            lines.append(f"| {name} | {model} | {s['roc_auc']['mean']:.4f} ± {s['roc_auc']['std']:.4f} | "
                         f"{s['pr_auc']['mean']:.4f} ± {s['pr_auc']['std']:.4f} | {s['f1']['mean']:.4f} ({note}) | "
                         f"{s['brier']['mean']:.4f} | {s['calibration_error']['mean']:.4f} |")
    lines += ["", "The MLP minus each GBDT, fold by fold on the same folds (positive: the MLP is better):", "",
              "| data | against | ROC-AUC per fold | mean ± std | PR-AUC per fold | mean ± std |",
              "|---|---|---|---|---|---|"]
    for name, result in report["results"].items():
        for gbdt, r in result["gbdt"].items():
            cells = []
            for metric in ("roc_auc", "pr_auc"):
                d = r["mlp_minus"][metric]
                cells += [" ".join(f"{v:+.4f}" for v in d["folds"]), f"{d['mean']:+.4f} ± {d['std']:.4f}"]
            lines.append(f"| {name} | {gbdt} | " + " | ".join(cells) + " |")
    stem = args.out / f"accuracy-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {stem}.md and .json")


if __name__ == "__main__":
    main()
