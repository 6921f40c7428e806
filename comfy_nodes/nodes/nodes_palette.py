"""V3 nodes: palettes (load, extract, save, preview) and quantising an IMAGE batch to a palette.

Thin glue around ``comfy_nodes.pixel.palette``. A palette travels between nodes on a
``DGX_PALETTE`` socket carrying a ``Palette`` object, so one Palette Extract can feed the
quantiser of every frame and the Palette Save node.

Dithering is an option of Palette Quantize rather than a node of its own: error diffusion
decides each pixel's palette colour as it goes, so it cannot run before or after the mapping,
only as part of it.

Files: Palette Load reads only inside ComfyUI's input and output folders (its list shows the
palette files found there) and Palette Save writes only inside the output folder (a graph can
come from anyone who reaches the server).
"""
from __future__ import annotations

import logging
from pathlib import Path

from comfy_api.latest import io, ui

from ..pixel import palette_io
from ..pixel.dither import MODES as DITHER_MODES
from ..pixel.errors import DgxPixelsError, ExportError, InvalidArgumentError, PaletteError
from ..pixel.palette import AUTO_K_MAX, AUTO_K_TOLERANCE, Palette, adaptive_palette, palette_swatch, quantize
from ..pixel.palettes_builtin import builtin as builtin_palette
from ..pixel.palettes_builtin import list_builtin
from ..pixel.safepath import confine, write_confined
from . import _written
from ._hints import node_errors
from ._tensor import (
    given_mask,
    image_channels,
    input_frames,
    map_frames,
    rgba_list_to_image,
    rgba_to_mask,
    throw_if_interrupted,
)

#: Custom socket type carrying a ``comfy_nodes.pixel.palette.Palette``.
PaletteType = io.Custom("DGX_PALETTE")

SAVE_FORMATS = ["hex", "gpl", "pal", "png"]


def preview_ui(image, cls):
    try:
        return ui.PreviewImage(image, cls=cls)
    except Exception:  # the UI preview needs ComfyUI's folders; outside a server there is none
        return None


def check_palette(palette, name: str = "palette") -> Palette:
    if not isinstance(palette, Palette):
        raise PaletteError(
            f"{name} input is a {type(palette).__name__}, expected a DGX_PALETTE",
            hint="connect Pixel Palette Load or Pixel Palette Extract",
        )
    return palette


def _swatch_tensor(pal: Palette, swatch: int = 16, columns: int = 16):
    return rgba_list_to_image([palette_swatch(pal, swatch=swatch, columns=min(columns, len(pal)))], keep_alpha=True)


def _palette_outputs(palette_tooltip: str, count_tooltip: str) -> list:
    """Outputs of the nodes that make a palette: the palette, its swatches, its size."""
    return [
        PaletteType.Output(display_name="palette", tooltip=palette_tooltip),
        io.Image.Output(display_name="swatches", tooltip="The colours as 16x16 squares, 16 per row."),
        io.Int.Output(display_name="count", tooltip=count_tooltip),
    ]


def _folder(kind: str) -> str:
    import folder_paths

    return folder_paths.get_input_directory() if kind == "input" else folder_paths.get_output_directory()


#: Palette Load's ``file`` when no file is chosen; a file of the output folder is named as
#: ComfyUI's LoadImage names one: ``path [output]``.
NO_FILE = "none"
OUTPUT_MARK = " [output]"


def _palette_file_options() -> list[str]:
    """Palette Load's file list, read again each time the editor asks for the node list."""
    try:
        inputs = palette_io.list_palette_files(_folder("input"))
        outputs = palette_io.list_palette_files(_folder("output"))
    except (ImportError, OSError):
        inputs, outputs = [], []
    return [NO_FILE, *inputs, *(f + OUTPUT_MARK for f in outputs)]


def _palette_file(file: str) -> Path:
    """The path of Palette Load's ``file`` choice, confined to its folder."""
    kind, rel = ("output", file[: -len(OUTPUT_MARK)]) if file.endswith(OUTPUT_MARK) else ("input", file)
    return confine(_folder(kind), rel.strip(), action="read",
                   hint=f"choose a file from the list (files in ComfyUI's {kind} folder)")


class DGXPixelsPaletteLoad(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsPaletteLoad",
            display_name="Pixel Palette Load",
            category="DGX-Pixels/Palette",
            description=(
                "Loads a palette: a built-in one (PICO-8, NES, Game Boy, DawnBringer 16/32, Endesga 32, AAP-64, "
                "Sweetie 16, ...), a palette file from ComfyUI's input or output folder (.hex, .gpl, .pal; .txt and "
                "palette images in a palettes/ folder), or a "
                "palette image (one pixel or one uniform square per colour). Priority: palette_image, then "
                "file, then builtin."
            ),
            inputs=[
                io.Combo.Input("builtin", options=list_builtin(), default="pico-8",
                               tooltip="Built-in palette, used when no file and no palette_image are given."),
                io.Combo.Input("file", options=_palette_file_options(), default=NO_FILE,
                               tooltip="A palette file: .hex, .gpl and .pal files anywhere in ComfyUI's input "
                                       "folder, and any palette format (.txt and palette images too) in its "
                                       "palettes/ folder; '[output]' marks one in the output folder (what "
                                       "Palette Save wrote). Put files there and press R to refresh the list. "
                                       "'none': use the built-in palette."),
                io.Image.Input("palette_image", optional=True,
                               tooltip="A palette as an image: one pixel or one uniform square per colour "
                                       "(Lospec PNG exports). Transparent cells are skipped; of a batch, the "
                                       "first image is used."),
                io.Mask.Input("palette_mask", optional=True,
                              tooltip="The palette image's transparency (LoadImage's MASK output: 1 = transparent), "
                                      "so its transparent cells are skipped; LoadImage gives the colours without alpha."),
            ],
            outputs=_palette_outputs("The palette, for Palette Quantize / Save / Preview.", "Number of colours."),
        )

    @classmethod
    @node_errors
    def execute(cls, builtin: str = "pico-8", file: str = NO_FILE, palette_image=None, palette_mask=None) -> io.NodeOutput:
        if palette_image is not None:
            frames = input_frames(palette_image, palette_mask, name="palette_image", mask_name="palette_mask")
            pal = Palette("image", palette_io.colors_from_image(frames[0], source="palette_image"), "palette_image input")
        elif file and file.strip() and file != NO_FILE:
            path = _palette_file(file)
            try:
                pal = palette_io.read_palette(path)
            except PaletteError as exc:
                if path.exists() or path.suffix.lower() not in palette_io.READ_FORMATS:
                    raise
                # the core's hint for a missing file names the CLI's list command
                raise PaletteError(exc.message, hint="the file is gone: press R to refresh the list and choose "
                                                     "another, or 'none' for the palette chosen in builtin") from None
        else:
            pal = builtin_palette(builtin)
        return io.NodeOutput(pal, _swatch_tensor(pal), len(pal))


class DGXPixelsPaletteExtract(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsPaletteExtract",
            display_name="Pixel Palette Extract",
            category="DGX-Pixels/Palette",
            description=(
                "Builds ONE palette shared by the whole image batch (animation frames then never flicker) by "
                "k-means in the OKLab colour space. Transparent pixels are ignored. When the images have no more "
                "distinct colours than asked, those exact colours are returned. colors = 0 picks the number "
                "automatically: the smallest number that keeps every real colour of the images within the tolerance, "
                f"at most {AUTO_K_MAX} (past that the console log says how far off the colours stayed)."
            ),
            inputs=[
                io.Image.Input("image", tooltip="One image or a batch of frames; all frames share the palette."),
                io.Int.Input("colors", default=16, min=0, max=256,
                             tooltip=f"Number of palette colours 1..256; 0 = automatic (the fewest within the "
                                     f"tolerance, at most {AUTO_K_MAX})."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=False,
                             tooltip="k-means seed: the same images and seed always give the same palette."),
                io.Float.Input("tolerance", default=AUTO_K_TOLERANCE, min=0.005, max=0.5, step=0.005,
                               tooltip="Automatic mode only: how far (OKLab distance) any real colour of the images may be "
                                       "from its palette colour; 0.02 is about one just-noticeable difference. "
                                       f"Smaller = more colours, up to {AUTO_K_MAX}: when those do not meet it, "
                                       f"the {AUTO_K_MAX} are used and a warning is logged."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional alpha as a ComfyUI mask (1 = transparent); masked pixels are ignored."),
            ],
            outputs=_palette_outputs("The shared palette, most used colour first.", "Number of colours found.") + [
                io.String.Output(display_name="info",
                                 tooltip="How the colours were chosen; in automatic mode, whether the tolerance was met "
                                         "(connect a Preview Any node to read it)."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, image, colors: int = 16, seed: int = 0, tolerance: float = AUTO_K_TOLERANCE,
                mask=None) -> io.NodeOutput:
        if colors < 0 or colors > 256:
            raise InvalidArgumentError(f"colors must be 0 (automatic) or 1..256, got {colors}")
        frames = input_frames(image, mask)
        k = None if colors == 0 else int(colors)
        pal = adaptive_palette(frames, k, seed=int(seed), tolerance=float(tolerance),
                               name="extracted" if k is None else f"extracted-{k}", check=throw_if_interrupted)
        n = len(pal)
        info = f"{n} colour{'' if n == 1 else 's'}: " + ("k-means, seed " + str(int(seed)) if k is not None else "automatic")
        if pal.auto_k is not None and pal.auto_k.capped:
            # the palette is still the best of the cap: a warning, not an error (the log, and the
            # info output for whoever reads the graph rather than the console)
            a = pal.auto_k
            said = (f"automatic colors stopped at its cap of {a.max_k} without meeting tolerance {a.tolerance:g}: "
                    f"a colour of the images is still {a.error:.4f} OKLab from its palette colour; set colors to a "
                    "number (up to 256) for more colours, or raise tolerance")
            logging.warning("DGX-Pixels Palette Extract: %s", said)
            info = f"{n} colours; warning: {said}"
        elif pal.auto_k is not None:
            info += f", every colour within {pal.auto_k.tolerance:g} OKLab of its palette colour"
        return io.NodeOutput(pal, _swatch_tensor(pal), n, info)


class DGXPixelsPaletteSave(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsPaletteSave",
            display_name="Pixel Palette Save",
            category="DGX-Pixels/Palette",
            description=(
                "Writes the palette into ComfyUI's output folder as .hex (Lospec), .gpl (GIMP/Aseprite), .pal "
                "(JASC) or .png (one pixel per colour, or squares of 'swatch' pixels). The path stays inside the "
                "output folder; an existing file gets a numbered name unless overwrite is on."
            ),
            inputs=[
                PaletteType.Input("palette", tooltip="The palette to save."),
                io.String.Input("filename", default="palettes/palette",
                                tooltip="File name relative to the output folder, without extension, e.g. 'palettes/hero'."),
                io.Combo.Input("format", options=SAVE_FORMATS, default="hex",
                               tooltip="hex: Lospec; gpl: GIMP / Aseprite; pal: JASC (Paint Shop Pro, many editors); "
                                       "png: palette image."),
                io.Int.Input("swatch", default=1, min=1, max=64,
                             tooltip="PNG only: size in pixels of each colour square."),
                io.Boolean.Input("overwrite", default=False,
                                 tooltip="Replace an existing file of that name; off: add _001, _002, ..."),
            ],
            outputs=[io.String.Output(display_name="path", tooltip="Path written, relative to the output folder.")],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, filename: str = "palettes/palette", format: str = "hex", **_) -> tuple:
        """Runs again when the file it saved was deleted or changed (see ``_written``)."""
        return _written.fingerprint(("palette", _written.key_path(_folder("output")), str(filename), str(format)))

    @classmethod
    @node_errors
    def execute(cls, palette, filename: str = "palettes/palette", format: str = "hex", swatch: int = 1,
                overwrite: bool = False) -> io.NodeOutput:
        pal = check_palette(palette)
        if format not in SAVE_FORMATS:
            raise InvalidArgumentError(f"format must be one of {', '.join(SAVE_FORMATS)}, got {format!r}")
        name = (filename or "").strip()
        if not name:
            raise InvalidArgumentError("filename is empty", hint="give a name such as 'palettes/hero'")
        if name.lower().endswith("." + format):
            name = name[: -len(format) - 1]
        if name.replace("\\", "/").rsplit("/", 1)[-1] in ("", ".", ".."):
            raise InvalidArgumentError(f"filename {filename!r} has no file name, only a folder",
                                       hint="give a name such as 'palettes/hero'")
        root = _folder("output")
        rel = f"{name}.{format}"
        where = "give a name relative to ComfyUI's output folder, e.g. palettes/hero"
        target = confine(root, rel, hint=where)
        try:
            if not overwrite:
                n = 1
                while target.exists():
                    rel = f"{name}_{n:03d}.{format}"
                    target = confine(root, rel, hint=where)
                    n += 1
            # written relative to the output folder, never through a folder on the way swapped
            # for a symlink after the check above
            write_confined(root, target, palette_io.palette_file_bytes(pal, target, swatch=int(swatch)), hint=where)
        except DgxPixelsError:
            raise  # a path escaping the output folder says so itself
        except OSError as exc:
            raise ExportError(f"cannot write {rel} in ComfyUI's output folder: {exc.strerror or exc}",
                              hint="check that no file stands where a folder is needed, and that the name is not "
                                   "too long") from None
        _written.record(("palette", _written.key_path(root), str(filename), str(format)), [target])
        return io.NodeOutput(rel, ui={"text": [f"{rel} ({len(pal)} colours)"]})


class DGXPixelsPalettePreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsPalettePreview",
            display_name="Pixel Palette Preview",
            category="DGX-Pixels/Palette",
            description="Shows the palette as colour squares and outputs them as an IMAGE, plus the colours as hex text.",
            inputs=[
                PaletteType.Input("palette", tooltip="The palette to show."),
                io.Int.Input("swatch", default=16, min=1, max=128, tooltip="Size of each colour square in pixels."),
                io.Int.Input("columns", default=16, min=1, max=256, tooltip="Squares per row."),
            ],
            outputs=[
                io.Image.Output(display_name="swatches", tooltip="The palette as an RGBA image."),
                io.String.Output(display_name="hex", tooltip="The colours as #rrggbb, one per line."),
            ],
            is_output_node=True,
        )

    @classmethod
    @node_errors
    def execute(cls, palette, swatch: int = 16, columns: int = 16) -> io.NodeOutput:
        pal = check_palette(palette)
        img = _swatch_tensor(pal, int(swatch), int(columns))
        text = "\n".join("#" + h for h in pal.hex_list())
        return io.NodeOutput(img, text, ui=preview_ui(img, cls))


class DGXPixelsPaletteQuantize(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DGXPixelsPaletteQuantize",
            display_name="Pixel Palette Quantize",
            category="DGX-Pixels/Palette",
            description=(
                "Maps every opaque pixel of the batch to the palette (nearest colour by CIEDE2000, so hues "
                "survive a small palette), optionally "
                "dithered: Bayer 2/4/8 ordered patterns, or Floyd-Steinberg / Atkinson error diffusion. Every "
                "frame uses the same palette. Alpha becomes binary (pixels below alpha_threshold turn fully "
                "transparent). Output colours are exactly palette colours."
            ),
            inputs=[
                io.Image.Input("image", tooltip="True-resolution sprite or batch of frames."),
                PaletteType.Input("palette", tooltip="Palette from Pixel Palette Load or Pixel Palette Extract."),
                io.Combo.Input("dither", options=list(DITHER_MODES), default="none",
                               tooltip="none: nearest colour (CIEDE2000). bayerN: ordered NxN pattern (retro "
                                       "look, stable across frames). floyd-steinberg / atkinson: error diffusion "
                                       "(smoother gradients; Atkinson keeps highlights cleaner); it picks colours "
                                       "in OKLab (hue weighed as in the bayer mixes), where its error is carried. Error diffusion carries each pixel's "
                                       "error on through the frame, so frames that differ a little dither apart: "
                                       "use a bayer pattern for animation frames."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Dither strength: 0 = plain nearest colour, 1 = full dithering."),
                io.Int.Input("alpha_threshold", default=128, min=1, max=255,
                             tooltip="Pixels with alpha below this become transparent, the rest opaque."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional alpha as a ComfyUI mask (1 = transparent), e.g. from Load Image."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The quantised batch (RGBA when the input had alpha)."),
                io.Mask.Output(display_name="mask", tooltip="Alpha as a mask (1 = transparent)."),
            ],
        )

    @classmethod
    @node_errors
    def execute(cls, image, palette, dither: str = "none", strength: float = 1.0, alpha_threshold: int = 128,
                mask=None) -> io.NodeOutput:
        pal = check_palette(palette)
        frames = input_frames(image, mask)
        # a mask that masks nothing (see given_mask) adds no alpha channel to an RGB image
        size = (len(frames), *frames[0].shape[:2])
        keep_alpha = given_mask(mask, size) is not None or image_channels(image, "image") == 4
        if len(frames) > 1 and dither in ("floyd-steinberg", "atkinson") and strength > 0:
            # said, not found in the game: a blinking eye re-dithers half of the frame around it
            logging.warning("DGX-Pixels Pixel Palette Quantize: %s dithering of %d frames: error diffusion "
                            "carries each pixel's error on through its frame, so frames that differ a little "
                            "shimmer when played; a bayer pattern keeps animation frames steady.",
                            dither, len(frames))
        out = map_frames(frames, lambda f: quantize(f, pal, dither=dither, strength=strength,
                                                    alpha_threshold=int(alpha_threshold)))
        keep_alpha = keep_alpha or any((o[..., 3] < 255).any() for o in out)
        return io.NodeOutput(rgba_list_to_image(out, keep_alpha=keep_alpha), rgba_to_mask(out))


NODES = [
    DGXPixelsPaletteLoad,
    DGXPixelsPaletteExtract,
    DGXPixelsPaletteSave,
    DGXPixelsPalettePreview,
    DGXPixelsPaletteQuantize,
]
