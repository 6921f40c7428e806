"""Writes one shipped workflow to disk in the registry layout of ``workflows/README.md``.

- ``workflows/<name>/<version>/workflow.toml``: description, parameters (``targets`` =
  ``NODE_ID.input``, type, default, range, help), models, outputs;
- ``workflows/<name>/<version>/workflow.api.json``: API format, what ``POST /prompt`` takes;
- ``workflows/<name>/<version>/workflow.ui.json``: the editor format (drag into ComfyUI);
- ``example_workflows/<name>.json``: the editor format again, listed by ComfyUI's template
  browser under this pack (with ``<name>.jpg`` as its thumbnail).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

TYPE_NAMES = {"string": "str", "int": "int", "float": "float", "bool": "bool", "enum": "enum", "image": "image-file"}


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _json_text(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def workflow_toml(wf, api: dict) -> str:
    models = []
    for n in api.values():
        for key, folder in (("ckpt_name", "checkpoints"), ("lora_name", "loras")):
            v = n["inputs"].get(key)
            if isinstance(v, str):
                models.append({"folder": folder, "name": v})
    lines = [
        f"name = {_toml_value(wf.name)}",
        f"version = {_toml_value(wf.version)}",
        f"title = {_toml_value(wf.title)}",
        f"description = {_toml_value(wf.description)}",
        f"needs_models = {_toml_value(wf.needs_models)}",
        f"tags = {_toml_value(wf.tags)}",
        "models = [" + "".join(f"\n  {_toml_value(m)}," for m in models) + ("\n]" if models else "]"),
        "outputs = [" + "".join(f"\n  {_toml_value({'node': str(n), 'kind': k})},"
                                for n, k in wf.output_kinds()) + "\n]",
        "",
    ]
    for p in wf.params:
        node, inp = p.targets[0]
        lines.append(f"[params.{p.name}]")
        lines.append(f"type = {_toml_value(TYPE_NAMES[p.type])}")
        lines.append(f"default = {_toml_value(api[str(node)]['inputs'][inp])}")
        if p.minimum is not None:
            lines.append(f"min = {_toml_value(p.minimum)}")
        if p.maximum is not None:
            lines.append(f"max = {_toml_value(p.maximum)}")
        if p.choices:
            lines.append(f"choices = {_toml_value(p.choices)}")
        lines.append(f"help = {_toml_value(p.description)}")
        lines.append(f"targets = {_toml_value([f'{n}.{i}' for n, i in p.targets])}")
        lines.append("")
    return "\n".join(lines)


def write(wf, api: dict, editor: dict, repo: Path) -> list[Path]:
    base = repo / "workflows" / wf.name / wf.version
    for old in ("workflow.json", "api.json", "editor.json"):  # an earlier layout of this folder
        if (base / old).exists():
            (base / old).unlink()
    files = {
        base / "workflow.toml": workflow_toml(wf, api),
        base / "workflow.api.json": _json_text(api),
        base / "workflow.ui.json": _json_text(editor),
        repo / "example_workflows" / f"{wf.name}.json": _json_text(editor),
    }
    for path, text in files.items():
        _atomic_text(path, text)
    return list(files)
