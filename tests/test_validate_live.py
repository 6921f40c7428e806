"""Validation of prompts against a live ComfyUI's /object_info, and the shipped workflows'
editor files converted on that server."""
from __future__ import annotations

import copy
import json
import socket
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.convert import convert_ui_to_api, normalize_prompt
from orchestrator.errors import ServerUnreachableError
from orchestrator.validate import fetch_object_info, validate_prompt
from orchestrator.workflows import UI_NAMES, default_root, load_registry

DATA = Path(__file__).parent / "data"
TXT2IMG = DATA / "workflows" / "txt2img" / "1.0.0" / "workflow.api.json"
SHIPPED = load_registry(default_root()).all() if default_root().is_dir() else []


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return fetch_object_info(comfy_server.url)


@pytest.fixture
def prompt():
    return json.loads(TXT2IMG.read_text(encoding="utf-8"))


def _with_real_checkpoint(prompt: dict, object_info: dict) -> dict:
    choices = object_info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    if choices:
        prompt["1"]["inputs"]["ckpt_name"] = choices[0]
    return prompt


def test_object_info_comes_from_the_server(object_info):
    assert "KSampler" in object_info and any(k.startswith("DGXPixels") for k in object_info)


def test_sound_prompt_passes(prompt, object_info):
    report = validate_prompt(prompt, object_info)
    # the test server may have no checkpoint named like ours: that is the only acceptable issue
    assert [(i.node_id, i.input, i.kind) for i in report.issues if i.kind != "missing_model"] == []
    if object_info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]:
        report = validate_prompt(_with_real_checkpoint(prompt, object_info), object_info)
        assert report.ok and report.issues == []


def test_every_problem_is_reported_per_node(prompt, object_info):
    bad = copy.deepcopy(_with_real_checkpoint(prompt, object_info))
    ks = bad["5"]["inputs"]
    ks["steps"] = 0  # min 1
    ks["cfg"] = "high"  # not a number
    ks["sampler_name"] = "no_such_sampler"
    ks["positive"] = ["4", 0]  # LATENT into CONDITIONING
    ks["latent_image"] = ["99", 0]  # missing node
    del bad["6"]["inputs"]["vae"]  # required input missing
    bad["6"]["inputs"]["samples"] = ["1", 7]  # CheckpointLoaderSimple has 3 outputs
    bad["4"]["inputs"]["width"] = 1 << 20  # above max
    bad["7"]["inputs"]["unused"] = 1  # only a warning
    bad["8"] = {"class_type": "NoSuchNode", "inputs": {}}
    bad["2"]["inputs"]["clip"] = ["1", 1]
    bad["1"]["inputs"]["ckpt_name"] = "definitely-missing.safetensors"

    report = validate_prompt(bad, object_info, source="bad.json")
    found = {(i.node_id, i.input, i.kind) for i in report.errors}
    assert found == {
        ("5", "steps", "out_of_range"),
        ("5", "cfg", "wrong_type"),
        ("5", "sampler_name", "not_in_list"),
        ("5", "positive", "wrong_type"),
        ("5", "latent_image", "bad_link"),
        ("6", "vae", "missing_input"),
        ("6", "samples", "bad_link"),
        ("4", "width", "out_of_range"),
        ("8", None, "unknown_node"),
        ("1", "ckpt_name", "missing_model"),
    }
    assert [(i.node_id, i.input) for i in report.warnings] == [("7", "unused")]
    assert not report.ok
    assert report.missing_models == ["definitely-missing.safetensors"]
    text = report.format()
    assert "bad.json: 10 error(s) in 5 node(s)" in text
    assert "node 5 (KSampler)" in text and "steps: 0 is outside the allowed range 1..10000" in text
    assert "positive: expects CONDITIONING but is linked to 4:0 (EmptyLatentImage output 'LATENT' of type LATENT)" in text
    assert "'NoSuchNode' is not known to the server" in text


def test_cli_validate_file_and_registry(tmp_path, comfy_server, object_info, monkeypatch, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_with_real_checkpoint(json.loads(TXT2IMG.read_text()), object_info)))
    has_ckpt = bool(object_info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0])
    rc = main(["workflows", "validate", str(good), "--server", comfy_server.url])
    out = capsys.readouterr().out
    if has_ckpt:
        assert rc == 0 and "OK (7 nodes)" in out
    else:
        assert rc == 4 and "ckpt_name: model file" in out

    bad = json.loads(good.read_text())
    bad["5"]["inputs"]["steps"] = -3
    bad["4"]["inputs"]["batch_size"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["workflows", "validate", str(path), "--server", comfy_server.url]) == 4
    out = capsys.readouterr().out
    assert "node 4 (EmptyLatentImage)" in out and "batch_size: 0 is outside" in out
    assert "node 5 (KSampler)" in out and "steps: -3 is outside" in out

    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(DATA / "workflows"))
    rc = main(["workflows", "validate", "txt2img@1", "--server", comfy_server.url, "--set", "size=100000", "--json"])
    assert rc == 4  # the parameter range check fires before the server is asked
    assert "out of range" in capsys.readouterr().err
    rc = main(["workflows", "validate", "txt2img@1", "--server", comfy_server.url, "--set", "seed=5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "txt2img@1.2.0"
    assert all(i["kind"] == "missing_model" for i in report["issues"])
    assert rc == (0 if not report["issues"] else 4)


def test_cli_convert_with_server(tmp_path, comfy_server, capsys):
    ui = {"nodes": [
        {"id": 1, "type": "EmptyLatentImage", "mode": 0, "inputs": [], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}],
         "widgets_values": [96, 64, 3]},
        {"id": 2, "type": "Note", "mode": 0, "widgets_values": ["hello"]},
        {"id": 3, "type": "LatentUpscaleBy", "mode": 0, "inputs": [{"name": "samples", "type": "LATENT", "link": 1}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}], "widgets_values": ["nearest-exact", 2]},
    ], "links": [[1, 1, 0, 3, 0, "LATENT"]]}
    src = tmp_path / "w.ui.json"
    src.write_text(json.dumps(ui))
    dest = tmp_path / "w.api.json"
    assert main(["workflows", "convert", str(src), "-o", str(dest), "--server", comfy_server.url]) == 0
    assert json.loads(dest.read_text()) == {
        "1": {"inputs": {"width": 96, "height": 64, "batch_size": 3}, "class_type": "EmptyLatentImage",
              "_meta": {"title": "Empty Latent Image"}},
        "3": {"inputs": {"upscale_method": "nearest-exact", "scale_by": 2, "samples": ["1", 0]},
              "class_type": "LatentUpscaleBy", "_meta": {"title": "Upscale Latent By"}},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_names_the_url(tmp_path, capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ServerUnreachableError) as exc:
        fetch_object_info(url)
    assert url in exc.value.message
    assert main(["workflows", "validate", str(TXT2IMG), "--server", url]) == 3
    assert url in capsys.readouterr().err


def _drop_later_optional_defaults(converted: dict, api: dict, object_info: dict) -> dict:
    """Released files stay as they were when a node later gains an optional input: the editor
    (and the converter) then fill in its default. Those inputs, at their defaults, are not a
    difference; any other value is."""
    out = json.loads(json.dumps(converted))
    for nid, node in out.items():
        shipped = (api.get(nid) or {}).get("inputs", {})
        optional = object_info.get(node.get("class_type"), {}).get("input", {}).get("optional", {})
        for name in [n for n in node.get("inputs", {}) if n not in shipped and n in optional]:
            spec = optional[name]
            default = spec[1].get("default") if len(spec) > 1 and isinstance(spec[1], dict) else None
            if node["inputs"][name] == default:
                del node["inputs"][name]
    return out


@pytest.mark.parametrize("ref", [w.ref for w in SHIPPED] or ["<none>"])
def test_shipped_workflow_editor_file_matches_api_and_validates(ref, request):
    if not SHIPPED:
        pytest.skip("no shipped workflows yet")
    object_info = request.getfixturevalue("object_info")
    wf = load_registry(default_root()).get(ref)
    ui_file = next((wf.path / n for n in UI_NAMES if (wf.path / n).is_file()), None)
    if ui_file is not None:
        converted = convert_ui_to_api(json.loads(ui_file.read_text(encoding="utf-8")), object_info)
        converted = _drop_later_optional_defaults(converted, wf.api_prompt, object_info)
        assert normalize_prompt(converted) == normalize_prompt(wf.api_prompt), f"{ui_file} and the API file differ"
    report = validate_prompt(wf.build_prompt(), object_info, source=ref)
    # model files are provisioned separately (`dgx-pixels models`) and input files are uploaded
    # by the runner; anything else is a bug in the shipped workflow
    assert [str(i) for i in report.errors if i.kind not in ("missing_model", "missing_file")] == []


def test_declared_models_are_checked_once(tmp_path, object_info):
    import shutil

    from orchestrator.validate import validate_workflow

    root = tmp_path / "wf"
    shutil.copytree(DATA / "workflows", root)
    (root / "workflows.lock").unlink()  # a draft: a released version must not change
    toml = root / "txt2img" / "2.0.0" / "workflow.toml"
    toml.write_text(toml.read_text().replace(
        'models = [{ folder = "checkpoints", name = "tiny-test.safetensors" }]',
        'models = [{ folder = "checkpoints", name = "tiny-test.safetensors" }, { folder = "loras", name = "extra-style.safetensors" }]'))
    wf = load_registry(root).get("txt2img@2")
    report = validate_workflow(wf, object_info, {"seed": 1})
    missing = [(i.node_id, i.kind) for i in report.issues]
    # the graph's checkpoint is reported on its node only; the LoRA only the manifest names
    assert ("models", "missing_model") in missing
    assert sum(1 for i in report.issues if "tiny-test.safetensors" in i.message) == 1
    assert any("extra-style.safetensors" in i.message and "models/loras/" in i.message for i in report.issues)
    assert set(report.missing_models) >= {"tiny-test.safetensors", "extra-style.safetensors"}
