"""Error types shared by the pixel core, the nodes and the CLI.

One class per kind of failure, each carrying a ``hint`` that tells the user what to do
next (the style of comfy-cli). The CLI prints ``error: <message>`` and ``hint: <hint>``
and exits with ``exit_code``; ComfyUI shows the message on the failing node.
"""
from __future__ import annotations


#: The module every error of the project names as its own. ComfyUI shows an error's type as
#: module + name, and names a custom node pack's modules by their file path: the type read
#: "/home/me/ComfyUI/custom_nodes/dgx-pixels.comfy_nodes.pixel.errors.NoGridFoundError".
ERROR_MODULE = "dgx_pixels"


class DgxPixelsError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = ERROR_MODULE

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class InputImageError(DgxPixelsError, ValueError):
    """An image (file, tensor or array) is not usable: wrong shape, mode, size or empty."""

    exit_code = 2
    default_hint = "check the image given there: an RGB, RGBA or grey image (or a batch of them of one size)"


class InvalidArgumentError(DgxPixelsError, ValueError):
    """A parameter is out of range or of the wrong kind."""

    exit_code = 2
    default_hint = "the command's --help (or the node input's tooltip) says what it takes"


class NoGridFoundError(DgxPixelsError):
    """Grid detection found no pseudo-pixel grid in the image."""

    exit_code = 3
    default_hint = "give the cell size or the target size (--cell, or --width and --height)"


class PaletteError(DgxPixelsError, ValueError):
    """A palette name, file or value is unusable."""

    exit_code = 2
    default_hint = "use a built-in name (`dgx-pixels palette list`) or a .hex/.gpl/.pal/.txt/.png file"


class PathEscapeError(DgxPixelsError, PermissionError):
    """A path would leave the root the user configured (.., absolute, or a symlink outside)."""

    exit_code = 6
    default_hint = "give a path relative to the assets root, without '..' and without symlinks leading out"


class ExportError(DgxPixelsError):
    """Writing assets (PNG, .meta, atlas, manifest) failed or was refused."""

    exit_code = 6


class MissingDependencyError(DgxPixelsError, ImportError):
    """A package the pack needs is not installed in this Python (a plain ``git clone`` into
    ``custom_nodes`` installs no requirements)."""

    exit_code = 1
    default_hint = ("install the pack's requirements with ComfyUI's own Python, in custom_nodes/dgx-pixels: "
                    "python -m pip install -r requirements.txt (or python install.py), then restart ComfyUI")


DgxPixelsError.__module__ = ERROR_MODULE
