"""The versioned workflow registry.

On disk (see ``workflows/README.md`` for the full format)::

    workflows/
      workflows.lock                    content hash of every released version
      <name>/<version>/workflow.toml    description, parameters, models, outputs
      <name>/<version>/workflow.api.json    the API-format prompt (what POST /prompt takes)
      <name>/<version>/workflow.ui.json     optional: the same graph in editor format

A workflow is addressed as ``name@version``; ``name`` alone is the newest version and a prefix
(``name@1``, ``name@1.2``) is the newest version that starts with it. Versions are semantic
(``MAJOR.MINOR.PATCH``) and compared numerically. A released version is immutable: the lock
file records its content hash and ``dgx-pixels workflows lock`` refuses to change it.

Roots: the ``workflows/`` folder next to the ``orchestrator`` package (the repository or an
editable install), then every folder in ``DGX_PIXELS_WORKFLOWS`` (``os.pathsep``-separated).
The same ``name@version`` in two roots must have the same content.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from orchestrator.errors import ParameterError, WorkflowError

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ModuleNotFoundError:
        _toml = None  # type: ignore[assignment]

ENV_VAR = "DGX_PIXELS_WORKFLOWS"
LOCK_NAME = "workflows.lock"
META_NAME = "workflow.toml"
API_NAME = "workflow.api.json"
UI_NAME = "workflow.ui.json"
# The JSON spelling of the same layout: workflow.json + api.json (+ editor.json).
META_NAMES = (META_NAME, "workflow.json")
API_NAMES = (API_NAME, "api.json")
UI_NAMES = (UI_NAME, "editor.json")
PARAM_TYPES = ("int", "float", "str", "bool", "enum", "image-file")
_TYPE_ALIASES = {"string": "str", "text": "str", "integer": "int", "number": "float", "boolean": "bool",
                 "image": "image-file", "choice": "enum", "combo": "enum"}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}
# int()/float() also take "1_0", full-width or Arabic-Indic digits and "nan"; a --set typo like
# that must not silently become a number, so text only counts as one in this plain ASCII form.
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_ASCII_SPACE = " \t\r\n\f\v"
_NUMBER_FORMS = {"int": "ASCII digits with an optional sign, e.g. 42 or -3",
                 "float": "ASCII digits with an optional sign, point and exponent, e.g. 4.5, -0.25 or 1e-3"}


def default_root() -> Path:
    """The shipped workflows: ``<checkout>/workflows`` next to the ``orchestrator`` package."""
    return Path(__file__).resolve().parent.parent / "workflows"


def parse_version(text: str) -> tuple[int, int, int]:
    m = _VERSION_RE.match(str(text))
    if not m:
        raise WorkflowError(
            f"{text!r} is not a version (MAJOR.MINOR.PATCH, e.g. 1.0.0)",
            hint="workflow versions are semantic versions without a 'v' prefix",
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


# --------------------------------------------------------------------------------------------
# parameters


@dataclass
class Param:
    """A named parameter mapped onto one or more node inputs (``targets``: ``node_id.input``)."""

    name: str
    type: str
    targets: list[str]
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: list | None = None
    required: bool = False

    def describe_type(self) -> str:
        if self.type == "enum" and self.choices:
            return "enum(" + "|".join(str(c) for c in self.choices) + ")"
        if self.min is not None or self.max is not None:
            lo = "" if self.min is None else _fmt(self.min)
            hi = "" if self.max is None else _fmt(self.max)
            return f"{self.type}[{lo}..{hi}]"
        return self.type

    def coerce(self, value: Any) -> Any:
        """``value`` (a Python value or the string of ``--set key=value``) as this type."""
        t = self.type
        if t == "int":
            v = _to_int(value)
            if v is None:
                raise self._error(value, "an integer")
        elif t == "float":
            v = _to_float(value)
            if v is None:
                raise self._error(value, "a number")
        elif t == "bool":
            if isinstance(value, bool):
                v = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                v = value.strip().lower() in _TRUE
            elif isinstance(value, int) and value in (0, 1):
                v = bool(value)
            else:
                raise self._error(value, "true or false")
        elif t == "enum":
            choices = self.choices or []
            v = value
            if v not in choices:
                match = [c for c in choices if str(c) == str(value)]
                if not match:
                    raise ParameterError(
                        f"parameter {self.name!r}: {value!r} is not allowed",
                        hint="allowed values: " + ", ".join(str(c) for c in choices),
                    )
                v = match[0]
        elif t in ("str", "image-file"):
            if isinstance(value, (dict, list)) or value is None:
                raise self._error(value, "text")
            v = value if isinstance(value, str) else str(value)
            if t == "image-file" and not v.strip():
                raise self._error(value, "an image file name")
        else:  # pragma: no cover - rejected when loading
            raise ParameterError(f"parameter {self.name!r} has unknown type {t!r}")
        if t in ("int", "float"):
            if self.min is not None and v < self.min or self.max is not None and v > self.max:
                raise ParameterError(
                    f"parameter {self.name!r}: {_fmt(v)} is out of range",
                    hint=f"expected {self.type} from {_fmt(self.min) if self.min is not None else '-inf'}"
                    f" to {_fmt(self.max) if self.max is not None else 'inf'}",
                )
        return v

    def _error(self, value: Any, expected: str) -> ParameterError:
        extra = f" ({', '.join(str(c) for c in self.choices)})" if self.choices else ""
        form = _NUMBER_FORMS.get(self.type) if isinstance(value, str) else None
        hint = f"write {self.name} with {form}; {ParameterError.default_hint}" if form else None
        return ParameterError(
            f"parameter {self.name!r}: expected {expected} ({self.describe_type()}), got {value!r}{extra}",
            hint=hint,
        )


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        s = value.strip(_ASCII_SPACE)
        if _INT_RE.fullmatch(s):
            return int(s, 10)
        f = _to_float(s)
        return int(f) if f is not None and f.is_integer() else None
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        s = value.strip(_ASCII_SPACE)
        if not _NUMBER_RE.fullmatch(s):
            return None
        f = float(s)
        return f if f not in (float("inf"), float("-inf")) else None
    return None


# --------------------------------------------------------------------------------------------
# workflows


@dataclass
class Model:
    folder: str
    name: str
    url: str | None = None
    sha256: str | None = None


@dataclass
class Output:
    """A node whose results the runner collects; ``kind`` is the history key (images, gifs...)."""

    node: str
    kind: str = "images"


@dataclass
class Workflow:
    name: str
    version: str
    description: str
    params: dict[str, Param]
    api_prompt: dict
    ui: dict | None
    required_nodes: list[str]
    models: list[Model]
    outputs: list[Output]
    content_hash: str
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def build_prompt(self, values: dict | None = None) -> dict:
        """The API prompt with ``values`` applied (defaults for the others)."""
        return apply_params(self, values or {})


def apply_params(workflow: Workflow, values: dict) -> dict:
    """Return a copy of the workflow's API prompt with parameter ``values`` set.

    Values may be strings (``--set seed=3``) and are coerced to the parameter's type; missing
    parameters take their default (a parameter without default leaves the node's own value).
    Raises ``ParameterError`` naming the parameter, the expected type and the allowed values.
    """
    params = workflow.params
    unknown = [k for k in values if k not in params]
    if unknown:
        known = ", ".join(sorted(params)) or "(none)"
        raise ParameterError(
            f"{workflow.ref} has no parameter {unknown[0]!r}" + (f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""),
            hint=f"known parameters: {known}",
        )
    prompt = copy.deepcopy(workflow.api_prompt)
    for name, p in params.items():
        if name in values:
            v = p.coerce(values[name])
        elif p.default is not None:
            v = p.default
        elif p.required:
            raise ParameterError(
                f"{workflow.ref} needs a value for parameter {name!r} ({p.describe_type()})",
                hint=f"pass --set {name}=VALUE" + (f"; {p.help}" if p.help else ""),
            )
        else:
            continue
        for target in p.targets:
            node_id, _, input_name = target.partition(".")
            prompt[node_id].setdefault("inputs", {})[input_name] = v
    return prompt


# --------------------------------------------------------------------------------------------
# hashing


def _canonical_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".json":
        try:
            return json.dumps(json.loads(raw.decode("utf-8")), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (UnicodeDecodeError, ValueError, RecursionError):
            return raw  # not JSON (or nested past reading): hashed as it is
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")


def content_hash(folder: Path) -> str:
    """sha256 over the version folder's files: JSON canonicalised (sorted keys, compact),
    text with ``\\n`` line ends; each file contributes its relative path and digest."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _ignored(p))
    for p in files:
        rel = p.relative_to(folder).as_posix()
        h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(_canonical_bytes(p)).hexdigest().encode() + b"\n")
    return "sha256:" + h.hexdigest()


def _ignored(p: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in p.parts) or p.suffix in (".pyc", ".swp")


# --------------------------------------------------------------------------------------------
# loading


def _load_toml(path: Path) -> dict:
    if _toml is None:  # pragma: no cover
        raise WorkflowError(f"{path}: reading TOML needs Python 3.11+ or the 'tomli' package", hint="pip install tomli")
    try:
        with open(path, "rb") as fh:
            return _toml.load(fh)
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"{path}: not valid TOML: {exc}", hint="see workflows/README.md for the format") from None


def _load_json(path: Path) -> Any:
    from comfy_nodes.pixel.asset_manifest import loads_json

    try:
        # loads_json: JSON nested past reading is invalid JSON too, not a RecursionError
        return loads_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkflowError(f"{path}: not valid JSON: {exc}",
                            hint="fix the file (the message gives the line and column), or move its version "
                                 "folder out of the workflow folders") from None


def _first(folder: Path, names: tuple) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def load_workflow(folder: Path) -> Workflow:
    """Load and check one ``<name>/<version>/`` folder."""
    folder = Path(folder)
    meta_path = _first(folder, META_NAMES)
    if meta_path is None:
        raise WorkflowError(f"{folder}: no {META_NAME} (or workflow.json)", hint="see workflows/README.md for the format")
    where = str(meta_path)
    meta = _load_toml(meta_path) if meta_path.suffix == ".toml" else _load_json(meta_path)
    if not isinstance(meta, dict):
        raise WorkflowError(f"{where}: expected a table of workflow settings")
    name = str(meta.get("name") or folder.parent.name)
    version = str(meta.get("version") or folder.name)
    if name != folder.parent.name or version != folder.name:
        raise WorkflowError(
            f"{where}: declares {name}@{version} but lives in {folder.parent.name}/{folder.name}/",
            hint="the folder names are the workflow's name and version",
        )
    if not _NAME_RE.match(name):
        raise WorkflowError(f"{where}: bad workflow name {name!r}", hint="use lower case letters, digits, '-' and '_'")
    parse_version(version)
    api_path = _first(folder, API_NAMES)
    if api_path is None:
        raise WorkflowError(f"{folder}: no {API_NAME} (or api.json)", hint="export the graph with 'Export (API)' in ComfyUI")
    prompt = _load_json(api_path)
    if not isinstance(prompt, dict) or not prompt or not all(isinstance(v, dict) and "class_type" in v for v in prompt.values()):
        raise WorkflowError(f"{api_path}: not an API-format prompt (node id -> {{class_type, inputs}})")
    prompt = {str(k): v for k, v in prompt.items()}
    ui_path = _first(folder, UI_NAMES)
    ui = _load_json(ui_path) if ui_path is not None else None

    params: dict[str, Param] = {}
    for pname, spec in (meta.get("params") or {}).items():
        params[pname] = _parse_param(pname, spec, prompt, where)

    models = []
    for m in meta.get("models") or []:
        if isinstance(m, str) and m:
            models.append(Model("", m))  # folder unknown: any model folder of the server
            continue
        if not isinstance(m, dict) or not m.get("name"):
            raise WorkflowError(f"{where}: each entry of models needs folder and name, got {m!r}")
        models.append(Model(str(m.get("folder") or ""), str(m["name"]), m.get("url"), m.get("sha256")))

    outputs = []
    for o in meta.get("outputs") or []:
        out = Output(str(o)) if not isinstance(o, dict) else Output(str(o.get("node")), str(o.get("kind") or "images"))
        if out.node not in prompt:
            raise WorkflowError(f"{where}: output node {out.node!r} is not in {API_NAME}", hint=f"node ids: {', '.join(sorted(prompt))}")
        outputs.append(out)

    declared = [str(n) for n in meta.get("required_nodes") or []]
    used = sorted({str(v["class_type"]) for v in prompt.values()})
    required_nodes = sorted(set(declared) | set(used))
    return Workflow(
        name=name, version=version, description=str(meta.get("description") or "").strip(),
        params=params, api_prompt=prompt, ui=ui, required_nodes=required_nodes, models=models,
        outputs=outputs, content_hash=content_hash(folder), path=folder,
    )


def _parse_param(name: str, spec: Any, prompt: dict, where: str) -> Param:
    if not isinstance(spec, dict):
        raise WorkflowError(f"{where}: params.{name} must be a table")
    t = str(spec.get("type") or "")
    t = _TYPE_ALIASES.get(t, t)
    if t not in PARAM_TYPES:
        raise WorkflowError(f"{where}: params.{name} has type {t!r}", hint="types: " + ", ".join(PARAM_TYPES))
    targets = spec.get("targets", spec.get("target"))
    if isinstance(targets, str):
        targets = [targets]
    if not targets:
        raise WorkflowError(f"{where}: params.{name} has no targets", hint='targets = ["NODE_ID.input_name", ...]')
    targets = [f"{tg[0]}.{tg[1]}" if isinstance(tg, (list, tuple)) and len(tg) == 2 else tg for tg in targets]
    for tg in targets:
        node_id, dot, input_name = str(tg).partition(".")
        if not dot or not input_name:
            raise WorkflowError(f"{where}: params.{name} target {tg!r} is not NODE_ID.input_name")
        if node_id not in prompt:
            raise WorkflowError(f"{where}: params.{name} targets node {node_id!r}, which is not in {API_NAME}",
                                hint=f"node ids: {', '.join(sorted(prompt))}")
    choices = spec.get("choices")
    if t == "enum" and not choices:
        raise WorkflowError(f"{where}: params.{name} is an enum without choices")
    p = Param(
        name=name, type=t, targets=[str(x) for x in targets], default=None, help=str(spec.get("help") or spec.get("description") or ""),
        min=spec.get("min"), max=spec.get("max"), choices=list(choices) if choices else None,
        required=bool(spec.get("required", False)),
    )
    if "default" in spec:
        try:
            p.default = p.coerce(spec["default"])
        except ParameterError as exc:
            raise WorkflowError(f"{where}: default of params.{name}: {exc.message}", hint=exc.hint) from None
    return p


# --------------------------------------------------------------------------------------------
# registry


def version_key(version: str) -> tuple:
    """Sort key of a version folder's name: semantic versions numerically, then other names
    (a broken folder may be called anything) as text."""
    m = _VERSION_RE.match(version)
    return (0, tuple(int(g) for g in m.groups())) if m else (1, version)


@dataclass
class Registry:
    roots: list[Path]
    workflows: dict[str, dict[str, Workflow]] = field(default_factory=dict)  # name -> version -> wf
    #: versions that cannot be used, name -> version -> why: a file that does not parse, a check
    #: that failed, the same version twice with other content. One broken version leaves every
    #: other workflow usable; asking for it (or for its name, when it is the newest) raises this.
    broken: dict[str, dict[str, WorkflowError]] = field(default_factory=dict)

    def broken_refs(self) -> list[tuple[str, WorkflowError]]:
        """``("name@version", error)`` for every version that cannot be used, by name and version."""
        return [(f"{n}@{v}", self.broken[n][v]) for n in sorted(self.broken)
                for v in sorted(self.broken[n], key=version_key)]

    def _broken_error(self, name: str, version: str) -> WorkflowError:
        exc = self.broken[name][version]
        ref = f"{name}@{version}"
        message = exc.message if exc.message.startswith(ref) else f"{ref} cannot be used: {exc.message}"
        usable = self.versions(name)
        hint = exc.hint + (f"; the other versions work, e.g. {name}@{usable[-1]}" if usable else "")
        return WorkflowError(message, hint=hint)

    def list(self) -> list[Workflow]:
        """The newest version of every workflow, by name."""
        return [self._newest(name) for name in sorted(self.workflows)]

    def versions(self, name: str) -> list[str]:
        """All versions of ``name``, oldest first."""
        return sorted(self.workflows.get(name, {}), key=parse_version)

    def all(self) -> list[Workflow]:
        return [self.workflows[n][v] for n in sorted(self.workflows) for v in self.versions(n)]

    def _newest(self, name: str) -> Workflow:
        return self.workflows[name][self.versions(name)[-1]]

    def get(self, ref: str) -> Workflow:
        """``name``, ``name@X.Y.Z`` or a prefix ``name@X`` / ``name@X.Y`` (newest match)."""
        name, _, ver = str(ref).strip().partition("@")
        broken = self.broken.get(name, {})
        if name not in self.workflows and not broken:
            known = ", ".join(sorted(self.workflows)) or "(none)"
            raise WorkflowError(f"unknown workflow {name!r}", hint=f"available workflows: {known}")
        versions = self.versions(name)
        # a broken version still counts when resolving: `sprite` must not quietly run an older
        # version than the newest one on disk
        candidates = sorted(set(versions) | {v for v in broken if _VERSION_RE.match(v)}, key=parse_version)
        if ver in broken:
            raise self._broken_error(name, ver)
        if not ver:
            if not candidates:
                raise self._broken_error(name, sorted(broken, key=version_key)[-1])
            chosen = candidates[-1]
        else:
            parts = ver.split(".")
            if len(parts) > 3 or not all(p.isdigit() for p in parts):
                raise WorkflowError(f"{ref!r}: {ver!r} is not a version or version prefix",
                                    hint=f"available versions of {name}: {', '.join(versions)}")
            want = tuple(int(p) for p in parts)
            matches = [v for v in candidates if parse_version(v)[: len(want)] == want]
            if not matches:
                raise WorkflowError(f"{name} has no version {ver}",
                                    hint=f"available versions of {name}: {', '.join(versions)}")
            chosen = matches[-1]
        if chosen in broken:
            raise self._broken_error(name, chosen)
        return self.workflows[name][chosen]

    def __contains__(self, ref: str) -> bool:
        try:
            self.get(ref)
        except WorkflowError:
            return False
        return True


def _env_roots() -> list[Path]:
    raw = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


#: Parsed workflows by folder, with the (name, mtime, size) of the folder's files they came
#: from: a long-running process (the MCP server, a watcher) re-reads a folder only when a file
#: in it changed, instead of parsing every TOML and JSON file on each call (~20 ms).
_LOADED: dict[Path, tuple[tuple, Workflow]] = {}


def _folder_key(folder: Path) -> tuple:
    out = []
    for p in sorted(folder.iterdir()):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _load_cached(folder: Path) -> Workflow:
    folder = Path(os.path.abspath(folder))
    key = _folder_key(folder)
    hit = _LOADED.get(folder)
    if hit is not None and hit[0] == key:
        return hit[1]
    wf = load_workflow(folder)
    _LOADED[folder] = (key, wf)
    return wf


def load_registry(root: str | os.PathLike | Iterable | None = None, *, enforce_lock: bool = True) -> Registry:
    """Load every workflow under the roots.

    ``root`` None: the shipped ``workflows/`` folder plus the folders in ``$DGX_PIXELS_WORKFLOWS``.
    A path (or a list of paths): only those folders. ``enforce_lock``: a released version
    (in its root's ``workflows.lock``) whose files no longer match the locked hash is broken:
    its runs would be recorded under a name and version whose content they did not run.
    """
    if root is None:
        roots = [default_root(), *_env_roots()]
    elif isinstance(root, (str, os.PathLike)):
        roots = [Path(root)]
    else:
        roots = [Path(r) for r in root]
    reg = Registry(roots=roots)
    for r in roots:
        if not r.is_dir():
            if r != default_root():
                # the hint names where the folder came from: $DGX_PIXELS_WORKFLOWS, or the caller
                # (`workflows lock --root`)
                what = "is not a folder" if r.exists() else "does not exist"
                raise WorkflowError(f"workflow folder {r} {what}",
                                    hint=f"check ${ENV_VAR}" if root is None else
                                    "give a folder that holds NAME/VERSION/workflow.toml folders")
            continue
        folders = sorted({m.parent for n in META_NAMES for m in r.glob(f"*/*/{n}")})
        lock = read_lock(r) if enforce_lock else {}
        for folder in folders:
            try:
                wf = _load_cached(folder)
            except WorkflowError as exc:
                _mark_broken(reg, folder.parent.name, folder.name, exc)
                continue
            except OSError as exc:
                _mark_broken(reg, folder.parent.name, folder.name,
                             WorkflowError(f"{folder}: cannot be read: {exc.strerror or exc}",
                                           hint="check the folder's permissions"))
                continue
            if wf.version in reg.broken.get(wf.name, {}):
                continue  # one copy of this version is broken: it stays so, whatever the others hold
            locked = lock.get(wf.ref)
            if locked is not None and locked != wf.content_hash:
                _mark_broken(reg, wf.name, wf.version, _changed_release(wf, r))
                continue
            have = reg.workflows.get(wf.name, {}).get(wf.version)
            if have is not None and have.content_hash != wf.content_hash:
                # the integrity check stays, for this version only: neither copy can be trusted
                _mark_broken(reg, wf.name, wf.version, WorkflowError(
                    f"{wf.ref} exists twice with different content: {have.path} and {wf.path}",
                    hint="give the user copy a new version number",
                ))
            elif have is None:
                reg.workflows.setdefault(wf.name, {})[wf.version] = wf
    return reg


def _next_patch(versions: Iterable[str], name: str) -> str:
    """``name/X.Y.Z+1`` after the newest of ``versions``: where a change to a released version goes."""
    major, minor, patch = max((parse_version(v) for v in versions if _VERSION_RE.match(v)), default=(0, 0, 0))
    return f"{name}/{major}.{minor}.{patch + 1}"


def _changed_release(wf: Workflow, root: Path) -> WorkflowError:
    versions = [p.name for p in Path(wf.path).parent.iterdir() if p.is_dir()]
    return WorkflowError(
        f"{wf.ref} changed after release: {wf.path} no longer matches its hash in {root / LOCK_NAME}",
        hint=f"restore it (git checkout -- {wf.path}), or copy it to a new version folder, "
             f"e.g. {_next_patch(versions, wf.name)}, and run `dgx-pixels workflows lock`",
    )


def _mark_broken(reg: Registry, name: str, version: str, exc: WorkflowError) -> None:
    """Record ``name@version`` as unusable (the first error found for it is kept) and drop a
    copy of it loaded from another root: which of the two was meant cannot be told."""
    reg.broken.setdefault(name, {}).setdefault(version, exc)
    usable = reg.workflows.get(name)
    if usable is not None:
        usable.pop(version, None)
        if not usable:
            del reg.workflows[name]


# --------------------------------------------------------------------------------------------
# lock file


@dataclass
class LockResult:
    added: list[str]
    unchanged: list[str]
    path: Path


def read_lock(root: Path | None = None) -> dict[str, str]:
    """``{"name@version": "sha256:..."}`` from ``<root>/workflows.lock`` ({} when absent)."""
    path = Path(root or default_root()) / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        data = _load_json(path)
    except WorkflowError as exc:
        raise WorkflowError(exc.message, hint="fix it, or restore it from version control") from None
    entries = data.get("workflows") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise WorkflowError(f"{path}: expected {{\"workflows\": {{\"name@version\": \"sha256:...\"}}}}")
    return {str(k): str(v) for k, v in entries.items()}


def check_lock(root: Path | None = None) -> list[str]:
    """Problems between the versions on disk and the lock: changed or deleted released
    versions, and versions not locked yet. Empty when everything matches."""
    root = Path(root or default_root())
    lock = read_lock(root)
    reg = load_registry(root, enforce_lock=False)
    problems = [f"{ref} cannot be loaded: {exc.message}" for ref, exc in reg.broken_refs()]
    broken = {ref for ref, _exc in reg.broken_refs()}
    on_disk = {wf.ref: wf for wf in reg.all()}
    for ref, h in sorted(lock.items()):
        wf = on_disk.get(ref)
        if ref in broken:
            continue  # said above
        if wf is None:
            problems.append(f"{ref} is locked but missing on disk (released versions must not be deleted)")
        elif wf.content_hash != h:
            problems.append(f"{ref} changed after release ({wf.path}): lock {h[:19]}..., disk {wf.content_hash[:19]}...")
    for ref in sorted(set(on_disk) - set(lock)):
        problems.append(f"{ref} is not in {LOCK_NAME} yet (run `dgx-pixels workflows lock`)")
    return problems


def update_lock(root: Path | None = None) -> LockResult:
    """Add new versions to the lock. Refuses (``WorkflowError``) when a released version changed
    or disappeared: a released version is immutable, publish a new version instead."""
    root = Path(root or default_root())
    lock = read_lock(root)
    reg = load_registry(root, enforce_lock=False)
    if reg.broken:
        # its content hash would lock a version nobody can run
        raise WorkflowError(
            "cannot lock while workflow versions cannot be loaded: "
            + "; ".join(f"{ref} ({exc.message})" for ref, exc in reg.broken_refs()),
            hint=f"fix them, or move their folders out of {root}",
        )
    on_disk = {wf.ref: wf for wf in reg.all()}
    bad = []
    changed: list[str] = []
    for ref, h in sorted(lock.items()):
        wf = on_disk.get(ref)
        if wf is None:
            bad.append(f"{ref} (deleted)")
        elif wf.content_hash != h:
            bad.append(f"{ref} ({wf.path})")
            changed.append(wf.name)
    if bad:
        example = "e.g. 1.0.1"
        if changed:
            # the next patch after the workflow's newest version, not a fixed 1.0.1
            example = "e.g. " + _next_patch(reg.workflows.get(changed[0], {}), changed[0])
        raise WorkflowError(
            "released workflow versions changed: " + ", ".join(bad),
            hint=f"restore them (git checkout) and put the change in a new version folder, {example}",
        )
    added = sorted(set(on_disk) - set(lock), key=lambda r: (r.split("@")[0], parse_version(r.split("@")[1])))
    unchanged = sorted(lock)
    if added:
        new = dict(lock)
        for ref in added:
            new[ref] = on_disk[ref].content_hash
        body = {"version": 1, "hash": "sha256 over canonicalised files, see workflows/README.md",
                "workflows": dict(sorted(new.items()))}
        _atomic_write(root / LOCK_NAME, json.dumps(body, indent=2, sort_keys=False) + "\n")
    return LockResult(added=added, unchanged=unchanged, path=root / LOCK_NAME)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
