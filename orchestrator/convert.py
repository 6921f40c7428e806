"""Convert ComfyUI editor-format workflows ("UI format") into API-format prompts.

An editor file (``nodes`` / ``links`` arrays, optional ``definitions.subgraphs``) stores widget
values positionally and keeps frontend-only constructs (notes, reroutes, legacy primitive nodes,
subgraphs, bypassed and muted nodes). ``POST /prompt`` wants the API format instead:
``{node_id: {"class_type", "inputs", "_meta"}}``. The conversion needs the server's
``/object_info`` because the meaning of each ``widgets_values`` position depends on the node's
input definitions.

The rules replicate ComfyUI frontend 1.32.9's ``graphToPrompt`` (what "Export (API)" and
"Queue" send) so that a converted file is the prompt the browser would have queued:

* Widgets follow ``/object_info`` input order (``input_order`` when present), but the frontend
  adds widgets that are serialized into ``widgets_values`` and never sent to the server:
  ``control_after_generate`` after INT inputs that declare it, or, when they do not say, inputs
  named ``seed`` / ``noise_seed``; ``control_after_generate`` + a filter-list string after COMBO
  inputs that declare it; the upload button of image / video / audio loaders. Those positions
  are skipped.
* ``Note``, ``MarkdownNote``, ``Reroute``, ``PrimitiveNode`` and subgraph nodes are not emitted.
  Links through reroutes resolve to the real source; a legacy ``PrimitiveNode`` pushes its value
  into every widget it feeds.
* Muted (mode 2) and bypassed (mode 4) nodes are not emitted. A link from a bypassed node is
  re-pointed to that node's input of a matching type (recursively); when none matches, the
  consumer keeps its widget value or loses the input. Inputs linked to nodes that are not
  emitted (muted) are dropped.
* Subgraphs are flattened, inner ids become ``outer:inner`` (``a:b:c`` when nested). Their
  contents are emitted whatever the subgraph node's own mode (the frontend does the same);
  a bypassed subgraph node is skipped by type like any bypassed node.
* Legacy group nodes (``extra.groupNodes``, type ``workflow>NAME``) are expanded into their
  inner nodes, ids ``group:index``, with the group's widget values pushed into them.
* An input that refers to a link missing from the file is an error, as in the frontend.
* Text widgets that declare ``dynamicPrompts`` are expanded (``{a|b}`` choices, ``//`` and
  ``/* */`` comments removed) and ``filename_prefix`` of save nodes gets ``%date:...%`` /
  ``%Node.widget%`` replacements, as the frontend does when it serializes.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import WorkflowError

MODE_ALWAYS = 0
MODE_NEVER = 2  # muted
MODE_BYPASS = 4

# Frontend-only node types (never sent to the server).
VIRTUAL_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})

_SEED_NAMES = ("seed", "noise_seed")
# Widget types the frontend knows (core widgets + the custom ones its bundled extensions add).
_WIDGET_TYPES = frozenset(
    {
        "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "COLOR",
        "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA", "AUDIOUPLOAD", "AUDIO_UI",
        "AUDIO_RECORD", "WEBCAM", "LOAD_3D", "PREVIEW_3D",
    }
)
# Save nodes whose filename_prefix gets %...% replacements on serialization.
_TEXT_REPLACE_NODES = frozenset(
    {
        "SaveImage", "SaveVideo", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB",
        "SaveAnimatedPNG", "CLIPSave", "VAESave", "ModelSave", "LoraSave", "SaveLatent",
    }
)
_AUDIO_UI_NODES = ("LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus")

_UNSET = object()


# --------------------------------------------------------------------------------------------
# format detection


def is_editor_format(doc: Any) -> bool:
    """True for an editor ("UI") workflow: a dict with a ``nodes`` list (and ``links``)."""
    return isinstance(doc, dict) and isinstance(doc.get("nodes"), list) and "links" in doc


def is_api_format(doc: Any) -> bool:
    """True for an API prompt: every value is a node dict with ``class_type`` and ``inputs``."""
    if not isinstance(doc, dict) or not doc or is_editor_format(doc):
        return False
    return all(isinstance(v, dict) and "class_type" in v for v in doc.values())


# --------------------------------------------------------------------------------------------
# node definitions from /object_info


@dataclass
class InputSpec:
    """One input of a node definition, in the frontend's (V2) shape."""

    name: str
    type: str
    options: dict
    optional: bool
    combo_values: list | None = None

    @property
    def force_input(self) -> bool:
        return bool(self.options.get("forceInput"))

    @property
    def is_widget(self) -> bool:
        return self.type in _WIDGET_TYPES and not self.force_input


@dataclass
class NodeDef:
    """A node type as the frontend builds it: ordered inputs, outputs, display name."""

    name: str
    display_name: str
    inputs: dict[str, InputSpec]  # insertion order = nodeData.inputs order
    ordered: list[InputSpec]  # getOrderedInputSpecs order
    outputs: list[str]
    raw_inputs: dict = field(default_factory=dict)  # V1 specs after the extensions, {...required, ...optional}


def _is_combo_v1(spec: list) -> bool:
    return isinstance(spec[0], list) or spec[0] == "COMBO"


def _input_spec(name: str, raw: Any, optional: bool) -> InputSpec:
    if not isinstance(raw, (list, tuple)) or not raw:
        return InputSpec(name, "UNKNOWN", {}, optional)
    opts = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
    opts = dict(opts)
    if _is_combo_v1(raw):
        values = raw[0] if isinstance(raw[0], list) else list(opts.get("options") or [])
        return InputSpec(name, "COMBO", opts, optional, values)
    if isinstance(raw[0], str):
        return InputSpec(name, raw[0], opts, optional)
    return InputSpec(name, "UNKNOWN", opts, optional)


def build_node_def(class_type: str, info: dict) -> NodeDef:
    """Turn one ``/object_info`` entry into the frontend's view of the node.

    Replays the bundled extensions that add inputs before the node is registered (upload
    buttons of media loaders, the audio player widget) and ``defaultInput`` -> ``forceInput``.
    """
    raw_input = copy.deepcopy(info.get("input") or {})
    required = dict(raw_input.get("required") or {})
    optional = dict(raw_input.get("optional") or {})
    for raw in optional.values():
        if isinstance(raw, list) and len(raw) > 1 and isinstance(raw[1], dict) and raw[1].get("defaultInput"):
            raw[1]["forceInput"] = True
    # Comfy.AudioWidget, then Comfy.UploadAudio, then Comfy.UploadImage (registration order).
    if class_type in _AUDIO_UI_NODES:
        required["audioUI"] = ["AUDIO_UI", {}]
    audio = required.get("audio")
    if isinstance(audio, list) and len(audio) > 1 and isinstance(audio[1], dict) and audio[1].get("audio_upload") is True:
        required["upload"] = ["AUDIOUPLOAD", {}]
    for in_name, raw in list(required.items()):
        if not isinstance(raw, list) or len(raw) < 2 or not isinstance(raw[1], dict):
            continue
        o = raw[1]
        if (o.get("image_upload") is True or o.get("video_upload") is True or o.get("animated_image_upload") is True) and _is_combo_v1(raw):
            required["upload"] = ["IMAGEUPLOAD", {**o, "imageInputName": in_name}]
            break
    if class_type == "SaveGLB":
        required["image"] = ["PREVIEW_3D"]

    inputs: dict[str, InputSpec] = {}
    for n, raw in required.items():
        inputs[n] = _input_spec(n, raw, False)
    for n, raw in optional.items():
        if n not in inputs:
            inputs[n] = _input_spec(n, raw, True)

    order = info.get("input_order")
    if not order:
        ordered = list(inputs.values())
    else:
        ordered = []
        for n in order.get("required") or []:
            s = inputs.get(n)
            if s is not None and not s.optional:
                ordered.append(s)
        for n in order.get("optional") or []:
            s = inputs.get(n)
            if s is not None and s.optional:
                ordered.append(s)
        seen = {s.name for s in ordered}
        ordered += [s for s in inputs.values() if s.name not in seen]
    outputs = [o if isinstance(o, str) else "COMBO" for o in (info.get("output") or [])]
    raw_inputs = {**required, **{k: v for k, v in optional.items() if k not in required}}
    return NodeDef(class_type, info.get("display_name") or class_type, inputs, ordered, outputs, raw_inputs)


# --------------------------------------------------------------------------------------------
# widgets


@dataclass
class Widget:
    """A frontend widget: ``serialize`` = stored in widgets_values, ``api`` = sent to the server."""

    name: str
    value: Any
    serialize: bool = True
    api: bool = True
    kind: str = ""
    dynamic_prompts: bool = False
    upload_folder: str | None = None  # image combo of a loader: value gets "[folder]" annotation
    allow_batch: bool = False
    upload_initial: Any = None
    multiline: bool = False


def _combo_default(spec: InputSpec) -> Any:
    if spec.options.get("default"):
        return spec.options["default"]
    if spec.combo_values:
        return spec.combo_values[0]
    if spec.options.get("remote"):
        return "Loading..."
    return None


def _widgets_for(spec: InputSpec, node_widgets: list[Widget]) -> list[Widget]:
    """The widgets the frontend's constructor for ``spec`` adds, in order."""
    o = spec.options
    t = spec.type
    if t == "INT":
        out = [Widget(spec.name, o.get("default", 0), kind="INT")]
        cag = o.get("control_after_generate")
        if (cag if cag is not None else spec.name in _SEED_NAMES):
            out.append(Widget("control_after_generate", "randomize", api=False, kind="control"))
        return out
    if t == "FLOAT":
        return [Widget(spec.name, o.get("default", 0), kind="FLOAT")]
    if t == "BOOLEAN":
        return [Widget(spec.name, o.get("default", False), kind="BOOLEAN")]
    if t == "STRING":
        w = Widget(spec.name, o.get("default", ""), kind="STRING", multiline=bool(o.get("multiline")))
        if isinstance(o.get("dynamicPrompts"), bool):
            w.dynamic_prompts = o["dynamicPrompts"]
        return [w]
    if t == "TEXTAREA":
        return [Widget(spec.name, o.get("default") or "", kind="TEXTAREA")]
    if t == "COMBO":
        w = Widget(spec.name, _combo_default(spec), kind="COMBO")
        out = [w]
        remote = o.get("remote")
        if isinstance(remote, dict) and remote.get("refresh_button"):
            out.append(Widget("Auto-refresh after generation", False, api=False, kind="toggle"))
        if o.get("control_after_generate"):
            out.append(Widget("control_after_generate", "randomize", api=False, kind="control"))
            out.append(Widget("control_filter_list", "", api=False, kind="filter"))
        return out
    if t == "IMAGEUPLOAD":
        target = next((w for w in node_widgets if w.name == o.get("imageInputName")), None)
        if target is not None:
            target.upload_folder = o.get("image_folder") or "input"
            target.allow_batch = bool(o.get("allow_batch"))
            target.upload_initial = "undefined" if target.value is None else _js_str(target.value)
        return [Widget(spec.name, "image", api=False, kind="button")]
    if t == "AUDIOUPLOAD":
        return [Widget(spec.name, "", api=False, kind="button")]
    if t == "AUDIO_UI":
        return [Widget("audioUI", "", serialize=False, kind="dom")]
    if t == "MARKDOWN":
        return [Widget(spec.name, o.get("default", ""), kind="MARKDOWN")]
    if t == "PREVIEW_3D":
        # the 3D viewer of SaveGLB; its stored value (normally "") is sent as is
        return [Widget(spec.name, "", kind="dom")]
    if t == "AUDIO_RECORD":
        # the recorder serializes "" until something was recorded in the browser
        return [Widget(spec.name, "", kind="record"), Widget(spec.name, "", api=False, kind="button")]
    if t in ("LOAD_3D", "WEBCAM"):
        raise WorkflowError(
            f"input {spec.name!r} uses the browser-only widget {t}, whose value only exists in a live editor",
            hint="export this workflow with 'Export (API)' from the ComfyUI editor instead",
        )
    return [Widget(spec.name, o.get("default"), kind=t)]


def _js_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


# --------------------------------------------------------------------------------------------
# legacy group nodes ("Convert to Group Node", stored in extra.groupNodes)

GROUP_PREFIX = "workflow>"
# the frontend names a subgraph's node type by the subgraph's id, a UUID
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _spec_type_name(raw: Any) -> str:
    if isinstance(raw, (list, tuple)) and raw:
        return "COMBO" if isinstance(raw[0], list) else str(raw[0])
    return "UNKNOWN"


@dataclass
class GroupConfig:
    """The frontend's GroupNodeConfig: how a group node's own inputs, widgets and outputs map
    onto the nodes inside it (by their index in the definition)."""

    name: str
    data: dict
    info: dict = field(default_factory=dict)  # synthesized /object_info entry of the group type
    old_to_new_input: dict = field(default_factory=dict)  # inner index -> {inner slot: group input index}
    new_to_old_widget: dict = field(default_factory=dict)  # group widget name -> (inner index, input name)
    primitive_to_widget: dict = field(default_factory=dict)  # inner primitive index -> [(inner index, input name)]
    new_to_old_output: dict = field(default_factory=dict)  # group output slot -> (inner index, slot)
    links_to: dict = field(default_factory=dict)  # inner index -> {slot: link}

    @classmethod
    def build(cls, name: str, data: dict, conv: "_Converter") -> "GroupConfig":
        cfg = cls(name, data)
        nodes = [n for n in data.get("nodes") or [] if isinstance(n, dict)]
        links = [lk for lk in data.get("links") or [] if isinstance(lk, (list, tuple)) and len(lk) >= 4]
        links_from: dict = {}
        for lk in links:
            o_idx, o_slot, t_idx, t_slot = lk[0], lk[1], lk[2], lk[3]
            if o_idx is None:
                continue
            links_from.setdefault(o_idx, {}).setdefault(o_slot, []).append(lk)
            cfg.links_to.setdefault(t_idx, {})[t_slot] = lk
        external: dict = {}
        for e in data.get("external") or []:
            if isinstance(e, (list, tuple)) and len(e) >= 3:
                external.setdefault(e[0], {})[e[1]] = e[2]
        node_config = data.get("config") or {}
        required: dict = {}
        used: dict = {}
        outputs: list = []
        out_names: list = []
        out_used: dict = {}
        primitive_defs: dict = {}
        old_to_new_widget: dict = {}
        counter = [0]
        deferred = []

        def input_config(node: dict, idx: int, in_name: str, spec: Any, extra: dict | None = None):
            conf = ((node_config.get(str(idx)) or node_config.get(idx) or {}).get("input") or {}).get(in_name) or {}
            label = next((i.get("label") for i in node.get("inputs") or [] if i.get("name") == in_name and i.get("label")), None)
            r = conf.get("name") or label or in_name
            key = r
            prefix = ""
            if (node.get("type") == "PrimitiveNode" and node.get("title")) or r in used:
                prefix = f"{node.get('title') or node.get('type')} "
                key = r = f"{prefix}{in_name}"
                if r in used:
                    r = f"{prefix}{used[r]} {in_name}"
            used[key] = used.get(key, 1) + 1
            if in_name in _SEED_NAMES:
                extra = dict(extra or {})
                extra["control_after_generate"] = f"{prefix}control_after_generate"
            if extra:
                spec = [spec[0], {**(spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}), **extra}]
            return r, spec, conf

        def check_primitive(link: list, in_name: str, inputs: dict) -> None:
            src = link[0]
            if not (0 <= src < len(nodes)) or nodes[src].get("type") != "PrimitiveNode" or src not in primitive_defs:
                return
            spec = primitive_defs[src]
            target_opts = inputs.get(in_name)
            opts = dict(target_opts[1]) if isinstance(target_opts, list) and len(target_opts) > 1 and isinstance(target_opts[1], dict) else {}
            opts["control_after_generate"] = True
            spec[1] = opts  # the group's "value" widget shares this list: mutate in place
            cfg.primitive_to_widget.setdefault(src, []).append((link[2], in_name))

        for idx, node in enumerate(nodes):
            ntype = node.get("type")
            nd = conv.node_def(ntype) if ntype not in VIRTUAL_TYPES else None
            raw_inputs: dict
            out_types: list
            if nd is not None:
                raw_inputs = nd.raw_inputs
                out_types = list(nd.outputs)
                out_labels = conv._output_names(ntype)
            elif ntype == "PrimitiveNode":
                lf = links_from.get(idx)
                if not lf:
                    continue
                first = lf[min(lf)][0] if 0 not in lf else lf[0][0]
                ptype = first[5] if len(first) > 5 else "*"
                if ptype == "COMBO":
                    wname = ((node.get("outputs") or [{}])[0].get("widget") or {}).get("name")
                    tnode = nodes[first[2]] if 0 <= first[2] < len(nodes) else {}
                    tdef = conv.node_def(tnode.get("type"))
                    tspec = tdef.raw_inputs.get(wname) if tdef else None
                    ptype = tspec[0] if tspec else "COMBO"
                spec = [ptype, {}]
                primitive_defs[idx] = spec
                raw_inputs = {"value": spec}
                out_types = [ptype if isinstance(ptype, str) else "COMBO"]
                out_labels = out_types
            else:
                continue  # reroutes and notes inside a group node are not supported by the frontend either
            saved_inputs = [i for i in node.get("inputs") or [] if isinstance(i, dict)]
            keys = list(raw_inputs)
            if keys:
                converted: dict = {}
                slots: list = []
                old_to_new_widget[idx] = {}
                for in_name in keys:
                    if _spec_type_name(raw_inputs[in_name]) in _WIDGET_TYPES:
                        d = next((k for k, i in enumerate(saved_inputs)
                                  if i.get("name") == in_name and (i.get("widget") or {}).get("name") == in_name), -1)
                        if d > -1:
                            converted[d] = in_name
                        else:
                            gname, conf_spec, _ = input_config(node, idx, in_name, raw_inputs[in_name])
                            required[gname] = conf_spec
                            old_to_new_widget[idx][in_name] = gname
                            cfg.new_to_old_widget[gname] = (idx, in_name)
                    else:
                        slots.append(in_name)
                lt = cfg.links_to.get(idx, {})
                o2n = cfg.old_to_new_input.setdefault(idx, {})
                for r, in_name in enumerate(slots):
                    if lt.get(r):
                        check_primitive(lt[r], in_name, raw_inputs)
                        continue
                    gname, conf_spec, conf = input_config(node, idx, in_name, raw_inputs[in_name])
                    if conf.get("visible") is not False:
                        required[gname] = conf_spec
                        o2n[r] = counter[0]
                        counter[0] += 1

                def later(idx=idx, node=node, slots=slots, converted=converted, raw_inputs=raw_inputs, lt=lt, o2n=o2n):
                    order = sorted(converted, key=lambda k: str(k))  # JavaScript's default sort
                    for d, k in enumerate(order):
                        in_name = converted[k]
                        slot = len(slots) + d
                        if lt.get(slot):
                            check_primitive(lt[slot], in_name, raw_inputs)
                            continue
                        gname, conf_spec, _ = input_config(node, idx, in_name, raw_inputs[in_name], {"defaultInput": True})
                        required[gname] = conf_spec
                        cfg.new_to_old_widget[gname] = (idx, in_name)
                        old_to_new_widget.setdefault(idx, {})[in_name] = gname
                        o2n[slot] = counter[0]
                        counter[0] += 1

                deferred.append(later)
            for n_out, otype in enumerate(out_types):
                internal = bool((links_from.get(idx) or {}).get(n_out)) and not (external.get(idx) or {}).get(n_out)
                oconf = ((node_config.get(str(idx)) or node_config.get(idx) or {}).get("output") or {}).get(str(n_out)) or {}
                visible = oconf.get("visible", not internal)
                if not visible:
                    continue
                cfg.new_to_old_output[len(outputs)] = (idx, n_out)
                outputs.append(otype)
                label = oconf.get("name") or (out_labels[n_out] if n_out < len(out_labels) else otype)
                oname = label
                if oname in out_used:
                    oname = f"{node.get('title') or ntype} {label}"
                    if oname in out_used:
                        oname = f"{node.get('title') or ntype} {idx} {label}"
                out_used[oname] = 1
                out_names.append(oname)
        for f in deferred:
            f()
        cfg.info = {"input": {"required": required}, "output": outputs, "output_name": out_names, "display_name": name}
        return cfg


# --------------------------------------------------------------------------------------------
# graph model


@dataclass
class Link:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any = None


@dataclass
class Slot:
    name: str
    type: Any
    link: Any = None
    widget: str | None = None  # name of the widget this input slot drives


@dataclass
class Node:
    """A node of one graph level (the root graph or one subgraph definition)."""

    raw: dict
    id: Any
    type: str
    mode: int
    title: str
    graph: "Graph"
    inputs: list[Slot] = field(default_factory=list)
    outputs: list[Slot] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    node_def: NodeDef | None = None
    subgraph: "Graph | None" = None  # set for subgraph instances
    promoted: dict = field(default_factory=dict)  # subgraph instances: input name -> Widget
    group: "GroupConfig | None" = None  # legacy group node instances
    inner: list = field(default_factory=list)  # group node instances: inner Nodes by index
    outputs_links: list = field(default_factory=list)  # virtual nodes: link ids per output

    @property
    def is_subgraph(self) -> bool:
        return self.subgraph is not None

    @property
    def is_virtual(self) -> bool:
        return self.is_subgraph or self.group is not None or self.type in VIRTUAL_TYPES

    def widget(self, name: str) -> Widget | None:
        return next((w for w in self.widgets if w.name == name), None)


@dataclass
class Graph:
    nodes: dict  # id -> Node (ids as found in the file, str keys for lookup)
    links: dict  # id -> Link
    inputs: list = field(default_factory=list)  # subgraph inputs: dicts with name/type/linkIds
    outputs: list = field(default_factory=list)
    name: str = ""
    id: str = ""

    def node(self, node_id: Any) -> Node | None:
        return self.nodes.get(_key(node_id))

    def link(self, link_id: Any) -> Link | None:
        if link_id is None:
            return None
        return self.links.get(_key(link_id))


def _key(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _parse_links(raw_links: Any) -> dict:
    links: dict = {}
    items = raw_links.values() if isinstance(raw_links, dict) else (raw_links or [])
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            if len(item) < 5:
                continue
            lk = Link(item[0], item[1], int(item[2] or 0), item[3], int(item[4] or 0), item[5] if len(item) > 5 else None)
        elif isinstance(item, dict):
            lk = Link(
                item.get("id"), item.get("origin_id"), int(item.get("origin_slot") or 0),
                item.get("target_id"), int(item.get("target_slot") or 0), item.get("type"),
            )
        else:
            continue
        links[_key(lk.id)] = lk
    return links


# --------------------------------------------------------------------------------------------
# conversion


class _Converter:
    def __init__(self, workflow: dict, object_info: dict, rng: random.Random | None, now: _dt.datetime | None):
        self.doc = workflow
        self.object_info = object_info
        self.rng = rng or random.Random()
        self.now = now
        self._defs: dict[str, NodeDef] = {}
        self.subgraph_defs: dict[str, dict] = {}
        self._collect_subgraph_defs(workflow)
        self.group_defs: dict[str, dict] = {}
        self.group_configs: dict[str, GroupConfig] = {}
        groups = (workflow.get("extra") or {}).get("groupNodes") or {}
        if isinstance(groups, dict):
            for gname, gdata in groups.items():
                if isinstance(gdata, dict):
                    self.group_defs[GROUP_PREFIX + str(gname)] = gdata
            for raw in workflow.get("nodes") or []:
                if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"].startswith("workflow/"):
                    raw["type"] = GROUP_PREFIX + raw["type"][len("workflow/"):]
        self._graphs: dict[str, Graph] = {}
        self._check_known_types()
        self.root = self._build_graph(workflow, path_name="workflow")

    def _check_known_types(self) -> None:
        """One ``WorkflowError`` naming every node type that is sent and that neither the server
        nor the file defines (reported one at a time, a file took a run per missing pack); a
        subgraph or group node whose definition is missing from the file is said as such, not
        as a custom node pack to install."""
        missing: dict[str, list[str]] = {}

        def scan(nodes: Any, prefix: str, in_group: bool = False) -> None:
            for raw in nodes or []:
                if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                    continue
                t = raw["type"]
                try:
                    mode = int(raw.get("mode") or 0)
                except (TypeError, ValueError):
                    mode = 0
                if t in VIRTUAL_TYPES or t in self.subgraph_defs or t in self.group_defs or (
                        not in_group and mode in (MODE_NEVER, MODE_BYPASS)):
                    continue
                if t not in self.object_info:
                    title = f" ({raw['title']})" if isinstance(raw.get("title"), str) and raw["title"] else ""
                    missing.setdefault(t, []).append(f"{prefix}{raw.get('id')}{title}")

        scan(self.doc.get("nodes"), "")
        for sg_id, sg in self.subgraph_defs.items():
            scan(sg.get("nodes"), f"{sg.get('name') or sg_id}:")
        for gname, g in self.group_defs.items():
            scan(g.get("nodes"), f"{gname[len(GROUP_PREFIX):]}:", in_group=True)
        if not missing:
            return

        def nodes_of(t: str) -> str:
            ids = missing[t]
            return f"node{'s' if len(ids) > 1 else ''} {', '.join(ids)}"

        defs = [t for t in missing if _UUID_RE.match(t) or t.startswith(GROUP_PREFIX)]
        if defs:
            said = "; ".join(f"{'group node ' + repr(t[len(GROUP_PREFIX):]) if t.startswith(GROUP_PREFIX) else 'subgraph ' + t}"
                             f" ({nodes_of(t)})" for t in defs)
            raise WorkflowError(f"the file uses definitions it does not hold: {said}",
                                hint="the file was cut or saved by an older editor: save it again from the "
                                     "ComfyUI editor (subgraphs live in definitions.subgraphs, group nodes in "
                                     "extra.groupNodes)")
        if len(missing) == 1:
            (t,) = missing
            raise WorkflowError(f"{nodes_of(t)}: type {t!r} is not known to the server",
                                hint="install the custom node pack that provides it, or check the server URL / "
                                     "object_info file")
        listed = ", ".join(f"{t!r} ({nodes_of(t)})" for t in missing)
        raise WorkflowError(f"{len(missing)} node types are not known to the server: {listed}",
                            hint="install the custom node packs that provide them (ComfyUI-Manager's 'Install "
                                 "Missing Custom Nodes' finds them), or check the server URL / object_info file")

    # -- construction ------------------------------------------------------------------------

    def _collect_subgraph_defs(self, doc: dict) -> None:
        for sg in (doc.get("definitions") or {}).get("subgraphs") or []:
            if isinstance(sg, dict) and sg.get("id"):
                self.subgraph_defs.setdefault(str(sg["id"]), sg)
                self._collect_subgraph_defs(sg)

    def node_def(self, class_type: str) -> NodeDef | None:
        if class_type not in self._defs and class_type in self.group_defs:
            if class_type in self.group_configs:  # being built: a group inside itself
                raise WorkflowError(f"group node {class_type!r} contains itself")
            self.group_configs[class_type] = None  # type: ignore[assignment]
            cfg = GroupConfig.build(class_type[len(GROUP_PREFIX):], self.group_defs[class_type], self)
            self.group_configs[class_type] = cfg
            self._defs[class_type] = build_node_def(class_type, cfg.info)
        if class_type not in self._defs:
            info = self.object_info.get(class_type)
            if not isinstance(info, dict):
                return None
            self._defs[class_type] = build_node_def(class_type, info)
        return self._defs[class_type]

    def _subgraph(self, sg_id: str, stack: tuple) -> Graph:
        if sg_id in stack:
            raise WorkflowError(f"subgraph {sg_id} contains itself", hint="the workflow file is corrupt")
        if sg_id not in self._graphs:
            sg = self.subgraph_defs[sg_id]
            g = self._build_graph(sg, path_name=f"subgraph {sg.get('name') or sg_id!r}", stack=stack + (sg_id,))
            g.inputs = list(sg.get("inputs") or [])
            g.outputs = list(sg.get("outputs") or [])
            g.name = sg.get("name") or ""
            g.id = sg_id
            self._graphs[sg_id] = g
        return self._graphs[sg_id]

    def _build_graph(self, doc: dict, path_name: str, stack: tuple = ()) -> Graph:
        graph = Graph(nodes={}, links=_parse_links(doc.get("links")))
        for raw in doc.get("nodes") or []:
            if not isinstance(raw, dict):
                continue
            node = self._build_node(raw, graph, path_name, stack)
            graph.nodes[_key(node.id)] = node
        # fixLinkInputSlots: a link's target_slot is the index of the input holding it
        for node in graph.nodes.values():
            for i, slot in enumerate(node.inputs):
                lk = graph.link(slot.link)
                if lk is not None and _key(lk.target_id) == _key(node.id):
                    lk.target_slot = i
        return graph

    def _build_node(self, raw: dict, graph: Graph, path_name: str, stack: tuple) -> Node:
        ntype = str(raw.get("type") or "")
        node_id = raw.get("id")
        try:
            mode = int(raw.get("mode") or 0)
        except (TypeError, ValueError):
            mode = 0
        saved_inputs = [i for i in (raw.get("inputs") or []) if isinstance(i, dict)]
        saved_outputs = [o for o in (raw.get("outputs") or []) if isinstance(o, dict)]
        node = Node(raw=raw, id=node_id, type=ntype, mode=mode, title=raw.get("title") or "", graph=graph)

        if ntype in self.subgraph_defs:
            node.subgraph = self._subgraph(ntype, stack)
            self._configure_subgraph_node(node, saved_inputs, saved_outputs)
            node.title = node.title or node.subgraph.name
            return node
        if ntype in VIRTUAL_TYPES:
            node.inputs = [Slot(i.get("name") or "", i.get("type"), i.get("link"), (i.get("widget") or {}).get("name")) for i in saved_inputs]
            node.outputs = [Slot(o.get("name") or "", o.get("type")) for o in saved_outputs]
            node.outputs_links = [list(o.get("links") or []) for o in saved_outputs]
            node.title = node.title or ntype
            return node

        where = f" in {path_name}" if path_name != "workflow" else ""
        title = f" ({raw.get('title')})" if raw.get("title") else ""
        nd = self.node_def(ntype)
        if nd is None:
            if mode in (MODE_NEVER, MODE_BYPASS):
                # the frontend queues a graph whose muted or bypassed node is not installed: the
                # node is never sent, and a bypass passes its input through by the saved types
                return self._placeholder(node, saved_inputs, saved_outputs)
            raise WorkflowError(
                f"node {node_id}{title}{where}: type {ntype!r} is not known to the server",
                hint="install the custom node pack that provides it, or check the server URL / object_info file",
            )
        node.node_def = nd
        node.title = node.title or nd.display_name
        # constructor: socket inputs first, then widgets (each widget input also gets a slot)
        live: list[Slot] = []
        for spec in nd.ordered:
            if not spec.is_widget:
                live.append(Slot(spec.name, spec.type))
        for spec in nd.ordered:
            if not spec.is_widget:
                continue
            try:
                ws = _widgets_for(spec, node.widgets)
            except WorkflowError as exc:
                if mode in (MODE_NEVER, MODE_BYPASS):
                    node.widgets = []
                    return self._placeholder(node, saved_inputs, saved_outputs)  # never sent: no value needed
                raise WorkflowError(f"node {node_id} ({raw.get('title') or ntype}){where}: {exc.message}",
                                    hint=exc.hint) from None
            node.widgets.extend(ws)
            if spec.type in ("INT", "FLOAT", "BOOLEAN", "STRING", "COMBO", "TEXTAREA", "COLOR", "MARKDOWN"):
                live.append(Slot(spec.name, spec.type, widget=spec.name))
        # configure(): saved slot data merged by name, unknown saved inputs appended
        by_name: dict[str, dict] = {}
        for s in saved_inputs:
            by_name.setdefault(s.get("name") or "", s)
        live_names = {s.name for s in live}
        for s in live:
            saved = by_name.get(s.name)
            if saved is not None:
                s.link = saved.get("link")
        for s in saved_inputs:
            if (s.get("name") or "") not in live_names:
                live.append(Slot(s.get("name") or "", s.get("type"), s.get("link"), (s.get("widget") or {}).get("name")))
        node.inputs = live
        node.outputs = [Slot(n, t) for n, t in zip(self._output_names(ntype), nd.outputs)]
        self._apply_widgets_values(node, raw.get("widgets_values"))
        if ntype in self.group_configs:
            if stack:
                raise WorkflowError(
                    f"node {node_id}: group nodes inside subgraphs are not supported by ComfyUI",
                    hint="convert the group node to a subgraph in the editor",
                )
            node.group = self.group_configs[ntype]
            inner_graph = Graph(nodes={}, links={})
            for idx, inner_raw in enumerate(self.group_defs[ntype].get("nodes") or []):
                inner_raw = dict(inner_raw, id=idx)
                inner = self._build_node(inner_raw, inner_graph, f"group node {ntype[len(GROUP_PREFIX):]!r}", ("group",))
                inner_graph.nodes[_key(idx)] = inner
                node.inner.append(inner)
        return node

    def _placeholder(self, node: Node, saved_inputs: list, saved_outputs: list) -> Node:
        """A node that is never sent (muted or bypassed), with the slots the file saved."""
        node.inputs = [Slot(i.get("name") or "", i.get("type"), i.get("link"), (i.get("widget") or {}).get("name"))
                       for i in saved_inputs]
        node.outputs = [Slot(o.get("name") or "", o.get("type")) for o in saved_outputs]
        node.title = node.title or node.type
        return node

    def _output_names(self, ntype: str) -> list[str]:
        info = self.object_info.get(ntype) or (self.group_configs.get(ntype).info if self.group_configs.get(ntype) else {})
        names = info.get("output_name") or []
        outs = info.get("output") or []
        return [names[i] if i < len(names) else str(o) for i, o in enumerate(outs)]

    def _apply_widgets_values(self, node: Node, values: Any) -> None:
        if isinstance(values, dict):
            # a dict of widget values is not read by the frontend for core nodes; a custom node
            # that saves one (Video Helper Suite) restores it by widget name in its own frontend
            # code, and left at their defaults its values would be silently lost (another video,
            # another frame rate)
            module = str((self.object_info.get(node.type) or {}).get("python_module") or "")
            if module.startswith("custom_nodes"):
                for w in node.widgets:
                    if w.serialize and w.name in values:
                        w.value = values[w.name]
            return
        if not isinstance(values, list):
            return
        nd = node.node_def
        names = {w.name for w in node.widgets}
        # migrateWidgetsValues: old files stored values for forceInput inputs too
        specs = [s for s in nd.inputs.values() if s.name in names or s.force_input]
        width = sum(2 if (s.options.get("control_after_generate") or s.name in _SEED_NAMES) else 1 for s in specs)
        if width == len(values):
            padded = specs + [None] * (len(values) - len(specs))
            values = [v for s, v in zip(padded, values) if not (s is not None and s.force_input)]
        serializable = [w for w in node.widgets if w.serialize]
        for w, v in zip(serializable, values):
            w.value = v

    def _configure_subgraph_node(self, node: Node, saved_inputs: list, saved_outputs: list) -> None:
        sg = node.subgraph
        live = [Slot(i.get("name") or "", i.get("type")) for i in sg.inputs]
        # the registered subgraph node type merges the saved slots by name (files saved through
        # "Export (API)" drop unlinked widget slots, so positions cannot be trusted)
        by_name: dict[str, dict] = {}
        for s in saved_inputs:
            by_name.setdefault(s.get("name") or "", s)
        names = {s.name for s in live}
        for s in live:
            if s.name in by_name:
                s.link = by_name[s.name].get("link")
        for s in saved_inputs:
            if (s.get("name") or "") not in names:
                live.append(Slot(s.get("name") or "", s.get("type"), s.get("link")))
        node.inputs = live
        node.outputs = [Slot(o.get("name") or "", o.get("type")) for o in sg.outputs]
        # promoted widgets: one per input that feeds an inner widget
        node.promoted = {}
        for slot in node.inputs:
            sg_in = next((i for i in sg.inputs if i.get("name") == slot.name), None)
            if sg_in is None:
                continue
            slot.widget = None
            for lid in sg_in.get("linkIds") or []:
                lk = sg.link(lid)
                if lk is None:
                    continue
                inner = sg.node(lk.target_id)
                if inner is None or lk.target_slot >= len(inner.inputs):
                    continue
                in_slot = inner.inputs[lk.target_slot]
                wname = in_slot.widget
                if not wname:
                    continue
                iw = inner.promoted.get(wname) if inner.is_subgraph else inner.widget(wname)
                if iw is None:
                    continue
                w = copy.copy(iw)
                w.name = slot.name
                w.serialize = True
                node.widgets.append(w)
                node.promoted[slot.name] = w
                slot.widget = slot.name
                break
        values = node.raw.get("widgets_values")
        if isinstance(values, list):
            for w, v in zip([w for w in node.widgets if w.serialize], values):
                w.value = v

    # -- value propagation ---------------------------------------------------------------------

    def _propagate_promoted(self, graph: Graph, seen: set) -> None:
        """SubgraphNode.serialize(): promoted widget values overwrite the inner widgets."""
        for node in graph.nodes.values():
            if not node.is_subgraph:
                continue
            sg = node.subgraph
            for name, w in node.promoted.items():
                sg_in = next((i for i in sg.inputs if i.get("name") == name), None)
                if sg_in is None:
                    continue
                for lid in sg_in.get("linkIds") or []:
                    lk = sg.link(lid)
                    inner = sg.node(lk.target_id) if lk else None
                    if inner is None or lk.target_slot >= len(inner.inputs):
                        continue
                    wname = inner.inputs[lk.target_slot].widget
                    target = None
                    if wname:
                        target = inner.promoted.get(wname) if inner.is_subgraph else inner.widget(wname)
                    if target is not None:
                        target.value = w.value
            if id(sg) not in seen:
                seen.add(id(sg))
                self._propagate_promoted(sg, seen)

    def _apply_primitives(self, graph: Graph, seen: set) -> None:
        """Legacy PrimitiveNode.applyToGraph(): push the value into every target widget."""
        for node in graph.nodes.values():
            if node.is_subgraph:
                if id(node.subgraph) not in seen:
                    seen.add(id(node.subgraph))
                    self._apply_primitives(node.subgraph, seen)
                continue
            if node.type != "PrimitiveNode":
                continue
            out_links = node.outputs_links[0] if node.outputs_links else []
            if not out_links:
                continue
            values = node.raw.get("widgets_values")
            if not isinstance(values, list) or not values:
                continue
            value = values[0]
            if value and (node.raw.get("properties") or {}).get("Run widget replace on values"):
                value = self._text_replace(value)
            for lid in out_links:
                lk = graph.link(lid)
                if lk is None:
                    continue
                target = graph.node(lk.target_id)
                if target is None:
                    continue
                slot = next((s for s in target.inputs if s.link is not None and _key(s.link) == _key(lid)), None)
                if slot is None or not slot.widget:
                    continue
                w = target.promoted.get(slot.widget) if target.is_subgraph else target.widget(slot.widget)
                if w is not None:
                    w.value = value

    # -- link resolution (ExecutableNodeDTO) -----------------------------------------------------

    def resolve_input(self, node: Node, path: tuple, slot_index: int, visited: set, type_: Any = _UNSET,
                      parent: tuple | None = None, strict: bool = True):
        """Follow the link into input ``slot_index``; returns ("link", id, slot), ("value", v) or None."""
        key = (id(node.graph), _key(node.id), "I", slot_index, path)
        if key in visited:
            raise WorkflowError(f"node {':'.join(map(str, path + (node.id,)))}: circular link through input {slot_index}")
        visited.add(key)
        if slot_index >= len(node.inputs):
            return None
        slot = node.inputs[slot_index]
        if slot.link is None:
            return None
        lk = node.graph.link(slot.link)
        if lk is None:
            if not strict:
                return None
            nid = ":".join(map(str, path + (node.id,)))
            raise WorkflowError(
                f"node {nid} ({node.title or node.type}) input {slot.name!r} refers to link {slot.link}, "
                "which does not exist in the file",
                hint="reconnect that input in the editor and save again",
            )
        if parent is not None and _key(lk.origin_id) == "-10":
            sg_node, sg_path = parent
            if lk.origin_slot >= len(sg_node.inputs):
                return None
            outer_slot = sg_node.inputs[lk.origin_slot]
            if outer_slot.link is None:
                w = sg_node.promoted.get(outer_slot.widget) if outer_slot.widget else None
                if w is not None:
                    return ("value", w.value)
                return None
            outer_link = sg_node.graph.link(outer_slot.link)
            if outer_link is None:
                return None
            return self.resolve_input(sg_node, sg_path, lk.origin_slot, visited, _UNSET, self._parent_of(sg_path))
        origin = node.graph.node(lk.origin_id)
        if origin is None:
            # the frontend refuses such a file (InvalidLinkError); dropped, the input would run
            # as unset: a Kontext graph without its reference image, or "required input missing"
            nid = ":".join(map(str, path + (node.id,)))
            raise WorkflowError(
                f"node {nid} ({node.title or node.type}) input {slot.name!r} is linked (link {slot.link}) to node "
                f"{lk.origin_id}, which is not in the file",
                hint="reconnect that input in the editor and save again",
            )
        want = slot.type if type_ is _UNSET else type_
        return self.resolve_output(origin, path, lk.origin_slot, want, visited, parent)

    def _parent_of(self, path: tuple):
        return self._parents.get(path)

    def resolve_output(self, node: Node, path: tuple, slot_index: int, type_: Any, visited: set, parent):
        key = (id(node.graph), _key(node.id), "O", slot_index, path)
        if key in visited:
            raise WorkflowError(f"node {':'.join(map(str, path + (node.id,)))}: circular link through output {slot_index}")
        visited.add(key)
        if node.group is not None:
            return self._resolve_group_output(node, path, slot_index, type_, visited, parent)
        if node.mode == MODE_BYPASS:
            idx = self._bypass_input(node, slot_index, type_)
            if idx < 0:
                return None
            return self.resolve_input(node, path, idx, visited, _UNSET, parent)
        if node.is_subgraph:
            sg = node.subgraph
            if slot_index >= len(sg.outputs):
                return None
            link_ids = sg.outputs[slot_index].get("linkIds") or []
            lk = sg.link(link_ids[0]) if link_ids else None
            if lk is None:
                return None
            inner = sg.node(lk.origin_id)
            if inner is None:
                return None
            inner_path = path + (node.id,)
            return self.resolve_output(inner, inner_path, lk.origin_slot, type_, visited, (node, path))
        if node.is_virtual:
            # virtual nodes (reroutes) use getInputLink(), which tolerates a missing link
            if slot_index < len(node.inputs) and node.inputs[slot_index].link is not None:
                return self.resolve_input(node, path, slot_index, visited, type_, parent, strict=False)
            return None
        return ("link", ":".join(str(p) for p in path + (node.id,)), slot_index)

    def _resolve_group_output(self, node: Node, path: tuple, slot_index: int, want: Any, visited: set, parent):
        """ExecutableGroupNodeDTO.resolveOutput: the inner node behind a group node's output."""
        if node.mode == MODE_BYPASS:
            ins = node.inputs
            for y in [slot_index, *range(len(ins))]:
                if y < len(ins) and ins[y].type == want:
                    return self.resolve_input(node, path, y, visited, _UNSET, parent)
            return None
        target = node.group.new_to_old_output.get(slot_index)
        if target is None:
            return None
        idx, slot = target
        return ("link", ":".join(str(p) for p in path + (node.id, idx)), slot)

    def _resolve_group_child(self, inner: Node, group_node: Node, slot_index: int):
        """ExecutableGroupNodeChildDTO.resolveInput: group inputs and links between inner nodes
        are taken as they are (no bypass or reroute resolution, as in the frontend)."""
        cfg = group_node.group
        idx = int(inner.id)
        w = cfg.old_to_new_input.get(idx, {}).get(slot_index)
        if w is not None:
            if w >= len(group_node.inputs):
                return None
            lk = group_node.graph.link(group_node.inputs[w].link)
            origin = group_node.graph.node(lk.origin_id) if lk is not None else None
            if origin is None:
                return None
            return ("link", str(origin.id), lk.origin_slot)
        lk = cfg.links_to.get(idx, {}).get(slot_index)
        if not lk or not (0 <= lk[0] < len(group_node.inner)):
            return None
        if group_node.inner[lk[0]].type == "PrimitiveNode":
            return None
        return ("link", f"{group_node.id}:{lk[0]}", lk[1])

    def _update_group_widgets(self) -> None:
        """GroupNodeHandler.updateInnerWidgets: the group node's widget values go to the inner nodes."""
        for node in self.root.nodes.values():
            if node.group is None:
                continue
            for gname, (idx, in_name) in node.group.new_to_old_widget.items():
                gw = node.widget(gname)
                if gw is None or not (0 <= idx < len(node.inner)):
                    continue
                inner = node.inner[idx]
                if inner.type == "PrimitiveNode":
                    for t_idx, t_in in node.group.primitive_to_widget.get(idx, []):
                        if 0 <= t_idx < len(node.inner):
                            w = node.inner[t_idx].widget(t_in)
                            if w is not None:
                                w.value = gw.value
                    continue
                w = inner.widget(in_name)
                if w is not None:
                    w.value = gw.value

    def _bypass_input(self, node: Node, out_index: int, want: Any) -> int:
        ins = node.inputs
        a = ins[out_index] if out_index < len(ins) else None
        out_type = node.outputs[out_index].type if out_index < len(node.outputs) else None
        if want in ("*", ""):
            return out_index if len(ins) > out_index else 0
        if a is not None and _valid_connection(a.type, out_type) and _valid_connection(a.type, want):
            return out_index
        for i, s in enumerate(ins):
            if s.type == want:
                return i
        for i, s in enumerate(ins):
            if _valid_connection(s.type, out_type) and _valid_connection(s.type, want):
                return i
        return -1

    # -- output ------------------------------------------------------------------------------

    def _flatten(self, graph: Graph, path: tuple, parent, out: list) -> None:
        for node in graph.nodes.values():
            if node.group is not None:
                for inner in node.inner:
                    out.append((inner, path + (node.id,), ("group", node)))
                continue
            if node.is_subgraph:
                self._parents[path + (node.id,)] = (node, path)
                self._flatten(node.subgraph, path + (node.id,), (node, path), out)
                continue
            out.append((node, path, parent))

    def convert(self) -> dict:
        self._parents: dict = {}
        self._apply_primitives(self.root, set())
        self._propagate_promoted(self.root, set())
        self._update_group_widgets()
        flat: list = []
        self._flatten(self.root, (), None, flat)
        prompt: dict[str, dict] = {}
        for node, path, parent in flat:
            if node.is_virtual or node.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            inputs: dict[str, Any] = {}
            for w in node.widgets:
                if not w.name or not w.api:
                    continue
                v = self._serialize_value(node, w)
                inputs[w.name] = {"__value__": v} if isinstance(v, list) else v
            for i, slot in enumerate(node.inputs):
                if isinstance(parent, tuple) and parent and parent[0] == "group":
                    r = self._resolve_group_child(node, parent[1], i)
                else:
                    r = self.resolve_input(node, path, i, set(), _UNSET, parent)
                if r is None:
                    continue
                if r[0] == "value":
                    v = r[1]
                    inputs[slot.name] = {"__value__": v} if isinstance(v, list) else v
                else:
                    inputs[slot.name] = [r[1], int(r[2])]
            nid = ":".join(str(p) for p in path + (node.id,))
            prompt[nid] = {"inputs": inputs, "class_type": node.type, "_meta": {"title": node.title}}
        for entry in prompt.values():
            ins = entry["inputs"]
            for k in list(ins):
                v = ins[k]
                if isinstance(v, list) and len(v) == 2 and _key(v[0]) not in prompt:
                    del ins[k]
        return prompt

    def _serialize_value(self, node: Node, w: Widget) -> Any:
        v = w.value
        if w.kind == "record":
            return ""
        if w.upload_folder is not None:
            v = _annotated(v, w)
        if w.multiline and v is not None and not isinstance(v, str):
            v = _js_str(v)
        elif w.multiline and v is None:
            v = ""
        if w.dynamic_prompts and isinstance(v, str):
            v = process_dynamic_prompt(v, self.rng)
        if w.name == "filename_prefix" and node.type in _TEXT_REPLACE_NODES and isinstance(v, str):
            v = self._text_replace(v)
        return v

    def _all_nodes(self) -> list[Node]:
        out: list[Node] = []
        seen: set = set()

        def walk(g: Graph):
            for n in g.nodes.values():
                out.append(n)
                if n.is_subgraph and id(n.subgraph) not in seen:
                    seen.add(id(n.subgraph))
                    walk(n.subgraph)

        walk(self.root)
        return out

    def _text_replace(self, text: str) -> str:
        nodes = None

        def repl(m: re.Match) -> str:
            nonlocal nodes
            parts = m.group(1).split(".")
            if len(parts) != 2:
                if parts[0].startswith("date:"):
                    return format_date(parts[0][5:], self.now or _dt.datetime.now())
                return m.group(0)
            if nodes is None:
                nodes = self._all_nodes()
            found = [n for n in nodes if (n.raw.get("properties") or {}).get("Node name for S&R") == parts[0]]
            if not found:
                found = [n for n in nodes if n.title == parts[0]]
            if not found:
                return m.group(0)
            w = found[0].widget(parts[1]) if not found[0].is_subgraph else found[0].promoted.get(parts[1])
            if w is None:
                return m.group(0)
            val = "" if w.value is None else _js_str(w.value) if not isinstance(w.value, (int, float)) or isinstance(w.value, bool) else _js_num(w.value)
            return re.sub(r'[/?<>\\:*|"\x00-\x1F\x7F]', "_", val)

        return re.sub(r"%([^%]+)%", repl, text)


def _js_num(v: float) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _annotated(v: Any, w: Widget) -> Any:
    folder = w.upload_folder or "input"

    def fmt(x: Any) -> str:
        if isinstance(x, dict):
            path = x.get("filename") or ""
            if x.get("subfolder"):
                path = f"{x['subfolder']}/{path}"
            t = x.get("type")
            return path + (_annotation(t, folder) if t else "")
        s = _js_str(x)
        return s + _annotation(s, folder)

    if not v:
        return w.upload_initial
    if isinstance(v, list):
        return [fmt(x) for x in v] if w.allow_batch else fmt(v[0]) if v else w.upload_initial
    return fmt(v)


def _annotation(s: str, folder: str) -> str:
    if re.search(r"\[(input|output|temp)\]", s, re.I) or folder == "input":
        return ""
    return f" [{folder}]"


def _valid_connection(a: Any, b: Any) -> bool:
    """LiteGraph.isValidConnection: '*' / '' / missing match anything, ',' lists are unions."""
    if a in ("", "*"):
        a = 0
    if b in ("", "*"):
        b = 0
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


def process_dynamic_prompt(text: str, rng: random.Random | None = None) -> str:
    """The frontend's dynamic-prompt expansion: strip comments, pick one of ``{a|b|c}``."""
    rng = rng or random.Random()
    text = re.sub(r"/\*[\s\S]*?\*/|//.*", "", text)
    pos = 0

    def escape() -> str:
        nonlocal pos
        ch = text[pos] if pos < len(text) else ""
        pos += 1
        return "\\" + ch

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        cur = ""
        depth = 0
        while pos < len(text):
            ch = text[pos]
            pos += 1
            if ch == "\\":
                cur += escape()
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                if not depth:
                    break
                depth -= 1
            elif ch == "|" and not depth:
                options.append(cur)
                cur = ""
                continue
            cur += ch
        options.append(cur)
        return process_dynamic_prompt(options[int(rng.random() * len(options))], rng)

    out = ""
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if ch == "\\":
            out += escape()
        elif ch == "{":
            out += choice_block()
        else:
            out += ch
    return re.sub(r"\\([{}|])", r"\1", out)


def format_date(fmt: str, when: _dt.datetime) -> str:
    """The frontend's ``%date:...%`` formatter: d/dd, M/MM, h/hh, m/mm, s/ss, yy, yyyy."""
    parts = {"d": when.day, "M": when.month, "h": when.hour, "m": when.minute, "s": when.second}

    def repl(m: re.Match) -> str:
        n = m.group(0)
        if n == "yy":
            return str(when.year)[2:]
        if n == "yyyy":
            return str(when.year)
        if n[0] in parts:
            return str(parts[n[0]]).zfill(len(n))
        return n

    return re.sub(r"dd?|MM?|hh?|mm?|ss?|yyy?y?", repl, fmt)


# --------------------------------------------------------------------------------------------
# public API


def convert_ui_to_api(
    workflow: dict,
    object_info: dict,
    *,
    rng: random.Random | None = None,
    now: _dt.datetime | None = None,
) -> dict:
    """Convert an editor-format workflow into an API prompt, as ComfyUI's frontend does.

    ``object_info`` is the server's ``GET /object_info`` (all nodes). ``rng`` drives
    ``{a|b}`` dynamic-prompt choices and ``now`` the ``%date:...%`` replacements (defaults:
    random, current time). Raises ``WorkflowError`` naming the node it cannot convert.
    """
    if not is_editor_format(workflow):
        raise WorkflowError(
            "not an editor-format workflow (no 'nodes' / 'links' arrays)",
            hint="API-format prompts need no conversion",
        )
    if not isinstance(object_info, dict) or not object_info:
        raise WorkflowError("object_info is empty", hint="pass the server's GET /object_info response")
    _check_shape(workflow)
    try:
        return _Converter(_as_js_numbers(workflow), object_info, rng, now).convert()
    except WorkflowError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # a shape the checks above did not foresee: still the file's fault, said as such
        raise WorkflowError(f"the editor workflow is malformed ({type(exc).__name__}: {exc})",
                            hint="save it again from ComfyUI, or fix the part named") from None
    except RecursionError:
        # values nested deeper than Python's stack (a document read without loads_json's limit)
        raise WorkflowError("the editor workflow is malformed: its values are nested too deeply to convert",
                            hint="save it again from ComfyUI") from None


def _check_shape(workflow: dict) -> None:
    """``WorkflowError`` naming the node whose saved fields are not what the editor writes."""
    def check(nodes: Any, where: str) -> None:
        for i, raw in enumerate(nodes or []):
            if not isinstance(raw, dict):
                raise WorkflowError(f"{where}node #{i} is {json.dumps(raw)[:40]}, not an object")
            name = f"{where}node {raw.get('id', '#' + str(i))} ({raw.get('type', '?')})"
            for key, kinds, what in (("inputs", (list,), "a list"), ("outputs", (list,), "a list"),
                                     ("widgets_values", (list, dict), "a list or an object")):
                if raw.get(key) is not None and not isinstance(raw[key], kinds):
                    raise WorkflowError(f"{name}: '{key}' is {json.dumps(raw[key])[:40]}, expected {what}",
                                        hint="save the workflow again from ComfyUI")
            if raw.get("id") is not None and not isinstance(raw["id"], (int, float, str)):
                raise WorkflowError(f"{where}node #{i}: its 'id' is {json.dumps(raw['id'])[:40]}, expected a number",
                                    hint="save the workflow again from ComfyUI")
            # the slots' fields are looked up by value: a list where a name or a link id belongs
            # failed deep inside as "unhashable type", naming nothing
            for key, fields in (("inputs", (("name", (str,)), ("type", (str, int)), ("link", (int, float, str)))),
                                ("outputs", (("name", (str,)), ("type", (str, int)), ("links", (list,))))):
                for j, slot in enumerate(raw.get(key) or []):
                    if not isinstance(slot, dict):
                        continue
                    for f, kinds in fields:
                        if slot.get(f) is not None and not isinstance(slot[f], kinds):
                            raise WorkflowError(f"{name}: {key[:-1]} #{j}'s '{f}' is {json.dumps(slot[f])[:40]}",
                                                hint="save the workflow again from ComfyUI")
    check(workflow.get("nodes"), "")
    if not isinstance(workflow.get("links"), (list, dict, type(None))):
        raise WorkflowError(f"'links' is {json.dumps(workflow['links'])[:40]}, expected a list")
    for sg in ((workflow.get("definitions") or {}).get("subgraphs") or []) if isinstance(workflow.get("definitions"), dict) else []:
        if isinstance(sg, dict):
            check(sg.get("nodes"), f"subgraph {sg.get('name') or sg.get('id')}: ")


def _as_js_numbers(v: Any) -> Any:
    """Deep copy in which integers beyond 2**53 become what JavaScript's JSON.parse +
    JSON.stringify make of them (the nearest double, printed with its shortest digits)."""
    if isinstance(v, dict):
        return {k: _as_js_numbers(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_as_js_numbers(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
        from decimal import Decimal

        return int(Decimal(repr(float(v))))
    return v


def to_api(doc: dict, object_info: dict | None = None, **kwargs: Any) -> dict:
    """Return an API prompt for either format (editor files are converted with ``object_info``)."""
    if is_editor_format(doc):
        if object_info is None:
            raise WorkflowError(
                "this workflow is in editor format and converting it needs the server's /object_info",
                hint="pass --server URL or --object-info FILE",
            )
        return convert_ui_to_api(doc, object_info, **kwargs)
    if is_api_format(doc):
        return doc
    raise WorkflowError(
        "not a ComfyUI workflow: neither editor format (nodes/links) nor API format (class_type per node)",
        hint="export it from ComfyUI with Save (editor) or Export (API)",
    )


def normalize_prompt(prompt: dict) -> dict:
    """Comparable form of an API prompt: string ids, no ``_meta``, ints for whole floats."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        return v

    out = {}
    for k, node in prompt.items():
        out[str(k)] = {"class_type": node.get("class_type"), "inputs": norm(node.get("inputs") or {})}
    return out


def load_json(path: str) -> Any:
    """The JSON in the file ``path``: ``ValueError`` for invalid JSON, JSON nested too deeply
    to read or use included (see ``loads_json``)."""
    from comfy_nodes.pixel.asset_manifest import loads_json

    with open(path, encoding="utf-8") as fh:
        return loads_json(fh.read())
