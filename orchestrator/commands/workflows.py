"""``dgx-pixels workflows``: list, show, validate, convert and lock the versioned workflows."""
from __future__ import annotations

import argparse

HELP = "list, show, validate, convert (editor -> API) and lock versioned workflows"

DESCRIPTION = """\
Versioned workflows live in workflows/<name>/<version>/ (plus folders in $DGX_PIXELS_WORKFLOWS)
and are addressed as NAME@VERSION; NAME alone is the newest version, NAME@1 or NAME@1.2 the
newest version starting with that prefix.

  list                         name, newest version, description; a version that cannot be
                               loaded is marked BROKEN with its error (the others stay usable)
  show NAME[@VER]              parameters (name, type, default, help), nodes, models, outputs
  validate NAME[@VER]|FILE     check against a live server's /object_info (exit 4 on errors)
  convert UI.json -o API.json  editor format -> API format (needs --server or --object-info)
  lock                         record the content hash of new versions in workflows.lock;
                               refuses when a released version changed

exit codes: 0 ok, 2 bad usage, 3 server unreachable, 4 workflow invalid or unknown,
6 the output file cannot be written
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    s = sub.add_parser("list", help="list the workflows (newest version of each)")
    s.add_argument("--all", action="store_true", help="every version, not only the newest")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("show", help="parameters, nodes, models and outputs of a workflow")
    s.add_argument("ref", metavar="NAME[@VER]")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("validate", help="check a workflow against a live server")
    s.add_argument("ref", metavar="NAME[@VER]|FILE")
    _server_args(s)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="parameter values to apply first")
    s.add_argument("--json", action="store_true", help="machine-readable report")

    s = sub.add_parser("convert", help="convert an editor-format workflow to API format")
    s.add_argument("input", metavar="UI.json")
    s.add_argument("-o", "--output", metavar="API.json", help="write here (default: stdout)")
    _server_args(s)

    s = sub.add_parser("lock", help="add new workflow versions to workflows.lock")
    s.add_argument("--root", metavar="DIR", help="workflow folder (default: the shipped workflows/)")
    s.add_argument("--check", action="store_true", help="only check; exit 4 when the lock does not match")


def _server_args(s: argparse.ArgumentParser) -> None:
    from orchestrator.config import add_server_arguments

    # the same connection settings as run and batch: --server, $DGX_PIXELS_SERVER, the config
    # file, and a token for a remote server
    add_server_arguments(s)
    s.add_argument("--object-info", metavar="FILE", help="use a saved /object_info JSON instead of a server")


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "validate": _validate, "convert": _convert, "lock": _lock}[args.action](args)


_OBJECT_INFO_HINT = ("give a file saved from the server's /object_info (e.g. curl http://127.0.0.1:8188/object_info "
                     "-o object_info.json), or leave --object-info out to ask the server")


def _object_info(args) -> dict:
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.convert import load_json

    if getattr(args, "object_info", None):
        # a file the user named on the command line: bad usage (exit 2), not a bad workflow
        try:
            data = load_json(args.object_info)
        except FileNotFoundError:
            raise InvalidArgumentError(f"--object-info {args.object_info}: no such file", hint=_OBJECT_INFO_HINT) from None
        except IsADirectoryError:
            raise InvalidArgumentError(f"--object-info {args.object_info}: it is a folder, not a file",
                                       hint=_OBJECT_INFO_HINT) from None
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"--object-info {args.object_info}: cannot read it as JSON: {exc}",
                                       hint=_OBJECT_INFO_HINT) from None
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"--object-info {args.object_info} is not an /object_info dump "
                                       "(expected a JSON object)", hint=_OBJECT_INFO_HINT)
        return data
    from orchestrator.client import ComfyClient
    from orchestrator.config import config_from_args

    cfg = config_from_args(args)
    client = ComfyClient(cfg.servers[0], cfg)
    try:
        return client.object_info()
    finally:
        client.close()


def _list(args) -> int:
    """The usable workflows, and every version that cannot be used marked BROKEN with its error
    (a warning on stderr too): one bad folder must not hide the others. Exit 0 while any
    workflow is usable, 4 when none is."""
    import json
    import sys

    from orchestrator.workflows import load_registry, version_key

    reg = load_registry()
    items = reg.all() if args.all else reg.list()
    broken = reg.broken_refs()
    for ref, exc in broken:
        print(f"warning: {ref} cannot be used: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""),
              file=sys.stderr)
    if args.json:
        # "error" is null for a usable version; a broken one has no description or hash to give
        docs = [{"name": w.name, "version": w.version, "versions": reg.versions(w.name),
                 "description": w.description, "content_hash": w.content_hash, "error": None} for w in items]
        for ref, exc in broken:
            name, _, version = ref.partition("@")
            docs.append({"name": name, "version": version, "versions": reg.versions(name), "description": None,
                         "content_hash": None, "error": exc.message})
        docs.sort(key=lambda d: (d["name"], version_key(d["version"])))
        print(json.dumps(docs, indent=2))
        return 0 if items or not broken else 4
    if not items and not broken:
        from orchestrator.errors import WorkflowError

        raise WorkflowError("no workflows found in " + ", ".join(str(r) for r in reg.roots),
                            hint="install with `pip install -e .` in the checkout (it reads workflows/ there), or "
                                 "point $DGX_PIXELS_WORKFLOWS at a folder of workflows")
    rows = [(w.name, w.version, (w.description.splitlines() or [""])[0]) for w in items]
    rows += [(*ref.split("@", 1), "BROKEN: " + exc.message) for ref, exc in broken]
    rows.sort(key=lambda r: (r[0], version_key(r[1])))
    wn = max(len(r[0]) for r in rows + [("NAME", "", "")])
    wv = max(len(r[1]) for r in rows + [("", "VERSION", "")])
    print(f"{'NAME':<{wn}}  {'VERSION':<{wv}}  DESCRIPTION")
    for n, v, d in rows:
        print(f"{n:<{wn}}  {v:<{wv}}  {d}")
    return 0 if items else 4


def _show(args) -> int:
    import json

    from orchestrator.workflows import load_registry

    wf = load_registry().get(args.ref)
    if args.json:
        print(json.dumps({
            "name": wf.name, "version": wf.version, "description": wf.description,
            "content_hash": wf.content_hash, "path": str(wf.path),
            "params": {n: {"type": p.type, "default": p.default, "help": p.help, "min": p.min, "max": p.max,
                           "choices": p.choices, "targets": p.targets, "required": p.required}
                       for n, p in wf.params.items()},
            "required_nodes": wf.required_nodes,
            "models": [{"folder": m.folder, "name": m.name} for m in wf.models],
            "outputs": [{"node": o.node, "kind": o.kind} for o in wf.outputs],
        }, indent=2))
        return 0
    print(f"{wf.ref}  ({wf.path})")
    if wf.description:
        print(wf.description)
    print(f"content hash: {wf.content_hash}")
    print()
    if wf.params:
        rows = [(n, p.describe_type(), "(required)" if p.required and p.default is None else _show_default(p.default),
                 p.help) for n, p in wf.params.items()]
        w = [max(len(r[i]) for r in rows + [("PARAMETER", "TYPE", "DEFAULT", "")]) for i in range(3)]
        print(f"{'PARAMETER':<{w[0]}}  {'TYPE':<{w[1]}}  {'DEFAULT':<{w[2]}}  HELP")
        for r in rows:
            print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}")
    else:
        print("no parameters")
    print()
    print("nodes:   " + ", ".join(wf.required_nodes))
    print("models:  " + (", ".join(f"{m.folder}/{m.name}" if m.folder else m.name for m in wf.models) or "(none)"))
    print("outputs: " + (", ".join(f"node {o.node} ({o.kind})" for o in wf.outputs) or "(not declared)"))
    return 0


def _show_default(v) -> str:
    if v is None:
        return "-"
    s = repr(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _validate(args) -> int:
    import json
    import os

    from orchestrator.commands.run import parse_set
    from orchestrator.convert import load_json, to_api
    from orchestrator.errors import WorkflowError
    from orchestrator.validate import validate_prompt, validate_workflow
    from orchestrator.workflows import load_registry

    values = parse_set(args.set)
    ref = args.ref
    if ref.endswith(".json") or os.path.sep in ref or os.path.isfile(ref):
        if values:
            raise WorkflowError("--set needs a registered workflow (NAME@VERSION), not a file")
        try:
            doc = load_json(ref)
        except (OSError, ValueError) as exc:
            raise WorkflowError(f"cannot read workflow {ref}: {exc}", hint=_FILE_HINT) from None
        info = _object_info(args)
        try:
            prompt = to_api(doc, info)
        except WorkflowError as exc:
            raise WorkflowError(f"{ref}: {exc.message}", hint=exc.hint) from None  # as convert and run say it
        report = validate_prompt(prompt, info, source=ref)
        source = ref
    else:
        wf = load_registry().get(ref)
        wf.build_prompt(values)  # parameter errors before asking the server
        report = validate_workflow(wf, _object_info(args), values)
        source = wf.ref
    if args.json:
        print(json.dumps({"ok": report.ok, "source": source, "nodes": report.nodes, "issues": [
            {"node": i.node_id, "class_type": i.class_type, "input": i.input, "severity": i.severity,
             "kind": i.kind, "message": i.message} for i in report.issues]}, indent=2))
    else:
        print(report.format())
    return 0 if report.ok else 4


_FILE_HINT = "give a workflow saved from ComfyUI (Save, or Export (API)) as a JSON file"


def _check_convert_output(src: str, out: str) -> None:
    """``InvalidArgumentError`` (bad usage, exit 2) before any work when ``-o`` cannot take the
    prompt: a folder (the write would fail on a temp file's name), or the input itself under
    any spelling, through a symlink or a hard link (the editor workflow, which the API prompt
    cannot be turned back into, would be lost)."""
    import os

    from comfy_nodes.pixel.errors import InvalidArgumentError

    stem = os.path.splitext(os.path.basename(src))[0] or "workflow"
    if os.path.isdir(out):
        raise InvalidArgumentError(f"-o {out}: it is a folder; convert writes one file",
                                   hint=f"give a file name, e.g. -o {os.path.join(out, stem + '.api.json')}")
    try:
        same = os.path.samefile(src, out)  # the same file however reached (also a hard link)
    except OSError:
        same = os.path.realpath(src) == os.path.realpath(out)
    if same:
        raise InvalidArgumentError(f"-o {out}: writing {out} would replace the input {src}",
                                   hint=f"give another file name, e.g. -o {stem}.api.json")


def _convert(args) -> int:
    import json

    from comfy_nodes.pixel.errors import ExportError
    from orchestrator.convert import convert_ui_to_api, is_api_format, is_editor_format, load_json
    from orchestrator.errors import WorkflowError

    try:
        doc = load_json(args.input)
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"cannot read workflow {args.input}: {exc}", hint=_FILE_HINT) from None
    if args.output and args.output != "-":
        _check_convert_output(args.input, args.output)
    if is_api_format(doc):
        prompt = doc
    elif is_editor_format(doc):
        try:
            prompt = convert_ui_to_api(doc, _object_info(args))
        except WorkflowError as exc:
            raise WorkflowError(f"{args.input}: {exc.message}", hint=exc.hint) from None
    else:
        raise WorkflowError(f"{args.input} is neither an editor-format workflow nor an API prompt")
    text = json.dumps(prompt, indent=2, ensure_ascii=False) + "\n"
    if not args.output or args.output == "-":
        print(text, end="")
        return 0
    from comfy_nodes.pixel.imageio import atomic_write_bytes

    try:
        atomic_write_bytes(args.output, text.encode("utf-8"))
    except OSError as exc:
        # named after -o, never after the temp file beside it
        raise ExportError(f"cannot write -o {args.output}: {exc.strerror or exc}",
                          hint="check that its folder can be made and written to") from None
    print(f"wrote {args.output} ({len(prompt)} nodes)")
    return 0


def _lock(args) -> int:
    from pathlib import Path

    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.workflows import check_lock, default_root, update_lock

    root = Path(args.root) if args.root else default_root()
    if args.root and not root.is_dir():
        # the folder the user typed: bad usage (exit 2), said as what it is
        raise InvalidArgumentError(f"--root {args.root} " + ("is not a folder" if root.exists() else "does not exist"),
                                   hint="give the folder that holds the NAME/VERSION/ workflow folders and "
                                        "workflows.lock (default: the shipped workflows/)")
    if args.check:
        problems = check_lock(root)
        for p in problems:
            print(p)
        if problems:
            return 4
        print(f"{root / 'workflows.lock'}: every version matches")
        return 0
    res = update_lock(root)
    for ref in res.added:
        print(f"locked {ref}")
    print(f"{res.path}: {len(res.added)} new, {len(res.unchanged)} already locked")
    return 0
