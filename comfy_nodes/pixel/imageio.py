"""Reading, normalising and writing images for the pixel core.

Every function in the core works on RGBA uint8 arrays of shape (H, W, 4). This module turns
whatever a user hands us (grayscale, palette, 16-bit, with or without alpha) into that, and
writes PNGs atomically so a watcher (Bevy hot reload, ``dgx-pixels watch``) never sees half a file.
"""
from __future__ import annotations

import math
import os
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputImageError
from .safepath import current_umask

# Pillow refuses larger images by default as a decompression-bomb guard; 16k x 16k is the
# largest we promise to handle, so allow exactly that and no more.
MAX_PIXELS = 16384 * 16384
#: The longest side an image we make may have: the largest 2-D texture most GPUs load
#: (wgpu's adapter limit on desktop GPUs; WebGL2 and mobile allow less).
MAX_SIDE = 16384
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def pil_to_rgba(img: Image.Image, *, source: str = "image") -> np.ndarray:
    """Convert any Pillow image to an (H, W, 4) uint8 RGBA array.

    16-bit and float modes are scaled to 8 bits; palette images keep their transparency.
    ``source`` names the input in error messages.
    """
    if img.width < 1 or img.height < 1:
        raise InputImageError(f"{source} is empty ({img.width}x{img.height})")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return _gray_to_rgba(gray)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return _gray_to_rgba(gray)
    if mode != "RGBA":
        img = img.convert("RGBA")
    return np.array(img, dtype=np.uint8)


def _gray_to_rgba(gray: np.ndarray) -> np.ndarray:
    out = np.empty(gray.shape + (4,), dtype=np.uint8)
    out[..., :3] = gray[..., None]
    out[..., 3] = 255
    return out


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Load an image file as (H, W, 4) uint8 RGBA; raise ``InputImageError`` naming the file.
    Of an animation (GIF, APNG, WebP) this is the first frame; :func:`load_frames` reads all."""
    return _read(path, all_frames=False)[0]


def load_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """Every frame of an image file, each (H, W, 4) uint8 RGBA: one for a still image, all
    of an animated GIF, APNG or WebP or a multi-page TIFF (as composited by Pillow). The
    frames together may hold at most 16384x16384 pixels; ``InputImageError`` names the file."""
    return _read(path, all_frames=True)


def frame_durations_ms(path: str | os.PathLike) -> list[int] | None:
    """Milliseconds each frame of an animated GIF, APNG or WebP is shown, as the file says;
    None for a still image, or when a frame gives no duration (a GIF without timing)."""
    try:
        with Image.open(path) as img:
            n = int(getattr(img, "n_frames", 1))
            if n < 2:
                return None
            out = []
            for i in range(n):
                img.seek(i)
                if "duration" not in img.info:
                    img.load()  # WebP sets a frame's duration only once the frame is decoded
                ms = img.info.get("duration")
                if not isinstance(ms, (int, float)) or ms <= 0:
                    return None
                out.append(int(round(ms)))
            return out
    except (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError):
        return None  # load_frames names the problem; timing is only a bonus


def _not_a_file(p: Path) -> str:
    """Why ``p``, which is no folder and no regular file, cannot be read as an image."""
    try:
        st = os.stat(p)
    except OSError as exc:
        if p.is_symlink():
            return f"input image {p} is a link that leads nowhere ({exc.strerror or exc})"
        return f"input image not found: {p}"
    kind = "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else \
        "a pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file"
    return f"input image {p} is {kind}, not an image file"


def _read(path: str | os.PathLike, *, all_frames: bool) -> list[np.ndarray]:
    p = Path(path)
    if p.is_dir():
        raise InputImageError(f"{p} is a folder, not an image file", hint="name one image file in it")
    if not p.is_file():
        raise InputImageError(_not_a_file(p), hint="check the path")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; a small file must not unpack to gigabytes.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            n = int(getattr(img, "n_frames", 1)) if all_frames else 1
            if img.width * img.height > MAX_PIXELS:
                raise InputImageError(f"{p} is {img.width}x{img.height} pixels, more than 16384x16384",
                                      hint="crop or downscale it first")
            if img.width * img.height * n > MAX_PIXELS:
                raise InputImageError(f"{p} is {n} frames of {img.width}x{img.height}, more than 16384x16384 "
                                      "pixels together", hint="split the animation into shorter runs")
            frames = []
            for i in range(n):
                if i:
                    img.seek(i)
                img.load()
                source = str(p) if n == 1 else f"{p} frame {i}"
                frame = img
                if n == 1 and img.getexif().get(0x0112, 1) != 1:
                    # a photo or phone export stored sideways with an EXIF turn: the picture
                    # as every viewer shows it, not as stored
                    from PIL import ImageOps

                    frame = ImageOps.exif_transpose(img)
                frames.append(pil_to_rgba(frame, source=source))
            return frames
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"{p} is larger than 16384x16384 pixels", hint="crop or downscale it first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise InputImageError(f"{p} is not a readable image ({exc})", hint="use a PNG, JPEG or WebP file") from exc


def as_rgba(arr: np.ndarray, *, source: str = "image") -> np.ndarray:
    """Normalise an array to (H, W, 4) uint8 RGBA.

    Accepts (H, W) gray, (H, W, 1|2|3|4) channels, uint8 or float in 0..1 or 16-bit ints.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise InputImageError(f"{source} has shape {a.shape}; expected (height, width, 1-4 channels)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputImageError(f"{source} is empty ({a.shape[1]}x{a.shape[0]})")
    if a.dtype == np.uint8:
        u8 = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputImageError(f"{source} contains NaN or infinite values", hint="check the step that produced it")
        u8 = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        u8 = np.clip(np.round(a.astype(np.float64) / top * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    else:
        raise InputImageError(f"{source} has unsupported dtype {a.dtype}")
    c = u8.shape[2]
    if c == 4:
        return np.ascontiguousarray(u8)
    out = np.empty(u8.shape[:2] + (4,), dtype=np.uint8)
    if c == 1:
        out[..., :3] = u8
        out[..., 3] = 255
    elif c == 2:
        out[..., :3] = u8[..., :1]
        out[..., 3] = u8[..., 1]
    else:
        out[..., :3] = u8
        out[..., 3] = 255
    return out


def staged_file(target: Path) -> tuple[int, str]:
    """(fd, path) of a new temp file beside ``target`` for an atomic write, with the mode the
    file at ``target`` will have: the replaced file's, or 0o666 less the umask as a plain
    ``open`` gives. A temp file is created 0o600, and renamed into place that way an asset
    would be unreadable to a web server, a container or another user of a shared checkout."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, mode)
    except OSError:
        pass  # a file system without modes (FAT) keeps its own
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = staged_file(p)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def png_bytes(rgba: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode an (H, W, 4) uint8 array as PNG bytes (RGBA, or RGB when fully opaque).
    ``text``: keyword -> value, written as tEXt chunks (Latin-1 keywords of 1-79 characters)."""
    import io

    a = as_rgba(rgba)
    img = Image.fromarray(a, "RGBA")
    if (a[..., 3] == 255).all():
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6, pnginfo=png_info(text))
    return buf.getvalue()


def png_info(text: dict[str, str] | None):
    """Pillow's ``PngInfo`` holding ``text`` as tEXt chunks, or None for no text."""
    if not text:
        return None
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    return info


def png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG file (keyword -> value); {} for another kind of file, or one
    that cannot be read (``load_image`` names that problem)."""
    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                return {}
            img.load()  # chunks after the pixels are read only with them
            return {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
    except (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError):
        return {}


def save_png(rgba: np.ndarray, path: str | os.PathLike, text: dict[str, str] | None = None) -> Path:
    """Write an RGBA array as PNG atomically (``text``: see :func:`png_bytes`); returns the path written."""
    p = Path(path)
    atomic_write_bytes(p, png_bytes(rgba, text))
    return p


def largest_nearest_scale(h: int, w: int, max_pixels: int = MAX_PIXELS) -> int:
    """The largest whole scale (at least 1) that keeps an ``h`` x ``w`` image within MAX_SIDE px
    a side and ``max_pixels`` pixels once enlarged."""
    return max(1, min(MAX_SIDE // max(1, h, w), math.isqrt(max(1, int(max_pixels) // max(1, h * w)))))


def upscale_nearest(rgba: np.ndarray, scale: int, *, max_pixels: int = MAX_PIXELS, name: str = "scale") -> np.ndarray:
    """Nearest-neighbour integer upscale (scale >= 1): each pixel becomes a scale x scale block.

    An enlargement past MAX_SIDE px a side or ``max_pixels`` pixels is refused before anything
    is allocated (``name`` is the option the message names): a scale of 64 on a 1536x1024
    image asked numpy for 24 GiB."""
    from .errors import InvalidArgumentError

    if scale < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {scale}")
    if scale == 1:
        return rgba
    h, w = rgba.shape[:2]
    if max(h, w) * scale > MAX_SIDE or h * w * scale * scale > max_pixels:
        raise InvalidArgumentError(
            f"{name} {scale} makes the {w}x{h} image {w * scale}x{h * scale} pixels, more than this allows "
            f"({MAX_SIDE} px a side, {max_pixels // 1_000_000} million pixels)",
            hint=f"use {name} {largest_nearest_scale(h, w, max_pixels)} or less for this image")
    return np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)
