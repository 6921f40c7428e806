"""Helpers for tests that drive the live ComfyUI of the ``comfy_server`` fixture."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import fake_models


def http_json(url: str, data: dict | None = None, timeout: float = 30.0):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def install_test_models(server) -> tuple[str, str]:
    """Generate (or reuse) the random checkpoint + LoRA and link them into the server's models
    folders; return their names as ComfyUI lists them."""
    ckpt, lora = fake_models.ensure_test_models(python=server.python, comfy_src=server.comfyui_dir)
    for path, folder in ((ckpt, "checkpoints"), (lora, "loras")):
        dest_dir = Path(server.base_dir) / "models" / folder
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / path.name
        if not dest.exists():
            os.symlink(path, dest)
    return ckpt.name, lora.name


def queue_and_wait(url: str, prompt: dict, timeout: float = 300.0, *, fails: bool = False) -> dict:
    """POST the prompt, poll /history until it is done; return the history entry.

    A rejected prompt (node_errors) or a failed execution fails with the server's own words;
    with ``fails`` it is a prompt that ran and succeeded that fails the test.
    """
    client_id = uuid.uuid4().hex
    try:
        res = http_json(f"{url}/prompt", {"prompt": prompt, "client_id": client_id})
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"prompt rejected: {exc.read().decode(errors='replace')[:4000]}") from None
    pid = res["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hist = http_json(f"{url}/history/{pid}")
        if pid in hist:
            entry = hist[pid]
            status = entry.get("status", {})
            if (status.get("status_str") != "success") != fails:
                msgs = [m for m in status.get("messages", []) if m[0] == "execution_error"]
                raise AssertionError(f"prompt succeeded, a failure was expected" if fails else
                                     f"prompt failed: {json.dumps(msgs)[:4000]}")
            return entry
        time.sleep(0.1)
    raise AssertionError(f"prompt {pid} did not finish in {timeout} s")


def execution_ms(entry: dict) -> float | None:
    """Wall time of a finished prompt from ComfyUI's own execution timestamps (ms)."""
    start = end = None
    for name, data in entry.get("status", {}).get("messages", []):
        if name == "execution_start":
            start = data.get("timestamp")
        elif name in ("execution_success", "execution_error"):
            end = data.get("timestamp")
    if start is None or end is None:
        return None
    return float(end - start)


def output_images(entry: dict, node_id: str) -> list[dict]:
    return entry.get("outputs", {}).get(str(node_id), {}).get("images", [])


def apply_params(api: dict, manifest: dict, values: dict) -> dict:
    """A copy of an API-format prompt with named parameters set (``workflow.json`` targets)."""
    out = json.loads(json.dumps(api))
    params = manifest["params"]
    for name, value in values.items():
        if name not in params:
            raise KeyError(f"workflow {manifest['name']} has no parameter {name!r}; it has {sorted(params)}")
        for node, inp in params[name]["targets"]:
            out[str(node)]["inputs"][inp] = value
    return out
