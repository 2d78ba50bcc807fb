#!/usr/bin/env bash
# Training throughput of a preset's U-Net in diffuse (C++) and, for the same architecture,
# in PyTorch eager (Debian's python3-torch), on the same machine, one after the other.
#   bench/train_throughput.sh [BENCH_BIN] [bench options, e.g. --preset fmnist-base --steps 4]
# Needs python3-torch for the reference rows (sudo apt-get install python3-torch).
set -euo pipefail
BIN=${1:-build/bench/bench_train_throughput}
shift || true
out=$("$BIN" "$@")
echo "$out"
unet=$(sed -n 's/^unet: //p' <<<"$out")
batch=$(sed -n 's/.*batch \([0-9]*\),.*/\1/p' <<<"$out" | head -1)
threads=$(sed -n 's/.*, \([0-9]*\) threads,.*/\1/p' <<<"$out" | head -1)
echo
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "python3-torch is not installed: no PyTorch reference (sudo apt-get install python3-torch)"
  exit 0
fi
echo "PyTorch eager, same U-Net, same batch and threads:"
for prec in fp32 bf16; do
  for cl in 0 1; do
    /usr/bin/python3 tools/reference/unet_throughput.py --unet "$unet" --batch "$batch" \
      --threads "$threads" --steps 4 --precision "$prec" --channels-last "$cl"
  done
done
