#!/usr/bin/env node
// Score click streams with an intent-edge clickstream bundle's raw-field step graph, from Node.js.
//
//   node stream/stream.js BUNDLE [EVENTS.jsonl] [--int8]
//
// Reads JSON lines {"session_id", "event", "timestamp" (epoch ms), ...} from the file or standard input,
// in arrival order, and writes one JSON line per event: {"session_id", "probability", "decision"}, the
// session's purchase probability after that event. Each session's state lives here, between events;
// one small graph call per click (the event's name and the seconds since the session's previous event
// in, the new state and the probability out). For a hybrid bundle, the event that starts a session also
// carries the session context fields, which the context graph turns into the session's first state.
// Graphs are checked against the manifest's sha256 before they are loaded.
"use strict";

const { fail, readManifest, verifiedPath, session, jsonLines } = require("../bundle");

function contextFeeds(ort, event, fields, number) {
  const feeds = {};
  for (const field of fields) {
    const value = event[field.field];
    const where = `event ${number}: field '${field.field}'`;
    if (value === undefined) fail(`${where}: missing; the event that starts a session carries its context`);
    if (field.kind === "numeric") {
      if (value !== null && (typeof value !== "number" || !Number.isFinite(value))) {
        fail(`${where}: expected a finite number, got ${JSON.stringify(value)}`);
      }
      feeds[field.input] = new ort.Tensor("float64", Float64Array.from([value === null ? NaN : value]), [1, 1]);
    } else {
      const text = value === null ? "" : typeof value === "boolean" ? (value ? "true" : "false") : String(value).trim();
      feeds[field.input] = new ort.Tensor("string", [text], [1, 1]);
    }
  }
  return feeds;
}

async function main() {
  const args = process.argv.slice(2);
  const int8 = args.includes("--int8");
  const [bundle, input] = args.filter((a) => !a.startsWith("--"));
  if (!bundle) fail("usage: node stream/stream.js BUNDLE [EVENTS.jsonl] [--int8]");
  const ort = require("onnxruntime-node");
  const manifest = readManifest(bundle);
  if (manifest.task !== "clickstream") fail(`${bundle}: not a clickstream bundle; use score/score.js`);
  const step = manifest.step;
  const entry = int8 ? (step.int8.onnxruntime || {}).raw : step.raw;
  if (!entry || entry.status !== "ok") fail(`${bundle}: no ${int8 ? "int8 " : ""}raw-field step graph`);
  const graph = await session(ort, verifiedPath(bundle, entry.file));
  const context = manifest.context && manifest.context.raw;
  const start = context ? await session(ort, verifiedPath(bundle, context.file)) : null;
  const sizes = step.state_sizes || step.state.map(() => step.units);
  const threshold = manifest.threshold.value;
  const open = new Map(); // session id -> {states, last}

  for await (const [number, event] of jsonLines(input, "event")) {
    if (!event || typeof event.session_id !== "string") fail(`event ${number}: expected an object with a text session_id`);
    if (typeof event.event !== "string" || !event.event.trim()) fail(`event ${number}: field 'event': expected the event's name as text`);
    if (typeof event.timestamp !== "number" || !Number.isFinite(event.timestamp)) {
      fail(`event ${number}: field 'timestamp': expected epoch milliseconds as a finite number`);
    }
    let current = open.get(event.session_id);
    if (!current) {
      let states;
      if (start) {
        const out = await start.run(contextFeeds(ort, event, context.fields, number));
        states = start.outputNames.map((name) => out[name]);
      } else {
        states = sizes.map((size) => new ort.Tensor("float32", new Float32Array(size), [1, size]));
      }
      current = { states, last: null };
      open.set(event.session_id, current);
    }
    const seconds = current.last === null ? 0 : (event.timestamp - current.last) / 1000;
    const feeds = { event: new ort.Tensor("string", [event.event.trim()], [1]),
                    seconds: new ort.Tensor("float64", Float64Array.from([seconds]), [1]) };
    step.state.forEach((name, i) => { feeds[name] = current.states[i]; });
    const out = await graph.run(feeds);
    current.states = step.state.map((name) => out[`next_${name}`]);
    current.last = current.last === null ? event.timestamp : Math.max(event.timestamp, current.last);
    const p = out.probability.data[0];
    process.stdout.write(JSON.stringify({ session_id: event.session_id, probability: p, decision: p >= threshold }) + "\n");
  }
}

main().catch((error) => fail(error.message));
