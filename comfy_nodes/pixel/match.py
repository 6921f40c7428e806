"""Nearest palette colour as a viewer judges it: CIEDE2000 among the nearest colours in OKLab.

Euclidean OKLab distance tracks small colour differences well, and k-means and the dithers'
mixing work in it. But a fixed palette offers a colour only large differences, and there
OKLab weighs lightness too heavily against hue and chroma: mapping the 9 real AI images
(snapped) and snap-dev's 20 easy sprites to PICO-8, 1.9 % of the chromatic pixels changed hue
by more than 90 degrees (a dark red demon turned navy) and 5.3 % lost their colour to a grey
(CGA 15.5 %, DawnBringer 16 7.9 %). CIEDE2000 (CIE 142-2001), the standard colour-difference
formula and the one the benchmark scores, gives 0.0 % and 0.1 % there (CGA 5.3 %, DawnBringer
16 1.4 %) and a lower mean difference on every built-in palette (``bench/palette_quality.py``).

CIEDE2000 costs some forty array operations per pair, so each colour is compared with the
``SHORTLIST`` colours nearest to it in OKLab only: for 100,000 uniformly random colours the
CIEDE2000-nearest is among them for all of them on the 16-colour palettes and DawnBringer 32,
99.97 % on Endesga 32, 99.99 % on AAP-64 and 99.89 % on NES; where it is not, the colour
taken is at most 6.2 (CIEDE2000) farther than the best (NES; 1.6 and 0.9 on the others).
"""
from __future__ import annotations

import numpy as np

from .color import _dot3, ciede2000, oklab_to_cielab

#: how many OKLab-nearest palette colours each colour's CIEDE2000 comparison covers
SHORTLIST = 16
#: OKLab box the colours compared by CIEDE2000 are clipped to (sRGB spans L 0..1, a/b +-0.32)
_LAB_MIN = np.array([-0.5, -1.0, -1.0])
_LAB_MAX = np.array([1.5, 1.0, 1.0])
#: colours x candidates compared per chunk (bounds the temporaries to a few tens of MB)
_CHUNK_PAIRS = 400_000


class PaletteMatcher:
    """Nearest-colour lookups against one palette, given as OKLab (K, 3) float."""

    def __init__(self, palette_lab: np.ndarray) -> None:
        self.lab = np.asarray(palette_lab, dtype=np.float64).reshape(-1, 3)
        # float32 halves the cost of CIEDE2000, which here only ranks a few candidates
        self.cielab = oklab_to_cielab(self.lab).astype(np.float32)
        self._p2 = (self.lab**2).sum(axis=1)
        self._pt = -2.0 * self.lab.T

    def __len__(self) -> int:
        return self.lab.shape[0]

    def distances(self, lab: np.ndarray) -> np.ndarray:
        """Squared OKLab distance from each row of ``lab`` (M, 3) to each palette colour, less
        the row's own squared norm (the same for every colour of a row): (M, K)."""
        d = _dot3(lab, self._pt)
        d += self._p2
        return d

    def pick(self, lab: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The nearest palette index for each row of ``lab`` (M, 3, OKLab), given its OKLab
        ``distances`` ``d`` (M, K). Exact ties go to the lower palette index."""
        m, k = d.shape
        if k <= 1 or m == 0:
            return np.zeros(m, dtype=np.intp)
        if k > SHORTLIST:
            cand = np.sort(np.argpartition(d, SHORTLIST - 1, axis=1)[:, :SHORTLIST], axis=1)
        else:
            cand = np.broadcast_to(np.arange(k), (m, k))
        # far outside the colour solid only the direction matters, and the cube in the
        # conversion would overflow float32
        near = np.clip(lab, _LAB_MIN, _LAB_MAX)
        de = ciede2000(oklab_to_cielab(near).astype(np.float32)[:, None, :], self.cielab[cand])
        return cand[np.arange(m), np.argmin(de, axis=1)]

    def flip_points(self, lab: np.ndarray, i1: np.ndarray, i2: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Where each colour would turn nearer its partner: the position u (``t``..2) along the
        OKLab line from palette colour ``i1`` (0) to ``i2`` (1) at which the colour, moved along
        that line from its own position ``t`` (its projection, 0..1), becomes nearer ``i2`` by
        CIEDE2000; 2 when it does not before a segment's length past ``i2``. For a colour on the
        segment this is the point where the two are equally near (0.5 where OKLab would say).
        ``i1`` must be each colour's nearest (:meth:`nearest`), so the answer is not below ``t``."""
        lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
        t = np.asarray(t, dtype=np.float64)
        out = np.ones(len(lab))
        live = np.flatnonzero(i1 != i2)
        if not len(live):
            return out
        a, b = self.lab[i1[live]], self.lab[i2[live]]
        ca, cb = self.cielab[i1[live]], self.cielab[i2[live]]
        base = lab[live] - t[live, None] * (b - a)  # the colour moved back to position 0

        def nearer_b(u: np.ndarray) -> np.ndarray:
            x = oklab_to_cielab(np.clip(base + u[:, None] * (b - a), _LAB_MIN, _LAB_MAX)).astype(np.float32)
            return ciede2000(x, cb) < ciede2000(x, ca)

        lo, hi = t[live].copy(), np.full(len(live), 2.0)
        flips = nearer_b(hi)
        # bisection to 1/2048 of the segment, far finer than the 1/64 steps of a Bayer 8x8
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            nb = nearer_b(mid)
            hi = np.where(nb, mid, hi)
            lo = np.where(nb, lo, mid)
        out[live] = np.where(flips, hi, 2.0)
        return out

    def nearest(self, lab: np.ndarray) -> np.ndarray:
        """The nearest palette index (M,) for each row of ``lab`` (M, 3, OKLab)."""
        lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
        out = np.empty(lab.shape[0], dtype=np.intp)
        chunk = max(1, _CHUNK_PAIRS // max(1, len(self)))
        for s in range(0, lab.shape[0], chunk):
            part = lab[s : s + chunk]
            out[s : s + chunk] = self.pick(part, self.distances(part))
        return out
