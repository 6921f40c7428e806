"""The record of exported assets kept inside a Bevy project.

``<project>/assets/.dgx-pixels/manifest.json`` lists every asset DGX-Pixels wrote: its path
(relative to ``assets/``, the string ``asset_server.load`` takes), byte size, sha256, time, the
files that belong to it (.meta, atlas JSON, .assets.ron) and, when the caller passes it, where
it came from (workflow, parameters, seed). One entry per asset path: re-exporting a path
replaces its entry and bumps ``exports``.

Several exports may run at once (a ComfyUI queue and a CLI watcher), so every change happens
under an exclusive lock on ``manifest.lock`` and the file is replaced atomically; no entry is
lost and a reader never sees half a file.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import ExportError, PathEscapeError
from .safepath import write_confined

MANIFEST_DIR = ".dgx-pixels"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = "manifest.lock"
FORMAT = "dgx-pixels-asset-manifest"
FORMAT_VERSION = 1


_RECORDS_HINT = f"replace the symlink by a plain folder or file: {MANIFEST_DIR}/ holds DGX-Pixels' own records"

#: How deep JSON a user hands in (a --provenance, a workflow file, a PNG's embedded prompt) may
#: nest. No workflow, /object_info or provenance record comes near it; a deeper document parses
#: but breaks the copies and conversions made of it later (RecursionError), far from the file.
MAX_JSON_DEPTH = 100


class NotFiniteError(ValueError):
    """JSON text holds ``NaN``, ``Infinity`` or ``-Infinity`` (refused by ``loads_json(finite=True)``)."""


def _no_constant(name: str) -> Any:
    raise NotFiniteError(f"{name} is not a number JSON allows (strict readers such as Rust's serde_json "
                     "and JavaScript's JSON.parse refuse it)")


def loads_json(text: str | bytes, *, max_depth: int | None = MAX_JSON_DEPTH, finite: bool = False) -> Any:
    """``json.loads`` for JSON from outside: raises ``ValueError``, as for any invalid JSON,
    also where ``json.loads`` raises ``RecursionError`` (arrays or objects nested thousands
    deep), for a document nesting deeper than ``max_depth`` (None: no limit), and with
    ``finite`` for ``NaN`` / ``Infinity``, which Python reads and writes but JSON has not. Every
    caller turns ``ValueError`` into its "not valid JSON" error, so each of these reads as one."""
    try:
        data = json.loads(text, parse_constant=_no_constant if finite else None)
    except RecursionError:
        raise ValueError("arrays or objects are nested too deeply"
                         + (f" (more than {max_depth} levels)" if max_depth is not None else "")) from None
    if max_depth is not None:
        # iterative: a recursive walk would hit the very limit this check is for
        todo = [(data, 1)]
        while todo:
            node, depth = todo.pop()
            if isinstance(node, (dict, list)):
                if depth > max_depth:
                    raise ValueError(f"arrays or objects are nested more than {max_depth} levels deep")
                todo.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return data


def in_bookkeeping(rel: str) -> bool:
    """Whether the asset path ``rel`` (relative to assets/, '/'-separated) lies in
    ``.dgx-pixels/``, in any letter case (macOS and Windows ignore it): DGX-Pixels' own records,
    never an asset."""
    return rel.split("/")[0].lower() == MANIFEST_DIR


def manifest_path(project: str | os.PathLike, assets_dir: str = "assets") -> Path:
    return Path(project) / assets_dir / MANIFEST_DIR / MANIFEST_NAME


def bookkeeping_path(project: str | os.PathLike, name: str, assets_dir: str = "assets", *,
                     action: str = "write") -> Path:
    """``<project>/<assets_dir>/.dgx-pixels/<name>``, checked to stay inside the assets folder:
    a ``.dgx-pixels`` folder or a file in it that is a symlink leading elsewhere would take
    the manifest, its lock or a watcher's state out of the project (``PathEscapeError``)."""
    from .safepath import confine

    return confine(Path(project) / assets_dir, f"{MANIFEST_DIR}/{name}", action=action, hint=_RECORDS_HINT)


@contextlib.contextmanager
def project_lock(project: str | os.PathLike, assets_dir: str = "assets", timeout: float = 30.0) -> Iterator[None]:
    """Exclusive lock for one Bevy project (held across a whole export, so that choosing a
    versioned name, writing and recording happen as one step)."""
    from .safepath import open_folder

    lock = bookkeeping_path(project, LOCK_NAME, assets_dir)
    try:
        # the folder is opened without following a symlink swapped in after the check (POSIX),
        # and the lock created in it by name; O_NOFOLLOW: a symlink put at the lock's own name
        # after the check does not create a file elsewhere either
        with open_folder(Path(project) / assets_dir, lock.parent, hint=_RECORDS_HINT, what=str(lock)) as folder:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            if folder.fd is not None:
                fd = os.open(LOCK_NAME, flags, 0o644, dir_fd=folder.fd)
            else:
                fd = os.open(lock, flags, 0o644)
    except PathEscapeError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathEscapeError(f"refusing to open the lock {lock}: it is a symlink",
                                  hint="remove it; DGX-Pixels creates the lock file itself") from None
        raise ExportError(f"cannot write {exc.filename or lock}: {exc.strerror or exc}",
                          hint="check that the project's assets folder is writable") from None
    try:
        deadline = time.monotonic() + timeout
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise ExportError(f"timed out waiting for the lock {lock}")
                    time.sleep(0.02)
            try:
                yield
            finally:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ExportError(f"timed out after {timeout:g}s waiting for the lock {lock}",
                                          hint="another export into this project is still running")
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _empty() -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "assets": []}


def read_manifest(project: str | os.PathLike, assets_dir: str = "assets") -> dict[str, Any]:
    """The manifest as a dict (``{"format", "version", "assets": [...]}``); empty when absent."""
    p = bookkeeping_path(project, MANIFEST_NAME, assets_dir, action="read")
    try:
        # no depth limit for our own record (a --provenance of up to MAX_JSON_DEPTH levels sits
        # a few levels down in it), only the RecursionError of one nested past reading
        data = loads_json(p.read_text(encoding="utf-8"), max_depth=None)
    except FileNotFoundError:
        return _empty()
    except (OSError, ValueError) as exc:
        raise ExportError(f"the asset manifest {p} is unreadable: {exc}",
                          hint="move it away; the next export starts a new one") from exc
    if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
        raise ExportError(f"the asset manifest {p} is not a DGX-Pixels manifest",
                          hint="move it away; the next export starts a new one")
    for i, entry in enumerate(data["assets"]):
        # every reader takes an entry's fields for granted: an edited or damaged entry is named here
        problem = _entry_problem(entry)
        if problem:
            raise ExportError(f"the asset manifest {p} is damaged: entry {i} is {json.dumps(entry)[:80]}, {problem}",
                              hint="fix or remove that entry, or move the manifest away; the next export starts a new one")
    return data


def _whole(v: Any, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


# The fields every reader (history, deploy, export) uses, and what each must be.
_FIELDS: dict[str, tuple[Any, str]] = {
    "size": (_whole, "a whole number of bytes"),
    "width": (_whole, "a whole number of pixels"),
    "height": (_whole, "a whole number of pixels"),
    "exports": (lambda v: _whole(v, 1), "a whole number from 1"),
    "upscale": (lambda v: _whole(v, 1), "a whole number from 1"),
    "sha256": (lambda v: isinstance(v, str), "a string"),
    "kind": (lambda v: isinstance(v, str), "a string"),
    "time": (lambda v: isinstance(v, str), "a time as text"),
    "first_time": (lambda v: isinstance(v, str), "a time as text"),
    # "source" is an object (file, sha256...) or, from the ComfyUI node, the text "comfyui"
    "provenance": (lambda v: isinstance(v, dict) and isinstance(v.get("source", {}), (dict, str)), "an object"),
    "files": (lambda v: isinstance(v, list) and all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in v),
              "a list of objects with a 'path'"),
}


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one manifest entry, or None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        return "expected an object with a 'path'"
    for name, (ok, what) in _FIELDS.items():
        if name in entry and entry[name] is not None and not ok(entry[name]):
            return f"its {name!r} should be {what}"
    return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _merge(data: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    if not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ExportError("a manifest entry needs a 'path' (relative to assets/)")
    entry.setdefault("time", now_iso())
    assets = data["assets"]
    for i, old in enumerate(assets):
        if old.get("path") == entry["path"]:
            entry["exports"] = int(old.get("exports", 1)) + 1
            entry.setdefault("first_time", old.get("first_time", old.get("time")))
            assets[i] = entry
            break
    else:
        entry["exports"] = 1
        entry.setdefault("first_time", entry["time"])
        assets.append(entry)
    return entry


def _check_entry(entry: dict[str, Any]) -> None:
    try:
        json.dumps(entry, allow_nan=False)
    except ValueError as exc:
        # NaN and Infinity: Python writes them, but the game's tools (Rust's serde_json, JS) cannot read the file then
        raise ExportError(f"manifest entry for {entry.get('path')!r} holds NaN or Infinity, which JSON has not "
                          f"({exc})", hint="give those fields a number or null") from None
    except (TypeError, RecursionError) as exc:
        raise ExportError(f"manifest entry for {entry.get('path')!r} is not JSON-serialisable: {exc}") from None


def updated_manifest(project: str | os.PathLike, entry: dict[str, Any],
                     assets_dir: str = "assets", data: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """The manifest file content with ``entry`` added or replaced, and the stored entry.

    For callers that write the manifest themselves together with other files; they must hold
    ``project_lock`` from this call until the bytes are written. ``data``: the manifest as
    ``read_manifest`` gave it under that lock, when already read (it is updated in place).
    """
    _check_entry(entry)
    data = read_manifest(project, assets_dir) if data is None else data
    stored = _merge(data, entry)
    try:
        # allow_nan=False: a manifest with NaN or Infinity is no JSON for the game's own tools
        text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        where = manifest_path(project, assets_dir)
        raise ExportError(f"the asset manifest {where} holds NaN or Infinity in an older entry ({exc}), which JSON "
                          "has not; nothing was written",
                          hint="replace those values by null in the file, or move it away; the next export starts "
                               "a new one") from None
    return text.encode("utf-8"), stored


def record_asset(project: str | os.PathLike, entry: dict[str, Any], assets_dir: str = "assets",
                 *, locked: bool = False) -> dict[str, Any]:
    """Add or replace the entry for ``entry["path"]``; returns the stored entry.

    ``entry`` holds at least ``path``; usual keys: ``size``, ``sha256``, ``width``, ``height``,
    ``kind``, ``files``, ``bevy_version``, ``provenance`` (any JSON-serialisable dict).
    ``locked=True`` when the caller already holds ``project_lock``.
    """
    _check_entry(entry)
    ctx = contextlib.nullcontext() if locked else project_lock(project, assets_dir)
    with ctx:
        data, stored = updated_manifest(project, entry, assets_dir)
        write_confined(Path(project) / assets_dir, bookkeeping_path(project, MANIFEST_NAME, assets_dir), data,
                       hint=_RECORDS_HINT)
    return stored


def find_asset(project: str | os.PathLike, path: str, assets_dir: str = "assets") -> dict[str, Any] | None:
    """The manifest entry for one asset path, or None."""
    for e in read_manifest(project, assets_dir)["assets"]:
        if e.get("path") == path:
            return e
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 (hex) of the file at ``path``, read in blocks (a large PNG or model file is
    not read whole). Standard library only: ``install.py`` hashes wheels with it before the
    pack's requirements are installed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
