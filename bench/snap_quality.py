#!/usr/bin/env python3
"""In-process grid-snap scorer with diagnostics against the cases' true grid.

    python bench/snap_quality.py [--cases DIR] [--only SUBSTR] [--verbose] [--json OUT]
    python bench/snap_quality.py --scales 0.9,0.95,1.05,1.1     # also on rescaled inputs
    python bench/snap_quality.py --scales 2.0 --resample nearest  # as a viewer enlarges them
    python bench/snap_quality.py --exact-upscales                 # true sprites x2..x21.3 round trip
    python bench/snap_quality.py --palette pico-8 --dither bayer4  # quantized before the snap

Runs ``comfy_nodes.pixel.grid.snap`` on every case of the shared snap-dev set (no subprocess,
so it is quick to iterate on), scores it with the shared metric code and, per case, says which
step went wrong: period (vs params ``cell_x``/``cell_y``), count (cols/rows vs GT) or colour
(size right but pixel accuracy < 0.95). ``params.json`` is read here for diagnosis only; the
snapper never sees it. The official whole-process figures come from ``score_snap.py``.

``--scales`` also runs every case on copies of its input resized (bicubic) by each factor: the
same sprite on a grid of another cell size, with the resampling's own blur. The true size does
not change, so the scores stay comparable; a change that helps only at scale 1.0 is fitted to
these cases rather than solving the problem. Line diagnostics are left out for rescaled runs.

``--resample nearest`` (or ``bilinear``, ``lanczos``; default ``bicubic``) is the filter of
``--scales``: ``--scales 2.0 --resample nearest`` is the cases as a viewer enlarges them, whose
exact blocks hold pseudo pixel art (``grid._inside_blocks``).

``--exact-upscales`` instead enlarges every other case's true sprite by nearest neighbour, 2, 3,
4, 5 and 8 times, 2.5, 3.3, 5.37, 7.9 and 21.3 times (cells of alternating widths), with
Pillow's resize 2.1-3.5 times and, counted on a line of their own, 1.25-1.75 times (cells of 1
and 2 px), with its transparency and composited on a colour, and counts the snaps that give it
back pixel for pixel.

``--cutout FILL[,FILL...]`` also runs every case whose sprite has transparency as a background
remover would hand it over (``orchestrator.samples.cut_out``: its background keyed out by a
soft matte, FILL under alpha 0: ``stored``, ``black``, ``white`` or ``random``). What lies under
transparency is arbitrary, so every fill must give one result.

``--redegrade LEVEL[,LEVEL...]`` also runs the true sprites of the easy and medium cases
degraded afresh (``orchestrator.samples.degrade``, ``--draws`` draws each, seeded) at ``hard``
or ``warp`` settings as the bench README describes them, on a plain background of a random
colour; ``--cells LO,HI`` draws the cell size (px) from that range instead. Neither the
inputs nor the grids are the cases': a figure that holds here is not fitted to them.

``--palette NAME|K`` maps every input (after ``--scales``) to a built-in palette, or to K colours
picked by k-means, before the snap (``--dither`` none by default), as a graph that runs Palette
Quantize first does: the noise becomes speckle of palette colours, the blur hard steps.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# $DGX_PIXELS_SHARED/bench, else ../shared/bench beside the checkout (as the other scripts)
SHARED = (Path(os.environ["DGX_PIXELS_SHARED"]) if os.environ.get("DGX_PIXELS_SHARED")
          else ROOT.parent / "shared") / "bench"

from comfy_nodes.pixel import grid as G  # noqa: E402
from comfy_nodes.pixel.errors import DgxPixelsError  # noqa: E402
from comfy_nodes.pixel.imageio import load_image, save_png  # noqa: E402
from orchestrator import samples  # noqa: E402


def line_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance (px) from each true line to the nearest found line."""
    if len(found) == 0:
        return float("inf")
    d = np.abs(np.asarray(truth, float)[:, None] - np.asarray(found, float)[None, :]).min(axis=1)
    return float(d.mean())


# degradation settings per level, as ../shared/bench/README.md describes the cases' levels:
# the default cell size range (px), then the rest drawn from the generator
REDEGRADE = {
    "hard": ((6.0, 14.0), lambda rng: dict(jitter=2.0, blur=float(rng.uniform(1.0, 1.5)), noise=float(rng.uniform(5, 8)),
                                          jpeg_quality=int(rng.integers(70, 82)))),
    "warp": ((7.0, 16.0), lambda rng: dict(jitter=0.9, blur=float(rng.uniform(0.7, 1.0)), noise=float(rng.uniform(3, 5)),
                                          jpeg_quality=int(rng.integers(82, 92)), drift=float(rng.uniform(0.04, 0.08)),
                                          bend=float(rng.uniform(0.3, 0.5)), wide=int(rng.integers(0, 2)))),
}


def redegraded(c: Path, level: str, seed: int, cells: tuple[float, float] | None) -> tuple[np.ndarray, dict]:
    """The true sprite of case ``c`` degraded afresh at ``level``'s settings (seeded), with
    cells of ``cells`` px (a range; default the level's): the input and the params the scorer
    reads (level, true size, cell size)."""
    truth = load_image(c / "gt.png")
    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(30, 230, 3))
    default_cells, draw = REDEGRADE[level]
    cell = float(rng.uniform(*(cells or default_cells)))
    kw = draw(rng)
    cell_h = cell * float(rng.uniform(0.95, 1.05))
    d = samples.degrade(truth, cell=cell, cell_h=cell_h, seed=seed, background=background, pad=0, **kw)
    h, w = truth.shape[:2]
    return d.image, {"level": level, "gt_size": [w, h], "cell_x": cell, "cell_y": cell_h}


#: Factors of ``--exact-upscales``: whole ones, and fractional ones whose cells alternate in
#: width (2 and 3 px at 2.5x; 21 and 22 px for a 48 px sprite shown at 1024 px).
UPSCALES = (2, 3, 4, 5, 8, 2.5, 3.3, 5.37, 7.9, 1024 / 48)
#: the same with Pillow's resize (cells rounded to the nearer pixel): 2-3 px cells read exactly
PILLOW_UPSCALES = (2.1, 2.25, 2.5, 3.5)
#: ... and by factors under 2 (cells of 1 and 2 px), counted on their own line
SMALL_UPSCALES = (1.25, 4 / 3, 1.5, 1.75)


def _nearest(sprite: np.ndarray, k: float) -> np.ndarray:
    """``sprite`` enlarged ``k`` times by nearest neighbour (pixel x shows floor(x / k))."""
    ys = (np.arange(int(sprite.shape[0] * k)) / k).astype(int)
    xs = (np.arange(int(sprite.shape[1] * k)) / k).astype(int)
    return sprite[ys][:, xs]


def _pillow_nearest(sprite: np.ndarray, k: float) -> np.ndarray:
    """``sprite`` resized ``k`` times with Pillow's nearest filter, which rounds each cell to
    the nearer pixel (an image viewer's or a script's resize of the whole sprite)."""
    from PIL import Image

    h, w = sprite.shape[:2]
    return np.asarray(Image.fromarray(sprite).resize((round(w * k), round(h * k)), Image.NEAREST))


def exact_upscales(cases: list[Path]) -> int:
    """Every other case's true sprite, with its transparency and composited on a colour,
    enlarged by each of ``UPSCALES`` by nearest neighbour, and by each of ``PILLOW_UPSCALES``
    with Pillow's resize: how many snaps give it back pixel for pixel (colours of its opaque
    pixels, and which pixels are opaque), per factor."""
    good = total = small_good = small_total = 0
    per: dict[str, list[int]] = {}
    ways = [(f"x{k:.4g}", k, _nearest) for k in UPSCALES] + \
           [(f"x{k:.4g} (Pillow)", k, _pillow_nearest) for k in PILLOW_UPSCALES + SMALL_UPSCALES]
    for c in cases[::2]:
        gt = load_image(c / "gt.png")
        flat = gt.copy()
        flat[flat[..., 3] == 0] = (90, 140, 200, 255)
        for sprite in (gt, flat):
            opaque = sprite[..., 3] > 0
            for label, k, enlarge in ways:
                small = k < 2
                total += not small
                small_total += small
                per.setdefault(label, [0, 0])[1] += 1
                try:
                    out = G.snap(enlarge(sprite, k)).image
                except DgxPixelsError as exc:
                    print(f"{c.name} {label}: {exc}")
                    continue
                same = out.shape == sprite.shape and np.array_equal(out[..., 3] > 0, opaque) \
                    and np.array_equal(out[opaque], sprite[opaque])
                good += same and not small
                small_good += same and small
                per[label][0] += same
                if not same:
                    print(f"{c.name} {label}{' (transparency)' if sprite is gt else ''}: {out.shape[1]}x{out.shape[0]}")
    print("  ".join(f"{label} {g}/{n}" for label, (g, n) in per.items()))
    print(f"exact upscales: {good} of {total} snapped back pixel for pixel")
    print(f"resized by {', '.join(f'{k:.3g}' for k in SMALL_UPSCALES)} (Pillow): {small_good} of {small_total}")
    return 0


def mapped(rgba: np.ndarray, palette: str, dither: str) -> np.ndarray:
    """``rgba`` mapped to ``palette`` (a built-in palette's name, or a number: that many
    colours picked from the image by k-means) with ``dither``, by the project's own Palette
    Quantize functions, as a graph that quantizes before it snaps does."""
    from comfy_nodes.pixel import palette as P

    pal = P.adaptive_palette(rgba, int(palette)) if palette.isdigit() else P.resolve_palette(palette)
    return P.quantize(rgba, pal, dither=dither, alpha_threshold=None)


def run_case(c: Path, scale: float, tmp: Path, metrics, fill: str = "", made: tuple[np.ndarray, dict] | None = None,
             redegrade: str = "", draw: int = 0, resample: str = "bicubic", palette: str = "",
             dither: str = "none") -> dict:
    """Snap one case (its input resized by ``scale``, or cut out with ``fill`` under its
    transparency, or ``made``: an input and params for its true sprite, draw ``draw`` of the
    level ``redegrade``; then mapped to ``palette`` with ``dither`` when one is given) and
    score it; a dict of figures."""
    if made is None:
        params = json.loads((c / "params.json").read_text())
        rgba = load_image(c / "input.png")
    else:
        rgba, params = made
    if fill:
        rgba = samples.cut_out(rgba, tuple(params["background_rgb"]), noise=params["noise_sigma"], fill=fill)
    if scale != 1.0:
        from PIL import Image

        h, w = rgba.shape[:2]
        filt = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
                "lanczos": Image.LANCZOS}[resample]
        rgba = np.asarray(Image.fromarray(rgba).resize((round(w * scale), round(h * scale)), filt))
    if palette:
        rgba = mapped(rgba, palette, dither)
    t0 = time.process_time()
    try:
        res = G.snap(rgba, source=str(c / "input.png"))
        err = ""
    except DgxPixelsError as exc:
        res, err = None, str(exc)
    dt = time.process_time() - t0
    gw, gh = params["gt_size"]
    rec = {"case": c.name, "level": params["level"], "scale": scale, "fill": fill, "redegrade": redegrade,
           "draw": draw, "time_s": dt, "err": err}
    if res is not None:
        out = tmp / f"{c.name}.png"
        save_png(res.image, out)
        rec.update(metrics.score(out, c / "gt.png"))
        g = res.grid
        rec.update(cols=g.cols, rows=g.rows, gt_w=gw, gt_h=gh, cell_w=g.cell_w, cell_h=g.cell_h,
                   true_cw=params["cell_x"] * scale, true_ch=params["cell_y"] * scale, conf=g.confidence)
        if scale == 1.0 and not fill and made is None:
            rec.update(lerr_x=line_error(g.x_lines, params["grid_x"]), lerr_y=line_error(g.y_lines, params["grid_y"]))
    else:
        rec.update(size_exact=False, size_pm1=False, pix_acc=0.0, mean_de2000=100.0, cols=0, rows=0, gt_w=gw, gt_h=gh)
    rec["solved"] = bool(rec["size_exact"] and rec["pix_acc"] >= 0.95)
    return rec


def describe(rec: dict) -> str:
    """One line per case: what went wrong (period, count or colour) and the figures."""
    if rec["err"]:
        why = "ERROR " + rec["err"]
    else:
        why = "" if rec["solved"] else ("colour" if rec["size_exact"] else "count")
        if abs(rec["cell_w"] - rec["true_cw"]) > 0.5 or abs(rec["cell_h"] - rec["true_ch"]) > 0.5:
            why = "PERIOD"
    name = rec["case"] if rec["scale"] == 1.0 else f"{rec['case']}@{rec['scale']:g}"
    name += f" [{rec['fill']}]" if rec.get("fill") else ""
    name += f" [re-{rec['redegrade']} #{rec['draw']}]" if rec.get("redegrade") else ""
    return (f"{name:40s} {why:7s} size {rec.get('cols')}x{rec.get('rows')} gt {rec['gt_w']}x{rec['gt_h']} "
            f"cell {rec.get('cell_w', 0):.2f}/{rec.get('true_cw', 0):.2f} {rec.get('cell_h', 0):.2f}/{rec.get('true_ch', 0):.2f} "
            f"lerr {rec.get('lerr_x', float('nan')):.2f},{rec.get('lerr_y', float('nan')):.2f} acc {rec['pix_acc']:.3f} "
            f"{rec['time_s'] * 1000:.0f}ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=str(SHARED / "snap-dev" / "cases"))
    ap.add_argument("--only", default="")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--no-size-prior", action="store_true", help="disable the multiple-of-8 border tie-break")
    ap.add_argument("--scales", default="", help="comma-separated resize factors to run besides 1.0")
    ap.add_argument("--resample", default="bicubic", choices=("bicubic", "nearest", "bilinear", "lanczos"),
                    help="the filter of --scales (default bicubic)")
    ap.add_argument("--exact-upscales", action="store_true",
                    help="only: the true sprites enlarged by whole factors must come back pixel for pixel")
    ap.add_argument("--cutout", default="", help="comma-separated fills: also run the cases with transparency cut out")
    ap.add_argument("--redegrade", default="", help="comma-separated levels (hard, warp): also run the easy and "
                    "medium cases' true sprites degraded afresh at that level's settings")
    ap.add_argument("--draws", type=int, default=2, help="draws per sprite for --redegrade (default 2)")
    ap.add_argument("--cells", default="", help="LO,HI: cell size range (px) for --redegrade (default the level's)")
    ap.add_argument("--palette", default="", help="map every input to this palette before the snap: a built-in "
                    "palette's name (pico-8, ...) or a number of colours (k-means), as a graph that quantizes first")
    ap.add_argument("--dither", default="none", help="the dither of --palette (none, bayer4, floyd-steinberg, ...)")
    a = ap.parse_args()
    levels = [v.strip() for v in a.redegrade.split(",") if v.strip()]
    for lv in levels:
        if lv not in REDEGRADE:
            ap.error(f"--redegrade takes {', '.join(REDEGRADE)}; got {lv!r}")
    try:
        cells = tuple(float(v) for v in a.cells.split(",")) if a.cells else None
    except ValueError:
        cells = ()
    if cells is not None and (len(cells) != 2 or not 2.5 <= cells[0] <= cells[1]):
        ap.error(f"--cells takes LO,HI with 2.5 <= LO <= HI (px); got {a.cells!r}")
    if a.no_size_prior:
        G.SIZE_PRIOR_MULTIPLE = 0
    if not (SHARED / "snap_metrics.py").is_file() or not Path(a.cases).is_dir():
        print(f"the shared benchmark ({SHARED}, with snap_metrics.py and {a.cases}) is not here: set "
              "DGX_PIXELS_SHARED to the folder that holds bench/, or give --cases")
        return 2
    sys.path.insert(0, str(SHARED))
    import snap_metrics as metrics  # noqa: E402

    every = sorted(p for p in Path(a.cases).iterdir() if (p / "input.png").exists())
    cases = [p for p in every if a.only in p.name]
    if a.exact_upscales:
        return exact_upscales(cases)
    # each sprite once, numbered over the whole set so that --only keeps the draws' seeds
    sprites = [p for lv in ("easy", "medium") for p in every if p.name.endswith("-" + lv)]
    scales = [1.0] + [float(v) for v in a.scales.split(",") if v.strip() and float(v) != 1.0]
    fills = [v.strip() for v in a.cutout.split(",") if v.strip()]
    runs = [(s, "", "") for s in scales] + [(1.0, f, "") for f in fills] + [(1.0, "", lv) for lv in levels]
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale, fill, re_level in runs:
            if re_level:
                todo = [(c, (i, d)) for i, c in enumerate(sprites) if c in cases for d in range(a.draws)]
            else:
                todo = [(c, None) for c in cases]
            for c, draw in todo:
                if fill and not json.loads((c / "params.json").read_text()).get("has_transparency"):
                    continue
                made = redegraded(c, re_level, 1000 * draw[0] + draw[1], cells) if draw else None
                rec = run_case(c, scale, Path(tmp), metrics, fill, made, re_level, draw[1] if draw else 0, a.resample,
                               a.palette, a.dither)
                recs.append(rec)
                if a.verbose or not rec["solved"]:
                    print(describe(rec))
    if a.json:
        Path(a.json).write_text(json.dumps(recs, indent=1, default=float))

    def pct(key, rs):
        return 100.0 * sum(bool(r[key]) for r in rs) / max(1, len(rs))

    def mean(key, rs):
        return statistics.fmean(r[key] for r in rs) if rs else float("nan")

    print("scale  input    level   n  solved  size_exact  pm1   acc_mean  dE00   t_med_ms")
    for scale, fill, re_level in runs:
        for lv in ("easy", "medium", "hard", "warp", None):
            rs = [r for r in recs if r["scale"] == scale and r["fill"] == fill
                  and r["redegrade"] == re_level and (lv is None or r["level"] == lv)]
            if rs and not (re_level and lv):
                label = fill or (f"re-{re_level}" if re_level else "-")
                print(f"{scale:5.2f}  {label:7s}  {(lv or 'ALL'):7s} {len(rs):2d}  {pct('solved', rs):5.0f}%  "
                      f"{pct('size_exact', rs):9.0f}%  {pct('size_pm1', rs):4.0f}%  {mean('pix_acc', rs):.3f}   "
                      f"{mean('mean_de2000', rs):5.2f}  {1000 * statistics.median(r['time_s'] for r in rs):5.0f}")
    if len(runs) > 1:
        print(f"all runs: solved {pct('solved', recs):.1f}%  size exact {pct('size_exact', recs):.1f}%  "
              f"({len(recs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
