"""Streaming scorer: per-event update latency against rescoring the prefix, and a concurrency soak.

    .venv/bin/python benchmarks/streaming.py BUNDLE [--sessions 2000] [--soak 1000000] [--threads 8]

1. Latency (``intent_edge.bench.streaming_latency``, as `intent-edge bench` runs it), for every step
   backend and prefixes of 10, 50 and 200 events: ``--sessions`` sessions receive n - 1 events
   (untimed), then the n-th ``update`` is timed; against it, rescoring the whole n-event prefix from a
   fresh state (``score_session``, what a scorer without carried state must do per click) is timed.
2. Concurrency. ``--threads`` threads each stream their own sessions (synthetic event logs) through one
   shared scorer; every probability must equal a single-threaded run exactly.
3. Soak. ``--soak`` updates over sessions that keep opening and expiring: 800 sessions click at once,
   12 events each, one every 8 simulated seconds, then go idle; TTL 30 simulated seconds and a cap of
   1,000 open sessions, so both expiry and eviction happen. Resident memory is sampled every 10%; after
   warm-up it must stay within 5%.
Writes benchmarks/results/streaming-<date>.md and exits non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.bench import host_description, streaming_latency, streaming_table  # noqa: E402
from intent_edge.clickstream.synth import CONTEXT_COLUMNS, generate_clickstream  # noqa: E402
from intent_edge.runtime.streaming import SessionScorer, describe_state  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no /proc/self/status")


def synthetic_sessions(count: int, seed: int) -> list[list[dict]]:
    log = generate_clickstream(count, seed)
    log = log[log["event"] != "purchase"]
    sessions = []
    for _, g in log.groupby("session_id", sort=False):
        events = [{"event": e, "timestamp": int(t)} for e, t in zip(g["event"], g["timestamp"], strict=True)]
        events[0].update(g[list(CONTEXT_COLUMNS)].iloc[[0]].to_dict("records")[0])  # what a hybrid model reads
        sessions.append(events)
    return sessions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--soak", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    scorer = SessionScorer.load(args.bundle)
    pool_sessions = synthetic_sessions(3000, seed=5)
    pool = [e for s in pool_sessions for e in s]
    # a hybrid model reads the session context from a session's first event (later events' copies are ignored)
    context = {name: pool_sessions[0][0][name] for name in scorer.context_columns}
    lines = [f"# Streaming scorer, {dt.date.today().isoformat()}", "",
             f"Command: `.venv/bin/python benchmarks/streaming.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {host_description()['cpu']}, {host_description()['cores']} cores. Bundle: "
             f"{scorer.manifest['model']['kind']}, per-session state {describe_state(scorer.manifest['step'])}; "
             "the concurrency "
             f"and soak runs use the default step ({scorer.description}). Prefix lengths timed interleaved.", ""]
    ok = True
    report = streaming_latency(args.bundle, pool, sessions=args.sessions)
    lines += streaming_table(report)
    print("\n".join(lines), flush=True)

    sessions = synthetic_sessions(args.threads * 200, seed=9)
    expected = {}
    alone = SessionScorer.load(args.bundle, max_sessions=len(sessions) + 1)
    for s, events in enumerate(sessions):
        expected[s] = [alone.update(str(s), e) for e in events]
    shared = SessionScorer.load(args.bundle, max_sessions=len(sessions) + 1)
    mismatches = [0] * args.threads

    def work(worker: int) -> None:
        for s in range(worker, len(sessions), args.threads):
            got = [shared.update(str(s), e) for e in sessions[s]]
            mismatches[worker] += sum(a != b for a, b in zip(got, expected[s], strict=True))

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events_total = sum(len(s) for s in sessions)
    lines += ["", f"- Concurrency: {args.threads} threads streamed {len(sessions):,} sessions "
                  f"({events_total:,} events) through one scorer in {time.perf_counter() - started:.1f} s; "
                  f"{sum(mismatches)} probabilities differ "
                  "from the single-threaded run."]
    ok &= sum(mismatches) == 0

    simulated = [0.0]
    soak = SessionScorer.load(args.bundle, max_sessions=1000, ttl_seconds=30.0, clock=lambda: simulated[0])
    samples, started = [], time.perf_counter()
    for i in range(args.soak):
        simulated[0] = i * 0.01  # 100 events a simulated second
        # 800 sessions open at a time, 12 events each (one every 8 simulated s), then idle until they expire
        slot, round_ = i % 800, i // 800
        event = pool[i % len(pool)]
        soak.update(f"s{round_ // 12}-{slot}", {**context, "event": event["event"], "timestamp": i * 10})
        if i % max(1, args.soak // 10) == 0:
            samples.append(rss_mib())
    samples.append(rss_mib())
    drift = max(abs(s - samples[1]) / samples[1] for s in samples[1:]) if len(samples) > 1 else 0.0
    lines.append(f"- Soak: {args.soak:,} updates, 800 sessions clicking at a time, 12 events each "
                 f"({time.perf_counter() - started:.1f} s), cap 1,000 open sessions, TTL 30 simulated s: "
                 f"{soak.stats['sessions_started']:,} sessions started, "
                 f"{soak.stats['expired']:,} expired, {soak.stats['evicted']:,} evicted, {soak.open_sessions} open at "
                 f"the end. Resident memory " + ", ".join(f"{s:.1f}" for s in samples)
                 + f" MiB; largest drift after warm-up {drift:.2%} (limit 5%).")
    ok &= drift <= 0.05
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"streaming-{scorer.manifest['model']['kind']}-{dt.date.today().isoformat()}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
