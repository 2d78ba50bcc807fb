#!/usr/bin/env bash
# Crash consistency of a training run: a run killed with SIGKILL again and again (a checkpoint
# every step, so that most kills land in or near a write) always leaves a run folder whose
# real-named files are whole (checkpoint loads, config.json parses, log.csv has only complete
# rows, loss.png is a complete PNG), resumes after each kill, and ends with the checkpoint of
# an uninterrupted run, byte for byte, and its log. Leftover PATH.tmp-PID files of killed writes
# are counted; they are never taken for the real files.
#
# Usage: crash_consistency.sh DIFFUSE_BIN WORKDIR [KILLS=30]
#   CRASH_SEED=N   seed of the random kill times (default: the PID; printed)
#   CRASH_STEPS=N  total steps of the run (default: calibrated so that KILLS kills fit in the run)
#   CRASH_KEEP=1   keep the work folder even when everything passed
set -Eeuo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIFFUSE_BIN WORKDIR [KILLS=30]" >&2
  exit 2
fi
BIN=$1
WORK=$2
KILLS=${3:-30}
mkdir -p "$WORK"
T=$(mktemp -d "$WORK/crash.XXXXXX")
CHECK="$(dirname "$0")/run_folder_check.py"  # whole-file checks of a run folder
export OMP_NUM_THREADS=1
unset DIFFUSE_QUICK  # docs/cli.md#quick-mode would shorten the runs
pass=0
fail=0
pid=""
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ $fail -eq 0 ] && [ "${CRASH_KEEP:-0}" != 1 ]; then
    rm -rf "$T"
  else  # the leftovers of killed writes (counted above) are ≈ 57 MB each
    [ "${CRASH_KEEP:-0}" = 1 ] || find "$T" -name '*.tmp-*' -delete
    echo "work folder kept: $T"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # (the EXIT trap then cleans up)
trap 'fail=$((fail + 1)); echo "FAIL: unexpected error (status $?) at line $LINENO: $BASH_COMMAND"' ERR
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

SEED=${CRASH_SEED:-$$}
RANDOM=$SEED
SLEEP_MIN_MS=300   # kill times: uniform in [0.3 s, 2.7 s] after the start of each part of the run
SLEEP_MAX_MS=2700
start_all=$(now)

# A vector MLP big enough that a checkpoint write takes measurable time (weights, EMA, AdamW
# moments: ≈ 57 MB), with a small batch so that a training step is cheap next to the
# checkpoint, log.csv and loss.png written after every step.
cat >"$T/run.json" <<'JSON'
{"data": "signals", "model": {"hidden": 512, "blocks": 4}, "schedule": {"kind": "linear", "T": 100},
 "batch": 16, "seed": 11, "threads": 1, "log_every": 1, "checkpoint_every": 1}
JSON

# tensor_diff.py A B: what differs between two safetensors files (tensors by raw bytes, metadata)
cat >"$T/tensor_diff.py" <<'PY'
import json, struct, sys
def read(p):
    d = open(p, "rb").read()
    n = struct.unpack("<Q", d[:8])[0]
    h = json.loads(d[8:8 + n])
    meta = h.pop("__metadata__", {})
    return meta, {k: (v["dtype"], v["shape"], d[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
(ma, ta), (mb, tb) = read(sys.argv[1]), read(sys.argv[2])
out = [f"metadata '{k}' differs: {ma.get(k)!r:.80} vs {mb.get(k)!r:.80}" for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)]
out += [f"tensor '{k}' only in one file" for k in sorted(set(ta) ^ set(tb))]
diff = [k for k in sorted(set(ta) & set(tb)) if ta[k] != tb[k]]
if diff:
    out.append(f"{len(diff)} of {len(ta)} tensors differ, e.g. {', '.join(diff[:5])}")
print("; ".join(out) if out else "same tensors and metadata (only the layout differs)")
PY

# check_after_kill RUN_DIR: the folder is whole and its checkpoint loads. Sets ck_step and log_step.
ck_step=-
log_step=-
check_after_kill() {
  local run=$1 what=$2 res rc=0
  res=$(python3 "$CHECK" run "$run" 2>"$T/check.err") || rc=$?
  read -r ck_step log_step <<<"${res:-- -}"
  if [ $rc -ne 0 ]; then
    bad "$what: $(tr '\n' ';' <"$T/check.err")"
    return 1
  fi
  if [ "$ck_step" != - ]; then
    rm -rf "$T/load"
    if ! "$BIN" sample --run "$run" --n 1 --steps 2 --sampler ddim --threads 1 --out "$T/load" >/dev/null 2>"$T/load.err"; then
      bad "$what: the checkpoint (step $ck_step) does not load: $(tail -2 "$T/load.err" | tr '\n' ' ')"
      return 1
    fi
  fi
  return 0
}

# same_as_A RUN_DIR: the finished run's checkpoint is A's, byte for byte, and its log A's rows
# (step, loss, lr, grad_norm: the timing columns differ)
same_as_A() {
  local run=$1
  if cmp -s "$T/A/checkpoint.safetensors" "$run/checkpoint.safetensors"; then
    ok
  else
    bad "$(basename "$run"), killed and resumed, ends with another checkpoint than the uninterrupted run A: $(python3 "$T/tensor_diff.py" "$T/A/checkpoint.safetensors" "$run/checkpoint.safetensors")"
  fi
  if diff <(cut -d, -f1-4 "$T/A/log.csv") <(cut -d, -f1-4 "$run/log.csv") >"$T/log.diff"; then
    ok
  else
    bad "log.csv of $(basename "$run") (killed and resumed) differs from A's (columns step,loss,lr,grad_norm): $(grep -c '^<' "$T/log.diff" || true) rows of A missing or changed, first: $(grep -m3 '^[<>]' "$T/log.diff" | tr '\n' ' ')${lags:+— the trainer writes the checkpoint before log.csv, and these kills came between the two: ${lags%, }}"
  fi
  python3 "$CHECK" run "$run" >/dev/null 2>"$T/check.err" && ok || bad "finished $(basename "$run"): $(tr '\n' ';' <"$T/check.err")"
}

# Calibration: the start-up time and the time per step (with its checkpoint, log and plot), so that
# the run is long enough for KILLS kills at the random times above
t0=$(now)
"$BIN" train --config "$T/run.json" --out "$T/cal1" --steps 4 >/dev/null 2>"$T/cal.err" || { bad "calibration run: $(tail -3 "$T/cal.err")"; exit 1; }
t1=$(now)
"$BIN" train --config "$T/run.json" --out "$T/cal2" --steps 24 >/dev/null 2>"$T/cal.err" || { bad "calibration run: $(tail -3 "$T/cal.err")"; exit 1; }
t2=$(now)
ckpt_bytes=$(stat -c %s "$T/cal2/checkpoint.safetensors")
rm -rf "$T/cal1" "$T/cal2"
read -r step_s startup_s <<<"$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { s = ((c - b) - (b - a)) / 20; if (s < 0.001) s = 0.001;
  u = (b - a) - 4 * s; if (u < 0) u = 0; printf "%.4f %.3f", s, u }')"
# the steps made by KILLS parts of the run (a mean kill time of (min+max)/2 less the start-up), × 1.5
STEPS=${CRASH_STEPS:-$(awk -v k="$KILLS" -v s="$step_s" -v u="$startup_s" -v lo="$SLEEP_MIN_MS" -v hi="$SLEEP_MAX_MS" \
  'BEGIN { p = (lo + hi) / 2000 - u; if (p < 0.3) p = 0.3; n = int(1.5 * k * p / s) + 1; if (n < 60) n = 60; if (n > 20000) n = 20000; print n }')}
echo "calibration: start-up ${startup_s} s, $(awk -v s="$step_s" 'BEGIN { printf "%.0f", 1000 * s }') ms a step with its checkpoint ($((ckpt_bytes / 1000)) kB), log and plot → $STEPS steps; kill-time seed $SEED"
sed -i "s/\"batch\": 16,/\"batch\": 16, \"steps\": $STEPS,/" "$T/run.json"

# A: the uninterrupted run
tA=$(now)
"$BIN" train --config "$T/run.json" --out "$T/A" >/dev/null 2>"$T/A.err" || { bad "reference run A: $(tail -3 "$T/A.err")"; exit 1; }
echo "reference run A: $STEPS steps in $(secs "$tA" "$(now)") s"

# B: started, killed at a random time, checked, resumed (or started anew when it has no checkpoint
# yet), KILLS times. A part that finishes before its kill does not count; when a run gets to the
# end its result is compared with A and a new run B2, B3 … takes the remaining kills.
lags="" lag_step="" lag_count=0  # kills that left log.csv behind the checkpoint
kills=0 checks=0 in_ckpt=0 in_other=0 before_first=0 late=0 cycles=0 runs=1
declare -A tmp_kinds=()
R="$T/B1"
prev_step=0
tB=$(now)
while [ $kills -lt "$KILLS" ]; do
  cycles=$((cycles + 1))
  if [ $cycles -gt $((3 * KILLS + 10)) ]; then
    bad "only $kills kills in $cycles starts: the parts of the run end before their kill (is the run too short? CRASH_STEPS=$STEPS)"
    break
  fi
  if [ -e "$R/checkpoint.safetensors" ]; then
    mode=resume
    args=(train --out "$R" --resume)
  else
    mode=fresh
    args=(train --config "$T/run.json" --out "$R")
  fi
  "$BIN" "${args[@]}" >"$T/B.out" 2>"$T/B.err" &
  pid=$!
  ms=$((SLEEP_MIN_MS + RANDOM % (SLEEP_MAX_MS - SLEEP_MIN_MS + 1)))
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null && rc=0 || rc=$?  # (bash's "Killed" notice)
  killed=$pid
  pid=""
  if [ $rc -eq 0 ]; then
    late=$((late + 1))
    echo "  $(basename "$R") finished before its kill (${ms} ms after the $mode start): compared with A, next run"
    same_as_A "$R"
    runs=$((runs + 1))
    R="$T/B$runs"
    prev_step=0 lags="" lag_step=""
    continue
  fi
  if [ $rc -ne 137 ]; then
    bad "$(basename "$R") ($mode start, cycle $cycles) exited with status $rc before its kill: $(grep -v '^\s*$' "$T/B.err" | tail -2 | tr '\n' ' ')"
    break
  fi
  kills=$((kills + 1))
  # which write the kill interrupted: the killed process's own PATH.tmp-PID files
  where=training
  shopt -s nullglob
  left=("$R"/*.tmp-"$killed")
  shopt -u nullglob
  if [ ${#left[@]} -gt 0 ]; then
    kind=$(basename "${left[0]}")
    kind=${kind%.tmp-*}
    tmp_kinds[$kind]=$((${tmp_kinds[$kind]:-0} + 1))
    if [ "$kind" = checkpoint.safetensors ]; then in_ckpt=$((in_ckpt + 1)); else in_other=$((in_other + 1)); fi
    where="writing $kind"
  fi
  if check_after_kill "$R" "kill $kills (${ms} ms after the $mode start of $(basename "$R"), $where)"; then
    checks=$((checks + 1))
  fi
  step_now=$ck_step
  [ "$step_now" = - ] && step_now=0
  # log_every = checkpoint_every = 1: log.csv should hold every step up to the checkpoint's, else a
  # resume (which keeps the rows up to the checkpoint's step) leaves a gap in the log for good
  lstep=$log_step
  [ "$lstep" = - ] && lstep=0
  if [ "$lstep" -lt "$step_now" ] && [ "$step_now" != "$lag_step" ]; then
    lag_step=$step_now
    lag_count=$((lag_count + 1))
    lags+="kill $kills at step $step_now (log.csv ends at $lstep), "
    echo "  note: kill $kills ($where) landed after the checkpoint's rename, before log.csv's: the checkpoint is at step $step_now, log.csv ends at step $lstep; a resume keeps only the log's rows, so steps $((lstep + 1))…$step_now will be missing from it"
  fi
  if [ "$step_now" -lt "$prev_step" ]; then
    bad "kill $kills: the checkpoint went back from step $prev_step to $step_now"
  fi
  [ "$step_now" -eq "$prev_step" ] && [ "$where" = training ] && before_first=$((before_first + 1))
  prev_step=$step_now
  if [ "$step_now" -ge "$STEPS" ]; then  # killed after the last checkpoint, in the last log/plot writes
    echo "  $(basename "$R") was killed after its last checkpoint ($where): compared with A, next run"
    same_as_A "$R"
    runs=$((runs + 1))
    R="$T/B$runs"
    prev_step=0 lags="" lag_step=""
  fi
done
echo "kills done in $(secs "$tB" "$(now)") s; last checkpoint of $(basename "$R") at step $prev_step of $STEPS"

# the last B run to its end, compared with A
if [ -e "$R/checkpoint.safetensors" ]; then
  "$BIN" train --out "$R" --resume >/dev/null 2>"$T/B.err" && rc=0 || rc=$?
else
  "$BIN" train --config "$T/run.json" --out "$R" >/dev/null 2>"$T/B.err" && rc=0 || rc=$?
fi
if [ $rc -eq 0 ]; then
  same_as_A "$R"
else
  bad "the last resume of $(basename "$R") failed (status $rc): $(grep -v '^\s*$' "$T/B.err" | tail -2 | tr '\n' ' ')"
fi

# leftovers of killed writes: never under a real name, and counted
leftovers=$(find "$T" -name '*.tmp-*' | wc -l)
leftover_kb=$(find "$T" -name '*.tmp-*' -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s / 1000 }')
kinds=""
for k in "${!tmp_kinds[@]}"; do kinds+="$k ${tmp_kinds[$k]}, "; done
echo "leftover *.tmp-PID files: $leftovers ($leftover_kb kB) in the B run folders${kinds:+ (kills during writes: ${kinds%, })}"
echo "crash consistency: $kills kills, $checks checks passed, $in_ckpt kills during a checkpoint write, $in_other during another file's write, $lag_count between the checkpoint's and log.csv's, $before_first before the first checkpoint of the process; $late part(s) finished before the kill; $runs B run(s); $pass comparisons passed, $fail failed; $(secs "$start_all" "$(now)") s"
[ "$checks" -eq "$kills" ] && [ "$kills" -ge "$KILLS" ] || { [ $fail -gt 0 ] || bad "$checks of $kills checks passed (wanted $KILLS kills)"; }
[ $fail -eq 0 ] || exit 1
