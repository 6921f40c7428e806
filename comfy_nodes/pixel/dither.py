"""Dithering to a palette: ordered (Bayer) and error diffusion (Floyd-Steinberg, Atkinson).

Both mix colours in OKLab and return palette indices; ``palette.quantize`` turns them into
colours.

Ordered dithering mixes two palette colours: a pixel at position t (0..1) along the segment
from its nearest colour c1 (as ``match`` judges it: CIEDE2000 among the nearest in OKLab) to
its partner c2 (the colour whose mix with c1 comes closest to it, a calm pattern weighed
against a close mix, in OKLab with a and b stretched, ``MIX_SPACE``) takes c2 where t exceeds
c + strength * (bayer - c), c being where the colour would turn nearer c2 by CIEDE2000 if it
moved along the segment (``match.PaletteMatcher.flip_points``; 0.5 for every colour by OKLab's
reckoning). At strength 0 that is exactly
nearest-colour mapping; at strength 1 the share of c2 pixels equals t, so areas keep their
mean colour; in between it grows smoothly with t and the strength. Unlike adding a fixed RGB
offset, this dithers across hue as well as lightness and never adds noise to pixels that
already sit on a palette colour.

Error diffusion is sequential in raster order. It runs as a wavefront: every pixel on the line
x + 2y = t depends only on pixels with a smaller t for both kernels used here, so each of the
W + 2H steps handles a whole anti-diagonal with numpy, giving the same result as a pixel loop.
Transparent pixels pass on no error (what they would receive is discarded with them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .color import _dot3, srgb_to_oklab
from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from .match import PaletteMatcher

MODES = ("none", "bayer2", "bayer4", "bayer8", "floyd-steinberg", "atkinson")
_ALIASES = {
    "": "none",
    "off": "none",
    "nearest": "none",
    "bayer": "bayer4",
    "ordered": "bayer4",
    "fs": "floyd-steinberg",
    "floydsteinberg": "floyd-steinberg",
    "floyd_steinberg": "floyd-steinberg",
}

# (dy, dx, weight) of each kernel; weights sum to 1 for Floyd-Steinberg and 6/8 for Atkinson
# (Atkinson drops a quarter of the error on purpose, which keeps highlights and shadows clean).
KERNELS = {
    "floyd-steinberg": ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16)),
    "atkinson": ((0, 1, 1 / 8), (0, 2, 1 / 8), (1, -1, 1 / 8), (1, 0, 1 / 8), (1, 1, 1 / 8), (2, 0, 1 / 8)),
}


def normalise_mode(mode: str) -> str:
    """Canonical dither mode name; raises ``InvalidArgumentError`` listing the valid names."""
    m = str(mode if mode is not None else "none").strip().lower().replace(" ", "-")
    m = _ALIASES.get(m, m)
    if m not in MODES:
        raise InvalidArgumentError(f"dither must be one of {', '.join(MODES)}; got {mode!r}")
    return m


def bayer_matrix(n: int) -> np.ndarray:
    """The n x n Bayer threshold matrix (n = 2, 4 or 8) as floats in (0, 1), mean 0.5."""
    if n not in (2, 4, 8):
        raise InvalidArgumentError(f"Bayer matrix size must be 2, 4 or 8, got {n}")
    m = np.array([[0, 2], [3, 1]], dtype=np.int64)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / (n * n)


#: Weight of the mix's pattern variance against its colour error when choosing the partner
#: (see :func:`_two_nearest`). Measured by ``bench/palette_quality.py`` (the 9 real images
#: snapped, Bayer 4x4 on PICO-8, NES, CGA, DawnBringer 16 and 32, Endesga 32 and Sweetie 16):
#: with the second nearest colour as partner (by OKLab), 0.82 % of pixels came out more than
#: 30 CIEDE2000 off their colour (PICO-8 2.0 %), the 3x3 local mean was 11.1 off (CIELAB) and
#: the 5x5 one 9.8; with 0.4 in ``MIX_SPACE``, 0.17 % (PICO-8 0.1 %), 9.7 and 8.4, and the
#: pattern 4 % calmer. 0.3 brings the 5x5 means to 8.0 with 0.58 % specks and a busier
#: pattern; 0.5 leaves them at 8.8.
MIX_NOISE = 0.4
#: The partner is judged in OKLab with a and b scaled by this. Plain OKLab weighs lightness too
#: much against hue here too: a dark red on PICO-8 took navy for a partner (a blue-ish mix),
#: where black keeps it red. Ottosson's fit of OKLab to colour-difference data (COMBVD, OSA-UCS)
#: scales a and b by 2; measured as above, 2 brings the 5x5 means to 7.9 (1.5: 8.4, plain
#: OKLab 9.3) but gives up lightness where no hue can match: a grey ramp on the Game Boy
#: greens came out 0.115 off in OKLab lightness per band (plain mapping 0.087, plain OKLab
#: 0.075, 1.5: 0.093). 1.5 also scatters the fewest specks (0.17 %; 2: 0.45 %, 1: 0.36 %).
MIX_SPACE = np.array([1.0, 1.5, 1.5])


def _two_nearest(lab: np.ndarray, matcher: "PaletteMatcher") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``lab`` (OKLab): its nearest palette index c1 (as ``match`` judges it),
    its partner c2 and its position t (0..1) along c1 -> c2.

    The partner minimises ``|x - mix|^2 + MIX_NOISE * t (1 - t) |c2 - c1|^2`` (in
    ``MIX_SPACE``): the squared error of the mix c1 + t (c2 - c1) that the pattern shows from
    afar, plus the weighted variance of the pattern itself (how hard its two colours flicker
    against each other), as Yliluoma's ordered dithering weighs a pair's error against the two
    colours' difference; t is the colour's position along c1 -> c2 in that space.
    The second nearest colour is often no good partner: a dark red nearest PICO-8's dark
    purple has navy second nearest, and a purple and navy mix stays blue-ish, where purple and
    black keep the red; and a partner far off at small t mixes well on average but as
    scattered specks. A repeated palette colour is never a partner.
    """
    pal_lab = matcher.lab
    m = lab.shape[0]
    if pal_lab.shape[0] == 1:
        z = np.zeros(m, dtype=np.intp)
        return z, z, np.zeros(m)
    i1 = matcher.nearest(lab)
    i2 = np.empty(m, dtype=np.intp)
    t = np.empty(m)
    step = max(1, 500_000 // pal_lab.shape[0])
    mix_lab, mix_pal = lab * MIX_SPACE, pal_lab * MIX_SPACE
    for s in range(0, m, step):
        i2[s : s + step], t[s : s + step] = _best_partner(mix_lab[s : s + step], mix_pal, i1[s : s + step])
    return i1, i2, t


def _best_partner(lab: np.ndarray, pal_lab: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the partner of ``pal_lab[i1]`` (see :func:`_two_nearest`) and the row's
    position t along the segment to it (``i1`` itself and 0 when no colour lies ahead: the row
    sits on c1)."""
    gram = _dot3(pal_lab, pal_lab.T)                 # (n, n) palette dot products
    sq = np.diag(gram)
    c1 = pal_lab[i1]
    # with c1 -> c_j as the segment: proj = (x - c1).(c_j - c1), denom = |c_j - c1|^2, from
    # dot products, not (k, n, 3) differences
    xc = _dot3(lab, pal_lab.T)                       # x . c_j
    rel = lab - c1
    proj = xc - xc[np.arange(len(i1)), i1][:, None] - gram[i1] + sq[i1][:, None]
    denom = sq[i1][:, None] - 2.0 * gram[i1] + sq[None, :]
    # only colours ahead of c1 (projection > 0): one behind it mixes at t = 0, no mix at all,
    # whose cost (the plain error, no variance) would beat every true mix of a colour near c1
    # and leave a flat band at the start of every ramp
    usable = (denom > 1e-12) & (proj > 0)
    t = np.clip(np.where(usable, proj / np.where(usable, denom, 1.0), 0.0), 0.0, 1.0)
    # squared distance from the row to the mix c1 + t (c - c1), plus the pattern's variance
    cost = (rel**2).sum(axis=1)[:, None] - 2 * t * proj + t**2 * denom + MIX_NOISE * t * (1.0 - t) * denom
    cost = np.where(usable, cost, np.inf)
    best = np.argmin(cost, axis=1)
    rows = np.arange(len(best))
    found = np.isfinite(cost[rows, best])
    return np.where(found, best, i1), np.where(found, t[rows, best], 0.0)


def ordered(img: np.ndarray, mask: np.ndarray, matcher: "PaletteMatcher", size: int, strength: float) -> np.ndarray:
    """Palette indices (H, W) with Bayer ordered dithering of the given ``size`` (2, 4, 8)."""
    h, w = img.shape[:2]
    idx = np.zeros((h, w), dtype=np.intp)
    if not mask.any():
        return idx
    from .palette import _key_histogram, _rgb_keys, _unpack_rgb

    values, _, inverse = _key_histogram(_rgb_keys(img)[mask], want_inverse=True)
    lab = srgb_to_oklab(_unpack_rgb(values))
    i1, i2, t = _two_nearest(lab, matcher)
    # The threshold leans from the point where the colour would turn nearer c2 by CIEDE2000
    # (OKLab would put it at 0.5 for every colour) at strength 0 to the Bayer value at strength
    # 1: the share of c2 then grows smoothly with the strength and the colour, from none.
    centre = _flip_points(lab, _unpack_rgb(values), i1, i2, t, matcher)[inverse]
    thr_tile = bayer_matrix(size)
    ys, xs = np.nonzero(mask)
    thr = centre + strength * (thr_tile[ys % size, xs % size] - centre)
    choose2 = t[inverse] > thr
    idx[ys, xs] = np.where(choose2, i2[inverse], i1[inverse])
    return idx


#: Above this many distinct colours, flip points are found once per colour bin of 8 x 8 x 8
#: levels and palette pair (they vary smoothly with the colour; a Bayer threshold resolves
#: 1/64 at best), not once per colour: a 1024 x 1024 image of a million colours took 10 s.
FLIP_EXACT_MAX = 4096


def _flip_points(lab: np.ndarray, rgb: np.ndarray, i1: np.ndarray, i2: np.ndarray, t: np.ndarray,
                 matcher: "PaletteMatcher") -> np.ndarray:
    """``matcher.flip_points`` for every colour (rows of ``lab`` / ``rgb``), binned when many."""
    if len(lab) <= FLIP_EXACT_MAX:
        return matcher.flip_points(lab, i1, i2, t)
    k = len(matcher)
    bins = (rgb[:, 0].astype(np.int64) >> 3) << 10 | (rgb[:, 1].astype(np.int64) >> 3) << 5 | rgb[:, 2] >> 3
    _, first, back = np.unique((bins * k + i1) * k + i2, return_index=True, return_inverse=True)
    flips = matcher.flip_points(lab[first], i1[first], i2[first], t[first])[back.ravel()]
    # never below a colour's own position: at strength 0 it keeps its nearest colour
    return np.maximum(flips, t)


def error_diffusion(img: np.ndarray, mask: np.ndarray, matcher: "PaletteMatcher", mode: str, strength: float) -> np.ndarray:
    """Palette indices (H, W) by Floyd-Steinberg or Atkinson error diffusion in OKLab.

    Each pixel (its colour plus the error it received) takes the nearest colour in OKLab with
    a and b stretched as the ordered dither's partners are (``MIX_SPACE``), near the space the
    error is carried in: only then does the choice pay the error back. Picked by CIEDE2000
    instead, the error a palette cannot pay back piled up (a grey ramp on the Game Boy greens:
    lightness per band 0.076 off in OKLab -> 0.186) and burst out as specks (3.6 % of the
    pixels of the real images on PICO-8, DawnBringer 16 and NES more than 30 CIEDE2000 from
    their colour -> 5.5 %). Picked in plain OKLab, lightness outweighed hue: a skin tone on
    PICO-8 came out grey and orange noise with 3 peach pixels of 1024, and all grey at strength
    0.01 where strength 0 (nearest by CIEDE2000) gives peach. Stretched, on
    ``bench/palette_quality.py`` (7 palettes): Floyd-Steinberg specks 3.4 -> 2.97 %, 3x3 mean
    7.45 -> 6.77, 5x5 mean 5.52 -> 4.93; Atkinson specks 1.06 -> 0.51 %; the Game Boy ramp, where
    no hue can match, 0.076 -> 0.094 (as for ordered dithering).

    ``strength`` 0..1 scales the error passed on (0 = nearest colour, 1 = full diffusion).

    Pixel (y, x) lies on wavefront u = x + 2y. The pixels of one wavefront sit in the flat
    image at a fixed stride (W - 2), so each step reads and writes them with strided slices;
    pending error lives in a ring of 5 wavefront columns (the kernels reach u + 4 at most),
    indexed by row. Slots are cleared after use; error aimed outside the image lands in cells
    that are never read.
    """
    kernel = KERNELS[mode]
    h, w = img.shape[:2]
    idx = np.zeros((h, w), dtype=np.intp)
    if not mask.any():
        return idx
    # Converted in bands of rows: converting the whole image at once needs several temporaries
    # as large as the result (24 bytes per pixel each), over 20 GB for a 16k x 16k image.
    lab = np.empty((h * w, 3), dtype=np.float64)
    band = max(1, (1 << 20) // w)
    for y in range(0, h, band):
        lab[y * w : min(h, y + band) * w] = srgb_to_oklab(img[y : y + band, :, :3]).reshape(-1, 3)
    keep = mask.reshape(-1).astype(np.float64)
    flat_idx = idx.reshape(-1)
    span = 5
    assert all(dx + 2 * dy < span for dy, dx, _ in kernel)
    ring = np.zeros((span, h + 2, 3), dtype=np.float64)
    pal_lab = matcher.lab
    pal_mix = pal_lab * MIX_SPACE
    pal_mix2 = (pal_mix**2).sum(axis=1)
    taps = [(dy, (dx + 2 * dy), wt * strength) for dy, dx, wt in kernel]
    stride = w - 2
    for u in range(w + 2 * (h - 1)):
        ylo = max(0, (u - (w - 1) + 1) // 2)
        yhi = min(h - 1, u // 2)
        n = yhi - ylo + 1
        if n <= 0:
            continue
        start = u + ylo * stride
        if stride > 0:
            sel = slice(start, start + (n - 1) * stride + 1, stride)
        else:  # 1- and 2-pixel-wide images: the stride is 0 or negative, use an index array
            sel = start + np.arange(n) * stride
        cur = ring[u % span]
        val = lab[sel] + cur[ylo : yhi + 1]
        q = np.argmin(pal_mix2 - 2.0 * _dot3(val * MIX_SPACE, pal_mix.T), axis=1)
        flat_idx[sel] = q
        e = val - pal_lab[q]
        e *= keep[sel][:, None]  # transparent pixels pass on no error
        for dy, du, wt in taps:
            ring[(u + du) % span][ylo + dy : yhi + dy + 1] += wt * e
        cur[:] = 0.0
    return idx

