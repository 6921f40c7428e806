#!/usr/bin/env python3
"""How well palette mapping and dithering keep an image's colours, on real sprites.

    python bench/palette_quality.py                 # both tables on stdout
    python bench/palette_quality.py --json out.json
    python bench/palette_quality.py --modes bayer4  # dithering: only these modes

The images are the 9 real AI images of ``../shared/bench/real`` (``$DGX_PIXELS_SHARED/bench``),
each snapped to its true resolution, as the Palette Quantize node sees them after Grid Snap;
the mapping table adds the ground truth of snap-dev's first 20 easy cases. Without the shared
folder the script says so and stops.

**Mapping** (no dither), per built-in palette, over every opaque pixel:

* ``hue flipped``: chromatic pixels (OKLab chroma > 0.06) mapped to a chromatic colour more
  than 90 degrees round the hue circle (a dark red turned navy);
* ``greyed``: chromatic pixels (chroma > 0.08) mapped to a grey (chroma < 0.03);
* ``dE00``: mean CIEDE2000 from each pixel to its palette colour.

**Dithering**, per mode, on PICO-8, NES, CGA, DawnBringer 16 and 32, Endesga 32 and Sweetie 16:

* ``specks``: pixels more than 30 CIEDE2000 from their own colour;
* ``mean 3x3`` / ``mean 5x5``: how far the local mean colour (box of that size, CIELAB) is
  from the image's, mean over opaque pixels: what the pattern shows from afar;
* ``pattern``: each output pixel against its 3x3 mean (CIELAB): how busy the pattern is;
* ``ramp``: a grey ramp (256 x 32) on the Game Boy's four greens and on 1-bit: mean OKLab
  lightness error per 16-px band (a palette of other hues must still keep the lightness).

Lower is better everywhere. Deterministic: no randomness, no timing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_nodes.pixel.color import ciede2000, srgb_to_cielab, srgb_to_oklab  # noqa: E402
from comfy_nodes.pixel.grid import snap  # noqa: E402
from comfy_nodes.pixel.imageio import load_image  # noqa: E402
from comfy_nodes.pixel.palette import quantize  # noqa: E402
from comfy_nodes.pixel.palettes_builtin import builtin, list_builtin  # noqa: E402
from palette_bench import _shared  # noqa: E402  (bench/ is this script's folder)

DITHER_PALETTES = ("pico-8", "nes", "cga", "dawnbringer-16", "dawnbringer-32", "endesga-32", "sweetie-16")
MODES = ("none", "bayer4", "bayer8", "floyd-steinberg", "atkinson")
SPECK_DE00 = 30.0


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, edges repeated; a (H, W, C)."""
    from numpy.lib.stride_tricks import sliding_window_view

    p = np.pad(a, ((r, r), (r, r), (0, 0)), mode="edge")
    return sliding_window_view(p, (2 * r + 1, 2 * r + 1), axis=(0, 1)).mean(axis=(-1, -2))


def _chroma_hue(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(lab[..., 1], lab[..., 2]), np.arctan2(lab[..., 2], lab[..., 1])


def mapping_table(sprites: list[np.ndarray]) -> list[dict]:
    px = np.concatenate([s[s[..., 3] > 0][:, :3] for s in sprites]).astype(np.uint8)
    img = np.concatenate([px, np.full((len(px), 1), 255, np.uint8)], axis=1)[None]
    ok, lab = srgb_to_oklab(px), srgb_to_cielab(px)
    c0, h0 = _chroma_hue(ok)
    rows = []
    for name in list_builtin():
        q = quantize(img, builtin(name))[0, :, :3]
        c1, h1 = _chroma_hue(srgb_to_oklab(q))
        turn = np.abs(np.angle(np.exp(1j * (h0 - h1))))
        rows.append({
            "palette": name,
            "hue_flipped_pct": round(100 * float(((c0 > 0.06) & (c1 > 0.04) & (turn > np.pi / 2)).mean()), 2),
            "greyed_pct": round(100 * float(((c0 > 0.08) & (c1 < 0.03)).mean()), 2),
            "mean_de00": round(float(ciede2000(lab, srgb_to_cielab(q)).mean()), 2),
        })
    return rows


def dither_rows(sprites: list[np.ndarray], modes: list[str]) -> list[dict]:
    rows = []
    for mode in modes:
        per = {"specks_pct": [], "mean3": [], "mean5": [], "pattern": []}
        for name in DITHER_PALETTES:
            pal = builtin(name)
            for s in sprites:
                q = quantize(s, pal, dither=mode)
                m = s[..., 3] > 0
                a, b = srgb_to_cielab(s[..., :3]), srgb_to_cielab(q[..., :3])
                per["specks_pct"].append(100 * float((ciede2000(a[m], b[m]) > SPECK_DE00).mean()))
                per["mean3"].append(float(np.linalg.norm(_box_mean(a, 1) - _box_mean(b, 1), axis=-1)[m].mean()))
                per["mean5"].append(float(np.linalg.norm(_box_mean(a, 2) - _box_mean(b, 2), axis=-1)[m].mean()))
                per["pattern"].append(float(np.linalg.norm(b - _box_mean(b, 1), axis=-1)[m].mean()))
        row = {"mode": mode, **{k: round(float(np.mean(v)), 2) for k, v in per.items()}}
        ramp = np.zeros((32, 256, 4), np.uint8)
        ramp[..., :3] = np.arange(256)[None, :, None]
        ramp[..., 3] = 255
        want = srgb_to_oklab(ramp[..., :3])[..., 0].reshape(32, 16, 16).mean(axis=(0, 2))
        for name in ("gameboy", "1bit"):
            got = srgb_to_oklab(quantize(ramp, builtin(name), dither=mode)[..., :3])[..., 0]
            row[f"ramp_{name}"] = round(float(np.abs(want - got.reshape(32, 16, 16).mean(axis=(0, 2))).mean()), 4)
        rows.append(row)
    return rows


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    out = ["| " + " | ".join(t for t, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r[k]) for _, k in cols) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--modes", default=",".join(MODES), help=f"dither modes to score (default {','.join(MODES)})")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    real = _shared() / "real"
    if not real.is_dir():
        print(f"{real} not found: nothing to measure (set DGX_PIXELS_SHARED)")
        return 1
    sprites = [snap(load_image(p)).image for p in sorted(real.glob("*.png"))]
    truths = [load_image(d / "gt.png") for d in sorted((_shared() / "snap-dev" / "cases").glob("*-easy"))[:20]]
    mapping = mapping_table(sprites + truths)
    print(f"## Mapping to built-in palettes, no dither ({len(sprites)} real images snapped, {len(truths)} snap-dev "
          f"sprites)\n")
    print(_table(mapping, [("palette", "palette"), ("hue flipped %", "hue_flipped_pct"), ("greyed %", "greyed_pct"),
                           ("mean dE00", "mean_de00")]))
    dithering = dither_rows(sprites, modes)
    print(f"\n## Dithering, mean over {', '.join(DITHER_PALETTES)} ({len(sprites)} real images snapped)\n")
    print(_table(dithering, [("mode", "mode"), ("specks %", "specks_pct"), ("mean 3x3", "mean3"),
                             ("mean 5x5", "mean5"), ("pattern", "pattern"), ("ramp Game Boy", "ramp_gameboy"),
                             ("ramp 1-bit", "ramp_1bit")]))
    if args.json:
        Path(args.json).write_text(json.dumps({"mapping": mapping, "dithering": dithering}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
