"""The default recipe through the public CLI only: `intent-edge train FOLD.csv --label Revenue` on each
4/5 of a file (stratified 5-fold, shuffle, random_state=0, the folds of benchmarks/accuracy.py), each
bundle scored on its fifth with `Predictor.predict_batch`. What a user who never opens the library gets.

    .venv/bin/python benchmarks/cli_folds.py [DATA] [--label Revenue] [--folds 5] [--seed 0]

DATA defaults to the shared UCI file. Writes cli-folds-DATE.{json,md} into benchmarks/results/.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intent_edge.bench import host_description  # noqa: E402
from intent_edge.data.io import parse_label, read_table, write_table  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402

UCI = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"


def main() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, nargs="?", default=UCI)
    parser.add_argument("--label", default="Revenue")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    frame = read_table(args.data)
    labels = parse_label(args.data, frame[args.label])
    folds = []
    with tempfile.TemporaryDirectory() as work:
        splitter = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
        for number, (train, test) in enumerate(splitter.split(frame, labels), start=1):
            train_file, bundle = Path(work) / f"fold{number}.csv", Path(work) / f"bundle{number}"
            write_table(frame.iloc[train], train_file)
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "intent-edge"), "train", str(train_file), "--label",
                            args.label, "--out", str(bundle)], check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            held_out = frame.iloc[test].drop(columns=[args.label]).reset_index(drop=True)
            probabilities = Predictor.load(bundle, strict=False).predict_batch(held_out)
            folds.append({"fold": number, "roc_auc": float(roc_auc_score(labels[test], probabilities)),
                          "pr_auc": float(average_precision_score(labels[test], probabilities)),
                          "train_seconds": seconds})
            print(json.dumps(folds[-1]), flush=True)
    summary = {m: {"mean": float(np.mean([f[m] for f in folds])), "std": float(np.std([f[m] for f in folds], ddof=1))}
               for m in ("roc_auc", "pr_auc", "train_seconds")}
    date = dt.date.today().isoformat()
    host = host_description()
    lines = [f"# The default recipe through the CLI, {date}", "",
             f"Command: `.venv/bin/python benchmarks/cli_folds.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {host['cpu']}, {host['cores']} cores. `intent-edge train FOLD.csv --label {args.label}` on each "
             f"{args.folds - 1}/{args.folds} of {args.data.name} (stratified, shuffle, random_state={args.seed}), "
             "scored on the rest with `Predictor.predict_batch`.", "",
             "| fold | ROC-AUC | PR-AUC | train seconds (process) |", "|---|---|---|---|"]
    lines += [f"| {f['fold']} | {f['roc_auc']:.4f} | {f['pr_auc']:.4f} | {f['train_seconds']:.0f} |" for f in folds]
    lines.append(f"| mean ± std | {summary['roc_auc']['mean']:.4f} ± {summary['roc_auc']['std']:.4f} | "
                 f"{summary['pr_auc']['mean']:.4f} ± {summary['pr_auc']['std']:.4f} | "
                 f"{summary['train_seconds']['mean']:.0f} |")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"date": date, "host": host, "data": str(args.data), "folds": folds, "summary": summary}
    (args.out / f"cli-folds-{date}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"cli-folds-{date}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
