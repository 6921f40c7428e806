"""Pixel Grid Snap node: called directly through ``execute`` (no server)."""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

from comfy_nodes.nodes.nodes_grid import NODES, DGXPixelsGridSnap  # noqa: E402
from comfy_nodes.pixel.errors import InputImageError, NoGridFoundError  # noqa: E402


def sprite(seed: int, w: int = 12, h: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pal = np.array([[10, 10, 10], [200, 40, 40], [40, 200, 60], [240, 240, 240]], np.uint8)
    return pal[rng.integers(0, 4, size=(h, w))]


def as_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def up(a: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def test_schema_ids_and_outputs():
    assert DGXPixelsGridSnap in NODES
    schema = DGXPixelsGridSnap.define_schema()
    assert schema.node_id == "DGXPixelsGridSnap"
    assert schema.category == "DGX-Pixels/Grid"
    assert len(schema.outputs) == 6
    assert all(i.tooltip for i in schema.inputs)


def test_a_preview_scale_too_large_for_the_sprite_is_lowered_and_nearest_upscale_refuses_it():
    """preview_scale 64 on a 1536x1024 'sprite' (mode cell, cell 1) asked numpy for 24 GiB and
    failed deep inside it: the preview is lowered to what fits 4096x4096 pixels, and the Nearest
    Upscale node, whose output is the enlargement, refuses by name with the largest scale."""
    from comfy_nodes.nodes.nodes_preview import DGXPixelsNearestUpscale
    from comfy_nodes.pixel.errors import InvalidArgumentError

    big = np.random.default_rng(0).integers(0, 256, (1024, 1536, 3), dtype=np.uint8)
    out = DGXPixelsGridSnap.execute(image=as_tensor([big]), mode="cell", cell_size=1.0, preview_scale=64)
    image, _mask, preview, *_ = out.result
    assert tuple(image.shape) == (1, 1024, 1536, 4) and tuple(preview.shape) == (1, 3072, 4608, 4)
    with pytest.raises(InvalidArgumentError, match=r"scale 64 makes the 1536x1024 image 98304x65536 pixels") as exc:
        DGXPixelsNearestUpscale.execute(image=as_tensor([big]), scale=64)
    assert "use scale 6 or less" in exc.value.hint
    small = DGXPixelsNearestUpscale.execute(image=as_tensor([big[:16, :16]]), scale=64).result[0]
    assert tuple(small.shape) == (1, 1024, 1024, 3)


def test_the_preview_limit_holds_for_the_whole_batch(monkeypatch):
    """The limit was per frame: 4 frames of 512x512 at cell 1 made a (4, 4096, 4096, 4) preview
    (1 GiB). The tooltip promises 4096x4096 pixels in all; here the limit is made 64x64 so the
    batch is small: 4 frames of 16x16 may be enlarged 2x (4 * 32 * 32 = 64 * 64), not 4x."""
    import comfy_nodes.nodes.nodes_grid as nodes_grid

    monkeypatch.setattr(nodes_grid, "PREVIEW_MAX_PIXELS", 64 * 64)
    frames = [sprite(i, 16, 16) for i in range(4)]
    image, _mask, preview, *_ = DGXPixelsGridSnap.execute(
        image=as_tensor(frames), mode="cell", cell_size=1.0, preview_scale=8).result
    assert tuple(image.shape) == (4, 16, 16, 4)
    assert tuple(preview.shape) == (4, 32, 32, 4)
    assert preview.shape[0] * preview.shape[1] * preview.shape[2] <= 64 * 64
    # still nearest neighbour: every sprite pixel is a 2x2 block of the preview
    assert torch.equal(preview[:, ::2, ::2], image) and torch.equal(preview[:, 1::2, 1::2], image)
    # one frame alone may use the whole budget: 16 * 4 = 64
    one = DGXPixelsGridSnap.execute(image=as_tensor(frames[:1]), mode="cell", cell_size=1.0,
                                    preview_scale=8).result[2]
    assert tuple(one.shape) == (1, 64, 64, 4)
    # a batch past the limit at scale 1 is shown at scale 1 (the preview is never an error)
    many = DGXPixelsGridSnap.execute(image=as_tensor([sprite(i, 16, 16) for i in range(20)]), mode="cell",
                                     cell_size=1.0, preview_scale=8).result[2]
    assert tuple(many.shape) == (20, 16, 16, 4)
    tip = next(i.tooltip for i in DGXPixelsGridSnap.define_schema().inputs if i.id == "preview_scale")
    assert "all frames together" in tip and "4096x4096" in tip


def test_auto_snap_outputs_sprite_mask_preview_grid():
    s = sprite(1)
    out = DGXPixelsGridSnap.execute(image=as_tensor([up(s, 9)]), preview_scale=3)
    image, mask, preview, grid, cols, rows = out.result
    assert tuple(image.shape) == (1, 10, 12, 4)
    got = np.round(image[0, ..., :3].numpy() * 255).astype(np.uint8)
    assert np.array_equal(got, s)
    assert tuple(mask.shape) == (1, 10, 12) and float(mask.max()) == 0.0
    assert tuple(preview.shape) == (1, 30, 36, 4)
    assert (cols, rows) == (12, 10)
    assert grid.cols == 12 and grid.rows == 10 and grid.cell_w == pytest.approx(9.0)


def test_shared_grid_batch_and_mask_alpha():
    a, b = sprite(2), sprite(3)
    m = np.zeros((90, 108), np.float32)
    m[:18] = 1.0  # two top art rows transparent
    out = DGXPixelsGridSnap.execute(image=as_tensor([up(a, 9), up(b, 9)]), mask=torch.from_numpy(m)[None],
                                    batch_shared_grid=True)
    image, mask = out.result[0], out.result[1]
    assert tuple(image.shape) == (2, 10, 12, 4)
    assert float(mask[:, :2].min()) == 1.0 and float(mask[:, 2:].max()) == 0.0


def test_shared_grid_is_found_on_all_frames_together():
    """An animation that opens on an empty frame: that frame alone has no grid, the batch has."""
    a = up(sprite(6), 9)
    empty = np.full_like(a, 40)
    out = DGXPixelsGridSnap.execute(image=as_tensor([empty, a]), batch_shared_grid=True)
    image, cols, rows = out.result[0], out.result[4], out.result[5]
    assert (cols, rows) == (12, 10) and tuple(image.shape) == (2, 10, 12, 4)
    got = np.round(image[1, ..., :3].numpy() * 255).astype(np.uint8)
    assert np.array_equal(got, sprite(6))
    assert float(image[0, ..., :3].min()) == float(image[0, ..., :3].max()) == pytest.approx(40 / 255)


def test_per_frame_sizes_must_match():
    a = up(sprite(4), 9)
    b = up(sprite(5, w=18, h=15), 6)  # same 108x90 tensor size, a different art size
    assert a.shape == b.shape
    with pytest.raises(InputImageError) as ei:
        DGXPixelsGridSnap.execute(image=as_tensor([a, b]), batch_shared_grid=False)
    assert "different sizes" in str(ei.value)


def test_the_grid_output_reads_as_words():
    grid = DGXPixelsGridSnap.execute(image=as_tensor([up(sprite(6), 8)])).result[3]
    assert str(grid) == repr(grid) == "12x10 cells of 8.00 x 8.00 source px, confidence 1.00"
    # a sprite already at true resolution is said to be kept as it came, not "cells of 1.00 x 1.00"
    kept = DGXPixelsGridSnap.execute(image=as_tensor([sprite(6)])).result[3]
    assert str(kept) == ("12x10 px kept as they came: no grid of pseudo pixels found, so taken as already at true "
                         "resolution (mode cell or size if it is an enlargement)")


def test_modes_cell_and_size():
    s = sprite(6)
    img = as_tensor([up(s, 8)])
    out = DGXPixelsGridSnap.execute(image=img, mode="cell", cell_size=8.0)
    assert tuple(out.result[0].shape) == (1, 10, 12, 4)
    out = DGXPixelsGridSnap.execute(image=img, mode="size", target_width=12, target_height=10)
    assert (out.result[4], out.result[5]) == (12, 10)


def test_no_grid_error_or_passthrough():
    flat = torch.full((1, 40, 50, 3), 0.5)
    with pytest.raises(NoGridFoundError) as exc:
        DGXPixelsGridSnap.execute(image=flat)
    # the hint speaks of this node's inputs, not the command line's
    assert "mode to 'cell' (cell_size) or 'size'" in exc.value.hint and "--" not in exc.value.hint
    out = DGXPixelsGridSnap.execute(image=flat, on_no_grid="passthrough")
    assert tuple(out.result[0].shape) == (1, 40, 50, 4)
    tiny = torch.full((1, 1, 1, 3), 0.5)
    assert tuple(DGXPixelsGridSnap.execute(image=tiny, on_no_grid="passthrough").result[0].shape) == (1, 1, 1, 4)


@pytest.mark.parametrize("kw, message", [
    ({"mode": "cell", "cell_size": 256.0}, "cell_size 256 is larger than the 96x80 image"),
    ({"mode": "cell", "cell_size": 0.5}, "cell_size must be at least 1 source pixel in mode 'cell', got 0.5"),
    ({"mode": "size", "target_width": 4096, "target_height": 10},
     "target_width x target_height 4096x10 is larger than the 96x80 image"),
])
def test_override_errors_name_this_nodes_inputs(kw, message):
    from comfy_nodes.pixel.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        DGXPixelsGridSnap.execute(image=as_tensor([up(sprite(1), 8)]), **kw)


def test_grid_snap_runs_on_real_comfyui(comfy_server):
    """LoadImage -> Pixel Grid Snap -> SaveImage on the real server: the sprite comes back."""
    import io as stdio
    import time
    import uuid

    import requests
    from PIL import Image

    s = sprite(9, w=14, h=12)
    buf = stdio.BytesIO()
    Image.fromarray(up(s, 10)).save(buf, format="PNG")
    name = f"dgx-grid-{uuid.uuid4().hex[:8]}.png"
    r = requests.post(f"{comfy_server.url}/upload/image", files={"image": (name, buf.getvalue(), "image/png")},
                      data={"type": "input", "overwrite": "true"}, timeout=30)
    assert r.status_code == 200, r.text
    prefix = f"dgx-grid-{uuid.uuid4().hex[:8]}"
    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": r.json()["name"]}},
        "2": {"class_type": "DGXPixelsGridSnap", "inputs": {
            "image": ["1", 0], "mask": ["1", 1], "mode": "auto", "cell_size": 8.0, "target_width": 64,
            "target_height": 64, "batch_shared_grid": True, "on_no_grid": "error", "alpha": "keep",
            "preview_scale": 4}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }
    resp = requests.post(f"{comfy_server.url}/prompt", json={"prompt": wf}, timeout=30)
    assert resp.status_code == 200, resp.text
    pid = resp.json()["prompt_id"]
    deadline = time.monotonic() + 120
    hist = {}
    while time.monotonic() < deadline:
        hist = requests.get(f"{comfy_server.url}/history/{pid}", timeout=30).json()
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            break
        time.sleep(0.3)
    msgs = hist.get(pid, {}).get("status", {}).get("messages", [])
    errs = [(m[1].get("exception_type"), m[1].get("exception_message")) for m in msgs if m[0] == "execution_error"]
    assert pid in hist and hist[pid]["status"]["status_str"] == "success", errs
    out = hist[pid]["outputs"]["3"]["images"][0]
    view = requests.get(f"{comfy_server.url}/view", params={"filename": out["filename"], "subfolder": out["subfolder"],
                                                           "type": out["type"]}, timeout=30)
    got = np.array(Image.open(stdio.BytesIO(view.content)).convert("RGB"))
    assert got.shape == (12, 14, 3)
    assert np.array_equal(got, s)


def test_placeholder_mask_from_load_image_is_ignored():
    """LoadImage gives a 64x64 zero mask for images without alpha; it must not be an error."""
    s = sprite(10)
    out = DGXPixelsGridSnap.execute(image=as_tensor([up(s, 9)]), mask=torch.zeros(1, 64, 64))
    assert tuple(out.result[0].shape) == (1, 10, 12, 4)
    with pytest.raises(InputImageError):
        DGXPixelsGridSnap.execute(image=as_tensor([up(s, 9)]), mask=torch.ones(1, 64, 64))


def test_batch_frames_share_one_set_of_colours():
    """Frames drawn one by one (each its own grid phase, noise and colour drift) come out of a
    shared-grid batch with one value per colour of the sprite, in every frame."""
    from support.animation import drawn_walk_frames, outputs_per_true_colour

    truth, imgs = drawn_walk_frames()
    img, *_ = DGXPixelsGridSnap.execute(as_tensor(imgs), alpha="transparent_background").result
    got = np.round(img.numpy() * 255).astype(np.uint8)
    assert got.shape == (4, 16, 16, 4)
    for t, g in zip(truth, got):
        assert ((t[..., 3] > 0) == (g[..., 3] > 0)).all()
    seen = outputs_per_true_colour(truth, list(got))
    assert len(seen) == 7 and all(len(v) == 1 for v in seen.values()), seen


def test_a_frame_that_is_no_pixel_art_on_the_shared_grid_is_logged(caplog):
    from support.animation import drawn_walk_frames

    _, imgs = drawn_walk_frames()
    noise = np.random.default_rng(1).integers(0, 256, imgs[0].shape).astype(np.uint8)
    with caplog.at_level("WARNING"):
        img, *_ = DGXPixelsGridSnap.execute(as_tensor(imgs[:2] + [noise])).result
    assert img.shape[0] == 3
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["DGX-Pixels Grid Snap: image 2: its colours do not change at the lines of its grid, so it is no "
                      "pixel art on the grid the frames share; it was snapped on it anyway"]


def test_frames_passed_through_keep_their_colours_in_a_shared_batch():
    """Frames with no grid, passed through as asked, come out as they came: the colour sharing
    of a snapped batch does not touch them."""
    yy, xx = np.mgrid[0:48, 0:48]
    frames = []
    for k in range(2):
        f = np.zeros((48, 48, 3), np.uint8)
        f[..., 0] = (xx + yy) * 2 + k  # a smooth diagonal ramp of 95 colours: no pixel grid
        f[..., 1] = 60
        f[..., 2] = 40 + k
        frames.append(f)
    img, _, _, info, *_ = DGXPixelsGridSnap.execute(as_tensor(frames), on_no_grid="passthrough").result
    assert [g.confidence for g in info.grids] == [0.0, 0.0]
    got = np.round(img.numpy() * 255).astype(np.uint8)
    for f, g in zip(frames, got):
        assert np.array_equal(g[..., :3], f)
