"""Grid detection and snapping on synthetic pseudo pixel art with known truth."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from comfy_nodes.pixel import cells as C
from comfy_nodes.pixel import grid as G
from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError, NoGridFoundError

PALETTE = np.array(
    [[20, 20, 30], [230, 60, 50], [250, 210, 80], [60, 170, 90], [70, 110, 220], [240, 240, 240], [140, 80, 160]],
    dtype=np.uint8,
)


def make_sprite(w: int, h: int, seed: int) -> np.ndarray:
    """A blobby random sprite: runs of colour so some neighbours are equal, some differ."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(PALETTE), size=(h, w))
    # repeat some cells to create flat runs (as in real sprites)
    for _ in range(w * h // 3):
        y, x = rng.integers(0, h), rng.integers(1, w)
        idx[y, x] = idx[y, x - 1]
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = PALETTE[idx]
    out[..., 3] = 255
    return out


def jittered_lines(n: int, cell: float, jitter: int, pad: int, rng) -> np.ndarray:
    base = pad + cell * np.arange(n + 1)
    j = rng.integers(-jitter, jitter + 1, size=n + 1) if jitter else np.zeros(n + 1)
    return np.round(base + j).astype(int)


def render(sprite: np.ndarray, cell_x: float, cell_y: float, *, jitter: int = 0, blur: float = 0.0,
           noise: float = 0.0, seed: int = 0, pad: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upscale a sprite by non-integer cells with jittered lines, box-ish blur and noise."""
    rng = np.random.default_rng(seed)
    h, w = sprite.shape[:2]
    gx = jittered_lines(w, cell_x, jitter, pad[0], rng)
    gy = jittered_lines(h, cell_y, jitter, pad[1], rng)
    W = int(round(pad[0] * 2 + w * cell_x))
    H = int(round(pad[1] * 2 + h * cell_y))
    xi = np.clip(np.searchsorted(gx, np.arange(W), side="right") - 1, 0, w - 1)
    yi = np.clip(np.searchsorted(gy, np.arange(H), side="right") - 1, 0, h - 1)
    img = sprite[yi[:, None], xi[None, :]].astype(np.float64)
    if blur > 0:
        r = max(1, int(2 * blur))
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / blur) ** 2)
        k /= k.sum()
        for c in range(3):
            img[..., c] = np.apply_along_axis(lambda v: np.convolve(np.pad(v, r, mode="edge"), k, "valid"), 1, img[..., c])
            img[..., c] = np.apply_along_axis(lambda v: np.convolve(np.pad(v, r, mode="edge"), k, "valid"), 0, img[..., c])
    if noise > 0:
        img[..., :3] += rng.normal(0, noise, size=img[..., :3].shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), gx, gy


def accuracy(out: np.ndarray, gt: np.ndarray, tol: int = 24) -> float:
    d = np.abs(out[..., :3].astype(int) - gt[..., :3].astype(int)).max(axis=2)
    return float((d <= tol).mean())


@pytest.mark.parametrize("cell", [4, 7, 10, 16])
def test_integer_upscale_round_trips_exactly(cell):
    sprite = make_sprite(20, 14, seed=cell)
    big = np.repeat(np.repeat(sprite, cell, axis=0), cell, axis=1)
    res = G.snap(big)
    assert res.image.shape == sprite.shape
    assert np.array_equal(res.image, sprite)
    assert res.grid.cols == 20 and res.grid.rows == 14
    assert res.grid.cell_w == pytest.approx(cell, abs=0.05)


@pytest.mark.parametrize(
    "seed,cx,cy,jitter,blur,noise",
    [(1, 12.4, 11.7, 1, 0.6, 3.0), (2, 14.6, 15.3, 2, 0.9, 4.0), (3, 9.3, 9.8, 1, 0.7, 3.0), (4, 17.2, 16.1, 2, 1.0, 5.0)],
)
def test_degraded_sprite_exact_size_and_colours(seed, cx, cy, jitter, blur, noise):
    sprite = make_sprite(28, 24, seed)
    img, _, _ = render(sprite, cx, cy, jitter=jitter, blur=blur, noise=noise, seed=seed)
    res = G.snap(img)
    assert (res.width, res.height) == (28, 24)
    assert accuracy(res.image, sprite) >= 0.97
    assert res.grid.cell_w == pytest.approx(cx, rel=0.03)
    assert res.grid.cell_h == pytest.approx(cy, rel=0.03)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    # 4:4:4: with chroma at half resolution, cells of 3 px keep too little of their colour
    Image.fromarray(img[..., :3]).save(buf, "JPEG", quality=quality, subsampling=0)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_three_pixel_cells_are_read_pixel_to_pixel(seed):
    """A sprite enlarged 3x and saved as JPEG: the span-3 edges of 3 px cells fill each cell
    and have no phase (the lattice used to be rejected, or read at 2-4 cells); the pixel to
    pixel edges find it."""
    sprite = make_sprite(40, 32, seed)
    img = _jpeg(np.repeat(np.repeat(sprite, 3, axis=0), 3, axis=1), 90)
    ex, _ = G._edge_maps(G._validate(img, "test"), 1)
    fx, _ = G._fine_edge_maps(G._validate(img, "test"), 1)
    # the span-3 evidence of each line covers its whole cell; the pixel-to-pixel one peaks on it
    assert np.ptp(ex.sum(axis=0)[3:117].reshape(-1, 3).sum(axis=0)) < 0.2 * ex.sum()
    assert fx.sum(axis=0)[3:120:3].sum() > 0.8 * fx.sum()
    res = G.snap(img)
    assert (res.width, res.height) == (40, 32)
    assert accuracy(res.image, sprite) >= 0.97
    assert res.grid.cell_w == pytest.approx(3.0, abs=0.05) and res.grid.cell_h == pytest.approx(3.0, abs=0.05)
    fixed = G.snap(img, cell=3.0)
    assert (fixed.width, fixed.height) == (40, 32) and accuracy(fixed.image, sprite) >= 0.97


@pytest.mark.parametrize("seed", [0, 3])
def test_three_pixel_cells_are_not_read_as_pairs(seed, monkeypatch):
    """Art drawn half in pixel pairs, enlarged 3x: the span-3 edges, blind to 3 px, see a
    lattice of 6 px that holds the colours too. The pixel-to-pixel edges say 3 px, and that
    lattice redraws the single-pixel half far better, so it is taken."""
    sprite = np.repeat(np.repeat(make_sprite(20, 16, seed), 2, axis=0), 2, axis=1)
    sprite[4:20, 4:36] = make_sprite(32, 16, seed + 100)
    img = _jpeg(np.repeat(np.repeat(sprite, 3, axis=0), 3, axis=1), 90)
    res = G.snap(img)
    assert (res.width, res.height) == (40, 32)
    assert accuracy(res.image, sprite) >= 0.97
    monkeypatch.setattr(G, "FINE_CELL", 0.0)  # without the second reading: pairs,
    with pytest.raises(NoGridFoundError, match="differ from their cell's colour"):
        G.detect_grid(img)  # which the single pixels inside them give away
    monkeypatch.setattr(G, "DETAIL_MAX", 1.0)
    assert G.detect_grid(img).cell_w == pytest.approx(6.0, abs=0.1)


def _jpeg_enlarged(seed: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """A sample sprite in a wide background, degraded to pseudo pixel art saved as JPEG (q75),
    then enlarged ``factor`` times (bicubic); and the true 48x48 sprite."""
    from PIL import Image

    from orchestrator import samples

    sprite = list(samples.sprites().values())[seed % len(samples.sprites())]
    canvas = np.zeros((48, 48, 4), np.uint8)
    canvas[16 : 16 + sprite.shape[0], 16 : 16 + sprite.shape[1]] = sprite
    bg = (150, 160, 170)
    d = samples.degrade(canvas, cell=12.3 + 0.1 * seed, jitter=1.0, seed=seed, blur=1.0, noise=5.0,
                        jpeg_quality=75, pad=0, background=bg)
    small = Image.fromarray(d.image[..., :3])
    img = np.asarray(small.resize((round(small.width * factor), round(small.height * factor)), Image.BICUBIC))
    truth = canvas.copy()
    truth[truth[..., 3] == 0] = bg + (255,)
    return img, truth


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_jpeg_enlarged_twice_is_not_read_on_its_blocks(seed, monkeypatch):
    """Pseudo pixel art saved as JPEG and then enlarged 2x: over a wide noisy background the
    codec's block edges, now 16 px apart on lines at multiples of 16, outweigh the art's, and
    the grid locked onto them (75-80 cells a side instead of 48). Such a lattice is read again
    with the edges at those residues replaced by their neighbours'."""
    img, truth = _jpeg_enlarged(seed, 2.0)
    res = G.snap(img)
    assert (res.width, res.height) == (48, 48)
    assert accuracy(res.image, truth) >= 0.95
    monkeypatch.setattr(G, "JPEG_LOCK", 0.0)  # without the second reading: the codec's lattice
    locked = G.detect_grid(img)
    assert min(abs(locked.cell_w - 16.0), abs(locked.cell_h - 16.0)) < 0.05 and locked.cols > 70


@pytest.mark.parametrize("factor,seed", [(2.5, 1), (2.5, 6), (3.0, 2), (3.0, 5)])
def test_jpeg_enlarged_by_any_factor_is_not_read_on_its_blocks(factor, seed, monkeypatch):
    """The same at 2.5x and 3x: the codec's block edges are 20 or 24 px apart, on lines at
    multiples of that from the image's origin, and the grid locked onto them (74-79 cells a
    side instead of 48) or found none."""
    img, truth = _jpeg_enlarged(seed, factor)
    res = G.snap(img)
    assert (res.width, res.height) == (48, 48)
    assert accuracy(res.image, truth) >= 0.95
    # without the second reading, nor the profiles cleared of the blocks
    monkeypatch.setattr(G, "_deblocked", lambda maps, block: None)
    monkeypatch.setattr(G, "_enlarged_blocks", lambda p: G.JPEG_BLOCK)
    block = 8 * factor
    try:
        locked = G.detect_grid(img)
    except NoGridFoundError as err:  # the codec's lattice, refused as holding no colours
        assert f"({block:.1f}x{block:.1f} px cells)" in err.message
    else:  # the codec's lattice
        assert abs(locked.cell_w - block) < 0.05 and abs(locked.cell_h - block) < 0.05 and locked.cols > 70


@pytest.mark.parametrize("seed", [1, 4, 7, 8])
def test_lines_between_the_art_do_not_follow_an_enlarged_jpegs_blocks(seed, monkeypatch):
    """Enlarged 3x, the codec's block edges lie 24 px apart. Where the art has no edges to
    follow, the line search took them instead of the art's lines (42-50 cells for 48, or the
    lattice of the blocks themselves); the profiles are cleared of them as of 8 px blocks."""
    img, truth = _jpeg_enlarged(seed, 3.0)
    res = G.snap(img)
    assert (res.width, res.height) == (48, 48)
    assert accuracy(res.image, truth) >= 0.95
    monkeypatch.setattr(G, "_enlarged_blocks", lambda p: G.JPEG_BLOCK)  # 8 px blocks only
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) != (48, 48)


def test_art_lines_near_a_block_spacing_are_not_taken_for_blocks():
    """A lattice of whole 24 px cells at the image's origin over a 1x image stands on the
    multiples of 24 only where the art draws it, not on every one, as a codec's blocks would:
    its profiles are left as they are."""
    rng = np.random.default_rng(0)
    p = rng.random(1000) * 0.2
    p[np.arange(24, 1000, 24)[::3]] += 5.0  # a third of the multiples: art edges, not blocks
    assert G._enlarged_blocks(p) == G.JPEG_BLOCK
    p[np.arange(24, 1000, 24)] += 5.0  # all of them
    assert G._enlarged_blocks(p) == 24


def _blocky_sprite(seed: int) -> np.ndarray:
    """A few flat rectangles on transparency (sharp edges, long flat stretches), 2x enlarged."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(8, 40)), int(rng.integers(8, 60))
    s = np.zeros((h, w, 4), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        s[y0 : y0 + rng.integers(1, 10), x0 : x0 + rng.integers(1, 30)] = (*rng.integers(0, 255, 3), 255)
    return np.repeat(np.repeat(s, 2, axis=0), 2, axis=1)


@pytest.mark.parametrize("seed", [108, 162, 171])
def test_period_estimate_stays_inside_its_band(seed):
    """When a coarser candidate's bin is no peak of the spectrum, the parabola through it
    may open upwards: its "vertex" put periods beyond the image (1143 px on a 96 px axis
    that went on to be snapped as 3 rows). The refinement stays within half a bin."""
    a = G._detection_view(G._validate(_blocky_sprite(seed), "test"))
    ex, ey = G._edge_maps(a, G._stride(*a.shape[:2]))
    for e, axis, n in ((ex, 0, a.shape[1]), (ey, 1, a.shape[0])):
        for ridges in (False, True):
            period, _ = G.estimate_period(G._axis_profile(e, axis, ridges=ridges))
            assert period <= 0.55 * n, (axis, ridges, period, n)


def _dp_lines_by_hand(e, lo, hi, period, wide=1.55, weight=4.0, local_period=None):
    """The line search of :func:`G._dp_lines` written out position by position and gap by gap:
    the specification its block-vectorised loop must match exactly."""
    import math

    n = hi - lo + 1
    ev = e[lo : hi + 1].astype(np.float64)
    lp = np.full(n, float(period)) if local_period is None else local_period[lo : hi + 1].astype(np.float64)
    gmin = max(1, int(math.floor(0.6 * float(lp.min()))))
    gmax = max(gmin + 1, int(math.ceil(wide * float(lp.max()))))
    start_win = int(math.ceil(float(lp.max())))
    neg = -1e18
    score, back = [neg] * n, [-1] * n
    for p in range(n):
        best, arg = -np.inf, -1
        for g in range(gmin, gmax + 1):
            allowed = math.floor(0.6 * lp[p]) <= g <= math.ceil(wide * lp[p])
            pen = weight * np.log(g / lp[p]) ** 2 if allowed else np.inf
            cand = (score[p - g] if p - g >= 0 else neg) - pen
            if cand > best:  # the first (shortest) gap wins a tie
                best, arg = cand, p - g
        if p <= start_win and best < 0.0:  # a path may start anywhere within one period
            best, arg = 0.0, -1
        if best > neg / 2:
            score[p], back[p] = best + ev[p], arg
    end0 = max(0, n - 1 - start_win)
    k = int(np.argmax(score[end0:])) + end0
    best_score, out = float(score[k]), []
    while k >= 0:
        out.append(k + lo)
        k = back[k]
    return np.array(out[::-1], dtype=np.float64), best_score


@pytest.mark.parametrize("seed", range(3))
def test_line_search_matches_its_specification(seed):
    """The line search runs one numpy step per block of positions (its cost on every snap);
    written out plainly it must give the same lines and score, over flat stretches, stretches
    no path reaches, drifting local periods and every gap width."""
    rng = np.random.default_rng(seed)
    for _ in range(10):
        n = int(rng.integers(30, 160))
        e = rng.random(n) ** float(rng.choice([1.0, 3.0, 8.0]))
        e[rng.random(n) < float(rng.choice([0.0, 0.5, 0.9]))] = 0.0
        period = float(rng.uniform(2.5, 30.0))
        lo = int(rng.integers(0, n // 3))
        hi = int(rng.integers(lo + 1, n))
        lp = None
        if rng.random() < 0.5:
            lp = period * (1.0 + 0.12 * np.sin(np.arange(n) / rng.uniform(5.0, 80.0)))
        kw = {"wide": float(rng.choice([1.3, 1.55, 2.1])), "weight": float(rng.choice([1.0, 4.0, 10.0]))}
        lines, score = G._dp_lines(e, lo, hi, period, local_period=lp, with_score=True, **kw)
        want_lines, want_score = _dp_lines_by_hand(e, lo, hi, period, local_period=lp, **kw)
        assert np.array_equal(lines, want_lines), (n, lo, hi, period)
        assert score == want_score, (n, lo, hi, period)


@pytest.mark.parametrize("period", [3.67, 4.3, 5.6])
def test_a_flat_stretch_of_small_cells_gets_its_own_number_of_cells(period):
    """Lines on edges at both ends of a flat stretch of 60 cells: on whole pixels every gap is
    whole and the gap prior is cheapest at the whole gap nearest the period (cells of 3.67 px
    laid 4 px apart: 55 cells for 60). Searched on sub-pixel positions, the stretch holds 60."""
    n = int(80 * period) + 20
    ev = np.zeros(n)
    lattice = 5.0 + period * np.arange(80)
    for k in list(range(10)) + list(range(70, 80)):  # edges on the first and last ten cells only
        ev[int(round(lattice[k]))] = 1.0
    lo, hi = int(round(lattice[0])), int(round(lattice[79]))
    lines, _, _ = G._follow_lines(ev, lo, hi, period)
    a, b = int(round(lattice[9])), int(round(lattice[70]))
    inside = lines[(lines > a + 0.5) & (lines < b - 0.5)]
    assert len(inside) == 60, (len(inside), period)


def _flat_scene(seed: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Six of the sample sprites on one flat colour, a canvas of 60-109 cells a side, drawn on
    cells of 3.6-4.8 px: an item sheet on small pseudo pixels."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    sprites = list(samples.sprites().values())
    w, h = int(rng.integers(60, 110)), int(rng.integers(60, 110))
    bg = tuple(int(v) for v in rng.integers(40, 230, 3))
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = bg
    canvas[..., 3] = 255
    for _ in range(6):
        s = sprites[int(rng.integers(len(sprites)))]
        y, x = int(rng.integers(0, h - s.shape[0])), int(rng.integers(0, w - s.shape[1]))
        region = canvas[y : y + s.shape[0], x : x + s.shape[1]]
        region[...] = np.where(s[..., 3:4] > 0, s, region)
    cell = float(rng.uniform(3.6, 4.8))
    d = samples.degrade(canvas, cell=cell, jitter=0.5, seed=seed, background=bg, blur=0.7, noise=3.0,
                        jpeg_quality=92, pad=0)
    return d.image, (h, w)


@pytest.mark.parametrize("seed", [0, 6, 12, 13])
def test_an_item_sheet_on_small_cells_comes_back_at_its_size(seed):
    """Sprites scattered on a flat backdrop leave long flat stretches between them, which only
    the cell size counts; on 3.6-4.8 px cells the whole-pixel line search counted them with
    whole-pixel gaps (88 x 97 for 91 x 102, 80 x 80 for 86 x 82)."""
    img, size = _flat_scene(seed)
    assert G.snap(img).image.shape[:2] == size


@pytest.mark.parametrize("n", [1, 2, 7, 64, 300, 1023, 1024, 2900])
def test_spectrum_power_is_the_dtft_at_each_frequency(n):
    """The blocked evaluation of the spectrum's power must equal |sum q[x] e^(2 pi i f x)|^2
    written out sample by sample, at any length (a partial last block included)."""
    rng = np.random.default_rng(n)
    q = rng.normal(size=n)
    freqs = np.concatenate([rng.uniform(0.0, 0.5, 9), [0.0, 0.25, 1.0 / 7.3]])
    x = np.arange(n)
    want = np.array([abs(np.sum(q * np.exp(2j * np.pi * f * x))) ** 2 for f in freqs])
    got = G._dtft_power(q, freqs)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, float(want.max())))


def test_line_with_no_position_in_reach_stays_put():
    """A line far outside the profile has no position to move to; it must stay where it is
    (it used to index the profile at -1308)."""
    profile = np.zeros(97)
    profile[[10, 20, 30]] = 1.0
    lines = np.array([-2222.0, -1079.0, 20.0, 62.0])
    out = G._on_edge_crests(lines, profile, 11.0)
    assert np.array_equal(out, lines)


@pytest.mark.parametrize("cell", [2, 3, 5])
def test_integer_upscale_with_wide_margins_round_trips_exactly(cell):
    """A sprite on transparent margins of several pixels, enlarged by nearest neighbour: the
    flat border runs are longer than a cell. They used to rule out the exact reading, and
    at 2x (cells under the smallest the edges look for) the image came back unreduced."""
    sprite = np.zeros((30, 34, 4), np.uint8)
    sprite[5:25, 4:29] = make_sprite(25, 20, cell)
    big = np.repeat(np.repeat(sprite, cell, axis=0), cell, axis=1)
    res = G.snap(big)
    assert res.image.shape == sprite.shape
    assert np.array_equal(res.image[..., 3] > 0, sprite[..., 3] > 0)
    assert np.array_equal(res.image[5:25, 4:29], sprite[5:25, 4:29])
    assert res.grid.cell_w == cell and res.grid.confidence == 1.0


def test_few_runs_sharing_a_factor_by_chance_are_no_enlargement():
    """A true-resolution icon whose few colour changes happen to fall 2 px apart is not read
    as a 2x enlargement: when so few runs could share the factor by chance, the border runs
    must fit a cell. So is a flat picture of two bands (what factor they share means nothing)."""
    icon = np.zeros((9, 9, 4), np.uint8)
    icon[3:5, 3:7] = (200, 40, 40, 255)
    icon[5:7, 3:7] = (40, 40, 200, 255)
    assert G._exact_block_grid([icon]) is None
    assert G.snap(icon).image.shape == icon.shape
    bands = np.zeros((300, 300, 4), np.uint8)
    bands[100:140, 100:200] = (200, 40, 40, 255)
    bands[140:180, 100:200] = (40, 40, 200, 255)
    assert G._exact_block_grid([bands]) is None


def test_an_enlargement_with_few_runs_of_a_large_factor_is_read_exactly():
    """Three or more runs that are all multiples of 8 are no chance (one in 8**runs): a 16 px
    sprite of nested squares enlarged 8x on a wide margin comes back whole, blue centre
    included (it came back 8x8 at a 16 px cell, the centre gone)."""
    s = np.zeros((16, 16, 4), np.uint8)
    s[..., 3] = 255
    s[..., :3] = (255, 0, 255)
    s[4:12, 4:12, :3] = (200, 30, 30)
    s[6:10, 6:10, :3] = (30, 200, 30)
    s[7:9, 7:9, :3] = (30, 30, 200)
    res = G.snap(np.repeat(np.repeat(s, 8, axis=0), 8, axis=1))
    assert res.image.shape == s.shape and np.array_equal(res.image, s)
    assert res.grid.cell_w == 8 and res.grid.confidence == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_pseudo_pixel_art_enlarged_by_nearest_neighbour_is_snapped_to_its_sprite(seed):
    """Pseudo pixel art that a viewer or an editor enlarged 2x by nearest neighbour is an
    exact enlargement too, but of an image that is no sprite (thousands of colours): its own
    grid is read, and the sprite comes back, not the diffusion image at 1x."""
    sprite = make_sprite(28, 24, seed)
    img, _, _ = render(sprite, 11.3, 12.1, jitter=1, blur=0.7, noise=3.0, seed=seed)
    big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    res = G.snap(big)
    assert (res.width, res.height) == (28, 24)
    assert accuracy(res.image, sprite) >= 0.97
    assert res.grid.cell_w == pytest.approx(22.6, rel=0.03) and res.grid.source_size == (big.shape[1], big.shape[0])
    direct = G.detect_grid(img)
    assert np.allclose(res.grid.x_lines, 2 * direct.x_lines, atol=1.0)


@pytest.mark.parametrize("seed,resample", [(1, "BILINEAR"), (7, "BILINEAR"), (3, "BICUBIC")])
def test_pseudo_pixel_art_enlarged_3x_by_a_filter_is_snapped_to_its_sprite(seed, resample, monkeypatch):
    """The same enlarged 3x by a smooth filter (an upscale node's bilinear or bicubic): the
    lattice of the enlargement's 3 px pixels redraws it best, and the diffusion image came
    back at 1x (639-691 cells a side). Its pixels are looked inside, as a nearest-neighbour
    enlargement's blocks are, and the sprite's own grid is read there."""
    from PIL import Image

    from orchestrator import samples

    sprite = list(samples.sprites().values())[seed % len(samples.sprites())]
    canvas = np.zeros((48, 48, 4), np.uint8)
    canvas[10 : 10 + sprite.shape[0], 14 : 14 + sprite.shape[1]] = sprite
    bg = (125, 157, 147)
    d = samples.degrade(canvas, cell=13.2 + 0.1 * seed, jitter=1.0, seed=seed, blur=1.0, noise=4.8,
                        jpeg_quality=93, pad=0, background=bg, drift=0.06, bend=0.3)
    small = Image.fromarray(d.image[..., :3])
    big = np.asarray(small.resize((small.width * 3, small.height * 3), getattr(Image, resample)))
    truth = canvas.copy()
    truth[truth[..., 3] == 0] = bg + (255,)
    res = G.snap(big)
    assert (res.width, res.height) == (48, 48)
    assert accuracy(res.image, truth) >= 0.95
    assert res.grid.source_size == (big.shape[1], big.shape[0])
    monkeypatch.setattr(G, "_enlarged_pixels", lambda grid: False)  # without looking inside
    outer = G.detect_grid(big)
    assert outer.cell_w == pytest.approx(3.0, abs=0.02) and outer.cols > 600


def test_frames_enlarged_2x_with_margins_share_one_exact_grid():
    """Animation frames enlarged 2x by nearest neighbour (a sprite walking over transparent
    margins): the frames' blocks together give one exact grid, and every frame comes back
    pixel for pixel (cells of 2 px are under the smallest the edges look for, so the frames
    used to be "no pixel grid found")."""
    body = make_sprite(14, 12, 4)
    frames = []
    for i in range(3):
        f = np.zeros((20, 24, 4), np.uint8)
        f[4:16, 3 + i : 17 + i] = body
        frames.append(f)
    big = [np.repeat(np.repeat(f, 2, axis=0), 2, axis=1) for f in frames]
    res = G.snap_batch(big)
    for r, f in zip(res, frames):
        assert np.array_equal(r.image, f)
    assert res[0].grid.cell_w == 2.0 and res[0].grid.confidence == 1.0


def test_detected_lines_follow_jittered_truth():
    sprite = make_sprite(30, 30, 7)
    img, gx, gy = render(sprite, 13.3, 13.3, jitter=2, blur=0.7, noise=3.0, seed=7)
    grid = G.detect_grid(img)
    assert grid.cols == 30 and grid.rows == 30
    # most detected lines sit within 1 px of the true (jittered) line
    err = np.abs(grid.x_lines - gx[: len(grid.x_lines)])
    assert np.median(err) <= 1.0


def test_background_margins_counted():
    """Transparent margin cells around the sprite count toward the size (flat background)."""
    core = make_sprite(16, 12, 9)
    canvas = np.zeros((24, 26, 4), np.uint8)
    canvas[..., :3] = (90, 200, 210)
    canvas[..., 3] = 255
    canvas[5:17, 4:20] = core
    img, _, _ = render(canvas, 12.6, 12.2, jitter=1, blur=0.6, noise=2.0, seed=3, pad=(3, 2))
    res = G.snap(img)
    assert (res.width, res.height) == (26, 24)
    assert accuracy(res.image, canvas) >= 0.97
    # the margins' cells are counted from the cell size, and the grid says how many
    assert res.grid.flat_border == (4, 6, 5, 7)
    assert res.grid.to_dict()["flat_border"] == [4, 6, 5, 7]


def test_manual_cell_and_size_overrides():
    sprite = make_sprite(20, 16, 11)
    img, _, _ = render(sprite, 10.5, 10.5, jitter=1, blur=0.5, noise=2.0, seed=11)
    by_cell = G.snap(img, cell=10.5)
    assert (by_cell.width, by_cell.height) == (20, 16)
    by_size = G.snap(img, width=20, height=16)
    assert (by_size.width, by_size.height) == (20, 16)
    assert accuracy(by_size.image, sprite) >= 0.95
    sep = G.detect_grid(img, cell_w=10.5, cell_h=10.5)
    assert (sep.cols, sep.rows) == (20, 16)


def test_overrides_are_checked_and_honoured_alike_for_one_image_and_for_frames():
    sprite = make_sprite(12, 12, 7)
    img = np.repeat(np.repeat(sprite, 7, axis=0), 7, axis=1)
    for detect in (G.detect_grid, lambda a, **kw: G.detect_grid_batch([a, a], **kw)):
        # a cell given as twice the true one is taken as given, even with unset per-axis keys
        g = detect(img, cell=14.0, cell_w=None, cell_h=None, width=None, height=None)
        assert (g.cell_w, g.cell_h, g.cols, g.rows) == (14.0, 14.0, 6, 6)
        one = detect(img, cell=1.0)
        assert (one.cols, one.rows) == (84, 84)
        for kw, message in (({"cell": 0.5}, "cell_w 0.5 is under one source pixel"),
                            ({"cell_w": 7.0, "cell_h": 0.25}, "cell_h 0.25 is under one source pixel"),
                            ({"cell": 85.0}, "cell_w 85.0 is larger than the image (84 px)"),
                            ({"width": 85, "height": 12}, "width 85 is larger than the image width 84"),
                            ({"cell": float("nan")}, "cell_w must be > 0")):
            with pytest.raises(InvalidArgumentError) as ei:
                detect(img, **kw)
            assert message in str(ei.value)


def test_alpha_is_kept_and_binarised():
    sprite = make_sprite(12, 12, 5)
    sprite[:3, :, 3] = 0
    sprite[3:, :, 3] = 255
    big = np.repeat(np.repeat(sprite, 8, axis=0), 8, axis=1)
    big[..., 3] = np.where(big[..., 3] > 0, 200, 0)  # half-transparent in, binary out
    res = G.snap(big)
    assert set(np.unique(res.image[..., 3]).tolist()) == {0, 255}
    assert (res.image[:3, :, 3] == 0).all() and (res.image[3:, :, 3] == 255).all()


def painting(seed: int, size: int = 300, beta: float = 2.0) -> np.ndarray:
    """A smooth photo-like image (1/f^beta noise per channel): edges everywhere, no lattice."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    f[0, 0] = 1.0
    chans = []
    for _ in range(3):
        im = np.real(np.fft.ifft2(np.exp(2j * np.pi * rng.random((size, size))) / f ** beta))
        chans.append((im - im.min()) / (im.max() - im.min()) * 255)
    return np.stack(chans, -1).astype(np.uint8)


def clipart(seed: int, size: int = 512) -> np.ndarray:
    """Smoothly shaded ellipses with dark outlines on a plain background (clip-art, an icon)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    img = np.empty((size, size, 3))
    img[:] = rng.uniform(150, 250, 3)
    for _ in range(6):
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        rx, ry = rng.uniform(0.08, 0.3, 2) * size
        r = np.hypot((xx - cx) / rx, (yy - cy) / ry)
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = np.clip((xx - cx + rx) / (4 * rx) + (yy - cy + ry) / (4 * ry), 0, 1)[..., None]
        inside = r <= 1.0
        img[inside] = (c0 * (1 - t) + c1 * t)[inside]
        img[(r > 1.0) & (r <= 1.0 + 3.0 / min(rx, ry))] = 30.0
    return np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 2])
def test_clipart_is_no_grid_not_a_garbage_size(seed):
    """Shaded clip-art has sharp outlines, so a lattice laid on them explains its colours
    better than the same lattice shifted by half a cell; but inside that lattice's cells the
    shading varies far beyond the image's noise, which a pseudo pixel never does."""
    img = clipart(seed)
    with pytest.raises(NoGridFoundError, match="vary inside the cells"):
        G.detect_grid(img)


def test_pseudo_pixel_cells_are_flat_to_within_their_noise():
    """The inside of each found cell of rendered pseudo pixel art is its colour plus noise."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["knight"], cell=9.0, jitter=1.0, seed=3, noise=5.0)
    grid = G.detect_grid(d.image)
    noise_ratio, r2 = G._cell_flatness([d.image], grid)
    assert r2 >= 0.95 and noise_ratio <= G.FLAT_NOISE_MAX


@pytest.mark.parametrize("kind", ["flat", "noise", "gradient", "painting"])
def test_no_grid_raises(kind):
    rng = np.random.default_rng(0)
    if kind == "painting":
        img = painting(0)
    elif kind == "flat":
        img = np.full((300, 300, 3), 120, np.uint8)
    elif kind == "noise":
        img = rng.integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
    else:
        x = np.linspace(0, 255, 300)
        img = np.stack(np.broadcast_arrays(x[None, :], x[:, None], np.full((300, 300), 80.0)), -1).astype(np.uint8)
    with pytest.raises(NoGridFoundError) as ei:
        G.snap(img, source="art.png")
    assert str(ei.value).startswith("no pixel grid found in art.png: ")
    if kind == "flat":
        assert "it is one flat colour" in str(ei.value)


def test_no_grid_in_an_empty_image_or_empty_frames_says_so():
    clear = np.zeros((200, 200, 4), np.uint8)
    clear[..., :3] = 90  # what lies under alpha 0 is not drawn
    with pytest.raises(NoGridFoundError) as ei:
        G.snap(clear, source="cutout.png")
    assert ei.value.message == "no pixel grid found in cutout.png: it is fully transparent"
    assert "nothing is drawn" in ei.value.hint
    with pytest.raises(NoGridFoundError) as ei:
        G.detect_grid_batch([clear, clear])
    assert ei.value.message == "no pixel grid found in the frames: it is fully transparent"
    flat = np.full((120, 90, 3), 40, np.uint8)
    with pytest.raises(NoGridFoundError) as ei:
        G.detect_grid_batch([flat, flat])
    assert ei.value.message == "no pixel grid found in the frames: it is one flat colour"
    assert "--cell" in ei.value.hint


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_photo_like_image_is_no_grid_not_a_garbage_size(seed):
    """A smooth painting has a spectral "period" somewhere (confidence 0.6-0.7 here), but its
    colours ignore the lattice's phase: it is reported as no grid, for one image and a batch."""
    img = painting(seed)
    with pytest.raises(NoGridFoundError, match="do not change at the lines"):
        G.detect_grid(img)
    with pytest.raises(NoGridFoundError, match="the frames"):
        G.detect_grid_batch([img, painting(seed + 10)])


def _wavy_gradient(seed: int) -> np.ndarray:
    """400x300: red across, green down, blue a product of slow waves (100 px across, 150 down),
    with pixel noise: smooth, nothing drawn in cells."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:300, 0:400].astype(float)
    b = 128 + 60 * np.sin(2 * np.pi * x / 100 + 1.0) * np.sin(2 * np.pi * y / 150 + 0.5)
    a = np.stack([x / 400 * 255, y / 300 * 255, b], -1) + rng.normal(0, 6.0, (300, 400, 3))
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def test_a_lattice_of_cells_4_to_1_is_no_grid():
    """A smooth gradient under noise can offer a lattice of 49 x 12 px cells that its colours
    do not rule out; no pseudo pixel art draws cells more than 3 times as wide as tall, so in
    automatic mode that is "no pixel grid found" (a size the user gives is still taken)."""
    img = _wavy_gradient(0)
    with pytest.raises(NoGridFoundError, match=r"px cells \(\d\.\d:1\), which no pseudo pixel art draws"):
        G.detect_grid(img)
    g = G.detect_grid(img, cell_w=48.0, cell_h=12.0)
    assert (g.cols, g.rows) == (8, 25)


def test_phase_ratio_separates_pseudo_pixels_from_their_half_shifted_lattice():
    """Rendered pseudo pixel art: one colour per found cell reconstructs it far better than the
    lattice shifted by half a cell; the shifted lattice's own ratio is the inverse side (> 1)."""
    sprite = make_sprite(24, 24, 3)
    img, gx, gy = render(sprite, 11.3, 11.5, jitter=1, blur=1.0, noise=3.0, seed=3)
    a = G._validate(img, "test")
    grid = G.detect_grid(a)
    r = G._phase_ratio([a], grid)
    assert r < 0.5, r
    shifted = G.Grid(cell_w=grid.cell_w, cell_h=grid.cell_h, cols=grid.cols + 1, rows=grid.rows + 1,
                     x_lines=G._half_shifted(grid.x_lines), y_lines=G._half_shifted(grid.y_lines),
                     confidence=grid.confidence, source_size=grid.source_size)
    assert G._phase_ratio([a], shifted) > 1.5


def test_bad_inputs():
    with pytest.raises(InputImageError):
        G.snap(np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputImageError):
        G.snap(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(InputImageError):
        G.snap(np.zeros((5, 5, 7), np.uint8))
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(InvalidArgumentError):
        G.snap(img, cell=-2)
    with pytest.raises(InvalidArgumentError):
        G.snap(img, width=100, height=10)
    with pytest.raises(InvalidArgumentError):
        G.snap(img, cell=8, background="purple")


def test_grayscale_and_float_input():
    sprite = make_sprite(10, 10, 2)
    gray = np.repeat(np.repeat(sprite[..., 0], 9, axis=0), 9, axis=1)
    res = G.snap(gray)
    assert (res.width, res.height) == (10, 10)
    assert np.array_equal(res.image[..., 0], sprite[..., 0])
    f = np.repeat(np.repeat(sprite[..., :3], 9, axis=0), 9, axis=1).astype(np.float32) / 255.0
    assert G.snap(f).image.shape == (10, 10, 4)


def test_batch_shares_one_grid():
    sprite_a = make_sprite(16, 16, 21)
    sprite_b = make_sprite(16, 16, 22)
    frames = [render(s, 11.5, 11.5, jitter=0, blur=0.5, noise=2.0, seed=1)[0] for s in (sprite_a, sprite_b)]
    grid = G.detect_grid_batch(frames)
    results = G.snap_batch(frames, grid)
    assert all((r.width, r.height) == (16, 16) for r in results)
    assert results[0].grid is results[1].grid
    with pytest.raises(InputImageError) as ei:
        G.detect_grid_batch([frames[0], frames[1][:-5]])
    assert "frame 1" in str(ei.value)


def test_large_image_is_bounded():
    """A 4096 px image with a grid finishes and gives the right size (analysis is strided)."""
    sprite = make_sprite(64, 64, 4)
    big = np.repeat(np.repeat(sprite, 64, axis=0), 64, axis=1)
    res = G.snap(big)
    assert (res.width, res.height) == (64, 64)


def test_grid_to_dict_is_json():
    sprite = make_sprite(8, 8, 1)
    big = np.repeat(np.repeat(sprite, 6, axis=0), 6, axis=1)
    d = G.detect_grid(big).to_dict()
    assert json.loads(json.dumps(d))["cols"] == 8


SHARED_CASES = Path(__file__).resolve().parents[2] / "shared" / "bench" / "snap-dev" / "cases"


@pytest.mark.skipif(not SHARED_CASES.is_dir(), reason="../shared benchmark cases not present")
def test_shared_easy_cases_solved():
    """A quick subset of the shared benchmark (easy + medium): exact size on nearly all."""
    from comfy_nodes.pixel.imageio import load_image

    cases = sorted(p for p in SHARED_CASES.iterdir() if p.name.endswith("-easy"))[:10]
    assert cases
    exact = 0
    for c in cases:
        gt = load_image(c / "gt.png")
        res = G.snap(load_image(c / "input.png"))
        if res.image.shape[:2] == gt.shape[:2]:
            op = gt[..., 3] >= 128
            if accuracy(res.image[op][None], gt[op][None], tol=30) >= 0.95:
                exact += 1
    assert exact >= 0.9 * len(cases)


def test_tiny_true_resolution_sprite_is_returned_as_is():
    sprite = make_sprite(24, 20, 8)
    res = G.snap(sprite)
    assert np.array_equal(res.image, sprite)
    assert res.grid.cell_w == 1.0 and res.grid.confidence == 0.0
    assert np.array_equal(G.snap(sprite, cell=1).image, sprite)


def _on_canvas(sprite: np.ndarray, pad: int, background: tuple[int, int, int] | None) -> np.ndarray:
    """``sprite`` in the middle of a canvas ``pad`` px wider on each side, transparent or opaque."""
    h, w = sprite.shape[:2]
    canvas = np.zeros((h + 2 * pad, w + 2 * pad, 4), np.uint8)
    if background is not None:
        canvas[..., :3] = background
        canvas[..., 3] = 255
    solid = sprite[..., 3] > 0
    canvas[pad:pad + h, pad:pad + w][solid] = sprite[solid]
    return canvas


@pytest.mark.parametrize("background", [None, (40, 120, 60)])
@pytest.mark.parametrize("pad", [8, 16, 24])
@pytest.mark.parametrize("name", ["knight", "potion", "slime", "coin"])
def test_a_sprite_at_true_resolution_on_a_wider_canvas_is_not_reduced_to_a_few_cells(name, pad, background):
    """A 16x16 sprite on a 48x48 or 64x64 canvas offers lattices of 2x2 or 5x5 cells (its art in
    one or two of them); taken, they reduced the sprite to a handful of pixels. Automatic mode
    returns it as it is."""
    from orchestrator import samples

    image = _on_canvas(samples.sprites()[name], pad, background)
    res = G.snap(image)
    assert res.image.shape == image.shape
    assert np.array_equal(res.image, image)
    assert res.grid.cell_w == res.grid.cell_h == 1.0


def test_frames_at_true_resolution_snapped_together_come_back_as_they_are():
    """A walk cycle already at its true resolution, snapped as a batch (one shared grid), as a
    single frame of it is: not on a lattice of a few large cells, and not refused."""
    from orchestrator import samples

    frames = [_on_canvas(f, 16, (40, 120, 60)) for f in samples.knight_walk()]
    grid = G.detect_grid_batch(frames)
    assert (grid.cols, grid.rows) == (48, 48) and grid.cell_w == 1.0
    for res, frame in zip(G.snap_batch(frames), frames):
        assert np.array_equal(res.image, frame)


@pytest.mark.parametrize("step,size", [(7, 48), (8, 48), (7, 40), (8, 40)])
def test_a_tiny_sprite_with_a_regular_pattern_is_kept_as_it_is(step, size):
    """A true sprite at most TINY_SPRITE px a side whose own art repeats (a sheet of coins every
    7 or 8 px) offered a lattice of 3.5-4 px cells and came back 11-13 px a side. No diffusion
    model draws pseudo pixel art so small: it is kept as it is, alone or as frames."""
    coin = ["..##..", ".#ab#.", "#abbb#", "#bbbb#", ".#bb#.", "..##.."]
    pal = {".": (0, 0, 0, 0), "#": (20, 20, 30, 255), "a": (250, 240, 160, 255), "b": (230, 180, 40, 255)}
    c = np.array([[pal[ch] for ch in row] for row in coin], np.uint8)
    sheet = np.zeros((size, size, 4), np.uint8)
    for y in range(1, size - 6, step):
        for x in range(1, size - 6, step):
            sheet[y : y + 6, x : x + 6] = c
    res = G.snap(sheet)
    assert res.grid.kept_as_is and np.array_equal(res.image, sheet)
    moved = np.roll(sheet, 1, axis=1)
    assert all(np.array_equal(r.image, f) for r, f in zip(G.snap_batch([sheet, moved]), [sheet, moved]))


def test_a_lattice_with_its_art_in_a_few_cells_is_no_grid():
    """A picture with no true-resolution fallback (too many colours, over TINY_SPRITE px) whose
    best lattice holds its art in under MIN_GRID_CELLS cells across is refused, naming the
    count, rather than snapped to a few pixels."""
    from orchestrator import samples

    rng = np.random.default_rng(3)
    image = _on_canvas(samples.sprites()["knight"], 28, (40, 120, 60))
    assert min(image.shape[:2]) > G.TINY_SPRITE
    noisy = image.copy()
    noisy[..., :3] = np.clip(image[..., :3].astype(int) + rng.integers(-3, 4, image[..., :3].shape), 0, 255)
    assert G._colour_count([noisy]) > G.TRUE_COLOURS
    with pytest.raises(NoGridFoundError, match=r"no pixel grid found in image: .*only \d+ x \d+ cells"):
        G.snap(noisy)


def _nearest(sprite: np.ndarray, factor: float) -> np.ndarray:
    """``sprite`` enlarged ``factor`` times by nearest neighbour, as a viewer or an editor
    does: output pixel x shows source pixel floor(x / factor)."""
    h, w = sprite.shape[:2]
    ys = (np.arange(int(h * factor)) / factor).astype(int)
    xs = (np.arange(int(w * factor)) / factor).astype(int)
    return sprite[ys][:, xs]


@pytest.mark.parametrize("factor", [2.5, 3.3, 5.37, 1024 / 48])
@pytest.mark.parametrize("name", ["knight", "slime", "potion"])
def test_a_crisp_enlargement_by_a_non_integer_factor_snaps_back_pixel_for_pixel(name, factor):
    """Cells of alternating widths (2 and 3 px at 2.5x; 21 and 22 px for 48 px shown at 1024)
    with no blur or noise: every colour change lies on one lattice, so the sprite comes back
    exactly. At 2.5x the edge statistics read cells twice as wide, or none at all."""
    from orchestrator import samples

    sprite = _on_canvas(samples.sprites()[name], 16, (40, 120, 60))
    res = G.snap(_nearest(sprite, factor))
    assert res.image.shape == sprite.shape
    assert np.array_equal(res.image, sprite)
    assert res.grid.exact and abs(res.grid.cell_w - factor) < 0.05


@pytest.mark.parametrize("factor", [2.1, 2.25, 2.5, 3.5])
@pytest.mark.parametrize("name", ["knight", "slime", "potion"])
def test_a_whole_sprite_resized_by_pillow_snaps_back_exactly(name, factor):
    """Pillow's nearest resize rounds each cell to the nearer pixel (cells of 2 and 3 px at
    2.25x). The cell was read from the changes to their pixel quantisation, 2.24-2.29 for 2.25,
    a pixel off at the far end; cells of 2-3 px were sampled into their neighbours, whose
    channels the median mixed into colours the sprite has not (0 of 72 snap-dev sprites came
    back at 2.25x, 29 with such colours). A sprite resized as a whole spans the image: its cell
    is the image over its count, and each line sits on its colour change."""
    from PIL import Image

    from orchestrator import samples

    sprite = _on_canvas(samples.sprites()[name], 16, (40, 120, 60))
    h, w = sprite.shape[:2]
    big = np.asarray(Image.fromarray(sprite).resize((round(w * factor), round(h * factor)), Image.NEAREST))
    res = G.snap(big)
    assert res.image.shape == sprite.shape
    assert np.array_equal(res.image, sprite)
    assert res.grid.exact and res.grid.cell_w == pytest.approx(big.shape[1] / w)


def test_frames_enlarged_by_a_non_integer_factor_share_the_exact_lattice():
    from orchestrator import samples

    frames = [_on_canvas(f, 8, None) for f in samples.knight_walk()]
    results = G.snap_batch([_nearest(f, 2.5) for f in frames])
    for res, frame in zip(results, frames):
        assert np.array_equal(res.image, frame)


def test_the_exact_lattice_needs_every_change_on_it():
    """Speckles a colour reduction leaves inside cells (changes off the lattice), or too few
    changes to tell a lattice from chance, give no exact lattice: the edge statistics decide."""
    from orchestrator import samples

    up = _nearest(_on_canvas(samples.sprites()["knight"], 16, (40, 120, 60)), 3.3)
    assert G._exact_lattice_grid([up]) is not None
    speckled = up.copy()
    speckled[40, 41] = (255, 0, 255, 255)
    assert G._exact_lattice_grid([speckled]) is None
    few = np.zeros((60, 60, 4), np.uint8)
    few[..., 3] = 255
    few[20:40, 25:35, :3] = 200  # a block: two changes per axis
    assert G._exact_lattice_grid([few]) is None


def test_flat_cells_whose_colours_differ_by_a_level_are_one_colour_each():
    """A diffusion model's flat cells can differ by a level or two from cell to cell (an outline
    as #1b1326, #1b1327, #1a1326): the snap gives one colour each, the most common variant.
    A nearest-neighbour enlargement (by a whole or a fractional factor, its cells on one exact
    lattice), an image at true resolution and cell 1 keep every colour they have,
    near-identical or not."""
    sprite = make_sprite(24, 20, 8)
    rng = np.random.default_rng(8)
    shaded = np.clip(sprite[..., :3].astype(int) + rng.integers(-1, 2, sprite[..., :3].shape), 0, 255).astype(np.uint8)
    img, _, _ = render(shaded, 9.5, 9.5, jitter=1)  # uneven cells: no enlargement's lattice
    out = G.snap(img).image
    assert out.shape[:2] == (20, 24)
    base = {tuple(c) for c in sprite[..., :3].reshape(-1, 3)}
    got = {tuple(c) for c in out[..., :3].reshape(-1, 3)}
    assert len(got) == len(base) < len({tuple(c) for c in shaded.reshape(-1, 3)})
    assert np.abs(out[..., :3].astype(int) - sprite[..., :3]).max() <= 2
    exact = np.repeat(np.repeat(shaded, 4, axis=0), 4, axis=1)
    assert np.array_equal(G.snap(exact).image[..., :3], shaded)
    assert np.array_equal(G.snap(render(shaded, 9.5, 9.5)[0]).image[..., :3], shaded)
    assert np.array_equal(G.snap(shaded).image[..., :3], shaded)
    assert np.array_equal(G.snap(shaded, cell=1).image[..., :3], shaded)


def test_size_prior_only_breaks_ties():
    """An uncertain border cell flips towards a multiple of 8; a clear one never does."""
    p = 10.0
    # 47 cells fully inside [0, 470] plus a right cell 45 % inside: the half rule drops it
    nom = np.arange(-2, 52) * p  # lines at -20, -10, 0, ..., 510
    length = 474.5
    i0 = int(np.argmin(np.abs(nom)))  # line at 0
    i1 = i0 + 47
    a, b = G._size_prior(nom, i0, i1, length, i0 + 5, i1 - 5)
    assert b - a == 48
    # the same count with a right strip only 10 % of a cell: certain, stays 47
    a, b = G._size_prior(nom, i0, i1, 471.0, i0 + 5, i1 - 5)
    assert b - a == 47


def test_size_prior_can_be_disabled(monkeypatch):
    canvas = np.zeros((20, 21, 4), np.uint8)
    canvas[..., :3] = (90, 200, 210)
    canvas[..., 3] = 255
    canvas[6:14, 6:15] = make_sprite(9, 8, 12)
    img, _, _ = render(canvas, 12.0, 12.0, jitter=0, blur=0.5, noise=2.0, seed=12)
    monkeypatch.setattr(G, "SIZE_PRIOR_MULTIPLE", 0)
    assert (G.snap(img).width, G.snap(img).height) == (21, 20)


def _edge_lines(positions, edgeless, n=420):
    """Edge evidence 1.0 at every position except the ``edgeless`` ones (same colour both sides)."""
    ev = np.zeros(n)
    for x in positions:
        if x not in edgeless:
            ev[x] = 1.0
    return np.asarray(positions, dtype=np.float64), ev


def test_edgeless_line_kept_between_two_cells_and_dropped_inside_a_wide_cell():
    """A gap of ~1.6 cells without an edge inside is two jittered cells when the lattices on
    both sides meet after two periods, and one wide cell when they meet after ~1.4."""
    two_cells = [*range(0, 200, 10), 202, 210, 217, *range(230, 400, 10)]
    x, ev = _edge_lines(two_cells, {210})
    kept = G._drop_split_lines(x, ev, 10.0)
    assert 210 in kept and len(kept) == len(x)
    wide = [*range(0, 200, 10), 197, 204, *range(214, 404, 10)]
    x, ev = _edge_lines(wide, {197})
    dropped = G._drop_split_lines(x, ev, 10.0)
    assert 197 not in dropped and len(dropped) == len(x) - 1


def test_a_lattice_far_across_a_flat_stretch_does_not_call_a_gap_one_wide_cell():
    """A 16 px sprite from another tileset (hard level: +-2 px jitter on 12.8 px cells) has a
    flat fill between its top rows and its bottom edge. The edgeless line at 102 sits in a gap
    of 24 px (1.9 periods) whose right side holds no line on an edge for 7 cells: four jittered
    lines there (204-245, 13.7 px apart) carried 7 cells back called the gap one wide cell, and
    the sprite came back a row short. So far off, the lattices do not tell; the gap's own
    length (two cells) decides."""
    lines = [38, 50, 65, 77, 90, 102, 114, 127, 140, 153, 166, 179, 192, 204, 216, 230, 245]
    x, ev = _edge_lines(lines, {102, 114, 127, 140, 153, 166, 179, 192}, n=260)
    assert G._cells_across(x[ev[x.astype(int)] > 0], 90.0, 114.0, 12.84) is None
    kept = G._drop_split_lines(x, ev, 12.84)
    assert 102 in kept and len(kept) == len(x)



def test_capped_edge_plateau_peaks_at_its_crest():
    """A strong blurred edge saturates the capped evidence over several positions; over the
    whole edge the evidence then peaks where the uncapped profile does and fades away from
    it, while weak edges are left alone."""
    raw = np.zeros(40)
    raw[17:26] = [1.8, 3.7, 4.8, 5.0, 5.1, 4.8, 3.7, 1.8, 0.5]  # one edge, crest at 21
    raw[5:8] = [0.4, 0.9, 0.5]  # a weak edge, never capped
    ev = np.minimum(raw, G.EVIDENCE_CAP)
    out = G._on_crests(ev, raw)
    assert int(np.argmax(out)) == 21 and out[21] == pytest.approx(G.EVIDENCE_CAP)
    assert out[20] == out[22] and out[19] < 0.7 * G.EVIDENCE_CAP
    assert max(out[17], out[25]) < 0.1 * G.EVIDENCE_CAP  # the plateau's ends and the flank
    assert np.array_equal(out[:16], ev[:16]) and np.all(out <= ev)


def test_sprite_silhouette_edge_holds_one_line():
    """A dark sprite on a light, flat background: its strong blurred outline is one grid line,
    not two a cell apart (which adds a spurious cell on each side of the sprite)."""
    canvas = np.zeros((20, 40, 4), np.uint8)
    canvas[..., :3] = (235, 225, 245)
    canvas[..., 3] = 255
    canvas[6:14, 4:36] = make_sprite(32, 8, 21)
    canvas[6:14, 4:36, :3] //= 4  # dark sprite: every outline edge is far above the cap
    img, gx, gy = render(canvas, 7.1, 7.2, jitter=1, blur=1.3, noise=3.0, seed=5)
    res = G.snap(img)
    for found, truth in ((res.grid.x_lines, gx[[4, 36]]), (res.grid.y_lines, gy[[6, 14]])):
        for t in truth:
            near = np.abs(found - t) <= 4
            assert near.sum() == 1, (t, found[np.abs(found - t) <= 8])
    assert (res.width, res.height) == (40, 20)


def test_consolidate_colours_removes_a_smooth_cast():
    """Cells that share a true colour under a slow colour cast (and noise) get one colour again,
    close to the true one; the cast spans more than the clustering radius, so clustering
    alone would split the colours."""
    rng = np.random.default_rng(4)
    truth = make_sprite(32, 32, 8)[..., :3].astype(np.float64)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    cast = np.stack([36 * xx - 18, 30 * yy - 15, -30 * xx + 15], axis=-1)
    noisy = np.clip(truth + cast + rng.normal(0, 1.5, truth.shape), 0, 255)
    mask = np.ones((32, 32), bool)
    out = C.consolidate_colours(noisy, mask)
    n_true = len(np.unique(truth.reshape(-1, 3), axis=0))
    n_noisy = len(np.unique(np.round(noisy).reshape(-1, 3), axis=0))
    n_out = len(np.unique(np.round(out).reshape(-1, 3), axis=0))
    assert n_noisy > 500 and n_out == n_true
    assert np.abs(out - truth).max() < 12 and np.abs(out - truth).mean() < 4


def test_consolidate_colours_follows_a_cast_that_changes_within_a_few_cells():
    """A colour drift of 10 levels that wanders over a few cells (as diffusion output's does),
    colours read on the true lines: the wide window alone lags behind the cast and leaves cells
    a shade off; the cast is read again over a narrower window when it is strong and changes
    faster than the wide one follows. Over 16 draws each the share of right cells (within 0.04
    in OKLab) is 2 points higher or more on average, and rises at least four times as often as it
    falls (measured: +3.4 points, 18 up, 3 down, by one to two cells of the slime)."""
    from comfy_nodes.pixel.color import srgb_to_oklab
    from orchestrator import samples

    gains = []
    for name in ("potion", "slime"):
        sprite = samples.sprites()[name]
        opaque = sprite[..., 3] > 0
        for seed in range(16):
            d = samples.degrade(sprite, cell=12.0, jitter=1.0, seed=seed, background=(90, 140, 200), blur=1.0,
                                noise=4.0, jpeg_quality=85, pad=0, colour_drift=10.0, drift_field=0.6)
            xl, yl = np.asarray(d.x_lines, float), np.asarray(d.y_lines, float)
            grid = G.Grid(cell_w=12.0, cell_h=12.0, cols=len(xl) - 1, rows=len(yl) - 1, x_lines=xl, y_lines=yl,
                          confidence=1.0, phase=(0.0, 0.0), source_size=(d.image.shape[1], d.image.shape[0]))
            a = G._validate(d.image, "test")
            medians = C.sample_cells(a, grid, consolidate=False)[..., :3].astype(np.float64)

            def right(sigma):
                # the background is cells of the image like any other (drawn on, not transparent)
                out = C.consolidate_colours(medians, np.ones(opaque.shape, bool), sigma=sigma)
                err = np.linalg.norm(srgb_to_oklab(out / 255.0) - srgb_to_oklab(sprite[..., :3] / 255.0), axis=-1)
                return float((err[opaque] < 0.04).mean())

            gains.append(right(None) - right(C.DRIFT_SIGMA))
    better, worse = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    assert np.mean(gains) >= 0.02 and better >= 4 * worse, np.round(gains, 3)


def test_consolidate_colours_keeps_a_rare_colour_near_a_common_one():
    """A few grey cells on a grey-green backdrop, under noise and a cast: the clustering
    radius reaches from the backdrop's leader to some of them, yet they lie outside the
    backdrop's cluster, so they keep a grey of their own; the backdrop stays one colour."""
    grey, back = np.array([163.0, 163.0, 163.0]), np.array([166.0, 169.0, 140.0])
    for seed in range(3):
        rng = np.random.default_rng(seed)
        truth = np.tile(back, (24, 24, 1))
        truth[8:10, 8:12] = grey
        truth[16:18, 4:8] = (120, 60, 60)
        yy, xx = np.mgrid[0:24, 0:24] / 23.0
        cast = np.stack([20 * xx - 10, 20 * yy - 10, -20 * xx + 10], axis=-1)
        noisy = np.clip(truth + cast + rng.normal(0, 1.5, truth.shape), 0, 255)
        out = C.consolidate_colours(noisy, np.ones((24, 24), bool))
        assert np.abs(out[8:10, 8:12] - grey).max() < 6, (seed, out[8:10, 8:12].round())
        rest = np.ones((24, 24), bool)
        rest[8:10, 8:12] = rest[16:18, 4:8] = False
        assert len(np.unique(out[rest].round(), axis=0)) == 1
        assert np.abs(out[rest] - back).max() < 4


def test_strip_of_art_over_flat_background_takes_the_sure_axis_period():
    """Art 16 cells tall over 27 flat rows, +-2 px jitter on 7.3-7.4 px cells: the rows'
    spectrum is weak and off by a sixth, the columns' is sure; pseudo pixels are nearly
    square, so the rows take their spectral peak near the columns' period."""
    canvas = np.zeros((43, 102, 4), np.uint8)
    canvas[..., :3] = (139, 16, 109)
    canvas[..., 3] = 255
    canvas[:16] = make_sprite(102, 16, 57)
    img, gx, gy = render(canvas, 7.43, 7.32, jitter=2, blur=1.0, noise=3.0, seed=57)
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (102, 43)
    assert abs(grid.cell_h - 7.32) < 0.15


def test_non_square_generated_sprite_snaps_back():
    """``samples.degrade`` draws non-square fake pixels when given ``cell_h``; the grid is
    found per axis and the sprite comes back exactly."""
    from orchestrator import samples

    coin = samples.sprites()["coin"]
    d = samples.degrade(coin, cell=12.0, cell_h=13.2, jitter=0.0, seed=1, pad=0)
    h, w = coin.shape[:2]
    assert np.array_equal(np.diff(d.x_lines), np.full(w, 12)) and abs(d.image.shape[0] - 13.2 * h) <= 2
    res = G.snap(d.image)
    assert (res.width, res.height) == (w, h)
    assert res.grid.cell_h / res.grid.cell_w == pytest.approx(1.1, abs=0.02)
    opaque = coin[..., 3] > 0
    diff = np.abs(res.image[..., :3].astype(int) - coin[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.98


def test_small_sprite_in_wide_margins_finds_its_grid():
    """The rotated coin with flat margins on every side: few edges along x, all in one bump,
    whose envelope makes the spectrum rise towards the longest period searched. The period is
    the strongest peak inside the band (the grid's), not the band's edge bin, which is no peak
    and read as "no pixel grid found"."""
    from orchestrator import samples

    coin = np.rot90(samples.sprites()["coin"], 1)
    h, w = coin.shape[:2]
    canvas = np.zeros((h + 11, w + 6, 4), np.uint8)
    canvas[6:6 + h, 1:1 + w] = coin
    d = samples.degrade(canvas, cell=9.523, cell_h=9.162, jitter=1.5, seed=135, background=(45, 174, 48),
                        blur=0.64, noise=2.7, jpeg_quality=77, pad=0)
    res = G.snap(d.image)
    assert (res.width, res.height) == (w + 6, h + 11)
    opaque = canvas[..., 3] > 0
    diff = np.abs(res.image[..., :3].astype(int) - canvas[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.95


def test_small_sprite_outline_is_not_taken_for_the_grid():
    """A 16-cell slime on 6 px cells with +-1.5 px jitter and heavy blur: the cells' fundamental
    is weak and the sprite's outline (a few "cycles" across it) peaks at 35-46 px, which read as
    a 4x4 "sprite". A grid has several cells across the edges it explains, so periods longer
    than a sixth of their span are no candidates."""
    from orchestrator import samples

    slime = np.rot90(samples.sprites()["slime"], 3)
    h, w = slime.shape[:2]
    canvas = np.zeros((h + 10, w + 17, 4), np.uint8)  # margins: 12 left, 5 right, 10 below
    canvas[:h, 12:12 + w] = slime
    d = samples.degrade(canvas, cell=6.202, cell_h=6.006, jitter=1.5, seed=78, background=(123, 205, 107),
                        blur=1.25, noise=5.72, jpeg_quality=75, pad=0)
    res = G.snap(d.image)
    assert (res.width, res.height) == (w + 17, h + 10)
    assert res.grid.cell_w == pytest.approx(6.2, abs=0.2) and res.grid.cell_h == pytest.approx(6.0, abs=0.2)
    opaque = canvas[..., 3] > 0
    diff = np.abs(res.image[..., :3].astype(int) - canvas[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.85


def test_active_span_measures_the_art_not_the_background():
    """The span that bounds the period runs from the first to the last position with edges."""
    prof = np.zeros(300)
    prof[40:200:8] = 1.0
    assert G._active_span(prof) == pytest.approx(153, abs=1)
    assert G._active_span(np.zeros(50)) == 0.0


def test_consolidate_colours_keeps_two_near_colours_bridged_by_their_mixtures():
    """Two greens 0.05 apart in OKLab (more than the clustering radius), each in a large
    block, with a column of half-and-half cells between them (a blurred or dithered border):
    the mixtures' colour lies within the radius of both, so as the densest colour it led both
    blocks into one cluster. Leaders are picked by the density within half the radius."""
    from comfy_nodes.pixel.color import srgb_to_oklab

    a, b = np.array([3.0, 192.0, 20.0]), np.array([50.0, 207.0, 65.0])
    lab = srgb_to_oklab(np.stack([a, b]) / 255.0)
    assert 0.045 < np.linalg.norm(lab[0] - lab[1]) < 0.055
    for seed in range(3):
        rng = np.random.default_rng(seed)
        truth = np.zeros((12, 25, 3))
        truth[:, :12], truth[:, 13:], truth[:, 12] = a, b, (a + b) / 2
        noisy = np.clip(truth + rng.normal(0, 1.0, truth.shape), 0, 255)
        out = C.consolidate_colours(noisy, np.ones((12, 25), bool))
        assert np.abs(out[:, :12] - a).max() < 6, (seed, out[0, 0].round())
        assert np.abs(out[:, 13:] - b).max() < 6, (seed, out[0, 24].round())


def _with_drawn_half_grid(sprite: np.ndarray, seed: int) -> np.ndarray:
    """``sprite`` rendered on ~19.5 px cells with 1 px lines 28 levels darker drawn on every
    cell boundary and half way between (the same lines for every sprite of one size and seed)."""
    img, gx, gy = render(sprite, 19.6, 19.3, jitter=1, blur=0.7, noise=2.0, seed=seed)
    out = img.astype(np.int16)
    for lines, axis in ((gx, 1), (gy, 0)):
        halves = np.concatenate([lines, (lines[:-1] + lines[1:]) // 2])
        halves = halves[(halves >= 0) & (halves < out.shape[axis])]
        if axis == 1:
            out[:, halves, :3] -= 28
        else:
            out[halves, :, :3] -= 28
    return np.clip(out, 0, 255).astype(np.uint8)


def test_cells_split_by_a_drawn_half_cell_grid_are_merged():
    """Some AI images draw a faint grid of their own inside every pseudo pixel, at half its
    size: the finer lattice then has the stronger spectrum and lines at every half cell, and
    the sprite came back twice its size. Its colours change only at every other line, so the
    coarser lattice explains them as well and wins."""
    sprite = make_sprite(30, 26, seed=5)
    img = _with_drawn_half_grid(sprite, seed=3)
    # the drawn grid alone would give cells of half the size
    assert G._subharmonic(G._axis_profile(G._edge_maps(img, 2)[0], 0), 9.8) > G.SPLIT_SCREEN
    res = G.snap(img)
    assert (res.width, res.height) == (30, 26)
    assert res.grid.cell_w == pytest.approx(19.6, abs=0.4) and res.grid.cell_h == pytest.approx(19.3, abs=0.4)
    assert accuracy(res.image, sprite) >= 0.97


def test_animation_frames_with_a_drawn_half_cell_grid_share_the_merged_grid():
    """Batch mode sums the frames' evidence and their reconstruction errors: two frames on one
    drawn grid come back at their true size, on one grid."""
    frames = [make_sprite(30, 26, seed=s) for s in (21, 22)]
    imgs = [_with_drawn_half_grid(f, seed=3) for f in frames]
    grid = G.detect_grid_batch(imgs)
    assert (grid.cols, grid.rows) == (30, 26)
    for res, truth in zip(G.snap_batch(imgs, grid=grid), frames):
        assert accuracy(res.image, truth) >= 0.97


def _detector_axes(img: np.ndarray):
    """The per-axis arguments ``_merge_split_cells`` takes, as ``_grid_from_edges`` builds them."""
    h, w = img.shape[:2]
    ex, ey = G._edge_maps(img, G._stride(h, w))
    sx, sy = G._axis_profile(ex, 0), G._axis_profile(ey, 1)
    return ((ex, w, sx, G._axis_profile(ex, 0, ridges=True), G.estimate_period(sx)),
            (ey, h, sy, G._axis_profile(ey, 1, ridges=True), G.estimate_period(sy)))


def test_true_grid_is_not_merged_into_pairs(monkeypatch):
    """The same check leaves a true grid alone: pairs of cells there differ in colour, so the
    coarser lattice straddles half of the colour changes."""
    sprite = make_sprite(40, 36, seed=11)
    img, _, _ = render(sprite, 9.7, 9.9, jitter=1, blur=0.8, noise=3.0, seed=4)
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (40, 36)
    # let every grid past the spectral screen: the reconstruction test alone keeps the lattice
    monkeypatch.setattr(G, "SPLIT_SCREEN", 0.0)
    merged = G._merge_split_cells([img], grid, _detector_axes(img))
    assert (merged.cols, merged.rows) == (40, 36)


def _ground_tile(seed: int) -> np.ndarray:
    """A 32 x 32 terrain tile in low contrast (dirt fading into grass, each cell a few levels
    off its neighbours) at even offsets on a 48 px canvas, drawn as pseudo pixel art on cells of
    11-15 px over a bright cyan background."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    dirt, grass = np.array([120, 90, 70]), np.array([95, 120, 60])
    t = np.clip(rng.normal(0.5, 1 / 6, (32, 32)) + np.linspace(-0.5, 0.5, 32)[None, :], 0, 1)[..., None]
    tile = dirt * (1 - t) + grass * t + rng.normal(0, 4, (32, 32, 3))
    canvas = np.zeros((48, 48, 4), np.uint8)
    oy, ox = 2 * rng.integers(0, 9, 2)
    canvas[oy:oy + 32, ox:ox + 32, :3] = np.clip(tile, 0, 255)
    canvas[oy:oy + 32, ox:ox + 32, 3] = 255
    return samples.degrade(canvas, cell=float(rng.uniform(11.0, 15.0)), jitter=1.0, seed=seed, background=(40, 220, 200),
                           blur=0.8, noise=4.0, jpeg_quality=88, pad=0, colour_drift=4.0, drift_field=0.6).image


@pytest.mark.parametrize("seed", [1, 6, 10])
def test_a_low_contrast_tile_on_a_bright_background_is_not_merged_into_pairs(seed, monkeypatch):
    """Shifting the lattice by half a cell costs the tile's outline on the bright background
    5-30 times what it costs the low-contrast ground inside. Only blocks within a quarter of
    the costliest counted, so only the outline's did, and an outline on every other line pairs
    as well as a split grid's: 24 x 24 cells came back. The quieter blocks, from a tenth, are
    the ground's, and there pairs of cells cost more than the shift. Without that check
    (no block quiet enough) the pairs come back."""
    image = _ground_tile(seed)
    grid = G.detect_grid(image)
    assert (grid.cols, grid.rows) == (48, 48)
    monkeypatch.setattr(G, "SPLIT_QUIET", 1.0)
    paired = G.detect_grid(image)
    assert (paired.cols, paired.rows) == (24, 24)


def test_flat_blocks_with_one_dithered_patch_are_not_merged(monkeypatch):
    """Art in flat 8x8-cell blocks pairs every cell with its neighbour, so over the whole image
    the coarser lattice costs little; one checkerboard-dithered block does not pair at all.
    The local test (90th percentile over blocks where the shift costs something) keeps it."""
    rng = np.random.default_rng(2)
    idx = np.kron(rng.integers(0, len(PALETTE), (5, 5)), np.ones((8, 8), int))
    yy, xx = np.mgrid[:40, :40]
    patch = (yy >= 16) & (yy < 24) & (xx >= 8) & (xx < 16) & ((xx + yy) % 2 == 1)
    idx[patch] = (idx[patch] + 3) % len(PALETTE)
    sprite = np.dstack([PALETTE[idx], np.full((40, 40), 255, np.uint8)])
    img, _, _ = render(sprite, 12.3, 12.1, jitter=1, blur=0.8, noise=2.0, seed=6)
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (40, 40)
    monkeypatch.setattr(G, "SPLIT_SCREEN", 0.0)
    monkeypatch.setattr(G, "SPLIT_LOCAL_MAX", 99.0)
    assert G._merge_split_cells([img], grid, _detector_axes(img)).cols == 20  # the global test alone merges
    monkeypatch.undo()
    monkeypatch.setattr(G, "SPLIT_SCREEN", 0.0)
    merged = G._merge_split_cells([img], grid, _detector_axes(img))
    assert (merged.cols, merged.rows) == (40, 40)
    assert (G.snap(img).width, G.snap(img).height) == (40, 40)


def _upscaled(name: str, margin: int, size: int, resample) -> tuple[np.ndarray, np.ndarray]:
    """A sample sprite on a flat canvas with ``margin`` cells a side, upscaled to ``size`` px by
    a resampling filter (no noise, no JPEG): pixel art as an image editor enlarges it. Returns
    the enlargement and the canvas (RGB, true size)."""
    from PIL import Image

    from orchestrator import samples

    sprite = samples.sprites()[name]
    h, w = sprite.shape[:2]
    canvas = np.zeros((h + 2 * margin, w + 2 * margin, 4), np.uint8)
    canvas[margin:margin + h, margin:margin + w] = sprite
    flat = Image.new("RGBA", (canvas.shape[1], canvas.shape[0]), (200, 190, 170, 255))
    comp = Image.alpha_composite(flat, Image.fromarray(canvas)).convert("RGB")
    return np.asarray(comp.resize((size, size), resample)), np.asarray(comp)


def test_lanczos_upscaled_sprite_keeps_its_size():
    """A Lanczos upscale rings: overshoot lobes half a cell from every edge, and no noise to hide
    them; its cells are found on their centres, where each ramp bends (the edges' lines were
    packed closer than the period: 32x34 for 32x32)."""
    from PIL import Image

    img, truth = _upscaled("knight", 8, 700, Image.LANCZOS)
    res = G.snap(img)
    assert (res.height, res.width) == truth.shape[:2]
    assert res.grid.cell_h == pytest.approx(700 / 32, rel=0.02)


@pytest.mark.parametrize("resample", ["BILINEAR", "BICUBIC", "LANCZOS"])
def test_smooth_enlargement_is_read_on_its_cell_centres(resample):
    """A smooth enlargement (an editor's or a viewer's) draws each true pixel as a ramp a whole
    cell wide; bilinear draws nothing else, and its edges told the grid nothing (0 of 60
    generated enlargements had their size found). The ramps bend at the cells' centres: the
    grid is found there, the colours are read there, and the sprite comes back."""
    from PIL import Image

    img, truth = _upscaled("potion", 5, 613, getattr(Image, resample))
    a = G._validate(img, "test")
    assert G._smoothness(a, G._stride(*a.shape[:2])) < G.SMOOTH_RATIO
    res = G.snap(img)
    assert res.grid.smooth
    assert (res.height, res.width) == truth.shape[:2]
    diff = np.abs(res.image[..., :3].astype(int) - truth[..., :3].astype(int)).max(-1)
    assert (diff <= 24).mean() >= 0.98


@pytest.mark.parametrize("resample", ["BILINEAR", "BICUBIC"])
def test_smoothly_enlarged_sprite_with_alpha_comes_back(resample):
    """An editor enlarging a sprite with transparency resamples its alpha too: every edge of
    the silhouette is a ramp into transparency a cell wide. Its colour under that alpha is
    read composited, so the ramps still bend at the cells' centres."""
    from PIL import Image

    from orchestrator import samples

    slime = samples.sprites()["slime"]
    h, w = slime.shape[:2]
    canvas = np.zeros((h + 5, w + 3, 4), np.uint8)
    canvas[2:2 + h, 1:1 + w] = slime
    size = (round(canvas.shape[1] * 12.6), round(canvas.shape[0] * 12.6))
    img = np.asarray(Image.fromarray(canvas).resize(size, getattr(Image, resample)))
    res = G.snap(img)
    assert res.image.shape[:2] == canvas.shape[:2]
    opaque = canvas[..., 3] > 0
    assert np.array_equal(res.image[..., 3] > 0, opaque)
    diff = np.abs(res.image[..., :3].astype(int) - canvas[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.98


@pytest.mark.parametrize(("name", "resample"), [("coin", "BICUBIC"), ("slime", "LANCZOS")])
def test_smooth_enlargement_cut_out_by_a_keyed_matte_comes_back(name, resample, monkeypatch):
    """A smooth enlargement handed over by a background remover: alpha keyed on the colour, so
    the matte cuts the ramps at some level of each, off the lattice, and composited its
    silhouette bends there. Read on its opaque pixels only, the ramps bend at the cells'
    centres and the sprite comes back its size (read with the silhouette: 3-6 cells short)."""
    from PIL import Image

    from orchestrator import samples

    bg = (70, 140, 90)
    sprite = samples.sprites()[name]
    h, w = sprite.shape[:2]
    canvas = np.zeros((h + 6, w + 4, 4), np.uint8)
    canvas[3:3 + h, 2:2 + w] = sprite
    flat = Image.new("RGBA", (canvas.shape[1], canvas.shape[0]), bg + (255,))
    composed = Image.alpha_composite(flat, Image.fromarray(canvas)).convert("RGB")
    size = (round(canvas.shape[1] * 13.3), round(canvas.shape[0] * 13.3))
    cut = samples.cut_out(np.asarray(composed.resize(size, getattr(Image, resample))), bg, noise=2.0, fill="black")
    res = G.snap(cut)
    assert res.grid.smooth and res.image.shape[:2] == canvas.shape[:2]
    opaque = canvas[..., 3] > 0
    diff = np.abs(res.image[..., :3].astype(int) - canvas[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.95
    kinks = G._kink_maps
    monkeypatch.setattr(G, "_kink_maps", lambda img, stride, opaque_only=False: kinks(img, stride))
    monkeypatch.setattr(G, "REFOLLOW", 10.0)  # a second line search mends the LANCZOS slime too
    assert G.snap(cut).image.shape[:2] != canvas.shape[:2]


def test_jpeg_compressed_bilinear_enlargement_is_still_read_as_one():
    """JPEG puts a bilinear enlargement's curvature ratio among blurred pseudo pixel art's: both
    readings are made, and the smooth one redraws it far better."""
    import io

    from PIL import Image

    img, truth = _upscaled("coin", 4, 340, Image.BILINEAR)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=85)
    img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    a = G._validate(img, "test")
    assert G.SMOOTH_RATIO <= G._smoothness(a, G._stride(*a.shape[:2])) < G.SMOOTH_DOUBT
    res = G.snap(img)
    assert res.grid.smooth and (res.height, res.width) == truth.shape[:2]


def test_pseudo_pixel_art_is_no_smooth_enlargement():
    """A rendered sprite's blurred steps bend where they change colour, not across whole cells."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["knight"], cell=11.3, seed=2)
    a = G._validate(d.image, "test")
    assert G._smoothness(a, G._stride(*a.shape[:2])) > G.SMOOTH_DOUBT
    assert not G.detect_grid(d.image).smooth


def test_blurred_texture_is_not_taken_for_a_smooth_enlargement(monkeypatch):
    """Colour runs blurred over a fifth of their 6-7 px cells have a curvature ratio in the band
    of doubt, and a finer lattice of bilinear ramps redraws them a little better than their own
    cells do; only a clear win (``SMOOTH_WIN``) counts as a smooth enlargement."""
    from orchestrator import samples

    rng = np.random.default_rng(30)
    w, h = int(rng.integers(90, 130)), int(rng.integers(20, 40))
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = samples.colour_runs(rng, w, h)
    canvas[..., 3] = 255
    d = samples.degrade(canvas, cell=float(rng.uniform(6.2, 7.2)), jitter=2.0, seed=30, background=(0, 0, 0),
                        blur=1.25, noise=4.0, jpeg_quality=85, pad=0)
    grid = G.detect_grid(d.image)
    assert (grid.cols, grid.rows) == (w, h) and not grid.smooth
    monkeypatch.setattr(G, "SMOOTH_WIN", 1.0)
    assert (G.detect_grid(d.image).cols, G.detect_grid(d.image).rows) != (w, h)


def test_flat_stretch_recounted_on_the_lattice_of_its_sides():
    """+-2 px jitter on 6.5 px cells: the lines either side of a flat stretch of three cells
    lie 3.6 periods apart, and the DP drew two cells there. Snapped to the lattices of the
    lines on edges either side they lie three periods apart: the stretch gets three cells.
    A wide cell (1.4 periods) on a lightly jittered lattice is left as one cell."""
    p = 6.5
    jit = np.array([0.6, -1.1, 1.4, -0.3, 0.9, -1.6, 0.2, 1.2, -0.8, 0.5, -1.3, 1.0, -0.4, -2.0,
                    0.0, 0.0, 2.0, -0.9, 1.5, -0.2, 0.7, -1.4, 1.1, -0.6, 0.3, -1.0])
    truth = p * np.arange(len(jit)) + 20.0 + jit
    drawn = np.concatenate([truth[:14], [0.5 * (truth[13] + truth[16])], truth[16:]])  # 2 cells for 3
    support = np.ones(len(drawn), bool)
    support[14] = False
    lines, keep = G._recount_flat_stretches(drawn, support, p)
    assert len(lines) == len(truth)
    assert np.array_equal(lines[keep], drawn[support])
    assert lines[15] - lines[14] == pytest.approx((truth[16] - truth[13]) / 3)

    light = p * np.arange(30) + 20.0 + 0.3 * np.sin(np.arange(30))
    light[15:] += 0.4 * p  # one cell drawn 1.4x wide
    same, _ = G._recount_flat_stretches(light, np.ones(30, bool), p)
    assert np.array_equal(same, light)


def _texture_strip(seed: int) -> tuple[np.ndarray, int, int]:
    """A strip of colour runs (a texture, a sky) on 6.2-7.2 px cells with +-2 px jitter."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(90, 130)), int(rng.integers(20, 40))
    canvas = np.zeros((h, w, 4), np.uint8)
    canvas[..., :3] = samples.colour_runs(rng, w, h)
    canvas[..., 3] = 255
    cell = float(rng.uniform(6.2, 7.2))
    d = samples.degrade(canvas, cell=cell, jitter=2.0, seed=seed, background=(0, 0, 0), blur=1.0, noise=4.0,
                        jpeg_quality=85, pad=0)
    return d.image, w, h


@pytest.mark.parametrize("seed", [63, 64, 73])
def test_heavily_jittered_texture_strip_counts_every_cell(seed):
    """Two neighbouring lines of a +-2 px jittered 7 px grid can lie 1.7 periods apart; the
    cells between them are counted on the lattice of the lines around them (the DP and the
    split test alone lost a column on these strips)."""
    img, w, h = _texture_strip(seed)
    res = G.snap(img)
    assert (res.width, res.height) == (w, h)


def test_heavily_jittered_texture_strip_with_a_weak_spectrum_is_still_a_grid():
    """+-2 px jitter on 7 px cells leaves the cells' fundamental weak (confidence 0.39 here),
    but the lattice holds the colours: it is snapped, not reported as no grid."""
    img, w, h = _texture_strip(68)
    res = G.snap(img)
    assert (res.width, res.height) == (w, h)
    assert G.MIN_CONFIDENCE < res.grid.confidence < 0.45


def _parquet_tile(rng: np.random.Generator, side: int = 32, block: int = 16, plank: int = 4) -> np.ndarray:
    """A parquet floor tile (RGBA): ``block`` px squares of ``plank`` px planks running down and
    across in turn, a dark one-pixel seam along each plank and a faint grain of darker streaks."""
    base = np.array([150.0, 112.0, 58.0]) + rng.normal(0, 6, 3)
    img = np.zeros((side, side, 3))
    for by in range(0, side, block):
        for bx in range(0, side, block):
            down = (by // block + bx // block) % 2 == 0
            for k in range(0, block, plank):
                # (along, across) the plank -> (y, x) in the tile
                def at(t, u):
                    return (by + t, bx + u) if down else (by + u, bx + t)

                shade = rng.normal(0, 7)
                for t in range(block):
                    for u in range(k, k + plank):
                        img[at(t, u)] = base + shade
                for _ in range(3):
                    u, t0, length = k + int(rng.integers(0, plank)), int(rng.integers(0, block - 4)), int(rng.integers(3, 8))
                    for t in range(t0, min(block, t0 + length)):
                        img[at(t, u)] -= 18
                for t in range(block):
                    img[at(t, k + plank - 1)] -= 25
    out = np.full((side, side, 4), 255, np.uint8)
    out[..., :3] = np.clip(img, 0, 255)
    return out


def _parquet_case(seed: int, plank: int = 4) -> np.ndarray:
    """A parquet tile (:func:`_parquet_tile`) at a random place on a 48 px canvas, drawn as
    pseudo pixel art at the hard level's settings with cells of 6.5-9 px."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    tile = _parquet_tile(rng, plank=plank)
    canvas = np.zeros((48, 48, 4), np.uint8)
    oy, ox = rng.integers(0, 17, 2)
    canvas[oy:oy + 32, ox:ox + 32] = tile
    d = samples.degrade(canvas, cell=float(rng.uniform(6.5, 9.0)), jitter=2.0, seed=seed,
                        background=tuple(int(v) for v in rng.integers(30, 230, 3)), blur=1.2, noise=6.0,
                        jpeg_quality=75, pad=0, colour_drift=6.0, drift_field=0.6)
    return d.image


@pytest.mark.parametrize("seed", [3, 14, 15, 36])
def test_a_parquet_tile_is_read_at_its_cells_not_its_planks(seed):
    """A parquet tile at the hard level's settings: the planks' seams repeat every 4 cells and
    the blocks every 16, the cells show only in a faint grain. The pairing of the two axes'
    spectra chose the planks or the blocks (12 x 12 or 6 x 6 cells); one axis's own spectrum
    held the cells, and read on both axes they hold the colours far better."""
    grid = G.detect_grid(_parquet_case(seed))
    assert (grid.cols, grid.rows) == (48, 48)


@pytest.mark.parametrize("seed", [2, 17, 22, 27])
def test_a_parquet_tile_of_long_planks_is_read_at_its_cells_not_its_blocks(seed, monkeypatch):
    """Planks 8 cells wide: every profile's strongest peak is now the blocks or their halves,
    so the earlier retry had no finer period to read (6 x 6 or 12 x 12 cells for 48 x 48).
    The cells are a lesser peak of a ridge profile's spectrum; read, they hold the colours far
    better than the planks. Without that candidate (a peak share no spectrum reaches) the
    blocks stay."""
    image = _parquet_case(seed, plank=8)
    grid = G.detect_grid(image)
    assert (grid.cols, grid.rows) == (48, 48)
    monkeypatch.setattr(G, "FAR_PEAK", 2.0)
    blocks = G.detect_grid(image)
    assert max(blocks.cols, blocks.rows) <= 13


SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "bench" / "real"


def _cut_out_knight(fill: str) -> tuple[np.ndarray, np.ndarray]:
    """The knight on a 4-cell transparent margin, drawn as pseudo pixel art and cut out again
    as a background remover hands it over, ``fill`` under its transparency."""
    from orchestrator import samples

    knight = samples.sprites()["knight"]
    h, w = knight.shape[:2]
    canvas = np.zeros((h + 8, w + 8, 4), np.uint8)
    canvas[4:4 + h, 4:4 + w] = knight
    bg = (136, 206, 148)
    d = samples.degrade(canvas, cell=12.7, cell_h=12.2, jitter=1.0, seed=3, background=bg, blur=0.9, noise=3.0,
                        jpeg_quality=85, pad=0)
    return samples.cut_out(d.image, bg, noise=3.0, fill=fill), canvas


def test_cut_out_sprite_gives_one_result_whatever_lies_under_its_transparency():
    """What is stored under alpha 0 (the old background, black, white, noise) is no part of
    the sprite: the grid and every snapped pixel are the same for all of them, and right.
    Read as it was, black there hid the grid ("no pixel grid found") and noise gave garbage."""
    results = {}
    for fill in ("stored", "black", "white", "random"):
        img, truth = _cut_out_knight(fill)
        res = G.snap(img)
        results[fill] = res
        assert (res.width, res.height) == truth.shape[1::-1], fill
    first = results["stored"]
    for fill, res in results.items():
        assert np.array_equal(res.grid.x_lines, first.grid.x_lines) and np.array_equal(res.grid.y_lines, first.grid.y_lines), fill
        assert np.array_equal(res.image, first.image), fill
    opaque = truth[..., 3] > 0
    assert ((first.image[..., 3] > 0) == opaque).mean() >= 0.98
    diff = np.abs(first.image[..., :3].astype(int) - truth[..., :3].astype(int)).max(-1)
    assert (diff[opaque & (first.image[..., 3] > 0)] <= 24).mean() >= 0.95
    # nothing of what lay under the transparency comes out
    assert (first.image[first.image[..., 3] == 0, :3] == 0).all()


def test_cell_colour_comes_from_its_opaque_samples():
    """A cell that is opaque but has transparent samples (its silhouette cut through it) takes
    its colour from the opaque ones, not from whatever the transparent ones store."""
    img = np.zeros((20, 40, 4), np.uint8)
    img[:, :20] = (200, 40, 60, 255)
    img[:, 12:20, :3] = (255, 0, 255)  # garbage under a transparent strip of the left cell
    img[:, 12:20, 3] = 0
    img[:, 20:] = (10, 250, 10, 0)  # a transparent cell
    grid = G.Grid(cell_w=20.0, cell_h=20.0, cols=2, rows=1, x_lines=np.array([0.0, 20.0, 40.0]),
                  y_lines=np.array([0.0, 20.0]), confidence=1.0, source_size=(40, 20))
    out = C.sample_cells(img, grid)
    assert out[0, 0].tolist() == [200, 40, 60, 255]
    assert out[0, 1].tolist() == [0, 0, 0, 0]


@pytest.mark.skipif(not (SHARED_REAL / "unfakejs_example_4.png").is_file(), reason="../shared real images not present")
def test_colour_under_transparent_pixels_does_not_double_a_drifting_drawn_grid():
    """The goose (a drawn half-cell grid on a drifting lattice) with its stored colour, black,
    white or noise under its transparent pixels: one grid for all, its cells merged (not the
    104 x 104 half cells)."""
    from comfy_nodes.pixel.imageio import load_image

    a = load_image(SHARED_REAL / "unfakejs_example_4.png")
    hidden = a[..., 3] == 0
    grids = []
    for fill in (None, 0, 255, "random"):
        b = a.copy()
        if fill == "random":
            b[hidden, :3] = np.random.default_rng(1).integers(0, 256, (int(hidden.sum()), 3))
        elif fill is not None:
            b[hidden, :3] = fill
        grids.append(G.detect_grid(b))
    g = grids[0]
    for other in grids[1:]:
        assert np.array_equal(other.x_lines, g.x_lines) and np.array_equal(other.y_lines, g.y_lines)
    assert 50 <= g.cols <= 56 and 50 <= g.rows <= 56


def test_degrade_draws_a_grid_that_drifts_bends_and_has_a_wide_cell():
    """The bench's warped rendering does what its arguments say: with ``drift`` the cells at
    one end are that much bigger than at the other, with ``bend`` a column boundary moves
    from row to row, with ``wide`` one cell is 1.3-1.5x; with none of them the rendering is
    the plain one, draw for draw."""
    from orchestrator import samples

    canvas = np.zeros((24, 40, 4), np.uint8)
    canvas[4:20, 12:28] = samples.sprites()["knight"]
    kw = dict(cell=12.0, jitter=0.0, seed=5, background=(60, 70, 90), blur=0.0, noise=0.0, jpeg_quality=95, pad=0)
    plain = samples.degrade(canvas, **kw)
    assert np.array_equal(plain.image, samples.degrade(canvas, drift=0.0, bend=0.0, wide=0, **kw).image)

    drifted = samples.degrade(canvas, drift=0.08, **kw)
    gaps = np.diff(drifted.x_lines)
    assert abs(gaps[-5:].mean() - gaps[:5].mean()) / 12.0 == pytest.approx(0.08 * 35 / 39, abs=0.02)

    wide = np.diff(samples.degrade(canvas, wide=1, **kw).x_lines) / 12.0
    assert ((wide > 1.25) & (wide < 1.55)).sum() == 1

    # columns of two colours: a column boundary drawn on a bent grid moves from row to row,
    # by up to the bend (6 px here) from its lowest to its highest point
    stripes = np.zeros((24, 40, 4), np.uint8)
    stripes[..., 3] = 255
    stripes[:, 1::2, :3] = 200
    def boundaries(image, r):
        return np.nonzero(np.abs(np.diff(image[r, :, 0].astype(int))) > 100)[0]

    plain_stripes = samples.degrade(stripes, **kw).image
    bent = samples.degrade(stripes, bend=0.5, **kw).image
    # (rows away from the top and bottom, where a bent row can fall outside the grid)
    rows = range(24, bent.shape[0] - 24)
    assert all(np.array_equal(boundaries(plain_stripes, r), boundaries(plain_stripes, 24)) for r in rows)
    ref = boundaries(plain_stripes, 24)[17]
    moved = [int(b[np.argmin(np.abs(b - ref))]) for b in (boundaries(bent, r) for r in rows)]
    assert 4 <= np.ptp(moved) <= 7


def test_degrade_cuts_border_cells_saves_png_and_lets_colour_drift_wander():
    """The options the other-sources bench renders with: a negative pad cuts into the border
    cells by that many px (per side), ``jpeg_quality=None`` leaves the rendering exact, and
    ``drift_field`` makes the colour drift of neighbouring cells alike, as snap-dev's is."""
    from orchestrator import samples

    flat = np.zeros((30, 30, 4), np.uint8)
    flat[..., :3], flat[..., 3] = 128, 255
    kw = dict(cell=10.0, jitter=0.0, seed=3, blur=0.0, noise=0.0, jpeg_quality=None)
    exact = samples.degrade(flat, colour_drift=0.0, pad=0, **kw)
    assert np.all(exact.image == 128)  # no JPEG, no drift: the one colour, pixel for pixel
    cut = samples.degrade(flat, colour_drift=0.0, pad=(-4, 3, 0, -2), **kw)
    assert cut.x_lines[0] < 0 and cut.image.shape[1] == int(cut.x_lines[-1]) + 3
    assert cut.image.shape[0] == int(cut.y_lines[-1]) - 2

    def cell_colours(d):
        c = 0.5 * (d.x_lines[:-1] + d.x_lines[1:])
        r = 0.5 * (d.y_lines[:-1] + d.y_lines[1:])
        return d.image[r.astype(int)][:, c.astype(int), 0].astype(float) - 128

    own = cell_colours(samples.degrade(flat, colour_drift=8.0, pad=0, **kw))
    field = cell_colours(samples.degrade(flat, colour_drift=8.0, drift_field=0.6, pad=0, **kw))
    for drift in (own, field):
        assert 5.0 < drift.std() < 11.0
    def neighbours(d):
        return np.corrcoef(d[:, :-1].ravel(), d[:, 1:].ravel())[0, 1]
    assert abs(neighbours(own)) < 0.2 and neighbours(field) > 0.4


def _warped_on_canvas(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A sample sprite at a random place on a 48 px transparent canvas, rendered at the warp
    level's settings (cells 7-16 px that drift 4-8 %, lines bent by 0.3-0.5 cell): the
    rendering and the canvas."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    sprite = samples.sprites()[name]
    h, w = sprite.shape[:2]
    canvas = np.zeros((48, 48, 4), np.uint8)
    oy, ox = int(rng.integers(0, 48 - h)), int(rng.integers(0, 48 - w))
    canvas[oy:oy + h, ox:ox + w] = sprite
    d = samples.degrade(canvas, cell=float(rng.uniform(7, 16)), jitter=0.9, seed=seed, background=(90, 120, 160),
                        blur=float(rng.uniform(0.7, 1.0)), noise=float(rng.uniform(3, 5)),
                        jpeg_quality=int(rng.integers(82, 92)), pad=0, drift=float(rng.uniform(0.04, 0.08)),
                        bend=float(rng.uniform(0.3, 0.5)), wide=int(rng.integers(0, 2)))
    return d.image, canvas


@pytest.mark.parametrize("name,seed", [("slime", 17), ("coin", 0)])
def test_margins_of_a_drifting_grid_are_split_at_their_own_cell_size(name, seed, monkeypatch):
    """On a grid whose cell size drifts, the flat margins continued at the art's period put a
    cell too many on one side and one too few on the other: the right size, the sprite one
    column or row off. Shared out at the margins' own mean cell size, the sprite lands right."""
    img, canvas = _warped_on_canvas(name, seed)
    opaque = canvas[..., 3] > 0

    def right(out):
        assert out.shape == canvas.shape
        return float(np.mean(np.abs(out[..., :3].astype(int) - canvas[..., :3]).max(axis=-1)[opaque] <= 24))

    assert right(G.snap(img).image) >= 0.97
    monkeypatch.setattr(G, "MARGIN_SPLIT_SLACK", float("inf"))
    assert right(G.snap(img).image) < 0.7  # each border on its own: the art one cell off


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sprite_on_a_drifting_bending_grid_comes_back(seed):
    """A grid whose cell size drifts 6 % across the image and whose lines bend by a third of
    a cell, as diffusion output draws it, with four flat cells around the art: the snap
    finds the size and every cell's colour."""
    from orchestrator import samples

    canvas = np.zeros((24, 24, 4), np.uint8)
    canvas[4:20, 4:20] = samples.sprites()["slime"]
    d = samples.degrade(canvas, cell=12.0, jitter=0.9, seed=seed, background=(60, 70, 90), blur=1.0, noise=3.0,
                        jpeg_quality=85, pad=0, drift=0.06, bend=0.35)
    res = G.snap(d.image)
    truth = canvas.copy()
    truth[truth[..., 3] == 0, :3] = (60, 70, 90)
    assert res.image.shape[:2] == (24, 24)
    assert np.abs(res.image[..., :3].astype(int) - truth[..., :3].astype(int)).max() <= 24


def _drifting_sprite_with_cut_borders(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 26x24 sprite at a random place on a 40 px canvas, on a grid whose cells drift 4-8 %
    and bend by 0.3-0.5 cell, with one wide cell per axis and border cells cut or padded by up
    to 0.4 cell: the rendering and the canvas."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    canvas = np.zeros((40, 40, 4), np.uint8)
    oy, ox = int(rng.integers(0, 16)), int(rng.integers(0, 14))
    canvas[oy:oy + 24, ox:ox + 26] = make_sprite(26, 24, seed)
    cell = float(rng.uniform(8, 14))
    pad = tuple(int(v) for v in np.round(rng.uniform(-1, 1, 4) * 0.4 * cell))
    d = samples.degrade(canvas, cell=cell, jitter=0.9, seed=seed, background=(90, 120, 160), blur=0.9, noise=4.0,
                        jpeg_quality=88, pad=pad, drift=float(rng.uniform(0.04, 0.08)),
                        bend=float(rng.uniform(0.3, 0.5)), wide=1)
    return d.image, canvas


@pytest.mark.parametrize("seed", [2, 24, 38])
def test_margins_continue_the_cell_size_of_their_own_end(seed, monkeypatch):
    """Flat margins on a drifting, bending grid: continued at the whole image's cell size they
    came out a cell too wide or narrow (40x41, 39x40) or put the art a cell off; continued
    from the position and cell size of the lines at their own end, the sprite comes back."""
    img, canvas = _drifting_sprite_with_cut_borders(seed)
    opaque = canvas[..., 3] > 0

    def right(out):
        if out.shape != canvas.shape:
            return 0.0
        return float(np.mean(np.abs(out[..., :3].astype(int) - canvas[..., :3]).max(axis=-1)[opaque] <= 24))

    assert right(G.snap(img).image) >= 0.97
    monkeypatch.setattr(G, "END_MIN_LINES", 10 ** 6)  # every margin at the whole image's cell size
    monkeypatch.setattr(G, "SQUARE_COUNT_MARGIN", 10 ** 6)  # and no square count to set it right
    assert right(G.snap(img).image) < 0.5


@pytest.mark.parametrize("seed", [11, 19, 55, 117])
def test_flat_margins_take_the_square_count_when_one_axis_is_a_cell_off(seed, monkeypatch):
    """A square canvas on a drifting grid, the art in a corner: the wide flat margins continued
    at the art's cell size came out a cell more or fewer on one axis (39x40, 41x40, 40x41);
    re-divided to the other axis's count, a multiple of 8, the sprite comes back."""
    img, canvas = _drifting_sprite_with_cut_borders(seed)
    opaque = canvas[..., 3] > 0
    out = G.snap(img).image
    assert out.shape == canvas.shape
    assert np.mean(np.abs(out[..., :3].astype(int) - canvas[..., :3]).max(axis=-1)[opaque] <= 24) >= 0.97
    monkeypatch.setattr(G, "SQUARE_COUNT_MARGIN", 10 ** 6)
    old = G.snap(img).image
    assert old.shape != canvas.shape and abs(old.shape[0] - old.shape[1]) == 1


def _axis_with_margins(left: int, art: int, right: int, margin_cell: float = 12.0,
                       art_cell: float = 12.0) -> tuple[G._Axis, np.ndarray, int]:
    """An axis of ``art`` cells of ``art_cell`` px whose lines lie on edges, between flat margins
    of ``left`` and ``right`` cells of ``margin_cell`` px: the axis, its edge profile and length."""
    lines = np.concatenate([margin_cell * np.arange(left + 1), left * margin_cell + art_cell * np.arange(1, art + 1),
                            left * margin_cell + art * art_cell + margin_cell * np.arange(1, right + 1)])
    length = int(round(lines[-1]))
    prof = np.zeros(length)
    prof[np.minimum(lines[left:left + art + 1].astype(int), length - 1)] = 1.0
    return G._Axis(lines=lines, period=art_cell, confidence=1.0), prof, length


def test_square_counts_re_divide_only_the_flat_margins_of_the_odd_axis():
    """47 x 48 cells of 12 px, the art's lines on edges in the middle: x's 25 flat margin cells
    become 26 (its 47 -> 48) and the art's lines stay where they were; y is untouched."""
    ax, sx, w = _axis_with_margins(15, 22, 10)
    ay, sy, h = _axis_with_margins(10, 30, 8)
    nx, ny = G._square_counts(ax, sx, w, ay, sy, h)
    assert len(nx.lines) - 1 == 48 and ny is ay
    art = np.asarray(ax.lines[15:38])
    assert any(np.array_equal(np.asarray(nx.lines[i:i + 23]), art) for i in range(27))
    assert nx.lines[0] == 0.0 and nx.lines[-1] == w and np.all(np.diff(nx.lines) > 0)


@pytest.mark.parametrize("case", ["square", "two_apart", "neither_multiple", "narrow_margins", "off_size", "no_prior"])
def test_square_counts_leave_axes_that_are_not_one_flat_cell_apart(case, monkeypatch):
    """Counts are made equal only where the doubt lies in wide flat margins of square-ish cells,
    one count a multiple of 8 and the other one off it, and the margins' cells stay near the
    art's size; otherwise both axes come back as they were."""
    x = {"square": (15, 22, 10), "two_apart": (15, 21, 10), "neither_multiple": (15, 20, 10),
         # 7 flat cells of 13 px: 8 of 11.4 px would fit the art's 12 px, but 7 are too few to
         # say their count is in doubt
         "narrow_margins": (3, 40, 4, 13.0, 12.0),
         # 20 flat cells of 12 px around art of 11 px: 19 of them would be 15 % larger than the art's
         "off_size": (10, 21, 10, 12.0, 11.0), "no_prior": (15, 22, 10)}[case]
    y = {"square": (10, 30, 8, 15.0, 15.0), "neither_multiple": (10, 28, 8), "off_size": (10, 22, 8)}.get(case, (10, 30, 8))
    ax, sx, w = _axis_with_margins(*x)
    ay, sy, h = _axis_with_margins(*y)
    if case == "no_prior":
        monkeypatch.setattr(G, "SIZE_PRIOR_MULTIPLE", 0)
    nx, ny = G._square_counts(ax, sx, w, ay, sy, h)
    assert nx is ax and ny is ay


def test_end_slope_is_the_local_cell_size_within_its_bounds():
    """The cell size at one end is the slope of its own lines (drift), unless that is more
    than END_SLOPE_MAX off the whole image's (a misnumbered line) or rests on too few lines."""
    k = np.arange(12, dtype=np.float64)
    assert G._end_slope(k, 100.0 + 10.3 * k, 10.0) == pytest.approx(10.3)
    assert G._end_slope(k, 100.0 + 11.0 * k, 10.0) == 10.0
    assert G._end_slope(k[:G.END_MIN_LINES - 1], 10.3 * k[:G.END_MIN_LINES - 1], 10.0) == 10.0


def test_near_tie_in_a_short_axis_spectrum_goes_to_the_square_cell():
    """A short axis's spectrum can peak 7 % off its true period with a bump nearly as high at
    the other axis's period: the tie goes to the square cell. A clearly stronger peak keeps
    its own period (cells a few percent non-square stay so)."""
    x = np.arange(224, dtype=np.float64)

    def profile(off_amp: float, square_amp: float) -> np.ndarray:
        return 3.0 + off_amp * np.cos(2 * np.pi * x / 6.38) + square_amp * np.cos(2 * np.pi * x / 6.9)

    tie = G._nearly_square(profile(1.0, 0.93), (6.38, 0.45), 6.84)
    assert tie[0] == pytest.approx(6.9, abs=0.08) and tie[1] == 0.45
    assert G._nearly_square(profile(1.0, 0.6), (6.38, 0.45), 6.84) == (6.38, 0.45)
    assert G._nearly_square(profile(1.0, 0.93), (6.8, 0.45), 6.84) == (6.8, 0.45)  # already square


@pytest.mark.skipif(not (SHARED_CASES / "pyxel-jump_sky_strip-hard").is_dir(), reason="../shared benchmark cases not present")
def test_sky_strip_rows_counted_on_the_square_cell(monkeypatch):
    """A 128 x 32 sky strip on 6.84 x 6.90 px cells with +-2 px jitter: the 32 rows' spectrum
    peaks at 6.38 px (34 rows); its bump at the columns' period is 81 % as high and is the
    cell. Without the tie-break the rows come out 34."""
    from comfy_nodes.pixel.imageio import load_image

    img = load_image(SHARED_CASES / "pyxel-jump_sky_strip-hard" / "input.png")
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (128, 32)
    monkeypatch.setattr(G, "SQUARE_TIE", 2.0)
    assert G.detect_grid(img).rows != 32


def test_whole_cell_slip_of_the_line_numbering_is_undone():
    """A cell drawn 11 px wide on a 7 px lattice is a 1.6-period stretch that the DP counts
    as two cells: every line after it is numbered one too high, one whole period off the
    spectral lattice. The slip is undone (one cell fewer across that stretch) and no line
    on an edge moves; a lattice whose period is merely off (a ramp, not a step) is left."""
    rng = np.random.default_rng(4)
    p = 7.0
    truth = p * np.arange(40) + 3.0 + rng.uniform(-1.0, 1.0, 40)
    truth[19], truth[20] = 3.0 + 19 * p - 2.0, 3.0 + 20 * p + 2.0  # the jitter draws cell 19 11 px wide
    drawn = np.concatenate([truth[:20], [truth[19] + 5.5], truth[20:]])
    support = np.ones(len(drawn), bool)
    support[20] = False
    lines, keep = G._fix_slips(drawn, support, p)
    assert len(lines) == len(truth)
    assert np.array_equal(lines[keep], drawn[support])

    ramp = 7.15 * np.arange(40) + 3.0 + rng.uniform(-1.0, 1.0, 40)
    same, _ = G._fix_slips(ramp, np.ones(40, bool), p)
    assert np.array_equal(same, ramp)


@pytest.mark.parametrize("seed", [18, 40, 49])
def test_texture_strip_slip_against_the_spectrum_is_counted_right(seed, monkeypatch):
    """Colour runs on +-2 px jittered 7 px cells: one stretch between lines on edges is
    miscounted by a whole cell; the spectral lattice, sure over a hundred columns, finds the
    slip and the strip comes back its true width (a column off without the check)."""
    img, w, h = _texture_strip(seed)
    assert (G.snap(img).width, G.snap(img).height) == (w, h)
    monkeypatch.setattr(G, "SLIP_ROUNDS", 0)
    assert G.snap(img).width != w


def _small_jittered_sprite(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 16 px sample sprite in 0-7 flat cells a side, on 7-10 px cells (up to 4 % non-square)
    with +-2 px jitter, blur, noise and JPEG: (image, true canvas)."""
    from orchestrator import samples

    sprites = samples.sprites()
    rng = np.random.default_rng(seed)
    sprite = sprites[list(sprites)[seed % 4]]
    m = [int(v) for v in rng.integers(0, 8, 4)]
    canvas = np.zeros((16 + m[2] + m[3], 16 + m[0] + m[1], 4), np.uint8)
    canvas[m[2]:m[2] + 16, m[0]:m[0] + 16] = sprite
    cell = float(rng.uniform(7, 10))
    d = samples.degrade(canvas, cell=cell, cell_h=cell * float(rng.uniform(0.96, 1.04)), jitter=2.0, seed=seed,
                        background=(120, 90, 60), blur=1.1, noise=3.5, jpeg_quality=72, pad=0)
    return d.image, canvas


@pytest.mark.parametrize("seed", [95, 271, 297])
def test_axis_off_the_square_cell_is_read_again_from_the_other_axis(seed, monkeypatch):
    """On small jittered sprites one axis can follow a content period or a split cell (8 px
    cells read as 6 or 10 px) while the other is right: periods more than 10 % apart. That
    axis is read again from the other's period, and the reading is kept because one colour
    per cell fits it better. Without the retry the size is wrong."""
    img, canvas = _small_jittered_sprite(seed)
    monkeypatch.setattr(G, "SIZE_PRIOR_MULTIPLE", 0)
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (canvas.shape[1], canvas.shape[0])
    assert max(grid.cell_w, grid.cell_h) / min(grid.cell_w, grid.cell_h) < 1.06
    monkeypatch.setattr(G, "RETRY_ROUNDS", 0)
    assert (G.detect_grid(img).cols, G.detect_grid(img).rows) != (canvas.shape[1], canvas.shape[0])


def _taller_cells(name: str, seed: int) -> np.ndarray:
    """The sample sprite ``name`` on a 22 x 22 canvas, drawn on cells 15 % taller than wide."""
    from orchestrator import samples

    canvas = np.zeros((22, 22, 4), np.uint8)
    canvas[3:19, 3:19] = samples.sprites()[name]
    return samples.degrade(canvas, cell=10.0, cell_h=11.5, jitter=1.0, seed=seed, background=(60, 70, 90), blur=0.9,
                           noise=3.0, jpeg_quality=85, pad=0).image


def _rows_read_at_the_columns_period(monkeypatch) -> list[int]:
    """Each square retry's count of rows read at the columns' period, as the retries run."""
    reread = []
    retry = G._square_retry

    def spy(frames, size, ax, ay, reads_x, reads_y):
        reread.append(len(reads_y[0](ax.period).lines) - 1)
        return retry(frames, size, ax, ay, reads_x, reads_y)

    monkeypatch.setattr(G, "_square_retry", spy)
    return reread


@pytest.mark.parametrize(("name", "seed"), [("knight", 12), ("coin", 1)])
def test_cells_that_really_are_not_square_keep_their_shape(name, seed, monkeypatch):
    """Cells 15 % taller than wide: read again from the columns' period the rows come out
    21-27, and one colour per cell fits those worse, so the retry keeps the cells as drawn.
    (The rows' lines then fit their own period, 15 % off the one searched at, and a second
    search at theirs already gives 22: the retry is shown with that search off.)"""
    img = _taller_cells(name, seed)
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (22, 22) and grid.cell_h / grid.cell_w > 1.1
    monkeypatch.setattr(G, "REFOLLOW", 10.0)
    reread = _rows_read_at_the_columns_period(monkeypatch)
    grid = G.detect_grid(img)
    assert reread and reread[0] != 22
    assert (grid.cols, grid.rows) == (22, 22)
    assert grid.cell_h / grid.cell_w > 1.1


def test_rows_searched_at_a_period_their_lines_do_not_fit_are_searched_again_at_theirs(monkeypatch):
    """A coin on cells 15 % taller than wide, its rows searched at the columns' 10 px (as the
    square retry reads them): their lines on edges fit 11.5 px, so the rows are searched once
    more at that and all 22 come back; with no second search they come out 21-27."""
    img = _taller_cells("coin", 1)
    reread = _rows_read_at_the_columns_period(monkeypatch)
    G.detect_grid(img)
    monkeypatch.setattr(G, "REFOLLOW", 10.0)
    G.detect_grid(img)
    assert len(reread) == 2 and reread[0] == 22 and reread[1] != 22


def test_lines_on_edges_move_to_the_crest_within_reach_and_short_of_half_way():
    """Only lines on an edge move, each to the highest point of the profile within reach,
    never past half way to a neighbour; the count of lines never changes."""
    pos = np.arange(60, dtype=np.float64)
    profile = sum(np.exp(-0.5 * ((pos - c) / 0.8) ** 2) for c in (10.0, 20.0, 31.0, 44.0))
    lines = np.array([0.0, 9.0, 21.0, 30.0, 40.0, 50.0, 59.0])
    out = G._on_edge_crests(lines, profile, 10.0, reach=0.2)
    # 9 -> 10, 21 -> 20, 30 -> 31 (crests within 2 px); 40 holds no edge (the crest at 44 is
    # beyond reach), 50 sits on flat profile
    assert out == pytest.approx([0.0, 10.0, 20.0, 31.0, 40.0, 50.0, 59.0], abs=0.02)
    # between pixels: a crest at 24.3 is found at 24.3, not rounded to 24
    skewed = np.exp(-0.5 * ((pos - 24.3) / 1.2) ** 2)
    assert G._on_edge_crests(np.array([0.0, 12.0, 23.0, 36.0]), skewed, 12.0)[2] == pytest.approx(24.3, abs=0.1)
    assert len(out) == len(lines)
    # a line stops a pixel short of half way to its neighbour, however wide the reach: two
    # lines near one broad edge stay two lines, the second sliding only to 12
    broad = np.exp(-0.5 * ((pos - 10.0) / 2.0) ** 2) + np.exp(-0.5 * ((pos - 30.0) / 2.0) ** 2)
    assert G._on_edge_crests(np.array([0.0, 9.0, 13.0, 30.0]), broad, 10.0, reach=0.5) == pytest.approx(
        [0.0, 10.0, 12.0, 30.0], abs=0.02)


def test_jittered_texture_lines_sit_on_their_edges_and_read_more_colours(monkeypatch):
    """Colour runs on 6.8 px cells with +-2 px jitter: the line search leaves the lines on
    colour changes about half a pixel off their edges, which on cells this small moves the
    sampled interior into the blur. On the edges' crests they are within a third of a pixel,
    and more cells read their true colour."""
    from orchestrator import samples

    def run():
        errors, hits = [], 0
        for seed in range(6):
            rng = np.random.default_rng(seed)
            art = np.zeros((16, 48, 4), np.uint8)
            art[..., :3] = samples.colour_runs(rng, 48, 16)
            art[..., 3] = 255
            d = samples.degrade(art, cell=6.8, jitter=2.0, seed=seed, blur=1.1, noise=3.0, jpeg_quality=85, pad=0)
            res = G.snap(d.image)
            assert (res.grid.cols, res.grid.rows) == (48, 16)
            change = (art[:, 1:, :3] != art[:, :-1, :3]).any(axis=(0, 2))
            errors.append(np.abs(res.grid.x_lines[1:-1] - d.x_lines[1:-1])[change].mean())
            hits += int((np.abs(res.image[..., :3].astype(int) - art[..., :3]).max(axis=-1) <= 24).sum())
        return np.array(errors), hits

    errors, hits = run()
    assert errors.max() < 0.3
    monkeypatch.setattr(G, "_on_edge_crests", lambda lines, profile, period: np.asarray(lines, dtype=np.float64))
    errors_dp, hits_dp = run()
    assert errors_dp.mean() > 0.4
    assert hits > hits_dp


def test_lines_numbered_wrong_between_detailed_blocks_are_off_any_lattice():
    """Edges on a jittered 10 px lattice in ten detailed blocks with flat stretches of 5-9
    cells between: numbered right, the lines on edges sit on one lattice (misfit = jitter,
    ~0.05 period). Read with a cell too few or too many across each flat stretch in turn,
    they are a large part of a cell off any smooth lattice; a single cell lost between two
    long blocks is mostly taken up by a drifting lattice. Flat lines carry no weight."""
    rng = np.random.default_rng(2)
    p = 10.0
    flats = [5, 9, 6, 8, 7, 5, 9, 6, 8]
    detailed, k = [0, 1, 2], 2
    for f in flats:
        k += f
        detailed += [k, k + 1, k + 2]
        k += 2
    edges = 5.0 + p * np.arange(k + 1) + rng.uniform(-1.0, 1.0, k + 1)
    pos = np.arange(int(edges[-1]) + 10, dtype=np.float64)
    profile = sum(np.exp(-0.5 * ((pos - edges[j]) / 0.8) ** 2) for j in detailed)
    assert G._lattice_misfit(edges, profile) < 0.1

    def read(counts: list[int]) -> np.ndarray:
        out, k = [], 0
        for f, m in zip(flats, counts):
            out += list(edges[k : k + 3])
            k += 2
            out += list(np.linspace(edges[k], edges[k + f], m + 1)[1:-1])
            k += f
        return np.array(out + list(edges[k : k + 3]))

    assert G._lattice_misfit(read(flats), profile) < 0.1
    assert G._lattice_misfit(read([f + (-1) ** i for i, f in enumerate(flats)]), profile) > 0.4
    assert G._lattice_misfit(read([f - (i == 4) for i, f in enumerate(flats)]), profile) < 0.4
    # too few lines on edges to tell
    assert np.isnan(G._lattice_misfit(edges, np.where(pos < 40, profile, 0.0)))


def test_near_peaks_lists_the_other_lattice_near_the_period():
    """Two lattices 8 % apart in one profile: from either period, the other is the peak that
    is listed; a lone lattice lists none."""
    pos = np.arange(720, dtype=np.float64)

    def comb(period: float) -> np.ndarray:
        return sum(np.exp(-0.5 * ((pos - c) / 0.8) ** 2) for c in np.arange(3.0, 717.0, period))

    both = comb(6.2) + 0.9 * comb(6.7)
    assert G._near_peaks(both, 6.7) == [pytest.approx(6.2, abs=0.05)]
    assert G._near_peaks(both, 6.2) == [pytest.approx(6.7, abs=0.05)]
    assert G._near_peaks(comb(6.2), 6.2) == []


@pytest.mark.skipif(not (SHARED_CASES / "pyxel-jump_mountains-hard").is_dir(), reason="../shared benchmark cases not present")
def test_mountain_strip_columns_read_on_the_peak_whose_lines_form_a_lattice(monkeypatch):
    """A 116 x 48 mountain strip on 6.2 px cells with +-2 px jitter: the columns' spectrum
    peaks at 6.7 px, where the lines still catch the ridges' edges but the flat stretches
    between them lose a cell here and there (104 columns, lines on edges 0.6 period off a
    lattice). Read again on the spectrum's peak at 6.2 px, its lines on edges form a lattice
    and the columns come out 116."""
    from comfy_nodes.pixel.imageio import load_image

    img = load_image(SHARED_CASES / "pyxel-jump_mountains-hard" / "input.png")
    grid = G.detect_grid(img)
    assert (grid.cols, grid.rows) == (116, 48)
    assert grid.cell_w == pytest.approx(6.2, abs=0.1)
    monkeypatch.setattr(G, "MISFIT_BAD", 10.0)
    assert G.detect_grid(img).cols != 116


@pytest.mark.skipif(not (SHARED_CASES / "pyxel-jump_mountains-hard").is_dir(), reason="../shared benchmark cases not present")
def test_rows_searched_at_a_period_their_lines_do_not_fit_are_searched_again(monkeypatch):
    """The mountain strip's rows are first searched at 7.29 px (steered towards a square
    7.7 px cell) while their lines on edges fit 6.52 px: 20 rows over the art's 22, the flat
    rows above made up the count of 48, and every row down to the art's lower third came out
    numbered one off. Searched again at 6.52 px, the rows' lines lie on the true ones."""
    from comfy_nodes.pixel.imageio import load_image

    case = SHARED_CASES / "pyxel-jump_mountains-hard"
    img = load_image(case / "input.png")
    true_rows = np.asarray(json.loads((case / "params.json").read_text())["grid_y"], dtype=np.float64)

    def rows_on_their_true_lines() -> float:
        found = np.asarray(G.detect_grid(img).y_lines)
        assert len(found) == len(true_rows)
        return float(np.mean(np.abs(found - true_rows) <= 3.0))

    assert rows_on_their_true_lines() >= 0.8
    monkeypatch.setattr(G, "REFOLLOW", 10.0)
    assert rows_on_their_true_lines() < 0.4


def test_flat_border_counts_the_cells_outside_the_lines_on_edges():
    """Lines 5-10 of a 20-cell axis sit on edges: 5 cells before them, 10 after; an axis with
    no edge at all is flat from both sides."""
    lines = np.arange(21) * 8.0
    profile = np.zeros(161)
    profile[40:81:8] = 10.0
    assert G._flat_border(lines, profile) == (5, 10)
    assert G._flat_border(lines, np.zeros(161)) == (20, 20)


TALL, WIDE = ((9.0, 13.5), (10.0, 20.0)), ((13.5, 9.0), (20.0, 10.0))


@pytest.mark.parametrize("name, cells", [(n, c) for n in ("knight", "potion", "slime") for c in TALL]
                         + [(n, c) for n in ("knight", "potion", "coin") for c in WIDE])
def test_non_square_cells_keep_their_shape(name, cells):
    """Art drawn with tall or wide pixels (or stretched to another aspect ratio): the axes'
    spectra disagree by 50-100 %, the weaker axis is first steered to the other's period (square
    cells that cut every row in two or miscount them), then read at its own, which explains the
    colours better and is kept."""
    from orchestrator import samples

    sprite = samples.sprites()[name]
    cw, ch = cells
    for seed in range(3):
        d = samples.degrade(sprite, cell=cw, cell_h=ch, jitter=0.9, seed=seed, blur=1.0, noise=3.0,
                            jpeg_quality=85, pad=0)
        res = G.snap(d.image)
        assert res.image.shape[:2] == (16, 16), (seed, res.grid)
        assert abs(res.grid.cell_h / res.grid.cell_w - ch / cw) < 0.1 * ch / cw
        truth = np.where(sprite[..., 3:] > 0, sprite[..., :3], np.array((214, 208, 196), np.uint8))
        close = np.abs(res.image[..., :3].astype(int) - truth.astype(int)).max(axis=-1) <= 24
        assert close.mean() >= 0.95, (seed, close.mean())


def _four_sprites(bg: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The four sample sprites on a 40x40 canvas: the canvas and its truth on ``bg``."""
    from orchestrator import samples

    canvas = np.zeros((40, 40, 4), np.uint8)
    for i, name in enumerate(["knight", "potion", "slime", "coin"]):
        y, x = 3 + 18 * (i // 2), 3 + 18 * (i % 2)
        canvas[y:y + 16, x:x + 16] = samples.sprites()[name]
    return canvas, np.where(canvas[..., 3:] > 0, canvas[..., :3], np.array(bg, np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 3, 4, 5])
def test_blur_is_taken_out_of_small_cells(seed, monkeypatch):
    """On 6.6 px cells with +-2 px jitter, a blur of 1.4 px reaches the middle of every cell and
    mixes the neighbours' colours into the samples; the blur is measured (within 0.3 px) and
    its share taken back out, so the colours come out right where plain medians miss."""
    from orchestrator import samples

    bg = (90, 140, 200)
    canvas, truth = _four_sprites(bg)
    d = samples.degrade(canvas, cell=6.6, jitter=2.0, seed=seed, background=bg, blur=1.4, noise=6.0,
                        jpeg_quality=75, pad=0)
    res = G.snap(d.image)
    assert res.image.shape[:2] == (40, 40)
    a = G._validate(d.image, "test")
    medians = C.sample_cells(a, res.grid, consolidate=False)[..., :3].astype(np.float64)
    sigma, _ = C._blur_sigma(a, res.grid, medians, np.zeros((40, 40), bool))
    assert abs(sigma - 1.4) <= 0.3

    def accuracy(img):
        return float((np.abs(img[..., :3].astype(int) - truth.astype(int)).max(axis=-1) <= 24).mean())

    acc = accuracy(res.image)
    monkeypatch.setattr(C, "DEBLUR_MAX_CELL", 0.0)
    plain = accuracy(G.snap(d.image, grid=res.grid).image)
    assert acc >= 0.95 and acc >= plain + 0.02, (acc, plain)


def test_clean_small_cells_are_not_deblurred():
    """An exact enlargement with no noise has nothing to take out: it round-trips exactly."""
    canvas, truth = _four_sprites((90, 140, 200))
    big = np.repeat(np.repeat(np.dstack([truth, np.full((40, 40), 255, np.uint8)]), 7, axis=0), 7, axis=1)
    assert np.array_equal(G.snap(big).image[..., :3], truth)


@pytest.mark.parametrize("cells, seed", [((16.0, 8.0), 2), ((16.0, 8.0), 3), ((14.0, 7.0), 2)])
def test_wide_cells_whose_ridge_period_was_traded_for_the_square_one(cells, seed):
    """Cells twice as wide as tall: the wide axis's full edge profile peaks at half its period
    (its second harmonic), which agrees with the other axis, and was taken over the ridge
    period; that axis is read again at its ridge period, which explains the colours better."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["potion"], cell=cells[0], cell_h=cells[1], jitter=0.9, seed=seed,
                        blur=1.0, noise=3.0, jpeg_quality=85, pad=0)
    res = G.snap(d.image)
    assert res.image.shape[:2] == (16, 16)
    assert abs(res.grid.cell_w / res.grid.cell_h - 2.0) < 0.2


@pytest.mark.parametrize("name, seed", [("coin", 139), ("knight", 380)])
def test_small_sprite_at_hard_settings_is_not_read_with_one_axis_several_cells_wide(name, seed, monkeypatch):
    """A small sprite on a 32 x 32 canvas, drawn at the hard level's settings (6-9 px cells,
    2 px jitter, blur, noise, a colour drift, JPEG): its few edges let one axis lock onto a
    period several cells long (32 x 4 and 17 x 32 cells, 2-9 times as long as wide). Read again
    at the other axis's period, the cells are far flatter (noise ratio under ``SQUARE_FLAT`` of
    the long cells'), which wins where cells that really are 1-2x non-square stay under 0.955."""
    from orchestrator import samples

    rng = np.random.default_rng(seed)
    sprite = samples.sprites()[name]
    canvas = np.zeros((32, 32, 4), np.uint8)
    y, x = int(rng.integers(0, 32 - sprite.shape[0] + 1)), int(rng.integers(0, 32 - sprite.shape[1] + 1))
    canvas[y:y + sprite.shape[0], x:x + sprite.shape[1]] = sprite
    cell = float(rng.uniform(6.3, 9.0))
    d = samples.degrade(canvas, cell=cell, cell_h=cell * float(rng.uniform(0.96, 1.04)), jitter=2, seed=seed,
                        background=tuple(int(v) for v in rng.integers(30, 230, 3)), blur=float(rng.uniform(1.0, 1.5)),
                        noise=float(rng.uniform(5, 8)), jpeg_quality=int(rng.integers(70, 81)),
                        pad=tuple(int(v) for v in np.round(rng.uniform(-1, 1, 4) * 0.45 * cell)),
                        colour_drift=float(rng.uniform(5, 9)), drift_field=0.6)
    res = G.snap(d.image)
    assert res.image.shape[:2] == (32, 32)
    opaque = canvas[..., 3] > 0
    diff = np.abs(res.image[..., :3].astype(int) - canvas[..., :3].astype(int)).max(-1)
    assert (diff[opaque] <= 24).mean() >= 0.95
    monkeypatch.setattr(G, "SQUARE_FLAT", 0.0)
    # that reading itself, not its refusal (too long, its art in too few cells across, or its
    # cells holding the art's detail)
    monkeypatch.setattr(G, "MAX_CELL_RATIO", float("inf"))
    monkeypatch.setattr(G, "MIN_GRID_CELLS", 0)
    monkeypatch.setattr(G, "DETAIL_MAX", 1.0)
    long_cells = G.detect_grid(d.image)
    assert max(long_cells.cell_w, long_cells.cell_h) > 1.5 * min(long_cells.cell_w, long_cells.cell_h)


@pytest.mark.parametrize("fill", ["stored", "black", "white"])
@pytest.mark.parametrize("seed", [0, 1, 3])
def test_blur_is_taken_out_of_small_cells_cut_out_of_their_background(fill, seed, monkeypatch):
    """The same sprites as a background remover hands them over: the outlines still carry the
    blurred background, but under alpha 0 it stored the background, black or white. The colour
    the transparent cells had when the image was blurred is fitted with the blur (within 30
    levels of the real background) and taken out of their neighbours with the rest."""
    from orchestrator import samples

    bg = (90, 140, 200)
    canvas, truth = _four_sprites(bg)
    d = samples.degrade(canvas, cell=6.6, jitter=2.0, seed=seed, background=bg, blur=1.4, noise=6.0,
                        jpeg_quality=75, pad=0)
    cut = samples.cut_out(d.image, bg, noise=6.0, fill=fill, seed=seed)
    res = G.snap(cut)
    assert res.image.shape[:2] == (40, 40)
    a = G._validate(cut, "test")
    medians = C.sample_cells(a, res.grid, consolidate=False)
    sigma, back = C._blur_sigma(a, res.grid, medians[..., :3].astype(np.float64), medians[..., 3] == 0)
    assert abs(sigma - 1.4) <= 0.3 and np.abs(back - np.array(bg)).max() <= 30, (sigma, back)
    sprite = canvas[..., 3] > 0

    def accuracy(img):
        close = (np.abs(img[..., :3].astype(int) - truth.astype(int)).max(axis=-1) <= 24) & (img[..., 3] > 0)
        return float(close[sprite].mean())

    acc = accuracy(res.image)
    monkeypatch.setattr(C, "DEBLUR_MAX_CELL", 0.0)
    plain = accuracy(G.snap(cut, grid=res.grid).image)
    assert acc >= 0.94 and acc >= plain + 0.05, (acc, plain)


def test_one_side_of_the_size_given_keeps_the_cells_square():
    """--width alone sets the cell height too (pixel art's cells are square): 48 columns over
    art drawn at 12 px cells give 48x40 at 6 px, not 48x20 (the automatic rows, every art
    pixel drawn 2:1). --height alone alike; both given, each side is its own."""
    sprite = make_sprite(24, 20, 5)
    img, _, _ = render(sprite, 12.0, 12.0, blur=0.5, noise=2.0, seed=5)
    h, w = img.shape[:2]
    g = G.detect_grid(img, width=48)
    assert (g.cols, g.rows) == (48, 40) and g.cell_h == pytest.approx(w / 48, rel=0.04)
    g = G.detect_grid(img, height=40)
    assert (g.cols, g.rows) == (48, 40)
    g = G.detect_grid(img, width=48, height=20)
    assert (g.cols, g.rows) == (48, 20)


def test_a_cell_size_given_is_honoured_not_walked_away_from():
    """--cell is the user's say: the edges place the lines, but do not move the period to the
    art's own (a cell of 12 on art drawn at 9.5 came back at 9.5, the size unchanged)."""
    sprite = make_sprite(24, 20, 5)
    img, _, _ = render(sprite, 9.5, 9.5, blur=0.5, noise=2.0, seed=5)
    h, w = img.shape[:2]
    for cell in (12.0, 16.0):
        g = G.detect_grid(img, cell=cell)
        assert g.cell_w == cell and g.cell_h == cell
        assert abs(g.cols - w / cell) <= 1 and abs(g.rows - h / cell) <= 1
    # the art's own size, given, still gives the sprite back
    res = G.snap(img, cell=9.5)
    assert (res.width, res.height) == (24, 20) and accuracy(res.image, sprite) >= 0.97
    # a size a few per cent off is refined by the edges (a drawn grid's jitter)
    assert (G.detect_grid(img, cell=9.6).cols, G.detect_grid(img, cell=9.6).rows) == (24, 20)


@pytest.mark.parametrize("w, h", [(40, 2), (8, 2), (8, 1), (1, 8), (2, 8)])
def test_an_enlarged_sprite_one_or_two_pixels_across_is_reduced_exactly(w, h):
    """A health bar or a strip: its short side changes colour once or never, so only the long
    side measures the blocks (it was refused as having no regular edges, or left unreduced)."""
    rng = np.random.default_rng(w * 10 + h)
    sprite = PALETTE[rng.integers(0, len(PALETTE), size=(h, w))]
    sprite[..., 0] = np.arange(w)[None, :] * 13 % 256  # neighbours along the long side differ
    sprite[..., 1] = np.arange(h)[:, None] * 90 % 256
    big = np.repeat(np.repeat(sprite, 10, axis=0), 10, axis=1)
    res = G.snap(big)
    assert (res.width, res.height) == (w, h) and np.array_equal(res.image[..., :3], sprite[..., :3])


def test_a_sprite_drawn_wholly_half_transparent_keeps_its_shape():
    """Alpha is binarised at 128; a ghost drawn at alpha 110 throughout came back as an empty
    image. With nothing at 128 or above, half the highest alpha is the cut."""
    sprite = np.zeros((20, 24, 4), np.uint8)
    sprite[4:16, 5:19, :3] = make_sprite(14, 12, 2)[..., :3]
    sprite[4:16, 5:19, 3] = 110
    big = np.repeat(np.repeat(sprite, 9, axis=0), 9, axis=1)
    res = G.snap(big)
    assert (res.width, res.height) == (24, 20)
    assert np.array_equal(res.image[..., 3] == 255, sprite[..., 3] > 0) and set(np.unique(res.image[..., 3])) == {0, 255}
    assert np.array_equal(res.image[4:16, 5:19, :3], sprite[4:16, 5:19, :3])


def test_a_jpeg_stored_sideways_with_an_exif_turn_is_read_as_shown(tmp_path):
    from PIL import Image

    from comfy_nodes.pixel.imageio import load_image

    sprite = make_sprite(20, 12, 4)
    big = np.repeat(np.repeat(sprite, 10, axis=0), 10, axis=1)[..., :3]
    stored = np.rot90(big, k=1)  # stored turned; orientation 6 says "turn 90 clockwise to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "side.jpg", quality=95, exif=exif)
    shown = load_image(tmp_path / "side.jpg")
    assert shown.shape[:2] == big.shape[:2]
    res = G.snap(shown)
    assert (res.width, res.height) == (20, 12) and accuracy(res.image, sprite) >= 0.97


@pytest.mark.parametrize("cw, ch", [(7.3, 11.1), (11.1, 7.3), (9.3, 13.95), (9.3, 15.81)])
def test_a_clean_enlargement_with_non_square_cells_keeps_its_size(cw, ch):
    """Noise-free: the true cells are perfectly flat, so a finer square reading cannot be
    flatter; it used to pass as 'no less flat' and split every row (32 x 32 came back 41 x 64)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:32, :32]
    blob = ((xx - 15.5) / 13.4) ** 2 + ((yy - 15.5) / 13.4) ** 2 < 1  # a round sprite on transparency
    sprite = np.zeros((32, 32, 4), np.uint8)
    sprite[blob, :3] = PALETTE[rng.integers(0, len(PALETTE), size=(32, 32))][blob]
    sprite[blob, 3] = 255
    h, w = int(round(32 * ch)), int(round(32 * cw))
    ys = np.floor((np.arange(h) + 0.5) / ch).astype(int).clip(0, 31)
    xs = np.floor((np.arange(w) + 0.5) / cw).astype(int).clip(0, 31)
    res = G.snap(sprite[ys][:, xs])
    assert (res.width, res.height) == (32, 32) and np.array_equal(res.image, sprite)


def test_frames_drawn_out_of_phase_come_back_at_their_size_not_doubled():
    """Frames a model drew one by one sit on lattices half a cell apart; summed, their edges
    read as one lattice of half the cell, and every frame came back at double resolution."""
    frames, sprites = [], []
    for i, (ox, oy) in enumerate(((5, 5), (10, 10), (5, 5))):
        sprite = np.zeros((20, 24, 4), np.uint8)
        sprite[1:19, 1:23, :3] = make_sprite(22, 18, 30 + i)[..., :3]
        sprite[1:19, 1:23, 3] = 255
        ys = np.floor((np.arange(190) + 0.5) / 9.5).astype(int)
        xs = np.floor((np.arange(228) + 0.5) / 9.5).astype(int)
        canvas = np.zeros((210, 240, 4), np.uint8)
        canvas[oy:oy + 190, ox:ox + 228] = sprite[ys][:, xs]
        frames.append(canvas)
        sprites.append(sprite)
    results = G.snap_batch(frames)
    assert {(r.width, r.height) for r in results} == {(results[0].width, results[0].height)}
    assert abs(results[0].grid.cell_w - 9.5) < 0.3 and abs(results[0].width - 25) <= 1
    for r, (ox, oy), sprite in zip(results, ((5, 5), (10, 10), (5, 5)), sprites):
        # each frame's sprite is there at its size (a cut border cell may add a row or column)
        assert abs(int((r.image[..., 3] > 0).sum()) - int((sprite[..., 3] > 0).sum())) <= 24
    in_phase = [frames[0], frames[2], frames[0]]
    grids = G.frame_grids(in_phase)
    assert grids[0] is grids[1] is grids[2]


def test_shared_frame_colours_gives_a_colour_one_value_over_the_frames():
    """A colour read a level or two apart in each frame becomes one colour; two near colours of
    one frame stay two; a colour no other frame has keeps its value; alpha is untouched."""
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 3] = 255
    a[:2, :, :3] = (177, 62, 83)
    a[2:, :, :3] = (26, 28, 44)
    a[3, 3] = (30, 30, 30, 0)  # transparent: left as it is
    b = a.copy()
    b[:2, :, :3] = (175, 61, 84)
    b[2:, :3, :3] = (25, 27, 43)
    b[2:, 3, :3] = (24, 29, 45)  # near the outline too, but in the same frame as its other reading
    b[3, 3] = (30, 30, 30, 0)
    c = a.copy()
    c[0, 0, :3] = (0, 120, 255)  # a colour of this frame only
    orig = [f.copy() for f in (a, b, c)]
    from comfy_nodes.pixel.cells import shared_frame_colours

    out = shared_frame_colours([a, b, c])
    for f, o in zip((a, b, c), orig):
        np.testing.assert_array_equal(f, o)  # inputs untouched
    red = {tuple(o[1, 1, :3]) for o in out}
    assert len(red) == 1 and max(abs(int(x) - y) for x, y in zip(red.pop(), (176, 61, 83))) <= 1
    assert len({tuple(o[2, 0, :3]) for o in out}) == 1
    assert tuple(out[1][2, 3, :3]) != tuple(out[1][2, 0, :3])
    assert tuple(out[2][0, 0]) == (0, 120, 255, 255)
    for o in out:
        assert tuple(o[3, 3]) == (30, 30, 30, 0)
        assert (o[..., 3] == a[..., 3]).all()
    assert [o.shape for o in shared_frame_colours([a, np.zeros((2, 3, 4), np.uint8)])] == [(4, 4, 4), (2, 3, 4)]
    with pytest.raises(InvalidArgumentError, match="tolerance"):
        shared_frame_colours([a, b], tolerance=-1)


def test_shared_frame_colours_leaves_frames_of_unrelated_colours_alone(monkeypatch):
    """Frames whose colours stay apart in more groups than MAX_SHARED_GROUPS have no palette to
    share (and would cost a large matrix): they come back as they are, near colours included."""
    from comfy_nodes.pixel import cells

    rng = np.random.default_rng(4)
    frames = []
    for i in range(3):
        f = np.zeros((2, 5, 4), np.uint8)
        f[..., 3] = 255
        f[0, :, :3] = rng.integers(0, 256, (5, 3))
        f[1, :, :3] = np.clip(f[0, :, :3].astype(int) + 1, 0, 255)  # a level off: would merge across frames
        frames.append(f)
    frames[1][0, :, :3] = np.clip(frames[0][0, :, :3].astype(int) + 2, 0, 255)  # frame 0's colours, 2 levels off
    monkeypatch.setattr(cells, "MAX_SHARED_GROUPS", 12)
    out = cells.shared_frame_colours(frames)
    assert all(np.array_equal(o, f) for o, f in zip(out, frames)) and all(o is not f for o, f in zip(out, frames))
    monkeypatch.setattr(cells, "MAX_SHARED_GROUPS", 8192)
    out = cells.shared_frame_colours(frames)
    assert not all(np.array_equal(o, f) for o, f in zip(out, frames))


def _grey_frame(levels_counts: list[tuple[int, int]]) -> np.ndarray:
    """One row of opaque greys: (level, how many pixels) each."""
    vals = np.concatenate([np.full(n, v, np.uint8) for v, n in levels_counts])
    f = np.zeros((1, len(vals), 4), np.uint8)
    f[0, :, :3] = vals[:, None]
    f[0, :, 3] = 255
    return f


def test_shared_frame_colours_never_makes_two_colours_of_a_frame_one():
    """Groups are running means: two of them can drift onto one value. A frame's two colours
    that would meet there keep their own values."""
    from comfy_nodes.pixel.cells import shared_frame_colours

    frames = [_grey_frame([(100, 1), (104, 1)]), _grey_frame([(104, 50), (106, 50)]),
              _grey_frame([(104, 50), (103, 50)])]
    for o in shared_frame_colours(frames):
        assert len(np.unique(o[0, :, 0])) == 2, o[0, :, 0]


def test_near_blacks_that_oklab_spreads_apart_are_merged_by_ciede2000():
    """OKLab's cube root puts (0,0,0), (0,0,2), (1,2,0) and (2,0,0) several clustering radii
    apart, though no eye tells them apart (CIEDE2000 under 1); a dark blue 6 away stays."""
    from comfy_nodes.pixel.cells import NOISY_SAME_COLOUR_DE00, merge_near_duplicates

    cells = np.array([[[1, 2, 0]] * 5 + [[0, 0, 0], [0, 0, 2], [2, 0, 0], [22, 20, 40], [22, 20, 40]]], float)
    mask = np.ones(cells.shape[:2], bool)
    assert merge_near_duplicates(cells, mask) is cells  # OKLab: nothing is that close
    out = merge_near_duplicates(cells, mask, de00=NOISY_SAME_COLOUR_DE00)
    assert out[0, :8].tolist() == [[1, 2, 0]] * 8
    assert out[0, 8:].tolist() == [[22, 20, 40]] * 2


@pytest.mark.parametrize("de00", [None, 2.5, 6.0])
def test_close_colour_pairs_are_all_found_through_the_lightness_window(de00):
    """Only colours within reach in lightness are compared; every pair a full comparison finds
    under the limit must still be found (dark, saturated and grey colours alike)."""
    from comfy_nodes.pixel.cells import SAME_COLOUR, _close_pairs
    from comfy_nodes.pixel.color import ciede2000, srgb_to_cielab, srgb_to_oklab

    rng = np.random.default_rng(7)
    cols = np.concatenate([rng.integers(0, 256, (300, 3)), rng.integers(0, 12, (100, 3)),
                           np.repeat(rng.integers(0, 256, (60, 1)), 3, axis=1)]).astype(np.uint8)
    cols = np.unique(cols, axis=0)
    if de00 is None:
        lab = srgb_to_oklab(cols / 255.0)
        full = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1))
        limit = SAME_COLOUR * 4
    else:
        lab = srgb_to_cielab(cols)
        full = ciede2000(lab[:, None], lab[None])
        limit = de00
    want = {(i, j) for i, j in zip(*np.nonzero(full < limit)) if i != j}
    near = _close_pairs(cols, limit if de00 is None else SAME_COLOUR, de00)
    got = {(i, j) for i, lst in enumerate(near) for j, _ in lst}
    assert len(want) > 20 and got == want


@pytest.mark.parametrize("de00", [None, 2.5])
@pytest.mark.parametrize("spread", ["cluster", "scattered"])
def test_colour_leaders_are_the_same_from_close_pairs_and_from_leaders(de00, spread, monkeypatch):
    """Near-duplicate colours are merged into leaders taken most common first, found either
    from every close pair (scattered colours) or by comparing each colour with the leaders
    only (a dense cluster of noisy shades, where listing the pairs took seconds): the two
    ways must choose the same leaders."""
    rng = np.random.default_rng(5)
    if spread == "cluster":
        centres = rng.integers(20, 236, (4, 3))
        cols = centres[rng.integers(0, 4, 2500)] + rng.normal(0.0, 2.5, (2500, 3))
    else:
        cols = rng.integers(0, 256, (1500, 3))
    cols = np.unique(np.clip(np.round(cols), 0, 255).astype(np.uint8), axis=0)
    counts = rng.integers(1, 50, len(cols))
    tol = C.SAME_COLOUR
    want = C._leaders_from_pairs(C._close_pairs(cols, tol, de00), counts)
    for few in (True, False):
        monkeypatch.setattr(C, "_close_pairs_are_few", lambda *a, few=few: few)
        got = C._leaders(cols, counts, tol, de00)
        assert np.array_equal(got, want), (few, int((got != want).sum()))
    merged = int((want != np.arange(len(cols))).sum())
    assert merged > (len(cols) // 2 if spread == "cluster" else 0)


def test_a_true_black_comes_back_as_one_colour_from_noisy_cells():
    """A 16x16 sprite of black, grey, orange and skin, degraded by the project's degrader (seed
    1): the black came back as four shades, (0,0,0) and tints a level or two off it."""
    from orchestrator import samples

    rng = np.random.default_rng(1)
    pal = np.array([[0, 0, 0], [163, 163, 163], [211, 132, 65], [237, 199, 176]], np.uint8)
    idx = rng.integers(0, 4, (16, 16))
    sprite = np.dstack([pal[idx], np.full((16, 16), 255, np.uint8)])
    d = samples.degrade(sprite, cell=9.0, seed=1, noise=6.0, blur=1.0, jpeg_quality=80, colour_drift=4.0)
    out = G.snap(d.image).image
    assert out.shape == (16, 16, 4)
    blacks = np.unique(out[..., :3][idx == 0], axis=0)
    assert len(blacks) == 1 and blacks.max() <= 4, blacks


def test_a_frame_that_is_no_pixel_art_on_the_shared_grid_is_named():
    """The frames of a batch decide the grid together; a frame of noise among them used to come
    back as noise on that grid without a word. Its result now says why; the drawn frames, a
    blank frame and whole-pixel blocks raise nothing."""
    from support.animation import drawn_walk_frames

    _, frames = drawn_walk_frames()
    blank = np.full_like(frames[0], 200)
    noise = np.random.default_rng(3).integers(0, 256, frames[0].shape).astype(np.uint8)
    res = G.snap_batch(frames + [blank, noise])
    assert [r.off_grid for r in res[:5]] == [None] * 5
    assert res[5].off_grid == "its colours do not change at the lines of its grid"
    assert res[5].image.shape == res[0].image.shape  # still snapped, as the others
    sprite = np.random.default_rng(4).integers(0, 256, (12, 12, 3)).astype(np.uint8)
    blocks = [np.kron(np.roll(sprite, k, axis=0), np.ones((6, 6, 1), np.uint8)) for k in range(3)]
    assert [r.off_grid for r in G.snap_batch(blocks)] == [None] * 3


def test_colours_pair_with_groups_nearest_first_each_once():
    """The matching in rounds is the walk down the pairs, nearest first, taking each pair whose
    colour and group are both still free, on crowded random pairs with ties."""
    from comfy_nodes.pixel.cells import _greedy_pairs

    rng = np.random.default_rng(3)
    for _ in range(200):
        nc, ng = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        ok = rng.random((nc, ng)) < rng.uniform(0.05, 0.9)
        d = rng.integers(0, 6, (nc, ng)).astype(float)  # few values: many ties
        ci, ki = np.nonzero(ok)
        order = np.argsort(d[ci, ki], kind="stable")
        ci, ki = ci[order], ki[order]
        want = np.full(nc, -1)
        taken = set()
        for c, k in zip(ci.tolist(), ki.tolist()):
            if want[c] < 0 and k not in taken:
                want[c] = k
                taken.add(k)
        got = np.full(nc, -1)
        _greedy_pairs(ci, ki, got, ng)
        assert got.tolist() == want.tolist()


def test_shared_frame_colours_moves_no_colour_further_than_the_tolerance():
    """A slow fade (2 levels a frame over 40 frames) is held in steps, each group at most a
    tolerance wide (every colour within it of the group's first), so no colour moves much
    more than half a tolerance (running means alone let a group chain on: 0.032 moved)."""
    from comfy_nodes.pixel.cells import SHARED_COLOUR_TOLERANCE, shared_frame_colours
    from comfy_nodes.pixel.color import srgb_to_oklab

    frames = [_grey_frame([(60 + 2 * k, 4)]) for k in range(40)]
    out = shared_frame_colours(frames)
    for f, o in zip(frames, out):
        moved = np.linalg.norm(srgb_to_oklab(f[0, :, :3]) - srgb_to_oklab(o[0, :, :3]), axis=1)
        assert moved.max() <= 0.6 * SHARED_COLOUR_TOLERANCE, (f[0, 0, 0], o[0, 0, 0])
    assert len({int(o[0, 0, 0]) for o in out}) < 40  # still shared: fewer values than frames


def test_a_frame_of_many_colours_keeps_them_and_the_others_still_share():
    from comfy_nodes.pixel.cells import MAX_SHARED_COLOURS, shared_frame_colours

    a, b = _grey_frame([(100, 5), (200, 5)]), _grey_frame([(102, 5), (198, 5)])
    rng = np.random.default_rng(0)
    busy = np.zeros((40, 40, 4), np.uint8)
    busy[..., :3] = rng.integers(0, 256, (40, 40, 3))
    busy[..., 3] = 255
    assert len(np.unique(busy[..., :3].reshape(-1, 3), axis=0)) > MAX_SHARED_COLOURS
    out = shared_frame_colours([a, busy, b])
    assert np.array_equal(out[1], busy)
    assert np.array_equal(out[0][0, :, 0], out[2][0, :, 0])


def test_shared_frame_colours_joins_frames_of_different_sizes():
    from comfy_nodes.pixel.cells import shared_frame_colours

    small, big = _grey_frame([(100, 2), (200, 1)]), _grey_frame([(103, 6), (197, 3)])
    out = shared_frame_colours([small, big])
    assert [o.shape for o in out] == [small.shape, big.shape]
    assert set(out[0][0, :, 0].tolist()) == set(out[1][0, :, 0].tolist()) and len(set(out[0][0, :, 0].tolist())) == 2


def test_a_real_image_snaps_to_one_size_whichever_way_up(shared_dir):
    """A real AI image (a bat of 28 x 28 cells of about 36 px) came out 56 x 28 in 4 of its 8
    orientations: one axis read at half its cell, on a near tie between the cell and its half
    in the spectra of both axes. A lattice of period 2p puts energy at p, never the reverse."""
    from comfy_nodes.pixel.imageio import load_image

    path = shared_dir / "bench" / "real" / "ppa_bat.png"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    img = load_image(path)
    for name, turned in (("upright", img), ("mirrored top-bottom", img[::-1]), ("turned 180", img[::-1, ::-1]),
                         ("transposed", img.transpose(1, 0, 2)), ("transverse", img[::-1, ::-1].transpose(1, 0, 2))):
        g = G.detect_grid(np.ascontiguousarray(turned))
        assert (g.cols, g.rows) == (28, 28), name
        assert 0.95 < g.cell_w / g.cell_h < 1.05, name


def test_a_smooth_drawing_is_no_pixel_art():
    """A vector-style drawing (flat fills, anti-aliased curves) was snapped into 15 x 14 cells
    of 70 px at confidence 0.92: its fills were flat enough, while its curves strayed across
    the cells 4-6 times the image's noise. It is no pixel art, and says so."""
    from PIL import Image, ImageDraw

    big = Image.new("RGB", (2048, 2048), (240, 235, 220))
    d = ImageDraw.Draw(big)
    d.ellipse([300, 300, 1700, 1700], fill=(230, 120, 40), outline=(40, 30, 30), width=24)
    d.ellipse([650, 700, 850, 900], fill=(255, 255, 255), outline=(0, 0, 0), width=15)
    d.ellipse([1200, 700, 1400, 900], fill=(255, 255, 255), outline=(0, 0, 0), width=15)
    d.arc([700, 1000, 1350, 1500], 20, 160, fill=(60, 20, 20), width=30)
    d.polygon([(400, 450), (600, 100), (750, 400)], fill=(200, 90, 30), outline=(40, 30, 30))
    d.polygon([(1300, 400), (1450, 100), (1650, 450)], fill=(200, 90, 30), outline=(40, 30, 30))
    drawing = np.asarray(big.resize((1024, 1024), Image.LANCZOS).convert("RGBA"))
    with pytest.raises(NoGridFoundError, match="no pixel grid found in image: its colours vary inside the cells"):
        G.snap(drawing)


def _textured_tiles(seed: int, tiles: int, tile: int, shared: int = 0) -> np.ndarray:
    """Pixel art at its true resolution: ``tiles`` x ``tiles`` brick tiles of ``tile`` px, each
    shaded per pixel from its own five-step ramp (24 levels apart), with mortar every 8 px
    (several hundred colours); with ``shared``, from one of that many ramps drawn first (a
    game's tile sheet in few colours: 21 with 4)."""
    rng = np.random.default_rng(seed)

    def ramp_of(base):
        return np.clip(base[None, :] + np.arange(-2, 3)[:, None] * 24, 0, 255)

    ramps = [ramp_of(rng.integers(60, 200, 3)) for _ in range(shared)]
    img = np.zeros((tiles * tile, tiles * tile, 3), np.uint8)
    for j in range(tiles):
        for i in range(tiles):
            ramp = ramps[int(rng.integers(shared))] if shared else ramp_of(rng.integers(60, 200, 3))
            t = ramp[np.clip(rng.normal(2.0, 0.9, (tile, tile)).round().astype(int), 0, 4)].astype(np.uint8)
            t[::8] = (40, 30, 30)
            for r in range(tile // 8):
                t[r * 8:(r + 1) * 8, (0 if r % 2 == 0 else 8)::16] = (40, 30, 30)
            img[j * tile:(j + 1) * tile, i * tile:(i + 1) * tile] = t
    return img


@pytest.mark.parametrize("seed, tiles, tile", [(0, 12, 24), (1, 12, 24), (2, 12, 24)])
def test_textured_tiles_at_their_true_resolution_are_kept_as_they_are(seed, tiles, tile):
    """A tile sheet that already is pixel art offered a lattice of its tiles (or of 8 px):
    a 288 px sheet of 24 px tiles came back 12 x 12, one colour per tile. The insides of
    those cells hold the art's own pixels, and the image repeats its neighbours' exact
    colours with hard steps between them: it is kept as it is."""
    img = _textured_tiles(seed, tiles, tile)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > G.TRUE_COLOURS  # not the few-colour rule
    res = G.snap(img)
    assert res.grid.kept_as_is
    assert np.array_equal(res.image[..., :3], img) and (res.image[..., 3] == 255).all()


@pytest.mark.parametrize("seed, tiles, tile", [(0, 10, 16), (2, 12, 16), (3, 8, 24)])
def test_a_small_few_colour_tile_sheet_is_kept_as_it_is(seed, tiles, tile):
    """Under 256 colours the detail test of many-colour images does not apply (pseudo pixel
    art mapped to a palette speckles its cells), and 160-192 px sheets of 16 or 24 px tiles
    came back as 20 x 20 or 24 x 24 cells of 8 px, one colour per brick. Inside those cells
    fewer than half the pixels have the cell's most common colour: kept as it is."""
    img = _textured_tiles(seed, tiles, tile, shared=4)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) <= G.TRUE_COLOURS
    res = G.snap(img)
    assert res.grid.kept_as_is
    assert np.array_equal(res.image[..., :3], img)


@pytest.mark.parametrize("dither", ["none", "bayer4"])
def test_small_pseudo_pixel_art_mapped_to_few_colours_is_still_snapped(dither):
    """The other side of the rule above: a 230 px image of pseudo pixel art mapped to 16
    colours keeps one colour in most of each cell, and comes back at its true size."""
    from orchestrator import samples
    from comfy_nodes.pixel import palette as P

    sprites = list(samples.sprites().values())
    for seed in (0, 1, 2):
        canvas = np.zeros((24, 24, 4), np.uint8)
        sprite = sprites[seed % len(sprites)][:20, :20]
        canvas[4:4 + sprite.shape[0], 4:4 + sprite.shape[1]] = sprite
        rng = np.random.default_rng(seed)
        drawn = samples.degrade(canvas, cell=float(rng.uniform(8, 10.5)), seed=seed,
                                background=tuple(int(v) for v in rng.integers(40, 200, 3)),
                                blur=1.0, noise=4.0, jpeg_quality=85).image
        img = P.quantize(drawn, P.adaptive_palette(drawn, 16), dither=dither, alpha_threshold=None)
        assert max(img.shape[:2]) <= G.SOFTEN_MIN_SIDE
        res = G.snap(img)
        assert res.image.shape[:2] == (24, 24), seed
        assert G._mode_share([img], res.grid) >= G.MODE_SHARE_MIN


@pytest.mark.parametrize("seed", [0, 3])
def test_a_lattice_whose_cells_hold_detail_is_no_pixel_grid(seed):
    """The same art under pixel noise is no crisp art, and its 8 px lattice (the bricks) was
    snapped to 36 x 36 cells; the bricks' shading stays inside the cells, far beyond any
    noise: no pixel grid, and the message says why."""
    rng = np.random.default_rng(9)
    img = np.clip(_textured_tiles(seed, 12, 24) + rng.normal(0, 5, (288, 288, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(NoGridFoundError, match=r"of the pixels inside the best lattice's cells \(8\.0x8\.0 px\) "
                                               r"differ from their cell's colour by more than 48 levels"):
        G.snap(img, source="bricks.png")


def test_crisp_art_is_told_from_gradients_noise_and_flat_colour():
    """Art drawn on its own pixels repeats its neighbours' exact colours with hard steps
    between the others; a gradient repeats them too (along one axis) but steps softly, a
    painting or a noisy image hardly repeats them, and one flat colour is no art. Without a
    grid, a crisp image of many colours is taken as art at its true resolution, at any size."""
    def rgba(a):
        return np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])

    art = _textured_tiles(0, 10, 24)
    x = np.linspace(0, 255, 300)
    gradient = np.stack(np.broadcast_arrays(x[None, :], x[:, None], np.full((300, 300), 80.0)), -1).astype(np.uint8)
    noisy = np.clip(art + np.random.default_rng(1).normal(0, 5, art.shape), 0, 255).astype(np.uint8)
    assert G._crisp(rgba(art))
    for other in (gradient, painting(0), noisy, np.full((64, 64, 3), 90, np.uint8)):
        assert not G._crisp(rgba(other))
    assert len(np.unique(art.reshape(-1, 3), axis=0)) > G.TRUE_COLOURS
    assert G._looks_true_resolution(rgba(art))
    assert G._looks_true_resolution(rgba(_textured_tiles(0, 12, 24)))
    assert not G._looks_true_resolution(rgba(noisy))


def _sample_sheet(frames: int) -> np.ndarray:
    """A sprite sheet at its true resolution: ``frames`` x ``frames`` frames of 32 px on a
    transparent sheet, each holding one of the sample 16 px sprites in its middle."""
    from orchestrator import samples

    sprites = list(samples.sprites().values())
    sheet = np.zeros((frames * 32, frames * 32, 4), np.uint8)
    for k in range(frames * frames):
        j, i = divmod(k, frames)
        sheet[j * 32 + 8:j * 32 + 24, i * 32 + 8:i * 32 + 24] = sprites[k % len(sprites)]
    return sheet


@pytest.mark.parametrize("frames", [8, 16])
def test_a_sprite_sheet_is_not_read_on_the_gaps_between_its_frames(frames, monkeypatch):
    """A 256 px sheet of 8 x 8 frames came back 8 x 8 px of one colour: a lattice of 32 px
    cells with its lines through the sprites, whose cells read only the gaps between them.
    Such a lattice misses the art. The sheet, crisp pixel art, is kept as it is, at 512 px
    too; an image that is not crisp (here: nothing counts as crisp) is kept only up to 256 px
    a side with few colours, as any image without a grid, else refused with that reason."""
    sheet = _sample_sheet(frames)
    res = G.snap(sheet)
    assert res.grid.kept_as_is and np.array_equal(res.image, sheet)
    monkeypatch.setattr(G, "CRISP_SHARE", 1.01)
    if frames * 32 <= 256:
        assert G.snap(sheet).grid.kept_as_is
    else:
        with pytest.raises(NoGridFoundError, match=r"every cell of the best lattice \(32\.0x32\.0 px\) reads one "
                                                   r"and the same colour, though the image has more"):
            G.snap(sheet, source="sheet.png")


def _palette_mapped_case(seed: int, palette, dither: str) -> tuple[np.ndarray, np.ndarray]:
    """One of the sample sprites on a 32 px canvas, drawn as diffusion pseudo pixel art (cells
    of 8-14 px, blur, noise, JPEG), then mapped to ``palette`` with ``dither`` by Palette
    Quantize, as a graph that quantizes before it snaps does; and the true canvas (its
    background filled in)."""
    from orchestrator import samples
    from comfy_nodes.pixel import palette as P

    sprites = list(samples.sprites().values())
    sprite = sprites[seed % len(sprites)]
    canvas = np.zeros((32, 32, 4), np.uint8)
    canvas[8:8 + sprite.shape[0], 8:8 + sprite.shape[1]] = sprite
    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(40, 200, 3))
    drawn = samples.degrade(canvas, cell=float(rng.uniform(8, 14)), seed=seed, background=background,
                            blur=float(rng.uniform(0.7, 1.3)), noise=float(rng.uniform(3, 6)), jpeg_quality=85)
    canvas[canvas[..., 3] == 0] = (*background, 255)
    return P.quantize(drawn.image, palette, dither=dither, alpha_threshold=None), canvas


@pytest.mark.parametrize("dither", ["none", "bayer4", "floyd-steinberg"])
def test_pseudo_pixel_art_mapped_to_a_palette_before_the_snap_keeps_its_size_and_palette(dither):
    """Mapped to PICO-8, pseudo pixel art's noise is speckle of two palette colours, its soft
    edges hard steps, its dither a pattern of single pixels: the grid was refused ("colours vary
    inside the cells") or read on those pixels: of these 8, 5 came back right without dither,
    2 with Bayer, none with Floyd-Steinberg. Read through a blur, 6, 8 and 8 do, every colour
    one of the palette's (a cell takes its most frequent colour, not a per-channel mix)."""
    from comfy_nodes.pixel import palette as P

    palette = P.resolve_palette("pico-8")
    colours = {tuple(c) for c in palette.colors.tolist()}
    right = 0
    for seed in range(8):
        img, truth = _palette_mapped_case(seed, palette, dither)
        try:
            res = G.snap(img)
        except NoGridFoundError:
            continue
        assert {tuple(c) for c in res.image[..., :3].reshape(-1, 3).tolist()} <= colours
        right += res.image.shape[:2] == truth.shape[:2]
    assert right >= (6 if dither == "none" else 7)


def _atlas(seed: int, size: int = 384, count: int = 80) -> np.ndarray:
    """An atlas at its true resolution: ``count`` sample sprites at random places on one flat
    colour, ``size`` px a side (a few dozen colours)."""
    from orchestrator import samples

    sprites = list(samples.sprites().values())
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 4), np.uint8)
    img[...] = (*rng.integers(40, 200, 3), 255)
    for _ in range(count):
        s = sprites[int(rng.integers(len(sprites)))]
        y, x = (int(v) for v in rng.integers(0, size - np.array(s.shape[:2]) + 1))
        opaque = s[..., 3] > 0
        img[y:y + s.shape[0], x:x + s.shape[1]][opaque] = s[opaque]
    return img


def test_a_crisp_atlas_larger_than_256_px_without_a_grid_is_kept_as_it_is():
    """Loose sprites over one colour offer lattices of their spacing, whose cells then hold
    whole sprites: no grid. Up to 256 px such art was kept as it is; a larger crisp image was
    refused, as pseudo pixel art mapped to a palette (crisp too) might have been hiding its
    grid. That art's grid is now read through a blur, so larger crisp art is kept as well:
    of these 6 atlases of 384 px, all were refused; all are kept."""
    kept = 0
    for seed in range(6):
        atlas = _atlas(seed)
        try:
            res = G.snap(atlas)
        except NoGridFoundError:
            continue
        kept += res.grid.kept_as_is and np.array_equal(res.image, atlas)
    assert kept == 6


@pytest.mark.parametrize("factor", [1.25, 1.5, 1.75])
def test_a_sheet_resized_by_less_than_twice_snaps_back_pixel_for_pixel(factor):
    """A sheet resized with Pillow's nearest filter by 1.25-1.75 times (a 256 px sheet shown at
    320-448 px) has cells of 1 and 2 px, under the smallest cell the grid search reads: it came
    back as it was, enlarged. Every colour change starts a cell of the one size whose cells hold
    them all, which true-resolution art, changing colour at every pixel boundary, never fits:
    it snaps back pixel for pixel, and the sheet as it is stays as it is."""
    from PIL import Image

    sheet = _sample_sheet(8)
    side = round(sheet.shape[0] * factor)
    big = np.asarray(Image.fromarray(sheet).resize((side, side), Image.NEAREST))
    res = G.snap(big)
    assert res.grid.exact and (res.grid.cols, res.grid.rows) == (256, 256)
    assert np.array_equal(res.image, sheet)
    assert G.snap(sheet).grid.kept_as_is


def test_a_detection_takes_each_profile_spectrum_once(monkeypatch):
    """The period steps read the same few profiles' spectra many times (estimates over other
    bands, the square hint, nearby and far peaks); each spectrum is taken once per detection
    and kept in its memo, so no FFT runs twice on the same input, and the grid is the same."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["knight"], cell=11.3, jitter=1.0, seed=5, noise=4.0, jpeg_quality=85)
    first = G.detect_grid(d.image)
    inputs = []
    rfft = np.fft.rfft

    def counting(a, *args, **kwargs):
        inputs.append((np.asarray(a).tobytes(), args, tuple(sorted(kwargs.items()))))
        return rfft(a, *args, **kwargs)

    monkeypatch.setattr(np.fft, "rfft", counting)
    again = G.detect_grid(d.image)
    assert (again.cols, again.rows, again.x_lines.tolist()) == (first.cols, first.rows, first.x_lines.tolist())
    assert len(inputs) >= 4
    assert len(set(inputs)) == len(inputs)


def test_a_reading_that_holds_no_colours_takes_no_far_peak():
    """A generated scene (sprites scattered over a flat backdrop on 3.3 px cells, as
    ``bench/snap_synth.py --family scenes`` draws it) is first read at 18.5 px, a lattice that
    holds none of its colours. A far spectral peak's 5.5 px reading held enough of them to
    pass (105 x 78 cells for 176 x 123); far peaks undo a motif's reading, which holds the
    colours as blocks, so here they are not read and the finer detection finds the cells."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import snap_synth
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    for seed in range(2):
        image, truth, params = snap_synth.make_scene_case(rng, seed)
    assert params["backdrop"] == "flat" and params["cell"] == pytest.approx(3.311)
    res = G.snap(image)
    assert abs(res.width - truth.shape[1]) <= 1 and abs(res.height - truth.shape[0]) <= 1


def test_a_snap_of_an_enlarged_jpeg_never_imports_numpy_ma():
    """``np.percentile`` and ``np.median`` import ``numpy.ma`` on first use (8 ms, more than a
    small image's whole snap). The JPEG block test reads a percentile per window: an image
    whose enlarged blocks it weighs (6 px art, JPEG'd, enlarged 3 times, with noise) is
    snapped in a fresh interpreter, and ``numpy.ma`` is still not loaded."""
    import subprocess

    code = """
import io, sys
import numpy as np
from PIL import Image
from comfy_nodes.pixel import grid as G
from comfy_nodes.pixel.errors import DgxPixelsError
rng = np.random.default_rng(0)
art = np.kron(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), np.ones((6, 6, 1), np.uint8))
buf = io.BytesIO(); Image.fromarray(art).save(buf, "JPEG", quality=30)
j = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
big = np.clip(np.kron(j, np.ones((3, 3, 1), np.uint8)).astype(int) + rng.integers(-6, 7, (432, 432, 3)), 0, 255)
calls = []
weigh = G._on_every_multiple
G._on_every_multiple = lambda p, b: calls.append(b) or weigh(p, b)
try:
    G.snap(big.astype(np.uint8))
except DgxPixelsError:
    pass
print(len(calls), "numpy.ma" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    weighed, ma = out.stdout.split()
    assert int(weighed) >= 1, "the case no longer reaches the block test: pick another"
    assert ma == "False"


@pytest.mark.parametrize("n", [1, 2, 3, 10, 24, 33])
def test_percentile_rows_is_numpys_linear_percentile(n):
    from comfy_nodes.pixel.stats import percentile_rows

    rng = np.random.default_rng(n)
    for a in (rng.random((40, n)) * 100, rng.integers(0, 5, (40, n)).astype(np.float64)):
        for q in (0, 10, 50, 90, 100):
            assert np.array_equal(percentile_rows(a, q), np.percentile(a, q, axis=1))


def test_cell_colours_are_each_channels_median_of_the_cell_samples():
    """The sampler gathers whole pixels and sorts widened samples (both for speed): each cell's
    colour is still the per-channel median of its k x k samples."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (97, 83, 4), dtype=np.uint8)
    img[..., 3] = 255
    xl, yl = np.arange(0.0, 83.0, 7.3), np.arange(0.0, 97.0, 6.1)
    grid = G.Grid(cell_w=7.3, cell_h=6.1, cols=len(xl) - 1, rows=len(yl) - 1, x_lines=xl, y_lines=yl)
    out = C.sample_cells(img, grid, consolidate=False)
    xs = C.sample_coords(grid.x_lines, 83, 5, 0.25, 0.75)
    ys = C.sample_coords(grid.y_lines, 97, 5, 0.25, 0.75)
    for r in range(grid.rows):
        for c in range(grid.cols):
            samples = img[ys[r][:, None], xs[c][None, :], :3].reshape(-1, 3)
            assert out[r, c, :3].tolist() == np.median(samples, axis=0).astype(int).tolist()
    assert (out[..., 3] == 255).all()


def test_a_retry_that_squares_the_cells_needs_no_margin():
    """The potion on a 32 px canvas as ``bench/snap_other_sources.py`` draws it at its hard
    settings (8.3 px cells jittered by up to 2 px, blur, noise, JPEG): its x axis was read
    27 cells wide on a coarser period. Read again at the rows' period it is 32 columns of
    square cells, no worse on any count but short of the margins a retry must clear, so the
    sprite came back 27 x 32. A reading that squares the cells keeps it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import snap_other_sources as other
    finally:
        sys.path.pop(0)
    from orchestrator import samples

    rng = np.random.default_rng(297)
    truth = other.on_canvas(samples.sprites()["potion"], rng)
    d = other.render(truth, "hard", rng, seed=297)
    g = G.detect_grid(d.image)
    assert (g.cols, g.rows) == (32, 32)
    assert g.cell_w / g.cell_h < G.SQUARE_TOLERANCE


def _axis_at(period: float, length: int) -> G._Axis:
    """Lines every ``period`` px over ``length`` px, from 0 and ending at ``length``."""
    lines = np.unique(np.round(np.concatenate([np.arange(0.0, length, period), [float(length)]]), 6))
    return G._Axis(lines=lines, period=period, confidence=1.0)


@pytest.mark.parametrize("read, given, kept", [(7.0, 8.0, True), (6.0, 10.0, False)])
def test_the_square_retry_reads_an_axis_at_the_others_period_where_its_spectrum_has_no_peak(read, given, kept):
    """An axis whose spectrum has no peak near the other axis's period reads the same lines
    again from that period as a hint (the other sources' ``BrownLikeBears@120,2820`` at hard:
    8.1 px cells, jittered by up to 2 px, read as 7.0 px, 37 columns for 32). It is then read
    at that period as given, and the reading is kept only when it beats the first on the
    margins of every count: the true 8 px columns are; 10 px columns, worse than a first
    reading at 6 px, are not. That is done only where the other axis moved when hinted:
    cells that really are non-square stay from either start (see the next test)."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["knight"], cell=8.0, jitter=0.0, seed=3, noise=3.0, pad=(0, 0, 0, 0))
    img = d.image
    h, w = img.shape[:2]
    frames = [G._validate(img, "test")]
    ay = G._Axis(lines=np.asarray(d.y_lines, np.float64), period=8.0, confidence=1.0)
    first = _axis_at(read, w)
    hinted = []

    def read_x(p):
        hinted.append(p)
        return first  # no spectral peak near p: the same lines again

    def read_x_at(p):
        return G._Axis(lines=np.asarray(d.x_lines, np.float64), period=8.0, confidence=1.0) if given == 8.0 \
            else _axis_at(given, w)

    def read_y(p):
        return _axis_at(9.0, h)  # the rows moved (to a worse reading, which is not kept)

    def read_y_at(p):
        raise AssertionError("the rows moved: they are not read at a given period")

    ax, ay2 = G._square_retry(frames, (w, h), first, ay, (read_x, read_x_at), (read_y, read_y_at))
    assert hinted == [8.0]
    assert ay2 is ay
    if kept:
        assert len(ax.lines) - 1 == len(d.x_lines) - 1 and ax.period == 8.0
    else:
        assert ax is first


def test_axes_that_both_stay_when_hinted_are_not_read_at_a_given_period():
    """Cells that really are non-square read the same lines from either start (a real image's
    17.6 x 19.4 px cells): neither axis is then read at the other's period as given, which
    cost that image 14 ms for readings that were turned down."""
    from orchestrator import samples

    d = samples.degrade(samples.sprites()["knight"], cell=8.0, cell_h=9.2, jitter=0.0, seed=3, noise=3.0,
                        pad=(0, 0, 0, 0))
    h, w = d.image.shape[:2]
    ax = G._Axis(lines=np.asarray(d.x_lines, np.float64), period=8.0, confidence=1.0)
    ay = G._Axis(lines=np.asarray(d.y_lines, np.float64), period=9.2, confidence=1.0)

    def given(p):
        raise AssertionError("read at a given period")

    got = G._square_retry([G._validate(d.image, "test")], (w, h), ax, ay, (lambda p: ax, given), (lambda p: ay, given))
    assert got[0] is ax and got[1] is ay
