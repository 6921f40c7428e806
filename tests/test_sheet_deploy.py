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
from orchestrator.sheet_deploy import sheet_records

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


def _result(outputs: list[OutputFile], pid: str = "p-sheet", sheets: dict | None = None) -> RunResult:
    return RunResult(prompt_id=pid, server="http://127.0.0.1:8188", workflow="animation@1.1.1",
                     content_hash="sha256:x", params={"frames": 3}, seed=1, outputs=outputs, cached=False,
                     elapsed_s=0.1, models=(), sheets=sheets or {})


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


def _history_of(node_output) -> dict:
    """The job history's ``outputs`` of a sheet node run here (id 13, as in PROMPT): its UI data
    as ComfyUI stores it."""
    return {"13": node_output.ui}


def _atlas_cells(proj: Path, name: str) -> list[tuple[int, int, int, int]]:
    atlas = json.loads((proj / "assets" / "sprites" / f"{name}.json").read_text())
    return [(f["frame"]["x"], f["frame"]["y"], f["frame"]["w"], f["frame"]["h"]) for f in atlas["frames"]]


def _save(tmp_path: Path, image_tensor, name: str) -> Path:
    path = tmp_path / "out" / name
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(np.round(image_tensor[0].numpy() * 255).astype(np.uint8), "RGBA").save(path)
    return path


def test_the_grid_is_the_one_the_node_used_where_the_graph_does_not_tell_it(tmp_path):
    """The layout was rebuilt from the graph alone: a power-of-two sheet of 12x12 frames was
    deployed as 16x16 cells, a tileset's margin (on every side) gave 18x19 cells, and two
    LoadImage nodes joined by ImageBatch counted as one frame. The node now sends the grid it
    used with its preview; the deploy takes it from the job's history."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("comfy_api.latest")
    from comfy_nodes.nodes.nodes_sheet import DGXPixelsSpriteSheet as SpriteSheet
    from comfy_nodes.nodes.nodes_sheet import DGXPixelsTileset as Tileset
    rng = np.random.default_rng(5)
    frames = rng.integers(1, 256, (8, 12, 12, 4)).astype(np.uint8)
    frames[..., 3] = 255
    t = torch.from_numpy(frames.astype(np.float32) / 255.0)
    want = [(c * 12, r * 12, 12, 12) for r in range(2) for c in range(4)]

    pow2 = SpriteSheet.execute(frames=t, columns=4, trim="none", power_of_two=True)
    png = _save(tmp_path, pow2.result[0], "pow2.png")
    prompt = {**PROMPT, "13": {"class_type": "DGXPixelsSpriteSheet", "inputs": {
        "frames": ["12", 0], "columns": 4, "rows": 0, "padding": 0, "offset": 0, "power_of_two": True,
        "animations": ""}}}
    proj = _project(tmp_path / "a")
    deploy_outputs(_result([_output(png, "14")], sheets=sheet_records(_history_of(pow2))), proj,
                   "sprites/p.png", prompt=prompt)
    assert _atlas_cells(proj, "p") == want
    # a server whose pack sends no grid: refused with what to do, not deployed on a 16x16 guess
    from comfy_nodes.pixel.errors import ExportError

    with pytest.raises(ExportError, match="power-of-two") as err:
        deploy_outputs(_result([_output(png, "14")], pid="old"), proj, "sprites/q.png", prompt=prompt)
    assert "update the pack" in err.value.hint
    assert not (proj / "assets/sprites/q.png").exists()

    tiles = Tileset.execute(tiles=t[:6], columns=3, margin=6)
    png = _save(tmp_path, tiles.result[0], "tiles.png")
    prompt = {**PROMPT, "13": {"class_type": "DGXPixelsTileset", "inputs": {
        "tiles": ["12", 0], "columns": 3, "spacing": 0, "margin": 6}}}
    for name, sheets in (("t", sheet_records(_history_of(tiles))), ("u", None)):  # with the record, and without
        proj = _project(tmp_path / name)
        graph = {**prompt, "5": {**prompt["5"], "inputs": {**prompt["5"]["inputs"], "batch_size": 6}}}
        deploy_outputs(_result([_output(png, "14")], sheets=sheets), proj, f"sprites/{name}.png", prompt=graph)
        assert _atlas_cells(proj, name) == [(6 + c * 12, 6 + r * 12, 12, 12) for r in range(2) for c in range(3)]

    two = SpriteSheet.execute(frames=t[:2], columns=0, trim="none")
    png = _save(tmp_path, two.result[0], "two.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
              "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "13": {"class_type": "DGXPixelsSpriteSheet", "inputs": {"frames": ["3", 0], "columns": 0, "rows": 0,
                                                                      "padding": 0, "offset": 0, "animations": ""}},
              "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "two"}}}
    proj = _project(tmp_path / "b")
    deploy_outputs(_result([_output(png, "14")], sheets=sheet_records(_history_of(two))), proj, "sprites/two.png",
                   prompt=prompt)
    assert _atlas_cells(proj, "two") == [(0, 0, 12, 12), (12, 0, 12, 12)]


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
    # the grid came from the Sprite Sheet node itself, through the job's history
    (record,) = doc["sheets"].values()
    assert record["layout"]["cell"] == [16, 16] and record["layout"]["frames"] == 4
    assert record["animations"] == "walk:0-3@8"
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
