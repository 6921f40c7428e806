"""``dgx-pixels palette`` sub-commands, run through the real CLI entry point."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main


def _run(capsys, *argv):
    rc = main(["palette", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_list(capsys):
    rc, out, _ = _run(capsys, "list", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["pico-8"]["colors"] == 16 and rows["nes"]["colors"] == 55
    assert "lospec" in rows["sweetie-16"]["source"].lower()
    rc, out, _ = _run(capsys, "list")
    assert rc == 0 and "aap-64" in out and " 64 " in out


def test_show_builtin_and_file(capsys, tmp_path):
    rc, out, _ = _run(capsys, "show", "GB")
    assert rc == 0
    assert [ln for ln in out.splitlines() if not ln.startswith("#")] == ["0f380f", "306230", "8bac0f", "9bbc0f"]
    f = tmp_path / "p.hex"
    f.write_text("#ABCDEF\n")
    rc, out, _ = _run(capsys, "show", str(f), "--json")
    assert rc == 0 and json.loads(out)["colors"] == ["#abcdef"]


def test_convert_between_formats(capsys, tmp_path):
    out_gpl = tmp_path / "db32.gpl"
    rc, out, _ = _run(capsys, "convert", "db32", str(out_gpl))
    assert rc == 0 and "32 colours" in out
    assert out_gpl.read_text().startswith("GIMP Palette\n")
    out_png = tmp_path / "db32.png"
    rc, _, _ = _run(capsys, "convert", str(out_gpl), str(out_png), "--swatch", "4")
    assert rc == 0
    with Image.open(out_png) as im:
        assert im.size == (128, 4)
    rc, out, _ = _run(capsys, "show", str(out_png))
    assert len([ln for ln in out.splitlines() if not ln.startswith("#")]) == 32


def test_extract_shared_palette_from_frames(capsys, tmp_path):
    a = np.zeros((6, 6, 3), np.uint8)
    a[:3] = (255, 0, 0)
    b = a.copy()
    b[3:] = (0, 0, 255)
    Image.fromarray(a).save(tmp_path / "f1.png")
    Image.fromarray(b).save(tmp_path / "f2.png")
    out = tmp_path / "anim.hex"
    rc, msg, _ = _run(capsys, "extract", str(tmp_path / "f1.png"), str(tmp_path / "f2.png"), "-k", "8", "-o", str(out))
    assert rc == 0 and "from 2 images" in msg
    assert sorted(out.read_text().split()) == ["000000", "0000ff", "ff0000"]
    rc, _, _ = _run(capsys, "extract", str(tmp_path / "f2.png"), "-k", "auto", "--seed", "3", "-o", str(tmp_path / "a.gpl"))
    assert rc == 0 and (tmp_path / "a.gpl").read_text().count("\t#") == 2  # f2 holds red and blue only
    # an animated GIF is all of its frames: blue is only in the second
    Image.fromarray(a).save(tmp_path / "walk.gif", save_all=True, append_images=[Image.fromarray(b)])
    rc, msg, _ = _run(capsys, "extract", str(tmp_path / "walk.gif"), "-k", "8", "-o", str(out))
    assert rc == 0 and "from 2 images" in msg
    assert sorted(out.read_text().split()) == ["000000", "0000ff", "ff0000"]


def test_errors_are_clear(capsys, tmp_path):
    rc, _, err = _run(capsys, "show", "vga")
    assert rc == 2 and "unknown palette 'vga'" in err and "hint:" in err
    bad = tmp_path / "bad.gpl"
    bad.write_text("GIMP Palette\n1 2 3\nhello\n")
    rc, _, err = _run(capsys, "show", str(bad))
    assert rc == 2 and "line 3" in err
    img = tmp_path / "i.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(img)
    rc, _, err = _run(capsys, "extract", str(img), "-k", "0x", "-o", str(tmp_path / "o.hex"))
    assert rc == 2 and "-k" in err
    rc, _, err = _run(capsys, "extract", str(img), "-k", "4", "-o", str(tmp_path / "o.txt"))
    assert rc == 2 and ".txt" in err
    rc, _, err = _run(capsys, "extract", str(tmp_path / "missing.png"), "-k", "4", "-o", str(tmp_path / "o.hex"))
    assert rc == 2 and "missing.png" in err
    rc, _, err = _run(capsys, "convert", "db16", str(tmp_path / "x.pal"), "--swatch", "0")
    assert rc == 2 and "--swatch" in err


def test_show_says_colour_for_one(capsys, tmp_path):
    f = tmp_path / "one.hex"
    f.write_text("#123456\n")
    rc, out, _ = _run(capsys, "show", str(f))
    assert rc == 0 and out.splitlines()[0] == "# one: 1 colour"


def test_convert_keeps_gimp_colour_names_and_reads_paintnet(capsys, tmp_path):
    src = tmp_path / "named.gpl"
    src.write_text("GIMP Palette\nName: Named\n255 0 0 Fire Red\n0 0 255 Deep Blue\n")
    out = tmp_path / "copy.gpl"
    rc, _, _ = _run(capsys, "convert", str(src), str(out))
    assert rc == 0
    assert [ln.split("\t")[1] for ln in out.read_text().splitlines() if "\t" in ln] == ["Fire Red", "Deep Blue"]
    pdn = tmp_path / "lospec.txt"
    pdn.write_text(";paint.net Palette File\nFFFF0000\nFF0000FF\n")
    rc, msg, _ = _run(capsys, "convert", str(pdn), str(tmp_path / "p.hex"))
    assert rc == 0 and (tmp_path / "p.hex").read_text() == "ff0000\n0000ff\n"


def test_unreadable_formats_are_clear_errors_not_tracebacks(capsys, tmp_path):
    ase = tmp_path / "swatches.ase"
    ase.write_bytes(b"ASEF\x00\x01\x00\x00")
    rc, _, err = _run(capsys, "show", str(ase))
    assert rc == 2 and "Adobe Swatch Exchange" in err and ".gpl" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "show", str(tmp_path / "missing.ase"))
    assert rc == 2 and "Adobe Swatch Exchange" in err
    d = tmp_path / "folder.gpl"
    d.mkdir()
    rc, _, err = _run(capsys, "show", str(d))
    assert rc == 2 and "is a folder" in err


def test_extract_auto_warns_when_its_cap_does_not_meet_the_tolerance(capsys, tmp_path):
    """`-k auto --tolerance 0.001` wrote 64 colours with no word that the tolerance was not met,
    and the help never named the cap: it does now, and stderr says so with the error reached."""
    from comfy_nodes.pixel.palette import AUTO_K_MAX

    Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "n.png")
    out = tmp_path / "t.hex"
    rc, msg, err = _run(capsys, "extract", "-k", "auto", "--tolerance", "0.001", "-o", str(out), str(tmp_path / "n.png"))
    assert rc == 0 and msg.startswith(f"wrote {out} (") and len(out.read_text().split()) <= AUTO_K_MAX
    m = re.fullmatch(rf"warning: -k auto stopped at its cap of {AUTO_K_MAX} colours without meeting --tolerance "
                     r"0\.001: a colour of the images is still (\d\.\d{4}) OKLab from its palette colour; give -k N "
                     r"\(up to 256\) for more colours, or a larger --tolerance\n", err)
    assert m and float(m.group(1)) > 0.001
    # met: no warning
    rc, _, err = _run(capsys, "extract", "-k", "auto", "--tolerance", "0.3", "-o", str(out), str(tmp_path / "n.png"))
    assert rc == 0 and err == ""
    # the help says the cap, for -k and for --tolerance
    with pytest.raises(SystemExit):
        main(["palette", "extract", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert f"at most {AUTO_K_MAX}" in helptext and f"when {AUTO_K_MAX} colours do not meet it" in helptext


def test_without_scikit_learn_k_means_names_the_package_to_install(tmp_path):
    """A plain `git clone` into custom_nodes installs no requirements: the first colour
    reduction by k-means failed with "ModuleNotFoundError: No module named 'sklearn'" and a
    hint about the node's input. It names the package and how to install it. The package is
    made unimportable for real in a child Python (``sys.modules['sklearn'] = None``)."""
    import subprocess
    import sys

    img = tmp_path / "many.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(img)
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from orchestrator.cli import main\n"
            f"sys.exit(main(['palette', 'extract', {str(img)!r}, '--colors', '4', '-o', {str(tmp_path / 'p.hex')!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("error: reducing colours by k-means needs the scikit-learn package"), p.stderr
    assert "python -m pip install -r requirements.txt" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "p.hex").exists()


def test_extract_takes_a_folder_of_frames_as_the_other_commands_do(capsys, tmp_path):
    """`palette extract frames/` was "is a folder, not an image file" where snap, sheet and
    export take the folder's images; hidden files in it are skipped as there."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        Image.fromarray(np.full((4, 4, 3), colour, np.uint8)).save(frames / f"f{i}.png")
    Image.fromarray(np.full((4, 4, 3), (0, 255, 0), np.uint8)).save(frames / ".thumb.png")
    rc, out, err = _run(capsys, "extract", str(frames), "-k", "4", "-o", str(tmp_path / "p.hex"))
    assert rc == 0, err
    assert "2 colours from 2 images" in out
    assert sorted((tmp_path / "p.hex").read_text().split()) == ["0000ff", "ff0000"]
