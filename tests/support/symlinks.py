"""A folder swapped for a symlink, as a race between a check and a write would leave it."""
from __future__ import annotations

from pathlib import Path


def swap_for_link(folder: Path, outside: Path) -> None:
    """Replace ``folder`` (a real folder, or nothing) by a symlink to ``outside``; the real
    folder is kept beside it as ``<name>.moved``."""
    if folder.is_dir() and not folder.is_symlink():
        folder.rename(folder.with_name(folder.name + ".moved"))
    folder.symlink_to(outside, target_is_directory=True)
