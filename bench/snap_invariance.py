#!/usr/bin/env python3
"""Does the grid snap give the same sprite when the image is turned or mirrored?

    python bench/snap_invariance.py              # the 9 real images and the 72 snap-dev cases
    python bench/snap_invariance.py --real-only

A sprite has one true size whichever way up it is: each image is snapped in its 8 orientations
(as it is, mirrored left-right and top-bottom, turned 90/180/270 degrees, transposed both ways)
and each result is compared with the upright one (width and height swapped for a quarter turn).
A flipped image has the same columns and rows as the upright one, only read in another order:
an orientation that changes the size shows a decision that hangs on a near tie, not on the
picture. For snap-dev the size is also checked against the ground truth. In process, no
timing. Without the shared folder (``$DGX_PIXELS_SHARED/bench``, else ``../shared/bench``) the
script says so and stops.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_nodes.pixel.errors import NoGridFoundError  # noqa: E402
from comfy_nodes.pixel.grid import detect_grid  # noqa: E402
from comfy_nodes.pixel.imageio import load_image  # noqa: E402
from palette_bench import _shared  # noqa: E402  (bench/ is this script's folder)

# name -> (transform of an (H, W, C) array, whether it swaps width and height)
ORIENTATIONS = {
    "upright": (lambda a: a, False),
    "mirror-x": (lambda a: a[:, ::-1], False),
    "mirror-y": (lambda a: a[::-1], False),
    "turn-90": (lambda a: np.rot90(a, 1), True),
    "turn-180": (lambda a: np.rot90(a, 2), False),
    "turn-270": (lambda a: np.rot90(a, 3), True),
    "transpose": (lambda a: a.transpose(1, 0, 2), True),
    "transverse": (lambda a: np.rot90(a, 2).transpose(1, 0, 2), True),
}


def sizes(img: np.ndarray) -> dict[str, tuple[int, int] | None]:
    """The snapped (width, height) in every orientation, swapped back to upright; None where no
    grid was found."""
    out = {}
    for name, (turn, swaps) in ORIENTATIONS.items():
        try:
            g = detect_grid(np.ascontiguousarray(turn(img)))
        except NoGridFoundError:
            out[name] = None
            continue
        out[name] = (g.rows, g.cols) if swaps else (g.cols, g.rows)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-only", action="store_true", help="only the real AI images")
    args = ap.parse_args(argv)
    bench = _shared()
    if not (bench / "real").is_dir():
        print(f"{bench} not found: set DGX_PIXELS_SHARED to the folder that holds bench/")
        return 2
    sets = [("real", sorted((bench / "real").glob("*.png")), None)]
    if not args.real_only:
        cases = sorted(p for p in (bench / "snap-dev" / "cases").iterdir() if (p / "input.png").is_file())
        sets.append(("snap-dev", [c / "input.png" for c in cases], [c / "gt.png" for c in cases]))
    for label, paths, gts in sets:
        same = turned = exact = total = 0
        changed = []
        for i, path in enumerate(paths):
            got = sizes(load_image(path))
            up = got["upright"]
            for name, size in got.items():
                total += 1
                if size == up:
                    same += 1
                elif name != "upright":
                    changed.append(f"{path.parent.name if label == 'snap-dev' else path.stem} {name}: "
                                   f"{size} for {up}")
                if gts is not None:
                    gh, gw = load_image(gts[i]).shape[:2]
                    exact += size == (gw, gh)
            turned += all(s == up for s in got.values())
        n = len(paths)
        line = (f"{label}: {n} images x 8 orientations: {same}/{total} results the upright size; "
                f"{turned}/{n} images the same in all 8")
        if gts is not None:
            line += f"; size exact {exact}/{total} ({100.0 * exact / total:.1f} %)"
        print(line)
        for c in changed:
            print("  changed:", c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
