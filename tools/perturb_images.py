#!/usr/bin/env python3
"""Perturbed copies of a folder of PNG images, to check that a Fréchet distance sees the damage
(docs/evaluation.md "Emoji", tests/cli_test.sh). Standard library only (PNG through
tests/testfiles.py), so any python3 runs it.

  perturb_images.py IN_DIR OUT_DIR KIND[,KIND…]

writes OUT_DIR/KIND/NAME.png for every IN_DIR/NAME.png (8-bit gray or RGB; alpha dropped;
noise:A writes OUT_DIR/noiseA):

  blur      3×3 box mean, edges repeated
  noise     uniform noise in ±32, noise:A in ±A (a 32-bit LCG seeded per image, clipped to 0 … 255)
  channels  RGB → GBR (each pixel's channels rotated: every non-gray colour changes)
  hue       hue turned by 90° (colorsys HSV; saturation and value kept)
  gray      ITU-R 601 luma, rounded, repeated in R, G and B
  flip      mirrored left–right
"""
import colorsys
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import testfiles  # noqa: E402

KINDS = ("blur", "noise", "channels", "hue", "gray", "flip")


def perturb(kind, w, h, ch, px, k, amp=32):
    """px: flat list of h·w·ch ints → the perturbed flat list (same layout)."""
    at = lambda x, y, c: px[(min(h - 1, max(0, y)) * w + min(w - 1, max(0, x))) * ch + c]  # noqa: E731
    if kind == "blur":
        return [sum(at(x + dx, y + dy, c) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) // 9
                for y in range(h) for x in range(w) for c in range(ch)]
    if kind == "noise":
        state, out = 12345 + 7919 * k, []
        for v in px:
            state = (1664525 * state + 1013904223) % 2**32
            out.append(min(255, max(0, v + (state >> 24) * 2 * amp // 255 - amp)))
        return out
    if kind == "flip":
        return [at(w - 1 - x, y, c) for y in range(h) for x in range(w) for c in range(ch)]
    if ch != 3:
        sys.exit(f"{kind} needs RGB images")
    out = []
    for i in range(0, len(px), 3):
        r, g, b = px[i:i + 3]
        if kind == "channels":
            out += [g, b, r]
        elif kind == "hue":
            hh, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
            out += [round(255 * t) for t in colorsys.hsv_to_rgb((hh + 0.25) % 1.0, s, v)]
        elif kind == "gray":
            y = round(0.299 * r + 0.587 * g + 0.114 * b)
            out += [y, y, y]
    return out


def main(argv):
    if len(argv) != 3 or any(k.split(":")[0] not in KINDS for k in argv[2].split(",")):
        sys.exit(__doc__)
    src, dst, kinds = Path(argv[0]), Path(argv[1]), argv[2].split(",")
    files = sorted(src.glob("*.png"))
    if not files:
        sys.exit(f"no PNG files in {src}")
    for kind in kinds:
        (dst / kind.replace(":", "")).mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(files):
        w, h, ch, px = testfiles.read_png(f)
        if ch in (2, 4):  # drop alpha
            px = [v for i, v in enumerate(px) if i % ch != ch - 1]
            ch -= 1
        for kind in kinds:
            name, _, amp = kind.partition(":")
            out = perturb(name, w, h, ch, px, k, int(amp or 32))
            rows = [out[y * w * ch:(y + 1) * w * ch] for y in range(h)]
            testfiles.write_png(dst / kind.replace(":", "") / f.name, rows, ch)


if __name__ == "__main__":
    main(sys.argv[1:])
