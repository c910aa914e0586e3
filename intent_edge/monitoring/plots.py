"""PNGs of a monitoring report: each drifting field's training and current distributions (overall, and in
each period where it drifts), and with periods, drift and the estimated ROC-AUC over them (matplotlib,
which comes with the train extra)."""

from __future__ import annotations

import re
from pathlib import Path


def write_monitor_plots(result: dict, directory: str | Path) -> list[Path]:
    try:
        import matplotlib
    except ImportError:
        from intent_edge.errors import UsageError

        raise UsageError("--plots needs matplotlib: pip install 'intent-edge[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    reports = [(None, result), *result.get("periods", {}).items()]
    drifting = [(period, name, entry) for period, part in reports for name, entry in part["fields"].items()
                if entry["drift"]]
    for period, name, entry in drifting:
        bins = entry["bins"]
        reference, current = (np.asarray(bins[k], dtype=float) for k in ("reference", "current"))
        positions = np.arange(len(bins["labels"]))
        figure, axes = plt.subplots(figsize=(max(6.0, 0.45 * len(positions)), 4))
        axes.bar(positions - 0.2, reference / max(reference.sum(), 1), 0.4, label="training")
        axes.bar(positions + 0.2, current / max(current.sum(), 1), 0.4, label="current")
        axes.set_xticks(positions, bins["labels"], rotation=60, ha="right", fontsize=8)
        axes.set_ylabel("share of rows")
        axes.set_title(f"{name}{'' if period is None else f' ({period})'}: PSI {entry['psi']:.3f}, "
                       f"chi-square p {entry['p_value']:.2g}")
        axes.legend()
        figure.tight_layout()
        stem = name if period is None else f"{period}-{name}"
        path = directory / f"drift-{re.sub(r'[^A-Za-z0-9_.-]', '_', stem)}.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    if result.get("periods"):
        names = list(result["periods"])
        entries = [result["periods"][n] for n in names]
        figure, (drift, auc) = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(names)), 6), sharex=True)
        drift.plot(names, [e["score"]["psi"] for e in entries], marker="o", label="score PSI")
        drift.plot(names, [max(f["psi"] for f in e["fields"].values()) for e in entries], marker="s",
                   label="largest field PSI")
        drift.axhline(result["rule"]["psi_threshold"], color="grey", linestyle="--", label="PSI threshold")
        drift.set_ylabel("PSI")
        drift.legend()
        estimated = [e["performance"]["estimated"]["roc_auc"] for e in entries]
        auc.plot(names, estimated, marker="o", label="estimated")
        auc.fill_between(names, [e["performance"]["estimated"]["lower"] for e in entries],
                         [e["performance"]["estimated"]["upper"] for e in entries], alpha=0.2)
        realised = [(e["performance"].get("realised") or {}).get("roc_auc") for e in entries]
        if any(r is not None for r in realised):
            auc.plot(names, [np.nan if r is None else r for r in realised], marker="s", label="realised")
        auc.axhline(result["performance"]["reference"]["roc_auc"], color="grey", linestyle="--",
                    label="held-out (training)")
        auc.set_ylabel("ROC-AUC")
        auc.legend()
        figure.tight_layout()
        path = directory / "periods.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written
