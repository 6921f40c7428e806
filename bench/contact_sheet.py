#!/usr/bin/env python3
"""Contact sheet of grid snap on real AI images (no ground truth): judge the output by eye.

    python bench/contact_sheet.py                      # ours only
    python bench/contact_sheet.py --tools all          # ours and every installed peer
    python bench/contact_sheet.py --tools ours,unfake --images ppa_bat,unfakejs_goose_ai

For each image in ../shared/bench/real/ every chosen tool runs once as its own process (same
commands as bench/snap_bench.py); the sheet has one row per image: the input (smooth thumbnail),
then each tool's output enlarged with nearest neighbour by a whole factor, on a checkerboard so
transparency shows. Each tile is labelled with the tool, the output size, the wall time and the
round-trip colour error (output enlarged back over the input, CIEDE2000 mean; low is faithful,
but a tool that returns its input unreduced also scores ~0, so read it with the size).
Writes bench/results/contact-sheet-<stamp>.png (and the outputs next to it).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import snap_bench as SB  # noqa: E402

LABEL_H = 26
PAD = 6


def checkerboard(w: int, h: int, sq: int = 8) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    v = np.where(((yy // sq) + (xx // sq)) % 2 == 0, 205, 235).astype(np.uint8)
    return Image.fromarray(np.dstack([v, v, v, np.full_like(v, 255)]), "RGBA")


def fit_nearest(img: Image.Image, box: int) -> Image.Image:
    """Enlarge by the largest whole factor that fits `box` (pixel art stays crisp); shrink, still
    nearest, when the output is larger than the box (a tool that did not reduce)."""
    w, h = img.size
    k = box // max(w, h)
    if k >= 1:
        return img.resize((w * k, h * k), Image.NEAREST)
    s = box / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.NEAREST)


def tile(img: Image.Image | None, box: int, lines: list[str], font, smooth: bool = False) -> Image.Image:
    t = Image.new("RGBA", (box, box + LABEL_H), (255, 255, 255, 255))
    bg = checkerboard(box, box)
    t.paste(bg, (0, 0))
    if img is not None:
        img = img.convert("RGBA")
        if smooth:
            img = img.copy()
            img.thumbnail((box, box), Image.LANCZOS)
        else:
            img = fit_nearest(img, box)
        x, y = (box - img.width) // 2, (box - img.height) // 2
        t.alpha_composite(img, (x, y))
    else:
        ImageDraw.Draw(t).text((8, box // 2), "no output", fill=(200, 0, 0, 255), font=font)
    d = ImageDraw.Draw(t)
    for i, line in enumerate(lines[:2]):
        d.text((3, box + 1 + i * 12), line, fill=(0, 0, 0, 255), font=font)
    return t


def run_tool(cmd_template: str, src: Path, dst: Path, timeout: float) -> tuple[int, float]:
    cmd = cmd_template.replace("{in}", shlex.quote(str(src))).replace("{out}", shlex.quote(str(dst)))
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(["bash", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = 124
    return rc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", default="ours", help=f"comma list or 'all': {','.join(SB.ALL_TOOLS)} (default ours)")
    ap.add_argument("--images", help="comma list of image stems in real/ (default: all)")
    ap.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder (default bench/results/)")
    a = ap.parse_args(argv)
    try:
        bench = SB.shared_bench_dir()
        tools = SB.parse_tools(a.tools)
    except SB.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(bench))
    import snap_metrics  # noqa: E402  (the shared scorer's round-trip metric)

    real = bench / "real"
    images = sorted(real.glob("*.png"))
    if a.images:
        want = {s.strip() for s in a.images.split(",")}
        images = [p for p in images if p.stem in want]
    if not images:
        print(f"error: no images selected in {real}", file=sys.stderr)
        return 2
    peers_py, not_installed = SB.peers_python(tools)
    versions = SB.peer_versions() if peers_py else {}
    tools = [t for t in tools if t not in not_installed]
    for t, why in not_installed.items():
        print(f"skipping {t}: {why}", file=sys.stderr)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(a.out) / f"contact-sheet-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default()
    box = a.tile
    rows, records = [], []
    for src in images:
        with Image.open(src) as im:
            src_img = im.convert("RGBA")
        tiles = [tile(src_img, box, [src.stem[:40], f"input {src_img.width}x{src_img.height}"], font, smooth=True)]
        for t in tools:
            dst = out_dir / f"{src.stem}--{t}.png"
            rc, wall = run_tool(SB.tool_command(t, peers_py), src, dst, a.timeout)
            name = "ours" if t == "ours" else t
            rec = {"image": src.name, "tool": t, "rc": rc, "time_s": wall}
            if rc == 0 and dst.exists():
                with Image.open(dst) as im:
                    out = im.convert("RGBA")
                rt = snap_metrics.roundtrip(dst, src)
                rec.update(rt)
                de = rt.get("mean_de2000")
                lines = [f"{name} {out.width}x{out.height}",
                         f"{wall:.2f}s rt dE {de:.1f}" if de is not None else f"{wall:.2f}s"]
                tiles.append(tile(out, box, lines, font))
            else:
                tiles.append(tile(None, box, [name, f"failed rc={rc}"], font))
            records.append(rec)
            print(f"{src.stem:26s} {t:18s} rc={rc} {rec.get('out_w', '-')}x{rec.get('out_h', '-')} "
                  f"{wall:.2f}s", file=sys.stderr)
        row = Image.new("RGBA", (len(tiles) * (box + PAD) + PAD, box + LABEL_H + PAD), (255, 255, 255, 255))
        for i, t_img in enumerate(tiles):
            row.paste(t_img, (PAD + i * (box + PAD), PAD))
        rows.append(row)

    sheet = Image.new("RGBA", (max(r.width for r in rows), sum(r.height for r in rows) + PAD), (255, 255, 255, 255))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    path = Path(a.out) / f"contact-sheet-{stamp}.png"
    sheet.convert("RGB").save(path)
    labels = {t: ("dgx-pixels snap" if t == "ours" else f"{t} {versions.get(SB.PEERS[t][1], '')}") for t in tools}
    (out_dir / "records.json").write_text(json.dumps({"tools": labels, "records": records}, indent=1))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
