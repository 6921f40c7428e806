#!/usr/bin/env python3
"""Developer entry point: ``python3 dev.py test`` and ``python3 dev.py demo``.

Needs only Python 3.10+ with pip (standard library only here). Both commands first prepare:

1. a pinned ComfyUI 0.3.75 with torch in the cache (``orchestrator/embedded.py``;
   ``$DGX_PIXELS_CACHE`` or ``~/.cache/dgx-pixels``; first time 3-10 min and ~7.5 GB);
2. ``.venv`` in this checkout, overlaying the cached ComfyUI venv, with this project installed
   editable plus its test extras (re-installed only when pyproject.toml or the pins change).

``test`` also makes sure of what the browser tests (``tests/test_editor_browser.py``) drive:
the ``playwright`` package in ``.venv`` (any missing test package is installed from the
``test`` extra) and Debian's ``chromium`` (``apt-get install -y chromium`` when it is missing
and this runs as root with apt-get; otherwise it says so and those tests skip). Nothing is
printed when both are there. ``DGX_PIXELS_DEV_DRY_RUN=1`` prints what would be installed
instead of installing it.

``test`` then runs pytest with that venv (extra arguments go to pytest; exit code is pytest's,
and "no tests collected" counts as a failure). ``demo`` runs ``dgx-pixels demo``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dgx-pixels-installed"


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def _stamp_value(pin: str) -> str:
    h = hashlib.sha256(pin.encode())
    for name in ("pyproject.toml", "requirements.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:16]


# Imported by the tests, checked by pytest itself, driving the browser tests: module -> package.
TEST_MODULES = {"pytest": "pytest", "hypothesis": "hypothesis", "pyron": "python-ron", "fastmcp": "fastmcp",
                "playwright": "playwright"}
# Where tests/test_editor_browser.py looks for Debian's chromium, in its order.
CHROMIUM_ENV = "DGX_PIXELS_CHROMIUM"
DRY_RUN_ENV = "DGX_PIXELS_DEV_DRY_RUN"


def find_chromium(env: dict | None = None, which=shutil.which, exists=os.path.exists) -> str | None:
    """The chromium executable the browser tests will use, or None."""
    env = os.environ if env is None else env
    for cand in (env.get(CHROMIUM_ENV), "/usr/bin/chromium", which("chromium"), which("chromium-browser")):
        if cand and exists(cand):
            return cand
    return None


def chromium_plan(chromium: str | None, *, euid: int, apt_get: str | None) -> tuple[list[list[str]], str | None]:
    """What to do about chromium: (commands to run in order, message to show instead).

    Nothing when it is there; ``apt-get install`` as root with apt-get (``apt-get update`` is
    the fallback when the package lists are empty, see ``install_chromium``); otherwise a
    message saying how to install it, and the browser tests skip.
    """
    if chromium is not None:
        return [], None
    if apt_get is None:
        return [], ("chromium is not installed and there is no apt-get here: the browser tests "
                    "(tests/test_editor_browser.py) will be skipped; install Chromium and set "
                    f"{CHROMIUM_ENV}=/path/to/chromium to run them")
    if euid != 0:
        return [], ("chromium is not installed and installing it needs root: the browser tests "
                    "(tests/test_editor_browser.py) will be skipped; run `sudo apt-get install -y chromium` "
                    "to include them")
    return [[apt_get, "install", "-y", "--no-install-recommends", "chromium"]], None


def _apt_env() -> dict:
    env = dict(os.environ)
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return env


def install_chromium(dry_run: bool) -> None:
    """Install Debian's chromium when it is missing and we may; never fails the test run."""
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    commands, message = chromium_plan(find_chromium(), euid=euid, apt_get=shutil.which("apt-get"))
    if message:
        say(message)
    if not commands:
        return
    install = commands[0]
    update = [install[0], "update"]
    if dry_run:
        say(f"dry run: would run `{' '.join(install)}` (after `{' '.join(update)}` if that fails)")
        return
    say(f"installing Debian's chromium for the browser tests: {' '.join(install)}")
    t0 = time.monotonic()
    proc = subprocess.run(install, capture_output=True, text=True, env=_apt_env())
    if proc.returncode != 0:
        # A fresh machine (or container) often has no package lists yet.
        subprocess.run(update, capture_output=True, text=True, env=_apt_env())
        proc = subprocess.run(install, capture_output=True, text=True, env=_apt_env())
    if proc.returncode != 0 or find_chromium() is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        say("could not install chromium (" + " / ".join(tail) + "): the browser tests will be skipped")
        return
    say(f"chromium installed in {time.monotonic() - t0:.0f} s: {find_chromium()}")


def missing_modules(py: Path) -> list[str]:
    """The test packages ``py`` cannot import (by package name)."""
    code = ("import importlib.util, sys\n"
            "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))")
    out = subprocess.run([str(py), "-c", code, *TEST_MODULES], capture_output=True, text=True, check=True).stdout
    return [TEST_MODULES[m] for m in out.split()]


def ensure_test_tools(py: Path, base, dry_run: bool = False) -> None:
    """Make sure the test extra (playwright included) is importable in ``.venv`` and chromium is
    installed; silent when both are."""
    from orchestrator import embedded
    from orchestrator.errors import SetupError

    missing = missing_modules(py)
    if missing:
        if dry_run:
            say(f"dry run: would install {', '.join(missing)} into {VENV} (pip install -e .[test])")
        else:
            say(f"test packages missing from {VENV}: {', '.join(missing)}; installing the test extra")
            try:
                embedded.make_overlay_venv(VENV, base, install=["-e", f"{ROOT}[test]"], progress=say)
            except SetupError as exc:
                # Without playwright only the browser tests skip; anything else pytest reports.
                say(f"could not install the test packages ({exc.message.splitlines()[0]})")
    install_chromium(dry_run)


def prepare(for_tests: bool = False) -> Path:
    """Provision ComfyUI and the overlay venv; return the venv's python."""
    sys.path.insert(0, str(ROOT))
    from orchestrator import embedded
    from orchestrator.errors import SetupError

    t0 = time.monotonic()
    try:
        base = embedded.provision(progress=say)
        say(f"ComfyUI {embedded.COMFYUI_VERSION}: {base.home}")
        stamp = _stamp_value(embedded.pin_hash())
        current = STAMP.read_text().strip() if STAMP.exists() else ""
        if current != stamp:
            py = embedded.make_overlay_venv(VENV, base, install=["-e", f"{ROOT}[test]"], progress=say)
            STAMP.write_text(stamp + "\n")
        else:
            py = embedded.make_overlay_venv(VENV, base, progress=say)
        if for_tests:
            ensure_test_tools(py, base, dry_run=os.environ.get(DRY_RUN_ENV, "") not in ("", "0"))
    except SetupError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    say(f"environment ready in {time.monotonic() - t0:.1f} s ({py})")
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "demo", "env"):
        print(__doc__.strip(), file=sys.stderr)
        print("\nusage: python3 dev.py {test,demo,env} [args...]", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    py = prepare(for_tests=cmd == "test")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if cmd == "env":
        return 0
    if cmd == "test":
        say("running pytest")
        t0 = time.monotonic()
        rc = subprocess.call([str(py), "-m", "pytest", *rest], cwd=ROOT, env=env)
        say(f"pytest finished in {time.monotonic() - t0:.0f} s with exit code {rc}")
        if rc == 5:
            say("pytest collected no tests: counting that as a failure")
            return 1
        return rc
    # from where the user is: `--bevy my_game` and ./demo-bevy mean their folder, not the checkout
    return subprocess.call([str(VENV / "bin" / "dgx-pixels"), "demo", *rest], env=env)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
