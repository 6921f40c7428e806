"""Check an API prompt against a live server's ``/object_info`` before submitting it.

Every problem is collected (not just the first), grouped by node and naming the input:
unknown node types, missing required inputs, values outside INT/FLOAT ranges, values not in a
COMBO list (model files the server does not have get their own wording), links to missing
nodes, to output slots that do not exist or that carry the wrong type. Inputs the node does not
declare are warnings: the server ignores them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.convert import _valid_connection

_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pt2")

# The ComfyUI models sub-folder (folder_paths name, 0.3.75) each model-name input lists.
MODEL_FOLDERS = {
    "ckpt_name": "checkpoints", "lora_name": "loras", "vae_name": "vae", "unet_name": "diffusion_models",
    "clip_name": "text_encoders", "clip_name1": "text_encoders", "clip_name2": "text_encoders",
    "clip_name3": "text_encoders", "control_net_name": "controlnet", "style_model_name": "style_models",
    "gligen_name": "gligen", "upscale_model": "upscale_models",
}
# "model_name" is generic; only these node types say which folder it lists.
_CLASS_MODEL_FOLDERS = {("UpscaleModelLoader", "model_name"): "upscale_models"}


@dataclass
class Issue:
    node_id: str
    class_type: str
    input: str | None
    message: str
    severity: str = "error"  # "error" | "warning"
    # unknown_node, missing_input, out_of_range, not_in_list, missing_model, missing_file,
    # bad_link, wrong_type, extra_input, no_output
    kind: str = "invalid"
    value: Any = None  # the offending value (the file name of a missing_model)

    def __str__(self) -> str:
        if self.node_id == "-":
            return self.message  # about the whole workflow, no node
        where = f"node {self.node_id} ({self.class_type})"
        if self.input:
            where += f" input {self.input!r}"
        return f"{where}: {self.message}"


@dataclass
class ValidationReport:
    """Result of ``validate_prompt``: ``ok`` when there is no error (warnings allowed)."""

    nodes: int
    issues: list[Issue] = field(default_factory=list)
    source: str = ""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def missing_models(self) -> list[str]:
        return sorted({i.message.split("'")[1] for i in self.issues if i.kind == "missing_model" and "'" in i.message})

    def missing_model_files(self) -> list["MissingModel"]:
        """Each model file a node input names that the server does not offer (node inputs only,
        not the workflow's declared list)."""
        return [MissingModel(i.node_id, i.class_type, i.input, str(i.value)) for i in self.issues
                if i.kind == "missing_model" and i.input and isinstance(i.value, str)]

    def by_node(self) -> dict[str, list[Issue]]:
        out: dict[str, list[Issue]] = {}
        for i in self.issues:
            out.setdefault(i.node_id, []).append(i)
        return out

    def format(self) -> str:
        lines = []
        head = self.source or "prompt"
        if self.ok:
            lines.append(f"{head}: OK ({self.nodes} nodes" + (f", {len(self.warnings)} warnings)" if self.warnings else ")"))
        else:
            lines.append(f"{head}: {len(self.errors)} error(s) in {len({i.node_id for i in self.errors})} node(s)")
        for nid, issues in sorted(self.by_node().items(), key=lambda kv: _order(kv[0])):
            lines.append(f"  node {nid} ({issues[0].class_type})")
            for i in issues:
                tag = "error" if i.severity == "error" else "warning"
                name = f"{i.input}: " if i.input else ""
                lines.append(f"    {tag}: {name}{i.message}")
        return "\n".join(lines)


def _order(nid: str):
    head = nid.split(":")[0]
    return (0, int(head), nid) if head.isdigit() else (1, 0, nid)



def _input_specs(info: dict) -> tuple[dict, dict]:
    inp = info.get("input") or {}
    return dict(inp.get("required") or {}), dict(inp.get("optional") or {})


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int) and not isinstance(v[1], bool)


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def validate_prompt(prompt: dict, object_info: dict, *, source: str = "") -> ValidationReport:
    """Validate an API prompt against ``object_info`` (the server's ``GET /object_info``)."""
    report = ValidationReport(nodes=len(prompt), source=source)
    add = report.issues.append
    for nid, node in prompt.items():
        nid = str(nid)
        if not isinstance(node, dict):
            add(Issue(nid, "?", None, "is not a node object", kind="invalid"))
            continue
        ct = str(node.get("class_type") or "")
        info = object_info.get(ct)
        if not isinstance(info, dict):
            add(Issue(nid, ct or "?", None, f"node type {ct!r} is not known to the server (custom node pack missing?)",
                      kind="unknown_node"))
            continue
        required, optional = _input_specs(info)
        inputs = node.get("inputs") or {}
        if not isinstance(inputs, dict):
            add(Issue(nid, ct, None, "inputs is not an object"))
            continue
        for name in required:
            if name not in inputs:
                add(Issue(nid, ct, name, "required input is missing (neither linked nor set)", kind="missing_input"))
        for name, value in inputs.items():
            spec = required.get(name, optional.get(name))
            if spec is None:
                add(Issue(nid, ct, name, "is not an input of this node (the server ignores it)",
                          severity="warning", kind="extra_input"))
                continue
            if _is_link(value):
                _check_link(prompt, object_info, nid, ct, name, spec, value, add)
            else:
                _check_value(nid, ct, name, spec, value, add)
    known = [n for n in prompt.values() if isinstance(n, dict) and isinstance(object_info.get(str(n.get("class_type") or "")), dict)]
    if len(known) == len(prompt) and not any(object_info[str(n["class_type"])].get("output_node") for n in known):
        # the server refuses such a prompt ("Prompt has no outputs"): an empty graph, or one
        # whose Save/Preview/Export node was left out
        add(Issue("-", "-", None, "the workflow has no output node (Save Image, Preview Image, Bevy Export...): the "
                  "server refuses a prompt without one", kind="no_output"))
    return report


def server_files(object_info: dict) -> set[str]:
    """Every value of every COMBO list the server declares (its model and input files among them)."""
    out: set[str] = set()
    for info in object_info.values():
        inp = (info or {}).get("input") or {}
        for section in ("required", "optional"):
            for spec in (inp.get(section) or {}).values():
                if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], list):
                    out.update(str(v) for v in spec[0])
    return out


def validate_workflow(workflow: Any, object_info: dict, values: dict | None = None) -> ValidationReport:
    """``validate_prompt`` of a registry workflow's prompt (with ``values``), plus its declared
    ``models``: each must be offered by the server in some model list."""
    prompt = workflow.build_prompt(values or {})
    report = validate_prompt(prompt, object_info, source=f"{workflow.name}@{workflow.version}")
    # An input image not given yet is given at run time (`--set image=PATH`): its placeholder
    # default missing from the server says nothing about the workflow.
    pending = {}
    for name, p in (getattr(workflow, "params", None) or {}).items():
        if getattr(p, "type", None) == "image-file" and name not in (values or {}):
            for target in p.targets:
                pending[tuple(str(target).split(".", 1))] = name
    for i, issue in enumerate(report.issues):
        name = pending.get((issue.node_id, issue.input))
        if issue.kind == "missing_file" and name:
            report.issues[i] = Issue(issue.node_id, issue.class_type, issue.input,
                                     f"input image not given (give it at run time with --set {name}=PATH)",
                                     severity="warning", kind="missing_file")
    reported = {i.message.split("'")[1] for i in report.issues if i.kind == "missing_model" and "'" in i.message}
    files = server_files(object_info)
    for m in getattr(workflow, "models", []) or []:
        if m.name in files or m.name in reported:
            continue
        where = f"models/{m.folder}/" if m.folder else "the server's model folders"
        report.issues.append(Issue("models", "workflow.toml", None,
                                   f"model file {m.name!r} is not in {where} (`dgx-pixels models` downloads it)",
                                   kind="missing_model"))
    return report


def _spec_type(spec: Any) -> tuple[Any, dict]:
    if not isinstance(spec, (list, tuple)) or not spec:
        return None, {}
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0], opts


def _check_link(prompt, object_info, nid, ct, name, spec, value, add) -> None:
    src_id, slot = value
    src = prompt.get(src_id)
    if not isinstance(src, dict):
        add(Issue(nid, ct, name, f"links to node {src_id!r}, which is not in the prompt", kind="bad_link"))
        return
    src_info = object_info.get(str(src.get("class_type")))
    if not isinstance(src_info, dict):
        return  # reported on the source node
    outputs = src_info.get("output") or []
    if slot < 0 or slot >= len(outputs):
        add(Issue(nid, ct, name, f"links to output {slot} of node {src_id} ({src.get('class_type')}), "
                                 f"which has {len(outputs)} output(s)", kind="bad_link"))
        return
    out_type = outputs[slot]
    want, _ = _spec_type(spec)
    if isinstance(want, list) or want == "COMBO":
        ok = isinstance(out_type, list) or out_type in ("COMBO", "*", "")
    elif isinstance(out_type, list):
        ok = want in ("*", "")
    else:
        ok = _valid_connection(str(out_type), str(want))
    if not ok:
        names = src_info.get("output_name") or []
        label = names[slot] if slot < len(names) else out_type
        add(Issue(nid, ct, name, f"expects {_type_name(want)} but is linked to {src_id}:{slot} "
                                 f"({src.get('class_type')} output {label!r} of type {_type_name(out_type)})",
                  kind="wrong_type"))


def _type_name(t: Any) -> str:
    return "COMBO" if isinstance(t, list) else str(t)


def _check_value(nid, ct, name, spec, value, add) -> None:
    t, opts = _spec_type(spec)
    if isinstance(value, dict) and set(value) == {"__value__"}:
        value = value["__value__"]
    if isinstance(t, list) or t == "COMBO":
        choices = t if isinstance(t, list) else list(opts.get("options") or [])
        if opts.get("multi_select") or isinstance(value, list):
            return
        if value in choices or (not choices and opts.get("remote")):
            return
        if any(opts.get(k) for k in ("image_upload", "video_upload", "audio_upload", "animated_image_upload")):
            add(Issue(nid, ct, name, f"input file {_short(value)} is not in the server's input folder "
                                     f"(`dgx-pixels run` uploads local files)", kind="missing_file"))
        elif isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES):
            add(Issue(nid, ct, name, f"model file {value!r} is not on the server "
                                     f"({len(choices)} file(s) available" + (f", e.g. {choices[0]!r})" if choices else ")"),
                      kind="missing_model", value=value))
        else:
            shown = ", ".join(map(repr, choices[:8])) + (", ..." if len(choices) > 8 else "")
            add(Issue(nid, ct, name, f"{_short(value)} is not one of the allowed values: {shown or '(none)'}",
                      kind="not_in_list"))
        return
    if t == "INT":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            add(Issue(nid, ct, name, f"expects an integer, got {_short(value)}", kind="wrong_type"))
            return
        _check_range(nid, ct, name, opts, value, add)
    elif t == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            add(Issue(nid, ct, name, f"expects a number, got {_short(value)}", kind="wrong_type"))
            return
        _check_range(nid, ct, name, opts, value, add)
    elif t == "BOOLEAN":
        if not isinstance(value, bool):
            add(Issue(nid, ct, name, f"expects true or false, got {_short(value)}", kind="wrong_type"))
    elif t == "STRING":
        if not isinstance(value, str):
            add(Issue(nid, ct, name, f"expects text, got {_short(value)}", kind="wrong_type"))
    elif isinstance(t, str) and t.isupper() and t not in ("*",) and not opts.get("forceInput") and value is not None:
        # a socket type (IMAGE, MODEL, ...) given a literal value instead of a link
        if t in ("IMAGE", "LATENT", "MODEL", "CLIP", "VAE", "CONDITIONING", "MASK", "CONTROL_NET", "CLIP_VISION",
                 "CLIP_VISION_OUTPUT", "NOISE", "SAMPLER", "SIGMAS", "GUIDER", "AUDIO", "VIDEO"):
            add(Issue(nid, ct, name, f"expects a link from a {t} output, got the value {_short(value)}", kind="wrong_type"))


@dataclass(frozen=True)
class MissingModel:
    """A model file a node loads that the server does not have."""

    node_id: str
    class_type: str
    input: str
    file: str

    @property
    def folder(self) -> str | None:
        """The models sub-folder ComfyUI lists for this input (None when the input is unknown)."""
        return _CLASS_MODEL_FOLDERS.get((self.class_type, self.input)) or MODEL_FOLDERS.get(self.input)

    def __str__(self) -> str:
        where = f"models/{self.folder}/" if self.folder else "one of its models/ folders"
        return f"{self.file!r} for node {self.node_id} ({self.class_type}), input {self.input!r}: " \
               f"the server looks for it in {where}"


def is_model_input(class_type: str, input_name: str | None, value: Any) -> bool:
    """Whether ``input_name`` of a ``class_type`` node names a model file (by the input's name,
    or, for a custom node's input, by the value's model-file extension)."""
    if input_name in MODEL_FOLDERS or (class_type, input_name) in _CLASS_MODEL_FOLDERS:
        return True
    return isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES)


def missing_models_in_rejection(body: dict, prompt: dict | None = None) -> list[MissingModel]:
    """The model files a ``POST /prompt`` 400 answer rejects as "Value not in list": the server
    has no such file in the folder that input lists."""
    out: list[MissingModel] = []
    node_errors = body.get("node_errors") if isinstance(body, dict) else None
    for nid, info in (node_errors or {}).items():
        if not isinstance(info, dict):
            continue
        ct = str(info.get("class_type") or (prompt or {}).get(nid, {}).get("class_type") or "?")
        for err in info.get("errors") or []:
            if not isinstance(err, dict) or err.get("type") != "value_not_in_list":
                continue
            extra = err.get("extra_info") or {}
            inp = extra.get("input_name")
            value = extra.get("received_value", ((prompt or {}).get(nid, {}).get("inputs") or {}).get(inp))
            if isinstance(inp, str) and isinstance(value, str) and is_model_input(ct, inp, value):
                out.append(MissingModel(str(nid), ct, inp, value))
    return out


def missing_models_hint(missing: list[MissingModel]) -> str:
    """How to get the files: ``dgx-pixels models pull NAME...`` for those the model manifest
    lists, else where to put them."""
    names: list[str] = []
    try:
        from orchestrator.models import load_manifest

        by_file = {e.file: e.name for e in load_manifest()}
    except Exception:  # noqa: BLE001 - an unreadable manifest must not hide the real error
        by_file = {}
    for m in missing:
        if m.file in by_file and by_file[m.file] not in names:
            names.append(by_file[m.file])
    folders = sorted({f"models/{m.folder}/" for m in missing if m.folder and m.file not in by_file})
    parts = []
    if names:
        parts.append(f"`dgx-pixels models pull {' '.join(names)}` downloads "
                     + ("it" if len(names) == 1 else "them") + " into ComfyUI's models folder (--comfyui PATH)")
    if folders or not names:
        parts.append("put your own file into the server's " + (", ".join(folders) if folders else "models folder")
                     + " (`dgx-pixels models list` shows the files the shipped workflows use)")
    return "; ".join(parts) + ", then run again"


def missing_models_message(missing: list[MissingModel], others: str = "") -> str:
    """One line naming each missing model file, its node and the folder the server expects it in."""
    head = "the server has no model file " if len(missing) == 1 else "the server is missing model files: "
    msg = head + "; ".join(map(str, missing))
    return msg + (f" (also: {others})" if others else "")


def _check_range(nid, ct, name, opts, value, add) -> None:
    lo, hi = opts.get("min"), opts.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        add(Issue(nid, ct, name, f"{value} is outside the allowed range {lo if lo is not None else '-inf'}.."
                                 f"{hi if hi is not None else 'inf'}", kind="out_of_range"))


def fetch_object_info(url: str | None = None, timeout: float = 30.0) -> dict:
    """``GET {url}/object_info``; ``ServerUnreachableError`` naming the URL when it is down."""
    from orchestrator.errors import ServerUnreachableError, WorkflowError

    base = (url or "").rstrip("/")
    try:
        from orchestrator.client import ComfyClient
    except ImportError:  # pragma: no cover - the client ships with the orchestrator
        ComfyClient = None  # type: ignore[assignment]
    if ComfyClient is not None:
        client = ComfyClient(base or None)
        try:
            return client.object_info()
        finally:
            close = getattr(client, "close", None)
            if close:
                close()
    import requests

    try:
        r = requests.get(base + "/object_info", timeout=timeout)
    except requests.RequestException as exc:
        raise ServerUnreachableError(f"ComfyUI at {base} did not answer: {exc.__class__.__name__}") from None
    if r.status_code != 200:
        raise ServerUnreachableError(f"{base}/object_info answered HTTP {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise WorkflowError(f"{base}/object_info did not return JSON (is this a ComfyUI server?)") from None
