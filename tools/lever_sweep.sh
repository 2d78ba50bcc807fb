#!/bin/bash
# usage: tools/lever_sweep.sh CORE NAME 'JSON' [NAME 'JSON' ...]
# One-thread, 4-minute fmnist-tiny runs of bench_time_to_quality pinned to CPU CORE, one after
# another, each with its --set JSON override; results in out/lev/NAME/ (docs/time_to_quality.md).
# Run one sweep per core and nothing else on the machine.
set -eo pipefail
cd "$(dirname "$0")/.."
core=$1; shift
while [ $# -gt 1 ]; do
  name=$1; set_json=$2; shift 2
  echo "=== $name $set_json $(date +%T)"
  taskset -c "$core" ./build/bench/bench_time_to_quality --preset fmnist-tiny --set "$set_json" --threads 1 \
    --minutes 4 --steps auto --n 1000 --out "out/lev/$name" --label "$name" > "out/lev/$name.log" 2>&1
  tail -1 "out/lev/$name/table.md"
done
