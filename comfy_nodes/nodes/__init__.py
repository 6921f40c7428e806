"""V3 ComfyUI nodes of DGX-Pixels: thin glue between ComfyUI tensors and ``comfy_nodes.pixel``.

Each ``nodes_*`` module lists its node classes in ``NODES``; ``comfy_entrypoint`` gathers them.
Node ids (``DGXPixels...``) are public API: never rename one.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

from . import nodes_bevy, nodes_cleanup, nodes_grid, nodes_palette, nodes_preview, nodes_sheet

_MODULES = (nodes_grid, nodes_palette, nodes_cleanup, nodes_sheet, nodes_bevy, nodes_preview)


def all_nodes() -> list[type[io.ComfyNode]]:
    return [node for module in _MODULES for node in module.NODES]


class DGXPixelsExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return all_nodes()


SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "dgx-pixels-sample.png"


def provide_sample() -> Path | None:
    """Put the pack's sample (pseudo pixel art of a 16x16 knight) into ComfyUI's input folder
    when it is not there: the shipped templates and workflows load it, and should run as
    shipped. Never replaces a file; a read-only input folder only means no sample."""
    try:
        import folder_paths

        target = Path(folder_paths.get_input_directory()) / SAMPLE.name
        if not target.exists():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(SAMPLE, tmp)
            os.replace(tmp, target)
        return target
    except Exception:  # noqa: BLE001 - a missing sample must never keep the nodes from loading
        return None


#: What the nodes import only when they need it, so its absence shows only then, on a node
#: half way through a graph: said once at start instead (requirements.txt lists them).
LAZY_REQUIREMENTS = {"sklearn": "scikit-learn"}


def missing_requirements() -> list[str]:
    """The pip names of the lazily imported requirements this Python lacks."""
    import importlib.util

    return [pip for module, pip in LAZY_REQUIREMENTS.items() if importlib.util.find_spec(module) is None]


async def comfy_entrypoint() -> DGXPixelsExtension:
    provide_sample()
    missing = missing_requirements()
    if missing:
        import logging

        from ..pixel.errors import MissingDependencyError

        logging.warning("DGX-Pixels: %s not installed: Palette Extract and colour reduction by k-means will fail; %s",
                        ", ".join(missing), MissingDependencyError.default_hint)
    return DGXPixelsExtension()
