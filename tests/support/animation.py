"""Animation frames as a model draws them, for tests of frames snapped together."""
from __future__ import annotations

import numpy as np

from orchestrator import samples


def drawn_walk_frames(size: int = 192) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sample knight's walk cycle degraded frame by frame: the same cell size (11.3 px), but
    each frame its own grid phase, jitter, noise and colour drift, on a ``size`` x ``size``
    backdrop. Returns (true RGBA frames, RGB input frames)."""
    truth = samples.knight_walk()
    frames = []
    for i, t in enumerate(truth):
        d = samples.degrade(t, cell=11.3, seed=100 + i, pad=4)
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = (214, 208, 196)
        canvas[: d.image.shape[0], : d.image.shape[1]] = d.image
        frames.append(canvas)
    return truth, frames


def outputs_per_true_colour(truth: list[np.ndarray], got: list[np.ndarray]) -> dict:
    """Each true colour -> the set of colours it came out as, over all frames (where both are opaque)."""
    seen: dict = {}
    for t, g in zip(truth, got):
        both = (t[..., 3] > 0) & (g[..., 3] > 0)
        for tc, gc in zip(t[both][:, :3], g[both][:, :3]):
            seen.setdefault(tuple(int(v) for v in tc), set()).add(tuple(int(v) for v in gc))
    return seen
