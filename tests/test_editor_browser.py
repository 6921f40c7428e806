"""The ComfyUI editor, in a real headless Chromium, with this pack installed.

Proves what a user sees: our nodes are found by the node search under ``DGX-Pixels``; every
shipped editor-format workflow loads with no missing node types and with each widget holding
the value the file stores (and the editor turns it back into exactly our API-format file);
the ``cleanup`` workflow queued with the Run button completes on the server.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the Python ``playwright`` package (its
own browser downloads are not used). Skips with the reason when either is missing.
Screenshots go to ``tests/artifacts/editor/``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from support.live import http_json

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts" / "editor"
EXAMPLES = REPO / "example_workflows"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium() -> str | None:
    for cand in (os.environ.get("DGX_PIXELS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and os.path.exists(cand):
            return cand
    return None


def _editor_workflows() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """Debian's chromium under playwright, fresh profile (``--user-data-dir``) per module."""
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                                                  "(pip install playwright)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    pw = sync_api.sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 2560, "height": 1100},
        )
    except Exception as exc:  # a broken install must say so once, not error every test
        pw.stop()
        pytest.skip(f"chromium at {exe} does not start under playwright: {exc}")
    yield ctx
    ctx.close()
    pw.stop()


@pytest.fixture(scope="module")
def editor(browser_context, comfy_server):
    """A page with the ComfyUI frontend of the test server, first-visit dialogs switched off,
    every request to a host other than the test server aborted."""
    server = comfy_server
    if not getattr(server, "managed", False):
        pytest.skip("needs the ComfyUI started by the tests (it writes the server's user settings)")
    settings = Path(server.base_dir) / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(settings.read_text()) if settings.exists() else {}
    current.update({"Comfy.TutorialCompleted": True})
    settings.write_text(json.dumps(current))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    ctx = browser_context
    host = urllib.parse.urlsplit(server.url).netloc

    def only_local(route):
        if urllib.parse.urlsplit(route.request.url).netloc == host or route.request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    ctx.route("**/*", only_local)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    page.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=90_000)
    page.wait_for_timeout(1000)
    page.errors = errors
    page.server = server
    yield page
    page.close()


def _dialog_texts(page) -> list[str]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText)"
    )


def _close_dialogs(page) -> None:
    page.keyboard.press("Escape")
    page.locator(".comfy-vue-node-search-container input, .p-autocomplete-input").first.wait_for(
        state="hidden", timeout=5_000)
    page.wait_for_timeout(200)


def _open_node_search(page):
    """Double-click the empty canvas: the editor opens its node search box."""
    box = page.locator(".comfy-vue-node-search-container input, .p-autocomplete-input").first
    for attempt in range(4):
        page.locator("#graph-canvas").dblclick(position={"x": 1100 + 20 * attempt, "y": 560})
        try:
            box.wait_for(state="visible", timeout=3_000)
            return box
        except Exception:
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "node-search-failed.png"))
    raise AssertionError("the node search box did not open on a double-click of the canvas")


def _fit_view(page) -> None:
    """Zoom the canvas to show the whole graph (the editor's '.' shortcut), for the screenshots."""
    page.evaluate("""async () => {
        try { await window.app.extensionManager.command.execute('Comfy.Canvas.FitView'); }
        catch (e) { window.app.canvas.ds.reset(); }
        window.app.canvas.setDirty(true, true);
    }""")
    page.wait_for_timeout(400)


def _our_nodes(server) -> dict[str, dict]:
    info = http_json(f"{server.url}/object_info")
    return {k: v for k, v in info.items() if k.startswith("DGXPixels")}


def test_node_search_finds_every_node_under_dgx_pixels(editor):
    page = editor
    nodes = _our_nodes(page.server)
    assert len(nodes) >= 5, sorted(nodes)
    page.evaluate("() => window.app.graph.clear()")
    missing = []
    for node_id, info in sorted(nodes.items()):
        assert info["category"].startswith("DGX-Pixels/"), (node_id, info["category"])
        box = _open_node_search(page)
        box.fill(info["display_name"])
        page.wait_for_timeout(600)
        items = page.evaluate(
            "() => Array.from(document.querySelectorAll('.p-autocomplete-list-item, [role=option]'))"
            ".map(e => e.innerText)"
        )
        expect_cat = info["category"].replace("/", " > ")
        if not any(info["display_name"] in t and expect_cat in t for t in items):
            missing.append((node_id, info["display_name"], items[:5]))
        if node_id == "DGXPixelsGridSnap":
            page.screenshot(path=str(ARTIFACTS / "node-search.png"))
        _close_dialogs(page)
    assert not missing, f"not found by the node search: {missing}"


def _widget_state(page) -> list[dict]:
    return page.evaluate(
        """() => window.app.graph._nodes.map(n => ({
            id: n.id, type: n.type,
            registered: !!LiteGraph.registered_node_types[n.type],
            widgets: (n.widgets || []).filter(w => w.serialize !== false).map(w => [w.name, w.value]),
            errors: !!n.has_errors,
        }))"""
    )


@pytest.mark.parametrize("path", _editor_workflows(), ids=lambda p: p.stem)
def test_shipped_editor_workflow_loads_without_missing_nodes(editor, path):
    page = editor
    wf = json.loads(path.read_text())
    page.evaluate("() => window.app.graph.clear()")
    page.evaluate(
        """async ([wf, name]) => { await window.app.loadGraphData(wf, true, true, name,
              {showMissingNodesDialog: true, showMissingModelsDialog: false}); }""",
        [wf, path.stem],
    )
    page.wait_for_timeout(800)
    _fit_view(page)
    page.screenshot(path=str(ARTIFACTS / f"workflow-{path.stem}.png"))
    dialogs = [t for t in _dialog_texts(page) if "missing" in t.lower() or "not found" in t.lower()]
    assert not dialogs, f"{path.name}: the editor reports {dialogs}"
    state = {n["id"]: n for n in _widget_state(page)}
    info = http_json(f"{page.server.url}/object_info")
    file_nodes = {n["id"]: n for n in wf["nodes"]}
    assert set(state) == set(file_nodes)
    for nid, fnode in file_nodes.items():
        s = state[nid]
        assert s["registered"], f"{path.name}: node {nid} type {s['type']} is not known to the editor"
        if fnode["type"] in ("MarkdownNote", "Note"):
            continue
        values = [v for _, v in s["widgets"]]
        stored = fnode["widgets_values"]
        assert values[: len(stored)] == stored, (
            f"{path.name}: node {nid} ({fnode['type']}) widgets {s['widgets']} != file {stored}")
        # Inputs a node gained after the file was saved get their defaults, as ComfyUI intends.
        for name, value in s["widgets"][len(stored):]:
            assert value == _default_of(info, fnode["type"], name), (path.name, nid, name, value)
    # The editor's own conversion must give exactly our API-format file (plus the defaults of
    # inputs added to a node since the file was written).
    api_file = _api_twin(path)
    if api_file is not None:
        prompt = page.evaluate("async () => (await window.app.graphToPrompt()).output")
        # Display-only widgets (Preview as Text's text box) are sent by the editor although the
        # node declares no such input; the server ignores them.
        display_only = page.evaluate(
            """() => Object.fromEntries(window.app.graph._nodes.map(n => [String(n.id),
                 (n.widgets || []).filter(w => w.serialize === false).map(w => w.name)]))"""
        )
        for nid, names in display_only.items():
            for name in names:
                if nid in prompt and name not in info[prompt[nid]["class_type"]]["input"].get("required", {}):
                    prompt[nid]["inputs"].pop(name, None)
        expected = json.loads(api_file.read_text())
        assert set(prompt) == set(expected)
        for nid, node in expected.items():
            got = dict(prompt[nid]["inputs"])
            for name in set(got) - set(node["inputs"]):
                assert got.pop(name) == _default_of(info, node["class_type"], name), (nid, name)
            assert got == node["inputs"], f"{path.name}: node {nid}: graphToPrompt {got} != {api_file} {node['inputs']}"
    assert not page.errors, page.errors


def _default_of(object_info: dict, node_type: str, name: str):
    spec = {**object_info[node_type]["input"].get("required", {}),
            **object_info[node_type]["input"].get("optional", {})}[name]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in opts:
        return opts["default"]
    options = spec[0] if isinstance(spec[0], list) else opts.get("options", [])
    return options[0] if options else None


def _api_twin(editor_file: Path) -> Path | None:
    """The API-format file shipped with the same workflow (newest version in workflows/<name>/)."""
    versions = sorted((REPO / "workflows" / editor_file.stem).glob("*/workflow.api.json"))
    return versions[-1] if versions else None


def test_cleanup_workflow_queued_from_the_run_button_completes(editor):
    page = editor
    server = page.server
    path = EXAMPLES / "cleanup.json"
    assert path.exists(), sorted(p.name for p in EXAMPLES.glob("*.json"))
    wf = json.loads(path.read_text())
    # The workflow's Load Image names a file in ComfyUI's input folder: provide it.
    load = next(n for n in wf["nodes"] if n["type"] == "LoadImage")
    _write_sample_input(Path(server.input_dir) / load["widgets_values"][0])
    page.evaluate(
        """async ([wf]) => { await window.app.loadGraphData(wf, true, true, 'cleanup',
              {showMissingNodesDialog: true, showMissingModelsDialog: false}); }""",
        [wf],
    )
    page.wait_for_timeout(500)
    before = set(http_json(f"{server.url}/history").keys())
    page.get_by_role("button", name="Run").first.click()
    deadline = time.monotonic() + 120
    entry = None
    while time.monotonic() < deadline:
        hist = http_json(f"{server.url}/history")
        new = [k for k in hist if k not in before]
        if new and hist[new[0]].get("status", {}).get("completed") is not None:
            entry = hist[new[0]]
            if entry["status"].get("status_str") in ("success", "error"):
                break
        time.sleep(0.3)
    page.wait_for_timeout(800)
    _fit_view(page)
    page.screenshot(path=str(ARTIFACTS / "cleanup-after-run.png"))
    assert entry is not None, "no prompt reached the server's history after clicking Run"
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    assert entry["outputs"], "the run produced no outputs"


def _write_sample_input(dest: Path) -> None:
    """A diffusion-style pseudo-pixel-art knight (the project's own sample art)."""
    from PIL import Image

    from orchestrator import samples

    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(samples.degrade(samples.sprites()["knight"], seed=3).image).save(dest)


def test_the_missing_node_check_can_fail(editor):
    """The checks above must notice a node type the server does not have (else they prove nothing)."""
    page = editor
    wf = json.loads((EXAMPLES / "cleanup.json").read_text())
    victim = next(n for n in wf["nodes"] if n["type"] == "DGXPixelsStrayCleanup")
    victim["type"] = "DGXPixelsNoSuchNode"
    page.evaluate("() => window.app.graph.clear()")
    page.evaluate(
        """async ([wf]) => { await window.app.loadGraphData(wf, true, true, 'broken',
              {showMissingNodesDialog: true, showMissingModelsDialog: false}); }""",
        [wf],
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "missing-node-detected.png"))
    dialogs = [t for t in _dialog_texts(page) if "missing" in t.lower() or "not found" in t.lower()]
    state = {n["id"]: n for n in _widget_state(page)}
    assert dialogs and "DGXPixelsNoSuchNode" in " ".join(dialogs), _dialog_texts(page)
    assert not state[victim["id"]]["registered"]
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)


def test_graph_exported_by_the_editor_converts_like_the_editor_and_runs(editor, tmp_path):
    """Build the graph of ``support/frontend_graph.py`` in the editor, export it with the
    editor's own Export command, and run the downloaded file with `dgx-pixels run`. Our
    conversion of it (and of the stored copy that test_run_live runs) must equal the
    editor's own API-format prompt."""
    from orchestrator.convert import convert_ui_to_api
    from support import frontend_graph as fg

    page = editor
    server = page.server
    rgb = fg.provide_input(server.url)
    frontend = page.evaluate(fg.BUILD_JS, [fg.INPUT_NAME, fg.OUTPUT_PREFIX, fg.SCALE])["output"]
    prompt_setting = page.evaluate("() => window.app.extensionManager.setting.get('Comfy.PromptFilename')")
    page.evaluate("async () => await window.app.extensionManager.setting.set('Comfy.PromptFilename', false)")
    try:
        with page.expect_download(timeout=15_000) as download:
            page.evaluate("async () => await window.app.extensionManager.command.execute('Comfy.ExportWorkflow')")
    finally:
        page.evaluate("async (v) => await window.app.extensionManager.setting.set('Comfy.PromptFilename', v)",
                      prompt_setting)
    exported = ARTIFACTS / "frontend_pixel_ops.ui.json"
    download.value.save_as(exported)
    _fit_view(page)
    page.screenshot(path=str(ARTIFACTS / "frontend-pixel-ops.png"))
    saved = json.loads(exported.read_text())
    assert saved["extra"]["frontendVersion"] == page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")

    def strip(prompt: dict) -> dict:
        return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}

    info = http_json(f"{server.url}/object_info")
    assert strip(convert_ui_to_api(saved, info)) == strip(frontend)
    assert strip(convert_ui_to_api(json.loads(fg.STORED.read_text()), info)) == strip(frontend)
    fg.check_result(fg.run_with_cli(exported, server.url, tmp_path / "out"), rgb)
    assert not page.errors, page.errors
