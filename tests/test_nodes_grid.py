"""Pixel Grid Snap node: called directly through ``execute`` (no server)."""
from __future__ import annotations

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


def test_per_frame_sizes_must_match():
    a = up(sprite(4), 9)
    b = up(sprite(5, w=18, h=15), 6)  # same 108x90 tensor size, a different art size
    assert a.shape == b.shape
    with pytest.raises(InputImageError) as ei:
        DGXPixelsGridSnap.execute(image=as_tensor([a, b]), batch_shared_grid=False)
    assert "different sizes" in str(ei.value)


def test_modes_cell_and_size():
    s = sprite(6)
    img = as_tensor([up(s, 8)])
    out = DGXPixelsGridSnap.execute(image=img, mode="cell", cell_size=8.0)
    assert tuple(out.result[0].shape) == (1, 10, 12, 4)
    out = DGXPixelsGridSnap.execute(image=img, mode="size", target_width=12, target_height=10)
    assert (out.result[4], out.result[5]) == (12, 10)


def test_no_grid_error_or_passthrough():
    flat = torch.full((1, 40, 50, 3), 0.5)
    with pytest.raises(NoGridFoundError):
        DGXPixelsGridSnap.execute(image=flat)
    out = DGXPixelsGridSnap.execute(image=flat, on_no_grid="passthrough")
    assert tuple(out.result[0].shape) == (1, 40, 50, 4)
