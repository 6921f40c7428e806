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
