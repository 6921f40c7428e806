"""Deploy every new finished image that appears in a folder (``dgx-pixels watch``).

The folder is ComfyUI's output folder or any drop folder. File-system events (watchdog:
inotify / FSEvents / ReadDirectoryChangesW) mark a file as a candidate; a candidate is
deployed once it is FINISHED:

- its name is not a temporary or hidden one (``.tmp``, ``.part``, ``.crdownload``, ``~``,
  ``.swp``, dotfiles, files inside dot-folders) and has an image extension;
- no event for it and no change of size/mtime for ``debounce`` seconds (still growing: wait);
- the file is structurally complete: a PNG ends with its ``IEND`` chunk, a JPEG with ``FFD9``,
  a WebP's RIFF size matches the file size (a writer that pauses mid-file is not mistaken for
  a finished one).

Each deploy goes through ``orchestrator.deploy.deploy_file`` (atomic, confined, manifest entry
with provenance read from the PNG's embedded ComfyUI prompt). Content is deduplicated by
sha256: the same image saved twice is deployed once. A state file (default
``<project>/assets/.dgx-pixels/watch-<hash of folder>.json``, replaced atomically) remembers
what was seen and deployed, so a restart deploys only files that are new or changed since;
on the very first start the files already there are the baseline (not deployed) unless
``existing=True``. A file whose own bytes cannot be deployed (unreadable, an animation) is kept
there too, with its sha256: while it is unchanged a restart reports it as ``skipped`` instead
of failing it again; once it is edited or replaced it is tried again. ``stop()`` (Ctrl-C,
SIGTERM) finishes the deploy in progress and returns.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from comfy_nodes.pixel.asset_manifest import loads_json
from comfy_nodes.pixel.errors import DgxPixelsError, InputImageError, InvalidArgumentError, PathEscapeError
from orchestrator.models import sha256_file

EventFn = Callable[[dict], None]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock", "~")
#: A candidate that has stayed an incomplete image this long (s) is given to the deploy, which
#: names what is wrong with it (a writer that died, a cut-off download).
INCOMPLETE_S = 600.0


def is_candidate_name(rel: str) -> bool:
    """True for an image file name that is not hidden or temporary (any folder level)."""
    parts = rel.replace("\\", "/").split("/")
    if any(p.startswith(".") for p in parts):
        return False
    name = parts[-1].lower()
    if name.endswith(TEMP_SUFFIXES) or name.startswith("~"):
        return False
    return name.endswith(IMAGE_EXTS)


def is_complete_image(path: Path) -> bool:
    """Whether the bytes on disk form a whole image file (cheap structural check of the end)."""
    try:
        size = path.stat().st_size
        if size < 16:
            return False
        with open(path, "rb") as fh:
            head = fh.read(16)
            fh.seek(max(0, size - 12))
            tail = fh.read(12)
    except OSError:
        return False
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return tail[4:8] == b"IEND"
    if head.startswith(b"\xff\xd8"):
        if not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return False
        # an EXIF thumbnail ends in the same marker, and a writer may finish it before the main
        # image: only a file that decodes is whole
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()
        except Exception:  # noqa: BLE001 - any decoder complaint means: not finished yet
            return False
        return True
    if head[:6] in (b"GIF87a", b"GIF89a"):
        # the trailer ';' may also be a data byte of a frame still being written: only a file
        # whose every frame decodes is whole
        if not tail.endswith(b";"):
            return False
        from PIL import Image, ImageSequence

        try:
            with Image.open(path) as img:
                for _ in ImageSequence.Iterator(img):
                    img.load()
        except Exception:  # noqa: BLE001 - any decoder complaint means: not finished yet
            return False
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        (riff,) = struct.unpack("<I", head[4:8])
        return riff + 8 == size
    return False


#: How the image files a watcher takes begin (PNG, JPEG, GIF, WebP's RIFF).
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF87a", b"GIF89a", b"RIFF")


def is_not_an_image(path: Path) -> bool:
    """Whether the file's first bytes already rule out every image format a watcher takes
    (a text file named .png): no writer can make it one by adding bytes, so it fails at once
    (and is remembered) instead of waiting as an image still being written."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    # a short file may still become an image only while its bytes begin a signature: a 7-byte
    # text file never will, and waited unreported for good
    return not any(head.startswith(sig) or sig.startswith(head) for sig in IMAGE_SIGNATURES)


def _asset_component(name: str) -> str:
    """One path component as an asset name: letters and digits of any script kept (a game's
    assets may well be named 勇者.png or Ärger.png), anything else but ``. _ -`` made ``_``,
    no leading dot or dash, in one Unicode form (macOS writes accents decomposed)."""
    import re
    import unicodedata

    name = unicodedata.normalize("NFC", name)
    out = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return re.sub(r"_+", "_", out).lstrip("._-")[:120]


def asset_path_for(rel: str, asset_dir: str) -> str:
    """``<asset_dir>/<rel>`` with every component made safe and a ``.png`` extension."""
    raw = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    # the extension goes first: made safe with the rest, "勇者.png" would lose its name to it
    parts = [_asset_component(p) for p in raw[:-1]] + ([_asset_component(os.path.splitext(raw[-1])[0])] if raw else [])
    if not parts or not all(parts):
        raise InvalidArgumentError(f"cannot name an asset after {rel!r}", hint="give the file a name with letters or digits")
    parts[-1] += ".png"
    prefix = asset_dir.strip("/")
    return "/".join(([prefix] if prefix else []) + parts)


@dataclass
class _Pending:
    first: float
    last_event: float
    size: int = -1
    mtime_ns: int = -1
    checked: float = 0.0


class WatchBusyError(DgxPixelsError):
    """Another watcher keeps the same state (the same folder into the same game)."""

    exit_code = 1


@dataclass
class WatchStats:
    deployed: int = 0
    kept: int = 0  # --overwrite keep left an existing asset: nothing written
    duplicates: int = 0
    ignored: int = 0
    failed: int = 0
    skipped: int = 0  # failed in an earlier run and unchanged since: not tried again
    latencies_ms: list = field(default_factory=list)


class Watcher:
    """Watch ``folder`` and deploy finished images into ``project``'s ``assets/<asset_dir>``.

    ``debounce`` (s): quiet time after the last event before a file counts as finished.
    ``on_event``: dicts with ``event`` = deployed / duplicate / failed / skipped / ignored / ready.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        project: str | os.PathLike,
        *,
        asset_dir: str = "sprites/",
        state_file: str | os.PathLike | None = None,
        debounce: float = 0.1,
        existing: bool = False,
        overwrite: str = "replace",
        upscale: int = 1,
        bevy_version: str | None = "auto",
        recursive: bool = True,
        on_event: EventFn | None = None,
    ):
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise InvalidArgumentError(f"folder to watch not found: {self.folder}")
        from comfy_nodes.pixel.bevy_export import OVERWRITE_POLICIES, check_bevy_project, require_project_folder
        from comfy_nodes.pixel.safepath import check_relative

        self.project = require_project_folder(project)

        check_bevy_project(self.project, bevy_version)
        assets = (self.project / "assets").resolve()
        if self.folder == assets or assets in self.folder.parents or self.folder in assets.parents:
            # each deploy would be a new file in the watched folder: deployed again, and again
            raise InvalidArgumentError(f"the watched folder {self.folder} and the project's assets {assets} overlap: "
                                       "every deployed asset would be picked up and deployed again",
                                       hint="watch ComfyUI's output folder (or another folder outside the game)")
        if isinstance(upscale, bool) or not isinstance(upscale, int) or not 1 <= upscale <= 64:
            raise InvalidArgumentError(f"upscale must be a whole number 1..64, got {upscale!r}")
        if not (isinstance(debounce, (int, float)) and math.isfinite(debounce) and 0 <= debounce <= 60):
            raise InvalidArgumentError(f"debounce must be 0..60 seconds, got {debounce!r}")
        if overwrite not in OVERWRITE_POLICIES:
            raise InvalidArgumentError(f"unknown overwrite policy {overwrite!r}; use one of {', '.join(OVERWRITE_POLICIES)}")
        # "/abs" is no folder under assets/: taken as "abs", it would put the assets elsewhere
        # than the option says
        if asset_dir.strip() and asset_dir.strip() != "/":
            check_relative(asset_dir.rstrip("/"), self.project / "assets",
                           hint="give a folder under the game's assets/, e.g. sprites/")
            from comfy_nodes.pixel.asset_manifest import MANIFEST_DIR, in_bookkeeping

            if in_bookkeeping(asset_dir.strip().rstrip("/") + "/x.png"):
                # refused now, not as a failure of every file
                raise PathEscapeError(f"refusing asset folder {asset_dir!r}: {MANIFEST_DIR}/ holds DGX-Pixels' own records",
                                      hint="give a folder under the game's assets/, e.g. sprites/")
        self.asset_dir = asset_dir
        digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:10]
        self._state_name = None if state_file else f"watch-{digest}.json"
        self.state_path = Path(state_file) if state_file else self.project / "assets" / ".dgx-pixels" / self._state_name
        self._confined_state_path()  # a .dgx-pixels/ symlinked out of the project is refused at the start
        self.debounce = debounce
        self.existing = existing
        self.overwrite = overwrite
        self.upscale = upscale
        self.bevy_version = bevy_version
        self.recursive = recursive
        self.on_event = on_event
        self.stats = WatchStats()
        self.lost = False  # the watched folder disappeared while watching
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer = None
        self._lock_fd: int | None = None
        self.baseline = 0  # images that were in the folder at its first start, left alone (no --existing)
        self._state = self._load_state()

    # -- state ---------------------------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            data = loads_json(self.state_path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                data.setdefault("hashes", {})
                if not isinstance(data.get("failed"), dict):
                    data["failed"] = {}  # a state file from before failures were kept
                return data
            why = "it holds no watch state"
        except FileNotFoundError:
            why = None
            if self._watched_before():
                why = "it is gone, and the game's manifest holds assets this folder gave"
        except (OSError, ValueError) as exc:
            why = f"it cannot be read ({exc})"
        fresh = {"version": 1, "folder": str(self.folder), "files": {}, "hashes": {}, "failed": {}, "new": True}
        if why is not None:
            # What was deployed is unknown: every file in the folder is looked at again (as with
            # --existing), and the manifest's deploy ids keep the deployed ones from repeating,
            # where a first start would take them, and whatever came while watching was down,
            # as its baseline and never deploy them.
            fresh["lost"] = f"the watch state {self.state_path}: {why}; every image in the folder is checked again"
        return fresh

    def _watched_before(self) -> bool:
        """Whether the game's manifest records an asset deployed from this watched folder."""
        from comfy_nodes.pixel.asset_manifest import read_manifest

        try:
            entries = read_manifest(self.project).get("assets", [])
        except (DgxPixelsError, OSError, ValueError):
            return False
        folder = str(self.folder)
        return any(isinstance(e, dict) and isinstance(e.get("provenance"), dict)
                   and e["provenance"].get("watch_folder") == folder for e in entries)

    def _save_state(self) -> None:
        from comfy_nodes.pixel.imageio import atomic_write_bytes
        from comfy_nodes.pixel.safepath import write_confined

        data = {k: v for k, v in self._state.items() if k not in ("new", "lost")}
        target = self._confined_state_path()
        body = (json.dumps(data, indent=1) + "\n").encode()
        if self._state_name is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, body)  # --state-file: the user's own choice
        else:
            # relative to the assets folder, never through a .dgx-pixels/ swapped for a symlink
            # after the check above
            write_confined(self.project / "assets", target, body)

    def _confined_state_path(self) -> Path:
        """Where the state is written: the default one inside the project's ``.dgx-pixels/``
        is checked (again at every save) not to lead out of the assets folder through a symlink."""
        if self._state_name is None:
            return self.state_path  # --state-file: the user's own choice
        from comfy_nodes.pixel.asset_manifest import bookkeeping_path

        return bookkeeping_path(self.project, self._state_name)

    def emit(self, event: str, **fields) -> None:
        if self.on_event is not None:
            fields["event"] = event
            fields.setdefault("t", time.time())
            self.on_event(fields)

    # -- events --------------------------------------------------------------------------
    def _rel(self, path: str) -> str | None:
        try:
            rel = Path(path).resolve().relative_to(self.folder).as_posix()
        except (ValueError, OSError):
            return None
        if not self.recursive and "/" in rel:
            return None
        return rel

    def notice(self, path: str) -> None:
        """A file-system event touched ``path`` (also callable directly, e.g. from tests)."""
        rel = self._rel(path)
        if rel is None:
            return
        if not is_candidate_name(rel):
            return
        now = time.monotonic()
        with self._lock:
            p = self._pending.get(rel)
            if p is None:
                self._pending[rel] = _Pending(first=now, last_event=now)
            else:
                p.last_event = now
        self._wake.set()

    def _handler(self):
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_created(self, event):
                if not event.is_directory:
                    watcher.notice(event.src_path)

            def on_modified(self, event):
                if not event.is_directory:
                    watcher.notice(event.src_path)

            def on_closed(self, event):
                if not event.is_directory:
                    watcher.notice(event.src_path)

            def on_moved(self, event):
                if not event.is_directory:
                    watcher.notice(event.dest_path)

        return Handler()

    # -- scanning ------------------------------------------------------------------------
    def _scan_existing(self) -> list[tuple[str, dict]]:
        """Arm the files new or changed since the last run; the unchanged ones that failed then
        are returned instead, to be reported as skipped."""
        first_start = self._state.get("new", False)
        failed = self._state["failed"]
        gone = [rel for rel in failed if not (self.folder / rel).is_file()]
        for rel in gone:
            del failed[rel]
        skipped = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")] if self.recursive else []
            for name in files:
                full = Path(root) / name
                rel = full.relative_to(self.folder).as_posix()
                if not is_candidate_name(rel):
                    continue
                try:
                    st = full.stat()
                except OSError:
                    continue
                bad = failed.get(rel)
                if bad and bad.get("size") == st.st_size and bad.get("mtime_ns") == st.st_mtime_ns:
                    skipped.append((rel, bad))
                    continue
                known = self._state["files"].get(rel)
                if not bad and known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
                    # --existing on a later start deploys what a first start left alone too
                    if not (self.existing and known.get("baseline")):
                        if known.get("baseline"):
                            self.baseline += 1
                        continue
                    del self._state["files"][rel]  # no longer "seen": a file to deploy
                if first_start and not self.existing and not self._state.get("lost"):
                    if is_complete_image(full):
                        self._state["files"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                     "sha256": sha256_file(full), "baseline": True}
                        self.baseline += 1
                    continue
                self.notice(str(full))
        if first_start or gone:
            self._state.pop("new", None)
            self._save_state()
        return skipped

    def _skip(self, rel: str, bad: dict) -> None:
        self.stats.skipped += 1
        self.emit("skipped", file=str(self.folder / rel), reason="failed before and unchanged since; "
                  "edit or replace it to try again", error=bad.get("error"))

    # -- deploying -----------------------------------------------------------------------
    def _ready(self) -> list[str]:
        """Candidates whose quiet time is over; files still changing are re-armed."""
        now = time.monotonic()
        out = []
        with self._lock:
            items = list(self._pending.items())
        for rel, p in items:
            if now - p.last_event < self.debounce:
                continue
            full = self.folder / rel
            try:
                st = full.stat()
            except FileNotFoundError:
                with self._lock:
                    self._pending.pop(rel, None)  # renamed away or deleted: a temp file
                continue
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) != (p.size, p.mtime_ns):
                # First look, or it changed since the last look: look again after the quiet time.
                if p.size == -1 and now - p.last_event >= self.debounce and is_complete_image(full):
                    out.append(rel)  # no further events and complete: finished
                    p.size, p.mtime_ns = st.st_size, st.st_mtime_ns
                    continue
                p.size, p.mtime_ns = st.st_size, st.st_mtime_ns
                p.last_event = now
                continue
            if is_complete_image(full) or is_not_an_image(full) or now - p.first > INCOMPLETE_S:
                # whole; or bytes that no writer can still make an image; or an image no writer
                # has finished for INCOMPLETE_S: the deploy names what is wrong with such a file,
                # and a failure of its own bytes is remembered, not waited for again
                out.append(rel)
            else:
                p.last_event = now  # still incomplete: keep waiting
        return out

    def _deploy(self, rel: str) -> None:
        from orchestrator.deploy import deploy_file

        full = self.folder / rel
        with self._lock:
            p = self._pending.pop(rel, None)
        try:
            st = full.stat()
            digest = sha256_file(full)
        except OSError:
            return
        bad = self._state["failed"].get(rel)
        if bad and bad.get("sha256") == digest:
            # touched but the same bytes: they would fail the same way
            if (bad.get("size"), bad.get("mtime_ns")) != (st.st_size, st.st_mtime_ns):
                bad.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
                self._save_state()
            self._skip(rel, bad)
            return
        if bad:
            del self._state["failed"][rel]
            self._save_state()
        known = self._state["files"].get(rel)
        if known and known.get("sha256") == digest:
            return  # touched but unchanged
        prior = self._state["hashes"].get(digest)
        if prior is not None and not any(
                r != rel and f.get("asset") == prior and (self.folder / r).is_file()
                for r, f in self._state["files"].items()):
            # the file that brought this content is gone from the folder: renamed (hero.png to
            # hero_idle.png names the asset anew) or deleted, so this name gets its own asset
            prior = None
        # the same content under a new name is deployed once; a file that already has an asset
        # of its own keeps it up to date, whatever other file its new content matches
        if prior is not None and not (known and known.get("asset")):
            self._state["files"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest, "duplicate_of": prior}
            self._save_state()
            self.stats.duplicates += 1
            self.emit("duplicate", file=str(full), asset=prior)
            return
        try:
            asset = asset_path_for(rel, self.asset_dir)
        except DgxPixelsError as exc:
            self.stats.failed += 1
            self.emit("failed", file=str(full), error=exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
            return
        owner = next((r for r, f in self._state["files"].items()
                      if r != rel and f.get("asset") == asset and (self.folder / r).is_file()), None)
        if owner is not None:
            # two source names that map to one asset name (tree.png and tree.jpg, accents
            # made safe): the second would silently replace the first in the game
            self.stats.failed += 1
            self.emit("failed", file=str(full), error=f"its asset name {asset} is already the asset of {owner}; "
                                                    "rename one of the two files")
            return
        try:
            deployed = deploy_file(
                full, self.project, asset, overwrite=self.overwrite, upscale=self.upscale,
                bevy_version=self.bevy_version, deploy_id=f"watch:{rel}:{digest}",
                provenance={"watch_folder": str(self.folder)},
            )
        except DgxPixelsError as exc:
            self.stats.failed += 1
            # Only a failure of the file's own bytes is kept: a refused deploy (an edited asset,
            # --overwrite fail) depends on the game's files and may pass on the next start.
            if isinstance(exc, InputImageError) and full.is_file():
                self._state["failed"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest,
                                              "error": exc.message}
                self._save_state()
            self.emit("failed", file=str(full), error=exc.message)
            return
        if deployed.skipped:
            # the game keeps its own file: recorded as handled (not tried again on every start),
            # but neither as this file's asset nor as content the game holds
            self._state["files"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest,
                                         "kept": deployed.asset_path}
            self._save_state()
            self.stats.kept += 1
            self.emit("kept", file=str(full), asset=deployed.asset_path, path=deployed.path)
            return
        self._state["files"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest, "asset": deployed.asset_path}
        # the asset now holds this content only: what it held before is in the game no more
        for h in [h for h, a in self._state["hashes"].items() if a == deployed.asset_path]:
            del self._state["hashes"][h]
        self._state["hashes"][digest] = deployed.asset_path
        self._save_state()
        self.stats.deployed += 1
        latency = (time.monotonic() - p.first) * 1000 if p else None
        if latency is not None:
            self.stats.latencies_ms.append(latency)
        self.emit("deployed", file=str(full), asset=deployed.asset_path, path=deployed.path,
                  already=deployed.already, latency_ms=round(latency, 1) if latency is not None else None)

    # -- lifecycle -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        """One watcher per state file: a second one on the same folder and game deployed every
        file again beside the first, and each wrote over the other's state. The lock file sits
        beside the state (the state itself is replaced at each save, its lock with it)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no second-watcher guard
            return
        state = self._confined_state_path()
        lock = state.with_name(state.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WatchBusyError(f"another dgx-pixels watch is deploying {self.folder} into {self.project} "
                                 f"(its state {self.state_path} is locked)",
                                 hint="stop that one first; two would deploy every file twice") from None
        self._lock_fd = fd

    def start(self) -> None:
        """Start watching (non-blocking); pair with ``run_until_stopped`` or ``stop``."""
        from watchdog.observers import Observer

        self._take_lock()
        self._observer = Observer()
        self._observer.schedule(self._handler(), str(self.folder), recursive=self.recursive)
        self._observer.start()
        skipped = self._scan_existing()
        self._thread = threading.Thread(target=self._loop, name="dgx-pixels-watch", daemon=True)
        self._thread.start()
        if self._state.get("lost"):
            self.emit("warning", message=self._state["lost"])
        self.emit("ready", folder=str(self.folder), project=str(self.project), state=str(self.state_path),
                  left_alone=self.baseline)
        for rel, bad in skipped:
            self._skip(rel, bad)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                has = bool(self._pending)
            # Sleep until an event arrives, or briefly while candidates wait out their quiet time.
            self._wake.wait(timeout=min(self.debounce / 4, 0.05) if has else 1.0)
            self._wake.clear()
            for rel in self._ready():
                if self._stop.is_set():
                    break
                try:
                    self._deploy(rel)
                except BrokenPipeError:
                    # whoever read the events is gone (a `| head`): nobody sees what is deployed
                    self.lost = True
                    self._stop.set()
                    break
                except Exception as exc:  # noqa: BLE001 - one file's surprise must not end watching
                    self.stats.failed += 1
                    try:
                        self.emit("failed", file=str(self.folder / rel), error=f"{type(exc).__name__}: {exc}")
                    except BrokenPipeError:
                        self.lost = True
                        self._stop.set()
                        break
            if not self.folder.is_dir():
                # deleted (or unmounted) under the watcher: its events stop, silently
                self.lost = True
                self.emit("failed", file=str(self.folder), error="the watched folder is gone; watching stopped")
                self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        t = getattr(self, "_thread", None)
        if t is not None and t is not threading.current_thread():
            t.join(timeout=30)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the lock goes with it
            self._lock_fd = None

    def run_until_stopped(self, stop: threading.Event) -> WatchStats:
        """Block until ``stop`` is set, then shut down cleanly."""
        self.start()
        try:
            while not stop.wait(0.5):
                if self._stop.is_set():
                    break
        finally:
            self.stop()
        return self.stats
