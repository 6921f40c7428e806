"""Bad input gives one clear error, the documented exit code, and nothing half-deployed.

Unknown workflow or version, a parameter that does not exist or has the wrong type, a server
that is down, a workflow with a missing node type, a node that fails while running, an asset
path that escapes assets/, a jobs file with one bad job (nothing is submitted).
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("requests")
pytest.importorskip("websocket")

from orchestrator.cli import main  # noqa: E402
from orchestrator.client import ComfyClient  # noqa: E402
from orchestrator.config import load_config  # noqa: E402

TOML = """\
name = "err-postproc"
version = "1.0.0"
description = "invert + enlarge (error tests)"
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
"""

API = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["2", 0], "scale": 2}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "err"}},
}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    root = tmp_path / "workflows"
    for name, api in (("err-postproc", API), ("err-missing-node", {**API, "2": {"class_type": "DGXPixelsNotInstalled", "inputs": {"image": ["1", 0]}}})):
        folder = root / name / "1.0.0"
        folder.mkdir(parents=True)
        (folder / "workflow.toml").write_text(TOML.replace("err-postproc", name))
        (folder / "workflow.api.json").write_text(json.dumps(api))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    img = tmp_path / "in.png"
    Image.fromarray(np.full((4, 4, 3), 100, np.uint8), "RGB").save(img)
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    return img, proj


def _nothing_deployed(proj: Path) -> bool:
    files = [p for p in (proj / "assets").rglob("*") if p.is_file() and ".dgx-pixels" not in p.parts]
    manifest = proj / "assets" / ".dgx-pixels" / "manifest.json"
    return not files and (not manifest.exists() or json.loads(manifest.read_text())["assets"] == [])


def _run(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "ref, sets, code, words",
    [
        ("no-such-workflow@1", [], 4, ["unknown workflow 'no-such-workflow'", "available workflows"]),
        ("err-postproc@7", [], 4, ["err-postproc has no version 7", "1.0.0"]),
        ("err-postproc@1", ["nope=3"], 4, ["has no parameter 'nope'", "known parameters: image, scale"]),
        ("err-postproc@1", ["scale=big"], 4, ["parameter 'scale'", "expected an integer", "'big'"]),
        ("err-postproc@1", ["scale=500"], 4, ["parameter 'scale'", "out of range"]),
        ("err-postproc@1", ["scale"], 2, ["not key=value"]),
    ],
)
def test_bad_workflow_or_parameter(setup, comfy_server, tmp_path, capsys, ref, sets, code, words):
    img, proj = setup
    args = ["run", ref, "--set", f"image={img}"] + sum((["--set", s] for s in sets), [])
    args += ["--server", comfy_server.url, "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png"]
    rc, err = _run(args, capsys)
    assert rc == code, err
    assert err.startswith("error: ") and "Traceback" not in err
    for w in words:
        assert w in err
    assert _nothing_deployed(proj) and not (tmp_path / "o").exists()


def test_a_workflow_file_that_is_not_there_is_named_with_or_without_set(tmp_path, capsys):
    for ref, message in ((tmp_path / "nosuch.json", f"workflow file not found: {tmp_path / 'nosuch.json'}"),
                         (tmp_path, f"{tmp_path} is a folder, not a workflow file")):
        for sets in ([], ["--set", "colors=3"]):
            rc, err = _run(["run", str(ref), *sets, "--server", "http://127.0.0.1:9"], capsys)
            assert rc == 4 and err.startswith(f"error: {message}") and "\nhint: " in err, err


def test_server_down(setup, tmp_path, capsys):
    img, proj = setup
    port = _free_port()
    rc, err = _run(["run", "err-postproc@1", "--set", f"image={img}", "--server", f"http://127.0.0.1:{port}",
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png"], capsys)
    assert rc == 3
    assert f"ComfyUI server http://127.0.0.1:{port} is not reachable" in err and "hint:" in err
    assert _nothing_deployed(proj)
    rc, err = _run(["doctor", "--server", f"http://127.0.0.1:{port}"], capsys)
    assert rc == 3


@pytest.mark.parametrize("sig, code, word", [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_a_stop_signal_while_waiting_on_a_server_gives_its_exit_code(tmp_path, sig, code, word):
    """Stopped while a server keeps it waiting (it accepts the connection and never answers):
    Ctrl-C exits 130, SIGTERM 143 (128 + 15, as a shell reports a process the signal ended),
    each after the clean-up and with one line saying so, no traceback."""
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DGX_PIXELS_SERVER"}
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", "cleanup", "--server",
                                 f"http://127.0.0.1:{port}", "--out", str(tmp_path / "o")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                # SIGINT at its default (a test run in the background inherits it ignored)
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            silent.settimeout(60)
            conn, _ = silent.accept()  # the command is now waiting on the server
            with conn:
                proc.send_signal(getattr(signal, sig))
                out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == code, (out, err)
    assert err.strip() == word, err


def test_missing_node_type(setup, comfy_server, tmp_path, capsys):
    img, proj = setup
    rc, err = _run(["run", "err-missing-node@1", "--set", f"image={img}", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png"], capsys)
    assert rc == 4
    assert "node 2 (DGXPixelsNotInstalled)" in err and "does not exist" in err
    assert _nothing_deployed(proj)


def test_node_failing_at_run_time_is_named(setup, comfy_server, tmp_path, capsys):
    _, proj = setup
    # garbage already in the server's input folder: only running the node finds it out
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    name = c.upload_image(b"this is not an image at all", "err-garbage.png")
    c.close()
    rc, err = _run(["run", "err-postproc@1", "--set", f"image={name}", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png", "--fresh"], capsys)
    assert rc == 5, err
    assert "node 1 (LoadImage) failed" in err and "cannot identify image file" in err
    assert _nothing_deployed(proj)


def test_a_local_file_that_is_no_image_is_named_before_anything_is_submitted(setup, comfy_server, tmp_path, capsys):
    _, proj = setup
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    before = len(c._json("GET", "/history"))
    rc, err = _run(["run", "err-postproc@1", "--set", f"image={garbage}", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png"], capsys)
    assert rc == 4, err
    assert err.startswith(f"error: parameter 'image': {garbage} is not a readable image") and "\nhint: " in err
    assert len(c._json("GET", "/history")) == before and _nothing_deployed(proj)
    c.close()


def test_a_workflow_run_without_its_image_says_which_parameter_to_set(comfy_server, tmp_path, capsys, monkeypatch):
    """As the shipped workflows do, the image parameter has a placeholder default, one this
    server does not hold."""
    folder = tmp_path / "workflows" / "err-default" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "workflow.toml").write_text(TOML.replace("err-postproc", "err-default").replace(
        'targets = ["1.image"]\nrequired = true', 'targets = ["1.image"]\ndefault = "no-such-placeholder-7f3a.png"'))
    (folder / "workflow.api.json").write_text(json.dumps(API))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(tmp_path / "workflows"))
    rc, err = _run(["run", "err-default@1", "--server", comfy_server.url, "--out", str(tmp_path / "o")], capsys)
    assert rc == 4, err
    assert "needs an input image: parameter 'image' was not given, and its default 'no-such-placeholder-7f3a.png' " \
           "is not in the server's input folder" in err
    assert "hint: pass --set image=PATH (a local file is uploaded)" in err
    # validating it needs no image: that is given at run time; and validate finds the server
    # where run does, here from the environment
    monkeypatch.setenv("DGX_PIXELS_SERVER", comfy_server.url)
    rc = main(["workflows", "validate", "err-default@1"])
    out = capsys.readouterr().out
    assert rc == 0 and "warning: image: input image not given (give it at run time with --set image=PATH)" in out


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/x.png", "sprites/../../x.png", "a\\b.png"])
def test_escaping_asset_path_is_refused_before_running(setup, comfy_server, tmp_path, capsys, bad):
    img, proj = setup
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    before = len(c._json("GET", "/history"))
    c.close()
    rc, err = _run(["run", "err-postproc@1", "--set", f"image={img}", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", bad], capsys)
    assert rc == 6 and "refusing to write" in err
    assert _nothing_deployed(proj) and not (tmp_path / "outside.png").exists()
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    assert len(c._json("GET", "/history")) == before  # nothing was submitted
    c.close()


@pytest.mark.parametrize("bevy, out, code, message, extra", [
    ("{tmp}/nosuchgame", None, 2, "Bevy project folder {tmp}/nosuchgame does not exist", []),
    ("{tmp}/nocargo", None, 6, "{tmp}/nocargo is not a Bevy project: it holds no Cargo.toml", []),
    # usage, as `run --help` says (was exit 6)
    ("{proj}", "{tmp}/afile", 2, "cannot write into --out {tmp}/afile: it is a file, not a folder", []),
    # refused only after the job had run on the server
    ("{proj}", None, 2, "--upscale must be a whole number 1..64, got 100; nothing was submitted", ["--upscale", "100"]),
    ("{proj}", None, 2, "--upscale must be a whole number 1..64, got 0; nothing was submitted", ["--upscale", "0"]),
])
def test_a_bad_project_or_output_folder_is_refused_before_the_job_runs(setup, comfy_server, tmp_path, capsys,
                                                                       bevy, out, code, message, extra):
    img, proj = setup
    (tmp_path / "nocargo").mkdir()
    (tmp_path / "afile").write_text("x")
    fmt = dict(tmp=tmp_path, proj=proj)
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    before = len(c._json("GET", "/history"))
    args = ["run", "err-postproc@1", "--set", f"image={img}", "--server", comfy_server.url, "--json",
            "--bevy", bevy.format(**fmt), "--asset-path", "sprites/a.png", "--fresh"]
    args += ["--out", out.format(**fmt) if out else str(tmp_path / "o"), *extra]
    rc = main(args)
    cap = capsys.readouterr()
    assert rc == code, cap.err
    assert message.format(**fmt) in cap.err
    # the --json event stream carries the error too
    assert json.loads(cap.out.strip().splitlines()[-1])["exit_code"] == code
    assert len(c._json("GET", "/history")) == before  # nothing was submitted
    c.close()
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'servers = ["{comfy_server.url}"]\n[[job]]\nworkflow = "err-postproc@1"\nbevy = "{tmp_path}/nosuchgame"\n'
                    f'set = {{ image = "{img}" }}\nasset_path = "sprites/a.png"\n')
    assert main(["batch", str(jobs)]) == 2
    assert "job " in capsys.readouterr().err


def test_batch_with_one_bad_job_submits_nothing(setup, comfy_server, tmp_path, capsys):
    img, proj = setup
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(
        f'servers = ["{comfy_server.url}"]\n[defaults]\nworkflow = "err-postproc@1"\nbevy = "{proj}"\n'
        f'[[job]]\nid = "good"\nset = {{ image = "{img}" }}\nasset_path = "sprites/good.png"\n'
        f'[[job]]\nid = "bad"\nset = {{ image = "{img}", scale = "huge" }}\nasset_path = "sprites/bad.png"\n'
    )
    rc, err = _run(["batch", str(jobs)], capsys)
    assert rc == 4
    assert "job bad" in err and "parameter 'scale'" in err
    journal = tmp_path / "jobs.toml.journal.jsonl"
    recs = [json.loads(x) for x in journal.read_text().splitlines()] if journal.exists() else []
    assert not [r for r in recs if r.get("state") == "submitted"]
    assert _nothing_deployed(proj)


def test_bad_jobs_file_names_the_job_and_key(tmp_path, capsys):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nworkflow = "x@1"\nsett = { a = 1 }\n')
    rc, err = _run(["batch", str(jobs)], capsys)
    assert rc == 2 and "job #1" in err and "sett" in err
    jobs.write_text("not toml [[[")
    rc, err = _run(["batch", str(jobs)], capsys)
    assert rc == 2 and "not valid TOML" in err


def test_json_mode_reports_the_error_as_an_event(setup, comfy_server, tmp_path, capsys):
    img, _ = setup
    rc = main(["run", "err-missing-node@1", "--set", f"image={img}", "--server", comfy_server.url,
               "--out", str(tmp_path / "o"), "--json"])
    cap = capsys.readouterr()
    last = json.loads(cap.out.strip().splitlines()[-1])
    assert rc == 4 and last["event"] == "error" and last["exit_code"] == 4
    assert "node 2 (DGXPixelsNotInstalled)" in last["message"] and last["kind"] == "PromptRejectedError"


def _history_len(url: str) -> int:
    c = ComfyClient(url, load_config(servers=[url], environ={}))
    try:
        return len(c._json("GET", "/history"))
    finally:
        c.close()


def test_a_missing_model_names_the_file_its_folder_and_the_models_command(comfy_server, tmp_path, capsys, monkeypatch):
    """The shipped sprite workflow on a server without its SDXL checkpoint and LoRA: run and
    batch both say which file is missing for which node and where the server looks for it,
    exit 4, and nothing runs (batch finds it before submitting any job)."""
    monkeypatch.delenv("DGX_PIXELS_WORKFLOWS", raising=False)
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    ckpts = c.object_info("CheckpointLoaderSimple")["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    c.close()
    if "sd_xl_base_1.0.safetensors" in ckpts:
        pytest.skip("this server has the SDXL checkpoint")
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    words = ["'sd_xl_base_1.0.safetensors' for node 1 (CheckpointLoaderSimple), input 'ckpt_name': "
             "the server looks for it in models/checkpoints/",
             "'pixel-art-xl.safetensors' for node 2 (LoraLoader), input 'lora_name': "
             "the server looks for it in models/loras/",
             "\nhint: `dgx-pixels models pull sdxl-base pixel-art-xl` downloads them"]
    before = _history_len(comfy_server.url)
    rc, err = _run(["run", "sprite", "--set", "prompt=a knight", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/k2.png"], capsys)
    assert rc == 4, err
    assert err.startswith("error: the server is missing model files: ") and "Value not in list" not in err
    for w in words:
        assert w in err, err
    assert "install the missing node pack" not in err and _nothing_deployed(proj)

    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'servers = ["{comfy_server.url}"]\n[defaults]\nworkflow = "sprite@1"\nbevy = "{proj}"\n'
                    '[[job]]\nid = "a"\nasset_path = "sprites/a.png"\n'
                    '[[job]]\nid = "b"\nset = { prompt = "a knight" }\nasset_path = "sprites/b.png"\n')
    rc, err = _run(["batch", str(jobs)], capsys)
    assert rc == 4, err
    assert err.startswith("error: jobs a, b: the server is missing model files: "), err
    for w in words:
        assert w in err, err
    journal = tmp_path / "jobs.toml.journal.jsonl"
    recs = [json.loads(x) for x in journal.read_text().splitlines()] if journal.exists() else []
    assert not [r for r in recs if r.get("state") in ("submitted", "failed")]
    assert _history_len(comfy_server.url) == before and _nothing_deployed(proj)


@pytest.mark.parametrize("value", ["art/nonexist.png", "nonexist-7f3a.png"])
def test_a_mistyped_local_image_path_is_bad_usage_not_a_node_pack_problem(setup, comfy_server, tmp_path, capsys,
                                                                          monkeypatch, value):
    """A path that names no local file, and that the server's input folder (which the server's
    rejection speaks for) does not hold either, is a typo: exit 2, saying so."""
    _, proj = setup
    monkeypatch.chdir(tmp_path)
    before = _history_len(comfy_server.url)
    rc, err = _run(["run", "err-postproc@1", "--set", f"image={value}", "--server", comfy_server.url,
                    "--out", str(tmp_path / "o"), "--bevy", str(proj), "--asset-path", "sprites/a.png"], capsys)
    assert rc == 2, err
    assert err.startswith(f"error: parameter 'image': no such local file {value} (nor in the server's input folder)")
    assert "\nhint: check the path" in err and "node pack" not in err
    assert _history_len(comfy_server.url) == before and _nothing_deployed(proj)



@pytest.mark.parametrize("bad", ["out_file", "asset_path"])
def test_batch_refuses_an_output_file_in_the_way_or_an_asset_path_without_png_before_submitting(
        setup, comfy_server, tmp_path, capsys, bad):
    """A file named like the batch's output folder, or an asset path that is no .png, failed
    every job only after it had run on the server (exit 5); both are now bad usage found
    before anything is submitted."""
    img, proj = setup
    jobs = tmp_path / "jobs.toml"
    asset = "sprites/odd" if bad == "asset_path" else "sprites/a.png"
    jobs.write_text(f'servers = ["{comfy_server.url}"]\n[defaults]\nworkflow = "err-postproc@1"\nbevy = "{proj}"\n'
                    f'[[job]]\nid = "a"\nset = {{ image = "{img}" }}\nasset_path = "{asset}"\n')
    if bad == "out_file":
        (tmp_path / "jobs.out").write_text("my notes")
    before = _history_len(comfy_server.url)
    rc, err = _run(["batch", str(jobs)], capsys)
    assert rc == 2, err
    if bad == "out_file":
        assert f"error: the output folder {tmp_path / 'jobs.out'} is a file; nothing was submitted" in err
        assert (tmp_path / "jobs.out").read_text() == "my notes"
    else:
        assert "job a: asset path 'sprites/odd' must end in .png (or / for a folder" in err
    assert _history_len(comfy_server.url) == before and _nothing_deployed(proj)


def test_a_failing_node_is_hinted_with_the_workflows_parameters_that_set_it(comfy_server, tmp_path, capsys):
    """Grid Snap's "no pixel grid found" hint names its inputs (mode, cell_size...), and `run`
    added "fix the named node's input": but a workflow run sets them through its parameters,
    under other names (grid_mode). The hint now lists them."""
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(flat)
    rc = main(["run", "cleanup", "--set", f"image={flat}", "--server", comfy_server.url, "--fresh", "-q",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 5, err
    assert "no pixel grid found" in err
    assert ("hint: change the named node's input, through --set: node 2's parameters are grid_mode (mode), "
            "cell_size (cell_size), target_width (target_width), target_height (target_height)") in err


def test_a_link_to_a_node_that_is_not_there_is_said_so(comfy_server, tmp_path, capsys):
    """A workflow file whose input links to a missing node was refused with the server's words,
    "Exception when validating inner node: '99'", where `workflows validate` says what it is."""
    flow = tmp_path / "badlink.json"
    flow.write_text(json.dumps({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["99", 0], "filename_prefix": "badlink"}},
    }))
    assert main(["run", str(flow), "--server", comfy_server.url, "--out", str(tmp_path / "o")]) == 4
    err = capsys.readouterr().err
    assert "node 3 (SaveImage): input 'images' links to node '99', which is not in the workflow" in err, err
