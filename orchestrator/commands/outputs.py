"""Where the image commands write: output paths checked before any work, and writes whose
failure names the path.

Top-level imports stay light (standard library only): the commands import this inside ``run``.
"""
from __future__ import annotations

import os
from pathlib import Path


def write_output(path, write) -> None:
    """Run ``write(path)``; a failure (missing permission, a file where a folder is needed, a full
    disk) becomes an ``ExportError`` naming the path instead of a traceback."""
    from comfy_nodes.pixel.errors import ExportError

    try:
        write(path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}",
                          hint="check that the folder is writable and that no file stands where a folder is needed") from None


def png_output(path: str, flag: str, name: str, keep=()) -> Path:
    """The PNG file that ``flag path`` asks for.

    ``path`` names the file itself when it ends in ``.png`` (any case). An existing folder, or a
    path ending in a separator, means ``name`` inside that folder, as ``cp`` does. Any other
    name is an ``InvalidArgumentError`` before anything is computed: the images are PNG (the only
    common format that keeps every colour and the alpha exactly), and PNG bytes under a
    ``.jpg`` name mislead every tool that reads the name. ``keep``: (what, path) of the files
    the output must not replace (the inputs, another output of the same run).
    """
    from comfy_nodes.pixel.errors import InvalidArgumentError

    folder = path.endswith(("/", os.sep)) or Path(path).is_dir()
    if folder:
        out = Path(path) / name
    elif Path(path).suffix.lower() == ".png":
        out = Path(path)
    else:
        stem = Path(path).stem or "out"
        raise InvalidArgumentError(
            f"{flag} {path}: the image is written as PNG, so its name must end in .png",
            hint=f"e.g. {flag} {Path(path).with_name(stem + '.png')}, or a folder ending in / to write {name} there")
    check_not_replacing(out, f"{flag} {path}", keep)
    return out


def check_not_replacing(out, option: str, keep) -> None:
    """An ``InvalidArgumentError`` naming ``option`` (the option as given, e.g. ``-o out/``) when
    the file ``out`` is one of the files in ``keep`` ((what, path) pairs): a run must never
    write over its own input or another of its outputs."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    for what, p in keep:
        if Path(out).resolve() == Path(p).resolve():
            raise InvalidArgumentError(f"{option}: writing {out} would replace {what} {p}",
                                       hint="give another file name or folder")
