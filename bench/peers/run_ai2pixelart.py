#!/usr/bin/env python3
"""ai2pixelart 0.1.4 in automatic mode: `run_ai2pixelart.py IN OUT`.

Calls `ai2pixelart.pipeline.clean(rgb)` with the defaults of `ai2pixelart clean IN -o OUT`
(the classical "simple" approach: grid detected, natural palette size, merge_de=3, denoise and
smoothing on). The neural approaches need checkpoints from outside PyPI and are not measured.
"""
import sys

import numpy as np
from PIL import Image
from ai2pixelart.pipeline import clean


def main(src: str, dst: str) -> int:
    rgb = np.array(Image.open(src).convert("RGB"))
    result = clean(rgb, merge_de=3.0, max_colors=None, palette=None, pitch=None,
                   granularity=1.0, denoise=True, smooth=True, consensus=False)
    Image.fromarray(result.image).save(dst, format="PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
