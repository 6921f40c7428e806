"""``dgx-pixels snap`` as a subprocess: exit codes, messages, output pixels."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image


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
    assert p.returncode == 2 and f"{tmp_path} is a folder, not an image file" in p.stderr
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
