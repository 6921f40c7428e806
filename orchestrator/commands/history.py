"""``dgx-pixels history``: what was deployed into a Bevy project, and where it came from."""
from __future__ import annotations

import argparse

HELP = "list the assets deployed into a Bevy project with their provenance"

DESCRIPTION = """\
Read PROJECT/assets/.dgx-pixels/manifest.json and list every asset: path, size, time, and
where it came from (workflow@version, seed, server, prompt id or source file). --json prints
the raw entries; --asset shows one asset's full record.

exit codes: 0 ok, 2 bad arguments, 6 unreadable manifest.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--bevy", metavar="PROJECT", default=".", help="Bevy project folder (default: current folder)")
    p.add_argument("--asset", metavar="PATH", help="show the full record of one asset path")
    p.add_argument("--workflow", metavar="NAME", help="only assets made by this workflow (name or name@version)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")


def run(args) -> int:
    import json

    from comfy_nodes.pixel.asset_manifest import manifest_path, read_manifest
    from comfy_nodes.pixel.bevy_export import require_project_folder
    from comfy_nodes.pixel.errors import InvalidArgumentError

    project = require_project_folder(args.bevy)
    entries = read_manifest(project)["assets"]
    recorded = len(entries)
    if args.workflow:
        entries = [e for e in entries
                   if str((e.get("provenance") or {}).get("workflow", "")).split("@")[0] == args.workflow.split("@")[0]
                   and ("@" not in args.workflow or str((e.get("provenance") or {}).get("workflow", "")).startswith(args.workflow))]
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
        print(f"{e.get('time', '?'):24s}  {e.get('path')}  ({e.get('width')}x{e.get('height')}, {e.get('size')} B)  <- {', '.join(bits)}")
    return 0
