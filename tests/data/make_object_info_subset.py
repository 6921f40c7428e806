"""Regenerate ``object_info_subset.json``: a few core node definitions from a real ComfyUI.

Usage: ``python tests/data/make_object_info_subset.py http://127.0.0.1:8188`` (or a saved
``/object_info`` JSON file instead of the URL). Model lists are emptied so the file does not
depend on what the server has installed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NODES = [
    "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "KSamplerAdvanced",
    "VAEDecode", "VAEEncode", "SaveImage", "PreviewImage", "LoadImage", "LoraLoader", "ImageInvert",
    "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "StringConcatenate", "ImageScale",
    "RandomNoise", "LoadAudio", "SaveAudio", "ConditioningCombine",
]
MODEL_INPUTS = {"ckpt_name", "lora_name", "image", "audio"}


def main(src: str) -> None:
    if src.startswith("http"):
        import requests

        info = requests.get(src.rstrip("/") + "/object_info", timeout=60).json()
    else:
        info = json.loads(Path(src).read_text(encoding="utf-8"))
    out = {}
    for name in NODES:
        node = json.loads(json.dumps(info[name]))
        for section in ("required", "optional"):
            for key, spec in (node.get("input", {}).get(section) or {}).items():
                if key in MODEL_INPUTS and isinstance(spec[0], list):
                    spec[0] = []
        out[name] = node
    dest = Path(__file__).with_name("object_info_subset.json")
    dest.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {dest} ({len(out)} nodes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8188")
