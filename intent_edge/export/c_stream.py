"""`intent-edge export --format c` for a clickstream bundle: the GRU's or LSTM's streaming step as a C99
library. The caller owns a session's state (``P_session``) and feeds it one event at a time:

    P_session session;
    P_session_start(&session);
    status = P_update(&session, "product", seconds_since_previous, &probability);

The event's name is stripped as Python's ``str.strip`` does and looked up in the bundle's event
vocabulary (an unseen name is the unknown-event token, as in :class:`SessionScorer`), and the gap feature
is ``log1p(max(seconds, 0))`` in double, rounded once to float. The arithmetic is the step's (embedding,
cell, output Dense) in float with the kernel's fixed summation order, and the gates' sigmoid and tanh in
double: it reproduces ``SessionScorer.update`` within 1e-5, which the harness checks on the golden
sessions. CNN and hybrid bundles are refused by name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from intent_edge.clickstream.export import COMPILED_KINDS, STEP_WEIGHTS_VERSION
from intent_edge.errors import BundleError, UsageError
from intent_edge.export.c_source import (
    KERNEL_NAME,
    STATUSES,
    c_double,
    c_number,
    c_string,
    floats_literal,
    kernel_source,
    text_helpers,
)
from intent_edge.runtime.bundle import MANIFEST_NAME, resolve_file, sha256_of
from intent_edge.runtime.native import versioned_arrays

TOLERANCE = 1e-5
ODD_EVENTS = 600  # generated odd and bad events in the harness (the sanitizer build runs them all)


def read_step_weights(path: Path) -> dict:
    """``step.native.npz``: the step's arrays, checked for version and shapes."""
    with versioned_arrays(path, STEP_WEIGHTS_VERSION, "step weights") as arrays:
        weights = {name: np.asarray(arrays[name], dtype=np.float32) for name in
                   ("embedding", "kernel", "recurrent", "bias", "head_kernel", "head_bias")}
        weights["kind"] = COMPILED_KINDS[int(arrays["kind"][0])]
    units = weights["recurrent"].shape[0]
    gates = 3 if weights["kind"] == "gru" else 4
    expected = {"kernel": (weights["embedding"].shape[1] + 1, gates * units), "recurrent": (units, gates * units),
                "bias": (2, gates * units) if gates == 3 else (gates * units,), "head_kernel": (units, 1),
                "head_bias": (1,)}
    for name, shape in expected.items():
        if weights[name].shape != shape:
            raise BundleError(f"{path}: {name} has shape {weights[name].shape}, expected {shape}")
    return weights


def export_stream_c(bundle: Path, manifest: dict, out: Path, *, variant: str | None, prefix: str) -> dict:
    from intent_edge.fileio import atomic_directory

    kind = manifest["model"]["kind"]
    if kind not in COMPILED_KINDS:
        raise UsageError(f"{bundle}: a {kind} clickstream bundle cannot be compiled to C; the C export takes "
                         f"{' and '.join(COMPILED_KINDS)} bundles (and session bundles)")
    if variant not in (None, kind):
        raise UsageError(f"{bundle}: a clickstream bundle has one step to compile ({kind}); drop --variant")
    if "native" not in manifest["step"]:
        raise BundleError(f"{bundle}: this {kind} bundle has no step.native.npz (written by intent-edge train "
                          "since the C export of streaming steps); retrain it")
    weights = read_step_weights(resolve_file(bundle, manifest["step"]["native"]))
    vocabulary = list(manifest["sequence"]["vocabulary"])
    facts = {"prefix": prefix, "variant": kind, "threshold": float(manifest["threshold"]["value"]),
             "manifest_sha256": sha256_of(bundle / MANIFEST_NAME), "tolerance": TOLERANCE}
    sessions = harness_sessions(bundle, manifest)
    with atomic_directory(out) as staging:
        (staging / f"{prefix}.h").write_text(header(weights, facts), encoding="utf-8")
        (staging / f"{prefix}.c").write_text(library(weights, vocabulary, facts), encoding="utf-8")
        (staging / KERNEL_NAME).write_bytes(kernel_source())
        (staging / f"{prefix}_test.c").write_text(harness(sessions, facts), encoding="utf-8")
        (staging / "BUILD.md").write_text(build_note(facts), encoding="utf-8")
    generated = [event for session in sessions if session["kind"] == "odd" for event in session["events"]]
    counts = {"golden": sum(len(s["events"]) for s in sessions if s["kind"] == "golden"),
              "odd": sum(1 for e in generated if e["status"] == 0), "bad": sum(1 for e in generated if e["status"])}
    return {**facts, "files": [f"{prefix}.h", f"{prefix}.c", KERNEL_NAME, f"{prefix}_test.c", "BUILD.md"],
            "cases": counts, "harness": f"{counts['golden']} golden events, {counts['odd']} odd and {counts['bad']} "
                                        "bad generated events"}


# ---- the harness's cases: what SessionScorer gives -----------------------------------------------------
def harness_sessions(bundle: Path, manifest: dict, *, seed: int = 0) -> list[dict]:
    """The golden sessions, then generated sessions of odd events (padded, unseen, non-ASCII names; huge,
    negative and zero gaps) and bad ones (no name, a blank one, NaN or infinite gaps), each event with the
    status and probability SessionScorer (ONNX Runtime, fp32) gives. A bad event leaves the session as it
    was, in C as in Python."""
    from intent_edge.runtime.streaming import SessionScorer

    scorer = SessionScorer.load(bundle, backend="onnxruntime")
    golden = json.loads(resolve_file(bundle, manifest["golden"]["file"]).read_text())["sessions"]
    sessions = []
    for number, session in enumerate(golden):
        stamps = [float(event["timestamp"]) for event in session["events"]]
        last, steps = None, []
        for event, stamp in zip(session["events"], stamps, strict=True):
            steps.append((event["event"], 0.0 if last is None else (stamp - last) / 1000.0))
            last = stamp if last is None else max(stamp, last)
        sessions.append({"kind": "golden", "events": _replay(scorer, f"golden-{number}", steps)})
    rng = np.random.default_rng(seed)
    vocabulary = list(manifest["sequence"]["vocabulary"])
    odd_names = [None, "", "   ", "\u00a0\u3000", "never-seen-event", "\u00e9v\u00e9nement", "\x85",
                 *(f" {name}\t" for name in vocabulary[:3]), *(name.upper() for name in vocabulary[:2])]
    odd_gaps = [math.nan, math.inf, -math.inf, 1e300, -5.0, 0.0, 1e-300, 86400.0 * 365]
    for number in range(ODD_EVENTS // 6):
        steps = []
        for _ in range(6):
            name = vocabulary[int(rng.integers(len(vocabulary)))] if vocabulary else "x"
            seconds = float(rng.exponential(30.0))
            if rng.random() < 0.5:
                name = odd_names[int(rng.integers(len(odd_names)))]
            if rng.random() < 0.3:
                seconds = odd_gaps[int(rng.integers(len(odd_gaps)))]
            steps.append((name, seconds))
        sessions.append({"kind": "odd", "events": _replay(scorer, f"odd-{number}", steps)})
    return sessions


def _replay(scorer, session_id: str, steps: list[tuple[str | None, float]]) -> list[dict]:
    """Each (name, seconds since the previous event) through the scorer as a timestamp, with the gap the
    scorer computed back from it (what the C caller passes); a name or gap the scorer refuses gets its C
    status and leaves the session unchanged, as in C."""
    out, latest = [], None
    for name, seconds in steps:
        status = ("ERR_MISSING" if name is None or not name.strip() else "ERR_NAN" if math.isnan(seconds)
                  else "ERR_INFINITE" if math.isinf(seconds) else "OK")
        event = {"name": name, "seconds": seconds, "status": STATUSES[status], "probability": 0.0}
        if status == "OK":
            stamp = 0.0 if latest is None else latest + seconds * 1000.0
            event["probability"] = float(scorer.update(session_id, {"event": name, "timestamp": stamp}))
            event["seconds"] = 0.0 if latest is None else (stamp - latest) / 1000.0
            latest = stamp if latest is None else max(stamp, latest)
        out.append(event)
    return out


# ---- the C sources -------------------------------------------------------------------------------------
def header(weights: dict, facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    units, embedding = weights["recurrent"].shape[0], weights["embedding"].shape[1]
    lstm = weights["kind"] == "lstm"
    statuses = "\n".join(f"#define {P}_{status} {code}" for status, code in STATUSES.items())
    cell = f"    float cell[{P}_UNITS];  /* the LSTM's cell state */\n" if lstm else ""
    return f"""/* {p}.h: the streaming step of intent-edge clickstream model '{facts['variant']}', compiled: a
 * session's purchase probability after each event, in O(1) work per event.
 *
 * Build: cc -std=c99 -O2 -ffp-contract=off -c {p}.c   (link with -lm). No heap, no writable globals:
 * the caller owns each session's state. Every exported symbol starts with {p}_. See BUILD.md.
 *
 *     {p}_session session;
 *     {p}_session_start(&session);
 *     status = {p}_update(&session, "product", seconds_since_previous_event, &probability);
 *
 * The first event of a session passes 0 seconds; a negative gap counts as 0. Event names are UTF-8, matched
 * after stripping surrounding white space (Python's str.strip); an unseen name is the unknown event.
 * {p}_update returns {P}_ERR_MISSING for a NULL or blank name, {P}_ERR_NAN or {P}_ERR_INFINITE for such a
 * gap, and then leaves the session as it was. One session must not be updated from two threads at once.
 */
#ifndef {P}_H
#define {P}_H

#ifdef __cplusplus
extern "C" {{
#endif

{statuses}

#define {P}_UNITS {units}
#define {P}_EMBEDDING {embedding}
#define {P}_EVENT_TYPES {weights['embedding'].shape[0] - 2}
#define {P}_THRESHOLD {c_double(np.float32(facts['threshold']))}f
#define {P}_VARIANT {c_string(facts['variant'])}
#define {P}_MANIFEST_SHA256 "{facts['manifest_sha256']}"

typedef struct {p}_session {{
    float state[{P}_UNITS];
{cell}    long events;  /* events taken so far */
}} {p}_session;

void {p}_session_start({p}_session *session);
int {p}_update({p}_session *session, const char *event, double seconds_since_previous, float *probability);
/* The token id of an event name: 1 for an unseen one, 2 and up for the vocabulary, -1 for NULL or blank. */
int {p}_token(const char *event);

#ifdef __cplusplus
}}
#endif

#endif /* {P}_H */
"""


def library(weights: dict, vocabulary: list[str], facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    units = weights["recurrent"].shape[0]
    lstm = weights["kind"] == "lstm"
    gates = 4 if lstm else 3
    order = sorted(range(len(vocabulary)), key=lambda i: vocabulary[i].encode("utf-8"))
    words = [vocabulary[i] for i in order] or [""]
    bias = weights["bias"]
    bias_tables = (f"static const float {p}_bias[{gates * units}] = {{\n{floats_literal(bias)}\n}};\n" if lstm else
                   f"static const float {p}_input_bias[{gates * units}] = {{\n{floats_literal(bias[0])}\n}};\n"
                   f"static const float {p}_recurrent_bias[{gates * units}] = {{\n{floats_literal(bias[1])}\n}};\n")
    if lstm:
        cell = f"""    float from_input[4 * {P}_UNITS], gates[4 * {P}_UNITS], cell[{P}_UNITS];
    ie_dense(x, {P}_EMBEDDING + 1, {p}_kernel, {p}_bias, 4 * {P}_UNITS, IE_ACTIVATION_NONE, from_input);
    ie_dense(session->state, {P}_UNITS, {p}_recurrent, from_input, 4 * {P}_UNITS, IE_ACTIVATION_NONE, gates);
    for (j = 0; j < {P}_UNITS; j++) {{  /* gates i, f, g, o */
        cell[j] = (float)({p}_sigmoid(gates[{P}_UNITS + j]) * session->cell[j]
                          + {p}_sigmoid(gates[j]) * tanh((double)gates[2 * {P}_UNITS + j]));
        state[j] = (float)({p}_sigmoid(gates[3 * {P}_UNITS + j]) * tanh((double)cell[j]));
    }}
    memcpy(session->cell, cell, sizeof cell);"""
    else:
        cell = f"""    float from_input[3 * {P}_UNITS], from_state[3 * {P}_UNITS];
    ie_dense(x, {P}_EMBEDDING + 1, {p}_kernel, {p}_input_bias, 3 * {P}_UNITS, IE_ACTIVATION_NONE, from_input);
    ie_dense(session->state, {P}_UNITS, {p}_recurrent, {p}_recurrent_bias, 3 * {P}_UNITS, IE_ACTIVATION_NONE,
             from_state);
    for (j = 0; j < {P}_UNITS; j++) {{  /* gates z, r, then the candidate (Keras's reset_after GRU) */
        double z = {p}_sigmoid(from_input[j] + from_state[j]);
        double r = {p}_sigmoid(from_input[{P}_UNITS + j] + from_state[{P}_UNITS + j]);
        double candidate = tanh((double)from_input[2 * {P}_UNITS + j] + r * from_state[2 * {P}_UNITS + j]);
        state[j] = (float)(z * session->state[j] + (1.0 - z) * candidate);
    }}"""
    return f"""/* {p}.c: generated by intent-edge from the bundle manifest with sha256
 * {facts['manifest_sha256']}, the {facts['variant']} streaming step.
 * Do not edit: regenerate with `intent-edge export BUNDLE --format c`. */
#include "{p}.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "{KERNEL_NAME}"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* the event vocabulary sorted by bytes, with each name's token id */
static const char *const {p}_events[] = {{{', '.join(c_string(w) for w in words)}}};
static const unsigned int {p}_event_lengths[] = {{{', '.join(str(len(w.encode('utf-8'))) for w in words)}}};
static const int {p}_event_tokens[] = {{{', '.join(str(i + 2) for i in order) or '1'}}};
#define {P}_VOCABULARY {len(vocabulary)}

static const float {p}_embedding[{weights['embedding'].size}] = {{
{floats_literal(weights['embedding'])}
}};
static const float {p}_kernel[{weights['kernel'].size}] = {{
{floats_literal(weights['kernel'])}
}};
static const float {p}_recurrent[{weights['recurrent'].size}] = {{
{floats_literal(weights['recurrent'])}
}};
{bias_tables}static const float {p}_head_kernel[{units}] = {{
{floats_literal(weights['head_kernel'])}
}};
static const float {p}_head_bias[1] = {{{floats_literal(weights['head_bias']).strip()}}};

{text_helpers(p)}
static double {p}_sigmoid(double x)
{{
    return 1.0 / (1.0 + exp(-x));
}}

static int {p}_token_of(const char *text, size_t length)
{{
    int low = 0, high = {P}_VOCABULARY - 1;
    while (low <= high) {{
        int middle = low + (high - low) / 2, order;
        size_t other = {p}_event_lengths[middle];
        order = memcmp(text, {p}_events[middle], length < other ? length : other);
        if (order == 0) order = length < other ? -1 : length > other ? 1 : 0;
        if (order == 0) return {p}_event_tokens[middle];
        if (order < 0) high = middle - 1; else low = middle + 1;
    }}
    return 1;
}}

int {p}_token(const char *event)
{{
    size_t length = 0;
    const char *text = event == NULL ? NULL : {p}_strip(event, &length);
    return text == NULL || length == 0 ? -1 : {p}_token_of(text, length);
}}

void {p}_session_start({p}_session *session)
{{
    memset(session, 0, sizeof *session);
}}

int {p}_update({p}_session *session, const char *event, double seconds_since_previous, float *probability)
{{
    float x[{P}_EMBEDDING + 1], state[{P}_UNITS], head[1];
    int token = {p}_token(event), j;
    if (token < 0) return {P}_ERR_MISSING;
    if (isnan(seconds_since_previous)) return {P}_ERR_NAN;
    if (isinf(seconds_since_previous)) return {P}_ERR_INFINITE;
    memcpy(x, {p}_embedding + (size_t)token * {P}_EMBEDDING, sizeof(float) * {P}_EMBEDDING);
    x[{P}_EMBEDDING] = (float)log1p(seconds_since_previous > 0.0 ? seconds_since_previous : 0.0);
{cell}
    memcpy(session->state, state, sizeof state);
    ie_dense(session->state, {P}_UNITS, {p}_head_kernel, {p}_head_bias, 1, IE_ACTIVATION_SIGMOID, head);
    session->events++;
    *probability = head[0];
    return {P}_OK;
}}
"""


def harness(sessions: list[dict], facts: dict) -> str:
    p, P = facts["prefix"], facts["prefix"].upper()
    events = [(number, event) for number, session in enumerate(sessions) for event in session["events"]]
    names = ",\n".join("    " + ("NULL" if e["name"] is None else c_string(e["name"])) for _, e in events)
    seconds = ",\n".join("    " + c_number(e["seconds"]) for _, e in events)
    flags = ",\n".join(f"    {{{number}, {e['status']}}}" for number, e in events)
    golden = sum(len(s["events"]) for s in sessions if s["kind"] == "golden")
    return f"""/* {p}_test.c: the harness of {p}, generated by intent-edge. Each event of each session comes with
 * what SessionScorer.update gives: a probability (within TOLERANCE) or the status it refuses the event
 * with (the session then stays as it was). Exits 1 on any mismatch. `{p}_test --time` also measures the
 * golden sessions' ns per event. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifndef __wasi__
#include <time.h>
#endif

#include "{p}.h"

#define EVENTS {len(events)}
#define GOLDEN {golden}
#define TOLERANCE {facts['tolerance']!r}

static const char *const names[EVENTS] = {{
{names}
}};
static const double seconds[EVENTS] = {{
{seconds}
}};
static const int flags[EVENTS][2] = {{ /* session, status */
{flags}
}};
static const float expected[EVENTS] = {{
{floats_literal([e['probability'] for _, e in events])}
}};

int main(int argc, char **argv)
{{
    int i, failures = 0, time_it = argc > 1 && strcmp(argv[1], "--time") == 0;
    double worst = 0.0;
    {p}_session session;
    {p}_session_start(&session);
    for (i = 0; i < EVENTS; i++) {{
        float probability = -1.0f;
        int status;
        if (i > 0 && flags[i][0] != flags[i - 1][0]) {p}_session_start(&session);
        status = {p}_update(&session, names[i], seconds[i], &probability);
        if (status != flags[i][1]) {{
            if (failures++ < 10) fprintf(stderr, "event %d: status %d, expected %d\\n", i, status, flags[i][1]);
        }} else if (status == {P}_OK) {{
            double difference = fabs((double)probability - (double)expected[i]);
            if (difference > worst) worst = difference;
            if (!(difference <= TOLERANCE) && failures++ < 10)
                fprintf(stderr, "event %d: probability %.9g, expected %.9g\\n", i, probability, expected[i]);
        }}
    }}
#ifndef __wasi__ /* WASI has no process clock */
    if (time_it) {{
        int round, rounds = 200;
        float sink = 0.0f;
        clock_t started = clock();
        for (round = 0; round < rounds; round++)
            for (i = 0; i < GOLDEN; i++) {{
                float probability;
                if (i == 0 || flags[i][0] != flags[i - 1][0]) {p}_session_start(&session);
                {p}_update(&session, names[i], seconds[i], &probability);
                sink += probability;
            }}
        printf("ns_per_record %.1f (sum %g)\\n",
               1e9 * (double)(clock() - started) / CLOCKS_PER_SEC / ((double)rounds * GOLDEN), (double)sink);
    }}
#else
    (void)time_it;
#endif
    printf("cases %d, failures %d, max |dp| %.3g\\n", EVENTS, failures, worst);
    return failures ? 1 : 0;
}}
"""


def build_note(facts: dict) -> str:
    p = facts["prefix"]
    return f"""# {p}: the C streaming step of intent-edge clickstream model `{facts['variant']}`

Generated from the bundle manifest with sha256 `{facts['manifest_sha256']}`. C99, no dependencies but
`libm`, no heap, no writable globals: the caller owns each session's `{p}_session`.

```sh
cc -std=c99 -O2 -ffp-contract=off -Wall -Wextra -pedantic -c {p}.c          # the library
cc -std=c99 -O2 -ffp-contract=off {p}.c {p}_test.c -lm -o {p}_test && ./{p}_test   # its harness
```

`{p}.h` documents the API: `{p}_session_start`, then `{p}_update` per event with the seconds since the
session's previous event; it equals the Python `SessionScorer.update` within 1e-5, event by event.
"""
