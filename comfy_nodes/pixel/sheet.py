"""Sprite sheets: frames on a uniform grid, named animations, and the inverse split.

A sheet is the layout every engine agrees on (Bevy's ``TextureAtlasLayout::from_grid``,
bevy_asset_loader, Tiled, LDtk): ``columns x rows`` cells of ``cell_w x cell_h`` pixels, with
``padding`` pixels between neighbouring cells and an ``offset`` before the first cell. The
sheet is therefore exactly ``offset + columns*cell_w + (columns-1)*padding`` pixels wide
(the same formula vertically), unless it was enlarged to a power of two on the right/bottom.

Frames keep their exact pixels: nothing is ever resampled. Frames are optionally trimmed to
their visible pixels and placed in their cell by an anchor (bottom-centre for characters so
feet stay on one line, centre for items, top-left for tiles).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .asset_manifest import loads_json
from .errors import InputImageError, InvalidArgumentError, NoGridFoundError
from .imageio import MAX_PIXELS, MAX_SIDE, as_rgba
from .stats import median

ANCHORS = ("bottom-center", "center", "top-left")
TRIM_MODES = ("auto", "each", "union", "none")
DIRECTIONS = ("forward", "reverse", "pingpong")
DEFAULT_FPS = 10.0
# Largest preview sheet_preview draws (pixels); 4096 x 4096 RGBA is 64 MB.
PREVIEW_MAX_PIXELS = 4096 * 4096

_ANCHOR_ALIASES = {
    "bottom-center": "bottom-center",
    "bottom-centre": "bottom-center",
    "bottom": "bottom-center",
    "feet": "bottom-center",
    "center": "center",
    "centre": "center",
    "middle": "center",
    "top-left": "top-left",
    "topleft": "top-left",
    "none": "top-left",
}


@dataclass(frozen=True)
class Animation:
    """A named range of frames ``first..last`` (inclusive, 0-based) played at ``fps``.

    ``direction`` is ``forward``, ``reverse`` or ``pingpong`` (the spellings of Aseprite's
    ``frameTags``).
    """

    name: str
    first: int
    last: int
    fps: float = DEFAULT_FPS
    direction: str = "forward"

    @property
    def frame_count(self) -> int:
        return self.last - self.first + 1

    @property
    def duration_ms(self) -> int:
        """Duration of one frame in whole milliseconds (Aseprite's unit)."""
        return max(1, int(round(1000.0 / self.fps)))

    def to_spec(self) -> str:
        rng = f"{self.first}" if self.first == self.last else f"{self.first}-{self.last}"
        fps = f"{self.fps:g}"
        suffix = "" if self.direction == "forward" else f":{self.direction}"
        return f"{self.name}:{rng}@{fps}{suffix}"


@dataclass(frozen=True)
class FrameRect:
    """Where frame ``index`` sits in the sheet (all values in sheet pixels).

    ``x, y, w, h`` is the grid cell. ``content_*`` is the rectangle that holds the frame's
    pixels (after trimming) inside the sheet; ``content_w == 0`` for a fully transparent frame.
    ``source_w, source_h`` is the size of the frame as given, and ``trim_x, trim_y`` where the
    kept pixels started in it, so ``frame[trim_y:trim_y+content_h, trim_x:trim_x+content_w]``
    equals the sheet's content rectangle.
    """

    index: int
    column: int
    row: int
    x: int
    y: int
    w: int
    h: int
    content_x: int
    content_y: int
    content_w: int
    content_h: int
    source_w: int
    source_h: int
    trim_x: int
    trim_y: int


@dataclass
class Sheet:
    """A sprite sheet: the RGBA ``image`` and the grid that describes it."""

    image: np.ndarray
    cell_w: int
    cell_h: int
    columns: int
    rows: int
    padding: tuple[int, int]
    offset: tuple[int, int]
    frames: list[FrameRect]
    animations: list[Animation] = field(default_factory=list)
    pow2: bool = False
    # Milliseconds per frame when the frames came with their own timing (an animated GIF):
    # the atlas JSON keeps it, where the animations' one fps would even it out.
    frame_ms: list[int] | None = None

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def grid_extent(self) -> tuple[int, int]:
        """Width and height the grid itself covers (without any power-of-two margin)."""
        return grid_extent(self.cell_w, self.cell_h, self.columns, self.rows, self.padding, self.offset)

    def cell(self, index: int) -> np.ndarray:
        """The pixels of grid cell ``index`` (a view into the sheet)."""
        r = self.frames[index]
        return self.image[r.y : r.y + r.h, r.x : r.x + r.w]

    def scaled(self, scale: int) -> "Sheet":
        """The same sheet enlarged by a whole ``scale`` with nearest-neighbour blocks."""
        if scale == 1:
            return self
        if scale < 1:
            raise InvalidArgumentError(f"upscale must be a whole number >= 1, got {scale}")
        img = np.repeat(np.repeat(self.image, scale, axis=0), scale, axis=1)
        s = scale
        frames = [
            FrameRect(
                f.index, f.column, f.row, f.x * s, f.y * s, f.w * s, f.h * s,
                f.content_x * s, f.content_y * s, f.content_w * s, f.content_h * s,
                f.source_w * s, f.source_h * s, f.trim_x * s, f.trim_y * s,
            )
            for f in self.frames
        ]
        padding, offset = (self.padding[0] * s, self.padding[1] * s), (self.offset[0] * s, self.offset[1] * s)
        if self.pow2:
            # 3 x 64 is no power of two: the grid's pixels go onto the next one's canvas
            ew, eh = grid_extent(self.cell_w * s, self.cell_h * s, self.columns, self.rows, padding, offset)
            canvas = np.zeros((_next_pow2(eh), _next_pow2(ew), img.shape[2]), img.dtype)
            canvas[:eh, :ew] = img[:eh, :ew]
            img = canvas
        return Sheet(img, self.cell_w * s, self.cell_h * s, self.columns, self.rows, padding, offset,
                     frames, list(self.animations), self.pow2, self.frame_ms)


def grid_extent(cell_w: int, cell_h: int, columns: int, rows: int,
                padding: tuple[int, int], offset: tuple[int, int]) -> tuple[int, int]:
    """``offset + n*cell + (n-1)*padding`` in both axes: the size Bevy's ``from_grid`` assumes."""
    w = offset[0] + columns * cell_w + max(0, columns - 1) * padding[0]
    h = offset[1] + rows * cell_h + max(0, rows - 1) * padding[1]
    return w, h


def check_layout(sheet: Sheet) -> None:
    """Raise ``InvalidArgumentError`` unless the image size matches the grid numbers.

    The size must equal the grid extent, or the next power of two of it for a ``pow2`` sheet.
    Engines compute every cell rectangle from these numbers, so a mismatch would show the
    wrong pixels in the game rather than fail loudly.
    """
    ew, eh = sheet.grid_extent()
    want = (_next_pow2(ew), _next_pow2(eh)) if sheet.pow2 else (ew, eh)
    if (sheet.width, sheet.height) != want:
        raise InvalidArgumentError(
            f"sheet is {sheet.width}x{sheet.height} px but its grid ({sheet.columns}x{sheet.rows} cells of "
            f"{sheet.cell_w}x{sheet.cell_h}, padding {sheet.padding}, offset {sheet.offset}) needs {want[0]}x{want[1]}",
            hint="give the cell size, columns and padding the sheet was made with",
        )
    if sheet.columns * sheet.rows < len(sheet.frames):
        raise InvalidArgumentError(
            f"{len(sheet.frames)} frames do not fit in {sheet.columns}x{sheet.rows} cells"
        )


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        vals = tuple(int(v) for v in value)
        if len(vals) != 2:
            raise InvalidArgumentError(f"{name} must be one integer or an (x, y) pair, got {value!r}")
        pair = vals  # type: ignore[assignment]
    if pair[0] < 0 or pair[1] < 0:
        raise InvalidArgumentError(f"{name} must be >= 0, got {pair}")
    return pair  # type: ignore[return-value]


def _check_cell(cell_size) -> tuple[int, int]:
    try:
        cw, ch = (int(v) for v in cell_size)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"cell size must be a (width, height) pair, got {cell_size!r}") from None
    if cw < 1 or ch < 1:
        raise InvalidArgumentError(f"cell size must be at least 1x1, got {cw}x{ch}")
    return cw, ch


def normalize_anchor(anchor: str) -> str:
    if not isinstance(anchor, str):
        raise InvalidArgumentError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    key = anchor.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in _ANCHOR_ALIASES:
        raise InvalidArgumentError(f"unknown anchor {anchor!r}; use one of {', '.join(ANCHORS)}")
    return _ANCHOR_ALIASES[key]


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def alpha_bbox(rgba: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the pixels with alpha > 0, or None when the image is fully transparent."""
    a = rgba[..., 3] > 0
    cols = np.flatnonzero(a.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(a.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _place(anchor: str, cell_w: int, cell_h: int, w: int, h: int) -> tuple[int, int]:
    if anchor == "bottom-center":
        return (cell_w - w) // 2, cell_h - h
    if anchor == "center":
        return (cell_w - w) // 2, (cell_h - h) // 2
    return 0, 0


def auto_grid(count: int, columns: int | None = None, rows: int | None = None) -> tuple[int, int]:
    """Columns and rows for ``count`` frames: near-square by default, or derived from one given."""
    if count < 1:
        raise InvalidArgumentError("a sheet needs at least one frame")
    if columns is not None and columns < 1 or rows is not None and rows < 1:
        raise InvalidArgumentError(f"columns and rows must be >= 1 (got columns={columns}, rows={rows})")
    if columns and rows:
        if columns * rows < count:
            raise InvalidArgumentError(
                f"{count} frames do not fit in {columns} columns x {rows} rows",
                hint="leave rows (or columns) at 0 to compute it",
            )
        return columns, rows
    if columns:
        return columns, math.ceil(count / columns)
    if rows:
        return math.ceil(count / rows), rows
    cols = math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


def build_sheet(
    frames: Sequence[np.ndarray],
    *,
    columns: int | None = None,
    rows: int | None = None,
    cell_size: tuple[int, int] | None = None,
    anchor: str = "bottom-center",
    trim: str = "auto",
    padding: int | Sequence[int] = 0,
    offset: int | Sequence[int] = 0,
    pow2: bool = False,
    animations: Sequence[Animation] | str | None = None,
) -> Sheet:
    """Assemble ``frames`` ((H, W, 4) uint8 RGBA, any sizes) into one sheet.

    - ``trim``: ``each`` crops every frame to its own visible pixels; ``union`` crops all frames
      by the union of their visible boxes (frames must share one size; keeps motion inside the
      frame, e.g. a jump); ``none`` keeps frames as given, as every mode does when no frame has
      a visible pixel; ``auto`` (default) is ``union`` for frames of one size (an animation
      drawn on one canvas: cropped each on its own, a frame whose leg sticks out moves its body
      and the animation jitters) and ``each`` for frames of different sizes.
    - ``cell_size``: (w, h) in pixels; default the largest (trimmed) frame. A frame larger than
      the cell is an error, never cropped or scaled.
    - ``anchor``: ``bottom-center``, ``center`` or ``top-left``: where a smaller frame sits in its cell.
    - ``padding``: pixels between cells; ``offset``: pixels before the first cell (int or (x, y)).
    - ``pow2``: enlarge the sheet (transparent, right/bottom) to power-of-two sides.
    - ``animations``: a list of ``Animation`` or a spec string (see ``parse_animations``),
      checked against the frame count.
    """
    if frames is None or isinstance(frames, (str, bytes)) or len(frames) == 0:
        raise InvalidArgumentError("no frames to put on the sheet", hint="pass at least one image")
    trim = trim.lower() if isinstance(trim, str) else trim
    if trim not in TRIM_MODES:
        raise InvalidArgumentError(f"unknown trim mode {trim!r}; use one of {', '.join(TRIM_MODES)}")
    anchor = normalize_anchor(anchor)
    pad = _pair(padding, "padding")
    off = _pair(offset, "offset")
    imgs = [as_rgba(f, source=f"frame {i}") for i, f in enumerate(frames)]
    if trim == "auto":
        trim = "union" if len({im.shape for im in imgs}) == 1 else "each"

    # (trim_x, trim_y, w, h) of the kept part of every frame
    boxes: list[tuple[int, int, int, int]] = []
    if trim == "none":
        boxes = [(0, 0, im.shape[1], im.shape[0]) for im in imgs]
    elif trim == "each":
        for im in imgs:
            bb = alpha_bbox(im)
            boxes.append(bb if bb is not None else (0, 0, 0, 0))
    else:
        shape = imgs[0].shape
        for i, im in enumerate(imgs):
            if im.shape != shape:
                raise InvalidArgumentError(
                    f"trim='union' needs frames of one size; frame {i} is {im.shape[1]}x{im.shape[0]}, "
                    f"frame 0 is {shape[1]}x{shape[0]}",
                    hint="use trim='each' for frames of different sizes",
                )
        visible = np.zeros(shape[:2], dtype=bool)
        for im in imgs:
            visible |= im[..., 3] > 0
        cols = np.flatnonzero(visible.any(axis=0))
        if cols.size == 0:
            ub = (0, 0, 0, 0)
        else:
            rws = np.flatnonzero(visible.any(axis=1))
            ub = (int(cols[0]), int(rws[0]), int(cols[-1] - cols[0] + 1), int(rws[-1] - rws[0] + 1))
        boxes = [ub] * len(imgs)

    max_w = max(b[2] for b in boxes)
    max_h = max(b[3] for b in boxes)
    if max_w == 0:
        # no frame has a visible pixel: trimmed, every cell would shrink to nothing, so the
        # frames are laid out whole (blank cells of their own size, as trim='none' does)
        boxes = [(0, 0, im.shape[1], im.shape[0]) for im in imgs]
        max_w = max(b[2] for b in boxes)
        max_h = max(b[3] for b in boxes)
    if cell_size is not None:
        cw, ch = _check_cell(cell_size)
        for i, b in enumerate(boxes):
            if b[2] > cw or b[3] > ch:
                raise InvalidArgumentError(
                    f"frame {i} is {b[2]}x{b[3]} px (after trim={trim}) and does not fit the {cw}x{ch} cell",
                    hint="leave the cell size empty to use the largest frame, or trim the frames",
                )
    else:
        cw, ch = max(1, max_w), max(1, max_h)

    ncols, nrows = auto_grid(len(imgs), columns or None, rows or None)
    ew, eh = grid_extent(cw, ch, ncols, nrows, pad, off)
    sw, sh = (_next_pow2(ew), _next_pow2(eh)) if pow2 else (ew, eh)
    if sw * sh > MAX_PIXELS or max(sw, sh) > MAX_SIDE:
        raise InvalidArgumentError(
            f"the sheet would be {sw}x{sh} pixels ({len(imgs)} frames in {ncols}x{nrows} cells of {cw}x{ch}), "
            f"more than {MAX_SIDE} on a side or 16384x16384 in all (the largest texture a GPU loads)",
            hint="split the frames over several sheets, give more rows (or columns), or trim them (trim='each')",
        )
    sheet = np.zeros((sh, sw, 4), dtype=np.uint8)
    rects: list[FrameRect] = []
    for i, (im, (tx, ty, w, h)) in enumerate(zip(imgs, boxes)):
        col, row = i % ncols, i // ncols
        x = off[0] + col * (cw + pad[0])
        y = off[1] + row * (ch + pad[1])
        px, py = _place(anchor, cw, ch, w, h)
        if w and h:
            sheet[y + py : y + py + h, x + px : x + px + w] = im[ty : ty + h, tx : tx + w]
        rects.append(FrameRect(i, col, row, x, y, cw, ch, x + px, y + py, w, h,
                               int(im.shape[1]), int(im.shape[0]), tx, ty))

    anims = as_animations(animations, len(imgs))
    return Sheet(sheet, cw, ch, ncols, nrows, pad, off, rects, anims, pow2)


# --- animations -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)\s*:\s*(?P<first>\d+)(?:\s*-\s*(?P<last>\d+))?"
    r"(?:\s*@\s*(?P<fps>\d+(?:\.\d+)?))?(?:\s*:\s*(?P<dir>[A-Za-z\-]+))?$"
)


def parse_animations(spec: str | None, frame_count: int | None = None) -> list[Animation]:
    """Parse ``"idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong"`` into ``Animation`` objects.

    Each comma- or semicolon-separated token is ``name:first-last@fps[:direction]``; ``-last``
    (single frame) and ``@fps`` (default 10) are optional; direction is forward (default),
    reverse or pingpong. With ``frame_count`` the ranges are checked against it. Errors name
    the offending token.
    """
    if spec is None or not spec.strip():
        return []
    if not re.sub(r"[,;\s]", "", spec):
        # only separators: a spec whose names were lost (a template variable left empty), not
        # "no animations"
        raise InvalidArgumentError(f"animation spec {spec!r} holds no animation",
                                   hint="example: idle:0-3@8, walk:4-11@12; or leave it empty for none")
    out: list[Animation] = []
    for raw in re.split(r"[,;\n]", spec):
        token = raw.strip()
        if not token:
            continue
        m = _TOKEN.match(token)
        if not m:
            raise InvalidArgumentError(
                f"animation spec token {token!r} is not name:first-last@fps[:direction]",
                hint="example: idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong",
            )
        first = int(m["first"])
        last = int(m["last"]) if m["last"] is not None else first
        fps = float(m["fps"]) if m["fps"] is not None else DEFAULT_FPS
        direction = (m["dir"] or "forward").lower()
        if direction in ("ping-pong", "ping_pong"):
            direction = "pingpong"
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(
                f"animation {token!r}: unknown direction {m['dir']!r}; use forward, reverse or pingpong"
            )
        if last < first:
            raise InvalidArgumentError(
                f"animation {token!r}: range {first}-{last} runs backwards",
                hint=f"write {m['name']}:{last}-{first}@{fps:g}:reverse to play it backwards",
            )
        if fps <= 0 or fps > 1000:
            raise InvalidArgumentError(f"animation {token!r}: fps must be in (0, 1000], got {fps:g}")
        out.append(Animation(m["name"], first, last, fps, direction))
    validate_animations(out, frame_count)
    return out


def validate_animations(anims: Sequence[Animation], frame_count: int | None) -> None:
    """Check names are unique and ranges fall inside ``0..frame_count-1``."""
    seen: set[str] = set()
    for a in anims:
        if a.name in seen:
            raise InvalidArgumentError(f"animation {a.name!r} is defined twice")
        seen.add(a.name)
        if a.direction not in DIRECTIONS:
            raise InvalidArgumentError(f"animation {a.name!r}: unknown direction {a.direction!r}")
        if a.first < 0 or a.last < a.first:
            raise InvalidArgumentError(f"animation {a.to_spec()!r}: invalid range {a.first}-{a.last}")
        if frame_count is not None and a.last >= frame_count:
            raise InvalidArgumentError(
                f"animation {a.to_spec()!r} uses frame {a.last} but there {'is' if frame_count == 1 else 'are'} only "
                f"{frame_count} frame{'' if frame_count == 1 else 's'} (0-{frame_count - 1})"
            )


def as_animations(animations: Sequence[Animation] | str | None, frame_count: int) -> list[Animation]:
    """Animations given as a spec string or a list of ``Animation``, checked against the frame count."""
    if animations is None or isinstance(animations, str):
        anims = parse_animations(animations, frame_count)
    elif isinstance(animations, (list, tuple)) and all(isinstance(a, Animation) for a in animations):
        anims = list(animations)
    else:
        raise InvalidArgumentError(
            f"animations must be a spec string or a list of Animation, got {type(animations).__name__}",
            hint="example: idle:0-3@8, walk:4-11@12",
        )
    validate_animations(anims, frame_count)
    return anims


def format_animations(anims: Sequence[Animation]) -> str:
    return ", ".join(a.to_spec() for a in anims)


def timed_animation(name: str, durations_ms: Sequence[int]) -> Animation:
    """One animation over all frames of a file that carries its own timing (an animated GIF):
    named after the file, at the fps of its typical frame."""
    clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "anim"
    if not re.match(r"[A-Za-z_]", clean):
        clean = "anim_" + clean
    ms = float(median(durations_ms))
    return Animation(clean, 0, len(durations_ms) - 1, round(1000.0 / ms, 3))


def frame_durations(frame_count: int, anims: Sequence[Animation], default_ms: int = 100) -> list[int]:
    """Milliseconds per frame: from the first animation containing the frame, else ``default_ms``."""
    out = [default_ms] * frame_count
    done = [False] * frame_count
    for a in anims:
        for i in range(a.first, min(a.last, frame_count - 1) + 1):
            if not done[i]:
                out[i] = a.duration_ms
                done[i] = True
    return out


def duration_conflicts(frame_count: int, anims: Sequence[Animation], default_ms: int = 100) -> list[str]:
    """Warnings for frames that animations with different frame rates share: an Aseprite atlas
    JSON holds one duration (ms) per frame, and :func:`frame_durations` gives a shared frame
    the first animation's, so every later animation over it plays those frames at the first
    one's rate in a loader that times frames from the JSON. Each warning names both animations,
    their fps and the frames. Empty when every shared frame keeps every animation's duration
    (rates that round to the same whole milliseconds agree)."""
    written = frame_durations(frame_count, anims, default_ms)
    owner: list[Animation | None] = [None] * frame_count
    for a in anims:
        for i in range(a.first, min(a.last, frame_count - 1) + 1):
            if owner[i] is None:
                owner[i] = a
    out = []
    for a in anims:
        lost: dict[str, list[int]] = {}
        for i in range(a.first, min(a.last, frame_count - 1) + 1):
            first = owner[i]
            if first is not None and first is not a and written[i] != a.duration_ms:
                lost.setdefault(first.name, []).append(i)
        for name, idx in lost.items():
            first = next(b for b in anims if b.name == name)
            them = "them" if len(idx) > 1 else "it"
            out.append(
                f"animation {a.name!r} ({a.fps:g} fps) shares frame{'s' if len(idx) > 1 else ''} {_ranges(idx)} "
                f"with {name!r} ({first.fps:g} fps): the atlas JSON has one duration per frame and gives {them} "
                f"the {first.duration_ms} ms of {name!r}, so {a.name!r} plays {them} at {first.fps:g} fps, not "
                f"{a.fps:g}, in a loader that times frames from the JSON; give animations that share frames one "
                "fps, or give each its own frames")
    return out


def _ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (frame numbers as the animation spec writes them)."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in list(indices[1:]) + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


# --- the grid recorded in a sheet's PNG ---------------------------------------------------------

#: PNG text keyword under which a sheet written here records its grid. Sprites that touch leave
#: no gutter for split_sheet to find, and a trailing empty frame cannot be told from filler:
#: read back, the record cuts the sheet exactly as it was laid out.
LAYOUT_KEY = "dgx-pixels:sheet"
#: Longest record read (a few hundred characters are written).
LAYOUT_MAX_CHARS = 4096


@dataclass(frozen=True)
class RecordedLayout:
    """The grid a sheet's PNG recorded: pixels but the counts; ``frames`` <= columns * rows."""

    cell_w: int
    cell_h: int
    columns: int
    rows: int
    padding: tuple[int, int]
    offset: tuple[int, int]
    frames: int


def layout_text(sheet: Sheet) -> str:
    """The sheet's grid as the JSON its PNG records under LAYOUT_KEY."""
    return json.dumps({"format": 1, "cell": [sheet.cell_w, sheet.cell_h], "columns": sheet.columns,
                       "rows": sheet.rows, "padding": list(sheet.padding), "offset": list(sheet.offset),
                       "frames": sheet.frame_count}, separators=(",", ":"))


#: The key under which the sheet nodes send their grid with their preview (the job's history
#: keeps it): a client deploying the downloaded PNG reads the grid the node used.
SHEET_UI_KEY = "dgx_pixels_sheet"


def layout_record(sheet: Sheet) -> dict:
    """The sheet's grid (as :func:`layout_text` writes it) and its animations, as one JSON object."""
    return {"layout": json.loads(layout_text(sheet)), "animations": format_animations(sheet.animations)}


def recorded_layout(text: dict[str, str], width: int, height: int) -> tuple[RecordedLayout | None, str | None]:
    """The grid recorded in a PNG's ``text`` chunks (see :func:`layout_text`), for a sheet of
    ``width`` x ``height`` px: ``(layout, None)``; ``(None, None)`` when there is no record;
    ``(None, why)`` when there is one that cannot be used (damaged, or a grid that does not
    fit the image: the sheet was cropped or scaled since)."""
    raw = text.get(LAYOUT_KEY)
    if raw is None:
        return None, None
    if len(raw) > LAYOUT_MAX_CHARS:
        return None, f"its {LAYOUT_KEY} record is {len(raw)} characters long, more than a grid needs"
    try:
        doc = loads_json(raw)
    except ValueError:  # also nested past reading
        return None, f"its {LAYOUT_KEY} record is not JSON"

    def count(v, least: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and least <= v <= MAX_SIDE

    def pair(v, least: int) -> bool:
        return isinstance(v, list) and len(v) == 2 and all(count(x, least) for x in v)

    if not (isinstance(doc, dict) and doc.get("format") == 1 and pair(doc.get("cell"), 1)
            and count(doc.get("columns"), 1) and count(doc.get("rows"), 1) and pair(doc.get("padding"), 0)
            and pair(doc.get("offset"), 0) and count(doc.get("frames"), 1)
            and doc["frames"] <= doc["columns"] * doc["rows"]):
        return None, f"its {LAYOUT_KEY} record is not a grid this version reads"
    layout = RecordedLayout(doc["cell"][0], doc["cell"][1], doc["columns"], doc["rows"], tuple(doc["padding"]),
                            tuple(doc["offset"]), doc["frames"])
    ew, eh = grid_extent(layout.cell_w, layout.cell_h, layout.columns, layout.rows, layout.padding, layout.offset)
    if ew > width or eh > height:
        return None, (f"the grid it records ({layout.columns}x{layout.rows} cells of {layout.cell_w}x{layout.cell_h}, "
                      f"{ew}x{eh} px) does not fit its {width}x{height} px: the sheet was changed since")
    return layout, None


# --- split ------------------------------------------------------------------------------------

@dataclass
class SplitResult:
    """Frames cut out of a sheet, and the grid used (``detected`` when it was found automatically)."""

    frames: list[np.ndarray]
    cell_w: int
    cell_h: int
    columns: int
    rows: int
    padding: tuple[int, int]
    offset: tuple[int, int]
    detected: bool


def _background_mask(img: np.ndarray) -> np.ndarray:
    """True where a pixel is background: alpha 0, or (opaque sheets) the colour that fills whole
    gutter rows/columns (e.g. magenta between the sprites)."""
    alpha = img[..., 3]
    if (alpha == 0).any():
        return alpha == 0
    packed = img.view(np.uint32)[..., 0]
    uniform_cols = (packed == packed[:1, :]).all(axis=0)
    uniform_rows = (packed == packed[:, :1]).all(axis=1)
    colors = np.concatenate([packed[0, uniform_cols], packed[uniform_rows, 0]])
    if colors.size == 0:
        return np.zeros(img.shape[:2], dtype=bool)
    values, counts = np.unique(colors, return_counts=True)
    return packed == values[np.argmax(counts)]


def _pow2_factor(n: int) -> int:
    return min(n & -n, 64)


def _axis_candidates(occupied: np.ndarray, length: int, given_cell: int | None,
                     given_count: int | None, given_pad: int | None) -> list[tuple[int, int, int]]:
    """Valid (cell, count, pad) along one axis, best first.

    A candidate is valid when every run of occupied pixels lies inside one cell (none crosses a
    cell boundary or a gutter) and every cell column holds something.
    """
    idx = np.flatnonzero(np.diff(np.concatenate(([0], occupied.astype(np.int8), [0]))))
    starts = idx[0::2].astype(np.int64)
    lengths = (idx[1::2] - idx[0::2]).astype(np.int64)  # runs [start, start + length)
    widest = int(lengths.max()) if lengths.size else 1
    pads = [given_pad] if given_pad is not None else list(range(0, 17))
    found: list[tuple[int, int, int]] = []
    counts = [given_count] if given_count else range(1, length // max(1, widest) + 1)
    for n in counts:
        for p in pads:
            span = length - (n - 1) * p
            if span <= 0 or span % n:
                continue
            c = span // n
            if given_cell and c != given_cell:
                continue
            if c < widest:
                continue
            stride = c + p
            k = starts // stride
            # every run must end inside the cell it starts in (so none touches a gutter or the
            # next cell), and the cells must exist
            if (k >= n).any() or ((starts - k * stride) + lengths > c).any():
                continue
            if not (given_count or given_cell) and np.unique(k).size != n:
                continue  # an empty column of cells: the grid is finer than the sprites
            found.append((c, n, p))
    # Most cells first; then cell sizes with more factors of two (32 beats 33 or 31, as sheets
    # are drawn on round sizes); then the smallest padding.
    found.sort(key=lambda t: (-t[1], -_pow2_factor(t[0]), t[2]))
    return found


# Widest margin (px) looked for before the first cell when the offset is not given.
MAX_DETECTED_MARGIN = 16


def _runs_cut(occupied: np.ndarray, cell: int) -> bool:
    """Whether cells of ``cell`` px side by side from the axis's first pixel cut a run of
    occupied pixels (one that starts in a cell and goes on past its end)."""
    idx = np.flatnonzero(np.diff(np.concatenate(([0], occupied.astype(np.int8), [0]))))
    starts, ends = idx[0::2].astype(np.int64), idx[1::2].astype(np.int64)
    return bool((starts % cell + (ends - starts) > cell).any())


def _axis_grids(occupied: np.ndarray, given_count: int | None, given_pad: int | None,
                find_margin: bool, keyed: bool, prefer_pad: int | None = None,
                given_cell: int | None = None) -> list[tuple[int, int, int, int]]:
    """Valid (cell, count, pad, margin) along one axis (all in pixels but count), best first.

    ``find_margin``: also try a margin before the first cell (up to the first sprite pixel and
    ``MAX_DETECTED_MARGIN``), with nothing or as much again after the last cell. Ranking:
    most cells; then sprites at one place in every cell (a wrong stride shifts them a little
    more in each cell, so their spread across cells grows); for a colour-keyed sheet (no
    transparency), then the fewest key-colour lines shared by every cell at its edges (those
    are gutters: a frame must not carry them). Where a grid without margin ranks as well so
    far, only it and grids whose margin is as wide as their gutters (the usual "margin =
    spacing" border) stay: a transparent sprite centred in its cell looks the same as a
    margin and wider gutters around a smaller cell, so such a margin counts only when the
    ranking above shows it. Then, with ``prefer_pad`` (the padding found along the other
    axis), that padding: sheets are drawn with one padding both ways, and a sprite whose top
    row is empty in every cell of a row leaves a gutter as wide as its cell's padding plus one,
    which a cell one pixel larger with a smaller padding fits as well. Then the cell size with
    the most factors of two, the smallest padding, the smallest margin.
    """
    length = int(occupied.size)
    hits = np.flatnonzero(occupied)
    first = int(hits[0]) if hits.size else 0
    margins = range(0, min(first, MAX_DETECTED_MARGIN) + 1) if find_margin else (0,)
    idx = np.flatnonzero(np.diff(np.concatenate(([0], occupied.astype(np.int8), [0]))))
    starts, ends = idx[0::2].astype(np.int64), idx[1::2].astype(np.int64)
    ranked: dict[tuple[int, int, int, int], tuple] = {}
    for m in margins:
        for t in sorted({0, m}):
            if m + t >= length or (t and occupied[length - t:].any()):
                continue
            for c, n, p in _axis_candidates(occupied[m:length - t], length - m - t, given_cell, given_count, given_pad):
                k = (starts - m) // (c + p)
                rel_s, rel_e = starts - m - k * (c + p), ends - m - k * (c + p)
                spread = int(rel_e.max() - rel_s.min()) if starts.size else 0
                edge = int(rel_s.min() + c - rel_e.max()) if keyed and starts.size else 0
                ranked.setdefault((c, n, p, m), (-n, spread, edge))
    # (-n, spread, edge) prefixes that a grid without margin reaches
    plain = {key for (_c, _n, _p, m), key in ranked.items() if m == 0}

    def rank(grid: tuple[int, int, int, int]) -> tuple:
        c, _n, p, m = grid
        unshown = ranked[grid] in plain and m > 0 and m != p
        other = prefer_pad is not None and p != prefer_pad
        return (*ranked[grid], unshown, other, -_pow2_factor(c), p, m)

    return sorted(ranked, key=rank)


def split_sheet(
    image: np.ndarray,
    *,
    cell_size: tuple[int, int] | None = None,
    columns: int | None = None,
    rows: int | None = None,
    padding: int | Sequence[int] | None = None,
    offset: int | Sequence[int] | None = 0,
    count: int | None = None,
    keep_empty: bool = False,
) -> SplitResult:
    """Cut a sheet back into frames (each exactly one cell, pixels untouched).

    Give the grid (``cell_size`` and/or ``columns``/``rows``, ``padding``, ``offset``, all in
    pixels but the counts) or let it be detected from transparent gutters between the sprites
    (for opaque sheets: gutters of the colour that fills whole rows or columns). ``offset=None``
    also detects a margin before the first cell. Given ``columns``/``rows`` without
    ``padding`` on a sheet with no gutters, cells that touch (padding 0) are taken when they
    divide the sheet exactly. ``count`` keeps only the first frames; otherwise trailing empty
    cells of the last row are dropped unless ``keep_empty``. Raises ``NoGridFoundError`` when no
    grid fits, or when detection finds nothing finer than the whole sheet as one cell.
    """
    img = as_rgba(image, source="sheet")
    H, W = img.shape[:2]
    find_margin = offset is None
    off = (0, 0) if find_margin else _pair(offset, "offset")
    pad = _pair(padding, "padding") if padding is not None else None
    if off[0] >= W or off[1] >= H:
        raise InvalidArgumentError(
            f"offset {off[0]},{off[1]} leaves nothing of the {W}x{H} sheet",
            hint=f"the offset must be smaller than the sheet: at most {W - 1},{H - 1}",
        )
    if cell_size is not None:
        _check_cell(cell_size)
    for what, n in (("columns", columns), ("rows", rows)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise InvalidArgumentError(f"{what} must be a whole number >= 1 (0 or None: detect), got {n!r}")
    body = img[off[1]:, off[0]:]
    bh, bw = body.shape[:2]
    detected = False
    given_w = int(cell_size[0]) if cell_size else None
    given_h = int(cell_size[1]) if cell_size else None

    keyed = not (body[..., 3] == 0).any()

    def solve(axis_len, cell, n, p, occupied, name, prefer_pad=None):
        """(cell, count, padding, margin) along one axis, in pixels but the count; ``prefer_pad``:
        among detected grids that fit the sprites equally well, the one with this padding."""
        nonlocal detected
        what = "columns" if name == "width" else "rows"
        if n and n > axis_len:
            raise InvalidArgumentError(f"{n} {what} do not fit the sheet's {name} of {axis_len} px (after the offset)",
                                       hint=f"give the number of {what} the sheet has, or its cell size")
        if cell and n:
            return cell, n, (p if p is not None else 0), 0
        if cell and p is None and _runs_cut(occupied, cell):
            # the cell size given, its gutters and margin not, and cells side by side from the
            # first pixel cut sprites: the gutters and margin are found as they are without it
            # (a sheet with padding 2 and a margin of 2 was cut at padding 0: frames split). Not
            # for pixels past the last whole cell: those are said to be lost, not fitted by
            # shifting every cell.
            cands = _axis_grids(occupied, None, None, find_margin, keyed, prefer_pad, given_cell=cell)
            if cands:
                detected = True
                return cands[0]
        if cell:
            pp = p or 0
            nn = (axis_len + pp) // (cell + pp)
            if nn < 1:
                raise InvalidArgumentError(f"cell {name} {cell} is larger than the sheet ({axis_len} px)")
            return cell, nn, pp, 0
        if n and p is not None:
            span = axis_len - (n - 1) * p
            if span <= 0 or span % n:
                raise InvalidArgumentError(
                    f"the sheet's {name} ({axis_len} px after the offset) does not divide into {n} cells with padding {p}"
                )
            return span // n, n, p, 0
        cands = _axis_grids(occupied, n, p, find_margin, keyed, prefer_pad)
        if cands:
            detected = True
            return cands[0]
        if n and axis_len % n == 0:
            # sprites that touch leave no gutter to find: the count given, cells side by side
            return axis_len // n, n, 0, 0
        if n:
            raise NoGridFoundError(
                f"the sheet's {name} ({axis_len} px) does not split into {n} {what} of equal size, and no padding "
                f"between them keeps every sprite inside one cell",
                hint=f"check the number of {what}, or give the sheet's --padding and --offset (or its --cell size)",
            )
        raise NoGridFoundError(
            f"no uniform grid found along the sheet's {name}: sprites are not separated by empty gutters",
            hint="give the cell size (e.g. 32x32) or the number of columns and rows",
        )

    bg = _background_mask(body)
    occ_x = (~bg).any(axis=0)
    occ_y = (~bg).any(axis=1)
    cw, ncols, px, mx = solve(bw, given_w, columns, pad[0] if pad else None, occ_x, "width")
    ch, nrows, py, my = solve(bh, given_h, rows, pad[1] if pad else None, occ_y, "height")
    if pad is None and cell_size is None and px != py:
        # Both paddings detected, and they differ: where the other axis has a grid with the same
        # padding that fits its sprites as well, take it. A sheet of 10x15 cells with padding 4
        # whose sprites all leave their top row empty was read as 10x16 cells with padding 4,1
        # (16 has more factors of two than 15), and the frames came out shifted by a pixel.
        ch2, nrows2, py2, my2 = solve(bh, given_h, rows, None, occ_y, "height", prefer_pad=px)
        if py2 == px:
            ch, nrows, py, my = ch2, nrows2, py2, my2
        else:
            cw2, ncols2, px2, mx2 = solve(bw, given_w, columns, None, occ_x, "width", prefer_pad=py)
            if px2 == py:
                cw, ncols, px, mx = cw2, ncols2, px2, mx2
    if detected and (ncols, nrows) == (1, 1) and not (columns or rows or cell_size):
        # the whole sheet as its one frame is what a sheet without gutters gives: no split at all
        raise NoGridFoundError(
            f"no frame grid found in the {W}x{H} sheet: nothing separates its sprites (no empty gutters)",
            hint="give the number of columns and rows (--columns/--rows) or the cell size (--cell)",
        )
    if mx or my:
        off = (off[0] + mx, off[1] + my)
        body, bg = body[my:, mx:], bg[my:, mx:]
        bh, bw = body.shape[:2]
    if ncols * cw + (ncols - 1) * px > bw or nrows * ch + (nrows - 1) * py > bh:
        raise InvalidArgumentError(
            f"a grid of {ncols}x{nrows} cells of {cw}x{ch} with padding ({px}, {py}) does not fit the {W}x{H} sheet"
        )
    gw, gh = ncols * cw + (ncols - 1) * px, nrows * ch + (nrows - 1) * py
    right, below = (~bg)[:, gw:].any(), (~bg)[gh:, :].any()
    if right or below:
        # a grid that leaves sprite pixels outside every cell is not the sheet's grid
        lost = " and ".join(part for part in (
            f"{bw - gw} column{'s' if bw - gw != 1 else ''} at the right" if right else "",
            f"{bh - gh} row{'s' if bh - gh != 1 else ''} at the bottom" if below else "") if part)
        raise InvalidArgumentError(
            f"the sheet is {W}x{H} px but its grid ({ncols}x{nrows} cells of {cw}x{ch}, padding ({px}, {py}), "
            f"offset ({off[0]}, {off[1]})) covers {off[0] + gw}x{off[1] + gh}: the sprite pixels in the {lost} "
            "would be lost",
            hint="give the cell size, padding and offset the sheet was made with, or crop the image first")
    frames = []
    for r in range(nrows):
        for c in range(ncols):
            x, y = off[0] + c * (cw + px), off[1] + r * (ch + py)
            frames.append(img[y : y + ch, x : x + cw].copy())
    if count is not None:
        if count < 1 or count > len(frames):
            raise InvalidArgumentError(f"count must be 1..{len(frames)} for this grid, got {count}")
        frames = frames[:count]
    elif not keep_empty:
        while len(frames) > 1 and not (frames[-1][..., 3] > 0).any() and len(frames) > (nrows - 1) * ncols:
            frames.pop()
    return SplitResult(frames, cw, ch, ncols, nrows, (px, py), off, detected)


def split_like(sheet: Sheet) -> list[np.ndarray]:
    """Cells of a sheet built here, exactly as laid out (one per frame)."""
    return [sheet.cell(i).copy() for i in range(len(sheet.frames))]


def sheet_from_image(
    image: np.ndarray,
    *,
    cell_size: tuple[int, int] | None = None,
    columns: int | None = None,
    rows: int | None = None,
    padding: int | Sequence[int] | None = None,
    offset: int | Sequence[int] = 0,
    count: int | None = None,
    animations: Sequence[Animation] | str | None = None,
) -> Sheet:
    """Describe an existing sheet image as a ``Sheet`` without moving any pixel."""
    img = as_rgba(image, source="sheet")
    split = split_sheet(img, cell_size=cell_size, columns=columns, rows=rows, padding=padding,
                        offset=offset, count=count)
    rects = []
    for i in range(len(split.frames)):
        col, row = i % split.columns, i // split.columns
        x = split.offset[0] + col * (split.cell_w + split.padding[0])
        y = split.offset[1] + row * (split.cell_h + split.padding[1])
        rects.append(FrameRect(i, col, row, x, y, split.cell_w, split.cell_h, x, y, split.cell_w,
                               split.cell_h, split.cell_w, split.cell_h, 0, 0))
    ew, eh = grid_extent(split.cell_w, split.cell_h, split.columns, split.rows, split.padding, split.offset)
    pow2 = (img.shape[1], img.shape[0]) != (ew, eh) and (img.shape[1], img.shape[0]) == (_next_pow2(ew), _next_pow2(eh))
    if (img.shape[1], img.shape[0]) != (ew, eh) and not pow2:
        # trailing pixels the grid does not cover (background only, split_sheet made sure): cut
        # them so the layout numbers are exact
        img = img[:eh, :ew].copy()
    anims = as_animations(animations, len(rects))
    return Sheet(img, split.cell_w, split.cell_h, split.columns, split.rows, split.padding, split.offset,
                 rects, anims, pow2)


def sheet_from_layout(image: np.ndarray, layout: RecordedLayout,
                      animations: Sequence[Animation] | str | None = None) -> Sheet:
    """Describe a sheet image on the grid it recorded (see :func:`recorded_layout`), its frames
    and no more: the recorded count, not the trailing empty cells."""
    return sheet_from_image(image, cell_size=(layout.cell_w, layout.cell_h), columns=layout.columns,
                            rows=layout.rows, padding=layout.padding, offset=layout.offset, count=layout.frames,
                            animations=animations)


# --- preview ----------------------------------------------------------------------------------

def sheet_preview(
    image: np.ndarray,
    *,
    scale: int = 4,
    grid: Sheet | None = None,
    grid_color: tuple[int, int, int, int] = (255, 0, 255, 255),
    checker: bool = True,
    max_pixels: int | None = PREVIEW_MAX_PIXELS,
) -> np.ndarray:
    """Nearest-upscaled view of a sheet for a UI: transparency shown as a checkerboard and,
    with ``grid``, a 1-px outline around every cell. Returns (H*s, W*s, 4) uint8 where s is
    ``scale``, lowered so the preview stays within ``max_pixels`` pixels: a preview of a large
    sheet must not take gigabytes (or seconds). A sheet larger than that on its own is shown
    by every n-th pixel."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise InvalidArgumentError(f"preview scale must be a whole number >= 1, got {scale!r}")
    img = as_rgba(image, source="sheet")
    step = 1
    if max_pixels is not None:
        area = img.shape[0] * img.shape[1]
        scale = max(1, min(int(scale), math.isqrt(max(1, int(max_pixels) // area))))
        if area > max_pixels:
            step = math.ceil(math.sqrt(area / max(1, int(max_pixels))))
            while math.ceil(img.shape[0] / step) * math.ceil(img.shape[1] / step) > max_pixels:
                step += 1
            img = img[::step, ::step]
    big = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1) if scale > 1 else img
    out = big.copy()
    if checker:
        h, w = big.shape[:2]
        tile = max(4, scale * 2)
        # broadcast rows against columns: no (h, w) index arrays
        board = np.where(((np.arange(h)[:, None] // tile) + (np.arange(w)[None, :] // tile)) % 2 == 0,
                         200, 150).astype(np.float32)
        a = big[..., 3:4].astype(np.float32) / 255.0
        rgb = big[..., :3].astype(np.float32) * a + board[..., None] * (1.0 - a)
        out[..., :3] = np.round(rgb).astype(np.uint8)
        out[..., 3] = 255
    if grid is not None:
        color = np.array(grid_color, dtype=np.uint8)
        h, w = out.shape[:2]
        for f in grid.frames:
            x0, y0 = min(w - 1, f.x * scale // step), min(h - 1, f.y * scale // step)
            x1 = min(w - 1, max(x0, (f.x + f.w) * scale // step - 1))
            y1 = min(h - 1, max(y0, (f.y + f.h) * scale // step - 1))
            out[y0, x0 : x1 + 1] = color
            out[y1, x0 : x1 + 1] = color
            out[y0 : y1 + 1, x0] = color
            out[y0 : y1 + 1, x1] = color
    return out


def frames_from_batch(batch: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A (B, H, W, C) array or a list of images -> list of (H, W, 4) uint8 RGBA."""
    if isinstance(batch, np.ndarray) and batch.ndim == 4:
        return [as_rgba(batch[i], source=f"frame {i}") for i in range(batch.shape[0])]
    if isinstance(batch, np.ndarray) and batch.ndim in (2, 3):
        return [as_rgba(batch, source="frame 0")]
    out = [as_rgba(f, source=f"frame {i}") for i, f in enumerate(batch)]
    if not out:
        raise InputImageError("no frames given (empty batch)")
    return out
