#!/usr/bin/env python3
"""proper-pixel-art 2.0.0 in automatic mode: `run_proper_pixel_art.py IN OUT`.

Calls `proper_pixel_art.pixelate(image)` with the default `PixelateConfig()` (mesh detected,
pixel width detected, dominant colour per cell, no result scaling), as the `ppa` CLI does
without flags.
"""
import sys

from PIL import Image
from proper_pixel_art import pixelate


def main(src: str, dst: str) -> int:
    pixelate(Image.open(src)).image.save(dst, format="PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
