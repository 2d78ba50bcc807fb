#!/bin/bash
# Runs every libFuzzer binary of a DIFFUSE_FUZZ build for FUZZ_SECONDS each, starting from the
# committed seeds (fuzz/corpus/NAME), and prints per target: executions, new corpus inputs,
# crashes/hangs/OOMs (files under out/fuzz/artifacts/). A crash input is a bug: fix it and
# copy the input into fuzz/corpus/NAME/ as a regression test (fuzz_replay runs it in make test).
#   tools/run_fuzz.sh BUILD_DIR SEEDS_DIR SECONDS [TARGET…]
set -uo pipefail
build=$1 seeds=$2 seconds=$3
shift 3
out=${FUZZ_OUT:-out/fuzz}
mkdir -p "$out/artifacts" "$out/corpus" "$out/logs"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for b in "$build"/fuzz/fuzz_*; do [ -x "$b" ] && targets+=("$(basename "$b" | sed 's/^fuzz_//')"); done
fi
# LibTorch is not instrumented; its containers cross into ours (container-overflow would be
# a false report) and it keeps allocations until exit (leaks are LibTorch's own): see
# docs/reliability.md.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_container_overflow=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
status=0
printf '| target | seconds | executions | exec/s | corpus | crashes, hangs, OOMs |\n|---|---:|---:|---:|---:|---:|\n' > "$out/summary.md"
for t in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "no fuzz binary $bin" >&2; status=1; continue; }
  mkdir -p "$out/corpus/$t"
  before=$(ls "$out/artifacts" | grep -c "^$t-" || true)
  "$bin" "$out/corpus/$t" "$seeds/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
    -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
    > "$out/logs/$t.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out/logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  after=$(ls "$out/artifacts" | grep -c "^$t-" || true)
  found=$((after - before))
  corpus=$(ls "$out/corpus/$t" | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$found" | tee -a "$out/summary.md"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "  $t: exit $rc, see $out/logs/$t.log and $out/artifacts/$t-*" >&2
    status=1
  fi
done
echo "summary: $out/summary.md"
exit $status
