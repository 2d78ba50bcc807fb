#!/usr/bin/env python3
"""Inputs and checks for the RGB restoration block of tests/cli_test.sh, standard library only
(PNG reading and writing from testfiles.py beside this file).

  restore_png_check.py inputs DIR            DIR/train/*.png: 8 smooth 16×16 RGB images; DIR/truth.png
                                             (the first), DIR/gray.png (its luma, rounded), DIR/low.png
                                             (its 2×2 means, 8×8 RGB, rounded)
  restore_png_check.py colorize OUT GRAY     OUT is RGB of GRAY's size, coloured, and its luma
                                             0.299 R + 0.587 G + 0.114 B is GRAY's within 8-bit rounding
  restore_png_check.py upscale OUT LOW F     OUT is RGB of F × LOW's size, not LOW's nearest upsampling,
                                             and its F×F block means are LOW's within 8-bit rounding

ddnm makes A x̂ = y exactly before rounding; rounding each channel moves the luma (weights summing
to 1) or a block mean by at most 0.5. Pixels (blocks) with a channel at 0 or 255 may have been
clamped and are left out; at least a quarter must remain. Prints a summary; exits 1 on failure.
"""
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from testfiles import read_png, write_png  # noqa: E402

W = (0.299, 0.587, 0.114)
TOL = 0.5 + 1e-3  # rounding, plus float32 arithmetic


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def image(k, size=16):
    """Image k: smooth waves, a different phase per channel and image; rows of R, G, B ints."""
    return [[v for x in range(size) for v in (
        round(128 + 90 * math.sin(2 * math.pi * (x / size + k / 8))),
        round(128 + 90 * math.cos(2 * math.pi * (y / size + k / 5))),
        round(128 + 60 * math.sin(2 * math.pi * ((x + y) / (2 * size) + k / 3))))] for y in range(size)]


def pixels(path, want_channels):
    w, h, ch, flat = read_png(path)
    if ch != want_channels:
        fail(f"{path} has {ch} channels, want {want_channels}")
    return w, h, [[flat[(y * w + x) * ch:(y * w + x + 1) * ch] for x in range(w)] for y in range(h)]


def inputs(out):
    (out / "train").mkdir(parents=True, exist_ok=True)
    for k in range(8):
        write_png(out / "train" / f"{k}.png", image(k), 3)
    truth = image(0)
    write_png(out / "truth.png", truth, 3)
    write_png(out / "gray.png", [[round(sum(w * r[3 * x + c] for c, w in enumerate(W))) for x in range(16)] for r in truth], 1)
    write_png(out / "low.png", [[round(sum(truth[2 * y + dy][3 * (2 * x + dx) + c] for dy in (0, 1) for dx in (0, 1)) / 4)
                                 for x in range(8) for c in range(3)] for y in range(8)], 3)


def unclipped(values):
    return all(0 < v < 255 for v in values)


def colorize(out_path, gray_path):
    gw, gh, gray = pixels(gray_path, 1)
    w, h, rgb = pixels(out_path, 3)
    if (w, h) != (gw, gh):
        fail(f"{out_path} is {w}×{h}, the gray input {gw}×{gh}")
    chroma = sum(max(p) - min(p) for row in rgb for p in row) / (w * h)
    if chroma < 1:
        fail(f"{out_path} is gray (mean max − min over channels {chroma:.2f})")
    errs = [abs(sum(wc * v for wc, v in zip(W, rgb[y][x])) - gray[y][x][0])
            for y in range(h) for x in range(w) if unclipped(rgb[y][x])]
    if len(errs) < w * h // 4:
        fail(f"{out_path}: only {len(errs)} of {w * h} pixels unclipped")
    if max(errs) > TOL:
        fail(f"{out_path}: luma differs from the gray input by up to {max(errs):.3f} (rounding allows 0.5)")
    print(f"colorize: chroma {chroma:.1f}, luma error max {max(errs):.3f} over {len(errs)} unclipped pixels")


def upscale(out_path, low_path, f):
    lw, lh, low = pixels(low_path, 3)
    w, h, rgb = pixels(out_path, 3)
    if (w, h) != (f * lw, f * lh):
        fail(f"{out_path} is {w}×{h}, want {f * lw}×{f * lh}")
    change = sum(abs(rgb[y][x][c] - low[y // f][x // f][c]) for y in range(h) for x in range(w) for c in range(3))
    change /= 3 * w * h
    if change < 0.5:
        fail(f"{out_path} is the nearest upsampling of the input (mean change {change:.2f})")
    errs = []
    for by in range(lh):
        for bx in range(lw):
            for c in range(3):
                block = [rgb[f * by + dy][f * bx + dx][c] for dy in range(f) for dx in range(f)]
                if unclipped(block):
                    errs.append(abs(sum(block) / len(block) - low[by][bx][c]))
    if len(errs) < 3 * lw * lh // 4:
        fail(f"{out_path}: only {len(errs)} of {3 * lw * lh} blocks unclipped")
    if max(errs) > TOL:
        fail(f"{out_path}: block means differ from the input by up to {max(errs):.3f} (rounding allows 0.5)")
    print(f"upscale: mean change {change:.1f}, block mean error max {max(errs):.3f} over {len(errs)} unclipped blocks")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "inputs":
        inputs(Path(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "colorize":
        colorize(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "upscale":
        upscale(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
