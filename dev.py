#!/usr/bin/env python3
"""Developer entry point: ``python3 dev.py test`` and ``python3 dev.py demo``.

Needs only Python 3.10+ with pip (standard library only here). Both commands first prepare:

1. a pinned ComfyUI 0.3.75 with torch in the cache (``orchestrator/embedded.py``;
   ``$DGX_PIXELS_CACHE`` or ``~/.cache/dgx-pixels``; first time 3-10 min and ~7.5 GB);
2. ``.venv`` in this checkout, overlaying the cached ComfyUI venv, with this project installed
   editable plus its test extras (re-installed only when pyproject.toml or the pins change).

``test`` then runs pytest with that venv (extra arguments go to pytest; exit code is pytest's,
and "no tests collected" counts as a failure). ``demo`` runs ``dgx-pixels demo``.
"""
from __future__ import annotations

import hashlib
import os
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


def prepare() -> Path:
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
    py = prepare()
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
    return subprocess.call([str(VENV / "bin" / "dgx-pixels"), "demo", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
