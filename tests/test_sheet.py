"""Sprite sheet assembly, animations spec, split (given and detected grid), preview."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_nodes.pixel.errors import InvalidArgumentError, NoGridFoundError
from comfy_nodes.pixel.sheet import (
    Animation,
    build_sheet,
    check_layout,
    frame_durations,
    parse_animations,
    sheet_from_image,
    sheet_preview,
    split_sheet,
)


def sprite(h: int, w: int, seed: int, margin: int = 0) -> np.ndarray:
    """Random opaque pixels inside a transparent margin."""
    rng = np.random.default_rng(seed)
    a = np.zeros((h, w, 4), dtype=np.uint8)
    a[margin : h - margin, margin : w - margin, :3] = rng.integers(0, 256, (h - 2 * margin, w - 2 * margin, 3))
    a[margin : h - margin, margin : w - margin, 3] = 255
    return a


def test_grid_size_formula_and_exact_pixels():
    frames = [sprite(12, 10, i) for i in range(7)]
    s = build_sheet(frames, columns=3, padding=(2, 1), offset=(5, 4), trim="none")
    assert (s.columns, s.rows, s.cell_w, s.cell_h) == (3, 3, 10, 12)
    # offset + cols*w + (cols-1)*pad in both axes
    assert s.image.shape[:2] == (4 + 3 * 12 + 2 * 1, 5 + 3 * 10 + 2 * 2)
    for i, f in enumerate(frames):
        r = s.frames[i]
        assert (r.x, r.y) == (5 + (i % 3) * 12, 4 + (i // 3) * 13)
        np.testing.assert_array_equal(s.image[r.y : r.y + 12, r.x : r.x + 10], f)
    # padding and offset stay transparent, unused cells too
    assert (s.image[:4, :, 3] == 0).all() and (s.image[:, :5, 3] == 0).all()
    assert (s.image[:, 15:17, 3] == 0).all()
    last = s.frames[6]
    assert (s.image[last.y : last.y + 12, last.x + 10 + 2 :, 3] == 0).all()
    check_layout(s)


def test_trim_each_and_anchor_bottom_center():
    a = np.zeros((16, 16, 4), np.uint8)
    a[2:6, 3:7] = (255, 0, 0, 255)  # 4x4 visible
    b = np.zeros((16, 16, 4), np.uint8)
    b[0:10, 0:6] = (0, 255, 0, 255)  # 6x10 visible
    s = build_sheet([a, b], anchor="bottom-center", trim="each")
    assert (s.cell_w, s.cell_h) == (6, 10)  # largest trimmed frame
    r0 = s.frames[0]
    assert (r0.content_x - r0.x, r0.content_y - r0.y, r0.content_w, r0.content_h) == (1, 6, 4, 4)
    np.testing.assert_array_equal(s.image[r0.content_y : r0.content_y + 4, r0.content_x : r0.content_x + 4], a[2:6, 3:7])
    assert (r0.trim_x, r0.trim_y) == (3, 2)
    c = build_sheet([a, b], anchor="center", trim="each")
    assert (c.frames[0].content_x, c.frames[0].content_y) == (1, 3)
    t = build_sheet([a, b], anchor="top-left", trim="each")
    assert (t.frames[0].content_x, t.frames[0].content_y) == (0, 0)


def test_default_trim_keeps_an_animation_registered_and_packs_sprites_of_different_sizes():
    """Frames of one size are an animation drawn on one canvas: by default they are cropped by
    one shared box, so a frame whose leg sticks out does not move the body (cropped each on its
    own and placed bottom-centre, a fixed eye pixel landed at x = 3, 1, 3, 1). Frames of
    different sizes are separate sprites: each is cropped to its own pixels."""
    frames = []
    for leg in (False, True, False, True):
        f = np.zeros((16, 16, 4), np.uint8)
        f[4:12, 4:10] = (200, 100, 50, 255)  # body
        f[6, 6] = (0, 0, 0, 255)  # eye
        if leg:
            f[10:12, 10:14] = (200, 100, 50, 255)  # a leg reaching out to the right
        frames.append(f)
    s = build_sheet(frames, columns=4)

    def eye(i):
        ys, xs = np.nonzero((s.cell(i)[..., :3] == 0).all(-1) & (s.cell(i)[..., 3] == 255))
        return int(xs[0]), int(ys[0])

    assert len({eye(i) for i in range(4)}) == 1
    jitter = build_sheet(frames, columns=4, trim="each")
    assert len({(r.trim_x, r.content_x - r.x) for r in jitter.frames}) > 1  # what "each" does to it
    small = np.zeros((8, 8, 4), np.uint8)
    small[2:4, 2:4] = 255
    mixed = build_sheet([frames[0], small])
    assert (mixed.cell_w, mixed.cell_h) == (6, 8)  # each cropped to its own pixels


def test_trim_union_keeps_relative_motion():
    frames = []
    for dy in (8, 5, 8):
        f = np.zeros((16, 8, 4), np.uint8)
        f[dy : dy + 4, 2:6] = (9, 9, 9, 255)
        frames.append(f)
    s = build_sheet(frames, trim="union", columns=3)
    assert (s.cell_w, s.cell_h) == (4, 7)
    # the jump (frame 1 is 3 px higher) survives
    assert s.frames[1].content_y == s.frames[0].content_y
    assert (s.cell(0)[3:7, :, 3] == 255).all() and (s.cell(1)[0:4, :, 3] == 255).all()
    with pytest.raises(InvalidArgumentError, match="one size"):
        build_sheet([frames[0], np.zeros((4, 4, 4), np.uint8)], trim="union")


def test_given_cell_too_small_is_an_error_never_a_crop():
    with pytest.raises(InvalidArgumentError, match=r"frame 1 is 9x9 .* does not fit the 8x8 cell"):
        build_sheet([sprite(8, 8, 1), sprite(9, 9, 2)], cell_size=(8, 8), trim="none")


def test_pow2_sheet():
    s = build_sheet([sprite(10, 10, i) for i in range(5)], pow2=True, trim="none")
    assert s.image.shape[:2] == (32, 32)
    check_layout(s)
    s.pow2 = False
    with pytest.raises(InvalidArgumentError, match="needs 30x20"):
        check_layout(s)


@pytest.mark.parametrize("scale", [2, 3, 5])
def test_an_enlarged_pow2_sheet_stays_power_of_two_with_every_cell_in_place(scale):
    frames = [sprite(12, 14, i) for i in range(6)]
    s = build_sheet(frames, columns=3, padding=1, offset=2, pow2=True, trim="none")
    big = s.scaled(scale)
    check_layout(big)
    h, w = big.image.shape[:2]
    assert w & (w - 1) == 0 and h & (h - 1) == 0 and w >= s.width * scale // 2
    for f, small in zip(big.frames, s.frames):
        want = np.repeat(np.repeat(s.image[small.y:small.y + small.h, small.x:small.x + small.w], scale, 0), scale, 1)
        np.testing.assert_array_equal(big.image[f.y:f.y + f.h, f.x:f.x + f.w], want)
    ew, eh = big.grid_extent()
    assert not big.image[:, ew:].any() and not big.image[eh:, :].any()


def test_a_given_grid_that_leaves_sprite_pixels_outside_every_cell_is_refused():
    sheet = np.zeros((32, 50, 4), np.uint8)
    sheet[:, :48] = build_sheet([sprite(16, 16, i, margin=2) for i in range(6)], columns=3, trim="none").image
    margin_only = sheet.copy()
    assert sheet_from_image(margin_only, cell_size=(16, 16)).image.shape[:2] == (32, 48)  # transparent: cut
    sheet[5, 49] = (255, 0, 0, 255)
    for call in (lambda: sheet_from_image(sheet, cell_size=(16, 16)), lambda: split_sheet(sheet, cell_size=(16, 16))):
        with pytest.raises(InvalidArgumentError, match=r"the sheet is 50x32 px but its grid \(3x2 cells of 16x16, "
                                                       r"padding \(0, 0\), offset \(0, 0\)\) covers 48x32: the "
                                                       r"sprite pixels in the 2 columns at the right would be lost"):
            call()
    below = np.zeros((35, 48, 4), np.uint8)
    below[:32] = margin_only[:, :48]
    below[34, 3] = 255
    with pytest.raises(InvalidArgumentError, match="in the 3 rows at the bottom would be lost"):
        split_sheet(below, cell_size=(16, 16))


def test_a_cell_size_given_alone_still_finds_the_gutters_and_the_margin():
    """`sheet --split --cell 16x16` of a sheet packed with padding 2 and a margin of 2 was cut
    at padding 0 from the first pixel ("pixels would be lost"), though --split finds padding
    and offset. With the cell given they are found as without it, when cells side by side
    would cut sprites; cells that already fit are taken as they are."""
    frames = [sprite(16, 16, i) for i in range(8)]
    packed = build_sheet(frames, columns=4, padding=2, offset=2, trim="none")
    img = np.zeros((packed.image.shape[0] + 2, packed.image.shape[1] + 2, 4), np.uint8)
    img[: packed.image.shape[0], : packed.image.shape[1]] = packed.image  # the margin on every side
    res = split_sheet(img, cell_size=(16, 16), offset=None)
    assert (res.columns, res.rows, res.padding, res.offset) == (4, 2, (2, 2), (2, 2))
    assert len(res.frames) == 8 and all(np.array_equal(a, b) for a, b in zip(res.frames, frames))
    touching = build_sheet(frames, columns=4, trim="none").image
    res = split_sheet(touching, cell_size=(16, 16), offset=None)
    assert (res.columns, res.rows, res.padding, res.offset) == (4, 2, (0, 0), (0, 0))


def test_animation_spec_parsing():
    anims = parse_animations("idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong; hit:16", 17)
    assert anims == [
        Animation("idle", 0, 3, 8.0, "forward"),
        Animation("walk", 4, 11, 12.0, "forward"),
        Animation("jump", 12, 15, 10.0, "pingpong"),
        Animation("hit", 16, 16, 10.0, "forward"),
    ]
    assert parse_animations("back:0-3@6:reverse")[0].direction == "reverse"
    assert anims[0].duration_ms == 125
    assert frame_durations(17, anims)[:5] == [125, 125, 125, 125, 83]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("idle:0-3@8, walk 4-11", "'walk 4-11'"),
        ("idle:3-0@8", "runs backwards"),
        ("idle:0-3@8:sideways", "unknown direction 'sideways'"),
        ("idle:0-3@0", "fps must be"),
        ("idle:0-3, idle:4-5", "defined twice"),
        ("walk:4-20@12", "only 8 frames"),
    ],
)
def test_bad_animation_specs_name_the_token(spec, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(")):
        parse_animations(spec, 8)


@pytest.mark.parametrize("trim", ["each", "none"])
@pytest.mark.parametrize("pad, off, cols", [(0, 0, None), (2, 0, 3), (1, 3, 4), ((3, 1), (2, 5), 2)])
def test_sheet_split_sheet_is_pixel_identical(trim, pad, off, cols):
    frames = [sprite(14 + (i % 3), 11 + (i % 2), i, margin=1) for i in range(9)]
    s1 = build_sheet(frames, columns=cols, padding=pad, offset=off, trim=trim)
    # grid given
    res = split_sheet(s1.image, cell_size=(s1.cell_w, s1.cell_h), padding=s1.padding, offset=s1.offset)
    assert len(res.frames) == 9
    s2 = build_sheet(res.frames, columns=s1.columns, padding=s1.padding, offset=s1.offset, trim=trim)
    np.testing.assert_array_equal(s2.image, s1.image)
    if trim == "each" and s1.padding == (0, 0):
        return  # trimmed frames touch each other: no gutter to detect a grid from
    # grid detected from the transparent gutters (padding, or the sprites' 1-px transparent margin)
    det = split_sheet(s1.image, offset=s1.offset)
    assert det.detected
    assert (det.cell_w, det.cell_h, det.columns, det.padding) == (s1.cell_w, s1.cell_h, s1.columns, s1.padding)
    s3 = build_sheet(det.frames, columns=det.columns, padding=det.padding, offset=det.offset, trim=trim)
    np.testing.assert_array_equal(s3.image, s1.image)


def test_detect_grid_with_padding_and_transparent_cell_margins():
    frames = [sprite(32, 32, i, margin=6) for i in range(8)]
    s = build_sheet(frames, columns=4, padding=2, trim="none")
    det = split_sheet(s.image)
    assert (det.cell_w, det.cell_h, det.columns, det.rows) == (32, 32, 4, 2)
    for a, b in zip(det.frames, frames):
        np.testing.assert_array_equal(a, b)


def test_detect_opaque_sheet_with_colored_gutters():
    frames = [sprite(8, 8, i) for i in range(6)]
    s = build_sheet(frames, columns=3, padding=1, trim="none")
    img = s.image.copy()
    img[img[..., 3] == 0] = (255, 0, 255, 255)
    det = split_sheet(img)
    assert (det.cell_w, det.columns, det.rows, det.padding) == (8, 3, 2, (1, 1))


def test_detect_without_gutters_is_no_grid_never_the_whole_sheet_as_one_frame():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    img[..., 3] = 255
    # no gutter anywhere: the only grid that cuts no sprite is the whole sheet, which is no split
    with pytest.raises(NoGridFoundError, match="no frame grid found in the 16x16 sheet") as err:
        split_sheet(img)
    assert "--columns" in err.value.hint
    # the default sheet (padding 0, frames trimmed to touch) cannot be read back without its grid
    gapless = build_sheet([sprite(14, 9, i) for i in range(8)], columns=3).image
    with pytest.raises(NoGridFoundError, match="no frame grid found"):
        split_sheet(gapless, offset=None)
    # a sprite running across every possible boundary of 3 columns: no grid fits, and the
    # message says the count given does not divide the sheet
    img = np.zeros((8, 20, 4), np.uint8)
    img[:, 3:17, 3] = 255
    with pytest.raises(NoGridFoundError, match=r"width \(20 px\) does not split into 3 columns") as err:
        split_sheet(img, columns=3)
    assert "--padding" in err.value.hint and "number of columns and rows" not in err.value.hint


def test_given_columns_and_rows_split_a_sheet_without_gutters():
    frames = [sprite(14, 9, i) for i in range(8)]
    s = build_sheet(frames, columns=3)
    assert (s.width, s.height, s.padding) == (27, 42, (0, 0))
    for offset in (0, None):
        res = split_sheet(s.image, columns=3, rows=3, offset=offset)
        assert (res.cell_w, res.cell_h, res.padding, res.offset, len(res.frames)) == (9, 14, (0, 0), (0, 0), 8)
        for a, b in zip(res.frames, frames):
            np.testing.assert_array_equal(a, b)


def test_detect_a_margin_before_the_first_cell_from_the_gutters():
    # itch.io style: 2 px margin, 2 px spacing, magenta everywhere between the 16x16 sprites
    img = np.zeros((36, 54, 4), np.uint8)
    img[...] = (255, 0, 255, 255)
    for i in range(6):
        r, c = divmod(i, 3)
        x, y = 2 + c * 18, 2 + r * 18
        img[y:y + 16, x:x + 16] = (30, 30, 30, 255)
        img[y + 2:y + 14, x + 3:x + 13] = (200, 100, 50, 255)
    res = split_sheet(img, offset=None)
    assert (res.cell_w, res.cell_h, res.columns, res.rows, res.padding, res.offset) == (16, 16, 3, 2, (2, 2), (2, 2))
    for f in res.frames:
        assert not (f[..., :3] == (255, 0, 255)).all(-1).any()  # no gutter colour in any frame
    # transparent gutters: a sheet made with a margin splits back into its own frames, also
    # a 1 px border as wide as the 1 px spacing (margin = spacing)
    for margin, count, rows, pad, off in ((3, 8, 2, 2, 3), (2, 12, 3, 1, 1)):
        frames = [sprite(16, 16, i, margin=margin) for i in range(count)]
        s = build_sheet(frames, columns=4, padding=pad, offset=off, trim="none")
        res = split_sheet(s.image, offset=None)
        assert (res.cell_w, res.cell_h, res.columns, res.rows, res.padding, res.offset) == \
            (16, 16, 4, rows, (pad, pad), (off, off))
        for a, b in zip(res.frames, frames):
            np.testing.assert_array_equal(a, b)
    # a sprite centred in a larger transparent cell is no margin: the cell is kept whole
    s = build_sheet([sprite(24, 24, i, margin=4) for i in range(4)], columns=2, trim="none")
    res = split_sheet(s.image, offset=None)
    assert (res.cell_w, res.cell_h, res.padding, res.offset) == (24, 24, (0, 0), (0, 0))


def test_sheet_from_image_describes_without_moving_pixels():
    frames = [sprite(10, 10, i, margin=1) for i in range(6)]
    s = build_sheet(frames, columns=3, padding=2, trim="none")
    d = sheet_from_image(s.image, cell_size=(10, 10), padding=2, animations="a:0-5@6")
    np.testing.assert_array_equal(d.image, s.image)
    assert (d.columns, d.rows, len(d.frames)) == (3, 2, 6)
    assert d.animations[0].name == "a"
    check_layout(d)


def test_preview_upscales_and_draws_grid():
    frames = [sprite(4, 4, i) for i in range(4)]
    s = build_sheet(frames, columns=2, trim="none")
    p = sheet_preview(s.image, scale=3, grid=s, grid_color=(255, 0, 255, 255))
    assert p.shape == (24, 24, 4)
    assert tuple(p[0, 5]) == (255, 0, 255, 255) and tuple(p[12, 13]) == (255, 0, 255, 255)
    # inside a cell: the source pixel, as a 3x3 block, composited over the board (opaque -> same)
    np.testing.assert_array_equal(p[4, 4, :3], s.image[1, 1, :3])
    plain = sheet_preview(s.image, scale=2, grid=None, checker=False)
    np.testing.assert_array_equal(plain, np.repeat(np.repeat(s.image, 2, 0), 2, 1))


def test_preview_of_a_sheet_beyond_the_cap_shows_every_nth_pixel_with_its_grid():
    frames = [np.full((30, 30, 4), (200, 40, 40, 255), np.uint8) for _ in range(4)]
    s = build_sheet(frames, columns=2, trim="none")  # 60 x 60
    p = sheet_preview(s.image, scale=4, grid=s, max_pixels=20 * 20)
    assert p.shape == (20, 20, 4)  # every 3rd pixel
    magenta = (p[..., :3] == (255, 0, 255)).all(-1)
    # each cell's outline: its first row and column, and the last before the next cell
    assert magenta[0].all() and magenta[:, 0].all() and magenta[9].all() and magenta[10].all()
    assert tuple(p[5, 5, :3]) == (200, 40, 40)


def test_scaled_sheet_multiplies_layout():
    s = build_sheet([sprite(5, 4, i) for i in range(3)], padding=1, offset=2, trim="none")
    b = s.scaled(3)
    assert (b.cell_w, b.cell_h, b.padding, b.offset) == (12, 15, (3, 3), (6, 6))
    check_layout(b)
    np.testing.assert_array_equal(b.image[::3, ::3], s.image)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    w=st.integers(1, 9),
    h=st.integers(1, 9),
    cols=st.integers(0, 5),
    pad=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    off=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    anchor=st.sampled_from(["bottom-center", "center", "top-left"]),
    trim=st.sampled_from(["each", "none"]),
    seed=st.integers(0, 10_000),
)
def test_round_trip_property(n, w, h, cols, pad, off, anchor, trim, seed):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        fw, fh = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
        f = rng.integers(0, 256, (fh, fw, 4), dtype=np.uint8)
        f[..., 3] = np.where(rng.random((fh, fw)) < 0.3, 0, f[..., 3])
        frames.append(f)
    s1 = build_sheet(frames, columns=cols or None, padding=pad, offset=off, anchor=anchor, trim=trim)
    check_layout(s1)
    res = split_sheet(s1.image, cell_size=(s1.cell_w, s1.cell_h), padding=s1.padding, offset=s1.offset, count=n)
    assert len(res.frames) == n
    s2 = build_sheet(res.frames, columns=s1.columns, padding=s1.padding, offset=s1.offset, anchor=anchor, trim=trim)
    np.testing.assert_array_equal(s2.image, s1.image)
    # every frame's visible pixels are in the sheet unchanged
    for f, r in zip(frames, s1.frames):
        got = s1.image[r.content_y : r.content_y + r.content_h, r.content_x : r.content_x + r.content_w]
        src = f[r.trim_y : r.trim_y + r.content_h, r.trim_x : r.trim_x + r.content_w]
        np.testing.assert_array_equal(got, src)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animated_file_plays_in_its_sheet_as_it_did_in_the_file(tmp_path, fmt):
    """A GIF, APNG or WebP carries each frame's duration: the sheet's atlas keeps them and its
    animation is named after the file, where every frame came out at 100 ms before."""
    import json

    from PIL import Image

    from orchestrator.cli import main

    frames = [Image.fromarray(sprite(8, 6, i)) for i in range(4)]
    src = tmp_path / f"run cycle.{fmt.lower()}"
    frames[0].save(src, format=fmt, save_all=True, append_images=frames[1:], duration=[80, 80, 120, 80], loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    assert main(["sheet", str(src), "-o", str(tmp_path / "s.png"), "--json", str(tmp_path / "s.json")]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert [f["duration"] for f in doc["frames"]] == [80, 80, 120, 80]
    assert doc["meta"]["frameTags"] == [{"name": "run_cycle", "from": 0, "to": 3, "direction": "forward"}]
    # the user's own animations win
    assert main(["sheet", str(src), "-o", str(tmp_path / "t.png"), "--json", str(tmp_path / "t.json"),
                 "--animations", "a:0-3@5"]) == 0
    assert [f["duration"] for f in json.loads((tmp_path / "t.json").read_text())["frames"]] == [200] * 4
    # and an export records the animation in the game's manifest
    game = tmp_path / "game"
    game.mkdir()
    (game / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    assert main(["export", str(src), "--bevy", str(game), "--path", "s/run.png", "--no-snippet"]) == 0
    atlas = json.loads((game / "assets" / "s" / "run.json").read_text())
    assert [f["duration"] for f in atlas["frames"]] == [80, 80, 120, 80]


def test_split_with_more_columns_or_rows_than_pixels_says_so():
    sheet = build_sheet([sprite(8, 8, i) for i in range(4)], columns=2, trim="none").image
    with pytest.raises(InvalidArgumentError, match=r"^1024 columns do not fit the sheet's width of 16 px"):
        split_sheet(sheet, columns=1024, rows=2)
    with pytest.raises(InvalidArgumentError, match=r"^99 rows do not fit the sheet's height of 16 px"):
        split_sheet(sheet, rows=99)


def test_cli_split_of_a_gapless_sheet_with_its_columns_and_rows_and_without(tmp_path, capsys):
    """`sheet --split --columns 3 --rows 3` on the tool's own default sheet (no gutters) said
    "no uniform grid found" and hinted to give the columns and rows; without them it wrote the
    whole sheet as one frame and exited 0."""
    from PIL import Image

    from orchestrator.cli import main

    frames = [sprite(14, 9, i) for i in range(8)]
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(tmp_path / f"walk_{i}.png")
    sheet = tmp_path / "walk.png"
    assert main(["sheet", *(str(tmp_path / f"walk_{i}.png") for i in range(8)), "-o", str(sheet)]) == 0
    capsys.readouterr()
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "split"), "--columns", "3", "--rows", "3"]) == 0
    assert "8 frames of 9x14 px (given grid: 3x3, padding 0,0, offset 0,0)" in capsys.readouterr().out
    for i, f in enumerate(frames):
        got = Image.open(tmp_path / "split" / f"frame_{i:03d}.png").convert("RGBA")
        np.testing.assert_array_equal(np.asarray(got), f)
    # without them, the grid the sheet recorded when it was made cuts it back, 8 frames and
    # not the 9 cells (the last one empty)
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "own")]) == 0
    assert "8 frames of 9x14 px (recorded grid: 3x3, padding 0,0, offset 0,0)" in capsys.readouterr().out
    for i, f in enumerate(frames):
        got = Image.open(tmp_path / "own" / f"frame_{i:03d}.png").convert("RGBA")
        np.testing.assert_array_equal(np.asarray(got), f)
    assert sorted(p.name for p in (tmp_path / "own").iterdir()) == [f"frame_{i:03d}.png" for i in range(8)]
    # the same pixels saved by another program, without the record: no gutter to find
    stripped = tmp_path / "stripped.png"
    Image.open(sheet).save(stripped)
    assert main(["sheet", "--split", str(stripped), "-o", str(tmp_path / "one")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: no frame grid found in the 27x42 sheet") and "--columns/--rows" in err
    assert not (tmp_path / "one").exists()
    # a margin and spacing around the cells are found from the gutters when --offset is not given
    (tmp_path / "icons").mkdir()
    icons = [sprite(16, 16, i, margin=3) for i in range(8)]
    for i, f in enumerate(icons):
        Image.fromarray(f, "RGBA").save(tmp_path / "icons" / f"icon_{i}.png")
    padded = tmp_path / "padded.png"
    assert main(["sheet", str(tmp_path / "icons"), "-o", str(padded), "--columns", "4", "--padding", "2",
                 "--offset", "3", "--trim", "none"]) == 0
    capsys.readouterr()
    Image.open(padded).save(padded)  # without the grid it records
    assert main(["sheet", "--split", str(padded), "-o", str(tmp_path / "sp")]) == 0
    assert "8 frames of 16x16 px (detected grid: 4x2, padding 2,2, offset 3,3)" in capsys.readouterr().out
    for i, f in enumerate(icons):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sp" / f"frame_{i:03d}.png").convert("RGBA")), f)


def _frames_in(folder) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(f).convert("RGBA")) for f in sorted(Path(folder).glob("frame_*.png"))]


def _resave(src, dst, text: dict[str, str] | None = None, crop=None) -> None:
    """The sheet's pixels (cropped to ``crop``) saved again, with ``text`` as its only chunks."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = Image.open(src)
    if crop:
        img = img.crop(crop)
    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    img.save(dst, pnginfo=info)


def test_cli_split_of_an_own_sheet_takes_its_recorded_grid_and_count(tmp_path, capsys):
    """A sheet of touching sprites with padding and an offset, and empty cells after its 7
    frames: cut back exactly, 7 frames, without any option; --count keeps the first ones; a
    grid given on the command line wins over the record."""
    from orchestrator.cli import main

    frames = [sprite(15, 10, i) for i in range(7)]
    (tmp_path / "f").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(tmp_path / "f" / f"f{i}.png")
    sheet = tmp_path / "sheet.png"
    assert main(["sheet", str(tmp_path / "f"), "-o", str(sheet), "--columns", "4", "--padding", "1,2",
                 "--offset", "3,1", "--pow2"]) == 0
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "a")]) == 0
    assert "7 frames of 10x15 px (recorded grid: 4x2, padding 1,2, offset 3,1)" in capsys.readouterr().out
    got = _frames_in(tmp_path / "a")
    assert len(got) == 7 and all(np.array_equal(g, f) for g, f in zip(got, frames))
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "b"), "--count", "3"]) == 0
    assert len(_frames_in(tmp_path / "b")) == 3
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "c"), "--count", "9"]) == 2
    assert "error: --count must be 1..8 for this sheet's grid, got 9" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    # given numbers are taken as given (here: the whole sheet as one cell)
    w, h = Image.open(sheet).size
    assert main(["sheet", "--split", str(sheet), "-o", str(tmp_path / "d"), "--cell", f"{w}x{h}"]) == 0
    assert f"px (given grid: 1x1, padding 0,0, offset 0,0)" in capsys.readouterr().out
    assert [g.shape for g in _frames_in(tmp_path / "d")] == [(h, w, 4)]


@pytest.mark.parametrize("change, why", [
    ("crop", "the grid it records (4x2 cells of 10x15, 40x30 px) does not fit its 30x30 px: the sheet was changed since"),
    ("drawn", "it has sprite pixels outside the grid it records: the sheet was changed since"),
    ("not json", "its dgx-pixels:sheet record is not JSON"),
    ("not a grid", "its dgx-pixels:sheet record is not a grid this version reads"),
    ("too long", "its dgx-pixels:sheet record is 5000 characters long, more than a grid needs"),
    ("too deep", "its dgx-pixels:sheet record is not JSON"),
])
def test_cli_split_says_why_a_record_is_not_used_and_detects_instead(tmp_path, capsys, change, why):
    """A record that no longer describes the pixels (cropped, drawn on outside its grid) or that
    is damaged is not trusted: a warning names the sheet and why, and the grid is detected
    from the gutters as for any sheet."""
    from orchestrator.cli import main
    from comfy_nodes.pixel.sheet import LAYOUT_KEY

    frames = [sprite(15, 10, i, margin=2) for i in range(8)]  # gutters to detect
    (tmp_path / "f").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(tmp_path / "f" / f"f{i}.png")
    sheet = tmp_path / "sheet.png"
    assert main(["sheet", str(tmp_path / "f"), "-o", str(sheet), "--columns", "4", "--trim", "none"]) == 0
    record = Image.open(sheet).text[LAYOUT_KEY]
    changed = tmp_path / "changed.png"
    if change == "crop":
        _resave(sheet, changed, {LAYOUT_KEY: record}, crop=(0, 0, 30, 30))
    elif change == "drawn":
        img = np.asarray(Image.open(sheet).convert("RGBA")).copy()
        big = np.zeros((img.shape[0] + 6, img.shape[1], 4), np.uint8)
        big[: img.shape[0]] = img
        big[-3, 5] = (255, 0, 0, 255)  # below the grid
        from PIL.PngImagePlugin import PngInfo
        info = PngInfo()
        info.add_text(LAYOUT_KEY, record)
        Image.fromarray(big, "RGBA").save(changed, pnginfo=info)
    else:
        text = {"not json": "{cell: 4", "not a grid": record.replace('"columns":4', '"columns":true'),
                "too long": " " * 5000, "too deep": "[" * 2000 + "]" * 2000}[change]
        _resave(sheet, changed, {LAYOUT_KEY: text})
    capsys.readouterr()
    rc = main(["sheet", "--split", str(changed), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert f"warning: {changed}: {why}; detecting the grid instead" in err
    # the same as for the pixels without any record
    bare = tmp_path / "bare.png"
    _resave(changed, bare)
    assert main(["sheet", "--split", str(bare), "-o", str(tmp_path / "bare")]) == rc == 0
    bare_out, bare_err = capsys.readouterr()
    assert "detected grid" in out and out.split(" -> ")[0] == bare_out.split(" -> ")[0]
    assert "warning" not in bare_err
    got, expected = _frames_in(tmp_path / "out"), _frames_in(tmp_path / "bare")
    assert len(got) == len(expected) >= 3 and all(np.array_equal(g, f) for g, f in zip(got, expected))


def test_exported_sheets_record_their_grid_for_split(tmp_path, capsys):
    """`export` writes the same record into the Bevy asset: at --upscale 2 the split gives the
    frames enlarged, on the enlarged grid."""
    from orchestrator.cli import main

    frames = [sprite(15, 10, i) for i in range(5)]
    (tmp_path / "f").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(tmp_path / "f" / f"f{i}.png")
    game = tmp_path / "game"
    game.mkdir()
    (game / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    assert main(["export", str(tmp_path / "f"), "--bevy", str(game), "--path", "hero.png", "--upscale", "2",
                 "--columns", "3", "--no-snippet"]) == 0
    capsys.readouterr()
    assert main(["sheet", "--split", str(game / "assets" / "hero.png"), "-o", str(tmp_path / "out")]) == 0
    assert "5 frames of 20x30 px (recorded grid: 3x2, padding 0,0, offset 0,0)" in capsys.readouterr().out
    got = _frames_in(tmp_path / "out")
    assert len(got) == 5
    for g, f in zip(got, frames):
        np.testing.assert_array_equal(g, np.repeat(np.repeat(f, 2, axis=0), 2, axis=1))


def test_cli_trim_union_of_frames_of_different_sizes_names_the_files(tmp_path, capsys):
    from PIL import Image

    from orchestrator.cli import main

    Image.fromarray(sprite(16, 16, 1), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(sprite(32, 24, 2), "RGBA").save(tmp_path / "b.png")
    game = tmp_path / "game"
    game.mkdir()
    (game / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    for argv in (["sheet", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "s.png")],
                 ["export", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--bevy", str(game), "--path", "s.png"]):
        assert main([*argv, "--trim", "union"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --trim union needs frames of one size; {tmp_path / 'b.png'} is 24x32, "
                              f"{tmp_path / 'a.png'} is 16x16"), err
    assert not (tmp_path / "s.png").exists() and not (game / "assets" / "s.png").exists()


def _cli_sheet(tmp_path, n: int = 6):
    """A 3-column sheet of ``n`` distinct 10x15 frames written by `sheet --cell 10x15`, and the frames."""
    from PIL import Image

    from orchestrator.cli import main

    frames = [sprite(15, 10, i) for i in range(n)]
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(tmp_path / "frames" / f"f{i}.png")
    sheet = tmp_path / "sheet.png"
    assert main(["sheet", str(tmp_path / "frames"), "-o", str(sheet), "--columns", "3", "--cell", "10x15"]) == 0
    return sheet, frames


def test_cli_split_refuses_to_write_over_its_input_sheet(tmp_path, capsys):
    """`sheet --split sp/frame_000.png -o sp` replaced the 30x30 sheet with its own frame 0
    (exit 0); `snap`, `sheet` and `palette` refuse such an output, and so must --split, before
    writing anything."""
    from orchestrator.cli import main

    sheet, _frames = _cli_sheet(tmp_path)
    folder = tmp_path / "sp"
    folder.mkdir()
    inside = folder / "frame_000.png"
    inside.write_bytes(sheet.read_bytes())
    capsys.readouterr()
    assert main(["sheet", "--split", str(inside), "-o", str(folder), "--cell", "10x15"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: -o {folder}: writing {inside} would replace the input {inside}"), err
    assert "\nhint: " in err
    assert inside.read_bytes() == sheet.read_bytes() and sorted(p.name for p in folder.iterdir()) == ["frame_000.png"]


def test_cli_split_removes_the_older_frames_of_an_earlier_split_and_nothing_else(tmp_path, capsys):
    """A split of 6 frames and then of 2 into one folder left frame_002..frame_005 of the first,
    and `sheet FOLDER` then made a sheet of 6 frames. The folder now holds exactly the new
    frames; files not named as a split names its frames stay; a sheet there that would be
    removed is refused."""
    from PIL import Image

    from orchestrator.cli import main

    sheet, frames = _cli_sheet(tmp_path)
    out = tmp_path / "st"
    assert main(["sheet", "--split", str(sheet), "-o", str(out), "--cell", "10x15"]) == 0
    assert len(list(out.iterdir())) == 6
    for name in ("notes.txt", "frame_7.png", "Frame_009.png", "frame_004.png.bak", "my_frame_004.png"):
        (out / name).write_text("mine")
    capsys.readouterr()
    assert main(["sheet", "--split", str(sheet), "-o", str(out), "--cell", "10x15", "--count", "2"]) == 0
    said = capsys.readouterr().out
    assert "removed 4 older frames of an earlier split (frame_002.png..frame_005.png)" in said, said
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["frame_000.png", "frame_001.png", "notes.txt", "frame_7.png", "Frame_009.png", "frame_004.png.bak",
         "my_frame_004.png"])
    for i in range(2):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"frame_{i:03d}.png").convert("RGBA")), frames[i])
    # a sheet built from the folder again has the 2 frames (frame_7.png is an image of ours too)
    for name in ("frame_7.png", "Frame_009.png", "my_frame_004.png"):
        (out / name).unlink()
    assert main(["sheet", str(out), "-o", str(tmp_path / "again.png")]) == 0
    assert "2 frames" in capsys.readouterr().out
    # the sheet being split is never removed as an "older frame"
    kept = out / "frame_004.png"
    kept.write_bytes(sheet.read_bytes())
    assert main(["sheet", "--split", str(kept), "-o", str(out), "--cell", "10x15", "--count", "2"]) == 2
    err = capsys.readouterr().err
    assert f"error: -o {out}: this split removes the older frames of an earlier split there, which would remove " \
           f"the input {kept}" in err and "\nhint: " in err
    assert kept.read_bytes() == sheet.read_bytes()


def test_cli_hidden_files_in_a_frames_folder_are_not_frames(tmp_path, capsys):
    """A macOS AppleDouble `._f0.png` made `sheet FOLDER` fail with "not a readable image", and a
    valid `.thumb.png` silently became an extra first frame."""
    from PIL import Image

    from orchestrator.cli import main

    frames = [sprite(15, 10, i) for i in range(3)]
    folder = tmp_path / "mixd"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(folder / f"f{i}.png")
    (folder / "._f0.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    Image.fromarray(sprite(20, 20, 9), "RGBA").save(folder / ".thumb.png")
    out = tmp_path / "s.png"
    capsys.readouterr()
    assert main(["sheet", str(folder), "-o", str(out), "--columns", "3"]) == 0, capsys.readouterr().err
    assert "sheet 30x15: 3 frames" in capsys.readouterr().out
    got = np.asarray(Image.open(out).convert("RGBA"))
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(got[:, 10 * i:10 * i + 10], f)
    # a folder of hidden files only holds no frames, and says why
    only = tmp_path / "only"
    only.mkdir()
    Image.fromarray(frames[0], "RGBA").save(only / ".thumb.png")
    assert main(["sheet", str(only), "-o", str(tmp_path / "o.png")]) == 2
    assert "holds no images (hidden files, starting with '.', are skipped)" in capsys.readouterr().err


def test_rate_conflicts_name_the_animations_and_frames():
    from comfy_nodes.pixel.sheet import duration_conflicts

    anims = parse_animations("idle:0-2@8, back:0-5@7:reverse, hit:4@3, same:0-1@8.0001")
    got = duration_conflicts(6, anims)
    assert len(got) == 2, got
    assert got[0].startswith("animation 'back' (7 fps) shares frames 0-2 with 'idle' (8 fps): the atlas JSON has "
                             "one duration per frame and gives them the 125 ms of 'idle', so 'back' plays them at "
                             "8 fps, not 7"), got[0]
    assert got[1].startswith("animation 'hit' (3 fps) shares frame 4 with 'back' (7 fps)"), got[1]
    assert duration_conflicts(6, parse_animations("a:0-2@8, b:3-5@7, c:0-2@8, d:4@7")) == []


def test_cli_json_warns_when_animations_that_share_frames_differ_in_fps(tmp_path, capsys):
    """`--animations 'idle:0-2@8, back:0-5@7:reverse' --json` wrote durations
    [125,125,125,143,143,143] (back played partly at 8 fps in an Aseprite-JSON loader) and said
    nothing."""
    import json

    from orchestrator.cli import main

    sheet, _frames = _cli_sheet(tmp_path)
    folder = tmp_path / "frames"
    capsys.readouterr()
    assert main(["sheet", str(folder), "-o", str(tmp_path / "an.png"), "--json", str(tmp_path / "an.json"),
                 "--animations", "idle:0-2@8, back:0-5@7:reverse"]) == 0
    err = capsys.readouterr().err
    assert f"warning: --json {tmp_path / 'an.json'}: animation 'back' (7 fps) shares frames 0-2 with 'idle' " \
           "(8 fps)" in err, err
    doc = json.loads((tmp_path / "an.json").read_text())
    assert [f["duration"] for f in doc["frames"]] == [125, 125, 125, 143, 143, 143]
    assert main(["sheet", str(folder), "-o", str(tmp_path / "ok.png"), "--json", str(tmp_path / "ok.json"),
                 "--animations", "idle:0-2@8, back:3-5@7"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("tops", [(1, 1, 1, 0, 1, 1), (1, 1, 1, 1, 1, 0), (2, 1, 1, 0, 0, 0), (1, 1, 1, 1, 1, 1)])
def test_detect_keeps_one_padding_both_ways_when_sprites_leave_their_top_rows_empty(tops):
    """`sheet --padding 4 --columns 3` of 10x15 frames, then `sheet --split`: detected as 10x16
    cells with padding 4,2 (or 4,1 and offset 0,1): a cell a pixel taller fits sprites whose
    top row is empty as well, and 16 has more factors of two, so the frames came out shifted."""
    frames = []
    for i, top in enumerate(tops):
        f = sprite(15, 10, i)
        f[:top] = 0
        frames.append(f)
    s = build_sheet(frames, columns=3, padding=4, trim="none")
    res = split_sheet(s.image, offset=None)
    assert (res.cell_w, res.cell_h, res.columns, res.rows, res.padding, res.offset) == (10, 15, 3, 2, (4, 4), (0, 0))
    for got, want in zip(res.frames, frames):
        np.testing.assert_array_equal(got, want)
