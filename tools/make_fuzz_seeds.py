#!/usr/bin/env python3
"""Writes the synthetic seed inputs of fuzz/corpus/ (small valid files of each format, and a
few near-misses). Real files made by diffuse itself (a checkpoint, PNGs) are added by hand;
see docs/reliability.md. Run: python3 tools/make_fuzz_seeds.py fuzz/corpus"""
import gzip, json, os, struct, sys, zlib

root = sys.argv[1]
def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# safetensors: header length, JSON header, data
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if metadata: header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob
f32 = lambda *v: struct.pack("<%df" % len(v), *v)
put("safetensors", "two_tensors", safetensors({"a": ("F32", [2, 2], f32(1, 2, 3, 4)), "b": ("I64", [1], struct.pack("<q", 7))}))
put("safetensors", "dtypes", safetensors({"h": ("F16", [2], b"\x00\x3c\x00\x40"), "bf": ("BF16", [1], b"\x80\x3f"),
                                          "u": ("U8", [3], b"\x01\x02\x03"), "z": ("F64", [0], b""),
                                          "t": ("BOOL", [2], b"\x00\x01"), "i": ("I32", [1], b"\x05\x00\x00\x00")},
                                         {"format": "x"}))
put("safetensors", "bad_offsets", safetensors({"a": ("F32", [2], f32(1, 2))})[:-4])
put("safetensors", "huge_shape", safetensors({"a": ("F32", [1 << 40, 1 << 30], f32(1))}))
put("safetensors", "empty_header", struct.pack("<Q", 2) + b"{}")

# train configs
put("train_config", "minimal", json.dumps({"data": "signals", "steps": 10}))
put("train_config", "unet", json.dumps({"data": "fashion-mnist", "class_conditional": True,
    "schedule": {"kind": "cosine", "T": 100}, "unet": {"base_channels": 16, "channel_mult": [1, 2], "attention_resolutions": [7]},
    "loss": {"weighting": "min-snr", "min_snr_gamma": 5}, "prediction": "v", "precision": "bf16"}))
put("train_config", "bad_types", json.dumps({"steps": "many", "unet": {"channel_mult": 3}}))
put("train_config", "custom_schedule", json.dumps({"schedule": {"kind": "custom", "betas_file": "/nonexistent"}}))
put("train_config", "huge_T", json.dumps({"schedule": {"kind": "linear", "T": 10**12}}))

# IDX: magic 0 0 type ndim, big-endian dims, data
def idx(dims, data, t=8):
    return bytes([0, 0, t, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data
put("idx", "images_2x3x3", idx([2, 3, 3], bytes(range(18))))
put("idx", "labels_4", idx([4], bytes([0, 1, 9, 3])))
put("idx", "labels_4.gz", gzip.compress(idx([4], bytes([0, 1, 9, 3]))))
put("idx", "truncated", idx([100, 28, 28], bytes(10)))
put("idx", "float_type", idx([2], f32(1, 2), t=0x0D))

# PNG by hand: gray, RGB, palette, 16-bit, gray+alpha, interlaced
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
def png(w, h, depth, ctype, rows, extra=b"", interlace=0):
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
put("png", "gray4x4", png(4, 4, 8, 0, [bytes([i * 16 + j for j in range(4)]) for i in range(4)]))
put("png", "rgb3x2", png(3, 2, 8, 2, [bytes(range(9)), bytes(range(9, 18))]))
put("png", "palette2x2", png(2, 2, 8, 3, [b"\x00\x01", b"\x01\x00"], chunk(b"PLTE", b"\xff\x00\x00\x00\xff\x00") + chunk(b"tRNS", b"\x80")))
put("png", "gray16_2x1", png(2, 1, 16, 0, [b"\x12\x34\xab\xcd"]))
put("png", "gray_alpha", png(2, 1, 8, 4, [b"\x10\xff\x20\x80"]))
put("png", "rgba", png(1, 1, 8, 6, [b"\x01\x02\x03\x04"]))
put("png", "interlaced", png(3, 3, 8, 0, [b"\x01\x02\x03"] * 3, interlace=1))
put("png", "gray1bit", png(8, 1, 1, 0, [b"\xa5"]))
put("png", "huge_ihdr", png(1 << 20, 1 << 20, 8, 0, [b"\x00"]))

# CSV of vectors
put("csv", "header", "x,y\n1,2\n3.5,-4e2\n")
put("csv", "plain", "0.1, 0.2, 0.3\n0.4,0.5,0.6\n\n")
put("csv", "ragged", "1,2\n3\n")
put("csv", "nan", "1,nan\n")

# β files
put("betas", "three", "0.0001\n0.001\n0.02\n")
put("betas", "commas", "1e-4, 2e-4; 3e-4 # comment\n")
put("betas", "bad", "0.5\n1.5\n")
put("betas", "text", "beta\n")

# masks: h, w, mode byte, then spec text or PNG bytes
put("mask", "box", bytes([27, 27, 0]) + b"box:4,4,10,10")
put("mask", "half", bytes([15, 15, 0]) + b"half:left")
put("mask", "random", bytes([7, 9, 0]) + b"random:0.3")
put("mask", "png", bytes([3, 3, 1]) + png(4, 4, 8, 0, [b"\x00\xff\x00\xff"] * 4))
put("mask", "bad", bytes([3, 3, 0]) + b"box:1,2")

# names, one per line in the order of the target
put("names", "valid", "cosine\ndpm++2m\nbeta-tilde\ntrailing\nkarras\nv\nmin-snr\nbf16\nddnm\ncpu\nemoji:test:color\ntoy:swissroll\n")
put("names", "invalid", "cosin\nddpm2\nbeta\nleading\nexp\neps\nsimple\nfp16\nrepaint\ncuda:x\nfolder:\ntoy:\n")

# serve_request: a route byte ('0' jobs, '1' txt2img, '2' img2img) then the JSON body
import base64
def b64png(w, h, ctype, value):
    ch = 3 if ctype == 2 else 1
    return base64.b64encode(png(w, h, 8, ctype, [bytes([value] * (w * ch))] * h)).decode()
g28, m28, g14, c32 = b64png(28, 28, 0, 100), b64png(28, 28, 0, 255), b64png(14, 14, 0, 100), b64png(32, 32, 2, 100)
for name, (route, body) in {
    "generate": (0, {"model": "fmnist", "class": "sneaker", "sampler": "dpm++2m", "steps": 20, "guidance": 2, "seed": 42, "batch": 4}),
    "generate-karras": (0, {"model": "emoji", "sampler": "ddim", "eta": 0.5, "sigmas": "karras", "steps": 10, "clip": 0, "preview_every": 3}),
    "inpaint-png": (0, {"mode": "inpaint", "image": "data:image/png;base64," + g28, "mask": "data:image/png;base64," + m28, "method": "ddnm"}),
    "inpaint-box": (0, {"mode": "inpaint", "image": g28, "mask": "box:7,7,14,14", "method": "repaint", "steps": 50}),
    "upscale": (0, {"mode": "upscale", "image": g14, "factor": 2}),
    "colorize": (0, {"model": "emoji", "mode": "colorize", "image": c32, "method": "dps"}),
    "edit": (0, {"mode": "edit", "image": g28, "strength": 0.4, "class": 3}),
    "txt2img": (1, {"prompt": "bag", "seed": 7, "batch_size": 2, "n_iter": 2, "sampler_name": "DPM++ 2M Karras", "steps": 10,
                    "cfg_scale": 2, "width": 28, "height": 28, "negative_prompt": ""}),
    "txt2img-override": (1, {"override_settings": {"sd_model_checkpoint": "emoji [x]"}, "sampler_name": "Euler a", "scheduler": "Exponential"}),
    "img2img-mask": (2, {"init_images": [g28], "mask": m28, "denoising_strength": 0.6}),
    "img2img": (2, {"init_images": [g28], "denoising_strength": 0.5, "prompt": "3"}),
}.items():
    put("serve_request", name, bytes([48 + route]) + json.dumps(body).encode())
