"""End to end against a real ComfyUI 0.3.75: upload, queue, follow the websocket, download.

Also unit tests of the Pixel Nearest Upscale node and the tensor glue, calling ``execute``
directly inside the ComfyUI environment (no server).
"""
from __future__ import annotations

import io as stdio
import json
import time
import uuid

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

from comfy_nodes.nodes._tensor import image_to_rgba_list, rgba_list_to_image, rgba_to_mask  # noqa: E402
from comfy_nodes.nodes.nodes_preview import DGXPixelsNearestUpscale  # noqa: E402
from comfy_nodes.pixel.errors import InputImageError  # noqa: E402


def _sprite(h: int, w: int, seed: int, alpha: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    if not alpha:
        rgba[..., 3] = 255
    return rgba


# ----------------------------------------------------------------------------- unit


def test_nearest_upscale_execute_rgb_batch():
    a, b = _sprite(5, 7, 1, alpha=False), _sprite(5, 7, 2, alpha=False)
    image = torch.from_numpy(np.stack([a[..., :3], b[..., :3]]).astype(np.float32) / 255.0)
    out = DGXPixelsNearestUpscale.execute(image=image, scale=3).result[0]
    assert tuple(out.shape) == (2, 15, 21, 3)
    got = np.round(out.numpy() * 255).astype(np.uint8)
    for i, src in enumerate((a, b)):
        expected = np.repeat(np.repeat(src[..., :3], 3, axis=0), 3, axis=1)
        np.testing.assert_array_equal(got[i], expected)
    # Each 3x3 block is one colour: the top-left pixel of block (1, 2) is the source pixel (1, 2).
    np.testing.assert_array_equal(got[0, 3:6, 6:9], np.broadcast_to(a[1, 2, :3], (3, 3, 3)))


def test_nearest_upscale_keeps_alpha_channel():
    src = _sprite(4, 4, 3)
    image = torch.from_numpy(src[None].astype(np.float32) / 255.0)
    out = DGXPixelsNearestUpscale.execute(image=image, scale=2).result[0]
    assert tuple(out.shape) == (1, 8, 8, 4)
    got = np.round(out.numpy()[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(got, np.repeat(np.repeat(src, 2, axis=0), 2, axis=1))


def test_nearest_upscale_scale_one_is_identity():
    src = _sprite(3, 6, 4, alpha=False)[..., :3]
    image = torch.from_numpy(src[None].astype(np.float32) / 255.0)
    out = DGXPixelsNearestUpscale.execute(image=image, scale=1).result[0]
    np.testing.assert_array_equal(np.round(out.numpy()[0] * 255).astype(np.uint8), src)


def test_empty_batch_is_a_clear_error():
    with pytest.raises(InputImageError, match="empty batch"):
        DGXPixelsNearestUpscale.execute(image=torch.zeros(0, 4, 4, 3), scale=2)


def test_wrong_shape_names_the_problem():
    with pytest.raises(InputImageError, match=r"expected \(batch, height, width, 3 or 4 channels\)"):
        image_to_rgba_list(torch.zeros(1, 4, 4, 2))


def test_tensor_roundtrip_is_lossless_and_mask_is_inverse_alpha():
    frames = [_sprite(6, 5, 10), _sprite(6, 5, 11)]
    t = rgba_list_to_image(frames, keep_alpha=True)
    assert t.dtype == torch.float32 and tuple(t.shape) == (2, 6, 5, 4)
    back = image_to_rgba_list(t)
    for want, got in zip(frames, back):
        np.testing.assert_array_equal(got, want)
    mask = rgba_to_mask(frames)
    np.testing.assert_allclose(mask.numpy(), 1.0 - np.stack([f[..., 3] for f in frames]) / 255.0, atol=1e-6)
    # RGB tensor + ComfyUI mask gives back the original alpha.
    rgb = rgba_list_to_image(frames, keep_alpha=False)
    merged = image_to_rgba_list(rgb, mask)
    for want, got in zip(frames, merged):
        np.testing.assert_array_equal(got, want)


def test_mixed_sizes_cannot_form_a_batch():
    with pytest.raises(InputImageError, match="a batch needs one size"):
        rgba_list_to_image([_sprite(4, 4, 1), _sprite(5, 4, 2)], keep_alpha=True)


# ----------------------------------------------------------------------------- live server


def _wait_for_prompt(ws, prompt_id: str, timeout: float = 120.0) -> list[dict]:
    """Collect websocket messages for ``prompt_id`` until ComfyUI reports it finished."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        raw = ws.recv()
        if isinstance(raw, bytes):
            continue  # binary preview frames
        msg = json.loads(raw)
        data = msg.get("data", {})
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        seen.append(msg)
        if msg["type"] == "execution_error":
            pytest.fail(f"ComfyUI failed the prompt: {data.get('exception_message')}\n{data.get('traceback')}")
        if msg["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return seen
    pytest.fail(f"prompt {prompt_id} did not finish within {timeout} s; saw {[m['type'] for m in seen]}")


def test_workflow_runs_on_real_comfyui(comfy_server):
    import requests
    import websocket

    src = _sprite(9, 11, 42)
    scale = 3
    name = f"dgx-live-{uuid.uuid4().hex[:8]}.png"
    buf = stdio.BytesIO()
    Image.fromarray(src, "RGBA").save(buf, format="PNG")
    up = requests.post(
        f"{comfy_server.url}/upload/image",
        files={"image": (name, buf.getvalue(), "image/png")},
        data={"type": "input", "overwrite": "true"},
        timeout=30,
    )
    assert up.status_code == 200, up.text
    uploaded = up.json()["name"]
    if comfy_server.input_dir is not None:
        assert (comfy_server.input_dir / uploaded).is_file()

    prefix = f"dgx-live-{uuid.uuid4().hex[:8]}"
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": uploaded}},
        "2": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["1", 0], "scale": scale}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }
    client_id = uuid.uuid4().hex
    ws_url = "ws" + comfy_server.url[len("http"):] + f"/ws?clientId={client_id}"
    ws = websocket.create_connection(ws_url, timeout=30)
    try:
        resp = requests.post(f"{comfy_server.url}/prompt", json={"prompt": workflow, "client_id": client_id}, timeout=30)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body.get("node_errors") == {}, body
        prompt_id = body["prompt_id"]
        messages = _wait_for_prompt(ws, prompt_id)
    finally:
        ws.close()

    types = [m["type"] for m in messages]
    assert "execution_start" in types
    executed_nodes = [m["data"]["node"] for m in messages if m["type"] == "executing" and m["data"]["node"]]
    assert "2" in executed_nodes and "3" in executed_nodes, types
    saved = [m for m in messages if m["type"] == "executed" and m["data"]["node"] == "3"]
    assert saved, types
    files = saved[0]["data"]["output"]["images"]
    assert len(files) == 1 and files[0]["filename"].startswith(prefix)

    history = requests.get(f"{comfy_server.url}/history/{prompt_id}", timeout=30).json()
    assert history[prompt_id]["status"]["status_str"] == "success"
    out = history[prompt_id]["outputs"]["3"]["images"][0]
    assert out == files[0]

    view = requests.get(
        f"{comfy_server.url}/view",
        params={"filename": out["filename"], "subfolder": out["subfolder"], "type": out["type"]},
        timeout=30,
    )
    assert view.status_code == 200
    got = np.array(Image.open(stdio.BytesIO(view.content)).convert("RGBA"))
    # LoadImage drops alpha into a separate mask, so the node sees (and SaveImage writes) RGB.
    expected = np.repeat(np.repeat(src[..., :3], scale, axis=0), scale, axis=1)
    assert got.shape == (9 * scale, 11 * scale, 4)
    np.testing.assert_array_equal(got[..., :3], expected)
    assert (got[..., 3] == 255).all()
    if comfy_server.output_dir is not None:
        assert (comfy_server.output_dir / out["subfolder"] / out["filename"]).is_file()


def test_invalid_scale_is_rejected_by_the_server(comfy_server):
    import requests

    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["1", 0], "scale": 65}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    resp = requests.post(f"{comfy_server.url}/prompt", json={"prompt": workflow}, timeout=30)
    assert resp.status_code == 400
    errors = resp.json()["node_errors"]["2"]["errors"]
    assert any("scale" in json.dumps(e) and "64" in json.dumps(e) for e in errors), errors


@pytest.mark.parametrize("bevy", [False, True], ids=["palette-save", "bevy-export"])
def test_a_save_node_runs_again_only_when_its_file_is_gone(comfy_server, bevy):
    """ComfyUI skips a node whose inputs did not change; a save node must not then claim a
    file that was deleted meanwhile. An unchanged graph queued again writes nothing new."""
    from orchestrator.client import ComfyClient

    if comfy_server.output_dir is None:
        pytest.skip("needs the test harness's own ComfyUI (its output folder)")
    name = f"palettes/fp-{uuid.uuid4().hex[:8]}"
    prompt = {
        "1": {"class_type": "DGXPixelsPaletteLoad", "inputs": {"builtin": "gameboy", "file": "none"}},
        "2": {"class_type": "DGXPixelsPaletteSave",
              "inputs": {"palette": ["1", 0], "filename": name, "format": "hex", "swatch": 1, "overwrite": False}},
    }
    project = f"fp-{uuid.uuid4().hex[:8]}"
    if bevy:
        prompt["2"] = {"class_type": "DGXPixelsBevyExport",
                       "inputs": {"image": ["1", 1], "project": project, "asset_path": "sprites/swatch.png",
                                  "bevy_version": "auto", "overwrite": "version", "upscale": 1, "animations": "",
                                  "write_atlas_json": True, "write_assets_ron": False}}
        # a second export into the same project: the manifest both write is no reason to re-run
        prompt["3"] = {"class_type": "DGXPixelsBevyExport",
                       "inputs": {**prompt["2"]["inputs"], "asset_path": "sprites/other.png"}}
    client = ComfyClient(comfy_server.url)

    def run_once():
        pid = client.submit(prompt)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            entry = client.history(pid)
            if entry is not None and entry.get("status", {}).get("completed"):
                return [m[0] for m in entry["status"]["messages"]], entry
            time.sleep(0.1)
        pytest.fail("the palette prompt did not finish")

    try:
        if bevy:
            folder = comfy_server.output_dir / "bevy" / project / "assets" / "sprites"
            both = ["other.png", "other.png.meta", "swatch.png", "swatch.png.meta"]
            run_once()
            assert (folder / "swatch.png").is_file() and (folder / "swatch.png.meta").is_file()
            run_once()  # unchanged: no swatch-2.png under the default 'version' policy
            assert sorted(p.name for p in folder.iterdir()) == both
            (folder / "swatch.png").unlink()
            run_once()
            assert sorted(p.name for p in folder.iterdir()) == both
            # the game's Cargo.toml edited: the node runs again and refreshes its own files in
            # place (it wrote swatch-2.png and other-2.png beside the unchanged ones)
            cargo = folder.parent.parent / "Cargo.toml"
            cargo.write_text((cargo.read_text() if cargo.is_file() else "") + "\n# edited\n")
            _, entry = run_once()
            assert sorted(p.name for p in folder.iterdir()) == both
            assert "sprites/swatch.png" in entry["outputs"]["2"]["text"][0]
            return
        folder = comfy_server.output_dir / "palettes"
        target = comfy_server.output_dir / f"{name}.hex"
        run_once()
        assert target.read_text().split() == ["0f380f", "306230", "8bac0f", "9bbc0f"]
        _, entry = run_once()  # unchanged: nothing written again, no palettes/fp-..._001.hex
        assert sorted(p.name for p in folder.glob(f"{target.stem}*")) == [target.name]
        target.unlink()
        _, entry = run_once()  # the file is gone: the node runs and writes it again
        assert target.is_file() and entry["outputs"]["2"]["text"] == [f"{name}.hex (4 colours)"]
        assert sorted(p.name for p in folder.glob(f"{target.stem}*")) == [target.name]
    finally:
        client.close()
