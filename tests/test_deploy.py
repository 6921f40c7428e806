"""Deploying collected outputs into a Bevy project: all-or-nothing checks, exactly-once deploy
ids, provenance records, naming of several outputs, and the deploy / history commands."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from comfy_nodes.pixel.errors import ExportError, PathEscapeError
from orchestrator.cli import main
from orchestrator.deploy import (
    _models_dir_from_argv,
    asset_paths_for,
    deploy_file,
    deploy_outputs,
    model_records,
)
from orchestrator.run import OutputFile, RunResult


def _png(path: Path, seed: int, size: int = 5, text: dict | None = None) -> np.ndarray:
    rgba = np.random.default_rng(seed).integers(0, 256, size=(size, size, 4), dtype=np.uint8)
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    Image.fromarray(rgba, "RGBA").save(path, pnginfo=info)
    return rgba


def _output(path: Path, node="9", name=None) -> OutputFile:
    data = path.read_bytes()
    return OutputFile(node_id=node, node_type="SaveImage", server_filename=name or path.name, server_subfolder="",
                      server_type="output", path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _result(outputs, pid="pid-1") -> RunResult:
    return RunResult(prompt_id=pid, server="http://127.0.0.1:8188", workflow="pixelize@1.0.0",
                     content_hash="sha256:abc", params={"seed": 7, "scale": 2}, seed=7, outputs=outputs,
                     cached=False, elapsed_s=0.1, models=("sd_xl_base_1.0.safetensors",),
                     comfyui_version="0.3.75")


@pytest.fixture
def proj(tmp_path):
    p = tmp_path / "game"
    (p / "assets").mkdir(parents=True)
    (p / "Cargo.toml").write_text('[dependencies]\nbevy = { version = "0.12", features = [] }\n')
    return p


def _manifest(proj):
    return json.loads((proj / "assets" / ".dgx-pixels" / "manifest.json").read_text())["assets"]


def test_deploy_outputs_writes_assets_with_provenance_once(tmp_path, proj):
    a = tmp_path / "ComfyUI_00001_.png"
    pix = _png(a, 1)
    res = _result([_output(a)])
    d = deploy_outputs(res, proj, "sprites/knight.png")
    assert [x.asset_path for x in d] == ["sprites/knight.png"] and not d[0].already
    np.testing.assert_array_equal(np.asarray(Image.open(proj / "assets/sprites/knight.png").convert("RGBA")), pix)
    assert "bevy_render::texture::image_loader::ImageLoader" in (proj / "assets/sprites/knight.png.meta").read_text()
    e = _manifest(proj)[0]
    prov = e["provenance"]
    assert prov["workflow"] == "pixelize@1.0.0" and prov["content_hash"] == "sha256:abc"
    assert prov["params"] == {"seed": 7, "scale": 2} and prov["seed"] == 7
    assert prov["models"] == [{"name": "sd_xl_base_1.0.safetensors", "sha256": None}]
    assert prov["comfyui_version"] == "0.3.75" and prov["node_pack_version"]
    assert prov["server"] == "http://127.0.0.1:8188" and prov["prompt_id"] == "pid-1"
    assert prov["source"]["sha256"] == res.outputs[0].sha256 and prov["deploy_id"] == "pid-1:0"
    assert prov["time"].endswith("Z")
    # Same deploy id again: recognised in the manifest, nothing exported twice.
    d2 = deploy_outputs(res, proj, "sprites/knight.png")
    assert d2[0].already and _manifest(proj)[0]["exports"] == 1


def test_several_outputs_get_numbered_or_named_paths(tmp_path, proj):
    files = []
    for i in range(3):
        p = tmp_path / f"frame_{i}.png"
        _png(p, 10 + i)
        files.append(_output(p, name=f"../evil/frame_{i}.png"))
    d = deploy_outputs(_result(files, pid="p2"), proj, "sprites/walk.png")
    assert [x.asset_path for x in d] == ["sprites/walk-1.png", "sprites/walk-2.png", "sprites/walk-3.png"]
    d = deploy_outputs(_result(files, pid="p3"), proj, "frames/")
    assert [x.asset_path for x in d] == ["frames/frame_0.png", "frames/frame_1.png", "frames/frame_2.png"]
    assert asset_paths_for(["a.webp"], "x/") == ["x/a.png"]


def test_partial_or_changed_outputs_deploy_nothing(tmp_path, proj):
    good = tmp_path / "good.png"
    _png(good, 1)
    gone = tmp_path / "gone.png"
    _png(gone, 2)
    outs = [_output(good), _output(gone)]
    gone.unlink()
    with pytest.raises(ExportError, match="missing; nothing deployed"):
        deploy_outputs(_result(outs), proj, "sprites/x.png")
    assert not (proj / "assets" / "sprites").exists()
    changed = tmp_path / "changed.png"
    _png(changed, 3)
    outs = [_output(good), _output(changed)]
    _png(changed, 4)
    with pytest.raises(ExportError, match="changed since it was downloaded"):
        deploy_outputs(_result(outs), proj, "sprites/x.png")
    assert not (proj / "assets" / "sprites").exists()
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good.read_bytes()[:30])
    with pytest.raises(ExportError, match="not a usable image"):
        deploy_outputs(_result([_output(good), _output(trunc)]), proj, "sprites/x.png")
    assert not (proj / "assets" / "sprites").exists()
    with pytest.raises(PathEscapeError):
        deploy_outputs(_result([_output(good)]), proj, "../../x.png")
    assert not (proj / "assets" / "sprites").exists()


def test_the_recorded_seed_is_the_generations_not_another_nodes():
    """A model-free cleanup was recorded (and shown by history) as "seed 0": Palette Extract's
    k-means seed, which belongs to the locked graph. Only a sampler's or noise node's seed, or
    the workflow's seed parameter, is the job's seed."""
    from orchestrator.run import find_seed

    cleanup = {"4": {"class_type": "DGXPixelsPaletteExtract", "inputs": {"seed": 0, "colors": 16}}}
    assert find_seed(cleanup) is None
    generated = {**cleanup, "9": {"class_type": "KSampler", "inputs": {"seed": 1234}},
                 "12": {"class_type": "RandomNoise", "inputs": {"noise_seed": 99}}}
    assert find_seed(generated) == 1234
    assert find_seed({**cleanup, "12": generated["12"]}) == 99
    assert find_seed(cleanup, {"seed": 5}) == 5


def test_fresh_draws_a_new_seed_for_a_workflow_file_too(tmp_path):
    """`run FILE --fresh` (its help: "new seed if not --set") sent the seed the file was saved
    with: the same generation again, only not from the cache. A file's samplers and noise nodes
    now get a new seed; other nodes' seeds (Palette Extract's k-means) stay as locked."""
    from orchestrator.run import prepare_job

    prompt = {"4": {"class_type": "DGXPixelsPaletteExtract", "inputs": {"seed": 0, "colors": 16}},
              "9": {"class_type": "KSampler", "inputs": {"seed": 1234, "steps": 2}},
              "12": {"class_type": "RandomNoise", "inputs": {"noise_seed": 99}},
              "13": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "x"}}}
    f = tmp_path / "saved.api.json"
    f.write_text(json.dumps(prompt))
    same = prepare_job(str(f))
    assert same.prompt["9"]["inputs"]["seed"] == 1234 and same.seed == 1234
    seeds = set()
    for _ in range(3):
        spec = prepare_job(str(f), fresh=True)
        assert spec.prompt["4"]["inputs"]["seed"] == 0
        assert spec.prompt["12"]["inputs"]["noise_seed"] != 99
        seeds.add(spec.prompt["9"]["inputs"]["seed"])
        assert spec.seed == spec.prompt["9"]["inputs"]["seed"]  # and that is what is recorded
    assert len(seeds) == 3 and 1234 not in seeds


def test_deploy_file_reads_comfyui_prompt_from_png(tmp_path, proj):
    prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 1234, "model": ["4", 0]}},
              "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "pixel.safetensors"}}}
    f = tmp_path / "gen.png"
    _png(f, 5, text={"prompt": json.dumps(prompt)})
    d = deploy_file(f, proj, "sprites/gen.png", provenance={"note": "hand-picked"})
    prov = _manifest(proj)[0]["provenance"]
    assert d.asset_path == "sprites/gen.png"
    assert prov["seed"] == 1234 and prov["models"] == [{"name": "pixel.safetensors", "sha256": None}]
    assert prov["note"] == "hand-picked" and prov["source"]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


def test_model_hashes_when_the_models_folder_is_local(tmp_path):
    models = tmp_path / "models"
    (models / "checkpoints" / "sd").mkdir(parents=True)
    blob = b"not really a model" * 100
    (models / "checkpoints" / "sd" / "tiny.safetensors").write_bytes(blob)
    recs = model_records(["sd/tiny.safetensors", "absent.safetensors", "../escape.bin"], models)
    assert recs[0] == {"name": "sd/tiny.safetensors", "sha256": hashlib.sha256(blob).hexdigest(), "folder": "checkpoints"}
    assert recs[1]["sha256"] is None and recs[2]["sha256"] is None
    assert model_records(["x"], None) == [{"name": "x", "sha256": None}]
    assert _models_dir_from_argv(["main.py", "--base-directory", str(tmp_path)]) == models
    assert _models_dir_from_argv(["main.py", "--port", "1"]) is None


def test_deploy_and_history_commands(tmp_path, proj, capsys):
    f = tmp_path / "k.png"
    _png(f, 8)
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/k.png", "--provenance", '{"workflow": "sprite@1.0.0", "seed": 5}']) == 0
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/k.png", "--overwrite", "version"]) == 0
    out = capsys.readouterr().out
    assert "sprites/k.png" in out and "sprites/k-2.png" in out
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "../k.png"]) == 6
    assert "refusing to write" in capsys.readouterr().err
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/k.png", "--provenance", "[1]"]) == 2
    capsys.readouterr()
    assert main(["history", "--bevy", str(proj)]) == 0
    out = capsys.readouterr().out
    assert "sprites/k.png" in out and "sprite@1.0.0" in out and "seed 5" in out and "sprites/k-2.png" in out
    assert main(["history", "--bevy", str(proj), "--workflow", "sprite"]) == 0
    out = capsys.readouterr().out
    assert "sprites/k.png" in out and "k-2.png" not in out
    assert main(["history", "--bevy", str(proj), "--asset", "sprites/k.png"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["provenance"]["seed"] == 5
    assert main(["history", "--bevy", str(proj), "--asset", "nope.png"]) == 2


@pytest.mark.parametrize("entry", ['"str"', '{"path": 5}', '{"kind": "image"}', '{"path": "x.png", "size": "big"}',
                                   '{"path": "x.png", "time": 5}', '{"path": "x.png", "provenance": "str"}',
                                   '{"path": "x.png", "exports": "x"}', '{"path": "x.png", "provenance": {"source": 5}}',
                                   '{"path": "x.png", "files": ["a.png"]}'])
def test_a_damaged_manifest_entry_is_an_error_naming_it_in_every_command(tmp_path, proj, capsys, entry):
    f = tmp_path / "k.png"
    _png(f, 8)
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/k.png"]) == 0
    manifest = proj / "assets" / ".dgx-pixels" / "manifest.json"
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(doc)[:-2] + f", {entry}]}}")
    capsys.readouterr()
    for argv in (["history", "--bevy", str(proj)], ["deploy", str(f), "--bevy", str(proj), "--asset-path", "b.png"],
                 ["export", str(f), "--bevy", str(proj), "--path", "c.png", "--no-snippet"]):
        assert main(argv) == 6, argv
        err = capsys.readouterr().err
        assert f"the asset manifest {manifest} is damaged: entry 1 is " in err and "Traceback" not in err
        assert "hint: fix or remove that entry" in err
    assert not (proj / "assets" / "b.png").exists() and not (proj / "assets" / "c.png").exists()


def test_deploy_of_a_missing_folder_or_unreadable_input_is_bad_input(tmp_path, proj, capsys):
    (tmp_path / "frames").mkdir()
    (tmp_path / "bad.png").write_text("not an image")
    for src, message in ((tmp_path / "nope.png", f"file not found: {tmp_path / 'nope.png'}"),
                         (tmp_path / "frames", f"{tmp_path / 'frames'} is a folder, not an image file"),
                         (tmp_path / "bad.png", f"{tmp_path / 'bad.png'} is not a readable image")):
        assert main(["deploy", str(src), "--bevy", str(proj), "--asset-path", "x.png"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and "\nhint: " in err
    assert not (proj / "assets" / "x.png").exists()


def test_a_missing_project_folder_is_bad_input_with_one_message_in_every_command(tmp_path, capsys):
    f = tmp_path / "k.png"
    _png(f, 8)
    (tmp_path / "out").mkdir()
    (tmp_path / "afile").write_text("x")
    for project, what in ((tmp_path / "nope", "does not exist"), (tmp_path / "afile", "is a file, not a folder")):
        for argv in (["deploy", str(f), "--bevy", str(project), "--asset-path", "k.png"],
                     ["export", str(f), "--bevy", str(project), "--path", "k.png"],
                     ["history", "--bevy", str(project)],
                     ["watch", str(tmp_path / "out"), "--bevy", str(project)]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert err.startswith(f"error: Bevy project folder {project} {what}\n"), (argv, err)
            assert "hint: give the game's folder, the one that holds Cargo.toml and assets/" in err
    assert not (tmp_path / "nope").exists()


def test_history_shows_assets_the_comfyui_node_exported(tmp_path, proj, capsys):
    """The Bevy Export node records its provenance source as the text "comfyui"."""
    from comfy_nodes.pixel.bevy_export import export_asset

    export_asset(proj, "ui/a.png", np.zeros((4, 4, 4), np.uint8), provenance={"source": "comfyui", "node": "12"})
    export_asset(proj, "ui/b.png", np.zeros((4, 4, 4), np.uint8), provenance={"source": "comfyui"})
    assert main(["history", "--bevy", str(proj)]) == 0
    out = capsys.readouterr().out
    assert "ui/a.png  (4x4, " in out and "<- comfyui node 12" in out and out.rstrip().endswith("<- comfyui")


def test_history_of_an_asset_not_recorded_hints_at_the_list(tmp_path, proj, capsys):
    assert main(["history", "--bevy", str(proj), "--asset", "sprites/nope.png"]) == 2
    err = capsys.readouterr().err
    assert "error: no asset 'sprites/nope.png' in " in err
    assert f"hint: `dgx-pixels history --bevy {proj}` lists the recorded paths" in err


def _animation(path: Path, n: int = 4, **save) -> None:
    frames = []
    for i in range(n):
        a = np.zeros((16, 16, 4), np.uint8)
        a[4:16, 5:11] = (200, 40 * i, 40, 255)
        frames.append(Image.fromarray(a, "RGBA"))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, **save)


def test_deploy_of_an_animation_is_refused_naming_the_file_and_its_frames(tmp_path, proj, capsys):
    """One still PNG would hold only an animation's first frame: the other frames never reached
    the game, and the deploy said nothing."""
    _animation(tmp_path / "run.gif", disposal=2)
    _animation(tmp_path / "run_apng.png")
    _animation(tmp_path / "run.webp", n=3, lossless=True)
    for name, n in (("run.gif", 4), ("run_apng.png", 4), ("run.webp", 3)):
        src = tmp_path / name
        assert main(["deploy", str(src), "--bevy", str(proj), "--asset-path", "sprites/run.png"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {src} is an animation of {n} frames, and deploy writes one still image")
        assert f"hint: lay its frames out as a sprite sheet: `dgx-pixels export {src} --bevy" in err
    assert not (proj / "assets" / "sprites").exists()
    # a job's output is checked the same way, before anything of the job is written
    still = tmp_path / "still.png"
    _png(still, 1)
    with pytest.raises(ExportError, match=r"run\.webp is an animation of 3 frames.*nothing deployed"):
        deploy_outputs(_result([_output(still), _output(tmp_path / "run.webp")]), proj, "sprites/x.png")
    assert not (proj / "assets" / "sprites").exists()


def test_replace_refuses_a_file_dgx_pixels_did_not_write_or_that_was_edited_since(tmp_path, proj, capsys):
    f, g = tmp_path / "k.png", tmp_path / "g.png"
    _png(f, 8)
    _png(g, 9)
    sprites = proj / "assets" / "sprites"
    sprites.mkdir()
    (sprites / "mine.png").write_bytes(b"hand-made")
    # the default overwrite policy (replace) leaves the user's own file alone
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/mine.png"]) == 6
    err = capsys.readouterr().err
    assert f"error: {sprites / 'mine.png'} exists and dgx-pixels never wrote it" in err and "--overwrite version" in err
    assert (sprites / "mine.png").read_bytes() == b"hand-made" and not (sprites / "mine.png.meta").exists()
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/mine.png", "--overwrite", "version"]) == 0
    assert (sprites / "mine-2.png").is_file() and (sprites / "mine.png").read_bytes() == b"hand-made"
    capsys.readouterr()
    # what dgx-pixels wrote, still as written, is replaced
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/k.png"]) == 0
    assert main(["deploy", str(g), "--bevy", str(proj), "--asset-path", "sprites/k.png"]) == 0
    assert np.array_equal(np.asarray(Image.open(sprites / "k.png").convert("RGBA")),
                          np.asarray(Image.open(g).convert("RGBA")))
    # edited by hand since: refused, the edit kept
    (sprites / "k.png").write_bytes(f.read_bytes())
    capsys.readouterr()
    assert main(["deploy", str(g), "--bevy", str(proj), "--asset-path", "sprites/k.png"]) == 6
    assert f"error: {sprites / 'k.png'} was changed since dgx-pixels wrote it" in capsys.readouterr().err
    assert (sprites / "k.png").read_bytes() == f.read_bytes()
    # and its .meta the same (a sampler the user changed)
    (sprites / "k.png").unlink()
    (sprites / "k.png.meta").write_text("(my own settings)")
    assert main(["deploy", str(g), "--bevy", str(proj), "--asset-path", "sprites/k.png"]) == 6
    assert f"{sprites / 'k.png.meta'} was changed since dgx-pixels wrote it" in capsys.readouterr().err


def test_deploy_of_an_asset_onto_itself_is_refused(tmp_path, proj, capsys):
    """Deployed onto itself, --upscale enlarged the asset on every run and the record named the
    asset as its own source, losing its seed and workflow."""
    f = tmp_path / "k.png"
    _png(f, 8, size=16)
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "sprites/hero.png",
                 "--provenance", '{"seed": 7, "workflow": "sprite@1.0.0"}']) == 0
    asset = proj / "assets" / "sprites" / "hero.png"
    before = asset.read_bytes()
    capsys.readouterr()
    for given in (str(asset), str(proj / "assets" / "sprites" / ".." / "sprites" / "hero.png")):
        assert main(["deploy", given, "--bevy", str(proj), "--asset-path", "sprites/hero.png", "--upscale", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: file {given!r} is the asset 'sprites/hero.png' itself: nothing to deploy")
    assert asset.read_bytes() == before
    prov = _manifest(proj)[0]["provenance"]
    assert prov["seed"] == 7 and prov["source"]["file"] == str(f.resolve())


def test_history_marks_missing_and_changed_assets(tmp_path, proj, capsys):
    for i, name in enumerate(("a", "b", "c", "d", "e")):
        _png(tmp_path / f"{name}.png", 20 + i)
        assert main(["deploy", str(tmp_path / f"{name}.png"), "--bevy", str(proj), "--asset-path", f"s/{name}.png",
                     "--provenance", '{"seed": 7}']) == 0
    (proj / "assets" / "s" / "b.png").unlink()
    (proj / "assets" / "s" / "c.png").write_bytes((tmp_path / "a.png").read_bytes())
    # the .meta sets the sampler: edited (or gone), the game no longer shows what was deployed
    with open(proj / "assets" / "s" / "d.png.meta", "a") as fh:
        fh.write("// my tweak\n")
    (proj / "assets" / "s" / "e.png.meta").unlink()
    capsys.readouterr()
    assert main(["history", "--bevy", str(proj)]) == 0
    lines = {ln.split()[1]: ln for ln in capsys.readouterr().out.splitlines()}
    assert lines["s/a.png"].endswith("seed 7")
    assert lines["s/b.png"].endswith("seed 7  [missing]")
    assert lines["s/c.png"].endswith("seed 7  [changed since deploy]")
    assert lines["s/d.png"].endswith("seed 7  [changed since deploy]")
    assert lines["s/e.png"].endswith("seed 7  [changed since deploy]")
    assert main(["history", "--bevy", str(proj), "--json"]) == 0
    assert {e["path"]: e["status"] for e in json.loads(capsys.readouterr().out)} == {
        "s/a.png": "ok", "s/b.png": "missing", "s/c.png": "changed", "s/d.png": "changed", "s/e.png": "changed"}
    assert main(["history", "--bevy", str(proj), "--asset", "s/c.png"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "changed"


def test_history_of_a_folder_that_is_no_project_is_bad_input(tmp_path, proj, capsys):
    """A mistyped --bevy that happens to exist read as "nothing deployed yet"."""
    other = tmp_path / "not_a_game"
    other.mkdir()
    assert main(["history", "--bevy", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {other} is not a Bevy project: it holds no Cargo.toml and no asset manifest")
    assert main(["history", "--bevy", str(proj)]) == 0  # a game with nothing deployed yet
    assert "no deployed assets recorded" in capsys.readouterr().out


def test_history_workflow_matches_whole_version_components(tmp_path, proj, capsys):
    for i, wf in enumerate(("sprite@1.0.0", "sprite@1.2.0", "sprite@10.0.0", "sprites@1.0.0")):
        _png(tmp_path / f"{i}.png", 30 + i)
        assert main(["deploy", str(tmp_path / f"{i}.png"), "--bevy", str(proj), "--asset-path", f"s/{i}.png",
                     "--provenance", json.dumps({"workflow": wf})]) == 0
    capsys.readouterr()
    for ref, want in (("sprite", ["0", "1", "2"]), ("sprite@1", ["0", "1"]), ("sprite@1.2", ["1"]),
                      ("sprite@1.0.0", ["0"]), ("sprite@10", ["2"]), ("sprite@2", [])):
        assert main(["history", "--bevy", str(proj), "--workflow", ref, "--json"]) == 0
        assert sorted(e["path"][2:-4] for e in json.loads(capsys.readouterr().out)) == want, ref
    assert main(["history", "--bevy", str(proj), "--workflow", "sprite@1.x"]) == 2
    assert "is not a version or version prefix" in capsys.readouterr().err


def test_a_symlinked_records_folder_is_refused_and_nothing_outside_is_touched(tmp_path, proj):
    """Clearing what a killed deploy left behind looks for temp files in assets/.dgx-pixels/:
    when that folder is a symlink leading out, nothing there is removed (nor a lock made)."""
    f = tmp_path / "k.png"
    _png(f, 8)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".manifest.json.abc123.tmp").write_text("not ours")
    (proj / "assets" / ".dgx-pixels").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        deploy_file(f, proj, "sprites/k.png")
    assert sorted(p.name for p in outside.iterdir()) == [".manifest.json.abc123.tmp"]
    assert not (proj / "assets" / "sprites" / "k.png").exists()


def test_replace_does_not_read_a_meta_symlinked_outside(tmp_path, proj):
    """Whether a .meta may be replaced is decided on the file inside the project: one that is a
    symlink leading out is refused, not hashed (its sha256 compared with the record) or reported on."""
    f, g = tmp_path / "k.png", tmp_path / "g.png"
    _png(f, 8)
    _png(g, 9)
    deploy_file(f, proj, "sprites/k.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("private")
    meta = proj / "assets" / "sprites" / "k.png.meta"
    meta.unlink()
    meta.symlink_to(outside / "private.txt")
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        deploy_file(g, proj, "sprites/k.png")
    assert (outside / "private.txt").read_text() == "private"


def test_a_nul_byte_in_the_asset_path_is_a_refusal_not_a_crash(tmp_path, proj):
    f = tmp_path / "k.png"
    _png(f, 8)
    with pytest.raises(PathEscapeError, match="NUL"):
        deploy_file(f, proj, "sprites/k\x00.png")


def test_an_assets_folder_below_a_symlink_leading_out_is_refused_before_anything_is_read_or_swept(tmp_path, proj):
    """``assets_dir="assets/link"`` with the link leading out of the project: the deploy read
    the manifest there, swept a killed export's temp files there and wrote the asset there.
    Refused now, naming the link; nothing outside is touched."""
    f = tmp_path / "k.png"
    _png(f, 8)
    outside = tmp_path / "outside"
    (outside / ".dgx-pixels").mkdir(parents=True)
    (outside / ".dgx-pixels" / ".manifest.json.abc123.tmp").write_text("not ours")
    (proj / "assets" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match=r"refusing the assets folder 'assets/link': .*link is a symlink "
                                              r"leading outside"):
        deploy_file(f, proj, "sprites/k.png", assets_dir="assets/link")
    assert [p.relative_to(outside).as_posix() for p in sorted(outside.rglob("*"))] == [
        ".dgx-pixels", ".dgx-pixels/.manifest.json.abc123.tmp"]
    assert sorted(p.name for p in (proj / "assets").iterdir()) == ["link"]


def test_json_nested_past_reading_is_invalid_json_not_a_traceback(tmp_path, proj, capsys):
    """JSON nested thousands deep made json raise RecursionError: a traceback (exit 1) from
    --provenance of deploy and export, from a PNG whose embedded ComfyUI prompt is that deep,
    and from a manifest that deep. Now: --provenance is invalid JSON (exit 2, naming the
    option), the embedded prompt is ignored as unreadable like any broken one, the manifest is
    an unreadable manifest (exit 6, naming it)."""
    f = tmp_path / "k.png"
    _png(f, 8)
    deep = "[" * 30000
    for cmd in (["deploy", str(f), "--bevy", str(proj), "--asset-path", "a/k.png"],
                ["export", str(f), "--bevy", str(proj), "--path", "a/k.png"]):
        assert main([*cmd, "--provenance", deep]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --provenance is not valid JSON: arrays or objects are nested too deeply"), err
        assert "Traceback" not in err
        # nested less, but past what the copies made of it later survive
        assert main([*cmd, "--provenance", '{"a": ' + "[" * 150 + "]" * 150 + "}"]) == 2
        assert "nested more than 100 levels deep" in capsys.readouterr().err
    assert not (proj / "assets" / "a").exists()
    g = tmp_path / "cf_deep.png"
    _png(g, 9, text={"prompt": "[" * 100000})
    assert main(["deploy", str(g), "--bevy", str(proj), "--asset-path", "cf/x.png"]) == 0
    capsys.readouterr()
    prov = _manifest(proj)[0]["provenance"]
    assert prov["source"]["sha256"] == hashlib.sha256(g.read_bytes()).hexdigest() and "embedded_prompt" not in prov
    manifest = proj / "assets" / ".dgx-pixels" / "manifest.json"
    manifest.write_text('{"assets": ' + "[" * 100000)
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "a/k.png"]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"error: the asset manifest {manifest} is unreadable: arrays or objects are nested too "
                          "deeply"), err


def test_nan_and_infinity_never_reach_the_manifest(tmp_path, proj, capsys):
    """Python reads and writes NaN and Infinity, JSON has neither: a manifest holding them is
    refused by the game's tools (Rust's serde_json, JavaScript). --provenance with them is
    invalid JSON now (exit 2); an embedded prompt with a NaN seed is ignored; a provenance
    record with one from the library is an ExportError; and the manifest is written strictly."""
    f = tmp_path / "k.png"
    _png(f, 8)
    for cmd in (["deploy", str(f), "--bevy", str(proj), "--asset-path", "a/k.png"],
                ["export", str(f), "--bevy", str(proj), "--path", "a/k.png"]):
        for bad, word in (('{"a": NaN}', "NaN"), ('{"b": Infinity}', "Infinity"), ('{"c": [-Infinity]}', "-Infinity")):
            assert main([*cmd, "--provenance", bad]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: --provenance is not valid JSON: {word} is not a number JSON allows"), err
            assert "hint: write a number, or null, in its place" in err
    assert not (proj / "assets" / "a").exists()
    g = tmp_path / "nan.png"
    _png(g, 9, text={"prompt": '{"3": {"class_type": "KSampler", "inputs": {"seed": NaN}}}'})
    assert main(["deploy", str(g), "--bevy", str(proj), "--asset-path", "a/nan.png"]) == 0
    with pytest.raises(ExportError, match="holds NaN or Infinity"):
        deploy_file(f, proj, "a/k.png", provenance={"x": float("nan")})
    assert not (proj / "assets" / "a" / "k.png").exists()
    text = (proj / "assets" / ".dgx-pixels" / "manifest.json").read_text()
    assert "NaN" not in text and json.loads(text, parse_constant=lambda c: pytest.fail(c))


def test_a_manifest_with_nan_from_an_older_version_is_not_written_again_with_it(tmp_path, proj, capsys):
    f = tmp_path / "k.png"
    _png(f, 8)
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "a/k.png"]) == 0
    manifest = proj / "assets" / ".dgx-pixels" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"provenance": {', '"provenance": {"old": NaN, ', 1))
    before = manifest.read_text()
    assert main(["deploy", str(f), "--bevy", str(proj), "--asset-path", "a/k2.png"]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"error: the asset manifest {manifest} holds NaN or Infinity in an older entry"), err
    assert "replace those values by null" in err
    assert manifest.read_text() == before and not (proj / "assets" / "a" / "k2.png").exists()


def test_deploy_of_a_device_or_pipe_says_it_is_not_a_regular_file(tmp_path, proj, capsys):
    """`deploy /dev/zero` said "file not found" of a file that is there."""
    fifo = tmp_path / "pipe.png"
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(fifo)
    for given in (str(fifo), "/dev/zero"):
        if not os.path.exists(given):
            continue
        assert main(["deploy", given, "--bevy", str(proj), "--asset-path", "z.png"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {given} is not a regular file (a device, pipe or socket)"), err
    assert not (proj / "assets" / "z.png").exists()


def test_keep_with_only_a_sidecar_there_is_refused_not_said_kept(tmp_path, proj, capsys):
    """`deploy --overwrite keep` with only the user's own sprites/orphan.png.meta there (no PNG)
    said "kept existing" and exited 0: the game has no such image to keep."""
    src = tmp_path / "src.png"
    _png(src, 1)
    meta = proj / "assets" / "sprites" / "orphan.png.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text("(my own meta)")
    rc = main(["deploy", str(src), "--bevy", str(proj), "--asset-path", "sprites/orphan.png", "--overwrite", "keep"])
    err = capsys.readouterr().err
    assert rc == 6, err
    assert f"error: {meta} is in the way, but sprites/orphan.png itself does not exist: keep would leave the game " \
           "without the image" in err
    assert meta.read_text() == "(my own meta)" and not (proj / "assets" / "sprites" / "orphan.png").exists()
    # with the PNG there too, keep keeps both, as before
    _png(proj / "assets" / "sprites" / "orphan.png", 2)
    assert main(["deploy", str(src), "--bevy", str(proj), "--asset-path", "sprites/orphan.png",
                 "--overwrite", "keep"]) == 0
    assert "(kept existing)" in capsys.readouterr().out
