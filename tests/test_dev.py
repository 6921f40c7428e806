"""``dev.py``: what ``python3 dev.py test`` does about the browser tests' tools (the playwright
package in .venv, Debian's chromium) on a machine that has them or lacks them."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dev():
    spec = importlib.util.spec_from_file_location("dgx_pixels_dev", REPO / "dev.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_find_chromium_order(dev, tmp_path):
    own = tmp_path / "my-chromium"
    own.write_text("")
    assert dev.find_chromium({"DGX_PIXELS_CHROMIUM": str(own)}) == str(own)
    # a configured path that does not exist falls through to the usual places
    seen = []
    found = dev.find_chromium({"DGX_PIXELS_CHROMIUM": str(tmp_path / "gone")},
                              which=lambda name: f"/opt/{name}/bin/{name}",
                              exists=lambda p: seen.append(p) or p == "/opt/chromium-browser/bin/chromium-browser")
    assert found == "/opt/chromium-browser/bin/chromium-browser"
    assert seen == [str(tmp_path / "gone"), "/usr/bin/chromium", "/opt/chromium/bin/chromium",
                    "/opt/chromium-browser/bin/chromium-browser"]
    assert dev.find_chromium({}, which=lambda name: None, exists=lambda p: False) is None


def test_chromium_plan(dev):
    assert dev.chromium_plan("/usr/bin/chromium", euid=0, apt_get="/usr/bin/apt-get") == ([], None)
    assert dev.chromium_plan("/usr/bin/chromium", euid=1000, apt_get=None) == ([], None)
    cmds, msg = dev.chromium_plan(None, euid=0, apt_get="/usr/bin/apt-get")
    assert cmds == [["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", "chromium"]] and msg is None
    cmds, msg = dev.chromium_plan(None, euid=1000, apt_get="/usr/bin/apt-get")
    assert cmds == [] and "needs root" in msg and "sudo apt-get install -y chromium" in msg and "skipped" in msg
    cmds, msg = dev.chromium_plan(None, euid=0, apt_get=None)
    assert cmds == [] and "no apt-get" in msg and "DGX_PIXELS_CHROMIUM" in msg and "skipped" in msg


def test_dry_run_names_the_install_without_running_it(dev, monkeypatch, capsys):
    monkeypatch.setattr(dev, "find_chromium", lambda *a, **k: None)  # chromium is installed on test machines
    monkeypatch.setattr(dev.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dev.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    dev.install_chromium(dry_run=True)
    out = capsys.readouterr().out
    assert "dry run: would run `/usr/bin/apt-get install -y --no-install-recommends chromium`" in out
    assert "apt-get update" in out


def test_installed_chromium_is_silent(dev, capsys):
    if dev.find_chromium() is None:
        pytest.skip("chromium is not installed here")
    dev.install_chromium(dry_run=False)  # finds it: runs nothing, prints nothing
    assert capsys.readouterr().out == ""


def test_missing_modules_of_a_bare_venv_and_of_this_one(dev, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    missing = dev.missing_modules(bare / "bin" / "python")
    assert missing == ["pytest", "hypothesis", "python-ron", "fastmcp", "playwright"]
    if (REPO / ".venv" / "bin" / "python").exists():
        assert dev.missing_modules(REPO / ".venv" / "bin" / "python") == []


def test_demo_takes_relative_paths_from_where_it_is_run(tmp_path):
    """`python3 ~/dgx-pixels/dev.py demo --bevy my_game` run from ~/games made the demo in the
    checkout: dev.py ran the command from the checkout's folder. It runs it from the caller's:
    here `--bevy afile` names the file in the caller's folder, refused before any work."""
    (tmp_path / "afile").write_text("not a folder")
    p = subprocess.run([sys.executable, str(REPO / "dev.py"), "demo", "--server", "http://127.0.0.1:9",
                        "--bevy", "afile"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"error: --bevy {tmp_path / 'afile'} is a file, not a folder" in p.stderr
    assert not (REPO / "afile").exists()
