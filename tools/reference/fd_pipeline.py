#!/usr/bin/env python3
"""Reference values for the eval-fd pipeline (tests/cli_test.sh "eval fd: values" and
tests/featnet_test.cpp FeatNet.FrechetDistanceMatchesThePythonPipeline), computed without diffuse:

- inputs: tests/testfiles.py's fixed sets from the first N = 500 Fashion-MNIST test images
  (real 28×28 gray; 56×56 RGB tinted with R = 0.9g, G = g, B = 0.6g; uniform noise ±80;
  3×3 box blur), written as PNG and decoded again by testfiles's own PNG reader;
- what `eval fd --samples` does to a folder, redone in numpy: RGB → gray by ITU-R 601 luma
  in float32, rounded; 56 → 28 by an antialiased bilinear (triangle) filter, written out
  below from its definition (interior weights 1/8, 3/8, 3/8, 1/8; at the border the taps
  inside the image, renormalised), rounded;
- features: the shipped assets/featnet_fmnist.safetensors, parsed by hand and run through
  a PyTorch copy of the network in src/eval/featnet.cpp (conv-BN-ReLU ×2, maxpool, twice;
  Linear, BN, ReLU);
- the Fréchet distance as pytorch-fid computes it (scipy.linalg.sqrtm of Σ₁Σ₂), against the
  10 000-image test split.

It also prints what plausible bugs would give, to show that the tests' tolerance
separates them: gray as the mean of R, G, B; gray as R alone; no antialiasing (2×2 mean).

Run:  /usr/bin/python3 tools/reference/fd_pipeline.py   (Debian: python3-torch, python3-scipy)
"""
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import testfiles  # noqa: E402

IDX = "/usr/share/datasets/fashion-mnist"
N = 500


def load_safetensors(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    types = {"F32": np.float32, "I64": np.int64}
    return {k: torch.from_numpy(np.frombuffer(body[v["data_offsets"][0]:v["data_offsets"][1]],
                                              dtype=types[v["dtype"]]).reshape(v["shape"]).copy())
            for k, v in header.items() if k != "__metadata__"}


class FeatNet(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def features(self, x):  # x: (B, 1, 28, 28) in [−1, 1]
        w = self.w
        for layer in ((0, 1), (3, 4), None, (7, 8), (10, 11), None):  # (conv, BN) indices; None: maxpool
            if layer is None:
                x = torch.nn.functional.max_pool2d(x, 2)
                continue
            i, j = layer
            x = torch.nn.functional.conv2d(x, w[f"convs.{i}.weight"], padding=1)
            x = torch.nn.functional.batch_norm(x, w[f"convs.{j}.running_mean"], w[f"convs.{j}.running_var"],
                                               w[f"convs.{j}.weight"], w[f"convs.{j}.bias"], False, 0.0, 1e-5)
            x = torch.relu(x)
        x = x.flatten(1) @ w["fc.weight"].T
        x = torch.nn.functional.batch_norm(x, w["fc_norm.running_mean"], w["fc_norm.running_var"],
                                           w["fc_norm.weight"], w["fc_norm.bias"], False, 0.0, 1e-5)
        return torch.relu(x)


def features(net, u8):  # (N, 28, 28) uint8 → (N, D) float64
    with torch.no_grad():
        x = torch.from_numpy(u8.astype(np.float32)).unsqueeze(1) / 127.5 - 1.0
        return torch.cat([net.features(x[i:i + 500]) for i in range(0, len(x), 500)]).double().numpy()


def fd(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def aa_weights(n_in, n_out):
    """(n_out, n_in) antialiased bilinear downsampling: triangle of half-width s = n_in/n_out input
    pixels around each output centre s·(i + ½), taps inside the image, renormalised."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        c = s * (i + 0.5)
        for j in range(n_in):
            m[i, j] = max(0.0, 1.0 - abs(j + 0.5 - c) / s)
        m[i] /= m[i].sum()
    return m


def to_gray28(w, h, ch, px, gray="luma", antialias=True):
    a = np.array(px, dtype=np.float32).reshape(h, w, ch)
    if ch == 3:
        if gray == "luma":  # float32, in this order, as the C++ loader does
            g = a[..., 0] * np.float32(0.299) + a[..., 1] * np.float32(0.587) + a[..., 2] * np.float32(0.114)
        elif gray == "mean":
            g = a.mean(-1)
        else:
            g = a[..., 0]
        a = np.clip(np.round(g), 0, 255)
    else:
        a = a[..., 0]
    if h != 28:
        if antialias:
            a = aa_weights(h, 28) @ a.astype(np.float64) @ aa_weights(w, 28).T
        else:
            a = a.reshape(28, h // 28, 28, w // 28).mean((1, 3))
        a = np.clip(np.round(a), 0, 255)
    return a.astype(np.uint8)


def folder(path, **kw):
    return np.stack([to_gray28(*testfiles.read_png(p), **kw) for p in sorted(Path(path).glob("*.png"))])


def main():
    torch.set_num_threads(2)
    net = FeatNet(load_safetensors(ROOT / "assets/featnet_fmnist.safetensors"))
    dims, px = testfiles.read_idx(IDX + "/t10k-images-idx3-ubyte.gz")
    test = np.frombuffer(px, dtype=np.uint8).reshape(dims)
    ft = features(net, test)
    with tempfile.TemporaryDirectory() as tmp:
        testfiles.main(["inputs", IDX, tmp, str(N)])
        sets = {name: folder(Path(tmp) / name) for name in ("real", "rgb", "noisy", "blur")}
        wrong = {"rgb, gray = mean of R, G, B": folder(Path(tmp) / "rgb", gray="mean"),
                 "rgb, gray = R": folder(Path(tmp) / "rgb", gray="r"),
                 "rgb, no antialiasing (2×2 mean)": folder(Path(tmp) / "rgb", antialias=False)}
    assert (sets["real"] == test[:N]).all()
    print(f"N = {N} of the test images; reference: the test split ({len(test)} images)")
    for name, imgs in sets.items():
        print(f"fd({name}) = {fd(features(net, imgs), ft):.6f}")
    print(f"fd(real, reference = the blur folder) = {fd(features(net, sets['real']), features(net, sets['blur'])):.6f}")
    print("what bugs would give:")
    for name, imgs in wrong.items():
        print(f"  fd({name}) = {fd(features(net, imgs), ft):.6f}")
    print("for FeatNet.FrechetDistanceMatchesThePythonPipeline (library only, no PNGs):")
    print(f"  features of test image 0, first 6: {np.array2string(ft[0][:6], precision=8)}")
    print(f"  fd(test images 0–499, test images 500–2499) = {fd(ft[:500], ft[500:2500]):.6f}")


if __name__ == "__main__":
    main()
