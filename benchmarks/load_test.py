"""Load test of `intent-edge serve` on loopback: sustained requests/s and latency at a few concurrency levels.

Starts the service in its own process, then drives it with wrk (one client thread, N keep-alive
connections; `apt-get install wrk`) sending requests that cycle through 1,000 distinct synthetic
records, for a fixed time per level. Without wrk, a bounded httpx client in this process does the same
(it is the slower side then: the report says which client ran). Any non-200 answer or socket error is
counted as an error. Service and client share the machine's cores, as an app server and its scoring
sidecar would.

    .venv/bin/python benchmarks/load_test.py BUNDLE [--levels 1,4,16,64] [--seconds 10] [--batch 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intent_edge.bench import host_description, percentiles  # noqa: E402
from intent_edge.data.synth import generate_sessions  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_WRK_SCRIPT = """
local bodies = {
%s
}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50": %%d, "p90": %%d, "p99": %%d, ' ..
    '"p99.9": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def drive_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: float, script: Path) -> dict:
    script.write_text(_WRK_SCRIPT % ",\n".join("[==[" + b.decode() + "]==]" for b in bodies))
    done = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script), url],
                          capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    figures = json.loads(line[len("RESULT "):])
    elapsed = figures["duration_us"] / 1e6
    return {"concurrency": concurrency, "requests": figures["requests"], "seconds": elapsed,
            "requests_per_second": figures["requests"] / elapsed,
            "latency_ms": {k: figures[k] / 1000 for k in ("p50", "p90", "p99", "p99.9")},
            "errors": {k: v for k, v in figures["errors"].items() if v}}


async def drive_httpx(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[int] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter_ns()
                try:
                    answer = await client.post(url, content=bodies[i % len(bodies)],
                                               headers={"content-type": "application/json"})
                    if answer.status_code != 200:
                        errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                latencies.append(time.perf_counter_ns() - started)
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    samples = np.array(latencies, dtype=np.int64)
    return {"concurrency": concurrency, "requests": len(latencies), "seconds": elapsed,
            "requests_per_second": len(latencies) / elapsed,
            "latency_ms": {k: v / 1000 for k, v in percentiles(samples).items()}, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1, help="records per request (1: the single-record form)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    from intent_edge.runtime import Predictor

    names = list(Predictor.load(args.bundle).feature_names)
    records = generate_sessions(1000 * args.batch, seed=77)[names].to_dict("records")
    if args.batch == 1:
        bodies = [json.dumps({"record": r}).encode() for r in records]
    else:
        bodies = [json.dumps({"records": records[i:i + args.batch]}).encode()
                  for i in range(0, len(records) - args.batch + 1, args.batch)]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "intent_edge.cli", "serve", str(args.bundle), "--port", str(port)],
                              stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            sys.exit(f"the service did not start: {server.stderr.read()[-2000:] if server.poll() is not None else ''}")
        served = httpx.get(f"{url}/healthz").json()
        client = "wrk" if shutil.which("wrk") else "httpx"
        with tempfile.TemporaryDirectory() as work:
            def drive(level: int, seconds: float) -> dict:
                if client == "wrk":
                    return drive_wrk(f"{url}/v1/predict", bodies, level, seconds, Path(work) / "post.lua")
                return asyncio.run(drive_httpx(f"{url}/v1/predict", bodies, level, seconds))

            drive(4, 1.0)  # warm-up
            results = []
            for level in [int(x) for x in args.levels.split(",")]:
                results.append(drive(level, args.seconds))
                print(json.dumps(results[-1]), flush=True)
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    date = dt.date.today().isoformat()
    report = {"date": date, "host": host_description(), "served": served, "batch": args.batch, "client": client,
              "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"load-test-{date}" if args.batch == 1 else args.out / f"load-test-batch{args.batch}-{date}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    scored = next((line.split()[-1] for line in metrics.splitlines()
                   if line.startswith("intent_edge_records_scored_total")), "?")
    lines = [f"# Service load test, {date}", "",
             f"Command: `.venv/bin/python benchmarks/load_test.py {' '.join(sys.argv[1:])}`", "",
             f"Host: {report['host']['cpu']}, {report['host']['cores']} cores (shared by the service and the client), "
             f"Python {report['host']['python']}. Service: `intent-edge serve` (uvicorn, one process), variant "
             f"{served['variant']} on {served['backend']}. Client: "
             + ("wrk 1 thread" if client == "wrk" else "httpx (Python; the slower side)")
             + f", keep-alive connections, {args.batch} record(s) per request, {args.seconds:g} s per level, "
             f"{len(records):,} distinct records.", "",
             "| concurrency | requests | requests/s | records/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['concurrency']} | {r['requests']:,} | {r['requests_per_second']:,.0f} | "
              f"{r['requests_per_second'] * args.batch:,.0f} | "
              + " | ".join(f"{r['latency_ms'][k]:.2f}" for k in ("p50", "p90", "p99", "p99.9"))
              + f" | {sum(r['errors'].values()) or 0} |" for r in results]
    lines += ["", f"Records scored according to the service's /metrics at the end: {scored}."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
