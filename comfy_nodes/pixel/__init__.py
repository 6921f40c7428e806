"""DGX-Pixels pixel-art core: pure numpy / Pillow functions.

Nothing in this package imports ComfyUI or torch; the ComfyUI nodes (``comfy_nodes.nodes``)
and the ``dgx-pixels`` CLI are thin layers around it. Images are numpy arrays of shape
(H, W, 4) uint8 RGBA unless a function says otherwise.
"""
from .errors import (  # noqa: F401
    DgxPixelsError,
    ExportError,
    InputImageError,
    InvalidArgumentError,
    NoGridFoundError,
    PaletteError,
    PathEscapeError,
)
