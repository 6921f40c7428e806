"""Bad input to the palette, cleanup, sheet and export code: every case gives either a correct
result or a ``DgxPixelsError`` that names the input and says what was expected; through the CLI,
``error:`` + ``hint:`` and the documented exit code, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from comfy_nodes.pixel import sheet as S
from comfy_nodes.pixel.bevy_export import export_asset, export_sheet
from comfy_nodes.pixel.cleanup import crop_box, remove_background, remove_strays, trim_batch
from comfy_nodes.pixel.errors import ExportError, InputImageError, InvalidArgumentError, PaletteError
from comfy_nodes.pixel.palette import Palette, adaptive_palette, quantize
from comfy_nodes.pixel.palettes_builtin import builtin
from comfy_nodes.pixel.tileset import build_tileset, check_seamless, split_tileset
from orchestrator.cli import main

PICO = builtin("pico-8")


def sprite(h=8, w=8):
    a = np.zeros((h, w, 4), np.uint8)
    a[2:6, 2:6] = (200, 30, 30, 255)
    a[3, 3] = (30, 30, 200, 255)
    return a


# ----------------------------------------------------------------------------- core


def test_split_offset_beyond_the_sheet_names_offset_and_size():
    with pytest.raises(InvalidArgumentError, match=r"offset 40,40 leaves nothing of the 8x8 sheet") as exc:
        S.split_sheet(sprite(), offset=40)
    assert "7,7" in exc.value.hint
    with pytest.raises(InvalidArgumentError, match="offset 8,0"):
        S.split_sheet(sprite(), offset=(8, 0), cell_size=(2, 2))


def test_split_rejects_non_positive_cells_and_negative_counts():
    with pytest.raises(InvalidArgumentError, match="cell size must be at least 1x1, got -2x2"):
        S.split_sheet(sprite(), cell_size=(-2, 2))
    with pytest.raises(InvalidArgumentError, match="columns must be a whole number >= 1"):
        S.split_sheet(sprite(), columns=-2, padding=0)
    with pytest.raises(InvalidArgumentError, match="rows must be a whole number >= 1"):
        S.split_sheet(sprite(), rows=-1, padding=0)


def test_build_sheet_rejects_wrong_kinds_of_arguments():
    with pytest.raises(InvalidArgumentError, match="no frames"):
        S.build_sheet(None)
    with pytest.raises(InvalidArgumentError, match="unknown trim mode None"):
        S.build_sheet([sprite()], trim=None)
    with pytest.raises(InvalidArgumentError, match="anchor must be one of bottom-center"):
        S.build_sheet([sprite()], anchor=None)
    with pytest.raises(InvalidArgumentError, match="animations must be a spec string or a list of Animation, got int"):
        S.build_sheet([sprite()], animations=5)
    # the two accepted kinds still work
    a = S.build_sheet([sprite(), sprite()], animations=[S.Animation("idle", 0, 1, 8.0)])
    b = S.build_sheet([sprite(), sprite()], animations="idle:0-1@8")
    assert a.animations == b.animations


def test_sheet_preview_of_a_huge_sheet_is_capped():
    # A 4096x4096 sheet previewed at scale 16 would take 4 GiB: the scale drops to fit the cap
    # (shown here with a small cap, so the test stays cheap).
    out = S.sheet_preview(sprite(), scale=16, max_pixels=1000)
    assert out.shape == (24, 24, 4)  # 8 * 3, the largest scale within 1000 pixels
    # a sheet beyond the cap on its own: every 3rd pixel (3 x 3 <= 10)
    assert S.sheet_preview(sprite(), scale=16, max_pixels=10).shape == (3, 3, 4)
    assert S.PREVIEW_MAX_PIXELS == 4096 * 4096
    small = S.sheet_preview(sprite(), scale=3)
    assert small.shape == (24, 24, 4)  # small sheets keep the asked scale
    with pytest.raises(InvalidArgumentError, match="preview scale must be a whole number >= 1"):
        S.sheet_preview(sprite(), scale=0)


def test_seam_tolerance_must_be_a_number_in_range():
    with pytest.raises(InvalidArgumentError, match="seam tolerance must be 0..255"):
        check_seamless([sprite()], float("nan"))
    with pytest.raises(InvalidArgumentError, match="seam tolerance must be 0..255"):
        check_seamless([sprite()], -1)
    with pytest.raises(InvalidArgumentError, match="seam tolerance must be a number"):
        check_seamless([sprite()], "x")


def test_adaptive_palette_seed_and_images_are_checked():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    for seed in (-1, "x", 2**32, 1.5):
        with pytest.raises(InvalidArgumentError, match="seed must be an integer 0..4294967295"):
            adaptive_palette(img, 4, seed=seed)
    with pytest.raises(InputImageError, match="images is NoneType, expected an image array"):
        adaptive_palette(None, 4)
    with pytest.raises(InputImageError, match="images is a int, expected an image array"):
        adaptive_palette(5, 4)
    for k in (0, -3, 257):
        with pytest.raises(InvalidArgumentError, match="k must be 1..256"):
            adaptive_palette(img, k)


def test_k_larger_than_the_distinct_colours_returns_exactly_those():
    img = sprite()
    p = adaptive_palette(img, 200)
    assert sorted(p.hex_list()) == ["1e1ec8", "c81e1e"]


def test_one_pixel_images_work_everywhere():
    one = np.array([[[10, 20, 30, 255]]], np.uint8)
    assert adaptive_palette(one, 4).hex_list() == ["0a141e"]
    q = quantize(one, PICO)
    assert q.shape == (1, 1, 4) and tuple(q[0, 0, :3]) in {tuple(c) for c in PICO.colors.tolist()}
    assert remove_background(one).shape == (1, 1, 4)
    assert np.array_equal(remove_strays(one), one)
    s = S.build_sheet([one, one])
    assert (s.width, s.height, s.cell_w, s.cell_h) == (2, 1, 1, 1)


def test_mixed_sizes_in_list_inputs():
    a, b = sprite(8, 8), sprite(6, 10)
    p = adaptive_palette([a, b], 2)
    assert len(p) == 2
    r = trim_batch([a, b], union=False)
    assert [x.image.shape[:2] for x in r] == [(4, 4), (4, 4)]
    with pytest.raises(InputImageError, match=r"frames\[1\] is 10x6 but frames\[0\] is 8x8"):
        trim_batch([a, b], union=True)
    with pytest.raises(InvalidArgumentError, match="tile 1 is 10x6 but tile 0 is 8x8"):
        build_tileset([a, b])


def test_export_sheet_of_wrong_kind_names_it(tmp_path):
    with pytest.raises(InvalidArgumentError, match="sheet is a str, expected a Sheet or a list of frames"):
        export_sheet(tmp_path, "x.png", "sheet.png", create_project=True)
    with pytest.raises(InputImageError, match="image contains NaN") as exc:
        export_asset(tmp_path, "x.png", np.full((4, 4, 3), np.nan), create_project=True)
    assert exc.value.hint == "check the step that produced it"


def test_export_write_failure_is_an_export_error_naming_the_path(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "sprites").write_text("a file where a folder is needed")
    with pytest.raises(ExportError, match=r"cannot write .*sprites") as exc:
        export_asset(tmp_path, "sprites/knight.png", sprite())
    assert "folder" in exc.value.hint
    assert not list((tmp_path / "assets").rglob("*.tmp"))


def test_palette_without_colours_or_with_garbage(tmp_path):
    from comfy_nodes.pixel.palette_io import read_palette

    (tmp_path / "zero.gpl").write_text("GIMP Palette\nName: z\n")
    with pytest.raises(PaletteError, match=r"zero.gpl: no colours found in this .gpl file"):
        read_palette(tmp_path / "zero.gpl")
    (tmp_path / "g.hex").write_text("ff0000\nhello world\n")
    with pytest.raises(PaletteError, match=r"g.hex, line 2: expected a colour as rrggbb"):
        read_palette(tmp_path / "g.hex")
    with pytest.raises(PaletteError, match="has no colours"):
        Palette("empty", np.zeros((0, 3), np.uint8))


# ----------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 8), data_seed=st.integers(0, 1000),
       auto=st.booleans())
def test_property_adaptive_palette_deterministic_and_quantize_within(seed, k, data_seed, auto):
    # More distinct colours than k: the k-means path, not the exact-colours shortcut.
    rng = np.random.default_rng(data_seed)
    img = rng.integers(0, 256, (10, 10, 4), dtype=np.uint8)
    img[..., 3] = np.where(rng.random((10, 10)) < 0.2, 0, 255)
    kk = None if auto else k
    p = adaptive_palette(img, kk, seed=seed)
    assert p == adaptive_palette(img, kk, seed=seed)
    assert 1 <= len(p) <= (64 if auto else k)
    out = quantize(img, p)
    assert out.shape == img.shape
    assert set(np.unique(out[..., 3]).tolist()) <= {0, 255}
    opaque = out[..., 3] == 255
    assert {tuple(c) for c in out[opaque][:, :3].tolist()} <= {tuple(c) for c in p.colors.tolist()}


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9), pad=st.integers(0, 2),
       data_seed=st.integers(0, 1000))
def test_property_trim_batch_union_round_trip(n, h, w, pad, data_seed):
    rng = np.random.default_rng(data_seed)
    frames = [rng.integers(0, 256, (h, w, 4), dtype=np.uint8) for _ in range(n)]
    for f in frames:
        f[..., 3] = np.where(rng.random((h, w)) < 0.6, 0, f[..., 3])
    res = trim_batch(frames, padding=pad, union=True)
    assert len({r.box for r in res}) == 1 and len({r.image.shape for r in res}) == 1
    if all(r.empty for r in res):
        return
    left, top, right, bottom = res[0].box
    for f, r in zip(frames, res):
        # cropping the trimmed frame back to the source rectangle restores every visible pixel
        back = crop_box(r.image, (-left, -top, w - left, h - top))
        vis = f[..., 3] > 0
        assert np.array_equal(back[vis], f[vis])
        assert not (back[..., 3] > 0)[~vis].any()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 7), tw=st.integers(1, 6), th=st.integers(1, 6), cols=st.integers(0, 4),
       spacing=st.integers(0, 2), margin=st.integers(0, 2), data_seed=st.integers(0, 1000))
def test_property_tileset_round_trip(n, tw, th, cols, spacing, margin, data_seed):
    rng = np.random.default_rng(data_seed)
    tiles = [rng.integers(0, 256, (th, tw, 4), dtype=np.uint8) for _ in range(n)]
    ts = build_tileset(tiles, columns=cols or None, spacing=spacing, margin=margin)
    back = split_tileset(ts.image, tw, th, spacing=spacing, margin=margin, count=n)
    assert len(back) == n
    for a, b in zip(tiles, back):
        assert np.array_equal(a, b)
    sheet = ts.as_sheet()
    S.check_layout(sheet)
    assert all(np.array_equal(a, b) for a, b in zip(tiles, S.split_like(sheet)))


# ----------------------------------------------------------------------------- CLI


def _png(path, arr, mode=None):
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return str(path)


@pytest.fixture
def pngs(tmp_path):
    rng = np.random.default_rng(1)
    rgb = (rng.integers(0, 4, (16, 16, 3)) * 80).astype(np.uint8)
    alpha = np.where(rng.random((16, 16)) > 0.5, 255, 0).astype(np.uint8)
    files = {
        "rgb": _png(tmp_path / "rgb.png", rgb),
        "rgba": _png(tmp_path / "rgba.png", np.dstack([rgb, alpha]), "RGBA"),
        "one": _png(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8)),
    }
    im = Image.fromarray(rgb)
    for mode in ("L", "LA", "P"):
        p = tmp_path / f"{mode}.png"
        im.convert(mode).save(p)
        files[mode] = str(p)
    p16 = tmp_path / "g16.png"
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(p16)
    files["I16"] = str(p16)
    return files


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("kind", ["rgb", "rgba", "L", "LA", "P", "I16", "one"])
def test_cli_reads_every_png_mode(capsys, tmp_path, pngs, kind):
    rc, out, err = _cli(capsys, "palette", "extract", pngs[kind], "-k", "4", "-o", str(tmp_path / "p.hex"))
    assert rc == 0, err
    n = len((tmp_path / "p.hex").read_text().split())
    assert 1 <= n <= 4
    rc, out, err = _cli(capsys, "sheet", pngs[kind], pngs["rgb"], "-o", str(tmp_path / "s.png"), "--trim", "none")
    assert rc == 0, err
    w = max(Image.open(pngs[kind]).width, 16)
    assert Image.open(tmp_path / "s.png").size == (2 * w, 16)
    (tmp_path / "game").mkdir()
    (tmp_path / "game" / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    rc, out, err = _cli(capsys, "export", pngs[kind], "--bevy", str(tmp_path / "game"), "--path", "s/k.png", "--no-snippet")
    assert rc == 0, err
    written = Image.open(tmp_path / "game" / "assets" / "s" / "k.png")
    assert written.mode == "RGBA" and written.size == Image.open(pngs[kind]).size
    assert (tmp_path / "game" / "assets" / "s" / "k.png.meta").is_file()
    if kind == "I16":  # 16-bit grey scaled to 8 bits exactly (v * 257 -> v)
        src = np.asarray(Image.open(pngs[kind]), dtype=np.int64) // 257
        got = np.asarray(written)
        assert np.array_equal(got[..., 0], src) and np.array_equal(got[..., 2], src) and (got[..., 3] == 255).all()


@pytest.mark.parametrize("argv, code, message", [
    (["sheet", "{rgb}", "--split", "-o", "{tmp}/d", "--offset", "40"], 2, "offset 40,40 leaves nothing of the 16x16 sheet"),
    (["sheet", "{rgb}", "-o", "{rgb}/x.png"], 6, "cannot write"),
    (["sheet", "{rgb}", "--split", "-o", "{rgb}/d", "--cell", "4x4"], 6, "cannot write"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.png", "--json", "{rgb}/x.json"], 6, "cannot write"),
    (["sheet", "{rgb}", "--tileset", "-o", "{tmp}/t.png", "--tolerance", "nan"], 2, "--tolerance must be 0..255"),
    (["sheet", "{rgb}", "--tileset", "-o", "{tmp}/t.png", "--tolerance", "300"], 2, "--tolerance must be 0..255"),
    # options a mode would ignore are refused, before anything is written
    (["sheet", "{rgb}", "--tileset", "-o", "{tmp}/t.png", "--json", "{tmp}/t.json"], 2, "--json does not apply to --tileset"),
    (["sheet", "{rgb}", "--tileset", "-o", "{tmp}/t.png", "--animations", "a:0-1", "--pow2", "--anchor", "center"], 2,
     "--anchor, --pow2, --animations do not apply to --tileset"),
    (["sheet", "{rgb}", "--split", "-o", "{tmp}/d", "--json", "{tmp}/x.json", "--preview", "{tmp}/p.png"], 2,
     "--json, --preview do not apply to --split"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.png", "--count", "3", "--strict"], 2, "--count, --strict do not apply to a sprite sheet"),
    (["sheet", "{tmp}/empty", "-o", "{tmp}/s.png"], 2, "folder"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.jpg"], 2, "-o {tmp}/s.jpg: the image is written as PNG, so its name must end in .png"),
    (["sheet", "{rgb}", "--tileset", "-o", "{tmp}/t"], 2, "its name must end in .png"),
    (["sheet", "{rgb}", "-o", "{rgb}"], 2, "-o {rgb}: writing {rgb} would replace the input {rgb}"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.png", "--preview", "{tmp}/s.png"], 2, "would replace the sheet {tmp}/s.png"),
    (["sheet", "{rgb}", "-o", "{tmp}/", "--json", "{tmp}/sheet.png"], 2, "--json {tmp}/sheet.png: writing"),
    (["sheet", "{rgb}", "-o", "{tmp}/" + "a" * 300 + ".png"], 2, "File name too long"),
    (["snap", "{rgb}", "-o", "{tmp}/" + "a" * 300 + ".png"], 2, "File name too long"),
    # a file-system failure no command checks for: an error naming the file, never a traceback
    (["snap", "{rgb}", "{rgb}", "-o", "{tmp}/" + "a" * 300], 1, "File name too long"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.png", "--json", "{tmp}/" + "a" * 300 + ".json"], 2, "File name too long"),
    (["palette", "extract", "{rgb}", "-k", "4", "-o", "{rgb}"], 2, "-o {rgb}: writing {rgb} would replace the input"),
    (["palette", "convert", "pico-8", "{rgb}/x.hex"], 6, "cannot write palette file"),
    (["palette", "extract", "{rgb}", "-k", "4", "--seed", "-1", "-o", "{tmp}/x.hex"], 2, "seed must be an integer"),
    (["palette", "extract", "{rgb}", "-k", "0", "--tolerance", "0", "-o", "{tmp}/x.hex"], 2, "tolerance must be > 0"),
    (["palette", "extract", "{rgb}", "-k", "-3", "-o", "{tmp}/x.hex"], 2, "-k must be 1..256"),
    (["palette", "extract", "{rgb}", "-k", "4", "--tolerance", "0.5", "-o", "{tmp}/x.hex"], 2,
     "--tolerance applies with -k auto"),
    (["palette", "extract", "{clear}", "-k", "4", "-o", "{tmp}/x.hex"], 2,
     "{clear}: no opaque pixels to build a palette from (it is fully transparent)"),
    (["snap", "{rgb}", "-o", "{tmp}/s.png", "--dither", "bayer4"], 2, "--dither and --dither-strength apply with --colors"),
    (["snap", "{rgb}", "-o", "{tmp}/s.png", "--colors", "4", "--dither", "bayer3"], 2,
     "--dither must be one of none, bayer2, bayer4, bayer8, floyd-steinberg, atkinson, got 'bayer3'"),
    (["snap", "{rgb}", "-o", "{tmp}/s.png", "--colors", "4", "--dither-strength", "2"], 2, "--dither-strength must be 0..1"),
    (["snap", "{rgb}", "-o", "{tmp}/s.png", "--dither", "fs"], 2, "--dither and --dither-strength apply with --colors"),
    (["snap", "{rgb}", "-o", "{tmp}/s.png", "--colors", "0"], 2, "--colors must be between 1 and 256"),
    (["export", "{rgb}", "--bevy", "{tmp}/game", "--path", "sprites/a.png"], 6, "cannot write"),
    # usage, not a failed write (was exit 6); what was wrong named as what it is
    (["export", "{rgb}", "--bevy", "{tmp}/game", "--path", "a.jpg"], 2, "asset path 'a.jpg' must end in .png"),
    (["palette", "convert", "pico-8", "{tmp}/empty/"], 2, "{tmp}/empty/ is a folder: the palette is written to a file"),
    (["palette", "convert", "pico-8", "{tmp}/x.hex", "--swatch", "4"], 2, "--swatch applies to a .png palette"),
    (["sheet", "{rgb}", "-o", "{tmp}/s.png", "--animations", ",,"], 2, "animation spec ',,' holds no animation"),
    (["snap", "/dev/null", "-o", "{tmp}/s.png"], 2, "input image /dev/null is a device, not an image file"),
])
def test_cli_bad_input_is_error_and_hint(capsys, tmp_path, pngs, argv, code, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "game" / "assets").mkdir(parents=True)
    (tmp_path / "game" / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    (tmp_path / "game" / "assets" / "sprites").write_text("a file where the sprites folder should be")
    clear = tmp_path / "clear.png"
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(clear)
    args = [a.format(rgb=pngs["rgb"], tmp=tmp_path, clear=clear) for a in argv]
    rc, out, err = _cli(capsys, *args)
    assert rc == code, err
    assert err.startswith("error: ") and message.format(rgb=pngs["rgb"], tmp=tmp_path, clear=clear) in err
    assert "\nhint: " in err
    if code == 2:  # refused: nothing written
        assert not [p for p in ("s.png", "t.png", "d", "x.json", "t.json", "p.png", "x.hex") if (tmp_path / p).exists()]


def test_cli_subprocess_prints_no_traceback(tmp_path, pngs):
    cmd = [sys.executable, "-c", "import sys; from orchestrator.cli import main; sys.exit(main())"]
    r = subprocess.run(cmd + ["sheet", pngs["rgb"], "--split", "-o", str(tmp_path / "d"), "--offset", "99"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0] == "error: offset 99,99 leaves nothing of the 16x16 sheet"
    assert r.stderr.splitlines()[1].startswith("hint: the offset must be smaller than the sheet")


def test_small_file_that_unpacks_beyond_16k_is_refused_before_decoding(capsys, tmp_path):
    # 34 KB on disk, 280 M pixels (1.1 GB as RGBA): Pillow itself only warns below 2x its limit.
    Image.new("1", (17000, 16500)).save(tmp_path / "bomb.png")
    rc, out, err = _cli(capsys, "palette", "extract", str(tmp_path / "bomb.png"), "-k", "4", "-o", str(tmp_path / "p.hex"))
    assert rc == 2
    assert err.splitlines() == [f"error: {tmp_path / 'bomb.png'} is 17000x16500 pixels, more than 16384x16384",
                                "hint: crop or downscale it first"]
    assert not (tmp_path / "p.hex").exists()


def test_a_sheet_beyond_16k_squared_is_refused_before_allocating():
    one = np.full((1, 1, 4), 255, np.uint8)
    ok = S.build_sheet([one, one], cell_size=(2, 8192), columns=1)
    assert (ok.width, ok.height) == (2, 16384)
    # two cells of 16384x8193 would need 1 GiB of RGBA: refused from the numbers alone
    with pytest.raises(InvalidArgumentError, match=r"the sheet would be 16384x16386 pixels \(2 frames in 1x2 cells of 16384x8193\)"):
        S.build_sheet([one, one], cell_size=(16384, 8193), columns=1)
    # a strip longer than a GPU's largest texture side, however few pixels it holds
    strip = [np.full((8, 4100, 4), 255, np.uint8)] * 5
    with pytest.raises(InvalidArgumentError, match=r"the sheet would be 20500x8 pixels .* more than 16384 on a side"):
        S.build_sheet(strip, columns=5, trim="none")
    with pytest.raises(InvalidArgumentError, match=r"the sheet would be 32768x8 pixels"):
        S.build_sheet(strip[:4], columns=4, trim="none", pow2=True)
    assert S.build_sheet(strip, columns=1, trim="none").image.shape == (40, 4100, 4)
    with pytest.raises(InvalidArgumentError, match=r"the tileset would be 16500x1 pixels"):
        build_tileset([np.zeros((1, 1, 4), np.uint8)] * 16500, columns=16500)


def test_tileset_from_a_batch_array_and_its_size_limit():
    batch = np.zeros((3, 4, 5, 4), np.uint8)
    batch[1, 0, 0] = (255, 0, 0, 255)
    ts = build_tileset(batch, columns=3)
    assert (ts.image.shape[1], ts.image.shape[0], ts.count) == (15, 4, 3)
    assert tuple(ts.image[0, 5]) == (255, 0, 0, 255)
    # a 1x1 tile with a margin of 8192 would be a 16385x16385 image: refused from the numbers
    with pytest.raises(InvalidArgumentError, match=r"the tileset would be 16385x16385 pixels \(1 tiles of 1x1"):
        build_tileset([np.zeros((1, 1, 4), np.uint8)], margin=8192)


def test_export_upscale_beyond_16k_is_refused_before_scaling(tmp_path):
    img = np.zeros((1024, 1024, 4), np.uint8)
    with pytest.raises(InvalidArgumentError, match=r"upscale 17 makes the 1024x1024 image 17408x17408 pixels"):
        export_asset(tmp_path, "big.png", img, upscale=17, create_project=True)
    sheet = S.build_sheet([img[:512], img[:512]], trim="none", columns=1)
    with pytest.raises(InvalidArgumentError, match=r"upscale 64 makes the 1024x1024 image"):
        export_sheet(tmp_path, "big.png", sheet, upscale=64, create_project=True)
    assert not list(tmp_path.rglob("*.png"))


def test_sheet_into_a_folder_writes_sheet_png_and_its_preview_and_atlas_beside_it(capsys, tmp_path, pngs):
    out = tmp_path / "out"
    rc, _, err = _cli(capsys, "sheet", pngs["rgb"], pngs["rgb"], "-o", f"{out}/", "--preview", f"{out}/",
                      "--json", str(out / "sheet.json"))
    assert rc == 0, err
    assert Image.open(out / "sheet.png").size == (32, 16)
    assert Image.open(out / "sheet_preview.png").size[0] > 32
    assert json.loads((out / "sheet.json").read_text())["meta"]["image"] == "sheet.png"
    rc, _, err = _cli(capsys, "sheet", pngs["rgb"], "--tileset", "-o", str(out))
    assert rc == 0, err
    assert Image.open(out / "tileset.png").size == (16, 16)


def test_cli_outputs_that_cannot_be_written_are_refused_before_any_is_written(capsys, tmp_path, pngs):
    (tmp_path / "atlas.json").mkdir()
    (tmp_path / "split" / "frame_002.png").mkdir(parents=True)
    strip = _png(tmp_path / "strip.png", np.full((4, 16, 3), 90, np.uint8))
    for argv, message in (
        (["sheet", pngs["rgb"], "-o", f"{tmp_path}/s.png", "--json", f"{tmp_path}/atlas.json"],
         f"cannot write {tmp_path}/atlas.json: it is a folder"),
        (["sheet", pngs["rgb"], "-o", f"{tmp_path}/s.png", "--json", f"{pngs['rgb']}/a.json"],
         f"cannot write {pngs['rgb']}/a.json: {pngs['rgb']} is a file, not a folder"),
        (["sheet", strip, "--split", "--cell", "4x4", "-o", f"{tmp_path}/split"],
         f"cannot write {tmp_path}/split/frame_002.png: it is a folder"),
        (["palette", "extract", pngs["rgb"], "-k", "4", "-o", f"{pngs['rgb']}/p.hex"], "is a file, not a folder"),
    ):
        rc, _, err = _cli(capsys, *argv)
        assert rc == 6 and message in err, err
    assert not (tmp_path / "s.png").exists()
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["frame_002.png"]


@pytest.mark.parametrize("argv, prog", [(["deploy", "x.png"], "dgx-pixels deploy"), (["nosuch"], "dgx-pixels"),
                                        (["palette", "extract"], "dgx-pixels palette extract"),
                                        (["snap", "in.png", "-o", "o.png", "--cell", "big"], "dgx-pixels snap")])
def test_usage_errors_end_with_a_hint_like_every_error(capsys, argv, prog):
    """A missing or malformed option is argparse's error; it still says where to look (exit 2)."""
    with pytest.raises(SystemExit) as ei:
        main(argv)
    err = capsys.readouterr().err
    assert ei.value.code == 2
    assert f"{prog}: error: " in err
    assert err.rstrip().endswith(f"hint: `{prog} --help` lists every option"), err
