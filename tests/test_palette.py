"""Palette type, adaptive palettes and quantisation (pure core)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from comfy_nodes.pixel.color import srgb_to_oklab
from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError, PaletteError
from comfy_nodes.pixel.palette import (
    Palette,
    adaptive_palette,
    distinct_colors,
    palette_swatch,
    quantize,
    quantize_batch,
    resolve_palette,
)


def _rgba(rgb, alpha=255):
    a = np.asarray(rgb, dtype=np.uint8)
    out = np.empty(a.shape[:2] + (4,), np.uint8)
    out[..., :3] = a
    out[..., 3] = alpha
    return out


def _color_set(img, opaque_only=True):
    px = img.reshape(-1, 4)
    if opaque_only:
        px = px[px[:, 3] > 0]
    return {tuple(p[:3]) for p in px.tolist()}


PAL3 = Palette("t3", np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], np.uint8), "test")


def test_palette_validation_and_helpers():
    with pytest.raises(PaletteError, match="no colours"):
        Palette("empty", np.zeros((0, 3), np.uint8))
    with pytest.raises(PaletteError, match="shape"):
        Palette("bad", np.zeros((4,), np.uint8))
    p = Palette("p", [[1, 2, 3], [255, 0, 16]])
    assert p.colors.dtype == np.uint8 and len(p) == 2
    assert p.hex_list() == ["010203", "ff0010"]
    lab = p.to_oklab()
    assert lab.shape == (2, 3) and np.allclose(lab, srgb_to_oklab(p.colors))


def test_quantize_maps_each_pixel_to_nearest_in_oklab():
    img = _rgba([[[10, 10, 10], [240, 250, 245], [200, 30, 20], [128, 128, 128]]])
    out = quantize(img, PAL3)
    assert out[0, 0, :3].tolist() == [0, 0, 0]
    assert out[0, 1, :3].tolist() == [255, 255, 255]
    assert out[0, 2, :3].tolist() == [255, 0, 0]
    # mid grey: OKLab L of 128 grey is ~0.6, nearer white (L=1) than black (L=0)? compute it.
    lab = srgb_to_oklab(np.array([128, 128, 128], np.uint8))
    d = np.linalg.norm(PAL3.to_oklab() - lab, axis=1)
    assert out[0, 3, :3].tolist() == PAL3.colors[np.argmin(d)].tolist()
    assert (out[..., 3] == 255).all()


def test_quantize_alpha_binarised_and_transparent_rgb_cleared():
    img = _rgba([[[255, 0, 0], [255, 0, 0], [10, 10, 10]]])
    img[0, :, 3] = [127, 128, 0]
    out = quantize(img, PAL3)
    assert out[0, :, 3].tolist() == [0, 255, 0]
    assert out[0, 0].tolist() == [0, 0, 0, 0]
    kept = quantize(img, PAL3, alpha_threshold=None)
    assert kept[0, :, 3].tolist() == [127, 128, 0]
    assert kept[0, 0, :3].tolist() == [255, 0, 0]


def test_quantize_rejects_bad_arguments():
    img = _rgba(np.zeros((2, 2, 3)))
    with pytest.raises(InvalidArgumentError, match="dither"):
        quantize(img, PAL3, dither="zigzag")
    with pytest.raises(InvalidArgumentError, match="strength"):
        quantize(img, PAL3, strength=2)
    with pytest.raises(InvalidArgumentError, match="palette"):
        quantize(img, "pico-8")
    with pytest.raises(InputImageError):
        quantize(np.zeros((0, 3, 4), np.uint8), PAL3)


def test_quantize_one_pixel_and_grayscale_16bit():
    out = quantize(np.array([[[250, 10, 10, 255]]], np.uint8), PAL3)
    assert out.shape == (1, 1, 4) and out[0, 0].tolist() == [255, 0, 0, 255]
    gray16 = np.array([[0, 65535], [1000, 60000]], dtype=np.uint16)
    out = quantize(gray16, PAL3)
    assert out[0, 0, :3].tolist() == [0, 0, 0] and out[0, 1, :3].tolist() == [255, 255, 255]


def test_quantize_batch_shares_palette_and_sizes():
    frames = [_rgba(np.full((3, 5, 3), 200)), _rgba(np.full((4, 2, 3), 20))]
    outs = quantize_batch(frames, PAL3)
    assert [o.shape for o in outs] == [(3, 5, 4), (4, 2, 4)]
    assert _color_set(outs[0]) == {(255, 255, 255)} and _color_set(outs[1]) == {(0, 0, 0)}
    with pytest.raises(InputImageError, match="empty"):
        quantize_batch([], PAL3)


def test_adaptive_returns_distinct_colours_when_k_is_large():
    img = _rgba([[[1, 2, 3], [1, 2, 3], [9, 9, 9]], [[9, 9, 9], [9, 9, 9], [200, 0, 0]]])
    p = adaptive_palette(img, k=10, seed=0)
    assert p.hex_list() == ["090909", "010203", "c80000"]  # by frequency
    assert len(adaptive_palette(img, k=3).colors) == 3


def test_adaptive_ignores_transparent_pixels():
    img = _rgba(np.full((4, 4, 3), 50))
    img[:2, :, :3] = [255, 0, 255]
    img[:2, :, 3] = 0
    p = adaptive_palette(img, k=4)
    assert p.hex_list() == ["323232"]
    with pytest.raises(InputImageError, match="no opaque"):
        adaptive_palette(_rgba(np.zeros((2, 2, 3)), alpha=0), k=2)


def test_adaptive_k_validation():
    img = _rgba(np.zeros((2, 2, 3)))
    for bad in (0, -3, 257, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="k"):
            adaptive_palette(img, k=bad)
    with pytest.raises(InputImageError, match="empty"):
        adaptive_palette([], k=4)


def _noisy_blocks(seed=0, size=48, noise=6.0):
    rng = np.random.default_rng(seed)
    base = np.array([[200, 40, 40], [40, 160, 60], [30, 30, 120], [230, 220, 200]], np.float64)
    img = np.zeros((size, size, 3))
    h = size // 2
    img[:h, :h], img[:h, h:], img[h:, :h], img[h:, h:] = base
    img += rng.normal(0, noise, img.shape)
    return _rgba(np.clip(np.round(img), 0, 255)), base


def test_adaptive_kmeans_finds_cluster_centres_deterministically():
    img, base = _noisy_blocks()
    p1 = adaptive_palette(img, k=4, seed=3)
    p2 = adaptive_palette(img, k=4, seed=3)
    assert p1 == p2 and len(p1) == 4
    for c in base:
        assert np.abs(p1.colors.astype(float) - c).sum(axis=1).min() < 12


def test_adaptive_auto_k_picks_the_cluster_count():
    img, _ = _noisy_blocks(noise=2.0)
    p = adaptive_palette(img, k=None, seed=0)
    assert len(p) == 4
    # Stronger noise spreads each block's colours further than the default tolerance...
    noisy, _ = _noisy_blocks(noise=6.0)
    assert len(adaptive_palette(noisy, k=None, seed=0)) > 4
    # ...and a looser tolerance folds them back into the four blocks.
    assert len(adaptive_palette(noisy, k=None, seed=0, tolerance=0.12)) == 4
    clean = _rgba(np.repeat(np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8), 3, axis=0))
    assert len(adaptive_palette(clean, k=None)) == 3


def test_adaptive_auto_k_keeps_a_one_pixel_colour_of_clean_pixel_art():
    """In a sprite (a few distinct colours), a one-pixel eye is a colour of its own; only in a
    noisy image of thousands of colours is a one-pixel colour noise."""
    sprite = np.zeros((64, 64, 3), np.uint8)
    sprite[...] = (200, 60, 30)
    sprite[5, 6] = (0, 0, 255)
    assert set(adaptive_palette(_rgba(sprite), k=None).hex_list()) == {"c83c1e", "0000ff"}
    noisy = np.clip(sprite + np.random.default_rng(0).normal(0, 1.5, sprite.shape), 0, 255).astype(np.uint8)
    assert "0000ff" not in adaptive_palette(_rgba(noisy), k=None).hex_list()


def test_adaptive_shared_across_frames():
    a = _rgba(np.full((4, 4, 3), [255, 0, 0]))
    b = _rgba(np.full((4, 4, 3), [0, 0, 255]))
    p = adaptive_palette([a, b], k=2)
    assert set(p.hex_list()) == {"ff0000", "0000ff"}
    stacked = adaptive_palette(np.stack([a, b]), k=2)
    assert stacked == p


def test_adaptive_subsamples_large_inputs_deterministically():
    rng = np.random.default_rng(1)
    img = _rgba(rng.integers(0, 256, (300, 300, 3)))
    p1 = adaptive_palette(img, k=8, seed=5)
    p2 = adaptive_palette(img, k=8, seed=5)
    assert p1 == p2 and len(p1) == 8


def test_distinct_colors_and_swatch():
    img = _rgba([[[1, 1, 1], [2, 2, 2], [2, 2, 2]]])
    assert distinct_colors(img).hex_list() == ["020202", "010101"]
    sw = palette_swatch(PAL3, swatch=4, columns=2)
    assert sw.shape == (8, 8, 4)
    assert sw[0, 0].tolist() == [0, 0, 0, 255] and sw[0, 4].tolist() == [255, 255, 255, 255]
    assert sw[4, 0].tolist() == [255, 0, 0, 255] and sw[4, 4, 3] == 0


def test_resolve_palette_names_files_and_errors(tmp_path):
    assert resolve_palette("PICO 8").name == "pico-8"
    assert resolve_palette("db_32").name == "dawnbringer-32"
    p = tmp_path / "mine.hex"
    p.write_text("ff0000\n00ff00\n")
    assert resolve_palette(str(p)).hex_list() == ["ff0000", "00ff00"]
    assert resolve_palette("mine.hex", base_dir=tmp_path).name == "mine"
    with pytest.raises(PaletteError, match="unknown palette 'nonesuch'") as exc:
        resolve_palette("nonesuch")
    assert "pico-8" in exc.value.hint
    with pytest.raises(PaletteError, match="not found"):
        resolve_palette(str(tmp_path / "missing.gpl"))
    with pytest.raises(PaletteError):
        resolve_palette("")


# ----------------------------------------------------------------------------- properties

images = arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(4)))
palettes = arrays(np.uint8, st.tuples(st.integers(1, 8), st.just(3))).map(lambda c: Palette("h", c))
dithers = st.sampled_from(["none", "bayer2", "bayer4", "bayer8", "floyd-steinberg", "atkinson"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(img=images, pal=palettes, dither=dithers, strength=st.floats(0, 1))
def test_property_quantize_output_in_palette(img, pal, dither, strength):
    out = quantize(img, pal, dither=dither, strength=strength)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert set(np.unique(out[..., 3]).tolist()) <= {0, 255}
    assert ((out[..., 3] == 255) == (img[..., 3] >= 128)).all()
    allowed = {tuple(c) for c in pal.colors.tolist()}
    assert _color_set(out) <= allowed
    assert (out[out[..., 3] == 0] == 0).all()
    again = quantize(img, pal, dither=dither, strength=strength)
    assert np.array_equal(out, again)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(img=images, k=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_property_adaptive_palette(img, k, seed):
    opaque = img[..., 3] >= 128
    if not opaque.any():
        with pytest.raises(InputImageError):
            adaptive_palette(img, k=k, seed=seed)
        return
    p = adaptive_palette(img, k=k, seed=seed)
    distinct = {tuple(c) for c in img[..., :3][opaque].tolist()}
    assert 1 <= len(p) <= min(k, len(distinct))
    assert len({tuple(c) for c in p.colors.tolist()}) == len(p)  # no duplicates
    if len(distinct) <= k:
        assert {tuple(c) for c in p.colors.tolist()} == distinct  # transparent colours never included
    assert p == adaptive_palette(img, k=k, seed=seed)


def test_auto_k_keeps_a_small_area_that_noise_spread_over_many_shades():
    """More than 256 colours (noise): a 4x4 red patch is 16 one-pixel variants, none of which
    counted alone, and the automatic palette was grey only."""
    from comfy_nodes.pixel.palette import adaptive_palette, quantize

    rng = np.random.default_rng(0)
    img = np.zeros((32, 32, 4), np.uint8)
    img[..., 3] = 255
    img[..., :3] = 128 + rng.integers(-3, 4, (32, 32, 3))
    img[10:14, 10:14, :3] = np.array([200, 40, 40]) + rng.integers(-3, 4, (4, 4, 3))
    pal = adaptive_palette(img, None)
    assert len(pal) == 2
    out = quantize(img, pal)
    assert abs(int(out[12, 12, 0]) - 200) <= 6 and abs(int(out[20, 20, 0]) - 128) <= 4


def _many_colours() -> np.ndarray:
    """16x16 pixels of random colours (256 distinct ones): no 64 colours come within a tight
    tolerance of them all."""
    return _rgba(np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8))


def test_auto_k_says_when_it_stops_at_its_cap_without_meeting_the_tolerance():
    """Automatic k stops at AUTO_K_MAX colours: with a tolerance those cannot meet, the palette
    was the cap's, with no word of it. ``auto_k`` now says how it ended and the error reached."""
    from comfy_nodes.pixel.palette import AUTO_K_MAX

    img = _many_colours()
    assert len(distinct_colors(img)) > AUTO_K_MAX
    p = adaptive_palette(img, k=None, tolerance=0.001)
    assert len(p) <= AUTO_K_MAX and p.auto_k is not None
    assert p.auto_k.capped and (p.auto_k.k, p.auto_k.max_k, p.auto_k.tolerance) == (AUTO_K_MAX, AUTO_K_MAX, 0.001)
    # the error reached: the farthest colour of the image from its palette colour
    lab, pal_lab = srgb_to_oklab(img[..., :3].reshape(-1, 3)), p.to_oklab()
    farthest = np.sqrt(((lab[:, None] - pal_lab[None]) ** 2).sum(-1)).min(1).max()
    assert 0.001 < p.auto_k.error and p.auto_k.error == pytest.approx(farthest, abs=0.01)
    # a tolerance that is met: no cap, the error within it
    loose = adaptive_palette(img, k=None, tolerance=0.3)
    assert not loose.auto_k.capped and loose.auto_k.error <= 0.3 and loose.auto_k.k < AUTO_K_MAX
    assert adaptive_palette(img, k=8).auto_k is None
