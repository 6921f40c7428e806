"""Palette files: .hex, .gpl, JASC/RIFF .pal and palette PNGs, read and write."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from comfy_nodes.pixel.errors import PaletteError
from comfy_nodes.pixel.palette import Palette
from comfy_nodes.pixel.palette_io import colors_from_image, read_palette, write_palette
from comfy_nodes.pixel.palettes_builtin import builtin

DB16 = builtin("dawnbringer-16")


@pytest.mark.parametrize("ext", [".hex", ".gpl", ".pal", ".png"])
def test_round_trip_every_format(tmp_path, ext):
    path = write_palette(DB16, tmp_path / f"db16{ext}")
    assert path.is_file()
    back = read_palette(path)
    assert np.array_equal(back.colors, DB16.colors)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_written_text_formats_are_what_other_tools_read(tmp_path):
    write_palette(DB16, tmp_path / "a.hex")
    assert (tmp_path / "a.hex").read_text().splitlines()[:2] == ["140c1c", "442434"]
    write_palette(DB16, tmp_path / "a.gpl")
    gpl = (tmp_path / "a.gpl").read_text().splitlines()
    assert gpl[0] == "GIMP Palette" and gpl[1] == "Name: dawnbringer-16"
    assert gpl[-1].split()[:3] == ["222", "238", "214"]
    write_palette(DB16, tmp_path / "a.pal")
    raw = (tmp_path / "a.pal").read_bytes()
    assert raw.startswith(b"JASC-PAL\r\n0100\r\n16\r\n20 12 28\r\n")
    write_palette(DB16, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (16, 1)
        assert im.convert("RGB").getpixel((15, 0)) == (222, 238, 214)


def test_hex_comments_blank_lines_hash_prefix_and_alpha_digits(tmp_path):
    p = tmp_path / "c.hex"
    p.write_text("; lospec export\n\n#FF0000\n00ff00ff\n# a comment\n// another\n  0000FF  \n")
    assert read_palette(p).hex_list() == ["ff0000", "00ff00", "0000ff"]


def test_hex_garbage_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.hex"
    p.write_text("ff0000\n00ff00\nnot a colour\n")
    with pytest.raises(PaletteError, match=r"bad\.hex, line 3") as exc:
        read_palette(p)
    assert "not a colour" in exc.value.message


def test_zero_colours_is_an_error(tmp_path):
    for name, text in (("e.hex", "; nothing\n\n"), ("e.gpl", "GIMP Palette\nName: x\n#\n"), ("e.pal", "JASC-PAL\n0100\n0\n")):
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(PaletteError, match=name.replace(".", r"\.")):
            read_palette(p)


def test_gpl_parsing_rules(tmp_path):
    p = tmp_path / "g.gpl"
    p.write_text("GIMP Palette\nName: Mine\nColumns: 4\n#\n  1   2   3\tfirst\n255 255 255 white\n")
    pal = read_palette(p)
    assert pal.name == "Mine" and pal.colors.tolist() == [[1, 2, 3], [255, 255, 255]]
    p.write_text("GIMP Palette\n1 2 3\n1 2 300\n")
    with pytest.raises(PaletteError, match="line 3"):
        read_palette(p)
    p.write_text("Not GIMP\n1 2 3\n")
    with pytest.raises(PaletteError, match="GIMP Palette"):
        read_palette(p)


def test_jasc_count_mismatch_and_garbage(tmp_path):
    p = tmp_path / "j.pal"
    p.write_text("JASC-PAL\n0100\n3\n1 2 3\n4 5 6\n")
    with pytest.raises(PaletteError, match="announces 3 colours but the file has 2"):
        read_palette(p)
    p.write_text("JASC-PAL\n0100\n2\n1 2 3\nx y z\n")
    with pytest.raises(PaletteError, match="line 5"):
        read_palette(p)


def test_riff_pal(tmp_path):
    entries = bytes([10, 20, 30, 0, 40, 50, 60, 0])
    data_chunk = struct.pack("<HH", 0x300, 2) + entries
    body = b"PAL " + b"data" + struct.pack("<I", len(data_chunk)) + data_chunk
    p = tmp_path / "r.pal"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert read_palette(p).colors.tolist() == [[10, 20, 30], [40, 50, 60]]


def test_swatch_png_detects_blocks_and_dedupes(tmp_path):
    cols = np.array([[255, 0, 0], [0, 255, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    img = np.zeros((16, 24, 4), np.uint8)
    # 3 swatches of 8x8 on the first row, one on the second row, rest transparent.
    for i in range(3):
        img[:8, i * 8 : (i + 1) * 8, :3] = cols[i]
        img[:8, i * 8 : (i + 1) * 8, 3] = 255
    img[8:, :8, :3] = cols[3]
    img[8:, :8, 3] = 255
    p = tmp_path / "sw.png"
    Image.fromarray(img, "RGBA").save(p)
    assert read_palette(p).hex_list() == ["ff0000", "00ff00", "0000ff"]


@pytest.mark.parametrize("swatch", [1, 3, 8])
def test_a_palette_with_repeats_round_trips_through_png_index_for_index(tmp_path, swatch):
    pal = Palette("dup", np.array([[255, 0, 0], [0, 255, 0], [0, 255, 0], [255, 0, 0], [0, 0, 255]], np.uint8))
    write_palette(pal, tmp_path / "p.png", swatch=swatch)
    assert read_palette(tmp_path / "p.png").hex_list() == pal.hex_list()


def test_a_small_sprite_as_palette_image_gives_its_distinct_colours(tmp_path):
    rng = np.random.default_rng(3)
    sprite = np.zeros((16, 16, 4), np.uint8)
    sprite[..., 3] = 255
    sprite[..., :3] = np.array([[10, 10, 10], [200, 0, 0], [0, 0, 200]], np.uint8)[rng.integers(0, 3, (16, 16))]
    Image.fromarray(sprite, "RGBA").save(tmp_path / "sprite.png")
    assert sorted(read_palette(tmp_path / "sprite.png").hex_list()) == ["0000c8", "0a0a0a", "c80000"]


def test_irregular_swatches_are_still_cut_at_colour_changes(tmp_path):
    img = np.zeros((20, 41, 4), np.uint8)
    img[..., 3] = 255  # black 1 px borders around 9 px swatches, as drawn by hand
    for i, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]):
        img[1:19, 1 + i * 10:1 + i * 10 + 9, :3] = c
    Image.fromarray(img, "RGBA").save(tmp_path / "hand.png")
    assert read_palette(tmp_path / "hand.png").hex_list() == ["000000", "ff0000", "00ff00", "0000ff", "ffff00"]


def test_photo_is_refused_as_palette_image():
    rng = np.random.default_rng(0)
    img = np.concatenate([rng.integers(0, 256, (300, 300, 3)), np.full((300, 300, 1), 255)], axis=2).astype(np.uint8)
    with pytest.raises(PaletteError):
        colors_from_image(img, source="photo.png")


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(PaletteError, match="unknown palette format"):
        read_palette(tmp_path / "x.txt")
    with pytest.raises(PaletteError, match="not found"):
        read_palette(tmp_path / "x.gpl")
    with pytest.raises(PaletteError, match="cannot write"):
        write_palette(DB16, tmp_path / "x.act")


def test_unreadable_png(tmp_path):
    p = tmp_path / "broken.png"
    p.write_bytes(b"\x89PNG garbage")
    with pytest.raises(PaletteError, match="broken.png"):
        read_palette(p)


def test_write_then_read_keeps_order_of_adaptive_palette(tmp_path):
    pal = Palette("mine", np.array([[9, 9, 9], [1, 2, 3], [200, 100, 0]], np.uint8))
    for ext in (".hex", ".gpl", ".pal", ".png"):
        assert read_palette(write_palette(pal, tmp_path / f"m{ext}")).colors.tolist() == pal.colors.tolist()


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(colors=arrays(np.uint8, st.tuples(st.integers(1, 40), st.just(3))), ext=st.sampled_from([".hex", ".gpl", ".pal", ".png"]))
def test_property_round_trip(tmp_path, colors, ext):
    from comfy_nodes.pixel.palette import dedupe_colors

    pal = Palette("p", dedupe_colors(colors))
    back = read_palette(write_palette(pal, tmp_path / f"rt{ext}"))
    assert back.colors.tolist() == pal.colors.tolist()


@pytest.mark.parametrize("text, line, what", [
    ("#ff0000\n#12345\n", 2, "expected a colour as rrggbb (6 hex digits, or 3 as in CSS), got '#12345'"),
    ("#ff0000\n#abcdef1\n", 2, "got '#abcdef1'"),
    ("FFFF0000\n", 1, "'FFFF0000' is read as rrggbbaa, and its alpha 00 is not opaque"),
])
def test_a_hex_line_of_hex_digits_that_is_no_colour_is_an_error_not_a_comment(tmp_path, text, line, what):
    p = tmp_path / "mix.hex"
    p.write_text(text)
    with pytest.raises(PaletteError) as exc:
        read_palette(p)
    assert exc.value.message.startswith(f"{p}, line {line}: ") and what in exc.value.message
    assert exc.value.hint == "fix or remove that line of mix.hex"


def test_hex_shorthand_opaque_alpha_and_comments(tmp_path):
    p = tmp_path / "ok.hex"
    p.write_text("# exported by a tool\n#0f0\nf80\nff0000ff\n# end\n")
    assert read_palette(p).hex_list() == ["00ff00", "ff8800", "ff0000"]


def test_gimp3_rgba_palette(tmp_path):
    p = tmp_path / "rgba.gpl"
    p.write_text("GIMP Palette\nName: x\nChannels: RGBA\n255 0 0 255 Red\n0 0 255 255\n")
    assert read_palette(p).hex_list() == ["ff0000", "0000ff"]
    p.write_text("GIMP Palette\nChannels: RGBA\n255 0 0 128 Red\n")
    with pytest.raises(PaletteError, match=r"line 3: alpha 128 is not opaque"):
        read_palette(p)
