"""Showing job events: a bar on a terminal, plain lines in a log, JSON lines for machines.

Every reporter is a callable taking the event dicts that ``orchestrator.run`` and
``orchestrator.batch`` emit (``{"event": "progress", "prompt_id": ..., "value": 3, "max": 20,
...}``). Pick one with :func:`make_reporter`:

- ``TtyReporter``: one line redrawn in place (``\\r``), node name, step bar, elapsed time;
  written to stderr so stdout stays clean for results;
- ``PlainReporter``: one line per state change (no progress spam: a step line at most every
  25 %), for CI logs and pipes;
- ``JsonReporter``: every event as one JSON object per line on stdout (``--json``).
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO

_QUIET_EVENTS = {"preview"}


def _job(ev: dict) -> str:
    j = ev.get("job")
    return f"[{j}] " if j is not None else ""


class JsonReporter:
    """``--json``: one JSON object per line, flushed, so a reader can act on each event."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, ev: dict) -> None:
        line = json.dumps(ev, default=str, separators=(",", ":"))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class PlainReporter:
    """One line per state change; for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._last_pct: dict[tuple, int] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, ev: dict) -> None:
        e = ev.get("event")
        p = _job(ev)
        pid = (ev.get("prompt_id") or "")[:8]
        if ev.get("job") is not None and e in ("executing", "progress", "started", "cached"):
            return  # a batch: per-job state changes only, not every node
        if e == "submitted":
            self._line(f"{p}submitted {ev.get('workflow', '')} as {pid} to {ev.get('server')}")
        elif e == "attached":
            self._line(f"{p}re-attached to {pid} on {ev.get('server')}")
        elif e == "started":
            self._line(f"{p}running {pid}")
        elif e == "cached":
            self._line(f"{p}{len(ev.get('nodes') or [])} node(s) served from ComfyUI's cache")
        elif e == "executing":
            self._line(f"{p}node {ev.get('node')} ({ev.get('node_type')})")
        elif e == "progress":
            mx = ev.get("max") or 0
            if mx > 1:
                pct = int(100 * (ev.get("value") or 0) / mx)
                key = (ev.get("prompt_id"), ev.get("node"))
                last = self._last_pct.get(key, -100)
                if pct >= last + 25 or pct == 100 and last != 100:
                    self._last_pct[key] = pct
                    self._line(f"{p}  node {ev.get('node')}: {ev.get('value')}/{mx}")
        elif e == "completed":
            self._last_pct = {k: v for k, v in self._last_pct.items() if k[0] != ev.get("prompt_id")}
            self._line(f"{p}finished {pid} in {ev.get('elapsed_s', 0):.2f} s")
        elif e == "output":
            self._line(f"{p}output {ev.get('path')}" + (" (cached result)" if ev.get("cached") else ""))
        elif e == "reconnecting":
            self._line(f"{p}connection to {ev.get('server')} lost ({ev.get('error') or 'closed'}); reconnecting")
        elif e == "server_down":
            # after "reconnecting": the server itself does not answer, and how long it is waited for
            wait = f"up to {ev['wait_s']:g} s" if ev.get("wait_s") else "without a limit"
            self._line(f"{p}{ev.get('server')} does not answer either; waiting {wait} for it to come back")
        elif e in ("reconnected", "server_back"):
            self._line(f"{p}connection to {ev.get('server')} back; checking the job's state")
        elif e == "resubmitted":
            self._line(f"{p}RESUBMITTED {pid}: {ev.get('reason')}")
        elif e == "deployed":
            self._line(f"{p}deployed {ev.get('asset')} -> {ev.get('path')}")
        elif e == "job_failed":
            self._line(f"{p}FAILED: {ev.get('error')}")
        elif e == "batch_progress":
            self._line(
                f"batch: {ev.get('done')}/{ev.get('total')} done, {ev.get('failed', 0)} failed, {ev.get('in_flight', 0)} in flight"
            )
        elif e == "failover":
            self._line(f"{p}moving job from {ev.get('from')} to {ev.get('to')}: {ev.get('reason')}")
        elif e == "info":
            self._line(f"{p}{ev.get('message')}")

    def close(self) -> None:
        pass


class TtyReporter:
    """A single line redrawn in place on a terminal (stderr)."""

    def __init__(self, stream: IO[str] | None = None, width: int = 24):
        self.stream = stream or sys.stderr
        self.width = width
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._status = ""
        self._drawn = 0
        self._last_draw = 0.0
        # (nodes done, nodes in all) of the running job: the bar shows the whole job, the
        # current node's steps a part of it (it stepped back from a node's 8/24 steps to the
        # job's 1 node of 5)
        self._nodes = (0, 0)

    def _draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.05:
            return
        self._last_draw = now
        with self._lock:
            pad = max(0, self._drawn - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._drawn = len(text)

    def _print(self, text: str) -> None:
        with self._lock:
            self.stream.write("\r" + " " * self._drawn + "\r" + text + "\n")
            self.stream.flush()
            self._drawn = 0

    def _bar(self, frac: float) -> str:
        frac = min(max(frac, 0.0), 1.0)
        full = int(frac * self.width)
        return "[" + "#" * full + "-" * (self.width - full) + "]"

    def __call__(self, ev: dict) -> None:
        e = ev.get("event")
        p = _job(ev)
        el = time.monotonic() - self._t0
        if ev.get("job") is not None and e in ("progress", "executing", "submitted", "output", "completed"):
            return  # a batch: one line for the whole batch, not one per job
        if e == "progress":
            mx = ev.get("max") or 1
            v = ev.get("value") or 0
            done, total = self._nodes
            frac = (done + min(v / mx, 1.0)) / total if total else v / mx
            self._draw(f"{p}{self._bar(frac)} {v}/{mx} {ev.get('node_type') or ''} #{ev.get('node')}  {el:5.1f}s", v >= mx)
        elif e == "executing":
            done, total = ev.get("nodes_done") or 0, ev.get("nodes_total") or 1
            self._nodes = (done, total)
            self._draw(f"{p}{self._bar(done / total)} node {min(done + 1, total)}/{total} {ev.get('node_type') or ''} "
                       f"#{ev.get('node')}  {el:5.1f}s", True)
        elif e == "submitted":
            self._draw(f"{p}queued on {ev.get('server')}", True)
        elif e == "output":
            self._print(f"{p}output {ev.get('path')}" + (" (cached result)" if ev.get("cached") else ""))
        elif e == "completed":
            self._print(f"{p}done in {ev.get('elapsed_s', 0):.2f} s")
        elif e == "reconnecting":
            self._draw(f"{p}connection lost, reconnecting...  {el:5.1f}s", True)
        elif e == "server_down":
            self._draw(f"{p}server not answering, waiting" + (f" up to {ev['wait_s']:g} s" if ev.get("wait_s") else "")
                       + f"...  {el:5.1f}s", True)
        elif e == "resubmitted":
            self._print(f"{p}RESUBMITTED: {ev.get('reason')}")
        elif e == "deployed":
            self._print(f"{p}deployed {ev.get('asset')}")
        elif e == "job_failed":
            self._print(f"{p}FAILED: {ev.get('error')}")
        elif e == "batch_progress":
            total = ev.get("total") or 1
            self._draw(
                f"{self._bar((ev.get('done') or 0) / total)} {ev.get('done')}/{total} jobs, "
                f"{ev.get('failed', 0)} failed, {ev.get('in_flight', 0)} running  {el:5.1f}s",
                True,
            )
        elif e in ("failover", "info"):
            self._print(f"{p}{ev.get('message') or ev.get('reason')}")

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self.stream.write("\r" + " " * self._drawn + "\r")
                self.stream.flush()
                self._drawn = 0


def make_reporter(json_mode: bool = False, quiet: bool = False, stream: IO[str] | None = None):
    """The reporter for this process: JSON lines, a TTY bar, plain lines, or nothing."""
    if json_mode:
        return JsonReporter(stream)
    if quiet:
        return None
    err = stream or sys.stderr
    if hasattr(err, "isatty") and err.isatty():
        return TtyReporter(err)
    return PlainReporter(err)
