"""Sprite cleanup: background removal, stray-pixel removal, outlines and trimming.

All functions take and return (H, W, 4) uint8 RGBA arrays and never modify their input.
Colour tolerances are Euclidean OKLab distances (L in 0..1; 0.02 is about one just-noticeable
difference, 0.1 separates clearly different shades).

Connected components are labelled without scipy: pixels are grouped into horizontal runs of
equal value, runs that touch vertically (or diagonally, for 8-connectivity) are joined by
vectorised min-label propagation with pointer jumping, which needs a handful of passes over
the run graph even for long snaking regions.

The stray vote puts the 4 or 8 neighbour colours of every pixel of a small island in a table and
counts votes without sorting millions of (island, colour) pairs: single-pixel islands (nearly
every pixel of a raw generated frame) are counted column by column after a sorting network,
larger islands one table row each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .color import srgb_to_oklab
from .errors import InputImageError, InvalidArgumentError
from .imageio import as_rgba
from .stats import median

# ----------------------------------------------------------------------------- labelling


def _check_connectivity(connectivity: int) -> int:
    if connectivity not in (4, 8):
        raise InvalidArgumentError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return int(connectivity)


def label_regions(values: np.ndarray, connectivity: int = 4) -> tuple[np.ndarray, int]:
    """Label the connected regions of equal value in a 2-D integer array.

    Returns (labels (H, W) int64 with values 0..n-1, n). Every pixel gets a label, whatever its
    value; callers pick the regions they care about.
    """
    _check_connectivity(connectivity)
    v = np.asarray(values)
    if v.ndim != 2:
        raise InvalidArgumentError(f"values must be 2-D, got shape {v.shape}")
    h, w = v.shape
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=np.int64), 0
    start = np.ones((h, w), dtype=bool)
    start[:, 1:] = v[:, 1:] != v[:, :-1]
    # int32 run ids (a 16k x 16k image has fewer than 2**31 pixels): half the memory of int64.
    run_id = np.cumsum(start.reshape(-1), dtype=np.int32 if h * w < 2**31 else np.int64).reshape(h, w) - 1
    del start
    n_runs = int(run_id[-1, -1]) + 1

    edges_a, edges_b = [], []
    if h > 1:
        pairs = [(slice(None), slice(None))]
        if connectivity == 8:
            pairs += [(slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))]
        for lower_cols, upper_cols in pairs:
            # (y, x) in the upper row against (y + 1, x + d) in the lower row.
            up_v, lo_v = v[:-1, upper_cols], v[1:, lower_cols]
            same = up_v == lo_v
            if same.any():
                ea = run_id[:-1, upper_cols][same]
                eb = run_id[1:, lower_cols][same]
                # Pairs come in raster order, so the many repeats of one (upper run, lower run)
                # pair are consecutive: dropping those (here, before they pile up over the
                # three directions) is enough, without sorting.
                keep = np.ones(ea.size, dtype=bool)
                keep[1:] = (ea[1:] != ea[:-1]) | (eb[1:] != eb[:-1])
                edges_a.append(ea[keep])
                edges_b.append(eb[keep])
                del ea, eb, keep
    parent = np.arange(n_runs, dtype=np.int64)
    if edges_a:
        a = np.concatenate(edges_a).astype(np.int64)
        b = np.concatenate(edges_b).astype(np.int64)
        del edges_a, edges_b
        while True:
            pa, pb = parent[a], parent[b]
            m = np.minimum(pa, pb)
            changed = (pa != m) | (pb != m)
            if not changed.any():
                break
            # Hook both ends' roots to the smaller root, then compress paths fully.
            a, b = a[changed], b[changed]
            np.minimum.at(parent, pa[changed], m[changed])
            np.minimum.at(parent, pb[changed], m[changed])
            while True:
                nxt = parent[parent]
                if np.array_equal(nxt, parent):
                    break
                parent = nxt
    # Every entry now points at its root; number the roots in order.
    is_root = parent == np.arange(n_runs)
    new_id = np.cumsum(is_root) - 1
    labels = new_id[parent][run_id]
    return labels, int(is_root.sum())


def _color_keys(rgba: np.ndarray, alpha_threshold: int) -> np.ndarray:
    """One int32 per pixel: the RGB colour for opaque pixels, -1 for every transparent pixel."""
    # Channel by channel in int32 (24 bits fit): a 4-channel int64 copy would cost 32 bytes a pixel.
    key = rgba[..., 0].astype(np.int32) << 16
    key |= rgba[..., 1].astype(np.int32) << 8
    key |= rgba[..., 2]
    key[rgba[..., 3] < alpha_threshold] = -1
    return key


def _neighbour_offsets(connectivity: int):
    four = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        return four + [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    return four


def _shifted(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx], ``fill`` outside the image."""
    h, w = a.shape[:2]
    out = np.full_like(a, fill)
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def _image(rgba, name: str = "image") -> np.ndarray:
    img = as_rgba(rgba, source=name)
    return img.copy()


# ----------------------------------------------------------------------------- background


#: Most distinct border colours tried as the backdrop's key (the most frequent ones): a noisy
#: backdrop of a large image has thousands, and each is weighed against all of them.
MAX_KEY_CANDIDATES = 512


def border_color(rgba, *, alpha_threshold: int = 128, tolerance: float = 0.06) -> tuple[int, int, int] | None:
    """The opaque border colour with the most border pixels within ``tolerance`` (OKLab
    distance) of it, or None when transparency is at least as frequent there: the backdrop is
    transparent already, and the opaque pixels on the border are the sprite's own (a trimmed
    sprite touches the edge; keyed on its outline, the fill would eat the outline through the
    transparent pixels around it).

    Counted within ``tolerance``, not exactly: on a backdrop with a little noise, a gradient or
    a vignette every exact colour is rare, and the one flat sprite colour touching the edge
    outnumbered each of them (the fill then took the sprite and left the backdrop)."""
    img = as_rgba(rgba)
    ring = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]]) if img.shape[0] > 1 else img[0]
    clear = int((ring[:, 3] < alpha_threshold).sum())
    ring = ring[ring[:, 3] >= alpha_threshold]
    if ring.size == 0:
        return None
    keys = (ring[:, 0].astype(np.int64) << 16) | (ring[:, 1].astype(np.int64) << 8) | ring[:, 2]
    vals, counts = np.unique(keys, return_counts=True)
    rgb = np.stack([(vals >> 16) & 255, (vals >> 8) & 255, vals & 255], axis=1).astype(np.uint8)
    lab = srgb_to_oklab(rgb)
    cand = np.argsort(-counts, kind="stable")[:MAX_KEY_CANDIDATES]
    support = np.empty(cand.size, dtype=np.int64)
    for i in range(0, cand.size, 64):  # bounded memory: 64 candidates x every border colour at a time
        d = np.sqrt(((lab[cand[i:i + 64], None, :] - lab[None, :, :]) ** 2).sum(axis=2))
        support[i:i + 64] = ((d <= tolerance + 1e-12) * counts[None, :]).sum(axis=1)
    best = int(np.argmax(support))  # ties: the more frequent exact colour (cand is in that order)
    if clear >= support[best]:
        return None
    return tuple(int(c) for c in rgb[cand[best]])


def background_mask(
    rgba,
    *,
    tolerance: float = 0.06,
    key=None,
    connectivity: int = 4,
    alpha_threshold: int = 128,
    holes: int = 0,
) -> np.ndarray:
    """Boolean (H, W): the background region connected to the image border.

    A pixel is background-coloured when its OKLab distance to the key colour is at most
    ``tolerance`` (already transparent pixels count too). The key is ``key`` (hex string or
    (r, g, b)) or, when None, the most frequent opaque border colour. Only background-coloured
    regions touching the border are returned; enclosed ones (an eye, a hole in a ring that does
    not reach the edge) are not, unless ``holes`` > 0: then enclosed background-coloured regions
    of at least ``holes`` pixels are background too (the gap between a character's legs that its
    shadow closes off), and smaller ones (an eye's white) stay.
    """
    from .palette import _key_histogram, _rgb_keys, _unpack_rgb, as_rgb_color

    _check_connectivity(connectivity)
    if isinstance(holes, bool) or not isinstance(holes, (int, np.integer)) or holes < 0:
        raise InvalidArgumentError(f"holes must be a whole number of pixels >= 0 (0 keeps every enclosed region), got {holes!r}")
    try:
        tolerance = float(tolerance)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"tolerance must be a number (OKLab distance, 0..1), got {tolerance!r}") from None
    if not 0.0 <= tolerance <= 2.0:
        raise InvalidArgumentError(f"tolerance must be 0..2 (OKLab distance; 0.06 is a good start), got {tolerance}")
    img = as_rgba(rgba)
    transparent = img[..., 3] < alpha_threshold
    if key is None:
        kc = border_color(img, alpha_threshold=alpha_threshold, tolerance=tolerance)
        if kc is None:
            return np.zeros(img.shape[:2], dtype=bool)
    else:
        kc = as_rgb_color(key, what="key")
    key_lab = srgb_to_oklab(np.array(kc, dtype=np.uint8))
    # Distance computed per distinct colour: sprites have few, photos are still bounded by 2**24.
    vals, _, inv = _key_histogram(_rgb_keys(img).reshape(-1), want_inverse=True)
    near = np.sqrt(((srgb_to_oklab(_unpack_rgb(vals)) - key_lab) ** 2).sum(axis=1)) <= tolerance + 1e-12
    candidate = near[inv].reshape(img.shape[:2]) | transparent
    labels, n = label_regions(candidate.astype(np.int8), connectivity)
    border = np.zeros(n, dtype=bool)
    for edge_labels, edge_cand in (
        (labels[0], candidate[0]),
        (labels[-1], candidate[-1]),
        (labels[:, 0], candidate[:, 0]),
        (labels[:, -1], candidate[:, -1]),
    ):
        border[edge_labels[edge_cand]] = True
    if holes:
        sizes = np.bincount(labels[candidate].ravel(), minlength=n)
        border |= sizes >= holes
    return border[labels] & candidate


def remove_background(
    rgba,
    *,
    tolerance: float = 0.06,
    key=None,
    connectivity: int = 4,
    alpha_threshold: int = 128,
    holes: int = 0,
) -> np.ndarray:
    """Make the border-connected background transparent (RGBA 0, 0, 0, 0); see ``background_mask``
    (``holes``: enclosed background regions of at least that many pixels go too; 0 keeps them).

    ``tolerance`` is an OKLab distance (0 = exactly the key colour; 0.06 absorbs JPEG-ish noise
    and soft shading of a flat backdrop). Returns a new (H, W, 4) uint8 array.
    """
    img = _image(rgba)
    bg = background_mask(img, tolerance=tolerance, key=key, connectivity=connectivity, alpha_threshold=alpha_threshold,
                         holes=holes)
    img[bg] = 0
    return img


# ----------------------------------------------------------------------------- strays


def remove_strays(
    rgba,
    *,
    min_size: int = 2,
    connectivity: int = 8,
    max_difference: float | None = 0.05,
    alpha_threshold: int = 128,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Replace islands of one colour smaller than ``min_size`` pixels by their surroundings.

    An island is a connected region (4- or 8-connected) of exactly one opaque colour. For each
    island with fewer than ``min_size`` pixels the pixels bordering it vote:

    * an island with no opaque neighbour (a speck floating in transparency) becomes transparent;
    * otherwise it takes the most common opaque neighbour colour (ties: the lower RGB value) when
      that colour is within ``max_difference`` (OKLab distance) of the island's own colour. With
      ``max_difference=None`` the vote is unconditional and counts transparency too (an island
      mostly bordered by transparency becomes transparent).

    The default (8-connectivity, ``max_difference=0.05``) removes what a snap leaves behind
    (cells a shade off their neighbours, specks around the sprite) but keeps what a pixel artist
    puts there on purpose: diagonal lines and dithering (connected under 8-connectivity) and
    single high-contrast pixels such as eyes and highlights. Measured on the snap benchmark
    (``bench/palette_bench.py``-style evaluation): on the 57 hand-made originals it changes 4.8 %
    of the pixels (single pixels within 0.05 of their surroundings), where the unconditional
    4-connected vote changes 23 %; after snap + background removal + automatic palette it leaves
    the colour error against the originals unchanged (0.0269), while the unconditional 4-connected
    vote more than doubles it (0.0699).

    Transparent regions are never filled. ``min_size=1`` changes nothing. One pass: islands are
    judged on the input. A speck of several colours floating in transparency, smaller than
    ``min_size`` as a whole, is cleared too.

    ``check``, when given, is called without arguments between the stages of the work (a few
    times per image, at most a few hundred milliseconds apart on a 1536x1024 image on one core);
    whatever it raises propagates, so a host application can abandon the work when its user
    cancels.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise InvalidArgumentError(f"min_size must be an integer >= 1 (pixels), got {min_size!r}")
    _check_connectivity(connectivity)
    if max_difference is not None:
        try:
            max_difference = float(max_difference)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"max_difference must be an OKLab distance >= 0 or None, got {max_difference!r}") from None
        if not max_difference >= 0:
            raise InvalidArgumentError(f"max_difference must be an OKLab distance >= 0 or None, got {max_difference}")
    check = check or _no_check
    img = _image(rgba)
    if min_size == 1:
        return img
    keys = _color_keys(img, alpha_threshold)
    check()
    labels, n = label_regions(keys, connectivity)
    check()
    flat_labels = labels.reshape(-1)
    sizes = np.bincount(flat_labels, minlength=n)
    flat_keys = keys.reshape(-1)
    # Every pixel of a region has its key, so whichever pixel's write lands is the right one.
    label_key = np.empty(n, dtype=flat_keys.dtype)
    label_key[flat_labels] = flat_keys
    small = (sizes < min_size) & (label_key >= 0)
    if not small.any():
        return img
    pix_small = small[labels]
    votes, pix = _neighbour_votes(flat_keys, pix_small, connectivity)
    if votes is None:
        return img
    own_label = flat_labels[pix]
    has_opaque = np.zeros(n, dtype=bool)
    has_opaque[own_label[((votes >= 0) & (votes != _NO_VOTE)).any(axis=0)]] = True
    if max_difference is not None:
        # Only opaque neighbours vote; specks without any are cleared below.
        votes[votes == -1] = _NO_VOTE
    check()
    winner = np.full(n, -3, dtype=np.int64)
    for islands, best in _island_votes(votes, own_label, sizes[own_label]):
        voted = best != _NO_VOTE
        winner[islands[voted]] = best[voted]
        check()
    if max_difference is not None:
        cand = np.flatnonzero(small & (winner >= 0))
        if cand.size:
            # OKLab once per distinct colour, not once per island: a raw 1536x1024 frame has 1.5
            # million islands but a quarter as many colours.
            from .palette import _key_histogram

            colours, _, at = _key_histogram(np.concatenate([label_key[cand], winner[cand]]), want_inverse=True)
            lab = _keys_lab(colours)
            own, new = lab[at[: cand.size]], lab[at[cand.size :]]
            too_far = np.sqrt(((own - new) ** 2).sum(axis=1)) > max_difference + 1e-12
            winner[cand[too_far]] = -3
        winner[small & ~has_opaque] = -1
    check()
    # Only pixels of small islands change: written by flat index, not through image-sized masks.
    target = winner[own_label]
    flat_img = img.reshape(-1, 4)
    flat_img[pix[target == -1]] = 0
    to_color = target >= 0
    t = target[to_color]
    flat_img[pix[to_color]] = np.stack([(t >> 16) & 255, (t >> 8) & 255, t & 255, np.full_like(t, 255)], axis=1)
    if max_difference is not None:
        # A speck of several colours floating in transparency: each colour has the other as a
        # neighbour too different to take, so the vote kept it. As a whole it is still a speck.
        opaque = img[..., 3] >= alpha_threshold
        # An image opaque throughout is one region, which is a speck only when the image is.
        if not opaque.all() or opaque.size < min_size:
            blobs, nb = label_regions(np.where(opaque, 1, -1).astype(np.int8), connectivity)
            blob_sizes = np.bincount(blobs.reshape(-1), minlength=nb)
            tiny = (blob_sizes < min_size) & np.bincount(blobs.reshape(-1), weights=opaque.reshape(-1),
                                                         minlength=nb).astype(bool)
            if tiny.any():
                img[tiny[blobs]] = 0
    return img


def _no_check() -> None:
    """The ``check`` of callers that cannot be cancelled."""


#: Marks "no vote" in a vote table: above every colour key (24 bits) and transparency (-1),
#: so it sorts after them all.
_NO_VOTE = np.iinfo(np.int32).max

#: Sorting networks (optimal for 4 and 8 inputs): compare-exchange steps that sort a handful of
#: columns at once, far faster than sorting millions of 4- or 8-entry rows one by one.
_SORTING_NETWORKS = {
    4: [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)],
    8: [(0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5), (6, 7),
        (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6)],
}


def _neighbour_votes(flat_keys: np.ndarray, pix_small: np.ndarray, connectivity: int) -> tuple[np.ndarray | None, np.ndarray]:
    """The votes of the neighbours of every pixel of a small island.

    Returns (votes, pix): ``pix`` the flat indices of the pixels where ``pix_small`` (H, W) is
    set, in raster order; ``votes`` (4 or 8, len(pix)) int32, one row per neighbour direction:
    the colour key of that neighbour (-1 transparent), or ``_NO_VOTE`` where it lies outside the
    image or belongs to the same island. ``votes`` is None when not one neighbour votes.
    """
    h, w = pix_small.shape
    pix = np.flatnonzero(pix_small)
    # A border of non-votes around the image: every neighbour is then one gather, with no
    # bounds checks (outside the image is not a vote).
    padded = np.full((h + 2, w + 2), _NO_VOTE, dtype=np.int32)
    padded[1:-1, 1:-1] = flat_keys.reshape(h, w)
    padded = padded.reshape(-1)
    at = pix + 2 * (pix // w) + (w + 3)  # (y + 1, x + 1) in the padded image
    own_key = flat_keys[pix]
    offsets = _neighbour_offsets(connectivity)
    votes = np.empty((len(offsets), pix.size), dtype=np.int32)
    for j, (dy, dx) in enumerate(offsets):
        row = votes[j]
        np.take(padded, at + (dy * (w + 2) + dx), out=row)
        # A neighbour of the same colour under the same connectivity is the same island, which
        # does not vote for itself.
        row[row == own_key] = _NO_VOTE
    if not (votes != _NO_VOTE).any():
        return None, pix
    return votes, pix


def _island_votes(votes: np.ndarray, own_label: np.ndarray, own_size: np.ndarray):
    """Yield (island labels (k,), their winning vote (k,) int32 or ``_NO_VOTE``) per island size.

    ``votes`` is ``_neighbour_votes``' table, ``own_label`` / ``own_size`` the island and island
    size of each of its columns.
    """
    single = own_size == 1
    if single.all():
        yield own_label, _column_modes(votes)
    elif single.any():
        yield own_label[single], _column_modes(votes[:, single])
    multi = np.flatnonzero(~single)
    if multi.size:
        # By size, then by island: each island's pixels end up next to each other, and all
        # islands of one size form one block that reshapes into a table, one row per island.
        order = multi[np.lexsort((own_label[multi], own_size[multi]))]
        bounds = np.flatnonzero(np.diff(own_size[order])) + 1
        for block in np.split(order, bounds):
            s = int(own_size[block[0]])
            rows = votes[:, block].T.reshape(block.size // s, s * votes.shape[0])
            yield own_label[block[::s]], _row_modes(rows)


def _column_modes(cols: np.ndarray) -> np.ndarray:
    """``_row_modes`` of ``cols.T`` for 4 or 8 rows, sorted with a network, not row by row."""
    network = _SORTING_NETWORKS.get(cols.shape[0])
    if network is None:
        return _row_modes(np.ascontiguousarray(cols.T))
    c = list(cols)
    for i, j in network:
        c[i], c[j] = np.minimum(c[i], c[j]), np.maximum(c[i], c[j])
    best_n = np.zeros(cols.shape[1], dtype=np.uint8)
    best_v = np.full(cols.shape[1], _NO_VOTE, dtype=np.int32)
    run = np.ones(cols.shape[1], dtype=np.uint8)
    for j, v in enumerate(c):
        if j:
            run = run * (v == c[j - 1]).view(np.uint8) + np.uint8(1)
        # Strictly longer only: among tied runs the first, the lowest value, stays.
        better = (run > best_n) & (v != _NO_VOTE)
        np.copyto(best_n, run, where=better)
        np.copyto(best_v, v, where=better)
    return best_v


def _row_modes(rows: np.ndarray) -> np.ndarray:
    """Per row of an int32 table, its most frequent value other than ``_NO_VOTE`` (ties: the
    lowest value), or ``_NO_VOTE`` when the row holds nothing else."""
    k, width = rows.shape
    srt = np.sort(rows, axis=1)
    col = np.arange(width, dtype=np.int32)
    new_run = np.ones((k, width), dtype=bool)
    np.not_equal(srt[:, 1:], srt[:, :-1], out=new_run[:, 1:])
    # Length of the run of equal values up to and including each entry.
    run_len = col - np.maximum.accumulate(np.where(new_run, col, 0), axis=1) + 1
    run_len[srt == _NO_VOTE] = 0
    # A run reaches its full length at its last entry, and runs lie in ascending value order:
    # the first entry with the row's top length ends the lowest of the tied values.
    at = np.argmax(run_len, axis=1)
    rk = np.arange(k)
    return np.where(run_len[rk, at] > 0, srt[rk, at], _NO_VOTE).astype(np.int32)


def _keys_lab(keys: np.ndarray) -> np.ndarray:
    """OKLab of colour keys made by ``_color_keys`` (r << 16 | g << 8 | b)."""
    k = keys.astype(np.int64)
    rgb = np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=-1).astype(np.uint8)
    return srgb_to_oklab(rgb)


# ----------------------------------------------------------------------------- outline


#: OKLab lightness the automatic outline colour must lie below the colours it borders; a
#: smaller step is hardly seen.
OUTLINE_CONTRAST = 0.1


def _adjacent_colours(img: np.ndarray, opaque: np.ndarray, ring: np.ndarray, offsets, inside: bool) -> np.ndarray:
    """(N, 3) uint8: for each ``ring`` pixel the colour of the content it outlines (its own
    with ``inside``, else the first opaque neighbour among ``offsets``)."""
    if inside:
        return img[..., :3][ring]
    src = np.zeros_like(img[..., :3])
    found = np.zeros_like(opaque)
    for dy, dx in offsets:
        nb_op = _shifted(opaque, dy, dx, False)
        nb_rgb = _shifted(img[..., :3], dy, dx, 0)
        take = ring & nb_op & ~found
        src[take] = nb_rgb[take]
        found |= take
    return src[ring]


def _outline_ring(opaque: np.ndarray, offsets, inside: bool) -> np.ndarray:
    """The pixels an outline takes: content touching transparency or the edge (``inside``), or
    transparent pixels touching content."""
    if inside:
        edge = np.zeros_like(opaque)
        for dy, dx in offsets:
            edge |= ~_shifted(opaque, dy, dx, False)
        return opaque & edge
    near = np.zeros_like(opaque)
    for dy, dx in offsets:
        near |= _shifted(opaque, dy, dx, False)
    return ~opaque & near


def auto_outline_color(frames, *, connectivity: int = 4, inside: bool = False,
                       alpha_threshold: int = 128) -> tuple[int, int, int] | None:
    """The colour ``add_outline(color='auto')`` gives, chosen once for all ``frames`` (RGBA
    images; an animation): the darkest opaque colour of them all (OKLab L), which keeps the
    outline inside the sprite's palette, unless the outline would hardly differ from what it
    borders (a one-colour silhouette: then that colour darkened as 'darken' does). Chosen per
    frame, it flickered: a frame whose darkest pixel (an eye) closed got another outline.
    None when no frame has content to outline."""
    from .color import oklab_to_srgb8
    from .palette import _key_histogram, _rgb_keys, _unpack_rgb

    _check_connectivity(connectivity)
    offsets = _neighbour_offsets(connectivity)
    keys, beside = [], []
    for f in frames:
        img = _image(f)
        opaque = img[..., 3] >= alpha_threshold
        ring = _outline_ring(opaque, offsets, inside)
        if not opaque.any() or not ring.any():
            continue
        keys.append(_rgb_keys(img)[opaque])
        beside.append(srgb_to_oklab(_adjacent_colours(img, opaque, ring, offsets, inside))[:, 0])
    if not keys:
        return None
    vals, _, _ = _key_histogram(np.concatenate(keys))
    urgb = _unpack_rgb(vals)
    lab = srgb_to_oklab(urgb)
    i = int(np.argmin(lab[:, 0]))
    # The darkest colour outlines a sprite that has darker parts; drawn around its own fill (a
    # one-colour silhouette) it would only grow it, so it is darkened then.
    if float(median(np.concatenate(beside) - lab[i, 0])) < OUTLINE_CONTRAST:
        dark = lab[i].copy()
        dark[0] *= 0.45
        dark[1:] *= 0.8
        return tuple(int(c) for c in oklab_to_srgb8(dark[None, :])[0])
    return tuple(int(c) for c in urgb[i])


def add_outline(
    rgba,
    *,
    color=None,
    connectivity: int = 4,
    inside: bool = False,
    alpha_threshold: int = 128,
) -> np.ndarray:
    """Draw a 1-pixel outline around the opaque content.

    ``inside=False``: transparent pixels touching content (4- or 8-neighbours) become outline;
    content touching the image edge gets no outline there (there is no room). ``inside=True``:
    content pixels touching transparency or the image edge are recoloured instead, so the size
    of the sprite does not grow.

    ``color``: a hex string or (r, g, b); None or 'auto' uses :func:`auto_outline_color` of this
    image alone (for the frames of an animation, give that function all of them, and its colour
    here); 'darken' uses, per outline pixel, a darker version (OKLab L x 0.45, chroma x 0.8) of
    the adjacent content colour (a 'selective outline'; adds colours, so quantise afterwards to
    stay on a palette).
    """
    from .color import oklab_to_srgb8
    from .palette import as_rgb_color

    _check_connectivity(connectivity)
    img = _image(rgba)
    opaque = img[..., 3] >= alpha_threshold
    if not opaque.any():
        return img
    offsets = _neighbour_offsets(connectivity)
    ring = _outline_ring(opaque, offsets, inside)
    if not ring.any():
        return img
    mode = color.strip().lower() if isinstance(color, str) else color
    if mode is None or mode == "auto":
        img[ring, :3] = auto_outline_color([img], connectivity=connectivity, inside=inside,
                                           alpha_threshold=alpha_threshold)
    elif mode == "darken":
        lab = srgb_to_oklab(_adjacent_colours(img, opaque, ring, offsets, inside))
        lab[:, 0] *= 0.45
        lab[:, 1:] *= 0.8
        img[ring, :3] = oklab_to_srgb8(lab)
    else:
        img[ring, :3] = as_rgb_color(color, what="outline color")
    img[ring, 3] = 255
    return img


# ----------------------------------------------------------------------------- trim


@dataclass
class TrimResult:
    """A trimmed image and the crop box in source pixel coordinates.

    ``box`` = (left, top, right, bottom), right/bottom exclusive, like Pillow; with padding it
    can reach outside the source (negative left/top) where transparent margin was added.
    ``empty`` is True when the source had no content (the image is returned unchanged).
    """

    image: np.ndarray
    box: tuple[int, int, int, int]
    empty: bool = False


def content_box(rgba, *, alpha_threshold: int = 1) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of pixels with alpha >= ``alpha_threshold``, or None."""
    img = as_rgba(rgba)
    m = img[..., 3] >= alpha_threshold
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _check_padding(padding) -> int:
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise InvalidArgumentError(f"padding must be an integer >= 0 (pixels), got {padding!r}")
    return int(padding)


def crop_box(rgba, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut ``box`` out of the image; parts outside the image come out transparent."""
    img = as_rgba(rgba)
    left, top, right, bottom = (int(v) for v in box)
    if right <= left or bottom <= top:
        raise InvalidArgumentError(f"box {box} is empty (right must exceed left, bottom exceed top)")
    h, w = img.shape[:2]
    out = np.zeros((bottom - top, right - left, 4), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = img[sy0:sy1, sx0:sx1]
    return out


def trim(rgba, *, padding: int = 0) -> TrimResult:
    """Crop to the content (alpha > 0) plus ``padding`` transparent pixels on every side.

    A fully transparent image is returned unchanged with ``empty=True``.
    """
    padding = _check_padding(padding)
    img = as_rgba(rgba)
    box = content_box(img)
    if box is None:
        h, w = img.shape[:2]
        return TrimResult(img.copy(), (0, 0, w, h), True)
    l, t, r, b = box
    box = (l - padding, t - padding, r + padding, b + padding)
    return TrimResult(crop_box(img, box), box)


def trim_batch(frames, *, padding: int = 0, union: bool = True) -> list[TrimResult]:
    """Trim each frame; with ``union`` all frames share one box (the union of their content
    boxes) so an animation stays aligned and the frames keep one size. Frames must then have one
    size. A batch with no content at all is returned unchanged (``empty=True``)."""
    padding = _check_padding(padding)
    imgs = [as_rgba(f, source=f"frames[{i}]") for i, f in enumerate(frames)]
    if not imgs:
        raise InputImageError("frames is empty (no images to trim)")
    if not union:
        return [trim(f, padding=padding) for f in imgs]
    size = imgs[0].shape[:2]
    for i, f in enumerate(imgs):
        if f.shape[:2] != size:
            raise InputImageError(
                f"frames[{i}] is {f.shape[1]}x{f.shape[0]} but frames[0] is {size[1]}x{size[0]}; a union box needs one size",
                hint="trim the frames separately (union=False)",
            )
    boxes = [b for b in (content_box(f) for f in imgs) if b is not None]
    if not boxes:
        return [TrimResult(f.copy(), (0, 0, size[1], size[0]), True) for f in imgs]
    l = min(b[0] for b in boxes) - padding
    t = min(b[1] for b in boxes) - padding
    r = max(b[2] for b in boxes) + padding
    btm = max(b[3] for b in boxes) + padding
    box = (l, t, r, btm)
    return [TrimResult(crop_box(f, box), box, content_box(f) is None) for f in imgs]
