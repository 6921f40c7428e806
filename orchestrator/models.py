"""Model manifest, resumable downloads and sha256 verification (``dgx-pixels models``).

The manifest (``models/manifest.toml``) names every model file the shipped workflows load,
with its pinned URL, size in bytes and sha256 as published. ``download`` fetches one into
the ComfyUI models folder: it writes ``<file>.part`` next to the target, resumes it with an
HTTP ``Range`` request after an interruption, checks size and sha256, and only then renames
the file into place (``os.replace``, atomic within one folder), so ComfyUI never sees a
half-written or corrupt model.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from comfy_nodes.pixel.errors import InvalidArgumentError
from orchestrator.errors import ModelError, SetupError

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "models" / "manifest.toml"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FOLDERS = ("checkpoints", "loras", "vae", "controlnet", "upscale_models", "embeddings", "clip", "unet")
_CHUNK = 1 << 20
USER_AGENT = "dgx-pixels-models/1"

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
    ``wrong_size``, ``wrong_hash`` or ``unverified`` (present, no published hash)."""

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
        raise ModelError(f"model manifest not found: {path}", hint="pass --manifest PATH") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model manifest {path} is not valid TOML: {exc}") from exc


def load_manifest(path: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Read and validate a manifest; every problem names the entry and the field."""
    path = Path(path) if path is not None else MANIFEST_PATH
    data = _load_toml(path)
    raw = data.get("model")
    if not isinstance(raw, list) or not raw:
        raise ModelError(f"model manifest {path} has no [[model]] entries")
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{path} entry #{i + 1}"
        for key in ("name", "file", "folder", "url", "license"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ModelError(f"{where}: field '{key}' is missing or empty")
        name = item["name"]
        where = f"{path} model '{name}'"
        if name in seen:
            raise ModelError(f"{where}: the name is used twice")
        seen.add(name)
        if item["folder"] not in _FOLDERS:
            raise ModelError(f"{where}: folder '{item['folder']}' is not a ComfyUI models folder",
                             hint="one of: " + ", ".join(_FOLDERS))
        if "/" in item["file"] or "\\" in item["file"] or item["file"] in (".", ".."):
            raise ModelError(f"{where}: file must be a bare file name, got '{item['file']}'")
        if not item["url"].startswith(("http://", "https://")):
            raise ModelError(f"{where}: url must be http(s), got '{item['url']}'")
        size = item.get("size")
        if size in (None, "unknown"):
            size = None
        elif not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ModelError(f"{where}: size must be a positive number of bytes or \"unknown\"")
        sha = item.get("sha256")
        if sha in (None, "unknown"):
            sha = None
        elif not isinstance(sha, str) or not _HEX64.match(sha.lower()):
            raise ModelError(f"{where}: sha256 must be 64 hex digits or \"unknown\", got {sha!r}")
        else:
            sha = sha.lower()
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
                required=bool(item.get("required", False)),
                used_by=tuple(item.get("used_by", ())),
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
            raise ModelError(f"no model named '{n}' in the manifest",
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


def sha256_file(path: Path, chunk: int = _CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def verify(entry: ModelEntry, models_dir: Path, *, check_hash: bool = True) -> VerifyResult:
    """Compare the file on disk with the manifest (size first: it is free; then sha256)."""
    path = entry.target(models_dir)
    if not path.is_file():
        part = _part_path(path)
        status = "partial" if part.is_file() else "missing"
        return VerifyResult(entry, path, status, part.stat().st_size if status == "partial" else None)
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
    ``restarts`` counts retries after a dropped connection, ``range_ignored`` is true when the
    server answered a Range request with the whole file."""

    path: Path
    bytes_fetched: int = 0
    resumed_from: int = 0
    restarts: int = 0
    range_ignored: bool = False
    already_present: bool = False
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)


def download(
    entry: ModelEntry,
    models_dir: str | os.PathLike,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    progress: ProgressFn | None = None,
    note: Callable[[str], None] | None = None,
    retry_wait: float = 1.0,
) -> DownloadReport:
    """Fetch ``entry`` into ``<models_dir>/<folder>/<file>``, resuming a ``.part`` if present.

    A dropped connection is retried up to ``retries`` times, each time from the bytes already
    on disk. Raises ``ModelError`` on HTTP errors (404 named as such), a full disk, a size or
    sha256 mismatch (the bad ``.part`` is deleted so the next run starts clean).
    """
    target = entry.target(Path(models_dir))
    report = DownloadReport(path=target)

    def say(msg: str) -> None:
        report.notes.append(msg)
        if note:
            note(msg)

    existing = verify(entry, Path(models_dir), check_hash=True) if target.is_file() else None
    if existing is not None and existing.ok:
        report.already_present = True
        report.sha256 = existing.actual_sha256
        return report
    if existing is not None:
        say(f"{target} exists but does not match the manifest ({existing.status}); downloading again")

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create {target.parent}: {exc.strerror}") from exc
    part = _part_path(target)
    offset = part.stat().st_size if part.is_file() else 0
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
    while True:
        if entry.size is not None and offset == entry.size:
            break
        try:
            done = _fetch(entry, part, offset, timeout, progress, report, say)
        except _Interrupted as cut:
            offset = part.stat().st_size if part.exists() else 0
            attempt += 1
            if attempt > retries:
                raise ModelError(
                    f"download of {entry.file} interrupted ({cut}) at {_human(offset)} of {_human(entry.size)}",
                    hint="run `dgx-pixels models pull` again: it resumes from the partial file",
                ) from None
            report.restarts += 1
            say(f"connection lost ({cut}); resuming at {_human(offset)} (try {attempt}/{retries})")
            time.sleep(retry_wait)
            continue
        offset = part.stat().st_size
        if done:
            break

    size = part.stat().st_size
    if entry.size is not None and size != entry.size:
        part.unlink()
        raise ModelError(
            f"{entry.file}: downloaded {size} bytes but the manifest says {entry.size}",
            hint="the file changed upstream or the URL is wrong; the partial file was removed",
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
    return report


class _Interrupted(Exception):
    """The connection dropped before the body was complete (retryable)."""


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


def _fetch(entry, part: Path, offset: int, timeout, progress, report: DownloadReport, say) -> bool:
    """One HTTP request appending to ``part`` from ``offset``; True when the body is complete."""
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
            return True
        if exc.code == 404:
            raise ModelError(f"404 Not Found: {entry.url}",
                             hint="the file moved or the manifest URL is wrong; check the model page "
                                  f"{entry.page or '(see models/README.md)'}") from None
        if exc.code in (401, 403):
            raise ModelError(f"HTTP {exc.code} {exc.reason}: {entry.url}",
                             hint="the host refused access; some models need you to accept the license "
                                  "on the model page first") from None
        raise ModelError(f"HTTP {exc.code} {exc.reason} while downloading {entry.url}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, ConnectionError, TimeoutError)) and not isinstance(
            reason, ConnectionRefusedError
        ):
            raise _Interrupted(str(reason)) from None
        raise ModelError(f"cannot reach {entry.url}: {reason}",
                         hint="check the network, a proxy, or the URL in the manifest") from None

    with resp:
        status = resp.status
        mode = "ab"
        if offset and status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise ModelError(f"server sent Content-Range {resp.headers.get('Content-Range')!r} "
                                 f"for a request from byte {offset}", hint="try again later or another mirror")
        elif offset and status == 200:
            report.range_ignored = True
            say("server does not support resuming (HTTP Range ignored); downloading the whole file again")
            mode = "wb"
            offset = 0
        elif status != 200 and status != 206:
            raise ModelError(f"unexpected HTTP {status} from {entry.url}")
        length = resp.headers.get("Content-Length")
        expected_end = offset + int(length) if length and length.isdigit() else entry.size
        total = entry.size if entry.size is not None else expected_end
        written = offset
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        block = resp.read(_CHUNK)
                    except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as exc:
                        out.flush()
                        raise _Interrupted(type(exc).__name__) from None
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
                    report.bytes_fetched += len(block)
                    if progress:
                        progress(written, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                remaining = (entry.size - written) if entry.size is not None else None
                raise _disk_full(part, remaining) from None
            raise ModelError(f"cannot write {part}: {exc.strerror}") from None
    if expected_end is not None and written < expected_end:
        raise _Interrupted(f"connection closed after {written} of {expected_end} bytes")
    return True
