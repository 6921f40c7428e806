"""``dgx-pixels export``: put a sprite or a sheet into a Bevy project, ready to load.

Top-level imports stay light (argparse only); numpy/Pillow load inside ``run``.
"""
from __future__ import annotations

import argparse

from .sheet import add_grid_arguments

#: What bevy_asset_loader's standard dynamic asset collections load by default.
RON_SUFFIX = ".assets.ron"

HELP = "export a sprite or frames into a Bevy project (PNG + .meta + atlas JSON + Rust snippet)"
DESCRIPTION = (
    "Write IMAGE (one sprite) or FRAMES (laid out as a sprite sheet) into PROJECT/assets/PATH with a "
    ".png.meta (nearest sampler) in the format of the project's Bevy version (read from Cargo.toml or "
    "Cargo.lock, 0.12 to 0.19), an Aseprite-style atlas JSON, optional bevy_asset_loader entries and a "
    "manifest entry in assets/.dgx-pixels/manifest.json. Prints Rust code that loads the sheet and plays "
    "its animations. Paths stay inside PROJECT/assets: '..', absolute paths and symlinks leading out are refused."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FRAMES", help="one image, several frames, or folders of frames")
    p.add_argument("--bevy", required=True, metavar="PROJECT", help="the Bevy project folder (holds Cargo.toml and assets/)")
    p.add_argument("--path", "--asset-path", dest="path", required=True, metavar="ASSET_PATH",
                   help="path inside assets/, e.g. sprites/knight.png (--asset-path, as deploy and run call it, works too)")
    p.add_argument("--bevy-version", default="auto", metavar="V", help="auto (default: from Cargo.toml/Cargo.lock) or 0.12 ... 0.19")
    p.add_argument("--overwrite", default="fail", choices=("fail", "replace", "keep", "version"),
                   help="when the asset exists: fail (default), replace, keep (write nothing) or version (knight-2.png)")
    p.add_argument("--upscale", type=int, default=1, metavar="N", help="whole-number nearest enlargement of the PNG (default 1)")
    p.add_argument("--assets-dir", default="assets", metavar="DIR",
                   help="the project's asset folder (default assets); a symlink below the project's top folder "
                        "leading out of it is refused")
    g = p.add_argument_group("sheet (several frames, or one sheet image: with --sheet-cell/--detect-grid, or made by "
                             "'dgx-pixels sheet', whose PNG records its grid)")
    g.add_argument("--animations", metavar="SPEC", help="named animations, e.g. 'idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong'")
    add_grid_arguments(g)
    g.add_argument("--sheet-cell", metavar="WxH", help="the single input is already a sheet with this cell size")
    g.add_argument("--detect-grid", action="store_true",
                   help="the single input is already a sheet: find its grid (and its margin, unless --offset is given)")
    g.add_argument("--tile-array", action="store_true",
                   help="tileset for Bevy's TilemapChunk: the .meta loads one array layer per cell (Bevy 0.18+); "
                        "tiles keep their size (--trim defaults to none here; an explicit --trim is honoured)")
    o = p.add_argument_group("outputs")
    o.add_argument("--no-atlas", action="store_true", help="do not write the atlas JSON")
    o.add_argument("--assets-ron", nargs="?", const=True, default=False, metavar="FILE",
                   help="write bevy_asset_loader entries: NAME.assets.ron next to the PNG, or merge into FILE "
                        f"(relative to assets/). bevy_asset_loader loads only *{RON_SUFFIX} files unless the game "
                        "sets other endings (LoadingState::set_standard_dynamic_asset_collection_file_endings), "
                        "so any other .ron name is written with a warning")
    o.add_argument("--no-snippet", action="store_true", help="do not print the Rust snippet")
    o.add_argument("--json", action="store_true", help="print the result (files, version, snippet) as JSON")
    o.add_argument("--provenance", metavar="JSON", help="JSON object stored with the manifest entry (workflow, seed...)")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from comfy_nodes.pixel.bevy_export import export_asset, export_sheet
    from comfy_nodes.pixel.sheet import build_sheet, duration_conflicts, sheet_from_image, sheet_from_layout
    from orchestrator.deploy import check_not_onto_itself, parse_provenance_option

    from .sheet import (
        check_union_sizes,
        empty_columns_warning,
        load_named_frames,
        parse_pair,
        parse_size,
        source_timing,
    )

    from .sheet import expand_inputs

    for source in expand_inputs(args.inputs):
        # exported onto itself, an asset is rewritten from itself: --upscale compounds on each run
        check_not_onto_itself(source, args.bevy, args.path, args.assets_dir)
    provenance = parse_provenance_option(args.provenance) if args.provenance else None
    provenance = {"source": _sources(args.inputs), **(provenance or {})}
    named = load_named_frames(args.inputs)
    frames = [f for _name, f in named]
    recorded = _recorded_grid(named, args)
    _check_sheet_options(args, len(frames), recorded is not None)
    common = dict(bevy_version=args.bevy_version, overwrite=args.overwrite, upscale=args.upscale,
                  assets_ron=args.assets_ron, provenance=provenance, assets_dir=args.assets_dir)
    project = Path(args.bevy)
    cell = parse_size(args.cell, "--cell") if args.cell else None
    padding = parse_pair(args.padding, "--padding") or (0, 0)
    offset = parse_pair(args.offset, "--offset") or (0, 0)
    if recorded is not None:
        # a sheet made here records its grid: exact, where detection needs empty gutters, and
        # exported as one sprite it would reach the game without its atlas
        sheet = sheet_from_layout(frames[0], recorded, args.animations)
        print(f"{named[0][0]}: a sheet of {recorded.frames} frame{'s' if recorded.frames != 1 else ''} "
              f"({recorded.columns}x{recorded.rows} cells of {recorded.cell_w}x{recorded.cell_h}), on the grid "
              "it records", file=sys.stderr)
        result = export_sheet(project, args.path, sheet, atlas=not args.no_atlas, tile_array=args.tile_array, **common)
    elif len(frames) == 1 and (args.sheet_cell or args.detect_grid):
        from comfy_nodes.pixel.errors import NoGridFoundError

        try:
            sheet = sheet_from_image(frames[0], cell_size=parse_size(args.sheet_cell, "--sheet-cell") if args.sheet_cell else None,
                                     columns=args.columns, rows=args.rows,
                                     padding=parse_pair(args.padding, "--padding") if args.padding else (0 if args.sheet_cell else None),
                                     offset=offset if args.offset is not None or args.sheet_cell else None,
                                     animations=args.animations)
        except NoGridFoundError as exc:
            # the core's hint names no option; --cell here lays frames out, it does not cut a sheet
            raise NoGridFoundError(exc.message, hint="give the sheet's cell size with --sheet-cell WxH (and its "
                                                     "--padding / --offset), or its --columns and --rows") from None
        result = export_sheet(project, args.path, sheet, atlas=not args.no_atlas, tile_array=args.tile_array, **common)
    elif len(frames) == 1 and not args.animations:
        sheet = None
        result = export_asset(project, args.path, frames[0], **common)
    else:
        # a tile array's layers are the map's tiles: trimmed to their visible pixels, 16x16 tiles with
        # a transparent border became 10x12 layers that no longer fill their grid squares
        trim = "none" if args.tile_array and args.trim == "auto" else args.trim
        check_union_sizes(named, trim)
        timing = None if args.animations else source_timing(args.inputs, len(frames))
        columns = args.columns
        if args.tile_array and columns is None and args.rows is None and _bevy_minor(project, args.bevy_version) == 18:
            columns = 1  # Bevy 0.18's .meta stacks the array's layers in one column
        sheet = build_sheet(frames, columns=columns, rows=args.rows, cell_size=cell, anchor=args.anchor,
                            trim=trim, padding=padding, offset=offset, pow2=args.pow2,
                            animations=timing[0] if timing else args.animations)
        if timing:
            sheet.frame_ms = timing[1]
        result = export_sheet(project, args.path, sheet, atlas=not args.no_atlas, tile_array=args.tile_array, **common)

    warnings = _ron_name_warnings(args.assets_ron)
    if sheet is not None and recorded is None and not (args.sheet_cell or args.detect_grid):
        warnings += [w for w in [empty_columns_warning(args.columns, len(frames))] if w]
    if sheet is not None and not sheet.frame_ms and not args.no_atlas:
        # the atlas JSON holds one duration per frame (a file's own timing is written as it is)
        warnings += duration_conflicts(len(sheet.frames), sheet.animations)
    if args.json:
        doc = {
            "asset_path": result.asset_path,
            "skipped": result.skipped,
            "message": result.message,
            "bevy_version": result.bevy.short,
            "bevy_version_source": result.bevy.source,
            "width": result.width,
            "height": result.height,
            "files": [{"path": str(f.path), "asset_path": f.asset_path, "kind": f.kind, "size": f.size,
                       "sha256": f.sha256} for f in result.files],
            "snippet": result.snippet,
            "warnings": warnings,
        }
        print(json.dumps(doc, indent=2))
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        return 0
    print(result.summary(), file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not result.skipped and not args.no_snippet:
        print(result.snippet)
    return 0


def _bevy_minor(project, bevy_version: str) -> int | None:
    """The project's Bevy minor version, or None when it cannot be told (the export names why)."""
    from comfy_nodes.pixel.bevy_export import resolve_bevy_version
    from comfy_nodes.pixel.errors import DgxPixelsError

    try:
        return resolve_bevy_version(project, bevy_version).minor
    except (DgxPixelsError, OSError):
        return None


def _ron_name_warnings(assets_ron: bool | str) -> list[str]:
    """A warning for an ``--assets-ron FILE`` the game's loader will not pick up by default.

    Not an error: a game that configured other endings (``.ron``, ``.my-assets.ron``) loads
    it, and nothing this command sees says which endings the game configured."""
    if not isinstance(assets_ron, str) or not assets_ron.strip() or assets_ron.strip().endswith(RON_SUFFIX):
        return []
    name = assets_ron.strip()
    stem = name.rsplit("/", 1)[-1].removesuffix(".ron") or "sprites"
    return [f"--assets-ron {name!r} does not end in {RON_SUFFIX}: bevy_asset_loader's standard dynamic assets "
            f"load only *{RON_SUFFIX} files by default, so the game will not find these entries unless it sets "
            f"LoadingState::set_standard_dynamic_asset_collection_file_endings; name it e.g. {stem}{RON_SUFFIX}"]


def _sources(inputs: list[str]) -> dict:
    """Where an exported asset came from, for its manifest entry (``history`` shows ``file``):
    the input given (a file, or a folder of frames) or the first of several, and every image
    file with its sha256."""
    import hashlib
    from pathlib import Path

    from .sheet import expand_inputs

    files = [Path(p).resolve() for p in expand_inputs(inputs)]
    shown = str(Path(inputs[0]).resolve()) + (f" (+{len(inputs) - 1} more)" if len(inputs) > 1 else "")
    return {"file": shown, "tool": "dgx-pixels export",
            "files": [{"file": str(f), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in files]}


def _recorded_grid(named: list, args):
    """The grid a single sheet PNG made here records (``sheet.LAYOUT_KEY``), when no option
    gives the sheet's grid another way; None otherwise. A record that no longer fits the image
    is said, and the image is taken as the options say."""
    import sys

    from comfy_nodes.pixel.imageio import png_text
    from comfy_nodes.pixel.sheet import recorded_layout

    if len(named) != 1 or args.sheet_cell or any(v is not None for v in (args.columns, args.rows, args.padding)) \
            or args.offset not in ("0", None):
        return None
    path, img = named[0]
    if not str(path).lower().endswith(".png"):
        return None
    layout, why = recorded_layout(png_text(path), img.shape[1], img.shape[0])
    if why:
        print(f"warning: {path}: {why}; not used", file=sys.stderr)
    return layout


def _check_sheet_options(args, n_frames: int, recorded: bool = False) -> None:
    """``InvalidArgumentError`` for options the export would ignore: the sheet options for a
    single sprite, the options that lay frames out for an image that is a sheet already, the
    options that cut a sheet image for several frames. An ignored option is a surprise found
    in the game, long after the command said it was done."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    if args.sheet_cell and args.detect_grid:
        raise InvalidArgumentError("give --sheet-cell or --detect-grid, not both",
                                   hint="--sheet-cell when you know the cell size, --detect-grid to find it")
    layout = {"--cell": args.cell, "--anchor": args.anchor != "bottom-center", "--trim": args.trim != "auto",
              "--pow2": args.pow2}
    grid = {"--columns": args.columns, "--rows": args.rows, "--padding": args.padding,
            "--offset": args.offset not in ("0", None), "--tile-array": args.tile_array}
    cut = args.sheet_cell or args.detect_grid or recorded
    if n_frames > 1 and cut:
        raise InvalidArgumentError(f"--sheet-cell and --detect-grid cut one sheet image; these are {n_frames} frames",
                                   hint="give the frames' cell with --cell, or export the sheet image alone")
    if n_frames == 1 and cut:
        given = [k for k, v in layout.items() if v]
        if given:
            raise InvalidArgumentError(f"{', '.join(given)} lay frames out, and this image is a sheet already",
                                       hint="give the sheet's own grid with --sheet-cell, --columns, --rows, --padding, --offset")
    elif n_frames == 1 and not args.animations:
        given = [k for k, v in {**layout, **grid}.items() if v]
        if given:
            raise InvalidArgumentError(f"{', '.join(given)} apply to sheets, and this is one sprite",
                                       hint="give several frames, --animations, or --sheet-cell / --detect-grid "
                                            "for an image that is a sheet")
