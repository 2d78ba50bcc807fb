#!/usr/bin/env bash
# A full disk: training and sampling that cannot write a file stop with a non-zero exit status and
# a message naming the file and saying the disk is full; the run's last checkpoint stays as it was
# and loads, no file under its real name is left half written, and no temporary file is left to
# keep the disk full. The run goes on once there is space again.
#
# The small filesystem is a tmpfs (as root, where mounting works) or else a file size limit
# (ulimit -f, in KiB) on the commands that should fail; diffuse ignores SIGXFSZ, so the write
# fails with EFBIG instead of the signal killing the process.
#
# Usage: disk_full.sh DIFFUSE_BIN WORKDIR
#   DISKFULL_METHOD=ulimit  use the file size limit even where a tmpfs can be mounted
#   DISKFULL_KEEP=1         keep the work folder even when everything passed
set -Eeuo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIFFUSE_BIN WORKDIR" >&2
  exit 2
fi
BIN=$1
WORK=$2
mkdir -p "$WORK"
T=$(mktemp -d "$WORK/diskfull.XXXXXX")
CHECK="$(dirname "$0")/run_folder_check.py"  # whole-file checks
FM=/usr/share/datasets/fashion-mnist
export OMP_NUM_THREADS=1
unset DIFFUSE_QUICK
pass=0
fail=0
mounted=""
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
cleanup() {
  if [ -n "$mounted" ]; then umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || echo "could not unmount $mounted"; fi
  if [ $fail -eq 0 ] && [ "${DISKFULL_KEEP:-0}" != 1 ]; then rm -rf "$T"; else echo "work folder kept: $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # (the EXIT trap then cleans up)
trap 'fail=$((fail + 1)); echo "FAIL: unexpected error (status $?) at line $LINENO: $BASH_COMMAND"' ERR
start_all=$(date +%s.%N)

# The small filesystem FS
FS="$T/fs"
mkdir -p "$FS"
method=ulimit
if [ "${DISKFULL_METHOD:-}" != ulimit ] && [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=4096k tmpfs "$FS" 2>/dev/null; then
  method=tmpfs
  mounted=$FS
  echo "small filesystem: a 4 MiB tmpfs at $FS, filled up before each case"
else
  echo "small filesystem: ulimit -f (file size limit, KiB) on the failing commands$([ "$(id -u)" = 0 ] || echo ': not root, no tmpfs')"
fi

# space SLACK_KIB: leaves about SLACK_KIB free on the tmpfs (a filler file takes the rest); with the
# file size limit it only remembers the limit for `limited`
limit_kib=0
space() {
  limit_kib=$1
  [ $method = tmpfs ] || return 0
  rm -f "$FS/filler"
  cat /dev/zero >"$FS/filler" 2>/dev/null || true  # until ENOSPC
  [ "$1" -eq 0 ] || truncate -s "-${1}K" "$FS/filler"
}
free_space() { rm -f "$FS/filler"; limit_kib=""; }
# limited CMD…: runs CMD on the small filesystem (with the file size limit: under ulimit -f); sets rc
# and err (stderr, through a pipe: no file size limit applies to it)
limited() {
  if [ $method = ulimit ] && [ -n "$limit_kib" ]; then
    err=$( (ulimit -f "$limit_kib" && exec "$@") 2>&1 >/dev/null) && rc=0 || rc=$?
  else
    err=$("$@" 2>&1 >/dev/null) && rc=0 || rc=$?
  fi
}
messages() { grep -E '^(error|hint)' <<<"$err" || tail -n 3 <<<"$err"; }
# expect_full NAME PATH: the command failed because PATH could not be written, and said why
expect_full() {
  local name=$1 want=$2 msg
  msg=$(messages | tr '\n' ' ')
  if [ "$rc" -eq 0 ]; then
    bad "$name: exit status 0 although '$want' cannot be written ($method full)"
    return
  fi
  if [ "$rc" -ge 128 ]; then
    local sig
    sig=$(kill -l $((rc - 128)) 2>/dev/null || echo "?")
    if [ "$sig" = XFSZ ]; then
      bad "$name: killed by SIGXFSZ (status $rc): the binary does not ignore SIGXFSZ, so the file size limit kills it in the middle of the write instead of failing it"
    else
      bad "$name: killed by signal $((rc - 128)) (SIG$sig, status $rc) instead of failing with a message: $msg"
    fi
    return
  fi
  ok
  echo "  $name: status $rc: $msg"
  grep -qF "$want" <<<"$err" && ok || bad "$name: the message does not name '$want': $msg"
  grep -Eqi 'disk (is )?full|no space|file size limit' <<<"$err" && ok ||
    bad "$name: the message does not say the disk is full ('disk full', 'No space left' or 'file size limit'): $msg"
}
# no_leftovers NAME DIR: no PATH.tmp-PID of the failed write is left in DIR to keep the disk full
no_leftovers() {
  local left
  left=$(find "$2" -name '*.tmp-*' -printf '%f (%s bytes) ' 2>/dev/null || true)
  [ -z "$left" ] && ok || bad "$1: temporary file(s) left after the failed write: $left"
}
# whole NAME PATH…: every file under its real name is complete
whole() {
  local name=$1
  shift
  python3 "$CHECK" files "$@" 2>"$T/whole.err" && ok || bad "$name: a file under its real name is not whole: $(tr '\n' ';' <"$T/whole.err")"
}
loads() {  # loads NAME RUN_DIR: the run's checkpoint loads (sampled outside the small filesystem)
  rm -rf "$T/load"
  "$BIN" sample --run "$2" --n 2 --steps 2 --sampler ddim --threads 1 --out "$T/load" >/dev/null 2>"$T/load.err" && ok ||
    bad "$1: the checkpoint of $2 does not load: $(grep -E '^(error|hint)' "$T/load.err" | tr '\n' ' ')"
}

# Case 1: training. A small run (checkpoint ≈ 100 kB) fits; a resume into a full disk (16 KiB left,
# enough for config.json, not for the checkpoint) fails at its first checkpoint, keeps the old one.
cat >"$T/small.json" <<'JSON'
{"data": "toy:8gaussians", "schedule": {"kind": "linear", "T": 50}, "model": {"hidden": 64, "blocks": 2},
 "steps": 20, "batch": 32, "log_every": 10, "checkpoint_every": 10, "threads": 1}
JSON
RUN="$FS/run"
free_space
if ! "$BIN" train --config "$T/small.json" --out "$RUN" >/dev/null 2>"$T/train.err"; then
  bad "training the small run into the empty small filesystem failed: $(tail -3 "$T/train.err" | tr '\n' ' ')"
  exit 1
fi
cp -a "$RUN" "$T/run.before"
ckpt_bytes=$(stat -c %s "$RUN/checkpoint.safetensors")
[ "$ckpt_bytes" -gt 65536 ] && ok || bad "the test's checkpoint is only $ckpt_bytes bytes: it should not fit in the 16 KiB left"
same_run() {  # same_run NAME: the run folder's checkpoint and log are those before the failed resume, loadable, whole
  cmp -s "$T/run.before/checkpoint.safetensors" "$RUN/checkpoint.safetensors" && ok ||
    bad "$1: checkpoint.safetensors changed ($(stat -c %s "$RUN/checkpoint.safetensors" 2>/dev/null || echo missing) bytes, was $ckpt_bytes)"
  # log.csv and loss.png are written before the checkpoint: the log may run ahead of it (resume
  # drops those rows), but the rows up to the checkpoint's step are those from before
  head -c "$(stat -c %s "$T/run.before/log.csv")" "$RUN/log.csv" | cmp -s - "$T/run.before/log.csv" && ok ||
    bad "$1: the rows of log.csv up to the checkpoint changed"
  python3 "$CHECK" run "$RUN" >/dev/null 2>"$T/whole.err" && ok || bad "$1: the run folder is not whole: $(tr '\n' ';' <"$T/whole.err")"
  no_leftovers "$1" "$RUN"
  loads "$1" "$RUN"
}

space 16
limited "$BIN" train --out "$RUN" --resume --steps 40
expect_full "train: resume into a full disk" "$RUN/"  # loss.png or checkpoint.safetensors, whichever does not fit
same_run "train: resume into a full disk"
# 1b: not even config.json (written at the start) fits
space 0
limited "$BIN" train --out "$RUN" --resume --steps 40
expect_full "train: resume into a disk with no space" "$RUN/config.json"
same_run "train: resume into a disk with no space"
# with space again, the run goes on from its checkpoint
free_space
if "$BIN" train --out "$RUN" --resume --steps 40 >/dev/null 2>"$T/train.err"; then
  [ "$(python3 "$CHECK" run "$RUN" 2>/dev/null)" = "40 40" ] && ok || bad "resume after freeing space: the run folder does not reach step 40: $(python3 "$CHECK" run "$RUN" 2>&1 | tr '\n' ' ')"
else
  bad "resume after freeing space failed: $(grep -E '^(error|hint)' "$T/train.err" | tr '\n' ' ')"
fi

room_text() { if [ $method = tmpfs ]; then echo "$room KiB left"; else echo "ulimit -f $room"; fi; }
# kib_of FILE: its size in KiB, rounded up; pages_kib FILE…: the tmpfs space they take (4 KiB pages)
kib_of() { echo $((($(stat -c %s "$1") + 1023) / 1024)); }
pages_kib() { local k=0 f; for f in "$@"; do k=$((k + ($(stat -c %s "$f") + 4095) / 4096 * 4)); done; echo $k; }

# Case 2: sampling a vector run: samples.csv, then the samples.png figure (PLplot). A first draw
# outside the small filesystem gives the sizes of both (sample i depends only on the seed and i).
SAMPLE=(sample --run "$RUN" --n 200 --steps 5 --sampler ddim --threads 1)
free_space
"$BIN" "${SAMPLE[@]}" --out "$T/s_free" >/dev/null 2>"$T/sample.err" || bad "sample with free space: $(grep -E '^(error|hint)' "$T/sample.err" | tr '\n' ' ')"
S="$FS/samples"
space 0
limited "$BIN" "${SAMPLE[@]}" --out "$S"
expect_full "sample: samples.csv into a disk with no space" "$S"  # the folder or samples.csv
if [ -d "$S" ]; then no_leftovers "sample: samples.csv into a disk with no space" "$S"; whole "sample: samples.csv into a disk with no space" "$S"; fi
rm -rf "$S"
# room for samples.csv and a 4 KiB page more (tmpfs), or a limit 1 KiB above its size: not for the figure
if [ $method = tmpfs ]; then room=$(($(pages_kib "$T/s_free/samples.csv") + 4)) spare=4; else room=$(($(kib_of "$T/s_free/samples.csv") + 1)) spare=$room; fi
if [ "$(stat -c %s "$T/s_free/samples.png")" -gt $((spare * 1024)) ]; then
  space $room
  limited "$BIN" "${SAMPLE[@]}" --out "$S"
  expect_full "sample: samples.png into a full disk ($(room_text))" "$S/samples.png"
  no_leftovers "sample: samples.png into a full disk" "$S"
  whole "sample: samples.png into a full disk" "$S"
  [ -s "$S/samples.csv" ] && ok || bad "sample: samples.png into a full disk: samples.csv, written before the figure, is missing"
  rm -rf "$S"
else
  bad "samples.png is only $(stat -c %s "$T/s_free/samples.png") bytes: the test cannot fill the disk between samples.csv and the figure"
fi

# Case 3: sampling an image run: one PNG per sample, then the grid (enlarged 32×: ≈ 11 kB; sizes from a
# draw outside as above)
if [ -e "$FM/t10k-images-idx3-ubyte.gz" ] || [ -e "$FM/t10k-images-idx3-ubyte" ]; then
  free_space
  cat >"$T/img.json" <<'JSON'
{"data": "fashion-mnist:test", "schedule": {"kind": "linear", "T": 20, "beta_start": 0.005, "beta_end": 0.5},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
 "steps": 2, "batch": 4, "log_every": 1}
JSON
  ISAMPLE=(sample --run "$T/img" --n 4 --steps 3 --sampler ddim --threads 1)
  if "$BIN" train --config "$T/img.json" --out "$T/img" --threads 1 >/dev/null 2>"$T/train.err" &&
    "$BIN" "${ISAMPLE[@]}" --out "$T/i_free" --grid "$T/i_free_grid.png" --picture-scale 32 >/dev/null 2>"$T/sample.err"; then
    I="$FS/img"
    space 0
    limited "$BIN" "${ISAMPLE[@]}" --out "$I"
    expect_full "sample: image PNGs into a disk with no space" "$I"  # the folder or 000000.png
    if [ -d "$I" ]; then no_leftovers "sample: image PNGs into a disk with no space" "$I"; whole "sample: image PNGs into a disk with no space" "$I"; fi
    rm -rf "$I"
    # room for the four PNGs and a 4 KiB page more (tmpfs), or a limit 1 KiB above the largest: not for the grid
    pngs=("$T"/i_free/0*.png)
    if [ $method = tmpfs ]; then room=$(($(pages_kib "${pngs[@]}") + 4)) spare=4; else
      room=1; for f in "${pngs[@]}"; do [ "$(kib_of "$f")" -lt $room ] || room=$(($(kib_of "$f") + 1)); done; spare=$room; fi
    if [ "$(stat -c %s "$T/i_free_grid.png")" -gt $((spare * 1024)) ]; then
      space $room
      limited "$BIN" "${ISAMPLE[@]}" --out "$I" --grid "$FS/grid.png" --picture-scale 32
      expect_full "sample: --grid into a full disk ($(room_text))" "$FS/grid.png"
      no_leftovers "sample: --grid into a full disk" "$FS"
      whole "sample: --grid into a full disk" "$I" $([ -e "$FS/grid.png" ] && echo "$FS/grid.png")
      [ -s "$I/000003.png" ] && ok || bad "sample: --grid into a full disk: the sample PNGs, written before the grid, are missing"
    else
      bad "the grid is only $(stat -c %s "$T/i_free_grid.png") bytes: the test cannot fill the disk between the PNGs and the grid"
    fi
  else
    bad "the tiny image run (training or sampling with free space) failed: $(grep -hE '^(error|hint)' "$T/train.err" "$T/sample.err" 2>/dev/null | tr '\n' ' ')"
  fi
else
  echo "skipped the image case: no Fashion-MNIST in $FM (apt-get install dataset-fashion-mnist)"
fi

free_space
echo "disk full ($method): $pass passed, $fail failed; $(awk -v a="$start_all" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
[ $fail -eq 0 ] || exit 1
