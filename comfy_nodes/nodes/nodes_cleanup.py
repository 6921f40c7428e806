"""V3 nodes: sprite cleanup (background removal, stray pixels, outline, trim).

Thin glue around ``comfy_nodes.pixel.cleanup``. Every node takes an IMAGE batch plus an optional
MASK (ComfyUI convention: 1 = transparent) and returns an RGBA IMAGE and its MASK, so the
nodes chain in any order and alpha survives the trip.
"""
from __future__ import annotations

import json
import logging

import numpy as np
from comfy_api.latest import io

from ..pixel import cleanup as C
from ..pixel.errors import InputImageError, InvalidArgumentError
from ._hints import node_errors
from ._tensor import input_frames, map_frames, rgba_outputs, throw_if_interrupted

CONNECTIVITY = ["4", "8"]


def _conn(value) -> int:
    try:
        c = int(value)
    except (TypeError, ValueError):
        c = -1
    if c not in (4, 8):
        raise InvalidArgumentError(f"connectivity must be 4 or 8, got {value!r}")
    return c


def _apply(image, mask, fn, opaque: tuple[str, str] | None = None) -> io.NodeOutput:
    """Run ``fn`` on every frame of the IMAGE (alpha from ``mask``); RGBA IMAGE + MASK out.
    ``opaque``: (node, what it cannot do) to log for fully opaque frames (``_warn_if_opaque``)."""
    frames = _binary_alpha(input_frames(image, mask))
    if opaque is not None:
        _warn_if_opaque(frames, mask, *opaque)
    return io.NodeOutput(*rgba_outputs(map_frames(frames, fn)))


def _binary_alpha(frames: list) -> list:
    """The frames with alpha 0 or 255 (cut at 128, where the cleanup functions cut too): pixel
    art has no half-transparent pixels, and a soft mask (LoadImage of an antialiased PNG)
    would pass through these nodes half-transparent otherwise."""
    for f in frames:
        f[..., 3] = np.where(f[..., 3] >= 128, 255, 0)
    return frames


def _warn_if_opaque(frames: list, mask, node: str, what: str) -> None:
    """Log why ``node`` changes nothing on fully opaque frames with no mask: ComfyUI's Load
    Image gives a PNG's transparency as a separate MASK, and an IMAGE alone has none, so an
    outline (or a trim) finds no sprite edge; the run would otherwise succeed silently."""
    if mask is None and all((f[..., 3] == 255).all() for f in frames):
        logging.warning("DGX-Pixels %s: the image is fully opaque and no mask is connected, so %s. Connect Load "
                        "Image's MASK to mask, or run Pixel Background Remove first.", node, what)


def _image_inputs():
    return [
        io.Image.Input("image", tooltip="Sprite or batch of frames (RGB or RGBA)."),
    ]


def _mask_input():
    return io.Mask.Input("mask", optional=True,
                         tooltip="Optional alpha as a ComfyUI mask (1 = transparent), e.g. from Load Image.")


def _image_outputs():
    return [
        io.Image.Output(display_name="image", tooltip="The result as RGBA."),
        io.Mask.Output(display_name="mask", tooltip="Its alpha as a mask (1 = transparent)."),
    ]


class DGXPixelsBackgroundRemove(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsBackgroundRemove",
            display_name="Pixel Background Remove",
            category="DGX-Pixels/Cleanup",
            description=(
                "Makes the flat background transparent: a flood fill from the image border over pixels close to "
                "the background colour (the most common border colour, or the key colour you give). Regions of "
                "that colour enclosed by the sprite (eyes, gaps) are kept, unless holes is set."
            ),
            inputs=_image_inputs() + [
                io.Float.Input("tolerance", default=0.06, min=0.0, max=1.0, step=0.005,
                               tooltip="How far a colour may be from the background colour and still count, as an "
                                       "OKLab distance: 0 = exact, 0.02 = barely visible, 0.06 = noise and soft "
                                       "shading of a flat backdrop, 0.15 = clearly different shades."),
                io.String.Input("key", default="",
                                tooltip="Background colour as #rrggbb; empty = the most common colour on the border."),
                io.Combo.Input("connectivity", options=CONNECTIVITY, default="4",
                               tooltip="4: the fill spreads to side neighbours only (keeps diagonal outlines "
                                       "closed). 8: also diagonally."),
                io.Int.Input("holes", default=0, min=0, max=1 << 24, optional=True,
                             tooltip="Enclosed regions of the background colour with at least this many pixels "
                                     "become transparent too (a gap between the legs that a shadow closes off); "
                                     "smaller ones, such as an eye's white, stay. 0 keeps every enclosed region."),
                _mask_input(),
            ],
            outputs=_image_outputs(),
        )

    @classmethod
    @node_errors
    def execute(cls, image, tolerance: float = 0.06, key: str = "", connectivity: str = "4",
                holes: int = 0, mask=None) -> io.NodeOutput:
        conn = _conn(connectivity)
        k = key.strip() if isinstance(key, str) and key.strip() else None
        return _apply(image, mask, lambda f: C.remove_background(f, tolerance=tolerance, key=k, connectivity=conn,
                                                                 holes=int(holes or 0)))


class DGXPixelsStrayCleanup(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsStrayCleanup",
            display_name="Pixel Stray Cleanup",
            category="DGX-Pixels/Cleanup",
            description=(
                "Removes stray pixels: an island of one colour smaller than min_size pixels takes the most common "
                "colour around it when that colour differs from it by at most max_difference, and a speck floating "
                "in transparency is removed. The defaults only touch near-identical shades and specks, so eyes, "
                "highlights, diagonal lines and dithering survive."
            ),
            inputs=_image_inputs() + [
                io.Int.Input("min_size", default=2, min=1, max=4096,
                             tooltip="Islands with fewer pixels than this are candidates; 2 = single pixels only, "
                                     "1 = change nothing."),
                io.Combo.Input("connectivity", options=CONNECTIVITY, default="8",
                               tooltip="Which pixels of one colour belong together: 8 = also diagonal neighbours "
                                       "(diagonal lines and dithering stay whole, recommended); 4 = sides only."),
                _mask_input(),
                io.Float.Input("max_difference", default=0.05, min=0.0, max=1.0, step=0.01, optional=True,
                               tooltip="Largest colour difference (OKLab distance) an island may have from its "
                                       "surroundings and still be recoloured: 0.05 fixes cells a shade off, 0.2 "
                                       "also clear mistakes, 1.0 recolours every small island (also eyes)."),
            ],
            outputs=_image_outputs(),
        )

    @classmethod
    @node_errors
    def execute(cls, image, min_size: int = 2, connectivity: str = "8", mask=None,
                max_difference: float = 0.05) -> io.NodeOutput:
        conn = _conn(connectivity)
        return _apply(image, mask, lambda f: C.remove_strays(f, min_size=int(min_size), connectivity=conn,
                                                             max_difference=float(max_difference),
                                                             check=throw_if_interrupted))


class DGXPixelsOutline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsOutline",
            display_name="Pixel Outline",
            category="DGX-Pixels/Cleanup",
            description=(
                "Draws a 1-pixel outline around the opaque sprite, outside it (the sprite grows by one pixel "
                "where there is room) or inside it (its edge pixels are recoloured)."
            ),
            inputs=_image_inputs() + [
                io.String.Input("color", default="auto",
                                tooltip="auto: the darkest colour of the sprite (stays in its palette); darken: a "
                                        "darker shade of the neighbouring colour (selective outline); or #rrggbb."),
                io.Combo.Input("connectivity", options=CONNECTIVITY, default="4",
                               tooltip="4: outline touches the sprite at its sides (classic thin outline). "
                                       "8: also diagonally (closed, heavier)."),
                io.Boolean.Input("inside", default=False,
                                 tooltip="Recolour the sprite's own edge pixels instead of adding pixels outside."),
                _mask_input(),
            ],
            outputs=_image_outputs(),
        )

    @classmethod
    @node_errors
    def execute(cls, image, color: str = "auto", connectivity: str = "4", inside: bool = False,
                mask=None) -> io.NodeOutput:
        conn = _conn(connectivity)
        col = color.strip() if isinstance(color, str) and color.strip() else "auto"
        frames = _binary_alpha(input_frames(image, mask))
        _warn_if_opaque(frames, mask, "Pixel Outline", "there is no sprite edge to outline")
        if col.lower() == "auto":
            # one colour for the whole batch: chosen per frame, an animation's outline flickered
            col = C.auto_outline_color(frames, connectivity=conn, inside=bool(inside)) or "auto"
        return io.NodeOutput(*rgba_outputs(map_frames(
            frames, lambda f: C.add_outline(f, color=col, connectivity=conn, inside=bool(inside)))))


class DGXPixelsTrim(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsTrim",
            display_name="Pixel Trim",
            category="DGX-Pixels/Cleanup",
            description=(
                "Crops to the visible content plus padding. For a batch, 'union' uses one box covering every "
                "frame so an animation stays aligned; 'per_frame' crops each frame tightly and then pads them "
                "at the right and bottom to one size (a batch needs one size). The boxes are output as JSON."
            ),
            inputs=_image_inputs() + [
                io.Int.Input("padding", default=0, min=0, max=1024,
                             tooltip="Transparent pixels kept (or added) around the content on every side."),
                io.Combo.Input("batch_mode", options=["union", "per_frame"], default="union",
                               tooltip="union: one box for all frames (animations stay aligned). per_frame: each "
                                       "frame cropped on its own."),
                _mask_input(),
            ],
            outputs=_image_outputs() + [
                io.String.Output(display_name="boxes",
                                 tooltip="JSON list of [left, top, right, bottom] per frame in source pixels "
                                         "(right/bottom exclusive; negative where padding added margin)."),
                io.Int.Output(display_name="left", tooltip="Left of frame 0's box in the source."),
                io.Int.Output(display_name="top", tooltip="Top of frame 0's box in the source."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, image, padding: int = 0, batch_mode: str = "union", mask=None) -> io.NodeOutput:
        if batch_mode not in ("union", "per_frame"):
            raise InvalidArgumentError(f"batch_mode must be 'union' or 'per_frame', got {batch_mode!r}")
        frames = _binary_alpha(input_frames(image, mask))
        _warn_if_opaque(frames, mask, "Pixel Trim", "there is no transparent border to trim")
        results = C.trim_batch(frames, padding=int(padding), union=batch_mode == "union")
        if all(r.empty for r in results):
            raise InputImageError(
                "every frame is fully transparent: nothing to trim to",
                hint="check the mask / alpha input, or remove the background less aggressively",
            )
        # the batch takes the size of the largest trimmed content; an empty frame (returned
        # untrimmed) must not pad the others back to the full frame
        kept = [r.image for r in results if not r.empty]
        h = max(i.shape[0] for i in kept)
        w = max(i.shape[1] for i in kept)
        imgs = [np.zeros((h, w, 4), np.uint8) if r.empty else r.image for r in results]
        if any(i.shape[:2] != (h, w) for i in imgs):
            imgs = [C.crop_box(i, (0, 0, w, h)) for i in imgs]
        boxes = [list(r.box) for r in results]
        left, top = boxes[0][0], boxes[0][1]
        img_t, mask_t = rgba_outputs(imgs)
        return io.NodeOutput(img_t, mask_t, json.dumps(boxes), int(left), int(top))


NODES = [DGXPixelsBackgroundRemove, DGXPixelsStrayCleanup, DGXPixelsOutline, DGXPixelsTrim]
