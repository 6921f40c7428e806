"""Package layout: the pixel core and the offline CLI work without ComfyUI or torch.

``comfy_nodes.pixel`` is meant for a plain venv (numpy + Pillow). The test venv overlays the
ComfyUI one, so torch and ComfyUI's modules are importable here: the check runs in a fresh
interpreter where they are made unimportable (``sys.modules[name] = None`` makes any import of
them raise ``ImportError``), which is what a plain venv looks like to the code under test.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

# torch and the top-level modules of ComfyUI's source folder.
COMFY_AND_TORCH = (
    "torch", "torchvision", "torchaudio", "comfy", "comfy_api", "comfy_execution", "comfy_extras",
    "folder_paths", "server", "nodes", "execution", "comfyui_version",
)
# The ComfyUI-only half of this pack must not be pulled in either.
BLOCKED = COMFY_AND_TORCH + ("comfy_nodes.nodes",)

PROBE = textwrap.dedent("""\
    import json, pkgutil, importlib, sys
    BLOCKED = {blocked!r}
    for name in BLOCKED:
        sys.modules[name] = None
    sys.path.insert(0, {repo!r})

    import numpy as np
    import comfy_nodes.pixel as pixel

    imported = []
    for info in pkgutil.iter_modules(pixel.__path__):
        importlib.import_module("comfy_nodes.pixel." + info.name)
        imported.append(info.name)

    from comfy_nodes.pixel import grid
    rng = np.random.default_rng(7)
    pal = np.array([[20, 20, 30, 255], [220, 60, 40, 255], [50, 180, 90, 255], [240, 240, 230, 255]], np.uint8)
    art = pal[rng.integers(0, 4, size=(6, 5))]
    big = np.repeat(np.repeat(art, 8, axis=0), 8, axis=1)
    res = grid.snap(big)
    snapped = bool((res.image == art).all()) and res.image.shape == art.shape

    from orchestrator.cli import main
    rc = main(["snap", sys.argv[1], "-o", sys.argv[2], "--json"])

    loaded = sorted(n for n in BLOCKED if sys.modules.get(n) is not None)
    loaded += sorted(n for n, m in sys.modules.items()
                     if m is not None and n.split(".")[0] in {{"torch", "torchvision", "comfy", "comfy_api"}})
    print(json.dumps({{"imported": imported, "snapped": snapped, "cli_rc": rc, "loaded": loaded}}))
""")


def test_pixel_core_and_offline_snap_need_no_comfyui_or_torch(tmp_path):
    rng = np.random.default_rng(3)
    pal = np.array([[10, 10, 10], [200, 40, 40], [40, 200, 60], [240, 240, 240]], np.uint8)
    art = pal[rng.integers(0, 4, size=(9, 12))]
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(art, 7, axis=0), 7, axis=1)).save(src)
    out = tmp_path / "out.png"
    code = PROBE.format(blocked=BLOCKED, repo=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(out)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    expected = sorted(p.stem for p in (REPO / "comfy_nodes" / "pixel").glob("*.py") if p.stem != "__init__")
    assert sorted(report["imported"]) == expected
    assert report["snapped"], "grid.snap did not recover the synthetic sprite"
    assert report["cli_rc"] == 0
    assert report["loaded"] == []
    grid_info = json.loads(lines[-2])
    assert (grid_info["cols"], grid_info["rows"]) == (12, 9)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), art)


def test_the_blocking_is_effective(tmp_path):
    """torch is installed in this interpreter, so only the blocking keeps it out of the probe above."""
    find = "import importlib.util; print(importlib.util.find_spec('torch') is not None)"
    present = subprocess.run([sys.executable, "-c", find], capture_output=True, text=True, timeout=120)
    if present.stdout.strip() != "True":
        pytest.skip("torch is not installed here: the probe above ran in a plain environment anyway")
    code = f"import sys\nfor n in {COMFY_AND_TORCH!r}: sys.modules[n] = None\nimport torch\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "import of torch halted; None in sys.modules" in proc.stderr, proc.stderr[-2000:]



def test_registry_metadata_is_complete_and_the_icon_ships():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the file is read the same way by the registry
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert project["name"] == "dgx-pixels"
    assert project["license"]["text"] == "GPL-3.0-or-later"
    assert project["scripts"]["dgx-pixels"] == "orchestrator.cli:main"
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert comfy.get(key), f"[tool.comfy] {key} is empty"
    # the icon URL points at a file of this repository's main branch: it must exist and be an image
    repo_url = project["urls"]["Repository"].rstrip("/")
    prefix = repo_url.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    assert comfy["Icon"].startswith(prefix), comfy["Icon"]
    with Image.open(REPO / comfy["Icon"][len(prefix):]) as icon:
        assert icon.width == icon.height >= 128
    # no runtime dependency is pinned to one version (the pack shares ComfyUI's Python)
    assert not [d for d in project["dependencies"] if "==" in d]


def test_one_command_imports_only_its_own_module_and_help_lists_them_all(tmp_path):
    """A run of one command (a script calling ``dgx-pixels snap`` per image) builds the parser of
    that command alone, so the modules of commands it does not use (the ComfyUI client's, the
    watcher's, the MCP server's) are not imported; ``--help``, a word that is no command, and no
    word at all still get the whole list."""
    src = tmp_path / "in.png"
    Image.fromarray(np.repeat(np.repeat(np.eye(6, dtype=np.uint8) * 200, 8, axis=0), 8, axis=1)).save(src)
    code = textwrap.dedent(f"""\
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from orchestrator.cli import build_parser, main, COMMANDS
        rc = main(["snap", sys.argv[1], "-o", sys.argv[2]])
        loaded = sorted(n for n in sys.modules if n.startswith("orchestrator.commands."))
        whole = build_parser().format_help()
        print(json.dumps({{"rc": rc, "loaded": loaded, "listed": [c for c in COMMANDS if f"    {{c}} " in whole
                                                                   or f"    {{c}}\\n" in whole]}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "out.png")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0 and (tmp_path / "out.png").exists()
    from orchestrator.cli import COMMANDS

    assert "orchestrator.commands.snap" in report["loaded"]
    unused = {f"orchestrator.commands.{c}" for c in COMMANDS} - {"orchestrator.commands.snap", "orchestrator.commands.sheet"}
    assert not unused & set(report["loaded"]), report["loaded"]  # snap reuses the sheet command's frame reader

    assert report["listed"] == list(COMMANDS)
    for argv in (["--help"], ["nosuch"], []):
        proc = subprocess.run([sys.executable, "-m", "orchestrator", *argv], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        shown = proc.stdout + proc.stderr
        assert all(name in shown for name in COMMANDS), (argv, shown)
    # a version check imports no command's module at all
    code = ("import sys; sys.path.insert(0, %r)\nfrom orchestrator.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit as e:\n    print(e.code, sorted(n for n in sys.modules if n.startswith('orchestrator.commands.')))"
            % str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    from orchestrator import __version__

    assert proc.stdout.splitlines() == [f"dgx-pixels {__version__}", "0 []"], proc.stdout + proc.stderr
