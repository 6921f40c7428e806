"""Sheet, Split, Tileset, Preview and Bevy Export nodes, called through ``execute`` (no server)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

import folder_paths  # noqa: E402  (ComfyUI's, on sys.path via conftest)

from comfy_nodes.nodes import nodes_bevy  # noqa: E402
from comfy_nodes.nodes.nodes_bevy import DGXPixelsBevyExport  # noqa: E402
from comfy_nodes.nodes.nodes_sheet import (  # noqa: E402
    DGXPixelsSheetPreview,
    DGXPixelsSheetSplit,
    DGXPixelsSpriteSheet,
    DGXPixelsTileset,
)
from comfy_nodes.pixel.errors import ExportError, InvalidArgumentError, NoGridFoundError, PathEscapeError  # noqa: E402
from comfy_nodes.pixel.safepath import ENV_ROOTS  # noqa: E402


@pytest.fixture(autouse=True)
def comfy_dirs(tmp_path, monkeypatch):
    out, temp, user = tmp_path / "output", tmp_path / "temp", tmp_path / "user"
    for d in (out, temp, user):
        d.mkdir()
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(out))
    monkeypatch.setattr(folder_paths, "get_temp_directory", lambda: str(temp))
    monkeypatch.setattr(folder_paths, "get_user_directory", lambda: str(user))
    monkeypatch.delenv(ENV_ROOTS, raising=False)
    return out, temp, user


def frames_batch(n=6, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    a = np.zeros((n, h, w, 4), np.uint8)
    a[:, 3:13, 4:12, :3] = rng.integers(0, 256, (n, 10, 8, 3))
    a[:, 3:13, 4:12, 3] = 255
    return a, torch.from_numpy(a.astype(np.float32) / 255.0)


def to_u8(t):
    return np.round(t.numpy() * 255).astype(np.uint8)


def test_sprite_sheet_node_outputs_sheet_data_and_preview():
    a, t = frames_batch()
    out = DGXPixelsSpriteSheet.execute(frames=t, columns=3, padding=1, animations="idle:0-2@8, run:3-5@12")
    img, sheet, info = out.result
    assert tuple(img.shape) == (1, 2 * 10 + 1, 3 * 8 + 2, 4)
    assert (sheet.columns, sheet.rows, sheet.cell_w, sheet.cell_h) == (3, 2, 8, 10)
    np.testing.assert_array_equal(to_u8(img[0]), sheet.image)
    np.testing.assert_array_equal(sheet.cell(4), a[4, 3:13, 4:12])
    assert "idle:0-2@8" in info and "3x2 cells of 8x10" in info
    assert out.ui["images"][0]["type"] == "temp"
    # the grid goes with the preview into the job's history, for a client deploying the saved PNG
    assert out.ui["dgx_pixels_sheet"] == [{"layout": {"format": 1, "cell": [8, 10], "columns": 3, "rows": 2,
                                                      "padding": [1, 1], "offset": [0, 0], "frames": 6},
                                           "animations": "idle:0-2@8, run:3-5@12"}]


def test_sprite_sheet_node_bad_spec_names_token():
    _, t = frames_batch()
    with pytest.raises(InvalidArgumentError, match="'walk 4-9'"):
        DGXPixelsSpriteSheet.execute(frames=t, animations="idle:0-2@8, walk 4-9")


def test_split_node_round_trip():
    a, t = frames_batch()
    sheet = DGXPixelsSpriteSheet.execute(frames=t, columns=3, padding=2, trim="none").result[0]
    frames, data, info = DGXPixelsSheetSplit.execute(sheet=sheet).result
    assert tuple(frames.shape) == (6, 16, 16, 4) and "detected grid" in info
    np.testing.assert_array_equal(to_u8(frames), a)
    again = DGXPixelsSpriteSheet.execute(frames=frames, columns=3, padding=2, trim="none").result[0]
    np.testing.assert_array_equal(to_u8(again), to_u8(sheet))
    assert data.columns == 3 and data.padding == (2, 2)


def test_split_node_no_grid_hint_names_the_nodes_inputs():
    """A sheet whose sprites touch has no gutters to find: the error's hint names this node's
    inputs, not the CLI's options."""
    rng = np.random.default_rng(5)
    sheet = rng.integers(0, 256, (1, 24, 40, 4)).astype(np.uint8)
    sheet[..., 3] = 255
    with pytest.raises(NoGridFoundError) as info:
        DGXPixelsSheetSplit.execute(sheet=torch.from_numpy(sheet.astype(np.float32) / 255.0))
    assert "columns and rows" in info.value.hint and "cell_width" in info.value.hint
    assert "--" not in str(info.value)


def test_tileset_node_reports_seams():
    tiles = np.zeros((2, 8, 8, 4), np.uint8)
    tiles[..., 3] = 255
    tiles[0, ..., 0] = 100  # flat: seamless
    tiles[1, ..., 0] = np.linspace(0, 255, 8).astype(np.uint8)[None, :]  # horizontal ramp: seam
    t = torch.from_numpy(tiles.astype(np.float32) / 255.0)
    img, data, report = DGXPixelsTileset.execute(tiles=t, columns=2, spacing=1).result
    assert tuple(img.shape) == (1, 8, 17, 4)
    assert "1 of 2 tiles are not seamless" in report and "tile 1: left/right" in report
    assert data.columns == 2 and data.padding == (1, 1)


def test_preview_node():
    _, t = frames_batch(4)
    data = DGXPixelsSpriteSheet.execute(frames=t, columns=2, trim="none").result[1]
    out = DGXPixelsSheetPreview.execute(sheet_data=data, scale=2)
    assert tuple(out.result[0].shape) == (1, 64, 64, 3)
    with pytest.raises(InvalidArgumentError):
        DGXPixelsSheetPreview.execute()


def test_bevy_export_node_default_root_is_output_bevy(comfy_dirs):
    out, _, _ = comfy_dirs
    _, t = frames_batch()
    data = DGXPixelsSpriteSheet.execute(frames=t, columns=3, animations="idle:0-5@8").result[1]
    snippet, written = DGXPixelsBevyExport.execute(project="my_game", asset_path="sprites/knight.png",
                                                   sheet_data=data, write_assets_ron=True).result
    base = out / "bevy" / "my_game" / "assets"
    assert (base / "sprites" / "knight.png").is_file() and (base / "sprites" / "knight.png.meta").is_file()
    assert str(base / "sprites" / "knight.json") in written.splitlines()
    assert "Sprite::from_atlas_image" in snippet  # no Cargo.toml: 0.19 layout
    entry = json.loads((base / ".dgx-pixels" / "manifest.json").read_text())["assets"][0]
    assert entry["provenance"]["source"] == "comfyui"
    # the default overwrite policy of the node is "version"
    _, written2 = DGXPixelsBevyExport.execute(project="my_game", asset_path="sprites/knight.png", sheet_data=data).result
    assert "knight-2.png" in written2
    # run again with the same content (ComfyUI does so when only the game's Cargo.toml or the
    # roots changed): its own untouched files are refreshed in place, no knight-3.png
    _, written3 = DGXPixelsBevyExport.execute(project="my_game", asset_path="sprites/knight.png", sheet_data=data).result
    assert "knight-2.png" in written3 and not (base / "sprites" / "knight-3.png").exists()
    other = DGXPixelsSpriteSheet.execute(frames=t, columns=2, animations="idle:0-5@8").result[1]
    _, written4 = DGXPixelsBevyExport.execute(project="my_game", asset_path="sprites/knight.png", sheet_data=other).result
    assert "knight-3.png" in written4  # new content: the node's 'version' policy again
    for bad in ("/tmp", "../x", "a/b"):
        with pytest.raises(PathEscapeError):
            DGXPixelsBevyExport.execute(project=bad, asset_path="k.png", sheet_data=data)
    with pytest.raises(PathEscapeError):
        DGXPixelsBevyExport.execute(project="my_game", asset_path="../../../x.png", sheet_data=data)


def test_bevy_export_node_with_configured_roots(tmp_path, monkeypatch, comfy_dirs):
    _, _, user = comfy_dirs
    games = tmp_path / "games"
    game = games / "knight_game"
    game.mkdir(parents=True)
    (game / "Cargo.toml").write_text('[package]\nname = "k"\n[dependencies]\nbevy = "0.14"\n')
    (user / "dgx-pixels.json").write_text(json.dumps({"bevy_roots": [str(games)]}))
    a, t = frames_batch(4)
    snippet, written = DGXPixelsBevyExport.execute(project=str(game), asset_path="chars/knight.png", image=t,
                                                   animations="walk:0-3@10").result
    assert "TextureAtlasLayout::from_grid(UVec2::new(" in snippet and "SpriteBundle" in snippet
    meta = (game / "assets" / "chars" / "knight.png.meta").read_text()
    assert "bevy_render::texture::image_loader::ImageLoader" in meta
    # single image: no atlas
    one = t[:1]
    _, written = DGXPixelsBevyExport.execute(project="knight_game", asset_path="items/one.png", image=one).result
    assert not any(p.endswith(".json") and "items" in p for p in written.splitlines())
    # outside the configured roots
    with pytest.raises(PathEscapeError, match="not inside an allowed Bevy root"):
        DGXPixelsBevyExport.execute(project=str(tmp_path / "output"), asset_path="x.png", image=one)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        DGXPixelsBevyExport.execute(project="nope", asset_path="x.png", image=one)
    # env var roots work too
    monkeypatch.setenv(ENV_ROOTS, str(tmp_path / "other"))
    (tmp_path / "other" / "g2").mkdir(parents=True)
    DGXPixelsBevyExport.execute(project="g2", asset_path="x.png", image=one, bevy_version="0.12")
    assert "bevy_render" in (tmp_path / "other" / "g2" / "assets" / "x.png.meta").read_text()


def test_bevy_export_node_schema():
    schema = DGXPixelsBevyExport.define_schema()
    assert schema.node_id == "DGXPixelsBevyExport" and schema.display_name == "Bevy Export"
    assert schema.category == "DGX-Pixels/Export" and schema.is_output_node
    assert all(i.tooltip for i in schema.inputs)
    assert nodes_bevy.VERSIONS[0] == "auto" and "0.12" in nodes_bevy.VERSIONS and "0.19" in nodes_bevy.VERSIONS


def test_bevy_export_node_keeps_the_sheets_animations_under_blank_text_and_names_a_blocked_project(comfy_dirs):
    out, _, _ = comfy_dirs
    _, t = frames_batch(4)
    data = DGXPixelsSpriteSheet.execute(frames=t, animations="idle:0-3@8").result[1]
    snippet, _ = DGXPixelsBevyExport.execute(project="g", asset_path="s.png", sheet_data=data, animations="  \n").result
    assert "idle" in snippet
    (out / "bevy").mkdir(exist_ok=True)
    (out / "bevy" / "blocked").write_text("a file where the project folder should be")
    with pytest.raises(ExportError, match=r"^cannot create the Bevy project folder .*blocked") as exc:
        DGXPixelsBevyExport.execute(project="blocked", asset_path="s.png", sheet_data=data)
    assert "another project name" in exc.value.hint


def test_bevy_export_node_unconfigured_refuses_an_output_bevy_symlinked_out(tmp_path, comfy_dirs):
    """Without configured roots the node writes under ComfyUI's output folder: an output/bevy
    that is a symlink leading elsewhere is refused, not followed."""
    out, _, _ = comfy_dirs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "bevy").symlink_to(elsewhere, target_is_directory=True)
    _, t = frames_batch(1)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        DGXPixelsBevyExport.execute(project="my_game", asset_path="sprites/k.png", image=t)
    assert list(elsewhere.iterdir()) == []


def test_bevy_export_node_reads_bfloat16_and_refuses_a_non_tensor_image_by_name(comfy_dirs):
    """The content digest read the raw tensor before any check: bfloat16 crashed in numpy
    (unsupported ScalarType BFloat16) and a list with an AttributeError. The image now goes
    through input_frames first: bfloat16 is exported like float32, a list is refused naming
    `image`, and nothing is written for it."""
    from PIL import Image

    from comfy_nodes.pixel.errors import InputImageError

    out, _, _ = comfy_dirs
    a, t = frames_batch(1)
    _, written = DGXPixelsBevyExport.execute(project="g", asset_path="s.png", image=t.bfloat16()).result
    png = out / "bevy" / "g" / "assets" / "s.png"
    assert str(png) in written.splitlines()
    # the frame's values are k/255: bfloat16 keeps 8 bits of mantissa, so round-tripping may
    # move a level by one, not more; the layout (size, alpha) is exact
    got = np.asarray(Image.open(png).convert("RGBA"))
    assert got.shape == (16, 16, 4)
    np.testing.assert_array_equal(got[..., 3], a[0, ..., 3])
    assert np.abs(got.astype(int) - a[0].astype(int)).max() <= 1
    with pytest.raises(InputImageError, match=r"^image is a list, expected an IMAGE tensor"):
        DGXPixelsBevyExport.execute(project="g", asset_path="l.png", image=[t])
    with pytest.raises(InputImageError, match=r"^alpha_mask is a str, expected a MASK tensor"):
        DGXPixelsBevyExport.execute(project="g", asset_path="m.png", image=t, alpha_mask="mask")
    assert not (out / "bevy" / "g" / "assets" / "l.png").exists()
    assert not (out / "bevy" / "g" / "assets" / "m.png").exists()
