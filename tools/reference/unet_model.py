"""The U-Net of src/nn/unet.cpp (include/diffuse/nn/unet.hpp) in PyTorch, layer for layer, with
the same parameter names except `inp` for the C++ `in` (a Python keyword); see
unet_reference.py's cpp_name. Used by unet_throughput.py (speed) and unet_reference.py
(reference outputs for tests/unet_reference_test.cpp).

Options are a dict with the fields of diffuse::UNetOptions: in_channels, base_channels,
channel_mult, blocks_per_level, attention_resolutions, head_channels, dropout, num_classes,
groups, image_size.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def groups_for(g, c):
    return math.gcd(g, c)


def timestep_embedding(t, dim):
    # Same convention as diffuse::timestep_embedding (src/nn/time_embedding.cpp) and Ho et al.'s
    # get_timestep_embedding: [sin(t·ω), cos(t·ω)], ω_i = 10000^(-i/half); zero-padded when dim is odd.
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


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

    def forward(self, x, t, y=None):  # x: (B, C, H, W), t: (B) int64, y: (B) int64 or None
        o = self.o
        emb = self.t2(F.silu(self.t1(timestep_embedding(t, o["base_channels"]))))
        if self.label_emb is not None:  # no labels: the null class num_classes, as in the C++
            if y is None:
                y = torch.full((x.shape[0],), o["num_classes"], dtype=torch.long)
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
