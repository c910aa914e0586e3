"""`intent-edge serve`: the bundle over HTTP, with metrics and hot reload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import PublicKeyOption, console, user_errors


def register(app: typer.Typer) -> None:
    app.command()(serve)


@user_errors
def serve(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory; read again on SIGHUP or POST /admin/reload.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind. The default accepts local callers only.")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    variant: Annotated[str | None, typer.Option("--variant", help="Model variant (default: the bundle's).")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Impute empty values instead of refusing the record.")]
        = False,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1, help="Largest request body accepted.")]
        = 1 << 20,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most records in one request.")] = 10_000,
    max_explain: Annotated[int, typer.Option("--max-explain", min=1, help="Most records one request may ask to "
                                                                          "explain (\"explain\": true); about a "
                                                                          "millisecond each.")] = 100,
    public_key: PublicKeyOption = None,
    monitor_window: Annotated[int, typer.Option("--monitor-window", min=2, help="Records in the rolling window of "
                                                                               "the drift gauges in /metrics.")]
        = 10_000,
    feedback_ids: Annotated[int, typer.Option("--feedback-ids", min=1, help="Request ids whose scores are kept "
                                                                           "for POST /v1/feedback (the oldest "
                                                                           "go first).")] = 100_000,
):
    """Serve the bundle over HTTP: POST /v1/predict and /v1/feedback, GET /v1/monitor, /healthz, /metrics
    (Prometheus, with drift gauges) and /openapi.json."""
    from intent_edge.serve import Service
    from intent_edge.serve import serve as run_service

    service = Service(bundle, variant=variant, strict=not lenient, public_key=public_key,
                      max_body_bytes=max_body_bytes, max_batch=max_batch,
                      max_explain=max_explain, monitor_window=monitor_window, feedback_ids=feedback_ids)
    described = service.describe()
    console.print(f"serving {bundle} (variant {described['variant']}, {described['backend']}) on http://{host}:{port}"
                  f"; POST /v1/predict /v1/feedback, GET /v1/monitor /healthz /metrics /openapi.json; SIGHUP or "
                  f"POST /admin/reload "
                  f"(from loopback) loads a new bundle; SIGTERM finishes requests in flight, then stops",
                  markup=False)
    run_service(service, host, port)
