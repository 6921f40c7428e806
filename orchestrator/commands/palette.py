"""``dgx-pixels palette``: list, show, convert and extract palettes.

Top-level imports stay light (argparse only); numpy/Pillow/scikit-learn load inside ``run``.
"""
from __future__ import annotations

import argparse

HELP = "list built-in palettes, show or convert palette files, extract a shared palette from images"
DESCRIPTION = (
    "Palettes are built-in names (pico-8, nes, gameboy, db16, db32, endesga-32, aap-64, sweetie-16, ...; "
    "case and '-'/'_' ignored) or files: .hex (Lospec), .gpl (GIMP), .pal (JASC; RIFF read too), "
    ".txt (Paint.NET, read only) and .png (one pixel or one uniform square per colour). "
    "'list' shows the built-ins with colour counts and sources; 'show' prints a palette as hex; "
    "'convert' rewrites a palette in the format of the output extension; 'extract' builds ONE palette "
    "shared by all given images (animation frames stay consistent) by k-means in OKLab."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="palette_command", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="built-in palettes with colour counts and sources")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sh = sub.add_parser("show", help="print a palette's colours as hex, one per line")
    sh.add_argument("palette", metavar="NAME|FILE", help="built-in name or palette file")
    sh.add_argument("--json", action="store_true", help="print JSON (name, source, colors)")
    cv = sub.add_parser("convert", help="convert a palette (format by output extension)")
    cv.add_argument("input", metavar="IN", help="built-in name or palette file")
    cv.add_argument("output", metavar="OUT", help="file to write: .hex, .gpl, .pal or .png")
    cv.add_argument("--swatch", type=int, default=1, metavar="N", help="PNG output: N x N pixels per colour (default 1)")
    ex = sub.add_parser("extract", help="one shared palette of K colours from one or more images")
    ex.add_argument("images", nargs="+", metavar="IMAGE", help="images or folders of them (e.g. all frames of an animation)")
    ex.add_argument("-k", "--colors", required=True, metavar="K",
                    help="number of colours 1..256, or 'auto' or 0 (the smallest k within the error tolerance, "
                         "at most 64: past that a warning gives the error reached; give a number for more)")
    ex.add_argument("--seed", type=int, default=0, metavar="S", help="k-means seed (default 0; same seed, same palette)")
    ex.add_argument("--tolerance", type=float, default=None, metavar="T",
                    help="with -k auto: largest OKLab distance from any real colour to its palette colour (default "
                         "0.04); when 64 colours do not meet it, 64 are written with a warning")
    ex.add_argument("-o", "--output", required=True, metavar="OUT", help="palette file to write: .hex, .gpl, .pal or .png")
    ex.add_argument("--swatch", type=int, default=1, metavar="N", help="PNG output: N x N pixels per colour (default 1)")


def _check_swatch(n: int) -> int:
    from comfy_nodes.pixel.errors import InvalidArgumentError

    if n < 1 or n > 256:
        raise InvalidArgumentError(f"--swatch must be 1..256 pixels, got {n}")
    return n


def _check_output(output: str, swatch: int) -> None:
    """Refuse, before any work, an output that is a folder, of a format not written, or a
    --swatch that a text format would ignore (an ignored option is a surprise found later)."""
    import os

    from comfy_nodes.pixel import palette_io
    from comfy_nodes.pixel.errors import InvalidArgumentError, PaletteError

    if os.path.isdir(output) or str(output).endswith(("/", os.sep)):
        raise InvalidArgumentError(f"{output} is a folder: the palette is written to a file",
                                   hint=f"name the file, e.g. {os.path.join(output, 'palette.hex')}")
    name = os.path.basename(str(output))
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in palette_io.WRITE_FORMATS:
        raise PaletteError(f"{output}: cannot write palette format {ext or '(no extension)'!r}",
                           hint="use one of: " + ", ".join(palette_io.WRITE_FORMATS))
    if swatch != 1 and ext != ".png":
        raise InvalidArgumentError(f"--swatch applies to a .png palette; {output} is {ext}",
                                   hint="leave out --swatch, or write a .png")


def _parse_k(text: str):
    from comfy_nodes.pixel.errors import InvalidArgumentError

    t = str(text).strip().lower()
    if t in ("auto", "0"):
        return None
    try:
        k = int(t)
    except ValueError:
        raise InvalidArgumentError(f"-k must be a number of colours 1..256 or 'auto', got {text!r}") from None
    if not 1 <= k <= 256:
        raise InvalidArgumentError(f"-k must be 1..256 colours (or 'auto'), got {k}")
    return k


def run(args: argparse.Namespace) -> int:
    import json

    from comfy_nodes.pixel import palette_io, palettes_builtin
    from comfy_nodes.pixel.palette import resolve_palette

    cmd = args.palette_command
    if cmd == "list":
        rows = []
        for name in palettes_builtin.list_builtin():
            pal = palettes_builtin.builtin(name)
            rows.append({"name": name, "colors": len(pal), "aliases": list(palettes_builtin.aliases(name)), "source": pal.source})
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            alias = f" (also: {', '.join(r['aliases'])})" if r["aliases"] else ""
            print(f"{r['name']:<{width}}  {r['colors']:>3}  {r['source']}{alias}")
        return 0
    if cmd == "show":
        pal = resolve_palette(args.palette)
        if args.json:
            print(json.dumps({"name": pal.name, "source": pal.source, "colors": ["#" + h for h in pal.hex_list()]}, indent=2))
        else:
            print(f"# {pal.name}: {len(pal)} colour{'' if len(pal) == 1 else 's'}")
            if pal.source:
                print(f"# {' '.join(pal.source.split())}")
            for h in pal.hex_list():
                print(h)
        return 0
    if cmd == "convert":
        swatch = _check_swatch(args.swatch)
        _check_output(args.output, swatch)
        pal = resolve_palette(args.input)
        out = palette_io.write_palette(pal, args.output, swatch=swatch)
        print(f"wrote {out} ({len(pal)} colour{'' if len(pal) == 1 else 's'})")
        return 0
    if cmd == "extract":
        from comfy_nodes.pixel.imageio import load_frames
        from comfy_nodes.pixel.palette import AUTO_K_TOLERANCE, adaptive_palette

        k = _parse_k(args.colors)
        swatch = _check_swatch(args.swatch)
        from comfy_nodes.pixel.errors import InvalidArgumentError

        if k is not None and args.tolerance is not None:
            raise InvalidArgumentError("--tolerance applies with -k auto, which picks the number of colours",
                                       hint=f"drop --tolerance, or use -k auto instead of -k {k}")
        if args.tolerance is not None and not args.tolerance > 0:
            raise InvalidArgumentError(f"--tolerance must be > 0 (an OKLab distance), got {args.tolerance:g}")
        if not 0 <= args.seed < 2**32:
            raise InvalidArgumentError(f"--seed must be an integer 0..{2**32 - 1}, got {args.seed}")
        _check_output(args.output, swatch)
        from .outputs import check_not_replacing, check_writable
        from .sheet import expand_inputs

        images = expand_inputs(args.images)  # a folder of frames, as snap, sheet and export take
        check_not_replacing(args.output, f"-o {args.output}", [("the input", p) for p in images])
        check_writable(args.output)
        # every frame of an animated file: its later frames may hold colours the first lacks
        frames = [f for p in images for f in load_frames(p)]
        if not any((f[..., 3] >= 128).any() for f in frames):
            from comfy_nodes.pixel.errors import InputImageError

            raise InputImageError(f"{', '.join(args.images)}: no opaque pixels to build a palette from "
                                  f"({'it is' if len(args.images) == 1 else 'they are'} fully transparent)",
                                  hint="give images with visible pixels")
        tol = AUTO_K_TOLERANCE if args.tolerance is None else args.tolerance
        pal = adaptive_palette(frames, k, seed=args.seed, tolerance=tol, name=_stem(args.output))
        out = palette_io.write_palette(pal, args.output, swatch=swatch)
        print(f"wrote {out} ({len(pal)} colour{'' if len(pal) == 1 else 's'} from {len(frames)} image{'' if len(frames) == 1 else 's'})")
        if pal.auto_k is not None and pal.auto_k.capped:
            # the palette is written (the best of the cap), but it is not what --tolerance asked for
            import sys

            a = pal.auto_k
            print(f"warning: -k auto stopped at its cap of {a.max_k} colours without meeting --tolerance {a.tolerance:g}: "
                  f"a colour of the images is still {a.error:.4f} OKLab from its palette colour; give -k N (up to 256) "
                  f"for more colours, or a larger --tolerance", file=sys.stderr)
        return 0
    raise AssertionError(cmd)


def _stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem
