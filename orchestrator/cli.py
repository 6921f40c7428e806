"""Entry point of the ``dgx-pixels`` command.

Sub-commands live in ``orchestrator.commands.<name>``; every error the project raises on
purpose (``DgxPixelsError``) is printed as ``error: ...`` / ``hint: ...`` with its exit code,
never as a traceback. Exit codes: 0 ok, 1 other error, 2 bad input or usage, 3 no grid /
server unreachable, 4 workflow invalid, 5 the server failed the job, 6 deploy refused,
130 interrupted (Ctrl-C), 143 stopped by SIGTERM (128 + the signal, as a shell reports a process
the signal ended), both after the clean-up.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from comfy_nodes.pixel.errors import DgxPixelsError
from orchestrator.interrupts import raise_in_main

# Ordered as shown in --help. Each name is a module in orchestrator.commands.
COMMANDS = (
    "snap",
    "palette",
    "sheet",
    "export",
    "workflows",
    "run",
    "batch",
    "deploy",
    "watch",
    "history",
    "doctor",
    "models",
    "demo",
    "mcp",
)


def _load(name: str):
    try:
        return importlib.import_module(f"orchestrator.commands.{name.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name == f"orchestrator.commands.{name.replace('-', '_')}":
            return None
        raise


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors end with a hint as every other error does."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        print(f"hint: `{self.prog} --help` lists every option", file=sys.stderr)
        sys.exit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser, every sub-command in it; with ``only`` (a name in COMMANDS),
    that sub-command alone: each sub-command's module is imported to describe it, and a run
    of one command (a script calling ``dgx-pixels snap`` per image) need not import the
    others' (a snap process 294 -> 280 ms median, 40 alternating runs on a 2-core machine).
    ``only="--version"`` builds none: a version check (an install script's) imports no
    command's module."""
    from orchestrator import __version__

    parser = _Parser(
        prog="dgx-pixels",
        description="AI pixel art that is really pixel art: snap, palette, sheets, Bevy export, ComfyUI runs.",
    )
    parser.add_argument("--version", action="version", version=f"dgx-pixels {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if only == "--version":
        names: tuple[str, ...] = ()
    else:
        names = (only,) if only in COMMANDS else COMMANDS
    for name in names:
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    _terminated.clear()
    rc = _main(argv)
    # a command stopped by SIGTERM ends as its clean-up allows (130, like Ctrl-C), reported as
    # a shell would report the signal: service managers and scripts tell a stop from a failure
    return 128 + signal.SIGTERM if rc == 130 and _terminated.is_set() else rc


def _main(argv: list[str] | None) -> int:
    words = sys.argv[1:] if argv is None else argv
    # the command is the first word when it is one (options before it, help and typos: all)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    previous = _stop_signals_as_interrupt()
    try:
        return int(args._run(args) or 0)
    except DgxPixelsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("terminated" if _terminated.is_set() else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # a file-system failure no command foresaw (a name too long, a full disk, a permission):
        # said as an error naming the file, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        print("hint: check the paths given, the free space and the permissions", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_signals_as_interrupt() -> dict[int, object]:
    """SIGTERM (a service manager, ``kill``) stops any command as Ctrl-C does, so its clean-up
    runs: a job is taken off the server's queue, a started ComfyUI is stopped and temporary
    folders are removed. Both go through :func:`orchestrator.interrupts.raise_in_main`, so a
    section that must not be cut in half can hold them. Commands with their own handler
    (watch, mcp) replace these. Returns the previous handlers, to put back (none off the main
    thread, where no handler can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt)}
    # Ctrl-C only where Python raises it already: a SIGINT ignored (a job started in the
    # background by a shell) stays ignored
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupt)
    return previous


_terminated = threading.Event()


def _raise_interrupt(signum, frame) -> None:
    if signum == signal.SIGTERM:
        _terminated.set()
    raise_in_main(KeyboardInterrupt, signum, frame)


if __name__ == "__main__":
    sys.exit(main())
