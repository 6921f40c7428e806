"""Palette files: .hex, .gpl, JASC/RIFF .pal, Paint.NET .txt and palette PNGs, read and write."""
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
    # the black border and gutters are no palette colour
    assert read_palette(tmp_path / "hand.png").hex_list() == ["ff0000", "00ff00", "0000ff", "ffff00"]


def test_photo_is_refused_as_palette_image():
    rng = np.random.default_rng(0)
    img = np.concatenate([rng.integers(0, 256, (300, 300, 3)), np.full((300, 300, 1), 255)], axis=2).astype(np.uint8)
    with pytest.raises(PaletteError):
        colors_from_image(img, source="photo.png")


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(PaletteError, match="unknown palette format"):
        read_palette(tmp_path / "x.doc")
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
    with pytest.raises(PaletteError, match=r"line 3: alpha 128 is neither opaque nor fully transparent"):
        read_palette(p)
    # Aseprite's RGBA palettes start with the transparent slot: no colour, the rest is read
    p.write_text("GIMP Palette\nChannels: RGBA\n#\n  0   0   0   0 Transparent\n254  91  89 255 Red\n")
    pal = read_palette(p)
    assert pal.hex_list() == ["fe5b59"] and pal.names == ("Red",)


# --------------------------------------------------------------- real-world files and their quirks


def _grid(colors, *, swatch=10, gap=2, border=2, cols=4, gutter=(0, 0, 0)):
    rows = -(-len(colors) // cols)
    h, w = border * 2 + rows * swatch + (rows - 1) * gap, border * 2 + cols * swatch + (cols - 1) * gap
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = gutter
    for i, c in enumerate(colors):
        y, x = divmod(i, cols)
        y0, x0 = border + y * (swatch + gap), border + x * (swatch + gap)
        img[y0:y0 + swatch, x0:x0 + swatch] = c
    return img


@pytest.mark.parametrize("gutter", [(0, 0, 0), (255, 255, 255)])
def test_swatch_grid_with_border_and_gutters_gives_the_swatches_only(tmp_path, gutter):
    cols = DB16.colors.copy()
    img = _grid(cols, gutter=gutter)
    Image.fromarray(img).save(tmp_path / "grid.png")
    assert read_palette(tmp_path / "grid.png").hex_list() == DB16.hex_list()
    # a swatch of the gutter's own colour is still a swatch
    cols[5] = gutter
    Image.fromarray(_grid(cols, gutter=gutter)).save(tmp_path / "grid2.png")
    assert read_palette(tmp_path / "grid2.png").colors.tolist() == cols.tolist()


@pytest.mark.parametrize("gutter", [(0, 0, 0), (255, 255, 255)])
def test_free_slots_of_a_last_row_in_the_gutter_colour_are_no_colour(tmp_path, gutter):
    """13 colours in rows of 4: the last row's three free slots show the gutter colour, and
    were read as a 14th colour."""
    cols = DB16.colors[:13].copy()
    Image.fromarray(_grid(cols, gutter=gutter)).save(tmp_path / "grid.png")
    assert read_palette(tmp_path / "grid.png").hex_list() == DB16.hex_list()[:13]
    # before the free slots, a swatch of the gutter's colour is still a swatch
    cols[11] = gutter
    Image.fromarray(_grid(cols, gutter=gutter)).save(tmp_path / "grid2.png")
    assert read_palette(tmp_path / "grid2.png").colors.tolist() == cols.tolist()


def test_one_narrow_swatch_in_a_strip_is_kept(tmp_path):
    img = np.zeros((8, 24, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 10:20] = (0, 255, 0)
    img[:, 20:] = (0, 0, 255)  # 4 px wide: narrow, yet a colour
    Image.fromarray(img).save(tmp_path / "s.png")
    assert read_palette(tmp_path / "s.png").hex_list() == ["ff0000", "00ff00", "0000ff"]


def test_a_large_photo_is_refused_fast(tmp_path):
    import time

    rng = np.random.default_rng(1)
    img = np.concatenate([rng.integers(0, 256, (1024, 1024, 3)), np.full((1024, 1024, 1), 255)], axis=2).astype(np.uint8)
    t = time.perf_counter()
    with pytest.raises(PaletteError, match=r"photo\.png: does not look like a palette image \(1024x1024"):
        colors_from_image(img, source="photo.png")
    assert time.perf_counter() - t < 1.0  # counting its colours for the message took seconds


def test_more_than_256_colours_in_an_image_says_what_to_do(tmp_path):
    rng = np.random.default_rng(2)
    cols = rng.choice(1 << 24, 300, replace=False)
    strip = np.stack([cols >> 16, (cols >> 8) & 255, cols & 255], axis=1).astype(np.uint8)[None]
    Image.fromarray(strip).save(tmp_path / "many.png")
    with pytest.raises(PaletteError, match="300 colours") as exc:
        read_palette(tmp_path / "many.png")
    assert "256" in exc.value.hint


def test_hex_colour_followed_by_a_name_is_read_not_skipped(tmp_path):
    p = tmp_path / "named.hex"
    p.write_text("#ff0000 red\n#00ff00\t// green\n0000ff ; blue\n# 3 colours\n#1 is red\n")
    assert read_palette(p).hex_list() == ["ff0000", "00ff00", "0000ff"]
    p.write_text("#ff0000\n#fff white\n")
    with pytest.raises(PaletteError, match=r"named\.hex, line 2: '#fff white' is a colour followed by other text"):
        read_palette(p)


@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbfff0000\r\n00ff00\r\n0000ff\r\n",  # UTF-8 BOM, CRLF
    b"ff0000\r00ff00\r0000ff\r",  # old Mac CR
    b"ff0000  \t\n00FF00\t\n#0000Ff \n",  # trailing blanks, any case
    "\ufeffff0000\r\n00ff00\r\n0000ff\r\n".encode("utf-16-le"),  # Notepad's "Unicode"
    "\ufeffff0000\n00ff00\n0000ff\n".encode("utf-16-be"),
])
def test_hex_encodings_and_line_ends(tmp_path, raw):
    p = tmp_path / "e.hex"
    p.write_bytes(raw)
    assert read_palette(p).hex_list() == ["ff0000", "00ff00", "0000ff"]


def test_non_utf8_names_are_read_as_latin1_and_binary_files_are_refused(tmp_path):
    p = tmp_path / "old.gpl"
    p.write_bytes(b"GIMP Palette\nName: Caf\xe9\n1 2 3 r\xe9d\n")
    pal = read_palette(p)
    assert pal.name == "Caf\u00e9" and pal.names == ("r\u00e9d",) and pal.hex_list() == ["010203"]
    b = tmp_path / "swatches.hex"
    b.write_bytes(b"ASEF\x00\x01\x00\x00\x00\x02")
    with pytest.raises(PaletteError, match=r"swatches\.hex: a binary file, not a text palette"):
        read_palette(b)


def test_paintnet_txt_palette(tmp_path):
    p = tmp_path / "lospec.txt"
    p.write_text(";paint.net Palette File\r\n;Downloaded from Lospec.com/palette-list\r\n;Palette Name: X\r\n"
                 ";Colors: 3\r\nFFFF0000\r\nFF00FF00\r\n0000ff\r\n")
    assert read_palette(p).hex_list() == ["ff0000", "00ff00", "0000ff"]
    # the same file saved as .hex is still Paint.NET's aarrggbb, not rrggbbaa
    h = tmp_path / "lospec.hex"
    h.write_bytes(p.read_bytes())
    assert read_palette(h).hex_list() == ["ff0000", "00ff00", "0000ff"]
    p.write_text(";paint.net Palette File\nFF00FF00\n80FF0000\n")
    with pytest.raises(PaletteError, match=r"lospec\.txt, line 3: '80FF0000' is aarrggbb, and its alpha 80"):
        read_palette(p)
    p.write_text("FF00FF00\nred\n")
    with pytest.raises(PaletteError, match=r"lospec\.txt, line 2: expected a colour as aarrggbb"):
        read_palette(p)
    # a list of CSS colours saved as .txt
    p.write_text("#1a1c2c\n#5D275D\n")
    assert read_palette(p).hex_list() == ["1a1c2c", "5d275d"]


@pytest.mark.parametrize("ext, what", [(".ase", "Adobe Swatch Exchange"), (".aco", "Photoshop"), (".act", "Color Table")])
def test_adobe_swatches_say_they_are_not_read_and_what_is(tmp_path, ext, what):
    p = tmp_path / f"sw{ext}"
    p.write_bytes(b"ASEF\x00\x01\x00\x00")
    with pytest.raises(PaletteError, match=what) as exc:
        read_palette(p)
    assert str(p) in exc.value.message
    for fmt in (".hex", ".gpl", ".pal", ".txt", ".png"):
        assert fmt in exc.value.hint


def test_folder_given_as_palette(tmp_path):
    # a folder without an extension too (Palette Load's file=palettes said "unknown palette format")
    for ext in (".hex", ".pal", ".png", ""):
        d = tmp_path / f"dir{ext}"
        d.mkdir()
        with pytest.raises(PaletteError, match="is a folder, not a palette file"):
            read_palette(d)


@pytest.mark.parametrize("text, line, what", [
    ("JASC-PAL\r\n0200\r\n1\r\n1 2 3\r\n", 2, "expected the JASC-PAL version 0100, got '0200'"),
    ("JASC-PAL\n16\n1 2 3\n", 2, "expected the JASC-PAL version 0100, got '16'"),
    ("JASC-PAL\n0100\n", 3, "the file ends inside the JASC header"),
    ("JASC-PAL\n0100\n0\n", 3, "the header says 0 colours"),
    ("JASC-PAL\r\n0100\r\n1\r\n1 2 3\r\n4 5 6\r\n", 5, "more colour lines than the 1 the header announces"),
])
def test_jasc_header_problems_name_the_line(tmp_path, text, line, what):
    p = tmp_path / "j.pal"
    p.write_bytes(text.encode())
    with pytest.raises(PaletteError) as exc:
        read_palette(p)
    assert exc.value.message.startswith(f"{p}, line {line}: ") and what in exc.value.message


def test_jasc_fewer_colours_than_announced_says_how_to_fix(tmp_path):
    p = tmp_path / "few.pal"
    p.write_bytes(b"\xef\xbb\xbfJASC-PAL\r0100\r2\r1 2 3\r")
    with pytest.raises(PaletteError, match="announces 2 colours") as exc:
        read_palette(p)
    assert "line 3 of few.pal" in exc.value.hint


def test_gpl_colour_names_survive_a_round_trip(tmp_path):
    p = tmp_path / "n.gpl"
    p.write_bytes(b"GIMP Palette\r\nName: My Pal\r\nColumns: 8\r\n#\r\n255\t0\t0\tRed Thing\r\n"
                  b"  0   255    0    Green   guy  \r\n0 0 255\r\n")
    pal = read_palette(p)
    assert pal.name == "My Pal" and pal.names == ("Red Thing", "Green   guy", "")
    back = read_palette(write_palette(pal, tmp_path / "out.gpl"))
    assert back.name == "My Pal" and back.names == ("Red Thing", "Green   guy", "")  # the hex shown is no name
    assert back.colors.tolist() == pal.colors.tolist()
    # a name can never break the file's lines
    odd = Palette("two\nlines", np.array([[1, 2, 3]], np.uint8), names=("a\nb\tc",))
    text = (tmp_path / "odd.gpl")
    write_palette(odd, text)
    assert text.read_text().splitlines()[1] == "Name: two lines"
    assert read_palette(text).names == ("a b c",)


def test_palette_names_must_match_colours():
    with pytest.raises(PaletteError, match="2 colour names for 1 colours"):
        Palette("x", np.array([[1, 2, 3]], np.uint8), names=("a", "b"))


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import os

    from comfy_nodes.pixel.errors import ExportError

    target = tmp_path / "keep.gpl"
    write_palette(DB16, target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ExportError, match="No space left on device"):
        write_palette(builtin("db32"), target)
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["keep.gpl"]


def test_gpl_header_fields_of_other_tools_are_skipped(tmp_path):
    p = tmp_path / "k.gpl"
    p.write_text("GIMP Palette\nName: K\nDescription: exported by some tool\nColumns: 2\n#\n1 2 3 a\n4 5 6 b\n")
    assert read_palette(p).hex_list() == ["010203", "040506"]
    p.write_text("GIMP Palette\n1 2 3\nred\n")
    with pytest.raises(PaletteError, match=r"k\.gpl, line 3: expected 'R G B \[name\]'"):
        read_palette(p)


def test_palette_files_are_listed_as_palette_load_offers_them(tmp_path):
    """Palette-only formats anywhere, text and images only in palettes/; hidden files and links
    out of the folder are not offered (they could not be read through it)."""
    from comfy_nodes.pixel.palette_io import list_palette_files

    root = tmp_path / "input"
    (root / "palettes" / "retro").mkdir(parents=True)
    (root / "art").mkdir()
    (root / ".cache").mkdir()
    for rel in ("a.hex", "art/b.GPL", "art/c.pal", "palettes/d.txt", "palettes/retro/e.png", "palettes/f.hex",
                "art/prompt.txt", "art/picture.png", ".cache/g.hex", "palettes/.h.hex", "palettes/notes.md"):
        (root / rel).write_text("ff0000\n")
    outside = tmp_path / "secret.hex"
    outside.write_text("00ff00\n")
    (root / "link.hex").symlink_to(outside)
    (root / "palettes" / "inside.hex").symlink_to(root / "a.hex")
    (root / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    assert list_palette_files(root) == ["a.hex", "art/b.GPL", "art/c.pal", "palettes/d.txt", "palettes/f.hex",
                                        "palettes/inside.hex", "palettes/retro/e.png"]
    assert list_palette_files(root, limit=2) == ["a.hex", "art/b.GPL"]
    assert list_palette_files(tmp_path / "missing") == []
