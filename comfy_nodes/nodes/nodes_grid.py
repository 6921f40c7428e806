"""V3 nodes: pixel grid snap (pseudo pixel art -> true-resolution sprite).

Thin glue around ``comfy_nodes.pixel.grid``: tensors in, RGBA arrays through the core, tensors
out. A ComfyUI IMAGE batch must have one size, so a batch either shares one grid (animation
frames: ``batch_shared_grid``) or every frame must snap to the same size.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from comfy_api.latest import io, ui

from ..pixel import grid as G
from ..pixel.cells import shared_frame_colours
from ..pixel.errors import InputImageError, InvalidArgumentError, NoGridFoundError
from ..pixel.imageio import largest_nearest_scale, upscale_nearest
from ..pixel.sheet import PREVIEW_MAX_PIXELS
from ._hints import node_errors, whole_number
from ._tensor import input_frames, rgba_list_to_image, rgba_to_mask

#: Custom socket type carrying a detected grid between nodes.
DGXGrid = io.Custom("DGX_GRID")


@dataclass
class GridInfo:
    """What a ``DGX_GRID`` socket carries: the grid of frame 0 plus one per frame."""

    cell_w: float
    cell_h: float
    cols: int
    rows: int
    confidence: float
    grids: list  # list[G.Grid], one per frame (the same object when shared)

    def to_dict(self) -> dict:
        return {"cell_w": self.cell_w, "cell_h": self.cell_h, "cols": self.cols, "rows": self.rows,
                "confidence": self.confidence}

    def __str__(self) -> str:
        # what a Preview Any node shows: the grid in words, not arrays of line positions
        frames = f", {len(self.grids)} frames" if len(self.grids) > 1 else ""
        if self.grids and self.grids[0].kept_as_is:
            return (f"{self.cols}x{self.rows} px kept as they came: no grid of pseudo pixels found, so taken as "
                    f"already at true resolution{frames} (mode cell or size if it is an enlargement)")
        return (f"{self.cols}x{self.rows} cells of {self.cell_w:.2f} x {self.cell_h:.2f} source px, "
                f"confidence {self.confidence:.2f}{frames}")

    __repr__ = __str__


def _overrides(mode: str, cell_size: float, target_width: int, target_height: int, w: int, h: int) -> dict:
    """The grid overrides of ``mode``, checked here against the ``w`` x ``h`` image so that a
    refusal names this node's inputs."""
    if mode == "auto":
        return {}
    if mode == "cell":
        if not cell_size >= 1:
            raise InvalidArgumentError(f"cell_size must be at least 1 source pixel in mode 'cell', got {cell_size}",
                                       hint="a cell of 1 keeps the image's own pixels")
        if cell_size > max(w, h):
            raise InvalidArgumentError(f"cell_size {cell_size:g} is larger than the {w}x{h} image",
                                       hint="give the size of one fake pixel, in source pixels")
        return {"cell": float(cell_size)}
    if mode == "size":
        if target_width < 1 or target_height < 1:
            raise InvalidArgumentError(
                f"target_width and target_height must be >= 1 in mode 'size', got {target_width}x{target_height}")
        if target_width > w or target_height > h:
            raise InvalidArgumentError(
                f"target_width x target_height {target_width}x{target_height} is larger than the {w}x{h} image",
                hint="give the sprite's true size, at most the image's")
        return {"width": int(target_width), "height": int(target_height)}
    raise InvalidArgumentError(f"mode must be auto, cell or size, got {mode!r}")


def preview_scale_for(sprites: list[np.ndarray], preview_scale: int) -> int:
    """``preview_scale``, lowered so that the preview of the whole batch holds at most
    PREVIEW_MAX_PIXELS pixels (never below 1). The preview only shows the sprite, so a scale too
    large is lowered, not an error; and it is one tensor of all frames at 16 bytes a pixel, so
    the limit is on the batch: a per-frame limit let 4 frames of 512x512 make a 1 GiB preview."""
    h, w = sprites[0].shape[:2]  # one IMAGE batch: every frame has this size
    per_frame = max(1, PREVIEW_MAX_PIXELS // len(sprites))
    return min(int(preview_scale), largest_nearest_scale(h, w, per_frame))


def _node_hint(exc: NoGridFoundError) -> NoGridFoundError:
    """``exc`` with the hint in this node's terms (the core's speaks of the CLI's options)."""
    return NoGridFoundError(exc.message, hint="set mode to 'cell' (cell_size) or 'size' (target_width, "
                                              "target_height), or on_no_grid to 'passthrough'")


class DGXPixelsGridSnap(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsGridSnap",
            display_name="Pixel Grid Snap",
            category="DGX-Pixels/Grid",
            description=(
                "Turns AI 'pixel art' (fake pixels several source pixels wide, uneven, blurred, noisy) into the "
                "true sprite: finds the fake-pixel grid and outputs one pixel per grid cell with one clean colour. "
                "Automatic by default; 'cell' or 'size' mode overrides the detection. A batch becomes one tensor, "
                "so its frames must snap to one size: turn on batch_shared_grid for animation frames. "
                "Best before Palette Quantize; an image already mapped to a palette is read through a blur and "
                "keeps its palette's colours."
            ),
            inputs=[
                io.Image.Input("image", tooltip="Pseudo pixel art (one image or a batch of frames)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional alpha as a ComfyUI mask (1 = transparent), e.g. from Load Image."),
                io.Combo.Input("mode", options=["auto", "cell", "size"], default="auto",
                               tooltip="auto: detect the grid. cell: use cell_size source px per art pixel. "
                                       "size: fit a grid of target_width x target_height art pixels."),
                io.Float.Input("cell_size", default=8.0, min=1.0, max=256.0, step=0.01,
                               tooltip="Source pixels per art pixel (mode 'cell'); may be fractional, e.g. 12.5."),
                io.Int.Input("target_width", default=64, min=1, max=4096,
                             tooltip="Width of the sprite in art pixels (mode 'size')."),
                io.Int.Input("target_height", default=64, min=1, max=4096,
                             tooltip="Height of the sprite in art pixels (mode 'size')."),
                io.Boolean.Input("batch_shared_grid", default=True,
                                 tooltip="Detect one grid on the first frame and use it for every frame "
                                         "(animation frames must share a grid), and give the frames one set of "
                                         "colours (a colour does not flicker between frames). Off: each frame is "
                                         "detected on its own and all must come out the same size."),
                io.Combo.Input("on_no_grid", options=["error", "passthrough"], default="error",
                               tooltip="When no grid is found: stop with an error, or pass the image through "
                                       "unchanged (cell size 1)."),
                io.Combo.Input("alpha", options=["keep", "transparent_background"], default="keep",
                               tooltip="keep: input alpha, made binary. transparent_background: the background "
                                       "colour touching the border becomes transparent."),
                io.Int.Input("preview_scale", default=8, min=1, max=64,
                             tooltip="Whole-number enlargement of the preview output (nearest neighbour); lowered "
                                     "(down to 1) when the preview of all frames together would pass 4096x4096 "
                                     "pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="True-resolution sprite batch (RGBA)."),
                io.Mask.Output(display_name="mask", tooltip="Alpha of the sprite as a mask (1 = transparent)."),
                io.Image.Output(display_name="preview", tooltip="The sprite enlarged by preview_scale with crisp pixels."),
                DGXGrid.Output(display_name="grid", tooltip="The detected grid (cell_w, cell_h, cols, rows, confidence)."),
                io.Int.Output(display_name="cols", tooltip="Sprite width in art pixels."),
                io.Int.Output(display_name="rows", tooltip="Sprite height in art pixels."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, image, mode: str = "auto", cell_size: float = 8.0, target_width: int = 64,
                target_height: int = 64, batch_shared_grid: bool = True, on_no_grid: str = "error",
                alpha: str = "keep", preview_scale: int = 8, mask=None) -> io.NodeOutput:
        if on_no_grid not in ("error", "passthrough"):
            raise InvalidArgumentError(f"on_no_grid must be 'error' or 'passthrough', got {on_no_grid!r}")
        if alpha not in ("keep", "transparent_background"):
            raise InvalidArgumentError(f"alpha must be 'keep' or 'transparent_background', got {alpha!r}")
        # checked here, before the snap: the core's check at the end would name its own `scale`
        preview_scale = whole_number(preview_scale, "preview_scale")
        frames = input_frames(image, mask)
        kw = _overrides(mode, cell_size, target_width, target_height, frames[0].shape[1], frames[0].shape[0])
        background = "transparent" if alpha == "transparent_background" else "keep"
        pbar = _progress(len(frames))
        results: list[G.SnapResult] = []
        passed: list[int] = []  # frames passed through unchanged (no grid)
        grids: list[G.Grid] | None = None
        one_grid = batch_shared_grid and len(frames) > 1
        if one_grid:
            # every frame's edges count: an empty or faint frame alone has no grid to find
            try:
                # one size for all; each frame's own lines when their lattices are out of phase
                grids = G.frame_grids(frames, **kw)
            except NoGridFoundError as exc:
                if on_no_grid == "error":
                    raise _node_hint(exc) from None
        for i, rgba in enumerate(frames):
            src = f"image {i}" if len(frames) > 1 else "image"
            try:
                if on_no_grid == "passthrough" and min(rgba.shape[:2]) < 2:
                    res = None  # too small to hold a grid: passed through as asked
                elif one_grid:
                    res = G.snap(rgba, grids[i], background=background, source=src) if grids else None
                    why = G.off_grid(rgba, grids[i]) if grids else None
                    if why:
                        # the frames together decided the grid: say which one is no pixel art on it
                        logging.warning("DGX-Pixels Grid Snap: %s: %s, so it is no pixel art on the grid the frames "
                                        "share; it was snapped on it anyway", src, why)
                else:
                    res = G.snap(rgba, background=background, source=src, **kw)
            except NoGridFoundError as exc:
                if on_no_grid == "error":
                    raise _node_hint(exc) from None
                res = None
            if res is None:
                res = _passthrough(rgba, background)
                passed.append(i)
            results.append(res)
            if pbar is not None:
                pbar.update(1)
        sizes = {(r.width, r.height) for r in results}
        if len(sizes) > 1:
            listing = ", ".join(f"image {i}: {r.width}x{r.height}" for i, r in enumerate(results))
            raise InputImageError(
                f"the frames snapped to different sizes ({listing}); one IMAGE batch needs one size",
                hint="turn on batch_shared_grid, or use mode 'size' with a target width and height")
        sprites = [r.image for r in results]
        # frames of one animation: a colour read a level or two apart in each frame would
        # flicker. Frames read off whole-pixel blocks keep their own colours, near shades
        # included, and frames passed through (no grid) stay as they came.
        snapped = [i for i in range(len(results)) if i not in passed]
        if one_grid and len(snapped) > 1 and not all(results[i].grid.exact for i in snapped):
            for i, img in zip(snapped, shared_frame_colours([sprites[i] for i in snapped])):
                sprites[i] = img
        out = rgba_list_to_image(sprites, keep_alpha=True)
        m = rgba_to_mask(sprites)
        scale = preview_scale_for(sprites, preview_scale)
        preview = rgba_list_to_image([upscale_nearest(s, scale) for s in sprites], keep_alpha=True)
        g0 = results[0].grid
        info = GridInfo(cell_w=float(g0.cell_w), cell_h=float(g0.cell_h), cols=int(g0.cols), rows=int(g0.rows),
                        confidence=float(g0.confidence), grids=[r.grid for r in results])
        return io.NodeOutput(out, m, preview, info, info.cols, info.rows, ui=_preview_ui(preview, cls))


def _passthrough(rgba: np.ndarray, background: str) -> G.SnapResult:
    h, w = rgba.shape[:2]
    grid = G.Grid(cell_w=1.0, cell_h=1.0, cols=w, rows=h, x_lines=np.arange(w + 1, dtype=np.float64),
                  y_lines=np.arange(h + 1, dtype=np.float64), confidence=0.0, source_size=(w, h))
    img = rgba.copy()
    img[..., 3] = np.where(img[..., 3] >= 128, 255, 0).astype(np.uint8)
    img[img[..., 3] == 0, :3] = 0  # as snapped sprites: nothing is kept under transparency
    if background == "transparent":
        img = G._remove_background(img, 0.06)
    return G.SnapResult(image=img, grid=grid)


def _progress(total: int):
    if total < 2:
        return None
    try:
        import comfy.utils

        return comfy.utils.ProgressBar(total)
    except Exception:  # progress is cosmetic: no server context (unit tests, scripts) means none
        return None


def _preview_ui(preview, cls):
    try:
        return ui.PreviewImage(preview, cls=cls)
    except Exception:  # the UI preview needs ComfyUI's folders; outside a server there is none
        return None


NODES = [DGXPixelsGridSnap]
