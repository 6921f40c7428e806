"""``dgx-pixels demo``, and ``python3 dev.py demo`` that runs it: the README's main job, end to end on a
live ComfyUI, judged by the files it leaves in the demo Bevy project and what it prints."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator import embedded, samples
from orchestrator.cli import main

REPO = Path(__file__).resolve().parent.parent


def _project_files(project: Path) -> set[str]:
    # the manifest's lock file is a lock, not a deployed file
    return {p.relative_to(project).as_posix() for p in project.rglob("*")
            if p.is_file() and p.name != "manifest.lock"}


def _printed_files(out: str) -> dict[str, int]:
    """``{relative path: size}`` from the demo's "files written" list."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\S+)  \((\d+) bytes\)$", out, re.M)}


def _check_project(project: Path, out: str) -> None:
    printed = _printed_files(out)
    # every file it wrote is printed, with its size, and nothing else was written
    assert set(printed) == _project_files(project) == {
        "Cargo.toml", "assets/sprites/knight.png", "assets/sprites/knight.png.meta",
        "assets/.dgx-pixels/manifest.json"}, out
    for rel, size in printed.items():
        assert (project / rel).stat().st_size == size, rel
    assert 'asset_server.load("sprites/knight.png")' in out

    # the 16x16 knight comes back from ~220 px pseudo pixel art: same size, same silhouette,
    # colours within a few levels of the drawing
    truth = samples.sprites()["knight"]
    with Image.open(project / "assets/sprites/knight.png") as im:
        assert im.mode == "RGBA" and im.size == (truth.shape[1], truth.shape[0])
        got = np.asarray(im)
    assert np.array_equal(got[..., 3] > 127, truth[..., 3] > 127)
    opaque = truth[..., 3] > 127
    assert np.abs(got[..., :3].astype(int) - truth[..., :3])[opaque].max() <= 24

    meta = (project / "assets/sprites/knight.png.meta").read_text()
    assert "bevy_image::image_loader::ImageLoader" in meta  # Bevy 0.15, from the new Cargo.toml
    assert "nearest" in meta.lower()
    # the sprite is one image: no atlas JSON is claimed or written
    assert not (project / "assets/sprites/knight.json").exists()

    (entry,) = json.loads((project / "assets/.dgx-pixels/manifest.json").read_text())["assets"]
    assert entry["path"] == "sprites/knight.png" and (entry["width"], entry["height"]) == (16, 16)
    prov = entry["provenance"]
    assert prov["workflow"].startswith("cleanup@") and prov["content_hash"].startswith("sha256:")
    assert prov["comfyui_version"]  # asked from the server the job ran on
    assert prov["source"]["node_type"] == "SaveImage" and len(prov["source"]["sha256"]) == 64


def _server_exports(server) -> set[str]:
    """What the graphs' own Bevy Export nodes wrote on the server (its output/bevy)."""
    root = server.output_dir / "bevy" if server.output_dir is not None else None
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root and root.is_dir() else set()


def test_a_job_deployed_here_writes_no_second_copy_on_the_server(comfy_server, tmp_path, capsys):
    """The shipped graphs end in a Bevy Export node writing into the server's output/bevy/my_game
    with overwrite 'version': every `run --bevy` and every demo left one more copy there
    (cleaned.png ... cleaned-4.png). A job whose outputs are deployed here leaves that node out."""
    if comfy_server.output_dir is None:
        pytest.skip("the server's output folder is not known")
    before = _server_exports(comfy_server)
    assert main(["demo", "--server", comfy_server.url, "--bevy", str(tmp_path / "demo-bevy")]) == 0
    art = tmp_path / "art.png"
    Image.fromarray(samples.degrade(samples.sprites()["knight"], cell=12.0, seed=3).image).save(art)
    game = tmp_path / "demo-bevy"
    assert main(["run", "cleanup", "--set", f"image={art}", "--server", comfy_server.url, "--fresh", "-q",
                 "--out", str(tmp_path / "o"), "--bevy", str(game), "--asset-path", "sprites/r.png"]) == 0, \
        capsys.readouterr().err
    assert (game / "assets" / "sprites" / "r.png").is_file()
    assert _server_exports(comfy_server) == before
    # without --bevy the graph runs whole: its export node writes on the server as designed
    assert main(["run", "cleanup", "--set", f"image={art}", "--server", comfy_server.url, "--fresh", "-q",
                 "--out", str(tmp_path / "o2")]) == 0
    assert len(_server_exports(comfy_server) - before) >= 1


def test_demo_on_the_test_server(comfy_server, tmp_path, capsys):
    project = tmp_path / "demo-bevy"
    assert main(["demo", "--server", comfy_server.url, "--bevy", str(project)]) == 0
    out, err = capsys.readouterr()
    _check_project(project, out)
    assert "ComfyUI is up" not in out  # the given server was used, none was started
    # no path of the run's temporary folder, gone when the demo ends (it printed "output /tmp/...")
    assert "dgx-pixels-demo-" not in out + err

    # a second run replaces the sprite in place: same files, one manifest entry
    assert main(["demo", "--server", comfy_server.url, "--bevy", str(project)]) == 0
    out = capsys.readouterr().out
    assert set(_printed_files(out)) == {"assets/sprites/knight.png", "assets/sprites/knight.png.meta",
                                        "assets/.dgx-pixels/manifest.json"}
    assert len(json.loads((project / "assets/.dgx-pixels/manifest.json").read_text())["assets"]) == 1


def test_demo_in_a_game_of_ones_own_never_replaces_its_files(comfy_server, tmp_path, capsys):
    game = tmp_path / "game"
    (game / "assets" / "sprites").mkdir(parents=True)
    (game / "Cargo.toml").write_text('[package]\nname = "my_game"\n[dependencies]\nbevy = "0.16"\n')
    own = np.full((32, 32, 4), (255, 0, 0, 255), np.uint8)
    Image.fromarray(own, "RGBA").save(game / "assets" / "sprites" / "knight.png")
    before = (game / "assets" / "sprites" / "knight.png").read_bytes()
    assert main(["demo", "--server", comfy_server.url, "--bevy", str(game)]) == 0
    out = capsys.readouterr().out
    assert (game / "assets" / "sprites" / "knight.png").read_bytes() == before
    assert 'asset_server.load("sprites/knight-2.png")' in out
    with Image.open(game / "assets" / "sprites" / "knight-2.png") as im:
        assert im.size == (16, 16)
    assert (game / "Cargo.toml").read_text().startswith('[package]\nname = "my_game"')


@pytest.mark.parametrize("argv, message", [
    (["--bevy-version", "0.9"], "Bevy 0.9 (--bevy-version) is not supported"),
    (["--bevy-version", "abc"], "cannot read a Bevy version from 'abc'"),
    (["--workflow", "nosuch"], "unknown workflow 'nosuch'"),
    (["--bevy", "{file}"], "is a file, not a folder"),
    (["--bevy", "{full}"], "is neither a Bevy project (it holds no Cargo.toml) nor empty"),
])
def test_demo_checks_its_options_before_it_runs_or_writes_anything(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    argv = [a.format(file=tmp_path / "afile", full=tmp_path / "full") for a in argv]
    bevy = [] if "--bevy" in argv else ["--bevy", str(tmp_path / "new")]
    # an unreachable server: were anything run first, the error would be about the server
    rc = main(["demo", "--server", "http://127.0.0.1:9", *bevy, *argv])
    err = capsys.readouterr().err
    assert rc in (2, 4) and message in err and "\nhint: " in err, err
    assert not (tmp_path / "new").exists() and sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]


def test_demo_starts_the_pinned_comfyui_when_none_is_configured(comfy_install, tmp_path):
    """No --server, no $DGX_PIXELS_SERVER: the demo starts the pinned ComfyUI itself, as on a
    fresh machine, and stops it again."""
    if os.environ.get("DGX_PIXELS_COMFYUI_URL", "").strip():
        pytest.skip("a user's ComfyUI is configured for the tests; this test starts the pinned one")
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k not in ("DGX_PIXELS_SERVER", "PYTHONPATH")}
    project = tmp_path / "demo-bevy"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "demo", "--bevy", str(project)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"ComfyUI is up at (http://127\.0\.0\.1:(\d+))", proc.stdout)
    assert m, proc.stdout
    _check_project(project, proc.stdout)
    # the server it started is gone
    import socket

    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", int(m.group(2)))) != 0


def test_dev_py_demo_as_the_readme_runs_it(comfy_server, tmp_path):
    """``python3 dev.py demo --bevy DIR`` from the checkout, with the server named by
    ``$DGX_PIXELS_SERVER``: dev.py reuses the existing .venv, starts no ComfyUI of its own and
    deploys the knight."""
    if not (REPO / ".venv" / "bin" / "dgx-pixels").exists():
        pytest.skip("needs the .venv that dev.py makes")
    spec = importlib.util.spec_from_file_location("dgx_pixels_dev", REPO / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    stamp_was_current = dev.STAMP.exists() and dev.STAMP.read_text().strip() == dev._stamp_value(embedded.pin_hash())
    # A user's python3: the interpreter the venv was made from, without the venv's packages,
    # so dev.py has to get by on the standard library.
    python3 = Path(sys.base_prefix) / "bin" / "python3"
    python3 = python3 if python3.exists() else Path(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["DGX_PIXELS_SERVER"] = comfy_server.url
    project = tmp_path / "game"
    proc = subprocess.run([str(python3), "dev.py", "demo", "--bevy", str(project)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    assert "[dev] environment ready" in out
    assert "creating virtual environment" not in out
    if stamp_was_current:
        assert "installing into" not in out, out  # nothing to (re)install
    assert "ComfyUI is up" not in out and "starting the pinned ComfyUI" not in out

    sprite = project / "assets/sprites/knight.png"
    with Image.open(sprite) as im:
        assert im.size == (16, 16) and im.mode == "RGBA"
        px = np.asarray(im)
    opaque = px[px[..., 3] > 127][:, :3]
    assert len(np.unique(opaque, axis=0)) >= 4  # a drawn sprite, not a flat block
    # the .meta, the manifest's provenance entry, the printed list of files with their sizes,
    # and the knight against its drawing
    _check_project(project, out)


def test_sigterm_while_the_demo_starts_comfyui_leaves_nothing_behind(comfy_install, tmp_path):
    """SIGTERM (a service manager, ``kill``) stops the demo as Ctrl-C does: the ComfyUI it was
    starting is stopped and its temporary folders (the sample input, the server's base folder)
    are removed. Before, the default action ended the process on the spot and left them. It
    exits 143 (128 + 15), as a shell reports a process the signal ended."""
    if os.environ.get("DGX_PIXELS_COMFYUI_URL", "").strip():
        pytest.skip("a user's ComfyUI is configured for the tests; this test starts the pinned one")
    pytest.importorskip("torch")
    import signal
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DGX_PIXELS_SERVER", "PYTHONPATH")}
    env["TMPDIR"] = str(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "demo", "--bevy", str(tmp_path / "demo-bevy")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(tmp.glob("dgx-pixels-comfy-*/comfyui-*.log")):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert sorted(p.name.rsplit("-", 1)[0] for p in tmp.iterdir()) == ["dgx-pixels-comfy", "dgx-pixels-demo"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143 and err.strip().endswith("terminated"), (out, err)
    assert list(tmp.iterdir()) == []
    # no ComfyUI of its own still runs (its command line names its base folder under tmp/)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(tmp).encode() not in cmdline.read_bytes()
        except OSError:
            pass  # a process that ended meanwhile

