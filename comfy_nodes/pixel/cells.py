"""One colour per cell of a pseudo-pixel grid: the colour-sampling half of grid snap.

Once :mod:`comfy_nodes.pixel.grid` has placed the lines, each cell's colour is the median of a
k x k lattice of samples in its interior, away from the blurred edges. On cells too small for
that (under ``DEBLUR_MAX_CELL`` px, where the blur reaches the middle of every cell) the
blur is measured and its share of the neighbours' colours taken back out (``_deblurred``).
On noisy images the cells are then clustered in OKLab and the smoothed residual field, the
colour cast diffusion output adds, is removed (``consolidate_colours``), so cells that share
a true colour get one colour again.
"""
from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import InvalidArgumentError
from .imageio import as_rgba
from .stats import median

if TYPE_CHECKING:
    from .grid import Grid

#: Colour consolidation compares colour bins pairwise; this bounds its memory and time.
MAX_COLOUR_BINS = 1024
#: Colour consolidation alternates clustering and cast estimation at most this many rounds,
#: stopping early once no cell's cast moves by DRIFT_TOL (OKLab units) or more.
DRIFT_ROUNDS = 6
DRIFT_TOL = 0.002
#: The cast is each cell's residual from its cluster, smoothed by a Gaussian of DRIFT_SIGMA
#: cells. A diffusion cast can change within a few cells (on snap-dev's inputs neighbouring
#: cells' offsets correlate 0.5-0.65, four cells apart 0.35-0.55), and that window lags
#: behind it: cells of close shades took the wrong shade. So where the cast is strong (median
#: over the cells above CAST_STRONG, OKLab) it is found again over DRIFT_SIGMA_FAST cells, and
#: that reading is taken when it differs from the first by more than CAST_FAST (median): the
#: cast changes faster than the wide window follows. Not otherwise: the narrow window also
#: follows a small patch of a near colour under a slow cast (a 2 x 4 grey on grey-green merges
#: into it) and a large block of one (8 x 8 cells of two greens 0.039 apart), and lets more
#: noise through. Medians (strong, change) measured: snap-dev's hard cases up to 0.019 and
#: 0.0056; slow linear casts 0.017-0.025 and 0.001; generated art with per-cell noise only
#: under 0.0083 and 0.0029 (the blocks of near greens: 0.0007 and 0.0040).
DRIFT_SIGMA = 3.0
DRIFT_SIGMA_FAST = 2.0
CAST_STRONG = 0.008
CAST_FAST = 0.0033
#: Flat cells (no noise inside them) whose colours lie closer than this in OKLab are one colour
#: (``merge_near_duplicates``): about one just-noticeable difference, well under the closest
#: steps of a hand-made palette ramp.
SAME_COLOUR = 0.012
#: More distinct colours than this among flat cells is no pixel art: nothing is merged.
SAME_COLOUR_MAX = 4096
#: :func:`_leaders` lists every close pair of colours when that is cheaper (scattered colours):
#: at most this many close pairs (a step of Python each) among at most WINDOW_PAIRS_MAX pairs
#: within reach in lightness (compared at once); otherwise each colour is compared with the
#: leaders only (a dense cluster of noisy shades).
CLOSE_PAIRS_MAX = 1 << 16
WINDOW_PAIRS_MAX = 1 << 21
#: After consolidating noisy cells, colours closer than this (CIEDE2000) are one colour. OKLab's
#: cube root spreads the darkest colours: a true black came back as (0,0,0), (0,0,2), (1,2,0)
#: and (2,0,0), each a cluster of its own, CIEDE2000 under 1 apart. On snap-dev's sprites of at
#: most 16 true colours the output had 518 colours for their 377 (2.5: 462); true colours more
#: than 5 apart that came out as one rose by 10 pairs in 14,638, pixel accuracy 0.9882 ->
#: 0.9881. Hand-made ramps step 5 and more; 4 merged 2,236 more such pairs.
NOISY_SAME_COLOUR_DE00 = 2.5
#: A cell farther than tau and this many median distances from its cluster mean is an outlier.
OUTLIER_NOISE = 6.0
#: A cluster's leader is the densest colour within this fraction of tau. At half of tau the
#: midpoint of two colours more than tau apart (where their blurred and dithered mixtures lie)
#: is never denser than the colours themselves, so it cannot lead them into one cluster.
DENSITY_RADIUS = 0.5
#: Cells under DEBLUR_MAX_CELL px (noisy images; grids whose per-axis weight matrices
#: stay under DEBLUR_MAX_WEIGHTS entries)
#: have the blur's share of their neighbours' colours taken out of their medians
#: (_deblurred): the blur is fitted, over DEBLUR_SIGMAS, in a window of DEBLUR_WINDOW px, and
#: DEBLUR_GAIN of one Van Cittert step is applied (snap-dev's sprites re-degraded at the hard
#: level's settings: solved 67 of 78 without, 70 at 0.6, 71 at 0.8, 70 at 1.0).
DEBLUR_MAX_CELL = 9.0
DEBLUR_WINDOW = 160
DEBLUR_GAIN = 0.8
DEBLUR_MAX_WEIGHTS = 4_000_000
DEBLUR_SIGMAS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)


def sample_coords(lines: np.ndarray, n: int, k: int, lo: float, hi: float) -> np.ndarray:
    """(cells, k) integer pixel coordinates of a k-point lattice inside each cell.

    ``lines``: the cell boundaries along one axis (source px, cells + 1 of them); ``n``: the
    image's length on that axis (px); the points run from ``lo`` to ``hi`` (fractions 0..1
    of each cell, the parts outside the image left out)."""
    a = lines[:-1, None]
    b = lines[1:, None]
    a = np.maximum(a, 0.0)
    b = np.minimum(b, float(n))
    f = np.linspace(lo, hi, k)[None, :]
    c = np.floor(a + f * (b - a))
    return np.clip(c, 0, n - 1).astype(np.intp)


def _mode_colours(samp: np.ndarray, thr) -> np.ndarray:
    """(rows, cols, 4) uint8: the most frequent whole colour among each cell's samples
    (``samp``: (rows, cols, n, 4) uint8; ties: the one met first in sorted order), alpha made
    binary at ``thr`` (transparent cells hold 0, 0, 0, 0).

    For a grid read off an exact enlargement: every cell is one colour of the sprite, and a
    per-channel median of samples that reach into a neighbour (cells of 2 and 3 px at 2.25x)
    mixed the two colours' channels into one neither has. Transparent samples count as one
    colour, whatever lies under them."""
    rows, cols, n, _ = samp.shape
    samp = samp.copy()
    clear = samp[..., 3] < thr
    samp[clear] = 0
    samp[..., 3] = np.where(clear, 0, 255)
    packed = np.ascontiguousarray(samp).view(np.uint32)[..., 0]
    srt = np.sort(packed, axis=2)
    # run lengths in the sorted samples: a run ends where the next sample differs
    ends = np.concatenate([srt[..., 1:] != srt[..., :-1], np.ones((rows, cols, 1), bool)], axis=2)
    idx = np.broadcast_to(np.arange(n), srt.shape)
    last_end = np.maximum.accumulate(np.where(np.concatenate(
        [np.ones((rows, cols, 1), bool), ends[..., :-1]], axis=2), idx, 0), axis=2)
    runs = np.where(ends, idx - last_end + 1, 0)
    best = np.take_along_axis(srt, runs.argmax(axis=2)[..., None], axis=2)[..., 0]
    return best.view(np.uint8).reshape(rows, cols, 4).copy()


def sample_cells(rgba: np.ndarray, grid: Grid, *, k: int = 5, inner: float = 0.5, consolidate: bool = True,
                 whole: bool = False) -> np.ndarray:
    """One colour per cell: per-channel median of a k x k lattice in the cell interior.

    ``inner`` is the fraction of the cell (centred) the lattice spans, 0..1; the blurred
    edges outside it never reach the estimate. With ``whole`` (and on an exact grid) the
    lattice's most frequent whole colour instead: every colour of the result is one of the
    image's, as a palette's colours must stay. Returns (rows, cols, 4) uint8.
    """
    a = as_rgba(rgba)
    h, w = a.shape[:2]
    lo, hi = 0.5 - inner / 2, 0.5 + inner / 2
    # bound the sample tensor (rows * cols * k^2 * 4 bytes) on grids with very many cells
    ncell = grid.rows * grid.cols
    if ncell * k * k > 8_000_000:
        k = max(1, int(math.sqrt(8_000_000 / max(1, ncell))))
    xs = sample_coords(grid.x_lines, w, k, lo, hi)  # (cols, k)
    ys = sample_coords(grid.y_lines, h, k, lo, hi)  # (rows, k)
    yy = ys[:, None, :, None]
    xx = xs[None, :, None, :]
    # whole pixels gathered as uint32: a quarter of the indexing of gathering their bytes
    px = np.ascontiguousarray(a).view(np.uint32)[..., 0]
    samp = px[yy, xx].view(np.uint8).reshape(grid.rows, grid.cols, k, k, 4)
    if grid.exact or whole:
        flat = samp.reshape(grid.rows, grid.cols, k * k, 4)
        out = _mode_colours(flat, _alpha_threshold(flat[..., 3]))
        if consolidate and not grid.exact:
            # cells a level or two apart are one colour, as below; the most common one is kept
            out[..., :3] = np.round(merge_near_duplicates(out[..., :3], out[..., 3] > 0))
        return out
    # samples on the last axis: sorting 25 uint8 values per channel is the fast median
    samp = np.ascontiguousarray(samp.reshape(grid.rows, grid.cols, k * k, 4).transpose(0, 1, 3, 2))
    n = k * k
    thr = _alpha_threshold(samp[:, :, 3])
    if (samp[:, :, 3] < thr).any():
        srt, out = _opaque_median(samp, thr)
    else:
        # numpy sorts 16-bit values with SIMD but bytes one at a time: widening first is
        # five times faster than sorting the bytes (the same values either way)
        srt = np.sort(samp.astype(np.int16), axis=3)
        out = srt[..., n // 2].astype(np.float64) if n % 2 else 0.5 * (srt[..., n // 2 - 1].astype(np.float64) + srt[..., n // 2])
    opaque = out[..., 3] >= thr
    # a clean upscale (no noise inside cells) must round-trip exactly: only consolidate
    # colours of images whose cells are visibly noisy (median distance to the cell median)
    some = srt[:, :, :3, :: max(1, n // 5)][opaque]
    dev = np.abs(some - out[opaque][:, :3, None])[some <= 255]  # not the hidden samples
    spread = float(median(dev)) if dev.size else 0.0
    if consolidate and spread >= 1.0:
        if not grid.smooth and min(grid.cell_w, grid.cell_h) < DEBLUR_MAX_CELL:
            out[..., :3] = _deblurred(a, grid, out[..., :3], xs, ys, opaque)
        out[..., :3] = consolidate_colours(out[..., :3], opaque)
        out[..., :3] = merge_near_duplicates(out[..., :3], opaque, de00=NOISY_SAME_COLOUR_DE00)
    elif consolidate and not grid.exact and min(grid.cell_w, grid.cell_h) > 1.0:
        # flat cells whose colours differ by a level or two from cell to cell (a diffusion
        # model's outline as #1b1326, #1b1327, #1a1326...): one colour each
        out[..., :3] = merge_near_duplicates(out[..., :3], opaque)
    out = np.round(out).astype(np.uint8)
    # pixel art has no half-transparent pixels; what lies under transparency is not kept
    out[..., 3] = np.where(opaque, 255, 0).astype(np.uint8)
    out[~opaque, :3] = 0
    return out


def _phi(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz & Stegun 7.1.26, error under 1.5e-7)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    y = 1.0 - poly * t * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * y)


def _axis_weights(lines: np.ndarray, pos: np.ndarray, sigma: float, outer: tuple[bool, bool]) -> np.ndarray:
    """(len(pos), cells): how much of each cell between ``lines`` a Gaussian blur of ``sigma`` px
    brings to each position ``pos`` (px). ``outer``: whether the first / last cell is the image's
    outermost, which reaches past the image (as a blur that extends the border does)."""
    edges = np.asarray(lines, dtype=np.float64).copy()
    if outer[0]:
        edges[0] = -np.inf
    if outer[1]:
        edges[-1] = np.inf
    if sigma <= 0.0:
        return ((pos[:, None] >= edges[None, :-1]) & (pos[:, None] < edges[None, 1:])).astype(np.float64)
    cdf = _phi((edges[None, :] - pos[:, None]) / sigma)
    return cdf[:, 1:] - cdf[:, :-1]


def _blur_sigma(a: np.ndarray, grid: Grid, c: np.ndarray, hidden: np.ndarray) -> tuple[float, np.ndarray]:
    """The blur (Gaussian sigma, px) that best turns the cell colours ``c`` (rows, cols, 3) drawn
    on ``grid`` into the image ``a``, fitted over DEBLUR_SIGMAS on the opaque pixels of the
    window of about DEBLUR_WINDOW px a side whose cells change colour most; and the colour the
    ``hidden`` (transparent) cells had when the image was blurred, fitted with it: a background
    remover keeps the blurred edges but stores anything (black, white, noise) under alpha 0."""
    rows, cols = c.shape[:2]
    nr = max(1, min(rows, int(DEBLUR_WINDOW / grid.cell_h)))
    nc = max(1, min(cols, int(DEBLUR_WINDOW / grid.cell_w)))
    change = np.zeros((rows, cols))
    change[:, 1:] += np.abs(np.diff(c, axis=1)).sum(-1)
    change[1:] += np.abs(np.diff(c, axis=0)).sum(-1)
    cs = np.pad(change.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = cs[nr:, nc:] - cs[:-nr, nc:] - cs[nr:, :-nc] + cs[:-nr, :-nc]
    r0, c0 = (int(v) for v in np.unravel_index(int(np.argmax(box)), box.shape))
    h, w = a.shape[:2]
    x0, x1 = int(max(0, grid.x_lines[c0])), int(min(w, grid.x_lines[c0 + nc]))
    y0, y1 = int(max(0, grid.y_lines[r0])), int(min(h, grid.y_lines[r0 + nr]))
    none = np.zeros(3)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0, none
    # the window's cells and a margin of cells that a blur of up to 2.5 px can bring in
    mr = int(math.ceil(3.0 * max(DEBLUR_SIGMAS) / max(1.0, grid.cell_h))) + 1
    mc = int(math.ceil(3.0 * max(DEBLUR_SIGMAS) / max(1.0, grid.cell_w))) + 1
    ra, rb = max(0, r0 - mr), min(rows, r0 + nr + mr)
    ca, cb = max(0, c0 - mc), min(cols, c0 + nc + mc)
    gone = hidden[ra:rb, ca:cb].astype(np.float64)
    sub = c[ra:rb, ca:cb] * (1.0 - gone[..., None])
    px = np.arange(x0, x1) + 0.5
    py = np.arange(y0, y1) + 0.5
    img = a[y0:y1, x0:x1, :3].astype(np.float64)
    seen = a[y0:y1, x0:x1, 3] >= 128
    if int(seen.sum()) < 16:
        return 0.0, none
    best = (np.inf, 0.0, none)
    for sigma in DEBLUR_SIGMAS:
        wx = _axis_weights(grid.x_lines[ca:cb + 1], px, sigma, (ca == 0, cb == cols))
        wy = _axis_weights(grid.y_lines[ra:rb + 1], py, sigma, (ra == 0, rb == rows))
        model = np.einsum("yr,rcz,xc->yxz", wy, sub, wx, optimize=True)
        back = none
        if gone.any():
            # the hidden cells' share of each pixel, and the one colour that fits them best
            hid = wy @ gone @ wx.T
            share = hid[seen]
            if float(share @ share) > 1e-6:
                back = np.clip((share @ (img[seen] - model[seen])) / float(share @ share), 0.0, 255.0)
            model = model + hid[..., None] * back
        best = min(best, (float(np.mean(((model - img) ** 2)[seen])), sigma, back), key=lambda t: t[0])
    return best[1], best[2]


def _deblurred(a: np.ndarray, grid: Grid, c: np.ndarray, xs: np.ndarray, ys: np.ndarray,
               opaque: np.ndarray) -> np.ndarray:
    """Cell colours ``c`` (rows, cols, 3: medians of each cell's samples at ``xs`` x ``ys``,
    (cells, k) px) with the share of the neighbours' colours that the image's blur carried into
    those samples taken back out: DEBLUR_GAIN of one Van Cittert step, which subtracts from
    ``c`` what ``c`` itself, drawn and blurred, brings to its cells' samples beyond ``c``. On
    cells of 6-8 px a blur of 1-1.5 px reaches the middle of every cell. Transparent cells
    (not ``opaque``) count with the colour fitted for them (see :func:`_blur_sigma`) and keep
    their own."""
    rows, cols = c.shape[:2]
    k = xs.shape[1]
    if max(rows, cols) ** 2 * k > DEBLUR_MAX_WEIGHTS:
        return c
    hidden = ~opaque
    sigma, back = _blur_sigma(a, grid, c, hidden)
    if sigma <= 0.0:
        return c
    drawn = np.where(hidden[..., None], back, c)
    # the mean over each cell's samples (a cell-by-cell matrix per axis) stands for their median
    wx = _axis_weights(grid.x_lines, xs.ravel() + 0.5, sigma, (True, True)).reshape(cols, k, cols).mean(axis=1)
    wy = _axis_weights(grid.y_lines, ys.ravel() + 0.5, sigma, (True, True)).reshape(rows, k, rows).mean(axis=1)
    seen = np.einsum("ir,rcz,jc->ijz", wy, drawn, wx, optimize=True)
    return np.where(hidden[..., None], c, np.clip(c + DEBLUR_GAIN * (drawn - seen), 0.0, 255.0))


def _middle(srt: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of the first ``count`` values of each row (last axis) of the sorted ``srt``."""
    lo = np.take_along_axis(srt, ((count - 1) // 2)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(srt, (count // 2)[..., None], axis=-1)[..., 0]
    return 0.5 * (lo.astype(np.float64) + hi)


def _alpha_threshold(alpha: np.ndarray) -> int:
    """The alpha from which a sample counts as opaque: 128, or half the highest alpha when
    nothing reaches 128. A sprite drawn wholly half-transparent (a ghost at alpha 110) keeps
    its shape rather than vanishing into an empty image."""
    top = int(alpha.max()) if alpha.size else 0
    return 128 if top >= 128 or top == 0 else max(1, (top + 1) // 2)


def _opaque_median(samp: np.ndarray, thr: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the median alpha of the samples ``samp`` (rows, cols, 4, n uint8) and the
    median colour of those of them that are opaque (alpha >= ``thr``; all of them where none is):
    the colour stored under transparency, often black or noise, is no part of the sprite.
    Returns (sorted samples, opaque ones first, as int16; medians (rows, cols, 4) float64)."""
    n = samp.shape[-1]
    alpha = samp[:, :, 3:4, :]
    hidden = np.broadcast_to(alpha < thr, samp.shape).copy()
    hidden[:, :, 3] = False
    count = n - hidden[:, :, :1].sum(axis=-1, dtype=np.intp)
    none = count == 0
    hidden &= ~none[..., None]
    vals = samp.astype(np.int16)
    vals[hidden] = np.iinfo(np.int16).max  # sorts after every colour
    srt = np.sort(vals, axis=3)
    count = np.where(none, n, count)
    counts = np.concatenate([np.broadcast_to(count, count.shape[:2] + (3,)), np.full(count.shape, n)], axis=2)
    return srt, _middle(srt, counts)


def _leader_clusters(lab: np.ndarray, tau: float, density_radius: float = 1.0) -> np.ndarray:
    """Greedy density-ordered clustering of colours; returns a cluster id per row of ``lab``.

    Leaders are taken in order of the number of colours within ``density_radius * tau`` of
    them, and each takes the unlabelled colours within ``tau``."""
    # colours are binned first (bins a fraction of tau wide); the pairwise step is quadratic
    # in the number of bins, so coarsen the bins until at most MAX_COLOUR_BINS remain
    for div in (4.0, 2.0, 1.0, 0.5):
        q = np.round(lab / (tau / div)).astype(np.int64) + 512
        key = (q[:, 0] << 20) | (q[:, 1] << 10) | q[:, 2]
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        if len(cnt) <= MAX_COLOUR_BINS:
            break
    else:
        return np.arange(len(lab))
    inv = inv.reshape(-1)
    m = len(cnt)
    cen = _sums_by_label(lab, inv, m) / cnt[:, None]
    # squared distances via the dot-product identity: one (m, m) float32 matrix, no (m, m, 3)
    c32 = cen.astype(np.float32)
    sq = (c32 * c32).sum(1)
    # (|a|^2 + |b|^2) - 2 a.b, in place: the same float32 values with no (m, m) temporaries
    d2 = np.add.outer(sq, sq)
    g = c32 @ c32.T
    g *= 2.0
    d2 -= g
    near = d2 < np.float32(tau * tau)
    # float32 sums of cell counts are exact (fewer than 2**24 cells)
    dens = (d2 < np.float32((density_radius * tau) ** 2)).astype(np.float32) @ cnt.astype(np.float32)
    order = np.argsort(-dens, kind="stable")
    label = np.full(m, -1)
    free = np.ones(m, bool)
    nxt = 0
    for i in order.tolist():
        if not free[i]:
            continue
        members = near[i] & free
        label[members] = nxt
        free[members] = False
        nxt += 1
    return label[inv]


def merge_near_duplicates(rgb: np.ndarray, mask: np.ndarray, *, tol: float = SAME_COLOUR,
                          de00: float | None = None) -> np.ndarray:
    """Cells whose colours no eye tells apart (OKLab distance under ``tol``, or CIEDE2000 under
    ``de00`` when given) take the most common of those colours. ``rgb`` (rows, cols, 3) float
    0..255, ``mask`` the cells to use; returns a copy (the input itself when nothing merges or
    there are more than SAME_COLOUR_MAX colours: that is no flat pixel art)."""
    from .palette import _key_histogram, _pack_rgb, _unpack_rgb

    if not mask.any():
        return rgb
    keys = _pack_rgb(np.clip(np.round(rgb[mask]), 0, 255).astype(np.uint8))
    uniq, counts, inv = _key_histogram(keys, want_inverse=True)
    if len(uniq) < 2 or len(uniq) > SAME_COLOUR_MAX:
        return rgb
    cols = _unpack_rgb(uniq)
    leader = _leaders(cols, counts, tol, de00)
    if (leader == np.arange(len(uniq))).all():
        return rgb
    out = rgb.copy()
    out[mask] = cols[leader[inv]].astype(np.float64)
    return out


def _leaders(cols: np.ndarray, counts: np.ndarray, tol: float, de00: float | None) -> np.ndarray:
    """Each colour's leader (an index into ``cols``, (n, 3) uint8): taken most common first,
    a colour joins the nearest leader closer than ``tol`` (OKLab) or, when given, ``de00``
    (CIEDE2000), or leads itself.

    Only leaders whose lightness lies within reach are compared: CIEDE2000 is at least
    |dL*| / 1.75 (its lightness weight S_L is at most 1.75, and its chroma and hue terms add a
    non-negative amount), OKLab distance at least |dL|. Comparing each colour with the leaders
    alone keeps a dense cluster cheap: 3,000 noisy shades of one backdrop made 4.5 million
    close pairs, 7 s, where they were all listed first. Scattered colours, with few others
    within reach (up to ``CLOSE_PAIRS_MAX`` pairs to compare), are still read from their close
    pairs, the cheaper way for them; both ways give the same leaders.
    """
    from .color import ciede2000

    lab, limit, reach = _comparison_space(cols, tol, de00)
    if _close_pairs_are_few(lab, limit, reach, de00 is not None):
        return _leaders_from_pairs(_close_pairs(cols, tol, de00), counts)
    light = lab[:, 0].tolist()
    leader = np.arange(len(cols))
    # the leaders so far, in lightness order: their lightness, index and colour
    by_light: list[float] = []
    idx: list[int] = []
    rows = np.empty((0, 3), lab.dtype)
    for i in np.argsort(-counts, kind="stable").tolist():
        lo = bisect.bisect_left(by_light, light[i] - reach)
        hi = bisect.bisect_right(by_light, light[i] + reach)
        if hi > lo:
            near = rows[lo:hi]
            if de00 is None:
                d = np.sqrt(((near - lab[i]) ** 2).sum(axis=1))
            else:
                d = ciede2000(lab[i], near)
            k = int(np.argmin(d))
            if d[k] < limit:
                leader[i] = idx[lo + k]
                continue
        at = bisect.bisect_left(by_light, light[i])
        by_light.insert(at, light[i])
        idx.insert(at, i)
        rows = np.insert(rows, at, lab[i], axis=0)
    return leader


def _comparison_space(cols: np.ndarray, tol: float, de00: float | None) -> tuple[np.ndarray, float, float]:
    """``cols`` (n, 3) uint8 in the space they are compared in, the distance under which two
    are one colour, and the lightness difference beyond which they cannot be (see
    :func:`_leaders`): OKLab and ``tol``, or CIELAB (float32, for speed) and CIEDE2000 ``de00``."""
    from .color import srgb_to_cielab, srgb_to_oklab

    if de00 is None:
        return srgb_to_oklab(cols / 255.0), float(tol), float(tol)
    return srgb_to_cielab(cols).astype(np.float32), float(de00), 1.75 * float(de00)


def _close_pairs_are_few(lab: np.ndarray, limit: float, reach: float, ciede: bool) -> bool:
    """Whether listing every close pair of these colours (``lab``, in their comparison space,
    compared by CIEDE2000 when ``ciede``, else by distance) is the cheaper way to :func:`_leaders`: the pairs within reach in lightness are all
    compared at once (``WINDOW_PAIRS_MAX`` at most), and each close one then costs a step of
    Python, estimated from a fixed sample of the pairs (``CLOSE_PAIRS_MAX`` at most)."""
    from .color import ciede2000

    order = np.argsort(lab[:, 0], kind="stable")
    lum = lab[order, 0]
    span = np.searchsorted(lum, lum + reach, side="right") - np.arange(len(lum)) - 1
    total = int(span.sum())
    if total <= CLOSE_PAIRS_MAX:
        return True
    if total > WINDOW_PAIRS_MAX:
        return False
    k = np.linspace(0, total - 1, 4096).astype(np.int64)
    ends = np.cumsum(span)
    a = np.searchsorted(ends, k, side="right")
    b = a + 1 + (k - (ends[a] - span[a]))
    x, y = lab[order[a]], lab[order[b]]
    d = ciede2000(x, y) if ciede else np.sqrt(((x - y) ** 2).sum(axis=1))
    return float(np.mean(d < limit)) * total <= CLOSE_PAIRS_MAX


def _leaders_from_pairs(near: list[list[tuple[int, float]]], counts: np.ndarray) -> np.ndarray:
    """:func:`_leaders` from each colour's close pairs (:func:`_close_pairs`)."""
    leader = np.arange(len(near))
    is_leader = np.zeros(len(near), bool)
    for i in np.argsort(-counts, kind="stable").tolist():
        best, best_d = i, np.inf
        for j, d in near[i]:
            if is_leader[j] and d < best_d:
                best, best_d = j, d
        leader[i] = best
        is_leader[i] = best == i
    return leader


def _close_pairs(cols: np.ndarray, tol: float, de00: float | None) -> list[list[tuple[int, float]]]:
    """For each colour of ``cols`` (n, 3) uint8: the other colours closer than ``tol`` (OKLab)
    or, when given, ``de00`` (CIEDE2000), as (index, distance) pairs.

    Only colours whose lightness lies within reach are compared: CIEDE2000 is at least
    |dL*| / 1.75 (its lightness weight S_L is at most 1.75, and its chroma and hue terms add a
    non-negative amount), OKLab distance at least |dL|. 4,000 scattered colours took 1 s
    compared each with every other, now 0.1 s.
    """
    from .color import ciede2000

    n = len(cols)
    lab, limit, reach = _comparison_space(cols, tol, de00)
    order = np.argsort(lab[:, 0], kind="stable")
    lum = lab[order, 0]
    hi = np.searchsorted(lum, lum + reach, side="right")
    span = hi - np.arange(n) - 1  # later colours within reach of each, in lightness order
    near: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    total = int(span.sum())
    if total == 0:
        return near
    a = np.repeat(np.arange(n), span)
    b = a + 1 + (np.arange(total) - np.repeat(np.cumsum(span) - span, span))
    step = 1 << 16  # CIEDE2000's forty temporaries stay in cache
    for s0 in range(0, total, step):
        ia, ib = order[a[s0 : s0 + step]], order[b[s0 : s0 + step]]
        if de00 is None:
            d = np.sqrt(((lab[ia] - lab[ib]) ** 2).sum(axis=1))
        else:
            d = ciede2000(lab[ia], lab[ib])
        keep = d < limit
        for x, y, v in zip(ia[keep].tolist(), ib[keep].tolist(), d[keep].tolist()):
            near[x].append((y, v))
            near[y].append((x, v))
    return near


def consolidate_colours(rgb: np.ndarray, mask: np.ndarray, *, tau: float = 0.035, sigma: float | None = None,
                        max_cells: int = 20000) -> np.ndarray:
    """Undo smooth colour drift: cells that share a true colour get one colour again.

    Diffusion output shades flat areas with a slowly varying colour cast. Cells are
    clustered in OKLab (radius ``tau``); the residual of each cell from its cluster mean,
    smoothed over neighbouring cells (Gaussian, ``sigma`` cells; by default ``DRIFT_SIGMA``, or
    ``DRIFT_SIGMA_FAST`` for a strong cast that changes faster than that follows), estimates
    the cast, which is removed before clustering again, until the cast settles
    (``DRIFT_ROUNDS``, ``DRIFT_TOL``); cells left outside their cluster (``OUTLIER_NOISE``) are
    clustered again among themselves, and each cell then takes its cluster's mean colour.
    ``rgb`` (rows, cols, 3) float 0..255, ``mask`` the cells to use; returns float 0..255.
    """
    from .color import oklab_to_srgb, srgb_to_oklab

    n = int(mask.sum())
    if n < 8 or n > max_cells:
        return rgb
    lab_all = srgb_to_oklab(np.clip(rgb, 0, 255) / 255.0)
    lab = lab_all[mask]
    cur, cast = _without_cast(lab, mask, tau, DRIFT_SIGMA if sigma is None else sigma)
    if sigma is None and float(median(np.sqrt((cast * cast).sum(1)))) > CAST_STRONG:
        fast_cur, fast = _without_cast(lab, mask, tau, DRIFT_SIGMA_FAST)
        if float(median(np.sqrt(((fast - cast) ** 2).sum(1)))) > CAST_FAST:
            cur = fast_cur
    means = _join_lone_cells(cur, *_clusters(cur, tau, DENSITY_RADIUS), tau)
    # a rare colour a little under tau from a common one (a grey on a grey-green backdrop)
    # joins the common cluster through the leader's radius, yet lies outside the cluster
    # itself: such outliers are clustered again among themselves, and a cell nearer to one of
    # these new clusters than to its own cluster's mean joins it. A lone outlier is more often
    # a blurred edge cell than a colour of its own, so it stays where it was.
    dist = np.sqrt(((cur - means) ** 2).sum(1))
    far = np.flatnonzero(dist > max(tau, OUTLIER_NOISE * float(median(dist))))
    if len(far) >= 2:
        lbl = _leader_clusters(cur[far], tau)
        own = far[np.bincount(lbl)[lbl] >= 2]
        if len(own):
            _, cen = _clusters(cur[own], tau)
            # one centre at a time: an (n, centres) matrix could be large on a noisy image
            best = np.full(len(cur), np.inf)
            near = np.zeros(len(cur), np.intp)
            for j, c in enumerate(cen):
                d = np.sqrt(((cur - c) ** 2).sum(1))
                closer = d < best
                best[closer] = d[closer]
                near[closer] = j
            move = best < dist
            move[own] = True
            lbl = near[move]
            means[move] = _means_by_label(cur[move], lbl, len(cen))[lbl]
    out = rgb.copy()
    out[mask] = oklab_to_srgb(means) * 255.0
    return out


def _without_cast(lab: np.ndarray, mask: np.ndarray, tau: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(colours less the cast, the cast) of the cells' OKLab colours ``lab`` (n, 3) at ``mask``
    (rows, cols): the residual from the clusters (radius ``tau``) smoothed over ``sigma`` cells."""
    rows, cols = mask.shape
    cur, drift = lab.copy(), np.zeros_like(lab)
    norm = np.maximum(_blur2(mask.astype(np.float64)[..., None], sigma), 1e-6)
    prev = None
    # the cast and the clusters depend on each other: alternate until the cast settles (a wrong
    # early clustering on a texture of near colours biases the first casts)
    for _ in range(DRIFT_ROUNDS):
        lbl, cen = _clusters(cur, tau, DENSITY_RADIUS)
        res = np.zeros((rows, cols, 3))
        res[mask] = lab - cen[lbl]
        drift = (_blur2(res, sigma) / norm)[mask]
        cur = lab - drift
        if prev is not None and float(np.abs(drift - prev).max()) < DRIFT_TOL:
            break
        prev = drift
    return cur, drift


def _join_lone_cells(lab: np.ndarray, lbl: np.ndarray, cen: np.ndarray, tau: float) -> np.ndarray:
    """The cluster mean of each colour of ``lab`` (clusters ``lbl``, centres ``cen``), with each
    one-cell cluster that lies within 2 tau of a larger cluster's centre joined to the nearest
    such cluster: a cell at the tail of a colour under a cast or clipped noise, not a colour of
    its own (a one-cell highlight is far from every other colour)."""
    cnt = np.bincount(lbl, minlength=len(cen))
    lone, big = np.flatnonzero(cnt == 1), np.flatnonzero(cnt > 1)
    if not len(lone) or not len(big):
        return cen[lbl]
    # nearest larger cluster per lone cell, in blocks: a noisy image has thousands of each
    cb = cen[big].astype(np.float32)
    sb = (cb * cb).sum(1)
    near = np.empty(len(lone), np.intp)
    d2 = np.empty(len(lone), np.float32)
    for i in range(0, len(lone), 1024):
        cl = cen[lone[i : i + 1024]].astype(np.float32)
        dd = (cl * cl).sum(1)[:, None] + sb[None, :] - 2.0 * (cl @ cb.T)
        near[i : i + 1024] = np.argmin(dd, axis=1)
        d2[i : i + 1024] = dd[np.arange(len(cl)), near[i : i + 1024]]
    join = d2 < np.float32((2.0 * tau) ** 2)
    if not join.any():
        return cen[lbl]
    target = np.arange(len(cen))
    target[lone[join]] = big[near[join]]
    lbl = target[lbl]
    return _means_by_label(lab, lbl, len(cen))[lbl]


def _clusters(lab: np.ndarray, tau: float, density_radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Leader clusters of the colours ``lab`` (n, 3): (cluster id per colour, (k, 3) centres)."""
    lbl = _leader_clusters(lab, tau, density_radius)
    return lbl, _means_by_label(lab, lbl, int(lbl.max()) + 1)


def _means_by_label(v: np.ndarray, lbl: np.ndarray, k: int) -> np.ndarray:
    """(k, c) means of the rows of ``v`` (n, c) per label; 0 for a label with no rows."""
    return _sums_by_label(v, lbl, k) / np.maximum(np.bincount(lbl, minlength=k), 1)[:, None]


def _sums_by_label(v: np.ndarray, lbl: np.ndarray, k: int) -> np.ndarray:
    """(k, c) sums of the rows of ``v`` (n, c) per label (bincount is far faster than np.add.at)."""
    return np.stack([np.bincount(lbl, weights=v[:, c], minlength=k) for c in range(v.shape[1])], axis=1)


def _blur2(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (zero outside) of an (rows, cols, c) array via two small matrix products."""
    def mat(n):
        i = np.arange(n, dtype=np.float64)
        return np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)

    r, c, ch = a.shape
    wr, wc = mat(r), mat(c)
    t = (wr @ a.reshape(r, c * ch)).reshape(r, c, ch)
    return np.matmul(wc, t)  # (c, c) @ (r, c, ch) -> blur along the columns per row


#: Frames' colours closer than this (Euclidean OKLab) are one colour of the animation: the
#: radius within which snap already merges one frame's cells, and well above the 1-3 levels a
#: re-drawn frame's noise moves a colour.
SHARED_COLOUR_TOLERANCE = 0.035
#: A frame with more distinct colours than this is a scene or a gradient (or an explosion), not
#: palette art: it keeps its colours, and the other frames share theirs.
MAX_SHARED_COLOURS = 1024
#: Frames whose colours, taken together, stay apart in more groups than this (each frame its
#: own colours: no shared palette to restore) are returned as they are. It also bounds each
#: colours x groups distance matrix to 1024 x 8192 float32 (32 MB).
MAX_SHARED_GROUPS = 8192
#: Frames larger than this many pixels are first checked for too many colours on a sample.
_COLOUR_SAMPLE = 1 << 16


def shared_frame_colours(frames: Sequence[np.ndarray], *, tolerance: float = SHARED_COLOUR_TOLERANCE) -> list[np.ndarray]:
    """One set of colours for all ``frames`` (animation frames, (H, W, 4) uint8 each; sizes
    may differ), so that the same colour does not flicker from one frame to the next.

    Snapping reads every frame's colours afresh, so a colour of the sprite comes back a level
    or two off in each frame (noise and drift differ per frame). Here each colour of a frame is
    matched to the nearest group of colours of earlier frames whose mean and whose first colour
    both lie within ``tolerance`` (Euclidean OKLab), and takes the pixel-weighted mean of its
    group. So a group never spreads wider than twice ``tolerance`` however many frames join
    it, and a colour that changes slowly over many frames (a fade of a level or two a frame) is
    held in steps of about ``tolerance``.
    Two colours of one frame never become one (the frame itself tells them apart). Pixels with
    alpha 0 are left as they are; alpha is never changed. A frame with more than
    ``MAX_SHARED_COLOURS`` distinct colours keeps its own; all frames keep theirs when their
    colours stay apart in more than ``MAX_SHARED_GROUPS`` groups. Returns new arrays; the
    inputs are not modified.
    """
    from .color import oklab_to_srgb8, srgb_to_oklab
    from .palette import _key_histogram, _pack_rgb, _rgb_keys, _unpack_rgb

    if not tolerance >= 0:
        raise InvalidArgumentError(f"tolerance must be >= 0 (OKLab distance), got {tolerance}")
    imgs = [as_rgba(f, source=f"frames[{i}]").copy() for i, f in enumerate(frames)]
    if len(imgs) < 2:
        return imgs
    taking = []  # (frame index, opaque mask, distinct colours, their index per pixel, counts)
    for i, img in enumerate(imgs):
        seen = img[..., 3] > 0
        keys = _rgb_keys(img)[seen]
        if keys.size > _COLOUR_SAMPLE and len(np.unique(keys[:: keys.size // _COLOUR_SAMPLE])) > MAX_SHARED_COLOURS:
            continue  # a sample already holds too many colours: no need to sort them all
        uniq, counts, inv = _key_histogram(keys, want_inverse=True)
        if len(uniq) <= MAX_SHARED_COLOURS:
            taking.append((i, seen, uniq, inv.astype(np.uint16), counts))
    if len(taking) < 2:
        return imgs
    sums = np.zeros((0, 3))  # per group: pixel-weighted sum of OKLab colours
    weights = np.zeros(0)
    anchors = np.zeros((0, 3), np.float32)  # per group: its first colour
    labels = []
    for _, _, uniq, _, counts in taking:
        rgb = _unpack_rgb(uniq)
        lab = srgb_to_oklab(rgb)
        lbl = np.full(len(uniq), -1, np.intp)
        if len(weights) and len(uniq):
            lab32 = lab.astype(np.float32)
            d = _distances32(lab32, (sums / weights[:, None]).astype(np.float32))
            ok = (d <= tolerance) & (_distances32(lab32, anchors) <= tolerance)
            ci, ki = np.nonzero(ok)
            order = np.argsort(d[ci, ki], kind="stable")
            _greedy_pairs(ci[order], ki[order], lbl, len(weights))
        fresh = np.flatnonzero(lbl < 0)
        lbl[fresh] = len(weights) + np.arange(len(fresh))
        sums = np.concatenate([sums, np.zeros((len(fresh), 3))])
        weights = np.concatenate([weights, np.zeros(len(fresh))])
        anchors = np.concatenate([anchors, lab[fresh].astype(np.float32)])
        np.add.at(sums, lbl, lab * counts[:, None])
        np.add.at(weights, lbl, counts)
        labels.append((lbl, rgb))
        if len(weights) > MAX_SHARED_GROUPS:
            return imgs
    merged = np.bincount(np.concatenate([lbl for lbl, _ in labels]), minlength=len(weights)) > 1
    shared = oklab_to_srgb8(sums / np.maximum(weights, 1)[:, None])
    for (i, seen, _, inv, _), (lbl, rgb) in zip(taking, labels):
        # a colour no other frame shares keeps its exact value (no OKLab round trip)
        colours = np.where(merged[lbl][:, None], shared[lbl], rgb)
        out_keys = _pack_rgb(colours)
        u, n = np.unique(out_keys, return_counts=True)
        if (n > 1).any():
            # two groups' means met on colours of this frame: those keep their own values
            colours = np.where(np.isin(out_keys, u[n > 1])[:, None], rgb, colours)
            if len(np.unique(_pack_rgb(colours))) < len(colours):
                colours = rgb
        imgs[i][seen, :3] = colours[inv]
    return imgs


def _greedy_pairs(ci: np.ndarray, ki: np.ndarray, lbl: np.ndarray, n_groups: int) -> None:
    """Match colours to groups, nearest pairs first, each colour and each group used once:
    ``lbl[c] = k`` for every pair taken. ``(ci, ki)`` are the candidate pairs in order of
    preference (nearest first).

    The same matching as walking the pairs in order and taking each whose colour and group
    are both free, in rounds instead of a loop per pair (16 frames of 1,000 close colours:
    2.6 s -> 1.1 s): a pair that comes first among its colour's pairs and first among its
    group's would be taken by that walk (every pair before it involves other colours and
    groups), and the pairs that touch what it took would be skipped; what remains is walked
    alike. The first pair of each round always qualifies.
    """
    used_c = np.zeros(len(lbl), bool)
    used_k = np.zeros(n_groups, bool)
    best_c = np.empty(len(lbl), np.intp)
    best_k = np.empty(n_groups, np.intp)
    while ci.size:
        at = np.arange(ci.size)
        # each colour's and each group's first pair in this round's order
        best_c[ci] = ci.size
        np.minimum.at(best_c, ci, at)
        best_k[ki] = ci.size
        np.minimum.at(best_k, ki, at)
        take = (best_c[ci] == at) & (best_k[ki] == at)
        lbl[ci[take]] = ki[take]
        used_c[ci[take]] = True
        used_k[ki[take]] = True
        rest = ~(used_c[ci] | used_k[ki])
        ci, ki = ci[rest], ki[rest]


def _distances32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between float32 rows, by dot products: no
    (len(a), len(b), 3) temporary."""
    from .color import _dot3

    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * _dot3(a, b.T)
    return np.sqrt(np.maximum(d2, 0.0))
