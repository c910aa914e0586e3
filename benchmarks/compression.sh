#!/usr/bin/env bash
# Compression benchmark: train the default bundle, run `intent-edge compress --target cpu`, and keep the
# table (with the command that made it) in benchmarks/results/compression-<data>-<date>.md. Runs on the
# synthetic default and, when present, on the shared UCI file. Run it on an otherwise idle machine:
# latency and throughput columns are timings.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATE=$(date +%F)
UCI=../shared/data/online_shoppers_intention.csv

"$BIN/intent-edge" data synth --rows 20000 --seed 0 --out "$WORK/synthetic.csv"
sources=("synthetic:$WORK/synthetic.csv")
if [ -f "$UCI" ]; then sources+=("uci:$UCI"); else echo "skipping the UCI data: $UCI is absent"; fi

for entry in "${sources[@]}"; do
  name=${entry%%:*}; data=${entry#*:}
  "$BIN/intent-edge" train "$data" --out "$WORK/$name-bundle" >/dev/null
  "$BIN/intent-edge" compress "$WORK/$name-bundle" --data "$data" --target cpu \
    --report "benchmarks/results/compression-$name-$DATE.md"
done
