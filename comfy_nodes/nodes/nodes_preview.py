"""V3 nodes: previewing pixel art at a visible size.

Pixel art is tiny (16x16 to 128x128); any smoothing filter blurs it. These nodes enlarge it
with whole-pixel blocks so every art pixel stays a crisp square.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..pixel.imageio import upscale_nearest
from ._hints import node_errors
from ._tensor import image_channels, image_to_rgba_list, rgba_list_to_image

#: Largest enlarged frame, in pixels (64 million: 1 GiB as a float32 RGBA IMAGE).
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
        # a ComfyUI IMAGE holds 16 bytes a pixel: keep one enlarged frame within about 1 GiB
        frames = [upscale_nearest(rgba, int(scale), max_pixels=NODE_MAX_PIXELS) for rgba in image_to_rgba_list(image)]
        return io.NodeOutput(rgba_list_to_image(frames, keep_alpha=keep_alpha))


NODES = [DGXPixelsNearestUpscale]
