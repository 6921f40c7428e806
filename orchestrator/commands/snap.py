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
    "--width/--height override detection. --colors/--palette reduce the colours afterwards. "
    "Several inputs, a folder or an animated GIF/APNG/WebP are animation frames: they are snapped on one "
    "shared grid, reduced to one shared palette (no flicker) and written into the folder OUTPUT, "
    "each as its input's name (NAME_000.png, NAME_001.png... for the frames of an animated file)."
)
# cells counted over flat background, per axis, from which the size is worth a note
FLAT_NOTE = 8
# With --transparent-bg a sprite on a backdrop comes out with its whole border cleared (99-100 %
# on the benchmark's 9 real images); a scene keeps most of its border (a landscape: 29 %, its
# sky cleared and its ground kept). Under this share the report says the input looks like a scene.
SCENE_BORDER = 0.5
# Cells more this much wider than tall (or taller than wide) get a note: snap-dev's cells are
# at most 1.08:1, real AI images' 1.10:1; an axis read at twice its cell is 2:1.
SQUARE_NOTE = 1.25
# Under this confidence the result gets a note: snap-dev's lowest is 0.59, real AI images'
# 0.71; lattices found on smooth drawings can score 0.36.
LOW_CONFIDENCE = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", nargs="+",
                   help="image file (PNG, JPEG, WebP, GIF; any mode); several files, a folder of them (sorted by "
                        "name) or an animated file are animation frames")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="PNG to write (true resolution), or a folder (existing, or ending in /) to write INPUT's "
                        "name into; for several frames, the folder to write them into")
    g = p.add_argument_group("grid override (default: automatic)")
    g.add_argument("--cell", type=float, metavar="N", help="cell size in source pixels, both axes (may be fractional)")
    g.add_argument("--cell-w", type=float, metavar="W", help="cell width in source pixels")
    g.add_argument("--cell-h", type=float, metavar="H", help="cell height in source pixels")
    g.add_argument("--width", type=int, metavar="W", help="target width in true pixels: the whole image's, background included (alone, the height follows with square cells)")
    g.add_argument("--height", type=int, metavar="H", help="target height in true pixels: the whole image's (alone, the width follows with square cells)")
    c = p.add_argument_group("colours")
    c.add_argument("--colors", type=int, metavar="K", help="reduce to an adaptive palette of K colours")
    c.add_argument("--palette", metavar="NAME|FILE", help="map to a named palette or a .hex/.gpl/.pal/.txt/.png file")
    c.add_argument("--dither", default="none", metavar="MODE", help="dithering for --colors/--palette (default none)")
    c.add_argument("--dither-strength", type=float, default=1.0, metavar="S", help="dither strength 0..1 (default 1)")
    c.add_argument("--transparent-bg", action="store_true", help="make the background colour transparent")
    c.add_argument("--holes", type=int, default=0, metavar="N",
                   help="with --transparent-bg: enclosed regions of the background colour of at least N true pixels "
                        "go too (a gap between the legs that a shadow closes off); default 0 keeps them all")
    v = p.add_argument_group("output")
    v.add_argument("--preview", metavar="PATH", help="also write a nearest-neighbour enlarged preview PNG "
                   "(for several frames: a folder, one preview per frame)")
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
    if args.holes < 0:
        raise InvalidArgumentError(f"--holes must be 0 or more pixels, got {args.holes}")
    if args.holes and not args.transparent_bg:
        raise InvalidArgumentError("--holes clears enclosed background; it needs --transparent-bg")
    if args.colors is not None and not (1 <= args.colors <= 256):
        raise InvalidArgumentError(f"--colors must be between 1 and 256, got {args.colors}")
    from comfy_nodes.pixel.dither import MODES, normalise_mode

    try:
        args.dither = normalise_mode(args.dither)  # the core's spellings too: fs, bayer, Floyd-Steinberg
    except InvalidArgumentError:
        raise InvalidArgumentError(f"--dither must be one of {', '.join(MODES)}, got {args.dither!r}") from None
    if not 0 <= args.dither_strength <= 1:
        raise InvalidArgumentError(f"--dither-strength must be 0..1, got {args.dither_strength:g}")
    if args.colors is None and args.palette is None and (args.dither != "none" or args.dither_strength != 1.0):
        # dithering happens while colours are reduced: without a reduction it would do nothing
        raise InvalidArgumentError("--dither and --dither-strength apply with --colors or --palette",
                                   hint="add --colors K or --palette NAME|FILE")
    if args.preview_scale < 1 or args.preview_scale > 64:
        raise InvalidArgumentError(f"--preview-scale must be between 1 and 64, got {args.preview_scale}")
    for name in ("cell", "cell_w", "cell_h", "width", "height"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be > 0, got {v}")


def run(args) -> int:
    _check_args(args)
    _single_threaded_blas()
    import os

    from comfy_nodes.pixel.imageio import load_frames

    from .sheet import expand_inputs

    paths = expand_inputs(args.input)
    frames = [f for path in paths for f in _named_frames(path, load_frames(path))]
    if len(frames) > 1 or any(os.path.isdir(p) for p in args.input):
        return _run_frames(args, paths, frames)
    from comfy_nodes.pixel import grid as G
    from comfy_nodes.pixel.imageio import png_bytes, upscale_nearest

    from .outputs import png_output, write_all

    name, source, rgba = frames[0]
    keep = [("the input", paths[0])]
    output = png_output(args.output, "-o", name, keep)
    preview = None
    if args.preview:
        preview = png_output(args.preview, "--preview", f"{name[:-4]}_preview.png", keep + [("the sprite", output)])
    result = G.snap(rgba, background="transparent" if args.transparent_bg else "keep", bg_holes=args.holes, source=source,
                    **_overrides(args))
    img = result.image
    if args.colors is not None or args.palette is not None:
        img = _reduce_colours([img], args)[0]
    if preview:
        _check_preview_size(img, args.preview_scale)
    files = [(output, png_bytes(img))]
    if preview:
        files.append((preview, png_bytes(upscale_nearest(img, args.preview_scale))))
    write_all(files)
    _report(result.grid, args, {"output": str(output), **({"preview": str(preview)} if preview else {})},
            f"{output}:", [img])
    return 0


def _check_preview_size(img, scale: int) -> None:
    """``InvalidArgumentError`` before anything is written when the preview would pass the
    largest image written anywhere (it was found out after the sprite, as a failed allocation)."""
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from comfy_nodes.pixel.imageio import MAX_PIXELS, MAX_SIDE, largest_nearest_scale

    w, h = img.shape[1] * scale, img.shape[0] * scale
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        fit = largest_nearest_scale(img.shape[0], img.shape[1])
        raise InvalidArgumentError(
            f"--preview-scale {scale} makes the {img.shape[1]}x{img.shape[0]} sprite a {w}x{h} preview, more than "
            f"{MAX_SIDE} px on a side", hint=f"use --preview-scale {fit} or less, or leave out --preview")


def _overrides(args) -> dict:
    return {k: getattr(args, k) for k in ("cell", "cell_w", "cell_h", "width", "height")}


def _named_frames(path: str, imgs: list) -> list[tuple]:
    """(output file name, source as messages name it, frame) for each frame of ``path``: its
    name, or NAME_000.png, NAME_001.png... for the frames of an animated file."""
    from pathlib import Path

    stem = Path(path).stem
    if len(imgs) == 1:
        return [(f"{stem}.png", str(path), imgs[0])]
    return [(f"{stem}_{i:03d}.png", f"{path} frame {i}", img) for i, img in enumerate(imgs)]


def _run_frames(args, paths: list[str], frames: list[tuple]) -> int:
    """Animation frames (of the input files ``paths``): one grid found on all of them, one
    palette, one folder of PNGs. Everything is checked and computed before the first file is
    written, and the files are written all or none."""
    from pathlib import Path

    from comfy_nodes.pixel import grid as G
    from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError
    from comfy_nodes.pixel.imageio import png_bytes, upscale_nearest

    from .outputs import check_writable, write_all

    out_dir = Path(args.output)
    folders = [("-o", out_dir)] + ([("--preview", Path(args.preview))] if args.preview else [])
    for flag, target in folders:
        if target.is_file() or (not target.exists() and target.suffix.lower() == ".png"):
            raise InvalidArgumentError(f"{flag} {target}: {len(frames)} frames are written into a folder, "
                                       "and this names a PNG file", hint=f"give a folder, e.g. {flag} frames/")
    if args.preview and Path(args.preview).resolve() == out_dir.resolve():
        raise InvalidArgumentError(f"--preview {args.preview}: the previews would replace the frames written into {out_dir}",
                                   hint="give the previews their own folder")
    seen: dict[str, str] = {}
    for name, source, _ in frames:
        if name in seen:
            raise InvalidArgumentError(f"{seen[name]} and {source} would both be written as {out_dir / name}",
                                       hint="rename one of them, or snap them in separate runs")
        seen[name] = source
    for name, _, _ in frames:
        for _, folder in folders:
            check_writable(folder / name)
    inputs = {Path(p).resolve() for p in paths}
    for _, folder in folders:
        hit = next((folder / name for name, _, _ in frames if (folder / name).resolve() in inputs), None)
        if hit is not None:
            raise InvalidArgumentError(f"{hit} is an input: writing the frames into {folder} would replace it",
                                       hint="give another folder for the snapped frames")
    _, first, img0 = frames[0]
    h, w = img0.shape[:2]
    for _, source, img in frames:
        if img.shape[:2] != (h, w):
            raise InputImageError(f"{source} is {img.shape[1]}x{img.shape[0]} but {first} is {w}x{h}; "
                                  "frames snapped together share one grid and must have one size",
                                  hint="snap frames of different sizes in separate runs")
    results = G.snap_batch([img for _, _, img in frames], background="transparent" if args.transparent_bg else "keep", bg_holes=args.holes,
                           **_overrides(args))
    # snap_batch gives the frames one set of colours before any reduction (which would
    # otherwise split a colour between frames)
    grid, imgs = results[0].grid, [r.image for r in results]
    if args.colors is not None or args.palette is not None:
        imgs = _reduce_colours(imgs, args)
    if args.preview:
        _check_preview_size(imgs[0], args.preview_scale)
    files = []
    for (name, _, _), img in zip(frames, imgs):
        files.append((out_dir / name, png_bytes(img)))
        if args.preview:
            files.append((Path(args.preview) / name, png_bytes(upscale_nearest(img, args.preview_scale))))
    write_all(files)
    written = [str(out_dir / name) for name, _, _ in frames]
    previews = {"previews": [str(Path(args.preview) / name) for name, _, _ in frames]} if args.preview else {}
    off = {source: r.off_grid for (_, source, _), r in zip(frames, results) if r.off_grid}
    _report(grid, args, {"outputs": written, **previews, **({"off_grid": off} if off else {})},
            f"{out_dir}: {len(frames)} frames on one grid,", imgs)
    if off and not args.json:
        import sys

        for source, why in off.items():
            print(f"warning: {source}: {why}, so it is no pixel art on the grid the frames share; it was snapped on it "
                  "anyway (snap it on its own, or leave it out)", file=sys.stderr)
    return 0


def _doubts(g, args) -> list[str]:
    """Notes on a grid worth checking by eye: found with low confidence, or with cells far from
    square (pseudo pixels are near square: one axis may be read at a multiple of its cell)."""
    if g.kept_as_is or g.exact or any(
            v is not None for v in (args.cell, args.cell_w, args.cell_h, args.width, args.height)):
        return []
    notes = []
    ratio = max(g.cell_w / g.cell_h, g.cell_h / g.cell_w)
    if ratio > SQUARE_NOTE:
        wide = "wider than tall" if g.cell_w > g.cell_h else "taller than wide"
        notes.append(f"the cells are {ratio:.2f} times {wide}, where pseudo pixels are near square: one axis may "
                     "be read at a multiple or a part of its cell; check the result (--preview), or give --cell "
                     "or --width/--height")
    if g.confidence < LOW_CONFIDENCE:
        notes.append(f"the grid was found with low confidence ({g.confidence:.2f}): check the result (--preview), "
                     "or give --cell or --width/--height")
    return notes


def _report(g, args, fields: dict, what: str, imgs: list) -> None:
    cleared = _border_cleared(imgs) if args.transparent_bg else None
    if args.json:
        import json

        info = g.to_dict()
        info.update(fields)
        info["kept_as_is"] = g.kept_as_is
        doubts = _doubts(g, args)
        if doubts:
            info["notes"] = doubts
        if cleared is not None:
            info["border_cleared"] = round(cleared, 3)
        print(json.dumps(info))
        return
    import sys

    # stderr: a script's stdout stays clean, a person still sees what was found
    kind = ", a smooth enlargement: colours read at the cells' centres" if g.smooth else ""
    if g.kept_as_is:
        print(f"{what} {g.cols}x{g.rows} px, kept as it is: no grid of pseudo pixels found, so it is taken as "
              "already at its true resolution (give --cell or --width/--height if it is an enlargement)",
              file=sys.stderr)
    else:
        print(f"{what} {g.cols}x{g.rows} px (cells {g.cell_w:.2f} x {g.cell_h:.2f} source px, "
              f"confidence {g.confidence:.2f}{kind}){_flat_note(g, args)}", file=sys.stderr)
    for note in _doubts(g, args):
        print(f"note: {note}", file=sys.stderr)
    if cleared is not None and cleared < SCENE_BORDER:
        share = sum(float((im[..., 3] == 0).mean()) for im in imgs) / len(imgs)
        print(f"note: --transparent-bg cleared only {cleared:.0%} of the border, so this looks like a scene rather "
              f"than a sprite on a backdrop: {share:.0%} of the picture is now transparent (leave out "
              "--transparent-bg to keep it whole)", file=sys.stderr)


def _border_cleared(imgs: list) -> float:
    """The share (0..1) of the outermost pixels of ``imgs`` (snapped RGBA frames) that are
    transparent, over all frames."""
    import numpy as np

    rings = [np.concatenate([a[0, :, 3], a[-1, :, 3], a[1:-1, 0, 3], a[1:-1, -1, 3]]) for a in imgs]
    ring = np.concatenate(rings)
    return float((ring == 0).mean()) if ring.size else 1.0


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
    missing = "/".join(flag for flag, given in (("--width", args.width), ("--height", args.height)) if not given)
    return "; " + " and ".join(parts) + f" (give {missing} if you know the size)"


def _single_threaded_blas() -> None:
    """Snap multiplies only small matrices; a BLAS thread pool would spin up and burn CPU on
    every core for nothing. Effective only before numpy is first imported (the CLI case)."""
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _reduce_colours(imgs: list, args) -> list:
    """``imgs`` on the given palette, or on one adaptive palette found over all of them."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    try:
        from comfy_nodes.pixel import palette as P
    except ImportError as exc:  # the palette module ships separately in development trees
        raise InvalidArgumentError("--colors/--palette need comfy_nodes.pixel.palette, which is not installed",
                                   hint="run snap without --colors/--palette") from exc
    if args.palette is not None:
        pal = P.resolve_palette(args.palette)
    else:
        pal = P.adaptive_palette(imgs, args.colors, seed=0)
    return P.quantize_batch(imgs, pal, dither=args.dither, strength=args.dither_strength)
