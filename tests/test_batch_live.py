"""Batches against real ComfyUI servers: two servers with one killed (SIGKILL) and restarted
mid-batch, new jobs placed on the server with the shorter ``/queue``, resume after cancel,
re-attach to jobs submitted before a crash, and exactly-once deploys (journal and manifest agree)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("requests")
pytest.importorskip("websocket")

from orchestrator.batch import BatchRunner, Journal, load_jobs_file  # noqa: E402
from orchestrator.cli import main  # noqa: E402
from orchestrator.client import ComfyClient  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.run import JobRun  # noqa: E402

TOML = """\
name = "orch-batch"
version = "1.0.0"
description = "invert + enlarge, with a slower preview branch so jobs take a moment"
outputs = ["4"]
[params.image]
type = "image-file"
targets = ["1.image"]
required = true
[params.scale]
type = "int"
targets = ["3.scale"]
default = 2
min = 1
max = 64
[params.busy]
type = "int"
targets = ["5.scale_by"]
default = 1
"""

API = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["2", 0], "scale": 2}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "batch"}},
    # The branch only keeps the server busy; PreviewImage writes "temp" files, never collected.
    "5": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "scale_by": 1}},
    "6": {"class_type": "ImageBlur", "inputs": {"image": ["5", 0], "blur_radius": 5, "sigma": 2.0}},
    "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    root = tmp_path / "workflows" / "orch-batch" / "1.0.0"
    root.mkdir(parents=True)
    (root / "workflow.toml").write_text(TOML)
    (root / "workflow.api.json").write_text(json.dumps(API))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(tmp_path / "workflows"))
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    art = tmp_path / "art"
    art.mkdir()
    return tmp_path, proj, art


def make_jobs(tmp_path: Path, art: Path, proj: Path, n: int, *, busy: int = 1, servers: list[str] | None = None,
              name: str = "jobs.toml", seed0: int = 0) -> tuple[Path, dict]:
    truth = {}
    lines = []
    if servers:
        lines.append("servers = [" + ", ".join(f'"{s}"' for s in servers) + "]")
    lines += ["[defaults]", 'workflow = "orch-batch@1"', f'bevy = "{proj}"', ""]
    for i in range(n):
        rgb = np.random.default_rng(seed0 + i).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
        Image.fromarray(rgb, "RGB").save(art / f"s{seed0 + i}.png")
        scale = 1 + i % 3
        truth[f"j{i:03d}"] = (f"sprites/s{i:03d}.png", np.repeat(np.repeat(255 - rgb, scale, axis=0), scale, axis=1))
        lines += ["[[job]]", f'id = "j{i:03d}"', f'set = {{ image = "art/s{seed0 + i}.png", scale = {scale}, busy = {busy} }}',
                  f'asset_path = "sprites/s{i:03d}.png"', ""]
    f = tmp_path / name
    f.write_text("\n".join(lines))
    return f, truth


def check_exactly_once(proj: Path, journal_path: Path, truth: dict) -> None:
    manifest = json.loads((proj / "assets" / ".dgx-pixels" / "manifest.json").read_text())["assets"]
    by_path = {e["path"]: e for e in manifest}
    assert len(manifest) == len(truth) == len(by_path)
    recs = [json.loads(x) for x in journal_path.read_text().splitlines()]
    jid = recs[0]["journal"]
    last = {}
    for r in recs[1:]:
        last[r["job"]] = {**last.get(r["job"], {}), **r}
    for job, (asset, pixels) in truth.items():
        e = by_path[asset]
        assert e["exports"] == 1, f"{asset} deployed {e['exports']} times"
        assert e["provenance"]["deploy_id"] == f"{jid}:{job}:{last[job]['key']}:0"
        st = last[job]
        assert st["state"] == "deployed"
        assert st["assets"][0]["asset_path"] == asset
        assert st["assets"][0]["source_sha256"] == e["provenance"]["source"]["sha256"]
        assert st["outputs"][0]["sha256"] == e["provenance"]["source"]["sha256"]
        got = np.asarray(Image.open(proj / "assets" / asset).convert("RGB"))
        np.testing.assert_array_equal(got, pixels)
    deploy_ids = [e["provenance"]["deploy_id"] for e in manifest]
    assert len(set(deploy_ids)) == len(deploy_ids)


RESTART_DEADLINE_S = 300.0  # a loaded 2-core machine boots ComfyUI in 5-60 s


def _poll(condition, deadline: float, what: str, interval: float = 0.2):
    """Call ``condition()`` until it returns a true value (returned) or ``deadline``
    (``time.monotonic()``) passes (AssertionError naming ``what`` and the last error)."""
    last = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the last one is reported on timeout
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within the deadline (last error: {last!r})")
        time.sleep(interval)


def wait_answering(url: str, deadline: float) -> dict:
    """ComfyUI at ``url`` answers /system_stats (the harness's readiness check); returns it."""
    from orchestrator.embedded import check_server

    return _poll(lambda: check_server(url, timeout=5.0), deadline, f"ComfyUI at {url} answering /system_stats")


def test_fifty_jobs_two_servers_one_killed_and_restarted(world, comfy_server_factory):
    tmp_path, proj, art = world
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as ex:  # boot both at once
        a, b = list(ex.map(lambda _: comfy_server_factory(), range(2)))
    t0 = time.monotonic()
    jobs, truth = make_jobs(tmp_path, art, proj, 50, busy=48, servers=[a.url, b.url])
    cfg = load_config(servers=[a.url, b.url], environ={}).with_overrides(poll_interval=1.0)
    state = {"deployed": 0, "killed": False, "restarted": None, "by_server": {a.url: 0, b.url: 0}}
    lock = threading.Lock()

    def restart():
        from orchestrator.embedded import port_is_free

        os.kill(b.pid, signal.SIGKILL)
        b.process.wait(30)
        deadline = time.monotonic() + RESTART_DEADLINE_S
        while True:
            try:
                # the port is free once the killed process's socket is gone
                _poll(lambda: port_is_free(b.port), deadline, f"port {b.port} free after the kill")
                # start_server returns once /system_stats answers and our nodes are listed
                state["restarted"] = comfy_server_factory(
                    port=b.port, base_dir=b.base_dir, boot_timeout=max(10.0, deadline - time.monotonic()))
                return
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                state["restart_error"] = repr(exc)
                if time.monotonic() >= deadline:
                    return

    events = []

    def on_event(ev):
        events.append(ev["event"])
        with lock:
            if ev["event"] == "deployed":
                state["deployed"] += 1
            if ev["event"] == "submitted":
                state["by_server"][ev["server"]] = state["by_server"].get(ev["server"], 0) + 1
                if ev["server"] == b.url and state["deployed"] >= 12 and not state["killed"]:
                    state["killed"] = True
                    state["restarter"] = threading.Thread(target=restart, name="restart-b", daemon=True)
                    state["restarter"].start()

    # failover_after outlasts the restart's deadline: the lost job waits for B, never moves to A
    runner = BatchRunner(load_jobs_file(jobs), cfg, in_flight=4, on_event=on_event,
                         failover_after=RESTART_DEADLINE_S + 60)
    runner.prepare()
    report = runner.run()
    print(f"batch of 50 with a kill+restart took {time.monotonic() - t0:.1f} s")
    assert state["killed"], "the batch never submitted to B after 12 deploys"
    state["restarter"].join(RESTART_DEADLINE_S + 30)
    assert not state["restarter"].is_alive(), "restarting B did not end within its deadline"
    assert state["restarted"] is not None, state.get("restart_error")
    assert state["restarted"].alive()
    wait_answering(state["restarted"].url, time.monotonic() + 60)
    assert report.failed == 0, report.failures
    assert report.done == 50 and report.deployed == 50
    # The job in flight on the killed server was lost: sent again under its id once B was back.
    assert report.resubmitted >= 1
    assert state["by_server"][a.url] >= 10 and state["by_server"][b.url] >= 5  # both servers took work
    check_exactly_once(proj, Path(report.journal), truth)

    # Rerun: everything is already done, nothing is deployed again.
    report2 = BatchRunner(load_jobs_file(jobs), cfg, in_flight=4).run()
    assert report2.skipped == 50 and report2.done == 0 and report2.deployed == 0
    check_exactly_once(proj, Path(report.journal), truth)

    # A server that dies for good: its jobs move to the other one after failover_after.
    b2 = state["restarted"]
    wait_answering(b2.url, time.monotonic() + 60)
    wait_answering(a.url, time.monotonic() + 60)
    proj2 = tmp_path / "game2"
    (proj2 / "assets").mkdir(parents=True)
    (proj2 / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    jobs2, truth2 = make_jobs(tmp_path, art, proj2, 16, busy=48, servers=[a.url, b2.url], name="jobs2.toml", seed0=500)
    dead = {"done": False}
    moved = []

    def on_event2(ev):
        if ev["event"] == "failover":
            moved.append(ev["job"])
        if ev["event"] == "submitted" and ev["server"] == b2.url and not dead["done"]:
            dead["done"] = True
            os.kill(b2.pid, signal.SIGKILL)

    r3 = BatchRunner(load_jobs_file(jobs2), cfg, in_flight=4, on_event=on_event2, failover_after=1.5).run()
    assert dead["done"] and not b2.alive()
    assert r3.failed == 0 and r3.deployed == 16, r3.failures
    assert moved, "a job in flight on the dead server moved to the live one"
    check_exactly_once(proj2, Path(r3.journal), truth2)


def _busy_prompt(colors: int) -> dict:
    # ~1 s of CPU per prompt on noise (PIL quantize with dithering); the colour count makes
    # each prompt distinct so the server's cache cannot skip it.
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "noise.png"}},
        "2": {"class_type": "ImageQuantize", "inputs": {"image": ["1", 0], "colors": colors, "dither": "floyd-steinberg"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


def _queue_load(url: str) -> int:
    from support.live import http_json

    q = http_json(f"{url}/queue")
    return len(q["queue_running"]) + len(q["queue_pending"])


def _drain(url: str) -> None:
    from support.live import http_json

    http_json(f"{url}/queue", {"clear": True})
    http_json(f"{url}/interrupt", {})


def test_new_jobs_go_to_the_server_with_the_shorter_queue(world, comfy_server, comfy_server_factory):
    from orchestrator.config import normalize_url
    from support.live import http_json

    tmp_path, proj, art = world
    idle = comfy_server
    busy = comfy_server_factory()
    noise = np.random.default_rng(7).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(Path(busy.input_dir) / "noise.png")
    n_busy = 10
    try:
        for i in range(n_busy):
            http_json(f"{busy.url}/prompt", {"prompt": _busy_prompt(256 - i)})
        _poll(lambda: http_json(f"{busy.url}/queue")["queue_running"], time.monotonic() + 60, "the busy server running")
        assert _queue_load(busy.url) >= n_busy - 2

        # The busy server comes first: neither "first listed" nor round robin would spare it.
        servers = [busy.url, idle.url]
        jobs, truth = make_jobs(tmp_path, art, proj, 4, servers=servers, seed0=300)
        cfg = load_config(servers=servers, environ={})
        seen = []

        def on_event(ev):
            if ev["event"] == "submitted":
                seen.append((ev["job"], ev["server"], _queue_load(busy.url)))

        t0 = time.monotonic()
        report = BatchRunner(load_jobs_file(jobs), cfg, in_flight=2, on_event=on_event).run()
        elapsed = time.monotonic() - t0
        load_after = _queue_load(busy.url)
        print(f"4 jobs beside a busy server took {elapsed:.1f} s; its queue: {load_after} left")
    finally:
        _drain(busy.url)

    assert report.failed == 0 and report.deployed == 4, report.failures
    assert sorted(j for j, _, _ in seen) == sorted(truth)
    for job, server, busy_load in seen:
        assert server == idle.url, f"{job} went to the busy server (its queue held {busy_load})"
        # Two jobs in flight can put at most 2 on the idle server (one queued, one reserved):
        # the busy one was strictly longer at every choice.
        assert busy_load >= 3, f"{job}: the busy server's queue had only {busy_load} when the job was placed"
    assert load_after >= 3, "the busy server drained before the batch ended: the test proved nothing"
    recs = [json.loads(x) for x in Path(report.journal).read_text().splitlines()[1:]]
    submitted = {r["job"]: r["server"] for r in recs if r["state"] == "submitted"}
    assert submitted == {job: normalize_url(idle.url) for job in truth}
    assert all(r["server"] == normalize_url(idle.url) for r in recs if r["state"] == "done")
    check_exactly_once(proj, Path(report.journal), truth)

    # The busy server's queue empties once cleared and interrupted: nothing lingers for later tests.
    _poll(lambda: _queue_load(busy.url) == 0, time.monotonic() + 60, "the busy server's queue empty after clear + interrupt")


def test_cancel_then_rerun_does_only_what_is_left(world, comfy_server):
    tmp_path, proj, art = world
    jobs, truth = make_jobs(tmp_path, art, proj, 12, servers=[comfy_server.url], seed0=100)
    cfg = load_config(servers=[comfy_server.url], environ={})
    cancel = threading.Event()
    count = {"n": 0}

    def on_event(ev):
        if ev["event"] == "deployed":
            count["n"] += 1
            if count["n"] >= 4:
                cancel.set()

    r1 = BatchRunner(load_jobs_file(jobs), cfg, in_flight=2, on_event=on_event, cancel=cancel).run()
    assert r1.deployed >= 4 and r1.deployed < 12
    seen_submits = []
    r2 = BatchRunner(load_jobs_file(jobs), cfg, in_flight=2,
                     on_event=lambda ev: ev["event"] == "submitted" and seen_submits.append(ev["job"])).run()
    assert r2.failed == 0 and r1.deployed + r2.deployed == 12
    assert r2.skipped == r1.deployed
    assert len(seen_submits) == 12 - r1.deployed
    check_exactly_once(proj, Path(r2.journal), truth)


def test_rerun_reattaches_to_submitted_jobs_and_never_deploys_twice(world, comfy_server, capsys):
    tmp_path, proj, art = world
    jobs, truth = make_jobs(tmp_path, art, proj, 3, servers=[comfy_server.url], seed0=200)
    cfg = load_config(servers=[comfy_server.url], environ={})
    jf = load_jobs_file(jobs)
    runner = BatchRunner(jf, cfg)
    runner.prepare()
    journal = runner.journal
    # As if the batch crashed: j000 was posted (the server has it), j001 was journaled but the
    # POST never happened (crash in between).
    c = ComfyClient(comfy_server.url, cfg)
    spec0 = jf.jobs[0].spec
    run0 = JobRun(c, spec0)
    pid0 = run0.new_prompt_id()
    journal.record("j000", "submitted", key=jf.jobs[0].key, prompt_id=pid0, server=comfy_server.url)
    run0.submit()
    run0.wait()
    journal.record("j001", "submitted", key=jf.jobs[1].key, prompt_id="11111111-2222-4333-8444-555555555555",
                   server=comfy_server.url)
    journal.close()
    c.close()

    rc = main(["batch", str(jobs), "--json"])
    out = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rc == 0
    by_job = {}
    for ev in out:
        if ev.get("job"):
            by_job.setdefault(ev["job"], []).append(ev["event"])
    assert "attached" in by_job["j000"] and "submitted" not in by_job["j000"] and "resubmitted" not in by_job["j000"]
    assert "attached" in by_job["j001"] and "resubmitted" in by_job["j001"]
    assert "submitted" in by_job["j002"]
    report = out[-1]
    assert report["event"] == "report" and report["resubmitted"] == 1 and report["deployed"] == 3
    recs = [json.loads(x) for x in Path(report["journal"]).read_text().splitlines()]
    assert [r["prompt_id"] for r in recs if r.get("job") == "j000" and r.get("state") == "done"] == [pid0]

    # Crash between "exported" and "journal says deployed": drop the deployed records.
    kept = [json.dumps(r) for r in recs if r.get("state") != "deployed"]
    Path(report["journal"]).write_text("\n".join(kept) + "\n")
    rc = main(["batch", str(jobs), "--json"])
    out = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rc == 0
    already = [ev for ev in out if ev["event"] == "deployed"]
    assert already == []  # found in the manifest by deploy id: nothing exported again
    check_exactly_once(proj, Path(report["journal"]), truth)


def test_no_reachable_server_is_exit_3_at_once_and_submits_nothing(world, capsys):
    """A wrong address or a server never started: the batch says so at once (exit 3) and the
    journal records no job as submitted; the long wait is for a server lost mid-batch."""
    import time

    tmp_path, proj, art = world
    jobs, _ = make_jobs(tmp_path, art, proj, 2, servers=["http://127.0.0.1:9"])
    t0 = time.monotonic()
    rc = main(["batch", str(jobs)])
    assert rc == 3 and time.monotonic() - t0 < 20
    err = capsys.readouterr().err
    assert "error: no ComfyUI server of the batch is reachable: http://127.0.0.1:9" in err
    assert "nothing was submitted" in err
    journal = tmp_path / "jobs.toml.journal.jsonl"
    states = [json.loads(x).get("state") for x in journal.read_text().splitlines()] if journal.exists() else []
    assert "submitted" not in states


def test_journal_ignores_a_torn_last_line(tmp_path):
    p = tmp_path / "j.jsonl"
    j = Journal(p)
    j.record("a", "submitted", prompt_id="x", server="http://s")
    j.record("a", "done", outputs=[])
    j.close()
    with open(p, "ab") as fh:
        fh.write(b'{"job": "a", "state": "depl')
    j2 = Journal(p)
    assert j2.id == j.id
    assert j2.state("a")["state"] == "done" and j2.state("a")["prompt_id"] == "x"
    j2.record("a", "deployed", assets=[])
    j2.close()
    assert Journal(p).state("a")["state"] == "deployed"  # the record after the torn line survives


def test_journal_skips_a_line_nested_past_reading(tmp_path):
    """A journal line of arrays nested thousands deep (never one the journal wrote) raised
    RecursionError out of the journal's reader; it is skipped as a torn line is."""
    p = tmp_path / "j.jsonl"
    j = Journal(p)
    j.record("a", "done", outputs=[])
    j.close()
    with open(p, "ab") as fh:
        fh.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    j2 = Journal(p)
    assert j2.state("a")["state"] == "done"
    j2.close()


def test_jobs_file_defaults_relative_paths_and_ids(tmp_path):
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "a.png").write_bytes(b"x")
    f = tmp_path / "jobs.toml"
    f.write_text(
        'servers = ["127.0.0.1:8188"]\nin_flight = 3\nout = "o"\n'
        '[defaults]\nworkflow = "w@1"\nbevy = "game"\nset = { scale = 2, seed = 1 }\n'
        '[[job]]\nset = { image = "art/a.png" }\n'
        '[[job]]\nset = { image = "art/a.png" }\n'
        '[[job]]\nid = "named"\nset = { scale = 5, prompt = "art/none.png" }\nasset_path = "sprites/a.png"\n'
    )
    jf = load_jobs_file(f)
    assert jf.servers == ["http://127.0.0.1:8188"] and jf.in_flight == 3 and jf.out == tmp_path / "o"
    j1, j2, j3 = jf.jobs
    assert j1.values == {"scale": 2, "seed": 1, "image": str(tmp_path / "art" / "a.png")}
    assert j1.bevy == str(tmp_path / "game") and j3.asset_path == "sprites/a.png"
    assert j1.id != j2.id and j2.id == j1.id + "-2" and j1.key == j2.key
    assert j3.id == "named" and j3.values == {"scale": 5, "seed": 1, "prompt": "art/none.png"}
    f.write_text('[defaults]\nworkflow = "w@1"\nbevy = "game"\n[[job]]\nasset_path = "../escape.png"\n')
    from comfy_nodes.pixel.errors import PathEscapeError

    with pytest.raises(PathEscapeError, match="job #1"):
        load_jobs_file(f)


@pytest.mark.parametrize("body, message", [
    ('[[job]]\nworkflow = "w@1"\nset = 5\n', "job #1: set must be a table of parameter values"),
    ('[defaults]\nset = [1, 2]\n[[job]]\nworkflow = "w@1"\n', "[defaults]: set must be a table"),
    ('in_flight = "x"\n[[job]]\nworkflow = "w@1"\n', "in_flight must be a whole number >= 1, got 'x'"),
    ('in_flight = 0\n[[job]]\nworkflow = "w@1"\n', "in_flight must be a whole number >= 1, got 0"),
    ('[[job]]\nworkflow = "w@1"\nupscale = "big"\n', "job #1: upscale must be a whole number 1..64, got 'big'"),
    ('[[job]]\nworkflow = "w@1"\noverwrite = "clobber"\n', "overwrite must be one of fail, replace, keep, version"),
    ('[[job]]\nworkflow = 5\n', "job #1: workflow must be a workflow name@version"),
    ('[defaults]\nworkflow = "w@1"\nbevy = "game"\n[[job]]\nid = "a"\nasset_path = "s/x.png"\n'
     '[[job]]\nid = "b"\nset = { seed = 2 }\nasset_path = "s/x.png"\n', "jobs 'a' and 'b' both deploy s/x.png into"),
    ('[defaults]\nworkflow = "w@1"\n[[job]]\nid = "../evil"\n[[job]]\nid = "evil"\nset = { seed = 2 }\n',
     "jobs '../evil' and 'evil' would share the output folder evil"),
])
def test_a_malformed_jobs_file_is_named_not_a_traceback(tmp_path, capsys, body, message):
    f = tmp_path / "jobs.toml"
    f.write_text(body)
    with pytest.raises(Exception) as exc:
        load_jobs_file(f)
    assert type(exc.value).__name__ == "InvalidArgumentError" and message in exc.value.message, exc.value
    assert main(["batch", str(f)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_yaml_jobs_file(tmp_path):
    f = tmp_path / "jobs.yaml"
    f.write_text("defaults:\n  workflow: w@1\njobs:\n  - id: a\n    set: {scale: 3}\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        from comfy_nodes.pixel.errors import InvalidArgumentError

        with pytest.raises(InvalidArgumentError, match="PyYAML is not installed"):
            load_jobs_file(f)
        return
    jf = load_jobs_file(f)
    assert [j.id for j in jf.jobs] == ["a"] and jf.jobs[0].values == {"scale": 3}


def test_the_only_server_lost_for_good_stops_the_batch_after_failover_after(world, comfy_server, capsys):
    """With one server, a batch whose server stays down waits --failover-after once and stops
    (exit 3), leaving the rest for a rerun; it does not wait the timeout out again for every
    job left. The server's loss is real: the loopback proxy in front of it stops listening."""
    from test_client_live import LoopbackProxy

    tmp_path, proj, art = world
    proxy = LoopbackProxy(comfy_server.url)
    port = proxy.port
    jobs, truth = make_jobs(tmp_path, art, proj, 8, busy=48, servers=[proxy.url])
    journal = jobs.with_name(jobs.name + ".journal.jsonl")
    lost_at = {}

    def lose_server_after_first_deploy():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not lost_at:
            if journal.exists() and '"deployed"' in journal.read_text():
                proxy.close()
                lost_at["t"] = time.monotonic()
            time.sleep(0.05)

    killer = threading.Thread(target=lose_server_after_first_deploy, daemon=True)
    killer.start()
    rc = main(["batch", str(jobs), "--failover-after", "2", "--in-flight", "1", "-q"])
    ended = time.monotonic()
    killer.join(5)
    out, err = capsys.readouterr()
    assert lost_at, "the batch never deployed a job"
    assert rc == 3, (out, err)
    assert ended - lost_at["t"] < 60, f"the batch went on for {ended - lost_at['t']:.0f} s after the server was lost"
    assert f"error: the ComfyUI server {proxy.url} did not answer for 2 s; the batch stopped: " in err
    unfinished = int(err.split("the batch stopped: ")[1].split(" job")[0])
    recs = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
    deployed = {r["job"] for r in recs if r["state"] == "deployed"}
    assert deployed and unfinished == 8 - len(deployed), (unfinished, deployed)
    assert not [r for r in recs if r["state"] == "failed"], "a job lost with its server is unfinished, not failed"
    assert f"{unfinished} unfinished" in out and "rerun the same command" in err

    # The server is back (the proxy listens on the same port again): a rerun finishes the
    # batch, and every asset is deployed exactly once.
    back = LoopbackProxy(comfy_server.url, port=port)
    try:
        assert main(["batch", str(jobs), "--failover-after", "2", "-q"]) == 0, capsys.readouterr()
    finally:
        back.close()
    check_exactly_once(proj, journal, truth)


SLOW_TOML = """\
name = "orch-slow"
version = "1.0.0"
description = "a second or so of CPU per job (dithered quantize of a noise image)"
outputs = ["3"]
[params.image]
type = "image-file"
targets = ["1.image"]
required = true
[params.colors]
type = "int"
targets = ["2.colors"]
default = 200
min = 2
max = 256
"""
SLOW_API = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ImageQuantize", "inputs": {"image": ["1", 0], "colors": 200, "dither": "floyd-steinberg"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}},
}


def _install_slow_workflow(tmp_path: Path) -> None:
    root = tmp_path / "workflows" / "orch-slow" / "1.0.0"
    root.mkdir(parents=True)
    (root / "workflow.toml").write_text(SLOW_TOML)
    (root / "workflow.api.json").write_text(json.dumps(SLOW_API))


def _first_job_running(journal: Path, url: str) -> str:
    """The prompt id of the batch's first submitted job, once the server runs it."""
    from support.live import http_json

    pid = _poll(lambda: journal.exists() and next((json.loads(x)["prompt_id"] for x in journal.read_text().splitlines()[1:]
                                                   if json.loads(x).get("state") == "submitted"), None),
                time.monotonic() + 120, "the first job submitted")
    _poll(lambda: any(pid == q[1] for q in http_json(f"{url}/queue")["queue_running"]),
          time.monotonic() + 60, "the first job running")
    return pid


def test_ctrl_c_stops_the_job_running_on_the_server(world, comfy_server):
    """A real SIGINT to a `dgx-pixels batch` process: the job in flight is interrupted on the
    server and counted as cancelled (the batch used to return at once and leave it running)."""
    import subprocess
    import sys

    from support.live import http_json

    tmp_path, proj, art = world
    _install_slow_workflow(tmp_path)
    lines = ['[defaults]', 'workflow = "orch-slow@1"', ""]
    for i in range(3):
        noise = np.random.default_rng(40 + i).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
        Image.fromarray(noise, "RGB").save(art / f"noise{i}.png")
        lines += ["[[job]]", f'id = "n{i}"', f'set = {{ image = "art/noise{i}.png", colors = {250 - i} }}', ""]
    jobs = tmp_path / "slow.toml"
    jobs.write_text("\n".join(lines))
    journal = jobs.with_name(jobs.name + ".journal.jsonl")
    env = {**os.environ, "DGX_PIXELS_WORKFLOWS": str(tmp_path / "workflows"), "DGX_PIXELS_SERVER": comfy_server.url}
    # SIGINT at its default (a test run in the background inherits it ignored)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "batch", str(jobs), "--in-flight", "1", "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pid = _first_job_running(journal, comfy_server.url)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "1 cancelled" in out and "interrupted: run the same command again to continue" in err
    # ComfyUI stops a job between nodes: the history says it was interrupted, not finished
    entry = _poll(lambda: http_json(f"{comfy_server.url}/history/{pid}").get(pid), time.monotonic() + 60,
                  "the interrupted job in the history")
    assert entry["status"]["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    states = [json.loads(x)["state"] for x in journal.read_text().splitlines()[1:]]
    assert states == ["submitted", "cancelled"]


def test_a_second_ctrl_c_quits_at_once_and_a_rerun_finishes_the_job(world, comfy_server):
    """Ctrl-C while the server hangs (its process stopped with SIGSTOP: taking the job off the
    server waits on it): the batch says what it waits for and how to stop waiting; a second
    Ctrl-C quits at once, with no traceback, the job still 'submitted' in the journal (nothing
    its abandoned thread did afterwards recorded), and a rerun finishes the job."""
    import subprocess
    import sys
    import threading

    if not getattr(comfy_server, "pid", None):
        pytest.skip("stops the server's process; a ComfyUI of the user's own is not ours to stop")
    tmp_path, proj, art = world
    _install_slow_workflow(tmp_path)
    noise = np.random.default_rng(7).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(art / "big.png")
    jobs = tmp_path / "slow1.toml"
    jobs.write_text('[defaults]\nworkflow = "orch-slow@1"\n\n[[job]]\nid = "big"\nset = { image = "art/big.png", colors = 256 }\n')
    journal = jobs.with_name(jobs.name + ".journal.jsonl")
    env = {**os.environ, "DGX_PIXELS_WORKFLOWS": str(tmp_path / "workflows"), "DGX_PIXELS_SERVER": comfy_server.url}
    cmd = [sys.executable, "-m", "orchestrator", "batch", str(jobs), "--in-flight", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    stopped = False
    try:
        _first_job_running(journal, comfy_server.url)
        os.kill(comfy_server.pid, signal.SIGSTOP)
        stopped = True
        proc.send_signal(signal.SIGINT)
        _poll(lambda: any(line.startswith("stopping:") for line in err_lines), time.monotonic() + 30,
              "the batch saying it stops")
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting on the hung server
        proc.send_signal(signal.SIGINT)
        t = time.monotonic()
        proc.wait(timeout=60)
        quit_s = time.monotonic() - t
        out = proc.stdout.read()
    finally:
        if stopped:
            os.kill(comfy_server.pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err = "".join(err_lines)
    assert proc.returncode == 130, (out, err)
    assert "stopping: 1 job(s) running, taking them off the server; Ctrl-C again to quit at once" in err, err
    assert "quitting: jobs still running stay on the server; a rerun collects them" in err, err
    assert "interrupted: run the same command again to continue" in err and "Traceback" not in err, err
    assert "1 jobs:" in out and quit_s < 5, (out, quit_s)
    assert [json.loads(x)["state"] for x in journal.read_text().splitlines()[1:]] == ["submitted"]
    # the rerun finds the job on the server again and sees it to the end
    rerun = subprocess.run(cmd + ["-q"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert json.loads(journal.read_text().splitlines()[-1])["state"] == "done"


# --------------------------------------------------------------------------- resume after faults

KILL_AFTER_RENAME = """\
import os, signal, sys
real = os.replace
def replace(src, dst, *a, **k):
    real(src, dst, *a, **k)
    d = str(dst)
    if k.get("dst_dir_fd") is not None:  # renamed by name inside an opened folder
        d = os.path.join(os.readlink(f"/proc/self/fd/{k['dst_dir_fd']}"), d)
    d = d.replace(os.sep, "/")
    if "/assets/" in d and d.endswith(sys.argv[1]) and "/.dgx-pixels/" not in d:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from orchestrator.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _no_debris(assets: Path) -> None:
    left = [p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.name.endswith(".tmp")]
    assert left == [], f"temp files left in assets/: {left}"


@pytest.mark.parametrize("after", [".png", ".png.meta"])
def test_a_batch_killed_in_the_middle_of_a_deploy_commit_is_finished_by_the_rerun(world, comfy_server, repo_root, after):
    """SIGKILL between the renames of one export (.meta, PNG, then the manifest) leaves files the
    manifest does not record. The rerun used to refuse them as the user's own ("dgx-pixels never
    wrote it", exit 5) for good; now it sees they are byte for byte what this deploy writes,
    removes them and the temp files of the killed commit, and deploys the job once.

    The process and its SIGKILL are real; only the moment is pinned (the kill is sent from
    inside os.replace), since between two renames is microseconds wide."""
    import subprocess
    import sys

    tmp_path, proj, art = world
    jobs, truth = make_jobs(tmp_path, art, proj, 3, servers=[comfy_server.url], seed0=300)
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_RENAME, after, "batch", str(jobs), "--in-flight", "1", "-q"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr)
    assets = proj / "assets"
    torn = [p for p in (assets / "sprites").iterdir() if p.name.endswith(after)]
    assert torn, "the kill left nothing to recover from"
    rc = main(["batch", str(jobs), "-q"])
    assert rc == 0
    check_exactly_once(proj, jobs.with_name(jobs.name + ".journal.jsonl"), truth)
    _no_debris(assets)
    on_disk = sorted(p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()
                     and ".dgx-pixels" not in p.parts)
    assert on_disk == sorted([a for a, _ in truth.values()] + [a + ".meta" for a, _ in truth.values()])


def test_run_bevy_killed_in_the_middle_of_its_deploy_commit_can_be_run_again(world, comfy_server, repo_root):
    """The same torn commit from `run --bevy` (no journal): running the same command again
    deploys the asset instead of refusing the half-written one."""
    import subprocess
    import sys

    tmp_path, proj, art = world
    rgb = np.random.default_rng(7).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(art / "one.png")
    args = ["run", "orch-batch@1", "--server", comfy_server.url, "--set", f"image={art / 'one.png'}", "--set", "scale=3",
            "--bevy", str(proj), "--asset-path", "sprites/one.png", "--out", str(tmp_path / "run-out")]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_RENAME, ".png", *args], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr)
    assert (proj / "assets" / "sprites" / "one.png").is_file()
    assert main(args) == 0
    manifest = json.loads((proj / "assets" / ".dgx-pixels" / "manifest.json").read_text())["assets"]
    assert [e["path"] for e in manifest] == ["sprites/one.png"] and manifest[0]["exports"] == 1
    got = np.asarray(Image.open(proj / "assets" / "sprites" / "one.png").convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(255 - rgb, 3, axis=0), 3, axis=1))
    _no_debris(proj / "assets")


def test_a_users_own_file_in_the_way_is_still_refused(world, comfy_server):
    """The clean-up after a torn commit only removes files identical to what the deploy writes:
    the user's own art at the asset path is kept and the job fails as before."""
    tmp_path, proj, art = world
    jobs, _ = make_jobs(tmp_path, art, proj, 1, servers=[comfy_server.url], seed0=320)
    (proj / "assets" / "sprites").mkdir()
    mine = proj / "assets" / "sprites" / "s000.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), "RGB").save(mine)
    before = mine.read_bytes()
    assert main(["batch", str(jobs), "-q"]) == 5
    assert mine.read_bytes() == before


def test_a_second_batch_on_the_same_jobs_file_stops_at_once(world, comfy_server, capsys):
    """Two processes on one jobs file (a second terminal, a cron run): the second used to run
    every unfinished job a second time on the server and report them all as deployed. Now it
    stops at once (exit 1) and the first finishes the batch alone."""
    import subprocess
    import sys

    tmp_path, proj, art = world
    # enough work that the first batch is surely still running when the second starts (each job
    # blurs a 1200 px image on the server's CPU)
    jobs, truth = make_jobs(tmp_path, art, proj, 10, busy=200, servers=[comfy_server.url], seed0=340)
    journal = jobs.with_name(jobs.name + ".journal.jsonl")
    first = subprocess.Popen([sys.executable, "-m", "orchestrator", "batch", str(jobs), "--in-flight", "1", "-q"],
                             env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _poll(lambda: journal.exists() and '"submitted"' in journal.read_text(), time.monotonic() + 120,
              "the first batch submitting", interval=0.05)
        t0 = time.monotonic()
        rc = main(["batch", str(jobs), "-q"])
        err = capsys.readouterr().err
        if rc != 1:
            first_out = first.communicate(timeout=240) if first.poll() is None else first.communicate()
            raise AssertionError(f"second batch: exit {rc}, {err!r}; first batch: exit {first.returncode}, "
                                 f"{first_out!r}; journal: {journal.read_text()!r}")
        assert time.monotonic() - t0 < 20, err
        assert "another dgx-pixels batch is running this jobs file" in err
        out, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, (out, err)
    recs = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
    submitted = [r["job"] for r in recs if r["state"] == "submitted"]
    assert sorted(submitted) == sorted(truth), "a job was submitted twice"
    check_exactly_once(proj, journal, truth)


def test_a_job_edited_between_runs_reaches_the_game(world, comfy_server):
    """Editing a job (another image, another asset path) makes it a new job: it runs again
    and its new output is deployed. It used to run again but find its old deploy id in the
    manifest and deploy nothing: the game kept the old sprite and the new asset path stayed empty."""
    tmp_path, proj, art = world
    jobs, truth = make_jobs(tmp_path, art, proj, 3, servers=[comfy_server.url], seed0=360)
    assert main(["batch", str(jobs), "-q"]) == 0
    text = jobs.read_text()
    # j000 takes j001's image (scale 1 -> j001's 2 as well), j002 moves to a new asset path
    text = text.replace('image = "art/s360.png", scale = 1', 'image = "art/s361.png", scale = 2')
    text = text.replace('asset_path = "sprites/s002.png"', 'asset_path = "sprites/moved.png"')
    jobs.write_text(text)
    assert main(["batch", str(jobs), "-q"]) == 0
    assets = proj / "assets"
    got = np.asarray(Image.open(assets / "sprites" / "s000.png").convert("RGB"))
    np.testing.assert_array_equal(got, truth["j001"][1])
    got = np.asarray(Image.open(assets / "sprites" / "moved.png").convert("RGB"))
    np.testing.assert_array_equal(got, truth["j002"][1])
    by_path = {e["path"]: e for e in json.loads((assets / ".dgx-pixels" / "manifest.json").read_text())["assets"]}
    assert by_path["sprites/s000.png"]["exports"] == 2 and by_path["sprites/s001.png"]["exports"] == 1
    assert by_path["sprites/s000.png"]["provenance"]["params"]["image"].endswith("s361.png")


def test_a_failed_deploy_is_deployed_from_the_collected_outputs_on_the_rerun(world, comfy_server, capsys):
    """A deploy that failed (a file where the sprites folder goes) after the job ran and was
    downloaded: the rerun deploys what was collected. It used to run every job again on the
    server (minutes of GPU each, and another image for an unseeded workflow)."""
    tmp_path, proj, art = world
    jobs, truth = make_jobs(tmp_path, art, proj, 3, servers=[comfy_server.url], seed0=380)
    blocker = proj / "assets" / "sprites"
    blocker.write_text("not a folder")
    assert main(["batch", str(jobs), "--json"]) == 5
    capsys.readouterr()
    blocker.unlink()
    assert main(["batch", str(jobs), "--json"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert not [ev for ev in events if ev["event"] in ("submitted", "attached", "resubmitted")]
    assert events[-1]["deployed"] == 3
    check_exactly_once(proj, jobs.with_name(jobs.name + ".journal.jsonl"), truth)
    assert len(list((tmp_path / "jobs.out" / "j000").iterdir())) == 1  # one generation, deployed


def test_reattaching_to_a_finished_job_does_not_wait_a_poll_interval(world, comfy_server):
    """A rerun re-attaching to a job that finished while no one followed it collects it at once;
    it used to wait the whole quiet poll interval first (5 s by default, per job)."""
    from orchestrator.run import prepare_job

    tmp_path, proj, art = world
    rgb = np.random.default_rng(9).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(art / "f.png")
    cfg = load_config(servers=[comfy_server.url], environ={}).with_overrides(poll_interval=30.0)
    spec = prepare_job("orch-batch@1", {"image": str(art / "f.png")})
    c = ComfyClient(comfy_server.url, cfg)
    try:
        first = JobRun(c, spec)
        pid = first.submit()
        first.wait()
        again = JobRun(c, spec)
        t0 = time.monotonic()
        again.attach(pid)
        entry = again.wait()
        assert time.monotonic() - t0 < 10
        assert again.output_refs(entry) and again.resubmitted == 0
    finally:
        c.close()


def test_an_interrupt_landing_while_the_batch_cancels_is_a_cancel_not_a_failure():
    """ComfyUI's /interrupt raises a flag that whatever runs next picks up, so cancelling one
    job of a batch can interrupt another one just as Ctrl-C is being handled. That job was
    recorded failed ("interrupted on the server"), and skipped by --no-retry-failed for good.

    Fakes: the moment (our cancel set while the websocket delivers execution_interrupted, within
    one 0.25 s wait) cannot be produced on demand with a real server."""
    import queue as _queue

    from orchestrator.run import JobCancelledError, JobSpec

    cancel = threading.Event()

    class Q(_queue.SimpleQueue):
        def get(self, block=True, timeout=None):
            cancel.set()  # Ctrl-C arrives while this job waits for its events...
            return {"type": "execution_interrupted", "data": {"node_id": "1", "node_type": "LoadImage"}}

    class Events:
        connected = True

        def subscribe(self, pid):
            return Q()

        def unsubscribe(self, pid):
            pass

    class Client:
        events = Events()
        config = load_config(servers=["http://127.0.0.1:9"], environ={})
        display_url = "http://127.0.0.1:9"
        cancelled = []

        def submit(self, prompt, prompt_id=None):
            return prompt_id

        def cancel(self, pid):
            self.cancelled.append(pid)

    spec = JobSpec(prompt={"1": {"class_type": "LoadImage", "inputs": {}}}, workflow="w@1")
    run = JobRun(Client(), spec, cancel=cancel)
    run.submit()
    with pytest.raises(JobCancelledError):
        run.wait()


def test_the_same_jobs_file_through_a_symlink_shares_its_journal_and_lock(tmp_path):
    """The journal was named after the path given: the same jobs through a symlink had a
    journal (and lock) of its own, and two runs at once ran every job twice."""
    from orchestrator.batch import BatchBusyError, journal_path_for

    real = tmp_path / "jobs.toml"
    real.write_text('[[job]]\nworkflow = "cleanup@1"\n')
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "other.toml"
    link.symlink_to(real)
    assert journal_path_for(link) == journal_path_for(real) == tmp_path / "jobs.toml.journal.jsonl"
    assert journal_path_for(link, tmp_path / "state") == journal_path_for(real, tmp_path / "state")
    first = Journal(journal_path_for(real))
    try:
        with pytest.raises(BatchBusyError):
            Journal(journal_path_for(link))
    finally:
        first.close()


def test_an_edited_input_image_makes_a_new_job(tmp_path):
    """The job's key hashed the image's path, not its content: a rerun after the art was
    edited said "already done", and the game kept the old asset."""
    art = tmp_path / "art.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(art)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nid = "a"\nworkflow = "cleanup@1"\nset = { image = "art.png" }\n'
                    '[[job]]\nworkflow = "cleanup@1"\nset = { image = "art.png", seed = 2 }\n')
    before = load_jobs_file(jobs).jobs
    assert load_jobs_file(jobs).jobs[0].key == before[0].key  # the same bytes: the same job
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(art)
    after = load_jobs_file(jobs).jobs
    assert after[0].id == "a" and after[0].key != before[0].key
    assert after[1].key != before[1].key and after[1].id != before[1].id  # an id-less job's id is its key


def test_a_job_whose_workflow_is_other_content_now_is_a_new_job(tmp_path, monkeypatch):
    """A job of `txt2img@1` finished on 1.0.0; once 1.2.0 was released, a rerun said "already
    done" and the game kept 1.0.0's art. The release a name or prefix resolves to, and a
    workflow file's content, are part of the job's key; an exact release's key is unchanged."""
    import shutil

    root = tmp_path / "workflows"
    shutil.copytree(Path(__file__).parent / "data" / "workflows", root)
    newer = tmp_path / "held-back"
    shutil.move(root / "txt2img" / "1.2.0", newer)
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}))
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nid = "prefix"\nworkflow = "txt2img@1"\n'
                    '[[job]]\nid = "exact"\nworkflow = "txt2img@1.0.0"\n'
                    '[[job]]\nid = "file"\nworkflow = "flow.json"\n')
    before = {j.id: j.key for j in load_jobs_file(jobs).jobs}
    assert {j.id: j.key for j in load_jobs_file(jobs).jobs} == before
    shutil.move(newer, root / "txt2img" / "1.2.0")
    flow.write_text(json.dumps({"1": {"class_type": "EmptyImage", "inputs": {"width": 16}}}))
    after = {j.id: j.key for j in load_jobs_file(jobs).jobs}
    assert after["prefix"] != before["prefix"] and after["file"] != before["file"]
    assert after["exact"] == before["exact"]


def test_an_image_already_on_the_server_is_not_written_again(comfy_server, tmp_path):
    """Uploads are named by their content, and were sent with overwrite: a second batch
    uploading the same image rewrote the file while the first one's LoadImage read it (a job
    failed as "no pixel grid"). The server now keeps the file it has."""
    cfg = load_config(servers=[comfy_server.url], environ={})
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(7).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    name = f"dedupe-{os.getpid()}-{time.monotonic_ns()}.png"
    c1 = ComfyClient(comfy_server.url, cfg)
    try:
        ref = c1.upload_image(png, name)
    finally:
        c1.close()
    stored = Path(comfy_server.input_dir) / ref
    stamp = stored.stat().st_mtime_ns
    time.sleep(0.05)
    c2 = ComfyClient(comfy_server.url, cfg)  # another process's client: no cache of the first upload
    try:
        assert c2.upload_image(png, name) == ref
    finally:
        c2.close()
    assert stored.stat().st_mtime_ns == stamp and stored.read_bytes() == png


def test_an_editor_file_job_takes_its_node_definitions_from_a_server_that_answers(world, comfy_server, capsys):
    """The node definitions an editor-format file is converted with came from the batch's first
    server only: with that one down, the whole batch stopped, though another server was up."""
    from support.workflow_builder import Graph, to_editor

    tmp_path, proj, art = world
    client = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    try:
        info = client.object_info()
        rgb = np.random.default_rng(4).integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
        Image.fromarray(rgb, "RGB").save(tmp_path / "e.png")
        ref = client.upload_image((tmp_path / "e.png").read_bytes(), "batch-editor.png")
    finally:
        client.close()
    g = Graph()
    load = g.add("LoadImage", image=ref)
    inv = g.add("ImageInvert", image=load.out)
    up = g.add("DGXPixelsNearestUpscale", image=inv.out, scale=2)  # and back to exact 8-bit values
    g.add("SaveImage", images=up.out, filename_prefix="batch_editor")
    ui = tmp_path / "inv.ui.json"
    ui.write_text(json.dumps(to_editor(g, info)))
    jobs = tmp_path / "editor.toml"
    jobs.write_text(f'servers = ["http://127.0.0.1:9", "{comfy_server.url}"]\n[defaults]\nbevy = "{proj}"\n\n'
                    f'[[job]]\nid = "e1"\nworkflow = "{ui}"\nasset_path = "sprites/e.png"\n')
    assert main(["batch", str(jobs)]) == 0, capsys.readouterr().err
    got = np.asarray(Image.open(proj / "assets" / "sprites" / "e.png").convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(255 - rgb, 2, axis=0), 2, axis=1))
