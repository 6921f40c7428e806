#!/usr/bin/env python3
"""Grid snap on sprites from other sources than snap-dev's, degraded at the benchmark's levels.

    python bench/snap_other_sources.py [--per-sheet 8] [--seed 12345] [--gfx DIR] [--json OUT]
                                       [--verbose] [--only 'SPRITE LEVEL'] [--save DIR]

The benchmark's figures are also measured on a second set of cases made from other packages'
sprites, which is not given. This builds such a set: it fetches Debian's ``cataclysm-dda-data``
(pinned below; its tilesets are CC-BY-SA-3.0) with ``apt-get download`` into
``~/.cache/dgx-pixels/other-sprites/`` (``--gfx`` takes an unpacked ``gfx`` folder instead),
cuts sprites out of six pixel-art tilesets (tiles of 16, 20, 24 and 32 px: furniture, terrain,
items, characters), and puts each on a transparent canvas of 32 or 48 px at a random place.

Every sprite is rendered at the four levels as ``../shared/bench/README.md`` and snap-dev's
``params.json`` describe them (``LEVELS``: cell size, boundary jitter, blur, colour drift, noise,
JPEG, the warp level's drift, bend and wide cells, and each border cell cut or padded by up to
0.45 cell) with ``orchestrator.samples.degrade``, then snapped in process and scored with the
shared scorer's metrics (``../shared/bench/snap_metrics.py``, needed). snap-dev's own easy and
medium sprites go through the same renderer in the same run: the renderer is not the
benchmark's own, so the gap between the two rows, not either row alone, is what says how much
harder the other sprites are. Every case is also snapped on the lines it was drawn on (the
"true lines" columns: the same colour sampling with no grid error), so a case that is solved
there and not in automatic mode was lost by the grid, and one that is not solved there either
by the colours. A miss at the right size whose art is whole but one cell off ("art 1 cell off")
was lost by the flat margins' split around the art.

Sprites drawn mostly in 2x2 blocks are left out: their true size is a matter of opinion (a
snap to half the size is as faithful), and the scorer would call it wrong.
"""
from __future__ import annotations

import argparse
import json
import subprocess
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

PACKAGE = "cataclysm-dda-data=0.F-3-9"
CACHE = Path.home() / ".cache" / "dgx-pixels" / "other-sprites"
#: tileset image (under the package's gfx folder), tile width and height in px
SHEETS = [
    ("ChestHole16Tileset/tiles.png", 16, 16),
    ("ChestHole16Tileset/tiles24.png", 24, 24),
    ("HoderTileset/hodertiles.png", 16, 16),
    ("BrownLikeBears/tiles.png", 20, 20),
    ("MshockXotto+/tiles.png", 32, 32),
    ("ChibiUltica/normal.png", 32, 32),
]
#: per level: ranges drawn uniformly (cell size px, blur px, colour drift and noise in 8-bit
#: levels, JPEG quality; None = saved as PNG), as snap-dev's params.json give them
LEVELS = {
    "easy": dict(cells=(10.7, 19.9), jitter=1.0, blur=(0.5, 0.7), drift=(1.6, 2.9), noise=(2.0, 3.0), jpeg=None),
    "medium": dict(cells=(11.3, 16.0), jitter=1.0, blur=(0.7, 1.1), drift=(3.0, 6.0), noise=(3.0, 5.0), jpeg=(83, 95)),
    "hard": dict(cells=(6.3, 13.7), jitter=2.0, blur=(1.0, 1.5), drift=(5.0, 9.0), noise=(5.0, 8.0), jpeg=(70, 81)),
    "warp": dict(cells=(7.0, 16.0), jitter=1.0, blur=(0.7, 1.0), drift=(3.0, 5.0), noise=(3.0, 5.0), jpeg=(82, 92),
                 warp=True),
}
#: snap-dev's cells are up to 6 % non-square; its colour drift wanders over several cells
#: (neighbouring cells' drift correlates 0.5-0.65, four cells apart still 0.35-0.55)
NON_SQUARE = 0.06
DRIFT_FIELD = 0.6


def fetch_package(package: str, cache: Path, folder: str, option: str) -> Path:
    """``folder`` (a path inside the Debian ``package``, pinned ``name=version``), downloaded
    with ``apt-get download`` and unpacked into ``cache`` on first use; ``option`` names the
    command-line option that takes an unpacked folder instead."""
    found = cache / "root" / folder
    if found.is_dir():
        return found
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        sys.exit(f"could not fetch {package} with apt-get download ({detail}); "
                 f"unpack it yourself and pass its {Path(folder).name} folder with {option}")
    deb = next(cache.glob(f"{package.split('=')[0]}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / "root")], check=True)
    deb.unlink()
    return found


def fetch_gfx() -> Path:
    """The package's gfx folder, downloaded and unpacked into the cache on first use."""
    return fetch_package(PACKAGE, CACHE, "usr/share/games/cataclysm-dda/gfx", "--gfx")


def blockiness(sprite: np.ndarray) -> float:
    """Share of the opaque 2x2 blocks that are one colour, at the best of the four phases."""
    best = 0.0
    for oy in (0, 1):
        for ox in (0, 1):
            b = sprite[oy:, ox:].astype(np.int16)
            h, w = (b.shape[0] // 2) * 2, (b.shape[1] // 2) * 2
            if h < 2 or w < 2:
                continue
            blk = b[:h, :w].reshape(h // 2, 2, w // 2, 2, 4)
            opaque = blk[..., 3].max(axis=(1, 3)) > 0
            one = (blk.max(axis=(1, 3)) == blk.min(axis=(1, 3))).all(axis=-1)
            if opaque.any():
                best = max(best, float(one[opaque].mean()))
    return best


def other_sprites(gfx: Path, rng: np.random.Generator, per_sheet: int) -> list[tuple[str, np.ndarray]]:
    """Up to ``per_sheet`` sprites from each tileset: tiles at least a quarter opaque, of four or
    more colours and not drawn in 2x2 blocks, cropped to their opaque pixels."""
    from PIL import Image

    out = []
    for rel, tw, th in SHEETS:
        sheet = np.asarray(Image.open(gfx / rel).convert("RGBA"))
        found = []
        for y in range(0, sheet.shape[0] - th + 1, th):
            for x in range(0, sheet.shape[1] - tw + 1, tw):
                tile = sheet[y:y + th, x:x + tw].copy()
                opaque = tile[..., 3] > 0
                if opaque.mean() < 0.25 or len(np.unique(tile[opaque][:, :3], axis=0)) < 4:
                    continue
                tile[..., 3] = np.where(opaque, 255, 0)
                ys, xs = np.nonzero(opaque)
                tile = tile[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
                if blockiness(tile) <= 0.6:
                    found.append((f"{rel.split('/')[0]}@{x},{y}", tile))
        for i in rng.choice(len(found), size=min(per_sheet, len(found)), replace=False):
            out.append(found[i])
    return out


def snap_dev_sprites() -> list[tuple[str, np.ndarray]]:
    """snap-dev's easy and medium cases' true sprites (each a whole canvas already)."""
    cases = sorted(SHARED.joinpath("snap-dev", "cases").glob("*-easy")) + \
        sorted(SHARED.joinpath("snap-dev", "cases").glob("*-medium"))
    return [(c.name.rsplit("-", 1)[0], load_image(c / "gt.png")) for c in cases]


def on_canvas(sprite: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``sprite`` at a random place on a transparent canvas of 32 px, or 48 px when it needs more."""
    h, w = sprite.shape[:2]
    side = 32 if max(h, w) <= 26 else 48
    canvas = np.zeros((side, side, 4), np.uint8)
    y, x = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
    canvas[y:y + h, x:x + w] = sprite
    return canvas


def render(truth: np.ndarray, level: str, rng: np.random.Generator, seed: int) -> samples.Degraded:
    """``truth`` as pseudo pixel art at ``level``'s settings (the image and its true lines)."""
    lv = LEVELS[level]
    cell = float(rng.uniform(*lv["cells"]))
    cell_h = cell * float(np.exp(rng.uniform(-NON_SQUARE, NON_SQUARE)))
    reach = min(6.0, 0.45 * min(cell, cell_h))
    pad = tuple(int(v) for v in np.round(rng.uniform(-1.0, 1.0, 4) * reach))
    warp = {}
    if lv.get("warp"):
        warp = dict(drift=float(rng.uniform(0.04, 0.08)), bend=float(rng.uniform(0.3, 0.5)), wide=int(rng.integers(0, 2)))
    d = samples.degrade(truth, cell=cell, cell_h=cell_h, jitter=lv["jitter"], seed=seed,
                        background=tuple(int(v) for v in rng.integers(30, 230, 3)),
                        blur=float(rng.uniform(*lv["blur"])), noise=float(rng.uniform(*lv["noise"])),
                        jpeg_quality=int(rng.integers(*lv["jpeg"])) if lv["jpeg"] else None, pad=pad,
                        colour_drift=float(rng.uniform(*lv["drift"])), drift_field=DRIFT_FIELD, **warp)
    return d


def true_grid(d: samples.Degraded) -> G.Grid:
    """The grid ``d`` was drawn on, as the snapper would have found it with no error."""
    h, w = d.image.shape[:2]
    xl, yl = np.asarray(d.x_lines, np.float64), np.asarray(d.y_lines, np.float64)
    return G.Grid(cell_w=float(np.diff(xl).mean()), cell_h=float(np.diff(yl).mean()), cols=len(xl) - 1,
                  rows=len(yl) - 1, x_lines=xl, y_lines=yl, confidence=1.0, phase=(0.0, 0.0), source_size=(w, h))


def run(sprites: list[tuple[str, np.ndarray]], place: bool, seed: int, metrics, tmp: Path, verbose: bool,
        only: str = "", save: Path | None = None) -> list[dict]:
    """Every sprite at every level (or those whose ``sprite level`` holds ``only``): one record
    each; ``save`` keeps every input, truth and output there."""
    recs = []
    for i, (name, sprite) in enumerate(sprites):
        for j, level in enumerate(LEVELS):
            if only not in f"{name} {level}":
                continue
            rng = np.random.default_rng([seed, i, j])
            truth = on_canvas(sprite, rng) if place else sprite
            d = render(truth, level, rng, seed=seed + 1000 * i + j)
            image = d.image
            gt, out = tmp / "gt.png", tmp / "out.png"
            if save:
                stem = f"{name.replace('/', '_').replace(',', '_')}-{level}"
                gt, out = save / f"{stem}-gt.png", save / f"{stem}-out.png"
                save_png(image, save / f"{stem}-input.png")
            save_png(truth, gt)
            t0 = time.process_time()
            snapped = None
            try:
                snapped = G.snap(image).image
                save_png(snapped, out)
                rec = metrics.score(out, gt)
            except DgxPixelsError as exc:
                rec = {"size_exact": False, "size_pm1": False, "pix_acc": 0.0, "error": str(exc)}
            rec.update(sprite=name, level=level, time_s=time.process_time() - t0)
            rec["solved"] = bool(rec["size_exact"] and rec["pix_acc"] >= 0.95)
            rec["one_off"] = bool(rec["size_exact"] and not rec["solved"] and one_cell_off(snapped, truth, metrics))
            # the reference: the same colour sampling on the true lines, so a miss whose
            # reference is solved is the grid's, and one whose reference is not is the colours'
            save_png(G.snap(image, grid=true_grid(d)).image, tmp / "ref.png")
            rec["ref_acc"] = metrics.score(tmp / "ref.png", gt)["pix_acc"]
            rec["ref_solved"] = bool(rec["ref_acc"] >= 0.95)
            recs.append(rec)
            if verbose and not rec["solved"]:
                size = f"{rec.get('out_w')}x{rec.get('out_h')} for {truth.shape[1]}x{truth.shape[0]}"
                off = ", the art one cell off" if rec["one_off"] else ""
                print(f"  {name} {level}: {size}, accuracy {rec['pix_acc']:.3f}{off} (on the true lines"
                      f" {rec['ref_acc']:.3f}) {rec.get('error', '')}")
    return recs


def one_cell_off(out: np.ndarray, truth: np.ndarray, metrics) -> bool:
    """Whether ``out`` (the truth's size) is the truth moved by one cell along x or y: at least
    95 % of the truth's opaque pixels that stay in the picture match (the scorer's dE00 < 10).
    Such a miss is the margins' split (flat background that does not say where its cells
    are), not the art's lines."""
    op = truth[..., 3] >= 128
    h, w = op.shape
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        t = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
        o = (slice(max(0, -dy), h + min(0, -dy)), slice(max(0, -dx), w + min(0, -dx)))
        m = op[t]
        if not m.any():
            continue
        lab_t = metrics.srgb_to_lab(truth[t][..., :3][m])
        lab_o = metrics.srgb_to_lab(out[o][..., :3][m])
        ok = (metrics.de2000(lab_o, lab_t) < 10.0) & (out[o][..., 3][m] >= 128)
        if float(ok.mean()) >= 0.95:
            return True
    return False


def table(title: str, recs: list[dict]) -> list[str]:
    lines = [f"{title}", "level    cases  solved  size exact  within 1  acc mean  t median ms  true lines: solved  acc mean"
             "  art 1 cell off"]
    for level in list(LEVELS) + ["ALL"]:
        rs = [r for r in recs if level in ("ALL", r["level"])]
        if not rs:
            continue

        def pct(key):
            return 100.0 * sum(bool(r[key]) for r in rs) / len(rs)
        lines.append(f"{level:7s}  {len(rs):5d}  {pct('solved'):5.0f}%  {pct('size_exact'):9.0f}%  {pct('size_pm1'):7.0f}%"
                     f"  {np.mean([r['pix_acc'] for r in rs]):8.3f}  {1000 * np.median([r['time_s'] for r in rs]):11.0f}"
                     f"  {pct('ref_solved'):18.0f}%  {np.mean([r['ref_acc'] for r in rs]):8.3f}  {pct('one_off'):13.0f}%")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-sheet", type=int, default=8, help="sprites per tileset (default 8)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--gfx", help="an unpacked cataclysm-dda-data gfx folder (default: fetched into the cache)")
    ap.add_argument("--json")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per case that is not solved")
    ap.add_argument("--only", default="", help="run only the cases whose 'sprite level' holds this")
    ap.add_argument("--save", help="keep every case's input, truth and output in this folder")
    a = ap.parse_args()
    if not (SHARED / "snap_metrics.py").is_file():
        sys.exit(f"needs the shared scorer's metrics: {SHARED / 'snap_metrics.py'} is missing")
    sys.path.insert(0, str(SHARED))
    import snap_metrics as metrics

    gfx = Path(a.gfx) if a.gfx else fetch_gfx()
    other = other_sprites(gfx, np.random.default_rng(a.seed), a.per_sheet)
    save = Path(a.save) if a.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{len(other)} sprites from {PACKAGE}'s tilesets, each at the four levels", flush=True)
        theirs = run(other, True, a.seed, metrics, Path(tmp), a.verbose, a.only, save)
        ours = run(snap_dev_sprites(), False, a.seed, metrics, Path(tmp), a.verbose, a.only, save)
    print("\n".join(table(f"\nother sources ({len(other)} sprites)", theirs)))
    print("\n".join(table(f"\nsnap-dev's easy and medium sprites, same renderer ({len(ours) // len(LEVELS)} sprites)", ours)))
    if a.json:
        Path(a.json).write_text(json.dumps({"other": theirs, "snap_dev": ours}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
