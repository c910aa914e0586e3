"""The compiled path (issue 24): a bundle variant as a dependency-free C99 library that builds warning-free
under gcc and clang, passes its generated harness (golden, lenient and bad records against the Python
runtime), is sanitizer-clean, gives the same bits with and without vector types, and stays small."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from intent_edge.data.io import load_dataset, write_table
from intent_edge.data.synth import generate_sessions

STRICT = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-pedantic", "-Werror"]
requires_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed (apt-get install gcc)")
requires_clang = pytest.mark.skipif(shutil.which("clang") is None,
                                    reason="clang is not installed (apt-get install clang; CI installs it)")


def digest_tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def compile_and_run(directory: Path, prefix: str, compiler: str, *flags: str, args=()) -> subprocess.CompletedProcess:
    binary = directory / f"{prefix}_{compiler}_{abs(hash(flags))}"
    built = subprocess.run([compiler, *STRICT, *flags, f"{prefix}.c", f"{prefix}_test.c", "-lm", "-o", str(binary)],
                           cwd=directory, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0 and not built.stderr, built.stderr[-3000:]
    return subprocess.run([str(binary), *args], cwd=directory, capture_output=True, text=True, timeout=600)


def _sanitizers_build():
    """True where gcc builds with ASan and UBSan, else why not."""
    probe = subprocess.run(["gcc", "-fsanitize=address,undefined", "-x", "c", "-", "-o", "/dev/null"],
                           input="int main(void){return 0;}", capture_output=True, text=True)
    return True if probe.returncode == 0 else f"this gcc cannot build with the sanitizers: {probe.stderr.strip()[:200]}"


@pytest.fixture(scope="module")
def full_size_bundle(tmp_path_factory):
    """A bundle of the UCI layout's 17 fields and the default 64-32 network, compressed with sparse-80: the
    shape the size bars are stated for, where the UCI file itself may be absent."""
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.train.mlp import MLPRecipe
    from intent_edge.train.pipeline import train_bundle

    directory = tmp_path_factory.mktemp("c-export")
    data = directory / "sessions.csv"
    write_table(generate_sessions(2500, seed=12), data)
    bundle = directory / "bundle"
    train_bundle(load_dataset(data, "Revenue"), bundle, recipe=MLPRecipe(max_epochs=2, patience=1, teacher="none"),
                 seed=0)
    compress_bundle(bundle, load_dataset(data), methods=["original", "sparse-80", "onnx-fp32", "litert-int8"],
                    max_auc_drop=1.0)
    return bundle


@pytest.fixture(scope="module")
def exported(full_size_bundle, tmp_path_factory) -> Path:
    from intent_edge.export.c import export_c

    out = tmp_path_factory.mktemp("c") / "fp32"
    before = digest_tree(full_size_bundle)
    summary = export_c(full_size_bundle, out, variant="fp32")
    assert digest_tree(full_size_bundle) == before, "the export changed the bundle"
    assert summary["cases"] == {"golden": 256, "lenient": 64, "bad": 2000}
    return out


def test_the_kernel_is_the_runtimes_own_byte_for_byte(exported):
    from intent_edge.export.c_source import KERNEL_NAME, kernel_source

    packaged = Path(__file__).resolve().parents[1] / "intent_edge" / "runtime" / "kernel" / KERNEL_NAME
    assert (exported / KERNEL_NAME).read_bytes() == kernel_source() == packaged.read_bytes()


@requires_gcc
def test_gcc_builds_it_warning_free_and_the_harness_passes(exported):
    result = compile_and_run(exported, "intent_edge_model", "gcc")
    assert result.returncode == 0, result.stderr
    assert "cases 2320, failures 0" in result.stdout


@requires_gcc
def test_the_vector_and_scalar_builds_give_the_same_bits(exported):
    vector = compile_and_run(exported, "intent_edge_model", "gcc", args=["--print"])
    scalar = compile_and_run(exported, "intent_edge_model", "gcc", "-DIE_SCALAR", args=["--print"])
    assert vector.returncode == scalar.returncode == 0
    assert vector.stdout == scalar.stdout and vector.stdout.count("\n") > 2320


@requires_clang
def test_clang_builds_it_warning_free_and_the_harness_passes(exported):
    result = compile_and_run(exported, "intent_edge_model", "clang")
    assert result.returncode == 0 and "failures 0" in result.stdout, result.stderr


@requires_gcc
def test_the_sanitizers_find_nothing_on_golden_and_bad_records(exported):
    """2,000 generated bad records (empty, NaN, infinite, huge, unseen and padded categories, NULL texts)
    get the status and field Python's RecordError names, under AddressSanitizer and UBSan."""
    reason = _sanitizers_build()
    if reason is not True:
        pytest.skip(reason)
    result = compile_and_run(exported, "intent_edge_model", "gcc", "-O1", "-g", "-fsanitize=address,undefined",
                             "-fno-sanitize-recover=all")
    assert result.returncode == 0 and "failures 0" in result.stdout, result.stderr[-3000:]
    assert "runtime error" not in result.stderr and "AddressSanitizer" not in result.stderr


@requires_gcc
def test_sizes_fp32_within_40_kib_and_sparse_smaller(full_size_bundle, exported, tmp_path):
    from intent_edge.export.c import export_c
    from intent_edge.export.c_build import object_size

    fp32, _ = object_size("gcc", exported, "intent_edge_model.c", "-Os")
    export_c(full_size_bundle, tmp_path / "sparse", variant="sparse-80")
    sparse, _ = object_size("gcc", tmp_path / "sparse", "intent_edge_model.c", "-Os")
    assert fp32 <= 40 * 1024, f"fp32 library {fp32} bytes at -Os"
    assert sparse < fp32, f"sparse-80 {sparse} bytes is not smaller than fp32 {fp32}"
    result = compile_and_run(tmp_path / "sparse", "intent_edge_model", "gcc")
    assert result.returncode == 0 and "failures 0" in result.stdout, result.stderr


@requires_gcc
def test_two_libraries_link_into_one_program(full_size_bundle, tmp_path):
    from intent_edge.export.c import export_c

    export_c(full_size_bundle, tmp_path / "a", variant="fp32", prefix="shop_a")
    export_c(full_size_bundle, tmp_path / "b", variant="sparse-80", prefix="shop_b")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "shop_a.h"\n#include "shop_b.h"\n'
        "int main(void) { printf(\"%d %d %s\\n\", shop_a_field_count(), shop_b_field_count(), SHOP_A_VARIANT);"
        " return shop_a_field_kind(0) != shop_b_field_kind(0); }\n")
    built = subprocess.run(["gcc", *STRICT, "-Ia", "-Ib", "main.c", "a/shop_a.c", "b/shop_b.c", "-lm", "-o", "both"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0 and not built.stderr, built.stderr
    ran = subprocess.run([str(tmp_path / "both")], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout == "17 17 fp32\n"


@requires_gcc
def test_a_bundle_with_empty_values_compiles_its_indicators_and_buckets(tmp_path, tiny_recipe):
    """Fields that may be empty: the C encoder imputes, flags and buckets them as the runtime does."""
    import sys

    from intent_edge.export.c import export_c
    from intent_edge.train.pipeline import train_bundle

    sys.path.insert(0, str(Path(__file__).parent))
    from test_own_data import CATEGORICAL, with_blanks

    data = tmp_path / "blank.csv"
    with_blanks(generate_sessions(1500, seed=6), [*CATEGORICAL, "PageValues", "ExitRates"]).to_csv(data, index=False)
    bundle = tmp_path / "bundle"
    manifest = train_bundle(load_dataset(data, "Revenue"), bundle, recipe=tiny_recipe, seed=0)
    assert any(f["empty_fraction"] > 0 for f in manifest["encoder"]["features"])
    export_c(bundle, tmp_path / "c")
    result = compile_and_run(tmp_path / "c", "intent_edge_model", "gcc")
    assert result.returncode == 0 and "failures 0" in result.stdout, result.stderr


@requires_gcc
def test_the_cli_builds_and_reports(full_size_bundle, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app

    result = CliRunner().invoke(app, ["export", str(full_size_bundle), "--format", "c", "--out", str(tmp_path / "c"),
                                      "--prefix", "till", "--build"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "c" / "till_build.json").read_text())
    assert report["warnings"] == [] and report["parity"]["failures"] == 0 and report["parity"]["cases"] == 2320
    assert 0 < report["size_bytes"]["Os"] <= 40 * 1024 and report["stack_bytes"] > 0 and report["ns_per_record"] > 0


def test_unsupported_variants_and_bundles_are_refused_by_name(full_size_bundle, tmp_path):
    from intent_edge.errors import UsageError
    from intent_edge.export.c import choose_variant, export_c

    manifest = {"default_variant": "int8-dynamic", "variants": {"fp32": {}, "int8-dynamic": {}, "litert-int8": {}}}
    assert choose_variant({**manifest, "default_variant": "litert-int8"}, None) == "litert-int8"
    assert choose_variant(manifest, None) == "fp32"  # the default variant is not supported: fp32
    with pytest.raises(UsageError, match="'int8-dynamic' cannot be compiled to C; the supported variants are: fp32"):
        choose_variant(manifest, "int8-dynamic")
    with pytest.raises(UsageError, match="no variant 'nope'"):
        export_c(full_size_bundle, tmp_path / "x", variant="nope")
    with pytest.raises(UsageError, match="--prefix must be a C identifier"):
        export_c(full_size_bundle, tmp_path / "x", prefix="2fast")


def _wasm_toolchain() -> str | None:
    """Why the WebAssembly build cannot run here, or None where clang targets wasm32-wasi and Node runs it."""
    if shutil.which("clang") is None or shutil.which("node") is None:
        return "clang or node is not installed (CI installs clang, wasi-libc, libclang-rt-dev-wasm32 and lld)"
    probe = subprocess.run(["clang", "--target=wasm32-wasi", "--sysroot=/usr", "-x", "c", "-", "-o", "/dev/null"],
                           input="#include <math.h>\nint main(void){return (int)exp(0.0) - 1;}", capture_output=True,
                           text=True)
    return None if probe.returncode == 0 else f"clang cannot build for wasm32-wasi: {probe.stderr.strip()[:200]}"


@requires_gcc
def test_webassembly_in_node_gives_the_native_bits(exported):
    """The same C built for wasm32-wasi (clang, wasi-libc) passes its harness under Node's WASI, and prints
    bit for bit what the native build prints."""
    missing = _wasm_toolchain()
    if missing:
        pytest.skip(missing)
    runner = Path(__file__).resolve().parents[1] / "examples" / "wasm" / "run.mjs"
    built = subprocess.run(["clang", "--target=wasm32-wasi", "--sysroot=/usr", *STRICT, "intent_edge_model.c",
                            "intent_edge_model_test.c", "-lm", "-o", "harness.wasm"], cwd=exported,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0 and not built.stderr, built.stderr[-3000:]
    checked = subprocess.run(["node", str(runner), "harness.wasm"], cwd=exported, capture_output=True, text=True,
                             timeout=600)
    assert checked.returncode == 0 and "cases 2320, failures 0" in checked.stdout, checked.stdout + checked.stderr
    printed = subprocess.run(["node", str(runner), "harness.wasm", "--print"], cwd=exported, capture_output=True,
                             text=True, timeout=600)
    native = compile_and_run(exported, "intent_edge_model", "gcc", args=["--print"])
    assert printed.stdout == native.stdout


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _tsv_line(case: dict, encoder) -> str:
    """A harness case as a line of examples/java/CheckCases' input."""
    from intent_edge.runtime.encoder import NumericFeature

    values = []
    for feature, number, text in zip(encoder.features, case["numbers"], case["texts"], strict=True):
        if not isinstance(feature, NumericFeature):
            values.append("\\N" if text is None else _escape(text))
        elif math.isnan(number):
            values.append("\\N")
        else:
            values.append({math.inf: "Infinity", -math.inf: "-Infinity"}.get(number, repr(number)))
    return "\t".join([str(int(case["lenient"])), str(case["status"]), str(case["field"]), repr(case["probability"]),
                      *values])


@requires_gcc
def test_java_through_jni_reproduces_the_python_runtime(full_size_bundle, exported, tmp_path):
    """Java 17 calls the library through examples/java: the golden, lenient and bad records, and held-out
    UCI records where the shared file exists, within 1e-6 of the Python runtime."""
    javac = shutil.which("javac")
    if javac is None or shutil.which("java") is None:
        pytest.skip("no Java 17 JDK (javac, java) is installed")
    home = Path(javac).resolve().parents[1]
    if not (home / "include" / "jni.h").is_file():
        pytest.skip(f"the JDK at {home} has no JNI headers")
    from intent_edge.export.c_harness import _expected, harness_cases
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.bundle import read_manifest
    from intent_edge.runtime.encoder import Encoder

    from .conftest import UCI_CSV

    manifest = read_manifest(full_size_bundle)
    encoder = Encoder.from_spec(manifest["encoder"])
    cases = harness_cases(full_size_bundle, manifest, "fp32", encoder)
    if UCI_CSV.is_file():  # records this bundle never saw, from the real file of the same layout
        strict, lenient = (Predictor.load(full_size_bundle, "fp32", backend="onnxruntime", strict=s) for s in (1, 0))
        frame = load_dataset(UCI_CSV, "Revenue").features
        cases += [_expected(strict, lenient, record, False, encoder) for record in frame.to_dict("records")[:3000]]
    (tmp_path / "cases.tsv").write_text("".join(_tsv_line(case, encoder) + "\n" for case in cases),
                                        encoding="utf-8")
    examples = Path(__file__).resolve().parents[1] / "examples" / "java"
    for name in ("IntentEdgeModel.java", "CheckCases.java", "intent_edge_jni.c"):
        shutil.copy(examples / name, tmp_path / name)
    built = subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-shared",
                            "-fPIC", f"-I{home / 'include'}", f"-I{home / 'include' / 'linux'}", f"-I{exported}",
                            str(exported / "intent_edge_model.c"), "intent_edge_jni.c", "-lm", "-o",
                            "libintent_edge_model.so"], cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    compiled = subprocess.run(["javac", "IntentEdgeModel.java", "CheckCases.java"], cwd=tmp_path, capture_output=True,
                              text=True)
    assert compiled.returncode == 0, compiled.stderr
    checked = subprocess.run(["java", "-cp", ".", "CheckCases", "./libintent_edge_model.so", "cases.tsv"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0 and f"cases {len(cases)}, failures 0" in checked.stdout, (checked.stdout
                                                                                             + checked.stderr[-2000:])


@requires_gcc
def test_the_int8_library_is_integer_only_small_and_equals_litert(full_size_bundle, tmp_path):
    """litert-int8 compiled: int32 accumulators, fixed-point requantisation and a logistic table from the
    .tflite's scales; within one output step of LiteRT on every harness case, under 16 KiB, and the same bits
    in WebAssembly."""
    from intent_edge.export.c import export_c
    from intent_edge.export.c_build import object_size

    out = tmp_path / "int8"
    export_c(full_size_bundle, out, variant="litert-int8")
    assert "ie_dense_int8(" in (out / "intent_edge_model.c").read_text()
    assert "ie_dense(" not in (out / "intent_edge_model.c").read_text()  # no float layer is left
    native = compile_and_run(out, "intent_edge_model", "gcc", args=["--print"])
    assert native.returncode == 0 and "cases 2320, failures 0" in native.stdout, native.stderr
    size, _ = object_size("gcc", out, "intent_edge_model.c", "-Os")
    assert size <= 16 * 1024, f"int8 library {size} bytes at -Os"
    if _sanitizers_build() is True:  # the quantiser's own rounding and the integer sums, under ASan and UBSan
        checked = compile_and_run(out, "intent_edge_model", "gcc", "-O1", "-g", "-fsanitize=address,undefined",
                                  "-fno-sanitize-recover=all")
        assert checked.returncode == 0 and "failures 0" in checked.stdout, checked.stderr[-3000:]
        assert "runtime error" not in checked.stderr and "AddressSanitizer" not in checked.stderr
    if _wasm_toolchain() is None:
        built = subprocess.run(["clang", "--target=wasm32-wasi", "--sysroot=/usr", *STRICT, "intent_edge_model.c",
                                "intent_edge_model_test.c", "-lm", "-o", "harness.wasm"], cwd=out,
                               capture_output=True, text=True)
        assert built.returncode == 0 and not built.stderr, built.stderr
        runner = Path(__file__).resolve().parents[1] / "examples" / "wasm" / "run.mjs"
        wasm = subprocess.run(["node", str(runner), "harness.wasm", "--print"], cwd=out, capture_output=True, text=True)
        assert wasm.returncode == 0 and wasm.stdout == native.stdout
