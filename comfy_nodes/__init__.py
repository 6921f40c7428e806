"""DGX-Pixels for ComfyUI.

``comfy_nodes.pixel`` is the pure core (no ComfyUI, no torch); ``comfy_nodes.nodes`` holds the
V3 node classes and is imported only inside ComfyUI. Importing this package imports neither.
"""
