"""The C library's test harness: golden records, lenient records and generated bad records, each with
what the Python runtime gives for it, as C data with a main() that checks the library against them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from intent_edge.errors import RecordError
from intent_edge.export.c_source import STATUSES, c_number, c_string, floats_literal
from intent_edge.raw_graph import host_text, lenient_records
from intent_edge.runtime.bundle import resolve_file
from intent_edge.runtime.encoder import CategoricalFeature, Encoder, NumericFeature

BAD_RECORDS = 2000  # generated bad records in the harness (the sanitizer build runs them all)


def _values(record: dict, encoder: Encoder) -> tuple[list[float], list[str | None]]:
    """A record as the FFI arrays take it: numbers (NaN for empty), texts as a host sends them (NULL for empty)."""
    numbers, texts = [], []
    for feature in encoder.features:
        value = record.get(feature.name)
        empty = value is None or (isinstance(value, float) and math.isnan(value))
        if isinstance(feature, NumericFeature):
            numbers.append(math.nan if empty else float(value))
            texts.append(None)
        else:
            numbers.append(0.0)
            texts.append(None if empty else host_text(value))
    return numbers, texts


def _expected(predictor, lenient_predictor, record: dict, lenient: bool, encoder: Encoder) -> dict:
    """What the Python runtime gives for ``record`` as the harness states it: a probability, or the status
    and field of its RecordError."""
    numbers, texts = _values(record, encoder)
    # the record as the C library sees it, back in Python's terms: None where C gets NaN or NULL
    plain = {f.name: t if isinstance(f, CategoricalFeature) else None if math.isnan(n) else n
             for f, n, t in zip(encoder.features, numbers, texts, strict=True)}
    try:
        probability = (lenient_predictor if lenient else predictor).predict(plain)
        return {"numbers": numbers, "texts": texts, "lenient": lenient, "status": 0, "field": -1,
                "probability": float(probability)}
    except RecordError as error:
        field = encoder.names.index(error.field)
        value = numbers[field]
        status = ("ERR_MISSING" if isinstance(encoder.features[field], CategoricalFeature) else
                  "ERR_NAN" if math.isnan(value) else "ERR_INFINITE" if math.isinf(value) else "ERR_OUT_OF_RANGE")
        return {"numbers": numbers, "texts": texts, "lenient": lenient, "status": STATUSES[status], "field": field,
                "probability": 0.0}


def harness_cases(bundle: Path, manifest: dict, variant: str, encoder: Encoder, *, seed: int = 0) -> list[dict]:
    """The golden records, lenient copies of some with empty values and unseen categories, and generated bad
    records (empty, NaN, infinite, huge, unseen or padded categories, NULL texts), each with what the
    Python runtime (ONNX Runtime on the variant) gives."""
    from intent_edge.runtime import Predictor

    # the interpreter that runs the variant's own file, never the native kernel the library shares
    backend = {"onnx": "onnxruntime", "tflite": "litert"}[manifest["variants"][variant]["format"]]
    predictor = Predictor.load(bundle, variant, backend=backend)
    lenient = Predictor.load(bundle, variant, backend=backend, strict=False)
    golden = json.loads(resolve_file(bundle, manifest["golden"]["file"]).read_text())["rows"]
    records = [row["record"] for row in golden]
    cases = [{**_expected(predictor, lenient, r, False, encoder), "kind": "golden"} for r in records]
    cases += [{**_expected(predictor, lenient, r, True, encoder), "kind": "lenient"}
              for r in lenient_records(records[:64], encoder)]
    rng = np.random.default_rng(seed)
    odd_numbers = (math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, -0.0, 0.0, 1e15)
    odd_texts = (None, "", "  ", "\u00a0Returning_Visitor\u3000", "TRUE", " false ", "zz-never-seen", "\u00e9t\u00e9",
                 "2", "2.0", "\x85", "Nov\t")
    for _ in range(BAD_RECORDS):
        record = dict(records[int(rng.integers(len(records)))])
        for index in rng.choice(len(encoder.features), size=int(rng.integers(1, 4)), replace=False):
            feature = encoder.features[int(index)]
            options = odd_numbers if isinstance(feature, NumericFeature) else odd_texts
            record[feature.name] = options[int(rng.integers(len(options)))]
        cases.append({**_expected(predictor, lenient, record, bool(rng.integers(2)), encoder), "kind": "bad"})
    return cases


def harness(encoder: Encoder, cases: list[dict], facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    numbers = ",\n".join("    {" + ", ".join(c_number(v) for v in case["numbers"]) + "}" for case in cases)
    texts = ",\n".join("    {" + ", ".join("NULL" if t is None else c_string(t) for t in case["texts"]) + "}"
                        for case in cases)
    flags = ",\n".join(f"    {{{int(c['lenient'])}, {c['status']}, {c['field']}}}" for c in cases)
    probabilities = floats_literal([c["probability"] for c in cases])
    golden = sum(1 for c in cases if c["kind"] == "golden")
    return f"""/* {p}_test.c: the harness of {p}, generated by intent-edge. Each case is a record with what the
 * Python runtime gives for it: a probability (within TOLERANCE), or the status and field strict mode refuses
 * it with. Exits 1 on any mismatch. `{p}_test --print` writes every probability in hex, for comparing
 * builds bit for bit; `{p}_test --time` also measures the golden records' ns per record. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifndef __wasi__
#include <time.h>
#endif

#include "{p}.h"

#define CASES {len(cases)}
#define GOLDEN {golden}
#define TOLERANCE {facts['tolerance']!r} /* 1e-6; for an int8 library, one output step more */

static const double numbers[CASES][{P}_FIELD_COUNT] = {{
{numbers}
}};
static const char *const texts[CASES][{P}_FIELD_COUNT] = {{
{texts}
}};
static const int flags[CASES][3] = {{ /* lenient, status, field */
{flags}
}};
static const float expected[CASES] = {{
{probabilities}
}};

int main(int argc, char **argv)
{{
    int i, failures = 0, print = argc > 1 && strcmp(argv[1], "--print") == 0;
    int time_it = argc > 1 && strcmp(argv[1], "--time") == 0;
    double worst = 0.0;
    for (i = 0; i < CASES; i++) {{
        float probability = -1.0f;
        int bad_field = -2;
        int status = flags[i][0] ? {p}_predict_values_lenient(numbers[i], texts[i], &probability, &bad_field)
                                 : {p}_predict_values(numbers[i], texts[i], &probability, &bad_field);
        if (print) printf("%d %d %a\\n", status, bad_field, (double)probability);
        if (status != flags[i][1] || (status != {P}_OK && bad_field != flags[i][2])) {{
            if (failures++ < 10)
                fprintf(stderr, "case %d: status %d field %d, expected status %d field %d\\n", i, status, bad_field,
                        flags[i][1], flags[i][2]);
        }} else if (status == {P}_OK) {{
            double difference = fabs((double)probability - (double)expected[i]);
            if (difference > worst) worst = difference;
            if (!(difference <= TOLERANCE) && failures++ < 10)
                fprintf(stderr, "case %d: probability %.9g, expected %.9g\\n", i, probability, expected[i]);
        }}
    }}
#ifndef __wasi__ /* WASI has no process clock */
    if (time_it) {{
        int round, rounds = 2000;
        float sink = 0.0f;
        clock_t started = clock();
        for (round = 0; round < rounds; round++)
            for (i = 0; i < GOLDEN; i++) {{
                float probability;
                int bad_field;
                {p}_predict_values(numbers[i], texts[i], &probability, &bad_field);
                sink += probability;
            }}
        printf("ns_per_record %.1f (sum %g)\\n",
               1e9 * (double)(clock() - started) / CLOCKS_PER_SEC / ((double)rounds * GOLDEN), (double)sink);
    }}
#else
    (void)time_it;
#endif
    printf("cases %d, failures %d, max |dp| %.3g\\n", CASES, failures, worst);
    return failures ? 1 : 0;
}}
"""


