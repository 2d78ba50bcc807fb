#!/usr/bin/env python3
"""Whole-file checks for tests/crash_consistency.sh and tests/disk_full.sh, with the standard
library only: a file under its real name is never empty, cut short or half written.

  run_folder_check.py run RUN_DIR    the files of a run folder (config.json, checkpoint.safetensors,
                                     log.csv, loss.png; PATH.tmp-PID leftovers are skipped): prints
                                     "CKPT_STEP LOG_LAST_STEP" (- when absent)
  run_folder_check.py files PATH...  each file whole by its type (.json, .csv, .png, .safetensors);
                                     a folder: every file in it but PATH.tmp-PID leftovers

Problems go to stderr, one a line, and the exit status is 1.
"""
import json
import os
import re
import struct
import sys
import zlib

TMP = re.compile(r"\.tmp-\d+$")
LOG_HEADER = "step,loss,lr,grad_norm,it_per_s,elapsed_s"


def check_safetensors(p):
    """→ its metadata; raises when the header or the data are cut or inconsistent."""
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{size} bytes: shorter than the 8-byte header length")
        n = struct.unpack("<Q", head)[0]
        if n > size - 8:
            raise ValueError(f"header length {n} beyond the file's {size} bytes")
        h = json.loads(f.read(n))
    meta = h.pop("__metadata__", {})
    pos = 0
    for a, b in sorted(tuple(v["data_offsets"]) for v in h.values()):
        if a != pos:
            raise ValueError(f"tensor data not contiguous at byte {a} (expected {pos})")
        pos = b
    if 8 + n + pos != size:
        raise ValueError(f"{size} bytes, the header says {8 + n + pos} (cut short or extra data)")
    return meta


def check_png(p):
    d = open(p, "rb").read()
    if d[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, last = 8, None
    while pos < len(d):
        if pos + 12 > len(d):
            raise ValueError(f"chunk cut at byte {pos} of {len(d)}")
        ln, kind = struct.unpack(">I4s", d[pos:pos + 8])
        if pos + 12 + ln > len(d):
            raise ValueError(f"{kind.decode(errors='replace')} chunk cut at byte {len(d)}")
        body = d[pos + 8:pos + 8 + ln]
        if struct.unpack(">I", d[pos + 8 + ln:pos + 12 + ln])[0] != zlib.crc32(kind + body):
            raise ValueError(f"bad CRC of the {kind.decode(errors='replace')} chunk")
        last = kind
        pos += 12 + ln
    if last != b"IEND":
        raise ValueError(f"{len(d)} bytes and no IEND chunk at the end (cut short)")


def csv_lines(p):
    text = open(p).read()
    if not text.endswith("\n"):
        raise ValueError("last line incomplete (no newline at the end)")
    lines = text[:-1].split("\n")
    commas = lines[0].count(",")
    for i, line in enumerate(lines, 1):
        if line.count(",") != commas:
            raise ValueError(f"line {i} has {line.count(',')} commas, line 1 {commas}: {line!r}")
    return lines


def check_log(p):
    """→ the last step logged, or None."""
    lines = csv_lines(p)
    if lines[0] != LOG_HEADER:
        raise ValueError(f"header is {lines[0]!r}")
    prev = None
    for i, line in enumerate(lines[1:], 2):
        fields = line.split(",")
        [float(x) for x in fields]
        if prev is not None and int(fields[0]) <= prev:
            raise ValueError(f"line {i}: step {fields[0]} after step {prev}")
        prev = int(fields[0])
    return prev


def check_file(p):
    if os.path.getsize(p) == 0:
        raise ValueError("empty")
    if p.endswith(".safetensors"):
        check_safetensors(p)
    elif p.endswith(".png"):
        check_png(p)
    elif p.endswith(".json"):
        with open(p) as f:
            json.load(f)
    elif os.path.basename(p) == "log.csv":
        check_log(p)
    elif p.endswith(".csv"):
        csv_lines(p)


def main(argv):
    problems = []
    if len(argv) >= 2 and argv[0] == "run":
        run = argv[1]
        ckpt_step, log_last = "-", "-"
        for n in sorted(os.listdir(run)) if os.path.isdir(run) else []:
            p = os.path.join(run, n)
            if TMP.search(n) or os.path.isdir(p):
                continue
            if n not in ("config.json", "checkpoint.safetensors", "log.csv", "loss.png"):
                problems.append(f"unexpected file {n}")
                continue
            try:
                check_file(p)
                if n == "checkpoint.safetensors":
                    ckpt_step = check_safetensors(p)["step"]
                elif n == "log.csv":
                    last = check_log(p)
                    log_last = "-" if last is None else str(last)
            except Exception as e:
                problems.append(f"{n}: {e}")
        print(ckpt_step, log_last)
    elif len(argv) >= 2 and argv[0] == "files":
        paths = []
        for a in argv[1:]:
            if os.path.isdir(a):
                paths += [os.path.join(r, f) for r, _, fs in os.walk(a) for f in sorted(fs) if not TMP.search(f)]
            else:
                paths.append(a)
        for p in paths:
            try:
                check_file(p)
            except Exception as e:
                problems.append(f"{p}: {e}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
