"""V3 nodes: sprite sheets and tilesets.

``DGX_SHEET`` carries a ``comfy_nodes.pixel.sheet.Sheet`` (the image plus its grid and
animations) from the sheet nodes to the Bevy export, so the layout numbers are never retyped.
"""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..pixel.errors import InvalidArgumentError, NoGridFoundError
from ..pixel.sheet import (
    ANCHORS,
    SHEET_UI_KEY,
    TRIM_MODES,
    Sheet,
    build_sheet,
    format_animations,
    layout_record,
    sheet_from_image,
    sheet_preview,
    split_sheet,
)
from ..pixel.tileset import build_tileset, check_seamless
from ._hints import node_errors, whole_number
from ._tensor import input_frames, rgba_list_to_image

SheetType = io.Custom("DGX_SHEET")

CATEGORY = "DGX-Pixels/Sheet"


def _preview(cls, rgba, sheet: Sheet | None, scale: int):
    big = sheet_preview(rgba, scale=scale, grid=sheet)
    return ui.PreviewImage(rgba_list_to_image([big], keep_alpha=False), cls=cls)


def _sheet_ui(cls, rgba, sheet: Sheet, scale: int) -> dict:
    """The preview, and the grid the sheet was laid out on: the job's history carries it to a
    client that deploys the saved PNG (which has no room for it) into a Bevy project."""
    return {**_preview(cls, rgba, sheet, scale).as_dict(), SHEET_UI_KEY: [layout_record(sheet)]}


def _frames(image, mask, name: str):
    return input_frames(image, mask, name=name, mask_name="alpha_mask")


def check_sheet(sheet_data, name: str = "sheet_data") -> Sheet:
    """The ``DGX_SHEET`` input, or an error naming it when something else is connected."""
    if not isinstance(sheet_data, Sheet):
        raise InvalidArgumentError(
            f"{name} input is a {type(sheet_data).__name__}, expected a DGX_SHEET",
            hint="connect the sheet_data output of Sprite Sheet, Sprite Sheet Split or Tileset",
        )
    return sheet_data


def _alpha_mask_input():
    return io.Mask.Input("alpha_mask", optional=True,
                         tooltip="Optional transparency MASK (1 = transparent), e.g. from Load Image.")


def _opt(v: int) -> int | None:
    return int(v) if v and int(v) > 0 else None


def sheet_info(sheet: Sheet) -> str:
    anims = format_animations(sheet.animations) or "none"
    return (
        f"{len(sheet.frames)} frames, {sheet.columns}x{sheet.rows} cells of {sheet.cell_w}x{sheet.cell_h} px, "
        f"padding {sheet.padding[0]},{sheet.padding[1]}, offset {sheet.offset[0]},{sheet.offset[1]}, "
        f"sheet {sheet.width}x{sheet.height} px; animations: {anims}"
    )


class DGXPixelsSpriteSheet(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsSpriteSheet",
            display_name="Sprite Sheet",
            category=CATEGORY,
            description=(
                "Puts a batch of frames on one sprite sheet: a uniform grid (the layout Bevy's "
                "TextureAtlasLayout::from_grid and tilemap tools expect). Frames keep their exact "
                "pixels; smaller frames are placed in their cell by the anchor. Named animations "
                "travel with the sheet to the Bevy export."
            ),
            inputs=[
                io.Image.Input("frames", tooltip="The frames, in order (an IMAGE batch; one frame per image)."),
                io.Mask.Input("alpha_mask", optional=True,
                              tooltip="Optional transparency (a MASK from Load Image; 1 = transparent). Without it, RGB frames are opaque."),
                io.Int.Input("columns", default=0, min=0, max=1024, tooltip="Cells per row; 0 = automatic (near-square, or from rows)."),
                io.Int.Input("rows", default=0, min=0, max=1024, tooltip="Rows of cells; 0 = automatic."),
                io.Int.Input("cell_width", default=0, min=0, max=4096, tooltip="Cell width in pixels; 0 = the widest (trimmed) frame."),
                io.Int.Input("cell_height", default=0, min=0, max=4096, tooltip="Cell height in pixels; 0 = the tallest (trimmed) frame."),
                io.Combo.Input("anchor", options=list(ANCHORS), default="bottom-center",
                               tooltip="Where a smaller frame sits in its cell: bottom-center keeps feet on one line (characters), center for items, top-left for tiles."),
                io.Combo.Input("trim", options=list(TRIM_MODES), default="auto",
                               tooltip="auto: union for frames of one size (an animation: it does not jitter), each for frames of different sizes; each: crop every frame to its visible pixels; union: crop all frames by one shared box (keeps motion such as a jump); none: keep frames as they are."),
                io.Int.Input("padding", default=0, min=0, max=256, tooltip="Transparent pixels between cells (Bevy's padding)."),
                io.Int.Input("offset", default=0, min=0, max=256, tooltip="Transparent pixels before the first cell, left and top (Bevy's offset)."),
                io.Boolean.Input("power_of_two", default=False, tooltip="Enlarge the sheet to power-of-two sides (transparent margin right/bottom)."),
                io.String.Input("animations", default="", multiline=False,
                                tooltip="Named animations: name:first-last@fps[:direction], comma-separated, e.g. idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong."),
                io.Int.Input("preview_scale", default=4, min=1, max=16,
                             tooltip="Enlargement of the preview shown on the node; lowered when the preview would "
                                     "pass 4096x4096 pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="sheet", tooltip="The sheet image (RGBA)."),
                SheetType.Output(display_name="sheet_data", tooltip="The sheet with its grid and animations, for Bevy Export."),
                io.String.Output(display_name="info", tooltip="Grid and animation summary."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, frames, columns: int = 0, rows: int = 0, cell_width: int = 0, cell_height: int = 0,
                anchor: str = "bottom-center", trim: str = "auto", padding: int = 0, offset: int = 0,
                power_of_two: bool = False, animations: str = "", preview_scale: int = 4,
                alpha_mask=None) -> io.NodeOutput:
        preview_scale = whole_number(preview_scale, "preview_scale")
        imgs = _frames(frames, alpha_mask, "frames")
        if (cell_width > 0) != (cell_height > 0):
            raise InvalidArgumentError("give both cell_width and cell_height, or leave both at 0")
        cell = (int(cell_width), int(cell_height)) if cell_width > 0 else None
        sheet = build_sheet(imgs, columns=_opt(columns), rows=_opt(rows), cell_size=cell, anchor=anchor,
                            trim=trim, padding=int(padding), offset=int(offset), pow2=bool(power_of_two),
                            animations=animations or None)
        out = rgba_list_to_image([sheet.image], keep_alpha=True)
        return io.NodeOutput(out, sheet, sheet_info(sheet), ui=_sheet_ui(cls, sheet.image, sheet, preview_scale))


class DGXPixelsSheetSplit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsSheetSplit",
            display_name="Sprite Sheet Split",
            category=CATEGORY,
            description=(
                "Cuts a sprite sheet back into frames (one image per cell, pixels untouched). Give the "
                "cell size or the number of columns/rows, or leave them at 0 to find the grid from the "
                "empty gutters between sprites."
            ),
            inputs=[
                io.Image.Input("sheet", tooltip="The sprite sheet (first image of the batch)."),
                _alpha_mask_input(),
                io.Int.Input("cell_width", default=0, min=0, max=4096, tooltip="Cell width in pixels; 0 = detect."),
                io.Int.Input("cell_height", default=0, min=0, max=4096, tooltip="Cell height in pixels; 0 = detect."),
                io.Int.Input("columns", default=0, min=0, max=1024, tooltip="Cells per row; 0 = detect or derive from the cell width."),
                io.Int.Input("rows", default=0, min=0, max=1024, tooltip="Rows of cells; 0 = detect or derive from the cell height."),
                io.Int.Input("padding", default=-1, min=-1, max=256, tooltip="Pixels between cells; -1 = detect (with the cell size given: 0 unless cells side "
                                     "by side would cut sprites)."),
                io.Int.Input("offset", default=0, min=0, max=256, tooltip="Pixels before the first cell, left and top."),
                io.Int.Input("count", default=0, min=0, max=65536, tooltip="Frames to keep; 0 = all, without trailing empty cells."),
                io.String.Input("animations", default="", tooltip="Optional animations to attach to the sheet data, e.g. idle:0-3@8."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="The frames as an IMAGE batch (RGBA, one cell each)."),
                SheetType.Output(display_name="sheet_data", tooltip="The sheet described by the found grid, for Bevy Export."),
                io.String.Output(display_name="info", tooltip="The grid that was used."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, sheet, cell_width: int = 0, cell_height: int = 0, columns: int = 0, rows: int = 0,
                padding: int = -1, offset: int = 0, count: int = 0, animations: str = "",
                alpha_mask=None) -> io.NodeOutput:
        img = _frames(sheet, alpha_mask, "sheet")[0]
        if (cell_width > 0) != (cell_height > 0):
            raise InvalidArgumentError("give both cell_width and cell_height, or leave both at 0")
        cell = (int(cell_width), int(cell_height)) if cell_width > 0 else None
        pad = None if padding < 0 else int(padding)
        try:
            res = split_sheet(img, cell_size=cell, columns=_opt(columns), rows=_opt(rows), padding=pad,
                              offset=int(offset), count=_opt(count))
        except NoGridFoundError as exc:
            # the core's hint names the CLI's options
            raise NoGridFoundError(exc.message, hint="set columns and rows, or cell_width and cell_height (with padding "
                                   "and offset when the sheet has gutters or a margin)") from None
        data = sheet_from_image(img, cell_size=(res.cell_w, res.cell_h), columns=res.columns, rows=res.rows,
                                padding=res.padding, offset=res.offset, count=len(res.frames),
                                animations=animations or None)
        how = "detected" if res.detected else "given"
        info = f"{how} grid: " + sheet_info(data)
        return io.NodeOutput(rgba_list_to_image(res.frames, keep_alpha=True), data, info)


class DGXPixelsTileset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsTileset",
            display_name="Tileset",
            category=CATEGORY,
            description=(
                "Lays a batch of equal-size tiles out as a tileset (Tiled/LDtk/Bevy grid) and checks "
                "each tile for seams: a tile fails when repeating it shows an edge (left/right or "
                "top/bottom) that differs more than its own neighbouring pixels do."
            ),
            inputs=[
                io.Image.Input("tiles", tooltip="The tiles (an IMAGE batch, all one size)."),
                _alpha_mask_input(),
                io.Int.Input("columns", default=0, min=0, max=1024, tooltip="Tiles per row; 0 = near-square."),
                io.Int.Input("spacing", default=0, min=0, max=64, tooltip="Pixels between tiles."),
                io.Int.Input("margin", default=0, min=0, max=64, tooltip="Pixels around the whole tileset."),
                io.Float.Input("tolerance", default=8.0, min=0.0, max=255.0, step=0.5,
                               tooltip="How much more (0-255 colour units) the wrap-around seam may differ than the tile's inner neighbours."),
                io.Int.Input("preview_scale", default=4, min=1, max=16,
                             tooltip="Enlargement of the preview shown on the node; lowered when the preview would "
                                     "pass 4096x4096 pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="tileset", tooltip="The tileset image (RGBA)."),
                SheetType.Output(display_name="sheet_data", tooltip="The tileset grid, for Bevy Export."),
                io.String.Output(display_name="seam_report", tooltip="Which tiles are not seamless, and by how much."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, tiles, columns: int = 0, spacing: int = 0, margin: int = 0, tolerance: float = 8.0,
                preview_scale: int = 4, alpha_mask=None) -> io.NodeOutput:
        preview_scale = whole_number(preview_scale, "preview_scale")
        imgs = _frames(tiles, alpha_mask, "tiles")
        ts = build_tileset(imgs, columns=_opt(columns), spacing=int(spacing), margin=int(margin))
        report = check_seamless(imgs, float(tolerance))
        sheet = ts.as_sheet()
        out = rgba_list_to_image([ts.image], keep_alpha=True)
        return io.NodeOutput(out, sheet, report.summary(), ui=_sheet_ui(cls, ts.image, sheet, preview_scale))


class DGXPixelsSheetPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsSheetPreview",
            display_name="Sprite Sheet Preview",
            category=CATEGORY,
            description=(
                "Shows a sheet enlarged with crisp pixels, transparency as a checkerboard and, when the "
                "sheet data is connected, an outline around every cell."
            ),
            inputs=[
                io.Image.Input("image", optional=True, tooltip="A sheet image (used when no sheet data is connected)."),
                SheetType.Input("sheet_data", optional=True, tooltip="Sheet data from Sprite Sheet / Split / Tileset (draws the grid)."),
                io.Int.Input("scale", default=4, min=1, max=16,
                             tooltip="Enlargement factor; lowered when the preview would pass 4096x4096 pixels."),
                io.Boolean.Input("grid", default=True, tooltip="Outline every cell (needs sheet data)."),
            ],
            outputs=[io.Image.Output(display_name="preview", tooltip="The enlarged preview (RGB).")],
            is_output_node=True,
        )

    @classmethod
    @node_errors
    def execute(cls, scale: int = 4, grid: bool = True, image=None, sheet_data=None) -> io.NodeOutput:
        scale = whole_number(scale, "scale")
        if sheet_data is not None:
            rgba = check_sheet(sheet_data).image
        elif image is not None:
            rgba = _frames(image, None, "image")[0]
        else:
            raise InvalidArgumentError("connect a sheet image or sheet data")
        big = sheet_preview(rgba, scale=scale, grid=sheet_data if grid else None)
        out = rgba_list_to_image([big], keep_alpha=False)
        return io.NodeOutput(out, ui=ui.PreviewImage(out, cls=cls))


NODES = [DGXPixelsSpriteSheet, DGXPixelsSheetSplit, DGXPixelsTileset, DGXPixelsSheetPreview]
