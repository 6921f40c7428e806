"""Order statistics for the pixel-art core, without ``np.median`` / ``np.percentile``.

Both import ``numpy.ma`` on first use, which costs more than snapping a small image does; a
partition is all these need.
"""
from __future__ import annotations

import numpy as np


def quantile(a: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0..100, nearest rank) of ``a``.

    ``np.percentile`` imports ``numpy.ma`` on first use, which costs more than the whole
    snap of a small image; a partition is all that is needed here.
    """
    v = np.asarray(a).ravel()
    if v.size == 0:
        return 0.0
    k = int(round(q / 100.0 * (v.size - 1)))
    return float(np.partition(v, k)[k])


def median(a: np.ndarray, axis: int | None = None):
    """Median without ``np.median`` (which imports ``numpy.ma``, see :func:`quantile`)."""
    v = np.asarray(a, dtype=np.float64)
    if axis is None:
        v = v.ravel()
        n = v.size
        if n == 0:
            return 0.0
        part = np.partition(v, [(n - 1) // 2, n // 2])
        return float(0.5 * (part[(n - 1) // 2] + part[n // 2]))
    srt = np.sort(v, axis=axis)
    n = srt.shape[axis]
    lo = np.take(srt, (n - 1) // 2, axis=axis)
    hi = np.take(srt, n // 2, axis=axis)
    return 0.5 * (lo + hi)


def percentile_rows(a: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-th percentile (0..100) of each row of the 2-D ``a``, interpolated linearly
    between the two nearest ranks as ``np.percentile``'s default does."""
    srt = np.sort(np.asarray(a, dtype=np.float64), axis=1)
    n = srt.shape[1]
    pos = q / 100.0 * (n - 1)
    lo = min(int(pos), n - 1)
    hi = min(lo + 1, n - 1)
    t = pos - lo
    below, above = srt[:, lo], srt[:, hi]
    # from the nearer rank, so a value on a rank is that rank's exactly
    return below + (above - below) * t if t < 0.5 else above - (above - below) * (1.0 - t)
