"""Writes one shipped workflow to disk: ``workflows/<name>/<version>/`` and ``example_workflows/``.

Layout (see ``workflows/README.md``):

- ``workflows/<name>/<version>/workflow.json``: name, version, description, parameters (each
  with the node inputs it sets, type, default, range), output node ids, models needed;
- ``workflows/<name>/<version>/api.json``: API format, what ``POST /prompt`` takes;
- ``workflows/<name>/<version>/editor.json``: the editor format (drag into ComfyUI);
- ``example_workflows/<name>.json`` (+ ``.jpg``): the editor format again, listed by ComfyUI's
  template browser under this pack.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _atomic_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)


def manifest(wf, api: dict) -> dict:
    params = {}
    for p in wf.params:
        node, inp = p.targets[0]
        entry = {
            "type": p.type,
            "description": p.description,
            "default": api[str(node)]["inputs"][inp],
            "targets": [[str(n), i] for n, i in p.targets],
        }
        if p.minimum is not None:
            entry["min"] = p.minimum
        if p.maximum is not None:
            entry["max"] = p.maximum
        if p.choices:
            entry["choices"] = p.choices
        params[p.name] = entry
    models = sorted({v for n in api.values() for k, v in n["inputs"].items()
                     if k in ("ckpt_name", "lora_name") and isinstance(v, str)})
    return {
        "name": wf.name,
        "version": wf.version,
        "title": wf.title,
        "description": wf.description,
        "needs_models": wf.needs_models,
        "models": models,
        "outputs": [str(o) for o in wf.outputs],
        "params": params,
        "tags": wf.tags,
    }


def write(wf, api: dict, editor: dict, repo: Path) -> list[Path]:
    base = repo / "workflows" / wf.name / wf.version
    files = {
        base / "workflow.json": manifest(wf, api),
        base / "api.json": api,
        base / "editor.json": editor,
        repo / "example_workflows" / f"{wf.name}.json": editor,
    }
    for path, data in files.items():
        _atomic_json(path, data)
    return list(files)
