"""Palette nodes called directly through ``execute`` (no server)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

from comfy_nodes.nodes.nodes_palette import (  # noqa: E402
    NODES,
    DGXPixelsPaletteExtract,
    DGXPixelsPaletteLoad,
    DGXPixelsPalettePreview,
    DGXPixelsPaletteQuantize,
    DGXPixelsPaletteSave,
)
from comfy_nodes.pixel.errors import InvalidArgumentError, PaletteError, PathEscapeError  # noqa: E402
from comfy_nodes.pixel.palette import Palette  # noqa: E402
from comfy_nodes.pixel.palette_io import read_palette  # noqa: E402
from support.symlinks import swap_for_link  # noqa: E402


def tensor(frames):
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def u8(t):
    return np.round(t.numpy() * 255).astype(np.uint8)


@pytest.fixture
def comfy_dirs(tmp_path):
    folder_paths = pytest.importorskip("folder_paths")
    old_in, old_out = folder_paths.get_input_directory(), folder_paths.get_output_directory()
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    folder_paths.set_input_directory(str(tmp_path / "in"))
    folder_paths.set_output_directory(str(tmp_path / "out"))
    yield tmp_path / "in", tmp_path / "out"
    folder_paths.set_input_directory(old_in)
    folder_paths.set_output_directory(old_out)


def test_schemas():
    ids = [n.define_schema().node_id for n in NODES]
    assert ids == ["DGXPixelsPaletteLoad", "DGXPixelsPaletteExtract", "DGXPixelsPaletteSave",
                   "DGXPixelsPalettePreview", "DGXPixelsPaletteQuantize"]
    for n in NODES:
        s = n.define_schema()
        assert s.category == "DGX-Pixels/Palette" and s.description
        assert s.display_name.startswith("Pixel Palette")
        assert all(i.tooltip for i in s.inputs)


def test_load_builtin_file_and_image(comfy_dirs):
    inp, _ = comfy_dirs
    pal, sw, count = DGXPixelsPaletteLoad.execute(builtin="gameboy").result
    assert isinstance(pal, Palette) and count == 4 and pal.hex_list()[0] == "0f380f"
    assert tuple(sw.shape) == (1, 16, 64, 4)
    (inp / "pals").mkdir()
    (inp / "pals" / "two.hex").write_text("ff0000\n0000ff\n")
    pal, _, count = DGXPixelsPaletteLoad.execute(builtin="gameboy", file="pals/two.hex").result
    assert count == 2 and pal.hex_list() == ["ff0000", "0000ff"]
    img = np.zeros((1, 3, 4), np.uint8)
    img[0] = [[1, 2, 3, 255], [4, 5, 6, 255], [1, 2, 3, 255]]
    pal, _, count = DGXPixelsPaletteLoad.execute(builtin="gameboy", file="pals/two.hex",
                                                 palette_image=tensor([img])).result
    assert pal.hex_list() == ["010203", "040506", "010203"]  # a strip: one colour per pixel, repeats kept
    with pytest.raises(PathEscapeError):
        DGXPixelsPaletteLoad.execute(file="../secret.hex")
    with pytest.raises(PathEscapeError):
        DGXPixelsPaletteLoad.execute(file="/etc/passwd")
    with pytest.raises(PaletteError, match="not found"):
        DGXPixelsPaletteLoad.execute(file="missing.gpl")


def test_load_offers_the_palette_files_of_the_input_and_output_folders(comfy_dirs):
    """The file input was free text: a user had to know and type the path. It is a list of the
    palette files found (read again whenever the editor asks), output files marked as
    LoadImage marks them, so a palette written by Palette Save loads back."""
    inp, out = comfy_dirs

    def options():
        return next(i for i in DGXPixelsPaletteLoad.define_schema().inputs if i.id == "file").options

    assert options() == ["none"]
    (inp / "palettes").mkdir()
    (inp / "palettes" / "mine.hex").write_text("ff0000\n00ff00\n")
    (inp / "picture.png").write_bytes(b"not offered")
    path = DGXPixelsPaletteSave.execute(Palette("two", np.array([[1, 2, 3], [4, 5, 6]], np.uint8)),
                                        filename="palettes/saved", format="gpl").result[0]
    assert path == "palettes/saved.gpl"
    assert options() == ["none", "palettes/mine.hex", "palettes/saved.gpl [output]"]
    pal, _, count = DGXPixelsPaletteLoad.execute(builtin="gameboy", file="palettes/saved.gpl [output]").result
    assert count == 2 and pal.hex_list() == ["010203", "040506"]
    pal, _, count = DGXPixelsPaletteLoad.execute(builtin="gameboy", file="palettes/mine.hex").result
    assert pal.hex_list() == ["ff0000", "00ff00"]
    assert DGXPixelsPaletteLoad.execute(builtin="gameboy", file="none").result[2] == 4
    with pytest.raises(PathEscapeError) as exc:
        DGXPixelsPaletteLoad.execute(file="../in/palettes/mine.hex [output]")
    assert "ComfyUI's output folder" in exc.value.hint


def test_extract_shared_palette_and_auto():
    a = np.zeros((4, 4, 3), np.uint8)
    a[:2] = (255, 0, 0)
    b = a.copy()
    b[2:] = (0, 255, 0)
    pal, sw, count, _info = DGXPixelsPaletteExtract.execute(image=tensor([a, b]), colors=8, seed=1).result
    assert set(pal.hex_list()) == {"ff0000", "000000", "00ff00"} and count == 3
    pal, _, count, _info = DGXPixelsPaletteExtract.execute(image=tensor([a, b]), colors=0).result
    assert count == 3
    m = torch.zeros(2, 4, 4)
    m[:, :2] = 1.0  # hide the red rows
    pal, _, _, _info = DGXPixelsPaletteExtract.execute(image=tensor([a, b]), colors=8, mask=m).result
    assert "ff0000" not in pal.hex_list()
    with pytest.raises(InvalidArgumentError, match="colors"):
        DGXPixelsPaletteExtract.execute(image=tensor([a]), colors=-1)


def test_quantize_batch_rgb_stays_rgb_and_mask_gives_alpha():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (6, 5, 3)).astype(np.uint8) for _ in range(3)]
    pal, _, _ = DGXPixelsPaletteLoad.execute(builtin="pico-8").result
    img, mask = DGXPixelsPaletteQuantize.execute(image=tensor(frames), palette=pal, dither="bayer4").result
    assert tuple(img.shape) == (3, 6, 5, 3) and float(mask.max()) == 0.0
    allowed = {tuple(c) for c in pal.colors.tolist()}
    assert {tuple(p) for p in u8(img).reshape(-1, 3).tolist()} <= allowed
    m = torch.zeros(3, 6, 5)
    m[:, 0, 0] = 1.0
    img, mask = DGXPixelsPaletteQuantize.execute(image=tensor(frames), palette=pal, mask=m).result
    assert tuple(img.shape) == (3, 6, 5, 4)
    assert float(img[0, 0, 0, 3]) == 0.0 and float(mask[0, 0, 0]) == 1.0 and float(mask[0, 1, 1]) == 0.0
    with pytest.raises(PaletteError, match="DGX_PALETTE"):
        DGXPixelsPaletteQuantize.execute(image=tensor(frames), palette="pico-8")


def test_error_diffusion_of_several_frames_is_said_to_shimmer(caplog):
    """Error diffusion carries each pixel's error on through its frame: a 2x2 change (a blink)
    re-dithered about half of a 64x64 frame, and the animation shimmered without a word."""
    import logging

    ramp = np.zeros((16, 16, 3), np.uint8)
    ramp[...] = np.linspace(0, 255, 16).astype(np.uint8)[None, :, None]
    blink = ramp.copy()
    blink[2:4, 2:4] = 255
    pal, _, _ = DGXPixelsPaletteLoad.execute(builtin="pico-8").result
    for dither, frames, said in (("floyd-steinberg", [ramp, blink], True), ("atkinson", [ramp, blink], True),
                                 ("bayer4", [ramp, blink], False), ("floyd-steinberg", [ramp], False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            DGXPixelsPaletteQuantize.execute(image=tensor(frames), palette=pal, dither=dither)
        assert ("frames that differ a little shimmer when played; a bayer pattern" in caplog.text) == said, dither


@pytest.mark.parametrize("n", [64, 65])
def test_quantize_an_all_zero_mask_adds_no_alpha_at_every_size(n):
    """A MASK of zeros masks nothing: an RGB image stays RGB with it, as without it. It was so
    only for a 64x64 mask (LoadImage's placeholder); a 65x65 one made the output RGBA."""
    rng = np.random.default_rng(n)
    frame = rng.integers(0, 256, (n, n, 3)).astype(np.uint8)
    pal, _, _ = DGXPixelsPaletteLoad.execute(builtin="pico-8").result
    without = DGXPixelsPaletteQuantize.execute(image=tensor([frame]), palette=pal).result
    img, mask = DGXPixelsPaletteQuantize.execute(image=tensor([frame]), palette=pal, mask=torch.zeros(1, n, n)).result
    assert tuple(img.shape) == (1, n, n, 3) and float(mask.max()) == 0.0
    assert torch.equal(img, without[0]) and torch.equal(mask, without[1])


def test_save_writes_inside_output_and_numbers_files(comfy_dirs):
    _, out = comfy_dirs
    pal, _, _ = DGXPixelsPaletteLoad.execute(builtin="db16").result
    (rel,) = DGXPixelsPaletteSave.execute(palette=pal, filename="pals/hero", format="gpl").result
    assert rel == "pals/hero.gpl" and read_palette(out / rel) == pal
    (rel2,) = DGXPixelsPaletteSave.execute(palette=pal, filename="pals/hero", format="gpl").result
    assert rel2 == "pals/hero_001.gpl"
    (rel3,) = DGXPixelsPaletteSave.execute(palette=pal, filename="pals/hero", format="gpl", overwrite=True).result
    assert rel3 == "pals/hero.gpl"
    (relp,) = DGXPixelsPaletteSave.execute(palette=pal, filename="hero.png", format="png", swatch=4).result
    assert relp == "hero.png" and read_palette(out / relp) == pal
    for bad in ("../escape", "/tmp/abs", "a/../../b"):
        with pytest.raises(PathEscapeError):
            DGXPixelsPaletteSave.execute(palette=pal, filename=bad, format="hex")
    assert not (out.parent / "escape.hex").exists()


def test_preview_outputs_swatches_and_hex():
    pal = Palette("t", np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8))
    res = DGXPixelsPalettePreview.execute(palette=pal, swatch=2, columns=2)
    img, text = res.result
    assert tuple(img.shape) == (1, 4, 4, 4)
    assert text.splitlines() == ["#ff0000", "#0000ff", "#00ff00"]
    assert float(img[0, 2, 2, 3]) == 0.0  # unused cell is transparent


# ----------------------------------------------------------------------------- live server


def test_palette_graph_on_real_comfyui(comfy_server):
    """Load Image -> Palette Extract (shared) -> Quantize -> Background Remove -> Save, plus
    Palette Save: the DGX_PALETTE socket type must pass the server's graph validation."""
    import io as stdio
    import time
    import uuid

    import requests
    from PIL import Image

    rng = np.random.default_rng(3)
    src = np.zeros((10, 12, 3), np.uint8)
    src[...] = (250, 250, 250)
    src[2:8, 3:9] = rng.integers(0, 256, (6, 6, 3))
    buf = stdio.BytesIO()
    Image.fromarray(src, "RGB").save(buf, format="PNG")
    name = f"dgx-pal-{uuid.uuid4().hex[:8]}.png"
    up = requests.post(f"{comfy_server.url}/upload/image", files={"image": (name, buf.getvalue(), "image/png")},
                       data={"type": "input", "overwrite": "true"}, timeout=30)
    assert up.status_code == 200, up.text
    prefix = f"dgx-pal-{uuid.uuid4().hex[:8]}"
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": up.json()["name"]}},
        "2": {"class_type": "DGXPixelsPaletteLoad", "inputs": {"builtin": "sweetie-16", "file": "none"}},
        "3": {"class_type": "DGXPixelsPaletteQuantize",
              "inputs": {"image": ["1", 0], "palette": ["2", 0], "dither": "none", "strength": 1.0,
                         "alpha_threshold": 128}},
        "4": {"class_type": "DGXPixelsBackgroundRemove",
              "inputs": {"image": ["3", 0], "tolerance": 0.06, "key": "", "connectivity": "4"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
        "6": {"class_type": "DGXPixelsPaletteSave",
              "inputs": {"palette": ["2", 0], "filename": f"{prefix}/pal", "format": "gpl", "swatch": 1,
                         "overwrite": False}},
    }
    resp = requests.post(f"{comfy_server.url}/prompt", json={"prompt": workflow}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json().get("node_errors") == {}
    pid = resp.json()["prompt_id"]
    deadline = time.monotonic() + 120
    hist = {}
    while time.monotonic() < deadline:
        hist = requests.get(f"{comfy_server.url}/history/{pid}", timeout=30).json()
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            break
        time.sleep(0.3)
    assert pid in hist, "prompt did not finish"
    status = hist[pid]["status"]
    assert status["status_str"] == "success", status
    out = hist[pid]["outputs"]["5"]["images"][0]
    view = requests.get(f"{comfy_server.url}/view",
                        params={"filename": out["filename"], "subfolder": out["subfolder"], "type": out["type"]},
                        timeout=30)
    got = np.array(Image.open(stdio.BytesIO(view.content)).convert("RGBA"))
    assert got.shape == (10, 12, 4)
    assert got[0, 0, 3] == 0 and (got[2:8, 3:9, 3] == 255).all()
    from comfy_nodes.pixel.palettes_builtin import builtin

    allowed = {tuple(c) for c in builtin("sweetie-16").colors.tolist()}
    assert {tuple(p[:3]) for p in got[got[..., 3] == 255].tolist()} <= allowed
    if comfy_server.output_dir is not None:
        saved = comfy_server.output_dir / prefix / "pal.gpl"
        assert saved.is_file() and saved.read_text().startswith("GIMP Palette")


def test_a_palette_file_put_in_the_input_folder_is_offered_and_loads_on_real_comfyui(comfy_server):
    """Uploaded into input/palettes (as any file is), the palette appears in the node's list that
    the editor reads from /object_info, and a prompt choosing it shows its colours; a name that
    is not in the list fails at the node with the file named."""
    import io as stdio
    import uuid

    import requests
    from support.live import output_images, queue_and_wait

    name = f"dgx-{uuid.uuid4().hex[:8]}.hex"
    up = requests.post(f"{comfy_server.url}/upload/image", files={"image": (name, b"#ff0000\n#0000ff\n", "text/plain")},
                       data={"type": "input", "subfolder": "palettes", "overwrite": "true"}, timeout=30)
    assert up.status_code == 200, up.text
    info = requests.get(f"{comfy_server.url}/object_info/DGXPixelsPaletteLoad", timeout=30).json()
    spec = info["DGXPixelsPaletteLoad"]["input"]["required"]["file"]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]
    assert options[0] == "none" and f"palettes/{name}" in options
    workflow = {
        "1": {"class_type": "DGXPixelsPaletteLoad", "inputs": {"builtin": "pico-8", "file": f"palettes/{name}"}},
        "2": {"class_type": "DGXPixelsPalettePreview", "inputs": {"palette": ["1", 0], "swatch": 4, "columns": 16}},
    }
    shown = output_images(queue_and_wait(comfy_server.url, workflow, 60), "2")[0]
    view = requests.get(f"{comfy_server.url}/view", params={k: shown[k] for k in ("filename", "subfolder", "type")},
                        timeout=30)
    from PIL import Image

    got = np.array(Image.open(stdio.BytesIO(view.content)).convert("RGB"))
    assert got.shape == (4, 8, 3)
    assert {tuple(p) for p in got.reshape(-1, 3).tolist()} == {(255, 0, 0), (0, 0, 255)}
    # a name off the list (an API prompt, a file deleted since) fails at the node, saying so
    workflow["1"]["inputs"]["file"] = "palettes/not-there.hex"
    failed = queue_and_wait(comfy_server.url, workflow, 60, fails=True)
    error = next(m[1] for m in failed["status"]["messages"] if m[0] == "execution_error")
    assert error["exception_message"].startswith("palette file not found: ")
    assert "not-there.hex" in error["exception_message"] and "press R to refresh the list" in error["exception_message"]


def test_the_pack_puts_its_sample_where_the_shipped_templates_load_it(comfy_dirs, repo_root):
    """The templates' LoadImage names dgx-pixels-sample.png: the pack provides it in the
    input folder at start, and never replaces a file of that name."""
    from comfy_nodes.nodes import SAMPLE, provide_sample

    inp, _ = comfy_dirs
    target = provide_sample()
    assert target == inp / "dgx-pixels-sample.png" and target.read_bytes() == SAMPLE.read_bytes()
    for template in (repo_root / "example_workflows").glob("*.json"):
        for node in json.loads(template.read_text())["nodes"]:
            if node["type"] == "LoadImage":
                assert node["widgets_values"][0] == target.name, template.name
    target.write_bytes(b"the user's own file")
    provide_sample()
    assert target.read_bytes() == b"the user's own file"


def test_the_pack_says_at_start_which_requirement_is_missing(comfy_dirs, monkeypatch, caplog):
    """Without the requirements (a plain git clone) the nodes load and the first k-means fails
    half way through a graph; the start-up log now names what is missing and how to install it.
    A module that does not exist stands for the missing one."""
    import asyncio
    import logging

    from comfy_nodes import nodes

    assert nodes.missing_requirements() == []
    monkeypatch.setitem(nodes.LAZY_REQUIREMENTS, "dgx_pixels_no_such_module", "no-such-package")
    assert nodes.missing_requirements() == ["no-such-package"]
    with caplog.at_level(logging.WARNING):
        ext = asyncio.run(nodes.comfy_entrypoint())
    assert len(asyncio.run(ext.get_node_list())) == len(nodes.all_nodes())
    assert "DGX-Pixels: no-such-package not installed" in caplog.text
    assert "python -m pip install -r requirements.txt" in caplog.text


def test_palette_load_skips_the_cells_loadimages_mask_says_are_transparent():
    """LoadImage hands the colours without alpha and the alpha as a MASK (1 = transparent)."""
    img = np.zeros((1, 2, 3, 4), np.uint8)
    img[0, 0] = [[200, 50, 50, 255], [50, 200, 50, 255], [0, 0, 0, 0]]
    img[0, 1] = [[50, 50, 200, 255], [0, 0, 0, 0], [0, 0, 0, 0]]
    rgb = tensor([img[0][..., :3]])
    mask = torch.from_numpy((img[..., 3] == 0).astype(np.float32))
    pal, _, count = DGXPixelsPaletteLoad.execute(palette_image=rgb, palette_mask=mask).result
    assert pal.hex_list() == ["c83232", "32c832", "3232c8"] and count == 3
    # without the mask the transparent cells' black would count as a colour
    assert "000000" in DGXPixelsPaletteLoad.execute(palette_image=rgb).result[0].hex_list()


# ----------------------------------------------------------------------------- cancelling

from support.comfy_cancel import cancel_flag, press_cancel_after  # noqa: E402,F401  (cancel_flag: a fixture)


def _many_colours(seed: int) -> np.ndarray:
    """Six flat colours with a little noise: hundreds of distinct colours that a handful of
    palette colours cover, so automatic k bisects over several k-means runs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, (6, 3))
    img = base[rng.integers(0, 6, (32, 32))] + rng.integers(-2, 3, (32, 32, 3))
    return img.astype(np.uint8)


def test_palette_extract_stops_between_k_means_runs_when_the_user_cancels(cancel_flag, monkeypatch):
    """Automatic k runs k-means several times (bisection); Cancel must stop it at the next run,
    not after all of them. The flag is ComfyUI's own (what /interrupt sets); only the moment of
    the press is arranged, by setting it as the first k-means run returns."""
    from comfy_nodes.pixel import palette as P

    runs = press_cancel_after(monkeypatch, P, "_kmeans", cancel_flag)
    with pytest.raises(cancel_flag.InterruptProcessingException):
        DGXPixelsPaletteExtract.execute(image=tensor([_many_colours(0)]), colors=0)
    assert runs == [1]
    assert not cancel_flag.processing_interrupted()  # consumed, as ComfyUI expects


def test_palette_extract_stops_between_frames_when_the_user_cancels(cancel_flag, monkeypatch):
    """Counting the colours of a long batch stops at the next frame; arranged as above, the
    press comes as frame 0's colours are read."""
    from comfy_nodes.pixel import palette as P

    real = P._rgb_keys
    read = press_cancel_after(monkeypatch, P, "_rgb_keys", cancel_flag)
    with pytest.raises(cancel_flag.InterruptProcessingException):
        DGXPixelsPaletteExtract.execute(image=tensor([_many_colours(1), _many_colours(2), _many_colours(3)]),
                                        colors=8)
    assert read == [1]
    # Without a cancel the same node gives its palette.
    monkeypatch.setattr(P, "_rgb_keys", real)
    pal, _, count, _info = DGXPixelsPaletteExtract.execute(image=tensor([_many_colours(1)]), colors=8).result
    assert count == 8 == len(pal)


def test_save_does_not_write_through_a_folder_swapped_for_a_symlink_after_the_check(comfy_dirs, monkeypatch):
    """The swap lands from a hook the node calls between its check of the path and the write
    (encoding the palette): the moment cannot be hit reliably otherwise."""
    from comfy_nodes.pixel import palette_io

    _, out = comfy_dirs
    (out / "pals").mkdir()
    outside = out.parent / "outside"
    outside.mkdir()
    real = palette_io.format_hex

    def encoded_then_swapped(*a, **k):
        text = real(*a, **k)
        if not (out / "pals").is_symlink():
            swap_for_link(out / "pals", outside)
        return text

    monkeypatch.setattr(palette_io, "format_hex", encoded_then_swapped)
    pal = Palette("bw", np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    with pytest.raises(PathEscapeError, match="pals is a symlink"):
        DGXPixelsPaletteSave.execute(palette=pal, filename="pals/hero", format="hex")
    assert list(outside.iterdir()) == []


def test_extract_logs_a_warning_when_automatic_colors_stop_at_the_cap(caplog):
    """colors = 0 with a tolerance that 64 colours cannot meet gave the 64 without a word: the
    node now logs a warning with the error reached (the palette is still output)."""
    import logging
    import re

    from comfy_nodes.pixel.palette import AUTO_K_MAX

    noise = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        pal, _, count, info = DGXPixelsPaletteExtract.execute(image=tensor([noise]), colors=0, tolerance=0.005).result
    assert count == len(pal) <= AUTO_K_MAX
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    m = re.fullmatch(rf"DGX-Pixels Palette Extract: automatic colors stopped at its cap of {AUTO_K_MAX} without "
                     r"meeting tolerance 0\.005: a colour of the images is still (\d\.\d{4}) OKLab from its palette "
                     r"colour; set colors to a number \(up to 256\) for more colours, or raise tolerance", warnings[0])
    assert m and float(m.group(1)) > 0.005
    # the log is read by few: the node's info output says it in the graph too
    assert info == f"{AUTO_K_MAX} colours; warning: " + warnings[0].removeprefix("DGX-Pixels Palette Extract: ")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _, _, count, info = DGXPixelsPaletteExtract.execute(image=tensor([noise]), colors=0, tolerance=0.3).result
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert info == f"{count} colours: automatic, every colour within 0.3 OKLab of its palette colour"
    assert DGXPixelsPaletteExtract.execute(image=tensor([noise]), colors=5, seed=3).result[3] == "5 colours: k-means, seed 3"
    tip = next(i.tooltip for i in DGXPixelsPaletteExtract.define_schema().inputs if i.id == "colors")
    assert f"at most {AUTO_K_MAX}" in tip
