"""Cleanup: background removal, strays, outline, trim, and the region labeller."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from comfy_nodes.pixel.cleanup import (
    TrimResult,
    add_outline,
    background_mask,
    border_color,
    crop_box,
    label_regions,
    remove_background,
    remove_strays,
    trim,
    trim_batch,
)
from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError

BG = (40, 200, 40)
RED = (200, 40, 40)


def _img(h, w, rgb=BG, a=255):
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = a
    return out


def _flood_reference(values, connectivity):
    """Breadth-first labelling, the obvious algorithm, for comparison."""
    h, w = values.shape
    lab = -np.ones((h, w), int)
    n = 0
    offs = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        offs += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    for y in range(h):
        for x in range(w):
            if lab[y, x] >= 0:
                continue
            stack = [(y, x)]
            lab[y, x] = n
            while stack:
                cy, cx = stack.pop()
                for dy, dx in offs:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and lab[ny, nx] < 0 and values[ny, nx] == values[cy, cx]:
                        lab[ny, nx] = n
                        stack.append((ny, nx))
            n += 1
    return lab, n


@settings(max_examples=80, deadline=None)
@given(
    values=arrays(np.int64, st.tuples(st.integers(1, 14), st.integers(1, 14)), elements=st.integers(0, 2)),
    connectivity=st.sampled_from([4, 8]),
)
def test_label_regions_matches_flood_fill(values, connectivity):
    lab, n = label_regions(values, connectivity)
    ref, rn = _flood_reference(values, connectivity)
    assert n == rn
    # Same partition: a bijection between labels.
    pairs = set(zip(lab.ravel().tolist(), ref.ravel().tolist()))
    assert len(pairs) == n


def test_label_regions_spiral():
    # A long snaking corridor: one region despite many turns.
    n = 41
    v = np.zeros((n, n), int)
    y, x, d = 0, 0, 0
    dirs = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    v[:, :] = 1
    for ring in range(0, n // 2, 2):
        v[ring, ring : n - ring] = 0
        v[ring : n - ring, n - ring - 1] = 0
        v[n - ring - 1, ring + 2 : n - ring] = 0
        v[ring + 2 : n - ring, ring + 2] = 0 if ring + 2 < n - ring else 1
    lab, cnt = label_regions(v, 4)
    ref, rcnt = _flood_reference(v, 4)
    assert cnt == rcnt


def test_remove_background_keeps_enclosed_background():
    img = _img(20, 20)
    img[4:16, 4:16, :3] = RED
    img[8:12, 8:12, :3] = BG  # enclosed: same colour as the background, not connected
    out = remove_background(img)
    assert (out[0, 0] == 0).all() and (out[19, 19] == 0).all()
    assert out[10, 10].tolist() == [*BG, 255]
    assert out[5, 5].tolist() == [*RED, 255]
    assert (out[..., 3] == 0).sum() == 400 - 144


def test_remove_background_clears_enclosed_background_of_a_given_size():
    """holes=N: enclosed background regions of at least N pixels go too (the gap between the
    legs that a shadow closes off), smaller ones (an eye's white) stay; 0 keeps all."""
    img = _img(20, 20)
    img[2:18, 2:18, :3] = RED
    img[4:12, 4:6, :3] = BG  # a 16-pixel gap, enclosed
    img[14, 14, :3] = BG  # a 1-pixel eye
    assert remove_background(img)[5, 4, 3] == 255  # the default keeps every enclosed region
    out = remove_background(img, holes=4)
    assert (out[4:12, 4:6, 3] == 0).all() and out[14, 14].tolist() == [*BG, 255]
    assert (out[..., 3] == 0).sum() == 400 - 256 + 16
    assert (remove_background(img, holes=1)[..., 3] == 0).sum() == 400 - 256 + 17
    with pytest.raises(InvalidArgumentError, match="holes"):
        remove_background(img, holes=-1)


def test_remove_background_tolerance_in_oklab():
    img = _img(10, 10)
    img[0, 5, :3] = (44, 204, 44)  # a slightly different green on the border
    img[3:7, 3:7, :3] = RED
    assert remove_background(img, tolerance=0.0)[0, 5, 3] == 255
    assert remove_background(img, tolerance=0.05)[0, 5, 3] == 0


def test_remove_background_with_key_and_dominant_border():
    img = _img(10, 10, (255, 255, 255))
    img[0, :3, :3] = (0, 0, 0)  # minority border colour
    img[4:6, 4:6, :3] = RED
    assert border_color(img) == (255, 255, 255)
    out = remove_background(img)
    assert out[0, 0, 3] == 255 and out[5, 0, 3] == 0
    out = remove_background(img, key="#000000", tolerance=0.01)
    assert out[0, 0, 3] == 0 and out[5, 0, 3] == 255
    with pytest.raises(InvalidArgumentError, match="key"):
        remove_background(img, key="#zzzzzz")
    with pytest.raises(InvalidArgumentError, match="tolerance"):
        remove_background(img, tolerance=-1)
    with pytest.raises(InvalidArgumentError, match="connectivity"):
        remove_background(img, connectivity=6)


def test_the_key_of_a_noisy_backdrop_is_the_backdrop_not_the_flat_sprite_touching_the_edge():
    """On a backdrop with a little noise every exact colour is rare: the flat body of a sprite
    standing on the bottom edge outnumbered each one, became the key, and the fill removed the
    sprite and kept the backdrop."""
    rng = np.random.default_rng(0)
    img = _img(64, 64, (235, 235, 235))
    img[..., :3] = np.clip(235 + rng.integers(-4, 5, (64, 64, 3)), 0, 255)
    img[20:, 24:40, :3] = (60, 120, 200)  # 16 of the 252 border pixels, the most frequent exact colour
    key = border_color(img)
    assert key != (60, 120, 200) and all(226 <= c <= 244 for c in key)
    out = remove_background(img)
    assert (out[20:, 24:40, 3] == 255).all()  # the sprite stays
    assert (out[..., 3] > 0).sum() == 44 * 16  # and only it


def test_remove_background_connectivity_diagonal_gap():
    img = _img(5, 5, RED)
    img[0, :, :3] = BG
    img[1, 2, :3] = BG  # touches row 0 orthogonally
    img[2, 3, :3] = BG  # touches (1, 2) only diagonally
    m4 = background_mask(img, key=BG, tolerance=0.01, connectivity=4)
    m8 = background_mask(img, key=BG, tolerance=0.01, connectivity=8)
    assert m4[1, 2] and not m4[2, 3]
    assert m8[2, 3]


def test_remove_background_transparent_border_is_noop():
    img = _img(6, 6, a=0)
    img[2:4, 2:4] = [*RED, 255]
    assert np.array_equal(remove_background(img), img)


def test_remove_background_keeps_a_trimmed_sprite_that_touches_the_edge():
    """A sprite already on transparency, trimmed so its outline touches the image edge: the
    border's opaque pixels are its own outline, not a backdrop, and must stay."""
    img = _img(6, 6, a=0)
    img[2:6, 1:5] = (0, 0, 0, 255)  # a black outline down to the bottom edge
    img[3:5, 2:4] = [*RED, 255]
    assert border_color(img) is None
    assert np.array_equal(remove_background(img), img)
    # a backdrop that is mostly there, with a transparent corner, is still found and removed
    bg = _img(6, 6, (255, 255, 255))
    bg[0, 0, 3] = 0
    bg[2:4, 2:4] = [*RED, 255]
    assert border_color(bg) == (255, 255, 255)
    assert (remove_background(bg)[..., 3] > 0).sum() == 4


def test_remove_strays_unconditional_vote_replaces_single_pixels():
    img = _img(7, 7, RED)
    img[3, 3, :3] = (0, 0, 255)  # one stray pixel inside red
    out = remove_strays(img, max_difference=None, connectivity=4)
    assert out[3, 3].tolist() == [*RED, 255]
    # lone opaque pixel in transparency disappears
    t = _img(7, 7, a=0)
    t[1:5, 1:5] = [*RED, 255]
    t[6, 6] = [0, 0, 255, 255]
    out = remove_strays(t, max_difference=None, connectivity=4)
    assert out[6, 6, 3] == 0 and (out[1:5, 1:5, 3] == 255).all()


def test_remove_strays_default_keeps_details_and_fixes_near_shades():
    img = _img(9, 9, RED)
    img[2, 2, :3] = (0, 0, 0)  # an eye: high contrast, kept
    img[5, 5, :3] = (204, 42, 40)  # a cell a shade off: fixed
    for i in range(3):  # a diagonal line of single pixels: one island under 8-connectivity
        img[6 + i, i, :3] = (20, 20, 20)
    out = remove_strays(img)
    assert out[2, 2, :3].tolist() == [0, 0, 0]
    assert out[5, 5, :3].tolist() == list(RED)
    assert [out[6 + i, i, 0] for i in range(3)] == [20, 20, 20]
    # a speck floating in transparency goes, a pixel touching the sprite stays
    t = _img(8, 8, a=0)
    t[1:5, 1:5] = [*RED, 255]
    t[7, 7] = [0, 0, 255, 255]
    t[5, 2] = [0, 0, 255, 255]
    out = remove_strays(t)
    assert out[7, 7, 3] == 0 and out[5, 2].tolist() == [0, 0, 255, 255]
    with pytest.raises(InvalidArgumentError, match="max_difference"):
        remove_strays(t, max_difference=-1)


def test_remove_strays_min_size_and_connectivity():
    img = _img(8, 8, RED)
    img[2, 2, :3] = img[3, 3, :3] = (0, 0, 255)  # diagonal pair
    four = remove_strays(img, min_size=2, connectivity=4, max_difference=None)
    assert four[2, 2].tolist() == [*RED, 255]
    eight = remove_strays(img, min_size=2, connectivity=8, max_difference=None)
    assert eight[2, 2].tolist() == [0, 0, 255, 255]  # a 2-pixel island under 8-connectivity
    assert np.array_equal(remove_strays(img, min_size=1), img)
    assert remove_strays(img, min_size=3, connectivity=8, max_difference=None)[2, 2].tolist() == [*RED, 255]
    with pytest.raises(InvalidArgumentError, match="min_size"):
        remove_strays(img, min_size=0)


def test_remove_strays_majority_vote():
    img = _img(3, 3, RED)
    img[0, 1, :3] = img[1, 0, :3] = img[1, 2, :3] = (0, 0, 0)
    img[1, 1, :3] = (255, 255, 255)  # neighbours: 3 black, 1 red
    out = remove_strays(img, min_size=2, connectivity=4, max_difference=None)
    assert out[1, 1, :3].tolist() == [0, 0, 0]


def test_add_outline_outside_inside_and_colours():
    img = _img(7, 7, a=0)
    img[2:5, 2:5] = [*RED, 255]
    img[3, 3, :3] = (90, 20, 20)
    out = add_outline(img)  # auto: darkest colour of the sprite
    assert out[1, 3].tolist() == [90, 20, 20, 255]
    assert out[1, 1, 3] == 0  # 4-connectivity: corners not outlined
    assert (out[..., 3] > 0).sum() == 9 + 12
    out8 = add_outline(img, connectivity=8, color="#102030")
    assert out8[1, 1].tolist() == [16, 32, 48, 255]
    assert (out8[..., 3] > 0).sum() == 25
    ins = add_outline(img, inside=True, color=(0, 0, 0))
    assert (ins[..., 3] > 0).sum() == 9
    assert ins[2, 2, :3].tolist() == [0, 0, 0] and ins[3, 3, :3].tolist() == [90, 20, 20]
    dk = add_outline(img, color="darken")
    assert dk[1, 3, 3] == 255 and dk[1, 3, :3].sum() < sum(RED)
    with pytest.raises(InvalidArgumentError):
        add_outline(img, color="bright")


def test_trim_with_padding_and_empty():
    img = _img(10, 12, a=0)
    img[3:5, 4:9] = [*RED, 255]
    r = trim(img)
    assert isinstance(r, TrimResult) and r.box == (4, 3, 9, 5) and r.image.shape == (2, 5, 4)
    r = trim(img, padding=4)
    assert r.box == (0, -1, 13, 9) and r.image.shape == (10, 13, 4)
    assert (r.image[0] == 0).all() and r.image[4, 4].tolist() == [*RED, 255]
    e = trim(_img(3, 3, a=0))
    assert e.empty and e.image.shape == (3, 3, 4)
    with pytest.raises(InvalidArgumentError, match="padding"):
        trim(img, padding=-1)


def test_trim_batch_union_keeps_frames_aligned():
    a = _img(8, 8, a=0)
    b = _img(8, 8, a=0)
    a[1, 1] = [*RED, 255]
    b[5, 6] = [*RED, 255]
    res = trim_batch([a, b], union=True)
    assert [r.box for r in res] == [(1, 1, 7, 6)] * 2
    assert res[0].image.shape == res[1].image.shape == (5, 6, 4)
    assert res[1].image[4, 5, 3] == 255
    sep = trim_batch([a, b], union=False)
    assert [r.box for r in sep] == [(1, 1, 2, 2), (6, 5, 7, 6)]
    with pytest.raises(InputImageError, match="one size"):
        trim_batch([a, _img(4, 4)], union=True)
    with pytest.raises(InputImageError, match="empty"):
        trim_batch([])


def test_crop_box_outside_is_transparent():
    img = _img(2, 2, RED)
    out = crop_box(img, (-1, -1, 3, 3))
    assert out.shape == (4, 4, 4) and out[0, 0, 3] == 0 and out[1, 1, 3] == 255


def test_one_pixel_images():
    one = _img(1, 1, RED)
    assert remove_background(one)[0, 0, 3] == 0  # the whole image is "border background"
    assert np.array_equal(remove_strays(one), one)
    assert np.array_equal(add_outline(one), one)  # no room outside
    assert trim(one).box == (0, 0, 1, 1)


# ----------------------------------------------------------------------------- properties

small_rgba = arrays(
    np.uint8,
    st.tuples(st.integers(1, 10), st.integers(1, 10), st.just(4)),
    elements=st.sampled_from([0, 40, 200, 255]),
)


def _colours(img):
    return {tuple(p) for p in img.reshape(-1, 4).tolist() if p[3] == 255}


@settings(max_examples=60, deadline=None)
@given(img=small_rgba, tol=st.floats(0, 0.3), conn=st.sampled_from([4, 8]))
def test_property_remove_background_only_clears(img, tol, conn):
    img = img.copy()
    img[..., 3] = np.where(img[..., 3] >= 128, 255, 0)
    out = remove_background(img, tolerance=tol, connectivity=conn)
    changed = (out != img).any(axis=2)
    assert (out[changed] == 0).all()  # changed pixels became fully transparent, nothing else
    assert ((out[..., 3] == 255) <= (img[..., 3] == 255)).all()


@settings(max_examples=60, deadline=None)
@given(img=small_rgba, min_size=st.integers(1, 4), conn=st.sampled_from([4, 8]),
       diff=st.sampled_from([None, 0.0, 0.05, 0.3]))
def test_property_remove_strays_uses_existing_colours(img, min_size, conn, diff):
    img = img.copy()
    img[..., 3] = np.where(img[..., 3] >= 128, 255, 0)
    out = remove_strays(img, min_size=min_size, connectivity=conn, max_difference=diff)
    assert out.shape == img.shape
    assert _colours(out) <= _colours(img)
    # transparent pixels are never filled
    assert (out[img[..., 3] == 0, 3] == 0).all()


@settings(max_examples=60, deadline=None)
@given(img=small_rgba, conn=st.sampled_from([4, 8]), inside=st.booleans())
def test_property_outline_touches_only_the_ring(img, conn, inside):
    img = img.copy()
    img[..., 3] = np.where(img[..., 3] >= 128, 255, 0)
    out = add_outline(img, color="#123456", connectivity=conn, inside=inside)
    changed = (out != img).any(axis=2)
    assert (out[changed][:, :3] == [0x12, 0x34, 0x56]).all()
    if inside:
        assert ((out[..., 3] == 255) == (img[..., 3] == 255)).all()
    else:
        assert (img[changed, 3] == 0).all()


@settings(max_examples=60, deadline=None)
@given(img=small_rgba, pad=st.integers(0, 3))
def test_property_trim_keeps_all_content(img, pad):
    r = trim(img, padding=pad)
    if r.empty:
        assert (img[..., 3] == 0).all()
        return
    assert int(r.image[..., 3].astype(bool).sum()) == int(img[..., 3].astype(bool).sum())
    l, t, rr, b = r.box
    assert r.image.shape[:2] == (b - t, rr - l)
    assert np.array_equal(crop_box(img, r.box), r.image)


def test_auto_outline_of_a_one_colour_silhouette_is_a_visible_darker_shade():
    from comfy_nodes.pixel.color import srgb_to_oklab

    img = _img(8, 8, a=0)
    img[2:6, 2:6] = [*RED, 255]
    out = add_outline(img)
    ring = out[1, 2, :3]
    assert out[1, 2, 3] == 255 and tuple(ring) != RED
    assert srgb_to_oklab(np.array([RED], np.uint8))[0, 0] - srgb_to_oklab(ring[None])[0, 0] >= 0.1
    # a sprite with a darker part of its own is outlined in that colour, as before
    img[3, 3, :3] = (10, 10, 10)
    assert tuple(add_outline(img)[1, 2, :3]) == (10, 10, 10)


def test_a_floating_speck_of_two_colours_is_cleared_like_one_of_one_colour():
    img = _img(9, 9, a=0)
    img[1, 1] = [*RED, 255]
    img[1, 2] = [0, 0, 255, 255]  # two colours far apart, floating together
    img[5:8, 5:8] = [*RED, 255]
    img[6, 6] = [250, 250, 250, 255]  # an eye: one pixel, high contrast, inside the sprite
    out = remove_strays(img, min_size=3)
    assert out[1, 1, 3] == 0 and out[1, 2, 3] == 0
    assert np.array_equal(out[5:8, 5:8], img[5:8, 5:8])
    # a blob of min_size pixels or more stays
    assert remove_strays(img, min_size=2)[1, 1, 3] == 255


# ----------------------------------------------------------------------------- the stray vote


def _strays_reference(img, min_size, connectivity, max_difference, alpha_threshold=128):
    """``remove_strays`` as its docstring reads, island by island, for comparison."""
    from collections import Counter

    from comfy_nodes.pixel.color import srgb_to_oklab

    h, w = img.shape[:2]
    key = (img[..., 0].astype(int) << 16) | (img[..., 1].astype(int) << 8) | img[..., 2]
    key[img[..., 3] < alpha_threshold] = -1
    lab, n = _flood_reference(key, connectivity)
    offs = [(-1, 0), (1, 0), (0, -1), (0, 1)] + ([(-1, -1), (-1, 1), (1, -1), (1, 1)] if connectivity == 8 else [])
    out = img.copy()
    if min_size == 1:
        return out
    decided, any_vote = {}, False
    for i in range(n):
        ys, xs = np.nonzero(lab == i)
        own = int(key[ys[0], xs[0]])
        if own < 0 or ys.size >= min_size:
            continue
        votes = [int(key[y + dy, x + dx]) for y, x in zip(ys, xs) for dy, dx in offs
                 if 0 <= y + dy < h and 0 <= x + dx < w and lab[y + dy, x + dx] != i]
        any_vote |= bool(votes)
        has_opaque = any(v >= 0 for v in votes)
        if max_difference is not None:
            votes = [v for v in votes if v >= 0]
        if not votes:
            decided[i] = None if max_difference is None or has_opaque else -1
            continue
        counts = Counter(votes)
        top = max(counts.values())
        win = min(v for v, c in counts.items() if c == top)
        if max_difference is not None:
            rgb = np.array([[(k >> 16) & 255, (k >> 8) & 255, k & 255] for k in (own, win)], np.uint8)
            a, b = srgb_to_oklab(rgb)
            if np.sqrt(((a - b) ** 2).sum()) > max_difference + 1e-12:
                win = None
        decided[i] = win
    if not any_vote:
        return out  # the whole image is one small island: nothing around it to judge it by
    for i, win in decided.items():
        m = lab == i
        if win == -1:
            out[m] = 0
        elif win is not None:
            out[m] = [(win >> 16) & 255, (win >> 8) & 255, win & 255, 255]
    if max_difference is not None:
        opaque = out[..., 3] >= alpha_threshold
        blobs, nb = _flood_reference(opaque, connectivity)
        for i in range(nb):
            m = blobs == i
            if opaque[m].all() and m.sum() < min_size:
                out[m] = 0
    return out


# Two pairs of near shades (within 0.05 OKLab of each other), one far colour, transparency.
_VOTE_COLOURS = np.array([[200, 40, 40, 255], [203, 41, 40, 255], [40, 200, 40, 255], [41, 202, 40, 255],
                          [250, 250, 250, 255], [0, 0, 0, 0]], np.uint8)


@settings(max_examples=150, deadline=None)
@given(
    idx=arrays(np.int8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 5)),
    min_size=st.integers(1, 6),
    conn=st.sampled_from([4, 8]),
    diff=st.sampled_from([None, 0.0, 0.05, 0.3]),
)
def test_property_remove_strays_matches_the_plain_vote(idx, min_size, conn, diff):
    img = _VOTE_COLOURS[idx]
    out = remove_strays(img, min_size=min_size, connectivity=conn, max_difference=diff)
    assert np.array_equal(out, _strays_reference(img, min_size, conn, diff))


def _modes_reference(rows, no_vote):
    from collections import Counter

    out = []
    for r in rows.tolist():
        c = Counter(v for v in r if v != no_vote)
        out.append(min(v for v, k in c.items() if k == max(c.values())) if c else no_vote)
    return np.array(out, np.int32)


@pytest.mark.parametrize("width", [4, 8, 3, 16, 24])
def test_vote_counting_picks_the_most_frequent_then_the_lowest(width):
    from comfy_nodes.pixel.cleanup import _NO_VOTE, _column_modes, _row_modes

    rng = np.random.default_rng(width)
    # Few values, so ties are common; -1 (transparent) and the no-vote mark among them.
    rows = rng.choice(np.array([-1, 0, 5, 7, _NO_VOTE], np.int32), size=(3000, width))
    rows[0] = _NO_VOTE
    want = _modes_reference(rows, _NO_VOTE)
    assert np.array_equal(_row_modes(rows), want)
    assert np.array_equal(_column_modes(np.ascontiguousarray(rows.T)), want)
    if width in (4, 8):
        # Every 0/1 column: a network that sorts these sorts everything (the 0-1 principle), and a
        # column left unsorted splits a run of equal values, which changes the counts.
        bits = ((np.arange(2**width)[:, None] >> np.arange(width)) & 1).astype(np.int32)
        assert np.array_equal(_column_modes(np.ascontiguousarray(bits.T)), _modes_reference(bits, _NO_VOTE))


def test_remove_strays_calls_check_between_stages_and_lets_its_error_through():
    rng = np.random.default_rng(0)
    img = _img(16, 16)
    img[..., :3] += rng.integers(0, 3, (16, 16, 3), dtype=np.uint8)
    calls = []
    out = remove_strays(img, check=lambda: calls.append(1))
    assert len(calls) >= 4 and np.array_equal(out, remove_strays(img))

    class Cancelled(Exception):
        pass

    def cancel_on_second_call():
        calls.append(1)
        if len(calls) == 2:
            raise Cancelled

    calls.clear()
    with pytest.raises(Cancelled):
        remove_strays(img, check=cancel_on_second_call)
    assert len(calls) == 2
