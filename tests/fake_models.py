"""Seeded random-weight models that ComfyUI loads like real ones, for CPU-only tests.

No real weights can be downloaded in CI, yet every shipped workflow must run end to end,
generation included. ComfyUI picks the model family of a checkpoint from its keys and a few
shapes, so this module writes a checkpoint in the SD1.5 layout (UNet ``model_channels`` 320,
``context_dim`` 768, but one level deep and one block wide; full-size CLIP-L text encoder,
since ComfyUI builds that one from a fixed config; a TAESD-format VAE) plus a small LoRA
with kohya-style keys for both the UNet and the text encoder. Weights are drawn from a
seeded generator, so the same graph and seed give pixel-identical images.

The tensors are built by ComfyUI's own classes (``UNetModel``, ``SDClipModel``, ``TAESD``)
in the ComfyUI venv (torch lives only there); the test process, which has no torch, calls
``ensure_test_models()``, which runs this file as a script with that venv's python. Files
are cached in ``~/.cache/dgx-pixels/test-models/v<GENERATOR_VERSION>/``: bump the version
whenever the output would change.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

GENERATOR_VERSION = 1
SEED = 20240601
CHECKPOINT_NAME = "dgxpixels-test-sd15-random.safetensors"
LORA_NAME = "dgxpixels-test-lora-random.safetensors"

CACHE_ROOT = Path(os.environ.get("DGX_PIXELS_CACHE", Path.home() / ".cache" / "dgx-pixels"))
COMFY_ROOT = CACHE_ROOT / "comfyui-0.3.75"
TEST_MODELS_DIR = CACHE_ROOT / "test-models" / f"v{GENERATOR_VERSION}"


def ensure_test_models(
    python: str | os.PathLike | None = None,
    comfy_src: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    timeout: float = 600,
) -> tuple[Path, Path]:
    """Paths of the cached (checkpoint, LoRA), generating them first when absent.

    ``python`` is an interpreter with torch + safetensors (default: the ComfyUI test venv),
    ``comfy_src`` the ComfyUI source folder whose classes define the layout.
    """
    out = Path(out_dir) if out_dir else TEST_MODELS_DIR
    ckpt, lora, done = out / CHECKPOINT_NAME, out / LORA_NAME, out / "COMPLETE"
    if done.is_file() and ckpt.is_file() and lora.is_file():
        return ckpt, lora
    python = Path(python) if python else COMFY_ROOT / "venv" / "bin" / "python"
    comfy_src = Path(comfy_src) if comfy_src else COMFY_ROOT / "src"
    if not Path(python).exists() or not (Path(comfy_src) / "comfy").is_dir():
        raise FileNotFoundError(f"ComfyUI venv/source not found ({python}, {comfy_src})")
    out.mkdir(parents=True, exist_ok=True)
    # Generate into a sibling temp folder, then rename files in: a concurrent or killed run
    # never leaves a half-written model under the final name.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gen-") as tmp:
        cmd = [str(python), str(Path(__file__).resolve()), "--out", tmp, "--comfy-src", str(comfy_src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"generating test models failed:\n{proc.stdout}\n{proc.stderr}")
        os.replace(Path(tmp) / CHECKPOINT_NAME, ckpt)
        os.replace(Path(tmp) / LORA_NAME, lora)
    done.write_text(f"generator v{GENERATOR_VERSION} seed {SEED}\n")
    return ckpt, lora


# --------------------------------------------------------------------------- generation
# Everything below runs inside the ComfyUI venv (torch available).

UNET_CONFIG = dict(
    image_size=32,
    in_channels=4,
    out_channels=4,
    model_channels=320,  # required by ComfyUI's SD15 detection
    num_res_blocks=[1],
    channel_mult=[1],  # one level: the smallest UNet the detection still accepts
    num_heads=8,
    num_head_channels=-1,
    transformer_depth=[1],
    transformer_depth_output=[1, 1],
    transformer_depth_middle=1,
    context_dim=768,  # required: CLIP-L hidden size
    use_linear_in_transformer=False,
    use_spatial_transformer=True,
    legacy=False,
    adm_in_channels=None,
)


def _fill_random(state: dict, gen, torch) -> dict:
    """Deterministic weights: N(0, 1/fan_in) for matrices and kernels, norms at 1, biases at 0."""
    out = {}
    for key in sorted(state):
        t = state[key]
        if not torch.is_floating_point(t):
            out[key] = t.clone()
            continue
        if t.ndim >= 2:
            fan_in = max(1, t[0].numel())
            v = torch.randn(t.shape, generator=gen, dtype=torch.float32) / fan_in**0.5
        elif key.endswith(("norm.weight", "norm1.weight", "norm2.weight", "norm3.weight", "norm_out.weight",
                           "layer_norm1.weight", "layer_norm2.weight", "final_layer_norm.weight",
                           "in_layers.0.weight", "out_layers.0.weight", "out.0.weight")):
            v = torch.ones(t.shape)
        else:
            v = torch.zeros(t.shape) if key.endswith("bias") else torch.randn(t.shape, generator=gen) * 0.02
        out[key] = v
    return out


def _generate(out: Path, comfy_src: Path) -> None:
    sys.path.insert(0, str(comfy_src))
    sys.argv = [sys.argv[0], "--cpu"]  # comfy.cli_args parses argv on import when enabled
    import comfy.options

    comfy.options.enable_args_parsing()
    import torch
    from safetensors.torch import save_file

    import comfy.model_detection
    import comfy.ops
    import comfy.sd1_clip
    import comfy.taesd.taesd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    ops = comfy.ops.disable_weight_init

    unet = UNetModel(dtype=torch.float32, device="cpu", operations=ops, **UNET_CONFIG)
    unet_sd = _fill_random(unet.state_dict(), gen, torch)
    # Zero-init output conv like the reference UNet: a random one makes the sampler diverge.
    unet_sd["out.2.weight"] = unet_sd["out.2.weight"] * 0.1
    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32)
    clip_sd = _fill_random(clip.state_dict(), gen, torch)
    taesd = comfy.taesd.taesd.TAESD(latent_channels=4)
    vae_sd = _fill_random(taesd.state_dict(), gen, torch)

    ckpt = {}
    for k, v in unet_sd.items():
        ckpt["model.diffusion_model." + k] = v.to(torch.float16)
    for k, v in clip_sd.items():
        if k.startswith("transformer."):
            ckpt["cond_stage_model." + k] = v.to(torch.float16) if torch.is_floating_point(v) else v
    for k, v in vae_sd.items():
        ckpt["first_stage_model." + k] = v.to(torch.float16)
    ckpt = {k: v.contiguous() for k, v in ckpt.items()}

    # The checkpoint must be recognised as SD1.5 by the same code ComfyUI uses when loading.
    cfg = comfy.model_detection.model_config_from_unet(ckpt, "model.diffusion_model.")
    if cfg is None or type(cfg).__name__ != "SD15":
        raise SystemExit(f"generated UNet is not detected as SD15 (got {type(cfg).__name__})")

    lora = {}
    rank = 4
    targets = []
    for k in sorted(unet_sd):
        if k.endswith(".weight") and unet_sd[k].ndim == 2 and (".attn1." in k or ".attn2." in k or ".ff." in k):
            targets.append(("lora_unet_" + k[: -len(".weight")].replace(".", "_"), unet_sd[k].shape))
    for layer in range(2):
        for name, c in (("self_attn_q_proj", "self_attn.q_proj"), ("mlp_fc1", "mlp.fc1")):
            shape = clip_sd[f"transformer.text_model.encoder.layers.{layer}.{c}.weight"].shape
            targets.append((f"lora_te_text_model_encoder_layers_{layer}_{name}", shape))
    for name, (rows, cols) in targets:
        lora[f"{name}.lora_down.weight"] = (torch.randn((rank, cols), generator=gen) / cols**0.5).half()
        lora[f"{name}.lora_up.weight"] = (torch.randn((rows, rank), generator=gen) * 0.5).half()
        lora[f"{name}.alpha"] = torch.tensor(float(rank)).half()

    meta = {"generator": f"dgx-pixels tests/fake_models.py v{GENERATOR_VERSION}", "seed": str(SEED),
            "purpose": "random weights for CPU tests; produces noise, not images"}
    out.mkdir(parents=True, exist_ok=True)
    save_file(ckpt, str(out / CHECKPOINT_NAME), metadata=meta)
    save_file(lora, str(out / LORA_NAME), metadata=meta)
    n_params = sum(v.numel() for v in ckpt.values())
    print(f"checkpoint: {len(ckpt)} tensors, {n_params / 1e6:.1f} M params; lora: {len(targets)} modules")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--comfy-src", required=True)
    a = ap.parse_args()
    _generate(Path(a.out), Path(a.comfy_src))
