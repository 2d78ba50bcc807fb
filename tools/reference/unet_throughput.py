#!/usr/bin/python3
"""PyTorch-eager reference for bench/train_throughput: the same U-Net as src/nn/unet.cpp
(same layers, so the same FLOPs per image), trained on random batches the same way
(ε-MSE, AdamW), with Debian's python3-torch on the same machine.

    /usr/bin/python3 tools/reference/unet_throughput.py --unet JSON [--batch 128]
        [--threads 2] [--steps 6] [--channels-last 0|1] [--precision fp32|bf16]

Prints images/s. The U-Net options come from a preset's "unet" section (JSON), e.g.
    --unet '{"base_channels": 32, "channel_mult": [1,2,2], "blocks_per_level": 2,
             "attention_resolutions": [7], "head_channels": 32, "groups": 8}'
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def groups_for(g, c):
    return math.gcd(g, c)


def timestep_embedding(t, dim):
    # Same convention as diffuse::timestep_embedding: [cos(t·f), sin(t·f)], f = 10000^(-i/half).
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class GroupNorm(nn.GroupNorm):
    # Under CPU bf16 autocast (torch 1.13) group_norm gets a bf16 input and fp32 weights and
    # refuses; run it in the input's dtype, as diffuse::unet_group_norm does.
    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups, dropout):
        super().__init__()
        self.norm1 = GroupNorm(groups_for(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb, cout)
        self.norm2 = GroupNorm(groups_for(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = dropout
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(emb)[:, :, None, None]
        h = F.silu(self.norm2(h))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = self.conv2(h)
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, c, head_channels, groups):
        super().__init__()
        self.heads = c // head_channels
        self.norm = GroupNorm(groups_for(groups, c), c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        d = C // self.heads
        q, k, v = self.qkv(self.norm(x)).reshape(B * self.heads, 3 * d, H * W).split(d, 1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(d), -1)
        o = torch.bmm(a, v.transpose(1, 2)).reshape(B, self.heads, H, W, d)
        o = o.permute(0, 1, 4, 2, 3).reshape(B, C, H, W)
        return x + self.proj(o)


class Block(nn.Module):
    def __init__(self, cin, cout, attention, o):
        super().__init__()
        self.res = ResBlock(cin, cout, 4 * o["base_channels"], o["groups"], o["dropout"])
        self.attn = Attention(cout, o["head_channels"], o["groups"]) if attention else None

    def forward(self, x, emb):
        h = self.res(x, emb)
        return self.attn(h) if self.attn is not None else h


class UNet(nn.Module):
    def __init__(self, o):
        super().__init__()
        self.o = o
        base, E = o["base_channels"], 4 * o["base_channels"]
        res = [o["image_size"]]
        while len(res) < len(o["channel_mult"]):
            res.append((res[-1] + 1) // 2)
        self.t1, self.t2 = nn.Linear(base, E), nn.Linear(E, E)
        self.label_emb = nn.Embedding(o["num_classes"] + 1, E) if o["num_classes"] else None
        self.inp = nn.Conv2d(o["in_channels"], base, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        attn = lambda r: r in o["attention_resolutions"]
        ch, skips = base, [base]
        L = len(o["channel_mult"])
        for i, m in enumerate(o["channel_mult"]):
            for _ in range(o["blocks_per_level"]):
                self.down.append(Block(ch, base * m, attn(res[i]), o))
                ch = base * m
                skips.append(ch)
            if i + 1 < L:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = Block(ch, ch, True, o)
        self.mid2 = ResBlock(ch, ch, E, o["groups"], o["dropout"])
        for i in reversed(range(L)):
            out = base * o["channel_mult"][i]
            for _ in range(o["blocks_per_level"] + 1):
                self.up.append(Block(ch + skips.pop(), out, attn(res[i]), o))
                ch = out
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out_norm = GroupNorm(groups_for(o["groups"], ch), ch)
        self.out = nn.Conv2d(ch, o["in_channels"], 3, padding=1)

    def forward(self, x, t, y=None):
        o = self.o
        emb = self.t2(F.silu(self.t1(timestep_embedding(t, o["base_channels"]))))
        if self.label_emb is not None:
            emb = emb + self.label_emb(y)
        emb = F.silu(emb)
        h = self.inp(x)
        hs = [h]
        k = 0
        L = len(o["channel_mult"])
        for i in range(L):
            for _ in range(o["blocks_per_level"]):
                h = self.down[k](h, emb)
                k += 1
                hs.append(h)
            if i + 1 < L:
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid2(self.mid1(h, emb), emb)
        k = 0
        for i in reversed(range(L)):
            for _ in range(o["blocks_per_level"] + 1):
                h = self.up[k](torch.cat([h, hs.pop()], 1), emb)
                k += 1
            if i > 0:
                h = F.interpolate(h, size=hs[-1].shape[2:], mode="nearest")
                h = self.upsample[L - 1 - i](h)
        return self.out(F.silu(self.out_norm(h)))


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
