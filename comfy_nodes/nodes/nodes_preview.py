"""V3 nodes: previewing pixel art at a visible size.

Pixel art is tiny (16x16 to 128x128); any smoothing filter blurs it. These nodes enlarge it
with whole-pixel blocks so every art pixel stays a crisp square.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..pixel.errors import InvalidArgumentError
from ..pixel.imageio import largest_nearest_scale, upscale_nearest
from ._hints import node_errors
from ._tensor import image_channels, image_to_rgba_list, rgba_list_to_image

#: Largest enlarged batch, all frames together, in pixels (64 million: 1 GiB as a float32
#: RGBA IMAGE).
NODE_MAX_PIXELS = 1 << 26


class DGXPixelsNearestUpscale(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsNearestUpscale",
            display_name="Pixel Nearest Upscale",
            category="DGX-Pixels/Preview",
            description=(
                "Enlarges pixel art by a whole factor with nearest-neighbour sampling: every pixel "
                "becomes a scale x scale block of the same colour, so edges stay crisp. "
                "Keeps alpha when the input has it."
            ),
            inputs=[
                io.Image.Input("image", tooltip="Pixel art to enlarge (any batch size; RGB or RGBA)."),
                io.Int.Input(
                    "scale",
                    default=4,
                    min=1,
                    max=64,
                    step=1,
                    tooltip="Whole-number factor: 4 turns a 32x32 sprite into 128x128.",
                ),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The enlarged image batch, same channels as the input.")],
        )

    @classmethod
    @node_errors
    def execute(cls, image, scale: int) -> io.NodeOutput:
        keep_alpha = image_channels(image) == 4
        rgbas = image_to_rgba_list(image)
        _check_batch_size(rgbas, int(scale))
        # a ComfyUI IMAGE holds 16 bytes a pixel: the whole enlarged batch stays within about 1 GiB
        frames = [upscale_nearest(rgba, int(scale), max_pixels=NODE_MAX_PIXELS) for rgba in rgbas]
        return io.NodeOutput(rgba_list_to_image(frames, keep_alpha=keep_alpha))


def _check_batch_size(frames: list, scale: int) -> None:
    """Refuse, before anything is allocated, a batch whose enlarged frames together pass
    NODE_MAX_PIXELS: a limit per frame let 16 frames make 16 GiB. One frame gets
    upscale_nearest's own message."""
    if len(frames) < 2 or scale < 2:
        return
    h, w = frames[0].shape[:2]  # an IMAGE batch holds frames of one size
    total = len(frames) * h * w * scale * scale
    if total > NODE_MAX_PIXELS:
        budget = NODE_MAX_PIXELS // len(frames)
        raise InvalidArgumentError(
            f"scale {scale} makes the batch of {len(frames)} frames of {w}x{h} {w * scale}x{h * scale} pixels "
            f"each, {total / 1e6:.0f} million pixels in all, more than this allows "
            f"({NODE_MAX_PIXELS // 1_000_000} million pixels for the whole batch)",
            hint=f"use scale {largest_nearest_scale(h, w, budget)} or less for this batch, or enlarge fewer frames at once")


NODES = [DGXPixelsNearestUpscale]
