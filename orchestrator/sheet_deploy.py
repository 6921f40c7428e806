"""Client-side deploy of sprite sheets: the sheet's grid as the node that made it laid it out.

A sheet PNG downloaded from ComfyUI carries no layout. The Sprite Sheet and Tileset nodes send
theirs with their preview (``SHEET_UI_KEY`` in the job's history: cell size, columns, rows,
padding, offset, frames, animations), so the deploy describes the PNG with exactly the numbers
the node used, and the export writes PNG + ``.meta`` + atlas JSON into the Bevy project on
*this* machine, whatever server made the image. A server whose pack predates that record gets
the layout rebuilt from the submitted graph: the node's inputs and the frames that reached it
(a count the graph does not always tell, hence the record).
"""
from __future__ import annotations

from collections import deque

SHEET_NODES = {"DGXPixelsSpriteSheet": "frames", "DGXPixelsTileset": "tiles"}


def sheet_records(outputs: dict) -> dict[str, dict]:
    """The sheet layouts in a job's history ``outputs`` (node id -> the node's record)."""
    from comfy_nodes.pixel.sheet import SHEET_UI_KEY

    found = {}
    for nid, ui in (outputs or {}).items():
        recs = ui.get(SHEET_UI_KEY) if isinstance(ui, dict) else None
        if isinstance(recs, list) and recs and isinstance(recs[-1], dict):
            found[str(nid)] = recs[-1]
    return found


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


def sheet_layout(prompt: dict, save_node: str, records: dict[str, dict] | None = None) -> dict | None:
    """The layout of the sheet that ``save_node`` (a SaveImage) wrote, or None if it is no sheet.

    ``records``: the sheet nodes' own layouts from the job's history (see :func:`sheet_records`);
    the one of the node that made this sheet is used as it is."""
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
        "cell": (int(inputs.get("cell_width") or 0), int(inputs.get("cell_height") or 0)),
        "power_of_two": inputs.get("power_of_two") is True,
        "record": (records or {}).get(sid),
    }
    return layout


def sheet_from_output(image, layout: dict, animations: str | None = None):
    """Describe a downloaded sheet PNG (RGBA array) with ``layout``; returns a ``Sheet``."""
    import json

    from comfy_nodes.pixel.errors import ExportError
    from comfy_nodes.pixel.sheet import LAYOUT_KEY, auto_grid, recorded_layout, sheet_from_image, sheet_from_layout

    rec = layout.get("record")
    if rec is not None:
        h, w = image.shape[:2]
        grid, why = recorded_layout({LAYOUT_KEY: json.dumps(rec.get("layout"))}, w, h)
        if grid is None:
            raise ExportError(f"the sheet node's record of its grid cannot be used: {why or 'there is none'}")
        anims = animations or (rec.get("animations") if isinstance(rec.get("animations"), str) else "")
        return sheet_from_layout(image, grid, anims or None)
    # no record (a server with an older pack): rebuilt from the graph
    cols, rows, count = layout["columns"], layout["rows"], layout["count"]
    cell = layout.get("cell") or (0, 0)
    cell = cell if cell[0] > 0 and cell[1] > 0 else None
    if layout.get("power_of_two") and cell is None:
        raise ExportError("the sheet was enlarged to power-of-two sides, and the server's DGX-Pixels pack does not "
                          "say the cell size it used",
                          hint="update the pack on the ComfyUI server (it then sends its grid), or give the Sprite "
                               "Sheet node its cell_width and cell_height")
    if count:
        cols, rows = auto_grid(count, cols, rows)
    pad, off = layout["padding"], layout["offset"]
    if cell is None and layout["kind"] == "DGXPixelsTileset" and off and cols and rows:
        # a tileset's margin is on every side: the cells are what is left inside it
        h, w = image.shape[:2]
        cw, ch = (w - 2 * off - (cols - 1) * pad) / cols, (h - 2 * off - (rows - 1) * pad) / rows
        if cw == int(cw) and ch == int(ch) and cw > 0 and ch > 0:
            cell = (int(cw), int(ch))
    return sheet_from_image(image, cell_size=cell, columns=cols, rows=rows, padding=pad, offset=off,
                            count=count, animations=animations or layout["animations"] or None)
