"""``dgx-pixels snap``: turn pseudo pixel art into a true-resolution sprite.

Top-level imports stay light (argparse only): numpy and Pillow load inside ``run`` so the
whole process stays well under 0.3 s per image.
"""
from __future__ import annotations

import argparse

HELP = "snap pseudo pixel art to its true pixel grid (automatic, or with a given cell size / target size)"
DESCRIPTION = (
    "Detect the fake-pixel grid of an AI-drawn pixel-art image and write the true-resolution sprite: "
    "one pixel per grid cell, one clean colour per pixel. Fully automatic by default; --cell or "
    "--width/--height override detection. --colors/--palette reduce the colours afterwards."
)
# cells counted over flat background, per axis, from which the size is worth a note
FLAT_NOTE = 8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="image file (PNG, JPEG, WebP; any mode)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="PNG to write (true resolution)")
    g = p.add_argument_group("grid override (default: automatic)")
    g.add_argument("--cell", type=float, metavar="N", help="cell size in source pixels, both axes (may be fractional)")
    g.add_argument("--cell-w", type=float, metavar="W", help="cell width in source pixels")
    g.add_argument("--cell-h", type=float, metavar="H", help="cell height in source pixels")
    g.add_argument("--width", type=int, metavar="W", help="target width in true pixels")
    g.add_argument("--height", type=int, metavar="H", help="target height in true pixels")
    c = p.add_argument_group("colours")
    c.add_argument("--colors", type=int, metavar="K", help="reduce to an adaptive palette of K colours")
    c.add_argument("--palette", metavar="NAME|FILE", help="map to a named palette or a .hex/.gpl/.pal/.png file")
    c.add_argument("--dither", default="none", metavar="MODE", help="dithering for --colors/--palette (default none)")
    c.add_argument("--dither-strength", type=float, default=1.0, metavar="S", help="dither strength 0..1 (default 1)")
    c.add_argument("--transparent-bg", action="store_true", help="make the background colour transparent")
    v = p.add_argument_group("output")
    v.add_argument("--preview", metavar="PATH", help="also write a nearest-neighbour enlarged preview PNG")
    v.add_argument("--preview-scale", type=int, default=8, metavar="N", help="preview scale factor (default 8)")
    v.add_argument("--json", action="store_true", help="print the detected grid as JSON on stdout")


def _check_args(args) -> None:
    from comfy_nodes.pixel.errors import InvalidArgumentError

    if args.cell is not None and (args.cell_w is not None or args.cell_h is not None):
        raise InvalidArgumentError("--cell cannot be combined with --cell-w/--cell-h")
    cells = args.cell is not None or args.cell_w is not None or args.cell_h is not None
    sizes = args.width is not None or args.height is not None
    if cells and sizes:
        raise InvalidArgumentError("give either a cell size (--cell/--cell-w/--cell-h) or a target size "
                                   "(--width/--height), not both")
    if args.colors is not None and args.palette is not None:
        raise InvalidArgumentError("give either --colors or --palette, not both")
    if args.colors is not None and not (2 <= args.colors <= 256):
        raise InvalidArgumentError(f"--colors must be between 2 and 256, got {args.colors}")
    if args.preview_scale < 1 or args.preview_scale > 64:
        raise InvalidArgumentError(f"--preview-scale must be between 1 and 64, got {args.preview_scale}")
    for name in ("cell", "cell_w", "cell_h", "width", "height"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be > 0, got {v}")


def run(args) -> int:
    _check_args(args)
    _single_threaded_blas()
    from comfy_nodes.pixel import grid as G
    from comfy_nodes.pixel.imageio import load_image, save_png, upscale_nearest

    rgba = load_image(args.input)
    result = G.snap(
        rgba,
        cell=args.cell,
        cell_w=args.cell_w,
        cell_h=args.cell_h,
        width=args.width,
        height=args.height,
        background="transparent" if args.transparent_bg else "keep",
        source=str(args.input),
    )
    img = result.image
    if args.colors is not None or args.palette is not None:
        img = _reduce_colours(img, args)
    save_png(img, args.output)
    if args.preview:
        save_png(upscale_nearest(img, args.preview_scale), args.preview)
    if args.json:
        import json

        info = result.grid.to_dict()
        info["output"] = str(args.output)
        print(json.dumps(info))
    else:
        import sys

        g = result.grid
        # stderr: a script's stdout stays clean, a person still sees what was found
        kind = ", a smooth enlargement: colours read at the cells' centres" if g.smooth else ""
        print(f"{args.output}: {g.cols}x{g.rows} px (cells {g.cell_w:.2f} x {g.cell_h:.2f} source px, "
              f"confidence {g.confidence:.2f}{kind}){_flat_note(g, args)}", file=sys.stderr)
    return 0


def _flat_note(g, args) -> str:
    """Where many cells lie over flat background, their count is the border's extent over the
    measured cell size, not seen lines: a drifting grid can put it one off, so say so (not on
    an axis whose size was given)."""
    # an axis with no line on an edge has all its cells flat from both sides: count them once
    cols, rows = min(g.cols, sum(g.flat_border[:2])), min(g.rows, sum(g.flat_border[2:]))
    parts = [f"{n} {name} counted over flat background"
             for n, name, given in ((cols, "columns", args.width), (rows, "rows", args.height))
             if n >= FLAT_NOTE and not given]
    if not parts:
        return ""
    return "; " + " and ".join(parts) + " (give --width/--height if you know the size)"


def _single_threaded_blas() -> None:
    """Snap multiplies only small matrices; a BLAS thread pool would spin up and burn CPU on
    every core for nothing. Effective only before numpy is first imported (the CLI case)."""
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _reduce_colours(img, args):
    from comfy_nodes.pixel.errors import InvalidArgumentError

    try:
        from comfy_nodes.pixel import palette as P
    except ImportError as exc:  # the palette module ships separately in development trees
        raise InvalidArgumentError("--colors/--palette need comfy_nodes.pixel.palette, which is not installed",
                                   hint="run snap without --colors/--palette") from exc
    if args.palette is not None:
        pal = P.resolve_palette(args.palette)
    else:
        pal = P.adaptive_palette([img], args.colors, seed=0)
    return P.quantize(img, pal, dither=args.dither, strength=args.dither_strength)
