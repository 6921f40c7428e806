"""Stop signals (SIGTERM, Ctrl-C) turned into exceptions that the command's own code sees.

A Python signal handler runs in the main thread, between two bytecodes of whatever runs there.
Some of those places print an exception as "Exception ignored" and drop it, and the command
then goes on as if never stopped:

- an object's finaliser (``__del__``, a weakref callback) that the garbage collector runs;
- a callback ``os.register_at_fork`` registered (``logging`` has two), which runs while
  ``subprocess`` forks a child with a ``preexec_fn``.

:func:`raise_in_main` sends the signal again a moment later from a finaliser, and :func:`held`
keeps it out of a section that must not be cut in half (a child started but not yet owned
by anyone who would stop it), raising it at the section's end.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

# Signal handlers run in the main thread only, so plain module state is enough.
_held_depth = 0
_pending: type[BaseException] | None = None


def raise_in_main(exc_type: type[BaseException], signum: int, frame) -> None:
    """Raise ``exc_type`` from a signal handler, where the command's own code will see it.

    Inside :func:`held` the exception waits for the section's end. Inside a finaliser it would
    be dropped, so the signal is sent again 50 ms later, to land in the command's code."""
    global _pending
    if _held_depth:
        if _pending is None:
            _pending = exc_type
        return
    f = frame
    while f is not None:
        if f.f_code.co_name == "__del__" or (f.f_code.co_name == "__call__" and f.f_code.co_filename.endswith("weakref.py")):
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
            return
        f = f.f_back
    raise exc_type


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold a stop signal's exception until the block ends, then raise it there.

    For a block that starts something the caller must own before it can be stopped: a child
    process started by ``subprocess.Popen`` (whose fork runs ``os.register_at_fork`` callbacks,
    where an exception is dropped, and whose object is lost if it raises after the fork). Off
    the main thread, where no handler runs, this holds nothing."""
    global _held_depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held_depth += 1
    try:
        yield
    finally:
        _held_depth -= 1
        if not _held_depth and _pending is not None:
            exc_type, _pending = _pending, None
            raise exc_type
