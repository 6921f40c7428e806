"""Reading and writing palette files: .hex, .gpl (GIMP), .pal (JASC or RIFF) and palette PNGs.

Formats, by extension (case-insensitive):

* ``.hex`` (Lospec): one ``rrggbb`` per line, with or without '#' (also CSS's ``rgb``, and
  ``rrggbbaa`` when opaque). Blank lines and comment lines (starting with ';', '//', or '#'
  followed by more than hex digits) are skipped; a line of hex digits of another length is
  an error.
* ``.gpl`` (GIMP): first line ``GIMP Palette``; ``Name:`` / ``Columns:`` lines and '#' comments
  are skipped; each other line is ``R G B [name]`` with integers 0..255 (``R G B A [name]``,
  opaque, after GIMP 3's ``Channels: RGBA``).
* ``.pal``: JASC (``JASC-PAL`` / ``0100`` / count / ``R G B`` lines) or Microsoft RIFF ``PAL``
  (binary). Written as JASC.
* ``.png`` (or any image Pillow reads): one pixel per colour, or uniform swatches of any size.
  A strip of equal squares (one pixel, or g x g pixels, per colour, at most 256 of them) gives
  one colour per square in order, repeats included, so a written palette reads back index
  for index. Otherwise the image is cut at every column and row where some pixel
  changes colour; each resulting cell that is one opaque colour gives a colour, in reading
  order, and repeated colours are kept once (first occurrence). Transparent cells are skipped.

Any other non-blank line is an error naming the file and the line number: a palette that
silently lost a colour would quantise every image wrongly. A file with no colours is an error.
Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from .errors import PaletteError
from .imageio import atomic_write_bytes
from .palette import Palette, dedupe_colors

READ_FORMATS = (".hex", ".gpl", ".pal", ".png", ".gif", ".bmp", ".webp")
WRITE_FORMATS = (".hex", ".gpl", ".pal", ".png")
MAX_COLORS = 256

_HEX_LINE = re.compile(r"#?([0-9a-fA-F]+)")


def _err(path: Path, line: int | None, what: str) -> PaletteError:
    where = f"{path}" if line is None else f"{path}, line {line}"
    # the file is the user's own: say what to fix there, not which other palettes exist
    return PaletteError(f"{where}: {what}",
                        hint=f"fix or remove that line of {path.name}" if line is not None
                        else "check that the file is a palette in the format its extension names")


def _finish(colors: list[tuple[int, int, int]], path: Path, kind: str) -> np.ndarray:
    if not colors:
        raise PaletteError(f"{path}: no colours found in this {kind} file", hint="a palette needs at least one colour")
    arr = np.array(colors, dtype=np.uint8)
    if len(arr) > MAX_COLORS:
        raise PaletteError(f"{path}: {len(arr)} colours; palettes are limited to {MAX_COLORS}")
    return arr


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PaletteError(f"palette file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise PaletteError(f"{path} is a folder, not a palette file") from None
    except OSError as exc:
        raise PaletteError(f"cannot read palette file {path}: {exc.strerror or exc}") from None
    return raw.decode("utf-8-sig", errors="replace")


def _int_line(s: str, path: Path, no: int, n: int, form: str) -> tuple[int, ...]:
    """The ``n`` integers 0..255 a text line starts with (anything after them is a name)."""
    try:
        vals = tuple(int(v) for v in s.split(None, n)[:n])
    except ValueError:
        vals = ()
    if len(vals) != n or any(not 0 <= v <= 255 for v in vals):
        raise _err(path, no, f"expected {form} with integers 0..255, got {s[:40]!r}")
    return vals


def _rgb_line(s: str, path: Path, no: int, form: str) -> tuple[int, int, int]:
    """The colour of a text line starting with three integers 0..255 (anything after is ignored)."""
    return _int_line(s, path, no, 3, form)  # type: ignore[return-value]


def _rgba_line(s: str, path: Path, no: int) -> tuple[int, int, int]:
    """The colour of an ``R G B A [name]`` line of an RGBA GIMP palette (GIMP 3), opaque only."""
    vals = _int_line(s, path, no, 4, "'R G B A [name]'")
    if vals[3] != 255:
        raise _err(path, no, f"alpha {vals[3]} is not opaque: a palette holds opaque colours (transparency is kept apart)")
    return vals[:3]  # type: ignore[return-value]


def parse_hex(text: str, path: Path | str = "<hex>") -> np.ndarray:
    """Colours (N, 3) uint8 from Lospec .hex text (see module doc for the rules)."""
    path = Path(path)
    colors = []
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";") or s.startswith("//"):
            continue
        m = _HEX_LINE.fullmatch(s)
        if m:
            h = m.group(1)
            if len(h) == 3:  # CSS shorthand: f80 is ff8800
                h = "".join(c * 2 for c in h)
            if len(h) == 8:
                if h[6:].lower() != "ff":
                    raise _err(path, no, f"{s!r} is read as rrggbbaa, and its alpha {h[6:]} is not opaque: a palette "
                                         "holds opaque colours (transparency is kept apart)")
                h = h[:6]
            if len(h) != 6:
                raise _err(path, no, f"expected a colour as rrggbb (6 hex digits, or 3 as in CSS), got {s[:40]!r}")
            colors.append((int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
            continue
        if s.startswith("#"):
            continue  # a comment such as "# exported from ..."
        raise _err(path, no, f"expected a colour as rrggbb (6 hex digits), got {s[:40]!r}")
    return _finish(colors, path, ".hex")


def parse_gpl(text: str, path: Path | str = "<gpl>") -> tuple[np.ndarray, str | None]:
    """Colours and the ``Name:`` (if any) from GIMP .gpl text."""
    path = Path(path)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None or lines[first].strip() != "GIMP Palette":
        raise _err(path, (first or 0) + 1, "not a GIMP palette (first line must be 'GIMP Palette')")
    name = None
    channels = "RGB"
    colors = []
    for no, line in enumerate(lines[first + 1 :], first + 2):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        low = s.lower()
        if low.startswith("name:"):
            name = s[5:].strip() or None
            continue
        if low.startswith("columns:"):
            continue
        if low.startswith("channels:"):
            channels = s[9:].strip().upper()
            if channels not in ("RGB", "RGBA"):
                raise _err(path, no, f"unknown channels {channels!r}; GIMP palettes are RGB or RGBA")
            continue
        if channels == "RGBA":
            colors.append(_rgba_line(s, path, no))
            continue
        colors.append(_rgb_line(s, path, no, "'R G B [name]'"))
    return _finish(colors, path, ".gpl"), name


def parse_jasc(text: str, path: Path | str = "<pal>") -> np.ndarray:
    """Colours from JASC-PAL text: header, version, count, then one 'R G B' line per colour."""
    path = Path(path)
    lines = text.splitlines()
    if len(lines) < 3 or lines[0].strip() != "JASC-PAL":
        raise _err(path, 1, "not a JASC palette (first line must be 'JASC-PAL')")
    try:
        count = int(lines[2].strip())
    except ValueError:
        raise _err(path, 3, f"expected the number of colours, got {lines[2].strip()[:40]!r}") from None
    if count < 1:
        raise PaletteError(f"{path}: the header says {count} colours; a palette needs at least one")
    colors = []
    for no, line in enumerate(lines[3:], 4):
        s = line.strip()
        if not s:
            continue
        if len(colors) == count:
            raise _err(path, no, f"more colour lines than the {count} the header announces")
        colors.append(_rgb_line(s, path, no, "'R G B'"))
    if len(colors) != count:
        raise PaletteError(f"{path}: the header announces {count} colours but the file has {len(colors)}")
    return _finish(colors, path, ".pal")


def parse_riff_pal(data: bytes, path: Path | str = "<pal>") -> np.ndarray:
    """Colours from a Microsoft RIFF PAL file (binary: 'RIFF' .... 'PAL ' 'data' chunk)."""
    path = Path(path)
    if len(data) < 24 or data[:4] != b"RIFF" or data[8:12] != b"PAL ":
        raise PaletteError(f"{path}: not a RIFF palette")
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"data":
            body = data[pos + 8 : pos + 8 + size]
            if len(body) < 4:
                break
            _version, count = struct.unpack("<HH", body[:4])
            entries = body[4 : 4 + 4 * count]
            if len(entries) < 4 * count:
                raise PaletteError(f"{path}: RIFF palette announces {count} colours but is truncated")
            arr = np.frombuffer(entries, dtype=np.uint8).reshape(-1, 4)[:, :3]
            return _finish([tuple(c) for c in arr.tolist()], path, "RIFF .pal")
        pos += 8 + size + (size & 1)
    raise PaletteError(f"{path}: RIFF palette has no 'data' chunk")


def colors_from_image(rgba: np.ndarray, *, source: str = "palette image") -> np.ndarray:
    """Palette colours from a swatch image (H, W, 4) uint8: see the module doc for the rule."""
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4 or a.shape[0] < 1 or a.shape[1] < 1:
        raise PaletteError(f"{source}: expected an RGBA image, got shape {a.shape}")
    key = a.astype(np.uint32)
    key = (key[..., 0] << 24) | (key[..., 1] << 16) | (key[..., 2] << 8) | key[..., 3]
    # Cut wherever any row (column) changes colour; swatch edges line up across the image.
    col_cuts = np.flatnonzero((key[:, 1:] != key[:, :-1]).any(axis=0)) + 1
    row_cuts = np.flatnonzero((key[1:, :] != key[:-1, :]).any(axis=1)) + 1
    g = int(np.gcd.reduce(np.concatenate([[a.shape[0], a.shape[1]], col_cuts, row_cuts]).astype(np.int64)))
    if g in a.shape[:2] and (a.shape[0] // g) * (a.shape[1] // g) <= MAX_COLORS:
        # A strip of equal squares (one pixel each, or g x g swatches) as palette_png_bytes
        # writes it: one colour per square in order, repeats kept, so indices survive a round
        # trip. (Not any small image: a 16x16 sprite is no list of 256 colours.)
        cells = a[::g, ::g].reshape(-1, 4)
        colors = cells[cells[:, 3] >= 128, :3]
        if not len(colors):
            raise PaletteError(f"{source}: no opaque uniform swatches found",
                               hint="a palette image needs opaque colour cells")
        return np.ascontiguousarray(colors, dtype=np.uint8)
    xs = np.concatenate([[0], col_cuts, [a.shape[1]]])
    ys = np.concatenate([[0], row_cuts, [a.shape[0]]])
    if (len(xs) - 1) * (len(ys) - 1) > 65536:
        raise PaletteError(
            f"{source}: does not look like a palette image ({len(np.unique(key))} colours in no swatch layout)",
            hint="use one pixel or one uniform square per colour, at most 256 colours",
        )
    colors = []
    for y0, y1 in zip(ys[:-1], ys[1:]):
        for x0, x1 in zip(xs[:-1], xs[1:]):
            cell = a[y0:y1, x0:x1]
            px = cell[0, 0]
            if px[3] < 128:
                continue
            if (cell == px).all():
                colors.append(px[:3])
    if not colors:
        raise PaletteError(f"{source}: no opaque uniform swatches found", hint="a palette image needs opaque colour cells")
    out = dedupe_colors(np.array(colors, dtype=np.uint8))
    if len(out) > MAX_COLORS:
        raise PaletteError(f"{source}: {len(out)} colours; a palette image may hold at most {MAX_COLORS}")
    return out


def read_palette(path, *, name: str | None = None) -> Palette:
    """Read a palette file; the format comes from the extension (see the module doc)."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in READ_FORMATS:
        raise PaletteError(
            f"{p}: unknown palette format {ext or '(no extension)'!r}",
            hint="use a .hex, .gpl, .pal or .png palette file",
        )
    if not p.exists():
        raise PaletteError(f"palette file not found: {p}", hint="check the path, or use a built-in name (`dgx-pixels palette list`)")
    label = name or p.stem
    src = f"file {p.name}"
    if ext == ".hex":
        return Palette(label, parse_hex(_read_text(p), p), src)
    if ext == ".gpl":
        colors, gname = parse_gpl(_read_text(p), p)
        return Palette(name or gname or p.stem, colors, src)
    if ext == ".pal":
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise PaletteError(f"cannot read palette file {p}: {exc.strerror or exc}") from None
        if data[:4] == b"RIFF":
            return Palette(label, parse_riff_pal(data, p), src)
        return Palette(label, parse_jasc(data.decode("utf-8-sig", errors="replace"), p), src)
    from .errors import InputImageError
    from .imageio import load_image

    try:
        rgba = load_image(p)
    except InputImageError as exc:
        raise PaletteError(f"{p}: not a readable palette image ({exc.message})") from None
    return Palette(label, colors_from_image(rgba, source=str(p)), src)


def format_hex(palette: Palette) -> str:
    return "".join(h + "\n" for h in palette.hex_list())


def format_gpl(palette: Palette) -> str:
    lines = ["GIMP Palette", f"Name: {palette.name}", "Columns: 0", "#"]
    if palette.source:
        lines.insert(3, "# " + " ".join(palette.source.split()))
    for (r, g, b), h in zip(palette.colors.tolist(), palette.hex_list()):
        lines.append(f"{r:3d} {g:3d} {b:3d}\t#{h}")
    return "\n".join(lines) + "\n"


def format_jasc(palette: Palette) -> str:
    # JASC-PAL files use CRLF line ends; readers such as Paint Shop Pro expect them.
    lines = ["JASC-PAL", "0100", str(len(palette))] + [f"{r} {g} {b}" for r, g, b in palette.colors.tolist()]
    return "\r\n".join(lines) + "\r\n"


def palette_png_bytes(palette: Palette, *, swatch: int = 1) -> bytes:
    """PNG of the palette: N x 1 pixels (or N*swatch x swatch), one colour per pixel/square."""
    from .imageio import png_bytes

    row = np.zeros((1, len(palette), 4), dtype=np.uint8)
    row[0, :, :3] = palette.colors
    row[0, :, 3] = 255
    if swatch > 1:
        row = np.repeat(np.repeat(row, swatch, axis=0), swatch, axis=1)
    return png_bytes(row)


def write_palette(palette: Palette, path, *, swatch: int = 1) -> Path:
    """Write ``palette`` to ``path`` in the format of its extension (.hex, .gpl, .pal, .png)."""
    p = Path(path)
    ext = p.suffix.lower()
    if isinstance(swatch, bool) or not isinstance(swatch, (int, np.integer)) or swatch < 1:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"swatch must be a whole number of pixels >= 1, got {swatch!r}")
    if ext == ".hex":
        data = format_hex(palette).encode()
    elif ext == ".gpl":
        data = format_gpl(palette).encode()
    elif ext == ".pal":
        data = format_jasc(palette).encode()
    elif ext == ".png":
        data = palette_png_bytes(palette, swatch=swatch)
    else:
        raise PaletteError(
            f"{p}: cannot write palette format {ext or '(no extension)'!r}",
            hint="use one of: " + ", ".join(WRITE_FORMATS),
        )
    try:
        atomic_write_bytes(p, data)
    except OSError as exc:
        from .errors import ExportError

        raise ExportError(f"cannot write palette file {p}: {exc.strerror or exc}",
                          hint="check that the folder is writable and that no file stands where a folder is needed") from None
    return p
