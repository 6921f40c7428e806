"""Keeping every file we write inside the folder the user allowed.

Two layers:

1. ``confine(root, relative)`` turns an asset path such as ``sprites/knight.png`` into an
   absolute path under ``root``, refusing anything that could land elsewhere: ``..``
   components, absolute paths (POSIX ``/x``, Windows ``C:\\x`` / ``\\\\server``), backslashes,
   NUL bytes, empty components, and symlinks (existing parents or the file itself) whose real
   path leaves the root. It raises ``PathEscapeError`` naming the path and the root, before
   anything is written.

2. Allowed roots for the ComfyUI node. A graph can be sent to a ComfyUI server by anyone who
   can reach it, so the node never trusts a folder named in the graph alone. Roots come from
   configuration:

   - the environment variable ``DGX_PIXELS_BEVY_ROOTS`` (``os.pathsep``-separated folders);
   - the JSON file ``<ComfyUI user dir>/dgx-pixels.json`` or ``dgx-pixels.config.json`` next to
     the node pack, key ``"bevy_roots"`` (a list of folders).

   A Bevy project is allowed when it is one of those roots or lies inside one. With no
   configuration at all the node writes only under ComfyUI's output folder
   (``output/bevy/<project name>``).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from .errors import PathEscapeError

ENV_ROOTS = "DGX_PIXELS_BEVY_ROOTS"
CONFIG_KEY = "bevy_roots"
USER_CONFIG_NAME = "dgx-pixels.json"
PACK_CONFIG_NAME = "dgx-pixels.config.json"

_DRIVE = re.compile(r"^[A-Za-z]:")


def _refuse(path: str, root: str | os.PathLike, why: str, action: str = "write",
            hint: str | None = None) -> PathEscapeError:
    return PathEscapeError(f"refusing to {action} {path!r}: {why} (allowed root: {os.fspath(root)})", hint=hint)


_NOT_ON_WINDOWS = '"<>|*?'
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def check_relative(path: str, root: str | os.PathLike = "<root>", *, action: str = "write",
                   hint: str | None = None) -> PurePosixPath:
    """Validate the *text* of a relative asset path; return it as a ``PurePosixPath``.

    Accepts forward-slash paths of plain components. Raises ``PathEscapeError`` otherwise;
    its message says what was refused (``action``: "write" or "read") and ``hint`` replaces
    the default hint.
    """
    if not isinstance(path, str):
        path = os.fspath(path)
    if path == "" or path.strip() == "":
        raise _refuse(path, root, "the path is empty", action, hint)
    if "\x00" in path:
        raise _refuse(path, root, "the path contains a NUL byte", action, hint)
    if "\\" in path:
        raise _refuse(path, root, "backslashes are not allowed (use '/')", action, hint)
    if path.startswith("/") or _DRIVE.match(path) or path.startswith("~"):
        raise _refuse(path, root, "absolute paths are not allowed; give a path relative to the root", action, hint)
    parts = path.split("/")
    for part in parts:
        if part == "..":
            raise _refuse(path, root, "'..' is not allowed", action, hint)
        if part == "":
            raise _refuse(path, root, "empty path component ('//' or trailing '/')", action, hint)
        if part == ".":
            raise _refuse(path, root, "'.' components are not allowed", action, hint)
        if part != part.strip() or part.endswith("."):
            # Windows silently drops trailing dots/spaces, which would alias another file.
            raise _refuse(path, root, f"component {part!r} ends with a space or dot", action, hint)
        if any(ord(ch) < 32 for ch in part) or ":" in part:
            raise _refuse(path, root, f"component {part!r} contains a control character or ':'", action, hint)
        if action == "write" and part.split(".")[0].upper() in _WINDOWS_DEVICES:
            raise _refuse(path, root, f"component {part!r} is a device name on Windows (CON, NUL, COM1...), "
                                      "where no file can be called that", action, hint)
        if action == "write" and any(ch in _NOT_ON_WINDOWS for ch in part):
            # A game's assets travel to Windows; a '"' would also end the string in the
            # Rust snippet and the .assets.ron that name the file.
            raise _refuse(path, root, f"component {part!r} contains one of {' '.join(_NOT_ON_WINDOWS)}, "
                                      "which Windows does not allow in file names", action, hint)
    return PurePosixPath(path)


def _inside(child: Path, root: Path) -> bool:
    try:
        child.relative_to(root)
        return True
    except ValueError:
        return False


def confine(root: str | os.PathLike, relative: str, *, action: str = "write", hint: str | None = None) -> Path:
    """Absolute path of ``relative`` under ``root``; raises ``PathEscapeError`` on any escape.

    Every existing component (parents and the file itself) is resolved with ``realpath``; if
    one is a symlink whose target lies outside the real root the path is refused. Creates
    nothing. ``action`` ("write" or "read") and ``hint`` shape the error message.
    """
    rel = check_relative(relative, root, action=action, hint=hint)
    root_real = Path(os.path.realpath(os.fspath(root)))
    cur = root_real
    for part in rel.parts:
        cur = cur / part
        if os.path.lexists(cur):
            real = Path(os.path.realpath(cur))
            if not _inside(real, root_real):
                raise _refuse(relative, root, f"{cur} is a symlink leading outside the root (to {real})", action, hint)
            cur = real
    if not _inside(cur, root_real) or cur == root_real:
        raise _refuse(relative, root, "it does not name a file inside the root", action, hint)
    return cur


def make_parents(root: str | os.PathLike, target: Path) -> None:
    """Create ``target``'s missing parent folders, re-checking confinement after creating them
    (a folder swapped for a symlink meanwhile is caught here)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    root_real = Path(os.path.realpath(os.fspath(root)))
    real_parent = Path(os.path.realpath(target.parent))
    if not _inside(real_parent, root_real):
        raise PathEscapeError(
            f"refusing to write {target}: its folder resolves to {real_parent}, outside the allowed root {root_real}"
        )


# --- configured roots (ComfyUI node) ---------------------------------------------------------

@dataclass(frozen=True)
class RootConfig:
    """Where the node may write: ``roots`` from configuration, or ``default_root`` when none."""

    roots: tuple[Path, ...]
    default_root: Path | None
    sources: tuple[str, ...]

    @property
    def configured(self) -> bool:
        return bool(self.roots)

    def describe(self) -> str:
        if self.roots:
            return "allowed Bevy roots: " + ", ".join(str(r) for r in self.roots) + f" (from {', '.join(self.sources)})"
        return f"no Bevy roots configured: writing only under {self.default_root}"


def _roots_from_file(path: Path) -> list[Path]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise PathEscapeError(f"cannot read the roots configuration {path}: {exc}",
                              hint=f'it must be JSON like {{"{CONFIG_KEY}": ["/home/me/games/my_game"]}}') from exc
    roots = data.get(CONFIG_KEY, []) if isinstance(data, dict) else []
    if isinstance(roots, str):
        roots = [roots]
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise PathEscapeError(f"{path}: {CONFIG_KEY!r} must be a list of folder paths")
    return [Path(os.path.expanduser(r)) for r in roots if r.strip()]


def load_root_config(
    *,
    env: Mapping[str, str] | None = None,
    config_files: Iterable[str | os.PathLike] = (),
    default_root: str | os.PathLike | None = None,
) -> RootConfig:
    """Gather allowed roots from ``DGX_PIXELS_BEVY_ROOTS`` and the JSON ``config_files``.

    Relative roots are refused (they would depend on the server's working folder).
    """
    env = os.environ if env is None else env
    roots: list[Path] = []
    sources: list[str] = []
    raw = env.get(ENV_ROOTS, "")
    if raw.strip():
        roots += [Path(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p.strip()]
        sources.append(ENV_ROOTS)
    for f in config_files:
        found = _roots_from_file(Path(f))
        if found:
            roots += found
            sources.append(str(f))
    for r in roots:
        if not r.is_absolute():
            raise PathEscapeError(f"configured Bevy root {r} is not an absolute path",
                                  hint=f"fix {ENV_ROOTS} or the '{CONFIG_KEY}' list")
    uniq = []
    for r in roots:
        if r not in uniq:
            uniq.append(r)
    return RootConfig(tuple(uniq), Path(default_root) if default_root else None, tuple(sources))


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def resolve_project(project: str, config: RootConfig, assets_dir: str = "assets") -> Path:
    """The Bevy project folder named by a node input, validated against ``config``.

    - configured roots: ``project`` is an absolute folder equal to or inside a root, or a plain
      name: a root whose folder name it is, else ``<first root where it exists>/<name>``;
    - no configuration: ``project`` must be a plain name and maps to ``<default_root>/<name>``.

    The project's ``assets_dir`` must lead inside the roots too: a symlink there to a folder
    outside them would take every write with it.
    """
    path = _project_path(project, config)
    assets = path / assets_dir
    if os.path.lexists(assets):
        real = Path(os.path.realpath(assets))
        roots = list(config.roots) or ([config.default_root] if config.default_root is not None else [])
        if not any(_inside(real, Path(os.path.realpath(r))) for r in roots):
            raise PathEscapeError(
                f"refusing project {str(project).strip()!r}: its {assets_dir}/ folder is a symlink leading outside "
                f"the allowed roots (to {real})",
                hint="replace the link by a folder, or add its target to the allowed roots")
    return path


def _project_path(project: str, config: RootConfig) -> Path:
    """:func:`resolve_project` without the check of the assets folder."""
    text = (project or "").strip()
    if not text:
        raise PathEscapeError("no Bevy project given", hint="enter a project name or folder")
    if "\x00" in text:
        raise PathEscapeError(f"refusing project {text!r}: it contains a NUL byte", hint="enter a project name or folder")
    if not config.roots:
        if config.default_root is None:
            raise PathEscapeError("no Bevy roots are configured and there is no default output folder",
                                  hint=f"set {ENV_ROOTS} to your Bevy project folders")
        if not _NAME.match(text) or text.endswith("."):
            raise PathEscapeError(
                f"refusing project {text!r}: with no configured roots only a plain project name is allowed "
                f"(written under {config.default_root})",
                hint=f"set {ENV_ROOTS} or add \"{CONFIG_KEY}\" to {USER_CONFIG_NAME} to write into a real Bevy project",
            )
        return confine(config.default_root, text)
    if os.path.isabs(os.path.expanduser(text)):
        real = Path(os.path.realpath(os.path.expanduser(text)))
        for root in config.roots:
            root_real = Path(os.path.realpath(root))
            if _inside(real, root_real):
                return real
        # the roots come from where this caller takes them: the MCP server's --bevy-root, or
        # the node's environment variable and config file
        where = ("start the server with it as a --bevy-root" if "--bevy-root" in config.sources
                 else f"add it to {ENV_ROOTS} or to \"{CONFIG_KEY}\" in {USER_CONFIG_NAME}")
        raise PathEscapeError(
            f"refusing project {text!r}: it is not inside an allowed Bevy root ({', '.join(str(r) for r in config.roots)})",
            hint=where,
        )
    if not _NAME.match(text) or text.endswith("."):
        raise PathEscapeError(f"refusing project {text!r}: give an absolute folder or a plain project name")
    for root in config.roots:
        if root.name == text:
            return Path(os.path.realpath(root))
    for root in config.roots:
        if (root / text).is_dir():
            return confine(root, text)
    return confine(config.roots[0], text)
