#!/usr/bin/env python3
"""Build (once) and locate the virtual environment that holds the public grid-snap peers.

    python bench/peers/peers_venv.py            # build if missing, print the venv's python
    python bench/peers/peers_venv.py --rebuild  # throw the cached venv away and build it again

The venv lives outside the checkout, under ~/.cache/dgx-pixels/peers-venv/<hash>, where <hash>
is taken from requirements.txt and constraints.txt (the frozen transitive dependencies): changing
a pin builds a fresh venv, and nothing the peers pull in
can leak into the project's own environment. Each requirement is installed on its own so that one
peer that cannot install on this machine does not keep the others out; the outcome per requirement
is written to install-report.json inside the venv.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
CONSTRAINTS = HERE / "constraints.txt"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dgx-pixels" / "peers-venv"
REPORT_NAME = "install-report.json"


def requirements() -> list[str]:
    """The pinned requirement lines of requirements.txt, comments and blanks dropped."""
    lines = []
    for raw in REQUIREMENTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def venv_dir() -> Path:
    """Cache folder of the venv that matches the current pin file."""
    h = hashlib.sha256(REQUIREMENTS.read_bytes())
    if CONSTRAINTS.exists():
        h.update(CONSTRAINTS.read_bytes())
    digest = h.hexdigest()[:16]
    return CACHE_ROOT / digest


def venv_python(root: Path | None = None) -> Path:
    return (root or venv_dir()) / "bin" / "python"


def load_report(root: Path | None = None) -> dict[str, dict]:
    """Per-requirement install outcome ({"ok": bool, "error": str}); empty when not built."""
    path = (root or venv_dir()) / REPORT_NAME
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def build(rebuild: bool = False, quiet: bool = False) -> Path:
    """Create the venv if it is missing (or `rebuild`), install every pin; return the venv's python.

    A half-built venv (no report yet) is rebuilt from scratch, because an interrupted pip run can
    leave a package importable but broken."""
    root = venv_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    # Two benchmark runs started together must not build into (or delete) the same folder.
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(root, rebuild, quiet)


def _build_locked(root: Path, rebuild: bool, quiet: bool) -> Path:
    if rebuild or (root.exists() and not (root / REPORT_NAME).exists()):
        shutil.rmtree(root, ignore_errors=True)
    if (root / REPORT_NAME).exists():
        return venv_python(root)
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    log(f"building peers venv in {root}")
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    py = str(venv_python(root))
    report: dict[str, dict] = {}
    for req in requirements():
        log(f"  pip install {req}")
        cmd = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", req]
        if CONSTRAINTS.exists():
            cmd += ["-c", str(CONSTRAINTS)]
        p = subprocess.run(cmd,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ok = p.returncode == 0
        tail = "\n".join(p.stdout.strip().splitlines()[-15:])
        report[req] = {"ok": ok, "error": "" if ok else tail}
        if not ok:
            log(f"    FAILED: {tail}")
    freeze = subprocess.run([py, "-m", "pip", "freeze"], stdout=subprocess.PIPE, text=True).stdout
    (root / "freeze.txt").write_text(freeze)
    (root / REPORT_NAME).write_text(json.dumps(report, indent=1))
    return venv_python(root)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rebuild", action="store_true", help="delete the cached venv and build it again")
    a = ap.parse_args()
    py = build(rebuild=a.rebuild)
    for req, r in load_report().items():
        print(f"{'ok    ' if r['ok'] else 'FAILED'} {req}", file=sys.stderr)
    print(py)
    return 0


if __name__ == "__main__":
    sys.exit(main())
