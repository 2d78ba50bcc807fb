#!/usr/bin/python3
"""Reference outputs of the U-Net for tests/unet_reference_test.cpp.

Builds the PyTorch copy of src/nn/unet.cpp (unet_model.py) for two small configurations with a
fixed seed, gives every parameter a non-trivial value (the C++ zero-initialises the last conv of
each residual branch, the attention projection and the output conv; here they keep PyTorch's
default init, and the GroupNorm scales and shifts are randomised, so that every layer changes
the output), and writes to tests/data/unet_reference.safetensors:

  <c>.model.<name>   the weights, under the C++ module's parameter names (those that
                     diffuse's checkpoints store after "model."; get_module reads them)
  <c>.x, <c>.t, <c>.labels, <c>.out
                     inputs (B, C, H, W) float32, (B) int64, (B) int64 and the output (B, C, H, W)
  <c>.out_null       (conditional) the output with every label the null class num_classes
  <c>.t2, <c>.out_t2 other timesteps and the output for them (same x, labels)
  <c>.labels2, <c>.out_labels2
                     (conditional) other labels and the output for them (same x, t)

and in the metadata <c>.options (the UNetOptions as JSON) and <c>.parameters (the count).

  a: class-conditional (3 classes + null), 3 channels, 14 → 7 → 4 (odd downsampling and the
     4 → 7 upsampling), attention at resolution 7 with 2 heads and in the middle block,
     one block per level, dropout 0.1 (the test runs in eval mode, as sampling does)
  b: unconditional, 1 channel, 10 → 5 → 3, attention only in the middle block (2 heads), two
     blocks per level, groups 6 (GroupNorm falls back to gcd(6, 4) = gcd(6, 8) = 2 groups)

Run:  /usr/bin/python3 tools/reference/unet_reference.py [--out tests/data/unet_reference.safetensors]
      (Debian: python3-torch; safetensors is written by hand, the format is in include/diffuse/io.hpp)
"""
import argparse
import json
import os
import struct

import torch

from unet_model import UNet

CONFIGS = {
    "a": dict(in_channels=3, image_size=14, base_channels=8, channel_mult=[1, 2, 2],
              blocks_per_level=1, attention_resolutions=[7], head_channels=8, groups=4,
              num_classes=3, dropout=0.1),
    "b": dict(in_channels=1, image_size=10, base_channels=4, channel_mult=[1, 1, 2],
              blocks_per_level=2, attention_resolutions=[], head_channels=4, groups=6,
              num_classes=0, dropout=0.0),
}


def cpp_name(name):
    # The Python module calls the input conv `inp`; the C++ registers it as "in".
    return "in" + name[len("inp"):] if name.startswith("inp.") else name


def write_safetensors(path, tensors, metadata):
    """8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets},
    "__metadata__": {str: str}}, then the raw little-endian bytes (x86: native order)."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad so the data starts 8-byte aligned, as safetensors does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def reference(key, o, seed):
    torch.manual_seed(seed)
    net = UNet(o)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:  # GroupNorm affine: away from the identity 1, 0
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    net.eval()
    B = 4
    x = torch.randn(B, o["in_channels"], o["image_size"], o["image_size"])
    t = torch.tensor([0, 17, 500, 999])
    t2 = torch.tensor([1, 400, 250, 998])
    out = {f"{key}.model.{cpp_name(n)}": v for n, v in net.state_dict().items()}
    out.update({f"{key}.x": x, f"{key}.t": t, f"{key}.t2": t2})
    with torch.no_grad():
        if o["num_classes"]:
            K = o["num_classes"]
            labels = torch.tensor([0, 2, K, 1])  # K: the null class, passed explicitly
            labels2 = torch.tensor([1, 0, 2, K])
            out.update({f"{key}.labels": labels, f"{key}.labels2": labels2,
                        f"{key}.out": net(x, t, labels),
                        f"{key}.out_null": net(x, t, torch.full((B,), K)),
                        f"{key}.out_t2": net(x, t2, labels),
                        f"{key}.out_labels2": net(x, t, labels2)})
        else:
            out.update({f"{key}.out": net(x, t), f"{key}.out_t2": net(x, t2)})
    meta = {f"{key}.options": json.dumps(o),
            f"{key}.parameters": str(sum(p.numel() for p in net.parameters()))}
    for name in ("out", "out_null", "out_t2", "out_labels2"):
        if f"{key}.{name}" in out:
            v = out[f"{key}.{name}"]
            print(f"{key}.{name}: max |y| {v.abs().max():.4f}, mean |y| {v.abs().mean():.4f}")
    print(f"{key}: {meta[key + '.parameters']} parameters")
    return out, meta


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data",
                                                 "unet_reference.safetensors"))
    a = p.parse_args()
    torch.set_num_threads(2)
    tensors, meta = {}, {"generator": "tools/reference/unet_reference.py",
                         "torch": torch.__version__}
    for seed, (key, o) in enumerate(CONFIGS.items()):
        t, m = reference(key, o, seed)
        tensors.update(t)
        meta.update(m)
    write_safetensors(a.out, tensors, meta)
    print(f"wrote {os.path.normpath(a.out)} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
