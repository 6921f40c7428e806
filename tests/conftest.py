"""Shared fixtures: a real ComfyUI 0.3.75 server with this pack installed, and paths.

How tests run: ``python3 dev.py test`` provisions the pinned ComfyUI into the cache and runs
pytest inside ``.venv``, which overlays the cached ComfyUI venv (torch, ComfyUI requirements)
and has this project installed editable. Plain ``python3 -m pytest`` without torch still works
for pure tests; tests that need torch / ComfyUI skip there.

Fixtures
--------
``comfy_server`` (session)
    One running ComfyUI with the pack in ``custom_nodes/dgx-pixels`` (a symlink to this
    checkout), every ``DGXPixels*`` node id checked in ``/object_info``. Attributes: ``url``,
    ``port``, ``base_dir``, ``input_dir``, ``output_dir``, ``log_path``, ``pid``, ``python``,
    ``comfyui_dir``, ``managed`` (False for a user's own server), and ``log_text()``.
    With ``DGX_PIXELS_COMFYUI_URL=http://host:port`` the tests use that server instead; then
    ``base_dir``/``input_dir``/``output_dir``/``log_path``/``pid`` are None, ``managed`` is False,
    and tests needing them should use ``managed_comfy_server`` (skips).
``managed_comfy_server``
    ``comfy_server`` but skips when it is a user's server (tests that read its files or log).
``comfy_server_factory``
    ``start(**kwargs) -> ServerHandle`` for extra servers (kill/restart tests); keyword
    arguments go to ``orchestrator.embedded.start_server`` (``port``, ``base_dir``,
    ``custom_nodes``, ``python``, ``pack``, ``copy_pack``, ``check_pack``, ``extra_args``...). Every
    server still running at the end of the test is stopped. ``handle.stop()`` SIGTERMs it by pid.
``comfy_install``
    The provisioned ComfyUI (``.src``, ``.python``, ``.venv``, ``.site_packages()``).
``comfy_api_path``
    ComfyUI's source folder, already on ``sys.path`` (appended, so it never shadows anything).
``shared_dir``
    ``../shared`` (benchmark data, ground truth), or the test is skipped when absent.
``repo_root``
    This checkout.

Node unit tests (call ``execute`` directly, no server): ``comfy_api.latest`` imports torch and
a few ComfyUI modules (``comfy.utils``, ``comfy.cli_args`` with argument parsing off) but starts
nothing; this conftest puts ComfyUI's source folder on ``sys.path``, so a node test module does::

    import pytest
    torch = pytest.importorskip("torch")
    pytest.importorskip("comfy_api.latest")
    from comfy_nodes.nodes.nodes_preview import DGXPixelsNearestUpscale

    out = DGXPixelsNearestUpscale.execute(image=torch.rand(1, 8, 8, 3), scale=2)
    result = out.result[0]          # io.NodeOutput: outputs in .result, UI data in .ui
"""
from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from orchestrator import embedded  # noqa: E402

EXTERNAL_URL_ENV = "DGX_PIXELS_COMFYUI_URL"


def _comfy_src() -> Path | None:
    src = embedded.comfyui_home() / "src"
    return src if (src / "comfy_api").is_dir() else None


# Appended (not prepended): ComfyUI's top-level modules (utils, server, nodes, app...) must
# never shadow ours or the standard library's; only comfy_api/comfy/comfy_execution are wanted.
_SRC = _comfy_src()
if _SRC is not None and str(_SRC) not in sys.path:
    sys.path.append(str(_SRC))


@dataclass
class ExternalServer:
    """A ComfyUI the user runs (``DGX_PIXELS_COMFYUI_URL``): reachable, but not ours to control."""

    url: str
    port: int
    base_dir: None = None
    input_dir: None = None
    output_dir: None = None
    log_path: None = None
    pid: None = None
    python: None = None
    comfyui_dir: None = None
    managed: bool = False

    def log_text(self) -> str:
        return ""


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = (REPO_ROOT.parent / "shared").resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


def _require_torch_env() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs the ComfyUI environment (run `python3 dev.py test`)")


@pytest.fixture(scope="session")
def comfy_install() -> embedded.ComfyInstall:
    return embedded.provision(progress=lambda msg: print(msg, file=sys.stderr))


@pytest.fixture(scope="session")
def comfy_api_path(comfy_install: embedded.ComfyInstall) -> Path:
    src = comfy_install.src
    if str(src) not in sys.path:
        sys.path.append(str(src))
    return src


@pytest.fixture(scope="session")
def comfy_server(request):
    url = os.environ.get(EXTERNAL_URL_ENV, "").strip()
    if url:
        url = url.rstrip("/")
        embedded.check_server(url)
        embedded.check_nodes_loaded(url)
        port = urllib.parse.urlsplit(url).port or 80
        yield ExternalServer(url=url, port=port)
        return
    _require_torch_env()
    handle = embedded.start_server(progress=lambda msg: print(msg, file=sys.stderr))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def managed_comfy_server(comfy_server):
    if not getattr(comfy_server, "managed", False):
        pytest.skip(f"needs a ComfyUI started by the tests ({EXTERNAL_URL_ENV} is set)")
    return comfy_server


@pytest.fixture
def comfy_server_factory(tmp_path_factory):
    if os.environ.get(EXTERNAL_URL_ENV, "").strip():
        pytest.skip(f"starts its own ComfyUI servers ({EXTERNAL_URL_ENV} is set)")
    _require_torch_env()
    started: list[embedded.ServerHandle] = []

    def start(**kwargs) -> embedded.ServerHandle:
        if "base_dir" not in kwargs:
            kwargs["base_dir"] = tmp_path_factory.mktemp("comfy-base")
        handle = embedded.start_server(**kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
