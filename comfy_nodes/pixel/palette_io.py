"""Reading and writing palette files: .hex, .gpl, .pal (JASC or RIFF), .txt (Paint.NET) and palette PNGs.

Formats, by extension (case-insensitive):

* ``.hex`` (Lospec): one ``rrggbb`` per line, with or without '#' (also CSS's ``rgb``, and
  ``rrggbbaa`` when opaque). Blank lines and comment lines (starting with ';', '//', or '#'
  followed by more than hex digits) are skipped; a line of hex digits of another length is
  an error. Text after a 6- or 8-digit colour (``#ff0000 red``) is a name and ignored; a
  3-digit colour followed by text (``#add more``) is ambiguous and an error. A file whose
  comments say it is a Paint.NET palette is read as ``.txt``.
* ``.txt`` (Paint.NET, as Lospec exports it): ';' comment lines, then one ``aarrggbb`` (opaque:
  ``ff``), ``rrggbb`` or ``#rrggbb`` per line. Read only.
* ``.gpl`` (GIMP): first line ``GIMP Palette``; ``Name:`` / ``Columns:`` lines (and other
  ``Field: value`` lines some tools add) and '#' comments are skipped; each other line is
  ``R G B [name]`` with integers 0..255 (``R G B A [name]`` after GIMP 3's ``Channels: RGBA``:
  opaque, or fully transparent, the transparent slot Aseprite writes first, which is skipped as
  a palette image's transparent cells are). Colour names are kept and written back.
* ``.pal``: JASC (``JASC-PAL`` / ``0100`` / count / ``R G B`` lines) or Microsoft RIFF ``PAL``
  (binary). Written as JASC.
* ``.png`` (or any image Pillow reads): one pixel per colour, or uniform swatches of any size.
  A strip of equal squares (one pixel, or g x g pixels, per colour, at most 256 of them) gives
  one colour per square in order, repeats included, so a written palette reads back index
  for index. Otherwise the image is cut at every column and row where some pixel
  changes colour; each resulting cell that is one opaque colour gives a colour, in reading
  order, and repeated colours are kept once (first occurrence). Transparent cells are skipped,
  and so are borders and gutters between swatches: bands at most half as thick as the
  thickest band that are one colour from end to end (when all such bands share that colour).
  Cells of the gutter colour at the end (the free slots of a last row that is not full) are
  empty slots, not colours.

Text files may be UTF-8 (with or without BOM) or UTF-16 with a BOM; bytes that are not UTF-8
are read as Latin-1 (they can only be in names and comments). Line ends may be LF, CRLF or CR.

Any other non-blank line is an error naming the file and the line number: a palette that
silently lost a colour would quantise every image wrongly. A file with no colours is an error.
Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from .errors import PaletteError
from .imageio import atomic_write_bytes
from .palette import Palette, dedupe_colors

READ_FORMATS = (".hex", ".gpl", ".pal", ".txt", ".png", ".gif", ".bmp", ".webp")
#: Files that can only be palettes: listed wherever they are. Plain text and images are listed
#: only inside a ``palettes`` folder (an input folder is full of prompts and pictures).
PALETTE_ONLY_FORMATS = (".hex", ".gpl", ".pal")
PALETTES_FOLDER = "palettes"
#: A listing stops here: a drop-down of more entries is no use, and the walk must stay quick.
MAX_LISTED = 2000
WRITE_FORMATS = (".hex", ".gpl", ".pal", ".png")
MAX_COLORS = 256

# Palette formats people have that are not read here: say so by name, not as "unknown".
OTHER_FORMATS = {
    ".ase": "Adobe Swatch Exchange (.ase)",
    ".aco": "Adobe Photoshop swatches (.aco)",
    ".act": "Adobe Color Table (.act)",
    ".acb": "Adobe Color Book (.acb)",
    ".swatches": "Procreate swatches (.swatches)",
    ".kpl": "Krita palette (.kpl)",
    ".colors": "KolourPaint palette (.colors)",
}
_SUPPORTED = ".hex (Lospec), .gpl (GIMP, Aseprite), .pal (JASC or RIFF), .txt (Paint.NET) or a .png palette image"

_HEX_LINE = re.compile(r"#?([0-9a-fA-F]+)")
_HEADER_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_ -]*:")


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
        raise PaletteError(f"{path}: {len(arr)} colours; palettes are limited to {MAX_COLORS}",
                           hint=f"keep at most {MAX_COLORS} colours in the file")
    return arr


def _decode(raw: bytes, path: Path) -> str:
    """Text of a palette file: UTF-16 with a BOM, else UTF-8 (BOM optional), else Latin-1."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Windows Notepad's "Unicode"
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise PaletteError(f"{path}: starts as UTF-16 text but is not valid UTF-16",
                               hint="save it again as UTF-8 text") from None
    if b"\x00" in raw:
        raise PaletteError(f"{path}: a binary file, not a text palette",
                           hint="check that the file is a palette in the format its extension names")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old palettes from Windows tools: only names and comments can hold such bytes.
        return raw.decode("latin-1")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PaletteError(f"palette file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise PaletteError(f"{path} is a folder, not a palette file", hint="give the palette file inside it") from None
    except OSError as exc:
        raise PaletteError(f"cannot read palette file {path}: {exc.strerror or exc}") from None


def _read_text(path: Path) -> str:
    return _decode(_read_bytes(path), path)


def _int_line(s: str, path: Path, no: int, n: int, form: str) -> tuple[int, ...]:
    """The ``n`` integers 0..255 a text line starts with (anything after them is a name)."""
    try:
        vals = tuple(int(v) for v in s.split(None, n)[:n])
    except ValueError:
        vals = ()
    if len(vals) != n or any(not 0 <= v <= 255 for v in vals):
        raise _err(path, no, f"expected {form} with integers 0..255, got {s[:40]!r}")
    return vals


def _line_name(s: str, n: int) -> str:
    """What follows the ``n`` numbers of a colour line, stripped (GIMP's colour name)."""
    parts = s.split(None, n)
    return parts[n].strip() if len(parts) > n else ""


def _rgb_line(s: str, path: Path, no: int, form: str) -> tuple[int, int, int]:
    """The colour of a text line starting with three integers 0..255 (anything after is ignored)."""
    return _int_line(s, path, no, 3, form)  # type: ignore[return-value]


def _rgba_line(s: str, path: Path, no: int) -> tuple[int, int, int] | None:
    """The colour of an ``R G B A [name]`` line of an RGBA GIMP palette (GIMP 3, Aseprite):
    opaque, or None for a fully transparent entry (the transparent slot: no colour)."""
    vals = _int_line(s, path, no, 4, "'R G B A [name]'")
    if vals[3] == 0:
        return None
    if vals[3] != 255:
        raise _err(path, no, f"alpha {vals[3]} is neither opaque nor fully transparent: a palette holds opaque "
                             "colours (transparency is kept apart)")
    return vals[:3]  # type: ignore[return-value]


def parse_hex(text: str, path: Path | str = "<hex>") -> np.ndarray:
    """Colours (N, 3) uint8 from Lospec .hex text (see module doc for the rules)."""
    path = Path(path)
    lines = text.splitlines()
    if any(ln.lstrip().startswith(";") and "paint.net" in ln.lower() for ln in lines[:5]):
        return parse_paintnet(text, path)  # Paint.NET's aarrggbb under a .hex name
    colors = []
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith(";") or s.startswith("//"):
            continue
        tok, *rest = s.split(None, 1)
        m = _HEX_LINE.fullmatch(tok)
        if m and rest:
            n = len(m.group(1))
            if n in (6, 8):
                s = tok  # "#ff0000 red": a colour and its name
            elif tok.startswith("#") and n != 3:
                continue  # "#1 of 16 ..." is a comment
            else:
                raise _err(path, no, f"{s[:40]!r} is a colour followed by other text (or a comment that starts with "
                                     "hex digits): put the colour alone on the line, and comments on lines starting "
                                     "with ';' or '# '")
        m = _HEX_LINE.fullmatch(s)
        if m:
            h = m.group(1)
            if len(h) == 3:  # CSS shorthand: f80 is ff8800
                h = "".join(c * 2 for c in h)
            if len(h) == 8:
                if h[6:].lower() != "ff":
                    hint = (" (a Paint.NET palette is aarrggbb: give it the extension .txt)"
                            if h[:2].lower() == "ff" else "")
                    raise _err(path, no, f"{s!r} is read as rrggbbaa, and its alpha {h[6:]} is not opaque: a palette "
                                         f"holds opaque colours (transparency is kept apart){hint}")
                h = h[:6]
            if len(h) != 6:
                raise _err(path, no, f"expected a colour as rrggbb (6 hex digits, or 3 as in CSS), got {s[:40]!r}")
            colors.append((int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
            continue
        if s.startswith("#"):
            continue  # a comment such as "# exported from ..."
        raise _err(path, no, f"expected a colour as rrggbb (6 hex digits), got {s[:40]!r}")
    return _finish(colors, path, ".hex")


def parse_paintnet(text: str, path: Path | str = "<txt>") -> np.ndarray:
    """Colours from a Paint.NET palette: ';' comments, one ``aarrggbb`` (or ``rrggbb``) per line."""
    path = Path(path)
    colors = []
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if re.fullmatch(r"#[0-9a-fA-F]{6}", s):
            s = s[1:]  # a list of CSS colours saved as .txt: the same colour
        if not re.fullmatch(r"[0-9a-fA-F]{6}|[0-9a-fA-F]{8}", s):
            raise _err(path, no, f"expected a colour as aarrggbb (8 hex digits, as Paint.NET writes) or rrggbb, "
                                 f"got {s[:40]!r}")
        if len(s) == 8:
            if s[:2].lower() != "ff":
                raise _err(path, no, f"{s!r} is aarrggbb, and its alpha {s[:2]} is not opaque: a palette holds opaque "
                                     "colours (transparency is kept apart)")
            s = s[2:]
        colors.append((int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)))
    return _finish(colors, path, "Paint.NET .txt")


def parse_gpl(text: str, path: Path | str = "<gpl>") -> tuple[np.ndarray, str | None]:
    """Colours and the ``Name:`` (if any) from GIMP .gpl text."""
    colors, name, _names = parse_gpl_named(text, path)
    return colors, name


def parse_gpl_named(text: str, path: Path | str = "<gpl>") -> tuple[np.ndarray, str | None, tuple[str, ...]]:
    """Colours, the ``Name:`` (if any) and each colour's name ('' where none) from GIMP .gpl text."""
    path = Path(path)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None or lines[first].strip() != "GIMP Palette":
        raise _err(path, (first or 0) + 1, "not a GIMP palette (first line must be 'GIMP Palette')")
    name = None
    channels = "RGB"
    colors = []
    names = []
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
        if _HEADER_FIELD.match(s):
            continue  # another tool's header field ("Description: ..."); a colour line starts with a digit
        if channels == "RGBA":
            rgb = _rgba_line(s, path, no)
            if rgb is not None:
                colors.append(rgb)
                names.append(_line_name(s, 4))
            continue
        colors.append(_rgb_line(s, path, no, "'R G B [name]'"))
        names.append(_line_name(s, 3))
    arr = _finish(colors, path, ".gpl")
    # an unnamed colour is written named by its own hex code (GIMP shows a name for each): read
    # back, that is no name
    names = ["" if n.lower() == "#%02x%02x%02x" % tuple(int(v) for v in c) else n for n, c in zip(names, arr)]
    return arr, name, tuple(names)


def parse_jasc(text: str, path: Path | str = "<pal>") -> np.ndarray:
    """Colours from JASC-PAL text: header, version, count, then one 'R G B' line per colour."""
    path = Path(path)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "JASC-PAL":
        raise _err(path, 1, "not a JASC palette (first line must be 'JASC-PAL')")
    if len(lines) < 3:
        raise _err(path, len(lines) + 1, "the file ends inside the JASC header ('JASC-PAL', '0100', the number of "
                                         "colours)")
    if lines[1].strip() != "0100":
        raise _err(path, 2, f"expected the JASC-PAL version 0100, got {lines[1].strip()[:40]!r}")
    try:
        count = int(lines[2].strip())
    except ValueError:
        raise _err(path, 3, f"expected the number of colours, got {lines[2].strip()[:40]!r}") from None
    if count < 1:
        raise _err(path, 3, f"the header says {count} colours; a palette needs at least one")
    colors = []
    for no, line in enumerate(lines[3:], 4):
        s = line.strip()
        if not s:
            continue
        if len(colors) == count:
            raise _err(path, no, f"more colour lines than the {count} the header announces")
        colors.append(_rgb_line(s, path, no, "'R G B'"))
    if len(colors) != count:
        raise PaletteError(f"{path}: the header announces {count} colours but the file has {len(colors)}",
                           hint=f"fix the number on line 3 of {path.name}, or add the missing colour lines")
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


def _gutters(cell_key: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of cells that are borders or gutters between swatches, not swatches.

    Such a band is at most half as thick as the thickest band across it and is one colour from
    end to end. There must be at least two, all of that one colour (the background), else none
    is taken for one: a single narrow swatch in a strip stays a swatch.
    """
    def bands(keys: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        thin = sizes * 2 <= sizes.max()
        one = (keys >= 0).all(axis=1) & (keys == keys[:, :1]).all(axis=1)
        return thin & one

    rows = bands(cell_key, heights)
    cols = bands(cell_key.T, widths)
    found = np.concatenate([cell_key[rows, 0], cell_key[0, cols]])
    if found.size < 2 or (found != found[0]).any() or rows.all() or cols.all():
        return np.zeros(len(heights), bool), np.zeros(len(widths), bool)
    return rows, cols


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
        # (no count of its colours here: on a large photo that alone takes seconds)
        raise PaletteError(
            f"{source}: does not look like a palette image ({a.shape[1]}x{a.shape[0]} pixels that are no swatch layout)",
            hint="use one pixel or one uniform square per colour, at most 256 colours",
        )
    # Each cell's colour key, or -1 where the cell is not one colour.
    cell_key = np.full((len(ys) - 1, len(xs) - 1), -1, dtype=np.int64)
    for i, (y0, y1) in enumerate(zip(ys[:-1], ys[1:])):
        for j, (x0, x1) in enumerate(zip(xs[:-1], xs[1:])):
            cell = key[y0:y1, x0:x1]
            if (cell == cell[0, 0]).all():
                cell_key[i, j] = int(cell[0, 0])
    skip_rows, skip_cols = _gutters(cell_key, np.diff(ys), np.diff(xs))
    colors, keys = [], []
    for i, y0 in enumerate(ys[:-1]):
        if skip_rows[i]:
            continue
        for j, x0 in enumerate(xs[:-1]):
            if skip_cols[j] or cell_key[i, j] < 0:
                continue
            px = a[y0, x0]
            if px[3] >= 128:
                colors.append(px[:3])
                keys.append(int(cell_key[i, j]))
    if skip_rows.any() or skip_cols.any():
        # a grid whose last row is not full leaves its free slots in the gutter colour: they
        # are empty, not swatches of that colour
        gutter = int(cell_key[np.flatnonzero(skip_rows)[0], 0] if skip_rows.any() else cell_key[0, np.flatnonzero(skip_cols)[0]])
        while len(keys) > 1 and keys[-1] == gutter:
            keys.pop()
            colors.pop()
    if not colors:
        raise PaletteError(f"{source}: no opaque uniform swatches found", hint="a palette image needs opaque colour cells")
    out = dedupe_colors(np.array(colors, dtype=np.uint8))
    if len(out) > MAX_COLORS:
        raise PaletteError(f"{source}: {len(out)} colours; a palette image may hold at most {MAX_COLORS}",
                           hint=f"use an image of at most {MAX_COLORS} swatches")
    return out


def read_palette(path, *, name: str | None = None) -> Palette:
    """Read a palette file; the format comes from the extension (see the module doc)."""
    p = Path(path)
    ext = p.suffix.lower()
    if p.is_dir():
        # before its name is read as a format: a folder has no extension to speak of
        raise PaletteError(f"{p} is a folder, not a palette file", hint="give the palette file inside it")
    if ext in OTHER_FORMATS:
        raise PaletteError(f"{p}: {OTHER_FORMATS[ext]} files are not read",
                           hint=f"export the palette from that program as {_SUPPORTED}")
    if ext not in READ_FORMATS:
        raise PaletteError(
            f"{p}: unknown palette format {ext or '(no extension)'!r}",
            hint=f"use {_SUPPORTED}",
        )
    if not p.exists():
        raise PaletteError(f"palette file not found: {p}", hint="check the path, or use a built-in name (`dgx-pixels palette list`)")
    label = name or p.stem
    src = f"file {p.name}"
    if ext == ".hex":
        return Palette(label, parse_hex(_read_text(p), p), src)
    if ext == ".txt":
        return Palette(label, parse_paintnet(_read_text(p), p), src)
    if ext == ".gpl":
        colors, gname, names = parse_gpl_named(_read_text(p), p)
        return Palette(name or gname or p.stem, colors, src, names=names if any(names) else None)
    if ext == ".pal":
        data = _read_bytes(p)
        if data[:4] == b"RIFF":
            return Palette(label, parse_riff_pal(data, p), src)
        return Palette(label, parse_jasc(_decode(data, p), p), src)
    from .errors import InputImageError
    from .imageio import load_image

    try:
        rgba = load_image(p)
    except InputImageError as exc:
        raise PaletteError(f"{p}: not a readable palette image ({exc.message})") from None
    return Palette(label, colors_from_image(rgba, source=str(p)), src)


def format_hex(palette: Palette) -> str:
    return "".join(h + "\n" for h in palette.hex_list())


def _one_line(text: str) -> str:
    """``text`` fit for one line of a text file: line breaks and tabs become spaces."""
    return re.sub(r"[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+", " ", str(text)).strip()


def format_gpl(palette: Palette) -> str:
    lines = ["GIMP Palette", f"Name: {_one_line(palette.name)}", "Columns: 0", "#"]
    if palette.source:
        lines.insert(3, "# " + _one_line(palette.source))
    names = palette.names or ("",) * len(palette)
    for (r, g, b), h, n in zip(palette.colors.tolist(), palette.hex_list(), names):
        lines.append(f"{r:3d} {g:3d} {b:3d}\t{_one_line(n) or '#' + h}")
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
    data = palette_file_bytes(palette, p, swatch=swatch)
    try:
        atomic_write_bytes(p, data)
    except OSError as exc:
        from .errors import ExportError

        raise ExportError(f"cannot write palette file {p}: {exc.strerror or exc}",
                          hint="check that the folder is writable and that no file stands where a folder is needed") from None
    return p


def palette_file_bytes(palette: Palette, path, *, swatch: int = 1) -> bytes:
    """The content of a palette file named ``path``, in the format of its extension (.hex,
    .gpl, .pal, .png): what :func:`write_palette` writes there."""
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
    return data


def list_palette_files(root, *, limit: int = MAX_LISTED) -> list[str]:
    """Palette files under the folder ``root``, as sorted ``/``-separated paths relative to it.

    ``.hex``, ``.gpl`` and ``.pal`` files anywhere below ``root``; every readable format
    (``.txt`` and images too) inside its ``palettes`` folder. Hidden files and folders are
    skipped, and so are links that lead out of ``root`` (they could not be read through it).
    At most ``limit`` entries; a missing ``root`` lists nothing.
    """
    top = os.path.realpath(os.fspath(root))
    if not os.path.isdir(top):
        return []
    found: list[str] = []
    for here, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(here, d)))
        rel_dir = os.path.relpath(here, top)
        in_palettes = rel_dir == PALETTES_FOLDER or rel_dir.startswith(PALETTES_FOLDER + os.sep)
        formats = READ_FORMATS if in_palettes else PALETTE_ONLY_FORMATS
        for f in sorted(files):
            if f.startswith(".") or not f.lower().endswith(formats):
                continue
            full = os.path.join(here, f)
            real = os.path.realpath(full)
            if os.path.commonpath([top, real]) != top or not os.path.isfile(real):
                continue
            found.append(Path(os.path.relpath(full, top)).as_posix())
            if len(found) >= limit:
                return sorted(found)
    return sorted(found)
