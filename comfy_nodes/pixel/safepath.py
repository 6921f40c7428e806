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

import errno
import json
import os
import re
import stat
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
    # "C:/x" is absolute on Windows; "a:b.png" is not (it is said below, as the ':' it holds)
    if path.startswith("/") or (_DRIVE.match(path) and path[2:3] in ("/", "")) or path.startswith("~"):
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
        if any(ord(ch) < 32 for ch in part):
            raise _refuse(path, root, f"component {part!r} contains a control character", action, hint)
        if ":" in part:
            raise _refuse(path, root, f"component {part!r} contains ':', which Windows does not allow in file names "
                                      "(it reads 'a:' as a drive and 'x.png:y' as a hidden stream of x.png)",
                          action, hint)
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


ASSETS_DIR_HINT = "give the assets folder relative to the project folder, e.g. assets"


def confine_assets_dir(project: str | os.PathLike, assets_dir: str, *, hint: str | None = ASSETS_DIR_HINT) -> Path:
    """``<project>/<assets_dir>``, the folder every asset of an export goes under; raises
    ``PathEscapeError`` when it could lead out of the project. Creates nothing.

    Its text is checked as an asset path's is (no ``..``, no absolute path...; ``hint`` for
    those errors). The project's own top folder (``assets``) may be a symlink: that is the
    game's layout, which Bevy loads through too, and which the ComfyUI node checks against its
    allowed roots (:func:`resolve_project`). Below that folder every existing component must stay
    inside it, as the components of an asset path must: otherwise ``assets_dir="assets/link"``
    would carry every write through a link that the asset path ``link/x.png`` is refused for.
    """
    rel = check_relative(assets_dir, project, hint=hint)
    base = Path(project)
    top = base / rel.parts[0]
    if not os.path.lexists(top):
        return base / rel  # nothing below it exists either; it is created as plain folders
    top_real = Path(os.path.realpath(top))
    cur = top_real
    for i, part in enumerate(rel.parts[1:], start=2):
        cur = cur / part
        if not os.path.lexists(cur):
            break
        real = Path(os.path.realpath(cur))
        if not _inside(real, top_real):
            shown = base.joinpath(*rel.parts[:i])
            raise PathEscapeError(
                f"refusing the assets folder {os.fspath(assets_dir)!r}: {shown} is a symlink leading outside "
                f"{top} (to {real})",
                hint=f"replace the link {shown} by a folder, or export into the project that holds {real} (--bevy)")
        cur = real
    return base / rel


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
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested past reading
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


# --- writing without following a symlink put there after the check (POSIX) -------------------
#
# ``confine`` checks a path, and the write comes later: a folder on the way replaced by a
# symlink in between would take the write out of the root. Where the system opens files
# relative to an open folder (``dir_fd``: Linux, macOS, the BSDs), the writers below never use
# the path again: they open the root, then each folder from there with O_NOFOLLOW, and create,
# rename and remove files by name inside the last one. A symlink met on the way is refused.
# Elsewhere (Windows) they fall back to paths, checked as ``make_parents`` does.

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

#: whether writes go through folder file descriptors (False: paths, as on Windows)
DIR_FD_WRITES = bool(_O_DIRECTORY and _O_NOFOLLOW) and all(
    f in os.supports_dir_fd for f in (os.open, os.mkdir, os.rename, os.unlink, os.stat))


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux 4.7+)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _parts_inside(root: str | os.PathLike, path: str | os.PathLike, *, action: str = "write",
                  hint: str | None = None) -> tuple[Path, tuple[str, ...]]:
    """(real root, components of ``path`` under it). ``path``: relative text, checked with
    :func:`confine`; or an absolute path as ``confine`` returned it, which must lie in the real
    root (it is not resolved again: a symlink on it now is refused by the walk)."""
    root_real = Path(os.path.realpath(os.fspath(root)))
    text = os.fspath(path)
    if os.path.isabs(text):
        target = Path(os.path.normpath(text))
    else:
        target = confine(root, text, action=action, hint=hint)
    if not _inside(target, root_real):
        raise _refuse(text, root, "it is outside the root", action, hint)
    return root_real, target.relative_to(root_real).parts


def _open_dir(name: str, dir_fd: int | None) -> int:
    return os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)


def _walk_error(exc: OSError, part: str, parent_fd: int, shown: Path, what: str, root: str | os.PathLike,
                action: str, hint: str | None) -> OSError:
    """The error for a folder component that did not open: a symlink (O_NOFOLLOW refused it) is
    an escape; anything else (a file where a folder goes) is the plain OSError, naming it."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            link = stat.S_ISLNK(os.stat(part, dir_fd=parent_fd, follow_symlinks=False).st_mode)
        except OSError:
            link = exc.errno == errno.ELOOP
        if link:
            return _refuse(what, root, f"{shown} is a symlink, not the folder that was checked; "
                                       "nothing is written through it", action, hint)
    return type(exc)(exc.errno, exc.strerror, str(shown))


class ConfinedFolder:
    """A folder inside a root in which files are written, renamed and removed by name.

    With ``fd`` (POSIX) it is an open file descriptor reached from the root without following
    any symlink, so the folder cannot be swapped for a link to elsewhere under the writer; with
    ``fd`` None (Windows) the same methods work on ``path``. Use it as a context manager, or
    call :meth:`close`."""

    def __init__(self, path: Path, fd: int | None, root: str | os.PathLike | None = None, what: str | None = None):
        self.path = path
        self.fd = fd
        self.root = root if root is not None else path
        self.what = what if what is not None else os.fspath(path)

    def check_in_place(self) -> None:
        """``PathEscapeError`` when the folder opened is no longer the one at :attr:`path`
        (moved away and replaced, by a symlink or anything else, since it was opened): what is
        then written in it would not be where the caller thinks. No-op without ``fd``."""
        if self.fd is None:
            return
        mine = os.fstat(self.fd)
        try:
            with open_folder(self.root, self.path, create=False, what=self.what) as now:
                there = os.fstat(now.fd)
        except FileNotFoundError:
            there = None
        if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            raise _refuse(self.what, self.root, f"{self.path} was replaced while it was being written to; "
                                                "nothing was written through the replacement")

    def __enter__(self) -> "ConfinedFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _where(self, name: str) -> str | int:
        return name if self.fd is not None else os.fspath(self.path / name)

    def mode_for(self, name: str) -> int:
        """The mode a file written as ``name`` gets: the replaced file's, or 0o666 less the
        umask as a plain ``open`` gives."""
        try:
            if self.fd is not None:
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    return stat.S_IMODE(st.st_mode)
            else:
                return stat.S_IMODE(os.stat(self.path / name).st_mode)
        except OSError:
            pass
        return 0o666 & ~current_umask()

    def stage(self, name: str, data: bytes) -> str:
        """Write ``data`` to a new temp file ``.<name>.XXXXXXXX.tmp`` in this folder, fsynced,
        with the mode ``name`` will have; returns the temp file's name. Nothing is left behind
        on error."""
        import secrets
        import tempfile

        mode = self.mode_for(name)
        if self.fd is None:
            fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.path)
            tmp = os.path.basename(tmp_path)
        else:
            for _ in range(100):
                tmp = f".{name}.{secrets.token_hex(4)}.tmp"
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600,
                                 dir_fd=self.fd)
                    break
                except FileExistsError:
                    continue
            else:  # pragma: no cover - 100 collisions of 32 random bits
                raise FileExistsError(errno.EEXIST, "no free temp file name", str(self.path / name))
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                else:
                    os.chmod(self.path / tmp, mode)
            except OSError:
                pass  # a file system without modes (FAT) keeps its own
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            self.discard(tmp)
            raise
        return tmp

    def commit(self, tmp: str, name: str) -> None:
        """Rename the temp file ``tmp`` onto ``name`` (atomically, both in this folder)."""
        if self.fd is not None:
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            os.replace(self.path / tmp, self.path / name)

    def discard(self, name: str) -> None:
        """Remove the file ``name`` from this folder; one already gone is no error."""
        try:
            if self.fd is not None:
                os.unlink(name, dir_fd=self.fd)
            else:
                os.unlink(self.path / name)
        except FileNotFoundError:
            pass

    def write(self, name: str, data: bytes) -> Path:
        """``data`` written to ``name`` in this folder atomically (temp file, fsync, rename)."""
        tmp = self.stage(name, data)
        try:
            self.check_in_place()
            self.commit(tmp, name)
        except BaseException:
            self.discard(tmp)
            raise
        return self.path / name


def open_folder(root: str | os.PathLike, folder: str | os.PathLike, *, create: bool = True,
                action: str = "write", hint: str | None = None, what: str | None = None) -> ConfinedFolder:
    """The folder ``folder`` inside ``root`` (relative text, or an absolute path as
    :func:`confine` gave it), opened for writing by name; missing folders are created when
    ``create``. On POSIX every component is opened from the real root with O_NOFOLLOW: a symlink
    on the way (one swapped in after ``confine`` checked the path) raises ``PathEscapeError``
    naming it, and nothing is created past it. ``folder`` equal to the root opens the root.
    ``what``: the path an error message names (default ``folder``)."""
    text = os.fspath(folder)
    what = text if what is None else what
    root_real = Path(os.path.realpath(os.fspath(root)))
    if os.path.isabs(text) and Path(os.path.normpath(text)) == root_real:
        parts: tuple[str, ...] = ()
    else:
        root_real, parts = _parts_inside(root, folder, action=action, hint=hint)
    path = root_real.joinpath(*parts)
    if not DIR_FD_WRITES:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        real = Path(os.path.realpath(path))
        if not _inside(real, root_real):
            raise _refuse(what, root, f"{path} resolves to {real}, outside the root", action, hint)
        return ConfinedFolder(path, None, root, what)
    try:
        fd = os.open(root_real, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
        root_real.mkdir(parents=True, exist_ok=True)  # the root itself, as the user named it
        fd = os.open(root_real, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    shown = root_real
    try:
        for part in parts:
            shown = shown / part
            try:
                try:
                    nfd = _open_dir(part, fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass  # made meanwhile: opened (and checked) below like any other
                    nfd = _open_dir(part, fd)
            except OSError as exc:
                raise _walk_error(exc, part, fd, shown, what, root, action, hint) from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return ConfinedFolder(path, fd, root, what)


def write_confined(root: str | os.PathLike, path: str | os.PathLike, data: bytes, *,
                   hint: str | None = None) -> Path:
    """Write ``data`` to ``path`` inside ``root`` atomically (temp file in the same folder,
    fsync, rename; no partial file is left on error) and return where it went.

    ``path``: a relative asset path (checked with :func:`confine`) or an absolute path as
    ``confine`` returned it. Missing folders are created. Unlike ``confine`` + a plain write, a
    folder on the way swapped for a symlink after the check cannot carry the write out of the
    root: on POSIX the folders are walked with O_NOFOLLOW from the real root and the file is
    created and renamed relative to the last one (``PathEscapeError``); where the system lacks
    that (Windows) folders are re-checked after being created, as ``make_parents`` does.
    """
    root_real, parts = _parts_inside(root, path, hint=hint)
    if not parts:
        raise _refuse(os.fspath(path), root, "it does not name a file inside the root", "write", hint)
    with open_folder(root, root_real.joinpath(*parts[:-1]), hint=hint, what=os.fspath(path)) as folder:
        try:
            return folder.write(parts[-1], data)
        except PathEscapeError:
            raise
        except OSError as exc:
            # named after the file asked for, not the temp file beside it
            raise type(exc)(exc.errno, exc.strerror, str(folder.path / parts[-1])) from None


def remove_confined(root: str | os.PathLike, path: str | os.PathLike) -> None:
    """Remove the file ``path`` inside ``root`` (as :func:`write_confined` takes it) without
    following a folder on the way swapped for a symlink after the check (``PathEscapeError``):
    a removal through one would delete a file outside the root. ``FileNotFoundError`` when the
    file or one of its folders is not there."""
    root_real, parts = _parts_inside(root, path, action="remove")
    if not parts:
        raise _refuse(os.fspath(path), root, "it does not name a file inside the root", "remove")
    with open_folder(root, root_real.joinpath(*parts[:-1]), create=False, action="remove",
                     what=os.fspath(path)) as folder:
        if folder.fd is not None:
            os.unlink(parts[-1], dir_fd=folder.fd)
        else:
            os.unlink(folder.path / parts[-1])
