"""The `intent-edge` command: one module per command group, each parsing its options, calling one
library function and printing. Heavy libraries are imported inside the commands that need them, so
`predict`, `score`, `stream` and `info` never load TensorFlow."""

from __future__ import annotations

import typer

from intent_edge.cli import bench, bundle, compress, data, evaluate, monitor, scoring, serve, train

app = typer.Typer(help="intent-edge: purchase-intent models from session data to an embeddable runtime.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(data.app, name="data")
for module in (train, evaluate, scoring, compress, bench, bundle, serve, monitor):
    module.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
