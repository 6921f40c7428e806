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
