"""`intent-edge info`, `keygen`, `sign` and `export`: what a bundle holds, its signature, its exports."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import PublicKeyOption, console, refuse, stdout, user_errors
from intent_edge.errors import UsageError


class ExportFormat(enum.StrEnum):
    triton = "triton"
    c = "c"


def register(app: typer.Typer) -> None:
    for command in (info, keygen, sign, export):
        app.command()(command)


@user_errors
def info(bundle: Annotated[Path, typer.Argument(help="Bundle directory.")], public_key: PublicKeyOption = None):
    """Verify a bundle's checksums (and signature) and show its schema, threshold, metrics and variants.
    Nothing is run: a variant whose backend is not installed here is listed as unavailable."""
    from intent_edge.runtime.bundle import read_manifest, verify_files

    manifest = read_manifest(bundle, public_key)
    verify_files(bundle, manifest)
    if public_key is not None:
        stdout.print(f"signature verified with {public_key}")
    if manifest.get("task") == "clickstream":
        _info_clickstream(bundle, manifest)
    else:
        _info_sessions(bundle, manifest)


def _backend_line(entry: dict) -> str:
    from intent_edge.errors import BackendUnavailable
    from intent_edge.runtime.backends import backend_for

    try:
        return backend_for(entry)[0].name
    except BackendUnavailable as exc:
        return f"unavailable here ({exc})"


def _info_sessions(bundle: Path, manifest: dict) -> None:
    from rich.table import Table

    from intent_edge.runtime.encoder import _fastencode

    test, encoder = manifest["metrics"]["test"], manifest["encoder"]
    default = manifest["default_variant"]
    stdout.print(f"[bold]{bundle}[/]: label {manifest['label']}, {len(encoder['features'])} features, "
                 f"encoded width {encoder['width']}, created {manifest['created']}")
    kinds = manifest["schema"]["kinds"]
    for kind in ("numeric", "categorical"):
        stdout.print(f"{kind}: {', '.join(n for n, k in kinds.items() if k == kind) or '-'}", highlight=False)
    stdout.print(f"threshold {manifest['threshold']['value']:.4f}; test ROC-AUC {test['roc_auc']:.4f}, PR-AUC "
                 f"{test['pr_auc']:.4f}, F1 {test['f1']:.4f} on {test['rows']} rows; single-record encoder: "
                 f"{'compiled fast path' if _fastencode is not None else 'pure Python'}")
    stdout.print(f"default variant {default}, runtime backend: "
                 + _backend_line(manifest["variants"][default]), markup=False, highlight=False)
    table = Table(title=f"variants (checksums verified; default: {default})")
    for column in ("variant", "format", "file", "bytes", "parity max |dp|", "output levels (tie share)",
                   "backend here", "raw-field graph"):
        table.add_column(column)
    for name, variant in manifest["variants"].items():
        raw = variant.get("raw", {})
        table.add_row(name, variant["format"], variant["file"]["path"], str(variant["file"]["bytes"]),
                      f"{variant['parity']['max_abs_diff']:.2e} ({variant['parity']['rows']} rows)",
                      _levels_cell(variant.get("output")), _backend_line(variant).split(" (")[0],
                      raw["file"]["path"] if raw.get("status") == "ok" else raw.get("status", "-").split(":")[0])
    stdout.print(table)
    output = manifest["variants"][default].get("output")
    if output is not None:
        from intent_edge.compress.levels import describe_levels

        stdout.print(f"default variant's output: {describe_levels(output['levels'])}; "
                     f"{100 * output['tie_share']:.1f}% of held-out rows share their score with another row",
                     markup=False, highlight=False)


def _levels_cell(output: dict | None) -> str:
    """A variant's output levels and tie share as `compress` recorded them ("-": not recorded)."""
    if output is None:
        return "- (run compress)"
    levels = "float32" if output["levels"] is None else f"{output['levels']:,}"
    return f"{levels} ({100 * output['tie_share']:.1f}%)"


def _info_clickstream(bundle: Path, manifest: dict) -> None:
    from rich.table import Table

    from intent_edge.runtime.streaming import describe_state

    step = manifest.get("step", {})
    steps = {**{f"{b} fp32": e for b, e in step.get("backends", {}).items()},
             **{f"{b} int8": e for b, e in step.get("int8", {}).items()}}
    model = manifest["model"]
    stdout.print(f"[bold]{bundle}[/]: clickstream {model['kind']} ({model['recipe']['units']} units), "
                 f"{len(manifest['sequence']['vocabulary'])} event types: "
                 f"{', '.join(manifest['sequence']['vocabulary'])}; label: {manifest.get('label', 'purchase event')}; "
                 f"created {manifest['created']}", highlight=False)
    stdout.print(f"threshold {manifest['threshold']['value']:.4f}; test ROC-AUC by prefix: "
                 + ", ".join(f"k={k} {m['roc_auc']:.4f}" for k, m in manifest["metrics"]["test"].items()))
    table = Table(title="streaming steps (checksums verified)")
    for column in ("step", "file", "bytes", "parity max |dp|"):
        table.add_column(column)
    for name, entry in steps.items():
        table.add_row(name, entry["file"]["path"], str(entry["file"]["bytes"]),
                      f"{entry['parity']['max_abs_diff']:.2e} ({entry['parity']['rows']} events)")
    if steps:
        stdout.print(f"per-session state: {describe_state(step)}")
    if step.get("raw", {}).get("status") == "ok":
        stdout.print(f"raw-field step (event name and seconds in, for any ONNX Runtime host): "
                     f"{step['raw']['file']['path']}" + (f"; context: {manifest['context']['raw']['file']['path']}"
                                                         if "raw" in manifest.get("context", {}) else ""),
                     markup=False)
    reading = manifest.get("events")
    if reading:
        columns = reading["columns"]
        named = {"session": columns["session"], "user": columns["user"], "event": columns["event"],
                 "time": f"{columns['timestamp']} ({reading['time_unit']})"}
        gap = "" if columns["session"] else f"; sessions end after {reading['session_gap_seconds']:g} s idle"
        stdout.print(f"event layout {reading['layout']} (what stream reads): "
                     + ", ".join(f"{role} {name}" for role, name in named.items() if name) + gap,
                     markup=False, highlight=False)
    if "context" in manifest:
        stdout.print("session context, read from each session's first event: "
                     + ", ".join(manifest["context"]["columns"]), highlight=False)
    stdout.print(table if steps else "no streaming step (a cnn bundle from before streaming windows)")


@user_errors
def keygen(
    private: Annotated[Path, typer.Option("--private", help="Where to write the private key (PEM, mode 600).")],
    public: Annotated[Path, typer.Option("--public", help="Where to write the public key (PEM).")],
):
    """Make an Ed25519 key pair for signing bundles."""
    from intent_edge.runtime.signing import generate_keypair

    if private.exists():
        raise UsageError(f"{private} exists; refusing to overwrite a private key")
    generate_keypair(private, public)
    console.print(f"private key: {private} (keep it secret); public key: {public} (ship it with the runtime)")


@user_errors
def sign(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to sign (sign after train and compress).")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM), e.g. from `intent-edge keygen`.")],
):
    """Sign a bundle's manifest, which lists every file's sha256, with an Ed25519 private key."""
    from intent_edge.runtime.bundle import sign_bundle
    from intent_edge.runtime.signing import SIGNATURE_NAME

    sign_bundle(bundle, key)
    console.print(f"signed: {bundle / SIGNATURE_NAME}; load with Predictor.load(..., public_key=PUBLIC_PEM) or "
                  "--public-key")


@user_errors
def export(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write (replaced atomically if it exists).")],
    format: Annotated[ExportFormat, typer.Option("--format", help="What to write: triton (a Triton Inference Server "
                                                                  "model repository with config.pbtxt and an encoding "
                                                                  "guide) or c (a dependency-free C99 library: "
                                                                  "encoder and network, or a GRU/LSTM clickstream "
                                                                  "bundle's streaming step, with its test harness).")]
        = ExportFormat.triton,
    variant: Annotated[str | None, typer.Option("--variant", help="Variant to export (default: the bundle's default "
                                                                  "where the format takes it, else fp32).")] = None,
    model_name: Annotated[str, typer.Option("--model-name", help="triton: model name in the repository.")]
        = "intent_edge",
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", min=1, help="triton: max_batch_size.")] = 4096,
    instances: Annotated[int, typer.Option("--instances", min=1, help="triton: instance_group count.")] = 1,
    gpu: Annotated[bool, typer.Option("--gpu/--cpu", help="triton: KIND_GPU or KIND_CPU instances.")] = False,
    prefix: Annotated[str, typer.Option("--prefix", help="c: the prefix of every file and symbol.")]
        = "intent_edge_model",
    build: Annotated[bool, typer.Option("--build", help="c: compile with the host's cc, run the harness, and write "
                                                        "PREFIX_build.json (sizes, stack, ns per record, parity).")]
        = False,
):
    """Export a bundle variant for a serving engine (Triton) or as a C library for any host with a C compiler."""
    if format is ExportFormat.c:
        from intent_edge.export.c import export_c

        summary = export_c(bundle, out, variant=variant, prefix=prefix)
        console.print(f"C library of {summary['variant']} written to {out}: {', '.join(summary['files'])} "
                      f"(harness: {summary['harness']})", markup=False)
        if build:
            from intent_edge.export.c_build import build_c

            report = build_c(out, prefix)
            console.print(f"built with {report['compiler']}: {report['size_bytes']['Os']:,} bytes at -Os, "
                          f"{report['size_bytes']['O2']:,} at -O2, largest stack frame {report['stack_bytes']} "
                          f"bytes; {report['ns_per_record']:.0f} ns a call; harness: {report['parity']['cases']} "
                          f"cases, max |dp| {report['parity']['max_abs_diff']:.2g} against the Python runtime",
                          markup=False)
        return
    refuse({"--build": build or None}, "to a Triton export")
    from intent_edge.triton import export_triton

    model_dir = export_triton(bundle, out, variant=variant, model_name=model_name, max_batch_size=max_batch_size,
                              instances=instances, gpu=gpu)
    encoded = model_dir.parent / f"{model_dir.name}_encoded"
    console.print(f"Triton model repository written: {model_dir.name} (raw fields in)"
                  + (f" and {encoded.name} (encoded rows in)" if encoded.is_dir() else "")
                  + f"; how to call them: {out / 'README.md'}", markup=False)
