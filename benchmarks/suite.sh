#!/usr/bin/env bash
# Benchmark suite: train the default bundle, `intent-edge compress --target cpu` it (the compression
# table), then `intent-edge bench` every variant and backend beside plain Keras. Reports (Markdown,
# JSON, PNG plots) go to benchmarks/results/ with the date. Runs on the synthetic default and, when
# present, on the shared UCI file. Run it on an otherwise idle machine: much of what it reports is timing.
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
  out="benchmarks/results/bench-$name-$DATE"
  "$BIN/intent-edge" train "$data" --out "$WORK/$name-bundle" >/dev/null
  "$BIN/intent-edge" compress "$WORK/$name-bundle" --data "$data" --target cpu \
    --report "benchmarks/results/compression-$name-$DATE.md"
  "$BIN/intent-edge" bench "$WORK/$name-bundle" --records 10000 --json "$out.json" --markdown "$out.md" \
    --plots "$out-plots"
done
