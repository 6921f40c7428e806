#!/usr/bin/env python3
"""Does the grid snap keep pixel art that already is at its true resolution as it is?

    python bench/snap_true_art.py [--sheets DIR] [--per-size 6] [--sizes 72,96,128,192,256] [--seed 0]

A user may run the snap on art that needs none: a tile sheet, a character sheet, a GUI skin.
Windows of each size are cut at random (seeded) from every ``*.png`` sheet in ``DIR`` (a window
at least 30 % opaque), and each is snapped in automatic mode. Every window is at its true
resolution, so the one right answer is the window itself, kept as it is; a refusal ("no pixel
grid found") is a clear answer; a smaller image is a wrong one (a lattice of the art's tiles or
motifs taken for pseudo pixels). The counts per size are printed. In process, no timing.

By default the sheets are Dungeon Crawl Stone Soup's tiles (most of them CC0), from Debian's
``crawl-tiles-data`` (pinned below), fetched with ``apt-get download`` into
``~/.cache/dgx-pixels/true-art/`` on first use; its title screens, logo and icons are left out.

``--atlases N`` instead lays out N atlases per size (and per backdrop: a flat colour, and
transparency) of the project's sample sprites (``orchestrator.samples``), 20 or 80 of them at
random places: loose sprites of a few colours over a large flat area, where a lattice of the
sprites' spacing can pass for pseudo pixels.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_nodes.pixel.errors import NoGridFoundError  # noqa: E402
from comfy_nodes.pixel.grid import detect_grid  # noqa: E402
from comfy_nodes.pixel.imageio import load_image  # noqa: E402
from snap_other_sources import fetch_package  # noqa: E402  (bench/ is this script's folder)

PACKAGE = "crawl-tiles-data=2:0.28.0-1.1"
CACHE = Path.home() / ".cache" / "dgx-pixels" / "true-art"

#: Title screens, logos and icons are paintings or single images, not sheets of pixel art.
SKIP_NAMES = ("title_", "logo", "icon")


def windows(sheet: np.ndarray, size: int, count: int, rng: np.random.Generator, tries: int = 50):
    """Up to ``count`` random ``size`` x ``size`` windows of ``sheet`` at least 30 % opaque."""
    h, w = sheet.shape[:2]
    if size > min(h, w):
        return
    found = 0
    for _ in range(tries):
        if found == count:
            return
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        win = sheet[y : y + size, x : x + size]
        if (win[..., 3] > 0).mean() >= 0.3:
            found += 1
            yield (x, y), win


def atlases(size: int, count: int, rng: np.random.Generator):
    """``count`` atlases of ``size`` px on each backdrop, each with 20 or 80 sample sprites at
    random places (later ones over earlier ones)."""
    from orchestrator import samples

    sprites = list(samples.sprites().values())
    for backdrop in ("flat", "transparent"):
        for i in range(count):
            img = np.zeros((size, size, 4), np.uint8)
            if backdrop == "flat":
                img[...] = (*rng.integers(40, 200, 3), 255)
            for _ in range((20, 80)[i % 2]):
                s = sprites[int(rng.integers(len(sprites)))]
                h, w = s.shape[:2]
                y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
                opaque = s[..., 3] > 0
                img[y : y + h, x : x + w][opaque] = s[opaque]
            yield f"atlas {i} ({backdrop})", img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sheets", type=Path, help="folder of true-resolution pixel-art sheets (*.png; default: "
                    "Dungeon Crawl's tiles, fetched into the cache)")
    ap.add_argument("--sizes", default="72,96,128,192,256", help="window sizes, px (comma-separated)")
    ap.add_argument("--per-size", type=int, default=6, help="windows per sheet and size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="name every window not kept as it is")
    ap.add_argument("--atlases", type=int, default=0, metavar="N",
                    help="snap N generated atlases of the sample sprites per size and backdrop instead")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    if args.atlases:
        sources = [("", lambda size: atlases(size, args.atlases, rng))]
        said_from = "atlases of the sample sprites"
    else:
        folder = args.sheets or fetch_package(PACKAGE, CACHE, "usr/share/crawl/dat/tiles", "--sheets")
        paths = sorted(p for p in folder.glob("*.png") if not any(k in p.name for k in SKIP_NAMES))
        if not paths:
            print(f"no sheets (*.png) in {folder}", file=sys.stderr)
            return 2
        sheet = functools.lru_cache(maxsize=1)(load_image)
        sources = [(p.name, lambda size, p=p: (
            (f"at {xy}", win) for xy, win in windows(sheet(p), size, args.per_size, rng))) for p in paths]
        said_from = f"{len(paths)} sheets from {folder}"
    counts = {s: {"kept": 0, "refused": 0, "reduced": 0} for s in sizes}
    for name, images in sources:
        for size in sizes:
            for where, win in images(size):
                try:
                    g = detect_grid(win)
                    what = "kept" if (g.cols, g.rows) == (size, size) else "reduced"
                    said = f"{g.cols}x{g.rows}, cells {g.cell_w:.1f} px"
                except NoGridFoundError as exc:
                    what, said = "refused", exc.message
                counts[size][what] += 1
                if args.verbose and what != "kept":
                    print(f"  {' '.join(filter(None, (name, f'{size} px', where)))}: {what}: {said}")
    print(f"{said_from}, seed {args.seed}")
    print(f"{'size':>6} {'windows':>8} {'kept':>6} {'refused':>8} {'reduced':>8}")
    total = {"kept": 0, "refused": 0, "reduced": 0}
    for size in sizes:
        c = counts[size]
        n = sum(c.values())
        for k in total:
            total[k] += c[k]
        print(f"{size:>6} {n:>8} {c['kept']:>6} {c['refused']:>8} {c['reduced']:>8}")
    n = sum(total.values())
    print(f"{'all':>6} {n:>8} {total['kept']:>6} {total['refused']:>8} {total['reduced']:>8}"
          + (f"   kept {total['kept'] / n:.0%}, reduced {total['reduced'] / n:.0%}" if n else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
