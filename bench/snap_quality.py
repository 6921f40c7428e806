#!/usr/bin/env python3
"""In-process grid-snap scorer with diagnostics against the cases' true grid.

    python bench/snap_quality.py [--cases DIR] [--only SUBSTR] [--verbose] [--json OUT]
    python bench/snap_quality.py --scales 0.9,0.95,1.05,1.1     # also on rescaled inputs

Runs ``comfy_nodes.pixel.grid.snap`` on every case of the shared snap-dev set (no subprocess,
so it is quick to iterate on), scores it with the shared metric code and, per case, says which
step went wrong: period (vs params ``cell_x``/``cell_y``), count (cols/rows vs GT) or colour
(size right but pixel accuracy < 0.95). ``params.json`` is read here for diagnosis only; the
snapper never sees it. The official whole-process figures come from ``score_snap.py``.

``--scales`` also runs every case on copies of its input resized (bicubic) by each factor: the
same sprite on a grid of another cell size, with the resampling's own blur. The true size does
not change, so the scores stay comparable; a change that helps only at scale 1.0 is fitted to
these cases rather than solving the problem. Line diagnostics are left out for rescaled runs.

``--cutout FILL[,FILL...]`` also runs every case whose sprite has transparency as a background
remover would hand it over (``orchestrator.samples.cut_out``: its background keyed out by a
soft matte, FILL under alpha 0: ``stored``, ``black``, ``white`` or ``random``). What lies under
transparency is arbitrary, so every fill must give one result.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "bench"

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


def run_case(c: Path, scale: float, tmp: Path, metrics, fill: str = "") -> dict:
    """Snap one case (its input resized by ``scale``, or cut out with ``fill`` under its
    transparency) and score it; a dict of figures."""
    params = json.loads((c / "params.json").read_text())
    rgba = load_image(c / "input.png")
    if fill:
        rgba = samples.cut_out(rgba, tuple(params["background_rgb"]), noise=params["noise_sigma"], fill=fill)
    if scale != 1.0:
        from PIL import Image

        h, w = rgba.shape[:2]
        rgba = np.asarray(Image.fromarray(rgba).resize((round(w * scale), round(h * scale)), Image.BICUBIC))
    t0 = time.process_time()
    try:
        res = G.snap(rgba, source=str(c / "input.png"))
        err = ""
    except DgxPixelsError as exc:
        res, err = None, str(exc)
    dt = time.process_time() - t0
    gw, gh = params["gt_size"]
    rec = {"case": c.name, "level": params["level"], "scale": scale, "fill": fill, "time_s": dt, "err": err}
    if res is not None:
        out = tmp / f"{c.name}.png"
        save_png(res.image, out)
        rec.update(metrics.score(out, c / "gt.png"))
        g = res.grid
        rec.update(cols=g.cols, rows=g.rows, gt_w=gw, gt_h=gh, cell_w=g.cell_w, cell_h=g.cell_h,
                   true_cw=params["cell_x"] * scale, true_ch=params["cell_y"] * scale, conf=g.confidence)
        if scale == 1.0 and not fill:
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
    ap.add_argument("--cutout", default="", help="comma-separated fills: also run the cases with transparency cut out")
    a = ap.parse_args()
    if a.no_size_prior:
        G.SIZE_PRIOR_MULTIPLE = 0
    sys.path.insert(0, str(SHARED))
    import snap_metrics as metrics  # noqa: E402

    cases = sorted(p for p in Path(a.cases).iterdir() if (p / "input.png").exists() and a.only in p.name)
    scales = [1.0] + [float(v) for v in a.scales.split(",") if v.strip() and float(v) != 1.0]
    fills = [v.strip() for v in a.cutout.split(",") if v.strip()]
    runs = [(s, "") for s in scales] + [(1.0, f) for f in fills]
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale, fill in runs:
            for c in cases:
                if fill and not json.loads((c / "params.json").read_text()).get("has_transparency"):
                    continue
                rec = run_case(c, scale, Path(tmp), metrics, fill)
                recs.append(rec)
                if a.verbose or not rec["solved"]:
                    print(describe(rec))
    if a.json:
        Path(a.json).write_text(json.dumps(recs, indent=1, default=float))

    def pct(key, rs):
        return 100.0 * sum(bool(r[key]) for r in rs) / max(1, len(rs))

    def mean(key, rs):
        return statistics.fmean(r[key] for r in rs) if rs else float("nan")

    print("scale  cutout  level   n  solved  size_exact  pm1   acc_mean  dE00   t_med_ms")
    for scale, fill in runs:
        for lv in ("easy", "medium", "hard", "warp", None):
            rs = [r for r in recs if r["scale"] == scale and r["fill"] == fill and (lv is None or r["level"] == lv)]
            if rs:
                print(f"{scale:5.2f}  {fill or '-':6s}  {(lv or 'ALL'):7s} {len(rs):2d}  {pct('solved', rs):5.0f}%  "
                      f"{pct('size_exact', rs):9.0f}%  {pct('size_pm1', rs):4.0f}%  {mean('pix_acc', rs):.3f}   "
                      f"{mean('mean_de2000', rs):5.2f}  {1000 * statistics.median(r['time_s'] for r in rs):5.0f}")
    if len(runs) > 1:
        print(f"all runs: solved {pct('solved', recs):.1f}%  size exact {pct('size_exact', recs):.1f}%  "
              f"({len(recs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
