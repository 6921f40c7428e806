"""An editor-format workflow saved by ComfyUI's own frontend that runs with no model files.

Every published template (``../shared/workflow-convert``, the server's template packages)
needs model weights or a cloud API node, so this graph is built in the real frontend (1.32.9,
served by the test ComfyUI 0.3.75) with ``BUILD_JS`` and saved as the editor's Export saves it
(``graphToPrompt().workflow``: ``app.graph.serialize()`` plus ``extra.frontendVersion``).
``STORED`` is the file the editor's Export command downloaded; ``test_editor_browser`` builds
the graph again, exports it (into ``tests/artifacts/editor/``) and checks that both copies
convert to the editor's own API-format prompt.

The graph uses what the frontend adds on top of the API format:

- the Invert node sits inside a subgraph (flattened to ``<subgraph node>:<inner id>``);
- a bypassed Blur (strong, so a missed bypass shows in the pixels) between Invert and Upscale;
- a Reroute in front of the Upscale;
- a legacy ``PrimitiveNode`` drives the Upscale's ``scale`` with 3 while the Upscale's own
  ``widgets_values`` still hold the stale 4 (the frontend sends the primitive's value);
- a muted Save Image on the loaded image (not sent at all) and a Note (frontend only).

So the only output is ``invert(input)`` enlarged 3x with whole pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

STORED = Path(__file__).resolve().parent.parent / "data" / "editor" / "frontend_pixel_ops.ui.json"
INPUT_NAME = "frontend-pixel-ops.png"
OUTPUT_PREFIX = "frontend-pixel-ops"
SCALE = 3

# Called with page.evaluate(BUILD_JS, [INPUT_NAME, OUTPUT_PREFIX, SCALE]) on a loaded editor page;
# returns the frontend's graphToPrompt(): ``workflow`` (the editor-format save, what the
# editor's Export writes) and ``output`` (the frontend's own API-format prompt).
BUILD_JS = """async ([inputName, prefix, scale]) => {
  const app = window.app;
  app.graph.clear();
  const add = (type, pos) => { const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n); return n; };
  const slot = (n, name) => n.inputs.findIndex(i => i.name === name);
  const widget = (n, name) => n.widgets.find(w => w.name === name);
  const load = add("LoadImage", [40, 120]);
  const inv = add("ImageInvert", [380, 120]);
  const blur = add("ImageBlur", [620, 120]);
  const reroute = add("Reroute", [900, 140]);
  const up = add("DGXPixelsNearestUpscale", [1000, 120]);
  const prim = add("PrimitiveNode", [700, 360]);
  const save = add("SaveImage", [1320, 120]);
  const muted = add("SaveImage", [380, 420]);
  const note = add("Note", [40, 480]);
  widget(load, "image").value = inputName;
  widget(blur, "blur_radius").value = 5;
  widget(up, "scale").value = 4;
  widget(save, "filename_prefix").value = prefix;
  widget(muted, "filename_prefix").value = prefix + "-muted";
  note.widgets[0].value = "Invert, then enlarge with whole pixels; the blur is bypassed.";
  load.connect(0, inv, 0);
  inv.connect(0, blur, 0);
  blur.connect(0, reroute, 0);
  reroute.connect(0, up, slot(up, "image"));
  up.connect(0, save, 0);
  prim.connect(0, up, slot(up, "scale"));
  load.connect(0, muted, 0);
  // Set without the widget callback: the Upscale keeps its stale value, as in saved files.
  prim.widgets[0].value = scale;
  blur.mode = 4;
  muted.mode = 2;
  app.graph.convertToSubgraph(new Set([inv]));
  app.canvas.setDirty(true, true);
  const { workflow, output } = await app.graphToPrompt();
  return { workflow, output };
}"""


def input_rgb() -> np.ndarray:
    """The seeded picture given to the graph's Load Image (odd size, so a swapped axis shows)."""
    return np.random.default_rng(2024).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


def expected_output(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(255 - rgb, SCALE, axis=0), SCALE, axis=1)


def png_bytes(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def provide_input(server_url: str) -> np.ndarray:
    """Put the input picture into the server's input folder under the name the graph loads."""
    from orchestrator.client import ComfyClient
    from orchestrator.config import load_config

    rgb = input_rgb()
    client = ComfyClient(server_url, load_config(servers=[server_url], environ={}))
    try:
        ref = client.upload_image(png_bytes(rgb), INPUT_NAME, subfolder="")
    finally:
        client.close()
    assert ref == INPUT_NAME, f"the server stored the input as {ref!r}"
    return rgb


def run_with_cli(path: Path, server_url: str, out_dir: Path) -> dict:
    """``dgx-pixels run PATH`` in a child process; returns its JSON result line."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent.parent
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(path), "--server", server_url,
                           "--out", str(out_dir), "--json", "--fresh"],
                          capture_output=True, text=True, cwd=repo, timeout=180)
    assert proc.returncode == 0, (f"dgx-pixels run exited {proc.returncode}:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_result(result: dict, rgb: np.ndarray) -> None:
    """The run wrote exactly one image, from the Save Image, holding the expected pixels."""
    from PIL import Image

    outs = result["outputs"]
    assert [(o["node_id"], o["node_type"]) for o in outs] == [("7", "SaveImage")], outs
    assert Path(outs[0]["server_filename"]).name.startswith(OUTPUT_PREFIX + "_"), outs
    img = Image.open(outs[0]["path"])
    expected = expected_output(rgb)
    assert img.size == (expected.shape[1], expected.shape[0]), img.size
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), expected)
