#!/usr/bin/env bash
# Quality of the vector models: for the seed-002 signals and each 2-D toy, train
# with the demo configs, draw 2000 samples, and report the sliced Wasserstein-2
# distance to 2000 fresh data draws, beside the data-vs-data floor (two
# independent draws of 2000). Usage: bench/vector_quality.sh [BIN] [OUT]
set -euo pipefail
BIN=${1:-build/diffuse}
OUT=${2:-out/bench/vector_quality}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
swd() { "$BIN" eval swd --a "$1" --b "$2" | awk '{print $2}'; }
table="$OUT/table.md"
{
  echo "| data | config | steps | train time | SW2 samples vs data | SW2 data vs data (floor) |"
  echo "|---|---|---|---|---|---|"
} >"$table"
for spec in signals toy:swissroll toy:8gaussians toy:moons toy:checkerboard; do
  name=${spec#toy:}
  cfg=configs/toy.json
  [ "$spec" = signals ] && cfg=configs/signals.json
  rm -rf "$OUT/$name"
  start=$(date +%s)
  "$BIN" train --config "$cfg" --data "$spec" --out "$OUT/$name/run" 2>"$OUT/$name.train.log" >/dev/null
  took=$(( $(date +%s) - start ))
  steps=$(grep -o '"steps": [0-9]*' "$OUT/$name/run/config.json" | awk '{print $2}')
  "$BIN" sample --run "$OUT/$name/run" --n 2000 --seed 1 --out "$OUT/$name/samples" 2>/dev/null >/dev/null
  "$BIN" data --data "$spec" --n 2000 --seed 12345 --out "$OUT/$name/data_a.csv" >/dev/null
  "$BIN" data --data "$spec" --n 2000 --seed 54321 --out "$OUT/$name/data_b.csv" >/dev/null
  echo "| $spec | $cfg | $steps | ${took}s | $(swd "$OUT/$name/samples/samples.csv" "$OUT/$name/data_a.csv") | $(swd "$OUT/$name/data_b.csv" "$OUT/$name/data_a.csv") |" >>"$table"
  tail -1 "$table"
done
cat "$table"
