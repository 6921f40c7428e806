"""Colour spaces: sRGB <-> linear <-> OKLab, vectorised over arrays of any leading shape.

OKLab (Björn Ottosson, 2020) is the perceptual space the core uses for k-means, palette
matching and robust cell colours: Euclidean distance in it tracks perceived difference far
better than in sRGB, at the cost of two small matrix products.
"""
from __future__ import annotations

import numpy as np

_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_M1_INV = np.linalg.inv(_M1)
_M2_INV = np.linalg.inv(_M2)

# sRGB decoding through a 256-entry table: exact for uint8 input and much faster than pow().
_SRGB_TO_LINEAR_LUT = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
)


def _apply3(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x @ m.T`` for (..., 3) arrays without BLAS.

    A 3x3 product is far too small for BLAS to pay off; a threaded BLAS on a busy machine makes
    it up to 100x slower than three broadcast multiply-adds.
    """
    return x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2]


def _dot3(x: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """x (M, 3) times pt (3, N) -> (M, N) without BLAS.

    Skinny products like this gain nothing from BLAS, and a multi-threaded BLAS on a busy
    machine makes them up to 100x slower (thread hand-off); einsum without ``optimize`` runs
    its own single-threaded loop.
    """
    return np.einsum("ij,jk->ik", x, pt)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB to linear light. uint8 input (0..255) or float input (0..1); returns float64 0..1."""
    a = np.asarray(rgb)
    if a.dtype == np.uint8:
        return _SRGB_TO_LINEAR_LUT[a]
    a = a.astype(np.float64)
    return np.where(a <= 0.04045, a / 12.92, ((np.clip(a, 0, None) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light (float 0..1) to sRGB float 0..1 (not clipped to gamut)."""
    a = np.asarray(lin, dtype=np.float64)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(np.clip(a, 0, None), 1 / 2.4) - 0.055)


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) uint8 or float 0..1 to OKLab (..., 3) float64 (L in 0..1, a/b about -0.4..0.4)."""
    lin = srgb_to_linear(rgb)
    return _apply3(np.cbrt(_apply3(lin, _M1)), _M2)


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab (..., 3) to sRGB float 0..1, clipped to the gamut."""
    lms_ = _apply3(np.asarray(lab, dtype=np.float64), _M2_INV)
    lin = _apply3(lms_**3, _M1_INV)
    return np.clip(linear_to_srgb(lin), 0.0, 1.0)


def oklab_to_srgb8(lab: np.ndarray) -> np.ndarray:
    """OKLab (..., 3) to sRGB uint8 (..., 3), rounded."""
    return np.round(oklab_to_srgb(lab) * 255.0).astype(np.uint8)


# sRGB primaries to CIE XYZ, D65 white (IEC 61966-2-1), and the D65 white point itself.
_LIN_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65 = np.array([0.95047, 1.0, 1.08883])
# CIEDE2000's constants, its angles in radians
_25_POW7 = 25.0**7
_TAU = 2.0 * np.pi
_DEG6, _DEG25, _DEG30, _DEG63, _DEG275 = (float(np.radians(d)) for d in (6.0, 25.0, 30.0, 63.0, 275.0))


def linear_to_cielab(lin: np.ndarray) -> np.ndarray:
    """Linear sRGB light (..., 3) to CIELAB (D65) (..., 3): L 0..100, a/b about -128..127.
    Values outside the gamut (as error diffusion produces) are carried through, not clipped."""
    t = _apply3(np.asarray(lin, dtype=np.float64), _LIN_TO_XYZ) / _D65
    eps = (6.0 / 29.0) ** 3
    f = np.where(t > eps, np.cbrt(t), t / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    out = np.empty_like(f)
    out[..., 0] = 116.0 * f[..., 1] - 16.0
    out[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    out[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return out


def srgb_to_cielab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) uint8 or float 0..1 to CIELAB (D65) (..., 3) float64."""
    return linear_to_cielab(srgb_to_linear(rgb))


def oklab_to_cielab(lab: np.ndarray) -> np.ndarray:
    """OKLab (..., 3) to CIELAB (D65) (..., 3), unclipped (see :func:`linear_to_cielab`)."""
    lms_ = _apply3(np.asarray(lab, dtype=np.float64), _M2_INV)
    return linear_to_cielab(_apply3(lms_**3, _M1_INV))


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between CIELAB arrays that broadcast
    against each other (..., 3); returns (...) float64, or float32 when both are float32 (twice
    as fast, for ranking). About 1 is a just-noticeable difference.

    Follows Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula:
    implementation notes", including its conventions for neutral colours (hue 0).
    """
    dtype = np.float32 if np.result_type(lab1, lab2) == np.float32 else np.float64
    lab1 = np.asarray(lab1, dtype=dtype)
    lab2 = np.asarray(lab2, dtype=dtype)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    # angles in radians throughout (the paper's degrees cost a conversion per array)
    c_mean7 = ((np.sqrt(a1 * a1 + b1 * b1) + np.sqrt(a2 * a2 + b2 * b2)) * 0.5) ** 7
    g1 = 1.5 - 0.5 * np.sqrt(c_mean7 / (c_mean7 + _25_POW7))  # 1 + G
    a1p, a2p = a1 * g1, a2 * g1
    c1p, c2p = np.sqrt(a1p * a1p + b1 * b1), np.sqrt(a2p * a2p + b2 * b2)
    # hue 0..2pi; arctan2(0, 0) is 0, the paper's hue of a neutral colour
    h1p, h2p = np.arctan2(b1, a1p), np.arctan2(b2, a2p)
    h1p = np.where(h1p < 0.0, h1p + _TAU, h1p)
    h2p = np.where(h2p < 0.0, h2p + _TAU, h2p)
    cc = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > np.pi, dh - _TAU, np.where(dh < -np.pi, dh + _TAU, dh))
    dhh = 2.0 * np.sqrt(cc) * np.sin(0.5 * dh)  # 0 when either colour is neutral
    hsum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) <= np.pi, 0.5 * hsum,
                      np.where(hsum < _TAU, 0.5 * hsum + np.pi, 0.5 * hsum - np.pi))
    h_mean = np.where(cc == 0.0, hsum, h_mean)
    t = (1.0 - 0.17 * np.cos(h_mean - _DEG30) + 0.24 * np.cos(2.0 * h_mean)
         + 0.32 * np.cos(3.0 * h_mean + _DEG6) - 0.20 * np.cos(4.0 * h_mean - _DEG63))
    d_theta = _DEG30 * np.exp(-(((h_mean - _DEG275) / _DEG25) ** 2))
    c_mean = 0.5 * (c1p + c2p)
    c_mean_7 = c_mean**7
    rc = 2.0 * np.sqrt(c_mean_7 / (c_mean_7 + _25_POW7))
    lm2 = (0.5 * (L1 + L2) - 50.0) ** 2
    sl = 1.0 + 0.015 * lm2 / np.sqrt(20.0 + lm2)
    sc = 1.0 + 0.045 * c_mean
    sh = 1.0 + 0.015 * c_mean * t
    rt = -np.sin(2.0 * d_theta) * rc
    tl, tc, th = (L2 - L1) / sl, (c2p - c1p) / sc, dhh / sh
    return np.sqrt(tl * tl + tc * tc + th * th + rt * tc * th)
