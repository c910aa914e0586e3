"""Clickstream models against the order-blind baseline, by prefix length, averaged over seeds.

For each seed: a synthetic event log (`generate_clickstream`, that seed), split by session 70/15/15;
sequence models (`intent_edge.clickstream.models`: gru, lstm, cnn, and hybrid, the GRU started from
the session context) and the baseline, an MLP (64, 32) on bag-of-events counts, bigram counts, the
last event and the mean gap per event type, trained on the prefixes k = 1, 2, 5, 10 and the whole
session of every training session. With hybrid, the baseline is also run with the encoded session
context added to its features ("bag MLP + context"), so the hybrid's gain over it is what order adds. ROC-AUC on
the test sessions
that go on after their k-th event, for k = 1, 2, 5, 10, and on all test sessions seen whole ("all",
the first `--max-length` events). Seen whole, a session shows how it ended (buyers leave from a
checkout page, the purchase event itself removed), so "all" is near 1 for every model and says little.

    .venv/bin/python benchmarks/clickstream.py [--sessions 20000] [--seeds 0,1,2] [--kinds gru,lstm,cnn,hybrid]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.bench import host_description  # noqa: E402
from intent_edge.clickstream.events import (  # noqa: E402
    PLAIN,  # noqa: E402
    encode_sessions,
    event_log_from_frame,
    fit_sequence_spec,
)
from intent_edge.clickstream.models import bag_features, fit_sequence_model, prefix_probabilities  # noqa: E402
from intent_edge.clickstream.pipeline import fit_context_encoder  # noqa: E402
from intent_edge.clickstream.synth import CONTEXT_COLUMNS, generate_clickstream  # noqa: E402

PREFIXES = (1, 2, 5, 10, None)


def write_plot(results: dict, path: Path, sessions: int) -> Path:
    """ROC-AUC against prefix length, one line per model, with the spread over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from intent_edge.fileio import atomic_path

    columns = [str(k) for k in PREFIXES if k] + ["all"]
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name, by_k in results.items():
        means = [np.mean(by_k[c]) for c in columns]
        spread = [np.std(by_k[c]) for c in columns]
        axis.errorbar(range(len(columns)), means, yerr=spread, marker="o", capsize=3, label=name)
    axis.set(xticks=range(len(columns)), xticklabels=[f"k={c}" for c in columns], ylabel="test ROC-AUC",
             title=f"Purchase prediction after the first k events ({sessions:,} sessions, mean ± std over seeds)")
    axis.title.set_fontsize(9)
    axis.legend()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    return path


def main() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.neural_network import MLPClassifier

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kinds", default="gru,lstm,cnn,hybrid")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    results: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        log = event_log_from_frame(generate_clickstream(args.sessions, seed), "synthetic",
                                   replace(PLAIN, context=CONTEXT_COLUMNS))
        order = np.random.default_rng(seed).permutation(len(log))
        cut1, cut2 = int(0.7 * len(order)), int(0.85 * len(order))
        spec = fit_sequence_spec(log, max_length=args.max_length)
        context = fit_context_encoder(log, order[:cut1])
        data = encode_sessions(spec, log, context)
        train, validation, test = data.take(order[:cut1]), data.take(order[cut1:cut2]), data.take(order[cut2:])
        scores = {}
        for kind in kinds:
            started = time.perf_counter()
            # only the hybrid reads the context
            model = fit_sequence_model(kind, *(d if kind == "hybrid" else replace(d, context=None)
                                               for d in (train, validation)), spec.tokens, seed=seed)
            seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started
            scores[kind] = {k: prefix_probabilities(model, test if kind == "hybrid" else replace(test, context=None), k)
                            for k in PREFIXES}
        baselines = {"bag MLP": False, **({"bag MLP + context": True} if "hybrid" in kinds else {})}
        for name, with_context in baselines.items():
            def features(data, k, with_context=with_context, spec=spec):
                bag = bag_features(data, k, spec.tokens)
                return np.hstack([bag, data.context]) if with_context else bag

            started = time.perf_counter()
            x = np.vstack([features(train, k) for k in PREFIXES])
            y = np.tile(train.labels, len(PREFIXES))
            baseline = MLPClassifier((64, 32), early_stopping=True, max_iter=200, random_state=seed).fit(x, y)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
            scores[name] = {k: baseline.predict_proba(features(test, k))[:, 1] for k in PREFIXES}
        for name, by_k in scores.items():
            for k, p in by_k.items():
                # k events and more to come: a prefix that is the whole session would show how it ended
                eligible = test.lengths > k if k else np.ones(len(test.lengths), dtype=bool)
                auc = roc_auc_score(test.labels[eligible], p[eligible])
                results.setdefault(name, {}).setdefault(str(k or "all"), []).append(float(auc))
        print(f"seed {seed}: " + "; ".join(f"{n} " + ", ".join(f"k={k}: {v[-1]:.4f}" for k, v in r.items())
                                           for n, r in results.items()), flush=True)
    date = dt.date.today().isoformat()
    columns = [str(k or "all") for k in PREFIXES]
    lines = [f"# Clickstream models by prefix length, {date}", "",
             f"Command: `.venv/bin/python benchmarks/clickstream.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {host_description()['cpu']}. {args.sessions:,} synthetic sessions per seed (seeds {args.seeds}), "
             f"70/15/15 split by session, first {args.max_length} events. ROC-AUC on test sessions that go on "
             "after their k-th event (all test sessions for k=all), mean ± std over seeds.", "",
             "| model | " + " | ".join(f"k={c}" for c in columns) + " | train s (all seeds) |",
             "|---|" + "---|" * (len(columns) + 1)]
    for name, by_k in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{np.mean(by_k[c]):.4f} ± {np.std(by_k[c]):.4f}" for c in columns)
                     + f" | {seconds[name]:.0f} |")
    lines += ["", "Gains (mean over seeds):", ""]
    comparisons = [(name, "bag MLP") for name in kinds if name != "hybrid"]
    if "hybrid" in kinds:
        comparisons += [("hybrid", "bag MLP + context")] + [("hybrid", "gru")] * ("gru" in kinds)
    for name, reference in comparisons:
        lines.append(f"- {name} over {reference}: "
                     + ", ".join(f"k={c} {np.mean(results[name][c]) - np.mean(results[reference][c]):+.4f}"
                                 for c in columns))
    args.out.mkdir(parents=True, exist_ok=True)
    plot = write_plot(results, args.out / f"clickstream-{date}.png", args.sessions)
    lines += ["", f"![ROC-AUC by prefix length]({plot.name})"]
    (args.out / f"clickstream-{date}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"clickstream-{date}.json").write_text(json.dumps({"date": date,
                                                                   "args": vars(args) | {"out": str(args.out)},
                                                                    "results": results, "seconds": seconds}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
