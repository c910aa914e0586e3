"""The bundle: one directory holding a model, its preprocessing and the proof that they agree.

Layout::

    BUNDLE/
      manifest.json   format and version, schema, encoder spec, threshold, metrics, library versions,
                      every file with its size and sha256, every variant with its parity figures
      model.keras     the trained Keras model (the source of every variant; zip of JSON + weights)
      model.onnx      the fp32 ONNX variant the runtime serves by default
      golden.json     raw records with their expected encodings and probabilities, for ports

Reading uses only the standard library: checksums are verified before a file is used, file names must
stay inside the bundle directory, and nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from intent_edge.errors import BundleError

BUNDLE_FORMAT = "intent-edge-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_file(directory: Path, name: str) -> dict[str, Any]:
    """The manifest entry for a file written into the bundle directory."""
    path = Path(directory) / name
    return {"path": name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def write_manifest(directory: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False)
    (Path(directory) / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")


def read_manifest(directory: str | Path, public_key: str | Path | None = None) -> dict:
    """Read and check a bundle's manifest: it must exist, parse, and be of a version this code reads.
    With ``public_key``, the manifest must also carry a valid signature from that key; the bytes
    verified are the bytes parsed."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise BundleError(f"{directory}: no such bundle directory")
    if not path.is_file():
        raise BundleError(f"{directory}: not a bundle ({MANIFEST_NAME} is missing)")
    raw = path.read_bytes()
    if public_key is not None:
        from intent_edge.runtime.signing import verify_manifest_bytes

        verify_manifest_bytes(directory, raw, public_key)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: damaged, not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: not an intent-edge bundle manifest")
    version = manifest.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format version {version!r} is not supported; this intent-edge "
                          f"reads version {BUNDLE_FORMAT_VERSION} (re-train the bundle, or upgrade intent-edge)")
    return manifest


def sign_bundle(directory: str | Path, private_key: str | Path) -> dict:
    """Sign ``directory``'s manifest with the private key at ``private_key``; returns the signature record."""
    from intent_edge.runtime.signing import sign_manifest_bytes

    directory = Path(directory)
    read_manifest(directory)  # only a readable bundle of a known version is signed
    return sign_manifest_bytes(directory, (directory / MANIFEST_NAME).read_bytes(), MANIFEST_NAME, private_key)


def resolve_file(directory: str | Path, entry: dict) -> Path:
    """The verified path of a manifest file entry: inside the bundle, present, right size and sha256."""
    directory = Path(directory).resolve()
    name = entry.get("path", "")
    path = (directory / name).resolve()
    if not name or path.parent != directory:
        raise BundleError(f"{directory}: manifest names file {name!r}, which is not a plain file name in the bundle")
    if not path.is_file():
        raise BundleError(f"{directory}: {name} is missing")
    if path.stat().st_size != entry.get("bytes"):
        raise BundleError(f"{directory}: {name} is damaged: {path.stat().st_size} bytes, the manifest says "
                          f"{entry.get('bytes')}")
    if sha256_of(path) != entry.get("sha256"):
        raise BundleError(f"{directory}: {name} is damaged: its sha256 does not match the manifest")
    return path


def variant_entry(manifest: dict, variant: str | None) -> tuple[str, dict]:
    """The name and manifest entry of ``variant`` (or of the bundle's default variant)."""
    name = variant or manifest.get("default_variant")
    variants = manifest.get("variants", {})
    if name not in variants:
        raise BundleError(f"bundle has no variant {name!r}; it has: {', '.join(variants) or 'none'}")
    return name, variants[name]


def file_entries(manifest: dict) -> list[dict]:
    """Every file entry a manifest lists: source model, golden file, variants, smaller sources, the
    explanations' background, the monitoring profile, and a clickstream bundle's streaming steps and
    context graphs."""
    def raw(part: dict) -> list[dict]:  # a raw-field graph beside it, where one was written
        return [part["raw"]["file"]] if part.get("raw", {}).get("status", "ok") == "ok" and "raw" in part else []

    entries = [manifest["source_model"]["file"], manifest["golden"]["file"]]
    for variant in manifest.get("variants", {}).values():
        entries += [variant["file"], *raw(variant), *([variant["native"]] if "native" in variant else [])]
    entries += [source["file"] for source in manifest.get("sources", {}).values()]
    step = manifest.get("step", {})
    entries += [e["file"] for e in (*step.get("backends", {}).values(), *step.get("int8", {}).values())]
    entries += [step["native"]] if "native" in step else []
    entries += raw(step) + [f for e in step.get("int8", {}).values() for f in raw(e)]
    context = manifest.get("context", {})
    entries += [e["file"] for e in context.get("backends", {}).values()] + raw(context)
    if "explain" in manifest:
        entries.append(manifest["explain"]["background"]["file"])
    if "monitor" in manifest:
        entries.append(manifest["monitor"]["file"])
    return entries


def verify_files(directory: str | Path, manifest: dict) -> list[Path]:
    """Verify every file the manifest lists (present, inside the bundle, size and sha256); their paths."""
    return [resolve_file(directory, entry) for entry in file_entries(manifest)]


def require_session_bundle(directory: str | Path, manifest: dict, what: str) -> None:
    """Refuse a bundle of another task (a clickstream one) where ``what`` needs a session bundle."""
    task = manifest.get("task", "sessions")
    if task != "sessions":
        raise BundleError(f"{directory}: a {task} bundle; {what} takes a session bundle (intent-edge train DATA "
                          "--model mlp)")
