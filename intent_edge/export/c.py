"""`intent-edge export --format c`: a bundle variant as one dependency-free C99 library, raw record in,
probability out: the compiled encoder spec and the network, with a test harness of golden records.

Written files (``P`` is the prefix, ``intent_edge_model`` by default):

* ``P.h``: the API, documented at its top, with the sizes and constants as ``#define``s;
* ``P.c``: the encoder tables, the weights as exact literals, and the functions;
* ``ie_kernel.h``: the network kernel, a byte-for-byte copy of the runtime's own
  (``intent_edge/runtime/kernel/ie_kernel.h``), which the native backend also builds;
* ``P_test.c``: the harness: golden records, records with empty values and unseen categories (lenient),
  and generated bad records, each with the output or the status and field the Python runtime gives;
  it exits non-zero on any mismatch;
* ``BUILD.md``: how to build it.

The library has no heap, no writable globals and no symbol without the prefix (the kernel's functions
are ``static``), so two bundles link into one program. The export never touches the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

from intent_edge.errors import BundleError, UsageError
from intent_edge.export.c_harness import harness, harness_cases
from intent_edge.export.c_network import network_inputs, network_source
from intent_edge.export.c_source import KERNEL_NAME, STATUSES, c_double, c_float, c_string, kernel_source, text_helpers
from intent_edge.export.network import dense_layers, int8_network
from intent_edge.raw_graph import input_names
from intent_edge.runtime.bundle import MANIFEST_NAME, read_manifest, resolve_file, sha256_of, verify_files
from intent_edge.runtime.encoder import MAX_STANDARD_SCORE, CategoricalFeature, Encoder, NumericFeature

INT8_VARIANTS = ("litert-int8", "units-50-litert-int8", "distilled-litert-int8")
SUPPORTED_VARIANTS = ("fp32", "distilled", "units-50", "sparse-80", *INT8_VARIANTS)
_C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
))
def choose_variant(manifest: dict, variant: str | None) -> str:
    if variant is None:
        default = manifest.get("default_variant", "fp32")
        return default if default in SUPPORTED_VARIANTS else "fp32"
    if variant not in manifest["variants"]:
        raise UsageError(f"no variant {variant!r} in the bundle; it has: {', '.join(manifest['variants'])}")
    if variant not in SUPPORTED_VARIANTS:
        raise UsageError(f"variant {variant!r} cannot be compiled to C; the supported variants are: "
                         f"{', '.join(SUPPORTED_VARIANTS)}")
    return variant


def member_names(fields) -> dict[str, str]:
    """Each field's C identifier: the raw-field graph's input names, with C keywords suffixed."""
    names = input_names(fields)
    return {field: name + "_" if name in _C_KEYWORDS else name for field, name in names.items()}


def export_c(bundle: str | Path, out: str | Path, *, variant: str | None = None,
             prefix: str = "intent_edge_model") -> dict:
    """Write the C library of ``bundle``'s ``variant`` into ``out``; returns a summary (files, variant)."""
    from intent_edge.fileio import atomic_directory

    if not prefix.isidentifier() or not prefix.isascii():
        raise UsageError(f"--prefix must be a C identifier, got {prefix!r}")
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    verify_files(bundle, manifest)
    if manifest.get("task", "sessions") == "clickstream":
        from intent_edge.export.c_stream import export_stream_c

        return export_stream_c(bundle, manifest, Path(out), variant=variant, prefix=prefix)
    name = choose_variant(manifest, variant)
    entry = manifest["variants"][name]
    path = resolve_file(bundle, entry["file"])
    network = int8_network(path) if name in INT8_VARIANTS else dense_layers(path)
    encoder = Encoder.from_spec(manifest["encoder"])
    if network_inputs(network) != encoder.width:
        raise BundleError(f"{bundle}: variant {name} takes {network_inputs(network)} inputs, the encoder gives "
                          f"{encoder.width}")
    cases = harness_cases(bundle, manifest, name, encoder)
    # an int8 library answers in its output quantum's steps: it may differ from LiteRT's by one of them
    tolerance = network.output_scale + 1e-6 if name in INT8_VARIANTS else 1e-6
    facts = {"prefix": prefix, "variant": name, "threshold": float(manifest["threshold"]["value"]),
             "manifest_sha256": sha256_of(bundle / MANIFEST_NAME), "tolerance": tolerance}
    members = member_names(encoder.names)
    with atomic_directory(out) as staging:
        (staging / f"{prefix}.h").write_text(header(encoder, network, members, facts), encoding="utf-8")
        (staging / f"{prefix}.c").write_text(library(encoder, network, members, facts), encoding="utf-8")
        (staging / KERNEL_NAME).write_bytes(kernel_source())
        (staging / f"{prefix}_test.c").write_text(harness(encoder, cases, facts), encoding="utf-8")
        (staging / "BUILD.md").write_text(build_note(facts), encoding="utf-8")
    counts = {kind: sum(1 for c in cases if c["kind"] == kind) for kind in ("golden", "lenient", "bad")}
    return {**facts, "files": [f"{prefix}.h", f"{prefix}.c", KERNEL_NAME, f"{prefix}_test.c", "BUILD.md"],
            "cases": counts,
            "harness": f"{counts['golden']} golden, {counts['lenient']} lenient and {counts['bad']} bad records"}


# ---- the header ---------------------------------------------------------------------------------------
def header(encoder: Encoder, network, members: dict, facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    layers = network.layers if hasattr(network, "layers") else network
    widest = max(max(layer.weights.shape) for layer in layers)
    fields = "\n".join(f"    {'double' if isinstance(f, NumericFeature) else 'const char *'} {members[f.name]};"
                       f"  /* {json.dumps(f.name)[1:-1].replace('*/', '* /')} */" for f in encoder.features)
    statuses = "\n".join(f"#define {P}_{status} {code}" for status, code in STATUSES.items())
    return f"""/* {p}.h: purchase-intent model '{facts['variant']}' compiled by intent-edge,
 * raw record in, probability out.
 *
 * Build: cc -std=c99 -O2 -ffp-contract=off -c {p}.c   (link with -lm). No heap, no writable globals,
 * reentrant and thread-safe; every exported symbol starts with {p}_. See BUILD.md.
 *
 * Values: a numeric field is a double (NaN for empty), a categorical field UTF-8 text (NULL for empty).
 * Text is matched as the Python runtime matches it: surrounding white space stripped (Python's
 * str.strip), true/false in any case as lower case, integers as decimal text ("2").
 *
 * Strict functions refuse what the Python runtime refuses, returning a status and setting *bad_field to
 * the field's index: {P}_ERR_MISSING (an empty category the field never had in training), {P}_ERR_NAN
 * (an empty number the field never had), {P}_ERR_INFINITE, {P}_ERR_OUT_OF_RANGE (more than 1e6 training
 * standard deviations out). A field that was empty in training takes empty values in strict mode too.
 * Lenient functions impute empty values as Predictor.load(..., strict=False) does.
 */
#ifndef {P}_H
#define {P}_H

#ifdef __cplusplus
extern "C" {{
#endif

{statuses}

#define {P}_FIELD_COUNT {len(encoder.features)}
#define {P}_INPUT_WIDTH {encoder.width}
#define {P}_LAYER_COUNT {len(layers)}
#define {P}_WIDEST_LAYER {widest}
/* working memory of one call, on the caller's stack: the encoded row and two activation buffers */
#define {P}_WORKING_FLOATS ({P}_INPUT_WIDTH + 2 * {P}_WIDEST_LAYER)
#define {P}_KIND_NUMERIC 0
#define {P}_KIND_CATEGORICAL 1
#define {P}_THRESHOLD {c_float(facts['threshold'])}
#define {P}_VARIANT {c_string(facts['variant'])}
#define {P}_MANIFEST_SHA256 "{facts['manifest_sha256']}"

typedef struct {p}_record {{
{fields}
}} {p}_record;

int {p}_predict(const {p}_record *record, float *probability, int *bad_field);
int {p}_predict_lenient(const {p}_record *record, float *probability, int *bad_field);

/* For FFI hosts: both arrays have {p}_field_count() entries, by field index. */
int {p}_field_count(void);
const char *{p}_field_name(int field);
int {p}_field_kind(int field);
int {p}_predict_values(const double *numbers, const char *const *texts, float *probability, int *bad_field);
int {p}_predict_values_lenient(const double *numbers, const char *const *texts, float *probability,
                               int *bad_field);

#ifdef __cplusplus
}}
#endif

#endif /* {P}_H */
"""


# ---- the library --------------------------------------------------------------------------------------
def library(encoder: Encoder, network, members: dict, facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    tables, body = network_source(network, P)
    vocabularies, field_rows = [], []
    for position, (feature, offset) in enumerate(zip(encoder.features, encoder.offsets, strict=True)):
        if isinstance(feature, CategoricalFeature):
            ordered = sorted(range(len(feature.vocabulary)), key=lambda i: feature.vocabulary[i].encode("utf-8"))
            words = [feature.vocabulary[i] for i in ordered] or [""]
            vocabularies.append(
                f"static const char *const vocabulary{position}[] = {{{', '.join(c_string(w) for w in words)}}};\n"
                f"static const unsigned int vocabulary{position}_lengths[] = "
                f"{{{', '.join(str(len(w.encode('utf-8'))) for w in words)}}};\n"
                f"static const int vocabulary{position}_columns[] = {{{', '.join(map(str, ordered)) or '0'}}};\n")
            field_rows.append(f"    {{{c_string(feature.name)}, 1, {offset}, {int(feature.may_be_empty)}, 0, 0.0, 0.0, "
                              f"0.0, {len(feature.vocabulary)}, vocabulary{position}, vocabulary{position}_lengths, "
                              f"vocabulary{position}_columns}}")
        else:
            field_rows.append(f"    {{{c_string(feature.name)}, 0, {offset}, {int(feature.may_be_empty)}, "
                              f"{int(feature.transform == 'log1p')}, {c_double(feature.fill)}, "
                              f"{c_double(feature.center)}, {c_double(feature.scale)}, 0, 0, 0, 0}}")
    numeric = [isinstance(f, NumericFeature) for f in encoder.features]
    numbers_from_record = "\n".join(f"    numbers[{i}] = {'record->' + members[f.name] if numeric[i] else '0.0'};"
                                    for i, f in enumerate(encoder.features))
    texts_from_record = "\n".join(f"    texts[{i}] = {'NULL' if numeric[i] else 'record->' + members[f.name]};"
                                  for i, f in enumerate(encoder.features))
    return f"""/* {p}.c: generated by intent-edge from the bundle manifest with sha256
 * {facts['manifest_sha256']}, variant {facts['variant']}.
 * Do not edit: regenerate with `intent-edge export BUNDLE --format c`. */
#include "{p}.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "{KERNEL_NAME}"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {{
    const char *name;
    int kind;              /* {P}_KIND_NUMERIC or {P}_KIND_CATEGORICAL */
    int offset;            /* first column of the field in the encoded row */
    int may_be_empty;      /* empty in training: imputed in strict mode too, with an indicator or bucket */
    int log1p;             /* numeric: log1p(max(x, 0)) before standardising */
    double fill, center, scale;
    int vocabulary_size;   /* categorical: the out-of-vocabulary column, the empty bucket after it */
    const char *const *vocabulary;          /* sorted by bytes */
    const unsigned int *vocabulary_lengths;
    const int *vocabulary_columns;          /* each sorted entry's column within the field */
}} {p}_field;

{''.join(vocabularies)}
static const {p}_field {p}_fields[{P}_FIELD_COUNT] = {{
{(',' + chr(10)).join(field_rows)}
}};

{tables}
{text_helpers(p)}
static int {p}_same_ignoring_case(const char *text, size_t length, const char *lower)
{{
    size_t i;
    if (strlen(lower) != length) return 0;
    for (i = 0; i < length; i++) {{
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lower[i]) return 0;
    }}
    return 1;
}}

/* the category's column within its one-hot block: its vocabulary column, or out-of-vocabulary */
static int {p}_category_column(const {p}_field *field, const char *text, size_t length)
{{
    int low = 0, high = field->vocabulary_size - 1;
    if ({p}_same_ignoring_case(text, length, "true")) {{ text = "true"; length = 4; }}
    else if ({p}_same_ignoring_case(text, length, "false")) {{ text = "false"; length = 5; }}
    while (low <= high) {{
        int middle = low + (high - low) / 2, order;
        size_t other = field->vocabulary_lengths[middle];
        order = memcmp(text, field->vocabulary[middle], length < other ? length : other);
        if (order == 0) order = length < other ? -1 : length > other ? 1 : 0;
        if (order == 0) return field->vocabulary_columns[middle];
        if (order < 0) high = middle - 1; else low = middle + 1;
    }}
    return field->vocabulary_size;
}}

/* The encoded row, checking numeric fields first, then categorical ones, as the Python runtime does. */
static int {p}_encode(const double *numbers, const char *const *texts, int lenient, float *row, int *bad_field)
{{
    int i, pass;
    memset(row, 0, sizeof(float) * {P}_INPUT_WIDTH);
    for (pass = 0; pass < 2; pass++) {{
        for (i = 0; i < {P}_FIELD_COUNT; i++) {{
            const {p}_field *field = &{p}_fields[i];
            if (field->kind != pass) continue;
            if (field->kind == {P}_KIND_NUMERIC) {{
                double value = numbers[i], score;
                if (isnan(value)) {{
                    if (!field->may_be_empty && !lenient) {{ *bad_field = i; return {P}_ERR_NAN; }}
                    if (field->may_be_empty) row[field->offset + 1] = 1.0f;
                    value = field->fill;
                }} else if (isinf(value)) {{
                    *bad_field = i;
                    return {P}_ERR_INFINITE;
                }}
                if (field->log1p) value = value > 0.0 ? log1p(value) : 0.0;
                score = (value - field->center) / field->scale;
                if (!(score >= -{MAX_STANDARD_SCORE:.1f} && score <= {MAX_STANDARD_SCORE:.1f})) {{
                    *bad_field = i;
                    return {P}_ERR_OUT_OF_RANGE;
                }}
                row[field->offset] = (float)score;
            }} else {{
                int column;
                size_t length = 0;
                const char *text = texts[i] == NULL ? NULL : {p}_strip(texts[i], &length);
                if (text == NULL || (field->may_be_empty && length == 0)) {{
                    if (!field->may_be_empty && !lenient) {{ *bad_field = i; return {P}_ERR_MISSING; }}
                    column = field->vocabulary_size + field->may_be_empty;
                }} else {{
                    column = {p}_category_column(field, text, length);
                }}
                row[field->offset + column] = 1.0f;
            }}
        }}
    }}
    return {P}_OK;
}}

static int {p}_run(const double *numbers, const char *const *texts, int lenient, float *probability, int *bad_field)
{{
    float row[{P}_INPUT_WIDTH];
    int status = {p}_encode(numbers, texts, lenient, row, bad_field);
    if (status != {P}_OK) return status;
{body}
    *bad_field = -1;
    return {P}_OK;
}}

int {p}_field_count(void) {{ return {P}_FIELD_COUNT; }}

const char *{p}_field_name(int field)
{{
    return field >= 0 && field < {P}_FIELD_COUNT ? {p}_fields[field].name : NULL;
}}

int {p}_field_kind(int field)
{{
    return field >= 0 && field < {P}_FIELD_COUNT ? {p}_fields[field].kind : -1;
}}

int {p}_predict_values(const double *numbers, const char *const *texts, float *probability, int *bad_field)
{{
    return {p}_run(numbers, texts, 0, probability, bad_field);
}}

int {p}_predict_values_lenient(const double *numbers, const char *const *texts, float *probability, int *bad_field)
{{
    return {p}_run(numbers, texts, 1, probability, bad_field);
}}

static int {p}_run_record(const {p}_record *record, int lenient, float *probability, int *bad_field)
{{
    double numbers[{P}_FIELD_COUNT];
    const char *texts[{P}_FIELD_COUNT];
{numbers_from_record}
{texts_from_record}
    return {p}_run(numbers, texts, lenient, probability, bad_field);
}}

int {p}_predict(const {p}_record *record, float *probability, int *bad_field)
{{
    return {p}_run_record(record, 0, probability, bad_field);
}}

int {p}_predict_lenient(const {p}_record *record, float *probability, int *bad_field)
{{
    return {p}_run_record(record, 1, probability, bad_field);
}}
"""



def build_note(facts: dict) -> str:
    p = facts["prefix"]
    return f"""# {p}: the C library of intent-edge variant `{facts['variant']}`

Generated from the bundle manifest with sha256 `{facts['manifest_sha256']}`. C99, no dependencies but
`libm`, no heap, no writable globals: any C compiler builds it.

```sh
cc -std=c99 -O2 -ffp-contract=off -Wall -Wextra -pedantic -c {p}.c          # the library
cc -std=c99 -O2 -ffp-contract=off {p}.c {p}_test.c -lm -o {p}_test && ./{p}_test   # its harness
```

- `-ffp-contract=off` keeps every multiply and add separate, as the Python runtime and the native backend
  compute them (GCC ignores `#pragma STDC FP_CONTRACT OFF`; Clang honours it).
- `-DIE_SCALAR` builds the network without GCC/Clang vector types; it gives the same bits.
- `{p}.h` documents the API: `{p}_predict` on a record struct, `{p}_predict_values` on arrays for FFI
  hosts, their `_lenient` forms, the status codes and the constants.
"""
