#!/usr/bin/env python3
"""unfake 1.0.7 in automatic mode: `run_unfake.py IN OUT`.

Calls `unfake.process_image_sync(path)` with the defaults of its `unfake` CLI: scale detection
"auto" (runs, then edges), colour count auto-detected, "dominant" downscaling, grid snapping on.
"""
import logging
import sys

import unfake


def main(src: str, dst: str) -> int:
    logging.getLogger().setLevel(logging.ERROR)
    result = unfake.process_image_sync(
        src, max_colors=None, detect_method="auto", downscale_method="dominant",
        dom_mean_threshold=0.05, alpha_threshold=128, snap_grid=True,
    )
    result["image"].save(dst, format="PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
