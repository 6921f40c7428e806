"""Nearest palette colour: CIEDE2000 (checked against published data) over an OKLab shortlist."""
from __future__ import annotations

import numpy as np
import pytest

from comfy_nodes.pixel.color import ciede2000, oklab_to_cielab, srgb_to_cielab, srgb_to_oklab
from comfy_nodes.pixel.match import SHORTLIST, PaletteMatcher
from comfy_nodes.pixel.palette import Palette, quantize
from comfy_nodes.pixel.palettes_builtin import builtin

# Sharma, Wu and Dalal (2005), Table 1: (L, a, b) pairs and their CIEDE2000 difference, chosen
# by the authors to exercise every branch of the formula (hue wrap-around, neutral colours).
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, -1.1848, -84.8006), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, -0.9009, -85.5211), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, -1.0, 2.0), (50.0, 0.0, 0.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0010), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0011), 7.2195),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0012), 7.2195),
    ((50.0, -0.0010, 2.4900), (50.0, 0.0009, -2.4900), 4.8045),
    ((50.0, -0.0010, 2.4900), (50.0, 0.0011, -2.4900), 4.7461),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((50.0, 2.5, 0.0), (50.0, 3.1736, 0.5854), 1.0000),
    ((50.0, 2.5, 0.0), (50.0, 3.2972, 0.0), 1.0000),
    ((50.0, 2.5, 0.0), (50.0, 1.8634, 0.5757), 1.0000),
    ((50.0, 2.5, 0.0), (50.0, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]

PICO_NAVY = (29, 43, 83)


def test_ciede2000_matches_the_published_test_data_both_ways():
    a = np.array([p[0] for p in SHARMA])
    b = np.array([p[1] for p in SHARMA])
    want = np.array([p[2] for p in SHARMA])
    assert np.abs(ciede2000(a, b) - want).max() < 1e-4
    assert np.abs(ciede2000(b, a) - want).max() < 1e-4
    assert np.abs(ciede2000(a.astype(np.float32), b.astype(np.float32)) - want).max() < 1e-3


def test_cielab_of_known_colours():
    lab = srgb_to_cielab(np.array([[255, 255, 255], [255, 0, 0], [0, 0, 0], [0, 0, 255]], np.uint8))
    # sRGB red and blue in CIELAB (D65), as every reference calculator gives them
    assert np.allclose(lab[0], [100.0, 0.0, 0.0], atol=0.01)
    assert np.allclose(lab[1], [53.24, 80.09, 67.20], atol=0.01)
    assert np.allclose(lab[2], [0.0, 0.0, 0.0], atol=1e-9)
    assert np.allclose(lab[3], [32.30, 79.19, -107.86], atol=0.01)
    rgb = np.random.default_rng(0).integers(0, 256, (500, 3)).astype(np.uint8)
    assert np.allclose(oklab_to_cielab(srgb_to_oklab(rgb)), srgb_to_cielab(rgb), atol=1e-9)


@pytest.mark.parametrize("dark_red", [(80, 10, 10), (60, 0, 0), (70, 20, 30), (100, 25, 20)])
def test_dark_reds_keep_their_hue_on_pico8(dark_red):
    img = np.zeros((1, 1, 4), np.uint8)
    img[0, 0] = [*dark_red, 255]
    got = tuple(int(v) for v in quantize(img, builtin("pico-8"))[0, 0, :3])
    assert got != PICO_NAVY
    # a red-purple hue (OKLab a > 0), as the input's
    assert srgb_to_oklab(np.array(got, np.uint8))[1] > 0.05, got


# Random chromatic colours (OKLab chroma > 0.08) mapped by Euclidean OKLab distance: share
# mapped to the opposite side of the hue circle / to a grey (chroma < 0.03), measured:
# pico-8 0.27 % / 8.8 %, nes 0.17 % / 2.0 %, cga 0.01 % / 16 %, dawnbringer-16 0.31 % / 5.7 %.
# By CIEDE2000: no flips on any of them; greys 2.6 %, 0.05 %, 3.9 %, and 11 % on
# dawnbringer-16, whose greys are the nearest lightness for many saturated random colours
# (on real sprites' colours it greys fewer: 1.4 % against 7.9 %, see match.py).
@pytest.mark.parametrize("name,greyed_max", [("pico-8", 0.04), ("nes", 0.005), ("cga", 0.06), ("dawnbringer-16", None)])
def test_chromatic_colours_never_flip_hue(name, greyed_max):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (20000, 3)).astype(np.uint8)
    lab = srgb_to_oklab(rgb)
    chromatic = np.hypot(lab[:, 1], lab[:, 2]) > 0.08
    rgb, lab = rgb[chromatic], lab[chromatic]
    img = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)[None]
    out = srgb_to_oklab(quantize(img, builtin(name))[0, :, :3])
    out_chroma = np.hypot(out[:, 1], out[:, 2])
    dh = np.abs(np.angle(np.exp(1j * (np.arctan2(lab[:, 2], lab[:, 1]) - np.arctan2(out[:, 2], out[:, 1])))))
    assert int(((out_chroma > 0.04) & (dh > np.pi / 2)).sum()) == 0
    if greyed_max is not None:
        assert (out_chroma < 0.03).mean() < greyed_max


@pytest.mark.parametrize("name", ["aap-64", "nes", "endesga-32"])
def test_shortlist_finds_the_ciede2000_nearest_of_all(name):
    cols = np.asarray(builtin(name).colors)[:, :3]
    assert len(cols) > SHORTLIST
    rgb = np.random.default_rng(2).integers(0, 256, (20000, 3)).astype(np.uint8)
    got = PaletteMatcher(srgb_to_oklab(cols)).nearest(srgb_to_oklab(rgb))
    full = ciede2000(srgb_to_cielab(rgb)[:, None], srgb_to_cielab(cols)[None])
    regret = full[np.arange(len(rgb)), got] - full.min(axis=1)
    assert (regret < 1e-3).mean() > 0.998


def test_exact_ties_go_to_the_lower_index_and_small_palettes_are_exact():
    pal = Palette("dup", np.array([[10, 200, 30], [250, 0, 0], [10, 200, 30], [0, 0, 255]], np.uint8))
    m = PaletteMatcher(pal.to_oklab())
    lab = srgb_to_oklab(np.array([[10, 200, 30], [12, 190, 40], [240, 10, 10]], np.uint8))
    assert m.nearest(lab).tolist() == [0, 0, 1]
    assert PaletteMatcher(pal.to_oklab()[:1]).nearest(lab).tolist() == [0, 0, 0]
    assert m.nearest(np.zeros((0, 3))).shape == (0,)


def test_colours_far_outside_the_colour_solid_get_a_colour_without_warnings():
    import warnings

    pal = builtin("gameboy")
    far = np.array([[50.0, 80.0, -90.0], [-40.0, 0.0, 0.0], [1e6, -1e6, 1e6], [0.5, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = PaletteMatcher(pal.to_oklab()).nearest(far)
    assert got.shape == (4,) and ((got >= 0) & (got < len(pal))).all()
    assert got[1] == int(np.argmin(pal.to_oklab()[:, 0]))  # far below black: the darkest green


def test_exact_ties_go_to_the_lower_index_on_the_shortlist_too():
    rng = np.random.default_rng(9)
    cols = rng.integers(0, 256, (SHORTLIST + 8, 3)).astype(np.uint8)
    cols[SHORTLIST + 5] = cols[3]  # a repeat far down the palette
    m = PaletteMatcher(Palette("p", cols).to_oklab())
    near = srgb_to_oklab(np.clip(cols[3].astype(int) + [2, -1, 1], 0, 255).astype(np.uint8)[None])
    assert m.nearest(srgb_to_oklab(cols[3][None])).tolist() == [3]
    assert m.nearest(near).tolist() == [3]
