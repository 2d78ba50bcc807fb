#!/usr/bin/python3
"""Puts PNG pictures side by side on white, top-aligned, 16 px apart, into one PNG (RGB if any
input is RGB) — the comparison figures of the docs (e.g. VAE and DDPM samples, docs/vae.md).

  python3 tools/side_by_side.py OUT.png A.png B.png [C.png …]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from testfiles import read_png, write_png  # noqa: E402

GAP = 16


def as_rgb_rows(w, h, ch, px):
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            p = px[(y * w + x) * ch:(y * w + x + 1) * ch]
            if ch in (1, 2):  # gray (+ alpha, ignored)
                row += [p[0]] * 3
            else:  # RGB (+ alpha, ignored)
                row += p[:3]
        rows.append(row)
    return rows


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    pics = [read_png(p) for p in sys.argv[2:]]
    rgb = any(ch >= 3 for _, _, ch, _ in pics)
    height = max(h for _, h, _, _ in pics)
    width = sum(w for w, _, _, _ in pics) + GAP * (len(pics) - 1)
    out = [[255] * (width * 3) for _ in range(height)]
    x0 = 0
    for w, h, ch, px in pics:
        for y, row in enumerate(as_rgb_rows(w, h, ch, px)):
            out[y][x0 * 3:(x0 + w) * 3] = row
        x0 += w + GAP
    if not rgb:
        out = [row[0::3] for row in out]
    write_png(sys.argv[1], out, 3 if rgb else 1)


if __name__ == "__main__":
    main()
