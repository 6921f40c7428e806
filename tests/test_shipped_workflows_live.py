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

from support.live import install_test_models, output_images, queue_and_wait


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

from support.live import apply_params  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "workflows").glob("*/*/workflow.json"))


def _load(manifest_path: Path) -> tuple[dict, dict]:
    manifest = json.loads(manifest_path.read_text())
    api = json.loads((manifest_path.parent / "api.json").read_text())
    return manifest, api


def _sample_input(server, name: str) -> str:
    from orchestrator import samples

    dest = Path(server.input_dir) / name
    Image.fromarray(samples.degrade(samples.sprites()["knight"], seed=5).image).save(dest)
    return name


def test_every_workflow_name_is_shipped():
    names = {p.parent.parent.name for p in SHIPPED}
    assert {"sprite", "animation", "tileset", "pixelize", "cleanup"} <= names, names


@pytest.mark.parametrize("manifest_path", SHIPPED, ids=lambda p: f"{p.parent.parent.name}@{p.parent.name}")
def test_shipped_workflow_runs_end_to_end(managed_comfy_server, test_models, manifest_path):
    server = managed_comfy_server
    ckpt, lora = test_models
    manifest, api = _load(manifest_path)
    name = manifest["name"]
    project = f"wf_{name}_{uuid.uuid4().hex[:8]}"
    asset = f"sprites/{name}.png"
    values = {"project": project, "asset_path": asset}
    params = manifest["params"]
    if manifest["needs_models"]:
        values.update(checkpoint=ckpt, lora=lora, width=64, height=64, steps=2)
        # Random weights draw noise, which has no pixel grid to find: give the grid instead.
        values.update(grid_mode="size", target_width=16, target_height=16)
        for count in ("frames", "tiles"):
            if count in params:
                values[count] = 4  # the default animation walk:0-3 needs 4
    if "image" in params:
        values["image"] = _sample_input(server, f"{project}.png")
    prompt = apply_params(api, manifest, values)
    entry = queue_and_wait(server.url, prompt, timeout=600)
    assert entry["status"]["status_str"] == "success"

    # Bevy export into the (temporary) server's default Bevy root: PNG, .meta, atlas JSON.
    assets = Path(server.output_dir) / "bevy" / project / "assets"
    png = assets / asset
    assert png.is_file(), sorted(str(p.relative_to(assets)) for p in assets.rglob("*")) if assets.exists() else assets
    meta = png.with_name(png.name + ".meta")
    assert meta.is_file()
    assert "nearest" in meta.read_text().lower()
    img = Image.open(png)
    assert img.mode == "RGBA"
    if manifest["needs_models"]:
        # target 16x16 art pixels per frame; sheets are whole multiples of the cell
        assert img.width % 16 == 0 and img.height % 16 == 0, img.size
    atlas = png.with_suffix(".json")
    if name in ("animation", "tileset", "cleanup"):
        data = json.loads(atlas.read_text())
        frames = data["frames"]
        n = len(frames)
        expect = values.get("frames") or values.get("tiles") or 1
        assert n == expect, (n, expect)
        if name == "animation":
            tags = data["meta"]["frameTags"]
            assert [t["name"] for t in tags] == ["walk"], tags
    # The saved image (SaveImage) exists too.
    saved = [img for nid in manifest["outputs"] for img in output_images(entry, nid)]
    assert saved, entry["outputs"].keys()
