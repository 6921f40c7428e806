#!/usr/bin/env python3
"""Speed of the palette and cleanup core on one CPU core.

    python bench/palette_bench.py               # table on stdout
    python bench/palette_bench.py --json out.json --repeat 7
    python bench/palette_bench.py --quality     # also: automatic palette size and background
                                                # removal on ../shared/bench/snap-dev (if present)
    python bench/palette_bench.py --real-only   # only the full-resolution stray cleanup below

Inputs are generated (deterministic, no files needed):

* ``sprite256``: a 256x256 true-resolution sprite, 24 colours, on transparency (what the
  post-process sees after grid snap);
* ``frame1024``: the same sprite enlarged x4 to 1024x1024 with soft edges and noise, on an opaque
  backdrop (a raw diffusion-style frame: ~100k distinct colours, the worst case);
* ``flat1024``: the sprite enlarged x4 with nearest neighbour (few colours, 1024x1024).

Plus ``remove_strays`` with its defaults on each full-resolution AI image of
``../shared/bench/real`` (``$DGX_PIXELS_SHARED/bench/real``; skipped when absent): what the Stray
Cleanup node costs when it is given a raw generated frame (nearly every pixel its own island).

Every operation runs ``--repeat`` times; the median CPU time and wall time are reported in
milliseconds. BLAS/OpenMP threads are pinned to 1 before numpy loads, so CPU time is the cost
on one core (on a shared machine wall time also includes waiting for a core).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_nodes.pixel import cleanup as C  # noqa: E402
from comfy_nodes.pixel.palette import adaptive_palette, quantize  # noqa: E402
from comfy_nodes.pixel.palettes_builtin import builtin  # noqa: E402


def make_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 256
    yy, xx = np.mgrid[0:n, 0:n]
    pal = rng.integers(0, 256, (24, 3)).astype(np.uint8)
    # Blobby regions: colour index from a coarse random field, enlarged with nearest neighbour.
    coarse = rng.integers(0, 24, (n // 8, n // 8))
    idx = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
    sprite = np.zeros((n, n, 4), np.uint8)
    sprite[..., :3] = pal[idx]
    inside = (yy - n / 2) ** 2 / (0.42 * n) ** 2 + (xx - n / 2) ** 2 / (0.36 * n) ** 2 < 1
    sprite[..., 3] = np.where(inside, 255, 0)
    sprite[~inside] = 0
    flat = np.repeat(np.repeat(sprite, 4, axis=0), 4, axis=1)
    frame = flat.astype(np.float64)
    frame[flat[..., 3] == 0, :3] = (235, 235, 240)
    frame[..., 3] = 255
    # Soft edges: a 3x3 box blur on colour, then noise, as a diffusion model would leave.
    rgb = frame[..., :3]
    blur = sum(np.roll(np.roll(rgb, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    frame[..., :3] = blur + rng.normal(0, 3.0, blur.shape)
    frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    return {"sprite256": sprite, "frame1024": frame, "flat1024": flat}


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median (CPU ms, wall ms). CPU time of this single-threaded process is the one-core cost
    even on a busy machine, where wall time also counts waiting for a core."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(cpu) * 1000.0, statistics.median(wall) * 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per operation (median reported)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--quality", action="store_true",
                    help="also score automatic palette size and background removal on the snap-dev cases")
    ap.add_argument("--real", metavar="DIR", default=str(_shared() / "real"),
                    help="full-resolution images for the stray-cleanup timing (default ../shared/bench/real)")
    ap.add_argument("--real-only", action="store_true", help="time only the stray cleanup of --real")
    ap.add_argument("--cases", metavar="DIR", default=str(Path(__file__).resolve().parents[2] / "shared" / "bench"
                                                              / "snap-dev" / "cases"),
                    help="snap-dev case folder for --quality (default ../shared/bench/snap-dev/cases)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    import sklearn.cluster  # noqa: F401  (timed once: the first adaptive palette pays it)

    sklearn_import_ms = (time.perf_counter() - t) * 1000.0
    imgs = {} if args.real_only else make_inputs()
    db32 = builtin("dawnbringer-32")
    rows = []
    for name, img in imgs.items():
        distinct = len(np.unique(img[..., :3][img[..., 3] > 0].reshape(-1, 3), axis=0))
        pal16 = adaptive_palette(img, 16, seed=0)
        q = quantize(img, pal16)
        bg = C.remove_background(img)
        ops = {
            "adaptive_palette k=16": lambda: adaptive_palette(img, 16, seed=0),
            "adaptive_palette auto": lambda: adaptive_palette(img, None, seed=0),
            "quantize db32 none": lambda: quantize(img, db32),
            "quantize db32 bayer4": lambda: quantize(img, db32, dither="bayer4"),
            "quantize db32 floyd-steinberg": lambda: quantize(img, db32, dither="floyd-steinberg"),
            "quantize db32 atkinson": lambda: quantize(img, db32, dither="atkinson"),
            "remove_background": lambda: C.remove_background(img),
            "remove_strays (quantised)": lambda: C.remove_strays(q),
            "add_outline": lambda: C.add_outline(bg),
            "trim": lambda: C.trim(bg, padding=1),
        }
        for op, fn in ops.items():
            reps = max(1, args.repeat if "auto" not in op else min(args.repeat, 3))
            cpu_ms, wall_ms = timed(fn, reps)
            rows.append({"input": name, "size": f"{img.shape[1]}x{img.shape[0]}", "distinct_colours": distinct,
                         "op": op, "cpu_ms": round(cpu_ms, 2), "wall_ms": round(wall_ms, 2)})

    rows += real_rows(Path(args.real), args.repeat)

    print(f"sklearn import (once per process): {sklearn_import_ms:.0f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times mean little when it exceeds the cores)")
    print(f"{'input':<18} {'size':>9} {'colours':>8}  {'operation':<32} {'cpu ms':>9} {'wall ms':>9}")
    for r in rows:
        print(f"{r['input']:<18} {r['size']:>9} {r['distinct_colours']:>8}  {r['op']:<32} "
              f"{r['cpu_ms']:>9.2f} {r['wall_ms']:>9.2f}")
    result = {"sklearn_import_ms": round(sklearn_import_ms, 1), "rows": rows}
    if args.quality:
        result["quality"] = quality(Path(args.cases))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def _shared() -> Path:
    """The shared benchmark folder: $DGX_PIXELS_SHARED/bench, else ../shared/bench next to the repo."""
    root = os.environ.get("DGX_PIXELS_SHARED")
    return (Path(root) if root else Path(__file__).resolve().parents[2] / "shared") / "bench"


def real_rows(folder: Path, repeat: int) -> list[dict]:
    """``remove_strays`` (defaults) on every PNG of ``folder``: one row each, median ms of ``repeat``
    runs after one untimed run (the first call in a process also pays for page faults)."""
    from comfy_nodes.pixel.imageio import load_image

    if not folder.is_dir():
        print(f"{folder} not found: full-resolution stray cleanup skipped")
        return []
    rows = []
    for path in sorted(folder.glob("*.png")):
        img = load_image(path)
        rgb = img[..., :3].astype(np.int32)
        keys = (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])[img[..., 3] > 0]
        C.remove_strays(img)
        cpu_ms, wall_ms = timed(lambda: C.remove_strays(img), repeat)
        rows.append({"input": path.stem, "size": f"{img.shape[1]}x{img.shape[0]}",
                     "distinct_colours": int(np.unique(keys).size), "op": "remove_strays (full resolution)",
                     "cpu_ms": round(cpu_ms, 2), "wall_ms": round(wall_ms, 2)})
    return rows


def quality(cases: Path) -> dict | None:
    """Snap each case to its ground-truth size (the grid is not what is measured here), then:

    * automatic palette (``adaptive_palette(k=None)``): its size against the number of colours
      of the hand-made original, and the mean OKLab error to the original after quantising,
      next to the error of the snapped sprite before any palette step;
    * ``remove_background`` (default tolerance) on cases whose original has transparency and
      whose input is opaque: pixel accuracy and IoU of the opaque area against the original.
    """
    from comfy_nodes.pixel import grid as G
    from comfy_nodes.pixel.color import srgb_to_oklab
    from comfy_nodes.pixel.imageio import load_image
    from comfy_nodes.pixel.palette import distinct_colors

    if not cases.is_dir():
        print(f"--quality: {cases} not found, skipped")
        return None
    ks, ngt, err_q, err_s, bg_acc, bg_iou = [], [], [], [], [], []
    for case in sorted(p for p in cases.iterdir() if (p / "gt.png").is_file()):
        gt, inp = load_image(case / "gt.png"), load_image(case / "input.png")
        try:
            out = G.snap(inp, width=gt.shape[1], height=gt.shape[0]).image
        except Exception:  # noqa: BLE001 - a case the grid cannot fit says nothing about palettes
            continue
        if out.shape != gt.shape:
            continue
        m = (gt[..., 3] >= 128) & (out[..., 3] >= 128)
        pal = adaptive_palette(out, None, seed=0)
        q = quantize(out, pal)
        gl = srgb_to_oklab(gt[..., :3][m])
        err_q.append(float(np.linalg.norm(srgb_to_oklab(q[..., :3][m]) - gl, axis=1).mean()))
        err_s.append(float(np.linalg.norm(srgb_to_oklab(out[..., :3][m]) - gl, axis=1).mean()))
        ks.append(len(pal))
        ngt.append(len(distinct_colors(gt)))
        if (gt[..., 3] < 128).any() and (inp[..., 3] == 255).all():
            a = C.remove_background(out)[..., 3] >= 128
            g = gt[..., 3] >= 128
            bg_acc.append(float((a == g).mean()))
            bg_iou.append(float((a & g).sum() / max(1, (a | g).sum())))
    ks_a, ngt_a = np.array(ks), np.array(ngt)
    res = {
        "cases": len(ks),
        "auto_k_median": float(np.median(ks_a)),
        "original_colours_median": float(np.median(ngt_a)),
        "auto_k_abs_diff_median": float(np.median(np.abs(ks_a - ngt_a))),
        "oklab_error_quantised": round(float(np.mean(err_q)), 4),
        "oklab_error_snap_only": round(float(np.mean(err_s)), 4),
        "background_cases": len(bg_iou),
        "background_pixel_accuracy": round(float(np.mean(bg_acc)), 4) if bg_acc else None,
        "background_iou": round(float(np.mean(bg_iou)), 4) if bg_iou else None,
    }
    print("quality:", json.dumps(res))
    return res


if __name__ == "__main__":
    sys.exit(main())
