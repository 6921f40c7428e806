"""The MCP server, driven by a real MCP client over a real transport (a separate process).

stdio: FastMCP's client starts ``dgx-pixels mcp`` as a child process and speaks MCP over its
pipes, as a desktop assistant does. HTTP: the same server on a loopback port, reached over
streamable HTTP. Generation runs on the live ComfyUI from the test harness.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastmcp = pytest.importorskip("fastmcp")
from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport  # noqa: E402
from fastmcp.exceptions import ToolError  # noqa: E402

from comfy_nodes.pixel.imageio import save_png  # noqa: E402
from orchestrator import samples  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, version: str = "0.15") -> Path:
    game = tmp_path / "game"
    (game / "assets").mkdir(parents=True)
    (game / "Cargo.toml").write_text(f'[package]\nname = "game"\nversion = "0.1.0"\n\n[dependencies]\nbevy = "{version}"\n')
    return game


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _stdio(game: Path, server_url: str) -> StdioTransport:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return StdioTransport(command=sys.executable,
                          args=["-m", "orchestrator.cli", "mcp", "--bevy-root", str(game), "--server", server_url],
                          env=env, cwd=str(game))


def _run(coro):
    return asyncio.run(coro)


def _image_blocks(result) -> list:
    return [c for c in result.content if getattr(c, "type", None) == "image"]


@pytest.fixture
def benchmark_input(tmp_path, shared_dir) -> Path:
    cases = sorted((shared_dir / "bench" / "snap-dev" / "cases").glob("*-easy"))
    if not cases:
        pytest.skip("no snap-dev cases in ../shared")
    return cases[0]


def test_stdio_lists_tools_and_snaps_a_benchmark_input(tmp_path, benchmark_input):
    game = _project(tmp_path)
    shutil.copy(benchmark_input / "input.png", game / "ai.png")
    gt = np.asarray(Image.open(benchmark_input / "gt.png").convert("RGBA"))

    async def go():
        async with Client(_stdio(game, "http://127.0.0.1:9")) as c:
            names = {t.name for t in await c.list_tools()}
            res = await c.call_tool("snap_image", {"path": "ai.png", "output": "assets/sprites/ai.png"})
            resources = {str(r.uri) for r in await c.list_resources()}
            return names, res, resources

    names, res, resources = _run(go())
    assert {"list_workflows", "describe_workflow", "generate", "snap_image", "quantize_image", "list_palettes",
            "deploy", "list_assets", "job_status", "cancel"} <= names
    assert {"dgx-pixels://workflows", "dgx-pixels://palettes"} <= resources
    info = res.structured_content
    assert (info["width"], info["height"]) == (gt.shape[1], gt.shape[0])
    out = np.asarray(Image.open(game / "assets" / "sprites" / "ai.png").convert("RGBA"))
    assert out.shape == gt.shape
    opaque = gt[..., 3] > 0
    close = np.abs(out[..., :3].astype(int) - gt[..., :3].astype(int)).max(axis=-1) <= 24
    assert close[opaque].mean() > 0.9
    previews = _image_blocks(res)
    assert len(previews) == 1 and previews[0].mime_type == "image/png"


def test_stdio_errors_are_tool_errors_and_write_nothing(tmp_path, comfy_server):
    game = _project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, outside / "secret.png")
    (game / "link").symlink_to(outside)
    before = _files(tmp_path)

    async def go():
        errors = {}
        async with Client(_stdio(game, comfy_server.url)) as c:
            for label, tool, args in [
                ("workflow", "generate", {"workflow": "no-such-workflow", "bevy_project": "game", "asset_path": "sprites/x.png"}),
                ("param", "generate", {"workflow": "cleanup", "bevy_project": "game", "asset_path": "sprites/x.png",
                                       "params": {"no_such_param": 1}}),
                ("param_type", "generate", {"workflow": "cleanup", "bevy_project": "game", "asset_path": "sprites/x.png",
                                            "params": {"cell_size": "big"}}),
                ("abs", "snap_image", {"path": str(outside / "secret.png")}),
                ("dotdot", "snap_image", {"path": "../outside/secret.png"}),
                ("symlink", "snap_image", {"path": "link/secret.png"}),
                ("asset_escape", "generate", {"workflow": "cleanup", "bevy_project": "game", "asset_path": "../../x.png"}),
                ("project_escape", "deploy", {"file": "link/secret.png", "bevy_project": str(outside), "asset_path": "x.png"}),
                ("upload_escape", "generate", {"workflow": "cleanup", "bevy_project": "game", "asset_path": "sprites/x.png",
                                               "params": {"image": str(outside / "secret.png")}}),
            ]:
                with pytest.raises(ToolError) as info:
                    await c.call_tool(tool, args)
                errors[label] = str(info.value)
        return errors

    errors = _run(go())
    assert "no-such-workflow" in errors["workflow"] and "cleanup" in errors["workflow"]
    assert "no_such_param" in errors["param"]
    assert "cell_size" in errors["param_type"]
    for label in ("abs", "dotdot", "symlink", "project_escape", "upload_escape", "asset_escape"):
        assert "refus" in errors[label] or "outside" in errors[label], (label, errors[label])
    assert _files(tmp_path) == before, "a refused call wrote something"


def test_stdio_generate_deploys_into_the_bevy_project(tmp_path, comfy_server):
    game = _project(tmp_path, "0.14")
    src = save_png(samples.degrade(samples.sprites()["potion"], cell=12.4, seed=5).image, game / "potion-ai.png")
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    async def go():
        async with Client(_stdio(game, comfy_server.url), progress_handler=on_progress) as c:
            res = await c.call_tool("generate", {"workflow": "cleanup", "bevy_project": "game",
                                                 "asset_path": "sprites/potion.png",
                                                 "params": {"image": str(src)}}, timeout=300)
            assets = await c.call_tool("list_assets", {"bevy_project": "game"})
            return res, assets

    res, assets = _run(go())
    info = res.structured_content
    written = set(info["written"])
    assert "assets/sprites/potion.png" in written and "assets/sprites/potion.png.meta" in written
    meta = (game / "assets/sprites/potion.png.meta").read_text()
    assert "bevy_render::texture::image_loader::ImageLoader" in meta and "Nearest" in meta
    png = np.asarray(Image.open(game / "assets/sprites/potion.png").convert("RGBA"))
    assert png.shape[:2] == (16, 16)
    assert 'asset_server.load("sprites/potion.png")' in info["snippet"]
    assert _image_blocks(res), "generate must return a preview image"
    assert progress, "no MCP progress notification arrived"
    manifest = assets.structured_content["manifest"]
    assert "sprites/potion.png" in json.dumps(manifest)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_transport(tmp_path, comfy_server):
    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["slime"], cell=10.6, seed=9).image, game / "slime-ai.png")
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game),
                             "--server", comfy_server.url, "--http", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.2)

        async def go():
            async with Client(StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp")) as c:
                names = {t.name for t in await c.list_tools()}
                snap = await c.call_tool("snap_image", {"path": "slime-ai.png", "output": "assets/sprites/slime.png"})
                with pytest.raises(ToolError):
                    await c.call_tool("snap_image", {"path": "/etc/hostname"})
                pal = await c.call_tool("list_palettes", {})
                return names, snap, pal

        names, snap, pal = _run(go())
        assert "generate" in names
        assert (snap.structured_content["width"], snap.structured_content["height"]) == (16, 16)
        assert (game / "assets/sprites/slime.png").is_file()
        assert any(p["name"] == "pico-8" and p["colors"] == 16 for p in pal.structured_content["result"])
    finally:
        proc.terminate()
        proc.wait(15)


def test_stdio_generate_animation_sheet_with_random_checkpoint(tmp_path, managed_comfy_server):
    """generate() on a generating workflow (random-weight SD1.5-layout checkpoint + LoRA, 64x64,
    2 steps): the sheet, its .meta and the Aseprite atlas JSON land in the Bevy project."""
    from support.live import install_test_models

    ckpt, lora = install_test_models(managed_comfy_server)
    game = _project(tmp_path, "0.19")
    params = {"checkpoint": ckpt, "lora": lora, "width": 64, "height": 64, "steps": 2, "frames": 4,
              "grid_mode": "size", "target_width": 16, "target_height": 16, "animation": "walk:0-3@8"}

    async def go():
        async with Client(_stdio(game, managed_comfy_server.url)) as c:
            return await c.call_tool("generate", {"workflow": "animation", "bevy_project": str(game),
                                                  "asset_path": "sprites/knight_walk.png", "params": params},
                                     timeout=600)

    info = _run(go()).structured_content
    written = set(info["written"])
    assert {"assets/sprites/knight_walk.png", "assets/sprites/knight_walk.png.meta",
            "assets/sprites/knight_walk.json"} <= written, written
    meta = (game / "assets/sprites/knight_walk.png.meta").read_text()
    assert "bevy_image::image_loader::ImageLoader" in meta
    atlas = json.loads((game / "assets/sprites/knight_walk.json").read_text())
    assert len(atlas["frames"]) == 4
    assert [t["name"] for t in atlas["meta"]["frameTags"]] == ["walk"]
    sheet = Image.open(game / "assets/sprites/knight_walk.png")
    assert (atlas["meta"]["size"]["w"], atlas["meta"]["size"]["h"]) == sheet.size
    for f in atlas["frames"]:
        r = f["frame"]
        assert (r["w"], r["h"]) == (16, 16) and r["x"] + r["w"] <= sheet.width and r["y"] + r["h"] <= sheet.height
    assert "TextureAtlasLayout::from_grid" in info["snippet"]
