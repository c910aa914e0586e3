"""`intent-edge bench` on a clickstream bundle: per-event update latency against rescoring the prefix."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from intent_edge.timing import host_description, percentiles

STREAM_PREFIXES = (10, 50, 200)


def streaming_latency(bundle: str | Path, events: list[dict], *, sessions: int = 2000,
                      prefixes=STREAM_PREFIXES, on_step: Callable[[str], None] | None = None) -> dict:
    """A clickstream bundle's per-event ``update`` latency against rescoring the whole prefix, per step
    backend and prefix length n: ``sessions`` sessions get n - 1 events (untimed), then the n-th update is
    timed; rescoring replays all n events from a fresh state (``score_session``), what a scorer without
    carried state pays per click. ``events`` are raw events (``event`` and ``timestamp``) to cycle through.

    The prefix lengths are timed interleaved (one scorer per length, session by session in one loop),
    so that all of them see the same moments of a noisy machine and their ratios mean something."""
    import json

    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import read_manifest, resolve_file
    from intent_edge.runtime.streaming import SessionScorer, describe_state

    manifest = read_manifest(bundle)
    # A hybrid model reads the session context from each session's first event: take a golden session's.
    first_golden = json.loads(resolve_file(bundle, manifest["golden"]["file"]).read_text())["sessions"][0]
    context = {name: first_golden["events"][0][name] for name in manifest.get("context", {}).get("columns", ())}
    session_events = {}
    for n in prefixes:
        session_events[n] = [{"event": events[(i * 7) % len(events)]["event"], "timestamp": 1000 * i}
                             for i in range(n)]
        session_events[n][0].update(context)
    clock = time.perf_counter_ns
    rows = []
    for backend in manifest["step"]["backends"]:
        if not BACKENDS[backend].is_available():
            rows.append({"backend": backend, "status": f"unavailable: {BACKENDS[backend].install_hint}"})
            continue
        scorers = {}
        for n in prefixes:
            if on_step:
                on_step(f"{backend}: {sessions:,} sessions of {n - 1} events")
            scorers[n] = SessionScorer.load(bundle, backend=backend, max_sessions=sessions + 1)
            for s in range(sessions):
                for event in session_events[n][:-1]:
                    scorers[n].update(f"s{s}", event)
        if on_step:
            on_step(f"{backend}: timing updates and rescoring")
        update = {n: np.empty(sessions, dtype=np.int64) for n in prefixes}
        for s in range(sessions):
            for n in prefixes:
                started = clock()
                scorers[n].update(f"s{s}", session_events[n][-1])
                update[n][s] = clock() - started
        repeats = {n: max(20, min(sessions, 100_000 // n)) for n in prefixes}
        rescore = {n: np.empty(repeats[n], dtype=np.int64) for n in prefixes}
        for r in range(max(repeats.values())):
            for n in prefixes:
                if r < repeats[n]:
                    started = clock()
                    scorers[n].score_session(session_events[n])
                    rescore[n][r] = clock() - started
        shortest = percentiles(update[min(prefixes)])["p50"]
        for n in prefixes:
            figures = percentiles(update[n])
            rows.append({"backend": backend, "status": "ok", "description": scorers[n].description, "prefix": n,
                         "update_us": figures, "rescore_us": percentiles(rescore[n]),
                         "update_p50_over_shortest_prefix": figures["p50"] / shortest,
                         "sessions": sessions, "rescore_repeats": repeats[n]})
    return {"bundle": str(bundle), "host": host_description(), "model": manifest["model"]["kind"],
            "state": describe_state(manifest["step"]), "rows": rows}




def streaming_events(data: Path | None, *, sep: str | None = None) -> list[dict]:
    """Raw events to cycle through: a labelled event log's (``data``), or a synthetic log's."""
    if data is not None:
        from intent_edge.clickstream.events import read_event_log

        return [{"event": e} for e in read_event_log(data, sep=sep).events.tolist()]
    from intent_edge.clickstream.synth import generate_clickstream

    return [{"event": e} for e in generate_clickstream(500, seed=20261127)["event"] if e != "purchase"]
