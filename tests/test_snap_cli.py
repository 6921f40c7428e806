"""``dgx-pixels snap`` as a subprocess: exit codes, messages, output pixels."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image
from support.animation import drawn_walk_frames, outputs_per_true_colour


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", "snap", *args], capture_output=True, text=True,
                          timeout=60)


def sprite() -> np.ndarray:
    rng = np.random.default_rng(3)
    pal = np.array([[10, 10, 10], [200, 40, 40], [40, 200, 60], [240, 240, 240]], np.uint8)
    return pal[rng.integers(0, 4, size=(14, 16))]


def test_snap_writes_true_resolution_png(tmp_path):
    s = sprite()
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(s, 11, axis=0), 11, axis=1)).save(src)
    out = tmp_path / "out.png"
    prev = tmp_path / "prev.png"
    p = run(str(src), "-o", str(out), "--json", "--preview", str(prev), "--preview-scale", "4")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert (info["cols"], info["rows"]) == (16, 14)
    got = np.array(Image.open(out).convert("RGB"))
    assert np.array_equal(got, s)
    assert Image.open(prev).size == (64, 56)
    assert info["output"] == str(out) and info["preview"] == str(prev)


def test_snap_with_cell_override(tmp_path):
    s = sprite()
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(s, 6, axis=0), 6, axis=1)).save(src)
    out = tmp_path / "o.png"
    p = run(str(src), "-o", str(out), "--cell", "6")
    assert p.returncode == 0, p.stderr
    assert Image.open(out).size == (16, 14)
    # without --json a person is told what was found, on stderr (stdout stays empty for scripts)
    assert p.stdout == ""
    assert f"{out}: 16x14 px (cells 6.00 x 6.00 source px" in p.stderr


def test_snap_of_a_bilinear_enlargement_says_so(tmp_path):
    s = sprite()
    src = tmp_path / "in.png"
    Image.fromarray(s).resize((16 * 13, 14 * 13), Image.BILINEAR).save(src)
    out = tmp_path / "o.png"
    p = run(str(src), "-o", str(out))
    assert p.returncode == 0, p.stderr
    # each cell is read at its centre, a few levels from the true colour where the filter's
    # sample points miss it by a fraction of a source pixel
    got = np.array(Image.open(out).convert("RGB")).astype(int)
    assert got.shape == s.shape and np.abs(got - s).max() <= 24
    assert "16x14 px" in p.stderr and "a smooth enlargement" in p.stderr
    p = run(str(src), "-o", str(out), "--json")
    assert json.loads(p.stdout)["smooth"] is True


def test_no_grid_exit_3_with_hint(tmp_path):
    src = tmp_path / "flat.png"
    Image.new("RGB", (200, 200), (120, 130, 140)).save(src)
    p = run(str(src), "-o", str(tmp_path / "o.png"))
    assert p.returncode == 3
    assert "no pixel grid found" in p.stderr
    assert "--cell" in p.stderr
    assert not (tmp_path / "o.png").exists()


def test_missing_input_and_bad_arguments(tmp_path):
    p = run(str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"))
    assert p.returncode == 2 and "not found" in p.stderr
    p = run(str(tmp_path), "-o", str(tmp_path / "o.png"))
    assert p.returncode == 2 and f"folder {tmp_path} holds no images" in p.stderr
    src = tmp_path / "in.png"
    Image.new("RGB", (40, 40)).save(src)
    p = run(str(src), "-o", str(tmp_path / "o.png"), "--cell", "4", "--width", "10")
    assert p.returncode == 2 and "not both" in p.stderr
    p = run(str(src), "-o", str(tmp_path / "o.png"), "--cell", "-1")
    assert p.returncode == 2


def test_transparent_background_and_colour_reduction(tmp_path):
    s = sprite()
    s[:2] = (90, 200, 210)  # a flat backdrop along the top border
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(s, 8, axis=0), 8, axis=1)).save(src)
    out = tmp_path / "t.png"
    p = run(str(src), "-o", str(out), "--transparent-bg")
    assert p.returncode == 0, p.stderr
    a = np.array(Image.open(out).convert("RGBA"))
    assert a.shape == (14, 16, 4)
    assert (a[:2, :, 3] == 0).all()
    out2 = tmp_path / "c.png"
    p = run(str(src), "-o", str(out2), "--colors", "3")
    assert p.returncode == 0, p.stderr
    rgb = np.array(Image.open(out2).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) <= 3


def test_holes_clears_enclosed_background_with_transparent_bg_only(tmp_path):
    """--holes N with --transparent-bg clears enclosed background regions of N or more true
    pixels (a gap between the legs); without --transparent-bg it is refused (exit 2)."""
    s = np.full((14, 16, 3), (90, 200, 210), np.uint8)
    s[2:12, 3:13] = sprite()[2:12, 3:13]  # no backdrop colour in it
    s[4:10, 7:9] = (90, 200, 210)  # 12 enclosed background pixels
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(s, 8, axis=0), 8, axis=1)).save(src)
    out = tmp_path / "h.png"
    assert run(str(src), "-o", str(out), "--transparent-bg").returncode == 0
    assert (np.array(Image.open(out).convert("RGBA"))[4:10, 7:9, 3] == 255).all()
    p = run(str(src), "-o", str(out), "--transparent-bg", "--holes", "6")
    assert p.returncode == 0, p.stderr
    a = np.array(Image.open(out).convert("RGBA"))
    assert (a[4:10, 7:9, 3] == 0).all() and (a[2:4, 3:13, 3] == 255).all()
    p = run(str(src), "-o", str(tmp_path / "x.png"), "--holes", "6")
    assert p.returncode == 2 and "--holes" in p.stderr and "--transparent-bg" in p.stderr
    assert not (tmp_path / "x.png").exists()


def test_transparent_bg_on_a_scene_says_so(tmp_path):
    """A scene (sky over varied ground) keeps most of its border under --transparent-bg: its sky
    goes and the report says the input looks like a scene; a sprite on a backdrop, whose whole
    border is cleared, gets no such note. --json gives the share either way."""
    scene = sprite()
    scene[:5] = (90, 160, 230)  # sky along the top; the ground below touches the other borders
    sprite_on_backdrop = np.full((14, 16, 3), (90, 200, 210), np.uint8)
    sprite_on_backdrop[2:12, 3:13] = sprite()[2:12, 3:13]
    for name, img, scene_like in (("scene", scene, True), ("sprite", sprite_on_backdrop, False)):
        src = tmp_path / f"{name}.png"
        Image.fromarray(np.repeat(np.repeat(img, 8, axis=0), 8, axis=1)).save(src)
        p = run(str(src), "-o", str(tmp_path / f"{name}-out.png"), "--transparent-bg")
        assert p.returncode == 0, p.stderr
        assert ("looks like a scene" in p.stderr) is scene_like, p.stderr
        p = run(str(src), "-o", str(tmp_path / f"{name}-out.png"), "--transparent-bg", "--json")
        a = np.array(Image.open(tmp_path / f"{name}-out.png").convert("RGBA"))
        ring = np.concatenate([a[0, :, 3], a[-1, :, 3], a[1:-1, 0, 3], a[1:-1, -1, 3]])
        assert json.loads(p.stdout)["border_cleared"] == round(float((ring == 0).mean()), 3)
        assert (json.loads(p.stdout)["border_cleared"] < 0.5) is scene_like
    assert "border_cleared" not in json.loads(run(str(src), "-o", str(tmp_path / "k.png"), "--json").stdout)


def test_snap_says_when_a_size_is_counted_over_flat_background(tmp_path):
    """A sprite with wide flat margins left and right: those columns are counted from the cell
    size, not seen, and a person is told so (not when the width was given)."""
    from orchestrator import samples

    knight = samples.sprites()["knight"]
    h, w = knight.shape[:2]
    canvas = np.zeros((h + 2, w + 11, 4), np.uint8)
    canvas[1:1 + h, 6:6 + w] = knight
    src = tmp_path / "in.png"
    Image.fromarray(samples.degrade(canvas, cell=10.0, jitter=1.0, seed=4, background=(60, 90, 160)).image).save(src)
    out = tmp_path / "o.png"
    p = run(str(src), "-o", str(out), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert (info["cols"], info["rows"]) == (w + 11, h + 2)
    left, right, top, bottom = info["flat_border"]
    assert left >= 6 and right >= 5 and top + bottom < 8
    p = run(str(src), "-o", str(out))
    assert f"; {left + right} columns counted over flat background (give --width/--height" in p.stderr
    assert "rows counted" not in p.stderr
    p = run(str(src), "-o", str(out), "--width", str(w + 11))
    assert p.returncode == 0, p.stderr
    assert "counted over flat background" not in p.stderr


def _frames(n: int, colours: np.ndarray) -> list[np.ndarray]:
    """``n`` animation frames of a 16x14 sprite, frame i drawn from colours i..i+3 (so a
    palette found per frame would differ from frame to frame)."""
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 4, size=(14, 16))
    return [colours[idx + i] for i in range(n)]


def test_snap_frames_share_one_grid_and_one_palette(tmp_path):
    """Animation frames on one pseudo-pixel grid: one grid found on all of them, one palette
    for all of them (a palette per frame would make the colours flicker), one PNG each."""
    from orchestrator import samples

    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210], [60, 80, 220], [250, 200, 40]],
                       np.uint8)
    truth = _frames(3, colours)
    srcs = []
    for i, t in enumerate(truth):
        # the same seed draws the same uneven grid lines for every frame
        d = samples.degrade(np.dstack([t, np.full(t.shape[:2], 255, np.uint8)]), cell=9.4, jitter=1.0, seed=7,
                            noise=3.0)
        srcs.append(tmp_path / f"walk{i}.png")
        Image.fromarray(d.image).save(srcs[-1])
    out = tmp_path / "snapped"
    p = run(*map(str, srcs), "-o", str(out), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert (info["cols"], info["rows"]) == (16, 14)
    assert info["outputs"] == [str(out / f"walk{i}.png") for i in range(3)]
    for i, t in enumerate(truth):
        g = np.array(Image.open(out / f"walk{i}.png").convert("RGB")).astype(int)
        assert g.shape == (14, 16, 3) and (np.abs(g - t).max(axis=-1) <= 24).mean() >= 0.95
    p = run(*map(str, srcs), "-o", str(out), "--colors", "4")
    assert p.returncode == 0 and f"{out}: 3 frames on one grid, 16x14 px (cells" in p.stderr
    got = [np.array(Image.open(out / f"walk{i}.png").convert("RGB")) for i in range(3)]
    # six colours over the frames, four in the palette they share
    assert len(np.unique(np.concatenate([g.reshape(-1, 3) for g in got]), axis=0)) <= 4
    # and a colour of the sprite comes out the same in every frame it is in
    def most_common(px):
        vals, counts = np.unique(px, axis=0, return_counts=True)
        return tuple(vals[np.argmax(counts)])

    for c in colours[2:4]:
        outs = {most_common(g[(t == c).all(-1)]) for g, t in zip(got, truth)}
        assert len(outs) == 1, (c, outs)
    # a grid given on the command line is the frames' grid too
    p = run(*map(str, srcs), "-o", str(out), "--width", "8", "--height", "7", "--json")
    assert p.returncode == 0 and (json.loads(p.stdout)["cols"], json.loads(p.stdout)["rows"]) == (8, 7), p.stderr
    p = run(*map(str, srcs), "-o", str(out), "--cell", "18.8", "--json")
    assert p.returncode == 0 and (json.loads(p.stdout)["cols"], json.loads(p.stdout)["rows"]) == (8, 7), p.stderr
    assert abs(json.loads(p.stdout)["cell_w"] - 18.8) < 0.1
    assert Image.open(out / "walk0.png").size == (8, 7)


def test_snap_frames_name_a_frame_that_is_no_pixel_art_on_their_grid(tmp_path):
    truth, drawn = drawn_walk_frames()
    srcs = []
    for i, f in enumerate(drawn[:2] + [np.random.default_rng(1).integers(0, 256, drawn[0].shape).astype(np.uint8)]):
        srcs.append(tmp_path / f"f{i}.png")
        Image.fromarray(f).save(srcs[-1])
    out = tmp_path / "out"
    p = run(*map(str, srcs), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert (f"warning: {srcs[2]}: its colours do not change at the lines of its grid, so it is no pixel art on the "
            "grid the frames share; it was snapped on it anyway") in p.stderr
    assert str(srcs[0]) not in p.stderr and str(srcs[1]) not in p.stderr
    assert sorted(q.name for q in out.iterdir()) == ["f0.png", "f1.png", "f2.png"]
    info = json.loads(run(*map(str, srcs), "-o", str(out), "--json").stdout)
    assert info["off_grid"] == {str(srcs[2]): "its colours do not change at the lines of its grid"}


def test_snap_reads_every_frame_of_an_animated_gif(tmp_path):
    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210]], np.uint8)
    sprite = colours[np.random.default_rng(2).integers(0, 4, size=(12, 15))]
    frames = [np.roll(sprite, i, axis=1) for i in range(3)]
    big = [Image.fromarray(np.repeat(np.repeat(f, 9, axis=0), 9, axis=1)) for f in frames]
    src = tmp_path / "run.gif"
    big[0].save(src, save_all=True, append_images=big[1:], duration=100, loop=0)
    out = tmp_path / "frames"
    prev = tmp_path / "previews"
    p = run(str(src), "-o", str(out), "--preview", str(prev), "--preview-scale", "2")
    assert p.returncode == 0, p.stderr
    assert sorted(q.name for q in out.iterdir()) == ["run_000.png", "run_001.png", "run_002.png"]
    for i, f in enumerate(frames):
        assert np.array_equal(np.array(Image.open(out / f"run_{i:03d}.png").convert("RGB")), f)
        assert Image.open(prev / f"run_{i:03d}.png").size == (30, 24)


def test_snap_frames_refused_before_anything_is_written(tmp_path):
    """Frames of different sizes, a PNG name for the folder, two inputs that would land on one
    file name: each is a clear error naming what is wrong, and no file is written."""
    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210]], np.uint8)
    a, b = _frames(2, np.concatenate([colours, colours]))
    fa, fb = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.repeat(np.repeat(a, 8, axis=0), 8, axis=1)).save(fa)
    Image.fromarray(np.repeat(np.repeat(b, 9, axis=0), 9, axis=1)).save(fb)
    out = tmp_path / "out"
    p = run(str(fa), str(fb), "-o", str(out))
    assert p.returncode == 2
    assert f"{fb} is 144x126 but {fa} is 128x112" in p.stderr and "share one grid" in p.stderr
    p = run(str(fa), str(fa), "-o", str(out))
    assert p.returncode == 2 and f"would both be written as {out / 'a.png'}" in p.stderr
    p = run(str(fa), str(fb), "-o", str(tmp_path / "sheet.png"))
    assert p.returncode == 2 and "frames are written into a folder" in p.stderr and "-o frames/" in p.stderr
    assert not out.exists() and not (tmp_path / "sheet.png").exists()


def test_an_animation_beyond_16k_squared_pixels_is_refused_before_decoding(tmp_path):
    # 17 frames of 4096x4096: 285 M pixels together (1.1 GB as RGBA), 0.25 MB on disk
    frames = [Image.new("P", (4096, 4096), i % 2) for i in range(17)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 255, 255])
    src = tmp_path / "long.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:])
    p = run(str(src), "-o", str(tmp_path / "out"))
    assert p.returncode == 2
    assert p.stderr.splitlines() == [f"error: {src} is 17 frames of 4096x4096, more than 16384x16384 pixels together",
                                     "hint: split the animation into shorter runs"]
    assert not (tmp_path / "out").exists()


def test_snap_write_failures_are_errors_and_inputs_are_never_replaced(tmp_path):
    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210]], np.uint8)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_frames(2, np.concatenate([colours, colours]))):
        Image.fromarray(np.repeat(np.repeat(f, 8, axis=0), 8, axis=1)).save(frames / f"f{i}.png")
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    p = run(str(frames), "-o", str(frames))
    assert p.returncode == 2 and f"{frames / 'f0.png'} is an input: writing the frames into {frames}" in p.stderr
    assert {q.name: q.read_bytes() for q in frames.iterdir()} == before
    # a file where the output folder must go: the error names the path, no traceback
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    for args in ([str(frames / "f0.png"), "-o", str(blocker / "o.png")], [str(frames), "-o", str(blocker / "sub")]):
        p = run(*args)
        assert p.returncode == 6 and f"error: cannot write {blocker}/" in p.stderr and "Traceback" not in p.stderr


def test_snap_output_folder_gets_the_inputs_name_and_other_suffixes_are_refused(tmp_path):
    """``-o DIR/`` (or an existing folder) writes INPUT's name there, as ``cp`` does; a name that
    does not end in .png is refused before any work (PNG bytes under a .jpg name mislead every
    tool); the input and the sprite are never written over."""
    s = sprite()
    src = tmp_path / "knight.png"
    Image.fromarray(np.repeat(np.repeat(s, 9, axis=0), 9, axis=1)).save(src)
    new = tmp_path / "new"
    p = run(str(src), "-o", f"{new}/", "--preview", f"{new}/")
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.array(Image.open(new / "knight.png").convert("RGB")), s)
    assert Image.open(new / "knight_preview.png").size == (16 * 8, 14 * 8)
    existing = tmp_path / "existing"
    existing.mkdir()
    p = run(str(src), "-o", str(existing))
    assert p.returncode == 0 and f"{existing / 'knight.png'}: 16x14 px" in p.stderr
    before = src.read_bytes()
    for args, message in (
        (["-o", str(tmp_path / "out.jpg")], f"-o {tmp_path / 'out.jpg'}: the image is written as PNG, so its name "
                                            "must end in .png"),
        (["-o", str(tmp_path / "sprite")], "its name must end in .png"),
        (["-o", str(tmp_path)], f"-o {tmp_path}: writing {src} would replace the input {src}"),
        (["-o", str(tmp_path / "a.png"), "--preview", str(tmp_path / "a.png")], "would replace the sprite"),
    ):
        p = run(str(src), *args)
        assert p.returncode == 2 and message in p.stderr, p.stderr
    assert "hint: e.g. -o " + str(tmp_path / "out.png") in run(str(src), "-o", str(tmp_path / "out.jpg")).stderr
    assert src.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["existing", "knight.png", "new"]
    # frames: the previews may not go into the frames' own folder
    second = tmp_path / "k2.png"
    second.write_bytes(before)
    p = run(str(src), str(second), "-o", str(tmp_path / "frames"), "--preview", str(tmp_path / "frames"))
    assert p.returncode == 2 and "the previews would replace the frames" in p.stderr, p.stderr
    assert not (tmp_path / "frames").exists()


def test_a_preview_too_large_is_refused_before_the_sprite_is_written(tmp_path):
    """--cell 1 keeps a 1024 px image's pixels; at --preview-scale 64 its preview would be
    65536 px a side (a failed 256 GiB allocation after the sprite was written, before)."""
    rng = np.random.default_rng(1)
    src = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(src)
    out, prev = tmp_path / "out.png", tmp_path / "prev.png"
    p = run(str(src), "-o", str(out), "--cell", "1", "--preview", str(prev), "--preview-scale", "64")
    assert p.returncode == 2, p.stderr
    assert "error: --preview-scale 64 makes the 1024x1024 sprite a 65536x65536 preview, more than 16384 px on a side" \
        in p.stderr and "hint: use --preview-scale 16 or less" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists() and not prev.exists()


def _walk_frames(tmp_path) -> tuple[list, list]:
    """The walk cycle drawn frame by frame (support.animation), saved as PNGs: (truth, paths)."""
    truth, frames = drawn_walk_frames()
    srcs = []
    for i, f in enumerate(frames):
        srcs.append(tmp_path / f"walk_{i:02d}.png")
        Image.fromarray(f).save(srcs[-1])
    return truth, srcs


def test_snap_frames_without_colours_do_not_flicker(tmp_path):
    """Without --colors each frame's colours are read afresh, a level or two apart from the
    next frame's: the frames still share one set of colours, and --colors K above the sprite's
    count does not split one of them between frames."""
    truth, srcs = _walk_frames(tmp_path)
    out = tmp_path / "snapped"
    for extra in ([], ["--colors", "8"]):
        p = run(*map(str, srcs), "-o", str(out), "--transparent-bg", *extra)
        assert p.returncode == 0, p.stderr
        got = [np.array(Image.open(out / s.name).convert("RGBA")) for s in srcs]
        assert {g.shape for g in got} == {(16, 16, 4)}
        for t, g in zip(truth, got):
            assert ((t[..., 3] > 0) == (g[..., 3] > 0)).all()
        seen = outputs_per_true_colour(truth, got)
        assert len(seen) == 7
        assert all(len(v) == 1 for v in seen.values()), (extra, {k: v for k, v in seen.items() if len(v) > 1})
        opaque = np.concatenate([g[g[..., 3] > 0][:, :3] for g in got])
        assert len(np.unique(opaque, axis=0)) == 7


def test_snap_frames_at_whole_pixel_blocks_keep_their_own_near_shades(tmp_path):
    """Frames enlarged by whole pixels hold the artist's own colours: a highlight two levels
    brighter in one frame (a flash) is kept, not merged with the other frames' colour."""
    base = sprite()
    flash = base.copy()
    flash[(base == 240).all(-1)] = (243, 243, 243)
    srcs = []
    for i, f in enumerate((base, flash)):
        srcs.append(tmp_path / f"f{i}.png")
        Image.fromarray(np.repeat(np.repeat(f, 6, axis=0), 6, axis=1)).save(srcs[-1])
    out = tmp_path / "o"
    p = run(*map(str, srcs), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.array(Image.open(out / "f0.png").convert("RGB")), base)
    assert np.array_equal(np.array(Image.open(out / "f1.png").convert("RGB")), flash)


def test_snap_of_a_folder_skips_hidden_files(tmp_path):
    """A macOS AppleDouble `._walk0.png` made `snap FOLDER` fail with "not a readable image";
    a valid `.thumb.png` was snapped as one more frame."""
    colours = np.array([[20, 20, 30], [200, 40, 40], [40, 190, 60], [240, 230, 210], [60, 80, 220]], np.uint8)
    src = tmp_path / "mixd"
    src.mkdir()
    for i, f in enumerate(_frames(2, colours)):
        Image.fromarray(np.repeat(np.repeat(f, 6, axis=0), 6, axis=1)).save(src / f"walk{i}.png")
    (src / "._walk0.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    Image.fromarray(np.repeat(np.repeat(_frames(1, colours)[0], 6, axis=0), 6, axis=1)).save(src / ".thumb.png")
    out = tmp_path / "out"
    p = run(str(src), "-o", str(out), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["outputs"] == [str(out / "walk0.png"), str(out / "walk1.png")]
    assert sorted(q.name for q in out.iterdir()) == ["walk0.png", "walk1.png"]


def test_a_write_that_fails_half_way_leaves_no_output_behind(tmp_path, monkeypatch, capsys):
    """The sprite was written and then the preview failed (a full disk): exit 6, yet the sprite
    stayed, and a rerun found an output that the failed run had reported as not made. All the
    files of a run are staged first and renamed together. A disk that fills between two files
    cannot be made here, so the second file's staging is made to fail with ENOSPC."""
    from comfy_nodes.pixel import imageio
    from orchestrator.cli import main

    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(sprite(), 11, axis=0), 11, axis=1)).save(src)
    real = imageio.staged_file

    def full_disk_for_previews(target):
        if target.name == "prev.png" or target.parent.name == "prev":
            raise OSError(28, "No space left on device", str(target))
        return real(target)

    monkeypatch.setattr(imageio, "staged_file", full_disk_for_previews)
    out, prev = tmp_path / "out.png", tmp_path / "prev.png"
    assert main(["snap", str(src), "-o", str(out), "--preview", str(prev)]) == 6
    assert f"error: cannot write {prev}: No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    # frames: none of the folder's files is left either
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.open(src).save(frames / f"f{i}.png")
    assert main(["snap", str(frames), "-o", str(tmp_path / "snapped"), "--preview", str(tmp_path / "prev")]) == 6
    assert not any((tmp_path / "snapped").glob("*")) and not any((tmp_path / "prev").glob("*"))


def test_snap_says_when_it_kept_the_image_as_it_is(tmp_path):
    """A small sprite with no grid of pseudo pixels is taken as already at its true resolution:
    said in words (it printed "cells 1.00 x 1.00, confidence 0.00" and nothing else), and
    flagged in --json."""
    src = tmp_path / "small.png"
    Image.fromarray(sprite()).save(src)
    p = run(str(src), "-o", str(tmp_path / "out.png"))
    assert p.returncode == 0, p.stderr
    assert "16x14 px, kept as it is: no grid of pseudo pixels found, so it is taken as already at its true " \
           "resolution (give --cell or --width/--height if it is an enlargement)" in p.stderr
    p = run(str(src), "-o", str(tmp_path / "out.png"), "--json")
    assert json.loads(p.stdout)["kept_as_is"] is True
    big = tmp_path / "big.png"
    Image.fromarray(np.repeat(np.repeat(sprite(), 11, axis=0), 11, axis=1)).save(big)
    p = run(str(big), "-o", str(tmp_path / "out.png"), "--json")
    assert json.loads(p.stdout)["kept_as_is"] is False and "notes" not in json.loads(p.stdout)


def test_doubtful_grids_get_a_note():
    """Cells twice as wide as tall (an axis read at half or twice its cell) or a grid found with
    low confidence were printed like any other result; a grid given or exact gets no note."""
    import argparse

    from comfy_nodes.pixel.grid import Grid
    from orchestrator.commands.snap import _doubts

    def grid(cw, ch, conf, exact=False):
        return Grid(cell_w=cw, cell_h=ch, cols=56, rows=28, x_lines=np.arange(57) * cw, y_lines=np.arange(29) * ch,
                    confidence=conf, source_size=(1024, 1024), exact=exact)

    auto = argparse.Namespace(cell=None, cell_w=None, cell_h=None, width=None, height=None)
    (note,) = _doubts(grid(18.67, 36.35, 0.84), auto)
    assert note.startswith("the cells are 1.95 times taller than wide, where pseudo pixels are near square")
    (note,) = _doubts(grid(36.0, 35.0, 0.36), auto)
    assert note.startswith("the grid was found with low confidence (0.36)")
    assert _doubts(grid(36.0, 35.0, 0.84), auto) == []
    assert _doubts(grid(3.0, 2.0, 1.0, exact=True), auto) == []
    assert _doubts(grid(18.67, 36.35, 0.84), argparse.Namespace(**{**vars(auto), "width": 56})) == []
