#!/usr/bin/env node
// Score raw session records with an intent-edge bundle's raw-field ONNX graph, from Node.js.
//
//   node score/score.js BUNDLE [RECORDS.jsonl] [--variant NAME] [--lenient]
//
// Reads JSON lines (one record a line: field name -> value) from the file or standard input and writes
// one JSON line per record: {"probability": p, "decision": p >= threshold}. No Python and no encoder of
// our own: the graph takes the raw fields and encodes them itself. The graph's sha256 is checked
// against the bundle's manifest before it is loaded.
//
// Strict by default, as the Python runtime is: a missing field, an empty value, a numeric value that is
// not a finite number, or a category that is not text, an integer or a boolean stops the run naming the
// record and the field (exit status 2). With --lenient, missing or empty values are sent as NaN / "" and
// the graph imputes them (training median, out-of-vocabulary category).
"use strict";

const { loadRawGraph, fail, jsonLines } = require("../bundle");

function categoryText(value) {
  // The graph's canonical text: text as given (trimmed, as the Python runtime does), integers as
  // decimal text, booleans as "true"/"false".
  if (typeof value === "string") return value.trim();
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

function tensorsFor(ort, records, fields, lenient, firstNumber) {
  const feeds = {};
  for (const field of fields) {
    const values = records.map((record, i) => {
      const value = record[field.field];
      const where = `record ${firstNumber + i}: field '${field.field}'`;
      if (value === undefined || value === null) {
        if (!lenient) fail(`${where}: ${value === undefined ? "missing from the record" : "is empty (null)"}`);
        return field.kind === "numeric" ? NaN : "";
      }
      if (field.kind === "numeric") {
        if (typeof value !== "number") fail(`${where}: expected a number, got ${JSON.stringify(value)}`);
        if (!Number.isFinite(value)) fail(`${where}: is ${value}; expected a finite number`);
        return value;
      }
      const text = categoryText(value);
      if (text === null) fail(`${where}: expected a category (text, integer or boolean), got ${JSON.stringify(value)}`);
      return text;
    });
    feeds[field.input] = field.kind === "numeric"
      ? new ort.Tensor("float64", Float64Array.from(values), [values.length, 1])
      : new ort.Tensor("string", values, [values.length, 1]);
  }
  return feeds;
}

async function main() {
  const args = process.argv.slice(2);
  const lenient = args.includes("--lenient");
  const variantAt = args.indexOf("--variant");
  const variant = variantAt >= 0 ? args[variantAt + 1] : null;
  const positional = args.filter((a, i) => !a.startsWith("--") && (variantAt < 0 || i !== variantAt + 1));
  if (positional.length < 1) fail("usage: node score/score.js BUNDLE [RECORDS.jsonl] [--variant NAME] [--lenient]");
  const [bundle, input] = positional;
  const { ort, session, entry, threshold } = await loadRawGraph(bundle, variant);

  let batch = [];
  let number = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const feeds = tensorsFor(ort, batch, entry.fields, lenient, number - batch.length + 1);
    const out = (await session.run(feeds)).probability.data;
    const text = Array.from(out, (p) => JSON.stringify({ probability: p, decision: p >= threshold })).join("\n");
    process.stdout.write(text + "\n");
    batch = [];
  };
  for await (const [count, record] of jsonLines(input, "record")) {
    number = count;
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      fail(`record ${number}: expected an object of field names to values`);
    }
    batch.push(record);
    if (batch.length === 1024) await flush();
  }
  await flush();
}

main().catch((error) => fail(error.message));
