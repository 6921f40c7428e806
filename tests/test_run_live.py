"""``run_workflow`` and ``dgx-pixels run`` against a real ComfyUI: registry workflows, editor
files, events, cancel (hook, pending job, Ctrl-C), timeout, deploy with provenance."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("requests")
pytest.importorskip("websocket")

from orchestrator.cli import main  # noqa: E402
from orchestrator.client import ComfyClient  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.errors import JobTimeoutError  # noqa: E402
from orchestrator.run import JobCancelledError, JobRun, prepare_job, run_workflow  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

POSTPROC_TOML = """\
name = "orch-postproc"
version = "1.2.0"
description = "invert, then enlarge with whole pixels (test workflow)"
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

[params.prefix]
type = "str"
targets = ["4.filename_prefix"]
default = "orch"
"""

POSTPROC_API = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["2", 0], "scale": 2}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "orch"}},
}


def slow_prompt(color: int, size: int = 1024, radius: int = 16, prefix: str = "slow") -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": radius, "sigma": 6.0}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": radius, "sigma": 6.0}},
        "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["3", 0], "upscale_method": "nearest-exact", "scale_by": 0.02}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def _color() -> int:
    return (time.monotonic_ns() // 1000) % 0xFFFFFF


@pytest.fixture
def wf_root(tmp_path, monkeypatch):
    folder = tmp_path / "workflows" / "orch-postproc" / "1.2.0"
    folder.mkdir(parents=True)
    (folder / "workflow.toml").write_text(POSTPROC_TOML)
    (folder / "workflow.api.json").write_text(json.dumps(POSTPROC_API))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(tmp_path / "workflows"))
    return tmp_path / "workflows"


@pytest.fixture
def sprite(tmp_path):
    rgb = np.random.default_rng(11).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    p = tmp_path / "sprite.png"
    Image.fromarray(rgb, "RGB").save(p)
    return p, rgb


@pytest.fixture
def client(comfy_server):
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    yield c
    c.close()


def _bevy(tmp_path) -> Path:
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[package]\nname = "game"\n\n[dependencies]\nbevy = "0.14"\n')
    return proj


def _wait_queue_empty(client, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if client.queue().load == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the server's queue did not empty")


def test_registry_workflow_runs_and_outputs_the_right_pixels(wf_root, sprite, client, tmp_path):
    path, rgb = sprite
    events = []
    res = run_workflow("orch-postproc@1", {"image": str(path), "scale": "3"}, client=client,
                       out_dir=tmp_path / "out", on_event=events.append, fresh=True)
    assert res.workflow == "orch-postproc@1.2.0" and res.content_hash.startswith("sha256:")
    assert res.params == {"image": str(path), "scale": 3, "prefix": "orch"}
    assert len(res.outputs) == 1 and res.outputs[0].node_id == "4" and res.outputs[0].node_type == "SaveImage"
    got = np.asarray(Image.open(res.outputs[0].path).convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(255 - rgb, 3, axis=0), 3, axis=1))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "submitted" and "started" in kinds and "completed" in kinds and kinds[-1] == "output"
    assert all(e["prompt_id"] == res.prompt_id for e in events)


def test_cli_run_json_deploys_with_provenance(wf_root, sprite, comfy_server, tmp_path, capsys):
    path, rgb = sprite
    proj = _bevy(tmp_path)
    rc = main(["run", "orch-postproc@1.2.0", "--set", f"image={path}", "--set", "scale=2", "--set", "prefix=cli",
               "--server", comfy_server.url, "--json", "--fresh", "--out", str(tmp_path / "out"),
               "--bevy", str(proj), "--asset-path", "sprites/hero.png"])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines[0]["event"] == "submitted"
    result = lines[-1]
    assert result["event"] == "result" and result["deployed"][0]["asset_path"] == "sprites/hero.png"
    deployed = proj / "assets" / "sprites" / "hero.png"
    np.testing.assert_array_equal(np.asarray(Image.open(deployed).convert("RGB")),
                                  np.repeat(np.repeat(255 - rgb, 2, axis=0), 2, axis=1))
    assert (proj / "assets" / "sprites" / "hero.png.meta").is_file()
    manifest = json.loads((proj / "assets" / ".dgx-pixels" / "manifest.json").read_text())
    entry = manifest["assets"][0]
    prov = entry["provenance"]
    assert prov["workflow"] == "orch-postproc@1.2.0" and prov["content_hash"].startswith("sha256:")
    assert prov["params"]["scale"] == 2 and prov["params"]["prefix"] == "cli"
    assert prov["comfyui_version"] == "0.3.75" and prov["server"] == comfy_server.url
    assert prov["prompt_id"] == result["prompt_id"] and prov["node_pack_version"]
    assert prov["source"]["sha256"] == result["outputs"][0]["sha256"]
    # history lists it
    rc = main(["history", "--bevy", str(proj)])
    out = capsys.readouterr().out
    assert rc == 0 and "sprites/hero.png" in out and "orch-postproc@1.2.0" in out


def test_plain_progress_lines_when_not_a_tty(wf_root, sprite, comfy_server, tmp_path):
    path, _ = sprite
    env = {**os.environ, "DGX_PIXELS_WORKFLOWS": str(wf_root)}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", "orch-postproc@1", "--set", f"image={path}",
                           "--server", comfy_server.url, "--out", str(tmp_path / "o"), "--fresh"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert "submitted orch-postproc@1.2.0" in proc.stderr and "finished" in proc.stderr
    out_file = Path(proc.stdout.strip().splitlines()[-1])
    assert out_file.is_file() and out_file.parent == (tmp_path / "o").resolve()


def test_editor_format_file_runs(sprite, client, comfy_server, tmp_path, capsys):
    pytest.importorskip("orchestrator.convert")
    from support.workflow_builder import Graph, to_api, to_editor

    path, rgb = sprite
    ref = client.upload_image(path.read_bytes(), "editor-sprite.png")
    info = client.object_info()
    g = Graph()
    load = g.add("LoadImage", image=ref)
    inv = g.add("ImageInvert", image=load.out)
    up = g.add("DGXPixelsNearestUpscale", image=inv.out, scale=4)
    g.add("SaveImage", images=up.out, filename_prefix="editor")
    ui = to_editor(g, info)
    f = tmp_path / "sprite.ui.json"
    f.write_text(json.dumps(ui))
    rc = main(["run", str(f), "--server", comfy_server.url, "--out", str(tmp_path / "o"), "--json", "--fresh"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    got = np.asarray(Image.open(result["outputs"][0]["path"]).convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(255 - rgb, 4, axis=0), 4, axis=1))
    api = to_api(g, info)
    assert {k: v["class_type"] for k, v in api.items()} == {"1": "LoadImage", "2": "ImageInvert",
                                                           "3": "DGXPixelsNearestUpscale", "4": "SaveImage"}
    # the library entry point runs it too (its docstring says so): it converted with no node
    # definitions and asked for a --server flag a library caller does not have
    res = run_workflow(str(f), client=client, out_dir=tmp_path / "lib", fresh=True)
    got = np.asarray(Image.open(res.outputs[0].path).convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(255 - rgb, 4, axis=0), 4, axis=1))


def test_editor_file_exported_by_the_comfyui_frontend_runs(comfy_server, tmp_path):
    """A file the real editor exported (subgraph, bypass, mute, Reroute, legacy Primitive
    with a stale target value, Note) runs with `dgx-pixels run FILE` and gives the pixels the
    graph describes."""
    from support import frontend_graph as fg

    assert fg.STORED.is_file(), fg.STORED
    rgb = fg.provide_input(comfy_server.url)
    result = fg.run_with_cli(fg.STORED, comfy_server.url, tmp_path / "out")
    fg.check_result(result, rgb)


def test_model_free_part_of_a_published_template_runs(shared_dir, client, comfy_server, tmp_path):
    """Every published template needs model weights, but ``video_wan_vace_flf2v`` builds its
    frame batch (first frame, 79 white frames, last frame) from core image nodes inside a
    subgraph, sized by core primitive nodes. That part of our conversion, with its Preview
    switched to a Save, must run and give exactly that batch."""
    from orchestrator.convert import convert_ui_to_api

    folder = shared_dir / "workflow-convert" / "dev"
    ui_file = folder / "video_wan_vace_flf2v.ui.json"
    if not ui_file.is_file():
        pytest.skip(f"{ui_file} is absent")
    prompt = convert_ui_to_api(json.loads(ui_file.read_text()), client.object_info())
    frontend = json.loads((folder / "video_wan_vace_flf2v.api.json").read_text())
    preview = "191:151"
    keep, todo = set(), [preview]
    while todo:
        nid = todo.pop()
        if nid not in keep:
            keep.add(nid)
            todo += [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    assert {prompt[n]["class_type"] for n in keep} == {
        "LoadImage", "PrimitiveInt", "SolidMask", "MaskToImage", "RepeatImageBatch", "ImageBatch", "PreviewImage"}
    for nid in keep:
        assert prompt[nid]["inputs"] == frontend[nid]["inputs"], nid
    part = {nid: prompt[nid] for nid in keep}
    part[preview] = {"class_type": "SaveImage",
                     "inputs": {"images": part[preview]["inputs"]["images"], "filename_prefix": "template-part"}}
    side = part["193"]["inputs"]["value"], part["194"]["inputs"]["value"]
    length = part["171"]["inputs"]["value"]
    assert side == (512, 512) and length == 79
    rng = np.random.default_rng(5)
    frames = {}
    for nid in ("144", "147"):
        frames[nid] = rng.integers(0, 256, size=(side[1], side[0], 3), dtype=np.uint8)
        name = part[nid]["inputs"]["image"]
        buf = tmp_path / name
        Image.fromarray(frames[nid]).save(buf)
        assert client.upload_image(buf.read_bytes(), name, subfolder="") == name
    api_file = tmp_path / "template-part.json"
    api_file.write_text(json.dumps(part))
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(api_file), "--server", comfy_server.url,
                           "--out", str(tmp_path / "o"), "--json", "--fresh"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = json.loads(proc.stdout.strip().splitlines()[-1])["outputs"]
    assert len(outs) == length + 2
    white = np.full((side[1], side[0], 3), 255, np.uint8)
    expected = [frames["144"]] + [white] * length + [frames["147"]]
    for out, want in zip(outs, expected):
        np.testing.assert_array_equal(np.asarray(Image.open(out["path"]).convert("RGB")), want)


def test_cancel_hook_interrupts_the_running_job(client, tmp_path):
    cancel = threading.Event()
    events = []

    def on_event(ev):
        events.append(ev)
        if ev["event"] == "executing" and ev.get("node") == "2":
            cancel.set()

    with pytest.raises(JobCancelledError):
        run_workflow(slow_prompt(_color()), client=client, out_dir=tmp_path / "o", on_event=on_event, cancel=cancel)
    pid = events[0]["prompt_id"]
    _wait_queue_empty(client)
    entry = client.history(pid)
    assert entry is not None and entry["status"]["status_str"] == "error"
    assert any(name == "execution_interrupted" for name, _ in entry["status"]["messages"])
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_cancelling_a_pending_job_removes_it_from_the_queue(client, tmp_path):
    blocker = JobRun(client, prepare_job(slow_prompt(_color())))
    blocker.submit()
    cancel = threading.Event()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if ev["event"] == "submitted":
            cancel.set()

    with pytest.raises(JobCancelledError):
        run_workflow(slow_prompt(_color(), size=64, radius=2), client=client, out_dir=tmp_path / "o",
                     on_event=on_event, cancel=cancel)
    pid = seen[0]["prompt_id"]
    assert pid not in client.queue()
    blocker.wait()
    time.sleep(0.3)
    assert client.history(pid) is None  # never ran


def test_timeout_stops_the_remote_job(client, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(JobTimeoutError) as ei:
        run_workflow(slow_prompt(_color()), client=client, out_dir=tmp_path / "o", timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert ei.value.exit_code == 5 and "0.5 s" in ei.value.message
    _wait_queue_empty(client)


def test_ctrl_c_exits_130_and_interrupts_the_remote_job(comfy_server, client, tmp_path):
    wf = tmp_path / "slow.json"
    wf.write_text(json.dumps(slow_prompt(_color())))
    # as from a terminal: a test run started in the background inherits SIGINT ignored (POSIX
    # shells do that to background jobs), and a Python started so never sees Ctrl-C
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(wf), "--server", comfy_server.url,
                             "--out", str(tmp_path / "o"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pid = None
    for line in proc.stdout:
        ev = json.loads(line)
        if ev["event"] == "executing":
            pid = ev["prompt_id"]
            break
    assert pid is not None
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    err = proc.stderr.read()
    assert rc == 130, err
    assert f"error: job {pid} cancelled here (Ctrl-C or SIGTERM); the server dropped it from its queue, or stops " \
           "it after the running node" in err and "hint: run the same command again to start it over" in err
    _wait_queue_empty(client)
    entry = client.history(pid)
    assert entry is None or entry["status"]["status_str"] == "error"


def test_start_workflow_handle_status_result_and_cancel(wf_root, sprite, client, tmp_path):
    from orchestrator.run import start_workflow

    path, rgb = sprite
    h = start_workflow("orch-postproc@1", {"image": str(path), "scale": 2}, client=client, out_dir=tmp_path / "a",
                       fresh=True)
    res = h.result(timeout=60)
    assert h.done() and h.status()["state"] == "done" and h.prompt_id == res.prompt_id
    np.testing.assert_array_equal(np.asarray(Image.open(res.outputs[0].path).convert("RGB")),
                                  np.repeat(np.repeat(255 - rgb, 2, axis=0), 2, axis=1))

    slow = start_workflow(slow_prompt(_color()), client=client, out_dir=tmp_path / "b")
    t0 = time.monotonic()
    while slow.status()["state"] not in ("running",) and time.monotonic() - t0 < 30:
        time.sleep(0.02)
    assert slow.status()["state"] == "running" and slow.status()["prompt_id"]
    with pytest.raises(TimeoutError):
        slow.result(timeout=0.01)
    slow.cancel()
    assert slow.status()["state"] == "cancelled"
    with pytest.raises(JobCancelledError):
        slow.result(timeout=1)
    _wait_queue_empty(client)


def test_server_restart_mid_job_resubmits_once_under_the_same_id(comfy_server_factory, tmp_path):
    """SIGKILL the server while the job runs, start it again: the job is found in neither
    /queue nor /history, so it is submitted again, once, under the same prompt id."""
    srv = comfy_server_factory()
    cfg = load_config(servers=[srv.url], environ={}).with_overrides(poll_interval=1.0)
    c = ComfyClient(srv.url, cfg)
    box = {}

    def restart():
        os.kill(srv.pid, signal.SIGKILL)
        srv.process.wait(10)
        for _ in range(20):
            try:
                box["new"] = comfy_server_factory(port=srv.port, base_dir=srv.base_dir)
                return
            except Exception as exc:  # noqa: BLE001 - shown by the assertion
                box["error"] = repr(exc)
                time.sleep(0.5)

    events = []

    def on_event(ev):
        events.append(ev)
        if ev["event"] == "executing" and ev.get("node") == "2" and "thread" not in box:
            box["thread"] = threading.Thread(target=restart, daemon=True)
            box["thread"].start()

    try:
        res = run_workflow(slow_prompt(_color(), size=512, radius=8), client=c, out_dir=tmp_path / "o",
                           on_event=on_event)
    finally:
        c.close()
        if "thread" in box:
            box["thread"].join(120)
    assert "new" in box, box.get("error")
    kinds = [e["event"] for e in events]
    assert kinds.count("submitted") == 1 and kinds.count("resubmitted") == 1
    assert "server_down" in kinds or "reconnecting" in kinds
    assert res.resubmitted == 1 and all(e["prompt_id"] == res.prompt_id for e in events)
    assert len(res.outputs) == 1 and Path(res.outputs[0].path).is_file()


def _history_len(client) -> int:
    return len(client._json("GET", "/history"))


def test_an_asset_the_policy_refuses_is_refused_before_the_job_is_submitted(wf_root, sprite, client, comfy_server,
                                                                             tmp_path, capsys):
    """An asset dgx-pixels deployed: --overwrite fail, or the default replace once it was edited
    by hand, is refused (exit 6) before anything reaches the server, the same judgement the
    deploy makes afterwards; so is an asset path that is no .png. A file the manifest does not
    record may be what a killed deploy of this very job left: only the deploy, with the job's
    bytes, tells that from the user's own art, which it then refuses naming the kept output."""
    path, _ = sprite
    proj = _bevy(tmp_path)
    base = ["run", "orch-postproc@1", "--set", f"image={path}", "--server", comfy_server.url, "--fresh",
            "--out", str(tmp_path / "o"), "--bevy", str(proj)]
    assert main(base + ["--asset-path", "sprites/hero.png", "-q"]) == 0
    capsys.readouterr()
    hero = proj / "assets" / "sprites" / "hero.png"
    before = _history_len(client)
    cases = [
        (["--asset-path", "sprites/hero.png", "--overwrite", "fail"], f"{hero} already exists (--overwrite fail)"),
        (["--asset-path", "sprites/knight.gif"], "asset path 'sprites/knight.gif' must end in .png"),
    ]
    Image.new("RGB", (4, 4), (9, 9, 9)).save(hero)  # edited by hand since its deploy
    hero_bytes = hero.read_bytes()
    cases.append((["--asset-path", "sprites/hero.png", "--set", "scale=5"], f"{hero} was changed since dgx-pixels wrote it"))
    for extra, message in cases:
        rc = main(base + extra)
        err = capsys.readouterr().err
        assert rc == (2 if "must end in .png" in message else 6), err
        assert err.startswith(f"error: {message}") and "nothing was submitted" in err and "\nhint: " in err, err
    assert _history_len(client) == before and hero.read_bytes() == hero_bytes

    hand = proj / "assets" / "sprites" / "knight.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(hand)
    hand_bytes = hand.read_bytes()
    rc = main(base + ["--asset-path", "sprites/knight.png", "-q"])
    err = capsys.readouterr().err
    assert rc == 6 and err.startswith(f"error: {hand} exists and dgx-pixels never wrote it"), err
    assert "the job's output is kept in " + str(tmp_path / "o") in err
    assert hand.read_bytes() == hand_bytes


def test_a_deploy_refused_after_the_job_says_where_the_output_was_kept(wf_root, sprite, comfy_server, tmp_path,
                                                                       capsys, monkeypatch):
    """The asset appears while the job runs: the deploy (which checks again) refuses it, and
    even with -q the error names the downloaded output. Someone placing the file exactly
    while the job runs cannot be timed from outside, so the real download step is wrapped to
    place it right after the outputs are collected (the server and the job are real)."""
    from orchestrator import run as run_mod

    path, _ = sprite
    proj = _bevy(tmp_path)
    target = proj / "assets" / "sprites" / "late.png"
    collect = run_mod.JobRun.collect

    def collect_then_place(self, entry, out_dir):
        files = collect(self, entry, out_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (5, 5, 5)).save(target)
        return files

    monkeypatch.setattr(run_mod.JobRun, "collect", collect_then_place)
    rc = main(["run", "orch-postproc@1", "--set", f"image={path}", "--server", comfy_server.url, "--fresh", "-q",
               "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/late.png",
               "--overwrite", "fail"])
    cap = capsys.readouterr()
    assert rc == 6, cap.err
    kept = list((tmp_path / "o").iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".png"
    assert cap.err.startswith(f"error: {target} already exists") and f"the job's output is kept in {kept[0]}" in cap.err
