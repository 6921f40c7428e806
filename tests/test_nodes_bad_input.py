"""Palette, cleanup, sheet and Bevy nodes fed bad input through ``execute`` (no server): a correct
result or an error naming the node input and what was expected."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

from comfy_nodes.nodes.nodes_bevy import DGXPixelsBevyExport  # noqa: E402
from comfy_nodes.nodes.nodes_cleanup import (  # noqa: E402
    DGXPixelsBackgroundRemove,
    DGXPixelsOutline,
    DGXPixelsStrayCleanup,
    DGXPixelsTrim,
)
from comfy_nodes.nodes.nodes_preview import NODE_MAX_PIXELS, DGXPixelsNearestUpscale  # noqa: E402
from comfy_nodes.nodes.nodes_palette import (  # noqa: E402
    DGXPixelsPaletteExtract,
    DGXPixelsPaletteLoad,
    DGXPixelsPaletteQuantize,
)
from comfy_nodes.nodes.nodes_sheet import (  # noqa: E402
    DGXPixelsSheetPreview,
    DGXPixelsSheetSplit,
    DGXPixelsSpriteSheet,
    DGXPixelsTileset,
)
from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError  # noqa: E402
from comfy_nodes.pixel.palettes_builtin import builtin  # noqa: E402

PICO = builtin("pico-8")

# (node, call with image and mask, name of the IMAGE input, name of the MASK input)
IMAGE_NODES = [
    ("extract", lambda im, m: DGXPixelsPaletteExtract.execute(im, colors=4, mask=m), "image", "mask"),
    ("quantize", lambda im, m: DGXPixelsPaletteQuantize.execute(im, PICO, mask=m), "image", "mask"),
    ("background", lambda im, m: DGXPixelsBackgroundRemove.execute(im, mask=m), "image", "mask"),
    ("strays", lambda im, m: DGXPixelsStrayCleanup.execute(im, mask=m), "image", "mask"),
    ("outline", lambda im, m: DGXPixelsOutline.execute(im, mask=m), "image", "mask"),
    ("trim", lambda im, m: DGXPixelsTrim.execute(im, mask=m), "image", "mask"),
    ("sheet", lambda im, m: DGXPixelsSpriteSheet.execute(im, alpha_mask=m), "frames", "alpha_mask"),
    ("split", lambda im, m: DGXPixelsSheetSplit.execute(im, cell_width=1, cell_height=1, alpha_mask=m), "sheet",
     "alpha_mask"),
    ("tileset", lambda im, m: DGXPixelsTileset.execute(im, alpha_mask=m), "tiles", "alpha_mask"),
]
IDS = [n[0] for n in IMAGE_NODES]


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0)


def sprite_batch(b=1, h=8, w=8) -> torch.Tensor:
    a = np.zeros((b, h, w, 3), np.uint8)
    a[...] = (40, 200, 40)
    a[:, 2:6, 2:6] = (200, 40, 40)
    return tensor(a)


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_empty_batch_names_the_input(node, call, name, mask_name):
    with pytest.raises(InputImageError, match=rf"^{name} is an empty batch \(0 images\)"):
        call(torch.zeros(0, 8, 8, 3), None)


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_nan_names_the_input(node, call, name, mask_name):
    img = sprite_batch()
    img[0, 1, 1, 0] = float("nan")
    with pytest.raises(InputImageError, match=rf"^{name} contains NaN or infinite values"):
        call(img, None)
    mask = torch.zeros(1, 8, 8)
    mask[0, 0, 0] = float("inf")
    with pytest.raises(InputImageError, match=rf"^{mask_name} contains NaN or infinite values"):
        call(sprite_batch(), mask)


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_mask_of_another_size_names_both_inputs_and_sizes(node, call, name, mask_name):
    with pytest.raises(InputImageError) as exc:
        call(sprite_batch(), torch.zeros(1, 5, 6))
    msg = exc.value.message
    assert msg.startswith(f"{mask_name} is 6x5 (shape (1, 5, 6)) but {name} is 8x8")
    assert "expected a mask of shape (1, 8, 8)" in msg
    assert "8x8" in exc.value.hint and "2x2" not in exc.value.hint


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_shape_errors_hint_at_the_image_not_at_grid_snaps_size(node, call, name, mask_name):
    with pytest.raises(InputImageError) as exc:
        call(torch.zeros(1, 8, 8, 2), None)
    assert exc.value.message.startswith(f"{name} has shape (1, 8, 8, 2)")
    assert exc.value.hint.startswith("check the image given there") and "2x2" not in exc.value.hint


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_one_pixel_image(node, call, name, mask_name):
    out = call(tensor(np.array([[[[10, 20, 30]]]], np.uint8)), None).result
    first = out[0]
    if node == "extract":
        assert first.hex_list() == ["0a141e"]
    else:
        assert tuple(first.shape[:3]) == (1, 1, 1)


def test_long_thin_image_is_processed_without_blowing_up():
    # 16384 x 1: every node's cheap path (no per-row loops over a huge axis, no huge preview).
    a = np.zeros((1, 1, 16384, 3), np.uint8)
    a[0, 0, ::2] = (255, 0, 77)
    img = tensor(a)
    q = DGXPixelsPaletteQuantize.execute(img, PICO).result[0]
    assert tuple(q.shape) == (1, 1, 16384, 3)
    assert np.array_equal(np.round(q[0, 0, 0].numpy() * 255), [255, 0, 77])
    s = DGXPixelsStrayCleanup.execute(img).result[0]
    assert tuple(s.shape) == (1, 1, 16384, 4)
    out = DGXPixelsSpriteSheet.execute(img, trim="none", preview_scale=16)
    assert tuple(out.result[0].shape) == (1, 1, 16384, 4)


def test_nearest_upscale_limits_the_whole_batch_not_each_frame():
    """Each of 2 frames of 1024x1024 at scale 6 (38 M pixels) passed the limit on its own; the
    batch made 1.2 GiB. The limit holds for the batch, and the hint names a scale that fits."""
    img = torch.zeros(2, 1024, 1024, 3)
    with pytest.raises(InvalidArgumentError) as exc:
        DGXPixelsNearestUpscale.execute(img, scale=6)
    assert str(exc.value).startswith("scale 6 makes the batch of 2 frames of 1024x1024 6144x6144 pixels each, "
                                     "75 million pixels in all, more than this allows (67 million pixels for the "
                                     "whole batch)")
    assert "use scale 5 or less for this batch" in exc.value.hint
    assert "scale" in exc.value.hint and "--" not in exc.value.hint  # the node's input, not a CLI option
    # the scale the hint names fits, and one frame alone still takes scale 6
    assert 2 * (1024 * 5) ** 2 <= NODE_MAX_PIXELS
    out = DGXPixelsNearestUpscale.execute(img[:1], scale=6).result[0]
    assert tuple(out.shape) == (1, 6144, 6144, 3)


def test_batch_mask_of_wrong_batch_size():
    with pytest.raises(InputImageError, match=r"^mask holds 2 masks but image holds 3 images: expected 1 or 3 masks of 8x8"):
        DGXPixelsStrayCleanup.execute(sprite_batch(3), mask=torch.zeros(2, 8, 8))
    # a mask batch of one applies to every image
    out = DGXPixelsStrayCleanup.execute(sprite_batch(3), mask=torch.ones(1, 8, 8)).result[1]
    assert tuple(out.shape) == (3, 8, 8) and bool((out == 1).all())


def test_palette_image_input_named():
    with pytest.raises(InputImageError, match=r"^palette_image is an empty batch"):
        DGXPixelsPaletteLoad.execute(palette_image=torch.zeros(0, 4, 4, 3))


def test_extract_more_colours_than_the_image_has():
    out = DGXPixelsPaletteExtract.execute(sprite_batch(), colors=64).result
    assert sorted(out[0].hex_list()) == ["28c828", "c82828"] and out[2] == 2


def test_sheet_data_of_the_wrong_kind_names_the_input(tmp_path, monkeypatch):
    with pytest.raises(InvalidArgumentError, match="sheet_data input is a str, expected a DGX_SHEET") as exc:
        DGXPixelsSheetPreview.execute(sheet_data="sheet.png")
    assert "Sprite Sheet" in exc.value.hint
    import folder_paths

    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path / "out"))
    monkeypatch.setattr(folder_paths, "get_user_directory", lambda: str(tmp_path / "user"))
    monkeypatch.delenv("DGX_PIXELS_BEVY_ROOTS", raising=False)
    with pytest.raises(InvalidArgumentError, match="sheet_data input is a dict, expected a DGX_SHEET"):
        DGXPixelsBevyExport.execute(project="g", asset_path="a.png", sheet_data={"image": 1})
    assert not list((tmp_path / "out").rglob("*.png"))


def test_split_offset_beyond_the_sheet():
    with pytest.raises(InvalidArgumentError, match="offset 20,20 leaves nothing of the 8x8 sheet"):
        DGXPixelsSheetSplit.execute(sprite_batch(), offset=20)


def test_tileset_nan_tolerance():
    with pytest.raises(InvalidArgumentError, match="seam tolerance must be 0..255"):
        DGXPixelsTileset.execute(sprite_batch(2), tolerance=float("nan"))


def test_palette_files_outside_comfyui_folders_are_refused_with_the_right_words(tmp_path, monkeypatch):
    import folder_paths

    from comfy_nodes.nodes.nodes_palette import DGXPixelsPaletteSave
    from comfy_nodes.pixel.errors import PathEscapeError

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(tmp_path / "in"))
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path / "out"))
    with pytest.raises(PathEscapeError, match=r"^refusing to read '\.\./secret\.hex': '\.\.' is not allowed") as exc:
        DGXPixelsPaletteLoad.execute(file="../secret.hex")
    assert "ComfyUI's input folder" in exc.value.hint
    with pytest.raises(PathEscapeError, match=r"^refusing to write '/tmp/x\.hex'") as exc:
        DGXPixelsPaletteSave.execute(PICO, filename="/tmp/x")
    assert "ComfyUI's output folder" in exc.value.hint
    with pytest.raises(InvalidArgumentError, match="swatch must be a whole number of pixels >= 1, got 0"):
        DGXPixelsPaletteSave.execute(PICO, filename="p", format="png", swatch=0)
    assert not list((tmp_path / "out").rglob("*.*"))


@pytest.mark.parametrize("node, call, name, mask_name", IMAGE_NODES, ids=IDS)
def test_load_image_placeholder_mask_means_no_mask(node, call, name, mask_name):
    """ComfyUI's LoadImage gives an image without alpha a 64x64 mask of zeros; wired to a node's
    mask input (as its tooltip suggests) it means "no mask", not a mask of the wrong size."""
    def plain(out):
        return [o.hex_list() if hasattr(o, "hex_list") else o for o in out.result if isinstance(o, torch.Tensor)
                or hasattr(o, "hex_list")]

    # one placeholder, or one per frame as LoadImage gives an animated GIF or PNG without alpha
    for frames in (1, 3):
        without = call(sprite_batch(frames), None)
        with_placeholder = call(sprite_batch(frames), torch.zeros(frames, 64, 64))
        for a, b in zip(plain(with_placeholder), plain(without)):
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
    with pytest.raises(InputImageError, match=rf"^{mask_name} is 64x64"):
        call(sprite_batch(), torch.ones(1, 64, 64))


def test_grid_snap_mask_errors_name_the_mask():
    from comfy_nodes.nodes.nodes_grid import DGXPixelsGridSnap

    img = sprite_batch(1, 48, 48)
    for mask, message in ((torch.full((1, 48, 48), float("nan")), r"^mask contains NaN or infinite values"),
                          (torch.ones(1, 5, 5), r"^mask is 5x5 \(shape \(1, 5, 5\)\) but image is 48x48: expected a "
                                                r"mask of shape \(1, 48, 48\)"),
                          (torch.zeros(1, 0, 0), r"^mask is 0x0")):
        with pytest.raises(InputImageError, match=message) as exc:
            DGXPixelsGridSnap.execute(img, mode="cell", cell_size=6, mask=mask)
        assert "2x2" not in exc.value.hint


@pytest.mark.parametrize("node", ["background", "strays", "outline", "trim"])
def test_cleanup_nodes_output_binary_alpha(node):
    """A soft mask (LoadImage of an antialiased PNG) comes out cut at half: pixel art has no
    half-transparent pixels, and the nodes treat alpha under 128 as transparent."""
    call = dict((n[0], n[1]) for n in IMAGE_NODES)[node]
    mask = torch.full((1, 8, 8), 0.3)  # alpha 179
    mask[0, :, :2] = 0.7  # alpha 77
    out = call(sprite_batch(), mask).result
    alpha = np.round(out[0][0, ..., 3].numpy() * 255).astype(int)
    assert set(np.unique(alpha).tolist()) <= {0, 255}
    if node == "outline":
        # the cut is where the node sees the sprite: the outline rings the opaque part
        assert (alpha[:, 2:] == 255).all()
    if node == "strays":
        assert (alpha[:, :2] == 0).all() and (alpha[:, 2:] == 255).all()
    if node == "background":  # the green backdrop goes too, the red square stays
        assert (alpha[:, :2] == 0).all() and (alpha[2:6, 2:6] == 255).all() and alpha.sum() == 16 * 255
    mask_out = out[1][0].numpy()
    assert set(np.unique(mask_out).tolist()) <= {0.0, 1.0}


def test_trim_per_frame_with_an_empty_frame_keeps_the_trim():
    a = np.zeros((3, 16, 16, 4), np.float32)
    a[0, 2:4, 3:5] = 1.0
    a[2, 5:8, 1:3] = 1.0
    img, _, boxes, left, top = DGXPixelsTrim.execute(torch.from_numpy(a), batch_mode="per_frame").result
    assert tuple(img.shape) == (3, 3, 2, 4)
    assert float(img[1].abs().sum()) == 0.0  # the empty frame: transparent at the batch's size
    assert (img[0, :2, :2, 3] == 1).all() and (img[0, 2:, :, 3] == 0).all() and (img[2, ..., 3] == 1).all()
    assert json.loads(boxes)[0] == [3, 2, 5, 4] and (left, top) == (3, 2)


def test_sprite_sheet_of_empty_frames_keeps_their_size_not_one_pixel_cells():
    for trim in ("each", "union", "none"):
        sheet, data = DGXPixelsSpriteSheet.execute(torch.zeros(4, 32, 32, 4), trim=trim).result[:2]
        assert tuple(sheet.shape) == (1, 64, 64, 4) and (data.cell_w, data.cell_h) == (32, 32), trim


def test_palette_save_turns_os_failures_into_errors_naming_the_file(tmp_path, monkeypatch):
    import folder_paths

    from comfy_nodes.nodes.nodes_palette import DGXPixelsPaletteSave
    from comfy_nodes.pixel.errors import ExportError

    out = tmp_path / "out"
    out.mkdir()
    (out / "palettes").write_text("a file where a folder is needed")
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(out))
    with pytest.raises(ExportError, match=r"^cannot write palettes/hero\.hex in ComfyUI's output folder"):
        DGXPixelsPaletteSave.execute(PICO, filename="palettes/hero")
    with pytest.raises(ExportError, match="cannot write a{300}\\.hex"):
        DGXPixelsPaletteSave.execute(PICO, filename="a" * 300)
    for name in ("sub/", ".hex", ".", "sub/.."):
        with pytest.raises(InvalidArgumentError, match="has no file name, only a folder"):
            DGXPixelsPaletteSave.execute(PICO, filename=name)
    assert sorted(p.name for p in out.iterdir()) == ["palettes"]


def _tooltip(node, name: str) -> str:
    return next(i.tooltip for i in node.define_schema().inputs if i.id == name)


# (id, node, call, the input the error is about, the start of its message)
ARGUMENT_ERRORS = [
    ("grid-preview-scale", "grid", lambda: _grid().execute(sprite_batch(1, 16, 16), mode="cell", cell_size=1.0,
                                                           preview_scale=0),
     "preview_scale", "preview_scale must be a whole number >= 1, got 0"),
    ("sheet-preview-scale", DGXPixelsSpriteSheet, lambda: DGXPixelsSpriteSheet.execute(sprite_batch(), preview_scale=0),
     "preview_scale", "preview_scale must be a whole number >= 1, got 0"),
    ("tileset-preview-scale", DGXPixelsTileset, lambda: DGXPixelsTileset.execute(sprite_batch(), preview_scale=0),
     "preview_scale", "preview_scale must be a whole number >= 1, got 0"),
    ("sheet-preview", DGXPixelsSheetPreview, lambda: DGXPixelsSheetPreview.execute(image=sprite_batch(), scale=0),
     "scale", "scale must be a whole number >= 1, got 0"),
    ("anchor", DGXPixelsSpriteSheet, lambda: DGXPixelsSpriteSheet.execute(sprite_batch(), anchor="left"),
     "anchor", "unknown anchor 'left'"),
    ("colors", DGXPixelsPaletteExtract, lambda: DGXPixelsPaletteExtract.execute(sprite_batch(), colors=300),
     "colors", "colors must be 0 (automatic) or 1..256, got 300"),
    ("dither", DGXPixelsPaletteQuantize, lambda: DGXPixelsPaletteQuantize.execute(sprite_batch(), PICO, dither="x"),
     "dither", "dither must be one of"),
    ("split-cell", DGXPixelsSheetSplit, lambda: DGXPixelsSheetSplit.execute(sprite_batch(), cell_width=40,
                                                                            cell_height=40),
     "cell_width", "cell width 40 is larger than the sheet"),
]


def _grid():
    from comfy_nodes.nodes.nodes_grid import DGXPixelsGridSnap

    return DGXPixelsGridSnap


@pytest.mark.parametrize("node, call, name, message", [a[1:] for a in ARGUMENT_ERRORS],
                         ids=[a[0] for a in ARGUMENT_ERRORS])
def test_argument_errors_hint_at_the_node_input_not_at_the_command_line(node, call, name, message):
    """The core's InvalidArgumentError hint says "the command's --help (or the node input's
    tooltip) says what it takes", and Grid Snap's preview_scale 0 said "scale must be an integer
    >= 1": on a node, the error names the input and the hint gives that input's tooltip."""
    node = _grid() if node == "grid" else node
    with pytest.raises(InvalidArgumentError) as exc:
        call()
    assert exc.value.message.startswith(message)
    assert exc.value.hint == f"check the node's {name} input; its tooltip says: {_tooltip(node, name)}"
    assert "--" not in str(exc.value) and "command" not in str(exc.value)


def test_the_command_lines_hints_stay_as_they_were():
    """Only errors raised through a node change their hint: the core's (the CLI's) are kept."""
    from comfy_nodes.pixel.imageio import upscale_nearest

    with pytest.raises(InvalidArgumentError, match=r"^scale must be an integer >= 1, got 0") as exc:
        upscale_nearest(np.zeros((2, 2, 4), np.uint8), 0)
    assert exc.value.hint == InvalidArgumentError.default_hint and "--help" in exc.value.hint


def test_palette_load_missing_file_hint_names_the_file_input(tmp_path, monkeypatch):
    """A missing palette file suggested `dgx-pixels palette list`, a command a ComfyUI user has
    not got: the hint now says how to refresh the file list, or to use the builtin input."""
    import folder_paths

    from comfy_nodes.pixel.errors import PaletteError

    (tmp_path / "in").mkdir()
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(tmp_path / "in"))
    with pytest.raises(PaletteError, match=r"^palette file not found: .*missing\.hex \(hint: ") as exc:
        DGXPixelsPaletteLoad.execute(file="missing.hex")
    assert exc.value.hint.startswith("the file is gone: press R to refresh the list and choose another")
    assert "builtin" in exc.value.hint and "dgx-pixels" not in str(exc.value)
    # a file of a format not read keeps the core's hint: it is about the file, not the CLI
    with pytest.raises(PaletteError, match=r"unknown palette format '\.xyz'") as exc:
        DGXPixelsPaletteLoad.execute(file="missing.xyz")
    assert ".hex" in exc.value.hint and "dgx-pixels" not in exc.value.hint


def test_node_hint_translates_the_commands_options_into_the_nodes_inputs():
    """A core hint naming options (--padding) names the node's inputs of the same name; an option
    the node has not got sends the user to the input the message names."""
    from types import SimpleNamespace

    from comfy_nodes.nodes._hints import node_hint
    from comfy_nodes.pixel.errors import NoGridFoundError, PaletteError

    inputs = [SimpleNamespace(id="padding", tooltip="Pixels between cells."),
              SimpleNamespace(id="offset", tooltip="Pixels before the first cell."),
              SimpleNamespace(id="cell_width", tooltip="Cell width in pixels.")]
    node = SimpleNamespace(define_schema=lambda: SimpleNamespace(inputs=inputs))
    exc = NoGridFoundError("no gutters", hint="give the sheet's --padding and --offset")
    assert node_hint(exc, node) == "give the sheet's padding and offset"
    exc = NoGridFoundError("cell width 40 is too large", hint="give the --cell size")
    assert node_hint(exc, node) == "check the node's cell_width input; its tooltip says: Cell width in pixels."
    exc = PaletteError("unknown palette", hint="use a built-in name (`dgx-pixels palette list`) or a .hex file")
    assert node_hint(exc, node) == "use a built-in name from the builtin list of Pixel Palette Load or a .hex file"
    # hints without the command line's words are kept
    assert node_hint(NoGridFoundError("x", hint="set columns and rows"), node) is None


def test_bevy_export_with_nothing_connected_says_so_before_looking_at_the_project(tmp_path, monkeypatch):
    """With no image and no sheet data, the node named a project folder that does not exist
    (the default my_game under a configured root) instead of the missing input."""
    monkeypatch.setenv("DGX_PIXELS_BEVY_ROOTS", str(tmp_path / "games"))
    with pytest.raises(InvalidArgumentError, match=r"^connect an image \(or a batch of frames\) or sheet data"):
        DGXPixelsBevyExport.execute(project="my_game", asset_path="a.png")


def test_hints_name_the_input_a_message_names_in_the_singular_and_no_option():
    """"animation 'idle:0-9@8' uses frame 9" is about the animations input (the hint sent the
    user to frames); the core's "a --bevy-version (the node: bevy_version)" names the input only."""
    from comfy_nodes.nodes._hints import node_hint
    from comfy_nodes.pixel.errors import ExportError

    with pytest.raises(InvalidArgumentError) as exc:
        DGXPixelsSpriteSheet.execute(sprite_batch(4), animations="idle:0-9@8")
    assert exc.value.hint.startswith("check the node's animations input"), exc.value.hint
    with pytest.raises(InvalidArgumentError, match=r"uses frame 3 but there is only 1 frame \(0-0\)"):
        DGXPixelsSpriteSheet.execute(sprite_batch(1), animations="idle:0-3@8")
    for core, node in (
            ("give the game's folder, or a --bevy-version (the node: bevy_version) to export here anyway",
             "give the game's folder, or the bevy_version input to export here anyway"),
            ("export without the array texture (--tile-array, the node: tile_array) and build it in code",
             "export without the array texture (the tile_array input) and build it in code"),
            ("give the Bevy version explicitly: --bevy-version 0.15 (the node: bevy_version)",
             "give the Bevy version explicitly: bevy_version 0.15")):
        assert node_hint(ExportError("x", hint=core), DGXPixelsBevyExport) == node


def test_outline_and_trim_of_an_opaque_image_without_a_mask_say_why_nothing_changes(caplog):
    """Load Image gives a PNG's alpha as a separate MASK; with only its IMAGE connected the
    outline found no edge and the run succeeded without a word."""
    import logging

    img = sprite_batch()
    with caplog.at_level(logging.WARNING):
        out = DGXPixelsOutline.execute(img).result[0]
    assert torch.equal(out[..., :3], img)
    assert "Pixel Outline: the image is fully opaque and no mask is connected" in caplog.text
    assert "Connect Load Image's MASK to mask" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        DGXPixelsTrim.execute(img)
    assert "Pixel Trim: the image is fully opaque" in caplog.text
    caplog.clear()
    mask = torch.zeros(1, 8, 8)
    mask[:, :2] = 1.0  # a transparent band: there is an edge now
    with caplog.at_level(logging.WARNING):
        DGXPixelsOutline.execute(img, mask=mask)
    assert "fully opaque" not in caplog.text


def test_errors_are_shown_under_the_packs_name_not_its_file_path():
    """ComfyUI shows an error's type as its module and name, and names a node pack's modules by
    their file path ("/home/me/ComfyUI/custom_nodes/dgx-pixels.comfy_nodes.pixel.errors...")."""
    from comfy_nodes.pixel.errors import NoGridFoundError
    from orchestrator.errors import ServerUnreachableError

    def full_type_name(klass) -> str:  # as ComfyUI's execution.py builds it
        return klass.__qualname__ if klass.__module__ == "builtins" else f"{klass.__module__}.{klass.__qualname__}"

    assert full_type_name(NoGridFoundError) == "dgx_pixels.NoGridFoundError"
    assert full_type_name(InvalidArgumentError) == "dgx_pixels.InvalidArgumentError"
    assert full_type_name(ServerUnreachableError) == "dgx_pixels.ServerUnreachableError"
