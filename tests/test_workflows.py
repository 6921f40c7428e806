"""The versioned workflow registry: addressing, parameters, content hashes and the lock."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.errors import ParameterError, WorkflowError
from orchestrator.workflows import (
    Param,
    apply_params,
    check_lock,
    content_hash,
    default_root,
    load_registry,
    read_lock,
    update_lock,
)

DATA = Path(__file__).parent / "data" / "workflows"


@pytest.fixture
def reg():
    return load_registry(DATA)


@pytest.fixture
def root(tmp_path):
    dest = tmp_path / "workflows"
    shutil.copytree(DATA, dest)
    return dest


@pytest.fixture
def draft_root(root):
    """``root`` without its lock: versions being drafted, free to edit (a locked one that
    changed is refused, see test_an_edited_release_cannot_be_run_under_its_version)."""
    (root / "workflows.lock").unlink()
    return root


# ------------------------------------------------------------------------------ addressing


def test_versions_sorted_and_listed(reg):
    assert reg.versions("txt2img") == ["1.0.0", "1.2.0", "2.0.0"]
    assert [w.ref for w in reg.list()] == ["txt2img@2.0.0"]
    assert [w.ref for w in reg.all()] == ["txt2img@1.0.0", "txt2img@1.2.0", "txt2img@2.0.0"]


@pytest.mark.parametrize(
    "ref, version",
    [("txt2img", "2.0.0"), ("txt2img@1", "1.2.0"), ("txt2img@1.0", "1.0.0"), ("txt2img@1.2.0", "1.2.0"), ("txt2img@2", "2.0.0")],
)
def test_ref_resolution(reg, ref, version):
    wf = reg.get(ref)
    assert wf.version == version
    # the versions really are different files
    steps = {"1.0.0": 20, "1.2.0": 12, "2.0.0": 30}[version]
    assert wf.api_prompt["5"]["inputs"]["steps"] == steps


def test_numeric_version_order(root):
    for v in ("1.9.0", "1.10.0"):
        dest = root / "txt2img" / v
        shutil.copytree(root / "txt2img" / "1.0.0", dest)
        toml = dest / "workflow.toml"
        toml.write_text(toml.read_text().replace('version = "1.0.0"', f'version = "{v}"'))
    reg = load_registry(root)
    assert reg.get("txt2img@1").version == "1.10.0"
    assert reg.versions("txt2img")[-2:] == ["1.10.0", "2.0.0"]


def test_unknown_version_lists_available(reg):
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@3")
    assert "no version 3" in exc.value.message
    assert "1.0.0, 1.2.0, 2.0.0" in exc.value.hint
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@1.1.0")
    assert "1.0.0, 1.2.0, 2.0.0" in exc.value.hint


def test_unknown_name_lists_workflows(reg):
    with pytest.raises(WorkflowError) as exc:
        reg.get("nope@1.0.0")
    assert "unknown workflow 'nope'" in exc.value.message
    assert "txt2img" in exc.value.hint


def test_bad_version_syntax(reg):
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@v1")
    assert "not a version" in exc.value.message


def test_workflow_fields(reg):
    wf = reg.get("txt2img@1.0.0")
    assert wf.name == "txt2img" and wf.version == "1.0.0"
    assert wf.description.startswith("Text to image")
    assert [(m.folder, m.name) for m in wf.models] == [("checkpoints", "tiny-test.safetensors")]
    assert [(o.node, o.kind) for o in wf.outputs] == [("7", "images")]
    assert "KSampler" in wf.required_nodes and "SaveImage" in wf.required_nodes
    assert wf.ui is None
    assert wf.path == DATA / "txt2img" / "1.0.0"
    assert wf.content_hash.startswith("sha256:") and len(wf.content_hash) == 71


# ------------------------------------------------------------------------------ parameters


def test_apply_params_coerces_strings_and_sets_every_target(reg):
    wf = reg.get("txt2img@1.0.0")
    before = json.dumps(wf.api_prompt, sort_keys=True)
    prompt = apply_params(wf, {"seed": "42", "size": "256", "cfg": "4.5", "sampler": "dpmpp_2m", "prompt": "a slime"})
    assert prompt["5"]["inputs"]["seed"] == 42
    assert prompt["4"]["inputs"]["width"] == 256 and prompt["4"]["inputs"]["height"] == 256
    assert prompt["5"]["inputs"]["cfg"] == 4.5
    assert prompt["5"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert prompt["2"]["inputs"]["text"] == "a slime"
    # the registry's copy is untouched
    assert json.dumps(wf.api_prompt, sort_keys=True) == before
    assert wf.build_prompt({"seed": 7})["5"]["inputs"]["seed"] == 7


def test_defaults_apply(reg):
    wf = reg.get("txt2img@1.0.0")
    prompt = wf.build_prompt()
    assert prompt["5"]["inputs"]["seed"] == 0
    assert prompt["4"]["inputs"]["width"] == 512


def test_unknown_parameter_lists_known(reg):
    with pytest.raises(ParameterError) as exc:
        reg.get("txt2img").build_prompt({"sede": 1})
    assert "'sede'" in exc.value.message
    assert exc.value.hint == "known parameters: cfg, prompt, sampler, seed, size"


def test_wrong_type_names_parameter_and_type(reg):
    with pytest.raises(ParameterError) as exc:
        reg.get("txt2img").build_prompt({"size": "big"})
    assert "'size'" in exc.value.message and "integer" in exc.value.message and "int[64..2048]" in exc.value.message


def test_out_of_range(reg):
    with pytest.raises(ParameterError) as exc:
        reg.get("txt2img").build_prompt({"size": 4096})
    assert "out of range" in exc.value.message
    assert "64" in exc.value.hint and "2048" in exc.value.hint


def test_enum_lists_allowed_values(reg):
    with pytest.raises(ParameterError) as exc:
        reg.get("txt2img").build_prompt({"sampler": "ddim"})
    assert exc.value.hint == "allowed values: euler, euler_ancestral, dpmpp_2m"


@pytest.mark.parametrize("raw, expected", [("true", True), ("No", False), ("1", True), ("off", False), (True, True)])
def test_bool_coercion(raw, expected):
    assert Param("flag", "bool", ["1.x"]).coerce(raw) is expected


def test_bool_rejects_other_text():
    with pytest.raises(ParameterError) as exc:
        Param("flag", "bool", ["1.x"]).coerce("maybe")
    assert "true or false" in exc.value.message


@pytest.mark.parametrize("raw, expected", [("3", 3), ("-3", -3), ("+3", 3), (" 7 ", 7), ("1e3", 1000), ("3.0", 3),
                                           ("18446744073709551615", 18446744073709551615), (5.0, 5)])
def test_int_coercion(raw, expected):
    assert Param("n", "int", ["1.x"]).coerce(raw) == expected


@pytest.mark.parametrize("raw, expected", [("4.5", 4.5), ("-.5", -0.5), ("2", 2.0), ("1e-3", 0.001)])
def test_float_coercion(raw, expected):
    assert Param("x", "float", ["1.x"]).coerce(raw) == expected


# int() and float() take all of these; as --set text they are typos, not numbers
@pytest.mark.parametrize("raw", ["1_000", "\uff11\uff12", "\u0663", "\u00b2", "1__0", "\u30007", "nan", "inf", "0x10", ""])
@pytest.mark.parametrize("kind", ["int", "float"])
def test_numbers_only_in_plain_ascii(raw, kind):
    with pytest.raises(ParameterError) as exc:
        Param("n", kind, ["1.x"]).coerce(raw)
    assert exc.value.message.startswith("parameter 'n': expected ") and repr(raw) in exc.value.message
    assert "ASCII digits with an optional sign" in exc.value.hint


def test_int_rejects_fraction_and_bool():
    p = Param("n", "int", ["1.x"])
    for bad in ("2.5", 2.5, True):
        with pytest.raises(ParameterError):
            p.coerce(bad)


def test_required_parameter_without_value(draft_root):
    root = draft_root
    toml = root / "txt2img" / "2.0.0" / "workflow.toml"
    toml.write_text(toml.read_text() + '\n[params.negative]\ntype = "str"\nrequired = true\ntargets = ["3.text"]\n')
    wf = load_registry(root).get("txt2img@2")
    with pytest.raises(ParameterError) as exc:
        wf.build_prompt({})
    assert "'negative'" in exc.value.message
    assert wf.build_prompt({"negative": "ugly"})["3"]["inputs"]["text"] == "ugly"


def test_target_must_exist(root):
    toml = root / "txt2img" / "2.0.0" / "workflow.toml"
    toml.write_text(toml.read_text().replace('targets = ["5.cfg"]', 'targets = ["99.cfg"]'))
    reg = load_registry(root)  # the other versions stay usable
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@2.0.0")
    assert "params.cfg" in exc.value.message and "'99'" in exc.value.message


def test_folder_and_declared_version_must_agree(root):
    toml = root / "txt2img" / "2.0.0" / "workflow.toml"
    toml.write_text(toml.read_text().replace('version = "2.0.0"', 'version = "2.0.1"'))
    with pytest.raises(WorkflowError) as exc:
        load_registry(root).get("txt2img")
    assert "2.0.1" in exc.value.message and "txt2img/2.0.0" in exc.value.message


def test_json_spelling_of_the_layout(tmp_path):
    folder = tmp_path / "wf" / "inv" / "0.1.0"
    folder.mkdir(parents=True)
    (folder / "api.json").write_text(json.dumps({"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
                                                 "2": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}))
    (folder / "editor.json").write_text(json.dumps({"nodes": [], "links": []}))
    (folder / "workflow.json").write_text(json.dumps({
        "name": "inv", "version": "0.1.0", "description": "invert", "models": ["x.safetensors"], "outputs": ["1"],
        "params": {"image": {"type": "string", "description": "input file", "default": "a.png", "targets": [["2", "image"]]}},
    }))
    wf = load_registry(tmp_path / "wf").get("inv")
    assert wf.params["image"].type == "str" and wf.params["image"].help == "input file"
    assert wf.ui == {"nodes": [], "links": []}
    assert wf.models[0].name == "x.safetensors"
    assert wf.build_prompt({"image": "b.png"})["2"]["inputs"]["image"] == "b.png"


# ------------------------------------------------------------------------------ user folders


def test_env_var_adds_user_folder(monkeypatch, root):
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    reg = load_registry()
    assert "txt2img@1.2.0" in reg
    assert reg.roots[0] == default_root()


def test_same_version_with_other_content_is_refused(tmp_path, root):
    other = tmp_path / "other"
    shutil.copytree(root, other)
    (other / "workflows.lock").unlink()  # a user folder with no lock of its own
    api = other / "txt2img" / "1.0.0" / "workflow.api.json"
    api.write_text(api.read_text().replace('"steps": 20', '"steps": 21'))
    reg = load_registry([root, other])
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@1.0.0")
    assert "txt2img@1.0.0 exists twice" in exc.value.message
    assert exc.value.hint.startswith("give the user copy a new version number")
    assert reg.get("txt2img@1.2").version == "1.2.0"  # only the version concerned
    # identical copies are fine
    assert load_registry([root, DATA]).get("txt2img@1.0").version == "1.0.0"


# ------------------------------------------------------------------------------ hashing and lock


def test_hash_ignores_json_formatting_but_not_values(root):
    folder = root / "txt2img" / "1.0.0"
    h0 = content_hash(folder)
    api = folder / "workflow.api.json"
    api.write_text(json.dumps(json.loads(api.read_text()), indent=4, sort_keys=True))
    assert content_hash(folder) == h0
    api.write_text(api.read_text().replace('"steps": 20', '"steps": 25'))
    assert content_hash(folder) != h0


def test_test_data_matches_its_lock():
    assert check_lock(DATA) == []


def test_lock_adds_only_new_versions(root):
    lock_before = read_lock(root)
    new = root / "txt2img" / "2.1.0"
    shutil.copytree(root / "txt2img" / "2.0.0", new)
    toml = new / "workflow.toml"
    toml.write_text(toml.read_text().replace('version = "2.0.0"', 'version = "2.1.0"'))
    assert check_lock(root) == ["txt2img@2.1.0 is not in workflows.lock yet (run `dgx-pixels workflows lock`)"]
    res = update_lock(root)
    assert res.added == ["txt2img@2.1.0"]
    after = read_lock(root)
    assert {k: v for k, v in after.items() if k in lock_before} == lock_before
    assert after["txt2img@2.1.0"] == content_hash(new)
    assert check_lock(root) == []


def test_lock_refuses_changed_release(root):
    api = root / "txt2img" / "1.2.0" / "workflow.api.json"
    api.write_text(api.read_text().replace('"steps": 12', '"steps": 13'))
    lock_text = (root / "workflows.lock").read_text()
    with pytest.raises(WorkflowError) as exc:
        update_lock(root)
    assert "txt2img@1.2.0" in exc.value.message
    assert "new version" in exc.value.hint
    assert (root / "workflows.lock").read_text() == lock_text
    assert any("txt2img@1.2.0 changed after release" in p for p in check_lock(root))


def test_an_edited_release_cannot_be_run_under_its_version(root, monkeypatch, capsys):
    """A locked version edited in place ran as if unchanged: its outputs were recorded as
    txt2img@1.2.0 while they came from other content. Now the version is refused (by name,
    path and lock) and the hint names the way out; the other versions still run."""
    api = root / "txt2img" / "1.2.0" / "workflow.api.json"
    api.write_text(api.read_text().replace('"steps": 12', '"steps": 13'))
    reg = load_registry(root)
    with pytest.raises(WorkflowError) as exc:
        reg.get("txt2img@1.2.0")
    assert exc.value.message == (f"txt2img@1.2.0 changed after release: {root / 'txt2img' / '1.2.0'} "
                                 f"no longer matches its hash in {root / 'workflows.lock'}")
    assert "copy it to a new version folder, e.g. txt2img/2.0.1, and run `dgx-pixels workflows lock`" in exc.value.hint
    # `txt2img@1` resolves to the changed version: refused, not quietly 1.0.0
    with pytest.raises(WorkflowError):
        reg.get("txt2img@1")
    assert reg.get("txt2img").version == "2.0.0" and reg.get("txt2img@1.0").version == "1.0.0"
    # the lock commands still see it as a changed release, not as unloadable
    assert any(p.startswith("txt2img@1.2.0 changed after release (") for p in check_lock(root))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    assert main(["workflows", "list", "--all"]) == 0
    assert "BROKEN: txt2img@1.2.0 changed after release" in capsys.readouterr().out
    assert main(["workflows", "show", "txt2img@1.2.0"]) == 4
    assert "error: txt2img@1.2.0 changed after release" in capsys.readouterr().err
    # an unlocked version may be edited freely (work in progress)
    lock = json.loads((root / "workflows.lock").read_text())
    del lock["workflows"]["txt2img@1.2.0"]
    (root / "workflows.lock").write_text(json.dumps(lock))
    assert load_registry(root).get("txt2img@1.2.0").api_prompt["5"]["inputs"]["steps"] == 13


def test_lock_refuses_deleted_release(root):
    shutil.rmtree(root / "txt2img" / "1.0.0")
    with pytest.raises(WorkflowError) as exc:
        update_lock(root)
    assert "txt2img@1.0.0 (deleted)" in exc.value.message


def test_shipped_workflows_match_the_lock():
    """Every released version in workflows/ is in workflows.lock with its exact content."""
    problems = check_lock(default_root())
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------------------ CLI


def test_cli_list_show_lock(monkeypatch, root, capsys):
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    assert main(["workflows", "list"]) == 0
    out = capsys.readouterr().out
    assert "txt2img" in out and "2.0.0" in out and "Text to image" in out

    assert main(["workflows", "show", "txt2img@1"]) == 0
    out = capsys.readouterr().out
    assert "txt2img@1.2.0" in out
    assert "size" in out and "int[64..2048]" in out and "width and height in pixels" in out
    assert "checkpoints/tiny-test.safetensors" in out and "node 7 (images)" in out

    assert main(["workflows", "show", "txt2img@9"]) == 4
    err = capsys.readouterr().err
    assert "error: txt2img has no version 9" in err and "1.0.0, 1.2.0, 2.0.0" in err

    assert main(["workflows", "lock", "--root", str(root), "--check"]) == 0
    api = root / "txt2img" / "1.0.0" / "workflow.api.json"
    api.write_text(api.read_text().replace('"steps": 20', '"steps": 22'))
    assert main(["workflows", "lock", "--root", str(root)]) == 4
    err = capsys.readouterr().err
    assert "released workflow versions changed" in err
    # the new version it suggests follows the workflow's newest (2.0.0), not a fixed 1.0.1
    assert "put the change in a new version folder, e.g. txt2img/2.0.1" in err
    assert main(["workflows", "lock", "--root", str(root), "--check"]) == 4


def test_cli_set_refuses_underscored_and_full_width_digits(tmp_path, root):
    """`--set` through the real command line: only the plain ASCII spelling reaches validation."""
    env = {**os.environ, "DGX_PIXELS_WORKFLOWS": str(root)}

    def validate(value: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator", "workflows", "validate", "txt2img@1.0.0",
                               "--set", f"size={value}", "--object-info", str(DATA.parent / "object_info_subset.json")],
                              capture_output=True, text=True, encoding="utf-8", env=env, timeout=120)

    for bad in ("1_28", "\uff11\uff12\uff18"):
        proc = validate(bad)
        assert proc.returncode == 4, proc.stderr
        assert f"error: parameter 'size': expected an integer (int[64..2048]), got {bad!r}" in proc.stderr
        assert "hint: write size with ASCII digits with an optional sign" in proc.stderr
    proc = validate("128")
    assert "parameter 'size'" not in proc.stderr and "got" not in proc.stderr
    # past the parameters: the fixture's checkpoint is not in the saved /object_info
    assert proc.stdout.startswith("txt2img@1.0.0: 1 error(s)") and "tiny-test.safetensors" in proc.stdout


def test_newest_shipped_workflows_clean_strays_8_connected_and_save_their_outputs():
    """The newest version of every shipped workflow runs Stray Cleanup 8-connected, the core's
    default (in both formats), and every declared output is a SaveImage: the runner downloads
    outputs from ComfyUI's history, where Bevy Export (which writes into a project) leaves no file."""
    reg = load_registry(default_root())
    names = {wf.name for wf in reg.list()}
    assert {"sprite", "animation", "tileset", "pixelize", "cleanup"} <= names
    for name in sorted(names):
        wf = reg.get(name)
        strays = [n for n in wf.api_prompt.values() if n["class_type"] == "DGXPixelsStrayCleanup"]
        assert strays, f"{name}@{wf.version} has no Stray Cleanup"
        assert all(n["inputs"]["connectivity"] == "8" for n in strays), f"{name}@{wf.version}"
        ui = [n for n in (wf.ui or {}).get("nodes", []) if n.get("type") == "DGXPixelsStrayCleanup"]
        assert len(ui) == len(strays) and all("8" in n["widgets_values"] and "4" not in n["widgets_values"]
                                              for n in ui), f"{name}@{wf.version} editor file"
        for o in wf.outputs:
            assert wf.api_prompt[o.node]["class_type"] == "SaveImage", f"{name}@{wf.version} output {o.node}"


def test_workflows_list_with_none_found_is_an_error(tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main

    # as after a plain `pip install .`: the shipped folder is not where the package looks
    import orchestrator.workflows as wf

    monkeypatch.setattr(wf, "default_root", lambda: tmp_path)
    monkeypatch.delenv("DGX_PIXELS_WORKFLOWS", raising=False)
    assert main(["workflows", "list"]) == 4
    err = capsys.readouterr().err
    assert f"error: no workflows found in {tmp_path}" in err and "pip install -e ." in err


# ------------------------------------------------------------------------------ a broken workflow among good ones


def test_one_broken_workflow_leaves_the_others_usable(monkeypatch, root, capsys):
    """A user folder with one version whose JSON does not parse made every workflow command
    fail (list, show of any workflow, run), with a hint pointing at `workflows list`, the
    command that had just failed. Now list shows the usable ones and marks the broken version
    with its error (exit 0); asking for that version, or for its name while it is the newest,
    fails naming the file and the versions that work; any other workflow works."""
    bad = root / "txt2img" / "2.0.0" / "workflow.api.json"
    bad.write_text("{bad")
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(root))
    assert main(["workflows", "list"]) == 0
    out, err = capsys.readouterr()
    rows = {tuple(line.split()[:2]): line for line in out.splitlines()[1:]}
    assert ("txt2img", "1.2.0") in rows and ("sprite", max(load_registry(default_root()).versions("sprite"))) in rows
    assert rows[("txt2img", "2.0.0")].split(None, 2)[2].startswith(f"BROKEN: {bad}: not valid JSON")
    assert f"warning: txt2img@2.0.0 cannot be used: {bad}: not valid JSON" in err
    assert "workflows list" not in err
    assert main(["workflows", "list", "--all", "--json"]) == 0
    docs = {(d["name"], d["version"]): d for d in json.loads(capsys.readouterr().out)}
    assert docs[("txt2img", "2.0.0")]["error"].startswith(f"{bad}: not valid JSON")
    assert docs[("txt2img", "2.0.0")]["content_hash"] is None and docs[("txt2img", "1.0.0")]["error"] is None
    assert docs[("txt2img", "1.0.0")]["versions"] == ["1.0.0", "1.2.0"]
    # an unrelated workflow, and an older version of the broken one, work
    assert main(["workflows", "show", "sprite"]) == 0
    assert main(["workflows", "show", "txt2img@1.2"]) == 0
    capsys.readouterr()
    for ref in ("txt2img", "txt2img@2", "txt2img@2.0.0"):
        assert main(["workflows", "show", ref]) == 4, ref
        err = capsys.readouterr().err
        assert err.startswith(f"error: txt2img@2.0.0 cannot be used: {bad}: not valid JSON"), err
        hint = err.split("hint: ", 1)[1]
        assert "workflows list" not in hint and "fix the file" in hint and "e.g. txt2img@1.2.0" in hint, hint
    # what `run` and the MCP server do: get() of another workflow
    assert load_registry().get("sprite").name == "sprite"


def test_a_broken_version_is_named_by_lock_and_check(root):
    (root / "txt2img" / "2.0.0" / "workflow.api.json").write_text("[" * 100000)
    problems = check_lock(root)
    assert problems[0].startswith("txt2img@2.0.0 cannot be loaded: ") and "nested too deeply" in problems[0]
    assert not any("missing on disk" in p for p in problems)
    with pytest.raises(WorkflowError) as exc:
        update_lock(root)
    assert "cannot lock while workflow versions cannot be loaded: txt2img@2.0.0" in exc.value.message
    assert exc.value.hint == f"fix them, or move their folders out of {root}"


def test_json_nested_past_reading_in_a_workflow_folder_is_invalid_json(draft_root):
    """A workflow file nested past reading (json: RecursionError) or deep enough to break the
    copies made of it is "not valid JSON" naming the file; a deep file beside the workflow
    is hashed as it is, not a traceback."""
    root = draft_root
    api = root / "txt2img" / "2.0.0" / "workflow.api.json"
    keep = api.read_text()
    for text in ("[" * 100000, '{"1": {"class_type": "X", "inputs": {"a": ' + "[" * 300 + "]" * 300 + "}}}"):
        api.write_text(text)
        with pytest.raises(WorkflowError) as exc:
            load_registry(root).get("txt2img@2.0.0")
        assert exc.value.message.startswith(f"txt2img@2.0.0 cannot be used: {api}: not valid JSON: arrays or objects "
                                             "are nested")
    api.write_text(keep)
    (root / "txt2img" / "2.0.0" / "notes.json").write_text("[" * 100000)
    assert content_hash(root / "txt2img" / "2.0.0").startswith("sha256:")
    assert load_registry(root).get("txt2img@2.0.0").version == "2.0.0"


def test_lock_root_and_object_info_given_wrong_are_bad_usage_said_as_what_they_are(tmp_path, capsys):
    """`lock --root` of a missing folder hinted "check $DGX_PIXELS_WORKFLOWS" (not used there)
    and called a file "does not exist"; `validate --object-info nope.json` was a workflow error
    (exit 4) hinting at `workflows list`. All are bad usage now (exit 2), said as what they are."""
    f = tmp_path / "some.png"
    f.write_bytes(b"png")
    for given, what in ((str(tmp_path / "nonexist"), "does not exist"), (str(f), "is not a folder")):
        assert main(["workflows", "lock", "--root", given]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --root {given} {what}"), err
        assert "DGX_PIXELS_WORKFLOWS" not in err
        with pytest.raises(WorkflowError) as exc:
            load_registry(given)
        assert exc.value.message == f"workflow folder {given} {what}" and "DGX_PIXELS" not in exc.value.hint
    assert main(["workflows", "validate", "sprite", "--object-info", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --object-info {tmp_path / 'nope.json'}: no such file"), err
    assert "workflows list" not in err and "/object_info" in err.split("hint: ", 1)[1]
    f.write_text("{not json")
    assert main(["workflows", "validate", "sprite", "--object-info", str(f)]) == 2
    assert f"--object-info {f}: cannot read it as JSON" in capsys.readouterr().err


def test_a_workflow_file_nested_past_reading_is_refused_by_name(tmp_path):
    """`run FILE.json` with arrays nested 100,000 deep ended in a RecursionError traceback; now
    the file is named as no JSON workflow. `--set` values nested as deep stay text."""
    from orchestrator.commands.run import parse_set
    from orchestrator.run import load_prompt_file

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WorkflowError, match=r"deep\.json is not a JSON workflow: .*nested too deeply") as err:
        load_prompt_file(deep)
    assert "Export (API)" in err.value.hint
    text = "[" * 100_000 + "]" * 100_000
    assert parse_set([f"x={text}", "seed=7"]) == {"x": text, "seed": 7}


def test_validate_refuses_a_graph_without_an_output_node():
    """`workflows validate` said OK for a graph the server then refuses ("Prompt has no
    outputs"): an empty graph, or one whose Save/Preview node was left out."""
    import json
    from pathlib import Path

    from orchestrator.validate import validate_prompt

    info = json.loads((Path(__file__).parent / "data" / "object_info_subset.json").read_text())
    no_output = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}}
    for prompt in (no_output, {}):
        report = validate_prompt(prompt, info)
        assert not report.ok
        assert [str(i) for i in report.issues if i.kind == "no_output"] == [
            "the workflow has no output node (Save Image, Preview Image, Bevy Export...): the server refuses a "
            "prompt without one"]
    saved = {**no_output, "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}
    assert not [i for i in validate_prompt(saved, info).issues if i.kind == "no_output"]
