"""Exporting sprites and sheets into a Bevy project, in the formats of its Bevy version.

For ``sprites/knight.png`` in ``<project>/assets/`` one export writes:

- ``knight.png``: RGBA, exact pixels (optionally enlarged by a whole factor);
- ``knight.png.meta``: image loader settings with a nearest sampler, in the exact RON layout of
  the project's Bevy version (the loader's type path moved from ``bevy_render`` to
  ``bevy_image`` in 0.15 and ``asset_usage`` appeared in 0.13; a wrong loader name makes the
  sprite fail to load);
- ``knight.json``: an Aseprite "array" atlas (frames, durations, ``frameTags``) for sheets;
- optionally ``knight.assets.ron``: bevy_asset_loader dynamic-asset entries (image + layout);
- a Rust snippet (returned, not written) that loads the sheet with ``TextureAtlasLayout`` and
  plays the named animations, written for that Bevy version's API.

Writes are staged as temp files next to their targets and renamed in order, ``.meta`` first,
so Bevy's hot reload never sees a PNG without its settings; the whole export runs under the
project lock and ends with an entry in ``assets/.dgx-pixels/manifest.json``.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from . import asset_manifest
from .errors import DgxPixelsError, ExportError, InvalidArgumentError, PathEscapeError
from .imageio import MAX_PIXELS, MAX_SIDE, as_rgba, png_info
from .safepath import ConfinedFolder, check_relative, confine, confine_assets_dir, open_folder, remove_confined
from .sheet import LAYOUT_KEY, Animation, Sheet, as_animations, build_sheet, check_layout, frame_durations, layout_text

SUPPORTED_MINORS = tuple(range(12, 20))  # Bevy 0.12 .. 0.19
DEFAULT_MINOR = 19
OVERWRITE_POLICIES = ("fail", "replace", "keep", "version")

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ModuleNotFoundError:
        _toml = None  # type: ignore[assignment]


# --- Bevy version --------------------------------------------------------------------------

@dataclass(frozen=True)
class BevyVersion:
    """A Bevy release line (``0.minor``), the text it came from and where it was found."""

    minor: int
    text: str
    source: str

    @property
    def short(self) -> str:
        return f"0.{self.minor}"

    @property
    def loader(self) -> str:
        if self.minor >= 15:
            return "bevy_image::image_loader::ImageLoader"
        return "bevy_render::texture::image_loader::ImageLoader"

    @property
    def has_asset_usage(self) -> bool:
        return self.minor >= 13


_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_bevy_version(text: str, source: str = "option") -> BevyVersion:
    """``"0.14"``, ``"0.15.1"``, ``"^0.13"``, ``"=0.12.1"``, ``">=0.14, <0.15"`` -> ``BevyVersion``.

    Raises ``ExportError`` for versions this exporter has no format for (before 0.12, 1.x).
    """
    m = _VERSION_RE.search(text or "")
    if not m:
        raise ExportError(f"cannot read a Bevy version from {text!r} ({source})",
                          hint="give the Bevy version explicitly: --bevy-version 0.15 (the node: bevy_version)")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 0 or minor not in SUPPORTED_MINORS:
        raise ExportError(
            f"Bevy {m.group(0)} ({source}) is not supported: the exporter knows the formats of 0.12 to 0.{SUPPORTED_MINORS[-1]}",
            hint="override it (--bevy-version 0.N, the node: bevy_version) if the .meta format is unchanged for your version",
        )
    return BevyVersion(minor, m.group(0), source)


def _dep_version(value: Any) -> tuple[str | None, bool]:
    """(version text, uses workspace) of one Cargo dependency value."""
    if isinstance(value, str):
        return value, False
    if isinstance(value, dict):
        if value.get("workspace") is True:
            return None, True
        v = value.get("version")
        return (v if isinstance(v, str) else None), False
    return None, False


def _find_bevy_value(tables: list[dict]) -> Any:
    """The ``bevy`` dependency's value (a version string or a table), renamed ones included."""
    for table in tables:
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            pkg = value.get("package") if isinstance(value, dict) else None
            if name == "bevy" and pkg in (None, "bevy") or pkg == "bevy":
                return value
    return None


# A requirement that pins one 0.minor line: "0.14", "^0.14.1", "=0.14", "~0.14.2". Anything
# else ("*", ">=0.14, <0.16", a git or path dependency) is resolved by Cargo.lock.
_PINNED_RE = re.compile(r"^\s*[\^=~]?\s*0\.(\d+)(?:\.\d+)?(?:\.\d+)?\s*$")
_TAG_RE = re.compile(r"^(?:v|release-|bevy-v?)?(0\.\d+)(?:\.\d+)?$")

def _read_toml(path: Path) -> dict | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if _toml is None:  # pragma: no cover
        m = re.search(rb'^\s*bevy\s*=\s*(?:"([^"]+)"|\{[^}]*version\s*=\s*"([^"]+)")', raw, re.M)
        if not m:
            return {}
        return {"dependencies": {"bevy": (m.group(1) or m.group(2)).decode()}}
    try:
        return _toml.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid TOML: {exc}", hint="fix it, or give the Bevy version (--bevy-version, the node: bevy_version)") from exc


def _dep_tables(doc: dict) -> list[dict]:
    tables = [doc.get("dependencies"), doc.get("dev-dependencies"), doc.get("build-dependencies")]
    for target in (doc.get("target") or {}).values():
        if isinstance(target, dict):
            tables += [target.get("dependencies"), target.get("dev-dependencies")]
    return [t for t in tables if isinstance(t, dict)]


def _lock_version(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for block in text.split("[[package]]"):
        if re.search(r'^name\s*=\s*"bevy"\s*$', block, re.M):
            m = re.search(r'^version\s*=\s*"([^"]+)"', block, re.M)
            if m:
                return m.group(1)
    return None


def detect_bevy_version(project: str | os.PathLike) -> BevyVersion | None:
    """The Bevy version a project builds with; None if nothing says.

    A requirement in ``Cargo.toml`` (direct, renamed, or from ``[workspace.dependencies]`` up to
    the workspace root) that pins one ``0.minor`` line decides. A looser one (``*``, a range, a
    git or path dependency) is what ``Cargo.lock`` resolved it to; without a lock, a git tag
    (``v0.14.0``), the path crate's own version, or the newest version the requirement allows
    (what Cargo will pick: ``"*"`` is 0.19)."""
    start = Path(project)
    doc = _read_toml(start / "Cargo.toml")
    folders = [start] + list(start.resolve().parents)[:6]
    value, where, base = None, f"{start / 'Cargo.toml'}", start
    if doc is not None:
        value = _find_bevy_value(_dep_tables(doc))
        if (value is None and "workspace" in doc) or _dep_version(value)[1]:
            for folder in folders:
                d = doc if folder == start else _read_toml(folder / "Cargo.toml")
                if d and isinstance(d.get("workspace"), dict):
                    value = _find_bevy_value([d["workspace"].get("dependencies") or {}])
                    where = f"{folder / 'Cargo.toml'} [workspace.dependencies]"
                    base = folder
                    break
            else:
                value = None
    text = _dep_version(value)[0]
    if text and _PINNED_RE.match(text):
        return parse_bevy_version(text, where)
    for folder in folders:
        lock = folder / "Cargo.lock"
        if lock.is_file():
            v = _lock_version(lock)
            if v:
                return parse_bevy_version(v, str(lock))
            break
    if isinstance(value, dict):
        for key in ("tag", "branch"):
            m = _TAG_RE.match(str(value.get(key, "")).strip())
            if m:
                return parse_bevy_version(m.group(1), f"{where} (git {key} {value[key]})")
        if isinstance(value.get("path"), str):
            crate = base / value["path"] / "Cargo.toml"
            pkg = (_read_toml(crate) or {}).get("package") or {}
            if isinstance(pkg.get("version"), str):
                return parse_bevy_version(pkg["version"], f"{crate} (path dependency)")
    if text:
        newest = _newest_allowed_minor(text)
        if newest is not None:
            return BevyVersion(newest, f"0.{newest}", f"{where}: {text!r} with no Cargo.lock yet, the newest it allows")
        return parse_bevy_version(text, where)
    return None


_COMPARATOR_RE = re.compile(r"^\s*(>=|<=|>|<|=|\^|~)?\s*0\.(\d+|\*)(?:\.(\d+|\*))?(?:\.\d+)?\s*$")


def _allows(op: str, a: int, patch: str | None, n: int) -> bool:
    """Whether the comparator ``op 0.a[.patch]`` lets some ``0.n.x`` release through."""
    bare = patch in (None, "*")  # "0.14" stands for every 0.14.x
    if op == ">=":
        return n >= a
    if op == ">":
        return n > a if bare else n >= a
    if op == "<":
        return n < a if bare or int(patch) == 0 else n <= a
    if op == "<=":
        return n <= a
    return n == a  # ^, ~, = and a bare version each pin one 0.minor line


def _newest_allowed_minor(requirement: str) -> int | None:
    """The newest supported ``0.minor`` that a Cargo requirement which is not yet locked allows
    (``"*"`` -> 19, ``">=0.14, <0.16"`` -> 15), as Cargo would pick the newest release; None when
    the text is not such a requirement or allows none of them."""
    allowed = set(SUPPORTED_MINORS)
    for part in requirement.split(","):
        if part.strip() == "*":
            continue
        m = _COMPARATOR_RE.match(part)
        if not m:
            return None
        if m.group(2) != "*":
            allowed = {n for n in allowed if _allows(m.group(1) or "^", int(m.group(2)), m.group(3), n)}
    return max(allowed) if allowed else None


def has_bevy_dependency(project: str | os.PathLike) -> bool:
    """Whether the project depends on bevy at all: in its Cargo.toml (renamed, or from the
    workspace's dependencies, any form: version, git, path) or its Cargo.lock."""
    start = Path(project)
    doc = _read_toml(start / "Cargo.toml")
    if doc is not None and _find_bevy_value(_dep_tables(doc)) is not None:
        return True
    for folder in [start] + list(start.resolve().parents)[:6]:
        lock = folder / "Cargo.lock"
        if lock.is_file():
            return _lock_version(lock) is not None
    return False


def _workspace_members(doc: dict, root: Path) -> list[str]:
    """The member folders of a virtual workspace that depend on bevy (their paths from ``root``)."""
    members = []
    for pattern in (doc.get("workspace") or {}).get("members") or []:
        if not isinstance(pattern, str):
            continue
        for folder in sorted(root.glob(pattern)):
            d = _read_toml(folder / "Cargo.toml") if (folder / "Cargo.toml").is_file() else None
            if d and (_find_bevy_value(_dep_tables(d)) is not None):
                members.append(folder.relative_to(root).as_posix())
    return members


def require_project_folder(project: str | os.PathLike) -> Path:
    """``InvalidArgumentError`` (bad input, exit 2) unless ``project`` is an existing folder:
    one check, one message for every command and node that takes a game's folder."""
    project = Path(project)
    if not project.is_dir():
        raise InvalidArgumentError(
            f"Bevy project folder {project} " + ("is a file, not a folder" if project.exists() else "does not exist"),
            hint="give the game's folder, the one that holds Cargo.toml and assets/")
    return project


def check_bevy_project(project: str | os.PathLike, bevy_version: str | None = "auto") -> None:
    """``ExportError`` unless ``project`` is a game's folder: the one holding its ``Cargo.toml``
    (Bevy reads ``assets/`` beside it), or any folder when ``bevy_version`` is given. Anything
    else is most likely a mistyped path, or the game's ``assets/`` or a folder inside it, where
    assets would land in a second ``assets/`` the game never reads."""
    if bevy_version and str(bevy_version).strip().lower() not in ("auto", ""):
        return
    project = Path(project)
    doc = _read_toml(project / "Cargo.toml") if (project / "Cargo.toml").is_file() else None
    if doc is not None and "workspace" in doc and "package" not in doc:
        # `cargo run -p game` reads game/assets, never the workspace root's
        games = _workspace_members(doc, project)
        raise ExportError(f"{project} is a Cargo workspace, not a game: it has no [package]"
                          + (f" (its members using bevy: {', '.join(games)})" if games else ""),
                          hint=f"give the game's own folder{f' ({project / games[0]})' if games else ''}, "
                               "where its Cargo.toml and assets/ are, or a --bevy-version to export here anyway")
    if (project / "Cargo.toml").is_file() and not has_bevy_dependency(project):
        raise ExportError(f"{project} is a Rust project without bevy: its Cargo.toml (and Cargo.lock) name no bevy "
                          "dependency", hint="give the game's folder, or a --bevy-version (the node: bevy_version) "
                                             "to export into this one anyway")
    if not (project / "Cargo.toml").is_file():
        inside = next((d for d in project.absolute().parents if (d / "Cargo.toml").is_file()), None)
        raise ExportError(f"{project} is not a Bevy project: it holds no Cargo.toml"
                          + (f" (the game at {inside} does)" if inside else ""),
                          hint=f"give the game's folder{f' ({inside})' if inside else ''}, where Cargo.toml and "
                               "assets/ are, or a --bevy-version to export into a plain folder")


def resolve_bevy_version(project: str | os.PathLike, override: str | None = "auto") -> BevyVersion:
    """The override when given (not ``auto``), else the detected version, else 0.19 (noted in
    ``source``, since the .meta layout has been the same from 0.15 to 0.19)."""
    if override and str(override).strip().lower() not in ("auto", ""):
        try:
            return parse_bevy_version(str(override), "override")
        except ExportError as exc:
            # the user's own value, not the project's: bad input
            raise InvalidArgumentError(exc.message, hint=exc.hint) from None
    found = detect_bevy_version(project)
    if found is not None:
        return found
    return BevyVersion(DEFAULT_MINOR, f"0.{DEFAULT_MINOR}", "default: neither Cargo.toml nor Cargo.lock names a Bevy version")


# --- .meta -----------------------------------------------------------------------------------

# Field order, spelling and indentation follow Bevy's own example
# examples/asset/files/bevy_pixel_dark_with_meta.png.meta (0.14, and unchanged from 0.15 to 0.19).
_SAMPLER_EXAMPLE = """\
            sampler: Descriptor (ImageSamplerDescriptor(
                address_mode_u: ClampToEdge,
                address_mode_v: ClampToEdge,
                address_mode_w: ClampToEdge,
                mag_filter: Nearest,
                min_filter: Nearest,
                mipmap_filter: Nearest,
                lod_min_clamp: 0,
                lod_max_clamp: 32.0,
                compare: None,
                anisotropy_clamp: 1,
                border_color: None,
                label: None,
            )),
"""
_USAGE_EXAMPLE = '            asset_usage: RenderAssetUsages("RENDER_WORLD | MAIN_WORLD"),\n'

# Bevy ships no image .meta example for 0.12/0.13; there the text follows the field order of
# ImageLoaderSettings / ImageSamplerDescriptor in those releases' sources (label first), with the
# optional struct names left out. Same fields and values as above, so RON reads both alike.
_SAMPLER_SOURCE = """\
            sampler: Descriptor((
                label: None,
                address_mode_u: ClampToEdge,
                address_mode_v: ClampToEdge,
                address_mode_w: ClampToEdge,
                mag_filter: Nearest,
                min_filter: Nearest,
                mipmap_filter: Nearest,
                lod_min_clamp: 0.0,
                lod_max_clamp: 32.0,
                compare: None,
                anisotropy_clamp: 1,
                border_color: None,
            )),
"""
_USAGE_SOURCE = '            asset_usage: ("MAIN_WORLD | RENDER_WORLD"),\n'


def render_meta(version: BevyVersion | str, *, is_srgb: bool = True,
                array_layout: tuple | None = None) -> str:
    """The ``.png.meta`` text (image loader, nearest sampler) for a Bevy version.

    ``array_layout`` loads the image as an array texture (one layer per tile, what Bevy's
    ``TilemapChunk`` takes): ``("rows", n)`` for tiles stacked in one column (Bevy 0.18+) or
    ``("grid", tile_w, tile_h)`` (Bevy 0.19+).
    """
    v = version if isinstance(version, BevyVersion) else parse_bevy_version(version)
    array_line = _array_layout_line(v, array_layout) if array_layout else None
    # Bevy's example layout where Bevy has one; the source-derived layout elsewhere (0.12, 0.13,
    # and array textures, whose only references are the derived templates).
    example = v.minor >= 14 and array_line is None
    lines = [
        "(\n",
        '    meta_format_version: "1.0",\n',
        "    asset: Load(\n",
        f'        loader: "{v.loader}",\n',
        "        settings: (\n",
        "            format: FromExtension,\n",
        f"            is_srgb: {'true' if is_srgb else 'false'},\n",
        _SAMPLER_EXAMPLE if example else _SAMPLER_SOURCE,
    ]
    if v.has_asset_usage:
        lines.append(_USAGE_EXAMPLE if example else _USAGE_SOURCE)
    if array_line:
        lines.append(array_line)
    lines += ["        ),\n", "    ),\n", ")" if example else ")\n"]
    return "".join(lines)


def _array_layout_line(v: BevyVersion, layout: tuple) -> str:
    kind = layout[0]
    if kind == "rows":
        if v.minor < 18:
            raise InvalidArgumentError(f"array-texture tilesets need Bevy 0.18 or newer (project uses {v.short})",
                              hint="export without the array texture (--tile-array, the node: tile_array) and build it in code")
        return f"            array_layout: Some(RowCount(rows: {int(layout[1])})),\n"
    if kind == "grid":
        if v.minor < 19:
            raise InvalidArgumentError(f"array textures cut by tile size need Bevy 0.19 (project uses {v.short})",
                              hint="lay the tiles out in one column (columns 1) to use RowCount on 0.18")
        return (f"            array_layout: Some(GridSize(tile_width_pixels: {int(layout[1])}, "
                f"tile_height_pixels: {int(layout[2])})),\n")
    raise InvalidArgumentError(f"unknown array layout {layout!r}")


def tile_array_layout(sheet: Sheet, version: BevyVersion) -> tuple:
    """The array layout for a tileset sheet: a grid of tiles on 0.19, one column on 0.18."""
    if version.minor < 18:
        raise InvalidArgumentError(f"array-texture tilesets need Bevy 0.18 or newer (project uses {version.short})",
                          hint="export without the array texture (--tile-array, the node: tile_array) and build it in code")
    if sheet.padding != (0, 0) or sheet.offset != (0, 0) or sheet.pow2:
        raise InvalidArgumentError("an array-texture tileset needs spacing 0, margin 0 and no power-of-two margin",
                          hint="rebuild the tileset with spacing 0 and margin 0")
    if version.minor >= 19:
        return ("grid", sheet.cell_w, sheet.cell_h)
    if sheet.columns != 1:
        raise InvalidArgumentError(f"on Bevy {version.short} array-texture tiles must be stacked in one column "
                          f"(this tileset has {sheet.columns})",
                          hint="set columns to 1, or use Bevy 0.19 whose .meta can cut a grid")
    return ("rows", sheet.rows)


# --- Aseprite JSON atlas -----------------------------------------------------------------------

def atlas_json(sheet: Sheet, image_name: str, *, app_version: str = "", default_ms: int = 100) -> dict[str, Any]:
    """Aseprite "array" JSON for a sheet.

    ``frame`` is the rectangle holding the frame's pixels; ``spriteSourceSize`` places it in a
    ``sourceSize`` canvas that is the grid cell, so drawing it reproduces the cell exactly (the
    same picture Bevy's grid layout shows). ``trimmed`` is true when the frame is smaller than
    the cell. Fully transparent frames keep the whole cell. Durations come from the animations.
    """
    durations = frame_durations(len(sheet.frames), sheet.animations, default_ms)
    if sheet.frame_ms is not None and len(sheet.frame_ms) == len(sheet.frames):
        durations = list(sheet.frame_ms)
    stem = Path(image_name).stem
    names: list[str | None] = [None] * len(sheet.frames)
    for a in sheet.animations:
        for k, i in enumerate(range(a.first, a.last + 1)):
            if names[i] is None:
                names[i] = f"{a.name}_{k}"
    # Loaders (Phaser, Pixi) key frames by name: a frame outside every animation must not take
    # an animation frame's name, as walk_0 would in walk.png with 'walk:4-7'.
    taken = set(n for n in names if n is not None)
    for i, n in enumerate(names):
        if n is None:
            name, extra = f"{stem}_{i}", 2
            while name in taken:
                name, extra = f"{stem}_{i}_{extra}", extra + 1
            names[i] = name
            taken.add(name)
    frames = []
    for f, ms, name in zip(sheet.frames, durations, names):
        if f.content_w and f.content_h:
            fx, fy, fw, fh = f.content_x, f.content_y, f.content_w, f.content_h
        else:
            fx, fy, fw, fh = f.x, f.y, f.w, f.h
        frames.append({
            "filename": name,
            "frame": {"x": fx, "y": fy, "w": fw, "h": fh},
            "rotated": False,
            "trimmed": (fw, fh) != (f.w, f.h),
            "spriteSourceSize": {"x": fx - f.x, "y": fy - f.y, "w": fw, "h": fh},
            "sourceSize": {"w": f.w, "h": f.h},
            "duration": int(ms),
        })
    meta = {
        "app": "https://github.com/dgx-pixels/dgx-pixels",
        "version": app_version or _app_version(),
        "image": image_name,
        "format": "RGBA8888",
        "size": {"w": sheet.width, "h": sheet.height},
        "scale": "1",
        "frameTags": [
            {"name": a.name, "from": a.first, "to": a.last, "direction": a.direction}
            for a in sheet.animations
        ],
        "layers": [{"name": "sprite", "opacity": 255, "blendMode": "normal"}],
        "slices": [],
        "grid": {
            "cell": {"w": sheet.cell_w, "h": sheet.cell_h},
            "columns": sheet.columns,
            "rows": sheet.rows,
            "padding": {"x": sheet.padding[0], "y": sheet.padding[1]},
            "offset": {"x": sheet.offset[0], "y": sheet.offset[1]},
        },
    }
    return {"frames": frames, "meta": meta}


def atlas_json_bytes(doc: dict[str, Any]) -> bytes:
    """The atlas as text laid out like Aseprite's own export: one frame per line."""
    frames = ",\n".join("   " + json.dumps(f) for f in doc["frames"])
    text = '{ "frames": [\n' + frames + '\n ],\n "meta": ' + json.dumps(doc["meta"]) + "\n}\n"
    return text.encode("utf-8")


def _app_version() -> str:
    try:
        from importlib.metadata import version

        return f"dgx-pixels {version('dgx-pixels')}"
    except Exception:  # noqa: BLE001 - metadata missing when run from a plain checkout
        return "dgx-pixels"


# --- bevy_asset_loader RON ------------------------------------------------------------------------

def ron_entries(sheet: Sheet | None, asset_path: str, version: BevyVersion, key: str | None = None) -> dict[str, str]:
    """bevy_asset_loader dynamic-asset entries (key -> RON value text, 4-space indented).

    0.13+ (bevy_asset_loader 0.20+): ``Image`` with ``sampler: Nearest`` and a
    ``TextureAtlasLayout``; 0.12 (bevy_asset_loader 0.18/0.19): ``File`` and the older
    ``TextureAtlas`` variant with float tile sizes. Padding/offset fields only when non-zero.
    """
    key = key or Path(asset_path).stem
    out: dict[str, str] = {}
    if version.minor >= 13:
        out[f"{key}.image"] = f'Image (\n        path: "{asset_path}",\n        sampler: Nearest,\n    )'
        if sheet is not None:
            fields = [("tile_size_x", sheet.cell_w), ("tile_size_y", sheet.cell_h),
                      ("columns", sheet.columns), ("rows", sheet.rows)]
            for name, val in (("padding_x", sheet.padding[0]), ("padding_y", sheet.padding[1]),
                              ("offset_x", sheet.offset[0]), ("offset_y", sheet.offset[1])):
                if val:
                    fields.append((name, val))
            body = "".join(f"        {n}: {v},\n" for n, v in fields)
            out[f"{key}.layout"] = f"TextureAtlasLayout (\n{body}    )"
    else:
        out[f"{key}.image"] = f'File (\n        path: "{asset_path}",\n    )'
        if sheet is not None:
            fields = [("tile_size_x", f"{float(sheet.cell_w):.1f}"), ("tile_size_y", f"{float(sheet.cell_h):.1f}"),
                      ("columns", sheet.columns), ("rows", sheet.rows)]
            for name, val in (("padding_x", sheet.padding[0]), ("padding_y", sheet.padding[1]),
                              ("offset_x", sheet.offset[0]), ("offset_y", sheet.offset[1])):
                if val:
                    fields.append((name, f"{float(val):.1f}"))
            body = "".join(f"        {n}: {v},\n" for n, v in fields)
            out[f"{key}.atlas"] = f'TextureAtlas (\n        path: "{asset_path}",\n{body}    )'
    return out


IMPLICIT_SOME = "#![enable(implicit_some)]"


def with_implicit_some(text: str) -> str:
    """``text`` with RON's implicit_some extension enabled (added first when missing).

    Bevy 0.12's ``TextureAtlas`` entry has ``Option<f32>`` padding and offset fields, which
    bevy_asset_loader 0.18 reads as plain options (``Some(4.0)``) and 0.19 as bare numbers
    (``4.0``); with the extension on, RON takes a bare number for an option, so one file
    loads with both."""
    attributes = re.match(r"\s*(?:#!\[[^\]]*\]\s*)*", text).group(0)
    return text if "implicit_some" in attributes else IMPLICIT_SOME + "\n" + text


def render_ron(entries: dict[str, str]) -> str:
    body = "".join(f'    "{k}": {v},\n' for k, v in entries.items())
    return "({\n" + body + "})\n"


def _scan_ron_map(text: str) -> tuple[int, int, list[tuple[str, int, int]]]:
    """Locate the top-level ``({ ... })`` map of a dynamic-assets file.

    Returns (index just after ``{``, index of the closing ``}``, [(key, start, end)]) where
    ``text[start:end]`` is one whole entry including its trailing comma (the last entry may
    have none: it then ends at its last character, before any comment). Raises ValueError.
    """
    i, n = 0, len(text)
    last_sig = 0  # just after the last character that is neither blank nor in a comment
    depth = 0
    open_brace = close_brace = -1
    entries: list[tuple[str, int, int]] = []
    entry_start = -1
    key = None

    while i < n:
        ch = text[i]
        if depth == 0 and text.startswith("#![", i):
            # an inner attribute before the value (#![enable(implicit_some)]): no part of the map
            j = text.find("]", i + 3)
            if j < 0:
                raise ValueError("unterminated #![...] attribute")
            i = last_sig = j + 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated comment")
            i = j + 2
            continue
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated string")
            if depth == 2 and entry_start < 0:
                entry_start, key = i, json.loads(text[i : j + 1])
            i = last_sig = j + 1
            continue
        if ch in "({[":
            depth += 1
            if depth == 2:
                if ch != "{" or open_brace >= 0:
                    raise ValueError("expected ({ ... }) at the top level")
                open_brace = i + 1
        elif ch in ")}]":
            if depth == 2:
                if entry_start >= 0:
                    entries.append((key, entry_start, last_sig))
                    entry_start, key = -1, None
                close_brace = i
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced brackets")
        elif ch == "," and depth == 2 and entry_start >= 0:
            entries.append((key, entry_start, i + 1))
            entry_start, key = -1, None
        if not ch.isspace():
            last_sig = i + 1
        i += 1
    if open_brace < 0 or close_brace < 0 or depth != 0:
        raise ValueError("no top-level ({ ... }) map found")
    return open_brace, close_brace, entries


def ron_entry_paths(text: str) -> dict[str, str]:
    """``key -> path`` of the entries of a dynamic-assets file that name one (``path: "..."``)."""
    _, _, found = _scan_ron_map(text)
    out = {}
    for key, start, end in found:
        m = re.search(r'\bpath\s*:\s*"((?:[^"\\]|\\.)*)"', text[start:end])
        if m:
            out[key] = m.group(1)
    return out


def merge_ron(existing: str | None, entries: dict[str, str], drop: Sequence[str] = ()) -> str:
    """Insert or replace ``entries`` in a dynamic-assets file and remove the keys in ``drop``,
    keeping everything else verbatim (comments included)."""
    if existing is None or not existing.strip():
        return render_ron(entries)
    _, close, found = _scan_ron_map(existing)
    out = existing
    pending = dict(entries)
    # edit from the end so earlier offsets stay valid
    for key, start, end in sorted(found, key=lambda t: -t[1]):
        if key in pending:
            out = out[:start] + f'"{key}": {pending.pop(key)},' + out[end:]
        elif key in drop:
            line_start = out.rfind("\n", 0, start) + 1
            cut = line_start if not out[line_start:start].strip() else start
            rest = end + len(out[end:]) - len(out[end:].lstrip(" \t"))
            rest += 1 if out[rest:rest + 1] == "\n" and cut == line_start else 0
            out = out[:cut] + out[rest:]
    if pending:
        _, close, found = _scan_ron_map(out)
        if found and out[found[-1][2] - 1] != ",":
            # The comma goes right after the entry, before any comment that follows it.
            last_end = found[-1][2]
            out = out[:last_end] + "," + out[last_end:]
            close += 1
        head = out[:close].rstrip(" \t\n")
        add = "".join(f'\n    "{k}": {v},' for k, v in pending.items())
        out = head + add + "\n" + out[close:]
    return out


# --- Rust snippet ----------------------------------------------------------------------------------

def rust_names(stem: str) -> tuple[str, str]:
    """(snake_case, CamelCase) Rust identifiers from a file stem. Accented letters keep their
    base letter ('über' -> 'uber'), not dropped with the accent."""
    import unicodedata

    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    words = [w for w in re.split(r"[^A-Za-z0-9]+", stem) if w]
    if not words:
        words = ["sprite"]
    if words[0][0].isdigit():
        words.insert(0, "sprite")
    snake = "_".join(w.lower() for w in words)
    camel = "".join(w[:1].upper() + w[1:] for w in words)
    return snake, camel


def _rust_float(v: float) -> str:
    """``v`` as a Rust f32 literal (``4.0``, ``0.5``, ``0.0625``): a bare ``4`` is an integer there."""
    text = f"{v:.6g}"
    return text if any(c in text for c in ".e") else text + ".0"


#: Names a module of the game named after the sprite must not take: Rust's keywords, the crate
#: roots (``mod main;`` in main.rs loads itself) and crates the code names (``mod bevy;`` makes
#: ``use bevy::prelude::*`` ambiguous).
_RESERVED_MODULES = frozenset("""main lib bevy std core alloc
as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod move mut pub
ref return self static struct super trait true type unsafe use where while abstract become box do final gen macro
override priv try typeof unsized virtual yield""".split())


#: On-screen pixels per true sprite pixel in the Rust snippet (pixel art shown at 1:1 is tiny).
DISPLAY_SCALE = 4.0


def rust_snippet(sheet: Sheet | None, asset_path: str, version: BevyVersion, *, display_scale: float = DISPLAY_SCALE,
                 tile_array: bool = False) -> str:
    """Rust code for the project's Bevy version that loads ``asset_path``, builds the grid
    layout and plays the sheet's animations (a single still image when ``sheet`` is None);
    ``display_scale``: screen pixels per image pixel in the spawned ``Transform``;
    ``tile_array``: the image loads as an array texture (one layer per tile), which only a
    tilemap's tileset can show, not a sprite or an atlas."""
    snake, camel = rust_names(Path(asset_path).stem)
    up = snake.upper()
    v = version.minor
    nearest = "DefaultPlugins.set(ImagePlugin::default_nearest())"
    head = [
        f"// DGX-Pixels export for Bevy {version.short}: \"{asset_path}\"",
    ]
    # Where the code goes: a newcomer pasting it needs to know both places work.
    module = snake if snake not in _RESERVED_MODULES else f"{snake}_sprite"
    where = [
        "// Where it goes: below main() in src/main.rs (leave out the `use` line main.rs already has),",
        f"// or in a file of its own, src/{module}.rs, with `mod {module};` and `use {module}::*;` in main.rs.",
    ]
    camera = "Camera2d" if v >= 15 else "Camera2dBundle::default()"
    if tile_array and sheet is not None:
        head += [
            f"// An array texture: {len(sheet.frames)} tiles of {sheet.cell_w}x{sheet.cell_h} px, one layer each (the",
            "// .png.meta sets array_layout). Give it to a tilemap as its tileset (Bevy's TilemapChunk,",
            "// its `tileset` field); a Sprite or a TextureAtlas cannot show an array texture.",
            *where,
            "// Use, in a system that takes asset_server: Res<AssetServer>:",
            f"//     let tileset = {snake}_tileset(&asset_server);",
            "use bevy::prelude::*;",
            "",
            f"pub fn {snake}_tileset(asset_server: &AssetServer) -> Handle<Image> {{",
            f'    asset_server.load("{asset_path}")',
            "}",
        ]
        return "\n".join(head) + "\n"
    if sheet is None:
        head.append("// The .png.meta next to the image selects nearest (pixel-crisp) filtering. If your app")
        head.append(f"// turns .meta reading off (AssetMetaCheck::Never), add instead: {nearest}")
        head += [
            "//",
            *where,
            f"// Use: app.add_systems(Startup, spawn_{snake}); it spawns the sprite once at startup. The app",
            "// needs a 2D camera, e.g. in a startup system:",
            f"//     commands.spawn({camera});",
            "use bevy::prelude::*;",
            "",
        ]
        if v >= 15:
            spawn = f'    commands.spawn((\n        Sprite::from_image(asset_server.load("{asset_path}")),\n        Transform::from_scale(Vec3::splat({_rust_float(display_scale)})),\n    ));'
        else:
            spawn = (f'    commands.spawn(SpriteBundle {{\n        texture: asset_server.load("{asset_path}"),\n'
                     f'        transform: Transform::from_scale(Vec3::splat({_rust_float(display_scale)})),\n        ..default()\n    }});')
        return "\n".join(head) + "\n" + (
            f"pub fn spawn_{snake}(mut commands: Commands, asset_server: Res<AssetServer>) {{\n{spawn}\n}}\n"
        )

    anims = list(sheet.animations) or [Animation("all", 0, len(sheet.frames) - 1, 10.0, "forward")]
    px, py = sheet.padding
    ox, oy = sheet.offset
    if v >= 14:
        tile = f"UVec2::new({sheet.cell_w}, {sheet.cell_h})"
        pad = "None" if not (px or py) else f"Some(UVec2::new({px}, {py}))"
        off = "None" if not (ox or oy) else f"Some(UVec2::new({ox}, {oy}))"
    else:
        tile = f"Vec2::new({sheet.cell_w:.1f}, {sheet.cell_h:.1f})"
        pad = "None" if not (px or py) else f"Some(Vec2::new({px:.1f}, {py:.1f}))"
        off = "None" if not (ox or oy) else f"Some(Vec2::new({ox:.1f}, {oy:.1f}))"
    grid_args = f"{tile}, {sheet.columns}, {sheet.rows}, {pad}, {off}"
    # frames that hold for different times (a GIF's idle: a long first frame) keep their own
    # durations; one frame rate for all would flatten the hold
    ms = sheet.frame_ms
    timed = ms is not None and len(ms) == len(sheet.frames) and len(set(ms)) > 1

    head += [
        f"// {len(sheet.frames)} frames on a {sheet.columns}x{sheet.rows} grid of {sheet.cell_w}x{sheet.cell_h} px "
        f"(padding {px},{py}; offset {ox},{oy}).",
        "// The .png.meta next to the image selects nearest (pixel-crisp) filtering. If your app",
        f"// turns .meta reading off (AssetMetaCheck::Never), add instead: {nearest}",
        "//",
        *where,
        "// Use: app.add_plugins(" + camel + "SpritePlugin); it spawns the sprite at startup and plays the",
        "// clip given to " + camel + "Animation::new. The app needs a 2D camera, e.g. in a startup system:",
        f"//     commands.spawn({camera});",
        "use bevy::prelude::*;",
        "",
        f"pub struct {camel}SpritePlugin;",
        "",
        f"impl Plugin for {camel}SpritePlugin {{",
        "    fn build(&self, app: &mut App) {",
        f"        app.add_systems(Startup, spawn_{snake})",
        f"            .add_systems(Update, animate_{snake});",
        "    }",
        "}",
        "",
        "#[derive(Clone, Copy, PartialEq, Eq, Debug)]",
        "#[allow(dead_code)] // the clips below may use only some of the modes",
        f"pub enum {camel}Play {{",
        "    Forward,",
        "    Reverse,",
        "    PingPong,",
        "}",
        "",
        "/// One named animation: atlas indices `first..=last` at `fps` frames per second.",
        *(["#[allow(dead_code)] // fps: the frames' own durations below time this sheet"] if timed else []),
        f"pub struct {camel}Clip {{",
        "    pub name: &'static str,",
        "    pub first: usize,",
        "    pub last: usize,",
        "    pub fps: f32,",
        f"    pub play: {camel}Play,",
        "}",
        "",
        f"pub const {up}_CLIPS: &[{camel}Clip] = &[",
    ]
    play = {"forward": "Forward", "reverse": "Reverse", "pingpong": "PingPong"}
    for a in anims:
        head.append(
            f'    {camel}Clip {{ name: "{a.name}", first: {a.first}, last: {a.last}, fps: {float(a.fps):.1f}, '
            f"play: {camel}Play::{play[a.direction]} }},"
        )
    head += ["];", ""]
    if timed:
        head += [
            "/// How long each atlas frame shows, in seconds (the source animation's own timing;",
            "/// it overrides the clips' fps).",
            f"pub const {up}_FRAME_SECS: &[f32] = &[" + ", ".join(_rust_float(round(m / 1000.0, 4)) for m in ms) + "];",
            "",
        ]
        start = [
            "        let mut animation = Self { clip, step: 0, timer: Timer::from_seconds(1.0, TimerMode::Repeating) };",
            f"        animation.timer = Timer::from_seconds({up}_FRAME_SECS[animation.index()], TimerMode::Repeating);",
            "        animation",
        ]
    else:
        start = [
            f"        let secs = 1.0 / {up}_CLIPS[clip].fps;",
            "        Self { clip, step: 0, timer: Timer::from_seconds(secs, TimerMode::Repeating) }",
        ]

    def retime(indent: str) -> list[str]:
        # the frame just shown sets how long until the next step
        if not timed:
            return []
        return [f"{indent}animation.timer.set_duration(std::time::Duration::from_secs_f32({up}_FRAME_SECS[index]));"]

    head += [
        "/// The clip an entity plays and how far it got.",
        "#[derive(Component)]",
        f"pub struct {camel}Animation {{",
        "    pub clip: usize,",
        "    step: usize,",
        "    timer: Timer,",
        "}",
        "",
        f"impl {camel}Animation {{",
        "    /// Play the clip called `name` (the first clip if there is none by that name).",
        "    pub fn new(name: &str) -> Self {",
        f"        let clip = {up}_CLIPS.iter().position(|c| c.name == name).unwrap_or(0);",
        *start,
        "    }",
        "",
        "    /// Atlas index of the current step.",
        "    pub fn index(&self) -> usize {",
        f"        let c = &{up}_CLIPS[self.clip];",
        "        let n = c.last - c.first + 1;",
        "        match c.play {",
        f"            {camel}Play::Forward => c.first + self.step % n,",
        f"            {camel}Play::Reverse => c.last - self.step % n,",
        f"            {camel}Play::PingPong => {{",
        "                let period = if n > 1 { 2 * n - 2 } else { 1 };",
        "                let s = self.step % period;",
        "                c.first + if s < n { s } else { period - s }",
        "            }",
        "        }",
        "    }",
        "}",
        "",
    ]
    first_clip = anims[0].name
    scale = f"Transform::from_scale(Vec3::splat({_rust_float(display_scale)}))"

    def spawn_with_layout(components: list[str]) -> list[str]:
        # Bevy 0.13+: the image and a TextureAtlasLayout asset, spawned with the animation.
        return [
            f"fn spawn_{snake}(",
            "    mut commands: Commands,",
            "    asset_server: Res<AssetServer>,",
            "    mut layouts: ResMut<Assets<TextureAtlasLayout>>,",
            ") {",
            f'    let texture: Handle<Image> = asset_server.load("{asset_path}");',
            f"    let layout = layouts.add(TextureAtlasLayout::from_grid({grid_args}));",
            f'    let animation = {camel}Animation::new("{first_clip}");',
            "    let index = animation.index();",
            "    commands.spawn((",
            *components,
            "        animation,",
            "    ));",
            "}",
            "",
        ]

    if v >= 15:
        setup = spawn_with_layout([
            "        Sprite::from_atlas_image(texture, TextureAtlas { layout, index }),",
            f"        {scale},",
        ]) + [
            f"fn animate_{snake}(time: Res<Time>, mut query: Query<(&mut {camel}Animation, &mut Sprite)>) {{",
            "    for (mut animation, mut sprite) in &mut query {",
            "        animation.timer.tick(time.delta());",
            "        if animation.timer.just_finished() {",
            "            animation.step += 1;",
            "            let index = animation.index();",
            *retime("            "),
            "            if let Some(atlas) = &mut sprite.texture_atlas {",
            "                atlas.index = index;",
            "            }",
            "        }",
            "    }",
            "}",
        ]
    elif v >= 13:
        if v == 14:
            bundle = [
                "        SpriteBundle {",
                "            texture,",
                f"            transform: {scale},",
                "            ..default()",
                "        },",
                "        TextureAtlas { layout, index },",
            ]
        else:
            bundle = [
                "        SpriteSheetBundle {",
                "            texture,",
                "            atlas: TextureAtlas { layout, index },",
                f"            transform: {scale},",
                "            ..default()",
                "        },",
            ]
        setup = spawn_with_layout(bundle) + [
            f"fn animate_{snake}(time: Res<Time>, mut query: Query<(&mut {camel}Animation, &mut TextureAtlas)>) {{",
            "    for (mut animation, mut atlas) in &mut query {",
            "        animation.timer.tick(time.delta());",
            "        if animation.timer.just_finished() {",
            "            animation.step += 1;",
            "            let index = animation.index();",
            *retime("            "),
            "            atlas.index = index;",
            "        }",
            "    }",
            "}",
        ]
    else:
        setup = [
            f"fn spawn_{snake}(",
            "    mut commands: Commands,",
            "    asset_server: Res<AssetServer>,",
            "    mut atlases: ResMut<Assets<TextureAtlas>>,",
            ") {",
            f'    let texture: Handle<Image> = asset_server.load("{asset_path}");',
            f"    let atlas = atlases.add(TextureAtlas::from_grid(texture, {grid_args}));",
            f'    let animation = {camel}Animation::new("{first_clip}");',
            "    let index = animation.index();",
            "    commands.spawn((",
            "        SpriteSheetBundle {",
            "            texture_atlas: atlas,",
            "            sprite: TextureAtlasSprite::new(index),",
            f"            transform: {scale},",
            "            ..default()",
            "        },",
            "        animation,",
            "    ));",
            "}",
            "",
            f"fn animate_{snake}(",
            "    time: Res<Time>,",
            f"    mut query: Query<(&mut {camel}Animation, &mut TextureAtlasSprite)>,",
            ") {",
            "    for (mut animation, mut sprite) in &mut query {",
            "        animation.timer.tick(time.delta());",
            "        if animation.timer.just_finished() {",
            "            animation.step += 1;",
            "            let index = animation.index();",
            *retime("            "),
            "            sprite.index = index;",
            "        }",
            "    }",
            "}",
        ]
    return "\n".join(head + setup) + "\n"


# --- the export transaction ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WrittenFile:
    """One file an export wrote: absolute ``path``, ``asset_path`` relative to ``assets/``."""

    path: Path
    asset_path: str
    kind: str  # "meta", "png", "atlas", "ron", "manifest"
    size: int
    sha256: str


@dataclass
class ExportResult:
    """What an export did. ``asset_path`` is the final path (after a ``version`` suffix); the
    string to pass to ``asset_server.load``. ``skipped`` when ``overwrite="keep"`` found the
    asset already there (then nothing was written)."""

    project: Path
    assets_root: Path
    asset_path: str
    bevy: BevyVersion
    files: list[WrittenFile]
    snippet: str
    width: int
    height: int
    sheet: Sheet | None = None
    skipped: bool = False
    message: str = ""
    manifest_entry: dict[str, Any] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        return [f.path for f in self.files]

    def file(self, kind: str) -> WrittenFile | None:
        for f in self.files:
            if f.kind == kind:
                return f
        return None

    def summary(self) -> str:
        if self.skipped:
            return self.message
        lines = [f"exported {self.asset_path} ({self.width}x{self.height}) for Bevy {self.bevy.short} [{self.bevy.source}]"]
        lines += [f"  {f.kind:8s} {f.path}" for f in self.files]
        return "\n".join(lines)


def _encode_png(rgba: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    # Always RGBA: engines and checkers expect the alpha channel even on opaque sprites.
    # zlib level 3: for flat pixel art within ~10% of level 6's size at about half the time.
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=3, pnginfo=png_info(text))
    return buf.getvalue()


def _sidecars(rel_png: str) -> dict[str, str]:
    stem = rel_png[: -len(".png")]
    return {"meta": rel_png + ".meta", "atlas": stem + ".json", "ron": stem + ".assets.ron"}


def _stale_sidecars(assets_root: Path, previous: dict[str, Any] | None, writing: set[str]) -> list[Path]:
    """The atlas and .assets.ron an earlier export of this asset wrote that this one does not
    (a sheet replaced by a single image, ``--no-atlas``): left behind they describe a grid the
    PNG no longer has. Only files still as recorded go; one edited since is the user's."""
    stale = []
    own = _sidecars(previous["path"]) if previous else {}
    for f in (previous or {}).get("files", []):
        rel = f.get("path") if isinstance(f, dict) else None
        if f.get("kind") not in ("atlas", "ron") or rel in writing or rel != own.get(f.get("kind")):
            continue
        path = confine(assets_root, rel)
        try:
            if path.is_file() and asset_manifest.file_sha256(path) == f.get("sha256"):
                stale.append(path)
        except OSError:
            pass
    return stale


def _versioned(rel_png: str, n: int) -> str:
    stem = rel_png[: -len(".png")]
    return f"{stem}-{n}.png"


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold SIGINT and SIGTERM until the block ends, then deliver them. Only the main thread
    can: elsewhere (a ComfyUI worker) signals never arrive as exceptions anyway."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, lambda signum, _frame: caught.append(signum))
        except (ValueError, OSError):  # pragma: no cover - an embedding that owns the signals
            pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for signum in caught[:1]:
            signal.raise_signal(signum)


class _Staging:
    """The folders an export writes into, each opened from the assets folder without following
    a symlink (``safepath.open_folder``), and every temp file staged in them."""

    def __init__(self) -> None:
        self.folders: dict[Path, ConfinedFolder] = {}
        self.created: list[tuple[ConfinedFolder, str]] = []  # listed by the worker the moment it exists
        self.renamed: set[tuple[ConfinedFolder, str]] = set()

    def folder(self, assets_root: Path, target: Path, rel: str) -> ConfinedFolder:
        if target.parent not in self.folders:
            self.folders[target.parent] = open_folder(assets_root, target.parent, what=rel)
        return self.folders[target.parent]

    def commit(self, tmp: str, target: Path) -> None:
        folder = self.folders[target.parent]
        folder.commit(tmp, target.name)
        self.renamed.add((folder, tmp))

    def clean_up(self) -> None:
        """Remove every temp file not renamed into place, and close the folders."""
        for folder, tmp in self.created:
            if (folder, tmp) not in self.renamed:
                with contextlib.suppress(OSError):
                    folder.discard(tmp)
        for folder in self.folders.values():
            folder.close()


def _stage(target: Path, data: bytes, staging: _Staging) -> str:
    """Write ``data`` to a temp file beside ``target``, in its folder as ``staging`` opened it;
    returns the temp file's name in that folder."""
    folder = staging.folders[target.parent]
    try:
        tmp = folder.stage(target.name, data)
    except OSError as exc:
        # named after the file the user asked for, not the temp file beside it
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    staging.created.append((folder, tmp))
    return tmp


def export_sheet(
    project: str | os.PathLike,
    asset_path: str,
    sheet: Sheet | Sequence[np.ndarray],
    *,
    bevy_version: str | None = "auto",
    overwrite: str = "fail",
    upscale: int = 1,
    animations: str | Sequence[Animation] | None = None,
    atlas: bool = True,
    assets_ron: bool | str = False,
    provenance: dict[str, Any] | None = None,
    assets_dir: str = "assets",
    create_project: bool = False,
    sheet_options: dict[str, Any] | None = None,
    tile_array: bool = False,
) -> ExportResult:
    """Export a sprite sheet into ``<project>/<assets_dir>/<asset_path>``.

    ``sheet`` is a ``Sheet`` or a list of frames (then assembled with ``sheet_options``, the
    keyword arguments of ``build_sheet``). ``animations`` (spec string or list) replaces the
    sheet's. ``assets_ron``: False, True (``<stem>.assets.ron`` next to the PNG) or a path
    relative to ``assets/`` of a dynamic-assets file to merge the entries into. ``overwrite`` (what
    to do when the PNG or its .meta exists): ``fail`` (default, raise ``ExportError``) |
    ``replace`` | ``keep`` (leave it, write nothing) | ``version`` (write ``knight-2.png``).
    ``provenance`` (workflow, params, seed...) is stored in the manifest entry. ``tile_array``
    makes the .meta load the sheet as an array texture, one layer per cell (tilesets for Bevy's
    ``TilemapChunk``; Bevy 0.18+).
    Raises ``PathEscapeError`` / ``ExportError`` / ``InvalidArgumentError`` before writing anything.
    """
    if not isinstance(sheet, Sheet):
        if not isinstance(sheet, (list, tuple, np.ndarray)):
            raise InvalidArgumentError(
                f"sheet is a {type(sheet).__name__}, expected a Sheet or a list of frames",
                hint="build it with build_sheet / sheet_from_image, or pass the frames",
            )
        sheet = build_sheet(list(sheet), **(sheet_options or {}))
    if animations is not None:
        anims = as_animations(animations, len(sheet.frames))
        sheet = Sheet(sheet.image, sheet.cell_w, sheet.cell_h, sheet.columns, sheet.rows, sheet.padding,
                      sheet.offset, sheet.frames, anims, sheet.pow2)
    return _export(project, asset_path, sheet.image, sheet, bevy_version=bevy_version, overwrite=overwrite,
                   upscale=upscale, atlas=atlas, assets_ron=assets_ron, provenance=provenance,
                   assets_dir=assets_dir, create_project=create_project, tile_array=tile_array)


def export_asset(
    project: str | os.PathLike,
    asset_path: str,
    image: np.ndarray,
    *,
    bevy_version: str | None = "auto",
    overwrite: str = "fail",
    upscale: int = 1,
    assets_ron: bool | str = False,
    provenance: dict[str, Any] | None = None,
    assets_dir: str = "assets",
    create_project: bool = False,
) -> ExportResult:
    """Export one image (no atlas) into ``<project>/<assets_dir>/<asset_path>``: PNG + .meta
    (+ optional bevy_asset_loader entry) + manifest entry. Same options as ``export_sheet``."""
    rgba = as_rgba(image, source="image")
    return _export(project, asset_path, rgba, None, bevy_version=bevy_version, overwrite=overwrite,
                   upscale=upscale, atlas=False, assets_ron=assets_ron, provenance=provenance,
                   assets_dir=assets_dir, create_project=create_project)


def _export(project, asset_path, image, sheet, **options) -> ExportResult:
    try:
        return _export_checked(project, asset_path, image, sheet, **options)
    except DgxPixelsError:
        raise  # PathEscapeError is an OSError too, and says what it refused itself
    except OSError as exc:
        # a file-system refusal no check foresaw (a name too long for it, a read-only disk):
        # said as a write error naming the file, never as a bare OSError
        raise ExportError(f"cannot write {exc.filename or project}: {exc.strerror or exc}",
                          hint="check the names (length, characters), the free space and the permissions") from None


REPLACE_HINT = ("move or rename that file, or use overwrite policy 'version' (--overwrite version: writes NAME-2.png "
                "beside it)")


def check_replaceable(assets_root: Path, rel: str, entry: dict | None) -> None:
    """``ExportError`` unless overwrite policy ``replace`` may write ``rel`` (and its ``.meta``)
    under ``assets_root``: replace stands for "update what dgx-pixels exported here", so a file
    the project's manifest does not record (``entry`` None: the user's own art) or one edited
    since it was written is refused, not overwritten without a word."""
    recorded = {f["path"]: f.get("sha256") for f in (entry or {}).get("files") or []
                if isinstance(f, dict) and isinstance(f.get("path"), str)}
    if entry is not None and isinstance(entry.get("sha256"), str):
        recorded[rel] = entry["sha256"]
    for name in (rel, rel + ".meta"):
        # confined: a .meta that is a symlink leading out is neither read nor reported on
        path = confine(assets_root, name, action="read")
        if not path.is_file():
            continue
        if entry is None:
            raise ExportError(f"{path} exists and dgx-pixels never wrote it (the project's manifest has no record of "
                              f"{rel}); replace would overwrite it", hint=REPLACE_HINT)
        want = recorded.get(name)
        if want is not None and asset_manifest.file_sha256(path) != want:
            raise ExportError(f"{path} was changed since dgx-pixels wrote it (its sha256 is not the recorded one); "
                              "replace would overwrite that edit", hint=REPLACE_HINT)


def _export_checked(project, asset_path, image, sheet, *, bevy_version, overwrite, upscale, atlas, assets_ron,
                    provenance, assets_dir, create_project, tile_array=False) -> ExportResult:
    overwrite = (overwrite or "fail").lower()
    if overwrite not in OVERWRITE_POLICIES:
        raise InvalidArgumentError(f"unknown overwrite policy {overwrite!r}; use fail, replace, keep or version")
    if not isinstance(upscale, (int, np.integer)) or upscale < 1 or upscale > 64:
        raise InvalidArgumentError(f"upscale must be a whole number 1..64, got {upscale!r}")
    big_w, big_h = int(image.shape[1]) * upscale, int(image.shape[0]) * upscale
    if big_w * big_h > MAX_PIXELS or max(big_w, big_h) > MAX_SIDE:
        raise InvalidArgumentError(
            f"upscale {upscale} makes the {image.shape[1]}x{image.shape[0]} image {big_w}x{big_h} pixels, "
            f"more than {MAX_SIDE} on a side or 16384x16384 in all (the largest texture a GPU loads)",
            hint="lower upscale (the .meta's nearest filtering keeps pixels crisp at any display size)",
        )
    project = Path(project).absolute()
    # a symlink inside the project's asset folder leading out is refused here, as it is in an asset path
    confine_assets_dir(project, assets_dir)
    assets_root_hint = project / assets_dir
    rel = check_relative(asset_path, assets_root_hint).as_posix()
    if not rel.lower().endswith(".png"):
        raise InvalidArgumentError(f"asset path {asset_path!r} must end in .png", hint="e.g. sprites/knight.png")
    rel = rel[:-4] + ".png"
    ron_target: str | None = None
    if isinstance(assets_ron, str) and assets_ron.strip():
        ron_target = check_relative(assets_ron.strip(), assets_root_hint).as_posix()
        if not ron_target.endswith(".ron"):
            raise ExportError(f"bevy_asset_loader file {assets_ron!r} must end in .ron", hint="e.g. dynamic.assets.ron")
    for given in (rel, ron_target):
        if given and asset_manifest.in_bookkeeping(given):
            # the manifest and its lock live there (on macOS and Windows whatever the case): an
            # atlas named manifest.json would replace it
            raise ExportError(f"cannot export {given}: {asset_manifest.MANIFEST_DIR}/ holds DGX-Pixels' own records",
                              hint="choose a path outside assets/.dgx-pixels/, e.g. sprites/knight.png")
        if given and "#" in given:
            # AssetPath::parse takes what follows '#' as a label inside the file
            raise ExportError(f"cannot export {given}: Bevy reads '#' in an asset path as the start of a label",
                              hint="leave '#' out of the name, e.g. sprites/knight_1.png")
    if Path(rel).name.lower() == ".png":
        raise ExportError(f"asset path {asset_path!r} has no file name before .png", hint="e.g. sprites/knight.png")

    if not project.is_dir():
        if not create_project:
            require_project_folder(project)
        project.mkdir(parents=True, exist_ok=True)
    if not create_project:
        check_bevy_project(project, bevy_version)
    version = resolve_bevy_version(project, bevy_version)

    if sheet is not None:
        if upscale > 1:
            sheet = sheet.scaled(int(upscale))
        check_layout(sheet)
        pixels = sheet.image
    else:
        pixels = image if upscale == 1 else np.repeat(np.repeat(image, upscale, axis=0), upscale, axis=1)
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)

    # The assets folder itself may not exist yet; refuse when it is a link leading out of the project
    # only if it does not exist (an existing assets/ symlink is the user's own setup).
    assets_root = project / assets_dir
    if not os.path.lexists(assets_root):
        confine(project, assets_dir)
        assets_root.mkdir(parents=True, exist_ok=True)
    # Every target is checked before the lock folder is created.
    confine(assets_root, f"{asset_manifest.MANIFEST_DIR}/{asset_manifest.MANIFEST_NAME}")
    confine(assets_root, rel)

    # a sheet records its grid, so that `sheet --split` cuts it back exactly
    png_bytes = _encode_png(pixels, {LAYOUT_KEY: layout_text(sheet)} if sheet is not None else None)
    array_layout = tile_array_layout(sheet, version) if (tile_array and sheet is not None) else None
    meta_bytes = render_meta(version, array_layout=array_layout).encode("utf-8")

    with asset_manifest.project_lock(project, assets_dir):
        confine_assets_dir(project, assets_dir)  # again: a link swapped in since the first check
        final_rel = rel
        manifest = asset_manifest.read_manifest(project, assets_dir)
        recorded = {e["path"]: e for e in manifest["assets"]}
        previous = recorded.get(rel)
        if overwrite == "replace" and previous is not None and not assets_ron:
            # The game may load the asset's own .assets.ron: a replaced sheet keeps it in step
            # rather than leaving it with the old grid.
            assets_ron = any(f.get("kind") == "ron" and f.get("path") == _sidecars(rel)["ron"]
                             for f in previous.get("files", []))
        writes_atlas = sheet is not None and atlas
        own_ron = assets_ron is True or (ron_target is None and bool(assets_ron))

        def taken(r: str, sidecars_only: bool = False) -> str | None:
            # The PNG, its .meta (a lone .meta would be adopted by a new PNG) and the sidecars
            # this export writes under the same name: a user's own forest.json is no less
            # theirs than forest.png.
            side = _sidecars(r)
            names = [] if sidecars_only else [r, side["meta"]]
            names += ([side["atlas"]] if writes_atlas else []) + ([side["ron"]] if own_ron else [])
            # A sidecar this project's record says an export of r wrote, and still as written,
            # is no one else's: left behind by a PNG deleted since, it is simply rewritten.
            ours = {f["path"]: f.get("sha256") for f in (recorded.get(r) or {}).get("files", [])}
            for n in names:
                p = confine(assets_root, n)
                # (a folder in the way gets its own message below, whatever the policy)
                if not os.path.lexists(p) or p.is_dir():
                    continue
                if n != r and n in ours and p.is_file() and asset_manifest.file_sha256(p) == ours[n]:
                    continue
                return n
            return None

        found = taken(rel)
        if found is not None:
            if overwrite == "fail":
                raise ExportError(f"{assets_root / found} already exists",
                                  hint="choose another overwrite policy (--overwrite, or the node's overwrite "
                                       "input): version writes name-2.png beside it, keep leaves it; replace "
                                       "replaces only an asset dgx-pixels wrote and nobody edited since")
            if overwrite == "replace":
                check_replaceable(assets_root, rel, previous)
            foreign = taken(rel, sidecars_only=True) if overwrite == "replace" else None
            if foreign is not None:
                # replace is asked for the asset named; a file beside it that no export of it
                # wrote (the user's own level data as ogre.json) was not
                raise ExportError(f"{assets_root / foreign} is in the way and no export of {rel} wrote it; "
                                  "replace would overwrite it",
                                  hint="move that file, or use overwrite policy version (writes name-2.png and its own files)")
            if overwrite == "keep" and not os.path.lexists(confine(assets_root, rel)):
                # only a file beside it is there: "kept existing" would name an image the game
                # does not have
                raise ExportError(f"{assets_root / found} is in the way, but {rel} itself does not exist: keep "
                                  "would leave the game without the image",
                                  hint="move that file, or use overwrite policy version (writes name-2.png and its own files)")
            if overwrite == "keep":
                return ExportResult(project, assets_root, rel, version, [], "", pixels.shape[1], pixels.shape[0],
                                    sheet, True, f"kept existing {rel} (overwrite policy 'keep'); nothing written")
            if overwrite == "version":
                n = 2
                while taken(_versioned(rel, n)) is not None:
                    n += 1
                final_rel = _versioned(rel, n)
        side = _sidecars(final_rel)
        targets: list[tuple[str, str, bytes]] = [("meta", side["meta"], meta_bytes), ("png", final_rel, png_bytes)]
        if writes_atlas:
            doc = atlas_json(sheet, Path(final_rel).name)
            targets.append(("atlas", side["atlas"], atlas_json_bytes(doc)))
        if assets_ron:
            ron_rel = ron_target or side["ron"]
            # an array texture is no atlas: a layout entry would invite a sprite that cannot show it
            entries = ron_entries(sheet if array_layout is None else None, final_rel, version)
            ron_abs = confine(assets_root, ron_rel)
            try:
                existing = ron_abs.read_text(encoding="utf-8") if ron_abs.is_file() else None
                named = ron_entry_paths(existing) if existing and existing.strip() else {}
            except (ValueError, UnicodeDecodeError) as exc:
                raise ExportError(f"cannot add entries to {ron_abs}: {exc}",
                                  hint="fix the file or export to a separate .assets.ron") from exc
            for key in entries:
                if named.get(key, final_rel) != final_rel:
                    # keys come from the file name: ui/knight.png would take sprites/knight.png's
                    raise ExportError(f"{ron_abs} already has an entry {key!r} for {named[key]}, "
                                      f"another asset than {final_rel}",
                                      hint="export under another file name, or into another .assets.ron")
            # The keys an earlier export of this image wrote for a grid it no longer has.
            image_key = next(iter(entries))
            base = image_key.rsplit(".", 1)[0]
            drop = [f"{base}.layout", f"{base}.atlas"] if named.get(image_key) == final_rel else []
            merged = merge_ron(existing, entries, drop=[k for k in drop if k not in entries])
            if version.minor < 13 and any(re.search(r"\b(padding|offset)_[xy]:", v) for v in entries.values()):
                merged = with_implicit_some(merged)
            targets.append(("ron", ron_rel, merged.encode("utf-8")))

        resolved = [(kind, r, confine(assets_root, r), data) for kind, r, data in targets]
        stale = _stale_sidecars(assets_root, previous if final_rel == rel else None, {r for _k, r, _d in targets})
        files = [
            WrittenFile(abs_path, r, kind, len(data), hashlib.sha256(data).hexdigest())
            for kind, r, abs_path, data in resolved
        ]
        png = files[1]
        entry: dict[str, Any] = {
            "path": final_rel,
            "kind": "sheet" if sheet is not None else "image",
            "size": png.size,
            "sha256": png.sha256,
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "bevy_version": version.short,
            "bevy_version_source": version.source,
            "upscale": int(upscale),
            "files": [{"path": f.asset_path, "kind": f.kind, "size": f.size, "sha256": f.sha256} for f in files],
        }
        if sheet is not None:
            entry["layout"] = {
                "cell_w": sheet.cell_w, "cell_h": sheet.cell_h, "columns": sheet.columns, "rows": sheet.rows,
                "padding": list(sheet.padding), "offset": list(sheet.offset), "frames": len(sheet.frames),
            }
            entry["animations"] = [
                {"name": a.name, "from": a.first, "to": a.last, "fps": a.fps, "direction": a.direction}
                for a in sheet.animations
            ]
        if array_layout:
            entry["array_layout"] = list(array_layout)
        if provenance:
            entry["provenance"] = provenance
        mbytes, stored = asset_manifest.updated_manifest(project, entry, assets_dir, data=manifest)
        mrel = f"{asset_manifest.MANIFEST_DIR}/{asset_manifest.MANIFEST_NAME}"
        mpath = confine(assets_root, mrel)
        resolved.append(("manifest", mrel, mpath, mbytes))
        files.append(WrittenFile(mpath, mrel, "manifest", len(mbytes), hashlib.sha256(mbytes).hexdigest()))

        for _kind, r, abs_path, _data in resolved:
            # checked before anything is written: a rename onto a folder fails half way, with
            # the .meta and the PNG already in place and no manifest entry for them
            if abs_path.is_dir():
                raise ExportError(f"cannot write {r}: a folder stands where that file goes ({abs_path})",
                                  hint="move the folder away, or export under another name")
        # Each target's folder, created where missing and opened from the assets folder without
        # following a symlink (POSIX): the files are then staged and renamed by name in it, so a
        # folder swapped for a symlink after the checks above cannot take them out.
        staging = _Staging()
        pool = ThreadPoolExecutor(max_workers=len(resolved))
        try:
            for _kind, r, abs_path, _data in resolved:
                staging.folder(assets_root, abs_path, r)
            # Written and fsynced in parallel: the file system commits them together, which costs
            # one journal flush instead of one per file.
            futures = [pool.submit(_stage, abs_path, data, staging) for _k, _r, abs_path, data in resolved]
            errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
            if errors:
                raise errors[0]
            # .meta first, the PNG second, the manifest last: a watcher that sees the PNG already
            # finds its settings, and the manifest never lists a file that is not there yet. An
            # interrupt waits until all of them are in place: never a PNG without its record.
            # A folder swapped (for a symlink, say) while the files were staged is refused here,
            # before anything is renamed into place: the staged files are in the folder that was
            # opened, wherever it now is.
            for folder in staging.folders.values():
                folder.check_in_place()
            with _interrupts_deferred():
                for fut, (_k, _r, abs_path, _d) in zip(futures, resolved):
                    staging.commit(fut.result(), abs_path)
            for path in stale:
                with contextlib.suppress(FileNotFoundError):
                    remove_confined(assets_root, path)
        except PathEscapeError:
            raise  # a folder swapped for a symlink says so itself
        except OSError as exc:
            raise ExportError(f"cannot write {exc.filename or assets_root}: {exc.strerror or exc}",
                              hint="check that the assets folder is writable, has space, and that no file "
                                   "stands where a folder is needed") from None
        finally:
            # An interrupt (Ctrl-C, SIGTERM) may land while the workers still write: they finish
            # first, so that no temp file appears after the clean-up.
            pool.shutdown(wait=True)
            staging.clean_up()

    # the snippet shows the sprite 4x its true size: an image already enlarged needs less
    snippet = rust_snippet(sheet, final_rel, version, display_scale=DISPLAY_SCALE / upscale,
                           tile_array=array_layout is not None)
    return ExportResult(project, assets_root, final_rel, version, files, snippet, int(pixels.shape[1]),
                        int(pixels.shape[0]), sheet, False, "", stored)
