"""Re-running nodes that write files outside ComfyUI's cache when those files change.

ComfyUI skips a node whose inputs did not change and shows its last result. For Bevy Export
and Palette Save that result is a claim about files on disk: delete the exported sprite and
queue again, and the node would report a write that never happens. So these nodes fingerprint
what they wrote: the same value while the files are as the node left them (a second queue of
an unchanged graph writes nothing, as ComfyUI's own Save Image does), a new one once any of
them was deleted or changed, or a file that steers the export (the roots configuration, the
game's Cargo files) was edited. Such a run, with the same content, rewrites the node's own
files in place (``intact``): with the ``version`` policy it wrote knight-2.png beside an
unchanged knight.png. Files other exports share (the project's manifest) are not the node's:
another export writing them is no reason to run again.

The value cannot simply be the files' state: it is taken before the node runs, so the first
re-queue would always see the node's own fresh files as a change and, with the ``version``
policy, write knight-2.png. Instead each target keeps a generation number that moves on only
when its files differ from what the node last wrote.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable

_lock = threading.Lock()
# target key -> {"files": {path: state}, "generation": int, "content": digest of what was written}
_records: dict[tuple, dict] = {}


def file_state(path: str | os.PathLike) -> tuple | None:
    """(size, modification time in ns) of a file, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def record(key: tuple, paths: Iterable[str | os.PathLike], content: str | None = None) -> None:
    """Remember the files a run of the node for ``key`` just wrote, and from what ``content``."""
    with _lock:
        rec = _records.setdefault(key, {"files": {}, "generation": 0})
        rec["files"] = {str(p): file_state(p) for p in paths}
        rec["content"] = content


def intact(key: tuple, content: str) -> list[str]:
    """The files the last run for ``key`` wrote from the same ``content`` (a digest of what the
    node writes), when every one is still as it left them: a run that only a steering file set
    off refreshes those in place. Else an empty list (new content follows the node's policy)."""
    with _lock:
        rec = _records.get(key)
        if (not rec or not rec["files"] or rec.get("content") != content
                or any(file_state(p) != st for p, st in rec["files"].items())):
            return []
        return list(rec["files"])


def fingerprint(key: tuple, steering: Iterable[str | os.PathLike] = ()) -> tuple:
    """The value ComfyUI compares between runs for the target ``key``: its generation (moved on
    when a file last written is gone or changed) and the state of the ``steering`` files."""
    with _lock:
        rec = _records.setdefault(key, {"files": {}, "generation": 0})
        if any(file_state(p) != state for p, state in rec["files"].items()):
            rec["generation"] += 1
            rec["files"] = {}
        generation = rec["generation"]
    return (generation,) + tuple((str(p), file_state(p)) for p in steering)


def key_path(path: str | os.PathLike) -> str:
    """A path as a key: absolute, without resolving links (the node resolves them itself)."""
    return str(Path(path).absolute())
