#!/usr/bin/env python3
"""Reference values for tests/emoji_test.cpp, computed without FreeType.

Reads NotoColorEmoji.ttf by hand (table directory, cmap format 12, GSUB ligature
lookups, CBLC index, CBDT PNG), decodes the glyph PNGs with zlib + numpy (straight,
i.e. not premultiplied, RGBA), composites onto a background in float64
(out = c·α/255 + bg·(1 − α/255)), crops the centre 128 columns of the 136×128 bitmap
and averages S×S blocks (S divides 128), rounding once at the end. Also counts the
emoji of each Unicode group in emoji-test.txt that the font reaches and the FNV-1a
split, independently of src/data/emoji.cpp.

Needs only Debian's python3-numpy, fonts-noto-color-emoji and unicode-data:
    /usr/bin/python3 tools/reference/emoji_pixels.py [--all-chroma]
prints the C++ initialisers that tests/emoji_test.cpp holds.
"""
import struct
import sys
import zlib

import numpy as np

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
GROUPS = ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
          "Activities", "Objects", "Symbols", "Flags"]

data = open(FONT, "rb").read()
u8 = lambda o: data[o]
u16 = lambda o: struct.unpack(">H", data[o:o + 2])[0]
u32 = lambda o: struct.unpack(">I", data[o:o + 4])[0]
tables = {data[12 + 16 * i:16 + 16 * i].decode(): u32(12 + 16 * i + 8) for i in range(u16(4))}


def read_cmap():
    """Unicode → glyph id from the format-12 subtable (platform 3, encoding 10)."""
    c = tables["cmap"]
    for i in range(u16(c + 2)):
        pid, eid, off = u16(c + 4 + 8 * i), u16(c + 6 + 8 * i), u32(c + 8 + 8 * i)
        st = c + off
        if (pid, eid) == (3, 10) and u16(st) == 12:
            m = {}
            for k in range(u32(st + 12)):
                a, b, g = u32(st + 16 + 12 * k), u32(st + 20 + 12 * k), u32(st + 24 + 12 * k)
                for cp in range(a, b + 1):
                    m[cp] = g + cp - a
            return m
    raise SystemExit("no cmap format 12")


def read_ligatures():
    """GSUB lookup type 4 (format 1): tuple of component glyphs → ligature glyph."""
    g = tables["GSUB"]
    lookups = g + u16(g + 8)
    ligs = {}
    for li in range(u16(lookups)):
        lk = lookups + u16(lookups + 2 + 2 * li)
        if u16(lk) != 4:
            continue
        for s in range(u16(lk + 4)):
            st = lk + u16(lk + 6 + 2 * s)
            cov = st + u16(st + 2)
            if u16(cov) == 1:
                first = [u16(cov + 4 + 2 * i) for i in range(u16(cov + 2))]
            else:
                first = {}
                for i in range(u16(cov + 2)):
                    a, b, idx = u16(cov + 4 + 6 * i), u16(cov + 6 + 6 * i), u16(cov + 8 + 6 * i)
                    for gl in range(a, b + 1):
                        first[idx + gl - a] = gl
                first = [first[i] for i in range(len(first))]
            for k in range(u16(st + 4)):
                ls = st + u16(st + 6 + 2 * k)
                for j in range(u16(ls)):
                    lg = ls + u16(ls + 2 + 2 * j)
                    comps = (first[k],) + tuple(u16(lg + 4 + 2 * m) for m in range(u16(lg + 2) - 1))
                    ligs.setdefault(comps, u16(lg))
    return ligs


def glyph_png(gid):
    """The PNG bytes of glyph gid from CBLC/CBDT (index formats 1, 3, 4; image formats 17, 18, 19)."""
    cblc, cbdt = tables["CBLC"], tables["CBDT"]
    for s in range(u32(cblc + 4)):
        rec = cblc + 8 + 48 * s
        arr = cblc + u32(rec)
        for i in range(u32(rec + 8)):
            first, last, add = u16(arr + 8 * i), u16(arr + 8 * i + 2), u32(arr + 8 * i + 4)
            if not first <= gid <= last:
                continue
            sub = arr + add
            fmt, img_fmt, img_off = u16(sub), u16(sub + 2), u32(sub + 4)
            if fmt == 1:
                off = u32(sub + 8 + 4 * (gid - first))
            elif fmt == 3:
                off = u16(sub + 8 + 2 * (gid - first))
            elif fmt == 4:
                n = u32(sub + 8)
                pairs = {u16(sub + 12 + 4 * k): u16(sub + 14 + 4 * k) for k in range(n + 1)}
                off = pairs[gid]
            else:
                raise SystemExit(f"index format {fmt} not handled")
            at = cbdt + img_off + off
            if img_fmt == 17:
                at += 5
            elif img_fmt == 18:
                at += 8
            elif img_fmt != 19:
                raise SystemExit(f"image format {img_fmt} not handled")
            return data[at + 4:at + 4 + u32(at)]
    raise SystemExit(f"glyph {gid} has no bitmap")


def decode_png(png):
    """PNG → (H, W, 4) straight RGBA uint8 (8-bit, or palette of 1–8 bits; not interlaced)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, plte, trns = 8, b"", None, None
    while pos < len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0
        elif kind == b"PLTE":
            plte = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = np.frombuffer(body, np.uint8)
        elif kind == b"IDAT":
            idat += body
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = depth * channels
    bpp = max(1, bits // 8)
    stride = (w * bits + 7) // 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), np.int32)
    for y in range(h):  # unfilter: None, Sub, Up, Average, Paeth
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(stride, np.int32)
        if f == 0:
            out[y] = line
            continue
        if f == 2:
            out[y] = (line + prev) & 255
            continue
        if f == 1 and stride % bpp == 0:  # Sub: running sum per byte of a pixel, mod 256
            out[y] = np.cumsum(line.reshape(-1, bpp), axis=0).ravel() & 255
            continue
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 0: pred = 0
            elif f == 1: pred = a
            elif f == 2: pred = b
            elif f == 3: pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + pred) & 255
        out[y] = cur
    if depth < 8:
        assert ctype == 3
        bitsarr = np.unpackbits(out.astype(np.uint8), axis=1).reshape(h, -1, depth)
        idx = (bitsarr * (1 << np.arange(depth - 1, -1, -1))).sum(-1)[:, :w]
    else:
        assert depth == 8
        idx = out.reshape(h, w, channels)
        if ctype == 3:
            idx = idx[..., 0]
    rgba = np.zeros((h, w, 4), np.uint8)
    if ctype == 3:
        rgba[..., :3] = plte[idx]
        alpha = np.full(256, 255, np.uint8)
        if trns is not None:
            alpha[:len(trns)] = trns
        rgba[..., 3] = alpha[idx]
    elif ctype == 6:
        rgba[:] = idx
    elif ctype == 2:
        rgba[..., :3] = idx
        rgba[..., 3] = 255
    elif ctype == 0:
        rgba[..., :3] = idx
        rgba[..., 3] = 255
    else:
        rgba[..., :3] = idx[..., :1]
        rgba[..., 3] = idx[..., 1]
    return rgba


def render(gid, size, bg):
    """(3, size, size) float64 before rounding, and the α-weighted mean chroma."""
    rgba = decode_png(glyph_png(gid)).astype(np.float64)
    assert rgba.shape[:2] == (128, 136), rgba.shape
    rgba = rgba[:, 4:132]
    a = rgba[..., 3:] / 255
    comp = rgba[..., :3] * a + np.array(bg, np.float64) * (1 - a)
    k = 128 // size
    img = comp.reshape(size, k, size, k, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    c = rgba[..., :3]
    chroma = float((a[..., 0] * (c.max(-1) - c.min(-1))).sum() / a.sum())
    return img, chroma


def fnv1a(key):
    h = 14695981039346656037
    for ch in key.encode():
        h = ((h ^ ch) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def emoji_list(cmap, ligs):
    """[(sequence text, group index, glyph, in test split)] for the glyphs the font reaches."""
    out, seen, group = [], set(), None
    for line in open(EMOJI_TEST, encoding="utf-8"):
        if line.startswith("# group:"):
            name = line[8:].strip()
            group = GROUPS.index(name) if name in GROUPS else None
            continue
        if group is None or not line.strip() or line.startswith("#"):
            continue
        cps, rest = line.split(";", 1)
        if rest.split("#")[0].strip() != "fully-qualified":
            continue
        seq = [x for x in cps.split() if x != "FE0F"]
        gids = [cmap.get(int(x, 16)) for x in seq]
        if None in gids:
            continue
        gid = gids[0] if len(gids) == 1 else ligs.get(tuple(gids))
        if gid is None or gid in seen:
            continue
        seen.add(gid)
        key = " ".join(x for x in seq if not 0x1F3FB <= int(x, 16) <= 0x1F3FF)
        out.append((" ".join(seq), group, gid, fnv1a(key) % 10 == 0))
    return out


def main():
    cmap, ligs = read_cmap(), read_ligatures()
    emoji = emoji_list(cmap, ligs)
    by_seq = {s: (g, gid, test) for s, g, gid, test in emoji}
    counts = [[0] * 9 for _ in range(2)]
    for _, g, _, test in emoji:
        counts[int(test)][g] += 1
    print("// per-class counts, train split:", counts[0], "sum", sum(counts[0]))
    print("// per-class counts, test split: ", counts[1], "sum", sum(counts[1]))
    toned = sum(1 for s, *_ in emoji if any(0x1F3FB <= int(x, 16) <= 0x1F3FF for x in s.split()))
    print("// sequences with a skin-tone modifier:", toned)
    for s in ["1F600", "1F436", "1F34E", "1F1EF 1F1F5", "1F1FA 1F1F2", "1F44B 1F3FB", "1F44B", "2764", "26AB", "1F5A4", "1F602"]:
        g, gid, test = by_seq[s]
        print(f'// {s}: group {GROUPS[g]}, glyph {gid}, {"test" if test else "train"}')

    print("\n// 32×32 on white: per-channel means and pixels (c, y, x)")
    for s in ["1F600", "1F436", "1F34E"]:
        img, chroma = render(by_seq[s][1], 32, (255, 255, 255))
        q = np.rint(img)
        mid = np.argwhere(((q >= 20) & (q <= 235)).all(axis=0))  # pixels neither background nor saturated
        picks = [mid[i * (len(mid) - 1) // 3] for i in range(4)]
        vals = ", ".join(f"{{{y}, {x}, {{{', '.join(str(int(q[c, y, x])) for c in range(3))}}}}}" for y, x in picks)
        means = ", ".join(f"{m:.3f}" for m in np.rint(img).mean(axis=(1, 2)))
        print(f'{{"{s}", {{{means}}}, {{{vals}}}, {chroma:.3f}}},')

    print("\n// 8×8 on black, 1F34E, channel-major")
    img, _ = render(by_seq["1F34E"][1], 8, (0, 0, 0))
    print(", ".join(str(int(v)) for v in np.rint(img).astype(int).ravel()))

    print("\n// 128×128 on #336699: edge pixels (64 <= α <= 192) of 1F602 (a test-split glyph)")
    rgba = decode_png(glyph_png(by_seq["1F602"][1]))[:, 4:132]
    img, _ = render(by_seq["1F602"][1], 128, (0x33, 0x66, 0x99))
    edge = np.argwhere((rgba[..., 3] >= 64) & (rgba[..., 3] <= 192))
    picks = [edge[i * (len(edge) - 1) // 4] for i in range(5)]
    for y, x in picks:
        rgb = ", ".join(str(int(np.rint(img[c, y, x]))) for c in range(3))
        print(f"{{{y}, {x}, {{{rgb}}}}},  // alpha {rgba[y, x, 3]}")

    for s in ["26AB", "1F5A4"]:
        _, chroma = render(by_seq[s][1], 32, (255, 255, 255))
        print(f"// chroma {s}: {chroma:.3f}")
    if "--all-chroma" in sys.argv:  # slow (pure-Python PNG filters): every glyph's chroma
        chromas = [render(gid, 8, (255, 255, 255))[1] for _, _, gid, _ in emoji]
        print(f"// chroma < 10: {sum(c < 10 for c in chromas)} of {len(chromas)}")
    print("// split membership, first 6 test and first 6 train sequences:")
    print("// test: ", [s for s, _, _, t in emoji if t][:6])
    print("// train:", [s for s, _, _, t in emoji if not t][:6])


if __name__ == "__main__":
    main()
