"""Tileset layout and the seamless-edge report."""
from __future__ import annotations

import numpy as np
import pytest

from comfy_nodes.pixel.errors import InvalidArgumentError
from comfy_nodes.pixel.sheet import check_layout
from comfy_nodes.pixel.tileset import build_tileset, check_seamless, split_tileset


def periodic_tile(size: int, seed: int) -> np.ndarray:
    """A smooth periodic pattern (period = tile size) plus light noise: edges continue."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size))
    wave = 128 + 100 * np.sin(2 * np.pi * (xx / size + seed * 0.1)) * np.cos(2 * np.pi * yy / size)
    out = np.empty((size, size, 4), np.uint8)
    for c in range(3):
        out[..., c] = np.clip(wave + rng.integers(-6, 7, (size, size)), 0, 255)
    out[..., 3] = 255
    return out


def noise_tile(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
    out[..., 3] = 255
    return out


def gradient_tile(size: int, axis: int) -> np.ndarray:
    ramp = np.linspace(0, 255, size).round().astype(np.uint8)
    out = np.zeros((size, size, 4), np.uint8)
    if axis == 1:
        out[..., 0] = ramp[None, :]
    else:
        out[..., 0] = ramp[:, None]
    out[..., 1:3] = 60
    out[..., 3] = 255
    return out


def test_layout_spacing_margin_and_inverse():
    tiles = [periodic_tile(8, i) for i in range(5)]
    ts = build_tileset(tiles, columns=3, spacing=2, margin=1)
    assert (ts.columns, ts.rows, ts.count) == (3, 2, 5)
    assert ts.image.shape[:2] == (2 * 1 + 2 * 8 + 2, 2 * 1 + 3 * 8 + 2 * 2)
    np.testing.assert_array_equal(ts.image[1:9, 11:19], tiles[1])
    back = split_tileset(ts.image, 8, 8, spacing=2, margin=1, count=5)
    for a, b in zip(back, tiles):
        np.testing.assert_array_equal(a, b)
    sheet = ts.as_sheet()
    check_layout(sheet)
    assert (sheet.offset, sheet.padding) == ((1, 1), (2, 2))
    np.testing.assert_array_equal(sheet.cell(4), tiles[4])


def test_mixed_tile_sizes_are_refused():
    with pytest.raises(InvalidArgumentError, match="tile 1 is 4x8"):
        build_tileset([periodic_tile(8, 0), np.zeros((8, 4, 4), np.uint8)])


def test_seamless_report_finds_the_tiles_with_seams():
    tiles = [periodic_tile(16, 1), gradient_tile(16, 1), gradient_tile(16, 0), noise_tile(16, 2)]
    rep = check_seamless(tiles, tolerance=8)
    assert rep.failing == [1, 2]
    assert not rep.tiles[1].ok_h and rep.tiles[1].ok_v
    assert rep.tiles[2].ok_h and not rep.tiles[2].ok_v
    assert rep.tiles[1].seam_h > 200  # 255 -> 0 jump at the wrap
    text = rep.summary()
    assert "2 of 4 tiles are not seamless" in text
    assert "tile 1: left/right" in text and "tile 2: top/bottom" in text
    # a huge tolerance accepts everything
    assert check_seamless(tiles, tolerance=255).all_seamless


def test_transparent_pixels_compare_equal_whatever_their_colour():
    t = np.zeros((8, 8, 4), np.uint8)
    t[:, 0, :3] = 255  # invisible colour on the left edge
    assert check_seamless([t], tolerance=0).all_seamless
