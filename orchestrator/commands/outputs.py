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
    try:
        write(path)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _write_error(path, exc: OSError):
    from comfy_nodes.pixel.errors import ExportError

    return ExportError(f"cannot write {path}: {exc.strerror or exc}",
                       hint="check that the folder is writable and that no file stands where a folder is needed")


def write_all(files) -> None:
    """Write every one of ``files`` ((path, bytes) pairs) or none: each is staged in a temporary
    file beside its target, and only when all are staged are they renamed into place. A run
    whose second file fails (a full disk, a read-only folder) left its first one written,
    reported as failed yet half done. A failure is an ``ExportError`` naming the path."""
    import os
    from pathlib import Path

    from comfy_nodes.pixel.imageio import staged_file

    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            target = Path(path)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = staged_file(target)
                staged.append((tmp, target))
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise _write_error(target, exc) from None
        for tmp, target in staged:
            write_output(target, lambda p, t=tmp: os.replace(t, p))
    finally:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


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

    try:
        folder = path.endswith(("/", os.sep)) or Path(path).is_dir()
    except OSError as exc:  # a name too long for the file system
        raise InvalidArgumentError(f"{flag} {path[:60]}...: {exc.strerror or exc}", hint="give a shorter name") from None
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
    check_writable(out)
    return out


def check_writable(out) -> None:
    """An ``ExportError`` now, before any work, when ``out`` cannot be written as a file: a
    folder stands there, or a file stands where one of its folders goes (an
    ``InvalidArgumentError`` when its name is too long). Found only at the write, such a
    failure would come after other outputs of the run."""
    from comfy_nodes.pixel.errors import ExportError, InvalidArgumentError

    out = Path(out)
    if len(out.name.encode("utf-8", "surrogateescape")) > 255:
        raise InvalidArgumentError(f"cannot write {str(out)[:80]}...: File name too long", hint="give a shorter name")
    try:
        if out.is_dir():
            raise ExportError(f"cannot write {out}: it is a folder", hint="give a file name, or move the folder away")
        up = out.parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if not up.is_dir():
            raise ExportError(f"cannot write {out}: {up} is a file, not a folder",
                              hint="check that no file stands where a folder is needed")
    except OSError as exc:
        raise ExportError(f"cannot write {str(out)[:200]}: {exc.strerror or exc}",
                          hint="check that the folder is writable and the name is not too long") from None


def check_not_replacing(out, option: str, keep) -> None:
    """An ``InvalidArgumentError`` naming ``option`` (the option as given, e.g. ``-o out/``) when
    the file ``out`` is one of the files in ``keep`` ((what, path) pairs): a run must never
    write over its own input or another of its outputs."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    for what, p in keep:
        if Path(out).resolve() == Path(p).resolve():
            raise InvalidArgumentError(f"{option}: writing {out} would replace {what} {p}",
                                       hint="give another file name or folder")
