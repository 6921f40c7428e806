"""One job on a ComfyUI server: submit, follow, confirm, collect.

The library entry point is :func:`run_workflow`; the CLI's ``run`` and ``batch`` and the MCP
server use it (or :class:`JobRun` directly, to re-attach to a job submitted earlier).

How a job is followed:

- The prompt id is chosen here (a uuid4) and known BEFORE ``POST /prompt``: the batch journal
  records it first, and whoever re-attaches later asks the server about that id.
- Completion is the ``executing`` message with ``node: null`` (or ``execution_success``) for
  our prompt id, and is CONFIRMED by ``/history/<id>`` (ComfyUI answers ``{}`` there both
  before completion and for an unknown id, so history alone cannot tell "still running").
- When the websocket is quiet for ``poll_interval`` seconds, or drops and comes back, the job
  asks the server where the prompt is (``/queue`` first, then ``/history``). A prompt the
  server knows is never submitted again. Only when the server knows it in neither place (it
  restarted and lost its in-memory queue) is the same prompt resubmitted, under the same id,
  and an event says so.
- A cancel (Ctrl-C, or the ``cancel`` hook) deletes the prompt from the queue if it is pending
  and interrupts it if it is running.
- Outputs come from ``/history`` (also when ComfyUI served the whole prompt from its cache and
  wrote no new file: the history then names the files of the earlier run). File names and
  subfolders the server sends are untrusted: each is reduced to a safe base name and written
  (atomically) strictly inside the output folder.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from comfy_nodes.pixel.errors import DgxPixelsError, InvalidArgumentError, PathEscapeError
from orchestrator.client import DISCONNECTED, PREVIEW, RECONNECTED, ComfyClient, PromptRejectedError
from orchestrator.config import Config
from orchestrator.errors import ExecutionError, JobTimeoutError, ParameterError, ServerUnreachableError, WorkflowError

EventFn = Callable[[dict], None]
CancelHook = Callable[[], bool]

# Nodes whose "image" input names a file in ComfyUI's input folder: a local path given there
# is uploaded first.
UPLOAD_NODES = {"LoadImage": "image", "LoadImageMask": "image"}
# Inputs that name model files, for the provenance record.
MODEL_INPUTS = ("ckpt_name", "lora_name", "vae_name", "unet_name", "clip_name", "clip_name1", "clip_name2",
                "control_net_name", "model_name", "upscale_model", "style_model_name", "gligen_name")
SEED_INPUTS = ("seed", "noise_seed")
NONCE_INPUT = "dgx_pixels_nonce"
MAX_OUTPUT_BYTES = 512 << 20


class JobCancelledError(DgxPixelsError):
    """The job was cancelled here (Ctrl-C or the cancel hook); the remote job was stopped too."""

    exit_code = 130
    default_hint = ""


class ServerLostError(ServerUnreachableError):
    """The server of a running job stayed unreachable longer than ``down_timeout``."""

    default_hint = "check the server; `dgx-pixels batch` moves such jobs to another server"


class JobInterruptedError(ExecutionError):
    """Someone interrupted the job on the server (another client, the web UI)."""

    default_hint = "run it again"


# --------------------------------------------------------------------------- job description


@dataclass
class JobSpec:
    """Everything needed to submit one job and to say later where its outputs came from.

    ``prompt`` is the API-format graph; ``output_nodes`` the node ids that must each produce
    at least one file (``None``: any output node's files, at least one in all).
    """

    prompt: dict
    workflow: str
    content_hash: str | None = None
    params: dict = field(default_factory=dict)
    seed: int | None = None
    output_nodes: tuple[str, ...] | None = None
    models: tuple[str, ...] = ()
    uploads: tuple[str, ...] = ()  # "node_id.input" holding a local image path to upload
    # image-file parameters left at their default: a placeholder the server may not hold
    default_images: tuple[str, ...] = ()
    # "param|node_id.input" of image-file values that look like local paths but name no local
    # file: the server's input folder may hold them, and if it does not, its rejection is a typo
    maybe_local: tuple[str, ...] = ()
    # parameter -> the "node_id.input" it sets: a failing node's inputs said as --set names
    param_targets: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "JobSpec":
        d = dict(d)
        if d.get("output_nodes") is not None:
            d["output_nodes"] = tuple(d["output_nodes"])
        d["models"] = tuple(d.get("models") or ())
        d["uploads"] = tuple(d.get("uploads") or ())
        d["default_images"] = tuple(d.get("default_images") or ())
        d["maybe_local"] = tuple(d.get("maybe_local") or ())
        return cls(**d)


@dataclass
class OutputFile:
    """One output file: where the server had it and where it is now, with its hash."""

    node_id: str
    node_type: str
    server_filename: str
    server_subfolder: str
    server_type: str
    path: str
    sha256: str
    size: int
    cached: bool = False


@dataclass
class RunResult:
    """A finished job: its outputs on disk, whether ComfyUI served them from its cache, and
    the facts the provenance record needs."""

    prompt_id: str
    server: str
    workflow: str
    content_hash: str | None
    params: dict
    seed: int | None
    outputs: list[OutputFile]
    cached: bool
    elapsed_s: float
    resubmitted: int = 0
    models: tuple[str, ...] = ()
    comfyui_version: str | None = None
    #: the grids the job's sheet nodes laid their sheets out on (node id -> record, see
    #: ``sheet_deploy.sheet_records``)
    sheets: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _emit(on_event: EventFn | None, event: str, **fields) -> None:
    if on_event is not None:
        fields["event"] = event
        fields.setdefault("t", time.time())
        on_event(fields)


def _as_cancel_hook(cancel) -> CancelHook | None:
    if cancel is None:
        return None
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return cancel
    raise InvalidArgumentError("cancel must be a threading.Event or a function returning bool")


# --------------------------------------------------------------------------- preparing a job


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)


def find_models(prompt: dict) -> tuple[str, ...]:
    """Model file names a prompt loads (checkpoints, LoRAs, VAEs, ...), sorted, unique."""
    out = set()
    for node in prompt.values():
        for k, v in (node.get("inputs") or {}).items():
            if k in MODEL_INPUTS and isinstance(v, str) and v:
                out.add(v)
    return tuple(sorted(out))


def _generation_seeds(prompt: dict):
    """(inputs dict, key) of every seed input holding a number on a sampler or noise node, in
    node order. Another node's seed (Palette Extract's k-means) is part of the locked graph,
    not the generation's."""
    for nid in sorted(prompt, key=_node_order):
        kind = str(prompt[nid].get("class_type", "")).lower()
        if "sampler" not in kind and "noise" not in kind:
            continue
        inputs = prompt[nid].get("inputs") or {}
        for k in SEED_INPUTS:
            if isinstance(inputs.get(k), int) and not isinstance(inputs[k], bool):
                yield inputs, k


def _reseed(prompt: dict) -> None:
    """A new random seed in every sampler's or noise node's seed input that holds a number: a
    file (or prompt) has no ``seed`` parameter to draw, and with the seed it was saved with,
    ``--fresh`` ran the same generation again (the editor's "randomize" acts after a queue)."""
    for inputs, k in _generation_seeds(prompt):
        inputs[k] = random.randrange(0, 2**48)


def find_seed(prompt: dict, params: dict | None = None) -> int | None:
    """The seed the job generates with: the ``seed`` parameter, else the first seed input of a
    sampler or noise node (see :func:`_generation_seeds`): recorded as "seed 0", Palette
    Extract's k-means seed made a model-free cleanup look generated."""
    if params and isinstance(params.get("seed"), int):
        return int(params["seed"])
    return next((inputs[k] for inputs, k in _generation_seeds(prompt)), None)


def _node_order(nid: str):
    return (0, int(nid)) if nid.isdigit() else (1, nid)


def load_prompt_file(path: str | os.PathLike, object_info=None) -> dict:
    """An API-format prompt from a JSON file; an editor (UI) file is converted first.

    ``object_info`` (the server's ``/object_info`` dict, or a function returning it) is needed
    only for editor files: the meaning of their widget values depends on the node definitions.
    """
    from comfy_nodes.pixel.asset_manifest import loads_json

    p = Path(path)
    try:
        data = loads_json(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file not found: {p}",
                            hint="check the path, or name a registered workflow (`dgx-pixels workflows list`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkflowError(f"{p} is not a JSON workflow: {exc}",
                            hint="give an API-format prompt (ComfyUI: Workflow > Export (API)) or a workflow saved "
                                 "from ComfyUI's editor") from None
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        try:
            from orchestrator import convert
        except ImportError:
            raise WorkflowError(
                f"{p} is an editor (UI) workflow and this install has no converter",
                hint="export it with 'Export (API)' in ComfyUI, or update dgx-pixels",
            ) from None
        info = object_info() if callable(object_info) else object_info
        try:
            data = convert.to_api(data, info)
        except WorkflowError as exc:
            raise WorkflowError(f"{p}: {exc.message}", hint=exc.hint) from None
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict) and "class_type" not in data["prompt"]:
        data = data["prompt"]
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        raise WorkflowError(
            f"{p} is neither an API-format prompt (node id → {{class_type, inputs}}) nor an editor workflow"
        )
    return data


def _workflow_registry():
    try:
        from orchestrator import workflows
    except ImportError:
        return None
    return workflows


def prepare_job(workflow: Any, values: dict | None = None, *, fresh: bool = False, object_info=None) -> JobSpec:
    """Turn a workflow reference and parameter values into a ``JobSpec``.

    ``workflow`` is ``"name@version"`` (or ``"name"``: the newest version) from the registry,
    a registry ``Workflow`` object, a path to a ``.json`` file (API or editor format) or an
    API-format prompt dict. ``values`` are parameter values (only for registry workflows).
    ``fresh``: make ComfyUI run the job again instead of answering from its cache (a random
    seed when the workflow has a ``seed`` parameter that was not given, or, for a file or a
    prompt, in its samplers' and noise nodes' seed inputs; and a nonce on the output nodes so a
    new file is written). ``object_info``: see ``load_prompt_file``.
    """
    values = dict(values or {})
    if isinstance(workflow, dict):
        if values:
            raise InvalidArgumentError("--set needs a registered workflow (NAME@VERSION), not a raw prompt")
        spec = JobSpec(prompt=json.loads(json.dumps(workflow)), workflow="<prompt>",
                       content_hash=_hash_prompt(workflow))
    elif is_workflow_file(workflow):
        if os.path.isdir(workflow):
            raise WorkflowError(f"{workflow} is a folder, not a workflow file",
                                hint="name its workflow .json file, or a registered workflow NAME@VERSION")
        if not os.path.isfile(workflow):
            raise WorkflowError(f"workflow file not found: {workflow}",
                                hint="check the path, or name a registered workflow (`dgx-pixels workflows list`)")
        if values:
            raise InvalidArgumentError(
                f"--set needs a registered workflow (NAME@VERSION); {workflow} is a file",
                hint="edit the values in the file, or register it under workflows/",
            )
        prompt = load_prompt_file(workflow, object_info)
        spec = JobSpec(prompt=prompt, workflow=str(workflow), content_hash=_hash_prompt(prompt))
    else:
        spec = _prepare_registered(workflow, values, fresh=fresh)
    if fresh and (isinstance(workflow, dict) or is_workflow_file(workflow)):
        _reseed(spec.prompt)
    if fresh:
        _add_nonce(spec)
    spec.seed = find_seed(spec.prompt, spec.params) if spec.seed is None else spec.seed
    spec.models = find_models(spec.prompt)
    return spec


def _check_local_image(path: str, param: str) -> None:
    """``ParameterError`` naming the local file when it is no image: uploaded as it is, the
    server would fail on a temp name the user never gave."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ParameterError(f"parameter {param!r}: {path} is not a readable image ({exc})",
                             hint="give a PNG, JPEG or WebP file") from None


#: Nodes that write a game's assets on the ComfyUI machine: left out of a job whose outputs are
#: deployed here (``drop_server_exports``).
SERVER_EXPORT_NODES = ("DGXPixelsBevyExport",)


def drop_server_exports(spec: JobSpec) -> list[str]:
    """Leave the graph's own Bevy Export nodes out of a job whose outputs this machine deploys
    (``run --bevy``, ``batch``, ``demo``, the MCP server's ``generate``): they wrote a second
    copy on the server (``output/bevy/my_game``), one more file with every run under the
    shipped graphs' "version" policy. Only nodes nothing else reads, and only while another
    output node is left (the server refuses a graph without one). Returns the ids left out."""
    prompt = spec.prompt
    linked = {str(v[0]) for n in prompt.values() for v in (n.get("inputs") or {}).values() if _is_link(v)}
    drop = [nid for nid, n in prompt.items()
            if n.get("class_type") in SERVER_EXPORT_NODES and nid not in linked and nid not in (spec.output_nodes or ())]
    left = [nid for nid in (spec.output_nodes or ()) if nid not in drop] or [
        nid for nid, n in prompt.items() if nid not in drop and str(n.get("class_type", "")).startswith(("SaveImage", "PreviewImage"))]
    if not drop or not left:
        return []
    for nid in drop:
        del prompt[nid]
    return drop


def is_workflow_file(workflow: Any) -> bool:
    """Whether ``workflow`` names a workflow .json file (a path) rather than a registered
    NAME@VERSION."""
    return (isinstance(workflow, (str, os.PathLike)) and (str(workflow).endswith(".json") or os.path.sep in str(workflow))
            and not _looks_like_ref(str(workflow)))


def _looks_like_ref(s: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-]+(@[A-Za-z0-9_.\-]+)?", s)) and not s.endswith(".json")


def _hash_prompt(prompt: dict) -> str:
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _prepare_registered(workflow: Any, values: dict, *, fresh: bool) -> JobSpec:
    if isinstance(workflow, str):
        mod = _workflow_registry()
        if mod is None:
            raise WorkflowError(
                f"unknown workflow {workflow!r}: this install has no workflow registry",
                hint="pass a workflow .json file instead",
            )
        wf = mod.load_registry().get(workflow)
    else:
        wf = workflow
    names = _param_names(wf)
    if fresh and "seed" in names and "seed" not in values:
        values["seed"] = random.randrange(0, 2**48)
    prompt = wf.build_prompt(values)
    prompt = getattr(prompt, "prompt", prompt)
    ref = f"{wf.name}@{wf.version}"
    outs = getattr(wf, "outputs", None)
    output_nodes = None
    if outs:
        ids = []
        for o in outs:
            nid = getattr(o, "node", None) or getattr(o, "node_id", None) or (o if isinstance(o, str) else None)
            if nid is not None and str(nid) in prompt:
                ids.append(str(nid))
        output_nodes = tuple(ids) or None
    full = dict(_defaults_of(wf))
    full.update(values)
    # Record the values as the graph got them (coerced: "--set scale=3" is the int 3).
    params = getattr(wf, "params", None)
    if isinstance(params, dict):
        for name, p in params.items():
            targets = getattr(p, "targets", None) or []
            if targets:
                nid, _, inp = str(targets[0]).partition(".")
                node_inputs = prompt.get(nid, {}).get("inputs") or {}
                if inp in node_inputs and not _is_link(node_inputs[inp]):
                    full[name] = node_inputs[inp]
    uploads = []
    maybe_local = []
    params = getattr(wf, "params", None)
    if isinstance(params, dict):
        for name, p in params.items():
            if getattr(p, "type", None) == "image-file":
                for target in getattr(p, "targets", []) or []:
                    nid, _, inp = str(target).partition(".")
                    v = (prompt.get(nid, {}).get("inputs") or {}).get(inp)
                    if isinstance(v, str) and os.path.isfile(v):
                        _check_local_image(v, name)
                        uploads.append(f"{nid}.{inp}")
                    elif name in values and looks_like_local_path(v):
                        maybe_local.append(f"{name}|{nid}.{inp}")
    default_images = tuple(name for name, p in (params or {}).items()
                           if getattr(p, "type", None) == "image-file" and name not in values) if isinstance(params, dict) else ()
    targets = {name: [str(t) for t in getattr(p, "targets", None) or []]
               for name, p in (params.items() if isinstance(params, dict) else ())}
    return JobSpec(prompt=prompt, workflow=ref, content_hash=getattr(wf, "content_hash", None), params=full,
                   output_nodes=output_nodes, uploads=tuple(uploads), default_images=default_images,
                   maybe_local=tuple(maybe_local), param_targets=targets)


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def looks_like_local_path(value: Any) -> bool:
    """Whether an image parameter's value reads as a path on this machine (a folder part or an
    image file extension) rather than a name only the server knows."""
    return isinstance(value, str) and bool(value) and (
        "/" in value or os.sep in value or value.lower().endswith(_IMAGE_SUFFIXES))


def _param_names(wf) -> set[str]:
    params = getattr(wf, "params", None) or {}
    if isinstance(params, dict):
        return set(params)
    return {getattr(p, "name", None) for p in params} - {None}


def _defaults_of(wf) -> dict:
    params = getattr(wf, "params", None) or {}
    items = params.values() if isinstance(params, dict) else params
    out = {}
    for p in items:
        name = getattr(p, "name", None)
        if name is not None and getattr(p, "default", None) is not None:
            out[name] = p.default
    return out


def _add_nonce(spec: JobSpec) -> None:
    nonce = uuid.uuid4().hex[:16]
    targets = spec.output_nodes or tuple(
        nid for nid, n in spec.prompt.items() if "Save" in n.get("class_type", "") or n.get("class_type", "").startswith("DGXPixels") and "Export" in n.get("class_type", "")
    )
    if not targets:
        # Unknown output nodes: every node without downstream links gets the nonce.
        used = {v[0] for n in spec.prompt.values() for v in (n.get("inputs") or {}).values() if _is_link(v)}
        targets = tuple(nid for nid in spec.prompt if nid not in used)
    for nid in targets:
        spec.prompt[nid].setdefault("inputs", {})[NONCE_INPUT] = nonce


# --------------------------------------------------------------------------- safe names


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_filename(name: str, default: str = "output") -> str:
    """A file name that is safe to create anywhere: the last path component of ``name``
    (either slash), only ``A-Z a-z 0-9 . _ -``, no leading dot, no reserved device name,
    at most 120 characters. The server's names are untrusted input."""
    base = re.split(r"[\\/]", str(name).replace("\x00", ""))[-1]
    base = _UNSAFE.sub("_", base).lstrip(".-_ ") or default
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if stem.lower() in _RESERVED or not stem:
        stem = f"{stem or default}_"
    ext = ext[:16]
    stem = stem[: 120 - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def confined_path(out_dir: Path, name: str) -> Path:
    """``out_dir/name`` after checking it cannot leave ``out_dir`` (symlinks included)."""
    root = Path(os.path.realpath(out_dir))
    target = Path(os.path.realpath(root / name))
    if target.parent != root:
        raise PathEscapeError(f"refusing to write output {name!r}: it resolves to {target}, outside {root}")
    return target


def _atomic_write(path: Path, data: bytes) -> None:
    # Temp file + rename: nobody ever sees half a file under the final name. No fsync here:
    # after a power loss the batch journal's sha256 check finds a damaged output and fetches
    # it again, and skipping it keeps a few milliseconds off every job.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def verify_output(name: str, data: bytes) -> None:
    """Raise ``ExecutionError`` unless ``data`` is a complete file of its kind (PNG/JPEG/WebP decode)."""
    if not data:
        raise ExecutionError(f"output {name} is empty", hint="run again")
    lower = name.lower()
    if lower.endswith((".png", ".jpg", ".jpeg", ".webp", ".gif")):
        if lower.endswith(".png") and (not data.startswith(b"\x89PNG\r\n\x1a\n") or b"IEND" not in data[-16:]):
            raise ExecutionError(f"output {name} is not a complete PNG", hint="run again")
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except Exception as exc:  # noqa: BLE001 - any decode failure means a bad file
            raise ExecutionError(f"output {name} does not decode as an image ({exc})", hint="run again") from None


# --------------------------------------------------------------------------- the job


class JobRun:
    """One job on one server. ``submit()`` or ``attach(prompt_id)``, then ``wait()``, then
    ``collect(history, out_dir)``.

    ``on_event`` receives dicts (``event``: submitted, queued, started, cached, executing,
    progress, executed, preview, reconnecting, reconnected, resubmitted, server_down,
    completed, output); ``cancel`` is a ``threading.Event`` or a function returning True when
    the job should stop. ``timeout`` (s, 0 = none) bounds the whole job; ``down_timeout``
    (s, 0 = wait for ever) bounds how long the server may stay unreachable.
    """

    def __init__(
        self,
        client: ComfyClient,
        spec: JobSpec,
        *,
        on_event: EventFn | None = None,
        cancel=None,
        timeout: float = 0.0,
        down_timeout: float = 120.0,
        label: str | None = None,
    ):
        self.client = client
        self.spec = spec
        self.on_event = on_event
        self.cancelled = _as_cancel_hook(cancel)
        self.timeout = timeout or 0.0
        self.down_timeout = down_timeout or 0.0
        self.label = label
        self.prompt_id: str | None = None
        self.resubmitted = 0
        self._q = None
        self._t0 = time.monotonic()
        self._submitted_prompt: dict | None = None
        self.nodes_total = len(spec.prompt)
        self.nodes_done = 0
        self._cached_nodes: set[str] = set()
        self._seen_nodes: set[str] = set()
        self.cancel_remote_on_cancel = True
        self.remote_stop = ""  # what became of the remote job after a cancel, in words
        self._found_done: dict | None = None  # history entry of a job attach() found finished

    # -- events --------------------------------------------------------------------------
    def emit(self, event: str, **fields) -> None:
        if self.on_event is None:
            return
        fields.setdefault("prompt_id", self.prompt_id)
        fields.setdefault("server", self.client.display_url)
        if self.label is not None:
            fields.setdefault("job", self.label)
        _emit(self.on_event, event, **fields)

    def _node_type(self, nid: str | None) -> str | None:
        if nid is None:
            return None
        node = self.spec.prompt.get(str(nid).split(".")[0])
        return node.get("class_type") if node else None

    # -- submission ----------------------------------------------------------------------
    def _materialize(self, force_upload: bool = False) -> dict:
        """The prompt with local input images uploaded to this server."""
        prompt = self.spec.prompt
        uploads = []
        targets = {tuple(t.split(".", 1)) for t in self.spec.uploads}
        for nid, node in prompt.items():
            key = UPLOAD_NODES.get(node.get("class_type", ""))
            if key:
                targets.add((nid, key))
        for nid, key in sorted(targets):
            v = (prompt.get(nid, {}).get("inputs") or {}).get(key)
            if isinstance(v, str) and os.path.isfile(v):
                uploads.append((nid, key, v))
        if not uploads:
            return prompt
        prompt = json.loads(json.dumps(prompt))
        for nid, key, path in uploads:
            data = Path(path).read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
            ext = Path(path).suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", Path(path).suffix.lower()) else ".png"
            name = f"{digest}{ext}"
            if force_upload:
                self.client._uploaded.pop(f"dgx-pixels/{name}", None)
            prompt[nid]["inputs"][key] = self.client.upload_image(data, name)
        return prompt

    def new_prompt_id(self) -> str:
        """Choose the prompt id before submitting (the journal records it first)."""
        if self.prompt_id is None:
            self.prompt_id = str(uuid.uuid4())
        return self.prompt_id

    def submit(self, prompt_id: str | None = None) -> str:
        """Upload local inputs, subscribe to the job's events and ``POST /prompt``."""
        if prompt_id:
            self.prompt_id = prompt_id
        pid = self.new_prompt_id()
        prompt = self._materialize()
        self._q = self.client.events.subscribe(pid)
        try:
            self.client.submit(prompt, prompt_id=pid)
        except PromptRejectedError as exc:
            self.client.events.unsubscribe(pid)
            self._explain_missing_local(exc)
            for name in self.spec.default_images:
                default = self.spec.params.get(name)
                if isinstance(default, str) and default and default in exc.message:
                    raise ParameterError(
                        f"{self.spec.workflow} needs an input image: parameter {name!r} was not given, and its "
                        f"default {default!r} is not in the server's input folder",
                        hint=f"pass --set {name}=PATH (a local file is uploaded)") from None
            raise
        except BaseException:
            self.client.events.unsubscribe(pid)
            raise
        self._submitted_prompt = prompt
        self.emit("submitted", workflow=self.spec.workflow, nodes=self.nodes_total)
        return pid

    def _explain_missing_local(self, exc: PromptRejectedError) -> None:
        """``InvalidArgumentError`` (bad usage, exit 2) when the server rejected an image
        parameter that reads as a local path and names no local file: a mistyped path, which
        the server's "Invalid image file" (with a hint about node packs) does not say. Only
        the rejection can tell: ComfyUI's /object_info lists the top of its input folder, not
        the subfolders LoadImage also reads."""
        body = getattr(exc, "body", None) or {}
        for item in self.spec.maybe_local:
            name, _, target = item.partition("|")
            nid, _, inp = target.partition(".")
            value = (self.spec.prompt.get(nid, {}).get("inputs") or {}).get(inp)
            errors = ((body.get("node_errors") or {}).get(nid) or {}).get("errors") or []
            if any((e.get("extra_info") or {}).get("input_name") in (inp, None) for e in errors if isinstance(e, dict)) \
                    and isinstance(value, str) and value in exc.message:
                raise InvalidArgumentError(
                    f"parameter {name!r}: no such local file {value} (nor in the server's input folder)",
                    hint="check the path (a relative one is read from the current folder, in a jobs file from "
                         "the file's folder); a local image is uploaded, a plain name is looked up in ComfyUI's "
                         "input folder") from None

    def attach(self, prompt_id: str) -> str:
        """Follow a job submitted earlier (by this or another process) under ``prompt_id``.

        Resubmits it only when the server knows the id neither in its queue nor in its history.
        """
        self.prompt_id = prompt_id
        self._q = self.client.events.subscribe(prompt_id)
        self.emit("attached", workflow=self.spec.workflow)
        state, entry = self.client.locate(prompt_id)
        if state == "unknown":
            self._resubmit("the server does not know this job (it restarted, or the submission never arrived)")
        elif state == "done":
            # finished while nobody followed it: wait() returns it at once, not after a quiet
            # poll interval (a resumed batch re-attaching to its finished jobs took 5 s each)
            self._found_done = entry
        return prompt_id

    def _resubmit(self, why: str) -> None:
        prompt = self._materialize(force_upload=True)
        self.client.submit(prompt, prompt_id=self.prompt_id)
        self.resubmitted += 1
        self.emit("resubmitted", reason=why)

    # -- following -----------------------------------------------------------------------
    def _cancel_remote(self) -> None:
        if self.prompt_id is None:
            return
        try:
            self.client.cancel(self.prompt_id)
            self.remote_stop = "the server dropped it from its queue, or stops it after the running node"
        except DgxPixelsError:
            self.remote_stop = "the server did not answer, so it may still run it"

    def close(self) -> None:
        if self.prompt_id is not None:
            self.client.events.unsubscribe(self.prompt_id)

    def _check(self) -> dict | None:
        """Ask the server where the job is; resubmit when it was lost. History entry or None."""
        state, entry = self.client.locate(self.prompt_id)
        if state == "done":
            return entry
        if state == "unknown":
            self._resubmit("the server lost the job (restarted?): neither /queue nor /history knows it")
        return None

    def _confirm(self) -> dict | None:
        """History entry after a completion message; ComfyUI records it just before or after."""
        for delay in (0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
            if delay:
                time.sleep(delay)
            h = self.client.history(self.prompt_id)
            if h is not None:
                return h
        return None

    def wait(self) -> dict:
        """Block until the job is finished and confirmed; return its history entry.

        Raises ``ExecutionError`` (the node that failed), ``JobTimeoutError``,
        ``JobCancelledError`` (after stopping the remote job), ``ServerUnreachableError``
        (the server stayed down longer than ``down_timeout``).
        """
        assert self._q is not None and self.prompt_id is not None, "submit() or attach() first"
        try:
            try:
                return self._finish(self._wait())
            except JobInterruptedError as exc:
                if self.cancelled is not None and self.cancelled():
                    # Stopped while we were stopping it ourselves: ComfyUI's interrupt is a flag
                    # on whatever runs, so another job of this batch being cancelled can land on
                    # this one. Either way a cancel, which a rerun runs again, not a failure.
                    raise JobCancelledError(f"job {self.prompt_id} cancelled") from exc
                raise
        except JobTimeoutError:
            self._cancel_remote()
            raise
        except (JobCancelledError, KeyboardInterrupt):
            if self.cancel_remote_on_cancel:
                self._cancel_remote()
            raise
        finally:
            self.close()

    def _wait(self) -> dict:
        import queue as _queue

        if self._found_done is not None:
            entry, self._found_done = self._found_done, None
            return entry
        poll = self.client.config.poll_interval
        deadline = self._t0 + self.timeout if self.timeout else None
        last_check = time.monotonic()
        down_since: float | None = None
        started = False
        while True:
            if self.cancelled is not None and self.cancelled():
                raise JobCancelledError(f"job {self.prompt_id} cancelled")
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise JobTimeoutError(f"job {self.prompt_id} did not finish within {self.timeout:g} s")
            connected = self.client.events.connected
            interval = poll if connected else min(poll, 1.0)
            wait_s = max(0.0, min(0.25, interval - (now - last_check)))
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - now))
            try:
                ev = self._q.get(timeout=wait_s) if wait_s > 0 else self._q.get_nowait()
            except _queue.Empty:
                ev = None
            if ev is None:
                if time.monotonic() - last_check < interval:
                    continue
                last_check = time.monotonic()
                try:
                    h = self._check()
                except ServerUnreachableError:
                    if down_since is None:
                        down_since = time.monotonic()
                        self.emit("server_down", error=self.client.events.last_error, wait_s=self.down_timeout)
                    if self.down_timeout and time.monotonic() - down_since > self.down_timeout:
                        raise ServerLostError(
                            self.client.config.mask(f"{self.client.display_url} has been unreachable for "
                                                    f"{self.down_timeout:g} s while running job {self.prompt_id}")
                        ) from None
                    continue
                if down_since is not None:
                    down_since = None
                    self.emit("server_back")
                if h is not None:
                    return h
                continue
            etype = ev.get("type")
            data = ev.get("data") or {}
            if etype == "executing":
                node = data.get("node")
                if node is None:
                    h = self._confirm()
                    if h is not None:
                        return h
                    last_check = 0.0  # poll at once
                    continue
                if not started:
                    started = True
                    self.emit("started")
                self._seen_nodes.add(str(node))
                self.nodes_done = len(self._seen_nodes) - 1
                self.emit("executing", node=node, node_type=self._node_type(node),
                          nodes_done=self.nodes_done, nodes_total=self.nodes_total)
            elif etype == "progress":
                self.emit("progress", node=data.get("node"), node_type=self._node_type(data.get("node")),
                          value=data.get("value"), max=data.get("max"))
            elif etype == "executed":
                self.emit("executed", node=data.get("node"), node_type=self._node_type(data.get("node")),
                          nodes_done=self.nodes_done, nodes_total=self.nodes_total)
            elif etype == "execution_start":
                if not started:
                    started = True
                    self.emit("started")
            elif etype == "execution_cached":
                nodes = data.get("nodes") or []
                self._cached_nodes = set(map(str, nodes))
                self.nodes_total = max(1, len(self.spec.prompt) - len(nodes))
                if nodes:
                    self.emit("cached", nodes=list(nodes))
            elif etype == "execution_success":
                h = self._confirm()
                if h is not None:
                    return h
                last_check = 0.0
            elif etype == "execution_error":
                raise ExecutionError(
                    self.client.config.mask(f"the job failed on {self.client.display_url}: " + _describe(data)),
                    hint=_error_hint(data, self.spec.param_targets),
                )
            elif etype == "execution_interrupted":
                raise JobInterruptedError(
                    f"the job was interrupted on the server at node {data.get('node_id')} ({data.get('node_type')})"
                )
            elif etype == RECONNECTED:
                if not data.get("first"):
                    self.emit("reconnected")
                last_check = 0.0
            elif etype == DISCONNECTED:
                self.emit("reconnecting", error=data.get("error"))
            elif etype == PREVIEW:
                self.emit("preview", bytes=data.get("bytes"))

    def _finish(self, entry: dict) -> dict:
        status = entry.get("status") or {}
        if status.get("status_str") == "error" or status.get("completed") is False:
            for name, data in status.get("messages") or []:
                if name == "execution_error":
                    raise ExecutionError(
                        self.client.config.mask(f"the job failed on {self.client.display_url}: " + _describe(data)),
                        hint=_error_hint(data, self.spec.param_targets),
                    )
                if name == "execution_interrupted":
                    raise JobInterruptedError(
                        f"the job was interrupted on the server at node {data.get('node_id')} ({data.get('node_type')})"
                    )
            raise ExecutionError(f"the job ended with status {status.get('status_str')!r} and no error message")
        self.emit("completed", elapsed_s=round(time.monotonic() - self._t0, 4))
        return entry

    # -- collecting ----------------------------------------------------------------------
    def output_refs(self, entry: dict) -> list[tuple[str, dict]]:
        """(node id, file ref) of every output file the history names, in node order.

        Only files of type ``output`` count (``temp`` are previews). Raises ``ExecutionError``
        when a required output node produced nothing.
        """
        outputs = entry.get("outputs") or {}
        refs: list[tuple[str, dict]] = []
        for nid in sorted(outputs, key=_node_order):
            ui = outputs[nid] or {}
            for _key, items in ui.items():
                if not isinstance(items, list):
                    continue
                for it in items:
                    if isinstance(it, dict) and isinstance(it.get("filename"), str) and it.get("type", "output") == "output":
                        refs.append((str(nid), it))
        produced = {nid for nid, _ in refs}
        if self.spec.output_nodes:
            missing = [n for n in self.spec.output_nodes if n not in produced]
            if missing:
                names = ", ".join(f"{n} ({self._node_type(n)})" for n in missing)
                raise ExecutionError(f"output node {names} produced no file", hint="check the workflow's save nodes")
        if not refs:
            raise ExecutionError("the job finished but produced no output file",
                                 hint="the workflow needs a SaveImage (or DGX-Pixels export) node")
        return refs

    def collect(self, entry: dict, out_dir: str | os.PathLike) -> list[OutputFile]:
        """Download every output into ``out_dir`` (created), verified and hashed.

        All files are fetched and checked before any is written, so a failure leaves no
        partial set behind.
        """
        refs = self.output_refs(entry)
        cached_msg = set()
        for name, data in (entry.get("status") or {}).get("messages") or []:
            if name == "execution_cached":
                cached_msg = set(map(str, data.get("nodes") or []))
        cached_nodes = cached_msg or self._cached_nodes
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fetched = []
        used: set[str] = set()
        for nid, ref in refs:
            data = self.client.view(ref["filename"], ref.get("subfolder", ""), ref.get("type", "output"), max_bytes=MAX_OUTPUT_BYTES)
            verify_output(ref["filename"], data)
            name = safe_filename(ref["filename"])
            if name in used:
                stem, dot, ext = name.rpartition(".")
                i = 2
                while f"{stem}_{i}.{ext}" in used:
                    i += 1
                name = f"{stem}_{i}.{ext}"
            used.add(name)
            fetched.append((nid, ref, name, data))
        files = []
        for nid, ref, name, data in fetched:
            target = confined_path(out, name)
            _atomic_write(target, data)
            f = OutputFile(
                node_id=nid,
                node_type=self._node_type(nid) or "?",
                server_filename=str(ref["filename"]),
                server_subfolder=str(ref.get("subfolder", "")),
                server_type=str(ref.get("type", "output")),
                path=str(target),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                cached=nid in cached_nodes,
            )
            files.append(f)
            self.emit("output", path=f.path, size=f.size, sha256=f.sha256, cached=f.cached)
        return files


def _describe(data: dict) -> str:
    from orchestrator.client import describe_execution_error

    return describe_execution_error(data)


def _error_hint(data: dict, param_targets: dict | None = None) -> str:
    msg = str(data.get("exception_message", ""))
    if "out of memory" in msg.lower():
        return "lower the resolution or batch size, or free GPU memory"
    # the node's own hint names its inputs (mode, cell_size...); a workflow run sets them
    # through its parameters, under other names
    node = str(data.get("node_id", ""))
    params = [f"{name} ({t.partition('.')[2]})" for name, ts in (param_targets or {}).items() for t in ts
              if t.partition(".")[0] == node]
    if params:
        return f"change the named node's input, through --set: node {node}'s parameters are {', '.join(params)}"
    return "fix the named node's input, then run again"


# --------------------------------------------------------------------------- library API


def run_workflow(
    workflow: Any,
    values: dict | None = None,
    *,
    config: Config | None = None,
    server: str | None = None,
    client: ComfyClient | None = None,
    out_dir: str | os.PathLike = "dgx-pixels-out",
    on_event: EventFn | None = None,
    cancel=None,
    fresh: bool = False,
    timeout: float | None = None,
    spec: JobSpec | None = None,
) -> RunResult:
    """Run one workflow on a ComfyUI server and download its outputs; the library entry point.

    - ``workflow``: ``"name@version"``, a registry ``Workflow``, a ``.json`` file (API or
      editor format) or an API prompt dict; ``values``: its parameters.
    - ``config`` / ``server`` / ``client``: where to run (default: ``load_config()``'s first server).
    - ``on_event(dict)``: progress events (see ``JobRun``); ``cancel``: ``threading.Event`` or
      ``() -> bool``, checked several times a second; a cancel stops the remote job too.
    - ``fresh``: do not accept ComfyUI's cached answer (see ``prepare_job``).
    - ``timeout``: seconds for the whole job (default ``config.job_timeout``; 0 = none).

    Returns a ``RunResult`` whose ``outputs`` are verified files in ``out_dir``; ``cached`` is
    True when ComfyUI answered from its cache (the files are those of the earlier run).
    Raises ``WorkflowError``/``ParameterError`` (bad workflow or values),
    ``ServerUnreachableError``, ``PromptRejectedError`` (node_errors), ``ExecutionError``,
    ``JobTimeoutError``, ``JobCancelledError``.
    """
    from orchestrator.config import load_config

    own = client is None
    if client is None:
        cfg = config or load_config(servers=[server] if server else None)
        client = ComfyClient(server or cfg.server, cfg)
    cfg = client.config
    try:
        # an editor-format file is converted with the node definitions of the server it runs on
        spec = spec or prepare_job(workflow, values, fresh=fresh, object_info=client.object_info)
    except BaseException:
        if own:
            client.close()
        raise
    t0 = time.monotonic()
    job = JobRun(client, spec, on_event=on_event, cancel=cancel,
                 timeout=cfg.job_timeout if timeout is None else timeout)
    try:
        client.events.wait_connected(min(cfg.connect_timeout, 2.0))
        job.submit()
        try:
            entry = job.wait()
        except KeyboardInterrupt:
            raise JobCancelledError(f"job {job.prompt_id} cancelled here (Ctrl-C or SIGTERM); "
                                    f"{job.remote_stop or 'it was not running on the server'}",
                                    hint="run the same command again to start it over") from None
        outputs = job.collect(entry, out_dir)
        from orchestrator.sheet_deploy import sheet_records

        return RunResult(
            prompt_id=job.prompt_id,
            server=client.display_url,
            workflow=spec.workflow,
            content_hash=spec.content_hash,
            params=spec.params,
            seed=spec.seed,
            outputs=outputs,
            cached=bool(outputs) and all(o.cached for o in outputs),
            elapsed_s=time.monotonic() - t0,
            resubmitted=job.resubmitted,
            models=spec.models,
            sheets=sheet_records(entry.get("outputs")),
        )
    finally:
        job.close()
        if own:
            client.close()


class JobHandle:
    """A job running in a background thread (``start_workflow``): poll ``status()``, wait with
    ``result()``, stop with ``cancel()``. For servers that hand out job handles (MCP tools)."""

    def __init__(self, workflow: Any, values: dict | None, kwargs: dict):
        import threading

        self._cancel = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state: dict = {"state": "starting", "prompt_id": None, "node": None, "node_type": None,
                             "value": None, "max": None, "nodes_done": 0, "nodes_total": None, "error": None}
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._user_event = kwargs.pop("on_event", None)
        kwargs["cancel"] = self._cancel
        kwargs["on_event"] = self._on_event
        self._thread = threading.Thread(target=self._run, args=(workflow, values, kwargs), name="dgx-pixels-job", daemon=True)
        self._thread.start()

    def _on_event(self, ev: dict) -> None:
        with self._lock:
            st = self._state
            e = ev.get("event")
            st["prompt_id"] = ev.get("prompt_id") or st["prompt_id"]
            if e == "submitted":
                st["state"] = "queued"
                st["nodes_total"] = ev.get("nodes")
            elif e in ("started", "executing", "progress", "executed", "cached"):
                st["state"] = "running"
                for k in ("node", "node_type", "value", "max", "nodes_done", "nodes_total"):
                    if ev.get(k) is not None:
                        st[k] = ev[k]
            elif e == "completed":
                st["state"] = "collecting"
            elif e in ("reconnecting", "server_down"):
                st["state"] = "reconnecting"
            elif e == "resubmitted":
                st["state"] = "queued"
        if self._user_event is not None:
            self._user_event(ev)

    def _run(self, workflow, values, kwargs) -> None:
        try:
            self._result = run_workflow(workflow, values, **kwargs)
            with self._lock:
                self._state["state"] = "done"
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc
            with self._lock:
                self._state["state"] = "cancelled" if isinstance(exc, JobCancelledError) else "failed"
                self._state["error"] = getattr(exc, "message", str(exc))
        finally:
            self._done.set()

    @property
    def prompt_id(self) -> str | None:
        return self._state["prompt_id"]

    def status(self) -> dict:
        """``state`` (starting, queued, running, reconnecting, collecting, done, failed,
        cancelled), prompt id, current node and its step, error message."""
        with self._lock:
            return dict(self._state)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> RunResult:
        """The ``RunResult``; raises what the job raised, or ``TimeoutError`` if still running."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.prompt_id} is still {self._state['state']}")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self, wait: float | None = 30.0) -> None:
        """Stop the job here and on the server (removed from the queue / interrupted)."""
        self._cancel.set()
        if wait:
            self._done.wait(wait)


def start_workflow(workflow: Any, values: dict | None = None, **kwargs) -> JobHandle:
    """``run_workflow`` in a background thread; returns a ``JobHandle`` at once.

    Same arguments as ``run_workflow`` (``cancel`` is the handle's own).
    """
    if "cancel" in kwargs:
        raise InvalidArgumentError("start_workflow has its own cancel: use JobHandle.cancel()")
    return JobHandle(workflow, values, kwargs)


__all__ = [
    "JobSpec", "OutputFile", "RunResult", "JobRun", "JobCancelledError", "JobInterruptedError",
    "PromptRejectedError", "prepare_job", "run_workflow", "start_workflow", "JobHandle", "safe_filename",
    "load_prompt_file",
]
