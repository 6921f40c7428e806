#!/usr/bin/env python3
"""In-process grid-snap scorer with diagnostics against the cases' true grid.

    python bench/snap_quality.py [--cases DIR] [--only SUBSTR] [--verbose] [--json OUT]

Runs ``comfy_nodes.pixel.grid.snap`` on every case of the shared snap-dev set (no subprocess,
so it is quick to iterate on), scores it with the shared metric code and, per case, says which
step went wrong: period (vs params ``cell_x``/``cell_y``), count (cols/rows vs GT) or colour
(size right but pixel accuracy < 0.95). ``params.json`` is read here for diagnosis only; the
snapper never sees it. The official whole-process figures come from ``score_snap.py``.
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


def line_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance (px) from each true line to the nearest found line."""
    if len(found) == 0:
        return float("inf")
    d = np.abs(np.asarray(truth, float)[:, None] - np.asarray(found, float)[None, :]).min(axis=1)
    return float(d.mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=str(SHARED / "snap-dev" / "cases"))
    ap.add_argument("--only", default="")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--no-size-prior", action="store_true", help="disable the multiple-of-8 border tie-break")
    a = ap.parse_args()
    if a.no_size_prior:
        G.SIZE_PRIOR_MULTIPLE = 0
    sys.path.insert(0, str(SHARED))
    import snap_metrics as metrics  # noqa: E402

    cases = sorted(p for p in Path(a.cases).iterdir() if (p / "input.png").exists() and a.only in p.name)
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in cases:
            params = json.loads((c / "params.json").read_text())
            rgba = load_image(c / "input.png")
            t0 = time.process_time()
            try:
                res = G.snap(rgba, source=str(c / "input.png"))
                err = ""
            except DgxPixelsError as exc:
                res, err = None, str(exc)
            dt = time.process_time() - t0
            gw, gh = params["gt_size"]
            rec = {"case": c.name, "level": params["level"], "time_s": dt, "err": err}
            if res is not None:
                out = Path(tmp) / f"{c.name}.png"
                save_png(res.image, out)
                rec.update(metrics.score(out, c / "gt.png"))
                g = res.grid
                rec.update(
                    cols=g.cols, rows=g.rows, gt_w=gw, gt_h=gh,
                    cell_w=g.cell_w, cell_h=g.cell_h, true_cw=params["cell_x"], true_ch=params["cell_y"],
                    lerr_x=line_error(g.x_lines, params["grid_x"]), lerr_y=line_error(g.y_lines, params["grid_y"]),
                    conf=g.confidence,
                )
            else:
                rec.update(size_exact=False, size_pm1=False, pix_acc=0.0, mean_de2000=100.0, cols=0, rows=0,
                           gt_w=gw, gt_h=gh)
            rec["solved"] = bool(rec["size_exact"] and rec["pix_acc"] >= 0.95)
            recs.append(rec)
            if a.verbose or not rec["solved"]:
                if res is None:
                    why = "ERROR " + err
                else:
                    why = "" if rec["solved"] else ("colour" if rec["size_exact"] else "count")
                    if res is not None and (abs(rec["cell_w"] - rec["true_cw"]) > 0.5 or abs(rec["cell_h"] - rec["true_ch"]) > 0.5):
                        why = "PERIOD"
                print(f"{c.name:36s} {why:7s} size {rec.get('cols')}x{rec.get('rows')} gt {gw}x{gh} "
                      f"cell {rec.get('cell_w', 0):.2f}/{rec.get('true_cw', 0):.2f} {rec.get('cell_h', 0):.2f}/{rec.get('true_ch', 0):.2f} "
                      f"lerr {rec.get('lerr_x', 0):.2f},{rec.get('lerr_y', 0):.2f} acc {rec['pix_acc']:.3f} {dt*1000:.0f}ms")
    if a.json:
        Path(a.json).write_text(json.dumps(recs, indent=1, default=float))

    def pct(key, rs):
        return 100.0 * sum(bool(r[key]) for r in rs) / max(1, len(rs))

    def mean(key, rs):
        return statistics.fmean(r[key] for r in rs) if rs else float("nan")

    print("level   n  solved  size_exact  pm1   acc_mean  dE00   t_med_ms")
    for lv in ("easy", "medium", "hard", "warp", None):
        rs = [r for r in recs if lv is None or r["level"] == lv]
        if rs:
            print(f"{(lv or 'ALL'):7s} {len(rs):2d}  {pct('solved', rs):5.0f}%  {pct('size_exact', rs):9.0f}%  "
                  f"{pct('size_pm1', rs):4.0f}%  {mean('pix_acc', rs):.3f}   {mean('mean_de2000', rs):5.2f}  "
                  f"{1000 * statistics.median(r['time_s'] for r in rs):5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
