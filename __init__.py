"""ComfyUI entry point of the DGX-Pixels node pack (V3 node API).

ComfyUI imports this file when the repository sits in ``ComfyUI/custom_nodes/``. The pack
exports only ``comfy_entrypoint`` (no ``NODE_CLASS_MAPPINGS``): ComfyUI checks the V1
mapping first, so exporting both would load the pack as V1.
"""
if __package__:
    # ComfyUI imports this folder as a package. Anything else that imports the file bare
    # (pytest collecting a checkout whose folder name is not an identifier) gets nothing.
    from .comfy_nodes.nodes import comfy_entrypoint  # noqa: F401

__all__ = ["comfy_entrypoint"]
