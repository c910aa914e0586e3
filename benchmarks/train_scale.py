"""Training at scale: `intent-edge train --streaming` on synthetic tables of growing size, beside LightGBM.

For each size: `intent-edge data synth --rows N --seed 5` (Parquet), then in fresh processes, each with
its wall time and peak resident memory (VmHWM): `intent-edge train DATA --streaming`, and LightGBM with
default parameters and n_jobs=2 fitted on the same training rows (every row the bundle's hash split did
not hold out; reading the file is part of its time). Both are scored on one fixed held-out table of
1,000,000 rows (`data synth --seed 6`). Flat memory across sizes and the ROC-AUC beside LightGBM's are the
claims; the report goes to benchmarks/results/.

    .venv/bin/python benchmarks/train_scale.py [--rows 100000,1000000,10000000] [--holdout-rows 1000000]
                                               [--spark-rows 1000000]

With ``--spark-rows`` (where pyspark and Java are installed), that table gets a ``session_id`` column and
is trained twice, keyed by it: on the local engine and with ``--engine spark --spark-master local[2]``; the
report compares their encoders (vocabularies, medians, moments), held-out ROC-AUC and times. Needs about
0.5 GB of free disk per million rows (the data and the training shards, in a temporary directory,
removed afterwards).
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

# Runs the given code in a fresh process, then reports that process's peak resident memory.
_PEAK = 'print("PEAK", next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))'

_TRAIN = """
import sys
from intent_edge.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    """ + _PEAK

_LIGHTGBM = """
import json, sys, time
import numpy as np, pandas as pd, lightgbm as lgb
from intent_edge.data.io import load_dataset
from intent_edge.train.pipeline import rebuild_split
from intent_edge.train.teacher import teacher_frame
started = time.perf_counter()
dataset = load_dataset(sys.argv[1], "Revenue")
manifest = json.load(open(sys.argv[2] + "/manifest.json"))
train, _ = rebuild_split(dataset, manifest["training"])
kinds = dataset.schema.kinds
model = lgb.LGBMClassifier(n_jobs=2, verbose=-1).fit(teacher_frame(dataset.features.iloc[train], kinds),
                                                     dataset.labels[train])
seconds = time.perf_counter() - started
del dataset
holdout = load_dataset(sys.argv[3], "Revenue")
p = model.predict_proba(teacher_frame(holdout.features, kinds))[:, 1]
np.save(sys.argv[4], p)
print("SECONDS", seconds, "ROWS", len(train))
""" + _PEAK


def run(code: str, *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    fields = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("PEAK", "SECONDS"):
            fields.update({parts[i]: float(parts[i + 1]) for i in range(0, len(parts) - 1, 2)})
    return wall, fields


def synth(path: Path, rows: int, seed: int) -> None:
    subprocess.run([sys.executable, "-c", "from intent_edge.cli import app; app()", "data", "synth", "--rows",
                    str(rows), "--seed", str(seed), "--out", str(path)], check=True, capture_output=True)


def holdout_auc(bundle: Path, holdout: Path, lightgbm_p: Path | None) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from intent_edge.data.io import load_dataset
    from intent_edge.runtime import Predictor

    data = load_dataset(holdout, "Revenue")
    predictor = Predictor.load(bundle, backend="onnxruntime", strict=False)
    p = np.concatenate([predictor.predict_batch(data.features.iloc[s:s + 200_000])
                        for s in range(0, len(data.labels), 200_000)])
    return {"intent_edge": float(roc_auc_score(data.labels, p)),
            "lightgbm": None if lightgbm_p is None else float(roc_auc_score(data.labels, np.load(lightgbm_p)))}


def spark_comparison(work: Path, data: Path, holdout: Path) -> dict:
    """The same table trained on the local engine and on Spark (local[2]), both keyed by a session_id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keyed = work / "keyed.parquet"
    table = pq.read_table(data)
    table = table.append_column("session_id", pa.array([f"s{i:09d}" for i in range(table.num_rows)]))
    pq.write_table(table, keyed, row_group_size=131_072)
    del table
    runs = {}
    for engine in ("local", "spark"):
        bundle = work / f"keyed-{engine}"
        extra = ["--engine", "spark", "--spark-master", "local[2]"] if engine == "spark" else []
        wall, fields = run(_TRAIN, "train", str(keyed), "--out", str(bundle), "--streaming", "--id-column",
                           "session_id", *extra)
        manifest = json.loads((bundle / "manifest.json").read_text())
        runs[engine] = {"wall_seconds": wall, "peak_rss_mib": fields["PEAK"] / 1024, "manifest": manifest,
                        "holdout_roc_auc": holdout_auc(bundle, holdout, None)["intent_edge"]}
    local, spark = (runs[e]["manifest"]["encoder"]["features"] for e in ("local", "spark"))
    numeric = [(a, b) for a, b in zip(local, spark, strict=True) if a["kind"] == "numeric"]
    keyed.unlink()
    return {
        "rows": pq.ParquetFile(data).metadata.num_rows,
        "vocabularies_equal": all(a.get("vocabulary") == b.get("vocabulary")
                                  for a, b in zip(local, spark, strict=True)),
        "medians_equal": all(a["fill"] == b["fill"] for a, b in numeric),
        "largest_relative_moment_difference": max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-300)
                                                  for a, b in numeric for k in ("center", "scale")),
        "split_equal": runs["local"]["manifest"]["training"]["split"] == runs["spark"]["manifest"]["training"]["split"],
        **{engine: {k: v for k, v in r.items() if k != "manifest"} | {
            "test_roc_auc": r["manifest"]["metrics"]["test"]["roc_auc"],
            "parity_max_abs_diff": r["manifest"]["variants"]["fp32"]["parity"]["max_abs_diff"]}
           for engine, r in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000,10000000", help="comma-separated table sizes")
    parser.add_argument("--holdout-rows", type=int, default=1_000_000)
    parser.add_argument("--spark-rows", type=int, default=None, help="compare the Spark engine on this size")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    results, comparison = [], None
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        holdout = work / "holdout.parquet"
        synth(holdout, args.holdout_rows, 6)
        for rows in (int(r) for r in args.rows.split(",")):
            data, bundle = work / f"sessions-{rows}.parquet", work / f"bundle-{rows}"
            print(f"{rows:,} rows: writing", flush=True)
            synth(data, rows, 5)
            print(f"{rows:,} rows: intent-edge train --streaming", flush=True)
            wall, fields = run(_TRAIN, "train", str(data), "--out", str(bundle), "--streaming")
            manifest = json.loads((bundle / "manifest.json").read_text())
            print(f"{rows:,} rows: LightGBM", flush=True)
            lgb_wall, lgb = run(_LIGHTGBM, str(data), str(bundle), str(holdout), str(work / "lightgbm.npy"))
            auc = holdout_auc(bundle, holdout, work / "lightgbm.npy")
            results.append({
                "rows": rows, "engine": "local",
                "intent_edge": {"wall_seconds": wall, "rows_per_second": rows / wall,
                                "peak_rss_mib": fields["PEAK"] / 1024, "holdout_roc_auc": auc["intent_edge"],
                                "test_roc_auc": manifest["metrics"]["test"]["roc_auc"],
                                "streaming": manifest["training"]["streaming"]},
                "lightgbm": {"wall_seconds": lgb_wall, "fit_seconds_with_reading": lgb["SECONDS"],
                             "training_rows": int(lgb["ROWS"]), "peak_rss_mib": lgb["PEAK"] / 1024,
                             "holdout_roc_auc": auc["lightgbm"]}})
            print(json.dumps(results[-1]), flush=True)
            if rows == args.spark_rows:
                print(f"{rows:,} rows: the local and the Spark engine, keyed by session_id", flush=True)
                comparison = spark_comparison(work, data, holdout)
                print(json.dumps(comparison), flush=True)
            data.unlink()
    date = dt.date.today().isoformat()
    report = {"date": date, "host": host_description(), "holdout_rows": args.holdout_rows, "results": results,
              "spark_comparison": comparison}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"train-scale-{date}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Training at scale, {date}", "",
             f"Command: `.venv/bin/python benchmarks/train_scale.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {report['host']['cpu']}, {report['host']['cores']} cores, Python {report['host']['python']}. "
             f"Synthetic sessions (`data synth --seed 5`, Parquet); ROC-AUC on {args.holdout_rows:,} held-out rows "
             "(`--seed 6`). Wall times include starting the process and reading the data.", "",
             "| rows | engine | intent-edge wall s | rows/s | peak RSS MiB | ROC-AUC | LightGBM wall s | "
             "LightGBM peak RSS MiB | LightGBM ROC-AUC |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rows']:,} | {r['engine']} | {r['intent_edge']['wall_seconds']:.0f} | "
              f"{r['intent_edge']['rows_per_second']:,.0f} | {r['intent_edge']['peak_rss_mib']:.0f} | "
              f"{r['intent_edge']['holdout_roc_auc']:.4f} | {r['lightgbm']['wall_seconds']:.0f} | "
              f"{r['lightgbm']['peak_rss_mib']:.0f} | {r['lightgbm']['holdout_roc_auc']:.4f} |" for r in results]
    if comparison is not None:
        local, spark = comparison["local"], comparison["spark"]
        lines += ["", f"Spark (`--engine spark --spark-master local[2]`) beside the local engine on "
                  f"{comparison['rows']:,} rows with a `session_id` column, both `--id-column session_id`:", "",
                  "| engine | wall s | peak RSS MiB | test ROC-AUC | held-out ROC-AUC |", "|---|---|---|---|---|",
                  *(f"| {name} | {r['wall_seconds']:.0f} | {r['peak_rss_mib']:.0f} | {r['test_roc_auc']:.4f} | "
                    f"{r['holdout_roc_auc']:.4f} |" for name, r in (("local", local), ("spark", spark))), "",
                  f"Vocabularies equal: {comparison['vocabularies_equal']}; medians equal: "
                  f"{comparison['medians_equal']}; split equal: {comparison['split_equal']}; largest relative "
                  "difference of a mean or standard deviation: "
                  f"{comparison['largest_relative_moment_difference']:.1e}."]
    (args.out / f"train-scale-{date}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
