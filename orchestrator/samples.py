"""Sample inputs made by the project itself: hand-drawn sprites and a pseudo-pixel-art degrader.

The sprites are drawn here as character maps (one letter per pixel, ``.`` transparent); the
degrader turns a true-resolution sprite into what a diffusion model draws when asked for pixel
art: big uneven fake pixels at an arbitrary phase, soft edges, colour drift, noise and JPEG
ringing. The demo, the README figure and the tests use them, so no third-party art ships.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# A small warm palette; letters index it.
COLORS: dict[str, tuple[int, int, int]] = {
    "k": (26, 28, 44),  # outline
    "s": (148, 176, 194),  # steel light
    "S": (86, 108, 134),  # steel dark
    "w": (244, 244, 244),  # highlight
    "r": (177, 62, 83),  # plume / cape
    "R": (93, 39, 93),  # cape shadow
    "y": (255, 205, 117),  # gold / skin
    "o": (239, 125, 87),  # orange
    "g": (56, 183, 100),  # green
    "G": (37, 113, 121),  # green shadow
    "b": (59, 93, 201),  # blue
    "B": (41, 54, 111),  # navy
    "c": (115, 239, 247),  # cyan glass
    "n": (133, 76, 48),  # brown
}

KNIGHT_BASE = """
......rr........
.....rrr........
....kkkkkk......
...ksssssSk.....
...kswkkkSk.....
...ksskyySk.....
...kSssssSk.....
..kkkSSSSkkk....
.kssrsssssrsk...
.ksSrsssssrSk...
.kskrrsssrrksk..
..kkRkSSSkRkk...
....kSkkkSk.....
....kSk.kSk.....
....kkk.kkk.....
................
"""

# Leg poses for a 4-frame walk cycle; rows 12-14 of the base are replaced.
_KNIGHT_LEGS = [
    ["....kSkkkSk.....", "....kSk.kSk.....", "....kkk.kkk....."],
    ["....kSkkkSk.....", "...kSk...kSk....", "...kkk...kkk...."],
    ["....kSkkkSk.....", "....kSk.kSk.....", "....kkk.kkk....."],
    ["....kSkkSk......", ".....kSkSk......", ".....kkkkk......"],
]

POTION = """
................
......kkkk......
......kwnk......
......kkkk......
.......kk.......
......kcck......
.....kcwcck.....
....kcwccccck...
....kccccccck...
....krrrrrrrk...
....krorrrrrk...
....krrrrrrRk...
.....kRRRRRk....
......kkkkk.....
................
................
"""

SLIME = """
................
................
................
................
.......kkk......
.....kkgggkk....
....kggwwgggk...
...kggwggggggk..
...kgggkggkggk..
..kggggkggkgggk.
..kgggggggggggk.
..kGggggggggGGk.
..kGGGGGGGGGGGk.
...kkkkkkkkkkk..
................
................
"""

COIN = """
................
................
.....kkkkkk.....
....kyyyyyyk....
...kyywyyyyok...
...kywyykyyok...
...kyyyykyyok...
...kyyyykyyok...
...kyyyykyyok...
...kyyyykyyok...
...kyyyyyyyok...
....kooooook....
.....kkkkkk.....
................
................
................
"""


def draw(art: str) -> np.ndarray:
    """Turn a character map into an (H, W, 4) uint8 RGBA sprite ('.' = transparent)."""
    rows = [r for r in art.strip("\n").splitlines()]
    h, w = len(rows), max(len(r) for r in rows)
    out = np.zeros((h, w, 4), dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch != ".":
                out[y, x, :3] = COLORS[ch]
                out[y, x, 3] = 255
    return out


def knight_walk() -> list[np.ndarray]:
    """Four 16x16 frames of a knight's walk cycle (legs move, body bobs on frames 1 and 3)."""
    base = KNIGHT_BASE.strip("\n").splitlines()
    frames = []
    for i, legs in enumerate(_KNIGHT_LEGS):
        rows = base[:12] + legs + base[15:]
        if i in (1, 3):  # bob: body one pixel down, legs stay on the ground
            rows = ["." * 16] + rows[:11] + legs + base[15:]
        frames.append(draw("\n".join(rows)))
    return frames


def sprites() -> dict[str, np.ndarray]:
    """All sample sprites by name."""
    return {"knight": draw(KNIGHT_BASE), "potion": draw(POTION), "slime": draw(SLIME), "coin": draw(COIN)}


@dataclass
class Degraded:
    """A pseudo-pixel-art rendering and the truth it was made from."""

    image: np.ndarray  # (H, W, 3) uint8, what a diffusion model would draw
    truth: np.ndarray  # (h, w, 4) uint8, the true sprite
    x_lines: np.ndarray  # cell boundaries in image px, len w+1
    y_lines: np.ndarray  # len h+1


def colour_runs(rng: np.random.Generator, w: int, h: int, colours: int = 10, repeat: float = 0.5) -> np.ndarray:
    """(h, w, 3) uint8 art of ``colours`` random colours in horizontal runs: each pixel repeats
    its left neighbour with probability ``repeat`` (a texture, a sky). Draws the colours, the
    picks and the runs from ``rng`` in that order."""
    palette = rng.integers(0, 256, (colours, 3))
    idx = rng.integers(0, colours, (h, w))
    runs = rng.random((h, w)) < repeat
    for x in range(1, w):
        idx[runs[:, x], x] = idx[runs[:, x], x - 1]
    return palette[idx].astype(np.uint8)


def _lines(n: int, cell: float, start: float, rng: np.random.Generator, jitter: float = 0.9,
           drift: float = 0.0, wide: int = 0) -> np.ndarray:
    # Uneven cells: each inner boundary strays by up to ``jitter`` px (about 1 by default), as
    # diffusion output does.
    if drift or wide:
        sizes = cell * (1.0 + drift * np.linspace(-0.5, 0.5, n) * rng.choice([-1.0, 1.0]))
        for i in rng.choice(n, size=min(wide, n), replace=False):
            sizes[i] *= rng.uniform(1.3, 1.5)
        lines = start + np.concatenate([[0.0], np.cumsum(sizes)])
    else:
        lines = start + cell * np.arange(n + 1)
    lines[1:-1] += rng.uniform(-jitter, jitter, n - 1)
    return np.round(lines).astype(int)


def _wave(rng: np.random.Generator, w: int, h: int, swing: float, axis: int) -> np.ndarray:
    """(h, w) displacement in px along ``axis`` (1 = x): a smooth wave of at most about one
    cycle across the image, with its straight trend along the axis taken out (that part is
    drift), scaled to ``swing`` px from its lowest to its highest point."""
    fx, fy = rng.uniform(-1.2, 1.2, 2)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    X = np.arange(w, dtype=np.float64)[None, :] / w
    Y = np.arange(h, dtype=np.float64)[:, None] / h
    d = np.sin(2.0 * np.pi * (fx * X + fy * Y) + phase)
    t = np.broadcast_to(X if axis == 1 else Y, d.shape)
    d = d - np.polyval(np.polyfit(t.ravel(), d.ravel(), 1), t)
    span = float(d.max() - d.min())
    return d * (swing / span) if span > 0 else d


def degrade(
    sprite: np.ndarray,
    *,
    cell: float = 11.3,
    cell_h: float | None = None,
    jitter: float = 0.9,
    seed: int = 0,
    background: tuple[int, int, int] = (214, 208, 196),
    blur: float = 0.9,
    noise: float = 4.0,
    jpeg_quality: int | None = 80,
    pad: int | tuple[int, int, int, int] = 1,
    drift: float = 0.0,
    bend: float = 0.0,
    wide: int = 0,
    colour_drift: float = 2.5,
    drift_field: float = 0.0,
) -> Degraded:
    """Render a true sprite as diffusion-style pseudo pixel art.

    cell: fake-pixel size in output px (non-integer allowed), ``cell_h`` its height when the
    fake pixels are not square (default ``cell``); jitter: how far (px) each inner cell boundary
    may stray from the lattice; blur: Gaussian radius in px;
    noise: std-dev of per-pixel noise in 8-bit levels; ``jpeg_quality`` None saves no JPEG;
    pad: background px around the grid, or (left, right, top, bottom), where a negative pad cuts
    into the border cells (kept well under half a cell, as in real output: more would make the
    margin's cell count ambiguous). Transparent sprite pixels are drawn on ``background``.
    ``colour_drift``: std-dev (8-bit levels, per channel) of each cell's colour from the
    sprite's; ``drift_field`` (0-1) is the share of that variance which is a smooth field over
    the image (a tint that wanders across several cells) rather than drawn cell by cell.

    A grid that is not a lattice, as diffusion output often draws: ``drift`` is how much the
    cell size changes across the image (0.06 = from 3 % under to 3 % over ``cell``, in a random
    direction per axis); ``bend`` bends the grid lines by that many cells from their lowest to
    their highest point (a smooth wave of at most about one cycle across the image); ``wide``
    cells per axis are drawn 1.3-1.5x wide.
    """
    rng = np.random.default_rng(seed)
    h, w = sprite.shape[:2]
    left, right, top, bottom = (pad,) * 4 if isinstance(pad, int) else pad
    xl = _lines(w, cell, left + rng.uniform(0, 1), rng, jitter, drift, wide)
    ch = cell if cell_h is None else cell_h
    yl = _lines(h, ch, top + rng.uniform(0, 1), rng, jitter, drift, wide)
    W, H = int(xl[-1] + right), int(yl[-1] + bottom)
    col = np.where(sprite[..., 3:4] > 0, sprite[..., :3], np.array(background, np.uint8)).astype(np.float64)
    own = rng.normal(0, 1.0, col.shape)  # per-cell colour drift
    if drift_field:
        own = np.sqrt(1.0 - drift_field) * own + np.sqrt(drift_field) * _smooth_field(rng, h, w)
    col += colour_drift * own
    X = np.arange(W, dtype=np.float64)[None, :]
    Y = np.arange(H, dtype=np.float64)[:, None]
    if bend:
        X = X - _wave(rng, W, H, bend * cell, 1)
        Y = Y - _wave(rng, W, H, bend * ch, 0)
    xi = np.clip(np.searchsorted(xl, X, side="right") - 1, 0, w - 1)
    yi = np.clip(np.searchsorted(yl, Y, side="right") - 1, 0, h - 1)
    img = col[yi, xi]
    outside = (X < xl[0]) | (X >= xl[-1]) | (Y < yl[0]) | (Y >= yl[-1])
    img[outside] = background
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(pil).astype(np.float64) + rng.normal(0, noise, (H, W, 3))
    out = np.clip(arr, 0, 255).astype(np.uint8)
    if jpeg_quality:
        buf = io.BytesIO()
        Image.fromarray(out, "RGB").save(buf, "JPEG", quality=jpeg_quality)
        buf.seek(0)
        out = np.asarray(Image.open(buf).convert("RGB")).copy()
    return Degraded(image=out, truth=sprite, x_lines=xl, y_lines=yl)


def _smooth_field(rng: np.random.Generator, h: int, w: int, reach: float = 6.0) -> np.ndarray:
    """(h, w, 3) values of unit variance per channel that wander over about ``reach`` cells:
    random values on a coarse lattice, interpolated bilinearly."""
    gh, gw = int(np.ceil(h / reach)) + 2, int(np.ceil(w / reach)) + 2
    coarse = rng.normal(0, 1.0, (gh, gw, 3))
    y = np.arange(h) / reach + rng.uniform(0, 1)
    x = np.arange(w) / reach + rng.uniform(0, 1)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    f = ((1 - fy) * (1 - fx) * coarse[y0][:, x0] + (1 - fy) * fx * coarse[y0][:, x0 + 1]
         + fy * (1 - fx) * coarse[y0 + 1][:, x0] + fy * fx * coarse[y0 + 1][:, x0 + 1])
    sd = f.reshape(-1, 3).std(axis=0)
    return f / np.where(sd > 0, sd, 1.0)


def cut_out(image: np.ndarray, background: tuple[int, int, int], *, noise: float = 4.0, fill: str = "stored",
            seed: int = 0) -> np.ndarray:
    """``image`` (H, W, 3 uint8) as a background remover hands it over: RGBA whose alpha is a
    soft matte keyed on ``background`` (0 within ``max(12, 4 * noise)`` RGB levels of it, ramping
    to 255 over the next 40), with ``fill`` under alpha 0: ``"stored"`` (the pixels as drawn),
    ``"black"``, ``"white"`` or ``"random"`` (seeded noise), as different tools leave it.
    """
    rgb = np.asarray(image)[..., :3]
    dist = np.sqrt(((rgb.astype(np.float32) - np.asarray(background, np.float32)) ** 2).sum(axis=-1))
    near = max(12.0, 4.0 * noise)
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = np.round(np.clip((dist - near) / 40.0, 0.0, 1.0) * 255.0).astype(np.uint8)
    hidden = out[..., 3] == 0
    if fill == "black":
        out[hidden, :3] = 0
    elif fill == "white":
        out[hidden, :3] = 255
    elif fill == "random":
        out[hidden, :3] = np.random.default_rng(seed).integers(0, 256, (int(hidden.sum()), 3), dtype=np.uint8)
    elif fill != "stored":
        raise ValueError(f"fill must be 'stored', 'black', 'white' or 'random', got {fill!r}")
    return out
