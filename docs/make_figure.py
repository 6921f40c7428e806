#!/usr/bin/env python3
"""Render docs/snap-example.png: pseudo pixel art made by the project's degrader, beside our snap;
and docs/icon.png, the Comfy registry icon (the sample knight on a dark tile).

    python docs/make_figure.py

Left: what a diffusion model draws (big uneven fake pixels, blur, noise, JPEG). Middle: the
true-resolution sprite ``dgx-pixels snap`` recovers, nearest-upscaled to the same height.
Right: the hand-drawn truth. Everything is drawn by ``orchestrator/samples.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from comfy_nodes.pixel import grid
from comfy_nodes.pixel.imageio import as_rgba, upscale_nearest
from orchestrator import samples

HERE = Path(__file__).resolve().parent
BG = (40, 42, 54)


def _on_checker(rgba: np.ndarray, cell: int) -> np.ndarray:
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 200, 168).astype(np.float64)
    a = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * a + board * (1 - a)).astype(np.uint8)


def panel(rgb: np.ndarray, height: int) -> Image.Image:
    img = Image.fromarray(rgb)
    scale = height / img.height
    return img.resize((round(img.width * scale), height), Image.NEAREST)


def main() -> None:
    tiles = []
    for i, (name, cell) in enumerate((("knight", 14.3), ("slime", 11.7), ("potion", 17.2))):
        truth = samples.sprites()[name]
        d = samples.degrade(truth, cell=cell, seed=40 + i)
        snapped = grid.snap(as_rgba(d.image), background="transparent").image
        h = 288
        big = upscale_nearest(snapped, max(1, h // snapped.shape[0]))
        tiles.append([panel(d.image, h), panel(_on_checker(big, h // snapped.shape[0]), h),
                      panel(_on_checker(upscale_nearest(truth, h // truth.shape[0]), h // truth.shape[0]), h)])
    pad, label_h = 12, 26
    width = pad + sum(t.width + pad for t in tiles[0])
    height = label_h + pad + len(tiles) * (tiles[0][0].height + pad)
    sheet = Image.new("RGB", (width, height), BG)
    draw = ImageDraw.Draw(sheet)
    x = pad
    for title, t in zip(("AI-style input (pseudo pixel art)", "dgx-pixels snap (true grid)", "hand-drawn truth"), tiles[0]):
        draw.text((x, 6), title, fill=(235, 235, 240), font=ImageFont.load_default(size=14))
        x += t.width + pad
    y = label_h + pad
    for row in tiles:
        x = pad
        for t in row:
            sheet.paste(t, (x, y))
            x += t.width + pad
        y += row[0].height + pad
    out = HERE / "snap-example.png"
    sheet.save(out, optimize=True)
    print(out)
    print(icon())


def icon(size: int = 256) -> Path:
    """The registry icon: the 16x16 knight, nearest-upscaled with a one-pixel margin."""
    knight = samples.sprites()["knight"]
    cell = size // (knight.shape[0] + 2)
    img = Image.new("RGB", (size, size), BG)
    big = Image.fromarray(upscale_nearest(knight, cell))
    off = (size - big.width) // 2
    img.paste(big, (off, off), big)
    out = HERE / "icon.png"
    img.save(out, optimize=True)
    return out


if __name__ == "__main__":
    main()
