#!/usr/bin/env bash
# The CLI end to end: help, errors (message, hint, exit code), files written,
# Ctrl-C saving a resumable checkpoint.
set -uo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect_fail NAME "substring of stderr" cmd...
expect_fail() {
  local name=$1 want=$2
  shift 2
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [[ "$err" != *"$want"* ]]; then bad "$name: stderr lacks '$want': $err"; return; fi
  ok
}
expect_ok() {
  local name=$1
  shift
  if "$@" >"$T/out.txt" 2>"$T/err.txt"; then ok; else bad "$name: $(cat "$T/err.txt")"; fi
}

# help documents flags with defaults
"$BIN" train --help | grep -q -- "--steps INT=5000" && ok || bad "train --help shows --steps default"
"$BIN" schedule --help | grep -q -- "--beta-end FLOAT=0.02" && ok || bad "schedule --help shows --beta-end default"
"$BIN" sample --help | grep -q -- "--sampler TEXT=ddpm" && ok || bad "sample --help shows --sampler default"
"$BIN" sample --help | grep -q -- "--spacing TEXT=trailing" && ok || bad "sample --help shows --spacing default"
expect_ok info "$BIN" info
grep -q "LibTorch" "$T/out.txt" && grep -q "BLAS" "$T/out.txt" && ok || bad "info prints LibTorch and BLAS"

# schedule CSV
expect_ok schedule "$BIN" schedule --schedule cosine --T 10
[ "$(head -1 "$T/out.txt")" = "t,beta,alpha_bar" ] && [ "$(wc -l <"$T/out.txt")" = 11 ] && ok || bad "schedule CSV shape"
expect_fail bad-schedule "valid schedules: linear, cosine, sigmoid, sin2, quadratic, custom" "$BIN" schedule --schedule cosinus
expect_fail bad-T "T must lie in 1 … 100000" "$BIN" schedule --T 0
expect_fail bad-beta "outside (0, 1)" "$BIN" schedule --beta-end 1.5
printf '0.1\n0.2\n0.3\n' >"$T/betas.txt"
expect_ok custom "$BIN" schedule --betas-file "$T/betas.txt"
grep -q "^2,0.29999999999999999,0.504" "$T/out.txt" && ok || bad "custom schedule values"

# data
expect_ok data "$BIN" data --data toy:moons --n 50 --out "$T/moons.csv"
[ "$(wc -l <"$T/moons.csv")" = 50 ] && ok || bad "data writes n rows"
expect_fail bad-spec "valid specs: signals, toy:swissroll" "$BIN" data --data circle --n 5 --out "$T/x.csv"
expect_fail bad-spec2 "valid toys" "$BIN" data --data toy:circles --n 5 --out "$T/x.csv"
printf '1,2\n3,x\n' >"$T/bad.csv"
expect_fail bad-csv "bad.csv:2: field 2 ('x') is not a finite number" "$BIN" train --data "csv:$T/bad.csv" --out "$T/r0" --steps 2

# config errors
echo '{"stpes": 3}' >"$T/c.json"
expect_fail unknown-key "valid keys: model_kind, data, data_dir" "$BIN" train --config "$T/c.json" --out "$T/r1"
expect_fail bad-lr "lr must be a positive number" "$BIN" train --data toy:moons --lr -1 --out "$T/r1"

# train → sample → files
cat >"$T/small.json" <<JSON
{"data": "toy:8gaussians", "schedule": {"kind": "linear", "T": 50}, "model": {"hidden": 32, "blocks": 1},
 "steps": 30, "batch": 32, "log_every": 10}
JSON
expect_ok train "$BIN" train --config "$T/small.json" --out "$T/run"
for f in config.json checkpoint.safetensors log.csv loss.png; do [ -s "$T/run/$f" ] && ok || bad "run file $f"; done
grep -q '"T": 50' "$T/run/config.json" && ok || bad "resolved config saved"
expect_fail rerun "already holds a run" "$BIN" train --config "$T/small.json" --out "$T/run"
expect_fail resume-done "already has 30 steps" "$BIN" train --out "$T/run" --resume
expect_fail resume-change "cannot change when resuming" "$BIN" train --out "$T/run" --resume --lr 0.1
expect_ok sample "$BIN" sample --run "$T/run" --n 20 --out "$T/s" --chain "$T/chain.png"
[ "$(wc -l <"$T/s/samples.csv")" = 20 ] && [ -s "$T/s/samples.png" ] && [ -s "$T/chain.png" ] && ok || bad "sample files"
# sample i does not depend on the batch it was drawn in
expect_ok sample-b "$BIN" sample --run "$T/run" --n 20 --batch 7 --out "$T/s7"
cmp -s "$T/s/samples.csv" "$T/s7/samples.csv" && ok || bad "samples independent of --batch"
# vector runs: no clipping unless asked (standardised data are unbounded)
expect_ok sample-c0 "$BIN" sample --run "$T/run" --n 20 --out "$T/sc0" --clip 0
cmp -s "$T/s/samples.csv" "$T/sc0/samples.csv" && ok || bad "vector runs sample with --clip 0 by default"
expect_fail sample-norun "no checkpoint at" "$BIN" sample --run "$T/nothing" --n 2 --out "$T/s2"
expect_fail bad-sampler "valid samplers: ddpm, ddim, euler, euler-ancestral, heun, dpm++2m, dpm++2m-sde, unipc" \
  "$BIN" sample --run "$T/run" --n 2 --out "$T/s3" --sampler euler-a
# every sampler from the CLI, with few steps; stochastic ones independent of the batch
for s in ddpm ddim euler euler-ancestral heun dpm++2m dpm++2m-sde unipc; do
  expect_ok "sample-$s" "$BIN" sample --run "$T/run" --n 12 --out "$T/x-$s" --sampler "$s" --steps 8 --sigmas karras
  [ "$(wc -l <"$T/x-$s/samples.csv")" = 12 ] && ok || bad "$s writes 12 samples"
done
expect_ok sample-ea7 "$BIN" sample --run "$T/run" --n 12 --batch 5 --out "$T/x-ea7" --sampler euler-ancestral --steps 8 --sigmas karras
cmp -s "$T/x-euler-ancestral/samples.csv" "$T/x-ea7/samples.csv" && ok || bad "euler-ancestral samples independent of --batch"
expect_ok sample-ddim-eta "$BIN" sample --run "$T/run" --n 4 --out "$T/x-de" --sampler ddim --steps 10 --eta 1 --spacing leading --steps-offset 1
expect_ok sample-custom "$BIN" sample --run "$T/run" --n 4 --out "$T/x-ct" --sampler dpm++2m --timesteps 49,30,12,3
expect_fail eta-euler "eta applies to ddim, euler-ancestral, dpm++2m-sde" \
  "$BIN" sample --run "$T/run" --n 2 --out "$T/x" --sampler euler --eta 0.5
expect_fail too-many-steps "60 steps is more than the model's T = 50" "$BIN" sample --run "$T/run" --n 2 --out "$T/x" --steps 60
expect_fail bad-spacing "valid timestep spacings: leading, trailing, linspace" \
  "$BIN" sample --run "$T/run" --n 2 --out "$T/x" --spacing even
expect_fail bad-order "valid orders: 1, 2, 3" "$BIN" sample --run "$T/run" --n 2 --out "$T/x" --sampler unipc --order 4
expect_ok eval "$BIN" eval swd --a "$T/s/samples.csv" --b "$T/moons.csv"
grep -q "sliced_wasserstein_2" "$T/out.txt" && ok || bad "eval swd prints the distance"
expect_ok forward "$BIN" forward --data signals --schedule sigmoid --T 100 --beta-max 0.1 --out "$T/fwd.png"
[ -s "$T/fwd.png" ] && ok || bad "forward writes the PNG"

# Images: a very small class-conditional U-Net on the Fashion-MNIST test split, T = 20
cat >"$T/img.json" <<'JSON'
{"data": "fashion-mnist:test", "class_conditional": true, "schedule": {"kind": "linear", "T": 20, "beta_start": 0.005, "beta_end": 0.5},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
 "steps": 4, "batch": 4, "log_every": 2, "sample_every": 2, "sample_n": 3}
JSON
expect_ok img-train "$BIN" train --config "$T/img.json" --out "$T/img"
[ -s "$T/img/samples/step_0000002.png" ] && [ -s "$T/img/samples/step_0000004.png" ] && ok || bad "periodic sample grids"
expect_ok img-sample "$BIN" sample --run "$T/img" --n 5 --batch 2 --class sneaker --guidance 2 --out "$T/imgs" \
  --grid "$T/grid.png" --chain "$T/chain.gif" --strip "$T/strip.png"
[ -s "$T/imgs/000000.png" ] && [ -s "$T/imgs/000004.png" ] && [ ! -e "$T/imgs/000005.png" ] && ok || bad "one PNG per sample"
[ "$(head -c 6 "$T/chain.gif")" = "GIF89a" ] && [ -s "$T/grid.png" ] && [ -s "$T/strip.png" ] && ok || bad "grid, chain GIF, strip"
expect_ok img-sample1 "$BIN" sample --run "$T/img" --n 5 --class 7 --guidance 2 --out "$T/imgs1"
cmp -s "$T/imgs/000003.png" "$T/imgs1/000003.png" && ok || bad "sample i does not depend on the batch (class 7 = sneaker)"
expect_ok img-dpm "$BIN" sample --run "$T/img" --n 3 --out "$T/imgd" --sampler dpm++2m --steps 5 --strip "$T/strip5.png"
[ -s "$T/imgd/000002.png" ] && [ -s "$T/strip5.png" ] && ok || bad "dpm++2m image samples and strip"
# --clip defaults to 1 for image runs (the same images as --clip 1, not those of --clip 0)
expect_ok clip1 "$BIN" sample --run "$T/img" --n 3 --out "$T/imgc1" --sampler dpm++2m --steps 5 --clip 1
expect_ok clip0 "$BIN" sample --run "$T/img" --n 3 --out "$T/imgc0" --sampler dpm++2m --steps 5 --clip 0
cmp -s "$T/imgd/000002.png" "$T/imgc1/000002.png" && ! cmp -s "$T/imgd/000002.png" "$T/imgc0/000002.png" && ok ||
  bad "image runs sample with --clip 1 unless told otherwise"
expect_fail bad-class "or t-shirt, trouser" "$BIN" sample --run "$T/img" --n 1 --class boots --out "$T/x"
expect_fail no-mnist "apt-get install dataset-fashion-mnist" "$BIN" train --data fashion-mnist --data-dir "$T/none" --out "$T/x"
expect_ok img-forward "$BIN" forward --data fashion-mnist:test --out "$T/ffwd.png"
[ -s "$T/ffwd.png" ] && ok || bad "forward writes the image strip"
# emoji: errors name the Debian package / the valid choices; flags reach the renderer
expect_fail no-emoji-font "fonts-noto-color-emoji" "$BIN" train --data emoji --data-dir "$T/none" --out "$T/x"
expect_fail bad-background "white, black or #rrggbb" "$BIN" data --data emoji:test --background blue --n 1 --grid "$T/x.png"
expect_fail bad-emoji-spec "emoji[:train|:test|:all][:color][:no-skin-tones]" "$BIN" data --data emoji:tset --n 1 --grid "$T/x.png"
expect_ok emoji-data "$BIN" data --data emoji:test:color --class flags --n 4 --image-size 16 --background "#000000" --out "$T/eflags"
[ "$(grep -c ',flags$' "$T/eflags/labels.csv")" = 4 ] && grep -q "(3×16×16) of emoji:test:color" "$T/out.txt" && ok ||
  bad "emoji data: 4 flags at 16×16 ($(cat "$T/out.txt"))"

# eval fd: a samples folder and a run (the tiny run's images are poor: only the plumbing is checked)
expect_ok fd-samples "$BIN" eval fd --samples "$T/imgs" --out "$T/fd1"
grep -q '"fd":' "$T/fd1/fd.json" && grep -q '"floor":' "$T/fd1/fd.json" && [ -s "$T/fd1/fd_samples.png" ] && ok ||
  bad "eval fd writes fd.json with the floor, and the samples' grid"
expect_ok fd-run "$BIN" eval fd --run "$T/img" --n 8 --sampler ddim --steps 3 --out "$T/fd2"
grep -q "class agreement" "$T/out.txt" && grep -q '"network_calls": 3' "$T/fd2/fd.json" && ok ||
  bad "eval fd --run draws samples and checks their classes"
expect_fail fd-none "give --samples DIR or --run RUN_DIR" "$BIN" eval fd
expect_fail fd-n "holds 5 images" "$BIN" eval fd --samples "$T/imgs" --n 50

# restoration: inpaint, upscale, colorize, edit on the tiny image run (28×28 gray, T = 20)
expect_ok inpaint "$BIN" inpaint --run "$T/img" --image "$T/imgs/000000.png" --mask box:7,7,14,14 --method ddnm \
  --steps 5 --n 2 --truth "$T/imgs/000000.png" --out "$T/inp.png"
[ -s "$T/inp.png" ] && [ -s "$T/inp_1.png" ] && grep -q "PSNR" "$T/out.txt" && ok || bad "inpaint writes the figure, each restoration, PSNR"
expect_ok repaint "$BIN" inpaint --run "$T/img" --image "$T/imgs/000000.png" --mask half:left --steps 6 \
  --jump-length 2 --resample 2 --out "$T/rp.png"
expect_ok edit "$BIN" edit --run "$T/img" --image "$T/imgs/000000.png" --strength 0.5 --sampler dpm++2m --steps 6 --out "$T/ed.png"
[ -s "$T/rp_0.png" ] && [ -s "$T/ed_0.png" ] && ok || bad "repaint and edit write restorations"
expect_fail upscale-size "expected 1-channel 7×7" "$BIN" upscale --run "$T/img" --image "$T/imgs/000000.png" --factor 4 --out "$T/x.png"
expect_fail colorize-gray "colorize needs a model of RGB images" "$BIN" colorize --run "$T/img" --image "$T/imgs/000000.png" --out "$T/x.png"
expect_fail upscale-repaint "repaint fills masked pixels" "$BIN" upscale --run "$T/img" --image "$T/imgs/000000.png" --factor 2 --method repaint --out "$T/x.png"
expect_fail bad-mask "box:x,y,w,h | half" "$BIN" inpaint --run "$T/img" --image "$T/imgs/000000.png" --mask circle:3 --out "$T/x.png"
expect_fail dps-euler "dps runs on DDPM steps" "$BIN" inpaint --run "$T/img" --image "$T/imgs/000000.png" --mask half:top --method dps --sampler euler --out "$T/x.png"

# data: image specs as one PNG per image (native size), labels.csv, a grid; by --index or --seed,
# of one --class, shrunk (--size: area means) or made gray (--gray: colorize's luma). Checked against
# the IDX files and PNGs written without diffuse (tests/testfiles.py); the inputs of the README's
# restoration commands are made this way and upscale takes them.
FM=/usr/share/datasets/fashion-mnist
TF=$(dirname "$0")/testfiles.py
python3 "$TF" inputs "$FM" "$T/ref" 1
# block_means BIG.png SMALL.png F: each pixel of SMALL is the mean of an F×F block of BIG, rounded
block_means() {
  python3 - "$TF" "$@" <<'PY'
import os, sys; sys.path.insert(0, os.path.dirname(sys.argv[1])); from testfiles import read_png
(w, h, c, a), (sw, sh, sc, b), f = read_png(sys.argv[2]), read_png(sys.argv[3]), int(sys.argv[4])
assert (sw * f, sh * f, sc) == (w, h, c), (sw, sh, sc)
err = max(abs(b[(y * sw + x) * c + k] - sum(a[((f * y + i) * w + f * x + j) * c + k] for i in range(f) for j in range(f)) / f / f)
          for y in range(sh) for x in range(sw) for k in range(c))
assert err <= 0.5 + 1e-3, f"max error {err}"
PY
}
expect_ok data-in "$BIN" data --data fashion-mnist:test --n 1 --index 0 --out "$T/in.png"
[ "$(python3 "$TF" diff "$T/in.png" "$T/ref/real/00000.png")" = "0.0000 0" ] && ok || bad "data --index 0 is test image 0, pixel for pixel"
expect_ok data-low "$BIN" data --data fashion-mnist:test --n 1 --index 0 --size 7 --out "$T/low7x7.png"
# pixel (y, x) of the 7×7 file is the mean of the 4×4 block (4y…4y+3, 4x…4x+3), rounded
block_means "$T/ref/real/00000.png" "$T/low7x7.png" 4 && ok || bad "data --size 7 holds the 4×4 block means"
expect_ok upscale-data "$BIN" upscale --run "$T/img" --image "$T/low7x7.png" --factor 4 --steps 3 --out "$T/up.png"
expect_ok data-seed "$BIN" data --data fashion-mnist:test --n 6 --seed 5 --out "$T/dimg" --grid "$T/dgrid.png"
[ -s "$T/dimg/000005.png" ] && [ ! -e "$T/dimg/000006.png" ] && [ -s "$T/dgrid.png" ] && [ "$(wc -l <"$T/dimg/labels.csv")" = 7 ] &&
  [ "$(head -1 "$T/dimg/labels.csv")" = "file,index,label,class" ] && ok || bad "data writes one PNG per image, labels.csv, the grid"
# each row's label is the IDX label file's byte 8 + index; its name the Fashion-MNIST class of that label
classes=(t-shirt trouser pullover dress coat sandal shirt sneaker bag ankle-boot)
gzip -dc "$FM/t10k-labels-idx1-ubyte.gz" | tail -c +9 | od -An -tu1 -v -w1 | tr -d ' ' >"$T/idx_labels.txt"
labels_ok=1
while IFS=, read -r f i l c; do
  [ "$f" = file ] && continue
  want=$(sed -n "$((i + 1))p" "$T/idx_labels.txt")
  [ "$l" = "$want" ] && [ "$c" = "${classes[$want]}" ] || { labels_ok=0; bad "labels.csv: $f (test image $i) says $l $c, the IDX file $want"; }
done <"$T/dimg/labels.csv"
[ $labels_ok = 1 ] && ok
cut -d, -f2 "$T/dimg/labels.csv" | tail -n +2 | sort -u | wc -l | grep -qx 6 && ok || bad "data --seed picks without repetition"
expect_ok data-seed2 "$BIN" data --data fashion-mnist:test --n 6 --seed 5 --out "$T/dimg2"
expect_ok data-seed3 "$BIN" data --data fashion-mnist:test --n 6 --seed 6 --out "$T/dimg3"
cmp -s "$T/dimg/labels.csv" "$T/dimg2/labels.csv" && cmp -s "$T/dimg/000003.png" "$T/dimg2/000003.png" &&
  ! cmp -s "$T/dimg/labels.csv" "$T/dimg3/labels.csv" && ok || bad "data --seed: the same seed the same images, another seed others"
# --class sneaker --index 2: the 3rd … 5th sneakers (label 7) of the test split, in file order
expect_ok data-class "$BIN" data --data fashion-mnist:test --n 3 --class sneaker --index 2 --out "$T/dsn"
[ "$(tail -n +2 "$T/dsn/labels.csv" | cut -d, -f2,3,4 | tr '\n' ' ')" = \
  "$(grep -n '^7$' "$T/idx_labels.txt" | sed -n 3,5p | awk -F: '{printf "%d,7,sneaker ", $1 - 1}')" ] && ok ||
  bad "data --class sneaker --index 2 takes the 3rd to 5th sneakers"
# --gray on RGB images: the luma 0.299 R + 0.587 G + 0.114 B of each pixel, rounded (a folder of one 56×56 RGB PNG)
expect_ok data-gray "$BIN" data --data "folder:$T/ref/rgb" --image-size 56 --n 1 --index 0 --gray --out "$T/gray.png"
python3 - "$TF" "$T/ref/rgb/00000.png" "$T/gray.png" <<'PY' && ok || bad "data --gray holds the luma of the RGB image"
import os, sys; sys.path.insert(0, os.path.dirname(sys.argv[1])); from testfiles import read_png
(w, h, c, a), (gw, gh, gc, g) = read_png(sys.argv[2]), read_png(sys.argv[3])
assert (c, gw, gh, gc) == (3, w, h, 1), (c, gw, gh, gc)
err = max(abs(g[p] - (0.299 * a[3 * p] + 0.587 * a[3 * p + 1] + 0.114 * a[3 * p + 2])) for p in range(w * h))
assert err <= 0.5 + 1e-3, f"max error {err}"
PY
expect_ok data-rgb-size "$BIN" data --data "folder:$T/ref/rgb" --image-size 56 --n 1 --size 28 --out "$T/rgb28.png"
block_means "$T/ref/rgb/00000.png" "$T/rgb28.png" 2 && ok || bad "data --size 28 of RGB holds each channel's 2×2 means"
expect_fail data-index "asks for items 9999 … 10000 but fashion-mnist:test has 10000 images" \
  "$BIN" data --data fashion-mnist:test --n 2 --index 9999 --out "$T/x"
expect_fail data-class-none "has no classes" "$BIN" data --data "folder:$T/ref/rgb" --image-size 56 --n 1 --class 0 --out "$T/x"
expect_fail data-class-bad "valid classes: 0 … 9 or t-shirt, trouser" "$BIN" data --data fashion-mnist:test --n 1 --class boots --out "$T/x"
expect_fail data-png-n "give --n 1, or a folder" "$BIN" data --data fashion-mnist:test --n 2 --out "$T/x.png"
expect_fail data-size "--size 29 is not in [1, 28]" "$BIN" data --data fashion-mnist:test --n 1 --size 29 --out "$T/x"
expect_fail data-vector-grid "image specs: fashion-mnist, fashion-mnist:test, folder:PATH" \
  "$BIN" data --data signals --n 2 --grid "$T/x.png"
# the folder data writes (PNGs and labels.csv) is data again: a class-conditional run on it keeps
# Fashion-MNIST's label numbers (classes 0 … the largest label among the 12)
expect_ok data-fm12 "$BIN" data --data fashion-mnist --n 12 --out "$T/fm12"
expect_ok fm12-train "$BIN" train --config "$T/img.json" --data "folder:$T/fm12" --class-conditional --steps 2 --out "$T/fm12run"
fm12_classes=$(( $(tail -n +2 "$T/fm12/labels.csv" | cut -d, -f3 | sort -n | tail -1) + 1 ))
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["unet"]["num_classes"])' "$T/fm12run/config.json" |
  grep -qx "$fm12_classes" && ok || bad "train on folder:fm12 (labels.csv) has $fm12_classes classes"

# Ctrl-C: saves a resumable checkpoint, exits 130; --resume finishes the run
sed 's/"steps": 30/"steps": 200000/' "$T/small.json" >"$T/long.json"
"$BIN" train --config "$T/long.json" --out "$T/int" >"$T/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$T/int/config.json" ] && break; sleep 0.1; done
sleep 1
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok || bad "SIGINT exit code $rc (want 130)"
[ -s "$T/int/checkpoint.safetensors" ] && ok || bad "SIGINT saved a checkpoint"
ls "$T/int" | grep -q tmp- && bad "temp file left behind" || ok
expect_ok resume "$BIN" train --out "$T/int" --resume --steps 2000
grep -q "trained 2000 steps" "$T/out.txt" && ok || bad "resume reached --steps"

# eval spectrum: covariance spectra of data, white noise, reshaped noise (and samples of a run)
expect_ok spectrum "$BIN" eval spectrum --data signals --n 500 --out "$T/spec.png"
[ -s "$T/spec.png" ] && grep -q '"effective_rank"' "$T/spec.json" && grep -q '"reshaped_noise"' "$T/spec.json" \
  && grep -q "reshaped noise" "$T/out.txt" && ok || bad "eval spectrum writes the PNG and the JSON beside it"
expect_ok spectrum-run "$BIN" eval spectrum --run "$T/run" --n 300 --sampler dpm++2m --steps 10 --out "$T/specr/s.png" \
  --json "$T/specr/report.json"
grep -q '"data_spec": "toy:8gaussians"' "$T/specr/report.json" && grep -q '"frechet_distance"' "$T/specr/report.json" \
  && grep -q '"dpm++2m"' "$T/specr/report.json" && [ -s "$T/specr/s.png" ] && ok || bad "eval spectrum --run compares samples with the run's data"
expect_fail spectrum-bad-spec "valid specs: signals, toy:swissroll" "$BIN" eval spectrum --data sinus --out "$T/x.png"
expect_fail spectrum-dims "2-dimensional vectors but signals has 50" \
  "$BIN" eval spectrum --run "$T/run" --data signals --n 50 --steps 5 --out "$T/x.png"

# eval nll: the variational bound of the small vector run (exact over its T = 50 steps, and Monte-Carlo over t)
expect_ok nll "$BIN" eval nll --run "$T/run" --n 50 --out "$T/nll"
grep -q '"bound_data_units"' "$T/nll/nll.json" && grep -q '"estimator": "exact sum over t"' "$T/nll/nll.json" &&
  grep -q "nats/dim" "$T/out.txt" && [ -s "$T/nll/nll.png" ] && ok || bad "eval nll writes nll.json (exact) and nll.png"
expect_ok nll-mc "$BIN" eval nll --run "$T/run" --n 50 --t-samples 5 --variance beta --out "$T/nll-mc"
grep -q '"t_samples": 5' "$T/nll-mc/nll.json" && grep -q '"per_t_count"' "$T/nll-mc/nll.json" && ok ||
  bad "eval nll --t-samples writes the Monte-Carlo estimate"
expect_fail nll-t-samples "t_samples must be in [0, T − 1] = [0, 49]" "$BIN" eval nll --run "$T/run" --t-samples 50
expect_fail nll-variance "valid DDPM variances: beta, beta-tilde" "$BIN" eval nll --run "$T/run" --variance betta

# RGB end to end, pictures enlarged (nearest neighbour; the longer side >= 512 px, at most 8x;
# --picture-scale 1 keeps 1x), one PNG per sample at native size. Sizes read from the IHDR.
rgb_ihdr() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(26); w,h,ct=struct.unpack(">IIxB",d[16:26]); print(w,h,ct)' "$1"; }
rgb_gif() { python3 -c 'import struct,sys; print(*struct.unpack("<HH",open(sys.argv[1],"rb").read(10)[6:10]))' "$1"; }
python3 - "$T/rgbdata" <<'PY'
import os, random, struct, sys, zlib
def png(path, s, px):
    raw = b"".join(b"\0" + bytes(px[y * s * 3:(y + 1) * s * 3]) for y in range(s))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", s, s, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
random.seed(0)
for cls, ink in (("red", (230, 40, 30)), ("blue", (30, 60, 220))):
    os.makedirs(f"{sys.argv[1]}/{cls}")
    for i in range(6):
        r, cx, cy = random.randint(3, 5), random.randint(5, 10), random.randint(5, 10)
        png(f"{sys.argv[1]}/{cls}/{i}.png", 16, [v for y in range(16) for x in range(16)
            for v in (ink if (x - cx) ** 2 + (y - cy) ** 2 <= r * r else (250, 250, 240))])
PY
cat >"$T/rgb.json" <<JSON
{"data": "folder:$T/rgbdata", "image_size": 16, "class_conditional": true, "schedule": {"kind": "linear", "T": 20, "beta_start": 0.005, "beta_end": 0.5},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
 "steps": 4, "batch": 4, "log_every": 2, "sample_every": 2, "sample_n": 3}
JSON
expect_ok rgb-train "$BIN" train --config "$T/rgb.json" --out "$T/rgbrun"
# 3 samples, 2 classes per row: a 38x38 grid, 8x (the cap) = 304, RGB (colour type 2)
[ "$(rgb_ihdr "$T/rgbrun/samples/step_0000004.png")" = "304 304 2" ] && ok || bad "rgb training grid 8x RGB: $(rgb_ihdr "$T/rgbrun/samples/step_0000004.png")"
expect_ok rgb-resume "$BIN" train --out "$T/rgbrun" --resume --steps 6 --picture-scale 1
[ "$(rgb_ihdr "$T/rgbrun/samples/step_0000006.png")" = "38 38 2" ] && ok || bad "rgb training grid --picture-scale 1"
expect_ok rgb-sample "$BIN" sample --run "$T/rgbrun" --n 30 --batch 16 --class red --out "$T/rgbs" \
  --grid "$T/rgbgrid.png" --chain "$T/rgbchain.gif" --strip "$T/rgbstrip.png"
[ "$(rgb_ihdr "$T/rgbs/000029.png")" = "16 16 2" ] && [ ! -e "$T/rgbs/000030.png" ] && ok || bad "rgb sample PNGs native 16x16 RGB"
# grid: 6 per row, 5 rows = 110x92 -> 5x; strip: 8 rows of x_T + 9 states = 182x146 -> 3x;
# chain: the first 16 in 4x4 = 74x74 -> 7x
[ "$(rgb_ihdr "$T/rgbgrid.png")" = "550 460 2" ] && ok || bad "rgb grid 5x: $(rgb_ihdr "$T/rgbgrid.png")"
[ "$(rgb_ihdr "$T/rgbstrip.png")" = "546 438 2" ] && ok || bad "rgb strip 3x: $(rgb_ihdr "$T/rgbstrip.png")"
[ "$(rgb_gif "$T/rgbchain.gif")" = "518 518" ] && ok || bad "rgb chain GIF 7x: $(rgb_gif "$T/rgbchain.gif")"
expect_ok rgb-sample1 "$BIN" sample --run "$T/rgbrun" --n 30 --class red --out "$T/rgbs1" --picture-scale 1 \
  --grid "$T/rgbgrid1.png" --chain "$T/rgbchain1.gif" --strip "$T/rgbstrip1.png"
[ "$(rgb_ihdr "$T/rgbgrid1.png")" = "110 92 2" ] && [ "$(rgb_ihdr "$T/rgbstrip1.png")" = "182 146 2" ] &&
  [ "$(rgb_gif "$T/rgbchain1.gif")" = "74 74" ] && ok || bad "--picture-scale 1 keeps grid, strip, GIF native"
cmp -s "$T/rgbs/000021.png" "$T/rgbs1/000021.png" && ok || bad "rgb sample i does not depend on the batch"
expect_fail rgb-bad-scale "picture scale -1 is out of range" "$BIN" sample --run "$T/rgbrun" --n 1 --out "$T/x" --picture-scale -1
# forward: 8 images at x_0 and 8 noise levels, 9 columns: 164x146 -> 4x; gray 28x28 stays gray, 272x242 -> 2x
expect_ok rgb-forward "$BIN" forward --data "folder:$T/rgbdata" --image-size 16 --out "$T/rgbfwd.png"
[ "$(rgb_ihdr "$T/rgbfwd.png")" = "656 584 2" ] && ok || bad "rgb forward 4x RGB: $(rgb_ihdr "$T/rgbfwd.png")"
expect_ok rgb-forward1 "$BIN" forward --data "folder:$T/rgbdata" --image-size 16 --picture-scale 1 --out "$T/rgbfwd1.png"
[ "$(rgb_ihdr "$T/rgbfwd1.png")" = "164 146 2" ] && ok || bad "rgb forward --picture-scale 1"
expect_ok gray-forward "$BIN" forward --data fashion-mnist:test --out "$T/grayfwd.png"
[ "$(rgb_ihdr "$T/grayfwd.png")" = "544 484 0" ] && ok || bad "gray forward 2x gray: $(rgb_ihdr "$T/grayfwd.png")"

# Values, not only files (issue 13). Helpers: tests/testfiles.py reads PNG, IDX and safetensors
# metadata with the Python standard library; json_ok checks a Python expression on a JSON file.
TF="$(dirname "$0")/testfiles.py"
json_ok() {  # json_ok NAME FILE EXPR: EXPR (Python, j = the parsed file) holds; NaN fails every comparison
  python3 - "$2" "$3" <<'PY' && ok || bad "$1: $3 does not hold for $2"
import json, math, sys
try:
    j = json.load(open(sys.argv[1]))
    good = eval(sys.argv[2])
except Exception as e:
    print(e)
    sys.exit(1)
if not good:
    print({k: v for k, v in j.items() if not isinstance(v, (dict, list))} if isinstance(j, dict) else j)
    if isinstance(j, dict) and isinstance(j.get("floor"), dict):
        print("floor:", j["floor"])
sys.exit(0 if good else 1)
PY
}
# no NaN or inf among the samples, and every field a number
awk -F, '{ for (i = 1; i <= NF; ++i) if ($i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) nan = 1 } END { exit nan || NR != 20 }' \
  "$T/s/samples.csv" && ok || bad "samples.csv holds 20 rows of finite numbers"
# the tiny image run's 5 samples are poor: an FD above the floor of 5 real images (~114), all finite
json_ok fd-sane "$T/fd1/fd.json" \
  '0 < j["floor"]["fd"] < j["fd"] < 1e4 and j["n"] == 5 and 0 <= j["precision"] <= 1 and 0 <= j["recall"] <= 1'
# restorations differ from their input where it was missing, and keep it where it was known
read -r inside outside <<<"$(python3 "$TF" diff "$T/inp_0.png" "$T/imgs/000000.png" 7,7,14,14)"
awk -v a="$inside" -v b="$outside" 'BEGIN { exit !(a > 2 && b <= 2) }' && ok ||
  bad "ddnm inpainting changes the 14×14 box (mean |Δ| $inside) and keeps the rest (max |Δ| $outside)"
for f in rp_0 ed_0; do
  read -r mean _ <<<"$(python3 "$TF" diff "$T/$f.png" "$T/imgs/000000.png")"
  awk -v a="$mean" 'BEGIN { exit !(a > 1) }' && ok || bad "$f.png differs from its input (mean |Δ| $mean)"
done

# --threads 0 follows OMP_NUM_THREADS, and info and train say how many threads they use
OMP_NUM_THREADS=3 "$BIN" info | grep -q "uses 3 intra-op for image networks, 3 for vector ones" && ok ||
  bad "info: --threads 0 follows OMP_NUM_THREADS=3"
env -u OMP_NUM_THREADS "$BIN" info | grep -q "for image networks, 1 for vector ones (OMP_NUM_THREADS not set" && ok ||
  bad "info: without OMP_NUM_THREADS vector networks use 1 thread"
OMP_NUM_THREADS=2 "$BIN" train --config "$T/small.json" --out "$T/thr" --steps 2 >"$T/thr.txt" 2>&1
grep -q "toy:8gaussians → $T/thr, 2 threads" "$T/thr.txt" && ok || bad "train --threads 0 with OMP_NUM_THREADS=2 uses 2 threads"

# --data-dir on --resume: the data moved between the two parts of a run
mkdir -p "$T/fm_a" && ln -s /usr/share/datasets/fashion-mnist/t10k-* "$T/fm_a/"
expect_ok dd-train "$BIN" train --config "$T/img.json" --out "$T/dd" --data-dir "$T/fm_a" --steps 2
mv "$T/fm_a" "$T/fm_b"
expect_fail dd-moved "fm_a/t10k-images-idx3-ubyte.gz' not found" "$BIN" train --out "$T/dd" --resume --steps 4
expect_ok dd-resume "$BIN" train --out "$T/dd" --resume --steps 4 --data-dir "$T/fm_b"
grep -q "trained 4 steps" "$T/out.txt" && ok || bad "resume with the moved --data-dir reached --steps"
json_ok dd-config "$T/dd/config.json" "j['data_dir'] == '$T/fm_b'"

# A run killed with SIGKILL (nothing saved at the end) resumes from its last periodic checkpoint
# and ends with the uninterrupted run's checkpoint, byte for byte, and its log without gaps
sed 's/"steps": 30/"steps": 3000, "checkpoint_every": 100/' "$T/small.json" >"$T/kill.json"
expect_ok kill-straight "$BIN" train --config "$T/kill.json" --out "$T/k1"
"$BIN" train --config "$T/kill.json" --out "$T/k2" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 500); do [ -s "$T/k2/checkpoint.safetensors" ] && break; sleep 0.02; done
kill -KILL $pid
wait $pid 2>/dev/null  # (bash's "Killed" notice)
rc=$?
[ $rc -eq 137 ] && ok || bad "SIGKILL exit status $rc (want 137)"
step=$(python3 "$TF" meta "$T/k2/checkpoint.safetensors" step)
[ $((step % 100)) -eq 0 ] && [ "$step" -lt 3000 ] && ok || bad "killed run left a periodic checkpoint (step $step)"
expect_ok kill-resume "$BIN" train --out "$T/k2" --resume
cmp -s "$T/k1/checkpoint.safetensors" "$T/k2/checkpoint.safetensors" && ok ||
  bad "resumed after SIGKILL at step $step: checkpoint differs from the uninterrupted run's"
[ "$(cut -d, -f1 "$T/k2/log.csv" | tr '\n' ' ')" = "$(cut -d, -f1 "$T/k1/log.csv" | tr '\n' ' ')" ] && ok ||
  bad "log.csv of the resumed run has the uninterrupted run's steps"

# eval train-featnet never replaces a file silently (the shipped assets/featnet_fmnist.safetensors was its default)
expect_fail featnet-no-out "--out is required" "$BIN" eval train-featnet
python3 "$TF" tiny-idx /usr/share/datasets/fashion-mnist "$T/tinyfm" 64 32
echo keep >"$T/fn.safetensors"
expect_fail featnet-exists "already exists; not replacing it" "$BIN" eval train-featnet --out "$T/fn.safetensors" --data-dir "$T/tinyfm"
[ "$(cat "$T/fn.safetensors")" = keep ] && ! grep -q epoch "$T/out.txt" && ok || bad "refused before training, file kept"
expect_ok featnet-force "$BIN" eval train-featnet --out "$T/fn.safetensors" --force --data-dir "$T/tinyfm" --epochs 1 --batch 16 --min-accuracy 0
[ "$(python3 "$TF" meta "$T/fn.safetensors" format)" = diffuse-featnet-1 ] && ok || bad "--force replaced the file"
json_ok featnet-json "$T/fn.safetensors.json" 'j["epochs"][0]["epoch"] == 1'

# eval fd end to end on fixed inputs: the first 500 test images as they are (28×28 gray), as
# 56×56 RGB (tinted R = 0.9g, G = g, B = 0.6g; --data fashion-mnist: gray conversion and resize),
# and with noise ±80. The values are tools/reference/fd_pipeline.py's (PNG decoding, luma,
# antialiased resize, a PyTorch copy of the feature network and scipy's sqrtm, without diffuse);
# a gray of (R+G+B)/3 would give 8.06, no antialiasing 1.96.
python3 "$TF" inputs /usr/share/datasets/fashion-mnist "$T/fd" 500
expect_ok fd-real "$BIN" eval fd --samples "$T/fd/real/" --threads 2  # trailing slash: results beside, not inside
json_ok fd-real-value "$T/fd/real_eval/fd.json" \
  'abs(j["fd"] - 1.847877) < 2e-3 and j["n"] == 500 and j["ref"] == "test" and j["n_ref"] == 10000'
json_ok fd-real-floor "$T/fd/real_eval/fd.json" '0.5 < j["floor"]["fd"] < 5 and j["fd"] < 1.5 * j["floor"]["fd"]'
[ ! -e "$T/fd/real/_eval" ] && ok || bad "eval fd wrote into the samples folder"
expect_ok fd-rgb "$BIN" eval fd --samples "$T/fd/rgb" --data fashion-mnist --out "$T/fd_rgb" --threads 2
json_ok fd-rgb-value "$T/fd_rgb/fd.json" 'abs(j["fd"] - 6.836786) < 7e-3'
expect_ok fd-noisy "$BIN" eval fd --samples "$T/fd/noisy" --out "$T/fd_noisy" --threads 2
json_ok fd-noisy-value "$T/fd_noisy/fd.json" 'abs(j["fd"] - 69.845967) < 0.07 and j["fd"] > 10 * j["floor"]["fd"]'
# a second run on the same folder works (it used to read its own _eval output); a folder as reference
expect_ok fd-again "$BIN" eval fd --samples "$T/fd/real/" --ref "$T/fd/blur" --threads 2
json_ok fd-folder-ref "$T/fd/real_eval/fd.json" 'abs(j["fd"] - 24.305284) < 0.025 and j["n_ref"] == 500 and "floor" not in j'
expect_fail fd-out-inside "lies inside the image folder" "$BIN" eval fd --samples "$T/fd/real" --out "$T/fd/real/ev"

# --weights raw draws from the raw weights, not the EMA: other samples, other distance
for w in ema raw; do
  expect_ok "fd-$w" "$BIN" eval fd --run "$T/img" --n 8 --sampler ddim --steps 3 --weights $w --ref "$T/fd/blur" --out "$T/fdw_$w"
done
! cmp -s "$T/fdw_ema/fd_samples.png" "$T/fdw_raw/fd_samples.png" &&
  json_ok fd-raw "$T/fdw_raw/fd.json" "abs(j['fd'] - json.load(open('$T/fdw_ema/fd.json'))['fd']) > 1e-6" ||
  bad "--weights raw samples differ from --weights ema"

# eval fd on colour: 32×32 RGB samples take assets/featnet_emoji32 (by size and channels). 200 train
# emoji against the emoji test split stay near the train-vs-test floor; the same images with their
# channels rotated (RGB → GBR) or hue turned 90° (shapes kept, colours wrong) are far above it
# (3.6× and 5.2× the floor; a colour-blind pipeline, luma in all channels, gets 1.1× and 1.0×). A run at a size no
# network has is an error naming the shipped ones. train-featnet trains on emoji (16×16 here: RGB and
# the nine groups go into the metadata), and eval fd uses such a network with --featnet.
PERTURB="$(dirname "$0")/../tools/perturb_images.py"
expect_ok fde-data "$BIN" data --data emoji --n 200 --out "$T/fde/real"
rm -f "$T/fde/real/labels.csv"
python3 "$PERTURB" "$T/fde/real" "$T/fde" channels,hue && ok || bad "perturb_images.py channels,hue"
expect_ok fd-emoji "$BIN" eval fd --samples "$T/fde/real" --out "$T/fde_real" --threads 2
json_ok fd-emoji-net "$T/fde_real/fd.json" 'j["featnet"].endswith("featnet_emoji32.safetensors") and '\
'j["ref_data"] == "emoji:test" and j["n"] == 200 and j["floor"]["n"] == 200'
json_ok fd-emoji-real "$T/fde_real/fd.json" 'j["fd"] < 1.5 * j["floor"]["fd"]'
expect_ok fd-emoji-channels "$BIN" eval fd --samples "$T/fde/channels" --out "$T/fde_channels" --threads 2
json_ok fd-emoji-shuffled "$T/fde_channels/fd.json" "j['fd'] > 3 * json.load(open('$T/fde_real/fd.json'))['floor']['fd']"
expect_ok fd-emoji-hue "$BIN" eval fd --samples "$T/fde/hue" --out "$T/fde_hue" --threads 2
json_ok fd-emoji-hue-far "$T/fde_hue/fd.json" "j['fd'] > 3 * json.load(open('$T/fde_real/fd.json'))['floor']['fd']"
expect_fail fd-emoji-nonet "featnet_emoji32.safetensors (emoji on white, 3×32×32)" \
  "$BIN" eval fd --run "$T/rgbrun" --n 2 --sampler ddim --steps 2 --out "$T/x"
expect_ok featnet-emoji "$BIN" eval train-featnet --data emoji --image-size 16 --epochs 1 --batch 64 --min-accuracy 0 \
  --threads 2 --out "$T/fe16.safetensors"
fe_meta=$(for k in in_channels image_size num_classes data; do python3 "$TF" meta "$T/fe16.safetensors" $k; done | tr '\n' ' ')
[ "$fe_meta" = "3 16 9 emoji " ] && ok || bad "emoji feature network metadata: $fe_meta"
expect_ok fd-featnet16 "$BIN" eval fd --run "$T/rgbrun" --n 4 --sampler ddim --steps 2 --featnet "$T/fe16.safetensors" \
  --out "$T/fd16" --threads 2
json_ok fd-featnet16-ref "$T/fd16/fd.json" 'j["ref_data"] == "emoji:test" and j["n"] == 4 and len(j["class_histogram"]) == 9'

# restoration on RGB: a tiny U-Net trained briefly on a folder of generated 16×16 RGB PNGs colorizes
# the luma of one of them and upscales its 2×2 means; ddnm keeps A x̂ = y, so restore_png_check.py
# finds the input's luma (block means) in each output within 8-bit rounding, checks the size, and
# that the output is not the input
RC_CHECK="$(dirname "$0")/restore_png_check.py"
python3 "$RC_CHECK" inputs "$T/rcin" && ok || bad "restore_png_check.py inputs"
cat >"$T/rc.json" <<JSON
{"data": "folder:$T/rcin/train", "image_size": 16, "schedule": {"kind": "linear", "T": 20, "beta_start": 0.005, "beta_end": 0.5},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
 "steps": 400, "batch": 4, "log_every": 100, "sample_every": 0}
JSON
expect_ok rc-train "$BIN" train --config "$T/rc.json" --out "$T/rcrun"
expect_ok colorize "$BIN" colorize --run "$T/rcrun" --weights raw --image "$T/rcin/gray.png" --steps 10 --clip 1 --n 2 \
  --truth "$T/rcin/truth.png" --out "$T/rccol.png"
grep -Eq "restoration 1: PSNR [0-9]+\.[0-9]+ dB" "$T/out.txt" && [ -s "$T/rccol.png" ] && ok ||
  bad "colorize: figure and a finite PSNR: $(cat "$T/out.txt")"
expect_ok upscale "$BIN" upscale --run "$T/rcrun" --weights raw --image "$T/rcin/low.png" --factor 2 --steps 10 --clip 1 --n 2 \
  --truth "$T/rcin/truth.png" --out "$T/rcup.png"
grep -Eq "restoration 1: PSNR [0-9]+\.[0-9]+ dB" "$T/out.txt" && [ -s "$T/rcup.png" ] && ok ||
  bad "upscale: figure and a finite PSNR: $(cat "$T/out.txt")"
for k in 0 1; do
  msg=$(python3 "$RC_CHECK" colorize "$T/rccol_$k.png" "$T/rcin/gray.png") && ok || bad "colorize restoration $k: $msg"
  msg=$(python3 "$RC_CHECK" upscale "$T/rcup_$k.png" "$T/rcin/low.png" 2) && ok || bad "upscale restoration $k: $msg"
done
expect_fail colorize-rgb-input "expected 1-channel 16×16" "$BIN" colorize --run "$T/rcrun" --image "$T/rcin/truth.png" --out "$T/x.png"
expect_fail upscale-factor "expected 3-channel 4×4" "$BIN" upscale --run "$T/rcrun" --image "$T/rcin/low.png" --factor 4 --out "$T/x.png"

# colour on real data: a tiny RGB run on the emoji test split (16×16 on mid gray); colorize keeps the
# luma of its gray input at every pixel for ddnm and dps alike (keep_luma: no pixel left out, unlike a
# clamp); upscale ×4 of a 4×4 test emoji gives 16×16 RGB (its block means are checked on the folder
# run above: this run's outputs are still mostly noise at 0 and 255)
cat >"$T/emo.json" <<'JSON'
{"data": "emoji:test", "image_size": 16, "background": "#808080", "class_conditional": true,
 "schedule": {"kind": "linear", "T": 20, "beta_start": 0.005, "beta_end": 0.5},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
 "steps": 30, "batch": 8, "log_every": 10}
JSON
expect_ok emoji-train "$BIN" train --config "$T/emo.json" --out "$T/emo"
json_ok emoji-run "$T/emo/config.json" 'j["unet"]["in_channels"] == 3 and j["unet"]["num_classes"] == 9'
# the evaluation commands on the RGB run: the bound over 3·16·16 dimensions of emoji test images,
# and the spectra of its data and samples (3·16·16-dimensional vectors)
expect_ok emoji-nll "$BIN" eval nll --run "$T/emo" --n 4 --batch 4 --out "$T/enll"
json_ok emoji-nll-dims "$T/enll/nll.json" 'j["dims"] == 768 and j["data"] == "emoji:test" and 0 < j["bound"] < 20 and "emoji test split" in j["evaluated_on"]'
expect_ok emoji-spectrum "$BIN" eval spectrum --run "$T/emo" --n 64 --sampler ddim --steps 3 --out "$T/espec/s.png"
[ -s "$T/espec/s.png" ] && [ -s "$T/espec/s.json" ] && ok || bad "eval spectrum on the RGB emoji run writes its figure and report"
EMO=(--data emoji:test --image-size 16 --background "#808080" --n 1 --index 320)
expect_ok emoji-gray "$BIN" data "${EMO[@]}" --gray --out "$T/egray.png"
expect_ok emoji-low "$BIN" data "${EMO[@]}" --size 4 --out "$T/elow.png"
for m in ddnm dps; do
  expect_ok "emoji-colorize-$m" "$BIN" colorize --run "$T/emo" --image "$T/egray.png" --method $m --steps 5 --n 2 --out "$T/ecol_$m.png"
  for k in 0 1; do
    python3 - "$TF" "$T/ecol_${m}_$k.png" "$T/egray.png" <<'PY' && ok || bad "emoji colorize ($m, $k) keeps the luma of its input"
import os, sys; sys.path.insert(0, os.path.dirname(sys.argv[1])); from testfiles import read_png
(w, h, c, a), (gw, gh, gc, g) = read_png(sys.argv[2]), read_png(sys.argv[3])
assert (w, h, c, gw, gh, gc) == (16, 16, 3, 16, 16, 1), (w, h, c, gw, gh, gc)
err = max(abs(0.299 * a[3 * p] + 0.587 * a[3 * p + 1] + 0.114 * a[3 * p + 2] - g[p]) for p in range(w * h))
chroma = sum(max(a[3 * p:3 * p + 3]) - min(a[3 * p:3 * p + 3]) for p in range(w * h)) / (w * h)
assert err <= 0.5 + 1e-3 and chroma > 1, f"luma error {err:.3f} (every pixel; rounding allows 0.5), chroma {chroma:.2f}"
PY
  done
done
expect_ok emoji-truth "$BIN" data "${EMO[@]}" --out "$T/etruth.png"
expect_ok emoji-upscale "$BIN" upscale --run "$T/emo" --image "$T/elow.png" --factor 4 --steps 5 --n 2 \
  --truth "$T/etruth.png" --out "$T/eup.png"
[ "$(rgb_ihdr "$T/eup_1.png")" = "16 16 2" ] && grep -Eq "restoration 1: PSNR [0-9]+\.[0-9]+ dB" "$T/out.txt" && ok ||
  bad "emoji upscale: 16×16 RGB restorations and their PSNR: $(rgb_ihdr "$T/eup_1.png"), $(cat "$T/out.txt")"

# seed 003's VAE, the KL autoencoder and latent diffusion, end to end from the CLI (tiny models, few steps)
expect_ok vae-train "$BIN" train --model vae --data fashion-mnist:test --latent-dim 4 --likelihood logistic --batch 8 --steps 3 --out "$T/vae"
json_ok vae-config "$T/vae/config.json" 'j["model_kind"] == "vae" and j["vae"]["latent_dim"] == 4 and j["vae"]["likelihood"] == "logistic" and j["vae"]["image_size"] == 28'
expect_ok vae-sample "$BIN" sample --run "$T/vae" --n 5 --out "$T/vae_s" --grid "$T/vae_grid.png"
[ -s "$T/vae_s/000004.png" ] && [ -s "$T/vae_grid.png" ] && ok || bad "vae sample writes its images and grid"
expect_ok vae-nll "$BIN" eval nll --run "$T/vae" --n 6 --batch 4 --iwae-k 3 --out "$T/vae_nll"
json_ok vae-nll-json "$T/vae_nll/nll.json" 'j["model_kind"] == "vae" and j["n"] == 6 and j["iwae_k"] == 3 and j["dims"] == 784 and j["neg_iwae_nats"] > 0 and abs(j["bound"] - j["neg_iwae_bits_per_dim"]) < 1e-12'
expect_ok vae-recon "$BIN" eval recon --run "$T/vae" --n 12 --out "$T/vae_rec"
json_ok vae-recon-json "$T/vae_rec/recon.json" 'j["n"] == 12 and 0 < j["psnr_db"] < 100 and -1 <= j["ssim"] <= 1 and j["fd"] >= 0'
expect_ok vae-fd "$BIN" eval fd --run "$T/vae" --n 12 --out "$T/vae_fd"
json_ok vae-fd-json "$T/vae_fd/fd.json" 'j["sampler"]["name"] == "vae-decoder" and j["sampler"]["network_calls"] == 1'
expect_fail vae-chain "show the reverse process of a diffusion run" "$BIN" sample --run "$T/vae" --n 2 --out "$T/x" --chain "$T/x.gif"
expect_fail vae-t-samples "--t-samples applies to diffusion runs" "$BIN" eval nll --run "$T/vae" --n 2 --t-samples 5
expect_fail vae-inpaint "is a VAE run (model_kind vae); restoration needs a diffusion run" \
  "$BIN" inpaint --run "$T/vae" --image "$T/vae_s/000000.png" --mask half:left --out "$T/x.png"
expect_fail vae-vectors "model vae needs image data" "$BIN" train --model vae --data toy:moons --steps 2 --out "$T/x_vae"
expect_fail vae-latent-dim "--latent-dim applies to --model vae" "$BIN" train --data toy:moons --latent-dim 4 --steps 2 --out "$T/x_vae"
expect_fail bad-model "valid models: diffusion, vae, autoencoder-kl" "$BIN" train --model gan --data toy:moons --out "$T/x_vae"
expect_ok ae-train "$BIN" train --model autoencoder-kl --data fashion-mnist:test --latent-channels 2 --downsample 4 --batch 4 --steps 2 --out "$T/ae"
json_ok ae-scale "$T/ae/vae/config.json" 'j["_class_name"] == "AutoencoderKL" and j["latent_channels"] == 2 and j["block_out_channels"] == [16, 32, 32] and j["scaling_factor"] > 0 and j["scaling_factor"] != 1'
[ -s "$T/ae/vae/diffusion_pytorch_model.safetensors" ] && ok || bad "autoencoder run exports RUN/vae/diffusion_pytorch_model.safetensors"
expect_ok ae-recon "$BIN" eval recon --run "$T/ae" --n 4 --out "$T/ae_rec"
expect_fail ae-sample "is an autoencoder run (model_kind autoencoder-kl); drawing samples needs a diffusion run" \
  "$BIN" sample --run "$T/ae" --n 2 --out "$T/x"
expect_fail ae-f8 "sample_size" "$BIN" train --model autoencoder-kl --data fashion-mnist:test --downsample 8 --steps 2 --out "$T/x_ae8"
expect_fail ae-downsample "--downsample must be 1, 2, 4 or 8" "$BIN" train --model autoencoder-kl --data fashion-mnist:test --downsample 3 --out "$T/x_ae3"
cat > "$T/ldm.json" <<'JSON'
{"class_conditional": true, "schedule": {"kind": "linear", "T": 20},
 "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1, "attention_resolutions": [4], "head_channels": 8, "groups": 4},
 "batch": 4, "steps": 2}
JSON
expect_ok ldm-train "$BIN" train --config "$T/ldm.json" --latent "$T/ae" --out "$T/ldm"
json_ok ldm-config "$T/ldm/config.json" 'j["data"] == "fashion-mnist:test" and j["unet"]["in_channels"] == 2 and j["unet"]["image_size"] == 7 and j["latent"].endswith("/ae")'
expect_ok ldm-sample "$BIN" sample --run "$T/ldm" --n 3 --steps 4 --sampler ddim --out "$T/ldm_s" --strip "$T/ldm_strip.png"
[ "$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$T/ldm_s/000002.png")" = "28 28" ] && ok ||
  bad "latent run samples decode to 28×28 images"
expect_ok ldm-fd "$BIN" eval fd --run "$T/ldm" --n 8 --steps 3 --out "$T/ldm_fd"
expect_fail ldm-data "--latent trains on the autoencoder's data: drop --data" "$BIN" train --latent "$T/ae" --data emoji --out "$T/x_ldm"
expect_fail ldm-not-ae "is not an autoencoder run" "$BIN" train --config "$T/ldm.json" --latent "$T/vae" --out "$T/x_ldm2"
# restoration of a latent run: dps through the decoder (its default there), sdedit through the encoder
expect_ok ldm-inpaint "$BIN" inpaint --run "$T/ldm" --image "$T/vae_s/000000.png" --mask half:left --steps 3 --n 2 --out "$T/ldm_inpaint.png"
grep -q "dps: mask with ddpm, 2 restorations" "$T/out.txt" && ok || bad "latent inpaint defaults to dps"
[ "$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$T/ldm_inpaint_1.png")" = "28 28" ] && ok ||
  bad "latent restorations decode to 28×28 images"
expect_ok ldm-low "$BIN" data --data fashion-mnist:test --n 1 --index 3 --size 14 --out "$T/ldm_lowres.png"
expect_ok ldm-upscale "$BIN" upscale --run "$T/ldm" --image "$T/ldm_lowres.png" --factor 2 --steps 3 --out "$T/ldm_up.png"
expect_ok ldm-edit "$BIN" edit --run "$T/ldm" --image "$T/vae_s/000000.png" --strength 0.5 --steps 4 --out "$T/ldm_edit.png"
expect_fail ldm-repaint "a latent run's x0 is a latent" \
  "$BIN" inpaint --run "$T/ldm" --image "$T/vae_s/000000.png" --mask half:left --method repaint --steps 3 --out "$T/x.png"
expect_fail ldm-ddnm "use --method dps" \
  "$BIN" upscale --run "$T/ldm" --image "$T/ldm_lowres.png" --factor 2 --method ddnm --steps 3 --out "$T/x.png"
expect_fail ldm-nll "is a latent diffusion run" "$BIN" eval nll --run "$T/ldm" --n 2

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
