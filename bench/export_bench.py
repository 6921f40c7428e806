#!/usr/bin/env python3
"""Time of "frames -> sheet -> Bevy project" in-process (target: <= 100 ms for 64 frames of 64x64).

    python bench/export_bench.py                  # 64 frames of 64x64, 30 runs, Bevy 0.15
    python bench/export_bench.py --frames 128 --size 32 --runs 50 --bevy 0.12 --ron

Each run assembles the sheet (trim + anchor) and runs the whole export transaction into a fresh
temporary Bevy project: PNG encode, .meta, Aseprite JSON, (optional) bevy_asset_loader RON, staged
writes with fsync, renames, the manifest under its lock, and the Rust snippet. Frames look like
pixel art (a 16-colour palette drawn in 3x3 blocks inside a transparent margin), which is what a
PNG encoder sees in practice; --noise uses random pixels instead (the PNG worst case).
Prints median / p90 / min in ms for assembly, export and both, plus the sheet size.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comfy_nodes.pixel.bevy_export import export_sheet  # noqa: E402
from comfy_nodes.pixel.sheet import build_sheet  # noqa: E402


def make_frames(n: int, size: int, noise: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (16, 4), dtype=np.uint8)
    palette[:, 3] = 255
    frames = []
    margin = size // 8
    inner = size - 2 * margin
    for i in range(n):
        f = np.zeros((size, size, 4), np.uint8)
        if noise:
            f[margin : size - margin, margin : size - margin] = rng.integers(0, 256, (inner, inner, 4), dtype=np.uint8)
            f[..., 3] = np.where(f[..., 3] > 0, 255, 0)
        else:
            cells = -(-inner // 3)
            small = palette[rng.integers(0, 16, (cells, cells))]
            block = np.repeat(np.repeat(small, 3, axis=0), 3, axis=1)[:inner, :inner]
            f[margin : size - margin, margin : size - margin] = block
            f[margin + (i % 4) :, :, :][:2] = 0  # a little motion so trimming varies
        frames.append(f)
    return frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bevy", default="0.15")
    ap.add_argument("--ron", action="store_true", help="also write bevy_asset_loader entries")
    ap.add_argument("--noise", action="store_true", help="random pixels (PNG worst case)")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "export_bench.json"),
                    help="where the figures are saved")
    args = ap.parse_args()

    frames = make_frames(args.frames, args.size, args.noise)
    spec = "idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong"
    asm, exp, tot = [], [], []
    shape = None
    with tempfile.TemporaryDirectory(prefix="dgx-export-bench-") as tmp:
        for run in range(args.runs + 1):  # run 0 warms imports and caches
            project = Path(tmp) / f"game{run}"
            project.mkdir()
            (project / "Cargo.toml").write_text(f'[package]\nname = "g"\n[dependencies]\nbevy = "{args.bevy}"\n')
            t0 = time.perf_counter()
            sheet = build_sheet(frames, animations=spec if args.frames >= 16 else None)
            t1 = time.perf_counter()
            res = export_sheet(project, "sprites/knight.png", sheet, assets_ron=args.ron)
            t2 = time.perf_counter()
            shape = (res.width, res.height)
            if run:
                asm.append((t1 - t0) * 1e3)
                exp.append((t2 - t1) * 1e3)
                tot.append((t2 - t0) * 1e3)

    def stats(xs) -> dict:
        xs = sorted(xs)
        return {"median_ms": statistics.median(xs), "p90_ms": xs[int(0.9 * (len(xs) - 1))], "min_ms": xs[0]}

    figures = {"assemble": stats(asm), "export": stats(exp), "total": stats(tot)}
    kind = "noise" if args.noise else "pixel-art"
    print(f"{args.frames} frames of {args.size}x{args.size} ({kind}) -> sheet {shape[0]}x{shape[1]}, "
          f"Bevy {args.bevy}, {args.runs} runs (ms)")
    for name, label in (("assemble", "assemble       "), ("export", "export         "), ("total", "assemble+export")):
        f = figures[name]
        print(f"  {label} median {f['median_ms']:7.2f}  p90 {f['p90_ms']:7.2f}  min {f['min_ms']:7.2f}")
    target = 100.0
    ok = figures["total"]["median_ms"] <= target
    print(f"  target <= {target:.0f} ms (median): {'OK' if ok else 'MISSED'}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "frames": args.frames, "size": args.size, "kind": kind, "bevy": args.bevy, "runs": args.runs,
        "sheet": list(shape), "target_ms": target, "ok": ok, **figures,
    }, indent=2) + "\n")
    print(f"  saved {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
