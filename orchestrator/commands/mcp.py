"""``dgx-pixels mcp``: the MCP server for AI assistants (stdio, or streamable HTTP)."""
from __future__ import annotations

HELP = "serve the tools over the Model Context Protocol (stdio by default, or --http HOST:PORT)"
DESCRIPTION = (
    "Starts an MCP server that lets an assistant list workflows, generate sprites on ComfyUI "
    "straight into a Bevy project's assets/, snap and quantize images offline, deploy files and "
    "list deployed assets with their provenance. Every path is confined to the --bevy-root folders."
)


def add_arguments(p) -> None:
    p.add_argument("--bevy-root", action="append", metavar="DIR", required=True,
                   help="a Bevy project (or a folder of projects) the server may read and write; repeatable")
    p.add_argument("--server", action="append", metavar="URL",
                   help="ComfyUI server URL (default: $DGX_PIXELS_SERVER or http://127.0.0.1:8188)")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="serve streamable HTTP on this address (at /mcp) instead of stdio, e.g. 127.0.0.1:8765")
    p.add_argument("--timeout", type=float, default=None, help="seconds a generate job may take (default: no limit)")


def run(args) -> int:
    import os
    import signal
    import sys
    import tempfile
    from pathlib import Path

    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.config import load_config
    from orchestrator.errors import SetupError

    # the stop handlers come first: the CLI's own (SIGTERM as an interrupt, exit 143) would
    # otherwise answer a client that stops the server while fastmcp is still being imported
    if args.http:
        # A service manager stops the server with SIGTERM, whose default action ends the
        # process at once (the HTTP transport re-raises it after its graceful shutdown): as an
        # exit, the job outputs downloaded into the temporary folder are removed with it.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    else:
        # On stdio, a stop signal (SIGTERM, or Ctrl-C) ends the process from its handler: an
        # exception raised wherever the signal lands must unwind asyncio, whose shutdown then
        # waits for the transport's stdin reader thread, which only the client's closing stdin
        # ends (a signal during start-up hung there), or is wrapped in an exception group.
        stop = _HardStop()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # fastmcp reads its settings when it is imported; on stdio its start-up notice would
        # only add noise to the client's log
        os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")
    try:
        from orchestrator.mcp_server import ServerSettings, build_server
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("fastmcp", "mcp"):
            raise
        # an optional part: the offline commands need no MCP library
        raise SetupError(f"the MCP server needs the '{exc.name}' package, which is not installed",
                         hint="pip install 'dgx-pixels[mcp]' (in a checkout: pip install '.[mcp]'); "
                              "the .venv that dev.py makes has it") from None

    cfg = load_config(servers=args.server or None)
    _warm_up_in_background()
    if args.http:
        host, _, port = args.http.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgumentError(f"--http {args.http!r} is not HOST:PORT", hint="e.g. --http 127.0.0.1:8765")
        if not 1 <= int(port) <= 65535:
            raise InvalidArgumentError(f"--http {args.http!r}: port {int(port)} is not 1..65535",
                                       hint="e.g. --http 127.0.0.1:8765")
        if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
            # no authentication: whoever reaches the port can write into the Bevy roots
            print(f"warning: --http {args.http} listens beyond this machine's loopback, and the MCP server has no "
                  "authentication: anyone who can reach the port can generate and write into the Bevy roots",
                  file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="dgx-pixels-mcp-") as tmp:
        if not args.http:
            stop.folder = tmp
        settings = ServerSettings(servers=list(cfg.servers), bevy_roots=[Path(r) for r in args.bevy_root],
                                  out_dir=Path(tmp), timeout=args.timeout)
        if args.http:
            # Host and Origin headers are checked (a web page the user opens must not reach a
            # loopback server through DNS rebinding); "auto" checks them on a loopback address
            build_server(settings).run(transport="http", host=host, port=int(port), show_banner=False,
                                       host_origin_protection="auto")
            return 0
        build_server(settings).run(transport="stdio", show_banner=False)
    # stdin closed: the temporary folder is gone; what is left is the stdio transport's reader
    # thread, which would keep the process alive
    _exit_now()


class _HardStop:
    """A stop signal's handler for the stdio server: removes the temporary ``folder`` (once it
    exists) and ends the process at once, exit 0."""

    folder: str | None = None

    def __call__(self, signum, frame) -> None:
        import shutil

        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        _exit_now()


def _exit_now() -> None:
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or a write the signal interrupted
            pass
    os._exit(0)


def _exit_on_sigterm(signum, frame) -> None:
    from orchestrator.interrupts import raise_in_main

    raise_in_main(SystemExit, signum, frame)


def _warm_up_in_background() -> None:
    """Import scikit-learn's k-means while the client is still connecting: the first tool call
    that reduces colours otherwise waited 1.3-1.7 s for it (a daemon thread: it never holds the
    server's exit up; a missing package is said by the call that needs it)."""
    import importlib
    import threading

    def load() -> None:
        try:
            importlib.import_module("sklearn.cluster")
        except Exception:  # noqa: BLE001 - the tool call that needs it names the problem
            pass

    threading.Thread(target=load, name="dgx-pixels-warm-up", daemon=True).start()
