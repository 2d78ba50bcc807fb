#!/usr/bin/python3
"""Loads the diffusers-layout export of an autoencoder-kl run (RUN/vae/config.json and
diffusion_pytorch_model.safetensors) into the plain-PyTorch AutoencoderKL of
autoencoder_kl_reference.py (diffusers' module names, load_state_dict(strict=True)), and
reports on the first N Fashion-MNIST test images: the reconstruction PSNR of D(μ(x)) as 8-bit
images, the spread of the latents μ against the posterior's σ, and 1/std(μ) against the stored
scaling_factor. An independent reading of the files a diffusers user would load.

Run:  /usr/bin/python3 tools/reference/load_autoencoder_export.py RUN/vae [N=500]
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "tests"))
from autoencoder_kl_reference import AutoencoderKL  # noqa: E402
from testfiles import fashion_mnist_test  # noqa: E402


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header, base, out = json.loads(raw[8:8 + n]), 8 + n, {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        assert v["dtype"] == "F32", f"{name}: {v['dtype']}"
        a, b = v["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[base + a:base + b], dtype=np.float32).copy()).view(v["shape"])
    return out


def main():
    d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500
    cfg = json.loads(Path(d, "config.json").read_text())
    net = AutoencoderKL(cfg)
    net.load_state_dict(read_safetensors(Path(d, "diffusion_pytorch_model.safetensors")), strict=True)
    net.eval()
    x = torch.tensor(fashion_mnist_test("/usr/share/datasets/fashion-mnist", n), dtype=torch.float32)
    x = x.view(n, 1, 28, 28) / 127.5 - 1
    with torch.no_grad():
        mu, logvar = net.encode(x)
        rec = ((net.decode(mu).clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    psnr = (10 * torch.log10(4 / ((rec - x) ** 2).flatten(1).mean(1))).mean().item()
    print(f"loaded {len(net.state_dict())} tensors with diffusers' names (strict)")
    print(f"PSNR of D(mu(x)), {n} test images, 8-bit: {psnr:.2f} dB")
    print(f"std of mu {mu.std().item():.4f}, mean sigma {torch.exp(0.5 * logvar).mean().item():.5f}; "
          f"1/std(mu) {1 / mu.std().item():.5f} (these {n} images), scaling_factor {cfg['scaling_factor']:.5f} "
          f"(the first 10 000 training images)")


if __name__ == "__main__":
    main()
