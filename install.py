#!/usr/bin/env python3
"""Install DGX-Pixels into a ComfyUI (standard library only; any Python 3.10+).

Three ways, all supported:

1. ``git clone <repo> ComfyUI/custom_nodes/dgx-pixels`` - ComfyUI loads the pack at start.
2. ComfyUI-Manager's way, inside the pack folder with ComfyUI's Python::

       python -m pip install -r requirements.txt
       python install.py

   ``install.py`` installs only requirements that are *missing* and never upgrades or
   downgrades torch, torchvision, torchaudio, numpy, Pillow or OpenCV: pip runs with a
   constraints file that pins the versions already installed.
3. From anywhere::

       python install.py --comfyui PATH [--copy] [--python PY] [--boot-check]

   links (or copies) this pack into ``PATH/custom_nodes/dgx-pixels``, installs missing
   requirements into ``PY``, the Python that runs that ComfyUI (default: the virtual
   environment inside PATH, ``venv/`` or ``.venv/``, or the portable build's
   ``python_embeded/`` beside it; when there is none, it says what is missing and asks for
   ``--python``) and, with ``--boot-check``, starts that ComfyUI on a free loopback port to
   prove the nodes load; a failed check names the server's log, kept in the cache's ``logs/``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
PACK_NAME = "dgx-pixels"

# What ComfyUI and other node packs depend on: changing any of these breaks somebody else's
# workflow, so an installed version always wins over what our requirements ask for.
PROTECTED = (
    "torch",
    "torchvision",
    "torchaudio",
    "numpy",
    "pillow",
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def say(msg: str) -> None:
    print(f"[dgx-pixels] {msg}", flush=True)


class InstallError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


# ----------------------------------------------------------------------------- requirements


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    line: str  # as written, without comment
    name: str  # canonical
    specs: tuple[tuple[str, str], ...]  # (operator, version)


_REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def parse_requirements(path: Path) -> list[Requirement]:
    """Parse a requirements file of plain ``name[extras] <specifiers> ; marker`` lines."""
    reqs = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        if ";" in line:
            line, marker = (part.strip() for part in line.split(";", 1))
            if not _marker_applies(marker):
                continue
        m = _REQ_RE.match(line)
        if not m:
            raise InstallError(f"{path}: cannot read requirement {raw!r}")
        specs = []
        for spec in filter(None, (s.strip() for s in m.group(3).split(","))):
            sm = re.match(r"^(~=|==|!=|<=|>=|<|>|===)\s*(\S+)$", spec)
            if not sm:
                raise InstallError(f"{path}: cannot read version specifier {spec!r} in {raw!r}")
            specs.append((sm.group(1), sm.group(2)))
        reqs.append(Requirement(line=line, name=canonical(m.group(1)), specs=tuple(specs)))
    return reqs


def _marker_applies(marker: str) -> bool:
    # Only the markers a node pack realistically uses; anything else counts as "applies".
    v = re.match(r"""^python_version\s*(<=|>=|==|!=|<|>)\s*["']([\d.]+)["']$""", marker)
    if v:
        have = _cmp(tuple(sys.version_info[:2]), tuple(int(x) for x in v.group(2).split(".")))
        return {"<": have < 0, "<=": have <= 0, ">": have > 0, ">=": have >= 0,
                "==": have == 0, "!=": have != 0}[v.group(1)]
    m = re.match(r"""^(sys_platform|platform_system)\s*(==|!=)\s*["']([^"']+)["']$""", marker)
    if not m:
        return True
    import platform

    actual = sys.platform if m.group(1) == "sys_platform" else platform.system()
    return (actual == m.group(3)) == (m.group(2) == "==")


def _release(version: str) -> tuple[tuple[int, ...], bool]:
    """(release numbers, is_prerelease) of a PEP 440 version; the local part (+cu128) is ignored."""
    v = version.split("+", 1)[0].lower().lstrip("v")
    m = re.match(r"^(\d+(?:\.\d+)*)(.*)$", v)
    if not m:
        return (), False
    nums = tuple(int(x) for x in m.group(1).split("."))
    rest = m.group(2)
    return nums, bool(re.match(r"^[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)", rest))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def version_satisfies(version: str, specs: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``version`` meets every specifier (release segments; pre-releases sort first)."""
    have, have_pre = _release(version)
    for op, want_s in specs:
        if op == "===":
            if version != want_s:
                return False
            continue
        if want_s.endswith(".*"):
            prefix, _ = _release(want_s[:-2])
            match = have[: len(prefix)] + (0,) * max(0, len(prefix) - len(have)) == prefix
            if (op == "==") != match:
                return False
            continue
        want, want_pre = _release(want_s)
        c = _cmp(have, want)
        if c == 0 and have_pre != want_pre:
            c = -1 if have_pre else 1
        ok = {
            "==": c == 0,
            "!=": c != 0,
            ">=": c >= 0,
            "<=": c <= 0,
            ">": c > 0,
            "<": c < 0,
            "~=": c >= 0 and _cmp(have[: len(want) - 1], want[: len(want) - 1]) == 0,
        }[op]
        if not ok:
            return False
    return True


_PROBE = """
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def installed_versions(python: str, names: list[str]) -> dict[str, str | None]:
    """Versions of distributions installed for ``python`` (None = not installed)."""
    proc = subprocess.run([python, "-c", _PROBE, *names], capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"cannot run {python}: {proc.stderr.strip()[-500:]}", hint="pass the Python that runs ComfyUI")
    return json.loads(proc.stdout)


def check_python(python: str) -> None:
    """Refuse ``python`` unless it runs as a Python 3.10+ interpreter; called before anything
    is changed, so a wrong ``--python`` leaves custom_nodes as it was."""
    path = Path(python)
    if not path.exists():
        raise InstallError(f"Python not found: {python}", hint="give the python executable that runs ComfyUI")
    if path.is_dir() or not os.access(path, os.X_OK):
        raise InstallError(f"{python} is not a Python interpreter (not an executable file)",
                           hint="give the python executable that runs ComfyUI, e.g. ComfyUI/venv/bin/python")
    try:
        proc = subprocess.run([python, "-c", "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InstallError(f"{python} is not a Python interpreter ({exc})",
                           hint="give the python executable that runs ComfyUI, e.g. ComfyUI/venv/bin/python") from None
    out = proc.stdout.strip()
    if proc.returncode != 0 or not out.isdigit():
        raise InstallError(f"{python} is not a Python interpreter (it did not run a Python one-liner)",
                           hint="give the python executable that runs ComfyUI, e.g. ComfyUI/venv/bin/python")
    if int(out) < 310:
        raise InstallError(f"{python} is Python {int(out) // 100}.{int(out) % 100}; DGX-Pixels needs 3.10 or newer",
                           hint="give the python executable that runs ComfyUI")


def check_pip(python: str, req_file: Path) -> None:
    """Refuse to go on when ``python`` has no pip (a venv made by ``uv venv`` has none)."""
    proc = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(
            f"pip is not installed in {python}, so the missing requirements cannot be installed",
            hint=f"run `{python} -m ensurepip --upgrade` and then this again, or install them with uv: "
                 f"`uv pip install --python {python} -r {req_file}`",
        )


@dataclass
class Plan:
    install: list[Requirement]
    kept: list[tuple[Requirement, str]]  # installed, outside the range, left alone
    protected_pins: dict[str, str]


def plan_install(python: str, requirements: list[Requirement]) -> Plan:
    names = sorted({r.name for r in requirements} | set(PROTECTED))
    versions = installed_versions(python, names)
    plan = Plan(install=[], kept=[], protected_pins={n: v for n, v in versions.items() if n in PROTECTED and v})
    for req in requirements:
        have = versions.get(req.name)
        if have is None:
            plan.install.append(req)
        elif not version_satisfies(have, req.specs):
            plan.kept.append((req, have))
    return plan


def install_requirements(python: str, req_file: Path, *, dry_run: bool = False) -> Plan:
    """Install the missing requirements of ``req_file`` into ``python``; never change protected ones."""
    requirements = parse_requirements(req_file)
    plan = plan_install(python, requirements)
    for req, have in plan.kept:
        why = "ComfyUI's" if req.name in PROTECTED else "already installed"
        say(f"keeping {req.name} {have} ({why}); the pack asks for {req.line} - not changing it")
    if not plan.install:
        say(f"all requirements present in {python}")
        return plan
    wanted = [r.line for r in plan.install]
    say(f"missing in {python}: {', '.join(wanted)}")
    if dry_run:
        return plan
    check_pip(python, req_file)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="dgx-pixels-constraints-", delete=False) as fh:
        for name, version in sorted(plan.protected_pins.items()):
            fh.write(f"{name}=={version}\n")
        constraints = fh.name
    try:
        cmd = [python, "-m", "pip", "install", "--no-input", "--upgrade-strategy", "only-if-needed", "-c", constraints, *wanted]
        say("running: " + " ".join(cmd[2:]))
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(constraints)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        pinned = ", ".join(f"{k} {v}" for k, v in sorted(plan.protected_pins.items()))
        keeping = f" without changing {pinned}" if pinned else ""
        raise InstallError(
            f"pip could not install {', '.join(wanted)}{keeping}:\n{tail}",
            hint="install a version of those packages that fits your torch/numpy by hand",
        )
    after = installed_versions(python, sorted(plan.protected_pins))
    changed = {k: (v, after.get(k)) for k, v in plan.protected_pins.items() if after.get(k) != v}
    if changed:  # cannot happen with the constraints; checked because it is the one promise we make
        raise InstallError(f"installing changed protected packages: {changed}")
    say(f"installed {', '.join(wanted)}")
    return plan


# ----------------------------------------------------------------------------- linking


COPY_MARKER = ".dgx-pixels-copy"  # written into a copy made by --copy: such a copy is ours to refresh


def _is_our_copy(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / COPY_MARKER).is_file()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _other_copies(custom_nodes: Path, dest: Path) -> list[Path]:
    """Entries of ``custom_nodes`` other than ``dest`` that hold this pack (a clone or copy of
    it under another name, a link to it): ComfyUI would load each of them, and the nodes of
    one would silently shadow the other's (two versions: whichever loads last wins)."""
    found = []
    try:
        entries = sorted(custom_nodes.iterdir())
    except OSError:
        return found
    for entry in entries:
        if entry.name == dest.name or entry.name.startswith(".") or entry.name.endswith(".disabled"):
            continue
        try:
            if entry.resolve() == PACK_DIR:
                found.append(entry)
                continue
            text = (entry / "pyproject.toml").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if re.search(r'(?m)^name\s*=\s*"' + re.escape(PACK_NAME) + r'"\s*$', text) and (entry / "comfy_nodes").is_dir():
            found.append(entry)
    return found


def link_into(comfyui: Path, *, copy: bool, force: bool) -> Path | None:
    """Link (or copy) this pack to ``comfyui/custom_nodes/dgx-pixels``; return that path, or
    None when the pack already sits in that custom_nodes under another name.

    What is replaced without ``--force``: a link to this pack, a copy an earlier ``--copy``
    made (it holds ``COPY_MARKER``) and a dangling link. Anything else (a folder, a file, a
    link to another folder) is someone else's and needs ``--force``.
    """
    sys.path.insert(0, str(PACK_DIR))
    from orchestrator.embedded import install_pack

    custom_nodes = comfyui / "custom_nodes"
    dest = custom_nodes / PACK_NAME
    cn_resolved = custom_nodes.resolve()
    if PACK_DIR.parent == cn_resolved and PACK_DIR.name != PACK_NAME:
        # Cloned under another name (ComfyUI-Manager uses the repository's): ComfyUI already
        # loads it, and a second entry would register every node twice.
        if dest.is_symlink() and dest.resolve() == PACK_DIR:
            dest.unlink()
            say(f"removed {dest}: it linked to {PACK_DIR}, which ComfyUI already loads")
        say(f"this pack already is {PACK_DIR} in {custom_nodes}; not adding {PACK_NAME} beside it")
        return None
    others = _other_copies(custom_nodes, dest)
    if others:
        raise InstallError(
            f"{custom_nodes} already holds DGX-Pixels as {', '.join(o.name for o in others)}: ComfyUI would load "
            f"it twice, and one copy's nodes would hide the other's",
            hint=f"update that copy instead (git pull in {others[0]}, then python install.py there), or remove it "
                 "and run this again",
        )
    if copy and _inside(cn_resolved, PACK_DIR):
        raise InstallError(
            f"{custom_nodes} is inside this pack ({PACK_DIR}): a copy would copy itself without end",
            hint="install into a ComfyUI outside the pack folder, or link it (leave out --copy)",
        )
    is_link = dest.is_symlink()
    if not is_link and dest.exists() and dest.resolve() == PACK_DIR:
        say(f"{dest} already is this pack{' (nothing to copy)' if copy else ''}")
        return dest
    ours_link = is_link and dest.resolve() == PACK_DIR
    dangling = is_link and not dest.exists()
    if ours_link and not copy:
        say(f"{dest} already is this pack")
        return dest
    if is_link and not ours_link and not dangling and not force:
        raise InstallError(
            f"{dest} already exists and links to another folder ({os.readlink(dest)}), not this pack",
            hint="remove it, or pass --force to replace the link (the folder it points to is kept)",
        )
    if not is_link and dest.exists() and not _is_our_copy(dest) and not force:
        raise InstallError(
            f"{dest} already exists and is not a link to this pack or a copy of it made by install.py",
            hint="remove it, or pass --force to replace it",
        )
    if dangling:
        say(f"replacing the dangling link {dest} -> {os.readlink(dest)}")
    if copy:
        # Copy beside it first, then swap: a failed copy leaves the old install in place.
        # ".disabled" keeps a ComfyUI starting meanwhile from loading the half-made folder.
        staging = custom_nodes / f".{PACK_NAME}-new.disabled"
        install_pack(custom_nodes, PACK_DIR, name=staging.name, copy=True)
        (staging / COPY_MARKER).write_text(f"copied by install.py from {PACK_DIR}\n", encoding="utf-8")
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.is_dir():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    else:
        install_pack(custom_nodes, PACK_DIR, name=PACK_NAME, copy=False)
    say(f"{'copied' if copy else 'linked'} {PACK_DIR} -> {dest}")
    return dest


def comfyui_python(comfyui: Path) -> Path | None:
    """The Python of a ComfyUI install: its own virtual environment, or the portable
    (Windows) build's embedded Python beside it; None when there is neither."""
    for cand in (comfyui / "venv" / "bin" / "python", comfyui / ".venv" / "bin" / "python",
                 comfyui / "venv" / "Scripts" / "python.exe", comfyui / ".venv" / "Scripts" / "python.exe",
                 comfyui.parent / "python_embeded" / "python.exe"):
        if cand.is_file():
            return cand
    return None


def boot_check(comfyui: Path, python: str, pack: Path) -> None:
    """Start ComfyUI from ``comfyui`` with ``python`` on a free port and require our nodes."""
    sys.path.insert(0, str(PACK_DIR))
    from orchestrator.embedded import start_server

    say(f"boot check: starting {comfyui} with {python}")
    handle = start_server(comfyui_dir=comfyui, python=python, pack=pack)
    try:
        say(f"boot check: DGX-Pixels nodes loaded ({handle.url})")
    finally:
        handle.stop()


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install.py",
        description="Install DGX-Pixels' missing requirements (never touching torch/numpy/Pillow/OpenCV) "
        "and optionally link the pack into a ComfyUI.",
    )
    p.add_argument("--comfyui", metavar="PATH", help="ComfyUI folder to install the pack into (custom_nodes/dgx-pixels)")
    p.add_argument("--copy", action="store_true", help="copy the pack instead of linking it")
    p.add_argument("--force", action="store_true", help="replace an existing custom_nodes/dgx-pixels that is not ours")
    p.add_argument("--python", metavar="PY", help="Python that runs ComfyUI (default: this one; with --comfyui, the "
                   "venv/ or .venv/ inside it, or the portable build's python_embeded/)")
    p.add_argument("--boot-check", action="store_true", help="start that ComfyUI once and check the nodes load")
    p.add_argument("--dry-run", action="store_true", help="only say what is missing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    python = args.python or sys.executable
    req_file = PACK_DIR / "requirements.txt"
    try:
        if args.python:
            check_python(args.python)
        if args.comfyui:
            sys.path.insert(0, str(PACK_DIR))
            from orchestrator.embedded import check_comfyui_dir
            from orchestrator.errors import DgxPixelsError

            try:
                comfyui = check_comfyui_dir(args.comfyui)
                found = None if args.python else comfyui_python(comfyui)
                if found is not None:
                    python = str(found)
                    say(f"ComfyUI's Python: {python}")
                    check_python(python)
                if args.dry_run:
                    install_requirements(python, req_file, dry_run=True)
                    return 0
                dest = link_into(comfyui, copy=args.copy, force=args.force)
                if args.python or found is not None:
                    try:
                        install_requirements(python, req_file)
                    except InstallError as exc:
                        if dest is not None:
                            exc.message += f"\n(the pack itself is in place: {dest}; only its requirements are missing)"
                        raise
                else:
                    # This Python may not be the one that runs that ComfyUI: installing into it
                    # could change someone else's environment, so only say what it lacks.
                    plan = install_requirements(python, req_file, dry_run=True)
                    if plan.install:
                        say(f"not installed: {', '.join(r.line for r in plan.install)}; {comfyui} has no venv/ of its own, "
                            "so run again with --python /path/to/the/python/that/runs/ComfyUI")
                if args.boot_check:
                    boot_check(comfyui, python, dest or PACK_DIR)
            except DgxPixelsError as exc:
                raise InstallError(exc.message, exc.hint) from exc
        else:
            install_requirements(python, req_file, dry_run=args.dry_run)
    except InstallError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
