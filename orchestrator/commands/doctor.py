"""``dgx-pixels doctor``: is everything in place to run workflows and deploy into Bevy?"""
from __future__ import annotations

import argparse

HELP = "check the ComfyUI server, our nodes, models and the Bevy project; one line per check"

DESCRIPTION = """\
Checks, each on its own line (ok / WARN / FAIL):
  server      reachable, ComfyUI / Python / PyTorch versions and devices (/system_stats)
  websocket   the event socket opens (auth and proxies included)
  nodes       every DGXPixels* node of this version is loaded (/object_info)
  workflows   every workflow version loads, and its node types exist on the server
  models      model files the shipped workflows load are present (/models/<folder>)
  bevy        the project has Cargo.toml with a Bevy dependency, its version, assets/

exit codes: 0 all ok (warnings allowed), 1 a check failed, 3 server unreachable.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from orchestrator.config import add_server_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_server_arguments(p)
    p.add_argument("--bevy", metavar="PROJECT", help="also check this Bevy project")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from comfy_nodes.pixel.errors import DgxPixelsError
    from orchestrator.client import ComfyClient
    from orchestrator.config import config_from_args
    from orchestrator.errors import ServerUnreachableError

    checks: list[dict] = []

    def add(name: str, status: str, detail: str) -> None:
        checks.append({"check": name, "status": status, "detail": detail})
        if not args.json:
            tag = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[status]
            print(f"{tag}  {name:10s} {detail}", flush=True)

    cfg = config_from_args(args)
    client = ComfyClient(cfg.server, cfg)
    unreachable = False
    try:
        try:
            stats = client.system_stats()
            system = stats.get("system") or {}
            devs = ", ".join(f"{d.get('name')} ({d.get('type')})" for d in stats.get("devices") or [])
            add("server", "ok", f"{client.display_url}: ComfyUI {system.get('comfyui_version')}, Python "
                f"{str(system.get('python_version', '?')).split()[0]}, PyTorch {system.get('pytorch_version')}; {devs}")
            v = system.get("comfyui_version") or "0"
            try:
                if tuple(int(x) for x in str(v).split(".")[:3]) < (0, 3, 75):
                    add("server", "warn", f"ComfyUI {v} is older than 0.3.75, the version DGX-Pixels is tested with")
            except ValueError:
                pass
        except ServerUnreachableError as exc:
            add("server", "fail", exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
            unreachable = True
        if not unreachable:
            ok = client.events.wait_connected(cfg.connect_timeout)
            add("websocket", "ok" if ok else "fail",
                f"{client.events.ws_url.split('?')[0]} open" if ok else f"could not open the event socket: {client.events.last_error}")
            info = client.object_info()
            _check_nodes(info, add)
            _check_workflows(client, info, add)
    except DgxPixelsError as exc:
        add("server", "fail", exc.message)
    finally:
        client.close()
    if args.bevy:
        _check_bevy(Path(args.bevy), add)
    if args.json:
        print(json.dumps(checks, indent=2))
    failed = [c for c in checks if c["status"] == "fail"]
    if unreachable:
        return 3
    if failed:
        print(f"{len(failed)} check(s) failed", file=sys.stderr)
        return 1
    return 0


def _check_nodes(info: dict, add) -> None:
    from orchestrator.embedded import declared_node_ids

    ours = sorted(k for k in info if k.startswith("DGXPixels"))
    try:
        expected = declared_node_ids()
    except OSError:
        expected = []
    missing = [n for n in expected if n not in info]
    if missing:
        add("nodes", "fail", f"DGX-Pixels nodes missing on the server: {', '.join(missing)} "
            "(install or update the pack in custom_nodes/ and restart ComfyUI; its log shows import errors)")
    elif not ours:
        add("nodes", "fail", "no DGXPixels* nodes on the server: the node pack is not installed")
    else:
        add("nodes", "ok", f"{len(ours)} DGX-Pixels nodes loaded")


def _check_workflows(client, info: dict, add) -> None:
    from comfy_nodes.pixel.errors import DgxPixelsError

    try:
        from orchestrator.workflows import load_registry

        reg = load_registry()
        wfs = reg.list()
    except (ImportError, DgxPixelsError) as exc:
        add("workflows", "warn", f"cannot read the workflow registry: {getattr(exc, 'message', exc)}")
        return
    broken = reg.broken_refs()
    if broken:
        # a version that cannot be loaded fails `run NAME` when it is the newest: said here, where
        # the user looks before a batch, not at its first job
        add("workflows", "fail", "cannot be loaded: " + "; ".join(f"{ref} ({exc.message})" for ref, exc in broken))
    if not wfs:
        add("workflows", "warn", "no workflows registered")
        return
    bad = []
    for wf in wfs:
        types = getattr(wf, "required_nodes", None) or sorted({n.get("class_type") for n in wf.api_prompt.values()})
        miss = [t for t in types if t not in info]
        if miss:
            bad.append(f"{wf.ref} needs {', '.join(miss)}")
    if bad:
        add("workflows", "fail", "; ".join(bad))
    else:
        add("workflows", "ok", f"node types of {len(wfs)} workflow(s) present: " + ", ".join(w.ref for w in wfs))
    folders: dict[str, list] = {}
    for wf in wfs:
        for m in getattr(wf, "models", None) or []:
            folders.setdefault(m.folder, []).append((wf.ref, m.name))
    if not folders:
        add("models", "ok", "the shipped workflows load no model files")
        return
    # None = the server would not list that folder (an auth proxy, an older ComfyUI): then the
    # files in it are unknown, not missing, and nobody should be sent to download gigabytes.
    listing: dict[str, set | None] = {}
    unlisted: dict[str, str] = {}

    def files_in(folder: str) -> set | None:
        if folder not in listing:
            try:
                resp = client._request("GET", f"/models/{folder}")
                if resp.status_code == 200:
                    listing[folder] = set(resp.json())
                else:
                    listing[folder] = None
                    unlisted[folder] = f"HTTP {resp.status_code}"
            except (DgxPixelsError, ValueError, TypeError) as exc:
                listing[folder] = None
                unlisted[folder] = getattr(exc, "message", None) or f"not a JSON list: {exc}"
        return listing[folder]

    all_folders: list | None = None  # stays None when the server would not list its folders
    asked_all = False
    present: set[str] = set()
    missing: dict[str, list] = {}
    unknown: dict[str, list] = {}
    for folder, needs in sorted(folders.items()):
        for ref, name in needs:
            key = f"{folder}/{name}" if folder else name
            if folder:
                have = files_in(folder)
                found = None if have is None else name in have
            else:
                # No folder declared: any model folder will do.
                if not asked_all:
                    asked_all = True
                    try:
                        resp = client._request("GET", "/models")
                        if resp.status_code == 200:
                            all_folders = [str(f) for f in resp.json()]
                        else:
                            unlisted[""] = f"HTTP {resp.status_code}"
                    except (DgxPixelsError, ValueError, TypeError) as exc:
                        unlisted[""] = getattr(exc, "message", None) or f"not a JSON list: {exc}"
                listings = [files_in(f) for f in all_folders or []]
                if any(name in have for have in listings if have is not None):
                    found = True
                elif all_folders is None or any(have is None for have in listings):
                    found = None
                else:
                    found = False
            if found:
                present.add(key)
            else:
                (missing if found is False else unknown).setdefault(key, []).append(ref)

    def named(files: dict[str, list]) -> str:
        return "; ".join(f"{f} (for {', '.join(sorted(set(refs)))})" for f, refs in sorted(files.items()))

    why = ", ".join(f"/models{'/' + f if f else ''} ({reason})" for f, reason in sorted(unlisted.items()))
    if missing:
        text = f"missing: {named(missing)} - `dgx-pixels models pull` downloads them"
        if unknown:
            text += f"; could not check {named(unknown)}: the server would not list {why}"
        add("models", "fail", text)
    elif unknown:
        add("models", "warn", f"could not check {named(unknown)}: the server would not list {why}")
    else:
        add("models", "ok", f"{len(present)} model file(s) present")


def _check_bevy(project, add) -> None:
    from comfy_nodes.pixel.errors import DgxPixelsError

    if not project.is_dir():
        add("bevy", "fail", f"project folder not found: {project}")
        return
    if not (project / "Cargo.toml").is_file():
        add("bevy", "fail", f"{project} has no Cargo.toml: not a Rust/Bevy project")
        return
    try:
        from comfy_nodes.pixel.bevy_export import check_bevy_project, resolve_bevy_version

        # the same reading as export and deploy make
        check_bevy_project(project)
        v = resolve_bevy_version(project)
    except DgxPixelsError as exc:
        add("bevy", "fail", exc.message)
        return
    assets = project / "assets"
    add("bevy", "ok", f"Bevy {v.short} ({v.source}); assets/ {'present' if assets.is_dir() else 'will be created'}")
