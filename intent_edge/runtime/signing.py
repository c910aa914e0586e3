"""Signed bundles: Ed25519 over the exact bytes of ``manifest.json``.

Checksums catch damage, not tampering: whoever can rewrite a model file can rewrite its checksum too.
The manifest lists every file with its sha256, so one signature over the manifest's bytes covers the
whole bundle, provided each file is checked against the manifest before use (the loader does that).
The signature lives beside the manifest in ``manifest.sig`` (JSON: algorithm, the signer's public key,
the signature, base64). Rewriting a bundle (``train``, ``compress``) drops the signature: sign last.

Uses the ``cryptography`` package, imported only when signing or verifying
(``pip install 'intent-edge[signing]'``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from intent_edge.errors import BackendUnavailable, BundleError

SIGNATURE_NAME = "manifest.sig"
ALGORITHM = "ed25519"


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BackendUnavailable("signed bundles need the 'cryptography' package: "
                                 "pip install 'intent-edge[signing]'") from None
    return serialization, ed25519, InvalidSignature


def generate_keypair(private_path: str | Path, public_path: str | Path) -> None:
    """Write a new Ed25519 key pair as PEM files; the private one readable by its owner only."""
    from intent_edge.fileio import atomic_path

    serialization, ed25519, _ = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    with atomic_path(private_path) as temporary:
        temporary.chmod(0o600)
        temporary.write_bytes(private_pem)
    with atomic_path(public_path) as temporary:
        temporary.write_bytes(public_pem)


def _load_key(path: str | Path, private: bool):
    serialization, ed25519, _ = _crypto()
    try:
        data = Path(path).read_bytes()
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not a readable {'private' if private else 'public'} key in PEM form "
                          f"({exc})") from None
    wanted = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise BundleError(f"{path}: an Ed25519 key is needed, this is a {type(key).__name__}")
    return key


def sign_manifest_bytes(bundle: Path, manifest_bytes: bytes, signed_file: str, private_key: str | Path) -> dict:
    """Sign ``manifest_bytes`` (the bundle's file ``signed_file``) with the private key at ``private_key`` and
    write the signature record beside it; returns the record. :func:`intent_edge.runtime.bundle.sign_bundle`
    is the entry point: it checks the manifest first."""
    from intent_edge.fileio import atomic_path

    serialization, _, _ = _crypto()
    key = _load_key(private_key, private=True)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = {"algorithm": ALGORITHM, "signed_file": signed_file,
              "public_key": base64.b64encode(public).decode(),
              "signature": base64.b64encode(key.sign(manifest_bytes)).decode()}
    with atomic_path(Path(bundle) / SIGNATURE_NAME) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def verify_manifest_bytes(bundle: Path, manifest_bytes: bytes, public_key: str | Path) -> None:
    """Raise BundleError unless ``manifest_bytes`` carry a valid signature from ``public_key``."""
    _, _, invalid = _crypto()
    key = _load_key(public_key, private=False)
    path = Path(bundle) / SIGNATURE_NAME
    if not path.is_file():
        raise BundleError(f"{bundle}: the bundle is not signed ({SIGNATURE_NAME} is missing) and a signature is "
                          "required")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(record["signature"], validate=True)
        algorithm = record["algorithm"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: damaged signature file ({exc})") from None
    if algorithm != ALGORITHM:
        raise BundleError(f"{path}: signature algorithm {algorithm!r} is not accepted (only {ALGORITHM})")
    try:
        key.verify(signature, manifest_bytes)
    except invalid:
        raise BundleError(f"{bundle}: the signature does not verify with {public_key}: the manifest was changed "
                          "after signing, or another key signed it") from None
