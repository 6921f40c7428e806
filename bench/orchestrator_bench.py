#!/usr/bin/env python3
"""Orchestrator speed: per-job overhead, batch throughput, watch latency, memory over 1,000 jobs.

Starts its own ComfyUI with ``orchestrator.embedded.start_server`` (CPU) and compares, on that
same server in the same run:

1. one job, round trip: a bare client (websocket-client + a keep-alive requests session: POST
   /prompt, wait for ``executing node=null`` on the socket, GET /history, GET /view, bytes kept
   in memory) against ``run_workflow`` (our client: completion confirmed by /history, output
   verified, hashed and written atomically with fsync). Runs alternate so load drifts hit
   both. Target: ours <= 2x bare (median).
2. a 200-job batch: the bare client in a loop against ``BatchRunner`` (journal with fsync per
   state change, least-loaded pick, 4 in flight). Target: >= 90 % of the bare throughput.
3. watch: images dropped into a folder (written, then renamed into place) until the
   ``deployed`` event (PNG + .meta + manifest in the Bevy project). Target: p95 <= 300 ms.
4. memory: RSS after 100 and after 1,000 jobs through one client. Target: flat (within
   ``MEMORY_FLAT_MB``) and no subscription left open.

It exits 1, naming each, when a measured section misses its target.

The job is a tiny image workflow (LoadImage 16x16 -> ImageInvert -> SaveImage); each run gets a
new ``filename_prefix`` so ComfyUI really runs SaveImage and writes a file (no cache answer).

    python3 dev.py env  # or use .venv/bin/python
    .venv/bin/python bench/orchestrator_bench.py [--jobs 200] [--rounds 150] [--json out.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tiny_png(seed: int = 0) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG")
    return buf.getvalue()


def prompt(image_ref: str, prefix: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_ref}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


class BareClient:
    """What a script written from ComfyUI's websocket example does, with keep-alive HTTP."""

    def __init__(self, url: str):
        import requests
        import websocket

        self.url = url
        self.cid = uuid.uuid4().hex
        self.http = requests.Session()
        self.ws = websocket.create_connection(f"ws://{url.split('://', 1)[1]}/ws?clientId={self.cid}")

    def run(self, p: dict) -> list[bytes]:
        r = self.http.post(f"{self.url}/prompt", json={"prompt": p, "client_id": self.cid})
        pid = r.json()["prompt_id"]
        while True:
            msg = self.ws.recv()
            if isinstance(msg, str):
                m = json.loads(msg)
                if m["type"] == "executing" and m["data"].get("node") is None and m["data"].get("prompt_id") == pid:
                    break
        h = self.http.get(f"{self.url}/history/{pid}").json()[pid]
        out = []
        for node in h["outputs"].values():
            for img in node.get("images", []):
                out.append(self.http.get(f"{self.url}/view", params=img).content)
        return out

    def close(self):
        self.ws.close()
        self.http.close()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def bench_round_trip(url: str, ref: str, rounds: int, work: Path) -> dict:
    from orchestrator.client import ComfyClient
    from orchestrator.config import load_config
    from orchestrator.run import run_workflow

    bare = BareClient(url)
    ours = ComfyClient(url, load_config(servers=[url], environ={}))
    ours.events.wait_connected(5)
    tb, to = [], []
    for i in range(rounds + 10):
        t = time.perf_counter()
        bare.run(prompt(ref, f"bare{i}"))
        b = time.perf_counter() - t
        t = time.perf_counter()
        run_workflow(prompt(ref, f"ours{i}"), client=ours, out_dir=work / "rt")
        o = time.perf_counter() - t
        if i >= 10:  # warm-up
            tb.append(b)
            to.append(o)
    bare.close()
    ours.close()
    mb, mo = statistics.median(tb) * 1000, statistics.median(to) * 1000
    return {"bare_median_ms": round(mb, 2), "ours_median_ms": round(mo, 2), "ratio": round(mo / mb, 2),
            "bare_p95_ms": round(pct(tb, 95) * 1000, 2), "ours_p95_ms": round(pct(to, 95) * 1000, 2), "rounds": rounds}


def bench_batch(url: str, ref_path: Path, ref: str, jobs: int, work: Path, in_flight: int) -> dict:
    from orchestrator.batch import BatchRunner, load_jobs_file
    from orchestrator.config import load_config

    bare = BareClient(url)
    t = time.perf_counter()
    for i in range(jobs):
        bare.run(prompt(ref, f"barebatch{i}"))
    bare_s = time.perf_counter() - t
    bare.close()

    wf = work / "wf" / "bench-tiny" / "1.0.0"
    wf.mkdir(parents=True, exist_ok=True)
    (wf / "workflow.toml").write_text(
        'name = "bench-tiny"\nversion = "1.0.0"\noutputs = ["3"]\n'
        '[params.image]\ntype = "image-file"\ntargets = ["1.image"]\n'
        '[params.prefix]\ntype = "str"\ntargets = ["3.filename_prefix"]\n'
    )
    (wf / "workflow.api.json").write_text(json.dumps(prompt("example.png", "x")))
    os.environ["DGX_PIXELS_WORKFLOWS"] = str(work / "wf")
    lines = ['[defaults]', 'workflow = "bench-tiny@1"', '']
    for i in range(jobs):
        lines += ["[[job]]", f'id = "j{i}"', f'set = {{ image = "{ref_path}", prefix = "ours-batch-{uuid.uuid4().hex[:6]}-{i}" }}', ""]
    jf_path = work / "batch.toml"
    jf_path.write_text("\n".join(lines))
    cfg = load_config(servers=[url], environ={})
    runner = BatchRunner(load_jobs_file(jf_path), cfg, in_flight=in_flight)
    runner.prepare()
    t = time.perf_counter()
    rep = runner.run()
    ours_s = time.perf_counter() - t
    assert rep.failed == 0 and rep.done == jobs, rep
    return {"jobs": jobs, "in_flight": in_flight, "bare_jobs_per_s": round(jobs / bare_s, 1),
            "ours_jobs_per_s": round(jobs / ours_s, 1), "ratio": round(bare_s / ours_s, 2)}


def bench_watch(n: int, work: Path) -> dict:
    from orchestrator.watch import Watcher

    drop = work / "drop"
    drop.mkdir()
    proj = work / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    done: dict[str, float] = {}
    cond = threading.Condition()

    def on_event(ev):
        if ev["event"] == "deployed":
            with cond:
                done[Path(ev["file"]).name] = time.perf_counter()
                cond.notify_all()

    w = Watcher(drop, proj, debounce=0.1, on_event=on_event)
    w.start()
    lat = []
    try:
        for i in range(n):
            data = tiny_png(1000 + i)
            name = f"gen_{i:04d}.png"
            tmp = drop / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, drop / name)  # how ComfyUI-like writers finish a file
            t = time.perf_counter()
            with cond:
                cond.wait_for(lambda: name in done, timeout=10)
            lat.append((done[name] - t) * 1000)
            time.sleep(0.02)
    finally:
        w.stop()
    return {"files": n, "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1), "max_ms": round(max(lat), 1),
            "debounce_ms": 100}


def bench_memory(url: str, ref: str, jobs: int, work: Path) -> dict:
    import gc

    from orchestrator.client import ComfyClient
    from orchestrator.config import load_config
    from orchestrator.run import run_workflow

    c = ComfyClient(url, load_config(servers=[url], environ={}))
    marks = {}
    for i in range(jobs):
        run_workflow(prompt(ref, f"mem{i}"), client=c, out_dir=work / "mem")
        if i + 1 in (100, jobs // 2, jobs):
            gc.collect()
            marks[i + 1] = round(rss_mb(), 1)
    subs = len(c.events._subs)
    c.close()
    first, last = marks[100], marks[jobs]
    return {"jobs": jobs, "rss_mb": marks, "growth_mb_after_100": round(last - first, 1), "open_subscriptions": subs}


#: RSS growth (MB) between job 100 and the last job still taken as flat: allocator noise.
MEMORY_FLAT_MB = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--memory-jobs", type=int, default=1000)
    ap.add_argument("--watch-files", type=int, default=60)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--server", help="use this running ComfyUI instead of starting one")
    ap.add_argument("--only", metavar="LIST", default="round_trip,batch,watch,memory",
                    help="comma-separated sections to run (default all)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    from orchestrator.client import ComfyClient
    from orchestrator.config import load_config

    handle = None
    if args.server:
        url = args.server.rstrip("/")
    else:
        from orchestrator.embedded import start_server

        t = time.perf_counter()
        handle = start_server(progress=lambda m: print(m, file=sys.stderr))
        url = handle.url
        print(f"ComfyUI up at {url} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
            work = Path(tmp)
            ref_path = work / "tiny.png"
            ref_path.write_bytes(tiny_png())
            c = ComfyClient(url, load_config(servers=[url], environ={}))
            ref = c.upload_image(ref_path.read_bytes(), "bench-tiny.png")
            c.close()
            only = set(args.only.split(","))
            if "round_trip" in only:
                results["round_trip"] = r = bench_round_trip(url, ref, args.rounds, work)
                print(f"round trip  bare {r['bare_median_ms']} ms, ours {r['ours_median_ms']} ms (median), "
                      f"ratio {r['ratio']} (target <= 2)")
            if "batch" in only:
                results["batch"] = r = bench_batch(url, ref_path, ref, args.jobs, work, args.in_flight)
                print(f"batch {r['jobs']}   bare {r['bare_jobs_per_s']} jobs/s, ours {r['ours_jobs_per_s']} jobs/s, "
                      f"ratio {r['ratio']} (target >= 0.9)")
            if "watch" in only:
                results["watch"] = r = bench_watch(args.watch_files, work)
                print(f"watch       p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms (target p95 <= 300)")
            if "memory" in only:
                results["memory"] = r = bench_memory(url, ref, args.memory_jobs, work)
                print(f"memory      RSS MB at jobs {r['rss_mb']}; growth after job 100: {r['growth_mb_after_100']} MB; "
                      f"open subscriptions {r['open_subscriptions']}")
    finally:
        if handle is not None:
            handle.stop()
    results["machine"] = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    results["missed"] = missed = missed_targets(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    for line in missed:
        print(f"MISSED {line}")
    return 1 if missed else 0


def missed_targets(results: dict) -> list[str]:
    """The targets (module docstring) the measured sections miss, one line each."""
    out = []
    r = results.get("round_trip")
    if r and r["ratio"] > 2.0:
        out.append(f"round trip: ours is {r['ratio']}x the bare client (target <= 2)")
    r = results.get("batch")
    if r and r["ratio"] < 0.9:
        out.append(f"batch: ours runs at {r['ratio']} of the bare loop's throughput (target >= 0.9)")
    r = results.get("watch")
    if r and r["p95_ms"] > 300:
        out.append(f"watch: p95 {r['p95_ms']} ms (target <= 300)")
    r = results.get("memory")
    if r and (r["growth_mb_after_100"] > MEMORY_FLAT_MB or r["open_subscriptions"]):
        out.append(f"memory: RSS grew {r['growth_mb_after_100']} MB after job 100 (flat = within "
                   f"{MEMORY_FLAT_MB} MB), {r['open_subscriptions']} subscriptions left open")
    return out


if __name__ == "__main__":
    sys.exit(main())
