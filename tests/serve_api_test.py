#!/usr/bin/env python3
"""diffuse serve over loopback: every route of the native and the A1111 API, the errors, a full
queue, cancel mid-job, a client that disconnects, 8 concurrent clients, the API key.

  serve_api_test.py DIFFUSE_BIN WORKDIR [--train-only]

Trains two tiny runs into WORKDIR/runs (once; reused when present): "fmnist" (28×28 gray,
class-conditional, T = 200) and "rgb" (16×16 colour emoji, unconditional, T = 50), then starts
servers with --port 0 and talks to them with the standard library only. Images are checked
with tests/testfiles.py's PNG reader. Prints one line per check; exits 1 if any failed.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import testfiles  # noqa: E402

BIN, WORK = sys.argv[1], Path(sys.argv[2])
RUNS = WORK / "runs"
passed, failed = 0, []


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed.append(name)
        print(f"FAIL {name} {detail}")


def train_runs():
    RUNS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DIFFUSE_QUICK="0", OMP_NUM_THREADS="2")
    cfgs = {
        "fmnist": {"data": "fashion-mnist:test", "class_conditional": True,
                   "schedule": {"kind": "linear", "T": 200},
                   "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1,
                            "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
                   "steps": 4, "batch": 4, "log_every": 2, "sample_every": 0},
        "rgb": {"data": "emoji:test:color", "image_size": 16,
                "schedule": {"kind": "linear", "T": 50},
                "unet": {"base_channels": 8, "channel_mult": [1, 2], "blocks_per_level": 1,
                         "attention_resolutions": [], "head_channels": 8, "groups": 4, "dropout": 0},
                "steps": 4, "batch": 4, "log_every": 2, "sample_every": 0},
    }
    for name, cfg in cfgs.items():
        if (RUNS / name / "config.json").exists():
            continue
        (WORK / f"{name}.json").write_text(json.dumps(cfg))
        subprocess.run([BIN, "train", "--config", str(WORK / f"{name}.json"), "--out", str(RUNS / name)],
                       check=True, env=env, stdout=subprocess.DEVNULL)


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "serve", "--runs", str(RUNS), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, OMP_NUM_THREADS="2"))
        self.port = None
        for line in self.proc.stdout:
            if "listening on http://" in line:
                self.port = int(line.rsplit(":", 1)[1].strip().strip("/"))
                break
        if self.port is None:
            raise RuntimeError("the server did not start: " + self.proc.stderr.read())
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep draining

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, headers=None, raw=None, timeout=120):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, **kw):
        status, headers, data = self.request(method, path, body, **kw)
        try:
            return status, json.loads(data) if data.strip() else None
        except ValueError:
            return status, {"raw": data[:200]}

    def wait(self, job_id, timeout=120, states=("done", "failed", "cancelled")):
        end = time.time() + timeout
        while time.time() < end:
            _, j = self.json("GET", f"/diffuse/v1/jobs/{job_id}")
            if j["state"] in states:
                return j
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} not in {states} after {timeout} s")

    def stop(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed"
        return code


def png_of(data_uri_or_b64):
    b64 = data_uri_or_b64.split(",", 1)[1] if data_uri_or_b64.startswith("data:") else data_uri_or_b64
    return base64.b64decode(b64)


def data_uri(w, h, channels, value=lambda x, y, c: 128):
    rows = [[value(x, y, c) for x in range(w) for c in range(channels)] for y in range(h)]
    p = WORK / "tmp.png"
    testfiles.write_png(p, rows, channels)
    return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()


def error_field(status, body, want_status, field, text=""):
    e = (body or {}).get("error") or {}
    return status == want_status and (e.get("field") or "") == field and text in e.get("message", "") + e.get("hint", "")


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    train_runs()
    if "--train-only" in sys.argv:
        return 0
    s = Server("--queue", "16")
    try:
        run_checks(s)
    finally:
        code = s.stop()
        check("server stops cleanly on SIGTERM", code == 0, f"exit {code}")
    small = Server("--queue", "1", "--max-body", "1")
    try:
        limits(small)
    finally:
        small.stop()
    keyed = Server("--api-key", "s3cret")
    try:
        api_key(keyed)
    finally:
        keyed.stop()
    print(f"{passed} passed, {len(failed)} failed" + (": " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


def run_checks(s):
    # --- the page and the listings
    st, _, page = s.request("GET", "/")
    check("GET / serves the page", st == 200 and b"<html" in page.lower())
    st, h, js = s.request("GET", "/app.js")
    check("GET /app.js", st == 200 and "javascript" in h.get("Content-Type", ""))
    st, m = s.json("GET", "/diffuse/v1/models")
    names = [x["name"] for x in m["models"]]
    check("models lists both runs", st == 200 and names == ["fmnist", "rgb"], names)
    fm = m["models"][0]
    check("model fields", fm["channels"] == 1 and fm["image_size"] == 28 and fm["class_conditional"] and
          "sneaker" in fm["classes"] and fm["T"] == 200 and m["models"][1]["channels"] == 3, fm)
    st, sm = s.json("GET", "/diffuse/v1/samplers")
    check("samplers and modes", st == 200 and {"ddpm", "dpm++2m", "unipc"} <= {x["name"] for x in sm["samplers"]} and
          sm["modes"]["inpaint"][0] == "repaint" and sm["modes"]["edit"] == ["sdedit"], sm)

    # --- generate: ids, states, images with their seeds, same as `diffuse sample`
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "class": "sneaker", "guidance": 2, "seed": 123,
                                                "batch": 2, "sampler": "dpm++2m", "steps": 10})
    check("POST /jobs → 202 with an id", st == 202 and r["id"] and r["state"] == "queued", (st, r))
    j = s.wait(r["id"])
    check("job done with 2 images and their seeds", j["state"] == "done" and [i["seed"] for i in j["images"]] == [123, 124] and
          j["progress"]["step"] == 10 and j["params"]["class"] == "sneaker", j.get("error"))
    w, h, ch, _ = testfiles.read_png_bytes(png_of(j["images"][1]["png"]))
    check("images are 28×28 gray PNGs", (w, h, ch) == (28, 28, 1))
    st, hd, png = s.request("GET", j["images"][1]["url"])
    check("GET image URL", st == 200 and hd["Content-Type"] == "image/png" and png == png_of(j["images"][1]["png"]))
    out = WORK / "cli_sample"
    subprocess.run([BIN, "sample", "--run", str(RUNS / "fmnist"), "--seed", "124", "--n", "1", "--class", "sneaker",
                    "--guidance", "2", "--sampler", "dpm++2m", "--steps", "10", "--clip", "1", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, DIFFUSE_QUICK="0"))
    check("image k is `diffuse sample --seed SEED+k --n 1`", (out / "000000.png").read_bytes() == png)
    st, r2 = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "class": 7, "guidance": 2, "seed": 124, "steps": 10})
    j2 = s.wait(r2["id"])
    check("the seed of an image reproduces it", png_of(j2["images"][0]["png"]) == png)
    st, lst = s.json("GET", "/diffuse/v1/jobs")
    check("GET /jobs lists recent jobs without image data", st == 200 and lst["jobs"][0]["id"] == r2["id"] and
          "png" not in lst["jobs"][0]["images"][0])

    # --- events: progress with changing previews, then done
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "sampler": "ddpm", "steps": 200, "batch": 4,
                                                "preview_every": 20, "seed": 5})
    events, previews = [], []
    with urllib.request.urlopen(s.url(f"/diffuse/v1/jobs/{r['id']}/events"), timeout=120) as es:
        check("events content type", es.headers["Content-Type"].startswith("text/event-stream"))
        event = None
        for line in es:
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                d = json.loads(line[6:])
                events.append(event)
                if event == "progress" and "preview" in d:
                    previews.append(d["preview"])
                if event in ("done", "error"):
                    break
    check("events: progress … done", events.count("progress") >= 5 and events[-1] == "done", events[-3:])
    check("previews arrive and change", len(previews) >= 3 and len(set(previews)) >= 3, len(previews))
    with urllib.request.urlopen(s.url(f"/diffuse/v1/jobs/{r['id']}/events"), timeout=30) as es:
        body = es.read().decode()
    check("events of a finished job: its last event at once", "event: done" in body)

    # --- restorations
    img = j["images"][0]["png"]
    mask = data_uri(28, 28, 1, lambda x, y, c: 255 if 7 <= x < 21 and 7 <= y < 21 else 0)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "inpaint", "image": img, "mask": mask,
                                                "steps": 20, "seed": 1})
    ji = s.wait(r["id"]) if st == 202 else {"state": st, "error": r}
    ok = ji["state"] == "done"
    if ok:
        _, _, _, a = testfiles.read_png_bytes(png_of(img))
        _, _, _, b = testfiles.read_png_bytes(png_of(ji["images"][0]["png"]))
        keep = [i for i in range(28 * 28) if not (7 <= i % 28 < 21 and 7 <= i // 28 < 21)]
        ok = all(a[i] == b[i] for i in keep)
    check("inpaint (repaint) keeps the unmasked pixels", ok, ji.get("error"))
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "inpaint", "image": img, "mask": "half:left",
                                                "method": "ddnm", "sampler": "ddim", "steps": 10})
    check("inpaint with a mask spec and ddnm", st == 202 and s.wait(r["id"])["state"] == "done", r)
    low = data_uri(14, 14, 1, lambda x, y, c: (x * 17 + y * 5) % 256)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "upscale", "image": low, "factor": 2, "steps": 10})
    ju = s.wait(r["id"]) if st == 202 else {}
    check("upscale ×2: 14×14 → 28×28", ju.get("state") == "done" and
          testfiles.read_png_bytes(png_of(ju["images"][0]["png"]))[:2] == (28, 28), r)
    gray = data_uri(16, 16, 1, lambda x, y, c: x * 15)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "rgb", "mode": "colorize", "image": gray, "steps": 10})
    jc = s.wait(r["id"]) if st == 202 else {}
    check("colorize: gray 16×16 → RGB", jc.get("state") == "done" and
          testfiles.read_png_bytes(png_of(jc["images"][0]["png"]))[:3] == (16, 16, 3), r)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "inpaint", "image": img, "mask": "half:top",
                                                "steps": 10, "jump_length": 5, "resample": 2})
    jr = s.wait(r["id"]) if st == 202 else {}
    check("repaint's jump_length and resample (10 steps → 20 moves)", jr.get("state") == "done" and
          jr["progress"]["steps"] == 20, (st, r, jr.get("progress")))
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "sampler": "heun", "churn": 5, "sigmas": "karras",
                                                "steps": 5, "seed": 3})
    check("sampler options (heun, churn, karras)", st == 202 and s.wait(r["id"])["state"] == "done", r)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "upscale", "image": low, "method": "dps",
                                                "dps_scale": 0.5, "sigma_y": 0.05, "steps": 10})
    check("dps upscale with dps_scale and sigma_y", st == 202 and s.wait(r["id"])["state"] == "done", r)
    st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "mode": "edit", "image": img, "strength": 0.4,
                                                "steps": 20, "class": "bag"})
    check("edit (SDEdit)", st == 202 and s.wait(r["id"])["state"] == "done", r)

    # --- errors: a 4xx with a JSON error naming the field; the server survives
    st, _, body = s.request("POST", "/diffuse/v1/jobs", raw=b"{not json", headers={"Content-Type": "application/json"})
    check("malformed JSON → 400", st == 400 and b"not valid JSON" in body)
    bad = [
        ({"steps": "ten"}, "steps", "integer"),
        ({"steps": 100000}, "steps", "out of range"),
        ({"sampler": "plms"}, "sampler", "dpm++2m"),
        ({"model": "../etc"}, "model", "fmnist, rgb"),
        ({"stepz": 3}, "stepz", "valid fields"),
        ({"class": "sneakers"}, "class", "sneaker"),
        ({"class": 10}, "class", "0 … 9"),
        ({"model": "rgb", "class": 1}, "class", "not class-conditional"),
        ({"batch": 17}, "batch", "1 … 16"),
        ({"seed": -5}, "seed", "out of range"),
        ({"mode": "outpaint"}, "mode", "inpaint"),
        ({"mode": "inpaint", "image": img}, "mask", "needs a mask"),
        ({"mode": "inpaint", "image": img, "mask": "box:0,0,99,99"}, "mask", "leaves"),
        ({"mode": "inpaint", "image": img, "mask": "/etc/passwd"}, "mask", "not a PNG"),  # never opened as a file
        ({"mode": "inpaint", "image": "data:image/jpeg;base64,AAAA", "mask": "half:left"}, "image", "not a PNG"),
        ({"mode": "edit", "image": base64.b64encode(b"hello world, not a png").decode()}, "image", "not a PNG"),
        ({"mode": "edit", "image": low}, "image", "expected 28×28"),
        ({"mode": "upscale", "image": img}, "image", "expected 14×14"),
        ({"mode": "colorize", "image": img}, "mode", "RGB"),
        ({"mode": "inpaint", "image": img, "mask": "half:left", "method": "sdedit"}, "method", "repaint"),
        ({"mode": "inpaint", "image": img, "mask": "half:left", "sampler": "euler"}, "sampler", "ddpm"),
        ({"image": img}, "image", "generate takes no image"),
        ([1, 2], "", "JSON object"),
    ]
    for body, field, text in bad:
        st, r = s.json("POST", "/diffuse/v1/jobs", body)
        check(f"400 names '{field}' for {json.dumps(body)[:60]}", error_field(st, r, 400, field, text), (st, r))
    st, r = s.json("GET", "/diffuse/v1/jobs/999999")
    check("unknown job → 404", st == 404 and "no job" in r["error"]["message"])
    st, r = s.json("GET", "/nope")
    check("unknown route → 404 JSON", st == 404 and "no route" in r["error"]["message"])
    st, r = s.json("GET", "/diffuse/v1/models")
    check("still serving after the bad requests", st == 200)
    second = subprocess.run([BIN, "serve", "--runs", str(RUNS), "--port", str(s.port)], capture_output=True, text=True, timeout=60)
    check("a second server on the same port: an error, not a shared port", second.returncode == 1 and
          "cannot listen on 127.0.0.1:" in second.stderr, second.stderr[-200:])

    # --- cancel: a queued job at once, a running one within a step
    st, r1 = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "sampler": "ddpm", "steps": 200, "batch": 16})
    st, r2 = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "steps": 10})
    st, c2 = s.json("POST", f"/diffuse/v1/jobs/{r2['id']}/cancel")
    check("cancel a queued job: cancelled at once", c2["state"] == "cancelled", c2)
    s.wait(r1["id"], states=("running",))
    while s.json("GET", f"/diffuse/v1/jobs/{r1['id']}")[1]["progress"]["step"] < 2:
        time.sleep(0.02)
    t0 = time.time()
    s.json("POST", f"/diffuse/v1/jobs/{r1['id']}/cancel")
    jx = s.wait(r1["id"])
    check("cancel a running job: stops within a step", jx["state"] == "cancelled" and jx["progress"]["step"] < 200 and
          not jx["images"], (jx["state"], jx["progress"], time.time() - t0))

    # --- A1111 API
    st, samplers = s.json("GET", "/sdapi/v1/samplers")
    check("sdapi samplers", st == 200 and "Euler a" in [x["name"] for x in samplers])
    st, models = s.json("GET", "/sdapi/v1/sd-models")
    check("sdapi sd-models", st == 200 and [x["title"] for x in models] == ["fmnist", "rgb"])
    st, r = s.json("POST", "/sdapi/v1/txt2img", {"prompt": "sneaker", "negative_prompt": "", "seed": 7, "batch_size": 2,
                                                 "sampler_name": "DPM++ 2M", "steps": 10, "cfg_scale": 2,
                                                 "width": 28, "height": 28})
    info = json.loads(r.get("info", "{}")) if st == 200 else {}
    check("txt2img: images, all_seeds in info", st == 200 and len(r["images"]) == 2 and info.get("all_seeds") == [7, 8] and
          info.get("sd_model_name") == "fmnist", (st, str(r)[:200]))
    if st == 200:
        sn = {"model": "fmnist", "class": "sneaker", "guidance": 2, "seed": 8, "steps": 10, "sampler": "dpm++2m"}
        jn = s.wait(s.json("POST", "/diffuse/v1/jobs", sn)[1]["id"])
        check("txt2img seed 7+1 = native seed 8", base64.b64decode(r["images"][1]) == png_of(jn["images"][0]["png"]))
    st, r = s.json("POST", "/sdapi/v1/txt2img", {"prompt": "", "steps": 5, "override_settings": {"sd_model_checkpoint": "rgb"},
                                                 "sampler_name": "Euler a", "scheduler": "Karras", "cfg_scale": 7})
    check("txt2img on another model (override_settings), Euler a + Karras", st == 200 and
          testfiles.read_png_bytes(base64.b64decode(r["images"][0]))[:3] == (16, 16, 3), (st, str(r)[:200]))
    st, r = s.json("POST", "/sdapi/v1/txt2img", {"width": 512, "height": 512})
    check("txt2img width 512 → 400 naming width", error_field(st, r, 400, "width", "28×28"), r)
    st, r = s.json("POST", "/sdapi/v1/txt2img", {"sampler_name": "LMS"})
    check("txt2img unknown sampler → 400", error_field(st, r, 400, "sampler_name", "Euler a"), r)
    st, r = s.json("POST", "/sdapi/v1/img2img", {"init_images": [img.split(",")[1]], "denoising_strength": 0.5,
                                                 "steps": 10, "prompt": "bag"})
    check("img2img without mask (SDEdit)", st == 200 and len(r["images"]) == 1, (st, str(r)[:200]))
    st, r = s.json("POST", "/sdapi/v1/img2img", {"init_images": [img.split(",")[1]], "mask": mask.split(",")[1], "steps": 10})
    check("img2img with mask (inpaint)", st == 200 and len(r["images"]) == 1, (st, str(r)[:200]))
    st, r = s.json("POST", "/sdapi/v1/img2img", {"steps": 10})
    check("img2img without init_images → 400", error_field(st, r, 400, "init_images"), r)
    st, o = s.json("GET", "/sdapi/v1/options")
    check("sdapi options", st == 200 and o["sd_model_checkpoint"] == "fmnist")
    st, _ = s.json("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "rgb"})
    st2, r = s.json("POST", "/sdapi/v1/txt2img", {"steps": 3})
    st3, bad = s.json("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "sd15"})
    s.json("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "fmnist"})
    check("POST options switches the default model", st == 200 and st2 == 200 and
          json.loads(r["info"])["sd_model_name"] == "rgb" and error_field(st3, bad, 400, "sd_model_checkpoint", "rgb"),
          (st, st2, st3, str(bad)[:100]))
    # progress and interrupt while a synchronous txt2img runs in another thread
    res = {}
    t = threading.Thread(target=lambda: res.update(r=s.json("POST", "/sdapi/v1/txt2img",
                                                               {"sampler_name": "DDPM", "steps": 200, "batch_size": 16})))
    t.start()
    p = {}
    end = time.time() + 60
    while time.time() < end:
        _, p = s.json("GET", "/sdapi/v1/progress")
        if p["state"]["sampling_step"] >= 21 and p["current_image"]:
            break
        time.sleep(0.05)
    check("progress: step, steps, current_image", p["state"]["sampling_steps"] == 200 and 0 < p["progress"] < 1 and
          testfiles.read_png_bytes(base64.b64decode(p["current_image"]))[:2] == (28, 28), p.get("state"))
    st, _ = s.json("POST", "/sdapi/v1/interrupt")
    t.join(60)
    st, r = res.get("r", (0, {}))
    check("interrupt: the txt2img returns, interrupted", st == 200 and json.loads(r["info"])["interrupted"] is True and
          r["images"] == [], (st, str(r)[:200]))

    # --- a client that disconnects from a synchronous call cancels its job
    body = json.dumps({"sampler_name": "DDPM", "steps": 200, "batch_size": 16}).encode()
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(1.0)
    sock.close()
    _, lst = s.json("GET", "/diffuse/v1/jobs")
    jd = lst["jobs"][0]
    jd = s.wait(jd["id"], timeout=30)
    check("disconnect cancels the synchronous job", jd["state"] == "cancelled" and jd["progress"]["step"] < 200,
          (jd["state"], jd["progress"]))

    # --- 8 concurrent clients, both models, native and A1111
    results = [None] * 8

    def client(k):
        try:
            if k % 2 == 0:
                st, r = s.json("POST", "/sdapi/v1/txt2img", {"seed": k, "steps": 8, "batch_size": 2,
                                                            "override_settings": {"sd_model_checkpoint": ["fmnist", "rgb"][k % 4 // 2]}})
                results[k] = st == 200 and len(r["images"]) == 2
            else:
                st, r = s.json("POST", "/diffuse/v1/jobs", {"model": ["fmnist", "rgb"][k % 4 // 2], "seed": k, "steps": 8, "batch": 2})
                results[k] = st == 202 and s.wait(r["id"])["state"] == "done"
        except Exception as e:  # noqa: BLE001
            results[k] = repr(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    t0 = time.time()
    [t.start() for t in threads]
    [t.join(300) for t in threads]
    check(f"8 concurrent clients all finish ({time.time() - t0:.1f} s)", all(x is True for x in results), results)


def limits(s):
    # --queue 1: one running + one waiting; the next is 429
    ids = []
    for k in range(3):
        st, r = s.json("POST", "/diffuse/v1/jobs", {"model": "fmnist", "sampler": "ddpm", "steps": 200, "batch": 16})
        ids.append((st, r))
        if k == 0:
            s.wait(r["id"], states=("running",))
    check("queue full → 429 with Retry-After", [x[0] for x in ids] == [202, 202, 429] and "full" in ids[2][1]["error"]["message"],
          [x[0] for x in ids])
    for st, r in ids[:2]:
        s.json("POST", f"/diffuse/v1/jobs/{r['id']}/cancel")
    st, r = s.json("POST", "/diffuse/v1/jobs", raw=b'{"x": "' + b"a" * (2 << 20) + b'"}')
    check("body over --max-body → 413", st == 413 and "too large" in r["error"]["message"], (st, r))
    # a PNG bomb header (16000×16000) is refused from its header
    bomb = bytearray(base64.b64decode(data_uri(28, 28, 1).split(",")[1]))
    bomb[16:24] = (16000).to_bytes(4, "big") * 2
    import zlib
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    st, r = s.json("POST", "/diffuse/v1/jobs", {"mode": "edit", "image": base64.b64encode(bytes(bomb)).decode()})
    check("a 16000×16000 PNG header → 400 before decoding", error_field(st, r, 400, "image", "at most"), (st, r))


def api_key(s):
    st, r = s.json("GET", "/diffuse/v1/models")
    check("--api-key: no key → 401", st == 401 and r["error"]["field"] == "Authorization")
    st, r = s.json("GET", "/diffuse/v1/models", headers={"Authorization": "Bearer wrong"})
    check("--api-key: wrong key → 401", st == 401)
    st, r = s.json("GET", "/diffuse/v1/models", headers={"Authorization": "Bearer s3cret"})
    check("--api-key: bearer key → 200", st == 200)
    st, r = s.json("GET", "/sdapi/v1/sd-models?api_key=s3cret")
    check("--api-key: ?api_key → 200", st == 200)
    st, r = s.json("POST", "/sdapi/v1/txt2img", {"steps": 2})
    check("--api-key: sdapi without key → 401", st == 401)
    st, _, page = s.request("GET", "/")
    check("--api-key: the page itself loads (it holds no data)", st == 200)


if __name__ == "__main__":
    sys.exit(main())
