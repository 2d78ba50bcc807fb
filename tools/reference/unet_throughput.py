#!/usr/bin/python3
"""PyTorch-eager reference for bench/train_throughput: the same U-Net as src/nn/unet.cpp
(unet_model.py; same layers, so the same FLOPs per image), trained on random batches the same way
(ε-MSE, AdamW), with Debian's python3-torch on the same machine.

    /usr/bin/python3 tools/reference/unet_throughput.py --unet JSON [--batch 128]
        [--threads 2] [--steps 6] [--channels-last 0|1] [--precision fp32|bf16]

Prints images/s. The U-Net options come from a preset's "unet" section (JSON), e.g.
    --unet '{"base_channels": 32, "channel_mult": [1,2,2], "blocks_per_level": 2,
             "attention_resolutions": [7], "head_channels": 32, "groups": 8}'
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from unet_model import UNet


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unet", required=True, help="JSON of the U-Net options")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--channels-last", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args()
    o = {"in_channels": 1, "image_size": 28, "num_classes": 10, "dropout": 0.0, "groups": 32,
         "head_channels": 32, "attention_resolutions": [], "blocks_per_level": 2,
         "channel_mult": [1, 2, 2], "base_channels": 64}
    o.update(json.loads(a.unet))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet(o)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    B = a.batch

    def step():
        x = torch.randn(B, 1, 28, 28).contiguous(memory_format=fmt)
        eps = torch.randn(B, 1, 28, 28)
        t = torch.randint(0, 1000, (B,))
        y = torch.randint(0, o["num_classes"], (B,)) if o["num_classes"] else None
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            out = net(x, t, y)
        F.mse_loss(out.float(), eps).backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    s = (time.perf_counter() - t0) / a.steps
    n = sum(p.numel() for p in net.parameters())
    print(f"python eager torch {torch.__version__}: {n / 1e6:.2f} M parameters, batch {B}, "
          f"{a.threads} threads, {a.precision}, {'channels-last' if a.channels_last else 'NCHW'}: "
          f"{B / s:.1f} images/s ({s:.2f} s/step)")


if __name__ == "__main__":
    main()
