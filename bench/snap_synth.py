#!/usr/bin/env python3
"""Grid snap on generated cases that are not the shared benchmark's: a generalisation check.

    python bench/snap_synth.py [--cases 200] [--seed 0] [--family sprites|strips|tiles|textures|drawn-grid|resampled|warp|small-cells|non-square|scenes]
                               [--json OUT]

Each case places one of the project's hand-drawn sample sprites (``orchestrator.samples``) on a
transparent canvas with random margins (0-12 cells a side, so canvas sizes are mostly *not*
multiples of 8), and renders it with ``samples.degrade``: cells 6-16 px, non-square by up to
+-6 %, boundary jitter up to 2 px, blur, noise and JPEG. The generator, the sprites and the
canvas sizes all differ from snap-dev's, so a method fitted to snap-dev shows it here.

``--family strips`` draws a band of art 8-20 cells tall (random colours in runs, as a texture or
a sky is) across the whole width, over or under 16-40 flat rows: one axis then has a long sure
lattice and the other a short band whose flat rest only the measured cell size can count.

``--family tiles`` fills the whole canvas (16-64 cells a side, cells 8-20 px) with blocks of 8x8
cells in six random colours, half of them checkerboard-dithered with the next colour: dithering,
and colours only a little apart, as shading ramps are.

``--family textures`` fills the whole canvas (90-130 x 20-40 cells) with runs of ten random
colours, as a texture or a sky is, on cells of 6.2-7.2 px with +-2 px jitter (the hardest
regime of wide strips: two neighbouring lines can lie 1.7 periods apart).

``--family drawn-grid`` is the sprites family on cells of 10-20 px with a faint grid drawn over
the art at every half cell (1 px lines 12-40 levels darker), as some AI images draw inside their
pseudo pixels: the finer lattice must not be taken for the grid.

``--family resampled`` is the sprites family on a flat colour, enlarged 10-20 times by bicubic,
Lanczos or bilinear resampling (no jitter, noise or JPEG): pixel art as an image editor or a
viewer enlarges it, whose filters draw every edge as a ramp a cell wide, ringing or not.

``--family warp`` is the sprites family on a grid that is not a lattice, as the warp level of the
shared benchmark and much real diffusion output draw it: the cell size drifts 4-8 % across the
image, the lines bend by 0.3-0.5 cell (lowest to highest) in a smooth wave, and an axis may have
one cell drawn 1.3-1.5x wide (``samples.degrade``'s drift, bend and wide).

``--family small-cells`` is the sprites family on cells of 2.8-4.5 px with a light blur (0.3-0.7 px),
noise and JPEG (85-95), as a sprite enlarged 3-4 times by a viewer and saved as JPEG is: span-3 edges
have no phase on cells of 3 px, so these cells are read on pixel-to-pixel edges.

``--family non-square`` is the sprites family on cells 1-2 times as tall as wide or as wide as
tall (the shorter side 6-14 px): art drawn with wide or tall pixels, or an image stretched to
another aspect ratio. Each axis keeps its own period where that explains the colours better
than the square cells pseudo pixels usually have.

``--family scenes`` scatters 8-30 of the sample sprites over a canvas of 120-259 cells a side, on
one flat colour (an item sheet) or on colour runs (a scene), drawn on cells of 3-5.5 px (images of up
to 1100 px): large art on fine pseudo pixels, whose flat stretches between the sprites have only the
measured cell size to count them by; the figures are also given per backdrop.

``--cutout FILL`` (sprites, drawn-grid, resampled and warp families) hands every case over as a
background remover would (``samples.cut_out``: a soft matte keyed on the background, FILL under
alpha 0: stored, black, white or random); the truth then keeps its transparency, and colour is
scored as the share of canvas pixels that are transparent in both or opaque in both and within
24 levels.

Every case is snapped twice, with the multiple-of-8 border tie-break on (the default) and off,
and scored on size (exact, within 1) and colour (share of the canvas' opaque pixels within 24
levels per channel; "solved" = size exact and that share >= 0.95). In process, one thread.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comfy_nodes.pixel import grid as G  # noqa: E402
from comfy_nodes.pixel.errors import DgxPixelsError  # noqa: E402
from orchestrator import samples  # noqa: E402


def make_case(rng: np.random.Generator, seed: int, style: str = "diffusion") -> tuple[np.ndarray, np.ndarray, dict]:
    """One generated case: (pseudo-pixel image, true canvas RGBA, parameters).

    ``style``: ``"diffusion"`` (``samples.degrade``), ``"drawn-grid"`` (the same with a faint
    grid drawn at every half cell), ``"warp"`` (the same on a grid that drifts and bends) or
    ``"resampled"`` (the canvas enlarged by a resampling filter, bicubic, Lanczos or bilinear,
    with no jitter, noise or JPEG: pixel art as an image editor enlarges it) or ``"small-cells"``
    (cells of 2.8-4.5 px, lightly blurred)."""
    sprite = list(samples.sprites().values())[int(rng.integers(4))]
    sprite = np.rot90(sprite, int(rng.integers(4)))
    m = [int(v) if rng.random() > 0.25 else 0 for v in rng.integers(0, 13, 4)]  # left, right, top, bottom
    h, w = sprite.shape[:2]
    canvas = np.zeros((h + m[2] + m[3], w + m[0] + m[1], 4), np.uint8)
    canvas[m[2]:m[2] + h, m[0]:m[0] + w] = sprite
    # drawn half-cell grids and editor enlargements come with large cells (a grid drawn at
    # 3 px halves would be a texture)
    lo, hi = {"diffusion": (6.0, 16.0), "warp": (6.0, 16.0), "small-cells": (2.8, 4.5), "non-square": (6.0, 16.0)}.get(style, (10.0, 20.0))
    cell = float(rng.uniform(lo, hi))
    cell_h = cell * float(rng.uniform(0.94, 1.06))
    bg = tuple(int(v) for v in rng.integers(40, 230, 3))
    if style == "resampled":
        image, params = _resample(canvas, rng, seed, cell, bg)
    elif style == "warp":
        warp = {"drift": round(float(rng.uniform(0.04, 0.08)), 3), "bend": round(float(rng.uniform(0.3, 0.5)), 3),
                "wide": int(rng.integers(0, 2))}
        image, params = _render(canvas, rng, seed, cell, cell_h, bg, (0.9,), warp=warp)
    elif style == "small-cells":
        image, params = _render(canvas, rng, seed, cell, cell_h, bg, (0.0, 0.5), blur=(0.3, 0.7), jpeg=(85, 96))
        params["family"] = "small-cells"
    elif style == "non-square":
        # the shorter side 6-14 px, the other 1-2 times it, either way round
        ratio = float(np.exp(rng.uniform(-np.log(2.0), np.log(2.0))))
        short = float(rng.uniform(6.0, 14.0))
        cell, cell_h = (short, short * ratio) if ratio >= 1.0 else (short / ratio, short)
        image, params = _render(canvas, rng, seed, cell, cell_h, bg, (0.9, 1.5))
        params["family"] = "non-square"
    else:
        image, params = _render(canvas, rng, seed, cell, cell_h, bg, (0.9, 1.5, 2.0),
                                drawn_grid=style == "drawn-grid")
    params.update(canvas=[canvas.shape[1], canvas.shape[0]], margins=m)
    # the truth is the whole canvas: its transparent cells are background colour, to be found
    # too (a cut-out run restores their transparency)
    truth = canvas.copy()
    truth[truth[..., 3] == 0, :3] = bg
    params["transparent"] = truth[..., 3] == 0
    truth[..., 3] = 255
    return image, truth, params


def _resample(canvas: np.ndarray, rng: np.random.Generator, seed: int, cell: float,
              bg: tuple[int, int, int]) -> tuple[np.ndarray, dict]:
    """``canvas`` on ``bg``, enlarged ``cell`` times (square cells) by bicubic, Lanczos or bilinear."""
    from PIL import Image

    name = str(rng.choice(["bicubic", "lanczos", "bilinear"]))
    flat = Image.new("RGBA", (canvas.shape[1], canvas.shape[0]), bg + (255,))
    comp = Image.alpha_composite(flat, Image.fromarray(canvas)).convert("RGB")
    size = (int(round(canvas.shape[1] * cell)), int(round(canvas.shape[0] * cell)))
    image = np.asarray(comp.resize(size, {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR}[name]))
    return image, {"seed": seed, "cell": round(cell, 3), "cell_h": round(cell, 3), "resample": name,
                   "background": bg, "family": "resampled"}


def make_strip_case(rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One generated strip case: a band of art across the width over or under flat rows."""
    band, flat, w = int(rng.integers(8, 21)), int(rng.integers(16, 41)), int(rng.integers(48, 129))
    art = samples.colour_runs(rng, w, band, colours=12, repeat=0.4)
    bg = tuple(int(v) for v in rng.integers(40, 230, 3))
    canvas = np.zeros((band + flat, w, 4), np.uint8)
    canvas[..., :3] = bg
    canvas[..., 3] = 255
    top = bool(rng.random() < 0.5)
    rows = slice(0, band) if top else slice(flat, flat + band)
    canvas[rows, :, :3] = art
    cell = float(rng.uniform(6.0, 13.0))
    cell_h = cell * float(rng.uniform(0.95, 1.05))
    image, params = _render(canvas, rng, seed, cell, cell_h, bg, (0.0, 0.9, 1.5, 2.0))
    params.update(family="strips", canvas=[w, band + flat], band=band, art_on_top=top)
    return image, canvas, params


def make_texture_case(rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One generated texture case: colour runs over the whole canvas, small heavily jittered cells."""
    w, h = int(rng.integers(90, 131)), int(rng.integers(20, 41))
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = samples.colour_runs(rng, w, h)
    canvas[..., 3] = 255
    cell = float(rng.uniform(6.2, 7.2))
    cell_h = cell * float(rng.uniform(0.97, 1.03))
    image, params = _render(canvas, rng, seed, cell, cell_h, (0, 0, 0), (2.0,))
    params.update(family="textures", canvas=[w, h])
    return image, canvas, params


def make_tile_case(rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One generated tile case: art over the whole canvas in blocks of 8x8 cells of six random
    colours, half of the blocks checkerboard-dithered with the next colour (random colours
    are sometimes only a little apart: a shading ramp)."""
    w, h = int(rng.integers(16, 65)), int(rng.integers(16, 65))
    colours = rng.integers(0, 256, (6, 3))
    blocks = rng.integers(0, 6, (h // 8 + 1, w // 8 + 1))
    idx = np.kron(blocks, np.ones((8, 8), int))[:h, :w]
    yy, xx = np.mgrid[:h, :w]
    dithered = np.kron(rng.random(blocks.shape) < 0.5, np.ones((8, 8), bool))[:h, :w] & ((xx + yy) % 2 == 1)
    idx = np.where(dithered, (idx + 1) % 6, idx)
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = colours[idx]
    canvas[..., 3] = 255
    cell = float(rng.uniform(8.0, 20.0))
    cell_h = cell * float(rng.uniform(0.95, 1.05))
    image, params = _render(canvas, rng, seed, cell, cell_h, (0, 0, 0), (0.9, 1.5, 2.0))
    params.update(family="tiles", canvas=[w, h])
    return image, canvas, params


def make_scene_case(rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One generated scene case: 8-30 of the sample sprites scattered over a canvas of 120-259
    cells a side, on one flat colour (an item sheet) or on colour runs (a scene), drawn on
    small cells (3-5.5 px, the image at most 1100 px a side): a large piece of art on fine
    pseudo pixels, with long flat stretches between the sprites on the flat backdrops."""
    sprites = list(samples.sprites().values())
    w, h = int(rng.integers(120, 260)), int(rng.integers(120, 260))
    cell = min(float(rng.uniform(3.0, 5.5)), 1100.0 / max(w, h))
    bg = tuple(int(v) for v in rng.integers(40, 230, 3))
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = bg
    canvas[..., 3] = 255
    textured = bool(rng.random() < 0.5)
    if textured:
        canvas[..., :3] = samples.colour_runs(rng, w, h)
    for _ in range(int(rng.integers(8, 31))):
        s = sprites[int(rng.integers(len(sprites)))]
        y, x = int(rng.integers(0, h - s.shape[0])), int(rng.integers(0, w - s.shape[1]))
        region = canvas[y : y + s.shape[0], x : x + s.shape[1]]
        region[...] = np.where(s[..., 3:4] > 0, s, region)
    image, params = _render(canvas, rng, seed, cell, cell, bg, (0.4, 0.7, 1.0), blur=(0.5, 1.0), jpeg=(85, 96))
    params.update(family="scenes", canvas=[w, h], backdrop="runs" if textured else "flat")
    return image, canvas, params


def _render(canvas: np.ndarray, rng: np.random.Generator, seed: int, cell: float, cell_h: float,
            bg: tuple[int, int, int], jitters: tuple[float, ...], drawn_grid: bool = False,
            warp: dict | None = None, blur: tuple[float, float] = (0.6, 1.3),
            jpeg: tuple[int, int] = (70, 93)) -> tuple[np.ndarray, dict]:
    """``canvas`` as pseudo pixel art (``samples.degrade``) with a random jitter (one of
    ``jitters``), blur (px, drawn from the range ``blur``), noise and JPEG quality (from the range
    ``jpeg``, upper bound excluded); returns the image and its parameters.
    ``warp``: ``samples.degrade``'s drift, bend and wide-cell arguments.

    ``drawn_grid``: some AI images draw a faint grid of their own inside the pseudo pixels;
    here 1 px lines 12-40 levels darker on every cell boundary and half way between, over the
    art's cells."""
    params = {"seed": seed, "cell": round(cell, 3), "cell_h": round(cell_h, 3),
              "jitter": float(rng.choice(jitters)), "blur": round(float(rng.uniform(*blur)), 2),
              "noise": round(float(rng.uniform(2.0, 6.0)), 2), "jpeg": int(rng.integers(*jpeg)), "background": bg}
    d = samples.degrade(canvas, cell=cell, cell_h=cell_h, jitter=params["jitter"], seed=seed, background=bg,
                        blur=params["blur"], noise=params["noise"], jpeg_quality=params["jpeg"], pad=0, **(warp or {}))
    if warp:
        params.update(family="warp", **warp)
    if not drawn_grid:
        return d.image, params
    dark = int(rng.integers(12, 41))
    img = d.image.astype(np.int16)
    h, w = img.shape[:2]
    # drawn over the art only, as AI images do: the background stays plain
    xi = np.clip(np.searchsorted(d.x_lines, np.arange(w), side="right") - 1, 0, canvas.shape[1] - 1)
    yi = np.clip(np.searchsorted(d.y_lines, np.arange(h), side="right") - 1, 0, canvas.shape[0] - 1)
    art = canvas[yi[:, None], xi[None, :], 3] > 0
    drawn = np.zeros((h, w), bool)
    for lines, axis in ((d.x_lines, 1), (d.y_lines, 0)):
        at = np.round(np.concatenate([lines, 0.5 * (lines[:-1] + lines[1:])])).astype(int)
        at = at[(at >= 0) & (at < img.shape[axis])]
        if axis == 1:
            drawn[:, at] = True
        else:
            drawn[at] = True
    img[drawn & art] -= dark
    params.update(family="drawn-grid", drawn_grid_dark=dark)
    return np.clip(img, 0, 255).astype(np.uint8), params


def _cut_out(img: np.ndarray, truth: np.ndarray, params: dict, fill: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """A case as a background remover hands it over, and its truth with its transparency."""
    cut = samples.cut_out(img, params["background"], noise=params.get("noise", 2.0), fill=fill)
    truth = truth.copy()
    truth[params["transparent"]] = 0
    return cut, truth, dict(params, cutout=fill)


def score(img: np.ndarray, truth: np.ndarray) -> dict:
    """Size and colour figures of one snap result against the true canvas."""
    th, tw = truth.shape[:2]
    oh, ow = img.shape[:2]
    rec = {"size": [ow, oh], "size_exact": (ow, oh) == (tw, th), "size_pm1": abs(ow - tw) <= 1 and abs(oh - th) <= 1}
    if rec["size_exact"]:
        diff = np.abs(img[..., :3].astype(int) - truth[..., :3].astype(int)).max(axis=-1)
        seen, want = img[..., 3] > 0, truth[..., 3] > 0
        rec["acc"] = float(np.mean(np.where(want, seen & (diff <= 24), ~seen)))
    else:
        rec["acc"] = 0.0
    rec["solved"] = bool(rec["size_exact"] and rec["acc"] >= 0.95)
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", choices=("sprites", "strips", "tiles", "textures", "drawn-grid", "resampled", "warp",
                                           "small-cells", "non-square", "scenes"), default="sprites")
    ap.add_argument("--cutout", choices=("stored", "black", "white", "random"))
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.cutout and a.family not in ("sprites", "drawn-grid", "resampled", "warp"):
        ap.error("--cutout needs a family of sprites on a background (sprites, drawn-grid, resampled, warp)")
    rng = np.random.default_rng(a.seed)
    make = {"sprites": make_case, "strips": make_strip_case, "tiles": make_tile_case, "textures": make_texture_case,
            "drawn-grid": lambda rng, seed: make_case(rng, seed, style="drawn-grid"),
            "resampled": lambda rng, seed: make_case(rng, seed, style="resampled"),
            "warp": lambda rng, seed: make_case(rng, seed, style="warp"),
            "small-cells": lambda rng, seed: make_case(rng, seed, style="small-cells"),
            "non-square": lambda rng, seed: make_case(rng, seed, style="non-square"),
            "scenes": make_scene_case}[a.family]
    cases = [make(rng, a.seed * 100003 + i) for i in range(a.cases)]
    if a.cutout:
        cases = [_cut_out(img, truth, params, a.cutout) for img, truth, params in cases]
    for _, _, params in cases:
        params.pop("transparent", None)
    default_multiple = G.SIZE_PRIOR_MULTIPLE
    rows = []
    for prior in (default_multiple, 0):
        G.SIZE_PRIOR_MULTIPLE = prior
        for img, truth, params in cases:
            t0 = time.process_time()
            try:
                rec = score(G.snap(img).image, truth)
            except DgxPixelsError as exc:
                rec = {"size_exact": False, "size_pm1": False, "acc": 0.0, "solved": False, "error": str(exc)}
            rec.update(params, prior=prior, time_s=time.process_time() - t0)
            rows.append(rec)
    G.SIZE_PRIOR_MULTIPLE = default_multiple
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))

    def pct(rs, key):
        return 100.0 * sum(bool(r[key]) for r in rs) / max(1, len(rs))

    print(f"{a.cases} generated {a.family} cases (seed {a.seed}{', cut out, ' + a.cutout + ' under alpha 0' if a.cutout else ''}); canvases that are multiples of 8 on both axes: "
          f"{sum(c[2]['canvas'][0] % 8 == 0 and c[2]['canvas'][1] % 8 == 0 for c in cases)}")
    print("size prior       cases  size exact  within 1  solved  acc mean  errors")
    for prior in (default_multiple, 0):
        rs = [r for r in rows if r["prior"] == prior]
        print(f"{'multiple of %d' % prior if prior else 'off':15s}  {len(rs):5d}  {pct(rs, 'size_exact'):9.1f}%"
              f"  {pct(rs, 'size_pm1'):7.1f}%  {pct(rs, 'solved'):5.1f}%  {np.mean([r['acc'] for r in rs]):8.3f}"
              f"  {sum('error' in r for r in rs):6d}")
    if a.family == "scenes":
        for backdrop in ("flat", "runs"):
            rs = [r for r in rows if r["prior"] == default_multiple and r["backdrop"] == backdrop]
            print(f"  {backdrop} backdrop: {len(rs)} cases, size exact {pct(rs, 'size_exact'):.1f}%, "
                  f"solved {pct(rs, 'solved'):.1f}%, no grid found {sum('error' in r for r in rs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
