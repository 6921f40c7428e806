"""Every shipped workflow runs end to end on the live ComfyUI, generation included, on a CPU.

The checkpoint and LoRA are seeded random weights in the SD1.5 layout (``fake_models.py``),
so a 64x64, 2-step generation takes about a second; the graphs are the very files users run
with SDXL at 1024x1024 (only parameters differ).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.live import http_json, install_test_models, output_images, queue_and_wait


@pytest.fixture
def test_models(managed_comfy_server):
    return install_test_models(managed_comfy_server)


def _chain(ckpt: str, lora: str, strength: float, seed: int, prefix: str) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": lora,
                                                     "strength_model": strength, "strength_clip": strength}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "pixel art knight, side view"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "blurry"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "positive": ["3", 0], "negative": ["4", 0],
                                                   "latent_image": ["5", 0], "seed": seed, "steps": 2, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": prefix}},
    }


def _image(server, entry: dict, node: str = "8") -> np.ndarray:
    imgs = output_images(entry, node)
    assert len(imgs) == 1, entry.get("outputs")
    info = imgs[0]
    path = Path(server.output_dir) / info.get("subfolder", "") / info["filename"]
    return np.asarray(Image.open(path).convert("RGB"))


def test_random_checkpoint_and_lora_load_and_sample(managed_comfy_server, test_models):
    """CheckpointLoaderSimple + LoraLoader + KSampler 64x64 2 steps + VAEDecode on the random
    weights: the image has the requested size, the same seed repeats pixel for pixel, and the
    LoRA really changes the result (its keys were applied, not skipped)."""
    server = managed_comfy_server
    ckpt, lora = test_models
    a = _image(server, queue_and_wait(server.url, _chain(ckpt, lora, 1.0, 11, "fm_a")))
    b = _image(server, queue_and_wait(server.url, _chain(ckpt, lora, 1.0, 11, "fm_b")))
    no_lora = _image(server, queue_and_wait(server.url, _chain(ckpt, lora, 0.0, 11, "fm_c")))
    other_seed = _image(server, queue_and_wait(server.url, _chain(ckpt, lora, 1.0, 12, "fm_d")))
    assert a.shape == (64, 64, 3)
    assert np.array_equal(a, b), "same seed, same graph: the images must be identical"
    assert a.std() > 5, "decoded image is flat: the VAE or sampler produced nothing"
    assert np.abs(a.astype(int) - no_lora).mean() > 0.5, "LoRA strength 1 vs 0 gave the same image"
    assert not np.array_equal(a, other_seed)
    assert "lora key not loaded" not in server.log_text()


# --------------------------------------------------------------------------- shipped workflows

import json  # noqa: E402
import uuid  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent for p in (REPO / "workflows").glob("*/*/workflow.toml"))
EXPECTED = {"sprite", "animation", "tileset", "pixelize", "cleanup"}


def test_every_workflow_is_shipped_in_both_formats_and_as_a_template():
    from orchestrator.workflows import load_registry

    reg = load_registry(REPO / "workflows")
    names = {wf.name for wf in reg.list()}
    assert EXPECTED <= names, names
    for name in EXPECTED:
        wf = reg.get(name)
        assert wf.ui is not None and wf.ui.get("version") == 0.4, f"{name}: no editor-format file"
        template = REPO / "example_workflows" / f"{name}.json"
        assert json.loads(template.read_text()) == wf.ui, f"{template} differs from {wf.path}/workflow.ui.json"
        thumb = template.with_suffix(".jpg")
        assert thumb.is_file() and Image.open(thumb).format == "JPEG", thumb


def test_template_browser_lists_the_shipped_workflows(comfy_server):
    from support.live import http_json

    listed = http_json(f"{comfy_server.url}/api/workflow_templates")
    ours = [v for k, v in listed.items() if "dgx" in k.lower()]
    assert ours, listed
    assert EXPECTED <= set(ours[0]), ours
    # the editor fetches the template file itself from this route
    pack = next(k for k in listed if "dgx" in k.lower())
    wf = http_json(f"{comfy_server.url}/api/workflow_templates/{pack}/cleanup.json")
    assert wf["nodes"] and wf["links"]


def _default(params: dict, name: str):
    return params[name].default if name in params else None


def _assert_frames_share_one_palette(sheet: np.ndarray, atlas: dict, colors: int | None) -> None:
    """Each frame cut out of the deployed sheet by its atlas rect: the frames differ from one
    another, yet all their opaque pixels come from one palette of at most ``colors`` entries
    (``None``: the workflow declares no palette, only the frames are compared)."""
    crops = []
    for fr in atlas["frames"]:
        r = fr["frame"]
        crop = sheet[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
        assert crop.shape[:2] == (r["h"], r["w"]), (crop.shape, r)  # the rect lies inside the sheet
        crops.append(crop)
    assert len({(c.shape, c.tobytes()) for c in crops}) > 1, "every frame is the same image"
    per_frame = [{tuple(px) for px in c[c[..., 3] > 0][:, :3]} for c in crops]
    assert all(per_frame), "a frame has no opaque pixel"
    if colors:
        union = set().union(*per_frame)
        assert len(union) <= colors, (len(union), colors, [len(f) for f in per_frame])


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: f"{p.parent.name}@{p.name}")
def test_shipped_workflow_runs_end_to_end(managed_comfy_server, test_models, folder, tmp_path):
    """Run through the orchestrator (``run_workflow``) exactly as ``dgx-pixels run NAME@VERSION
    --set ...`` does, then check what landed in the Bevy project and in the output folder."""
    from orchestrator.run import run_workflow
    from orchestrator.samples import degrade, sprites
    from orchestrator.workflows import load_registry

    server = managed_comfy_server
    ckpt, lora = test_models
    wf = load_registry(REPO / "workflows").get(f"{folder.parent.name}@{folder.name}")
    params = wf.params
    project = f"wf_{wf.name}_{uuid.uuid4().hex[:8]}"
    asset = f"sprites/{wf.name}.png"
    values = {"project": project, "asset_path": asset}
    generates = any(m.name == "sd_xl_base_1.0.safetensors" for m in wf.models)
    if generates:
        values.update(checkpoint=ckpt, lora=lora, width=64, height=64, steps=2)
        # Random weights draw noise, which has no pixel grid to find: give the grid instead.
        values.update(grid_mode="size", target_width=16, target_height=16)
        for count in ("frames", "tiles"):
            if count in params:
                values[count] = 4  # the default animation walk:0-3 needs 4
    if "image" in params:
        local = tmp_path / "my art.png"  # a local file: the runner uploads it
        Image.fromarray(degrade(sprites()["knight"], seed=5).image).save(local)
        values["image"] = str(local)
    result = run_workflow(wf, values, server=server.url, out_dir=tmp_path / "out", timeout=600)

    # Bevy export into the (temporary) server's default Bevy root: PNG, .meta, atlas JSON.
    assets = Path(server.output_dir) / "bevy" / project / "assets"
    png = assets / asset
    listing = sorted(str(p.relative_to(assets)) for p in assets.rglob("*")) if assets.exists() else []
    assert png.is_file(), listing
    meta = png.with_name(png.name + ".meta")
    assert meta.is_file(), listing
    assert "nearest" in meta.read_text().lower()
    img = Image.open(png)
    assert img.mode == "RGBA"
    if generates:
        # 16x16 art pixels per frame; sheets are whole multiples of the cell
        assert img.width % 16 == 0 and img.height % 16 == 0, img.size
    atlas = png.with_suffix(".json")
    if wf.name in ("animation", "tileset", "cleanup"):
        data = json.loads(atlas.read_text())
        expect = values.get("frames") or values.get("tiles") or 1
        assert len(data["frames"]) == expect, (len(data["frames"]), expect)
        if wf.name == "animation":
            assert [t["name"] for t in data["meta"]["frameTags"]] == ["walk"], data["meta"]
            _assert_frames_share_one_palette(np.asarray(img), data, values.get("colors", _default(params, "colors")))
    if wf.name in ("sprite", "pixelize"):
        # A single image has no layout: no atlas JSON, just the PNG, its .meta and the manifest.
        files = sorted(str(p.relative_to(assets)) for p in assets.rglob("*") if p.is_file())
        assert files == sorted([asset, f"{asset}.meta", ".dgx-pixels/manifest.json",
                                ".dgx-pixels/manifest.lock"]), files
        assert not atlas.exists()
        entries = json.loads((assets / ".dgx-pixels" / "manifest.json").read_text())["assets"]
        assert [(e["path"], e["kind"], e["width"], e["height"]) for e in entries] == \
            [(asset, "image", img.width, img.height)], entries
        assert sorted((f["path"], f["kind"]) for f in entries[0]["files"]) == \
            [(asset, "png"), (f"{asset}.meta", "meta")], entries[0]["files"]
    if wf.name == "cleanup":
        # a 16x16 knight drawn with ~11 px fake pixels: the true sprite comes back at 16x16
        assert img.size == (16, 16), img.size
    if wf.name == "tileset" and any(n["class_type"] == "PreviewAny" for n in wf.api_prompt.values()):
        # the seam report reaches the editor: which tiles fail, or that all are seamless
        hist = http_json(f"{server.url}/history/{result.prompt_id}")[result.prompt_id]
        texts = [t for nid, n in wf.api_prompt.items() if n["class_type"] == "PreviewAny"
                 for t in hist["outputs"].get(nid, {}).get("text", [])]
        assert texts and ("seamless" in texts[0]), texts
        assert "4 tiles" in texts[0] or "of 4 tiles" in texts[0], texts
    # the SaveImage output was downloaded by the runner
    pngs = [o for o in result.outputs if str(getattr(o, "path", o)).endswith(".png")]
    assert pngs, result.outputs


def test_run_events_of_a_generation_and_of_its_cached_repeat(managed_comfy_server, test_models, tmp_path):
    """The events ``dgx-pixels run --json`` prints, from a real sprite generation: the
    KSampler's steps count up to ``steps``, our nodes are announced as they execute, and the
    identical prompt sent again is answered from ComfyUI's cache (every node reported cached,
    no step runs again, the same files come back marked ``cached``)."""
    import io

    from orchestrator.progress import JsonReporter
    from orchestrator.run import run_workflow
    from orchestrator.workflows import load_registry

    server = managed_comfy_server
    ckpt, lora = test_models
    wf = load_registry(REPO / "workflows").get("sprite")
    sampler = next(nid for nid, n in wf.api_prompt.items() if n["class_type"] == "KSampler")
    steps = 3
    values = {"checkpoint": ckpt, "lora": lora, "width": 64, "height": 64, "steps": steps,
              # a seed no other test uses: the sampler must really run the first time
              "seed": uuid.uuid4().int % 2**40,
              "grid_mode": "size", "target_width": 16, "target_height": 16,
              "project": f"events_{uuid.uuid4().hex[:8]}", "asset_path": "sprites/events.png"}

    def run() -> tuple[object, list[dict]]:
        stream = io.StringIO()
        result = run_workflow(wf, values, server=server.url, out_dir=tmp_path / "out",
                              on_event=JsonReporter(stream), timeout=300)
        return result, [json.loads(line) for line in stream.getvalue().splitlines()]

    first, events = run()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "submitted" and "completed" in kinds and kinds[-1] == "output", kinds
    assert all(e["prompt_id"] == first.prompt_id for e in events)

    # (a) the sampler's steps, in order, up to max == steps
    steps_seen = [(e["value"], e["max"]) for e in events if e["event"] == "progress" and str(e["node"]) == sampler]
    assert steps_seen == [(i, steps) for i in range(1, steps + 1)], steps_seen
    assert {e["node_type"] for e in events if e["event"] == "progress" and str(e["node"]) == sampler} == {"KSampler"}

    # (b) our nodes are announced while they run, with their type
    ours = {e["node_type"] for e in events if e["event"] == "executing" and str(e["node_type"]).startswith("DGXPixels")}
    expected = {n["class_type"] for n in wf.api_prompt.values() if n["class_type"].startswith("DGXPixels")}
    assert ours == expected, (ours, expected)
    assert sampler in {str(e["node"]) for e in events if e["event"] == "executing"}
    assert not first.cached and first.outputs and not any(o.cached for o in first.outputs)

    # (c) the identical prompt again (no --fresh nonce): ComfyUI's cache answers it
    assets = Path(server.output_dir) / "bevy" / values["project"] / "assets"
    before = sorted(p.name for p in assets.rglob("*"))
    again, events2 = run()
    assert again.prompt_id != first.prompt_id
    cached = [e for e in events2 if e["event"] == "cached"]
    assert len(cached) == 1 and set(map(str, cached[0]["nodes"])) == set(wf.api_prompt), cached
    assert not [e for e in events2 if e["event"] in ("progress", "executing")], events2
    outs2 = [e for e in events2 if e["event"] == "output"]
    assert outs2 and all(e["cached"] for e in outs2), outs2
    assert again.cached and all(o.cached for o in again.outputs)
    assert [(o.server_filename, o.sha256) for o in again.outputs] == [(o.server_filename, o.sha256) for o in first.outputs]
    assert sorted(p.name for p in assets.rglob("*")) == before, "the cached repeat exported again"

    # (d) latent previews: the test server runs ComfyUI's default --preview-method none, so the
    # sampler sends no preview frames and there is no `preview` event to check here.


def test_cli_deploy_of_a_generated_sprite_records_the_model_hashes(managed_comfy_server, test_models, tmp_path, capsys):
    """``dgx-pixels run sprite --bevy PROJECT --asset-path ...`` against a server on this
    machine: the manifest entry of the deployed asset names the checkpoint and LoRA that made
    it, each with the sha256 of the very file the server loaded."""
    import hashlib

    from orchestrator.cli import main
    from orchestrator.workflows import load_registry

    server = managed_comfy_server
    ckpt, lora = test_models
    wf = load_registry(REPO / "workflows").get("sprite")
    # a seed no other test uses: the sampler must really run, not answer from the cache
    seed = uuid.uuid4().int % 2**40
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[package]\nname = "game"\n\n[dependencies]\nbevy = "0.14"\n')
    sets = {"checkpoint": ckpt, "lora": lora, "width": 64, "height": 64, "steps": 2, "seed": seed,
            "grid_mode": "size", "target_width": 16, "target_height": 16,
            "project": f"prov_{uuid.uuid4().hex[:8]}", "asset_path": "sprites/prov.png"}
    argv = ["run", "sprite", "--server", server.url, "--json", "--out", str(tmp_path / "out"),
            "--bevy", str(proj), "--asset-path", "sprites/knight.png"]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["event"] == "result" and [d["asset_path"] for d in result["deployed"]] == ["sprites/knight.png"]
    assert (proj / "assets" / "sprites" / "knight.png").is_file()

    manifest = json.loads((proj / "assets" / ".dgx-pixels" / "manifest.json").read_text())
    entry = next(e for e in manifest["assets"] if e["path"] == "sprites/knight.png")
    prov = entry["provenance"]
    assert prov["workflow"] == f"sprite@{wf.version}", prov["workflow"]
    assert prov["seed"] == seed and prov["server"] == server.url
    models_root = Path(server.base_dir) / "models"
    expected = [{"name": name, "folder": folder,
                 "sha256": hashlib.sha256((models_root / folder / name).read_bytes()).hexdigest()}
                for name, folder in ((ckpt, "checkpoints"), (lora, "loras"))]
    assert sorted(prov["models"], key=lambda m: m["name"]) == sorted(expected, key=lambda m: m["name"]), prov["models"]
