#!/usr/bin/python3
"""Reference outputs of the KL autoencoder for tests/autoencoder_kl_test.cpp.

A plain-PyTorch copy of HuggingFace diffusers' AutoencoderKL (Rombach et al. 2022,
src/diffusers/models/autoencoders/{autoencoder_kl,vae}.py with the blocks of unets/unet_2d_blocks.py,
resnet.py, downsampling.py, upsampling.py and attention_processor.py), written here because
diffusers is not installed: the module tree and attribute names are diffusers', so that
state_dict() keys are diffusers' keys ("encoder.down_blocks.0.resnets.0.conv1.weight", ...) and
those of src/nn/autoencoder_kl.cpp. Only what AutoencoderKL uses is kept: no time embedding, no
spatial norm, one attention head of all channels, dropout 0, output_scale_factor 1. GroupNorm takes
gcd(norm_num_groups, channels) groups as the C++ does (diffusers requires a divisor; the two agree
whenever it is one).

Builds two small configurations with a fixed seed, randomises the GroupNorm scales and shifts
(away from PyTorch's 1, 0, so that every norm changes the output) and writes
tests/data/autoencoder_kl_reference.safetensors:

  <c>.model.<name>   the weights under the state_dict names (get_module reads them)
  <c>.x              input images (B, C, S, S) float32 in [-1, 1]
  <c>.mean, <c>.logvar
                     the posterior: moments = quant_conv(encoder(x)) split in channels, log σ²
                     clamped to [-30, 20] (diffusers' DiagonalGaussianDistribution)
  <c>.z, <c>.decoded a latent (B, L, S/f, S/f) and decoder(post_quant_conv(z))

and in the metadata <c>.config (the diffusers-style config.json) and <c>.parameters (the count).

  a: 1 channel, block_out_channels (8, 16) → f = 2, layers_per_block 1, latent 2, groups 4, 8×8
  b: 3 channels, block_out_channels (8, 8, 16) → f = 4, layers_per_block 2, latent 4, groups 4,
     16×16, attention in the middle blocks

Run:  /usr/bin/python3 tools/reference/autoencoder_kl_reference.py [--out PATH]
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_reference import write_safetensors  # the hand-written safetensors writer

CONFIGS = {
    "a": dict(in_channels=1, out_channels=1, latent_channels=2, block_out_channels=[8, 16],
              layers_per_block=1, norm_num_groups=4, mid_block_add_attention=True,
              scaling_factor=1.0, sample_size=8),
    "b": dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 8, 16],
              layers_per_block=2, norm_num_groups=4, mid_block_add_attention=True,
              scaling_factor=1.0, sample_size=16),
}


def config_json(o):
    """diffusers' config.json for options o (the keys autoencoder_kl_config_json writes)."""
    n = len(o["block_out_channels"])
    c = dict(o, _class_name="AutoencoderKL", act_fn="silu", force_upcast=True,
             down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n)
    return json.dumps(c, indent=2, sort_keys=True)


def group_norm(groups, channels):
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=1e-6)


class ResnetBlock2D(nn.Module):  # resnet.py, temb_channels=None
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = group_norm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = group_norm(groups, cout)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):  # attention_processor.py, one head, residual, rescale 1
    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = group_norm(groups, c)
        self.to_q, self.to_k, self.to_v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c), nn.Dropout(0.0)])

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.group_norm(x).view(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        a = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * C ** -0.5, dim=-1)
        o = self.to_out[1](self.to_out[0](torch.bmm(a, v)))
        return o.transpose(1, 2).reshape(B, C, H, W) + x


class Downsample2D(nn.Module):  # downsampling.py, padding=0: pad right/bottom, 3×3 stride 2
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2D(nn.Module):  # upsampling.py: nearest ×2, 3×3
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNetMidBlock2D(nn.Module):  # resnets.0 → attentions.0 → resnets.1
    def __init__(self, c, groups, attention):
        super().__init__()
        self.attentions = nn.ModuleList([Attention(c, groups) if attention else None])
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, groups), ResnetBlock2D(c, c, groups)])

    def forward(self, x):
        x = self.resnets[0](x)
        if self.attentions[0] is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class DownEncoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, groups)
                                      for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(cout)]) if downsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.downsamplers[0](x) if self.downsamplers is not None else x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, upsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, groups)
                                      for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Encoder(nn.Module):
    def __init__(self, o):
        super().__init__()
        boc, g = o["block_out_channels"], o["norm_num_groups"]
        self.conv_in = nn.Conv2d(o["in_channels"], boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        ch = boc[0]
        for i, out in enumerate(boc):
            self.down_blocks.append(DownEncoderBlock2D(ch, out, o["layers_per_block"], g,
                                                       i + 1 < len(boc)))
            ch = out
        self.mid_block = UNetMidBlock2D(boc[-1], g, o["mid_block_add_attention"])
        self.conv_norm_out = group_norm(g, boc[-1])
        self.conv_out = nn.Conv2d(boc[-1], 2 * o["latent_channels"], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for b in self.down_blocks:
            h = b(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    def __init__(self, o):
        super().__init__()
        boc, g = o["block_out_channels"], o["norm_num_groups"]
        self.conv_in = nn.Conv2d(o["latent_channels"], boc[-1], 3, padding=1)
        self.mid_block = UNetMidBlock2D(boc[-1], g, o["mid_block_add_attention"])
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        ch = rev[0]
        for i, out in enumerate(rev):
            self.up_blocks.append(UpDecoderBlock2D(ch, out, o["layers_per_block"] + 1, g,
                                                   i + 1 < len(boc)))
            ch = out
        self.conv_norm_out = group_norm(g, boc[0])
        self.conv_out = nn.Conv2d(boc[0], o["out_channels"], 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            h = b(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, o):
        super().__init__()
        L = o["latent_channels"]
        self.encoder = Encoder(o)
        self.decoder = Decoder(o)
        self.quant_conv = nn.Conv2d(2 * L, 2 * L, 1)
        self.post_quant_conv = nn.Conv2d(L, L, 1)

    def encode(self, x):  # → mean, logvar (DiagonalGaussianDistribution)
        mean, logvar = torch.chunk(self.quant_conv(self.encoder(x)), 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


def reference(key, o, seed):
    torch.manual_seed(seed)
    net = AutoencoderKL(o)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:  # GroupNorm affine: away from the identity 1, 0
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    net.eval()
    B, S = 2, o["sample_size"]
    f = 2 ** (len(o["block_out_channels"]) - 1)
    x = torch.rand(B, o["in_channels"], S, S) * 2 - 1
    z = torch.randn(B, o["latent_channels"], S // f, S // f)
    with torch.no_grad():
        mean, logvar = net.encode(x)
        decoded = net.decode(z)
    out = {f"{key}.model.{n}": v for n, v in net.state_dict().items()}
    out.update({f"{key}.x": x, f"{key}.mean": mean, f"{key}.logvar": logvar, f"{key}.z": z,
                f"{key}.decoded": decoded})
    meta = {f"{key}.config": config_json(o),
            f"{key}.parameters": str(sum(p.numel() for p in net.parameters()))}
    for name in ("mean", "logvar", "decoded"):
        v = out[f"{key}.{name}"]
        print(f"{key}.{name} {tuple(v.shape)}: max |y| {v.abs().max():.4f}, "
              f"mean |y| {v.abs().mean():.4f}")
    print(f"{key}: {meta[key + '.parameters']} parameters")
    return out, meta


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data",
                                                 "autoencoder_kl_reference.safetensors"))
    a = p.parse_args()
    torch.set_num_threads(2)
    tensors, meta = {}, {"generator": "tools/reference/autoencoder_kl_reference.py",
                         "torch": torch.__version__}
    for seed, (key, o) in enumerate(CONFIGS.items()):
        t, m = reference(key, o, seed)
        tensors.update(t)
        meta.update(m)
    write_safetensors(a.out, tensors, meta)
    print(f"wrote {os.path.normpath(a.out)} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
