#!/usr/bin/python3
"""Writes tests/data/gradient.jpg (12 wide, 9 high, RGB, quality 95) and prints the pixels
that Pillow (libjpeg) decodes at a few places, the reference values of tests/image_test.cpp."""
import sys

from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/gradient.jpg"
img = Image.new("RGB", (12, 9))
for y in range(9):
    for x in range(12):
        img.putpixel((x, y), (x * 20, y * 25, 128))
img.save(out, quality=95, subsampling=0)
back = Image.open(out).convert("RGB")
for x, y in [(0, 0), (11, 0), (0, 8), (6, 4), (11, 8)]:
    print((x, y), back.getpixel((x, y)))
