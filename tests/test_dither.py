"""Dithering: Bayer ordered and error diffusion, exact and deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from comfy_nodes.pixel.color import srgb_to_oklab
from comfy_nodes.pixel.dither import KERNELS, bayer_matrix, normalise_mode
from comfy_nodes.pixel.errors import InvalidArgumentError
from comfy_nodes.pixel.palette import Palette, quantize

BW = Palette("bw", np.array([[0, 0, 0], [255, 255, 255]], np.uint8))


def _flat(rgb, h=16, w=16):
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rgb
    img[..., 3] = 255
    return img


def test_bayer_matrices():
    for n in (2, 4, 8):
        m = bayer_matrix(n)
        assert m.shape == (n, n)
        assert sorted(((m * n * n) - 0.5).round().astype(int).ravel().tolist()) == list(range(n * n))
    assert bayer_matrix(2).tolist() == [[0.125, 0.625], [0.875, 0.375]]
    with pytest.raises(InvalidArgumentError):
        bayer_matrix(3)


def test_mode_names():
    assert normalise_mode("Floyd Steinberg") == "floyd-steinberg"
    assert normalise_mode("FS") == "floyd-steinberg"
    assert normalise_mode(None) == "none"
    with pytest.raises(InvalidArgumentError, match="bayer2"):
        normalise_mode("blue-noise")


def _mean_l(img):
    return srgb_to_oklab(img[..., :3].reshape(-1, 3)).mean(axis=0)[0]


@pytest.mark.parametrize("mode", ["bayer2", "bayer4", "bayer8", "floyd-steinberg", "atkinson"])
def test_dither_keeps_mean_lightness_of_flat_grey(mode):
    grey = _flat([119, 119, 119])  # OKLab L ~ 0.56: plain nearest gives all white
    plain = quantize(grey, BW)
    assert len(np.unique(plain[..., 0])) == 1
    out = quantize(grey, BW, dither=mode)
    frac_white = (out[..., 0] == 255).mean()
    assert 0.2 < frac_white < 0.8  # a real mix of both colours
    # Mixing happens in OKLab, so the mean OKLab L lands near the input's.
    assert abs(_mean_l(out) - _mean_l(grey)) < 0.1


def test_ordered_dither_mixes_towards_the_side_the_colour_lies_on():
    """Black, a dark grey and white: a grey just lighter than the dark grey has black as its
    second nearest colour, yet lies between the dark grey and white. The white share must
    rise from 0 as the grey gets lighter, with no flat band and no jump."""
    pal = Palette("3", np.array([[0, 0, 0], [46, 46, 46], [255, 255, 255]], np.uint8))
    shares = [(quantize(_flat([g] * 3), pal, dither="bayer8")[..., 0] == 255).mean() for g in range(46, 121, 8)]
    assert shares[0] == 0 and all(b > a for a, b in zip(shares, shares[1:])), shares
    assert max(b - a for a, b in zip(shares, shares[1:])) < 0.12, shares


def test_ordered_dither_keeps_a_dark_red_red_on_pico8():
    """PICO-8 has no dark red: a dark red is nearest its dark purple, and the second nearest
    colour, navy, turned it into a purple and navy checker that reads blue (up to three
    quarters navy). Black mixes the red's darkness without its hue."""
    from comfy_nodes.pixel.palettes_builtin import builtin

    for red in ([60, 10, 10], [70, 15, 15], [80, 10, 10]):
        out = quantize(_flat(red), builtin("pico-8"), dither="bayer4")[..., :3].reshape(-1, 3)
        colours = {tuple(int(v) for v in c) for c in np.unique(out, axis=0)}
        assert colours == {(0, 0, 0), (126, 37, 83)}, (red, colours)


def test_ordered_dither_prefers_a_calm_mix_to_scattered_specks():
    """A grey tinged with magenta lies almost on the segment from the dark grey to magenta,
    whose mix would match it best on average, but as bright magenta specks on dark grey. The
    partner weighs the pattern's contrast too: the light grey, a few shades off, no specks."""
    pal = Palette("3", np.array([[60, 60, 60], [150, 150, 150], [255, 0, 255]], np.uint8))
    out = quantize(_flat([78, 62, 78]), pal, dither="bayer8")[..., :3].reshape(-1, 3)
    assert not (out == [255, 0, 255]).all(axis=1).any()
    assert 0 < (out == [150, 150, 150]).all(axis=1).mean() < 0.5


def test_a_repeated_palette_colour_does_not_switch_ordered_dithering_off():
    dup = Palette("dup", np.array([[0, 0, 0], [0, 0, 0], [255, 255, 255]], np.uint8))
    grey = _flat([99, 99, 99])  # OKLab L 0.5: half way
    assert (quantize(grey, dup, dither="bayer8")[..., 0] == 255).mean() == pytest.approx(
        (quantize(grey, BW, dither="bayer8")[..., 0] == 255).mean())
    assert 0.4 < (quantize(grey, dup, dither="bayer8")[..., 0] == 255).mean() < 0.6


@pytest.mark.parametrize("mode", ["bayer4", "floyd-steinberg", "atkinson"])
def test_strength_zero_equals_nearest(mode):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 9, 4)).astype(np.uint8)
    img[..., 3] = 255
    assert np.array_equal(quantize(img, BW, dither=mode, strength=0.0), quantize(img, BW))


def test_palette_colours_are_not_dithered():
    img = _flat([255, 255, 255])
    img[4:8] = [0, 0, 0, 255]
    for mode in ("bayer8", "floyd-steinberg", "atkinson"):
        assert np.array_equal(quantize(img, BW, dither=mode), img)


def test_ordered_pattern_of_half_grey_is_checker_like():
    # A grey exactly halfway (in OKLab) between black and white: t = 0.5 -> half the Bayer cells.
    lab_mid = (srgb_to_oklab(np.array([0, 0, 0], np.uint8)) + srgb_to_oklab(np.array([255, 255, 255], np.uint8))) / 2
    from comfy_nodes.pixel.color import oklab_to_srgb8

    g = int(oklab_to_srgb8(lab_mid)[0])
    out = quantize(_flat([g, g, g], 4, 4), BW, dither="bayer2")
    frac = (out[..., 0] == 255).mean()
    assert frac == 0.5


def _reference_error_diffusion(img, pal, kernel):
    """Plain raster-order loop, the textbook algorithm, to check the wavefront version (the
    colour chosen in OKLab with a and b stretched by MIX_SPACE, the error carried in OKLab)."""
    from comfy_nodes.pixel.dither import MIX_SPACE

    lab = srgb_to_oklab(img[..., :3]).copy()
    pl = pal.to_oklab()
    h, w = lab.shape[:2]
    out = np.zeros((h, w), int)
    for y in range(h):
        for x in range(w):
            v = lab[y, x]
            q = int(np.argmin((((pl - v) * MIX_SPACE) ** 2).sum(axis=1)))
            out[y, x] = q
            e = v - pl[q]
            for dy, dx, wt in kernel:
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w:
                    lab[yy, xx] += wt * e
    return out


@pytest.mark.parametrize("mode", ["floyd-steinberg", "atkinson"])
def test_wavefront_matches_raster_loop(mode):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (11, 13, 4)).astype(np.uint8)
    img[..., 3] = 255
    pal = Palette("p", rng.integers(0, 256, (5, 3)).astype(np.uint8))
    ref = _reference_error_diffusion(img, pal, KERNELS[mode])
    out = quantize(img, pal, dither=mode)
    assert np.array_equal(out[..., :3], pal.colors[ref])


def test_transparent_pixels_stay_transparent_and_block_nothing():
    img = _flat([119, 119, 119], 8, 8)
    img[:, :4, 3] = 0
    for mode in ("bayer4", "floyd-steinberg", "atkinson"):
        out = quantize(img, BW, dither=mode)
        assert (out[:, :4] == 0).all()
        assert (out[:, 4:, 3] == 255).all()


def test_error_diffusion_keeps_a_skin_tone_and_grows_smoothly_with_the_strength():
    """Picked in plain OKLab, lightness outweighed hue: a skin tone on PICO-8 came out grey and
    orange noise with 3 peach pixels of 1024, and all grey at strength 0.01, where strength 0
    gives all peach."""
    from comfy_nodes.pixel.palettes_builtin import builtin

    skin = _flat([217, 163, 130], 32, 32)
    pico = builtin("pico-8")

    def share(strength: float, colour: str) -> float:
        out = quantize(skin, pico, dither="floyd-steinberg", strength=strength)
        return float((out[..., :3] == tuple(bytes.fromhex(colour))).all(axis=-1).mean())

    assert share(0.0, "ffccaa") == 1.0
    assert share(0.01, "ffccaa") == 1.0
    assert share(1.0, "ffccaa") > 0.15  # peach stays the base of the mix
    assert share(1.0, "c2c3c7") < 0.35  # grey no more than the lightness needs


@pytest.mark.parametrize("mode", ["floyd-steinberg", "atkinson"])
def test_error_diffusion_keeps_a_ramps_lightness_on_a_palette_of_other_hues(mode):
    """A grey ramp on the Game Boy's four greens: the greens cannot pay back the grey's hue
    error, so it must not pile up and take over the choice; each 16-px band keeps its mean
    lightness (picked by CIEDE2000 instead of OKLab, the bands were 0.19 off on average)."""
    from comfy_nodes.pixel.palettes_builtin import builtin

    ramp = np.zeros((32, 256, 4), np.uint8)
    ramp[..., :3] = np.arange(256)[None, :, None]
    ramp[..., 3] = 255
    # Atkinson passes on only 3/4 of the error by design: it keeps a 1-bit ramp less exactly
    for name, most in (("gameboy", 0.1), ("1bit", 0.01 if mode == "floyd-steinberg" else 0.08)):
        out = quantize(ramp, builtin(name), dither=mode)
        want = srgb_to_oklab(ramp[..., :3])[..., 0].reshape(32, 16, 16).mean(axis=(0, 2))
        got = srgb_to_oklab(out[..., :3])[..., 0].reshape(32, 16, 16).mean(axis=(0, 2))
        assert np.abs(want - got).mean() < most, (name, np.abs(want - got).mean())


def test_ordered_dither_keeps_a_ramps_lightness_on_a_palette_of_other_hues():
    """The same grey ramp on the Game Boy greens, Bayer 4x4: each 16-px band keeps about its
    mean lightness, as plain mapping does (0.087 off per band; Bayer 0.093). Judging the
    partner with a and b doubled took the less saturated greens for their hue and lost the
    lightness (0.115 off)."""
    from comfy_nodes.pixel.palettes_builtin import builtin

    ramp = np.zeros((32, 256, 4), np.uint8)
    ramp[..., :3] = np.arange(256)[None, :, None]
    ramp[..., 3] = 255
    want = srgb_to_oklab(ramp[..., :3])[..., 0].reshape(32, 16, 16).mean(axis=(0, 2))
    off = {}
    for dither in ("none", "bayer4"):
        got = srgb_to_oklab(quantize(ramp, builtin("gameboy"), dither=dither)[..., :3])[..., 0]
        off[dither] = np.abs(want - got.reshape(32, 16, 16).mean(axis=(0, 2))).mean()
    assert off["bayer4"] < 0.1 and off["none"] < 0.1, off


def test_ordered_dither_leans_from_the_nearest_colour_as_strength_grows():
    """A dark brown on PICO-8: black is its nearest colour by CIEDE2000, yet it lies over half
    way from black to its partner, the warm dark grey (navy, the partner by plain OKLab, gave
    it a blue cast). A light dither keeps it black (the threshold leans from the nearest
    colour's side, not from the midpoint, which turned it all into the partner); the partner's
    share grows with the strength up to the colour's position along the pair."""
    from comfy_nodes.pixel.palettes_builtin import builtin

    img = _flat([57, 32, 31], 8, 8)
    black, grey = [0, 0, 0], [95, 87, 79]
    assert quantize(img, builtin("pico-8"))[0, 0, :3].tolist() == black
    light = quantize(img, builtin("pico-8"), dither="bayer4", strength=0.05)
    assert (light[..., :3] == black).all()
    shares = []
    for strength in (0.25, 0.5, 1.0):
        out = quantize(img, builtin("pico-8"), dither="bayer4", strength=strength)[..., :3]
        assert ((out == grey).all(-1) | (out == black).all(-1)).all()
        shares.append((out == grey).all(-1).mean())
    assert shares[0] < shares[1] < shares[2] and 0.5 <= shares[2] <= 0.8, shares


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_ordered_dither_share_grows_smoothly_along_a_ramp(strength):
    """Colours from black towards navy (PICO-8): the share of navy pixels never falls as the
    colour moves towards navy, at any strength (no bands where the nearest colour changes)."""
    from comfy_nodes.pixel.color import oklab_to_srgb8
    from comfy_nodes.pixel.palettes_builtin import builtin

    black, navy = srgb_to_oklab(np.array([0, 0, 0], np.uint8)), srgb_to_oklab(np.array([29, 43, 83], np.uint8))
    shares = []
    for t in np.linspace(0.0, 1.0, 21):
        img = _flat(oklab_to_srgb8(black + t * (navy - black)).tolist(), 16, 16)
        out = quantize(img, builtin("pico-8"), dither="bayer4", strength=strength)
        shares.append(float((out[..., :3] == [29, 43, 83]).all(-1).mean()))
    assert all(b >= a - 1e-9 for a, b in zip(shares, shares[1:])), shares
    assert shares[0] == 0.0 and shares[-1] == 1.0


def test_ordered_dither_of_many_colours_bins_its_flip_points(monkeypatch):
    """Above FLIP_EXACT_MAX colours the flip points are found per colour bin: a faint dither
    still keeps nearly every colour's nearest, and the result matches the exact one nearly
    everywhere."""
    import comfy_nodes.pixel.dither as D
    from comfy_nodes.pixel.palettes_builtin import builtin

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (64, 128, 4)).astype(np.uint8)
    img[..., 3] = 255
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > D.FLIP_EXACT_MAX
    pal = builtin("pico-8")
    plain = quantize(img, pal)
    # a faint dither changes only colours within a hair of their flip point (80 of 8192 here)
    assert (quantize(img, pal, dither="bayer4", strength=0.02) != plain).any(-1).mean() < 0.02
    binned = quantize(img, pal, dither="bayer4", strength=0.5)
    monkeypatch.setattr(D, "FLIP_EXACT_MAX", 1 << 20)
    exact = quantize(img, pal, dither="bayer4", strength=0.5)
    assert (binned == exact).all(-1).mean() > 0.98
