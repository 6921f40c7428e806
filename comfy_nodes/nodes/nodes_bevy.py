"""V3 node: Bevy Export, writing a sprite or sheet straight into a Bevy project's assets.

Where it may write is decided by the server's configuration, never by the graph alone (a graph
can come from anyone who reaches the server):

- ``DGX_PIXELS_BEVY_ROOTS``: folders (``os.pathsep``-separated) holding Bevy projects;
- ``<ComfyUI user dir>/dgx-pixels.json`` or ``dgx-pixels.config.json`` next to this pack:
  ``{"bevy_roots": ["/home/me/games"]}``.

The ``project`` input is then a project folder inside one of those roots (absolute path, or a
name). Without any configuration the node writes only to ``<ComfyUI output>/bevy/<project>``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
from comfy_api.latest import io

from ..pixel.bevy_export import OVERWRITE_POLICIES, SUPPORTED_MINORS, export_asset, export_sheet
from ..pixel.errors import ExportError, InvalidArgumentError
from ..pixel.safepath import ENV_ROOTS, PACK_CONFIG_NAME, USER_CONFIG_NAME, confine, load_root_config, resolve_project
from ..pixel.sheet import Sheet, build_sheet
from . import _written
from ._hints import node_errors
from ._tensor import input_frames
from .nodes_sheet import SheetType, check_sheet

PACK_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ["auto"] + [f"0.{m}" for m in SUPPORTED_MINORS]


def root_config():
    """Allowed roots from the environment and config files, read on every run (so editing the
    config needs no restart); default root ``<output>/bevy``."""
    import folder_paths

    files = [Path(folder_paths.get_user_directory()) / USER_CONFIG_NAME, PACK_ROOT / PACK_CONFIG_NAME]
    config = load_root_config(config_files=files)
    if config.configured:
        return config
    # Unconfigured, the node writes under ComfyUI's output folder: an output/bevy that is a
    # symlink leading out of it would take every export elsewhere (PathEscapeError).
    output = folder_paths.get_output_directory()
    confine(output, "bevy", hint=f"replace output/bevy by a plain folder, or set {ENV_ROOTS} to your Bevy project folders")
    return dataclasses.replace(config, default_root=Path(output) / "bevy")


def _provenance(cls) -> dict | None:
    hidden = getattr(cls, "hidden", None)
    prompt = getattr(hidden, "prompt", None) if hidden is not None else None
    if not prompt:
        return {"source": "comfyui"}
    node_id = getattr(hidden, "unique_id", None)
    return {"source": "comfyui", "node": node_id, "prompt": prompt}


class DGXPixelsBevyExport(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsBevyExport",
            display_name="Bevy Export",
            category="DGX-Pixels/Export",
            description=(
                "Writes the sprite or sheet into a Bevy project's assets/ folder: the PNG, a .png.meta "
                "with nearest filtering in the format of the project's Bevy version (read from "
                "Cargo.toml), an Aseprite-style atlas JSON, optional bevy_asset_loader entries, and a "
                "manifest entry. Outputs Rust code that loads it. Only writes inside the configured "
                "roots (DGX_PIXELS_BEVY_ROOTS or dgx-pixels.json); otherwise under output/bevy/."
            ),
            inputs=[
                io.Image.Input("image", optional=True,
                               tooltip="A single sprite, or a batch of frames (laid out as a sheet). Ignored when sheet_data is connected."),
                SheetType.Input("sheet_data", optional=True, tooltip="A sheet from Sprite Sheet / Sheet Split / Tileset (keeps its grid and animations)."),
                io.Mask.Input("alpha_mask", optional=True, tooltip="Optional transparency MASK for image (1 = transparent)."),
                io.String.Input("project", default="my_game",
                                tooltip="The Bevy project: a folder inside a configured root (absolute path or its name). Without configuration: a name under output/bevy/."),
                io.String.Input("asset_path", default="sprites/sprite.png",
                                tooltip="Path inside assets/, as asset_server.load() takes it, e.g. sprites/knight.png. No '..', no absolute paths."),
                io.Combo.Input("bevy_version", options=VERSIONS, default="auto",
                               tooltip="auto reads bevy from the project's Cargo.toml / Cargo.lock; pick a version to override."),
                io.Combo.Input("overwrite", options=list(OVERWRITE_POLICIES), default="version",
                               tooltip="If the asset exists: fail (an error), replace it, keep it (write nothing), or write a new version (knight-2.png)."),
                io.Int.Input("upscale", default=1, min=1, max=16, tooltip="Whole-number nearest-neighbour enlargement of the written PNG (layout numbers follow)."),
                io.String.Input("animations", default="",
                                tooltip="Named animations (overrides the sheet's): name:first-last@fps[:direction], e.g. idle:0-3@8, walk:4-11@12."),
                io.Boolean.Input("write_atlas_json", default=True, tooltip="Write the Aseprite-compatible atlas JSON next to the PNG (sheets only)."),
                io.Boolean.Input("write_assets_ron", default=False, tooltip="Write bevy_asset_loader entries (<name>.assets.ron: image with nearest sampler + atlas layout)."),
                io.Boolean.Input("tile_array", default=False, optional=True,
                                 tooltip="Tilesets for Bevy's TilemapChunk: the .meta loads the sheet as an array texture, one layer per tile (Bevy 0.19: any grid; 0.18: one column)."),
            ],
            outputs=[
                io.String.Output(display_name="rust_snippet", tooltip="Rust code for this Bevy version that loads the asset and plays its animations."),
                io.String.Output(display_name="written_paths", tooltip="Every file written, one per line."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, project: str = "my_game", asset_path: str = "sprites/sprite.png", **_) -> tuple | float:
        """Runs again when the files it exported were deleted or changed, or the roots
        configuration or the game's Cargo files were edited (see ``_written``)."""
        import folder_paths

        try:
            project_dir = resolve_project(project, root_config())
        except Exception:  # noqa: BLE001 - execute names the problem; never cached meanwhile
            return float("nan")
        steering = [Path(folder_paths.get_user_directory()) / USER_CONFIG_NAME, PACK_ROOT / PACK_CONFIG_NAME,
                    project_dir / "Cargo.toml", project_dir / "Cargo.lock"]
        return _written.fingerprint(("bevy", _written.key_path(project_dir), str(asset_path)), steering)

    @classmethod
    @node_errors
    def execute(cls, project: str = "my_game", asset_path: str = "sprites/sprite.png", bevy_version: str = "auto",
                overwrite: str = "version", upscale: int = 1, animations: str = "", write_atlas_json: bool = True,
                write_assets_ron: bool = False, image=None, sheet_data=None, alpha_mask=None,
                tile_array: bool = False) -> io.NodeOutput:
        # the image is checked (and read as RGBA frames) first, through the path every node
        # uses: a bfloat16 tensor is converted, anything else is refused naming `image`, before
        # the digest or the project folder is touched. Ignored when sheet_data is connected.
        if sheet_data is None and image is None:
            # said before the project is looked at: a project that does not exist yet would
            # otherwise be the error on a node with nothing to export
            raise InvalidArgumentError("connect an image (or a batch of frames) or sheet data to Bevy Export")
        frames = input_frames(image, alpha_mask, mask_name="alpha_mask") if sheet_data is None else None
        config = root_config()
        project_dir = resolve_project(project, config)
        animations = animations.strip() if isinstance(animations, str) else animations
        key = ("bevy", _written.key_path(project_dir), str(asset_path))
        content = _content_digest(frames, sheet_data, (bevy_version, overwrite, upscale, animations,
                                                       write_atlas_json, write_assets_ron, tile_array))
        own = [Path(p) for p in _written.intact(key, content) if p.endswith(".png")]
        if own and overwrite != "keep":
            # the same content run again only because the Cargo files or the roots changed: the
            # asset this node wrote, untouched since, is refreshed where it is (not NAME-2.png)
            try:
                asset_path = own[0].relative_to(project_dir / "assets").as_posix()
                overwrite = "replace"
            except ValueError:
                pass
        common = dict(bevy_version=bevy_version, overwrite=overwrite, upscale=int(upscale),
                      assets_ron=bool(write_assets_ron), provenance=_provenance(cls),
                      create_project=not config.configured)
        if not config.configured:
            try:
                os.makedirs(project_dir, exist_ok=True)
            except OSError as exc:
                raise ExportError(f"cannot create the Bevy project folder {project_dir}: {exc.strerror or exc}",
                                  hint="a file stands where the project folder should be: give another project name") from None
        elif not project_dir.is_dir():
            raise InvalidArgumentError(
                f"Bevy project folder {project_dir} does not exist",
                hint="create the project first (cargo new), or give the folder of an existing one",
            )
        if sheet_data is not None:
            result = export_sheet(project_dir, asset_path, check_sheet(sheet_data), animations=animations or None,
                                  atlas=bool(write_atlas_json), tile_array=bool(tile_array), **common)
        elif len(frames) == 1 and not animations:
            result = export_asset(project_dir, asset_path, frames[0], **common)
        else:
            sheet = build_sheet(frames, trim="none", anchor="top-left", animations=animations or None)
            result = export_sheet(project_dir, asset_path, sheet, atlas=bool(write_atlas_json),
                                  tile_array=bool(tile_array), **common)
        _written.record(key, [f.path for f in result.files if f.kind != "manifest"], content)
        written = "\n".join(str(p) for p in result.paths()) if not result.skipped else result.message
        # Shown on the node (and kept in the history): what was written, and the code to paste.
        texts = [result.summary()] + ([result.snippet] if result.snippet else [])
        return io.NodeOutput(result.snippet, written, ui={"text": texts})


def _content_digest(frames: list[np.ndarray] | None, sheet_data, options: tuple) -> str:
    """A digest of everything an export writes from: the pixels, the sheet's layout and the
    options (two runs with one digest write the same files). ``frames`` are the image's RGBA
    frames as ``input_frames`` read them (the mask already in their alpha): the digest is of
    the pixels written, whatever the tensor's dtype or device."""
    h = hashlib.sha256(repr(options).encode("utf-8"))
    for f in frames or ():
        h.update(repr(f.shape).encode("ascii"))
        h.update(np.ascontiguousarray(f).tobytes())
    if isinstance(sheet_data, Sheet):
        h.update(np.ascontiguousarray(sheet_data.image).tobytes())
        h.update(repr((sheet_data.image.shape, sheet_data.columns, sheet_data.rows, sheet_data.cell_w,
                       sheet_data.cell_h, sheet_data.padding, sheet_data.offset, sheet_data.frames,
                       sheet_data.animations, sheet_data.pow2, sheet_data.frame_ms)).encode("utf-8"))
    return h.hexdigest()


NODES = [DGXPixelsBevyExport]
