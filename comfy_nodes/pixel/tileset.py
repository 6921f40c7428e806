"""Tilesets: a batch of equal-size tiles on one image, and a check that each tile is seamless.

Layout follows Tiled/LDtk (``margin`` around the image, ``spacing`` between tiles), which with
``margin == 0`` is the same grid as Bevy's ``TextureAtlasLayout::from_grid`` with
``padding == spacing``. A tile "tiles with itself" when the seam you get by repeating it
(its right column next to its own left column, bottom row next to top row) looks like any
other pair of neighbouring columns/rows inside the tile; the check measures exactly that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import InvalidArgumentError
from .imageio import MAX_PIXELS, MAX_SIDE, as_rgba
from .sheet import FrameRect, Sheet


@dataclass
class Tileset:
    """Tiles of ``tile_w x tile_h`` px on ``image``, ``columns`` per row, ``count`` in all."""

    image: np.ndarray
    tile_w: int
    tile_h: int
    columns: int
    rows: int
    count: int
    spacing: int
    margin: int

    def as_sheet(self) -> Sheet:
        """The tileset as a ``Sheet`` (for the Bevy export); needs ``margin == 0`` on the far side,
        so the margin becomes the grid offset and the image is cut to the grid extent."""
        rects = []
        for i in range(self.count):
            c, r = i % self.columns, i // self.columns
            x = self.margin + c * (self.tile_w + self.spacing)
            y = self.margin + r * (self.tile_h + self.spacing)
            rects.append(FrameRect(i, c, r, x, y, self.tile_w, self.tile_h, x, y, self.tile_w, self.tile_h,
                                   self.tile_w, self.tile_h, 0, 0))
        ew = self.margin + self.columns * self.tile_w + (self.columns - 1) * self.spacing
        eh = self.margin + self.rows * self.tile_h + (self.rows - 1) * self.spacing
        return Sheet(self.image[:eh, :ew].copy(), self.tile_w, self.tile_h, self.columns, self.rows,
                     (self.spacing, self.spacing), (self.margin, self.margin), rects, [], False)


@dataclass(frozen=True)
class TileSeam:
    """Seam measures of one tile, in 0..255 colour units (mean over the edge).

    ``seam_h``: difference between the rightmost and leftmost column (the seam when the tile
    repeats horizontally); ``inner_h``: the largest mean difference between two neighbouring
    columns inside the tile. ``_v`` the same for rows. A direction fails when seam > inner + tolerance.
    """

    index: int
    seam_h: float
    inner_h: float
    seam_v: float
    inner_v: float
    ok_h: bool
    ok_v: bool

    @property
    def ok(self) -> bool:
        return self.ok_h and self.ok_v


@dataclass
class SeamlessReport:
    """Per-tile seam results; ``failing`` lists the indices of tiles that do not tile with themselves."""

    tiles: list[TileSeam]
    tolerance: float
    failing: list[int] = field(default_factory=list)

    @property
    def all_seamless(self) -> bool:
        return not self.failing

    def summary(self) -> str:
        n = len(self.tiles)
        if not self.failing:
            return f"all {n} tiles are seamless (tolerance {self.tolerance:g})"
        lines = [f"{len(self.failing)} of {n} tiles are not seamless (tolerance {self.tolerance:g}):"]
        for t in self.tiles:
            if t.ok:
                continue
            parts = []
            if not t.ok_h:
                parts.append(f"left/right edges differ by {t.seam_h:.1f} (inside {t.inner_h:.1f})")
            if not t.ok_v:
                parts.append(f"top/bottom edges differ by {t.seam_v:.1f} (inside {t.inner_v:.1f})")
            lines.append(f"  tile {t.index}: " + "; ".join(parts))
        return "\n".join(lines)


def _premultiplied(rgba: np.ndarray) -> np.ndarray:
    # Two fully transparent pixels look the same whatever their RGB, so compare premultiplied.
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = np.empty(rgba.shape, dtype=np.float32)
    out[..., :3] = rgba[..., :3].astype(np.float32) * a
    out[..., 3] = rgba[..., 3]
    return out


def _edge_diff(p: np.ndarray, axis: int) -> tuple[float, float]:
    """(seam, inner) mean max-channel differences along ``axis`` (1 = columns, 0 = rows)."""
    n = p.shape[axis]
    first = np.take(p, 0, axis=axis)
    last = np.take(p, n - 1, axis=axis)
    seam = float(np.abs(last - first).max(axis=-1).mean())
    if n < 2:
        return seam, 0.0
    # Per neighbouring pair of columns (rows), the mean difference; the seam is visible only when
    # it is stronger than every line already inside the tile (so noise is not reported as a seam).
    other = 0 if axis == 1 else 1
    pair_means = np.abs(np.diff(p, axis=axis)).max(axis=-1).mean(axis=other)
    inner = float(pair_means.max())
    return seam, inner


def check_seamless(tiles: Sequence[np.ndarray], tolerance: float = 8.0) -> SeamlessReport:
    """Report which tiles show a visible seam when repeated with themselves.

    ``tolerance`` is in 0..255 colour units: how much more the wrap-around seam may differ than
    the tile's own neighbouring columns/rows before the tile is reported.
    """
    try:
        tolerance = float(tolerance)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"seam tolerance must be a number 0..255, got {tolerance!r}") from None
    if not 0 <= tolerance <= 255:
        raise InvalidArgumentError(f"seam tolerance must be 0..255 (colour units), got {tolerance}")
    results = []
    failing = []
    for i, t in enumerate(tiles):
        p = _premultiplied(as_rgba(t, source=f"tile {i}"))
        sh, ih = _edge_diff(p, 1)
        sv, iv = _edge_diff(p, 0)
        ok_h = sh <= ih + tolerance
        ok_v = sv <= iv + tolerance
        results.append(TileSeam(i, sh, ih, sv, iv, ok_h, ok_v))
        if not (ok_h and ok_v):
            failing.append(i)
    return SeamlessReport(results, float(tolerance), failing)


def build_tileset(
    tiles: Sequence[np.ndarray],
    *,
    columns: int | None = None,
    spacing: int = 0,
    margin: int = 0,
    count: int | None = None,
) -> Tileset:
    """Lay equal-size ``tiles`` out row by row (``columns`` per row, default near-square).

    ``spacing`` px between tiles and ``margin`` px around the image (both >= 0); ``count``
    keeps only the first tiles. Pixels are copied unchanged.
    """
    if tiles is None or isinstance(tiles, (str, bytes)) or len(tiles) == 0:
        raise InvalidArgumentError("no tiles given", hint="pass at least one tile image")
    if spacing < 0 or margin < 0:
        raise InvalidArgumentError(f"spacing and margin must be >= 0 (got {spacing}, {margin})")
    imgs = [as_rgba(t, source=f"tile {i}") for i, t in enumerate(tiles)]
    if count is not None:
        if count < 1 or count > len(imgs):
            raise InvalidArgumentError(f"count must be 1..{len(imgs)}, got {count}")
        imgs = imgs[:count]
    th, tw = imgs[0].shape[:2]
    for i, t in enumerate(imgs):
        if t.shape[:2] != (th, tw):
            raise InvalidArgumentError(
                f"tile {i} is {t.shape[1]}x{t.shape[0]} but tile 0 is {tw}x{th}; a tileset needs one tile size"
            )
    n = len(imgs)
    cols = columns if columns and columns > 0 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    W = 2 * margin + cols * tw + (cols - 1) * spacing
    H = 2 * margin + rows * th + (rows - 1) * spacing
    if W * H > MAX_PIXELS or max(W, H) > MAX_SIDE:
        raise InvalidArgumentError(
            f"the tileset would be {W}x{H} pixels ({n} tiles of {tw}x{th} in {cols} columns), more than "
            f"{MAX_SIDE} on a side or 16384x16384 in all (the largest texture a GPU loads)",
            hint="use fewer tiles per tileset, or another number of columns",
        )
    out = np.zeros((H, W, 4), dtype=np.uint8)
    for i, t in enumerate(imgs):
        c, r = i % cols, i // cols
        x = margin + c * (tw + spacing)
        y = margin + r * (th + spacing)
        out[y : y + th, x : x + tw] = t
    return Tileset(out, tw, th, cols, rows, n, spacing, margin)


def split_tileset(image: np.ndarray, tile_w: int, tile_h: int, *, spacing: int = 0, margin: int = 0,
                  count: int | None = None) -> list[np.ndarray]:
    """Cut a tileset into tiles (row by row), the inverse of ``build_tileset``."""
    img = as_rgba(image, source="tileset")
    H, W = img.shape[:2]
    if tile_w < 1 or tile_h < 1:
        raise InvalidArgumentError(f"tile size must be at least 1x1, got {tile_w}x{tile_h}")
    cols = (W - 2 * margin + spacing) // (tile_w + spacing)
    rows = (H - 2 * margin + spacing) // (tile_h + spacing)
    if cols < 1 or rows < 1:
        raise InvalidArgumentError(f"a {tile_w}x{tile_h} tile does not fit the {W}x{H} tileset")
    out = []
    for r in range(rows):
        for c in range(cols):
            x = margin + c * (tile_w + spacing)
            y = margin + r * (tile_h + spacing)
            out.append(img[y : y + tile_h, x : x + tile_w].copy())
    return out[:count] if count else out
