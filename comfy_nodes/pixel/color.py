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
