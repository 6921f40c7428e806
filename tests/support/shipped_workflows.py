"""Source of the shipped workflows (``workflows/<name>/<version>/`` and ``example_workflows/``).

Each workflow is written once here as a :class:`~workflow_builder.Graph` plus its parameters;
``python tests/support/shipped_workflows.py --server URL`` resolves them against that live
server's ``/object_info`` (a server with this pack installed) and writes the API format, the
editor format and the template copy. The committed JSON files are what users and tests run;
this script only regenerates them after a node changes.

Defaults are the production settings (SDXL base 1.0 + pixel-art-xl LoRA at 1024x1024); tests
run the same files with small sizes and the random test checkpoint through the parameters.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_builder import Graph, to_api, to_editor  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SDXL = "sd_xl_base_1.0.safetensors"
LORA = "pixel-art-xl.safetensors"
SDXL_URL = ("https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/"
            "462165984030d82259a11f4367a4eed129e94a7b/sd_xl_base_1.0.safetensors")
LORA_URL = ("https://huggingface.co/nerijs/pixel-art-xl/resolve/"
            "ff35fec8148216e65984f6fc84caf76fb6821a18/pixel-art-xl.safetensors")
NEGATIVE = "3d render, realistic, photo, blurry, soft shading, gradient, text, watermark, signature"
SAMPLE_INPUT = "dgx-pixels-sample.png"


@dataclass
class Param:
    """One named parameter: which node inputs it sets, its type, default and meaning."""

    name: str
    targets: list[tuple[int, str]]
    type: str  # int | float | string | bool | enum
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] | None = None


@dataclass
class Shipped:
    name: str
    version: str
    title: str
    description: str
    graph: Graph
    params: list[Param]
    outputs: list[int]
    needs_models: bool = True
    tags: list[str] = field(default_factory=list)

    def output_kinds(self) -> list[tuple[int, str]]:
        """(node id, history key): SaveImage gives ``images``, Bevy Export its ``text`` summary."""
        kinds = []
        for nid in self.outputs:
            node = self.graph.node(nid)
            kinds.append((nid, "images" if node.class_type == "SaveImage" else "text"))
        return kinds


def _models_props(*entries: tuple[str, str, str]) -> dict:
    # The editor's missing-model dialog offers these downloads (frontend 1.32 reads them).
    return {"models": [{"name": n, "url": u, "directory": d} for n, u, d in entries]}


def _node_with(object_info: dict, category: str, prefer: str | None = None) -> str | None:
    ids = sorted(k for k, v in object_info.items() if k.startswith("DGXPixels") and v.get("category") == category)
    if prefer and prefer in ids:
        return prefer
    return ids[0] if ids else None


def _first_input(object_info: dict, node_id: str, kind: str) -> str:
    info = object_info[node_id]
    for group in ("required", "optional"):
        for name in (info.get("input_order", {}).get(group) or []):
            spec = info["input"][group][name]
            if spec[0] == kind:
                return name
    raise KeyError(f"{node_id} has no {kind} input")


class PixelChain:
    """The post-processing every workflow shares, all on true-resolution pixels:

    Grid Snap (fake pixels -> real pixels) -> Background Remove (flat backdrop -> transparent;
    not for tiles) -> Palette Extract (one palette for the whole batch) -> Palette Quantize ->
    Stray Cleanup. The alpha travels as a MASK (1 = transparent) beside the image.
    """

    def __init__(self, g: Graph, object_info: dict, image, *, batch_shared: bool = True,
                 remove_background: bool = True, palette_colors: int = 16):
        self.snap = g.add("DGXPixelsGridSnap", title="Grid Snap (true resolution)", image=image,
                          mode="auto", batch_shared_grid=batch_shared)
        out, mask = self.snap[0], self.snap[1]
        self.background = None
        if remove_background:
            self.background = g.add("DGXPixelsBackgroundRemove", title="Background Remove", image=out, mask=mask,
                                    tolerance=0.06)
            out, mask = self.background[0], self.background[1]
        self.extract = g.add("DGXPixelsPaletteExtract", title="Palette Extract (shared by all frames)", image=out,
                             mask=mask, colors=palette_colors)
        self.quantize = g.add("DGXPixelsPaletteQuantize", title="Palette Quantize", image=out, mask=mask,
                              palette=self.extract[0], dither="none")
        # 8-connected like the core's remove_strays: a diagonal line of one colour is one island,
        # not many one-pixel strays to vote away (Background Remove stays 4-connected so the
        # backdrop cannot leak through a diagonal gap in an outline).
        self.cleanup = g.add("DGXPixelsStrayCleanup", title="Stray Cleanup", image=self.quantize[0],
                             mask=self.quantize[1], min_size=2, connectivity="8")
        self.image = self.cleanup[0]
        self.mask = self.cleanup[1]

    def params(self) -> list[Param]:
        s = self.snap.id
        out = [
            Param("grid_mode", [(s, "mode")], "enum",
                  "how the pixel grid is found: auto (detect), cell (cell_size), size (target_width x target_height)",
                  choices=["auto", "cell", "size"]),
            Param("cell_size", [(s, "cell_size")], "float", "fake-pixel size in image pixels (grid_mode=cell)", 1, 256),
            Param("target_width", [(s, "target_width")], "int", "sprite width in art pixels (grid_mode=size)", 1, 4096),
            Param("target_height", [(s, "target_height")], "int", "sprite height in art pixels (grid_mode=size)", 1, 4096),
            Param("colors", [(self.extract.id, "colors")], "int",
                  "palette size shared by all frames; 0 = automatic (smallest palette keeping every colour)", 0, 256),
            Param("dither", [(self.quantize.id, "dither")], "enum", "dithering when mapping to the palette",
                  choices=["none", "bayer2", "bayer4", "bayer8", "floyd-steinberg", "atkinson"]),
            Param("stray_min_size", [(self.cleanup.id, "min_size")], "int",
                  "islands of one colour smaller than this many pixels are removed; 1 = keep everything", 1, 4096),
        ]
        if self.background is not None:
            out.append(Param("background_tolerance", [(self.background.id, "tolerance")], "float",
                             "how close to the border colour a pixel must be to become transparent (OKLab)", 0, 1))
        return out


def _generation(g: Graph, *, prompt: str, width: int, height: int, batch: int, seed: int, steps: int = 30,
                cfg: float = 7.0, img2img_image=None, denoise: float = 1.0):
    ckpt = g.add("CheckpointLoaderSimple", title="Load SDXL base", ckpt_name=SDXL,
                 properties=_models_props((SDXL, SDXL_URL, "checkpoints")))
    lora = g.add("LoraLoader", title="Pixel Art XL LoRA", model=ckpt[0], clip=ckpt[1], lora_name=LORA,
                 strength_model=1.2, strength_clip=1.2, properties=_models_props((LORA, LORA_URL, "loras")))
    pos = g.add("CLIPTextEncode", title="Prompt", clip=lora[1], text=prompt, color="#232")
    neg = g.add("CLIPTextEncode", title="Negative prompt", clip=lora[1], text=NEGATIVE, color="#322")
    if img2img_image is None:
        latent = g.add("EmptyLatentImage", title="Size and frame count", width=width, height=height, batch_size=batch)
    else:
        scaled = g.add("ImageScale", title="Resize for the model", image=img2img_image, upscale_method="nearest-exact",
                       width=width, height=height, crop="center")
        latent = g.add("VAEEncode", pixels=scaled[0], vae=ckpt[2])
    sampler = g.add("KSampler", model=lora[0], positive=pos[0], negative=neg[0], latent_image=latent[0], seed=seed,
                    steps=steps, cfg=cfg, sampler_name="euler_ancestral", scheduler="normal", denoise=denoise)
    decode = g.add("VAEDecode", samples=sampler[0], vae=ckpt[2])
    gen_params = [
        Param("prompt", [(pos.id, "text")], "string", "what to draw; 'pixel art' style words help"),
        Param("negative_prompt", [(neg.id, "text")], "string", "what to avoid"),
        Param("seed", [(sampler.id, "seed")], "int", "noise seed; same seed + same parameters = same image", 0),
        Param("steps", [(sampler.id, "steps")], "int", "sampling steps", 1, 200),
        Param("cfg", [(sampler.id, "cfg")], "float", "prompt guidance", 0, 30),
        Param("sampler", [(sampler.id, "sampler_name")], "string", "KSampler sampler name"),
        Param("checkpoint", [(ckpt.id, "ckpt_name")], "string", "checkpoint file in models/checkpoints"),
        Param("lora", [(lora.id, "lora_name")], "string", "LoRA file in models/loras"),
        Param("lora_strength", [(lora.id, "strength_model"), (lora.id, "strength_clip")], "float",
              "LoRA strength for model and text encoder; 0 turns the LoRA off", -10, 10),
    ]
    if img2img_image is None:
        gen_params += [
            Param("width", [(latent.id, "width")], "int", "generation width in pixels (SDXL: 1024)", 64, 4096),
            Param("height", [(latent.id, "height")], "int", "generation height in pixels (SDXL: 1024)", 64, 4096),
        ]
    else:
        gen_params += [
            Param("width", [(scaled.id, "width")], "int", "working width in pixels (SDXL: 1024)", 64, 4096),
            Param("height", [(scaled.id, "height")], "int", "working height in pixels (SDXL: 1024)", 64, 4096),
            Param("denoise", [(sampler.id, "denoise")], "float", "how much the model redraws the image (0..1)", 0, 1),
        ]
    return decode, latent, gen_params


def _export(g: Graph, *, image=None, sheet_data=None, mask=None, project: str, asset_path: str, animations: str = ""):
    inputs = dict(project=project, asset_path=asset_path, bevy_version="auto", overwrite="version",
                  animations=animations, write_atlas_json=True)
    if sheet_data is not None:
        inputs["sheet_data"] = sheet_data
    if image is not None:
        inputs["image"] = image
    if mask is not None:
        inputs["alpha_mask"] = mask
    ex = g.add("DGXPixelsBevyExport", title="Bevy Export", **inputs)
    params = [
        Param("project", [(ex.id, "project")], "string",
              "Bevy project folder (inside the configured roots) or a name under ComfyUI's output/bevy"),
        Param("asset_path", [(ex.id, "asset_path")], "string", "PNG path inside the project's assets/ folder"),
        Param("bevy_version", [(ex.id, "bevy_version")], "string", "Bevy version of the .meta files (auto = detect)"),
    ]
    return ex, params


def sprite(oi: dict) -> Shipped:
    g = Graph()
    decode, _, gp = _generation(g, prompt="pixel art, a knight character, full body, side view, plain background",
                                width=1024, height=1024, batch=1, seed=1234)
    chain = PixelChain(g, oi, decode[0])
    save = g.add("SaveImage", title="Save sprite", images=chain.image, filename_prefix="dgx-pixels/sprite")
    ex, ep = _export(g, image=chain.image, mask=chain.mask, project="my_game", asset_path="sprites/knight.png")
    g.note("**Sprite**: SDXL base + pixel-art-xl LoRA at 1024x1024, then Grid Snap finds the fake-pixel grid and "
           "returns the sprite at its true resolution, Palette limits the colours, Cleanup removes stray pixels, "
           "and Bevy Export writes PNG + .meta (nearest sampling) into a Bevy project.\n\n"
           "Models: `dgx-pixels models pull --comfyui /path/to/ComfyUI`.", "About this workflow")
    return Shipped("sprite", "1.1.1", "Sprite", "One game sprite from a prompt, true-grid pixel art exported to Bevy.",
                   g, gp + chain.params() + ep, [save.id], tags=["sprite", "generation"])


def animation(oi: dict) -> Shipped:
    g = Graph()
    decode, latent, gp = _generation(g, prompt="pixel art sprite sheet frame, a knight walking, side view, "
                                               "same character, plain background",
                                     width=1024, height=1024, batch=4, seed=4321)
    chain = PixelChain(g, oi, decode[0], batch_shared=True)
    sheet = g.add("DGXPixelsSpriteSheet", title="Sprite Sheet", frames=chain.image, alpha_mask=chain.mask,
                  animations="walk:0-3@8",
                  anchor="bottom-center", trim="each")
    save = g.add("SaveImage", title="Save sheet", images=sheet[0], filename_prefix="dgx-pixels/animation")
    ex, ep = _export(g, sheet_data=sheet[1], project="my_game", asset_path="sprites/knight_walk.png")
    g.note("**Animation**: one seed, a latent batch of N frames of the same character and action. All frames share "
           "one grid (batch_shared_grid) and one palette, so they line up and do not flicker. Sprite Sheet packs "
           "them with a named animation (`walk:0-3@8` = frames 0..3 at 8 fps); Bevy Export writes the sheet, its "
           ".meta and an atlas JSON with the animation.", "About this workflow")
    params = gp + chain.params() + [
        Param("frames", [(latent.id, "batch_size")], "int", "number of frames (latent batch size)", 1, 64),
        Param("animation", [(sheet.id, "animations")], "string", "animations, e.g. walk:0-3@8 (name:first-last@fps)"),
    ] + ep
    return Shipped("animation", "1.1.1", "Animation", "N frames of one character and action as a Bevy sprite sheet.",
                   g, params, [save.id], tags=["animation", "sheet", "generation"])


def tileset(oi: dict) -> Shipped:
    g = Graph()
    decode, latent, gp = _generation(g, prompt="pixel art, seamless tileable grass ground texture, top-down, game tile",
                                     width=1024, height=1024, batch=4, seed=777)
    chain = PixelChain(g, oi, decode[0], batch_shared=True, remove_background=False)
    tiles = g.add("DGXPixelsTileset", title="Tileset + seam check", tiles=chain.image, alpha_mask=chain.mask,
                  columns=0, tolerance=8.0)
    report = g.add("PreviewAny", title="Seam report (tiles that are not seamless)", source=tiles[2])
    save = g.add("SaveImage", title="Save tileset", images=tiles[0], filename_prefix="dgx-pixels/tileset")
    ex, ep = _export(g, sheet_data=tiles[1], project="my_game", asset_path="tiles/grass.png")
    g.note("**Tileset**: N tiles from one prompt, snapped to the same grid and palette. Tileset checks every tile's "
           "opposite edges and reports the ones that are not seamless (the Seam report node shows which tile fails, on which edge, by how much), assembles "
           "the tileset image and Bevy Export writes it with its .meta and atlas JSON.", "About this workflow")
    params = gp + chain.params() + [
        Param("tiles", [(latent.id, "batch_size")], "int", "number of tiles (latent batch size)", 1, 64),
        Param("seam_tolerance", [(tiles.id, "tolerance")], "float", "largest colour difference across an edge that still counts as seamless", 0, 255),
    ] + ep
    outs = [save.id]
    shipped_report = report.id  # noqa: F841  (a text output, shown in the editor; not a file)
    return Shipped("tileset", "1.2.1", "Tileset", "Seamless tiles with a seam report, assembled and exported to Bevy.",
                   g, params, outs, tags=["tileset", "generation"])


def pixelize(oi: dict) -> Shipped:
    g = Graph()
    load = g.add("LoadImage", title="Your image", image=SAMPLE_INPUT)
    decode, _, gp = _generation(g, prompt="pixel art, game sprite, clean outlines, limited palette",
                                width=1024, height=1024, batch=1, seed=99, img2img_image=load[0], denoise=0.55)
    chain = PixelChain(g, oi, decode[0])
    save = g.add("SaveImage", title="Save sprite", images=chain.image, filename_prefix="dgx-pixels/pixelize")
    ex, ep = _export(g, image=chain.image, mask=chain.mask, project="my_game", asset_path="sprites/pixelized.png")
    g.note("**Pixelize**: img2img from your own image (Load Image). The model redraws it as pixel art (denoise "
           "0.55 keeps the composition), then the usual pixel pipeline and Bevy export.", "About this workflow")
    params = [Param("image", [(load.id, "image")], "image", "input image (a file in ComfyUI's input folder, or a "
                                                                "local path that `dgx-pixels run` uploads)")]
    return Shipped("pixelize", "1.1.1", "Pixelize", "Turn your own image into true-grid pixel art (img2img).",
                   g, params + gp + chain.params() + ep, [save.id], tags=["img2img", "generation"])


def cleanup(oi: dict) -> Shipped:
    g = Graph()
    load = g.add("LoadImage", title="Pseudo pixel art (from any generator)", image=SAMPLE_INPUT)
    chain = PixelChain(g, oi, load[0])
    sheet = g.add("DGXPixelsSpriteSheet", title="Sprite Sheet", frames=chain.image, alpha_mask=chain.mask,
                  animations="", trim="none")
    save = g.add("SaveImage", title="Save sprite", images=chain.image, filename_prefix="dgx-pixels/cleanup")
    ex, ep = _export(g, sheet_data=sheet[1], project="my_game", asset_path="sprites/cleaned.png")
    g.note("**Cleanup** (no model needed): Load Image takes AI pseudo pixel art from any generator; Grid Snap "
           "recovers the true pixel grid, Palette limits the colours, Cleanup removes strays, and Bevy Export "
           "writes PNG + .meta + atlas JSON. Runs on a fresh machine without any model file.", "About this workflow")
    params = [Param("image", [(load.id, "image")], "image", "input image (a file in ComfyUI's input folder, or a "
                                                                "local path that `dgx-pixels run` uploads)")]
    return Shipped("cleanup", "1.1.1", "Cleanup", "Post-process existing pseudo pixel art: snap, palette, cleanup, "
                   "sheet, Bevy export. No model needed.", g, params + chain.params() + ep, [save.id],
                   needs_models=False, tags=["post-processing"])


ALL = (sprite, animation, tileset, pixelize, cleanup)


def build_all(object_info: dict) -> list[Shipped]:
    return [f(object_info) for f in ALL]


def write_all(object_info: dict, repo: Path = REPO) -> list[Path]:
    """Write every shipped workflow's files; returns the paths written."""
    written = []
    for wf in build_all(object_info):
        api = to_api(wf.graph, object_info)
        editor = to_editor(wf.graph, object_info, extra={"dgx_pixels": {"workflow": wf.name, "version": wf.version}})
        written += write_workflow(wf, api, editor, repo)
    return written


def write_workflow(wf: Shipped, api: dict, editor: dict, repo: Path) -> list[Path]:
    from workflow_format import write  # the on-disk layout of workflows/ lives in one place

    return write(wf, api, editor, repo)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="regenerate the shipped workflows from a live server's /object_info")
    ap.add_argument("--server", required=True, help="URL of a ComfyUI with this pack installed")
    a = ap.parse_args(argv)
    with urllib.request.urlopen(a.server.rstrip("/") + "/object_info", timeout=60) as r:
        oi = json.load(r)
    for p in write_all(oi):
        print(p.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------- thumbnails


def thumbnails(repo: Path = REPO) -> list[Path]:
    """Template-browser thumbnails (``example_workflows/<name>.jpg``), drawn from the project's
    own sample sprites (``orchestrator/samples.py``): what each workflow turns into what."""
    import numpy as np
    from PIL import Image, ImageDraw

    sys.path.insert(0, str(repo))
    from orchestrator import samples

    W, H, BG = 512, 384, (24, 26, 38)

    def big(rgba: np.ndarray, size: int) -> Image.Image:
        img = Image.fromarray(rgba, "RGBA")
        k = max(1, size // max(img.size))
        return img.resize((img.width * k, img.height * k), Image.NEAREST)

    def canvas() -> Image.Image:
        return Image.new("RGB", (W, H), BG)

    def paste_center(c: Image.Image, im: Image.Image, cx: int, cy: int) -> None:
        c.paste(im, (cx - im.width // 2, cy - im.height // 2), im if im.mode == "RGBA" else None)

    def arrow(c: Image.Image) -> None:
        d = ImageDraw.Draw(c)
        d.polygon([(236, 172), (276, 192), (236, 212)], fill=(255, 205, 117))

    knight = samples.sprites()["knight"]
    degraded = Image.fromarray(samples.degrade(knight, seed=3).image).convert("RGB")
    out = {}

    c = canvas()
    paste_center(c, big(knight, 300), W // 2, H // 2)
    out["sprite"] = c

    c = canvas()
    for i, f in enumerate(samples.knight_walk()):
        paste_center(c, big(f, 112), 64 + i * 128, H // 2)
    out["animation"] = c

    c = canvas()
    grass = np.zeros((16, 16, 4), np.uint8)
    rng = np.random.default_rng(1)
    grass[..., :3] = samples.COLORS["g"]
    grass[..., 3] = 255
    dark = rng.random((16, 16)) < 0.18
    grass[dark, :3] = samples.COLORS["G"]
    tile = big(grass, 96)
    for ty in range(3):
        for tx in range(4):
            c.paste(tile, (64 + tx * 96, 48 + ty * 96))
    out["tileset"] = c

    for name, right in (("cleanup", knight), ("pixelize", knight)):
        c = canvas()
        left = degraded if name == "cleanup" else degraded.resize(degraded.size, Image.BILINEAR).filter(
            __import__("PIL.ImageFilter", fromlist=["GaussianBlur"]).GaussianBlur(4))
        k = 200 / max(left.size)
        paste_center(c, left.resize((int(left.width * k), int(left.height * k)), Image.BILINEAR), 124, H // 2)
        arrow(c)
        paste_center(c, big(right, 200), 388, H // 2)
        out[name] = c

    paths = []
    for name, img in out.items():
        p = repo / "example_workflows" / f"{name}.jpg"
        img.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths
