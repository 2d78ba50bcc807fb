#!/usr/bin/env bash
# Data-parallel training throughput on this machine: the fmnist-base model (global batch 64)
# trained by 1 process × 2 threads against 2 processes × 1 thread (Gloo on loopback), with the
# gradient all-reduce overlapped with the backward pass and after it. Prints a Markdown table:
# images/s (steady state: the first WARM steps are left out) and the all-reduce time per step
# (the time the ranks spend finishing the all-reduce after their backward pass).
#
#   bench/distributed_throughput.sh build/diffuse [STEPS=8] [WARM=2]
set -euo pipefail
BIN=${1:?usage: distributed_throughput.sh path/to/diffuse [steps] [warm-up steps]}
STEPS=${2:-8}
WARM=${3:-2}
OUT=$(mktemp -d /tmp/diffuse_dist_bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
BATCH=64

# images/s from log.csv (log-every 1): global batch over the mean step time after the warm-up.
rate() {
  awk -F, -v warm="$WARM" -v batch="$BATCH" 'NR > 1 { t[$1] = $6 }
    END { n = 0; for (s in t) if (s + 0 > n) n = s + 0;
          printf "%.1f", batch * (n - warm) / (t[n] - t[warm]) }' "$1/log.csv"
}
run() {  # name, extra flags…
  local name=$1; shift
  "$BIN" train --preset fmnist-base --steps "$STEPS" --log-every 1 --checkpoint-every 100000 \
    --sample-every 0 --out "$OUT/$name" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" ||
    { cat "$OUT/$name.err" >&2; exit 1; }
  local ms
  ms=$(sed -n 's/^all-reduce ([a-z]*, [0-9]* ranks): \([0-9.]*\) ms.*/\1/p' "$OUT/$name.txt")
  printf '| %s | %s | %s |\n' "$name" "$(rate "$OUT/$name")" "${ms:-–}"
}

echo "load before: $(cat /proc/loadavg)"
echo
echo "fmnist-base, global batch $BATCH, $STEPS steps (first $WARM left out), $(nproc) cores"
echo
echo "| setup | images/s | all-reduce ms/step |"
echo "|---|---|---|"
run "1 process × 2 threads" --threads 2
run "2 processes × 1 thread, overlapped" --nproc 2 --threads 1
run "2 processes × 1 thread, after backward" --nproc 2 --threads 1 --no-overlap
echo
echo "load after: $(cat /proc/loadavg)"
