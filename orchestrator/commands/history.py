"""``dgx-pixels history``: what was deployed into a Bevy project, and where it came from."""
from __future__ import annotations

import argparse

HELP = "list the assets deployed into a Bevy project with their provenance"

DESCRIPTION = """\
Read PROJECT/assets/.dgx-pixels/manifest.json and list every asset: path, size, time, and
where it came from (workflow@version, seed, server, prompt id or source file). An asset whose
file is gone is marked [missing], one whose content is no longer what was deployed (edited or
replaced by hand, or its .meta or atlas JSON edited or gone) [changed since deploy]: the record
describes what was written, not what is there now. --json prints the entries with a "status" field (ok, missing, changed); --asset
shows one asset's full record. --workflow sprite@1 matches versions 1.x.y, not 10.0.0.

exit codes: 0 ok, 2 bad arguments (a project folder that does not exist, or a folder with
neither a Cargo.toml nor an asset manifest), 6 unreadable manifest.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--bevy", metavar="PROJECT", default=".", help="Bevy project folder (default: current folder)")
    p.add_argument("--asset", metavar="PATH", help="show the full record of one asset path")
    p.add_argument("--workflow", metavar="NAME", help="only assets made by this workflow (name or name@version)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")


def workflow_matcher(ref: str):
    """A test for a recorded ``name@version``: ``name`` matches every version, ``name@1`` and
    ``name@1.2`` match by whole version components (1.x.y, 1.2.y; not 10.0.0 or 1.20.0), as
    the workflows registry resolves a reference. ``InvalidArgumentError`` for a version that is
    no version prefix."""
    from comfy_nodes.pixel.errors import InvalidArgumentError

    name, _, ver = ref.strip().partition("@")
    parts = ver.split(".") if ver else []
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise InvalidArgumentError(f"--workflow {ref!r}: {ver!r} is not a version or version prefix",
                                   hint="give NAME, NAME@MAJOR, NAME@MAJOR.MINOR or NAME@MAJOR.MINOR.PATCH, "
                                        "e.g. sprite@1")
    want = [int(p) for p in parts]

    def matches(recorded: object) -> bool:
        rname, _, rver = str(recorded or "").partition("@")
        if rname != name:
            return False
        got = rver.split(".")
        if len(got) < len(want) or not all(g.isdigit() for g in got[: len(want)]):
            return False
        return [int(g) for g in got[: len(want)]] == want

    return matches


def disk_status(project, entry: dict) -> str:
    """``ok``, ``missing`` (the asset file is gone) or ``changed`` (its sha256 is no longer the
    one recorded when it was written, or that of a file written with it: its .meta, which sets
    the sampler, or its atlas JSON) for one manifest entry. A shared ``.assets.ron`` is left
    out: other exports add their entries to it."""
    from comfy_nodes.pixel.errors import DgxPixelsError
    from comfy_nodes.pixel.safepath import confine
    from orchestrator.models import sha256_file

    try:
        path = confine(project / "assets", entry["path"], action="read")
    except DgxPixelsError:
        return "missing"  # a path leading out of assets/ names no asset the game can load
    if not path.is_file():
        return "missing"
    want = entry.get("sha256")
    if isinstance(want, str) and want and sha256_file(path) != want:
        return "changed"
    for f in entry.get("files") or []:
        if not isinstance(f, dict) or f.get("kind") not in ("meta", "atlas") or not isinstance(f.get("sha256"), str):
            continue
        try:
            side = confine(project / "assets", str(f.get("path")), action="read")
        except DgxPixelsError:
            continue
        if not side.is_file() or sha256_file(side) != f["sha256"]:
            return "changed"
    return "ok"


_MARKS = {"ok": "", "missing": "  [missing]", "changed": "  [changed since deploy]"}


def run(args) -> int:
    import json

    from comfy_nodes.pixel.asset_manifest import manifest_path, read_manifest
    from comfy_nodes.pixel.bevy_export import require_project_folder
    from comfy_nodes.pixel.errors import InvalidArgumentError

    project = require_project_folder(args.bevy)
    if not manifest_path(project).is_file() and not (project / "Cargo.toml").is_file():
        # nothing recorded in a folder that is no game either: most likely a mistyped path,
        # which "no deployed assets" would hide
        raise InvalidArgumentError(f"{project} is not a Bevy project: it holds no Cargo.toml and no asset manifest "
                                   f"({manifest_path(project)})",
                                   hint="give the game's folder, the one that holds Cargo.toml and assets/")
    entries = read_manifest(project)["assets"]
    recorded = len(entries)
    if args.workflow:
        matches = workflow_matcher(args.workflow)
        entries = [e for e in entries if matches((e.get("provenance") or {}).get("workflow"))]
    # what the record says was written, and whether the file still is that
    entries = [{**e, "status": disk_status(project, e)} for e in entries]
    if args.asset:
        entries = [e for e in entries if e.get("path") == args.asset]
        if not entries:
            raise InvalidArgumentError(f"no asset {args.asset!r} in {manifest_path(project)}",
                                       hint=f"`dgx-pixels history --bevy {args.bevy}` lists the recorded paths "
                                            "(relative to assets/, as asset_server.load takes them)")
        print(json.dumps(entries[0], indent=2))
        return 0
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        if recorded:
            print(f"none of the {recorded} assets recorded in {manifest_path(project)} came from workflow {args.workflow}")
        else:
            print(f"no deployed assets recorded in {manifest_path(project)}")
        return 0
    for e in sorted(entries, key=lambda e: e.get("time", "")):
        prov = e.get("provenance") or {}
        source = prov.get("source")
        src = prov.get("workflow") or (source.get("file") if isinstance(source, dict) else source) or "?"
        if source == "comfyui" and prov.get("node") is not None:
            src = f"comfyui node {prov['node']}"
        bits = [str(src)]
        if prov.get("seed") is not None:
            bits.append(f"seed {prov['seed']}")
        if prov.get("server"):
            bits.append(str(prov["server"]))
        if prov.get("prompt_id"):
            bits.append(str(prov["prompt_id"])[:8])
        print(f"{e.get('time', '?'):24s}  {e.get('path')}  ({e.get('width')}x{e.get('height')}, {e.get('size')} B)  "
              f"<- {', '.join(bits)}{_MARKS[e['status']]}")
    return 0
