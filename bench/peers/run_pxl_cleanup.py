#!/usr/bin/env python3
"""pxl-cleanup 0.1.0 in automatic mode: `run_pxl_cleanup.py IN OUT`.

Runs its grid stage, `pxl_cleanup.recover_grid(image, pixel_size=None)` (None = auto-detect,
the CLI's `-s 0`). Its other stages are left out because they are not grid recovery and would
change the sprite's size or content for reasons the benchmark does not measure: background
removal crops to the sprite, palette reduction caps colours at 24, canvas placement pads to 128x128.
"""
import sys

from PIL import Image
from pxl_cleanup import recover_grid


def main(src: str, dst: str) -> int:
    recover_grid(Image.open(src), pixel_size=None).save(dst, format="PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
