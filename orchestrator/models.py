"""Model manifest, resumable downloads and sha256 verification (``dgx-pixels models``).

The manifest (``models/manifest.toml``) names every model file the shipped workflows load,
with its pinned URL, size in bytes and sha256 as published. ``download`` fetches one into
the ComfyUI models folder: it writes ``<file>.part`` next to the target, resumes it with an
HTTP ``Range`` request after an interruption, checks size and sha256, and only then renames
the file into place (``os.replace``, atomic within one folder), so ComfyUI never sees a
half-written or corrupt model. One pull at a time owns a target: ``<file>.lock`` beside it
holds an OS lock for the whole download, so two runs never write the same ``.part``.
"""
from __future__ import annotations

import email.utils
import errno
import http.client
import os
import re
import shutil
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from comfy_nodes.pixel.errors import InvalidArgumentError
from orchestrator.config import DOWNLOAD_TIMEOUT, positive_seconds
from orchestrator.errors import ModelError, SetupError

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "models" / "manifest.toml"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FOLDERS = ("checkpoints", "loras", "vae", "controlnet", "upscale_models", "embeddings", "clip", "unet")
_CHUNK = 1 << 20
USER_AGENT = "dgx-pixels-models/1"
# Answers a later request may not get: rate limiting and the 5xx a CDN or mirror gives while
# it restarts. 501 and 505 say the request itself can never work, so they are not retried.
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504, 507, 520, 521, 522, 523, 524})
_MAX_RETRY_AFTER = 60.0  # seconds; a server asking for a longer pause gets an error instead
_MAX_BACKOFF = 30.0  # seconds


class ManifestError(ModelError):
    """The model manifest is unreadable or an entry is malformed: bad input, like a bad flag."""

    exit_code = 2
    default_hint = "fix the entry named above; models/manifest.toml documents every field"

ProgressFn = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class ModelEntry:
    """One model file of the manifest.

    ``size`` is in bytes; ``sha256`` is lower-case hex, or ``None`` where the publisher's
    value could not be found (such a file is downloaded but reported as unverified).
    """

    name: str
    file: str
    folder: str
    url: str
    size: int | None
    sha256: str | None
    license: str
    title: str = ""
    page: str = ""
    license_url: str = ""
    required: bool = False
    used_by: tuple[str, ...] = field(default_factory=tuple)

    def target(self, models_dir: Path) -> Path:
        """Where ComfyUI expects the file: ``<models_dir>/<folder>/<file>``."""
        return Path(models_dir) / self.folder / self.file


@dataclass(frozen=True)
class VerifyResult:
    """State of one model file on disk: ``ok``, ``missing``, ``partial`` (a ``.part`` exists),
    ``wrong_size``, ``wrong_hash``, ``unverified`` (present, no published hash) or ``blocked``
    (a folder stands at the file's name, or a file at its folder's)."""

    entry: ModelEntry
    path: Path
    status: str
    actual_size: int | None = None
    actual_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverified")


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise SetupError(
                "reading the model manifest needs Python 3.11+ or the 'tomli' package",
                hint="pip install tomli",
            ) from exc
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ManifestError(f"model manifest not found: {path}", hint="pass --manifest PATH") from exc
    except IsADirectoryError as exc:
        raise ManifestError(f"model manifest {path} is a folder, not a file", hint="pass --manifest FILE") from exc
    except OSError as exc:
        raise ManifestError(f"cannot read model manifest {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        # tomllib decodes before it parses, so this is not a TOMLDecodeError
        raise ManifestError(f"model manifest {path} is not UTF-8 text (byte {exc.start}: {exc.reason})",
                            hint="save the manifest as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"model manifest {path} is not valid TOML: {exc}",
                            hint="fix the line and column named above") from exc


def _bare_file_name(name: str) -> bool:
    """Whether ``name`` is one plain file name: no folder part, no NUL or control character."""
    return not ("/" in name or "\\" in name or name in (".", "..") or any(ord(c) < 32 for c in name))


def load_manifest(path: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Read and validate a manifest; every problem names the file, the entry and the field
    (``ManifestError``, exit code 2)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    data = _load_toml(path)
    raw = data.get("model")
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"model manifest {path} has no [[model]] entries")
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{path} entry #{i + 1}"
        if not isinstance(item, dict):
            raise ManifestError(f"{where}: expected a [[model]] table, got {type(item).__name__} {item!r}")
        for key in ("name", "file", "folder", "url", "license"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ManifestError(f"{where}: field '{key}' is missing or empty")
        name = item["name"]
        where = f"{path} model '{name}'"
        if name in seen:
            raise ManifestError(f"{where}: the name is used twice")
        seen.add(name)
        if item["folder"] not in _FOLDERS:
            raise ManifestError(f"{where}: folder '{item['folder']}' is not a ComfyUI models folder",
                                hint="one of: " + ", ".join(_FOLDERS))
        if not _bare_file_name(item["file"]):
            raise ManifestError(f"{where}: file must be a bare file name, got {item['file']!r}")
        if not item["url"].startswith(("http://", "https://")):
            raise ManifestError(f"{where}: url must be http(s), got '{item['url']}'")
        size = item.get("size")
        if size in (None, "unknown"):
            size = None
        elif not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ManifestError(f"{where}: size must be a positive number of bytes or \"unknown\", got {size!r}")
        sha = item.get("sha256")
        if sha in (None, "unknown"):
            sha = None
        elif not isinstance(sha, str) or not _HEX64.match(sha.lower()):
            raise ManifestError(f"{where}: sha256 must be 64 hex digits or \"unknown\", got {sha!r}")
        else:
            sha = sha.lower()
        required = item.get("required", False)
        if not isinstance(required, bool):
            # bool("false") is True: a quoted value must not silently make a model required
            raise ManifestError(f"{where}: required must be true or false (no quotes), got {required!r}")
        used_by = item.get("used_by", [])
        if not isinstance(used_by, list) or not all(isinstance(u, str) for u in used_by):
            raise ManifestError(f"{where}: used_by must be a list of workflow names, got {used_by!r}")
        for key in ("title", "page", "license_url"):
            if not isinstance(item.get(key, ""), str):
                raise ManifestError(f"{where}: {key} must be a string, got {item[key]!r}")
        entries.append(
            ModelEntry(
                name=name,
                file=item["file"],
                folder=item["folder"],
                url=item["url"],
                size=size,
                sha256=sha,
                license=item["license"],
                title=item.get("title", ""),
                page=item.get("page", ""),
                license_url=item.get("license_url", ""),
                required=required,
                used_by=tuple(used_by),
            )
        )
    return entries


def select(entries: list[ModelEntry], names: list[str] | None) -> list[ModelEntry]:
    """The entries named (all when ``names`` is empty), in manifest order."""
    if not names:
        return list(entries)
    by_name = {e.name: e for e in entries}
    by_file = {e.file: e for e in entries}
    out = []
    for n in names:
        e = by_name.get(n) or by_file.get(n)
        if e is None:
            raise InvalidArgumentError(f"no model named '{n}' in the manifest",
                             hint="`dgx-pixels models list` shows the names: " + ", ".join(by_name))
        if e not in out:
            out.append(e)
    return out


def resolve_models_dir(comfyui: str | None = None, models_dir: str | None = None, *,
                       must_exist: bool = False) -> Path:
    """The ComfyUI ``models`` folder from ``--comfyui PATH``, ``--models-dir PATH`` or
    ``$DGX_PIXELS_COMFYUI``. A path the user gave that is wrong is bad input (exit 2), as every
    other command's paths are; ``must_exist`` also refuses a models folder that is not there
    (``list`` and ``verify`` would otherwise call every model "missing" on a mistyped path)."""
    if comfyui and models_dir:
        raise InvalidArgumentError("give either --comfyui or --models-dir, not both")
    if comfyui or (not models_dir and os.environ.get("DGX_PIXELS_COMFYUI")):
        given = comfyui or os.environ["DGX_PIXELS_COMFYUI"]
        where = "" if comfyui else "DGX_PIXELS_COMFYUI: "
        root = Path(given).expanduser()
        if not (root / "main.py").is_file() or not (root / "folder_paths.py").is_file():
            raise InvalidArgumentError(f"{where}{root} is not a ComfyUI folder (no main.py / folder_paths.py)",
                                       hint="pass the folder that holds ComfyUI's main.py, or use --models-dir")
        found = root / "models"
    elif models_dir:
        found = Path(models_dir).expanduser()
    else:
        raise InvalidArgumentError("no models folder given",
                                   hint="pass --comfyui /path/to/ComfyUI or --models-dir /path/to/ComfyUI/models "
                                        "(or set DGX_PIXELS_COMFYUI)")
    if found.exists() and not found.is_dir():
        raise InvalidArgumentError(f"models folder {found} is a file, not a folder",
                                   hint="pass ComfyUI's models folder, the one that holds checkpoints/ and loras/")
    if must_exist and not found.is_dir():
        raise InvalidArgumentError(f"models folder {found} does not exist",
                                   hint="pass ComfyUI's models folder, the one that holds checkpoints/ and loras/ "
                                        "(`models pull` creates it)")
    return found


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex); the one implementation is the core's."""
    from comfy_nodes.pixel.asset_manifest import file_sha256

    return file_sha256(path)


def _regular_size(path: Path) -> int | None:
    """Size in bytes of ``path`` when it is a regular file itself (not a symbolic link), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def verify(entry: ModelEntry, models_dir: Path, *, check_hash: bool = True) -> VerifyResult:
    """Compare the file on disk with the manifest (size first: it is free; then sha256).

    The target may be a symbolic link (a shared model store is a common ComfyUI setup): it is
    read through, never written through.
    """
    path = entry.target(models_dir)
    if path.is_dir() or path.parent.is_file():
        # something else stands where the file (or its folder) goes: not simply "missing"
        return VerifyResult(entry, path, "blocked")
    if not path.is_file():
        part_size = _regular_size(_part_path(path))
        return VerifyResult(entry, path, "partial" if part_size is not None else "missing", part_size)
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return VerifyResult(entry, path, "wrong_size", size)
    if not check_hash:
        return VerifyResult(entry, path, "ok" if entry.sha256 else "unverified", size)
    digest = sha256_file(path)
    if entry.sha256 is None:
        return VerifyResult(entry, path, "unverified", size, digest)
    return VerifyResult(entry, path, "ok" if digest == entry.sha256 else "wrong_hash", size, digest)


def _part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _disk_full(path: Path, need: int | None) -> ModelError:
    free = shutil.disk_usage(path.parent).free
    needs = f", {_human(need)} still to download" if need is not None else ""
    return ModelError(
        f"disk full: no space left in {path.parent} ({_human(free)} free{needs})",
        hint="free some space or use --models-dir on a larger disk; the partial file is kept and "
             "the next `dgx-pixels models pull` resumes it",
    )


@dataclass
class DownloadReport:
    """What ``download`` did: ``resumed_from`` is the byte offset a previous ``.part`` gave,
    ``restarts`` counts retries after a dropped connection or a temporary server error,
    ``range_ignored`` is true when the server answered a Range request with the whole file,
    ``waited_for_lock`` when another pull of the same file had to finish first."""

    path: Path
    bytes_fetched: int = 0
    resumed_from: int = 0
    restarts: int = 0
    range_ignored: bool = False
    already_present: bool = False
    waited_for_lock: bool = False
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class _DownloadLock:
    """An exclusive OS lock on ``<file>.lock`` beside the target, held while one pull writes
    that file's ``.part`` and renames it into place.

    The kernel drops an flock (or msvcrt) lock when its process ends, however it ends, so a
    killed pull never blocks the next one: a leftover ``.lock`` file is simply taken over.
    The file holds the owner's pid, only to name it to a pull that waits.
    """

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        if os.path.islink(self.path):
            # Not ours: opening it would create or lock a file wherever it points.
            self.path.unlink()
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ModelError(f"cannot create the lock file {self.path}: {exc.strerror}",
                             hint="check the permissions of the models folder") from None

    def _holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def acquire(self, say: Callable[[str], None], poll: float) -> bool:
        """Wait until no other pull writes this file (checking every ``poll`` seconds) and
        take the lock; True when it had to wait."""
        waited = False
        while True:
            fd = self._open()
            try:
                got = _try_lock(fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _NO_LOCKING:
                    say(f"this file system cannot lock {self.path.name} ({exc.strerror}); "
                        "do not run two pulls of the same model at once")
                    return waited
                raise ModelError(f"cannot lock {self.path}: {exc.strerror}") from None
            if got:
                # The previous owner removes the file as it finishes; a lock taken on the
                # removed file would exclude nobody, so it must still be the named one.
                try:
                    same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                    self.fd = fd
                    return waited
                _unlock(fd)
                os.close(fd)
                continue
            os.close(fd)
            if not waited:
                say(f"another `dgx-pixels models pull`{self._holder()} is downloading "
                    f"{self.path.name[:-len('.lock')]}; waiting for it to finish")
                waited = True
            time.sleep(poll)

    def release(self) -> None:
        if self.fd is None:
            return
        # Removed while still locked, so a waiter that opened it sees a stale file (above).
        try:
            os.unlink(self.path)
        except OSError:
            pass  # Windows cannot remove an open file; the next pull reuses it
        try:
            _unlock(self.fd)
        finally:
            os.close(self.fd)
            self.fd = None


def _prepare_part(part: Path, say: Callable[[str], None]) -> int:
    """Bytes already in ``part`` (0 when there is none).

    A ``.part`` that is a symbolic link is removed, never followed: appending through it would
    write model bytes into (or truncate) a file outside the models folder.
    """
    try:
        st = os.lstat(part)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode):
        say(f"{part} is a symbolic link (to {os.readlink(part)}); removed it and starting over, "
            "nothing is written through it")
        part.unlink()
        return 0
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{part} is not a regular file", hint="remove it, then run pull again")
    return st.st_size


def _open_part(part: Path, append: bool):
    """``part`` opened for writing, never through a symbolic link (one that appears after
    ``_prepare_part`` makes this fail) and only when it is a regular file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(part):
            raise ModelError(f"{part} is a symbolic link; refusing to write through it",
                             hint="remove it, then run pull again") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelError(f"{part} is not a regular file", hint="remove it, then run pull again")
    return os.fdopen(fd, "ab" if append else "wb")


def download(
    entry: ModelEntry,
    models_dir: str | os.PathLike,
    *,
    retries: int = 3,
    timeout: float = DOWNLOAD_TIMEOUT,
    progress: ProgressFn | None = None,
    note: Callable[[str], None] | None = None,
    retry_wait: float = 1.0,
    lock_poll: float = 0.5,
) -> DownloadReport:
    """Fetch ``entry`` into ``<models_dir>/<folder>/<file>``, resuming a ``.part`` if present.

    A dropped or refused connection and a temporary HTTP error (408, 429, most 5xx) are retried
    up to ``retries`` times, each time from the bytes already on disk, after ``retry_wait``
    seconds doubled per try (at most 30 s), or the server's ``Retry-After`` when that is at
    most 60 s. ``timeout`` is in seconds per network operation (connecting, or waiting for the
    next bytes of the body), a positive number; a read that runs out of it is retried like a
    dropped connection, from every byte received so far. A pull of the same file by another
    process is waited for (checked every ``lock_poll`` seconds), then the file it placed is
    verified like any installed one.

    Raises ``ModelError`` on HTTP errors (404 named as such), a full disk, a size or sha256
    mismatch (the bad ``.part`` is deleted so the next run starts clean), a folder where the
    file goes, and a body whose end cannot be checked (no length from the server and neither
    size nor sha256 in the manifest; the ``.part`` is kept). A ``timeout`` that is not a
    positive number is ``InvalidArgumentError``.
    """
    timeout = positive_seconds(timeout, "timeout")
    target = entry.target(Path(models_dir))
    report = DownloadReport(path=target)

    def say(msg: str) -> None:
        report.notes.append(msg)
        if note:
            note(msg)

    if target.is_dir() and not target.is_symlink():
        raise ModelError(f"{target} is a folder; the model file {entry.file} goes there",
                         hint="move or remove that folder, then run pull again")
    if target.parent.is_file():
        raise ModelError(f"{target.parent} is a file; it must be the folder the model file {entry.file} goes into",
                         hint="move or remove that file, then run pull again")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create {target.parent}: {exc.strerror}",
                         hint="check that the models folder is writable and no file stands in the way") from exc
    lock = _DownloadLock(_lock_path(target))
    report.waited_for_lock = lock.acquire(say, lock_poll)
    try:
        _download_locked(entry, target, report, say, retries=retries, timeout=timeout, progress=progress,
                         retry_wait=retry_wait)
    finally:
        lock.release()
    return report


def _download_locked(entry: ModelEntry, target: Path, report: DownloadReport, say: Callable[[str], None], *,
                     retries: int, timeout: float, progress: ProgressFn | None, retry_wait: float) -> None:
    """The body of ``download``, run while this process holds the file's lock."""
    existing = verify(entry, target.parent.parent, check_hash=True) if target.is_file() else None
    if existing is not None and existing.ok:
        report.already_present = True
        report.sha256 = existing.actual_sha256
        return
    if existing is not None:
        say(f"{target} exists but does not match the manifest ({existing.status}); downloading again")

    part = _part_path(target)
    offset = _prepare_part(part, say)
    if entry.size is not None and offset > entry.size:
        say(f"{part} is larger than the published size; starting over")
        part.unlink()
        offset = 0
    report.resumed_from = offset
    if offset:
        say(f"resuming {entry.file} at {_human(offset)}")
    if entry.size is not None:
        need = entry.size - offset
        if shutil.disk_usage(target.parent).free < need:
            raise _disk_full(part, need)

    attempt = 0
    end_checked = entry.size is not None
    while not (entry.size is not None and offset == entry.size):
        try:
            end_checked = _fetch(entry, part, offset, timeout, progress, report, say) or end_checked
            break
        except _Retryable as cut:
            offset = _regular_size(part) or 0
            attempt += 1
            if attempt > retries:
                if cut.error is not None:
                    raise cut.error from None
                slow = f"; on a slow or busy link raise --timeout (now {timeout:g} s)" if cut.stalled else ""
                raise ModelError(
                    f"download of {entry.file} interrupted ({cut}) at {_human(offset)} of {_human(entry.size)}",
                    hint=f"run `dgx-pixels models pull` again: it resumes from the partial file{slow}",
                ) from None
            wait = cut.retry_after if cut.retry_after is not None else min(retry_wait * 2 ** (attempt - 1), _MAX_BACKOFF)
            report.restarts += 1
            what = "connection lost" if cut.error is None else "temporary error"
            say(f"{what} ({cut}); trying again in {wait:g} s from {_human(offset)} (try {attempt}/{retries})")
            time.sleep(wait)

    size = _regular_size(part) or 0
    if entry.size is not None and size != entry.size:
        part.unlink()
        raise ModelError(
            f"{entry.file}: downloaded {size} bytes but the manifest says {entry.size}",
            hint="the file changed upstream or the URL is wrong; the partial file was removed",
        )
    if not end_checked and entry.sha256 is None:
        raise ModelError(
            f"{entry.file}: the server sent no length and the manifest gives neither size nor sha256, so "
            f"the {_human(size)} received cannot be told apart from a cut-off download; nothing was installed",
            hint=f"add size = <bytes> and sha256 from the model page to the manifest entry '{entry.name}'; "
                 f"{part.name} is kept and the next pull resumes it",
        )
    digest = sha256_file(part)
    report.sha256 = digest
    if entry.sha256 is not None and digest != entry.sha256:
        part.unlink()
        raise ModelError(
            f"sha256 mismatch for {entry.file}: expected {entry.sha256}, got {digest}",
            hint="the download is corrupt or the file changed upstream; the bad file was removed. "
                 "Run pull again; if it repeats, check the URL in models/manifest.toml",
        )
    if entry.sha256 is None:
        say(f"{entry.file}: no published sha256 to compare with (got {digest}); placed unverified")
    os.replace(part, target)
    _fsync_dir(target.parent)


class _Retryable(Exception):
    """A failure a later request may not meet: a dropped or refused connection, HTTP 429/5xx.

    ``error`` is what to raise once the retries are used up (None: a dropped connection,
    reported with how far it got); ``retry_after`` is the server's requested pause in seconds;
    ``stalled`` says the network timeout ran out, which a longer timeout may cure.
    """

    def __init__(self, reason: str, error: ModelError | None = None, retry_after: float | None = None,
                 stalled: bool = False):
        super().__init__(reason)
        self.error = error
        self.retry_after = retry_after
        self.stalled = stalled


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/(\d+)$")


def _fetch(entry: ModelEntry, part: Path, offset: int, timeout: float, progress: ProgressFn | None,
           report: DownloadReport, say: Callable[[str], None]) -> bool:
    """One HTTP request appending to ``part`` from ``offset``.

    Returns True when the end of the body was checked (a declared length was reached, or a
    chunked body ended with its terminator); False when the server gave no length and the
    body simply ended with the connection, which a cut-off transfer looks the same as.
    """
    req = urllib.request.Request(entry.url, headers={"User-Agent": USER_AGENT})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range past the end: the .part is at least as long as the file. Let the size and
            # hash checks decide; if it is wrong they delete it.
            say(f"server says the partial file is already complete ({offset} bytes)")
            m = _UNSATISFIED_RANGE.match((exc.headers or {}).get("Content-Range", "") or "")
            return bool(m) and int(m.group(1)) == offset
        if exc.code == 404:
            raise ModelError(f"404 Not Found: {entry.url}",
                             hint="the file moved or the manifest URL is wrong; check the model page "
                                  f"{entry.page or '(see models/README.md)'}") from None
        if exc.code in (401, 403):
            raise ModelError(f"HTTP {exc.code} {exc.reason}: {entry.url}",
                             hint="the host refused access; some models need you to accept the license "
                                  "on the model page first") from None
        if exc.code in _TRANSIENT_HTTP:
            wait = _retry_after((exc.headers or {}).get("Retry-After"))
            if wait is not None and wait > _MAX_RETRY_AFTER:
                raise ModelError(f"HTTP {exc.code} {exc.reason} from {entry.url}: the server asks to wait {wait:.0f} s",
                                 hint="run `dgx-pixels models pull` again after that; the partial file is kept") from None
            raise _Retryable(
                f"HTTP {exc.code} {exc.reason}",
                ModelError(f"HTTP {exc.code} {exc.reason} while downloading {entry.url}",
                           hint="the server is busy or down; try again later (or raise --retries): "
                                "the partial file is kept and the next pull resumes it"),
                retry_after=wait,
            ) from None
        raise ModelError(f"HTTP {exc.code} {exc.reason} while downloading {entry.url}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            # A mirror restarting refuses for a moment; a wrong host keeps refusing and ends
            # with the same "cannot reach" error after the retries.
            raise _Retryable("connection refused", ModelError(
                f"cannot reach {entry.url}: {reason}",
                hint="check the network, a proxy, or the URL in the manifest")) from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Retryable(f"no answer within {timeout:g} s", stalled=True) from None
        if isinstance(reason, ConnectionError):
            raise _Retryable(str(reason)) from None
        raise ModelError(f"cannot reach {entry.url}: {reason}",
                         hint="check the network, a proxy, or the URL in the manifest") from None

    with resp:
        status = resp.status
        append = True
        declared: int | None = None
        if offset and status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise ModelError(f"server sent Content-Range {resp.headers.get('Content-Range')!r} "
                                 f"for a request from byte {offset}", hint="try again later or another mirror")
            if m.group(3).isdigit():
                declared = int(m.group(3))
        elif offset and status == 200:
            report.range_ignored = True
            say("server does not support resuming (HTTP Range ignored); downloading the whole file again")
            append = False
            offset = 0
        elif status != 200 and status != 206:
            raise ModelError(f"unexpected HTTP {status} from {entry.url}")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit():
            declared = offset + int(length)
        if declared is not None and entry.size is not None and declared != entry.size:
            # said before the body is fetched: for a checkpoint, gigabytes that could only be
            # thrown away
            raise ModelError(f"{entry.file}: the server announces {declared} bytes but the manifest says {entry.size}",
                             hint="the URL no longer serves the file the manifest pins; check the URL, or a mirror")
        # http.client raises IncompleteRead when a chunked body stops before its terminator,
        # so a chunked body that reaches its end here is whole.
        chunked = bool(getattr(resp, "chunked", False))
        expected_end = declared if declared is not None else entry.size
        total = entry.size if entry.size is not None else expected_end
        written = offset
        try:
            with _open_part(part, append) as out:
                def keep(block: bytes) -> None:
                    nonlocal written
                    out.write(block)
                    written += len(block)
                    report.bytes_fetched += len(block)
                    if progress:
                        progress(written, total)

                while True:
                    # read1, not read: read(n) waits to fill all n bytes, and a timeout or a
                    # reset on the way throws away everything it gathered (up to _CHUNK), which
                    # the resume then has to fetch again. read1 returns what one receive
                    # brought, so each byte reaches the .part as it arrives and a retry starts
                    # from the true received length.
                    try:
                        block = resp.read1(_CHUNK)
                    except http.client.IncompleteRead as exc:
                        keep(exc.partial or b"")
                        raise _Retryable(f"body cut off after {written} bytes") from None
                    except (socket.timeout, TimeoutError):
                        raise _Retryable(f"no data for {timeout:g} s", stalled=True) from None
                    except ConnectionError as exc:
                        raise _Retryable(exc.strerror or type(exc).__name__) from None
                    if not block:
                        break
                    keep(block)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                # what reached the disk, not the last whole block: part of it may have been written
                on_disk = _regular_size(part)
                remaining = (entry.size - (on_disk if on_disk is not None else written)) if entry.size is not None else None
                raise _disk_full(part, remaining) from None
            raise ModelError(f"cannot write {part}: {exc.strerror}") from None
    if expected_end is not None and written < expected_end:
        raise _Retryable(f"connection closed after {written} of {expected_end} bytes")
    return declared is not None or chunked
