#!/usr/bin/env python3
"""The files tests/cli_test.sh writes and checks (PNG, IDX, safetensors metadata), read and
written with the standard library only (zlib, gzip, struct, json), so that the tests look at
diffuse's output without diffuse. tools/reference/fd_pipeline.py imports it too.

  testfiles.py inputs IDX_DIR OUT N    fixed eval-fd inputs from the first N Fashion-MNIST test
                                       images: OUT/real (28×28 gray, as they are), OUT/rgb (56×56
                                       RGB, tinted), OUT/noisy (uniform noise ±80), OUT/blur (3×3 box)
  testfiles.py diff A.png B.png [x,y,w,h]
                                       "mean_abs max_abs" pixel difference (same shape); with a box:
                                       "mean_abs_inside max_abs_outside"
  testfiles.py tiny-idx IDX_DIR OUT NTRAIN NTEST
                                       uncompressed IDX files holding the first images of each split
  testfiles.py meta FILE.safetensors KEY
                                       a metadata value of a safetensors file
"""
import gzip
import json
import struct
import sys
import zlib
from pathlib import Path


def read_idx(path):
    """An IDX file (gzip or not) → (dims, bytes)."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def fashion_mnist_test(idx_dir, n):
    """The first n test images as lists of 28 rows of 28 ints."""
    base = Path(idx_dir) / "t10k-images-idx3-ubyte"
    dims, px = read_idx(base.with_suffix(".gz") if base.with_suffix(".gz").exists() else base)
    assert dims[1:] == (28, 28), dims
    return [[list(px[(k * 28 + r) * 28:(k * 28 + r + 1) * 28]) for r in range(28)] for k in range(n)]


def write_png(path, rows, channels):
    """rows: H lists of W·channels ints in [0, 255]; 8-bit gray (1) or RGB (3), filter 0."""
    h, w = len(rows), len(rows[0]) // channels
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) +
                           chunk(b"IEND", b""))


def read_png(path):
    """8-bit non-interlaced PNG (gray, gray+alpha, RGB, RGBA) → (W, H, channels, flat list of ints)."""
    return read_png_bytes(Path(path).read_bytes(), path)


def read_png_bytes(data, path="PNG"):
    """read_png of a PNG file's bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, f"{path}: depth {depth}, interlace {interlace}"
            ch = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), w * ch, [], [0] * (w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, ch, out


def tint(g):
    """Gray value → RGB whose channels all differ (luma 0.9245·g): R = 0.9g, G = g, B = 0.6g."""
    return [(9 * g + 5) // 10, g, (6 * g + 5) // 10]


def variants(img, k):
    """The four eval-fd inputs of one 28×28 image (k: its index, seeds the noise)."""
    rgb = []
    for r in img:
        line = [v for g in r for _ in range(2) for v in tint(g)]  # nearest 2× upsampling
        rgb += [line, list(line)]
    state = 12345 + 7919 * k  # a 32-bit LCG (Numerical Recipes), so any language can redo it
    noisy = []
    for r in img:
        line = []
        for g in r:
            state = (1664525 * state + 1013904223) % 2**32
            line.append(min(255, max(0, g + (state >> 24) * 160 // 255 - 80)))
        noisy.append(line)
    blur = [[sum(img[min(27, max(0, y + dy))][min(27, max(0, x + dx))] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) // 9
             for x in range(28)] for y in range(28)]
    return {"real": (img, 1), "rgb": (rgb, 3), "noisy": (noisy, 1), "blur": (blur, 1)}


def main(argv):
    if argv[0] == "inputs":
        idx_dir, out, n = argv[1], Path(argv[2]), int(argv[3])
        for k, img in enumerate(fashion_mnist_test(idx_dir, n)):
            for name, (rows, ch) in variants(img, k).items():
                (out / name).mkdir(parents=True, exist_ok=True)
                write_png(out / name / f"{k:05d}.png", rows, ch)
    elif argv[0] == "diff":
        a, b = read_png(argv[1]), read_png(argv[2])
        assert a[:3] == b[:3], f"shapes differ: {a[:3]} vs {b[:3]}"
        w, ch = a[0], a[2]
        d = [abs(x - y) for x, y in zip(a[3], b[3])]
        if len(argv) < 4:
            print(f"{sum(d) / len(d):.4f} {max(d)}")
            return
        bx, by, bw, bh = map(int, argv[3].split(","))
        box = [bx <= (i // ch) % w < bx + bw and by <= (i // ch) // w < by + bh for i in range(len(d))]
        inside = [v for v, m in zip(d, box) if m]
        print(f"{sum(inside) / len(inside):.4f} {max([v for v, m in zip(d, box) if not m], default=0)}")
    elif argv[0] == "meta":
        data = Path(argv[1]).read_bytes()
        n = struct.unpack("<Q", data[:8])[0]
        print(json.loads(data[8:8 + n])["__metadata__"][argv[2]])
    elif argv[0] == "tiny-idx":
        idx_dir, out = Path(argv[1]), Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", int(argv[3])), ("t10k", int(argv[4]))):
            for kind, per in (("images-idx3-ubyte", 784), ("labels-idx1-ubyte", 1)):
                name = f"{split}-{kind}"
                dims, body = read_idx(idx_dir / (name + ".gz"))
                head = struct.pack(">BBBB", 0, 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), n, *dims[1:])
                (out / name).write_bytes(head + body[:n * per])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
