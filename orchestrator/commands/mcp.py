"""``dgx-pixels mcp``: the MCP server for AI assistants (stdio, or streamable HTTP)."""
from __future__ import annotations

import threading

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

    if not args.http:
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
    # A service manager stops the server with SIGTERM, whose default action ends the process
    # at once (the HTTP transport re-raises it after its graceful shutdown): as an exit, the
    # job outputs downloaded into the temporary folder are removed with it.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stdio = False
    with tempfile.TemporaryDirectory(prefix="dgx-pixels-mcp-") as tmp:
        settings = ServerSettings(servers=list(cfg.servers), bevy_roots=[Path(r) for r in args.bevy_root],
                                  out_dir=Path(tmp), timeout=args.timeout)
        server = build_server(settings)
        if args.http:
            host, _, port = args.http.rpartition(":")
            if not host or not port.isdigit():
                raise InvalidArgumentError(f"--http {args.http!r} is not HOST:PORT", hint="e.g. --http 127.0.0.1:8765")
            server.run(transport="http", host=host, port=int(port), show_banner=False)
        else:
            # Ctrl-C as SIGTERM: asyncio's own handler would cancel the loop and then wait for
            # the stdin reader, which only the client's closing stdin ends
            signal.signal(signal.SIGINT, _exit_on_sigterm)
            try:
                server.run(transport="stdio", show_banner=False)
            except BaseException:
                # A signal that lands inside the transport's task group (while it starts, say)
                # comes out wrapped in an exception group, not as the bare SystemExit
                if not _stop_asked.is_set():
                    raise
            stdio = True
    if not args.http and stdio:
        # The temporary folder is gone; what is left is the stdio transport's reader thread,
        # blocked on stdin until the client closes it, which would keep the process alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


_stop_asked = threading.Event()


def _exit_on_sigterm(signum, frame) -> None:
    _stop_asked.set()
    raise SystemExit(0)
