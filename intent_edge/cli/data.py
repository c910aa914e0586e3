"""`intent-edge data`: the built-in synthetic session tables and event logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import SeedOption, console, user_errors

app = typer.Typer(help="Make session data.", no_args_is_help=True)


@app.command("synth")
@user_errors
def data_synth(
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, or .parquet for Parquet.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of sessions.")] = 20000,
    seed: SeedOption = None,
    shift: Annotated[str | None, typer.Option(
        "--shift", help="A documented covariate shift, to test monitoring against: traffic-source (a new source, "
                        "code 21, brings 80% of sessions, of keen returning shoppers) or season (November brings "
                        "90% of sessions, December the rest).")] = None,
):
    """Write synthetic shopping sessions in the UCI Online Shoppers layout (label column: Revenue)."""
    from intent_edge.data.synth import write_sessions

    summary = write_sessions(out, rows, seed or 0, shift)
    console.print(f"wrote {rows} sessions ({summary['buyers']:.1%} buyers) to {out}")


@app.command("clickstream")
@user_errors
def data_clickstream(
    out: Annotated[Path, typer.Option("--out", help="Output event log: .csv, or .parquet for Parquet.")],
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Number of sessions.")] = 20000,
    seed: SeedOption = None,
):
    """Write a synthetic clickstream event log (session_id, timestamp, event, product, dwell; buying
    sessions end with a purchase event). The story is in intent_edge/clickstream/synth.py."""
    from intent_edge.clickstream.synth import write_clickstream

    summary = write_clickstream(out, sessions, seed or 0)
    console.print(f"wrote {summary['events']:,} events of {sessions:,} sessions ({summary['buyers']:.1%} buy) to {out}")
