"""Many jobs over one or several ComfyUI servers, resumable, each output deployed exactly once.

Jobs file (TOML; YAML too when PyYAML is installed)::

    servers = ["http://127.0.0.1:8188", "http://gpu-2:8188"]   # optional (else --server / config)
    in_flight = 4                                               # jobs submitted at once, all servers
    out = "batch-out"                                           # default: <jobs file stem>.out/

    [defaults]                      # merged into every job (``set`` tables are merged key by key)
    workflow = "pixel-postprocess@1"
    bevy = "../my_game"
    overwrite = "replace"

    [[job]]
    id = "knight"                   # optional stable id (default: hash of the job's content)
    set = { image = "art/knight.png", scale = 4 }
    asset_path = "sprites/knight.png"

Relative paths (``bevy``, ``out``, workflow files, ``set`` values naming existing files) are
relative to the jobs file.

The journal (``<jobs file>.journal.jsonl`` next to it, or in ``--state-dir``) is append-only
JSON lines, fsync'ed after every record. Each job moves pending → submitted(prompt_id, server)
→ done(outputs with sha256) → deployed (or failed / cancelled). The ``submitted`` record is
written BEFORE ``POST /prompt`` with the prompt id chosen here, so after a crash a rerun asks
the server about exactly that id: found → re-attach (never a second submission); unknown to
both ``/queue`` and ``/history`` → submitted again under the same id. Deploys carry the id
``<journal id>:<job>:<job key>:<output>``; one already in the project's manifest is not
repeated, and a job edited between runs (a new key) is deployed again. The key covers what
the job's text does not say too: its input files' content, the release ``sprite@1`` resolves
to, a workflow file's content. A job whose deploy
failed (``failed`` with ``phase: "deploy"``) is deployed from its collected outputs on a rerun,
not generated again. The journal is locked while a batch runs: a second process on the same
jobs file stops at once (``BatchBusyError``) rather than running every job twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from comfy_nodes.pixel.asset_manifest import loads_json
from comfy_nodes.pixel.errors import DgxPixelsError, InvalidArgumentError
from orchestrator.client import ComfyClient
from orchestrator.config import Config, normalize_url
from orchestrator.errors import ServerUnreachableError, WorkflowError
from orchestrator.run import (
    JobCancelledError,
    JobRun,
    JobSpec,
    OutputFile,
    RunResult,
    ServerLostError,
    drop_server_exports,
    prepare_job,
)

EventFn = Callable[[dict], None]

STATES = ("pending", "submitted", "done", "deployed", "failed", "cancelled")


# --------------------------------------------------------------------------- jobs file


@dataclass
class BatchJob:
    """One entry of a jobs file, resolved."""

    id: str
    workflow: Any
    values: dict
    key: str  # hash of the definition: a changed job is a new job
    bevy: str | None = None
    asset_path: str | None = None
    overwrite: str = "replace"
    upscale: int = 1
    bevy_version: str = "auto"
    fresh: bool = False
    spec: JobSpec | None = None


@dataclass
class JobsFile:
    path: Path
    jobs: list[BatchJob]
    servers: list[str] = field(default_factory=list)
    in_flight: int | None = None
    out: Path | None = None


def _load_doc(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-not-found]
        except ImportError:
            raise InvalidArgumentError(
                f"{path} is YAML but PyYAML is not installed", hint="`pip install pyyaml`, or write the jobs file as TOML"
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10: the same parser, installed as tomli
            import tomli as tomllib  # type: ignore[no-redef]

        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgumentError(f"{path} is not valid TOML: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"{path} must hold a table with a list of jobs ([[job]])")
    return doc


#: After Ctrl-C, how long (s) the batch waits for its running jobs to leave the server.
CANCEL_WAIT_S = 30.0
_JOB_KEYS = {"id", "workflow", "set", "bevy", "asset_path", "overwrite", "upscale", "bevy_version", "fresh"}


def load_jobs_file(path: str | os.PathLike) -> JobsFile:
    """Parse and validate a jobs file (no server contact). Errors name the job and the key."""
    p = Path(path)
    if p.is_dir():
        raise InvalidArgumentError(f"{p} is a folder, not a jobs file", hint="name the .toml (or .yaml) file in it")
    if not p.is_file():
        raise InvalidArgumentError(f"jobs file not found: {p}")
    doc = _load_doc(p)
    base = p.resolve().parent
    raw_jobs = doc.get("job", doc.get("jobs"))
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise InvalidArgumentError(f"{p} has no jobs", hint="add [[job]] tables (TOML) or a 'jobs:' list (YAML)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InvalidArgumentError(f"{p}: [defaults] must be a table")
    _check_types(defaults, f"{p} [defaults]")
    jobs: list[BatchJob] = []
    seen: dict[str, int] = {}
    registry: list = []  # loaded on first use, once per file
    for i, raw in enumerate(raw_jobs, 1):
        where = f"{p} job #{i}"
        if not isinstance(raw, dict):
            raise InvalidArgumentError(f"{where} is not a table")
        unknown = set(raw) - _JOB_KEYS
        if unknown:
            raise InvalidArgumentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                                       hint="a job has: " + ", ".join(sorted(_JOB_KEYS)))
        _check_types(raw, where)
        merged = {**defaults, **raw}
        values = {**(defaults.get("set") or {}), **(raw.get("set") or {})}
        if not merged.get("workflow"):
            raise InvalidArgumentError(f"{where}: no workflow", hint="give workflow = \"name@version\" in the job or [defaults]")
        values = {k: _rel_file(v, base) for k, v in values.items()}
        workflow = merged["workflow"]
        if isinstance(workflow, str) and workflow.endswith(".json") and not os.path.isabs(workflow):
            workflow = str(base / workflow)
        bevy = merged.get("bevy")
        if bevy and not os.path.isabs(os.path.expanduser(str(bevy))):
            bevy = str(base / str(bevy))
        asset_path = merged.get("asset_path")
        if bool(bevy) != bool(asset_path) and asset_path:
            raise InvalidArgumentError(f"{where}: asset_path needs bevy (the project folder)")
        if asset_path:
            from comfy_nodes.pixel.errors import PathEscapeError
            from comfy_nodes.pixel.safepath import check_relative

            try:
                check_relative(str(asset_path).rstrip("/"), Path(str(bevy)) / "assets")
            except PathEscapeError as exc:
                raise PathEscapeError(f"{where}: {exc.message}", hint=exc.hint) from None
        definition = {"workflow": workflow, "set": values, "bevy": bevy, "asset_path": asset_path,
                      "overwrite": merged.get("overwrite", "replace"), "upscale": merged.get("upscale", 1),
                      "fresh": bool(merged.get("fresh", False))}
        # what the job's outputs depend on beyond its text: an input image edited since, or
        # another Bevy version's .meta, is a new job (the finished one was skipped, and the
        # game kept the old art)
        inputs = _local_file_digests(values)
        if inputs:
            definition["inputs"] = inputs
        # ... and so is a job whose workflow is other content now: `sprite@1` resolving to a
        # newer release, or a workflow file edited since (an exact release cannot change)
        runs = _workflow_identity(str(workflow), registry)
        if runs:
            definition["runs"] = runs
        if str(merged.get("bevy_version", "auto")) != "auto":
            definition["bevy_version"] = str(merged["bevy_version"])
        key = hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()[:16]
        jid = raw.get("id")
        if jid is not None:
            jid = str(jid)
            if jid in seen:
                raise InvalidArgumentError(f"{where}: id {jid!r} is used twice")
        else:
            jid = key[:10]
            n = seen.get(jid, 0)
            if n:
                jid = f"{jid}-{n + 1}"
        seen[jid] = seen.get(jid, 0) + 1
        if raw.get("id") is None and jid != key[:10]:
            seen[key[:10]] += 1
        jobs.append(BatchJob(
            id=jid, workflow=workflow, values=values, key=key, bevy=bevy, asset_path=asset_path,
            overwrite=str(definition["overwrite"]), upscale=int(definition["upscale"]),
            bevy_version=str(merged.get("bevy_version", "auto")), fresh=definition["fresh"],
        ))
    _check_targets(jobs, p)
    servers = doc.get("servers") or []
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(u, str) for u in servers):
        raise InvalidArgumentError(f"{p}: servers must be a URL or a list of URLs, got {servers!r}")
    in_flight = doc.get("in_flight")
    if in_flight is not None and (isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1):
        raise InvalidArgumentError(f"{p}: in_flight must be a whole number >= 1, got {in_flight!r}")
    out = doc.get("out")
    if out is not None and not isinstance(out, str):
        raise InvalidArgumentError(f"{p}: out must be a folder path, got {out!r}")
    return JobsFile(
        path=p,
        jobs=jobs,
        servers=[normalize_url(s) for s in servers],
        in_flight=in_flight,
        out=(base / out) if out else None,
    )


# What each key of a job (or of [defaults]) must be: a wrong type is named here, not met as a
# traceback deep in the run.
_KEY_TYPES: dict[str, tuple[Any, str]] = {
    "id": (lambda v: isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip() != "", "a name"),
    "workflow": (lambda v: isinstance(v, str) and v.strip() != "", "a workflow name@version or a .json file"),
    "set": (lambda v: isinstance(v, dict), "a table of parameter values, e.g. { image = \"knight.png\" }"),
    "bevy": (lambda v: isinstance(v, str), "the game's folder"),
    "asset_path": (lambda v: isinstance(v, str), "a path under assets/, e.g. \"sprites/knight.png\""),
    "overwrite": (lambda v: v in ("fail", "replace", "keep", "version"), "one of fail, replace, keep, version"),
    "upscale": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64, "a whole number 1..64"),
    "bevy_version": (lambda v: isinstance(v, str), "a version such as \"0.15\" or \"auto\""),
    "fresh": (lambda v: isinstance(v, bool), "true or false"),
}


def _local_file_digests(values: dict) -> dict[str, str]:
    """sha256 of each parameter value that names a local file (an image to upload)."""
    from orchestrator.models import sha256_file

    out = {}
    for name, v in values.items():
        if isinstance(v, str) and v and os.path.isfile(v):
            try:
                out[name] = sha256_file(Path(v))
            except OSError:
                continue  # unreadable: the job's own run names it
    return out


def _workflow_identity(workflow: str, registry: list) -> str | None:
    """What a job's ``workflow`` runs, where the text alone does not say: the release a name or
    version prefix resolves to, or a workflow file's sha256. None for an exact release (its
    content is locked) and for a workflow that cannot be resolved (the run names the problem)."""
    from comfy_nodes.pixel.errors import DgxPixelsError
    from orchestrator.models import sha256_file

    if os.path.isfile(workflow):
        try:
            return "file " + sha256_file(Path(workflow))
        except OSError:
            return None
    try:
        if not registry:
            from orchestrator.workflows import load_registry

            registry.append(load_registry())
        ref = registry[0].get(workflow).ref
    except DgxPixelsError:
        return None
    return None if ref == workflow.strip() else ref


def _check_types(table: dict, where: str) -> None:
    for key, (ok, what) in _KEY_TYPES.items():
        if key in table and not ok(table[key]):
            raise InvalidArgumentError(f"{where}: {key} must be {what}, got {table[key]!r}")


def _check_targets(jobs: list[BatchJob], path: Path) -> None:
    """Two jobs must not write one asset (the later would silently replace the other) nor
    one output folder (ids that differ only in characters a folder name cannot hold)."""
    from orchestrator.run import safe_filename

    assets: dict[tuple[str, str], str] = {}
    folders: dict[str, str] = {}
    for job in jobs:
        if job.bevy and job.asset_path:
            key = (os.path.normcase(os.path.abspath(os.path.expanduser(job.bevy))), str(job.asset_path).lower())
            if key in assets:
                raise InvalidArgumentError(f"{path}: jobs {assets[key]!r} and {job.id!r} both deploy {job.asset_path} "
                                           f"into {job.bevy}", hint="give each job its own asset_path")
            assets[key] = job.id
        folder = safe_filename(job.id, "job").lower()
        if folder in folders:
            raise InvalidArgumentError(f"{path}: jobs {folders[folder]!r} and {job.id!r} would share the output "
                                       f"folder {folder}", hint="give the jobs ids that differ in letters or digits")
        folders[folder] = job.id


def _rel_file(v: Any, base: Path) -> Any:
    if isinstance(v, str) and v and not os.path.isabs(v) and "\n" not in v and len(v) < 512:
        cand = base / v
        try:
            if cand.is_file():
                return str(cand)
        except OSError:
            pass
    return v


# --------------------------------------------------------------------------- journal


class Journal:
    """Append-only JSON-lines record of every job's state, fsync'ed per record.

    The first record names the journal (``{"journal": id}``); the id makes deploys idempotent
    across reruns of the same journal. A torn last line (crash mid-write) is ignored.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.states: dict[str, dict] = {}
        self.id: str | None = None
        self._lock = threading.Lock()
        self._frozen = False
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # One batch per journal: a second process on the same jobs file (another terminal,
            # a cron run) would submit every unfinished job a second time.
            _lock_exclusive(self._fd, self.path)
            self._load()
        except BaseException:
            self.close()
            raise
        if self._torn:
            os.write(self._fd, b"\n")  # end the torn line so the next record stands alone
        if self.id is None:
            self.id = uuid.uuid4().hex[:12]
            self._append({"journal": self.id, "created": time.time()})

    def _load(self) -> None:
        self._torn = False
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        self._torn = bool(data) and not data.endswith(b"\n")
        for line in data.splitlines():
            try:
                rec = loads_json(line)
            except ValueError:
                continue  # torn write (or a line nested past reading: never one this wrote)
            if not isinstance(rec, dict):
                continue
            if "journal" in rec and self.id is None:
                self.id = str(rec["journal"])
                continue
            job = rec.get("job")
            if job is None:
                continue
            prev = self.states.get(job, {})
            merged = {**prev, **rec}
            self.states[job] = merged

    def _append(self, rec: dict) -> None:
        line = (json.dumps(rec, default=str, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._frozen:
                return
            if self._fd is None:
                raise OSError(9, f"the journal {self.path} is closed")
            os.write(self._fd, line)
            os.fsync(self._fd)

    def record(self, job: str, state: str, **fields) -> None:
        assert state in STATES
        rec = {"job": job, "state": state, "t": round(time.time(), 3), **fields}
        self._append(rec)
        with self._lock:
            self.states[job] = {**self.states.get(job, {}), **rec}

    def state(self, job: str) -> dict:
        return self.states.get(job, {})

    def freeze(self) -> None:
        """Record nothing more: the journal keeps the states as they are now (a batch the user
        quit while jobs still ran)."""
        with self._lock:
            self._frozen = True

    def close(self) -> None:
        with self._lock:
            fd, self._fd = getattr(self, "_fd", None), None
        if fd is None:
            return
        try:
            os.close(fd)  # releases the lock
        except OSError:
            pass

    def __del__(self):  # a Journal dropped unclosed must not keep its jobs file locked
        self.close()


class BatchBusyError(DgxPixelsError):
    """Another process runs the same batch (its journal is locked)."""

    exit_code = 1


def _lock_exclusive(fd: int, path: Path) -> None:
    """Lock the journal open on ``fd`` for this process, or ``BatchBusyError`` at once."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            busy = True
        else:
            busy = False
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = True
        else:
            busy = False
    if busy:
        raise BatchBusyError(
            f"another dgx-pixels batch is running this jobs file (its journal {path} is locked)",
            hint="let it finish, or stop it and rerun; two runs of one batch would run its jobs twice")


def journal_path_for(jobs_file: Path, state_dir: str | os.PathLike | None = None) -> Path:
    """The journal of a jobs file: named after the file itself, links resolved (the same jobs
    reached through a symlink or another path must find the same journal, and its lock: two
    journals ran every job twice)."""
    real = jobs_file.resolve()
    if state_dir:
        digest = hashlib.sha256(str(real).encode()).hexdigest()[:8]
        return Path(state_dir) / f"{real.stem}-{digest}.journal.jsonl"
    return real.with_name(real.name + ".journal.jsonl")


# --------------------------------------------------------------------------- servers


class ServerPool:
    """The servers of a batch; picks the least loaded by ``/queue`` for each new job."""

    def __init__(self, urls: list[str], config: Config):
        self.config = config
        self.clients: dict[str, ComfyClient] = {}
        for u in urls:
            self.client(u)
        self.order = list(self.clients)
        self._lock = threading.Lock()
        self._down_until: dict[str, float] = {}
        self._reserved: dict[str, int] = {u: 0 for u in self.order}
        self._rr = 0

    def client(self, url: str) -> ComfyClient:
        url = normalize_url(url)
        c = self.clients.get(url)
        if c is None:
            c = ComfyClient(url, self.config)
            self.clients[url] = c
            c.events.start()
        return c

    def mark_down(self, url: str, for_s: float = 2.0) -> None:
        self._down_until[url] = time.monotonic() + for_s

    def pick(self, exclude: set[str] | None = None, stop: threading.Event | None = None,
             give_up_after: float = 0.0) -> str:
        """URL of the least-loaded reachable server (waits while all are down)."""
        t0 = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                cands = [u for u in self.order if (not exclude or u not in exclude) and self._down_until.get(u, 0) <= now]
                if not cands and exclude:
                    cands = [u for u in self.order if self._down_until.get(u, 0) <= now]
                best, best_load = None, None
                if len(cands) == 1 and len(self.order) == 1:
                    best = cands[0]
                else:
                    n = len(cands)
                    for k in range(n):
                        u = cands[(self._rr + k) % n]
                        try:
                            load = self.clients[u].queue().load + self._reserved[u]
                        except ServerUnreachableError:
                            self.mark_down(u)
                            continue
                        if best_load is None or load < best_load:
                            best, best_load = u, load
                    self._rr += 1
                if best is not None:
                    self._reserved[best] += 1
                    return best
            if stop is not None and stop.is_set():
                raise JobCancelledError("batch stopped")
            if give_up_after and time.monotonic() - t0 > give_up_after:
                raise ServerUnreachableError(
                    "no ComfyUI server of the batch is reachable: " + ", ".join(self.clients[u].display_url for u in self.order)
                )
            time.sleep(0.5)

    def release(self, url: str) -> None:
        with self._lock:
            if url in self._reserved and self._reserved[url] > 0:
                self._reserved[url] -= 1

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


# --------------------------------------------------------------------------- the batch


class _PreviouslyFailed(DgxPixelsError):
    exit_code = 5


@dataclass
class BatchReport:
    total: int
    done: int
    deployed: int
    failed: int
    skipped: int  # already finished in an earlier run
    resubmitted: int
    cancelled: int
    failures: dict[str, str]
    elapsed_s: float
    journal: str
    # Jobs left for a rerun because every server stayed down through the wait: submitted ones
    # keep their journal record (a rerun re-attaches by prompt id), the others never started.
    unfinished: int = 0
    servers_down: str | None = None  # why the batch stopped early, when it did


def _outputs_from_json(items: list[dict]) -> list[OutputFile]:
    return [OutputFile(**o) for o in items]


def _outputs_intact(items: list[dict]) -> bool:
    if not items:
        return False
    for o in items:
        try:
            data = Path(o["path"]).read_bytes()
        except (OSError, KeyError):
            return False
        if len(data) != o.get("size") or hashlib.sha256(data).hexdigest() != o.get("sha256"):
            return False
    return True


class BatchRunner:
    """Runs a ``JobsFile``; see the module docstring. ``run()`` returns a ``BatchReport``."""

    def __init__(
        self,
        jobs_file: JobsFile,
        config: Config,
        *,
        servers: list[str] | None = None,
        in_flight: int | None = None,
        out_dir: str | os.PathLike | None = None,
        journal_path: str | os.PathLike | None = None,
        on_event: EventFn | None = None,
        cancel: threading.Event | None = None,
        failover_after: float | None = None,
        detach_on_cancel: bool = False,
        retry_failed: bool = True,
    ):
        self.jf = jobs_file
        self.config = config
        urls = servers or jobs_file.servers or list(config.servers)
        self.urls = [normalize_url(u) for u in urls]
        self.in_flight = in_flight or jobs_file.in_flight or config.in_flight
        self.out_dir = Path(out_dir) if out_dir else (jobs_file.out or jobs_file.path.with_name(jobs_file.path.stem + ".out"))
        self.journal = Journal(journal_path or journal_path_for(jobs_file.path))
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        if failover_after is not None and (isinstance(failover_after, bool) or not isinstance(failover_after, (int, float))
                                           or not 0 < failover_after < float("inf")):
            raise InvalidArgumentError(f"failover_after must be a positive number of seconds, got {failover_after!r}")
        # One server: nowhere to move to, so wait longer for it (a restart, a model load);
        # an explicit value is the user's say, with any number of servers.
        self.down_timeout = float(failover_after) if failover_after is not None else (
            60.0 if len(self.urls) > 1 else 300.0)
        self.detach_on_cancel = detach_on_cancel
        self.retry_failed = retry_failed
        self.pool: ServerPool | None = None
        self._counts_lock = threading.Lock()
        self.counts = {"done": 0, "deployed": 0, "failed": 0, "skipped": 0, "resubmitted": 0, "cancelled": 0}
        self.failures: dict[str, str] = {}
        self._in_flight_now = 0
        # Servers that stayed down through a whole wait. Once it holds all of them the batch
        # stops: every further job would only wait out the same timeout again.
        self._lost: set[str] = set()
        self._halt: ServerUnreachableError | None = None
        self._deploying: set[str] = set()  # jobs between "done" and "deployed"

    def emit(self, event: str, **fields) -> None:
        if self.on_event is not None:
            fields["event"] = event
            fields.setdefault("t", time.time())
            self.on_event(fields)

    # -- preparation ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Resolve every job's workflow and parameters before anything is submitted; all
        problems are reported together."""
        problems = []
        info_cache: dict = {}

        def object_info():
            # from the first server that answers: one that is down must not stop a batch the
            # others can run
            for url in self.urls:
                if "x" in info_cache:
                    break
                c = ComfyClient(url, self.config)
                try:
                    info_cache["x"] = c.object_info()
                except ServerUnreachableError as exc:
                    info_cache["error"] = exc
                finally:
                    c.close()
            if "x" not in info_cache:
                raise info_cache["error"]
            return info_cache["x"]

        from comfy_nodes.pixel.bevy_export import check_bevy_project, require_project_folder, resolve_bevy_version
        from comfy_nodes.pixel.errors import ExportError

        if self.out_dir.exists() and not self.out_dir.is_dir():
            # found before anything runs, not as every job's failure after its generation
            raise InvalidArgumentError(f"the output folder {self.out_dir} is a file; nothing was submitted",
                                       hint="move that file, or give another folder with --out (or out = in the jobs file)")
        checked: set[tuple[str, str]] = set()
        for job in self.jf.jobs:
            try:
                if job.asset_path and not str(job.asset_path).endswith("/") \
                        and not str(job.asset_path).lower().endswith(".png"):
                    raise InvalidArgumentError(f"asset path {job.asset_path!r} must end in .png (or / for a folder "
                                               "that keeps the output names)", hint="e.g. sprites/knight.png")
                if job.bevy and (job.bevy, job.bevy_version) not in checked:
                    # a mistyped project must not surface only after its job has run
                    require_project_folder(job.bevy)
                    check_bevy_project(job.bevy, job.bevy_version)
                    resolve_bevy_version(job.bevy, job.bevy_version)
                    checked.add((job.bevy, job.bevy_version))
                job.spec = prepare_job(job.workflow, job.values, fresh=job.fresh, object_info=object_info)
                if job.bevy:
                    drop_server_exports(job.spec)
            except (WorkflowError, InvalidArgumentError, ExportError) as exc:
                problems.append((job.id, exc))
        if not problems:
            problems = self._missing_models(info_cache)
        if problems:
            first = problems[0][1]
            lines = [f"job{'s' if ', ' in jid else ''} {jid}: {exc.message}" for jid, exc in problems[:10]]
            if len(problems) > 10:
                lines.append(f"... and {len(problems) - 10} more")
            err = type(first)("; ".join(lines) if len(problems) > 1 else lines[0], hint=first.hint)
            raise err

    def _missing_models(self, info_cache: dict) -> list[tuple[str, DgxPixelsError]]:
        """(job id, ``MissingModelError``) for each job loading a model file that a server of
        the batch does not have. Checked before anything is submitted: otherwise each job is
        rejected on its own (a "failed" job, exit 5) and the batch stops half done, where its
        help promises exit 4 with nothing submitted for a workflow that cannot run."""
        from orchestrator.client import MissingModelError
        from orchestrator.validate import missing_models_hint, missing_models_message, validate_prompt

        jobs = [j for j in self.jf.jobs if j.spec is not None and j.spec.models]
        if not jobs:
            return []
        found: dict[str, tuple[list[str], str]] = {}  # message -> (job ids, hint): one line per message
        for url in self.urls:
            if url == self.urls[0] and "x" in info_cache:
                info = info_cache["x"]
            else:
                c = ComfyClient(url, self.config)
                try:
                    info = c.object_info()
                except ServerUnreachableError:
                    continue  # run() reports servers that do not answer; a job sent there waits
                finally:
                    c.close()
            where = f" (on {self.config.mask(url)})" if len(self.urls) > 1 else ""
            for job in jobs:
                missing = validate_prompt(job.spec.prompt, info).missing_model_files()
                if missing and not any(job.id in ids for ids, _ in found.values()):
                    ids, _ = found.setdefault(missing_models_message(missing) + where, ([], missing_models_hint(missing)))
                    ids.append(job.id)
        return [(", ".join(ids), MissingModelError(msg, hint=hint)) for msg, (ids, hint) in found.items()]

    # -- one job -------------------------------------------------------------------------
    def _bump(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[key] += n

    def _progress(self) -> None:
        total = len(self.jf.jobs)
        with self._counts_lock:
            done = self.counts["done"]
            failed = self.counts["failed"]
            inflight = self._in_flight_now
        self.emit("batch_progress", done=done, total=total, failed=failed, in_flight=inflight)

    def _job_out(self, job: BatchJob) -> Path:
        from orchestrator.run import safe_filename

        return self.out_dir / safe_filename(job.id, "job")

    def _run_job(self, job: BatchJob) -> str:
        """Do what is left of one job; returns "skipped" (finished earlier) or "ran"."""
        st = self.journal.state(job.id)
        if st.get("key") not in (None, job.key):
            st = {}  # the job's definition changed: it is a new job
        state = st.get("state", "pending")
        if state == "failed" and not self.retry_failed:
            raise _PreviouslyFailed(st.get("error", "failed in an earlier run"))
        if state == "failed" and st.get("phase") == "deploy" and st.get("prompt_id"):
            # It ran and was downloaded; only writing into the project failed (a folder in the
            # way, no space): deploy what was collected, not a second generation of it.
            state = "done"
        if state == "deployed" or (state == "done" and not job.bevy and _outputs_intact(st.get("outputs", []))):
            return "skipped"
        result: RunResult | None = None
        client: ComfyClient | None = None
        if state == "done" and _outputs_intact(st.get("outputs", [])):
            client = self.pool.client(st["server"])
            result = self._result_from_state(job, st)
        else:
            result, client = self._execute(job, st if state in ("submitted", "done") else {})
        if job.bevy and job.asset_path:
            from orchestrator.deploy import deploy_outputs

            with self._counts_lock:
                self._deploying.add(job.id)
            # The job's key is part of the id: a job edited between runs is a new deploy, not
            # one the manifest already has (which would leave the old asset in the game).
            assets = deploy_outputs(
                result, job.bevy, job.asset_path, overwrite=job.overwrite, upscale=job.upscale,
                bevy_version=job.bevy_version, client=client,
                deploy_id=f"{self.journal.id}:{job.id}:{job.key}", on_event=self.on_event, label=job.id,
                prompt=job.spec.prompt,
            )
            with self._counts_lock:
                self._deploying.discard(job.id)
            self.journal.record(job.id, "deployed", key=job.key, assets=[a.to_json() for a in assets])
            self._bump("deployed")
        return "ran"

    def _result_from_state(self, job: BatchJob, st: dict) -> RunResult:
        spec = job.spec
        return RunResult(
            prompt_id=st["prompt_id"], server=st["server"], workflow=spec.workflow, content_hash=spec.content_hash,
            params=spec.params, seed=spec.seed, outputs=_outputs_from_json(st["outputs"]), cached=st.get("cached", False),
            elapsed_s=0.0, models=spec.models,
            sheets=st["sheets"] if isinstance(st.get("sheets"), dict) else {},
        )

    def _wait_back(self, url: str, limit: float) -> bool:
        """Wait until ``url`` answers again (True) or ``limit`` seconds pass (False)."""
        client = self.pool.client(url)
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if self.cancel.is_set():
                raise JobCancelledError("batch stopped")
            if client.ping():
                return True
            time.sleep(0.5)
        return False

    def _gone(self, url: str) -> None:
        """``url`` stayed down through a whole wait; ``ServerUnreachableError`` (stopping the
        batch) when every server has."""
        with self._counts_lock:
            self._lost.add(url)
            every = self._lost >= set(self.pool.order)
        # one may have come back while this job waited for another
        back = [u for u in self.pool.order if self.pool.client(u).ping()] if every else []
        with self._counts_lock:
            self._lost.difference_update(back)
            if self._halt is None and self._lost >= set(self.pool.order):
                names = ", ".join(self.pool.clients[u].display_url for u in self.pool.order)
                self._halt = ServerUnreachableError(
                    (f"no ComfyUI server of the batch ({names}) answered" if len(self.pool.order) > 1
                     else f"the ComfyUI server {names} did not answer") + f" for {self.down_timeout:g} s; the batch stopped",
                    hint="start ComfyUI again and rerun the same command: finished jobs are skipped and "
                         "submitted ones are collected, never run twice (--failover-after sets the wait)")
            halt = self._halt
        if halt is not None:
            raise halt

    def _wait_any_back(self, limit: float) -> str | None:
        """The first server to answer within ``limit`` seconds (None when none does)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if self.cancel.is_set():
                raise JobCancelledError("batch stopped")
            for u in self.pool.order:
                if self.pool.client(u).ping():
                    with self._counts_lock:
                        self._lost.discard(u)
                    return u
            time.sleep(0.5)
        return None

    def _execute(self, job: BatchJob, st: dict) -> tuple[RunResult, ComfyClient]:
        t0 = time.monotonic()
        many = len(self.urls) > 1
        down_timeout = self.down_timeout
        exclude: set[str] = set()
        attach_pid = st.get("prompt_id") if st.get("state") in ("submitted", "done") else None
        url = normalize_url(st["server"]) if attach_pid else None
        while True:
            reserved = False
            if url is None:
                if self._halt is not None:
                    raise self._halt
                try:
                    url = self.pool.pick(exclude, self.cancel, give_up_after=down_timeout)
                except ServerUnreachableError:
                    for u in self.pool.order:
                        self._gone(u)
                    raise
                reserved = True
            client = self.pool.client(url)
            run = JobRun(client, job.spec, on_event=self.on_event, cancel=self.cancel,
                         timeout=self.config.job_timeout, down_timeout=down_timeout, label=job.id)
            run.cancel_remote_on_cancel = not self.detach_on_cancel
            phase = "submit"
            try:
                if attach_pid:
                    run.attach(attach_pid)
                else:
                    pid = run.new_prompt_id()
                    # Recorded BEFORE the POST: a crash in between leaves an id the server
                    # does not know, which a rerun submits; never one it runs twice.
                    self.journal.record(job.id, "submitted", key=job.key, prompt_id=pid, server=url)
                    run.submit()
                    with self._counts_lock:
                        self._lost.discard(url)
                if reserved:
                    self.pool.release(url)
                    reserved = False
                phase = "follow"
                entry = run.wait()
                outputs = run.collect(entry, self._job_out(job))
            except ServerUnreachableError as exc:
                if reserved:
                    self.pool.release(url)
                run.close()
                self.pool.mark_down(url, 5.0)
                # Lost the server while confirming or downloading (or, with one server, at any
                # point): give it the grace a running job gets, then ask about the same prompt
                # id. With several servers a failed POST moves on at once (nothing was accepted,
                # or, on a lost answer, a partitioned server may run the job twice; deploys stay
                # exactly-once by journal id).
                grace = not isinstance(exc, ServerLostError) and run.prompt_id is not None and (phase != "submit" or not many)
                if grace and self._wait_back(url, down_timeout):
                    attach_pid = run.prompt_id
                    continue
                if grace or isinstance(exc, ServerLostError):
                    self._gone(url)
                if many:
                    # The server stayed down past failover_after (or refused the POST): move on.
                    if exclude | {url} >= set(self.pool.order):
                        # Every server failed this job: wait for any of them once, not in a
                        # circle of refused POSTs.
                        if self._wait_any_back(down_timeout) is None:
                            for u in self.pool.order:
                                self._gone(u)
                        exclude.clear()
                    else:
                        exclude.add(url)
                    self.emit("failover", job=job.id, **{"from": client.display_url}, to="another server",
                              reason=exc.message, message=f"[{job.id}] {client.display_url} is down; moving the job")
                    attach_pid = None
                    url = None
                    continue
                raise
            except BaseException:
                if reserved:
                    self.pool.release(url)
                run.close()
                raise
            if run.resubmitted:
                self._bump("resubmitted", run.resubmitted)
            from orchestrator.sheet_deploy import sheet_records

            result = RunResult(
                prompt_id=run.prompt_id, server=client.display_url, workflow=job.spec.workflow,
                content_hash=job.spec.content_hash, params=job.spec.params, seed=job.spec.seed, outputs=outputs,
                cached=bool(outputs) and all(o.cached for o in outputs), elapsed_s=time.monotonic() - t0,
                resubmitted=run.resubmitted, models=job.spec.models, sheets=sheet_records(entry.get("outputs")),
            )
            self.journal.record(job.id, "done", key=job.key, prompt_id=run.prompt_id, server=url,
                                outputs=[o.__dict__ for o in outputs], cached=result.cached, sheets=result.sheets)
            return result, client

    # -- the loop ------------------------------------------------------------------------
    def _check_some_server_answers(self) -> None:
        """``ServerUnreachableError`` now when jobs are left to run and no server answers: the
        wait for a server that went down (``failover_after``: 60 s, or 300 s with one server) is
        for one lost mid-batch, not for a wrong address or a server never started."""
        def finished(job: BatchJob) -> bool:
            st = self.journal.state(job.id)
            return st.get("key") in (None, job.key) and (st.get("state") == "deployed" or (
                st.get("state") == "done" and _outputs_intact(st.get("outputs", []))))

        if all(finished(j) for j in self.jf.jobs):
            return
        if not any(self.pool.client(u).ping() for u in self.pool.order):
            self.pool.close()
            self.journal.close()
            raise ServerUnreachableError(
                "no ComfyUI server of the batch is reachable: "
                + ", ".join(self.pool.clients[u].display_url for u in self.pool.order),
                hint="start ComfyUI or fix --server / the jobs file's servers; nothing was submitted, rerun when "
                     "one answers")

    def run(self) -> BatchReport:
        t0 = time.monotonic()
        if self.jf.jobs and self.jf.jobs[0].spec is None:
            self.prepare()
        self.pool = ServerPool(self.urls, self.config)
        self._check_some_server_answers()
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for job in self.jf.jobs:
            todo.put(job)
        n_workers = max(1, min(self.in_flight, len(self.jf.jobs)))
        finished: list[threading.Event] = []

        def worker(done: threading.Event):
            try:
                work()
            finally:
                done.set()

        def work():
            while not self.cancel.is_set() and self._halt is None:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                with self._counts_lock:
                    self._in_flight_now += 1
                try:
                    outcome = self._run_job(job)
                    self._bump("done")
                    if outcome == "skipped":
                        self._bump("skipped")
                except ServerUnreachableError as exc:
                    if self._halt is None:
                        self._failed(job, exc)
                    else:
                        # Left as the journal has it (submitted: a rerun re-attaches).
                        self.emit("job_unfinished", job=job.id, reason=self.config.mask(exc.message))
                        return
                except JobCancelledError:
                    self._bump("cancelled")
                    if not self.detach_on_cancel:
                        # The remote job was removed/interrupted: a rerun starts it afresh.
                        self.journal.record(job.id, "cancelled", key=job.key)
                    return
                except DgxPixelsError as exc:
                    self._failed(job, exc)
                except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the batch
                    msg = self.config.mask(f"{type(exc).__name__}: {exc}")
                    self.failures[job.id] = msg
                    self.journal.record(job.id, "failed", key=job.key, error=msg, exit_code=1,
                                        phase=self._failed_phase(job))
                    self._bump("failed")
                    self.emit("job_failed", job=job.id, error=msg, exit_code=1)
                finally:
                    with self._counts_lock:
                        self._in_flight_now -= 1
                self._progress()

        # The main thread waits on events, not Thread.join: a join that Ctrl-C interrupts marks
        # a thread that still runs as finished (CPython 3.11/3.12), and the batch returned at
        # once while its job went on running on the server.
        try:
            for _ in range(n_workers):
                finished.append(threading.Event())
                threading.Thread(target=worker, args=(finished[-1],), name="dgx-pixels-batch", daemon=True).start()
            for done in finished:
                while not done.wait(0.2):
                    pass
        except KeyboardInterrupt:
            self.cancel.set()
            with self._counts_lock:
                running = self._in_flight_now
            if running:
                what = "leaving them on the server (--detach)" if self.detach_on_cancel else "taking them off the server"
                self.emit("info", message=f"stopping: {running} job(s) running, {what}; Ctrl-C again to quit at once")
            deadline = time.monotonic() + CANCEL_WAIT_S
            try:
                for done in finished:
                    done.wait(max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt:
                # A second Ctrl-C (or SIGTERM) quits without waiting. The jobs still running stay
                # 'submitted' in the journal, so a rerun finds them on the server and collects
                # them: what their threads do from now on (failing as the connections close) is
                # neither recorded nor shown.
                self.emit("info", message="quitting: jobs still running stay on the server; a rerun collects them")
                self.on_event = None
                self.journal.freeze()
        finally:
            self.pool.close()
            self.journal.close()
        c = self.counts
        halted = self._halt is not None and not self.cancel.is_set()
        return BatchReport(
            total=len(self.jf.jobs), done=c["done"] - c["skipped"], deployed=c["deployed"], failed=c["failed"],
            skipped=c["skipped"], resubmitted=c["resubmitted"], cancelled=c["cancelled"], failures=dict(self.failures),
            elapsed_s=time.monotonic() - t0, journal=str(self.journal.path),
            unfinished=(len(self.jf.jobs) - c["done"] - c["failed"] - c["cancelled"]) if halted else 0,
            servers_down=self.config.mask(self._halt.message) if halted else None,
        )

    def _failed(self, job: BatchJob, exc: DgxPixelsError) -> None:
        msg = self.config.mask(exc.message)
        self.failures[job.id] = msg
        # (not retried this time: the phase it failed in stays as recorded)
        phase = (self.journal.state(job.id).get("phase", "run") if isinstance(exc, _PreviouslyFailed)
                 else self._failed_phase(job))
        self.journal.record(job.id, "failed", key=job.key, error=msg, exit_code=exc.exit_code, phase=phase)
        self._bump("failed")
        self.emit("job_failed", job=job.id, error=msg, exit_code=exc.exit_code)

    def _failed_phase(self, job: BatchJob) -> str:
        """"deploy" when ``job`` failed writing its collected outputs into the project (a rerun
        deploys them again), else "run" (a rerun runs the job again)."""
        with self._counts_lock:
            deploying = job.id in self._deploying
            self._deploying.discard(job.id)
        return "deploy" if deploying else "run"
