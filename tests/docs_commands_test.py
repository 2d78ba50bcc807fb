#!/usr/bin/env python3
"""Runs the shell command blocks of README.md and docs/*.md, literally and in order.

    python3 tests/docs_commands_test.py SOURCE_DIR BINARY [--keep] [--page NAME] [--list]

Every ```sh block (also ```bash, ```shell) of README.md runs, top to bottom, with `bash -e -o
pipefail` in a fresh folder that holds what a fresh clone's root would offer the commands:
build/diffuse (a symlink to BINARY) and a copy of configs/. Then each page of docs/*.md runs
its blocks in a copy of the folder the README left behind (runs/signals, runs/fmnist-base,
s/, in.png, …), as if its reader had followed the README first; a page holding the marker
`<!-- docs-test: fresh -->` starts in a fresh folder instead. The environment has
DIFFUSE_QUICK=1, which makes diffuse train 2 steps and sample with 3 steps and at most 16
samples (docs/cli.md#quick-mode), so the whole run takes minutes; the commands are not
changed.

A block that must not run (make demo, a one-hour preset, sudo, a second machine) carries the
marker `<!-- docs-test: skip REASON -->` on a line of its own before it. The reason is
required and is printed; there is no other way to leave a block out. A page stops at its
first failing block; a failing README stops the docs pages (they start from its folder).
Exit status 0 when every block that runs succeeds, 1 otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SHELL_FENCES = {"sh", "bash", "shell"}
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")  # a line of its own


class Block:
    def __init__(self, page, line, text, skip):
        self.page, self.line, self.text, self.skip = page, line, text, skip

    def where(self):
        return f"{self.page}:{self.line}"


def parse_page(path, name):
    """The shell blocks of one markdown page and whether it starts fresh; errors on bad markers."""
    blocks, fresh, pending, errors = [], False, None, []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            d = m.group(1)
            if d == "fresh":
                fresh = True
            elif d == "skip" or d.startswith("skip "):
                reason = d[4:].strip(" :—-")
                if not reason:
                    errors.append(f"{name}:{i + 1}: a skip marker needs a reason: <!-- docs-test: skip REASON -->")
                pending = (i + 1, reason)
            else:
                errors.append(f"{name}:{i + 1}: unknown marker '{d}' (valid: skip REASON, fresh)")
        fence = re.match(r"^(\s*)```(\S*)", line)
        if fence:
            lang, start = fence.group(2), i + 1
            body = []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                errors.append(f"{name}:{start}: unclosed code fence")
            if lang in SHELL_FENCES:
                blocks.append(Block(name, start, "\n".join(body) + "\n", pending[1] if pending else None))
            elif pending:
                errors.append(f"{name}:{pending[0]}: a skip marker before a ```{lang} block, which never runs")
            pending = None
        i += 1
    if pending:
        errors.append(f"{name}:{pending[0]}: a skip marker with no shell block after it")
    return blocks, fresh, errors


def fresh_folder(root, name, source, binary):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "build"))
    os.symlink(os.path.abspath(binary), os.path.join(d, "build", "diffuse"))
    shutil.copytree(os.path.join(source, "configs"), os.path.join(d, "configs"))
    return d


def run_blocks(blocks, cwd, env):
    """Runs the page's blocks in cwd; returns (ran, failed block or None)."""
    ran = 0
    for b in blocks:
        if b.skip:
            print(f"--- {b.where()}: skipped: {b.skip}", flush=True)
            continue
        print(f"--- {b.where()} in {cwd}\n{b.text.rstrip()}", flush=True)
        t0 = time.time()
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b.text], cwd=cwd, env=env,
                           stdin=subprocess.DEVNULL)
        ran += 1
        print(f"--- {b.where()}: exit {r.returncode}, {time.time() - t0:.1f} s", flush=True)
        if r.returncode != 0:
            return ran, b
    return ran, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="the source tree (README.md, docs/, configs/)")
    ap.add_argument("binary", help="the diffuse binary")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed), e.g. to look at a failure")
    ap.add_argument("--page", action="append", default=[],
                    help="run only these docs pages (e.g. samplers.md; the README always runs)")
    ap.add_argument("--list", action="store_true", help="print the blocks and skips, run nothing")
    a = ap.parse_args()

    pages = [("README.md", os.path.join(a.source, "README.md"))]
    docs = os.path.join(a.source, "docs")
    pages += [(f"docs/{f}", os.path.join(docs, f)) for f in sorted(os.listdir(docs)) if f.endswith(".md")]
    parsed, errors = [], []
    for name, path in pages:
        blocks, fresh, errs = parse_page(path, name)
        errors += errs
        parsed.append((name, blocks, fresh))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    skips = [b for _, blocks, _ in parsed for b in blocks if b.skip]
    total = sum(len(blocks) for _, blocks, _ in parsed)
    if a.list:
        for name, blocks, fresh in parsed:
            for b in blocks:
                state = f"skip: {b.skip}" if b.skip else ("runs (fresh folder)" if fresh else "runs")
                print(f"{b.where():28} {state}")
        return 0

    env = dict(os.environ, DIFFUSE_QUICK="1")
    root = tempfile.mkdtemp(prefix="diffuse-docs-")
    t0 = time.time()
    failures, ran = [], 0
    try:
        readme = fresh_folder(root, "README", a.source, a.binary)
        n, bad = run_blocks(parsed[0][1], readme, env)
        ran += n
        if bad:
            failures.append(bad)
        else:
            for name, blocks, fresh in parsed[1:]:
                if a.page and os.path.basename(name) not in a.page:
                    continue
                runnable = [b for b in blocks if not b.skip]
                if not blocks:
                    continue
                folder = name.replace("/", "_")
                if not runnable:
                    cwd = root
                elif fresh:
                    cwd = fresh_folder(root, folder, a.source, a.binary)
                else:
                    cwd = os.path.join(root, folder)
                    shutil.copytree(readme, cwd, symlinks=True)
                n, bad = run_blocks(blocks, cwd, env)
                ran += n
                if bad:
                    failures.append(bad)
    finally:
        if a.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n{ran} blocks ran, {len(skips)} of {total} skipped, {time.time() - t0:.0f} s")
    for b in skips:
        print(f"  skipped {b.where()}: {b.skip}")
    if failures:
        for b in failures:
            print(f"FAILED {b.where()}:\n{b.text.rstrip()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
