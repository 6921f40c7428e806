"""``dgx-pixels run``: run one workflow on a ComfyUI server, collect (and deploy) its outputs."""
from __future__ import annotations

import argparse

HELP = "run a named, versioned workflow on ComfyUI and collect its outputs"

EXIT_CODES = """\
exit codes:
  0    success
  1    other error
  2    bad usage or input (a missing --bevy folder, an --out that is a file, an --upscale out
       of range, a --server URL with an invalid port, a --set image path that is neither a
       local file nor on the server; an image named inside a workflow file that the server
       lacks is its rejection of the prompt, 4)
  3    server unreachable, not a ComfyUI server (or not at that path), or it refused the
       token (401/403)
  4    workflow invalid: unknown name/version or parameter, a --set value the parameter does
       not take, or the server rejected the prompt (node_errors, missing node type, a model
       file it does not have) - the message names node, type and input
  5    the job failed on the server (the failing node is named), or timed out
  6    deploy refused (path outside assets/, a folder that is not the game's, partial outputs,
       an existing asset the --overwrite policy refuses: for one dgx-pixels deployed, checked
       before the job is submitted)
  130  interrupted (Ctrl-C; 143 for SIGTERM): the job was removed from the server's queue / interrupted
"""

DESCRIPTION = f"""\
Run WORKFLOW (NAME@VERSION from the registry, NAME for its newest version, or a .json file in
API or editor format) with --set parameters. Progress shows as a bar on a terminal, plain
lines otherwise, or JSON lines with --json. Outputs are downloaded into --out (file names from
the server are sanitised) and, with --bevy, deployed into the project's assets/ with its
.meta and a provenance record (`dgx-pixels history`); an output saved from a Sprite Sheet or
Tileset node is deployed as a sheet, with the atlas JSON of its grid (rebuilt from the graph).
With --bevy the graph's own Bevy Export node is left out: the outputs go into the game from
here, not also into a project on the server.

An identical prompt is answered from ComfyUI's cache (no new file is written; the earlier
outputs are returned); --fresh makes the server run it again.

{EXIT_CODES}"""


def parse_set(items: list[str] | None) -> dict:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``: JSON values (numbers, true/false, lists,
    quoted strings) are decoded, anything else stays a string."""
    from comfy_nodes.pixel.asset_manifest import loads_json
    from comfy_nodes.pixel.errors import InvalidArgumentError

    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgumentError(f"--set {item!r} is not key=value", hint="e.g. --set seed=42 --set prompt='a knight'")
        try:
            value = loads_json(raw)
        except ValueError:  # not JSON (or nested past reading): the text itself
            value = raw
        if isinstance(value, float) and raw.strip().lower() in ("nan", "infinity", "-infinity"):
            value = raw
        out[key] = value
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    from orchestrator.config import add_server_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workflow", metavar="WORKFLOW", help="NAME@VERSION, NAME, or a workflow .json file (API or editor format)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a workflow parameter (repeatable)")
    add_server_arguments(p)
    p.add_argument("--timeout", type=float, metavar="S", help="give up (and stop the remote job) after S seconds (default: none)")
    p.add_argument("--out", metavar="DIR", default="dgx-pixels-out", help="where outputs are downloaded (default ./dgx-pixels-out)")
    p.add_argument("--fresh", action="store_true", help="run again even if ComfyUI has the result cached (new seed if not --set)")
    p.add_argument("--json", action="store_true", help="JSON event lines on stdout, the last one is the result")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    g = p.add_argument_group("deploy into a Bevy project")
    g.add_argument("--bevy", metavar="PROJECT", help="Bevy project folder (holds Cargo.toml and assets/)")
    g.add_argument("--asset-path", metavar="PATH", help="asset path under assets/, e.g. sprites/knight.png (a folder ending in / keeps output names)")
    g.add_argument("--overwrite", choices=("replace", "keep", "version", "fail"), default="replace", help="when the asset exists (default replace)")
    g.add_argument("--upscale", type=int, default=1, metavar="N", help="enlarge by a whole factor on deploy (default 1)")
    g.add_argument("--bevy-version", default="auto", metavar="0.N", help="Bevy version for .meta files (default: from Cargo.toml)")


def run(args) -> int:
    import json
    import sys

    from comfy_nodes.pixel.errors import DgxPixelsError, InvalidArgumentError
    from orchestrator.client import ComfyClient
    from orchestrator.config import config_from_args

    client = None
    try:
        values = _check_before_the_job(args)
        cfg = config_from_args(args)
        client = ComfyClient(cfg.server, cfg)
        return _run(args, values, client, cfg)
    except DgxPixelsError as exc:
        if args.json:
            # Machines reading the event stream get the failure in it too.
            doc = {"event": "error", "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                   "kind": type(exc).__name__}
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
        raise
    finally:
        if client is not None:
            client.close()


def _check_before_the_job(args) -> dict:
    """The options checked before anything is submitted: a job that runs for minutes must not
    then fail on a mistyped folder. Returns the --set values."""
    from pathlib import Path

    from comfy_nodes.pixel.errors import InvalidArgumentError

    if args.bevy and not args.asset_path:
        raise InvalidArgumentError("--bevy needs --asset-path (e.g. sprites/knight.png)")
    if args.asset_path and not args.bevy:
        raise InvalidArgumentError("--asset-path needs --bevy PROJECT")
    values = parse_set(args.set)
    if args.bevy:
        from comfy_nodes.pixel.bevy_export import check_bevy_project, require_project_folder, resolve_bevy_version
        from comfy_nodes.pixel.safepath import check_relative

        require_project_folder(args.bevy)
        check_bevy_project(args.bevy, args.bevy_version)
        resolve_bevy_version(args.bevy, args.bevy_version)
        check_relative(args.asset_path.rstrip("/") if args.asset_path.endswith("/") else args.asset_path,
                       Path(args.bevy) / "assets")
    if not 1 <= args.upscale <= 64:
        raise InvalidArgumentError(f"--upscale must be a whole number 1..64, got {args.upscale}; nothing was submitted")
    if args.upscale != 1 and not args.bevy:
        raise InvalidArgumentError("--upscale enlarges what is deployed, and nothing is without --bevy",
                                   hint="give --bevy PROJECT --asset-path PATH, or leave out --upscale")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"cannot write into --out {out}: it is a file, not a folder",
                                   hint="name a folder for the outputs (it is created when missing)")
    return values


def _single_output(spec) -> bool:
    """Whether the job writes one image, so that ``--asset-path`` is the very asset deployed
    (several outputs become NAME-1.png, NAME-2.png..., a folder path keeps the output names)."""
    nodes = spec.output_nodes or tuple(nid for nid, n in spec.prompt.items()
                                       if str(n.get("class_type", "")).startswith("SaveImage"))
    batches = [v for n in spec.prompt.values() for k, v in (n.get("inputs") or {}).items()
               if k in ("batch_size", "amount") and not isinstance(v, list)]
    return len(nodes) == 1 and all(isinstance(b, int) and b <= 1 for b in batches)


def _run(args, values, client, cfg) -> int:
    import json
    import sys

    from orchestrator.progress import make_reporter
    from orchestrator.run import drop_server_exports, prepare_job, run_workflow

    reporter = None
    try:
        spec = prepare_job(args.workflow, values, fresh=args.fresh, object_info=client.object_info)
        if args.bevy:
            drop_server_exports(spec)
        if args.bevy and _single_output(spec):
            from orchestrator.deploy import check_asset_policy

            check_asset_policy(args.bevy, args.asset_path, args.overwrite)
        reporter = make_reporter(json_mode=args.json, quiet=args.quiet)
        result = run_workflow(None, spec=spec, client=client, out_dir=args.out, on_event=reporter)
        deployed = []
        if args.bevy:
            from comfy_nodes.pixel.errors import DgxPixelsError
            from orchestrator.deploy import deploy_outputs

            try:
                deployed = deploy_outputs(
                    result, args.bevy, args.asset_path, overwrite=args.overwrite, upscale=args.upscale,
                    bevy_version=args.bevy_version, client=client, on_event=reporter, prompt=spec.prompt,
                )
            except DgxPixelsError as exc:
                # The job ran: say where its output is (with -q or --json nothing printed the
                # paths), so it can be deployed by hand (`dgx-pixels deploy`) rather than run again.
                kept = ", ".join(o.path for o in result.outputs)
                exc.message = f"{exc.message}; the job's output is kept in {kept}"
                raise
    finally:
        if reporter is not None:
            reporter.close()
    if args.json:
        doc = {"event": "result", **result.to_json(), "deployed": [d.to_json() for d in deployed]}
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
    else:
        for o in result.outputs:
            print(o.path)
        for d in deployed:
            print(f"{d.asset_path}\t{d.path}" + ("\t(kept existing)" if d.skipped else ""))
        if result.cached and not args.quiet:
            print("note: ComfyUI answered from its cache (same prompt as before); use --fresh to run it again",
                  file=sys.stderr)
    return 0
