"""A stop signal (SIGTERM, Ctrl-C) stops the command wherever it lands.

The signals are real (sent with ``kill``); a finaliser or a fork callback only places them at
the moment where an exception raised by a handler used to be printed as "Exception ignored"
and dropped.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator import cli, interrupts

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def stop_handlers():
    """The CLI's handlers in this process, put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set in the main thread only")
    previous = cli._stop_signals_as_interrupt()
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    cli._terminated.clear()


def test_a_signal_inside_a_held_section_is_raised_at_its_end(stop_handlers):
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.held():
            with interrupts.held():  # nested: only the outer end raises
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now
                reached.append("inner")
            reached.append("outer")
    assert reached == ["inner", "outer"]
    assert cli._terminated.is_set()
    # nothing is left pending for the next section
    with interrupts.held():
        time.sleep(0.01)


def test_a_held_section_without_a_signal_raises_nothing(stop_handlers):
    with interrupts.held():
        value = sum(range(10))
    assert value == 45


def test_off_the_main_thread_a_held_section_holds_nothing():
    seen = []

    def body():
        with interrupts.held():
            seen.append(interrupts._held_depth)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [0]


_SIGTERM_IN_A_FINALISER = """
import os, signal, time
from orchestrator import cli

cli._stop_signals_as_interrupt()

class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # bytecode after the signal: the handler runs in here

try:
    Finalised()  # collected at once, in the middle of the command's work
    for _ in range(200):
        time.sleep(0.01)
    print("went on")
except KeyboardInterrupt:
    print("stopped", cli._terminated.is_set())
"""


def test_a_sigterm_that_lands_in_a_finaliser_still_stops_the_command():
    """The handler runs wherever the main thread is, also in a ``__del__`` the garbage collector
    runs there, where an exception is printed as "Exception ignored" and dropped: the command
    went on to its end."""
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_IN_A_FINALISER], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "stopped True", (proc.stdout, proc.stderr)
    assert "Exception ignored" not in proc.stderr


# A stand-in for ComfyUI's main.py: it waits to be stopped.
_FAKE_MAIN = "import time; time.sleep(120)\n"

# Starts a server while a fork callback (as logging registers) is slow enough for the test to
# send its signal into it.
_START_DURING_A_FORK_CALLBACK = """
import os, sys, time
from pathlib import Path
from orchestrator import cli, embedded

marker, fake = Path(sys.argv[1]), sys.argv[2]

def slow_fork_callback():
    if not marker.exists():
        marker.touch()
        time.sleep(2)

cli._stop_signals_as_interrupt()
os.register_at_fork(before=slow_fork_callback)
try:
    embedded.start_server(comfyui_dir=fake, python=sys.executable, pack=None, check_pack=False, boot_timeout=6)
    print("went on")
except KeyboardInterrupt:
    print("stopped", cli._terminated.is_set())
except Exception as exc:
    print("failed", type(exc).__name__, exc)
"""


def _running(needle: str) -> list[int]:
    """Pids of live processes whose command line holds ``needle``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle.encode() in cmdline.read_bytes():
                state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(cmdline.parent.name))
        except OSError:
            pass  # a process that ended meanwhile
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig, terminated", [(signal.SIGTERM, True), (signal.SIGINT, False)])
def test_a_stop_signal_while_the_server_process_forks_stops_it_and_removes_its_folder(tmp_path, sig, terminated):
    """A signal that lands while ``subprocess`` forks the server ran its handler in a fork
    callback, where the interrupt was dropped: the command went on and waited for the server.
    Now the start finishes, the started server is stopped and its temporary folder removed,
    and then the interrupt is raised."""
    fake = tmp_path / "comfyui"
    (fake / "comfy").mkdir(parents=True)
    (fake / "nodes.py").write_text("")
    (fake / "main.py").write_text(_FAKE_MAIN)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    marker = tmp_path / "forking"
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("PYTHONPATH", None)
    # SIGINT at its default (a test run in the background inherits it ignored)
    proc = subprocess.Popen([sys.executable, "-c", _START_DURING_A_FORK_CALLBACK, str(marker), str(fake)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == f"stopped {terminated}", (out, err)
    assert "Exception ignored" not in err
    assert list(tmp.iterdir()) == []  # the server's base folder
    assert _running(str(fake / "main.py")) == []
