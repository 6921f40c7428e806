"""The MCP server, driven by a real MCP client over a real transport (a separate process).

stdio: FastMCP's client starts ``dgx-pixels mcp`` as a child process and speaks MCP over its
pipes, as a desktop assistant does. HTTP: the same server on a loopback port, reached over
streamable HTTP. Generation runs on the live ComfyUI from the test harness.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import os
import shutil
import socket
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
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
from support.symlinks import swap_for_link  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, version: str = "0.15") -> Path:
    game = tmp_path / "game"
    (game / "assets").mkdir(parents=True)
    (game / "Cargo.toml").write_text(f'[package]\nname = "game"\nversion = "0.1.0"\n\n[dependencies]\nbevy = "{version}"\n')
    return game


def _outside(root: Path, game: Path) -> Path:
    """A folder next to the project with an image in it, and a symlink to it from inside the
    project: what every refusal test tries to reach."""
    outside = root / "outside"
    outside.mkdir()
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, outside / "secret.png")
    (game / "link").symlink_to(outside)
    return outside


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _server_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stdio(game: Path, server_url: str, cwd: Path | None = None) -> StdioTransport:
    return StdioTransport(command=sys.executable,
                          args=["-m", "orchestrator.cli", "mcp", "--bevy-root", str(game), "--server", server_url],
                          env=_server_env(), cwd=str(cwd or game))


def _run(coro):
    return asyncio.run(coro)


def _image_blocks(result) -> list:
    return [c for c in result.content if getattr(c, "type", None) == "image"]


def _opaque_colours(path: Path) -> set[tuple[int, int, int]]:
    rgba = np.asarray(Image.open(path).convert("RGBA"))
    return {tuple(int(v) for v in px) for px in rgba[rgba[..., 3] > 0][:, :3]}


async def _tool_errors(client, calls) -> dict[str, str]:
    """Each ``(label, tool, args)`` call must fail as an MCP tool error; its message by label."""
    errors = {}
    for label, tool, args in calls:
        with pytest.raises(ToolError) as info:
            await client.call_tool(tool, args)
        errors[label] = str(info.value)
    return errors


def _refused_calls(outside: Path) -> list[tuple[str, str, dict]]:
    """A bad workflow name, bad parameters and paths outside the roots (``game`` is the root,
    ``game/link`` a symlink to ``outside``)."""
    target = {"bevy_project": "game", "asset_path": "sprites/x.png"}
    return [
        ("workflow", "generate", {"workflow": "no-such-workflow", **target}),
        ("param", "generate", {"workflow": "cleanup", **target, "params": {"no_such_param": 1}}),
        ("param_type", "generate", {"workflow": "cleanup", **target, "params": {"cell_size": "big"}}),
        ("abs", "snap_image", {"path": str(outside / "secret.png")}),
        ("dotdot", "snap_image", {"path": "../outside/secret.png"}),
        ("symlink", "snap_image", {"path": "link/secret.png"}),
        ("asset_escape", "generate", {"workflow": "cleanup", "bevy_project": "game", "asset_path": "../../x.png"}),
        ("project_escape", "deploy", {"file": "link/secret.png", "bevy_project": str(outside), "asset_path": "x.png"}),
        ("upload_escape", "generate", {"workflow": "cleanup", **target, "params": {"image": str(outside / "secret.png")}}),
        # a typo in the animations is said before the job runs (it used to fail after a GPU run)
        ("animations", "generate", {"workflow": "cleanup", **target, "animations": "bad::"}),
    ]


def _assert_refusals_are_clear(errors: dict[str, str]) -> None:
    assert "no-such-workflow" in errors["workflow"] and "cleanup" in errors["workflow"]
    assert "no_such_param" in errors["param"]
    assert "cell_size" in errors["param_type"]
    assert "'bad::' is not name:first-last@fps" in errors["animations"]
    for label in ("abs", "dotdot", "symlink", "project_escape", "upload_escape", "asset_escape"):
        assert "refus" in errors[label] or "outside" in errors[label], (label, errors[label])
    # an input is read, not written, and is named relative to the project root
    assert "refusing to read '../outside/secret.png'" in errors["dotdot"] and "relative to" in errors["dotdot"]


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
            # the server names itself and its own version (not its MCP library's)
            from orchestrator import __version__

            info = c.server_info
            assert (info.name, info.version) == ("dgx-pixels", __version__)
            res = await c.call_tool("snap_image", {"path": "ai.png", "output": "assets/sprites/ai.png"})
            resources = {str(r.uri) for r in await c.list_resources()}
            errors = await _tool_errors(c, [
                ("jpg", "snap_image", {"path": "ai.png", "output": "assets/sprites/ai.jpg"}),
                ("self", "snap_image", {"path": "ai.png", "output": "ai.png"}),
                ("qself", "quantize_image", {"path": "ai.png", "palette": "pico-8", "output": "ai.png"})])
            return names, res, resources, errors

    before = (game / "ai.png").read_bytes()
    names, res, resources, errors = _run(go())
    assert "output 'assets/sprites/ai.jpg': the image is written as PNG, so its name must be NAME.png" in errors["jpg"]
    assert "output 'ai.png' is the input" in errors["self"] and "output 'ai.png' is the input" in errors["qself"]
    assert (game / "ai.png").read_bytes() == before and not (game / "assets" / "sprites" / "ai.jpg").exists()
    assert {"list_workflows", "describe_workflow", "generate", "snap_image", "quantize_image", "list_palettes",
            "deploy", "export_sprite", "list_assets", "job_status", "cancel"} <= names
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


def test_stdio_snaps_an_animation_on_one_grid_and_one_palette(tmp_path):
    """An animated PNG of three degraded frames: one grid for all of them, one palette with
    ``colors`` (each sprite colour comes out the same in every frame), a folder of frames, a
    preview of the frames side by side; a PNG name for that folder is refused, nothing written."""
    import base64
    import io

    game = _project(tmp_path)
    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210], [60, 80, 220], [250, 200, 40]],
                       np.uint8)
    idx = np.random.default_rng(5).integers(0, 4, size=(14, 16))
    truth = [colours[idx + i] for i in range(3)]  # frame i uses colours i..i+3
    # the same seed draws the same uneven grid lines for every frame
    frames = [Image.fromarray(samples.degrade(np.dstack([t, np.full((14, 16), 255, np.uint8)]), cell=9.4,
                                              jitter=1.0, seed=7, noise=3.0).image) for t in truth]
    frames[0].save(game / "walk.png", save_all=True, append_images=frames[1:], duration=100, loop=0)

    async def go():
        async with Client(_stdio(game, "http://127.0.0.1:9")) as c:
            res = await c.call_tool("snap_image", {"path": "walk.png", "output": "assets/walk", "colors": 4})
            errors = await _tool_errors(c, [("png", "snap_image", {"path": "walk.png", "output": "assets/x.png"}),
                                            ("squat", "snap_image", {"path": "walk.png", "output": "assets/squat"}),
                                            ("noname", "quantize_image", {"path": "walk.png", "palette": "pico-8",
                                                                          "output": "assets/.png"})])
            return res, errors

    (game / "assets" / "squat" / "walk_002.png").mkdir(parents=True)

    res, errors = _run(go())
    info = res.structured_content
    assert (info["frames"], info["width"], info["height"]) == (3, 16, 14)
    assert (info["grid"]["cols"], info["grid"]["rows"]) == (16, 14)
    names = [f"walk_{i:03d}.png" for i in range(3)]
    assert info["outputs"] == [str(game / "assets" / "walk" / n) for n in names]
    got = [np.asarray(Image.open(game / "assets" / "walk" / n).convert("RGB")) for n in names]
    assert len(np.unique(np.concatenate([g.reshape(-1, 3) for g in got]), axis=0)) <= 4
    for c in colours[2:4]:  # in all three frames
        outs = set()
        for g, t in zip(got, truth):
            vals, counts = np.unique(g[(t == c).all(-1)], axis=0, return_counts=True)
            outs.add(tuple(vals[np.argmax(counts)]))
        assert len(outs) == 1, (c, outs)
    preview = Image.open(io.BytesIO(base64.b64decode(_image_blocks(res)[0].data)))
    assert preview.width == 3 * 16 * (preview.height // 14)
    assert "3 frames" in errors["png"] and "folder" in errors["png"]
    assert not (game / "assets" / "x.png").exists()
    # every frame's file is checked before the first is written
    assert f"cannot write {game / 'assets' / 'squat' / 'walk_002.png'}: it is a folder" in errors["squat"]
    assert [p.name for p in (game / "assets" / "squat").iterdir()] == ["walk_002.png"]
    assert "its name must be NAME.png" in errors["noname"] and not (game / "assets" / ".png").exists()



def test_stdio_snap_of_animation_frames_gives_one_set_of_colours(tmp_path):
    """Frames drawn one by one (each its own grid phase, noise and colour drift) snapped with
    no colour reduction: every colour of the sprite comes out as one value in all frames."""
    from support.animation import drawn_walk_frames, outputs_per_true_colour

    game = _project(tmp_path)
    truth, drawn = drawn_walk_frames()
    frames = [Image.fromarray(f) for f in drawn]
    frames[0].save(game / "walk.png", save_all=True, append_images=frames[1:], duration=100, loop=0)

    async def go():
        async with Client(_stdio(game, "http://127.0.0.1:9")) as c:
            return await c.call_tool("snap_image", {"path": "walk.png", "output": "assets/walk",
                                                    "transparent_background": True})

    info = _run(go()).structured_content
    assert (info["frames"], info["width"], info["height"]) == (4, 16, 16)
    got = [np.asarray(Image.open(game / "assets" / "walk" / f"walk_{i:03d}.png").convert("RGBA"))
           for i in range(len(truth))]
    for t, g in zip(truth, got):
        assert ((t[..., 3] > 0) == (g[..., 3] > 0)).all()
    seen = outputs_per_true_colour(truth, got)
    assert len(seen) == 7 and all(len(v) == 1 for v in seen.values()), seen
    assert "off_grid" not in info


def test_stdio_snap_names_a_frame_that_is_no_pixel_art_on_the_frames_grid(tmp_path):
    from support.animation import drawn_walk_frames

    game = _project(tmp_path)
    _, drawn = drawn_walk_frames()
    noise = np.random.default_rng(1).integers(0, 256, drawn[0].shape).astype(np.uint8)
    frames = [Image.fromarray(f) for f in drawn[:2] + [noise]]
    frames[0].save(game / "mixed.png", save_all=True, append_images=frames[1:], duration=100, loop=0)

    async def go():
        async with Client(_stdio(game, "http://127.0.0.1:9")) as c:
            return await c.call_tool("snap_image", {"path": "mixed.png"})

    info = _run(go()).structured_content
    assert info["frames"] == 3
    assert info["off_grid"] == {"frame 2": "its colours do not change at the lines of its grid"}

def test_stdio_errors_name_the_tools_own_parameters(tmp_path):
    """A bad value of a tool parameter the core takes under another name (snap_image's ``cell``
    is the core's ``cell_w``/``cell_h``, ``colors`` its ``k``; generate's ``params`` the CLI's
    ``--set``) is reported under the tool's name. No ComfyUI is needed: all of these are refused
    before a job starts."""
    game = _project(tmp_path)
    coin = samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image
    save_png(coin, game / "coin.png")
    frames = [Image.fromarray(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=s).image) for s in (1, 2)]
    frames[0].save(game / "spin.png", save_all=True, append_images=frames[1:], duration=100, loop=0)
    # a user workflow with a parameter that has no default, and a workflow file in the project
    folder = tmp_path / "wf" / "needs" / "0.1.0"
    folder.mkdir(parents=True)
    (folder / "api.json").write_text(json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}))
    (folder / "workflow.json").write_text(json.dumps({
        "name": "needs", "version": "0.1.0", "description": "needs an image", "outputs": ["1"],
        "params": {"image": {"type": "string", "required": True, "help": "the input", "targets": [["1", "image"]]}},
    }))
    (game / "api.json").write_text((folder / "api.json").read_text())
    env = {**_server_env(), "DGX_PIXELS_WORKFLOWS": str(tmp_path / "wf")}
    transport = StdioTransport(command=sys.executable, env=env, cwd=str(game),
                               args=["-m", "orchestrator.cli", "mcp", "--bevy-root", str(game), "--server", "http://127.0.0.1:9"])
    target = {"bevy_project": "game", "asset_path": "sprites/x.png"}
    before = _files(tmp_path)

    async def go():
        async with Client(transport) as c:
            return await _tool_errors(c, [
                ("cell_zero", "snap_image", {"path": "coin.png", "cell": 0}),
                ("cell_small", "snap_image", {"path": "coin.png", "cell": 0.5}),
                ("cell_big", "snap_image", {"path": "coin.png", "cell": 5000}),
                ("cell_frames", "snap_image", {"path": "spin.png", "cell": -2}),
                ("colors_zero", "snap_image", {"path": "coin.png", "colors": 0}),
                ("colors_big", "snap_image", {"path": "spin.png", "colors": 300}),
                ("required", "generate", {"workflow": "needs", **target}),
                ("file_params", "generate", {"workflow": str(game / "api.json"), **target, "params": {"seed": 1}}),
                # a workflow file is read and sent to ComfyUI: outside the roots it is refused
                ("file_outside", "generate", {"workflow": str(folder / "api.json"), **target}),
            ])

    errors = _run(go())
    assert errors["cell_zero"].startswith("cell must be > 0, got 0"), errors["cell_zero"]
    assert errors["cell_small"].startswith("cell 0.5 is under one source pixel"), errors["cell_small"]
    assert errors["cell_big"].startswith("cell 5000"), errors["cell_big"]
    assert "larger than the image" in errors["cell_big"]
    assert errors["cell_frames"].startswith("cell must be > 0, got -2"), errors["cell_frames"]
    assert errors["colors_zero"].startswith("colors must be 1..256"), errors["colors_zero"]
    assert errors["colors_big"].startswith("colors must be 1..256"), errors["colors_big"]
    assert "needs a value for parameter 'image'" in errors["required"]
    assert 'pass params={"image": VALUE}; the input' in errors["required"], errors["required"]
    assert errors["file_params"].startswith("params needs a registered workflow"), errors["file_params"]
    assert "outside the allowed Bevy roots" in errors["file_outside"], errors["file_outside"]
    for label, text in errors.items():
        for core_name in ("cell_w", "cell_h", "k must", "--set"):
            assert core_name not in text, (label, text)
    assert _files(tmp_path) == before, "a refused call wrote something"


def test_tool_error_renames_only_the_core_names():
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.mcp_server import SNAP_IMAGE_NAMES, _tool_error

    def message(text: str, names: dict | None = SNAP_IMAGE_NAMES) -> str:
        return str(_tool_error(InvalidArgumentError(text, hint=""), names))

    assert message("k must be 1..256, got 0") == "colors must be 1..256, got 0"
    # a file name or a word that only looks like a core name stays as it is
    for text in ("file not found: k cell_w.png", "k-means found 3 colours", "kmeans k"):
        assert message(text) == text
    assert message("k must be 1..256, got 0", None) == "k must be 1..256, got 0"


def test_tool_errors_replace_the_cores_cli_hints():
    """A core error with its default hint (which names CLI flags and commands) gets the tool's
    own; a hint written for the case stays."""
    from comfy_nodes.pixel.errors import InvalidArgumentError, NoGridFoundError, PaletteError
    from orchestrator.mcp_server import _tool_error

    for exc in (InvalidArgumentError("cell must be > 0"), NoGridFoundError("no pixel grid found"),
                PaletteError("unknown palette 'x'")):
        text = str(_tool_error(exc))
        assert "(hint: " in text and "--" not in text and "dgx-pixels" not in text, text
    assert "list_palettes" in str(_tool_error(PaletteError("unknown palette 'x'")))
    assert str(_tool_error(InvalidArgumentError("bad", hint="give 1..4"))) == "bad (hint: give 1..4)"
    # the workflow commands' hints name the tools that do their job
    from orchestrator.errors import ParameterError, ServerUnreachableError, WorkflowError

    assert "describe_workflow" in str(_tool_error(ParameterError("no parameter 'x'")))
    assert "list_workflows" in str(_tool_error(WorkflowError("unknown workflow 'x'")))
    for exc in (ParameterError("p"), WorkflowError("w"), ServerUnreachableError("s")):
        assert "dgx-pixels workflows" not in str(_tool_error(exc)) and "pass --server" not in str(_tool_error(exc))
    assert "give this MCP server the ComfyUI" in str(_tool_error(ServerUnreachableError("not reachable")))


def test_stdio_workflow_palette_deploy_and_asset_tools(tmp_path):
    """Every tool that needs no ComfyUI, and the resources, through one stdio session."""
    from comfy_nodes.pixel import palettes_builtin
    from orchestrator.workflows import load_registry

    game = _project(tmp_path)
    outside = _outside(tmp_path, game)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "coin-ai.png")
    sprite = save_png(samples.sprites()["potion"], game / "potion.png")
    four = [(0, 0, 0), (255, 255, 255), (255, 0, 77), (41, 173, 255)]
    (game / "four.hex").write_text("".join("%02x%02x%02x\n" % c for c in four))
    # A bare palette name must not be looked up in the server's working folder.
    (outside / "secret").write_text("ff0000\n")

    async def go():
        out = {}
        async with Client(_stdio(game, "http://127.0.0.1:9", cwd=outside)) as c:
            out["workflows"] = (await c.call_tool("list_workflows", {})).structured_content["result"]
            out["cleanup"] = (await c.call_tool("describe_workflow", {"name": "cleanup"})).structured_content
            animation_ref = next(w["ref"] for w in out["workflows"] if w["name"] == "animation")
            out["animation"] = (await c.call_tool("describe_workflow", {"name": animation_ref})).structured_content
            out["pico"] = await c.call_tool("quantize_image", {"path": "coin-ai.png", "palette": "pico-8",
                                                               "output": "assets/q/pico.png"})
            out["four"] = (await c.call_tool("quantize_image", {"path": "coin-ai.png", "palette": "four.hex",
                                                                "output": "assets/q/four.png",
                                                                "dither": "floyd-steinberg"})).structured_content
            out["deploy"] = (await c.call_tool("deploy", {"file": "potion.png", "bevy_project": "game",
                                                          "asset_path": "items/potion.png"})).structured_content
            out["assets"] = (await c.call_tool("list_assets", {"bevy_project": "game"})).structured_content
            out["templates"] = [t.uri_template for t in await c.list_resource_templates()]
            out["res_assets"] = json.loads((await c.read_resource("dgx-pixels://assets/game"))[0].text)
            out["res_workflows"] = json.loads((await c.read_resource("dgx-pixels://workflows"))[0].text)
            out["res_palettes"] = json.loads((await c.read_resource("dgx-pixels://palettes"))[0].text)
            out["palettes"] = (await c.call_tool("list_palettes", {})).structured_content["result"]
            before = _files(tmp_path)
            out["errors"] = await _tool_errors(c, [
                ("workflow", "describe_workflow", {"name": "no-such-workflow"}),
                ("palette", "quantize_image", {"path": "coin-ai.png", "palette": "no-such-palette", "output": "x.png"}),
                ("palette_cwd", "quantize_image", {"path": "coin-ai.png", "palette": "secret", "output": "x.png"}),
                ("palette_escape", "quantize_image", {"path": "coin-ai.png", "palette": "link/secret", "output": "x.png"}),
                ("project", "list_assets", {"bevy_project": "no-such-game"}),
                ("deploy_project", "deploy", {"file": "potion.png", "bevy_project": "no-such-game", "asset_path": "p.png"}),
                ("status", "job_status", {"job_id": "no-such-job"}),
                ("cancel", "cancel", {"job_id": "no-such-job"}),
            ])
            try:
                await c.read_resource("dgx-pixels://assets/no-such-game")
            except Exception as exc:  # the MCP error type differs between client versions
                out["errors"]["resource"] = str(exc)
            out["unchanged"] = _files(tmp_path) == before
        return out

    out = _run(go())
    registry = {wf.name: wf for wf in load_registry().list()}
    assert {w["name"]: w["ref"] for w in out["workflows"]} == {n: f"{n}@{wf.version}" for n, wf in registry.items()}
    assert "image" in next(w for w in out["workflows"] if w["name"] == "cleanup")["parameters"]

    cleanup = out["cleanup"]["parameters"]
    assert cleanup["image"]["type"] == "image-file"
    assert cleanup["grid_mode"]["choices"] == ["auto", "cell", "size"]
    assert (cleanup["cell_size"]["min"], cleanup["cell_size"]["max"]) == (1, 256)
    assert "KSampler" in out["animation"]["required_nodes"]
    assert {m["folder"] for m in out["animation"]["models"]} == {"checkpoints", "loras"}

    pico = {tuple(int(v) for v in c) for c in palettes_builtin.builtin("pico-8").colors}
    pico_png = game / "assets/q/pico.png"
    assert out["pico"].structured_content["output"] == str(pico_png)
    assert _opaque_colours(pico_png) <= pico and len(_opaque_colours(pico_png)) > 1
    assert len(_image_blocks(out["pico"])) == 1
    used = _opaque_colours(game / "assets/q/four.png")
    assert used <= set(four) and len(used) > 1, used
    assert (out["four"]["width"], out["four"]["height"]) == Image.open(game / "coin-ai.png").size

    # exactly the files the deploy wrote, its record in the manifest included
    assert set(out["deploy"]["written"]) == {"assets/items/potion.png", "assets/items/potion.png.meta",
                                             "assets/.dgx-pixels/manifest.json"}
    assert Image.open(game / "assets/items/potion.png").tobytes() == Image.open(sprite).tobytes()
    assert "Nearest" in (game / "assets/items/potion.png.meta").read_text()
    assert 'asset_server.load("items/potion.png")' in out["deploy"]["snippet"]
    on_disk = json.loads((game / "assets/.dgx-pixels/manifest.json").read_text())
    entry = next(a for a in on_disk["assets"] if a["path"] == "items/potion.png")
    assert entry["provenance"]["source"]["sha256"] == hashlib.sha256(sprite.read_bytes()).hexdigest()
    assert out["assets"]["manifest"] == on_disk and out["res_assets"] == out["assets"]
    assert out["assets"]["project"] == str(game.resolve())

    assert out["templates"] == ["dgx-pixels://assets/{project}"]
    assert [w["ref"] for w in out["res_workflows"]] == [w["ref"] for w in out["workflows"]]
    assert next(w for w in out["res_workflows"] if w["name"] == "cleanup") == out["cleanup"]
    assert out["res_palettes"] == out["palettes"]

    errors = out["errors"]
    assert "no-such-workflow" in errors["workflow"] and "cleanup" in errors["workflow"]
    assert "unknown palette 'no-such-palette'" in errors["palette"] and "pico-8" in errors["palette"]
    assert "unknown palette 'secret'" in errors["palette_cwd"] and str(outside) not in errors["palette_cwd"]
    assert "refus" in errors["palette_escape"], errors["palette_escape"]
    for label in ("project", "deploy_project", "resource"):
        assert "no Bevy project 'no-such-game'" in errors[label], (label, errors[label])
    for label in ("status", "cancel"):
        assert "no job with id 'no-such-job'" in errors[label], (label, errors[label])
    assert out["unchanged"], "a refused call wrote something"
    assert not (game / "x.png").exists()


def test_stdio_errors_are_tool_errors_and_write_nothing(tmp_path, comfy_server):
    game = _project(tmp_path)
    outside = _outside(tmp_path, game)
    before = _files(tmp_path)

    async def go():
        async with Client(_stdio(game, comfy_server.url)) as c:
            return await _tool_errors(c, _refused_calls(outside))

    _assert_refusals_are_clear(_run(go()))
    assert _files(tmp_path) == before, "a refused call wrote something"


def test_stdio_generate_deploys_into_the_bevy_project(tmp_path, comfy_server):
    game = _project(tmp_path, "0.14")
    src = save_png(samples.degrade(samples.sprites()["potion"], cell=12.4, seed=5).image, game / "potion-ai.png")
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    async def go():
        async with Client(_stdio(game, comfy_server.url), progress_handler=on_progress) as c:
            # animations asked of a workflow that makes one image: deployed, and the result says
            # they were not used (they were dropped without a word)
            res = await c.call_tool("generate", {"workflow": "cleanup", "bevy_project": "game",
                                                 "asset_path": "sprites/potion.png", "animations": "idle:0-0@8",
                                                 "params": {"image": str(src)}}, timeout=300)
            job_id = res.structured_content["job_id"]
            status = (await c.call_tool("job_status", {"job_id": job_id})).structured_content
            # cancelling a finished job must leave it (and its files) as they are
            cancelled = (await c.call_tool("cancel", {"job_id": job_id})).structured_content
            assets = await c.call_tool("list_assets", {"bevy_project": "game"})
            return res, status, cancelled, assets

    res, status, cancelled, assets = _run(go())
    info = res.structured_content
    written = set(info["written"])
    assert "assets/sprites/potion.png" in written and "assets/sprites/potion.png.meta" in written
    meta = (game / "assets/sprites/potion.png.meta").read_text()
    assert "bevy_render::texture::image_loader::ImageLoader" in meta and "Nearest" in meta
    png = np.asarray(Image.open(game / "assets/sprites/potion.png").convert("RGBA"))
    assert png.shape[:2] == (16, 16)
    assert 'asset_server.load("sprites/potion.png")' in info["snippet"]
    assert len(info["warnings"]) == 1 and "'idle:0-0@8' were not used: the job made one image" in info["warnings"][0]
    assert _image_blocks(res), "generate must return a preview image"
    assert progress, "no MCP progress notification arrived"
    # nodes are named by their class (or title), not by their number only. Progress is relayed
    # as the job's latest state, so on a busy machine a quick job's "executing" states can be
    # passed over for its "executed" one: either names its node.
    assert any(m and re.match(r"execut(ing|ed) node \d+ \(", m) for _v, _t, m in progress), progress
    for st in (status, cancelled):
        assert (st["id"], st["state"], st["error"]) == (info["job_id"], "done", None), st
        assert st["workflow"].startswith("cleanup") and st["result"]["written"] == info["written"]
        assert "preview" not in st["result"]
    assert (game / "assets/sprites/potion.png").is_file()
    entry = next(a for a in assets.structured_content["manifest"]["assets"] if a["path"] == "sprites/potion.png")
    assert entry["provenance"]["workflow"].startswith("cleanup")
    assert entry["sha256"] == hashlib.sha256((game / "assets/sprites/potion.png").read_bytes()).hexdigest()


def test_stdio_generate_without_waiting_is_followed_by_job_status(tmp_path, comfy_server):
    game = _project(tmp_path)
    src = save_png(samples.degrade(samples.sprites()["coin"], cell=11.0, seed=2).image, game / "coin-ai.png")

    async def go():
        async with Client(_stdio(game, comfy_server.url)) as c:
            started = (await c.call_tool("generate", {"workflow": "cleanup", "bevy_project": "game",
                                                      "asset_path": "items/coin.png", "wait": False,
                                                      "params": {"image": str(src)}})).structured_content
            states = [started["state"]]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = (await c.call_tool("job_status", {"job_id": started["job_id"]})).structured_content
                states.append(status["state"])
                if status["state"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.2)
            return started, states, status

    started, states, status = _run(go())
    assert states[0] in ("queued", "running") and states[-1] == "done", states
    assert status["id"] == started["job_id"] and status["error"] is None
    assert {"assets/items/coin.png", "assets/items/coin.png.meta"} <= set(status["result"]["written"])
    assert Image.open(game / "assets/items/coin.png").size == (16, 16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HttpMCP:
    url: str
    root: Path  # holds game/ (the only Bevy root) and outside/
    game: Path
    outside: Path


@pytest.fixture(scope="module")
def http_mcp(tmp_path_factory, comfy_server):
    """``dgx-pixels mcp --http 127.0.0.1:PORT`` as its own process, shared by the HTTP tests."""
    root = tmp_path_factory.mktemp("mcp-http")
    game = _project(root, "0.19")
    outside = _outside(root, game)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game),
                             "--server", comfy_server.url, "--http", f"127.0.0.1:{port}"],
                            env=_server_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.2)
        yield HttpMCP(f"http://127.0.0.1:{port}/mcp", root, game, outside)
    finally:
        proc.terminate()
        proc.wait(15)


def _http(server: HttpMCP, **kwargs) -> Client:
    return Client(StreamableHttpTransport(server.url), **kwargs)


def test_streamable_http_transport(http_mcp):
    game = http_mcp.game
    save_png(samples.degrade(samples.sprites()["slime"], cell=10.6, seed=9).image, game / "slime-ai.png")

    async def go():
        async with _http(http_mcp) as c:
            names = {t.name for t in await c.list_tools()}
            snap = await c.call_tool("snap_image", {"path": "slime-ai.png", "output": "assets/sprites/slime.png"})
            pal = await c.call_tool("list_palettes", {})
            return names, snap, pal

    names, snap, pal = _run(go())
    assert "generate" in names
    assert (snap.structured_content["width"], snap.structured_content["height"]) == (16, 16)
    assert (game / "assets/sprites/slime.png").is_file()
    assert any(p["name"] == "pico-8" and p["colors"] == 16 for p in pal.structured_content["result"])


def test_streamable_http_errors_are_tool_errors_and_write_nothing(http_mcp):
    before = _files(http_mcp.root)
    calls = _refused_calls(http_mcp.outside) + [("etc", "snap_image", {"path": "/etc/hostname"})]

    async def go():
        async with _http(http_mcp) as c:
            return await _tool_errors(c, calls)

    errors = _run(go())
    _assert_refusals_are_clear(errors)
    assert "/etc/hostname" in errors["etc"] and "outside the allowed Bevy roots" in errors["etc"]
    assert _files(http_mcp.root) == before, "a refused call wrote something"


def test_streamable_http_refuses_another_host_or_a_web_pages_origin(http_mcp):
    """A web page the user opens can reach a loopback port through DNS rebinding (Host: the
    page's own name) or a cross-site request (Origin: the page's): the server answered both
    and wrote into the Bevy roots. Both are refused before any MCP session; the right host
    is still served."""
    import urllib.error
    import urllib.request

    before = _files(http_mcp.root)
    port = http_mcp.url.split(":")[2].split("/")[0]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "page", "version": "1"}}}).encode()

    def post(headers: dict) -> int:
        req = urllib.request.Request(http_mcp.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post({"Host": f"evil.example:{port}"}) == 421
    assert post({"Origin": "http://evil.example"}) == 403
    assert post({}) == 200
    assert post({"Origin": f"http://127.0.0.1:{port}"}) == 200
    assert _files(http_mcp.root) == before


def _sheet_params(server, **overrides) -> dict:
    """A generating workflow on the random-weight SD1.5-layout checkpoint + LoRA, 64x64, 2 steps."""
    from support.live import install_test_models

    ckpt, lora = install_test_models(server)
    return {"checkpoint": ckpt, "lora": lora, "width": 64, "height": 64, "steps": 2, "frames": 4,
            "grid_mode": "size", "target_width": 16, "target_height": 16, "animation": "walk:0-3@8", **overrides}


async def _generate_sheet(client, game: Path, params: dict) -> dict:
    res = await client.call_tool("generate", {"workflow": "animation", "bevy_project": str(game),
                                              "asset_path": "sprites/knight_walk.png", "params": params},
                                 timeout=600)
    assert _image_blocks(res), "generate must return a preview image"
    return res.structured_content


def _assert_sheet_deployed(game: Path, info: dict) -> None:
    """The sheet, its .meta (Bevy 0.15+ loader) and the Aseprite atlas JSON are in the project."""
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


def test_stdio_generate_animation_sheet_with_random_checkpoint(tmp_path, managed_comfy_server):
    params = _sheet_params(managed_comfy_server)
    game = _project(tmp_path, "0.19")

    async def go():
        async with Client(_stdio(game, managed_comfy_server.url)) as c:
            return await _generate_sheet(c, game, params)

    _assert_sheet_deployed(game, _run(go()))


def test_streamable_http_generate_animation_sheet_with_random_checkpoint(http_mcp, managed_comfy_server):
    # a seed of its own: ComfyUI would otherwise answer from its cache of the stdio test's run
    params = _sheet_params(managed_comfy_server, seed=5150)
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    async def go():
        async with _http(http_mcp, progress_handler=on_progress) as c:
            info = await _generate_sheet(c, http_mcp.game, params)
            status = await c.call_tool("job_status", {"job_id": info["job_id"]})
            return info, status.structured_content

    info, status = _run(go())
    _assert_sheet_deployed(http_mcp.game, info)
    assert status["state"] == "done" and status["result"]["written"] == info["written"]
    assert progress, "no MCP progress notification arrived over HTTP"
    manifest = json.loads((http_mcp.game / "assets/.dgx-pixels/manifest.json").read_text())
    prov = next(a for a in manifest["assets"] if a["path"] == "sprites/knight_walk.png")["provenance"]
    assert (prov["seed"], prov["cached"], prov["server"]) == (5150, False, managed_comfy_server.url), prov


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_sigterm_stops_the_server_and_removes_its_temporary_folder(tmp_path, transport):
    """A service manager stops the server with SIGTERM: it exits 0 and leaves no temporary
    folder of downloaded job outputs behind (the HTTP transport re-raises SIGTERM after its
    graceful shutdown, which used to end the process before the folder was removed)."""
    game = _project(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(_server_env(), TMPDIR=str(tmp))
    args = [sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game)]
    port = _free_port()
    if transport == "http":
        args += ["--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp.glob("dgx-pixels-mcp-*")):
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.1)
        while transport == "http" and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert len(list(tmp.glob("dgx-pixels-mcp-*"))) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stdout.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == []


_SIGNAL_IN_TASK_GROUP = """
import os, signal, sys
import anyio
import orchestrator.mcp_server as mcp_server
from orchestrator.cli import main

class StandIn:
    # stands in for the FastMCP server only to place the signal: inside the stdio transport's
    # task group, where it lands when it comes while the server is still starting, with or
    # without its stdin reader thread already waiting
    def run(self, transport, show_banner):
        async def serve():
            async with anyio.create_task_group() as tg:
                if sys.argv[3] == "reader":
                    tg.start_soon(anyio.to_thread.run_sync, sys.stdin.readline)
                    await anyio.sleep(0.3)
                else:
                    tg.start_soon(anyio.sleep_forever)
                os.kill(os.getpid(), getattr(signal, sys.argv[1]))
                await anyio.sleep(30)
        anyio.run(serve)

mcp_server.build_server = lambda settings: StandIn()
sys.exit(main(["mcp", "--bevy-root", sys.argv[2]]))
"""


def _stopped_cleanly(proc: subprocess.Popen, timeout: float) -> str:
    """Wait for ``proc`` (killed when it outlives ``timeout`` s) and assert a clean stop: exit 0
    and no traceback. Returns its stderr."""
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None  # hung
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == 0, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("where", ["task-group", "reader"])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_the_transport_starts_is_still_a_clean_stop(tmp_path, sig, where):
    """A signal that arrives while the stdio transport starts lands inside its anyio task group:
    raised there, it came out wrapped in an exception group (exit 1 and a traceback), or, with
    the stdin reader thread already waiting, asyncio's shutdown waited for that thread until the
    client closed stdin (the server hung). It is a stop: exit 0 at once, temporary folder
    removed, stdin still open. The signal is real; the server is a stand-in only because no
    outside action can place a signal at that moment on purpose."""
    game = _project(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(_server_env(), TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-c", _SIGNAL_IN_TASK_GROUP, sig, str(game), where], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _stopped_cleanly(proc, 20)
    assert list(tmp.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to see the import under way")
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_stop_signal_while_fastmcp_is_imported_is_a_clean_stop(tmp_path, transport):
    """A client that starts the server and stops it at once sends SIGTERM while fastmcp is still
    being imported (about half a second): the CLI's general handler answered with exit 143,
    "terminated", where a stopped server exits 0. The signal goes the moment pydantic's
    compiled core (which fastmcp imports first, the CLI never) is mapped into the process."""
    game = _project(tmp_path)
    args = [sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game)]
    if transport == "http":
        args += ["--http", f"127.0.0.1:{_free_port()}"]
    proc = subprocess.Popen(args, env=_server_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    maps = Path(f"/proc/{proc.pid}/maps")
    while proc.poll() is None and time.monotonic() < deadline and "pydantic_core" not in maps.read_text():
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert "terminated" not in _stopped_cleanly(proc, 30)


def _raw_stdio(game: Path):
    """``dgx-pixels mcp`` on stdio spoken to line by line, initialised: (process, ask), where
    ``ask(message)`` sends one JSON-RPC message and returns the answer (None for a notification).
    Its stderr, the assistant's log, stays readable."""
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game)],
                            env=_server_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)

    def ask(obj: dict):
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline()) if "id" in obj else None

    try:
        assert ask({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "t", "version": "0"}}})["id"] == 1
        ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, ask


def test_a_refused_call_or_read_leaves_no_traceback_in_the_servers_log(tmp_path):
    """A refusal is the client's answer: reading the manifest resource of a project that is not
    there put a full traceback on the stdio server's stderr (the assistant's log), a refused
    tool call an "Error calling tool" line. Both still reach the client as errors."""
    proc, ask = _raw_stdio(_project(tmp_path))
    try:
        read = ask({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "dgx-pixels://assets/nosuch"}})
        call = ask({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "snap_image", "arguments": {"path": "../outside.png"}}})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "nosuch" in json.dumps(read["error"])
    assert call["result"]["isError"] and "refusing" in json.dumps(call["result"])
    log = proc.stderr.read()
    assert "Traceback" not in log and "Error reading resource" not in log and "Error calling tool" not in log, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stdio_server_stops_on_a_signal_after_a_tool_call_without_stdin_closing(tmp_path, sig):
    """After a tool call the stdio transport's reader thread waits on stdin; a stop signal must
    still end the server at once (exit 0, as the README says for mcp), not when the client
    finally closes stdin."""
    proc, ask = _raw_stdio(_project(tmp_path))
    try:
        answer = ask({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_palettes", "arguments": {}}})
        assert "pico-8" in json.dumps(answer).lower()
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        # fastmcp's INFO start-up notice is kept out of the assistant's log
        assert "Starting MCP server" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_mcp_without_its_optional_library_is_a_clear_error(tmp_path):
    """A plain install lacks the 'mcp' extra. A fresh interpreter has the import of fastmcp
    blocked (how Python reports a package that is not installed, without uninstalling it)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastmcp'] = None; from orchestrator.cli import main; "
            f"sys.exit(main(['mcp', '--bevy-root', {str(tmp_path)!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "error: the MCP server needs the 'fastmcp' package, which is not installed" in p.stderr
    assert "hint: pip install 'dgx-pixels[mcp]'" in p.stderr and "Traceback" not in p.stderr


def test_stdio_previews_stay_small_keep_is_said_and_no_asset_is_deployed_onto_itself(tmp_path):
    """A large image's preview is shrunk to at most 256 px a side (a 1536x1024 quantised image
    came back whole, 1.7 MB of base64); deploy with 'keep' says it kept the asset; deploying an
    asset onto itself would make it its own source, and an animation is not quantised as its
    first frame alone."""
    import io

    game = _project(tmp_path)
    rng = np.random.default_rng(4)
    save_png(rng.integers(0, 256, (1024, 1536, 3), dtype=np.uint8), game / "big.png")
    save_png(samples.sprites()["potion"], game / "potion.png")
    save_png(samples.sprites()["coin"], game / "coin.png")
    frames = [Image.fromarray(samples.sprites()[n]) for n in ("potion", "coin")]
    frames[0].save(game / "anim.gif", save_all=True, append_images=frames[1:], duration=100)

    async def go():
        out = {}
        async with Client(_stdio(game, "http://127.0.0.1:9")) as c:
            out["big"] = _image_blocks(await c.call_tool("quantize_image", {"path": "big.png", "palette": "pico-8"}))
            out["first"] = (await c.call_tool("deploy", {"file": "potion.png", "bevy_project": "game",
                                                         "asset_path": "s/k.png"})).structured_content
            out["keep"] = (await c.call_tool("deploy", {"file": "coin.png", "bevy_project": "game",
                                                        "asset_path": "s/k.png", "overwrite": "keep"})).structured_content
            out["errors"] = await _tool_errors(c, [
                ("self", "deploy", {"file": "assets/s/k.png", "bevy_project": "game", "asset_path": "s/k.png"}),
                ("anim", "quantize_image", {"path": "anim.gif", "palette": "pico-8"}),
            ])
        return out

    out = _run(go())
    import base64

    (block,) = out["big"]
    assert max(Image.open(io.BytesIO(base64.b64decode(block.data))).size) <= 256
    assert out["keep"]["kept"] is True and out["keep"]["written"] == []
    with Image.open(game / "assets" / "s" / "k.png") as im:
        assert im.size == (samples.sprites()["potion"].shape[1], samples.sprites()["potion"].shape[0])
    assert "is the asset 's/k.png' itself" in out["errors"]["self"]
    assert "has 2 frames; quantize_image takes one image" in out["errors"]["anim"]


def _core(tmp_path: Path):
    from orchestrator.mcp_server import PixelMCP, ServerSettings

    return PixelMCP(ServerSettings(servers=["http://127.0.0.1:1"], bevy_roots=[tmp_path], out_dir=tmp_path / "jobs"))


def test_list_assets_reads_no_manifest_outside_the_roots(tmp_path):
    """A manifest (or its .dgx-pixels/ folder) that is a symlink leading out of the roots is not
    read: list_assets would return that file's content, or quote a damaged entry of it."""
    from comfy_nodes.pixel.errors import PathEscapeError

    root = tmp_path / "roots"
    game = _project(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text(json.dumps({"assets": [{"path": "SECRET"}]}))
    core = _core(root)
    records = game / "assets" / ".dgx-pixels"
    records.mkdir()
    (records / "manifest.json").symlink_to(outside / "manifest.json")
    with pytest.raises(PathEscapeError) as exc:
        core.list_assets("game")
    assert "SECRET" not in str(exc.value)
    (records / "manifest.json").unlink()
    records.rmdir()
    records.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError):
        core.list_assets("game")
    # deploy refuses too, and leaves nothing (no lock file) outside
    save_png(samples.sprites()["coin"], game / "coin.png")
    with pytest.raises(PathEscapeError):
        core.deploy("game/coin.png", "game", "sprites/coin.png")
    assert sorted(p.name for p in outside.iterdir()) == ["manifest.json"]


def test_tools_write_nothing_into_the_records_folder(tmp_path):
    """snap_image / quantize_image outputs never land in assets/.dgx-pixels/, whatever the
    spelling (relative, absolute, another case), and generate refuses such an asset path
    before any job runs."""
    from comfy_nodes.pixel.errors import PathEscapeError

    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "in.png")
    core = _core(tmp_path)
    for out in ("game/assets/.dgx-pixels/x.png", str(game / "assets" / ".dgx-pixels" / "x.png"),
                "game/assets/.DGX-Pixels/x.png"):
        with pytest.raises(PathEscapeError, match="own records"):
            core.snap_image("game/in.png", output=out)
        with pytest.raises(PathEscapeError, match="own records"):
            core.quantize_image("game/in.png", "pico-8", output=out)
    with pytest.raises(PathEscapeError, match="own records"):
        core.start_job("sprite", {"prompt": "a knight"}, "game", ".dgx-pixels/knight.png")
    assert not core.jobs
    assert not (game / "assets" / ".dgx-pixels").exists() and not (game / "assets" / ".DGX-Pixels").exists()


def test_tool_outputs_replace_a_file_only_when_asked_and_never_a_deployed_asset(tmp_path):
    """snap_image and quantize_image wrote over any PNG in the roots: a hand-drawn file, or a
    deployed asset whose .meta and provenance then described other pixels. An existing output
    is now replaced only with overwrite=true, and a deployed asset never (deploy replaces one)."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "in.png")
    # two degraded frames of one sprite, as an animated PNG
    frames = [Image.fromarray(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=s).image) for s in (1, 2)]
    frames[0].save(game / "walk.png", save_all=True, append_images=frames[1:], duration=100, loop=0)
    mine = game / "assets" / "hand" / "mine.png"
    save_png(samples.sprites()["potion"], mine)
    hand = mine.read_bytes()
    core = _core(tmp_path)
    core.deploy("game/in.png", "game", "sprites/hero.png")
    hero = game / "assets" / "sprites" / "hero.png"
    deployed = hero.read_bytes()
    (game / "frames").mkdir()
    (game / "frames" / "walk_001.png").write_bytes(hand)

    for call in (lambda **kw: core.snap_image("game/in.png", output="game/assets/hand/mine.png", **kw),
                 lambda **kw: core.quantize_image("game/in.png", "pico-8", output="game/assets/hand/mine.png", **kw)):
        with pytest.raises(InvalidArgumentError, match=r"^output 'game/assets/hand/mine.png' exists \(") as exc:
            call()
        assert "overwrite=true" in exc.value.hint
        assert mine.read_bytes() == hand
        call(overwrite=True)
        assert mine.read_bytes() != hand
        mine.write_bytes(hand)
    for call in (lambda: core.snap_image("game/in.png", output="game/assets/sprites/hero.png", overwrite=True),
                 lambda: core.quantize_image("game/in.png", "pico-8", output=str(hero), overwrite=True)):
        with pytest.raises(InvalidArgumentError, match="is the asset sprites/hero.png that dgx-pixels deployed") as exc:
            call()
        assert "deploy" in exc.value.hint
    assert hero.read_bytes() == deployed
    # an animation's frames: every one is checked before the first is written
    with pytest.raises(InvalidArgumentError, match=r"^output 'game/frames/walk_001.png' exists"):
        core.snap_image("game/walk.png", output="game/frames")
    assert sorted(p.name for p in (game / "frames").iterdir()) == ["walk_001.png"]
    core.snap_image("game/walk.png", output="game/frames", overwrite=True)
    assert sorted(p.name for p in (game / "frames").iterdir()) == ["walk_000.png", "walk_001.png"]


def test_export_sprite_lays_frames_out_as_a_sheet_with_animations_in_the_game(tmp_path):
    """What the CLI's export does, as a tool: a folder of frames becomes one sheet with its
    atlas JSON (the animations in it), .meta and record; one image stays one image; an
    animated file brings its frames and timing; a frame linked from outside the roots is
    refused; the default policy keeps an existing asset from being replaced."""
    from comfy_nodes.pixel.errors import ExportError, PathEscapeError

    game = _project(tmp_path / "roots")
    core = _core(tmp_path / "roots")
    (game / "walk").mkdir()
    sprite = samples.sprites()["potion"]
    for i in range(4):
        save_png(np.roll(sprite, i, axis=1), game / "walk" / f"f{i}.png")
    info, png = core.export_sprite(["game/walk"], "game", "sprites/walk.png", animations="walk:0-3@12", columns=2)
    assert info["frames"] == 4 and info["asset_path"] == "sprites/walk.png"
    assert set(info["written"]) == {"assets/sprites/walk.png", "assets/sprites/walk.png.meta",
                                    "assets/sprites/walk.json", "assets/.dgx-pixels/manifest.json"}
    atlas = json.loads((game / "assets" / "sprites" / "walk.json").read_text())
    assert [t["name"] for t in atlas["meta"]["frameTags"]] == ["walk"]
    assert (info["width"], info["height"]) == Image.open(game / "assets" / "sprites" / "walk.png").size
    assert 'asset_server.load("sprites/walk.png")' in info["snippet"] and png.startswith(b"\x89PNG")
    # one image: one asset, no atlas
    info, _ = core.export_sprite(["game/walk/f0.png"], "game", "items/potion.png")
    assert info["frames"] == 1 and "assets/items/potion.json" not in info["written"]
    np.testing.assert_array_equal(np.asarray(Image.open(game / "assets" / "items" / "potion.png").convert("RGBA")),
                                  sprite)
    # an animated file: its frames and its own timing
    Image.fromarray(sprite).save(game / "blink.png", save_all=True, append_images=[Image.fromarray(sprite[::-1])],
                                 duration=[120, 480], loop=0)
    core.export_sprite(["game/blink.png"], "game", "fx/blink.png")
    durations = [f["duration"] for f in json.loads((game / "assets" / "fx" / "blink.json").read_text())["frames"]]
    assert durations == [120, 480]
    # taken: refused by default
    with pytest.raises(ExportError, match="already exists"):
        core.export_sprite(["game/walk"], "game", "sprites/walk.png")
    # a frame in the folder that links out of the roots
    outside = tmp_path / "outside"
    outside.mkdir()
    save_png(sprite, outside / "secret.png")
    (game / "walk" / "f9.png").symlink_to(outside / "secret.png")
    with pytest.raises(PathEscapeError):
        core.export_sprite(["game/walk"], "game", "sprites/walk2.png")
    assert not (game / "assets" / "sprites" / "walk2.png").exists()


def test_every_tool_parameter_is_described_in_the_schema(tmp_path):
    """An assistant reads the tools' input schemas: every parameter says what it takes, and the
    policies are enums, not free strings."""
    from orchestrator.mcp_server import ServerSettings, build_server

    mcp = build_server(ServerSettings(servers=["http://127.0.0.1:1"], bevy_roots=[tmp_path], out_dir=tmp_path / "j"))

    async def go():
        async with Client(mcp) as c:
            return await c.list_tools()

    tools = {t.name: t.input_schema for t in _run(go())}
    assert len(tools) >= 11
    undescribed = [(name, prop) for name, schema in tools.items() for prop, spec in schema["properties"].items()
                   if not spec.get("description")]
    assert undescribed == []

    def enum(spec: dict) -> list:
        return spec.get("enum") or next((a["enum"] for a in spec.get("anyOf", []) if "enum" in a), [])

    for tool in ("generate", "deploy", "export_sprite"):
        assert set(enum(tools[tool]["properties"]["overwrite"])) == {"replace", "keep", "version", "fail"}, tool
    assert "floyd-steinberg" in enum(tools["quantize_image"]["properties"]["dither"])


def test_snap_image_refuses_arguments_that_cannot_both_be_followed(tmp_path):
    """cell with width/height, or colors with palette: one of the two was dropped without a
    word; the CLI refuses both pairs as usage."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "in.png")
    core = _core(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"^give either a cell size \(cell\) or a target size"):
        core.snap_image("game/in.png", output="game/a.png", cell=6, width=16, height=16)
    with pytest.raises(InvalidArgumentError, match=r"^give either colors or palette, not both"):
        core.snap_image("game/in.png", output="game/a.png", colors=2, palette="pico-8")
    assert not (game / "a.png").exists()


def test_generate_refuses_a_project_or_an_asset_it_could_not_deploy_to_before_submitting(tmp_path):
    """A folder without Cargo.toml, or an asset the overwrite policy keeps, was found only after
    the whole ComfyUI job, whose images then waited where no tool reaches. Both are refused
    before anything is submitted (the server here is not even reachable)."""
    from comfy_nodes.pixel.errors import DgxPixelsError, InvalidArgumentError

    game = _project(tmp_path)
    (tmp_path / "other").mkdir()
    save_png(samples.sprites()["coin"], game / "coin.png")
    core = _core(tmp_path)
    core.deploy("game/coin.png", "game", "sprites/coin.png")
    with pytest.raises(DgxPixelsError) as exc:
        core.start_job("sprite", {"prompt": "a knight"}, "other", "sprites/knight.png")
    assert str(exc.value).startswith(f"{tmp_path / 'other'} is not a Bevy project: it holds no Cargo.toml; "
                                     "nothing was submitted")
    assert "Cargo.toml" in exc.value.hint and "--" not in exc.value.hint
    with pytest.raises(DgxPixelsError, match=r"coin.png already exists \(--overwrite fail\); nothing was submitted"):
        core.start_job("sprite", {"prompt": "a knight"}, "game", "sprites/coin.png", overwrite="fail")
    with pytest.raises(InvalidArgumentError, match=r"^overwrite must be one of replace, keep, version, fail, got 'nope'"):
        core.start_job("sprite", {"prompt": "a knight"}, "game", "sprites/coin.png", overwrite="nope")
    assert not core.jobs


def test_http_port_out_of_range_is_bad_usage_not_a_traceback(tmp_path):
    game = _project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game),
                           "--http", "127.0.0.1:99999"], env=_server_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --http '127.0.0.1:99999': port 99999 is not 1..65535")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("call", ["snap", "snap_out", "palette", "deploy_asset"])
def test_a_nul_byte_in_any_path_argument_is_a_refusal(tmp_path, call):
    """A NUL byte made os.path raise ValueError, which no tool turned into a clear tool error."""
    from comfy_nodes.pixel.errors import PathEscapeError

    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "in.png")
    core = _core(tmp_path)
    calls = {
        "snap": lambda: core.snap_image(str(game / "in\x00.png")),
        "snap_out": lambda: core.snap_image("game/in.png", output=str(game / "o\x00.png")),
        "palette": lambda: core.quantize_image("game/in.png", str(game / "p\x00.hex")),
        "deploy_asset": lambda: core.deploy("game/in.png", "game", "sprites/k\x00.png"),
    }
    with pytest.raises(PathEscapeError, match="NUL"):
        calls[call]()


@pytest.mark.parametrize("tool", ["snap_image", "quantize_image"])
def test_an_output_folder_swapped_for_a_symlink_during_the_work_takes_nothing_out(tmp_path, monkeypatch, tool):
    """The output's folder is checked first, then the image is snapped or quantized, then
    written: a folder swapped for a symlink in between (from a hook on that work: the moment
    cannot be hit reliably otherwise) is refused, and nothing lands outside."""
    from comfy_nodes.pixel import grid
    from comfy_nodes.pixel.errors import PathEscapeError
    from orchestrator import mcp_server

    game = _project(tmp_path)
    save_png(samples.degrade(samples.sprites()["coin"], cell=9.0, seed=3).image, game / "in.png")
    (game / "out").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    core = _core(tmp_path)

    def swapping(real):
        def work(*a, **k):
            result = real(*a, **k)
            if not (game / "out").is_symlink():
                swap_for_link(game / "out", outside)
            return result
        return work

    if tool == "snap_image":
        monkeypatch.setattr(grid, "snap", swapping(grid.snap))
        call = lambda: core.snap_image("game/in.png", output="game/out/snapped.png")  # noqa: E731
    else:
        monkeypatch.setattr(mcp_server, "_reduce", swapping(mcp_server._reduce))
        call = lambda: core.quantize_image("game/in.png", "pico-8", output="game/out/q.png")  # noqa: E731
    with pytest.raises(PathEscapeError, match="out is a symlink"):
        call()
    assert list(outside.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to see what is loaded")
def test_the_server_loads_k_means_before_the_first_call_needs_it(tmp_path):
    """The first tool call that reduced colours waited 1.3-1.7 s for scikit-learn's import; the
    server now imports it in the background at start, with no call made."""
    game = _project(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game)],
                            env=_server_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        maps = Path(f"/proc/{proc.pid}/maps")
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and "sklearn" not in maps.read_text():
            time.sleep(0.05)
        assert proc.poll() is None and "sklearn" in maps.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _stopped_cleanly(proc, 30)
