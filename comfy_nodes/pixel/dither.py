"""Dithering to a palette: ordered (Bayer) and error diffusion (Floyd-Steinberg, Atkinson).

Both work in OKLab and return palette indices; ``palette.quantize`` turns them into colours.

Ordered dithering mixes the two nearest palette colours: a pixel at position t (0..1) along
the segment from its nearest colour c1 to its second nearest c2 takes c2 where t exceeds
0.5 + strength * (bayer - 0.5). At strength 0 that is exactly nearest-colour mapping (t > 0.5
means c2 is nearer); at strength 1 the share of c2 pixels equals t, so areas keep their mean
colour. Unlike adding a fixed RGB offset, this dithers across hue as well as lightness and
never adds noise to pixels that already sit on a palette colour.

Error diffusion is sequential in raster order. It runs as a wavefront: every pixel on the line
x + 2y = t depends only on pixels with a smaller t for both kernels used here, so each of the
W + 2H steps handles a whole anti-diagonal with numpy, giving the same result as a pixel loop.
Transparent pixels neither send nor receive error.
"""
from __future__ import annotations

import numpy as np

from .color import srgb_to_oklab
from .errors import InvalidArgumentError

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


def _two_nearest(lab: np.ndarray, pal_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``lab``: nearest index, second nearest index, position t along c1->c2."""
    d = ((lab[:, None, :] - pal_lab[None, :, :]) ** 2).sum(axis=2)
    if pal_lab.shape[0] == 1:
        z = np.zeros(lab.shape[0], dtype=np.intp)
        return z, z, np.zeros(lab.shape[0])
    part = np.argpartition(d, 1, axis=1)[:, :2]
    d2 = np.take_along_axis(d, part, axis=1)
    swap = d2[:, 1] < d2[:, 0]
    i1 = np.where(swap, part[:, 1], part[:, 0])
    i2 = np.where(swap, part[:, 0], part[:, 1])
    c1, c2 = pal_lab[i1], pal_lab[i2]
    seg = c2 - c1
    denom = (seg**2).sum(axis=1)
    t = np.where(denom > 0, ((lab - c1) * seg).sum(axis=1) / np.where(denom > 0, denom, 1.0), 0.0)
    return i1, i2, np.clip(t, 0.0, 1.0)


def ordered(img: np.ndarray, mask: np.ndarray, pal_lab: np.ndarray, size: int, strength: float) -> np.ndarray:
    """Palette indices (H, W) with Bayer ordered dithering of the given ``size`` (2, 4, 8)."""
    h, w = img.shape[:2]
    idx = np.zeros((h, w), dtype=np.intp)
    if not mask.any():
        return idx
    from .palette import _key_histogram, _rgb_keys, _unpack_rgb

    values, _, inverse = _key_histogram(_rgb_keys(img)[mask], want_inverse=True)
    i1, i2, t = _two_nearest(srgb_to_oklab(_unpack_rgb(values)), pal_lab)
    thr_tile = bayer_matrix(size)
    ys, xs = np.nonzero(mask)
    thr = 0.5 + strength * (thr_tile[ys % size, xs % size] - 0.5)
    choose2 = t[inverse] > thr
    idx[ys, xs] = np.where(choose2, i2[inverse], i1[inverse])
    return idx


def _wavefronts(h: int, w: int):
    """Yield (ys, xs) of the pixels on each line x + 2y = t, t = 0 .. w-1 + 2(h-1)."""
    ys_all = np.arange(h)
    for t in range(w + 2 * (h - 1)):
        ys = ys_all[(t - 2 * ys_all >= 0) & (t - 2 * ys_all < w)]
        if ys.size:
            yield ys, t - 2 * ys


def error_diffusion(img: np.ndarray, mask: np.ndarray, pal_lab: np.ndarray, mode: str, strength: float) -> np.ndarray:
    """Palette indices (H, W) by Floyd-Steinberg or Atkinson error diffusion in OKLab.

    ``strength`` 0..1 scales the error passed on (0 = nearest colour, 1 = full diffusion).
    """
    kernel = KERNELS[mode]
    h, w = img.shape[:2]
    idx = np.zeros((h, w), dtype=np.intp)
    if not mask.any():
        return idx
    lab = srgb_to_oklab(img[..., :3]).reshape(-1, 3)
    pad = 2
    stride = w + 2 * pad
    # Flat error buffer with a margin so kernel taps never need bounds checks.
    err = np.zeros(((h + pad) * stride, 3), dtype=np.float64)
    taps = [(dy * stride + dx, wt) for dy, dx, wt in kernel]
    p2 = (pal_lab**2).sum(axis=1)
    pal_t2 = 2.0 * pal_lab.T
    flat_idx = idx.reshape(-1)
    flat_mask = mask.reshape(-1)
    for ys, xs in _wavefronts(h, w):
        pix = ys * w + xs
        keep = flat_mask[pix]
        if not keep.all():
            if not keep.any():
                continue
            ys, xs, pix = ys[keep], xs[keep], pix[keep]
        epos = ys * stride + xs + pad
        val = lab[pix] + err[epos]
        q = np.argmin(p2 - val @ pal_t2, axis=1)
        flat_idx[pix] = q
        e = val - pal_lab[q]
        if strength != 1.0:
            e *= strength
        for off, wt in taps:
            err[epos + off] += wt * e
    return idx
