"""Live: the Bevy Export node on a real ComfyUI server, and the same export through the CLI.

A strip of frames is uploaded, split into an IMAGE batch, laid out by Sprite Sheet and exported
into four temporary Bevy projects (Cargo.toml says 0.12, 0.14, 0.15, 0.19). The server may
write there because the test lists the folder in ``<base>/user/dgx-pixels.json``; a project
outside that root, an asset path with ``..`` or an absolute one, and one through a folder that
links out of the root are all refused by the server without writing anything. The CLI then exports the same frames and must
produce the same files.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyron")
import pyron  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "support"))
from live import http_json, queue_and_wait  # noqa: E402

from comfy_nodes.pixel.bevy_export import render_meta  # noqa: E402
from comfy_nodes.pixel.sheet import build_sheet  # noqa: E402

VERSIONS = {"0.12": '"0.12.1"', "0.14": '{ version = "0.14.2", default-features = false }',
            "0.15": '"0.15"', "0.19": '"0.19.0"'}
LOADER = {"0.12": "bevy_render::texture::image_loader::ImageLoader",
          "0.14": "bevy_render::texture::image_loader::ImageLoader",
          "0.15": "bevy_image::image_loader::ImageLoader",
          "0.19": "bevy_image::image_loader::ImageLoader"}
SNIPPET = {"0.12": "TextureAtlasSprite::new", "0.14": "TextureAtlasLayout::from_grid(UVec2::new",
           "0.15": "Sprite::from_atlas_image", "0.19": "Sprite::from_atlas_image"}
ANIMS = "idle:0-3@8, walk:4-7@12, jump:8-11@10:pingpong"


def make_frames(n=12, size=16, seed=5):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        f = np.zeros((size, size, 4), np.uint8)
        top = 2 + i % 4  # the sprite bobs: trimming gives frames of different heights
        f[top : size - 1, 3 : size - 3, :3] = rng.integers(0, 256, (size - 1 - top, size - 6, 3))
        f[top : size - 1, 3 : size - 3, 3] = 255
        frames.append(f)
    return frames


def upload(url: str, rgba: np.ndarray) -> str:
    import requests

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    name = f"dgx-frames-{uuid.uuid4().hex[:8]}.png"
    r = requests.post(f"{url}/upload/image", files={"image": (name, buf.getvalue(), "image/png")},
                      data={"type": "input", "overwrite": "true"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["name"]


def make_project(root: Path, name: str, dep: str) -> Path:
    p = root / name
    p.mkdir(parents=True)
    (p / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nbevy = {dep}\n')
    return p


def check_export(project: Path, version: str, frames: list[np.ndarray], expected_sheet) -> None:
    assets = project / "assets"
    png = assets / "sprites" / "knight.png"
    got = np.array(Image.open(png))
    assert Image.open(png).mode == "RGBA"
    np.testing.assert_array_equal(got, expected_sheet.image)
    meta = (assets / "sprites" / "knight.png.meta").read_text()
    assert meta == render_meta(version) and LOADER[version] in meta
    pyron.loads(meta)
    doc = json.loads((assets / "sprites" / "knight.json").read_text())
    assert [t["name"] for t in doc["meta"]["frameTags"]] == ["idle", "walk", "jump"]
    assert doc["meta"]["frameTags"][2]["direction"] == "pingpong"
    for src, fr in zip(frames, doc["frames"]):
        r = fr["frame"]
        ys, xs = np.nonzero(src[..., 3])
        np.testing.assert_array_equal(got[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]],
                                      src[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    ron_text = (assets / "sprites" / "knight.assets.ron").read_text()
    if version == "0.12":
        # its atlas padding is Option<f32>: the file enables implicit_some, which the RON reader
        # here does not know, for bevy_asset_loader 0.18 and 0.19 alike
        head = "#![enable(implicit_some)]\n"
        assert ron_text.startswith(head)
        ron_text = ron_text[len(head):]
    ron = pyron.loads(ron_text)[0]
    key = "knight.layout" if version != "0.12" else "knight.atlas"
    assert ron[key]["columns"] == expected_sheet.columns and ron[key]["rows"] == expected_sheet.rows
    manifest = json.loads((assets / ".dgx-pixels" / "manifest.json").read_text())
    assert manifest["assets"][0]["path"] == "sprites/knight.png"
    assert manifest["assets"][0]["bevy_version"] == version


def tree(folder: Path) -> dict[str, object]:
    """Every entry under ``folder`` without following links: file bytes, link targets, folders."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.read_bytes())
    return out


def execution_error(url: str, prompt: dict, timeout: float = 120.0) -> dict:
    """Queue a prompt that must fail while executing; return the server's execution_error."""
    pid = http_json(f"{url}/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hist = http_json(f"{url}/history/{pid}")
        if pid in hist:
            status = hist[pid]["status"]
            assert status["status_str"] == "error", status
            errors = [data for name, data in status["messages"] if name == "execution_error"]
            assert len(errors) == 1, status["messages"]
            return errors[0]
        time.sleep(0.1)
    raise AssertionError(f"prompt {pid} did not finish in {timeout} s")


def test_export_node_on_live_server_and_cli(managed_comfy_server, tmp_path):
    server = managed_comfy_server
    frames = make_frames()
    size = frames[0].shape[0]
    strip = np.concatenate(frames, axis=1)
    uploaded = upload(server.url, strip)

    root = tmp_path / "games"
    projects = {v: make_project(root, f"game_{v.replace('.', '_')}", dep) for v, dep in VERSIONS.items()}
    config = Path(server.base_dir) / "user" / "dgx-pixels.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"bevy_roots": [str(root)]}))
    try:
        prompt = {
            "1": {"class_type": "LoadImage", "inputs": {"image": uploaded}},
            "2": {"class_type": "DGXPixelsSheetSplit",
                  "inputs": {"sheet": ["1", 0], "alpha_mask": ["1", 1], "cell_width": size, "cell_height": size,
                             "columns": 0, "rows": 0, "padding": -1, "offset": 0, "count": 0, "animations": ""}},
            "3": {"class_type": "DGXPixelsSpriteSheet",
                  "inputs": {"frames": ["2", 0], "columns": 4, "rows": 0, "cell_width": 0, "cell_height": 0,
                             "anchor": "bottom-center", "trim": "each", "padding": 1, "offset": 0,
                             "power_of_two": False, "animations": ANIMS, "preview_scale": 2}},
        }
        for i, (v, proj) in enumerate(projects.items()):
            prompt[str(10 + i)] = {"class_type": "DGXPixelsBevyExport",
                                   "inputs": {"sheet_data": ["3", 1], "project": proj.name, "asset_path": "sprites/knight.png",
                                              "bevy_version": "auto", "overwrite": "fail", "upscale": 1, "animations": "",
                                              "write_atlas_json": True, "write_assets_ron": True}}
        entry = queue_and_wait(server.url, prompt)
        expected = build_sheet(frames, columns=4, padding=1, animations=ANIMS, trim="each")
        for i, (v, proj) in enumerate(projects.items()):
            check_export(proj, v, frames, expected)
            texts = entry["outputs"][str(10 + i)]["text"]
            assert f"for Bevy {v}" in texts[0]
            assert SNIPPET[v] in texts[1] and 'asset_server.load("sprites/knight.png")' in texts[1]

        # a project outside the configured root is refused by the server, nothing written
        outside = tmp_path / "outside"
        outside.mkdir()
        bad = {k: v for k, v in prompt.items() if k in ("1", "2", "3")}
        bad["9"] = {"class_type": "DGXPixelsBevyExport",
                    "inputs": {"sheet_data": ["3", 1], "project": str(outside), "asset_path": "sprites/knight.png",
                               "bevy_version": "auto", "overwrite": "fail", "upscale": 1, "animations": "",
                               "write_atlas_json": True, "write_assets_ron": False}}
        with pytest.raises(AssertionError, match="not inside an allowed Bevy root"):
            queue_and_wait(server.url, bad)
        assert list(outside.iterdir()) == []
        bad["9"]["inputs"].update(project=projects["0.15"].name, asset_path="../../escape.png")
        with pytest.raises(AssertionError, match="refusing"):
            queue_and_wait(server.url, bad)
        assert not (root / "escape.png").exists() and not (projects["0.15"] / "escape.png").exists()

        # An absolute asset path, and one through a folder inside the project that links out of
        # the roots: both refused by name before anything is written, on either side of the link.
        target = tmp_path / "link_target"
        target.mkdir()
        game = projects["0.15"]
        (game / "assets" / "linked").symlink_to(target, target_is_directory=True)
        before = tree(game)
        attempts = [("/etc/x.png", "absolute paths are not allowed"),
                    (f"{target}/x.png", "absolute paths are not allowed"),
                    ("linked/x.png", "is a symlink leading outside the root"),
                    ("linked/deeper/x.png", "is a symlink leading outside the root")]
        for asset_path, why in attempts:
            bad["9"]["inputs"].update(project=game.name, asset_path=asset_path)
            err = execution_error(server.url, bad)
            assert err["node_id"] == "9" and err["node_type"] == "DGXPixelsBevyExport", err
            assert err["exception_type"].endswith("PathEscapeError"), err["exception_type"]
            msg = err["exception_message"]
            assert f"refusing to write {asset_path!r}" in msg and why in msg, msg
            if why.startswith("is a symlink"):
                link = os.path.realpath(game / "assets") + "/linked"
                assert link in msg and os.path.realpath(target) in msg, msg
            assert list(target.iterdir()) == [], asset_path
            assert tree(game) == before, asset_path
        assert not Path("/etc/x.png").exists()
    finally:
        config.unlink(missing_ok=True)

    # The same frames through the CLI give the same files.
    frame_dir = tmp_path / "frames"
    frame_dir.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(frame_dir / f"frame_{i}.png")
    cli_root = tmp_path / "cli"
    for v, dep in VERSIONS.items():
        proj = make_project(cli_root, f"game_{v.replace('.', '_')}", dep)
        r = subprocess.run([sys.executable, "-m", "orchestrator", "export", str(frame_dir), "--bevy", str(proj),
                            "--path", "sprites/knight.png", "--columns", "4", "--padding", "1",
                            "--animations", ANIMS, "--assets-ron", "--trim", "each"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert SNIPPET[v] in r.stdout and f"for Bevy {v}" in r.stderr
        check_export(proj, v, frames, expected)
        node_png = projects[v] / "assets" / "sprites" / "knight.png"
        assert (proj / "assets" / "sprites" / "knight.png").read_bytes() == node_png.read_bytes()
        r = subprocess.run([sys.executable, "-m", "orchestrator", "export", str(frame_dir), "--bevy", str(proj),
                            "--path", "../escape.png"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 6 and "refusing" in r.stderr and not (proj / "escape.png").exists()
