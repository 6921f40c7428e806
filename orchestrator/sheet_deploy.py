"""Client-side deploy of sprite sheets: rebuild the sheet's grid from the graph that made it.

A sheet PNG downloaded from ComfyUI carries no layout. The layout is fully determined by the
submitted prompt, though: the Sprite Sheet / Tileset node's inputs (columns, rows, padding,
offset, animations) and the number of frames that reached it. With those, the same pure
function the node used (``sheet_from_image`` / ``auto_grid``) describes the PNG again, and the
export writes PNG + ``.meta`` + atlas JSON into the Bevy project on *this* machine, whatever
server made the image.
"""
from __future__ import annotations

from collections import deque

SHEET_NODES = {"DGXPixelsSpriteSheet": "frames", "DGXPixelsTileset": "tiles"}


def _is_link(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int)) and isinstance(v[1], int)


def _batch_size(prompt: dict, start: str) -> int | None:
    """Frames reaching ``start``: the first ``batch_size`` (or ``amount``) found upstream.

    Walks the links breadth-first so the nearest batch-producing node wins; a single
    ``LoadImage`` upstream means one frame.
    """
    seen, todo = set(), deque([start])
    while todo:
        nid = todo.popleft()
        if nid in seen or nid not in prompt:
            continue
        seen.add(nid)
        node = prompt[nid]
        inputs = node.get("inputs", {})
        for key in ("batch_size", "amount"):
            if isinstance(inputs.get(key), int) and nid != start:
                return int(inputs[key])
        if node.get("class_type") == "LoadImage" and nid != start:
            return 1
        for v in inputs.values():
            if _is_link(v):
                todo.append(str(v[0]))
    return None


def sheet_layout(prompt: dict, save_node: str) -> dict | None:
    """The layout of the sheet that ``save_node`` (a SaveImage) wrote, or None if it is no sheet."""
    node = prompt.get(str(save_node)) or {}
    src = node.get("inputs", {}).get("images")
    if not _is_link(src):
        return None
    sid = str(src[0])
    sheet_node = prompt.get(sid) or {}
    kind = sheet_node.get("class_type")
    if kind not in SHEET_NODES or src[1] != 0:
        return None
    inputs = sheet_node.get("inputs", {})
    frames_link = inputs.get(SHEET_NODES[kind])
    count = _batch_size(prompt, str(frames_link[0])) if _is_link(frames_link) else None
    if _is_link(frames_link) and count is None:
        count = _batch_size(prompt, sid)
    layout = {
        "kind": kind,
        "count": count,
        "columns": int(inputs.get("columns") or 0) or None,
        "rows": int(inputs.get("rows") or 0) or None,
        "padding": int(inputs.get("padding", inputs.get("spacing", 0)) or 0),
        "offset": int(inputs.get("offset", inputs.get("margin", 0)) or 0),
        "animations": inputs.get("animations") if isinstance(inputs.get("animations"), str) else "",
    }
    return layout


def sheet_from_output(image, layout: dict, animations: str | None = None):
    """Describe a downloaded sheet PNG (RGBA array) with ``layout``; returns a ``Sheet``."""
    from comfy_nodes.pixel.sheet import auto_grid, sheet_from_image

    cols, rows, count = layout["columns"], layout["rows"], layout["count"]
    if count:
        cols, rows = auto_grid(count, cols, rows)
    return sheet_from_image(image, columns=cols, rows=rows, padding=layout["padding"], offset=layout["offset"],
                            count=count, animations=animations or layout["animations"] or None)
