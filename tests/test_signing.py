"""Signed bundles: a tampered, unsigned or foreign-signed bundle is refused when a signature is required."""

import json
import shutil

import pytest

from intent_edge.errors import BundleError
from intent_edge.runtime import Predictor
from intent_edge.runtime.bundle import sign_bundle
from intent_edge.runtime.signing import generate_keypair

pytest.importorskip("cryptography")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    generate_keypair(directory / "a.pem", directory / "a.pub")
    generate_keypair(directory / "b.pem", directory / "b.pub")
    return directory


@pytest.fixture
def signed(tiny_bundle, keys, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    sign_bundle(bundle, keys / "a.pem")
    return bundle


def test_signed_bundle_loads_with_its_key(signed, keys):
    assert Predictor.load(signed, public_key=keys / "a.pub").variant == "fp32"
    assert (keys / "a.pem").stat().st_mode & 0o077 == 0  # the private key is readable by its owner only


def test_tampered_manifest_is_refused(signed, keys):
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["threshold"]["value"] = 0.01  # decide "buyer" for everyone
    (signed / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(BundleError, match="signature does not verify"):
        Predictor.load(signed, public_key=keys / "a.pub")
    assert Predictor.load(signed).threshold == 0.01  # without a key required, checksums alone cannot tell


def test_swapped_model_with_rewritten_checksum_is_refused(signed, keys, tiny_bundle):
    from intent_edge.runtime.bundle import describe_file

    data = bytearray((signed / "model.onnx").read_bytes())
    data[-1] ^= 1
    (signed / "model.onnx").write_bytes(bytes(data))
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["variants"]["fp32"]["file"] = describe_file(signed, "model.onnx")  # the tamperer fixes the sha256
    (signed / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(BundleError, match="signature does not verify"):
        Predictor.load(signed, public_key=keys / "a.pub")


def test_unsigned_or_foreign_signed_bundle_is_refused(tiny_bundle, signed, keys):
    with pytest.raises(BundleError, match="not signed"):
        Predictor.load(tiny_bundle, public_key=keys / "a.pub")
    with pytest.raises(BundleError, match="signature does not verify"):
        Predictor.load(signed, public_key=keys / "b.pub")


def test_damaged_signature_file_and_wrong_key_kind(signed, keys):
    (signed / "manifest.sig").write_text("{not json")
    with pytest.raises(BundleError, match="damaged signature file"):
        Predictor.load(signed, public_key=keys / "a.pub")
    with pytest.raises(BundleError, match="public key in PEM form"):
        Predictor.load(signed, public_key=keys / "a.pem")


def test_cli_keygen_sign_and_verify(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app

    runner = CliRunner()
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert runner.invoke(app, ["keygen", "--private", str(tmp_path / "k.pem"), "--public",
                               str(tmp_path / "k.pub")]).exit_code == 0
    assert runner.invoke(app, ["sign", str(bundle), "--key", str(tmp_path / "k.pem")]).exit_code == 0
    result = runner.invoke(app, ["info", str(bundle), "--public-key", str(tmp_path / "k.pub")])
    assert result.exit_code == 0 and "signature verified" in result.output
    refused = runner.invoke(app, ["info", str(tiny_bundle), "--public-key", str(tmp_path / "k.pub")])
    assert refused.exit_code == 2 and "not signed" in refused.output
    again = runner.invoke(app, ["keygen", "--private", str(tmp_path / "k.pem"), "--public", str(tmp_path / "x")])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
