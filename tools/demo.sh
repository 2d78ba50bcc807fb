#!/usr/bin/env bash
# make demo: train the seed-002 signal model, a 2-D toy and a small Fashion-MNIST U-Net,
# sample them, and write pictures and distances under out/demo/.
set -euo pipefail
BIN=${1:-build/diffuse}
OUT=${2:-out/demo}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # small MLPs run fastest on one thread here

echo "== the seed-002 signals: 50-dim curves, sigmoid schedule, T = 100, beta_max = 0.1"
"$BIN" forward --data signals --schedule sigmoid --T 100 --beta-max 0.1 --out "$OUT/signals_forward.png"
rm -rf "$OUT/signals_run"
"$BIN" train --config configs/signals.json --out "$OUT/signals_run"
"$BIN" sample --run "$OUT/signals_run" --n 2000 --out "$OUT/signals_samples" --chain "$OUT/signals_reverse.png"
"$BIN" data --data signals --n 2000 --seed 12345 --out "$OUT/signals_data.csv"
"$BIN" data --data signals --n 2000 --seed 54321 --out "$OUT/signals_data2.csv"

echo "== a 2-D toy: swiss roll, linear schedule, T = 1000"
"$BIN" forward --data toy:swissroll --out "$OUT/toy_forward.png"
rm -rf "$OUT/toy_run"
"$BIN" train --config configs/toy.json --out "$OUT/toy_run"
"$BIN" sample --run "$OUT/toy_run" --n 2000 --out "$OUT/toy_samples" --chain "$OUT/toy_reverse.png"
"$BIN" data --data toy:swissroll --n 2000 --seed 12345 --out "$OUT/toy_data.csv"
"$BIN" data --data toy:swissroll --n 2000 --seed 54321 --out "$OUT/toy_data2.csv"

echo "== Fashion-MNIST: class-conditional U-Net, preset fmnist-tiny (4–8 minutes on 2 cores)"
"$BIN" forward --data fashion-mnist --out "$OUT/fmnist_forward.png"
# --threads 0 would follow OMP_NUM_THREADS=1 (set above for the MLPs); the U-Net runs faster on every core
IMG_THREADS=(--threads "$(nproc)")
rm -rf "$OUT/fmnist_run"
"$BIN" train --preset fmnist-tiny --out "$OUT/fmnist_run" "${IMG_THREADS[@]}"
"$BIN" sample --run "$OUT/fmnist_run" --n 40 --seed 1 --guidance 2 --out "$OUT/fmnist_samples" "${IMG_THREADS[@]}" \
  --grid "$OUT/fmnist_grid.png" --chain "$OUT/fmnist_chain.gif" --strip "$OUT/fmnist_strip.png"
# The same samples in 20 network calls instead of 250 (docs/samplers.md)
"$BIN" sample --run "$OUT/fmnist_run" --n 40 --seed 1 --guidance 2 --out "$OUT/fmnist_samples_dpm" "${IMG_THREADS[@]}" \
  --sampler dpm++2m --steps 20 --sigmas karras --grid "$OUT/fmnist_grid_dpm++2m_20.png"
# Restoration without retraining: fill a 14×14 hole in one of the samples (docs/restoration.md)
"$BIN" inpaint --run "$OUT/fmnist_run" --image "$OUT/fmnist_samples/000007.png" --mask box:7,7,14,14 \
  --method ddnm --steps 50 --n 4 --truth "$OUT/fmnist_samples/000007.png" --out "$OUT/fmnist_inpaint.png" "${IMG_THREADS[@]}"

echo "== distances (sliced Wasserstein-2; the data-vs-data line is the floor)"
for m in signals toy; do
  echo "$m  samples vs data: $("$BIN" eval swd --a "$OUT/${m}_samples/samples.csv" --b "$OUT/${m}_data.csv")"
  echo "$m  data vs data:    $("$BIN" eval swd --a "$OUT/${m}_data2.csv" --b "$OUT/${m}_data.csv")"
done | tee "$OUT/distances.txt"

cat <<MSG

Pictures and files are in $OUT/:
  signals_forward.png  signals_reverse.png  signals_samples/samples.png  signals_run/loss.png
  toy_forward.png      toy_reverse.png      toy_samples/samples.png      toy_run/loss.png
  fmnist_forward.png   fmnist_grid.png      fmnist_chain.gif             fmnist_strip.png  fmnist_grid_dpm++2m_20.png  fmnist_inpaint.png
  fmnist_run/loss.png  fmnist_run/samples/ (grids during training)
  distances.txt
MSG
