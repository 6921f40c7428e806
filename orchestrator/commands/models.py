"""``dgx-pixels models list|pull|verify``: the model files the shipped workflows need."""
from __future__ import annotations

import argparse

HELP = "list, download (resumable, sha256-checked) and verify the models the workflows use"
DESCRIPTION = (
    "Models are listed in models/manifest.toml with a pinned URL, size and sha256. `pull` downloads "
    "into the ComfyUI models folder (<file>.part, resumed with HTTP Range after an interruption), "
    "checks the sha256 and only then moves the file into place. Two pulls of the same file never "
    "write at once: the second waits for the first. A connection that sends nothing for --timeout "
    "seconds is retried from the bytes already received. Bad input (an unknown model name, a "
    "malformed manifest, a --timeout that is not a positive number) exits with 2."
)


def _where(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--comfyui", metavar="PATH", help="ComfyUI folder (the one with main.py and folder_paths.py); models go to PATH/models")
    g.add_argument("--models-dir", metavar="PATH", help="ComfyUI models folder (holds checkpoints/, loras/)")
    p.add_argument("--manifest", metavar="FILE", help="model manifest (default: models/manifest.toml of this project)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orchestrator.config import CONFIG_NAME, DOWNLOAD_TIMEOUT

    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    p = sub.add_parser("list", help="show the manifest (and what is installed when a folder is given)")
    _where(p)
    p = sub.add_parser("pull", help="download models (all when none is named)")
    p.add_argument("names", nargs="*", metavar="NAME", help="model names from `models list`")
    p.add_argument("--required-only", action="store_true", help="only the models a workflow cannot run without")
    p.add_argument("--retries", type=int, default=3, help="retries after a dropped or refused connection or a temporary server error "
                   "(HTTP 408, 429, 5xx), waiting 1, 2, 4... s or as the server asks (default 3)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="how long to wait for the server to connect or to send more of the file before "
                        "retrying from the bytes received; a positive number (default: $DGX_PIXELS_DOWNLOAD_TIMEOUT, "
                        f"else [timeouts] download in {CONFIG_NAME}, else {DOWNLOAD_TIMEOUT:g})")
    p.add_argument("--config", metavar="PATH", help=f"settings file (default ./{CONFIG_NAME} or ~/.config/dgx-pixels/{CONFIG_NAME})")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _where(p)
    p = sub.add_parser("verify", help="check size and sha256 of installed models")
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (default: all)")
    _where(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from orchestrator import models as m

    action = getattr(args, "models_command", None)
    if action is None:
        print("usage: dgx-pixels models {list,pull,verify} [--comfyui PATH | --models-dir PATH]", file=sys.stderr)
        return 2
    if action == "pull":
        from orchestrator.config import load_config, positive_seconds

        # The flag is checked under its own name; the settings file and the environment are
        # checked by load_config, each error naming where the bad value came from.
        if args.timeout is not None:
            positive_seconds(args.timeout, "--timeout")
        timeout = load_config(args.config, download_timeout=args.timeout).download_timeout
    entries = m.load_manifest(args.manifest)

    if action == "list":
        models_dir = None
        if args.comfyui or args.models_dir:
            models_dir = m.resolve_models_dir(args.comfyui, args.models_dir, must_exist=True)
        for e in entries:
            state = ""
            if models_dir is not None:
                status = m.verify(e, models_dir, check_hash=False).status
                # without its hash read, a file of the right size is present, not proven whole
                state = "  [" + ("present, size matches; `models verify` checks its sha256" if status == "ok" else status) + "]"
            need = "required" if e.required else "optional"
            print(f"{e.name:<14} {e.folder}/{e.file}  {m._human(e.size)}  {need}  license: {e.license}{state}")
            print(f"{'':<14} sha256 {e.sha256 or 'unknown'}  {e.url}")
        return 0

    if getattr(args, "retries", 0) < 0:
        from comfy_nodes.pixel.errors import InvalidArgumentError

        raise InvalidArgumentError(f"--retries must be 0 or more, got {args.retries}")
    models_dir = m.resolve_models_dir(args.comfyui, args.models_dir, must_exist=action == "verify")
    chosen = m.select(entries, args.names)

    if action == "verify":
        bad = 0
        for e in chosen:
            r = m.verify(e, models_dir)
            detail = ""
            if r.status == "wrong_hash":
                detail = f" (expected {e.sha256}, got {r.actual_sha256})"
            elif r.status == "wrong_size":
                detail = f" (expected {e.size} bytes, got {r.actual_size})"
            elif r.status == "blocked":
                detail = (f" ({r.path} is a folder)" if r.path.is_dir()
                          else f" ({r.path.parent} is a file where its folder goes)")
            elif r.status == "partial":
                detail = f" ({r.actual_size} bytes in {r.path.name}.part; `pull` resumes it)"
            elif r.status == "unverified":
                detail = (f" (the manifest publishes no sha256{' and no size' if e.size is None else ''}: "
                          f"nothing to check it against; sha256 {r.actual_sha256})")
            print(f"{e.name:<14} {r.status}{detail}  {r.path}")
            if not r.ok and (e.required or r.status in ("wrong_hash", "wrong_size", "blocked") or args.names):
                bad += 1
        return 1 if bad else 0

    # pull
    if args.required_only:
        for e in chosen:
            if not e.required and args.names:
                print(f"{e.name}: optional, skipped (--required-only)", file=sys.stderr)
        chosen = [e for e in chosen if e.required]
    quiet = args.quiet or not sys.stderr.isatty()
    last = [0.0]

    def progress(done: int, total: int | None) -> None:
        import time

        now = time.monotonic()
        if quiet or now - last[0] < 0.5:
            return
        last[0] = now
        pct = f"{100 * done / total:5.1f}%" if total else ""
        print(f"\r  {m._human(done)} / {m._human(total)} {pct}", end="", file=sys.stderr, flush=True)

    def note(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr)

    for e in chosen:
        print(f"{e.name}: {e.file} -> {e.target(models_dir)}  ({m._human(e.size)}, license {e.license})", file=sys.stderr)
        rep = m.download(e, models_dir, retries=args.retries, timeout=timeout, progress=progress, note=note)
        if not quiet:
            print("", file=sys.stderr)
        if rep.already_present and e.sha256 is None:
            print(f"{e.name}: already installed, unverified (the manifest publishes no sha256)", file=sys.stderr)
        elif rep.already_present:
            print(f"{e.name}: already installed and verified", file=sys.stderr)
        elif e.sha256 is None:
            print(f"{e.name}: placed unverified (the manifest publishes no sha256; got {rep.sha256})", file=sys.stderr)
        else:
            print(f"{e.name}: ok (sha256 {rep.sha256})", file=sys.stderr)
    return 0
