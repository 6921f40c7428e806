"""``dgx-pixels watch``: deploy each new finished image of a folder into a Bevy project."""
from __future__ import annotations

import argparse

HELP = "watch a folder (e.g. ComfyUI's output) and deploy each new finished image into a Bevy project"

DESCRIPTION = """\
Watch DIR with file-system events and deploy every new FINISHED image into
PROJECT/assets/<--asset-dir> (.meta, manifest entry with provenance from the PNG's embedded
ComfyUI prompt). Temporary and hidden files (.tmp, .part, ~, dotfiles) are ignored; a file
is deployed only after it stops changing and its bytes form a complete image. The same
content is deployed once. A state file remembers what was deployed, so a restart deploys only
what is new; on the first start the files already in DIR are left alone (and counted) unless
--existing, which on a later start deploys those too.
A file that failed because of its own bytes (unreadable, an animation) is remembered too: a
restart reports it as skipped while it is unchanged, and tries it again once edited or replaced.
Stops cleanly on Ctrl-C or SIGTERM.

exit codes: 0 stopped cleanly, 1 the watched folder was lost, 2 bad arguments (a missing folder, one that overlaps
the game's assets/), 6 the project or an asset path is refused.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("dir", metavar="DIR", help="folder to watch (sub-folders too)")
    p.add_argument("--bevy", metavar="PROJECT", required=True, help="Bevy project folder (holds Cargo.toml and assets/)")
    p.add_argument("--asset-dir", default="sprites/", metavar="PATH", help="folder under assets/ for deployed images (default sprites/)")
    p.add_argument("--existing", action="store_true",
                   help="also deploy the images already in DIR (that a first start without it left alone)")
    p.add_argument("--bevy-version", default="auto", metavar="V",
                   help="auto (default: from Cargo.toml/Cargo.lock) or 0.12 ... 0.19; given, PROJECT may be any folder")
    p.add_argument("--debounce", type=float, default=0.1, metavar="S", help="quiet time before a file counts as finished (default 0.1)")
    p.add_argument("--state", metavar="FILE", help="state file (default PROJECT/assets/.dgx-pixels/watch-<hash>.json)")
    p.add_argument("--overwrite", choices=("replace", "keep", "version", "fail"), default="replace", help="when the asset exists (default replace)")
    p.add_argument("--upscale", type=int, default=1, metavar="N", help="enlarge by a whole factor (default 1)")
    p.add_argument("--no-recursive", action="store_true", help="ignore sub-folders")
    p.add_argument("--json", action="store_true", help="JSON event lines on stdout")


def run(args) -> int:
    import json
    import signal
    import sys
    import threading

    from orchestrator.watch import Watcher

    stop = threading.Event()

    def on_event(ev: dict) -> None:
        if args.json:
            sys.stdout.write(json.dumps(ev, default=str) + "\n")
            sys.stdout.flush()
            return
        e = ev["event"]
        if e == "deployed" and ev.get("already"):
            print(f"already deployed {ev['asset']} <- {ev['file']} (found in the manifest; nothing written)", flush=True)
        elif e == "deployed":
            print(f"deployed {ev['asset']} <- {ev['file']}" + (f" ({ev['latency_ms']:.0f} ms)" if ev.get("latency_ms") else ""), flush=True)
        elif e == "kept":
            print(f"kept the existing {ev['asset']} (--overwrite keep; nothing written) <- {ev['file']}", flush=True)
        elif e == "duplicate":
            print(f"same content as {ev['asset']}, skipped: {ev['file']}", flush=True)
        elif e == "warning":
            print(f"warning: {ev['message']}", file=sys.stderr, flush=True)
        elif e == "failed":
            print(f"FAILED {ev['file']}: {ev['error']}", file=sys.stderr, flush=True)
        elif e == "ignored":
            print(f"ignored {ev['file']}: {ev['reason']}", file=sys.stderr, flush=True)
        elif e == "skipped":
            print(f"skipped {ev['file']}: {ev['reason']} (it failed with: {ev['error']})", file=sys.stderr, flush=True)
        elif e == "ready":
            n = ev.get("left_alone") or 0
            alone = (f"; {n} image{'s' if n != 1 else ''} already there left alone, as at the first start "
                     "(--existing deploys them)") if n else ""
            print(f"watching {ev['folder']} -> {ev['project']} (Ctrl-C to stop){alone}", file=sys.stderr, flush=True)

    def handle(signum, frame):
        stop.set()

    old_int = signal.signal(signal.SIGINT, handle)
    old_term = signal.signal(signal.SIGTERM, handle)
    try:
        w = Watcher(
            args.dir, args.bevy, asset_dir=args.asset_dir, state_file=args.state, debounce=args.debounce,
            existing=args.existing, overwrite=args.overwrite, upscale=args.upscale, bevy_version=args.bevy_version,
            recursive=not args.no_recursive, on_event=on_event,
        )
        stats = w.run_until_stopped(stop)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    print(f"stopped: {stats.deployed} deployed, " + (f"{stats.kept} kept existing, " if stats.kept else "")
          + f"{stats.duplicates} duplicates, {stats.failed} failed, "
          f"{stats.ignored} ignored" + (f", {stats.skipped} skipped as failed before" if stats.skipped else ""),
          file=sys.stderr)
    return 1 if w.lost else 0
