// Reading an intent-edge bundle from Node.js: the manifest, and a graph verified against its sha256.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const readline = require("readline");

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function readManifest(bundle) {
  const file = path.join(bundle, "manifest.json");
  if (!fs.existsSync(file)) fail(`${bundle}: not a bundle (manifest.json is missing)`);
  const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
  if (manifest.format !== "intent-edge-bundle" || manifest.format_version !== 1) {
    fail(`${bundle}: not an intent-edge bundle of format version 1`);
  }
  return manifest;
}

// The verified path of a manifest file entry: a plain name inside the bundle, of the recorded size and sha256.
function verifiedPath(bundle, entry) {
  if (!entry || !entry.path || path.basename(entry.path) !== entry.path) fail(`${bundle}: bad file entry`);
  const file = path.join(bundle, entry.path);
  if (!fs.existsSync(file)) fail(`${bundle}: ${entry.path} is missing`);
  const bytes = fs.readFileSync(file);
  const digest = crypto.createHash("sha256").update(bytes).digest("hex");
  if (bytes.length !== entry.bytes || digest !== entry.sha256) {
    fail(`${bundle}: ${entry.path} is damaged: its sha256 does not match the manifest`);
  }
  return file;
}

async function session(ort, file) {
  return ort.InferenceSession.create(file, { executionProviders: ["cpu"] });
}

// A session bundle's raw-field graph: the named variant's, or the default variant's where it has one,
// else fp32's.
async function loadRawGraph(bundle, variant) {
  const ort = require("onnxruntime-node");
  const manifest = readManifest(bundle);
  if ((manifest.task || "sessions") !== "sessions") fail(`${bundle}: a ${manifest.task} bundle; use stream/stream.js`);
  const hasRaw = (name) => manifest.variants[name] && manifest.variants[name].raw &&
    manifest.variants[name].raw.status === "ok";
  const name = variant || (hasRaw(manifest.default_variant) ? manifest.default_variant : "fp32");
  if (!hasRaw(name)) fail(`${bundle}: variant '${name}' has no raw-field graph`);
  const entry = manifest.variants[name].raw;
  return { ort, manifest, entry, threshold: manifest.threshold.value,
           session: await session(ort, verifiedPath(bundle, entry.file)) };
}

// JSON lines from a file (or standard input when none), as [number, value]: numbered from 1, blank
// lines skipped; a line that is not JSON stops the run naming the `what` and its number.
async function* jsonLines(input, what) {
  const lines = readline.createInterface({ input: input ? fs.createReadStream(input) : process.stdin });
  let number = 0;
  for await (const line of lines) {
    if (!line.trim()) continue;
    number += 1;
    let value;
    try {
      value = JSON.parse(line);
    } catch (error) {
      fail(`${what} ${number}: not valid JSON (${error.message})`);
    }
    yield [number, value];
  }
}

module.exports = { fail, readManifest, verifiedPath, session, loadRawGraph, jsonLines };
