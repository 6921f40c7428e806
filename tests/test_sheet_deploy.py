"""Sheets deployed on the client: ``run --bevy`` (and batch, and the MCP ``generate`` tool) rebuild
a sheet's grid from the submitted graph and write PNG + .meta + atlas JSON through one function,
``orchestrator.deploy.deploy_outputs``."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_nodes.pixel.sheet import build_sheet
from orchestrator.cli import main
from orchestrator.deploy import deploy_outputs
from orchestrator.run import OutputFile, RunResult

# The shape of the shipped animation graph around its sheet: 3 frames from a latent batch,
# through a pixel node into Sprite Sheet, whose image a SaveImage writes.
PROMPT = {
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 3}},
    "7": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    "12": {"class_type": "DGXPixelsStrayCleanup", "inputs": {"image": ["7", 0], "min_size": 2}},
    "13": {"class_type": "DGXPixelsSpriteSheet", "inputs": {"frames": ["12", 0], "columns": 3, "rows": 0,
                                                          "padding": 1, "offset": 0, "animations": "walk:0-2@8"}},
    "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "anim"}},
    "15": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "frames"}},
}


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(3):
        f = rng.integers(0, 256, size=(8, 6, 4), dtype=np.uint8)
        f[..., 3] = 255
        frames.append(f)
    return frames


def _output(path: Path, node: str) -> OutputFile:
    data = path.read_bytes()
    return OutputFile(node_id=node, node_type="SaveImage", server_filename=path.name, server_subfolder="",
                      server_type="output", path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _result(outputs: list[OutputFile], pid: str = "p-sheet") -> RunResult:
    return RunResult(prompt_id=pid, server="http://127.0.0.1:8188", workflow="animation@1.1.1",
                     content_hash="sha256:x", params={"frames": 3}, seed=1, outputs=outputs, cached=False,
                     elapsed_s=0.1, models=())


def _project(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    return root


@pytest.fixture
def sheet_png(tmp_path) -> Path:
    frames = _frames()
    sheet = build_sheet(frames, columns=3, padding=1, trim="none")  # what the Sprite Sheet node made on the server
    path = tmp_path / "out" / "anim_00001_.png"
    path.parent.mkdir()
    Image.fromarray(sheet.image, "RGBA").save(path)
    return path


def test_sheet_output_gets_meta_and_atlas_from_the_prompt(tmp_path, sheet_png):
    proj = _project(tmp_path / "game")
    frames = _frames()
    one = tmp_path / "out" / "frames_00001_.png"
    Image.fromarray(frames[0], "RGBA").save(one)
    res = _result([_output(sheet_png, "14"), _output(one, "15")])
    deployed = deploy_outputs(res, proj, "sprites/walk.png", prompt=PROMPT)
    assert [d.kind for d in deployed] == ["sheet", "image"]
    sheet, single = deployed
    assets = proj / "assets" / "sprites"
    assert {Path(f).name for f in sheet.files} == {"walk-1.png", "walk-1.png.meta", "walk-1.json", "manifest.json"}
    assert {Path(f).name for f in single.files} == {"walk-2.png", "walk-2.png.meta", "manifest.json"}
    assert not (assets / "walk-2.json").exists()
    atlas = json.loads((assets / "walk-1.json").read_text())
    assert [(f["frame"]["x"], f["frame"]["y"], f["frame"]["w"], f["frame"]["h"]) for f in atlas["frames"]] == [
        (0, 0, 6, 8), (7, 0, 6, 8), (14, 0, 6, 8)]
    assert [t["name"] for t in atlas["meta"]["frameTags"]] == ["walk"]
    with Image.open(assets / "walk-1.png") as im:
        assert im.size == (atlas["meta"]["size"]["w"], atlas["meta"]["size"]["h"]) == (20, 8)
        assert np.array_equal(np.asarray(im.convert("RGBA"))[:, 7:13], frames[1])
    assert "TextureAtlasLayout::from_grid" in sheet.snippet
    entry = next(e for e in json.loads((proj / "assets/.dgx-pixels/manifest.json").read_text())["assets"]
                 if e["path"] == "sprites/walk-1.png")
    assert entry["kind"] == "sheet" and entry["layout"]["frames"] == 3
    assert entry["provenance"]["deploy_id"] == "p-sheet:0"


def test_without_the_prompt_a_sheet_is_a_plain_image(tmp_path, sheet_png):
    proj = _project(tmp_path / "game")
    (d,) = deploy_outputs(_result([_output(sheet_png, "14")]), proj, "sprites/walk.png")
    assert d.kind == "image"
    assert not (proj / "assets/sprites/walk.json").exists()


def test_animations_override_the_graphs(tmp_path, sheet_png):
    proj = _project(tmp_path / "game")
    deploy_outputs(_result([_output(sheet_png, "14")]), proj, "sprites/walk.png", prompt=PROMPT,
                   animations="idle:0-0@2, run:1-2@12")
    atlas = json.loads((proj / "assets/sprites/walk.json").read_text())
    assert [(t["name"], t["from"], t["to"]) for t in atlas["meta"]["frameTags"]] == [("idle", 0, 0), ("run", 1, 2)]


def test_sheet_that_does_not_fit_its_layout_deploys_nothing(tmp_path):
    proj = _project(tmp_path / "game")
    bad = tmp_path / "anim.png"
    Image.fromarray(np.zeros((8, 3, 4), np.uint8), "RGBA").save(bad)  # 3 px cannot hold 3 frames and 2 gaps
    from comfy_nodes.pixel.errors import ExportError

    with pytest.raises(ExportError, match="sheet layout"):
        deploy_outputs(_result([_output(bad, "14")]), proj, "sprites/walk.png", prompt=PROMPT)
    assert sorted(p.name for p in (proj / "assets").rglob("*")) == []


def test_mcp_deploy_writes_what_the_cli_deploy_writes(tmp_path, sheet_png):
    pytest.importorskip("fastmcp")
    from orchestrator.mcp_server import deploy_result

    a, b = _project(tmp_path / "a"), _project(tmp_path / "b")
    res = _result([_output(sheet_png, "14")])
    deploy_outputs(res, a, "sprites/walk.png", prompt=PROMPT)
    info = deploy_result(res, b, "sprites/walk.png", prompt=PROMPT)
    assert set(info["written"]) >= {"assets/sprites/walk.png", "assets/sprites/walk.png.meta",
                                    "assets/sprites/walk.json"}
    for rel in ("assets/sprites/walk.png", "assets/sprites/walk.png.meta", "assets/sprites/walk.json"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_cli_run_animation_deploys_sheet_meta_and_atlas(managed_comfy_server, tmp_path, capsys):
    """``dgx-pixels run animation --bevy`` with the random-weight checkpoint: the downloaded sheet
    lands in the project with its .meta and an atlas JSON whose frames cover the PNG."""
    from support.live import install_test_models

    ckpt, lora = install_test_models(managed_comfy_server)
    proj = _project(tmp_path / "game")
    sets = {"checkpoint": ckpt, "lora": lora, "width": 64, "height": 64, "steps": 2, "frames": 4,
            "grid_mode": "size", "target_width": 16, "target_height": 16, "animation": "walk:0-3@8",
            "project": "cli_sheet_test"}
    argv = ["run", "animation", "--server", managed_comfy_server.url, "--out", str(tmp_path / "out"),
            "--bevy", str(proj), "--asset-path", "sprites/knight_walk.png", "--json", "--fresh"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (dep,) = doc["deployed"]
    assert dep["kind"] == "sheet"
    assets = proj / "assets" / "sprites"
    assert {Path(f).relative_to(proj).as_posix() for f in dep["files"]} == {
        "assets/sprites/knight_walk.png", "assets/sprites/knight_walk.png.meta", "assets/sprites/knight_walk.json",
        "assets/.dgx-pixels/manifest.json"}
    assert "nearest" in (assets / "knight_walk.png.meta").read_text().lower()
    atlas = json.loads((assets / "knight_walk.json").read_text())
    assert len(atlas["frames"]) == 4
    assert [t["name"] for t in atlas["meta"]["frameTags"]] == ["walk"]
    with Image.open(assets / "knight_walk.png") as sheet:
        assert (atlas["meta"]["size"]["w"], atlas["meta"]["size"]["h"]) == sheet.size
        for f in atlas["frames"]:
            r = f["frame"]
            assert (r["w"], r["h"]) == (16, 16) and r["x"] + r["w"] <= sheet.width and r["y"] + r["h"] <= sheet.height
    # the PNG in the project is the one the server made, pixel for pixel
    downloaded = Path(doc["outputs"][0]["path"])
    assert np.array_equal(np.asarray(Image.open(downloaded).convert("RGBA")),
                          np.asarray(Image.open(assets / "knight_walk.png").convert("RGBA")))
