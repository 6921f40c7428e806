"""Conversions between ComfyUI tensors and the pixel core's RGBA arrays.

ComfyUI passes images as float tensors of shape (B, H, W, C) with values in 0..1, C = 3 (RGB)
or 4 (RGBA, e.g. from some loaders), and masks as (B, H, W) or (H, W) floats where 1 means
"masked" (ComfyUI's ``LoadImage`` turns alpha into ``mask = 1 - alpha``). The pixel core works on
(H, W, 4) uint8 RGBA arrays. Every node converts at its edges with these functions so the
rounding rules are the same everywhere: floats are scaled by 255 and rounded half to even, as
``numpy.round`` does, which makes uint8 -> float -> uint8 lossless.
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import torch

from ..pixel.errors import InputImageError


def _check_image(image: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise InputImageError(f"{name} is a {type(image).__name__}, expected an IMAGE tensor")
    if image.ndim == 3:
        # A single image without the batch axis: ComfyUI never sends one, but nodes called
        # from scripts sometimes do; treat it as a batch of one.
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise InputImageError(
            f"{name} has shape {tuple(image.shape)}; expected (batch, height, width, 3 or 4 channels)"
        )
    if image.shape[0] == 0:
        raise InputImageError(f"{name} is an empty batch (0 images)", hint="connect a node that outputs at least one image")
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise InputImageError(f"{name} is empty ({image.shape[2]}x{image.shape[1]} pixels)")
    return image


def _to_u8(t: torch.Tensor) -> np.ndarray:
    a = t.detach().to("cpu", torch.float32).numpy()
    if not np.isfinite(a).all():
        raise InputImageError("image contains NaN or infinite values", hint="check the node that produced it")
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def image_channels(image: torch.Tensor, name: str = "image") -> int:
    """Number of channels (1, 3 or 4) of an IMAGE tensor, after validating its shape."""
    return int(_check_image(image, name).shape[-1])


def image_to_rgba_list(image: torch.Tensor, mask: torch.Tensor | None = None, *, name: str = "image") -> list[np.ndarray]:
    """Split an IMAGE batch (B, H, W, C) float 0..1 into B arrays of (H, W, 4) uint8 RGBA.

    RGB images get alpha 255. When ``mask`` (ComfyUI MASK, 1 = masked/transparent) is given,
    alpha becomes ``1 - mask`` (as LoadImage produced it); a mask batch of one applies to every
    image. Raises ``InputImageError`` for an empty batch or a wrong shape.
    """
    image = _check_image(image, name)
    u8 = _to_u8(image)
    b, h, w, c = u8.shape
    alphas: list[np.ndarray | None] = [None] * b
    if mask is not None:
        m = mask
        if m.ndim == 2:
            m = m.unsqueeze(0)
        if m.ndim != 3 or tuple(m.shape[1:]) != (h, w) or m.shape[0] not in (1, b):
            raise InputImageError(
                f"mask has shape {tuple(mask.shape)}; expected ({b} or 1, {h}, {w}) to match the image"
            )
        a = 255 - _to_u8(m)
        alphas = [a[i if a.shape[0] > 1 else 0] for i in range(b)]
    out = []
    for i in range(b):
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        if c == 1:
            rgba[..., :3] = u8[i]
        else:
            rgba[..., :3] = u8[i, ..., :3]
        if alphas[i] is not None:
            rgba[..., 3] = alphas[i]
        elif c == 4:
            rgba[..., 3] = u8[i, ..., 3]
        else:
            rgba[..., 3] = 255
        out.append(rgba)
    return out


def rgba_list_to_image(images: list[np.ndarray], keep_alpha: bool) -> torch.Tensor:
    """Stack (H, W, 4) uint8 arrays into an IMAGE tensor (B, H, W, 4 if keep_alpha else 3).

    All arrays must have the same size (ComfyUI batches are rectangular); a size mismatch
    raises ``InputImageError`` naming the first differing image.
    """
    if len(images) == 0:
        raise InputImageError("no images to output (empty batch)")
    h, w = images[0].shape[:2]
    for i, a in enumerate(images):
        if a.ndim != 3 or a.shape[2] != 4 or a.dtype != np.uint8:
            raise InputImageError(f"image {i} has shape {a.shape} dtype {a.dtype}; expected (H, W, 4) uint8")
        if a.shape[:2] != (h, w):
            raise InputImageError(
                f"image {i} is {a.shape[1]}x{a.shape[0]} but image 0 is {w}x{h}; a batch needs one size",
                hint="resize the images to one size, or process them one at a time",
            )
    stack = np.stack(images if keep_alpha else [a[..., :3] for a in images])
    return torch.from_numpy(stack.astype(np.float32) / 255.0)


def rgba_to_mask(images: list[np.ndarray]) -> torch.Tensor:
    """ComfyUI MASK (B, H, W) float from the alpha of RGBA arrays: 1 where transparent."""
    if len(images) == 0:
        raise InputImageError("no images to build a mask from (empty batch)")
    alpha = np.stack([a[..., 3] for a in images]).astype(np.float32) / 255.0
    return torch.from_numpy(1.0 - alpha)


def input_frames(image: torch.Tensor, mask: torch.Tensor | None = None, *, name: str = "image",
                 mask_name: str = "mask") -> list[np.ndarray]:
    """``image_to_rgba_list`` with errors that name the node inputs: ``name`` for the IMAGE,
    ``mask_name`` for the MASK (a MASK of another size, NaN in either)."""
    image = _check_image(image, name)
    if not torch.isfinite(image).all():
        raise InputImageError(f"{name} contains NaN or infinite values", hint="check the node that produced it")
    b, h, w = int(image.shape[0]), int(image.shape[1]), int(image.shape[2])
    mask = given_mask(mask, (b, h, w))
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise InputImageError(f"{mask_name} is a {type(mask).__name__}, expected a MASK tensor")
        m = mask.unsqueeze(0) if mask.ndim == 2 else mask
        if m.ndim != 3 or tuple(m.shape[1:]) != (h, w) or m.shape[0] not in (1, b):
            got = f"{int(mask.shape[-1])}x{int(mask.shape[-2])}" if mask.ndim >= 2 else str(tuple(mask.shape))
            batch = "1" if b == 1 else f"1 or {b}"
            if m.ndim == 3 and tuple(m.shape[1:]) == (h, w):
                # the sizes agree; the number of masks does not
                raise InputImageError(
                    f"{mask_name} holds {int(m.shape[0])} masks but {name} holds {b} images: expected {batch} "
                    f"mask{'s' if b > 1 else ''} of {w}x{h}",
                    hint="use the mask batch that belongs to these images (one mask, or one per image)")
            raise InputImageError(
                f"{mask_name} is {got} (shape {tuple(mask.shape)}) but {name} is {w}x{h}: expected a mask of "
                f"shape ({batch}, {h}, {w})",
                hint=f"use the mask that belongs to this image, or resize it to {w}x{h}",
            )
        if not torch.isfinite(m).all():
            raise InputImageError(f"{mask_name} contains NaN or infinite values", hint="check the node that produced it")
    return image_to_rgba_list(image, mask, name=name)


def given_mask(mask, size: tuple[int, int, int] | None = None):
    """``mask``, or None where it masks nothing: a MASK of zeros (1 = masked) that is either
    ComfyUI LoadImage's placeholder for an image without alpha (64x64 whatever the image's size,
    one per frame of an animated GIF or PNG, so any number of them) or, with ``size`` = the
    image batch's (batch, height, width), a mask that fits it (one mask or one per image).

    Such a mask means "no mask": the image keeps its own alpha (opaque for RGB). The rule is
    one for every size because a 64x64 placeholder and a 64x64 mask of zeros cannot be told
    apart: before, a zero mask was ignored on a 64x64 image but made a 65x65 RGBA image opaque.
    For LoadImage's RGB outputs both readings give the same opaque image. A zero mask of any
    other shape is kept, so that a mask wired from another image is still refused by size."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or mask.numel() == 0:
        return mask
    hw = tuple(int(d) for d in mask.shape[-2:])
    count = 1 if mask.ndim == 2 else int(mask.shape[0])
    placeholder = hw == (64, 64)
    fits = size is not None and hw == (int(size[1]), int(size[2])) and count in (1, int(size[0]))
    if (placeholder or fits) and not bool(mask.any()):
        return None
    return mask


def progress_bar(total: int):
    """A ComfyUI progress bar for batch work, or None for a single image or outside a running
    prompt (tests, scripts)."""
    if total < 2:
        return None
    try:
        import comfy.utils

        return comfy.utils.ProgressBar(total)
    except Exception:  # progress is cosmetic; without a server context there is none
        return None


def throw_if_interrupted() -> None:
    """Raise ComfyUI's ``InterruptProcessingException`` once the user has cancelled the prompt.

    Pass it as the ``check`` of the pixel core's long functions so they stop inside a frame,
    not only between frames. ``comfy.model_management`` is looked up, not imported: a server
    loads it before any node runs, while importing it elsewhere (scripts, unit tests) would set
    up a torch device, and there is no prompt to cancel there anyway.
    """
    mm = sys.modules.get("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def map_frames(frames: list[np.ndarray], fn: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """``[fn(f) for f in frames]``, stopping before the next frame once the user cancels, and
    advancing a progress bar for a batch."""
    pbar = progress_bar(len(frames))
    out = []
    for f in frames:
        throw_if_interrupted()
        out.append(fn(f))
        if pbar is not None:
            pbar.update(1)
    return out


def rgba_outputs(frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(IMAGE with alpha, MASK) outputs for a list of RGBA frames of one size."""
    return rgba_list_to_image(frames, keep_alpha=True), rgba_to_mask(frames)
