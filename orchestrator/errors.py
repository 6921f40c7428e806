"""Error types of the orchestrator (client, workflows, deploy, watch, models).

All subclass ``DgxPixelsError`` so the CLI prints every one of them the same way:
one line saying what failed and where, one line of hint, and a documented exit code.
"""
from __future__ import annotations

from comfy_nodes.pixel.errors import DgxPixelsError, ExportError, PathEscapeError  # noqa: F401


class SetupError(DgxPixelsError):
    """The local setup is unusable: not a ComfyUI folder, no free port, provisioning failed."""

    exit_code = 1


class ServerUnreachableError(DgxPixelsError):
    """The ComfyUI server did not answer (connection refused, DNS, timeout)."""

    exit_code = 3
    default_hint = "start ComfyUI or pass --server URL (default http://127.0.0.1:8188)"


class WorkflowError(DgxPixelsError):
    """A workflow is unknown, malformed, cannot be converted, or failed validation."""

    exit_code = 4
    default_hint = "`dgx-pixels workflows list` shows the workflows and their versions"


class ParameterError(WorkflowError):
    """A ``--set key=value`` names no parameter of the workflow or has the wrong type."""

    default_hint = "`dgx-pixels workflows show NAME` lists the parameters with types and defaults"


class ExecutionError(DgxPixelsError):
    """The server rejected the prompt (node_errors) or a node failed while running."""

    exit_code = 5


class JobTimeoutError(ExecutionError):
    """A job did not finish within the configured timeout."""

    default_hint = "raise --timeout, or check the server's queue with `dgx-pixels doctor`"


class ModelError(DgxPixelsError):
    """A model download or verification failed (404, wrong sha256, disk full)."""

    exit_code = 1
