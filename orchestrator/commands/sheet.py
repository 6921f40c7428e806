"""``dgx-pixels sheet``: frames -> sprite sheet, sheet -> frames, tiles -> tileset.

Top-level imports stay light (argparse only); numpy/Pillow load inside ``run``.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

HELP = "assemble frames into a sprite sheet (or --split a sheet into frames, or build a --tileset)"
DESCRIPTION = (
    "Put frames on one uniform grid (exact pixels, never resampled): cell size = the largest trimmed "
    "frame unless --cell is given, frames anchored in their cell, optional padding/offset (Bevy's "
    "TextureAtlasLayout::from_grid numbers) and named animations "
    "(--animations 'idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong'). "
    "--split cuts a sheet back into frames (grid given, recorded in a sheet made here, or detected from "
    "empty gutters); "
    "--tileset lays equal tiles out and reports tiles that are not seamless."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="frame images or folders of images (sorted by name); "
                   "with --split: the sheet")
    p.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="sheet/tileset PNG to write (or a folder, existing or ending in /, to write sheet.png or "
                        "tileset.png into); with --split: the folder for the frames")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--split", action="store_true",
                      help="cut the input sheet into frames: -o FOLDER gets frame_000.png, frame_001.png...; "
                           "frame_NNN.png files of an earlier split there that this one does not write are removed "
                           "(no other file is touched), so the folder holds exactly this sheet's frames. A sheet "
                           "inside that folder with such a name is refused, never replaced")
    mode.add_argument("--tileset", action="store_true", help="lay out equal-size tiles and check them for seams")
    g = p.add_argument_group("grid")
    add_grid_arguments(g, split=True)
    g.add_argument("--count", type=int, metavar="N", help="--split: number of frames to keep")
    a = p.add_argument_group("animations and outputs")
    a.add_argument("--animations", metavar="SPEC", help="named animations, e.g. 'idle:0-3@8, walk:4-11@12'")
    a.add_argument("--json", metavar="PATH", help="also write an Aseprite-style atlas JSON")
    a.add_argument("--preview", metavar="PATH", help="also write an enlarged preview with the grid drawn")
    a.add_argument("--preview-scale", type=int, default=4, metavar="N", help="preview scale (default 4)")
    t = p.add_argument_group("tileset")
    t.add_argument("--spacing", type=int, default=0, metavar="N", help="pixels between tiles (default 0)")
    t.add_argument("--margin", type=int, default=0, metavar="N", help="pixels around the tileset (default 0)")
    t.add_argument("--tolerance", type=float, default=8.0, metavar="T", help="seam tolerance in 0..255 colour units (default 8)")
    t.add_argument("--strict", action="store_true", help="exit with status 7 when a tile is not seamless")


def add_grid_arguments(g, *, split: bool = False) -> None:
    """The grid options of ``sheet`` and ``export`` (the numbers of Bevy's ``from_grid``)."""
    g.add_argument("--columns", type=int, metavar="N", help="cells per row (default: near-square)")
    g.add_argument("--rows", type=int, metavar="N", help="rows of cells")
    g.add_argument("--cell", metavar="WxH", help="cell size in pixels, e.g. 32x32 (default: largest trimmed frame"
                   + (" / detected)" if split else ")"))
    g.add_argument("--padding", metavar="N|X,Y", help="pixels between cells (default 0" + ("; --split: detected)" if split else ")"))
    g.add_argument("--offset", metavar="N|X,Y", help="pixels before the first cell (default 0"
                   + ("; --split: detected)" if split else ")"))
    g.add_argument("--anchor", default="bottom-center", help="bottom-center (characters, default), center (items) or top-left")
    g.add_argument("--trim", default="auto", help="auto (default: union for frames of one size, an animation, so it does not jitter; each for frames of different sizes), each (every frame to its own pixels), union (all frames by the union of their pixels: keeps motion inside the frame) or none")
    g.add_argument("--pow2", action="store_true", help="enlarge the sheet to power-of-two sides")


def parse_size(text: str, what: str) -> tuple[int, int]:
    from comfy_nodes.pixel.errors import InvalidArgumentError

    t = text.lower().replace(" ", "")
    parts = t.split("x") if "x" in t else [t, t]
    try:
        w, h = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise InvalidArgumentError(f"{what} must look like 32x32 or 32, got {text!r}") from None
    if len(parts) != 2 or w < 1 or h < 1:
        raise InvalidArgumentError(f"{what} must be two positive integers like 32x48, got {text!r}")
    return w, h


def parse_pair(text: str | None, what: str) -> tuple[int, int] | None:
    from comfy_nodes.pixel.errors import InvalidArgumentError

    if text is None:
        return None
    parts = [s for s in text.replace(" ", "").split(",") if s != ""]
    try:
        vals = [int(s) for s in parts]
    except ValueError:
        raise InvalidArgumentError(f"{what} must be N or X,Y (whole pixels), got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 0:
        raise InvalidArgumentError(f"{what} must be N or X,Y with values >= 0, got {text!r}")
    return vals[0], vals[1]


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given; folders become their image files sorted naturally (frame2 before frame10).

    Hidden files in a folder (a name starting with '.') are skipped: macOS leaves ``._f0.png``
    AppleDouble files (not images at all) beside every frame copied to a foreign disk, and a
    ``.thumb.png`` a viewer left there would silently become an extra frame. A hidden file
    named on its own is used as given. So is a sheet this tool made (it records its grid):
    ``sheet frames/ -o frames/`` puts ``sheet.png`` among the frames, and the next run took it
    for one more frame; in a folder it is skipped, with a note."""
    import os
    import re
    import sys

    from comfy_nodes.pixel.errors import InputImageError

    def natural(name: str):
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]

    out: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            names = [n for n in os.listdir(item)
                     if not n.startswith(".") and n.lower().endswith((".png", ".webp", ".gif", ".jpg", ".jpeg", ".bmp"))]
            if not names:
                raise InputImageError(f"folder {item} holds no images (hidden files, starting with '.', are skipped)",
                                      hint="put the frames in it as .png/.webp/.gif/.jpg/.bmp files, or name the files")
            files = [os.path.join(item, n) for n in sorted(names, key=natural)]
            sheets = [f for f in files if _made_sheet(f)]
            for f in sheets:
                print(f"note: skipped {f}: a sprite sheet made by dgx-pixels (it records its grid), not a frame",
                      file=sys.stderr)
            if sheets and len(sheets) == len(files):
                raise InputImageError(f"folder {item} holds only sprite sheets made by dgx-pixels, no frames",
                                      hint="name the sheet file itself to use it")
            out += [f for f in files if f not in sheets]
        else:
            out.append(item)
    return out


def _frames(n: int) -> str:
    return f"{n} frame{'' if n == 1 else 's'}"


def empty_columns_warning(columns: int | None, frames: int) -> str | None:
    """A warning for ``--columns`` larger than the number of frames: a row of empty cells (an
    '--columns 100' for 4 frames made a sheet 25 times wider than its frames)."""
    if columns and columns > frames:
        return (f"--columns {columns} for {_frames(frames)}: the sheet has {columns - frames} empty cell"
                f"{'' if columns - frames == 1 else 's'} in its row; --columns {frames} fits them")
    return None


def _made_sheet(path: str) -> bool:
    """Whether ``path`` is a PNG carrying the grid record of a sheet made here (read from the
    chunks before the pixels, where it is written: nothing is decoded)."""
    from PIL import Image

    from comfy_nodes.pixel.sheet import LAYOUT_KEY

    if not path.lower().endswith(".png"):
        return False
    try:
        with Image.open(path) as img:
            return img.format == "PNG" and LAYOUT_KEY in img.info
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False  # load_image names the problem


def load_named_frames(inputs: list[str]) -> list[tuple[str, object]]:
    """``(name, frame)`` for every frame of ``inputs`` in order: the file's path, or
    ``path frame N`` (from 0) for a frame of an animated GIF, APNG or WebP."""
    from comfy_nodes.pixel.imageio import load_frames as frames_of

    out = []
    for p in expand_inputs(inputs):
        frames = frames_of(p)
        out += [(p if len(frames) == 1 else f"{p} frame {i}", f) for i, f in enumerate(frames)]
    return out


def load_frames(inputs: list[str]):
    """The frames of ``inputs`` in order; an animated GIF, APNG or WebP gives all of its frames."""
    return [f for _name, f in load_named_frames(inputs)]


def check_union_sizes(named: list[tuple[str, object]], trim: str) -> None:
    """``InvalidArgumentError`` naming the files when ``--trim union`` is given frames of
    different sizes (the sheet functions see frames only, and could name only their numbers)."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    if not isinstance(trim, str) or trim.lower() != "union" or not named:
        return
    first_name, first = named[0]
    for name, frame in named[1:]:
        if frame.shape[:2] != first.shape[:2]:
            raise InvalidArgumentError(
                f"--trim union needs frames of one size; {name} is {frame.shape[1]}x{frame.shape[0]}, "
                f"{first_name} is {first.shape[1]}x{first.shape[0]}",
                hint="use --trim auto or each for frames of different sizes, or give frames drawn on one canvas size")


def source_timing(inputs: list[str], n_frames: int):
    """(animations, milliseconds per frame) when the frames are one animated file with its own
    timing (a GIF, APNG or WebP), else None: its sheet plays as the file did, with no
    --animations to type."""
    from pathlib import Path

    from comfy_nodes.pixel.imageio import frame_durations_ms
    from comfy_nodes.pixel.sheet import timed_animation

    paths = expand_inputs(inputs)
    ms = frame_durations_ms(paths[0]) if len(paths) == 1 else None
    if not ms or len(ms) != n_frames:
        return None
    return [timed_animation(Path(paths[0]).stem, ms)], ms


#: The names ``--split`` writes: ``frame_`` and the index, zero-padded to at least 3 digits.
SPLIT_FRAME = r"frame_\d{3,}\.png"


def split_targets(out: str | Path, n_frames: int) -> tuple[list[Path], list[Path]]:
    """(files to write, older files to remove) for ``--split`` of ``n_frames`` frames into the
    folder ``out``: ``frame_000.png`` on (more digits from 1000 frames on), and every file
    already there named as a split names its frames (``frame_`` + 3 or more digits + ``.png``)
    that this split does not write. Left there, an earlier split's frames beyond this one's
    count would join the next ``sheet FOLDER`` as extra frames."""
    import os
    import re
    from pathlib import Path

    out = Path(out)
    width = max(3, len(str(n_frames - 1)))
    targets = [out / f"frame_{i:0{width}d}.png" for i in range(n_frames)]
    if not out.is_dir():
        return targets, []
    keep = {t.name for t in targets}
    stale = [out / n for n in os.listdir(out)
             if re.fullmatch(SPLIT_FRAME, n) and n not in keep and not (out / n).is_dir()]
    stale.sort(key=lambda p: (int(p.name[6:-4]), p.name))
    return targets, stale


def check_not_removing(stale: list[Path], option: str, keep: list[tuple[str, str]]) -> None:
    """An ``InvalidArgumentError`` naming ``option`` when one of the older frames a split would
    remove (``stale``) is one of the files in ``keep`` ((what, path) pairs, e.g. the sheet
    being split): the run must never delete its own input."""
    from pathlib import Path

    from comfy_nodes.pixel.errors import InvalidArgumentError

    for old in stale:
        for what, p in keep:
            if Path(old).resolve() == Path(p).resolve():
                raise InvalidArgumentError(
                    f"{option}: this split removes the older frames of an earlier split there, which would remove "
                    f"{what} {p}", hint="split into another folder, or move the sheet out of it first")


def split_recorded(path: str, img, count: int | None):
    """The split of the sheet ``img`` (read from ``path``) on the grid its PNG recorded when
    it was made here (see ``sheet.LAYOUT_KEY``), or None when it recorded none: exact where
    detection needs empty gutters, and the frame count without guessing which empty cells are
    filler. A record that no longer fits the image is said, and the grid detected instead."""
    import sys

    from comfy_nodes.pixel.errors import InvalidArgumentError
    from comfy_nodes.pixel.imageio import png_text
    from comfy_nodes.pixel.sheet import recorded_layout, split_sheet

    layout, why = recorded_layout(png_text(path), img.shape[1], img.shape[0])
    if layout is not None:
        try:
            res = split_sheet(img, cell_size=(layout.cell_w, layout.cell_h), columns=layout.columns,
                              rows=layout.rows, padding=layout.padding, offset=layout.offset, keep_empty=True)
        except InvalidArgumentError:
            # pixels outside the recorded grid: drawn on since
            why = "it has sprite pixels outside the grid it records: the sheet was changed since"
        else:
            n = layout.frames if count is None else count
            if not 1 <= n <= len(res.frames):
                raise InvalidArgumentError(f"--count must be 1..{len(res.frames)} for this sheet's grid, got {n}")
            res.frames = res.frames[:n]
            return res
    if why:
        print(f"warning: {path}: {why}; detecting the grid instead", file=sys.stderr)
    return None


def _check_mode_options(args) -> None:
    """``InvalidArgumentError`` for options the chosen mode would ignore: a sheet made without
    the --json, animations or padding asked for is a surprise found in the game, long after
    the command said it was done."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    given = {
        "--columns": args.columns is not None, "--rows": args.rows is not None, "--cell": args.cell is not None,
        "--padding": args.padding is not None, "--offset": args.offset not in ("0", None),
        "--anchor": args.anchor != "bottom-center", "--trim": args.trim != "auto", "--pow2": args.pow2,
        "--count": args.count is not None, "--animations": args.animations is not None, "--json": args.json is not None,
        "--preview": args.preview is not None, "--preview-scale": args.preview_scale != 4,
        "--spacing": args.spacing != 0, "--margin": args.margin != 0, "--tolerance": args.tolerance != 8.0,
        "--strict": args.strict,
    }
    tileset_only = ("--spacing", "--margin", "--tolerance", "--strict")
    if args.split:
        mode, takes = "--split", ("--columns", "--rows", "--cell", "--padding", "--offset", "--count")
        hint = "split the sheet first, then build a sheet or an export from its frames"
    elif args.tileset:
        mode, takes = "--tileset", ("--columns", "--preview", "--preview-scale") + tileset_only
        hint = "tiles are laid out as they are; use `sheet` without --tileset for a sprite sheet"
    else:
        mode, takes = "a sprite sheet", tuple(k for k in given if k not in tileset_only and k != "--count")
        hint = "--count is for --split; --spacing, --margin, --tolerance and --strict are for --tileset"
    ignored = [k for k, v in given.items() if v and k not in takes]
    if ignored:
        raise InvalidArgumentError(f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to {mode}",
                                   hint=hint)


def run(args) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    from comfy_nodes.pixel.errors import InvalidArgumentError
    from comfy_nodes.pixel.imageio import png_bytes
    from comfy_nodes.pixel.sheet import (
        LAYOUT_KEY,
        build_sheet,
        duration_conflicts,
        format_animations,
        layout_text,
        sheet_preview,
        split_sheet,
    )

    from .outputs import check_not_replacing, check_writable, png_output, write_all, write_output

    _check_mode_options(args)
    cell = parse_size(args.cell, "--cell") if args.cell else None
    padding = parse_pair(args.padding, "--padding")
    offset = parse_pair(args.offset, "--offset") or (0, 0)
    if args.preview_scale < 1 or args.preview_scale > 64:
        raise InvalidArgumentError(f"--preview-scale must be 1..64, got {args.preview_scale}")
    if not 0 <= args.tolerance <= 255:
        raise InvalidArgumentError(f"--tolerance must be 0..255 (colour units), got {args.tolerance:g}")

    if args.split:
        if len(args.inputs) != 1:
            raise InvalidArgumentError("--split takes exactly one sheet image")
        from comfy_nodes.pixel.imageio import load_image

        img = load_image(args.inputs[0])
        grid_given = cell is not None or padding is not None or args.offset is not None \
            or args.columns is not None or args.rows is not None
        res = None if grid_given else split_recorded(args.inputs[0], img, args.count)
        how = "recorded"
        if res is None:
            res = split_sheet(img, cell_size=cell, columns=args.columns, rows=args.rows,
                              padding=padding,
                              offset=offset if args.offset is not None else None, count=args.count)
            how = "detected" if res.detected else "given"
        out = Path(args.output)
        if out.suffix.lower() == ".png":
            raise InvalidArgumentError("with --split, -o names a folder for the frames, not a .png file")
        targets, stale = split_targets(out, len(res.frames))
        sheet_in = [("the input", args.inputs[0])]
        for target in targets:
            check_not_replacing(target, f"-o {args.output}", sheet_in)
            check_writable(target)
        check_not_removing(stale, f"-o {args.output}", sheet_in)
        write_output(out, lambda p: p.mkdir(parents=True, exist_ok=True))
        write_all([(target, png_bytes(f)) for target, f in zip(targets, res.frames)])
        for old in stale:
            # only after every new frame is in place: a failed run leaves the old frames whole
            write_output(old, lambda p: p.unlink(missing_ok=True))
        gone = f"; removed {len(stale)} older frame{'s' if len(stale) != 1 else ''} of an earlier split " \
               f"({stale[0].name}{'..' + stale[-1].name if len(stale) > 1 else ''})" if stale else ""
        print(f"{_frames(len(res.frames))} of {res.cell_w}x{res.cell_h} px ({how} grid: {res.columns}x{res.rows}, "
              f"padding {res.padding[0]},{res.padding[1]}, offset {res.offset[0]},{res.offset[1]}) -> {out}{gone}")
        return 0

    kind = "tileset" if args.tileset else "sheet"
    keep = [("the input", p) for p in expand_inputs(args.inputs)]
    output = png_output(args.output, "-o", f"{kind}.png", keep)
    keep.append((f"the {kind}", output))
    preview_to = png_output(args.preview, "--preview", f"{kind}_preview.png", keep) if args.preview else None
    if args.json:
        check_not_replacing(args.json, f"--json {args.json}", keep + ([("the preview", preview_to)] if preview_to else []))
        check_writable(args.json)
    named = load_named_frames(args.inputs)
    frames = [f for _name, f in named]
    if args.tileset:
        from comfy_nodes.pixel.tileset import build_tileset, check_seamless

        ts = build_tileset(frames, columns=args.columns, spacing=args.spacing, margin=args.margin)
        report = check_seamless(frames, args.tolerance)
        files = [(output, png_bytes(ts.image))]
        if args.preview:
            files.append((preview_to, png_bytes(sheet_preview(ts.image, scale=args.preview_scale, grid=ts.as_sheet()))))
        write_all(files)
        print(f"tileset {ts.image.shape[1]}x{ts.image.shape[0]}: {ts.count} tiles of {ts.tile_w}x{ts.tile_h}, "
              f"{ts.columns} columns, spacing {ts.spacing}, margin {ts.margin} -> {output}")
        print(report.summary())
        return 7 if args.strict and report.failing else 0

    check_union_sizes(named, args.trim)

    timing = None if args.animations else source_timing(args.inputs, len(frames))
    sheet = build_sheet(frames, columns=args.columns, rows=args.rows, cell_size=cell, anchor=args.anchor,
                        trim=args.trim, padding=padding or (0, 0), offset=offset, pow2=args.pow2,
                        animations=timing[0] if timing else args.animations)
    if timing:
        sheet.frame_ms = timing[1]
    wide = empty_columns_warning(args.columns, len(frames))
    if wide:
        print(f"warning: {wide}", file=sys.stderr)
    files = [(output, png_bytes(sheet.image, {LAYOUT_KEY: layout_text(sheet)}))]
    if args.json:
        from comfy_nodes.pixel.bevy_export import atlas_json

        rel = os.path.relpath(os.path.abspath(output), os.path.dirname(os.path.abspath(args.json)))
        doc = atlas_json(sheet, Path(rel).as_posix())
        files.append((Path(args.json), (json.dumps(doc, indent=1) + "\n").encode("utf-8")))
    if args.preview:
        files.append((preview_to, png_bytes(sheet_preview(sheet.image, scale=args.preview_scale, grid=sheet))))
    write_all(files)
    if args.json and not sheet.frame_ms:  # a file's own timing is written frame by frame, nothing is lost
        for w in duration_conflicts(len(sheet.frames), sheet.animations):
            print(f"warning: --json {args.json}: {w}", file=sys.stderr)
    anims = format_animations(sheet.animations)
    print(f"sheet {sheet.width}x{sheet.height}: {_frames(len(sheet.frames))}, {sheet.columns}x{sheet.rows} cells of "
          f"{sheet.cell_w}x{sheet.cell_h}, padding {sheet.padding[0]},{sheet.padding[1]}, "
          f"offset {sheet.offset[0]},{sheet.offset[1]}" + (f"; animations {anims}" if anims else "")
          + f" -> {output}", file=sys.stdout)
    return 0
