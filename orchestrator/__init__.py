"""DGX-Pixels orchestrator: the ``dgx-pixels`` CLI, the ComfyUI client, workflows, deploy and watch."""

__version__ = "0.1.0"
