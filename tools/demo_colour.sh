#!/usr/bin/env bash
# make demo-colour: train the small emoji model (preset emoji-tiny, 32×32 RGB), sample a grid,
# colorize a gray test emoji and upscale low-resolution ones (×4: 8→32, ×2: 16→32), and write
# the pictures under out/demo-colour/. 8 min 21 s on 2 cores (2026-11-30, docs/colour.md).
set -euo pipefail
BIN=${1:-build/diffuse}
OUT=${2:-out/demo-colour}
mkdir -p "$OUT"
THREADS=(--threads "$(nproc)")
start=$(date +%s)

echo "== the data: 64 training emoji as the model sees them (32×32, white background)"
"$BIN" data --data emoji --n 64 --seed 1 --grid "$OUT/emoji_data.png"

echo "== training: preset emoji-tiny (class-conditional U-Net, 1.1 M parameters, T = 250)"
rm -rf "$OUT/emoji_run"
"$BIN" train --preset emoji-tiny --out "$OUT/emoji_run" "${THREADS[@]}"

echo "== samples: 36 emoji, classes in columns, guidance 2"
"$BIN" sample --run "$OUT/emoji_run" --n 36 --seed 1 --guidance 2 --out "$OUT/emoji_samples" "${THREADS[@]}" \
  --grid "$OUT/emoji_grid.png" --strip "$OUT/emoji_strip.png"

# Inputs made from held-out test emoji (emoji:test: never trained on):
# 308 the fox (colorize), 320 the tangerine (×4), 342 the car (×2)
echo "== colorize: a gray test emoji → colour (DDNM, 50 DDIM steps; the luma of every output is the input's)"
"$BIN" data --data emoji:test --n 1 --index 308 --out "$OUT/fox.png"
"$BIN" data --data emoji:test --n 1 --index 308 --gray --out "$OUT/fox_gray.png"
"$BIN" colorize --run "$OUT/emoji_run" --image "$OUT/fox_gray.png" --truth "$OUT/fox.png" --n 4 \
  --sampler ddim --eta 0.85 --steps 50 --out "$OUT/colorize_ddnm.png" "${THREADS[@]}"

echo "== upscale ×4: an 8×8 test emoji → 32×32 (DDNM)"
"$BIN" data --data emoji:test --n 1 --index 320 --out "$OUT/tangerine.png"
"$BIN" data --data emoji:test --n 1 --index 320 --size 8 --out "$OUT/tangerine_8x8.png"
"$BIN" upscale --run "$OUT/emoji_run" --image "$OUT/tangerine_8x8.png" --factor 4 --truth "$OUT/tangerine.png" --n 4 \
  --sampler ddim --eta 0.85 --steps 50 --out "$OUT/upscale4_ddnm.png" "${THREADS[@]}"

echo "== upscale ×2: a 16×16 test emoji → 32×32 (DDNM)"
"$BIN" data --data emoji:test --n 1 --index 342 --out "$OUT/car.png"
"$BIN" data --data emoji:test --n 1 --index 342 --size 16 --out "$OUT/car_16x16.png"
"$BIN" upscale --run "$OUT/emoji_run" --image "$OUT/car_16x16.png" --factor 2 --truth "$OUT/car.png" --n 4 \
  --sampler ddim --eta 0.85 --steps 50 --out "$OUT/upscale2_ddnm.png" "${THREADS[@]}"

cat <<MSG

Took $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s. Pictures are in $OUT/:
  emoji_data.png       64 training images
  emoji_grid.png       36 samples of the model (classes in columns)   emoji_strip.png  x_t along the reverse process
  colorize_ddnm.png    gray input | its measurement | 4 colorizations | the original
  upscale4_ddnm.png    8×8 input | its upsampling | 4 restorations | the original   (upscale2_ddnm.png: 16×16)
  emoji_run/loss.png   emoji_run/samples/ (grids during training)
MSG
