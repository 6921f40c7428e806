"""Path confinement: nothing is written outside the configured root."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from comfy_nodes.pixel.bevy_export import export_sheet
from comfy_nodes.pixel.errors import PathEscapeError
from comfy_nodes.pixel.safepath import ENV_ROOTS, confine, load_root_config, resolve_project
from comfy_nodes.pixel.sheet import build_sheet
from support.symlinks import swap_for_link


def listing(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return sorted(out)


def test_plain_paths_are_confined(tmp_path):
    p = confine(tmp_path, "sprites/knight.png")
    assert p == tmp_path.resolve() / "sprites" / "knight.png"
    assert not p.parent.exists()  # confine creates nothing


@pytest.mark.parametrize(
    "bad, why",
    [
        ("../x.png", "'..'"),
        ("sprites/../../x.png", "'..'"),
        ("/etc/x.png", "absolute"),
        ("C:/x.png", "absolute"),
        ("~/x.png", "absolute"),
        ("sprites\\..\\x.png", "backslash"),
        ("\\\\server\\share\\x.png", "backslash"),
        ("sprites/x\x00.png", "NUL"),
        ("sprites//x.png", "empty path component"),
        ("./x.png", "'.'"),
        ("", "empty"),
        ("sprites/x.png.", "ends with a space or dot"),
    ],
)
def test_escapes_are_refused_naming_path_and_root(tmp_path, bad, why):
    with pytest.raises(PathEscapeError) as info:
        confine(tmp_path, bad)
    msg = str(info.value)
    assert why in msg and str(tmp_path) in msg
    assert repr(bad)[1:-1][:5] in msg or bad == ""


def test_symlinked_folder_leading_outside_is_refused(tmp_path):
    root = tmp_path / "assets"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "sprites").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        confine(root, "sprites/knight.png")
    # a symlink that stays inside is fine
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert confine(root, "alias/x.png") == (root / "real" / "x.png").resolve()


def test_symlinked_file_leading_outside_is_refused(tmp_path):
    root = tmp_path / "assets"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "knight.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(PathEscapeError):
        confine(root, "knight.png")


@pytest.mark.parametrize("bad", ["../x.png", "/etc/x.png", "out/x.png", "sprites/../../x.png"])
def test_export_writes_nothing_on_escape(tmp_path, bad):
    project = tmp_path / "game"
    (project / "assets").mkdir(parents=True)
    (project / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "assets" / "out").symlink_to(outside, target_is_directory=True)
    before = listing(tmp_path)
    sheet = build_sheet([np.full((4, 4, 4), 200, np.uint8)] * 2)
    with pytest.raises(PathEscapeError) as info:
        export_sheet(project, bad, sheet, assets_ron=True)
    assert str(project / "assets") in str(info.value)
    assert listing(tmp_path) == before
    assert not (tmp_path / "x.png").exists() and not (outside / "x.png").exists()


def test_assets_ron_target_is_confined_too(tmp_path):
    project = tmp_path / "game"
    (project / "assets").mkdir(parents=True)
    before = listing(tmp_path)
    sheet = build_sheet([np.full((4, 4, 4), 200, np.uint8)] * 2)
    with pytest.raises(PathEscapeError):
        export_sheet(project, "a.png", sheet, assets_ron="../evil.assets.ron", bevy_version="0.15")
    assert listing(tmp_path) == before


def test_root_config_from_env_and_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = tmp_path / "dgx-pixels.json"
    cfg.write_text(json.dumps({"bevy_roots": [str(b)]}))
    c = load_root_config(env={ENV_ROOTS: f"{a}{os.pathsep}{a}"}, config_files=[cfg, tmp_path / "missing.json"])
    assert c.roots == (a, b) and c.configured
    assert ENV_ROOTS in c.sources and str(cfg) in c.sources
    with pytest.raises(PathEscapeError, match="not an absolute path"):
        load_root_config(env={ENV_ROOTS: "relative/dir"})
    cfg.write_text("{not json")
    with pytest.raises(PathEscapeError, match="cannot read"):
        load_root_config(env={}, config_files=[cfg])


def test_resolve_project_with_and_without_configuration(tmp_path):
    games = tmp_path / "games"
    (games / "knight_game").mkdir(parents=True)
    out = tmp_path / "output" / "bevy"
    c = load_root_config(env={ENV_ROOTS: str(games)}, default_root=out)
    assert resolve_project("knight_game", c) == (games / "knight_game").resolve()
    assert resolve_project(str(games / "knight_game"), c) == (games / "knight_game").resolve()
    assert resolve_project("games", c) == games.resolve()
    for bad in ("/etc", str(tmp_path), "../games", "a/b"):
        with pytest.raises(PathEscapeError):
            resolve_project(bad, c)
    # an allowed folder reached through a symlink from outside is judged by its real path
    (tmp_path / "link").symlink_to(tmp_path / "output", target_is_directory=True)
    with pytest.raises(PathEscapeError):
        resolve_project(str(tmp_path / "link"), c)

    none = load_root_config(env={}, default_root=out)
    assert not none.configured
    # A plain name maps under the default folder whether or not that folder exists yet, and
    # resolving it creates nothing.
    assert resolve_project("my_game", none) == out.resolve() / "my_game"
    assert not out.exists()
    out.mkdir(parents=True)
    assert resolve_project("my_game", none) == out.resolve() / "my_game"
    assert list(out.iterdir()) == []
    (out / "escape").symlink_to(games, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        resolve_project("escape", none)
    for bad in (str(games / "knight_game"), "../x", "a/b", ""):
        with pytest.raises(PathEscapeError):
            resolve_project(bad, none)


def test_a_project_whose_assets_folder_links_out_of_the_roots_is_refused(tmp_path):
    """The project is inside the roots, its assets/ is a symlink to a folder outside them:
    every file went there. A link that stays inside the roots is fine."""
    games, outside = tmp_path / "games", tmp_path / "outside"
    (games / "linked").mkdir(parents=True)
    outside.mkdir()
    (games / "linked" / "assets").symlink_to(outside, target_is_directory=True)
    c = load_root_config(env={ENV_ROOTS: str(games)}, default_root=tmp_path / "out")
    with pytest.raises(PathEscapeError, match=r"its assets/ folder is a symlink leading outside the allowed roots"):
        resolve_project("linked", c)
    (games / "shared_assets").mkdir()
    (games / "ok").mkdir()
    (games / "ok" / "assets").symlink_to(games / "shared_assets", target_is_directory=True)
    assert resolve_project("ok", c) == (games / "ok").resolve()
    none = load_root_config(env={}, default_root=tmp_path / "out")
    (tmp_path / "out" / "game").mkdir(parents=True)
    (tmp_path / "out" / "game" / "assets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        resolve_project("game", none)


def test_manifest_folder_symlinked_outside_is_refused(tmp_path):
    project = tmp_path / "game"
    (project / "assets").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "assets" / ".dgx-pixels").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        export_sheet(project, "k.png", build_sheet([np.full((4, 4, 4), 9, np.uint8)]), bevy_version="0.15")
    assert list(outside.iterdir()) == []
    assert not (project / "assets" / "k.png").exists()


def test_a_project_outside_the_roots_gets_the_hint_of_where_the_roots_come_from(tmp_path):
    from comfy_nodes.pixel.safepath import RootConfig, resolve_project

    root = tmp_path / "games"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(PathEscapeError) as exc:
        resolve_project(str(outside), RootConfig((root,), None, ("--bevy-root",)))
    assert "--bevy-root" in exc.value.hint and "DGX_PIXELS_BEVY_ROOTS" not in exc.value.hint
    with pytest.raises(PathEscapeError) as exc:
        resolve_project(str(outside), RootConfig((root,), None, ("DGX_PIXELS_BEVY_ROOTS",)))
    assert "DGX_PIXELS_BEVY_ROOTS" in exc.value.hint


# --- DGX-Pixels' own records in assets/.dgx-pixels/ --------------------------------------------


def _game_with_outside(tmp_path):
    project = tmp_path / "game"
    (project / "assets" / ".dgx-pixels").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    return project, outside


def test_a_manifest_symlinked_outside_is_not_read(tmp_path):
    """The manifest is read (list_assets, history, every deploy) only inside the assets folder:
    through a symlink its content, a damaged entry quoted in the error, or even whether the
    file exists would tell what lies outside."""
    from comfy_nodes.pixel.asset_manifest import read_manifest

    project, outside = _game_with_outside(tmp_path)
    (outside / "secret.json").write_text(json.dumps({"assets": [{"path": "SECRET"}]}))
    link = project / "assets" / ".dgx-pixels" / "manifest.json"
    for target in (outside / "secret.json", outside / "missing.json"):
        if os.path.lexists(link):
            link.unlink()
        link.symlink_to(target)
        with pytest.raises(PathEscapeError, match="symlink leading outside") as exc:
            read_manifest(project)
        assert "SECRET" not in str(exc.value)
    link.unlink()
    (project / "assets" / ".dgx-pixels").rmdir()
    (project / "assets" / ".dgx-pixels").symlink_to(outside, target_is_directory=True)
    (outside / "manifest.json").write_text(json.dumps({"assets": [{"path": "SECRET"}]}))
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        read_manifest(project)


def test_the_lock_never_creates_a_file_outside(tmp_path, monkeypatch):
    from comfy_nodes.pixel import asset_manifest, safepath

    project, outside = _game_with_outside(tmp_path)
    lock = project / "assets" / ".dgx-pixels" / "manifest.lock"
    lock.symlink_to(outside / "made-by-the-lock")
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        with asset_manifest.project_lock(project):
            pass
    assert list(outside.iterdir()) == []
    # a symlink put there between the check and the open is not followed either
    lock.unlink()
    opened = safepath.open_folder

    def then_a_link(root, folder, **kw):
        found = opened(root, folder, **kw)
        lock.symlink_to(outside / "made-by-the-lock")
        return found

    monkeypatch.setattr(safepath, "open_folder", then_a_link)
    with pytest.raises(PathEscapeError, match="symlink"):
        with asset_manifest.project_lock(project):
            pass
    assert list(outside.iterdir()) == []


def test_a_manifest_written_by_record_asset_stays_inside(tmp_path):
    from comfy_nodes.pixel.asset_manifest import record_asset

    project, outside = _game_with_outside(tmp_path)
    (project / "assets" / ".dgx-pixels" / "manifest.json").symlink_to(outside / "manifest.json")
    with pytest.raises(PathEscapeError):
        record_asset(project, {"path": "k.png"})
    assert list(outside.iterdir()) == []


def test_the_watchers_state_is_not_written_through_a_symlinked_records_folder(tmp_path):
    from orchestrator.watch import Watcher

    project, outside = _game_with_outside(tmp_path)
    (project / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    drop = tmp_path / "drop"
    drop.mkdir()
    (project / "assets" / ".dgx-pixels").rmdir()
    (project / "assets" / ".dgx-pixels").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        Watcher(drop, project)
    # swapped in after the watcher started: its next save refuses
    (project / "assets" / ".dgx-pixels").unlink()
    w = Watcher(drop, project)
    (project / "assets" / ".dgx-pixels").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError):
        w._save_state()
    assert list(outside.iterdir()) == []


def test_a_nul_byte_in_a_project_is_refused_not_a_crash(tmp_path):
    from comfy_nodes.pixel.safepath import RootConfig

    (tmp_path / "game").mkdir()
    for text in ("game\x00", str(tmp_path / "game") + "\x00"):
        with pytest.raises(PathEscapeError, match="NUL"):
            resolve_project(text, RootConfig((tmp_path,), None, ("--bevy-root",)))


# --- a folder swapped for a symlink between the check and the write -------------------------
#
# The moment between ``confine`` and the write cannot be hit reliably from outside, so these
# tests swap the folder at a fixed point: right before calling the writer, or from a hook the
# writer calls after its check (a monkeypatched function it uses in between).


@pytest.mark.parametrize("before", ["folder", "absent", "nested"])
def test_write_confined_does_not_follow_a_folder_swapped_for_a_symlink_after_the_check(tmp_path, before):
    from comfy_nodes.pixel.safepath import write_confined

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    rel = "a/sub2/g.txt" if before == "nested" else "sub2/g.txt"
    if before != "absent":
        (root / rel).parent.mkdir(parents=True)
    p = confine(root, rel)
    swap_for_link(p.parent, outside)
    with pytest.raises(PathEscapeError, match=r"sub2 is a symlink") as exc:
        write_confined(root, p, b"x")
    assert rel in str(exc.value)
    assert list(outside.iterdir()) == []
    assert not [f for f in listing(root) if f.endswith(".tmp")]


def test_write_confined_refuses_a_symlink_put_at_a_folder_it_was_about_to_create(tmp_path, monkeypatch):
    """The folder is created and then opened without following a link: one put there in
    between is refused, not followed."""
    from comfy_nodes.pixel import safepath

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    real_mkdir = os.mkdir

    def mkdir_then_link(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)
        swap_for_link(root / "new", outside)

    monkeypatch.setattr(safepath.os, "mkdir", mkdir_then_link)
    with pytest.raises(PathEscapeError, match="symlink"):
        safepath.write_confined(root, "new/g.txt", b"x")
    assert list(outside.iterdir()) == []


def test_write_confined_writes_nested_new_folders_replaces_files_and_keeps_modes(tmp_path):
    from comfy_nodes.pixel.safepath import write_confined

    root = tmp_path / "root"
    old = os.umask(0o022)
    try:
        p = write_confined(root, "a/b/c/k.json", b"one")
        assert p == root.resolve() / "a" / "b" / "c" / "k.json" and p.read_bytes() == b"one"
        assert oct(p.stat().st_mode & 0o777) == oct(0o644)
        p.chmod(0o640)
        assert write_confined(root, p, b"two") == p  # an absolute path as confine gives it
        assert p.read_bytes() == b"two" and oct(p.stat().st_mode & 0o777) == oct(0o640)
        # a symlink inside the root that stays inside is resolved by confine and written through
        (root / "alias").symlink_to(root / "a", target_is_directory=True)
        write_confined(root, "alias/b/c/k.json", b"three")
        assert p.read_bytes() == b"three" and (root / "alias").is_symlink()
    finally:
        os.umask(old)
    assert sorted(os.path.relpath(f, root) for f in listing(root)) == ["a", "a/b", "a/b/c", "a/b/c/k.json", "alias"]


def test_write_confined_leaves_nothing_behind_on_failure_and_names_the_file(tmp_path, monkeypatch):
    from comfy_nodes.pixel import safepath

    root = tmp_path / "root"
    safepath.write_confined(root, "k.txt", b"old")
    (root / "f").write_text("a file where a folder is needed")
    with pytest.raises(NotADirectoryError) as exc:
        safepath.write_confined(root, "f/x.txt", b"x")
    assert exc.value.filename == str(root.resolve() / "f")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safepath.os, "replace", boom)
    with pytest.raises(OSError, match="No space left") as exc:
        safepath.write_confined(root, "k.txt", b"new")
    assert exc.value.filename == str(root.resolve() / "k.txt")
    assert (root / "k.txt").read_bytes() == b"old"
    assert sorted(p.name for p in root.iterdir()) == ["f", "k.txt"]


def test_write_confined_without_dir_fd_falls_back_to_checked_paths(tmp_path, monkeypatch):
    """Where the system cannot open files relative to a folder (Windows), folders are created
    and then re-checked by their real path, as before."""
    from comfy_nodes.pixel import safepath

    monkeypatch.setattr(safepath, "DIR_FD_WRITES", False)
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    p = safepath.write_confined(root, "a/b/k.txt", b"one")
    assert p.read_bytes() == b"one"
    safepath.write_confined(root, "a/b/k.txt", b"two")
    assert p.read_bytes() == b"two" and sorted(x.name for x in p.parent.iterdir()) == ["k.txt"]
    p = confine(root, "sub2/g.txt")
    swap_for_link(p.parent, outside)
    with pytest.raises(PathEscapeError):
        safepath.write_confined(root, p, b"x")
    assert list(outside.iterdir()) == []


def test_remove_confined_does_not_follow_a_folder_swapped_for_a_symlink(tmp_path):
    from comfy_nodes.pixel.safepath import remove_confined

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "k.tmp").write_text("ours")
    (outside / "k.tmp").write_text("not ours")
    p = confine(root, "sub/k.tmp")
    remove_confined(root, p)
    assert not p.exists()
    (root / "sub" / "k.tmp").write_text("ours")
    swap_for_link(p.parent, outside)
    with pytest.raises(PathEscapeError):
        remove_confined(root, p)
    assert (outside / "k.tmp").read_text() == "not ours"


def test_record_asset_does_not_write_through_a_records_folder_swapped_after_the_check(tmp_path, monkeypatch):
    from comfy_nodes.pixel import asset_manifest

    project, outside = _game_with_outside(tmp_path)
    real = asset_manifest.bookkeeping_path

    def checked_then_swapped(project_, name, assets_dir="assets", *, action="write"):
        path = real(project_, name, assets_dir, action=action)
        if name == asset_manifest.MANIFEST_NAME and action == "write":
            swap_for_link(project / "assets" / ".dgx-pixels", outside)
        return path

    monkeypatch.setattr(asset_manifest, "bookkeeping_path", checked_then_swapped)
    with pytest.raises(PathEscapeError, match=r"\.dgx-pixels is a symlink"):
        asset_manifest.record_asset(project, {"path": "k.png"})
    assert list(outside.iterdir()) == []


def test_the_watchers_state_is_not_written_through_a_records_folder_swapped_after_the_check(tmp_path, monkeypatch):
    from orchestrator.watch import Watcher

    project, outside = _game_with_outside(tmp_path)
    (project / "Cargo.toml").write_text('[dependencies]\nbevy = "0.15"\n')
    drop = tmp_path / "drop"
    drop.mkdir()
    w = Watcher(drop, project)
    w._save_state()
    state = w.state_path
    assert state.is_file()
    real = w._confined_state_path

    def checked_then_swapped():
        path = real()
        swap_for_link(project / "assets" / ".dgx-pixels", outside)
        return path

    monkeypatch.setattr(w, "_confined_state_path", checked_then_swapped)
    with pytest.raises(PathEscapeError, match="symlink"):
        w._save_state()
    assert list(outside.iterdir()) == []


def test_an_assets_folder_is_confined_below_the_projects_top_folder(tmp_path):
    """``confine_assets_dir``: the text is checked like an asset path; the project's own top
    folder may be a link (the game's layout), a link below it leading out of it is refused,
    one that stays inside it is fine, and nothing is created."""
    from comfy_nodes.pixel.safepath import confine_assets_dir

    project, outside = tmp_path / "game", tmp_path / "outside"
    (project / "assets" / "real").mkdir(parents=True)
    outside.mkdir()
    (project / "assets" / "out").symlink_to(outside, target_is_directory=True)
    (project / "assets" / "alias").symlink_to(project / "assets" / "real", target_is_directory=True)
    assert confine_assets_dir(project, "assets") == project / "assets"
    assert confine_assets_dir(project, "assets/alias/new") == project / "assets" / "alias" / "new"
    assert confine_assets_dir(project, "fresh/folder") == project / "fresh" / "folder"
    for bad in ("assets/out", "assets/out/deeper", "assets/alias/../out"):
        with pytest.raises(PathEscapeError) as exc:
            confine_assets_dir(project, bad)
        assert ("symlink leading outside" in exc.value.message) != (".." in bad), exc.value.message
    (project / "linked_top").symlink_to(tmp_path / "shared", target_is_directory=True)
    (tmp_path / "shared").mkdir()
    assert confine_assets_dir(project, "linked_top") == project / "linked_top"
    assert listing(outside) == [] and not (project / "fresh").exists()


def test_a_colon_is_refused_as_a_colon_not_as_an_absolute_path(tmp_path):
    """``a:b.png`` was refused as "absolute paths are not allowed", which it is not: it is the
    ':' (a drive on Windows, or a file's hidden stream) that no file name may hold there."""
    for bad, part in (("a:b.png", "a:b.png"), ("sprites/x.png:y", "x.png:y")):
        with pytest.raises(PathEscapeError) as exc:
            confine(tmp_path, bad)
        assert f"component {part!r} contains ':', which Windows does not allow in file names" in exc.value.message
        assert "absolute" not in exc.value.message
    for absolute in ("C:/x.png", "C:"):
        with pytest.raises(PathEscapeError, match="absolute paths are not allowed"):
            confine(tmp_path, absolute)
    with pytest.raises(PathEscapeError, match=r"component 'a\\x01' contains a control character"):
        confine(tmp_path, "a\x01/x.png")
