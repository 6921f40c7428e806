"""``dgx-pixels deploy``: put a local image into a Bevy project with a provenance record."""
from __future__ import annotations

import argparse

HELP = "deploy a local image into a Bevy project's assets/ (with .meta and a provenance record)"

DESCRIPTION = """\
Deploy FILE into PROJECT/assets/ASSET_PATH through the export transaction (confined to
assets/, written atomically, .meta first, manifest entry). The provenance record holds the
file's sha256 and, for a PNG saved by ComfyUI, the seed and model names of its embedded
prompt; --provenance adds your own JSON fields. `dgx-pixels history` lists the records.
FILE is one still image: an animated GIF, APNG or WebP is refused (`dgx-pixels export` lays its
frames out as a sprite sheet). --overwrite replace (the default) replaces only an asset that
dgx-pixels deployed and that is still as it wrote it.

exit codes: 0 deployed, 2 bad arguments or image (a missing project folder too, an animation,
FILE being the asset itself, an asset path that is no .png), 6 refused (a path that escapes assets/, a folder
that is not the game's, the asset exists with --overwrite fail, or with --overwrite replace a
file there that dgx-pixels did not write or that was edited since).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", metavar="FILE", help="image file (PNG, JPEG, WebP)")
    p.add_argument("--bevy", required=True, metavar="PROJECT", help="Bevy project folder (holds Cargo.toml and assets/)")
    p.add_argument("--asset-path", required=True, metavar="PATH", help="path under assets/, e.g. sprites/knight.png")
    p.add_argument("--overwrite", choices=("replace", "keep", "version", "fail"), default="replace",
                   help="when the asset exists (default replace: only an asset dgx-pixels wrote, unedited since)")
    p.add_argument("--upscale", type=int, default=1, metavar="N", help="enlarge by a whole factor (default 1)")
    p.add_argument("--bevy-version", default="auto", metavar="0.N", help="Bevy version for the .meta (default: from Cargo.toml)")
    p.add_argument("--provenance", metavar="JSON", help="extra provenance fields as a JSON object")
    p.add_argument("--json", action="store_true", help="print the deployed asset as JSON")


def run(args) -> int:
    import json

    from orchestrator.deploy import deploy_file, parse_provenance_option

    extra = parse_provenance_option(args.provenance) if args.provenance else None
    d = deploy_file(args.file, args.bevy, args.asset_path, overwrite=args.overwrite, upscale=args.upscale,
                    bevy_version=args.bevy_version, provenance=extra)
    if args.json:
        print(json.dumps(d.to_json()))
    else:
        print(f"{d.asset_path}\t{d.path}" + ("\t(kept existing)" if d.skipped else ""))
    return 0
