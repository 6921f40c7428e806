"""V3 ComfyUI nodes of DGX-Pixels: thin glue between ComfyUI tensors and ``comfy_nodes.pixel``.

Each ``nodes_*`` module lists its node classes in ``NODES``; ``comfy_entrypoint`` gathers them.
Node ids (``DGXPixels...``) are public API: never rename one.
"""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import nodes_bevy, nodes_cleanup, nodes_grid, nodes_palette, nodes_preview, nodes_sheet

_MODULES = (nodes_grid, nodes_palette, nodes_cleanup, nodes_sheet, nodes_bevy, nodes_preview)


def all_nodes() -> list[type[io.ComfyNode]]:
    return [node for module in _MODULES for node in module.NODES]


class DGXPixelsExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return all_nodes()


async def comfy_entrypoint() -> DGXPixelsExtension:
    return DGXPixelsExtension()
