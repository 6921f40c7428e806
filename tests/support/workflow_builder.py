"""Build a ComfyUI graph once, write it in both formats ComfyUI uses.

A :class:`Graph` is written in Python (node types, inputs, links). With a live server's
``/object_info`` it is resolved into

- the API format (``POST /prompt``): every widget input present, defaults filled in, so the
  headless run and the editor run are the same graph;
- the editor format (``app.loadGraphData``, frontend 1.32.9, ``version: 0.4``): ``nodes`` with
  ``inputs`` (sockets first, then widget inputs as ``{"widget": {"name": ...}}``) and
  ``widgets_values`` in ``/object_info`` input order, including the values the frontend adds
  itself (``control_after_generate`` after a seed, LoadImage's ``upload`` button), plus the
  ``links`` array ``[id, from_node, from_slot, to_node, to_slot, type]``.

The browser test loads the editor file and checks ``graphToPrompt()`` against the API file,
so any mistake in this ordering fails a test instead of silently shifting widget values.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


@dataclass
class Node:
    id: int
    class_type: str
    inputs: dict[str, Any]
    title: str | None = None
    color: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, slot: int) -> tuple[str, int]:
        return (str(self.id), slot)

    @property
    def out(self) -> tuple[str, int]:
        return (str(self.id), 0)


@dataclass
class Note:
    text: str
    title: str = "Note"
    pos: tuple[float, float] | None = None


class Graph:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.notes: list[Note] = []

    def add(self, class_type: str, *, title: str | None = None, color: str | None = None,
            properties: dict | None = None, **inputs: Any) -> Node:
        node = Node(len(self.nodes) + 1, class_type, inputs, title, color, properties or {})
        self.nodes.append(node)
        return node

    def note(self, text: str, title: str = "Note") -> None:
        self.notes.append(Note(text, title))

    def node(self, nid: str | int) -> Node:
        return self.nodes[int(nid) - 1]


def _is_link(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)


def _spec_inputs(info: dict) -> list[tuple[str, list, bool]]:
    """(name, spec, required) in the frontend's order: required then optional, each as declared."""
    order = info.get("input_order") or {k: list(v) for k, v in info.get("input", {}).items()}
    out = []
    for group in ("required", "optional"):
        specs = info.get("input", {}).get(group, {})
        for name in order.get(group, []):
            if name in specs:
                out.append((name, specs[name], group == "required"))
    return out


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if opts.get("forceInput") or opts.get("rawLink"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _combo_options(spec: list) -> list:
    if isinstance(spec[0], list):
        return spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return list(opts.get("options", []))


def _default(name: str, spec: list, class_type: str) -> Any:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in opts:
        return opts["default"]
    if isinstance(spec[0], list) or spec[0] == "COMBO":
        options = _combo_options(spec)
        if options:
            return options[0]
    raise KeyError(f"{class_type}.{name}: no value given and no default in /object_info")


def _type_name(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else str(spec[0])


def resolve(graph: Graph, object_info: dict) -> dict[str, dict[str, Any]]:
    """Full input values per node id (links stay tuples); unknown node types or inputs raise."""
    out: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        info = object_info.get(node.class_type)
        if info is None:
            raise KeyError(f"node type {node.class_type} is not on the server")
        specs = _spec_inputs(info)
        known = {n for n, _, _ in specs}
        unknown = set(node.inputs) - known
        if unknown:
            raise KeyError(f"{node.class_type} has no input(s) {sorted(unknown)}; it has {sorted(known)}")
        values: dict[str, Any] = {}
        for name, spec, required in specs:
            if name in node.inputs:
                values[name] = node.inputs[name]
            elif _is_widget(spec):
                try:
                    values[name] = _default(name, spec, node.class_type)
                except KeyError:
                    if required:
                        raise
            elif required:
                raise KeyError(f"{node.class_type} (node {node.id}): required input '{name}' is not connected")
        out[str(node.id)] = values
    return out


def to_api(graph: Graph, object_info: dict) -> dict[str, dict]:
    resolved = resolve(graph, object_info)
    api = {}
    for node in graph.nodes:
        inputs = {k: (list(v) if _is_link(v) else v) for k, v in resolved[str(node.id)].items()}
        api[str(node.id)] = {
            "class_type": node.class_type,
            "inputs": inputs,
            "_meta": {"title": node.title or object_info[node.class_type].get("display_name", node.class_type)},
        }
    return api


def _depths(graph: Graph) -> dict[int, int]:
    depth: dict[int, int] = {}

    def d(n: Node) -> int:
        if n.id in depth:
            return depth[n.id]
        ups = [graph.node(v[0]) for v in n.inputs.values() if _is_link(v)]
        depth[n.id] = 1 + max((d(u) for u in ups), default=-1)
        return depth[n.id]

    for n in graph.nodes:
        d(n)
    return depth


def to_editor(graph: Graph, object_info: dict, *, extra: dict | None = None) -> dict:
    resolved = resolve(graph, object_info)
    depth = _depths(graph)
    links: list[list] = []
    out_links: dict[tuple[int, int], list[int]] = {}
    nodes_json: list[dict] = []
    col_y: dict[int, float] = {}
    order = sorted(graph.nodes, key=lambda n: (depth[n.id], n.id))
    for exec_order, node in enumerate(order):
        info = object_info[node.class_type]
        values = resolved[str(node.id)]
        sockets, widget_inputs, widgets_values = [], [], []
        for name, spec, _req in _spec_inputs(info):
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            v = values.get(name)
            if _is_widget(spec):
                link_id = None
                if _is_link(v):
                    raise ValueError(f"{node.class_type}.{name}: linking a widget input is not supported here")
                widget_inputs.append({"localized_name": name, "name": name, "type": _type_name(spec),
                                      "widget": {"name": name}, "link": link_id})
                widgets_values.append(v if name in values else _default(name, spec, node.class_type))
                if opts.get("control_after_generate"):
                    widgets_values.append("fixed")
                if opts.get("image_upload"):
                    widgets_values.append("image")
            else:
                entry = {"localized_name": name, "name": name, "type": _type_name(spec), "link": None}
                if _is_link(v):
                    src = graph.node(v[0])
                    link_id = len(links) + 1
                    src_type = object_info[src.class_type]["output"][v[1]]
                    links.append([link_id, src.id, v[1], node.id, len(sockets), src_type])
                    out_links.setdefault((src.id, v[1]), []).append(link_id)
                    entry["link"] = link_id
                sockets.append(entry)
        n_rows = len(sockets) + len(widgets_values) + max(1, len(info.get("output", [])))
        height = 30 + 24 * n_rows + (90 if any(s[0] == "STRING" and (s[1] or {}).get("multiline")
                                              for _, s, _ in _spec_inputs(info) if len(s) > 1) else 0)
        col = depth[node.id]
        y = col_y.get(col, 80.0)
        col_y[col] = y + height + 40
        props = {"Node name for S&R": node.class_type}
        props.update(node.properties)
        entry = {
            "id": node.id,
            "type": node.class_type,
            "pos": [40 + col * 380, y],
            "size": [340, height],
            "flags": {},
            "order": exec_order,
            "mode": 0,
            "inputs": sockets + widget_inputs,
            "outputs": [],
            "properties": props,
            "widgets_values": widgets_values,
        }
        if node.title:
            entry["title"] = node.title
        if node.color:
            entry["color"] = node.color
        nodes_json.append(entry)
    by_id = {n["id"]: n for n in nodes_json}
    for node in graph.nodes:
        info = object_info[node.class_type]
        names = info.get("output_name") or info.get("output", [])
        by_id[node.id]["outputs"] = [
            {"localized_name": names[i], "name": names[i], "type": t, "slot_index": i,
             "links": out_links.get((node.id, i), [])}
            for i, t in enumerate(info.get("output", []))
        ]
    next_id = len(graph.nodes) + 1
    max_col = max(depth.values(), default=0)
    for k, note in enumerate(graph.notes):
        nodes_json.append({
            "id": next_id, "type": "MarkdownNote", "pos": list(note.pos or (40 + (max_col + 1) * 380, 80 + k * 260)),
            "size": [360, 240], "flags": {}, "order": len(nodes_json), "mode": 0, "inputs": [], "outputs": [],
            "title": note.title, "properties": {}, "widgets_values": [note.text], "color": "#432", "bgcolor": "#653",
        })
        next_id += 1
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "dgx-pixels/" + ",".join(n.class_type for n in graph.nodes))),
        "revision": 0,
        "last_node_id": next_id - 1,
        "last_link_id": len(links),
        "nodes": sorted(nodes_json, key=lambda n: n["id"]),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.75, "offset": [40, 60]}, "frontendVersion": "1.32.9", **(extra or {})},
        "version": 0.4,
    }
