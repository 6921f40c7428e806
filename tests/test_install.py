"""The three ways to install the pack, each proven against a real ComfyUI 0.3.75.

a. ``git clone`` into ``custom_nodes`` (a real clone of this repository's HEAD);
b. ComfyUI-Manager's ``pip install -r requirements.txt`` + ``python install.py`` in a fresh
   Python without scikit-learn (an overlay venv over the cached ComfyUI one), checking that
   torch / numpy / Pillow / OpenCV keep their versions (OpenCV: stays absent when absent);
c. ``python install.py --comfyui PATH [--copy] [--python PY] [--boot-check]``, linked and copied.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import embedded

OPENCV_DISTS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
# None = not installed: install.py pins only what is there, so "absent" must stay absent too.
PROTECTED_PROBE = (
    "import json, sys, importlib.metadata as m, importlib.util as u\n"
    "def v(n):\n"
    "    try:\n"
    "        return m.version(n)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    "out = {n: v(n) for n in sys.argv[1:]}\n"
    "out['cv2 importable'] = u.find_spec('cv2') is not None\n"
    "print(json.dumps(out))\n"
)
PROBED = ("torch", "torchvision", "numpy", "pillow", "scipy", *OPENCV_DISTS)


def _load_install_module(repo_root: Path):
    spec = importlib.util.spec_from_file_location("dgx_pixels_install", repo_root / "install.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _versions(python: Path) -> dict:
    out = subprocess.run([str(python), "-c", PROTECTED_PROBE, *PROBED], capture_output=True, text=True, check=True)
    versions = json.loads(out.stdout)
    assert all(versions[n] for n in ("torch", "torchvision", "numpy", "pillow")), versions
    return versions


def _has_sklearn(python: Path) -> str | None:
    out = subprocess.run(
        [str(python), "-c", "import sklearn; print(sklearn.__file__)"], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture
def fresh_python(tmp_path, comfy_install):
    """A new venv that sees the cached ComfyUI packages (torch, numpy...) but not scikit-learn."""
    py = embedded.make_overlay_venv(tmp_path / "venv", comfy_install, with_pip=False, progress=lambda _m: None)
    assert _has_sklearn(py) is None, "the cached ComfyUI venv must not contain scikit-learn"
    return py


def _pack_copy(dest_custom_nodes: Path) -> Path:
    """The working tree's pack, copied as ComfyUI-Manager would leave it in custom_nodes."""
    return embedded.install_pack(dest_custom_nodes, embedded.REPO_ROOT, copy=True)


# ----------------------------------------------------------------------------- pure parts


def test_version_rules(repo_root):
    inst = _load_install_module(repo_root)
    vs = inst.version_satisfies
    assert vs("2.4.6", ((">=", "1.24"), ("<", "3")))
    assert not vs("2.4.6", (("<", "2"),))
    assert vs("2.9.1+cu128", (("==", "2.9.1"),))
    assert vs("1.9.1", (("~=", "1.2"),)) and not vs("2.0", (("~=", "1.2"),))
    assert vs("2.0.0rc1", (("<", "2.0"),)) and not vs("2.0.0rc1", ((">=", "2.0"),))
    assert vs("1.4.2", (("==", "1.4.*"),)) and not vs("1.5.0", (("==", "1.4.*"),))
    assert vs("13.0.0", ((">=", "9.5"), ("<", "14")))


def test_requirements_file_parses(repo_root, tmp_path):
    inst = _load_install_module(repo_root)
    names = {r.name for r in inst.parse_requirements(repo_root / "requirements.txt")}
    assert {"numpy", "pillow", "scikit-learn"} <= names
    f = tmp_path / "req.txt"
    f.write_text("# c\nFoo_Bar[x]>=1.0, <2 ; sys_platform == 'nonexistent'\nbaz==3.*  # why\n-r other.txt\n")
    reqs = inst.parse_requirements(f)
    assert [(r.name, r.specs) for r in reqs] == [("baz", (("==", "3.*"),))]


def test_requirements_follow_the_python_version_markers(repo_root, tmp_path):
    """tomli is the nodes' TOML reader before Python 3.11 (tomllib after): requirements.txt asks
    for it there only, as pyproject.toml does, and the installer reads the marker instead of
    taking every marker it does not know as "applies"."""
    import sys

    inst = _load_install_module(repo_root)
    names = {r.name for r in inst.parse_requirements(repo_root / "requirements.txt")}
    assert ("tomli" in names) == (sys.version_info < (3, 11))
    f = tmp_path / "req.txt"
    now = f"{sys.version_info[0]}.{sys.version_info[1]}"
    f.write_text(f'a; python_version < "{now}"\nb; python_version >= "{now}"\nc; python_version == "{now}"\n'
                 f'd; python_version != "{now}"\ne; python_version > "2.7"\n')
    assert [r.name for r in inst.parse_requirements(f)] == ["b", "c", "e"]


# ----------------------------------------------------------------------------- a. git clone


def test_a_git_clone_into_custom_nodes_loads(comfy_server_factory, tmp_path, repo_root):
    if not (repo_root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout and git")
    base = tmp_path / "base"
    clone = base / "custom_nodes" / "dgx-pixels"
    clone.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(clone)], check=True)
    assert (clone / "__init__.py").is_file() and not (clone / ".venv").exists()
    handle = comfy_server_factory(base_dir=base, pack=None)
    expected = embedded.declared_node_ids(clone / "comfy_nodes" / "nodes")
    assert "DGXPixelsNearestUpscale" in expected
    embedded.check_nodes_loaded(handle.url, handle.log_text(), expected)
    info = embedded.http_json(f"{handle.url}/object_info/DGXPixelsNearestUpscale")
    assert info["DGXPixelsNearestUpscale"]["python_module"] == "custom_nodes.dgx-pixels"


# ----------------------------------------------------------------------------- b. ComfyUI-Manager


def test_b_manager_install_keeps_torch_numpy_and_loads(comfy_server_factory, fresh_python, tmp_path):
    base = tmp_path / "base"
    pack = _pack_copy(base / "custom_nodes")
    before = _versions(fresh_python)

    pip = subprocess.run(
        [str(fresh_python), "-m", "pip", "install", "--no-input", "-r", "requirements.txt"],
        cwd=pack, capture_output=True, text=True, env=embedded._pip_env(),
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    run = subprocess.run([str(fresh_python), "install.py"], cwd=pack, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all requirements present" in run.stdout

    after = _versions(fresh_python)
    assert after == before  # an installed OpenCV keeps its version like torch and numpy
    if not any(before[n] for n in OPENCV_DISTS):
        # OpenCV is no requirement of ours: with none installed, none may appear.
        assert not any(after[n] for n in OPENCV_DISTS) and not after["cv2 importable"], after
    where = _has_sklearn(fresh_python)
    assert where and str(tmp_path / "venv") in where  # went into the fresh env, not the shared cache

    handle = comfy_server_factory(base_dir=base, pack=None, python=fresh_python)
    embedded.check_nodes_loaded(handle.url, handle.log_text(), embedded.declared_node_ids(pack / "comfy_nodes" / "nodes"))


def test_b_install_py_alone_installs_only_what_is_missing(fresh_python, tmp_path, repo_root):
    pack = _pack_copy(tmp_path / "custom_nodes")
    # A pack that asks for an older numpy: install.py must leave ComfyUI's numpy alone.
    (pack / "requirements.txt").write_text("numpy<2\npillow>=9.5\nscikit-learn>=1.2,<2\n")
    before = _versions(fresh_python)
    run = subprocess.run([str(fresh_python), "install.py"], cwd=pack, capture_output=True, text=True, env=embedded._pip_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"keeping numpy {before['numpy']}" in run.stdout
    assert "missing in" in run.stdout and "scikit-learn>=1.2,<2" in run.stdout
    assert _versions(fresh_python) == before
    assert _has_sklearn(fresh_python)
    again = subprocess.run([str(fresh_python), "install.py"], cwd=pack, capture_output=True, text=True)
    assert again.returncode == 0 and "all requirements present" in again.stdout


# ----------------------------------------------------------------------------- c. --comfyui PATH


def _fake_comfyui_home(tmp_path: Path, comfy_install) -> Path:
    """A user-style ComfyUI folder: the pinned source with its own (empty) custom_nodes/."""
    home = tmp_path / "ComfyUI"
    shutil.copytree(comfy_install.src, home, ignore=shutil.ignore_patterns("__pycache__", "tests", "tests-unit"))
    (home / "custom_nodes").mkdir(exist_ok=True)
    return home


def test_c_install_into_comfyui_path_with_boot_check(fresh_python, tmp_path, repo_root, comfy_install):
    if __import__("os").environ.get("DGX_PIXELS_COMFYUI_URL"):
        pytest.skip("starts its own ComfyUI")
    home = _fake_comfyui_home(tmp_path, comfy_install)
    run = subprocess.run(
        [sys.executable, str(repo_root / "install.py"), "--comfyui", str(home), "--python", str(fresh_python), "--boot-check"],
        capture_output=True, text=True, env=embedded._pip_env(), timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    link = home / "custom_nodes" / "dgx-pixels"
    assert link.is_symlink() and link.resolve() == repo_root.resolve()
    assert "boot check: DGX-Pixels nodes loaded" in run.stdout
    assert _has_sklearn(fresh_python)

    # Linking again is idempotent; a real folder of someone else's is not replaced without --force.
    again = subprocess.run([sys.executable, str(repo_root / "install.py"), "--comfyui", str(home)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    link.unlink()
    link.mkdir()
    (link / "keep.txt").write_text("mine")
    refused = subprocess.run([sys.executable, str(repo_root / "install.py"), "--comfyui", str(home)], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "already exists and is not a link to this pack" in refused.stderr and "--force" in refused.stderr
    assert (link / "keep.txt").read_text() == "mine"


def test_c_copy_mode_with_boot_check_loads_the_copy(tmp_path, repo_root, comfy_install):
    if __import__("os").environ.get("DGX_PIXELS_COMFYUI_URL"):
        pytest.skip("starts its own ComfyUI")
    for module in ("torch", "sklearn"):  # the boot check runs ComfyUI with this Python
        pytest.importorskip(module)
    home = _fake_comfyui_home(tmp_path, comfy_install)
    # Byte-code lets the test see which files the booted ComfyUI imported.
    env = {k: v for k, v in embedded._pip_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    run = subprocess.run(
        [sys.executable, str(repo_root / "install.py"), "--comfyui", str(home), "--copy", "--boot-check"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    dest = home / "custom_nodes" / "dgx-pixels"
    assert f"copied {repo_root.resolve()} -> {dest.resolve()}" in run.stdout
    # check_nodes_loaded behind this line found every DGXPixels* id the copy declares in /object_info
    assert "boot check: DGX-Pixels nodes loaded (http://127.0.0.1:" in run.stdout
    assert "error:" not in run.stderr

    assert dest.is_dir() and not dest.is_symlink()
    assert (dest / "__init__.py").read_text() == (repo_root / "__init__.py").read_text()
    assert (dest / "comfy_nodes" / "nodes" / "nodes_preview.py").is_file()
    assert not (dest / ".git").exists() and not (dest / ".venv").exists() and not (dest / "tests").exists()
    expected = embedded.declared_node_ids(dest / "comfy_nodes" / "nodes")
    assert "DGXPixelsNearestUpscale" in expected and len(expected) >= 10
    # The copy is made without __pycache__: byte-code there means ComfyUI imported the copy's
    # nodes and core (relative imports), not this checkout's.
    for sub in ("nodes", "pixel"):
        assert list((dest / "comfy_nodes" / sub / "__pycache__").glob("*.pyc")), sub


def test_c_boot_check_reports_a_pack_that_cannot_load(tmp_path, repo_root, comfy_install):
    """A pack whose import fails: the boot check fails with ComfyUI's import error, not a traceback."""
    if __import__("os").environ.get("DGX_PIXELS_COMFYUI_URL"):
        pytest.skip("starts its own ComfyUI")
    home = _fake_comfyui_home(tmp_path, comfy_install)
    pack = tmp_path / "pack"
    shutil.copytree(repo_root, pack, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "tests", "bench"))
    target = pack / "comfy_nodes" / "nodes" / "nodes_preview.py"
    target.write_text(target.read_text() + "\nimport dgx_pixels_no_such_module\n")
    # the log of the failed start is kept in the cache: this test's own, not the user's
    env = {**__import__("os").environ, "DGX_PIXELS_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, str(pack / "install.py"), "--comfyui", str(home), "--boot-check"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 1
    assert "did not load" in run.stderr
    assert "No module named 'dgx_pixels_no_such_module'" in run.stderr
    assert len(list((tmp_path / "cache" / "logs").glob("comfyui-*.log"))) == 1
    assert "hint:" in run.stderr


def test_c_finds_comfyuis_own_venv_or_says_what_is_missing(tmp_path, repo_root, comfy_install, fresh_python):
    """Without --python, the Python of that ComfyUI is its venv/ (as its install guide makes
    it); with none, nothing is installed into this Python, and the run says what is missing."""
    home = tmp_path / "ComfyUI"
    for part in ("comfy", "custom_nodes"):
        (home / part).mkdir(parents=True)
    for f in ("main.py", "nodes.py", "folder_paths.py"):
        (home / f).write_text("")
    # run by a Python that lacks scikit-learn, as a system python3 would
    bare = subprocess.run([str(fresh_python), str(repo_root / "install.py"), "--comfyui", str(home), "--copy"],
                          capture_output=True, text=True, env=embedded._pip_env(), timeout=300)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "not installed: " in bare.stdout and "scikit-learn" in bare.stdout
    assert "so run again with --python /path/to/the/python/that/runs/ComfyUI" in bare.stdout
    assert _has_sklearn(fresh_python) is None
    copied = {p.name for p in (home / "custom_nodes" / "dgx-pixels").iterdir()}
    assert {"comfy_nodes", "install.py", "requirements.txt", "pyproject.toml"} <= copied
    assert not copied & {".git", ".venv", ".hypothesis", ".ci", ".pytest_cache", "tests", "bench"}
    py = embedded.make_overlay_venv(home / "venv", comfy_install, with_pip=False, progress=lambda _m: None)
    run = subprocess.run([sys.executable, str(repo_root / "install.py"), "--comfyui", str(home), "--dry-run"],
                         capture_output=True, text=True, env=embedded._pip_env(), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"ComfyUI's Python: {py}" in run.stdout and f"missing in {py}: " in run.stdout and "scikit-learn" in run.stdout


def test_c_not_a_comfyui_path_is_a_clear_error(tmp_path, repo_root):
    run = subprocess.run(
        [sys.executable, str(repo_root / "install.py"), "--comfyui", str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert f"error: {tmp_path} is not a ComfyUI folder (missing main.py, comfy, nodes.py)" in run.stderr
    assert "hint:" in run.stderr and "Traceback" not in run.stderr


# ----------------------------------------------------------------------------- c. reruns and refusals


def _bare_comfyui(root: Path) -> Path:
    """The three names check_comfyui_dir looks for, and an empty custom_nodes/."""
    for part in ("comfy", "custom_nodes"):
        (root / part).mkdir(parents=True, exist_ok=True)
    for f in ("main.py", "nodes.py", "folder_paths.py"):
        (root / f).write_text("")
    return root


def _install(install_py: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(install_py), *args], capture_output=True, text=True, timeout=timeout)


def test_c_copy_is_refreshed_on_rerun_and_link_and_copy_switch(tmp_path, repo_root):
    home = _bare_comfyui(tmp_path / "ComfyUI")
    dest = home / "custom_nodes" / "dgx-pixels"
    common = ("--comfyui", str(home), "--python", sys.executable)
    run = _install(repo_root / "install.py", *common, "--copy")
    assert run.returncode == 0, run.stdout + run.stderr
    assert dest.is_dir() and not dest.is_symlink() and (dest / ".dgx-pixels-copy").is_file()
    (dest / "stale-from-an-old-version.py").write_text("")
    again = _install(repo_root / "install.py", *common, "--copy")  # how a copy is updated after `git pull`
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (dest / "stale-from-an-old-version.py").exists() and (dest / "install.py").is_file()
    assert not [p for p in (home / "custom_nodes").iterdir() if p.name != "dgx-pixels"]  # no staging left
    to_link = _install(repo_root / "install.py", *common)
    assert to_link.returncode == 0, to_link.stderr
    assert dest.is_symlink() and dest.resolve() == repo_root.resolve()
    to_copy = _install(repo_root / "install.py", *common, "--copy")
    assert to_copy.returncode == 0, to_copy.stderr
    assert dest.is_dir() and not dest.is_symlink()
    assert repo_root.resolve().is_dir() and (repo_root / "install.py").is_file()  # the link's target untouched


def test_c_a_link_to_another_folder_needs_force(tmp_path, repo_root):
    home = _bare_comfyui(tmp_path / "ComfyUI")
    other = tmp_path / "otherpack"
    other.mkdir()
    (other / "__init__.py").write_text("print('other')\n")
    dest = home / "custom_nodes" / "dgx-pixels"
    dest.symlink_to(other, target_is_directory=True)
    refused = _install(repo_root / "install.py", "--comfyui", str(home), "--python", sys.executable)
    assert refused.returncode == 1
    assert f"{dest} already exists and links to another folder ({other}), not this pack" in refused.stderr
    assert "--force" in refused.stderr and dest.resolve() == other
    forced = _install(repo_root / "install.py", "--comfyui", str(home), "--python", sys.executable, "--force")
    assert forced.returncode == 0, forced.stderr
    assert dest.resolve() == repo_root.resolve() and (other / "__init__.py").is_file()
    # a dangling link is nobody's: replaced, and said so
    dest.unlink()
    dest.symlink_to(tmp_path / "gone", target_is_directory=True)
    run = _install(repo_root / "install.py", "--comfyui", str(home), "--python", sys.executable)
    assert run.returncode == 0 and "replacing the dangling link" in run.stdout


def test_c_a_copy_into_a_comfyui_inside_the_pack_is_refused(tmp_path):
    pack = _pack_copy(tmp_path / "somewhere")
    home = _bare_comfyui(pack / "ComfyUI")
    run = _install(pack / "install.py", "--comfyui", str(home), "--python", sys.executable, "--copy", timeout=60)
    assert run.returncode == 1
    assert f"{home / 'custom_nodes'} is inside this pack ({pack}): a copy would copy itself" in run.stderr
    assert "Traceback" not in run.stderr and list((home / "custom_nodes").iterdir()) == []


def test_c_a_pack_cloned_under_another_name_is_not_added_twice(tmp_path):
    home = _bare_comfyui(tmp_path / "ComfyUI")
    pack = _pack_copy(home / "custom_nodes")
    pack = pack.rename(home / "custom_nodes" / "ComfyUI-DGX-Pixels")
    (home / "custom_nodes" / "dgx-pixels").symlink_to(pack, target_is_directory=True)  # left by an older install.py
    run = _install(pack / "install.py", "--comfyui", str(home), "--python", sys.executable)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "not adding dgx-pixels beside it" in run.stdout
    assert sorted(p.name for p in (home / "custom_nodes").iterdir()) == ["ComfyUI-DGX-Pixels"]


def test_c_a_second_copy_beside_one_the_manager_cloned_is_refused(tmp_path, repo_root):
    """install.py --comfyui from another checkout linked dgx-pixels beside the Manager's clone
    ComfyUI-DGX-Pixels: ComfyUI loaded both, one hid the other's nodes and every template was
    listed twice. It refuses, naming the copy there, and changes nothing."""
    home = _bare_comfyui(tmp_path / "ComfyUI")
    clone = _pack_copy(home / "custom_nodes").rename(home / "custom_nodes" / "ComfyUI-DGX-Pixels")
    run = _install(repo_root / "install.py", "--comfyui", str(home), "--python", sys.executable)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{home / 'custom_nodes'} already holds DGX-Pixels as ComfyUI-DGX-Pixels: ComfyUI would load it twice" \
        in run.stderr
    assert f"git pull in {clone}" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in (home / "custom_nodes").iterdir()) == ["ComfyUI-DGX-Pixels"]


@pytest.mark.parametrize("bad", ["/etc/hostname", "a folder", "a script"])
def test_c_a_python_that_is_not_one_is_refused_before_anything_changes(tmp_path, repo_root, bad):
    home = _bare_comfyui(tmp_path / "ComfyUI")
    mine = home / "custom_nodes" / "dgx-pixels"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    if bad == "a folder":
        bad = str(tmp_path)
    elif bad == "a script":
        script = tmp_path / "python"
        script.write_text("#!/bin/sh\necho not python\n")
        script.chmod(0o755)
        bad = str(script)
    elif not Path(bad).is_file():
        pytest.skip(f"{bad} is absent here")
    run = _install(repo_root / "install.py", "--comfyui", str(home), "--python", bad, "--force", timeout=60)
    assert run.returncode == 1
    assert f"error: {bad} is not a Python interpreter" in run.stderr and "Traceback" not in run.stderr
    assert (mine / "keep.txt").read_text() == "mine"


def test_c_a_venv_without_pip_is_named_with_the_fix(tmp_path, repo_root):
    home = _bare_comfyui(tmp_path / "ComfyUI")
    # the way `uv venv` makes them: no pip inside
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home / "venv")], check=True, timeout=120)
    run = _install(repo_root / "install.py", "--comfyui", str(home))
    assert run.returncode == 1
    py = home / "venv" / "bin" / "python"
    assert f"error: pip is not installed in {py}" in run.stderr
    assert "-m ensurepip" in run.stderr and f"uv pip install --python {py} -r" in run.stderr
    assert "without changing :" not in run.stderr and "Traceback" not in run.stderr


# ----------------------------------------------------------------------------- a failed boot check keeps its log

# Stand-ins for ComfyUI's main.py, run as real processes by the boot check. The first dies at
# start-up; the second answers like a ComfyUI whose node packs failed to import.
_DYING_MAIN = """
import sys
print("fake ComfyUI: starting on", sys.argv[sys.argv.index("--port") + 1], flush=True)
print("fake ComfyUI: RuntimeError: no usable torch build, giving up", flush=True)
sys.exit(3)
"""
_NO_NODES_MAIN = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
print("Traceback (most recent call last):", flush=True)
print("ModuleNotFoundError: No module named 'fake_missing_dependency'", flush=True)
print("Cannot import /x/custom_nodes/dgx-pixels module for custom nodes: fake_missing_dependency", flush=True)

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = json.dumps({"system": {}} if self.path == "/system_stats" else {}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), H).serve_forever()
"""


@pytest.mark.parametrize("main_py, says, logged", [
    (_DYING_MAIN, "ComfyUI exited during start-up (exit 3)", "RuntimeError: no usable torch build"),
    (_NO_NODES_MAIN, "the DGX-Pixels nodes did not load", "No module named 'fake_missing_dependency'"),
])
def test_c_boot_check_failure_names_a_log_that_is_still_there(tmp_path, repo_root, main_py, says, logged):
    home = tmp_path / "ComfyUI"
    (home / "comfy").mkdir(parents=True)
    (home / "custom_nodes").mkdir()
    (home / "nodes.py").write_text("")
    (home / "main.py").write_text(main_py)
    cache = tmp_path / "cache"
    env = {**embedded._pip_env(), "DGX_PIXELS_CACHE": str(cache)}
    run = subprocess.run(
        [sys.executable, str(repo_root / "install.py"), "--comfyui", str(home), "--python", sys.executable,
         "--boot-check"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert says in run.stderr, run.stderr
    named = re.search(r"; log (\S+\.log)", run.stderr)
    assert named, run.stderr
    log = Path(named.group(1))
    # the boot check's server is gone, and so is its temporary folder: the log is not in it
    assert log.is_file(), run.stderr
    assert log.parent == cache.resolve() / "logs"
    assert logged in log.read_text()


def test_the_registry_archive_leaves_out_development_files_only(repo_root):
    """`comfy node pack` archives the git-tracked files less .comfyignore's patterns: the tests
    and benchmarks were most of the archive. They are left out; nothing ComfyUI, install.py or
    the templates read is (checked against every tracked file, with the patterns as the
    archive applies them: a folder pattern covers what is under it)."""
    import subprocess

    patterns = [line.strip() for line in (repo_root / ".comfyignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=repo_root, capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return any(path.startswith(p) if p.endswith("/") else path == p for p in patterns)

    left_out = {p.split("/")[0] for p in tracked if ignored(p)}
    assert {"tests", "bench", "dev.py"} <= left_out
    needed = [p for p in tracked if p.startswith(("comfy_nodes/", "orchestrator/", "workflows/", "example_workflows/",
                                                  "models/")) or p in ("__init__.py", "install.py", "requirements.txt",
                                                                       "pyproject.toml", "docs/icon.png", "LICENSE")]
    assert needed and not [p for p in needed if ignored(p)]
