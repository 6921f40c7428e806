"""Bevy export: version detection, .meta per version against the reference files, Aseprite
JSON, bevy_asset_loader RON, Rust snippets, and the export transaction (atomic, confined,
overwrite policies, manifest under concurrency)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pyron = pytest.importorskip("pyron")

from comfy_nodes.pixel import asset_manifest  # noqa: E402
from comfy_nodes.pixel.bevy_export import (  # noqa: E402
    BevyVersion,
    atlas_json,
    detect_bevy_version,
    export_asset,
    export_sheet,
    merge_ron,
    parse_bevy_version,
    render_meta,
    ron_entries,
    rust_snippet,
)
from comfy_nodes.pixel.errors import ExportError, InvalidArgumentError, PathEscapeError  # noqa: E402
from comfy_nodes.pixel.sheet import build_sheet  # noqa: E402
from support.symlinks import swap_for_link  # noqa: E402

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "bevy"
ALL_VERSIONS = [f"0.{m}" for m in range(12, 20)]


# ------------------------------------------------------------------ a RON reader that keeps names
# pyron parses RON syntax but drops enum variant and struct names; the structure checks below need
# them, so this small reader returns ("struct", name, {field: value}), ("tuple", name, [values]),
# ("map", {key: value}), ("list", [...]), ("str", s), ("num", float), ("bool", b), ("ident", name).

_TOK = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|[(){}\[\]:,]', re.S)


def ron_tokens(text: str) -> list[str]:
    out, i = [], 0
    while i < len(text):
        m = _TOK.match(text, i)
        assert m, f"unexpected character {text[i]!r} at {i}"
        t = m.group(0)
        i = m.end()
        if not t.strip() or t.startswith("//") or t.startswith("/*"):
            continue
        out.append(t)
    return out


class RonReader:
    def __init__(self, text: str):
        self.t = ron_tokens(text)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want=None):
        tok = self.t[self.i]
        assert want is None or tok == want, f"expected {want!r}, got {tok!r} at token {self.i}"
        self.i += 1
        return tok

    def value(self):
        tok = self.peek()
        if tok.startswith('"'):
            return ("str", json.loads(self.take()))
        if re.match(r"[-+]?\d", tok):
            return ("num", float(self.take()))
        if tok in ("true", "false"):
            return ("bool", self.take() == "true")
        if tok == "[":
            self.take("[")
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return ("list", items)
        if tok == "{":
            self.take("{")
            items = {}
            while self.peek() != "}":
                k = self.value()
                self.take(":")
                items[k[1]] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            return ("map", items)
        name = None
        if re.match(r"[A-Za-z_]", tok):
            name = self.take()
            if self.peek() != "(":
                return ("ident", name)
        return self.group(name)

    def group(self, name):
        self.take("(")
        # a struct has `ident :` first
        if re.match(r"[A-Za-z_]", self.peek() or "") and self.t[self.i + 1] == ":":
            fields = {}
            while self.peek() != ")":
                k = self.take()
                self.take(":")
                fields[k] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return ("struct", name, fields)
        items = []
        while self.peek() != ")":
            items.append(self.value())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return ("tuple", name, items)


def read_ron(text: str):
    r = RonReader(text)
    v = r.value()
    assert r.peek() is None, f"trailing tokens: {r.t[r.i:]}"
    return v


OPTIONAL_NAMES = {None, "ImageSamplerDescriptor", "RenderAssetUsages"}


def without_extensions(text: str) -> str:
    """``text`` after its leading ``#![enable(...)]`` lines: the RON reader here knows none."""
    return re.sub(r"\A\s*(?:#!\[[^\]]*\]\s*)*", "", text)


def ron_map(text: str) -> dict:
    """The entries of a dynamic-assets file ``({ "key": Value(..), ... })``."""
    tree = read_ron(text)
    assert tree[0] == "tuple" and tree[1] is None and len(tree[2]) == 1 and tree[2][0][0] == "map"
    return tree[2][0][1]


def normalize(v):
    """Drop optional struct/newtype names (RON accepts ``Name(..)`` and ``(..)`` alike), unwrap
    one-element newtypes, and read bit-flag strings as sets, so equivalent spellings compare equal."""
    kind = v[0]
    if kind == "struct":
        # enum struct-variants (Load, Process) keep their name; plain struct names are optional
        name = None if v[1] in OPTIONAL_NAMES else v[1]
        return ("struct", name, {k: normalize(x) for k, x in v[2].items()})
    if kind == "tuple":
        items = [normalize(x) for x in v[2]]
        # keep enum variant names (Load, Descriptor, Some...), which are not optional
        if v[1] in OPTIONAL_NAMES and len(items) == 1:
            return items[0]
        if len(items) == 1 and items[0][0] == "struct" and v[1] in ("Descriptor",):
            return ("variant", v[1], items[0])
        return ("variant", v[1], items)
    if kind == "str" and "|" in v[1]:
        return ("flags", frozenset(s.strip() for s in v[1].split("|")))
    if kind == "map":
        return ("map", {k: normalize(x) for k, x in v[1].items()})
    if kind == "list":
        return ("list", [normalize(x) for x in v[1]])
    return v


def field_paths(v, prefix=""):
    """All field paths of a normalised tree (the 'field set')."""
    out = set()
    if v[0] == "struct":
        if v[1]:
            prefix = prefix + v[1] + "."
        for k, x in v[2].items():
            out.add(prefix + k)
            out |= field_paths(x, prefix + k + ".")
    elif v[0] == "variant":
        inner = v[2]
        if isinstance(inner, tuple):
            out |= field_paths(inner, prefix + v[1] + ".")
        else:
            for i, x in enumerate(inner):
                out |= field_paths(x, prefix + v[1] + f"[{i}].")
    elif v[0] == "map":
        for k, x in v[1].items():
            out.add(prefix + k)
            out |= field_paths(x, prefix + k + ".")
    return out


def ref_meta_for(version: str) -> list[Path]:
    minor = int(version.split(".")[1])
    files = []
    if minor == 12:
        files.append(REF / "derived" / "image-nearest.bevy-0.12.png.meta")
    elif minor in (13, 14):
        files.append(REF / "derived" / "image-nearest.bevy-0.13-0.14.png.meta")
        if minor == 14:
            files.append(REF / "meta" / "bevy-v0.14.0__bevy_pixel_dark_with_meta.png.meta")
    else:
        files.append(REF / "derived" / "image-nearest.bevy-0.15-0.19.png.meta")
        files.append(REF / "meta" / "bevy-v0.15.0-to-v0.19.1__bevy_pixel_dark_with_meta.png.meta")
    return files


needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="../shared/reference/bevy is absent")


# ------------------------------------------------------------------ versions


@pytest.mark.parametrize(
    "text, minor",
    [("0.14", 14), ("0.15.1", 15), ("^0.13", 13), ("=0.12.1", 12), (">=0.16, <0.17", 16), ("~0.19.0", 19)],
)
def test_parse_version(text, minor):
    assert parse_bevy_version(text).minor == minor


@pytest.mark.parametrize("text", ["0.11", "1.0", "latest", ""])
def test_unsupported_versions_are_refused(text):
    with pytest.raises(ExportError):
        parse_bevy_version(text)


@pytest.mark.parametrize(
    "cargo, minor",
    [
        ('[dependencies]\nbevy = "0.14"\n', 14),
        ('[dependencies]\nbevy = { version = "0.15.1", default-features = false, features = ["bevy_sprite"] }\n', 15),
        ('[dependencies.bevy]\nversion = "0.13.2"\n', 13),
        ('[dependencies]\nengine = { package = "bevy", version = "0.16" }\n', 16),
        ('[target.\'cfg(unix)\'.dependencies]\nbevy = "0.17"\n', 17),
        ('[dev-dependencies]\nbevy = "0.12"\n', 12),
    ],
)
def test_detect_from_cargo_toml(tmp_path, cargo, minor):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "game"\nversion = "0.1.0"\n' + cargo)
    v = detect_bevy_version(tmp_path)
    assert v is not None and v.minor == minor and "Cargo.toml" in v.source


def test_detect_workspace_dependency(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["game"]\n[workspace.dependencies]\nbevy = { version = "0.18.0" }\n')
    game = tmp_path / "game"
    game.mkdir()
    (game / "Cargo.toml").write_text('[package]\nname = "game"\n[dependencies]\nbevy = { workspace = true }\n')
    v = detect_bevy_version(game)
    assert v.minor == 18 and "workspace" in v.source


def test_detect_from_cargo_lock(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "game"\n[dependencies]\nbevy = { git = "https://example.invalid/bevy" }\n')
    (tmp_path / "Cargo.lock").write_text(
        '[[package]]\nname = "bevy_app"\nversion = "0.11.0"\n\n[[package]]\nname = "bevy"\nversion = "0.14.2"\nsource = "git"\n'
    )
    v = detect_bevy_version(tmp_path)
    assert v.minor == 14 and v.source.endswith("Cargo.lock")


@pytest.mark.parametrize("dep, lock, minor, source", [
    # a range or "*" is what the lock resolved it to (0.14 and 0.15 differ in the .meta's loader)
    ('bevy = ">=0.14, <0.16"', "0.15.3", 15, "Cargo.lock"),
    ('bevy = "*"', "0.14.2", 14, "Cargo.lock"),
    # with no lock yet, the newest version it allows, as Cargo will pick ("*" was refused, a range
    # read as its lower bound)
    ('bevy = "*"', None, 19, "no Cargo.lock yet"),
    ('bevy = ">=0.14, <0.16"', None, 15, "no Cargo.lock yet"),
    ('bevy = { git = "https://github.com/bevyengine/bevy", version = ">=0.13" }', None, 19, "no Cargo.lock yet"),
    # a requirement that pins a line decides, even over a stale lock
    ('bevy = "0.16"', "0.15.3", 16, "Cargo.toml"),
    ('bevy = { version = "~0.13.1", features = ["png"] }', "0.13.2", 13, "Cargo.toml"),
    # git without a lock: the tag names it
    ('bevy = { git = "https://github.com/bevyengine/bevy", tag = "v0.14.0" }', None, 14, "git tag v0.14.0"),
    ('bevy = { git = "https://github.com/bevyengine/bevy", branch = "release-0.16.1" }', None, 16, "git branch"),
    # a path dependency: the crate's own version
    ('bevy = { path = "../vendor/bevy" }', None, 13, "path dependency"),
])
def test_detect_loose_requirements(tmp_path, dep, lock, minor, source):
    game = tmp_path / "game"
    game.mkdir()
    (game / "Cargo.toml").write_text(f'[package]\nname = "game"\nversion = "0.1.0"\n[dependencies]\n{dep}\n')
    (tmp_path / "vendor" / "bevy").mkdir(parents=True)
    (tmp_path / "vendor" / "bevy" / "Cargo.toml").write_text('[package]\nname = "bevy"\nversion = "0.13.1"\n')
    if lock:
        (game / "Cargo.lock").write_text(f'[[package]]\nname = "bevy"\nversion = "{lock}"\n')
    v = detect_bevy_version(game)
    assert v is not None and (v.minor, source in v.source) == (minor, True), v


def test_a_rust_project_without_bevy_is_not_a_game(tmp_path, capsys):
    from orchestrator.cli import main

    tool = make_project(tmp_path, 'clap = "4"', name="tool")
    with pytest.raises(ExportError, match="is a Rust project without bevy: its Cargo.toml"):
        export_sheet(tool, "s.png", grid_sheet(1, 1, 4))
    assert not (tool / "assets").exists()
    assert export_sheet(tool, "s.png", grid_sheet(1, 1, 4), bevy_version="0.16").bevy.minor == 16
    # bevy from a path, with no lock yet: a game, written for the newest layout
    game = make_project(tmp_path, 'bevy = { path = "../bevy-src" }', name="game")
    assert export_sheet(game, "s.png", grid_sheet(1, 1, 4)).bevy.source.startswith("default")
    # doctor reads the project as export does
    assert main(["doctor", "--bevy", str(tool), "--server", "http://127.0.0.1:9"]) != 0
    assert "is a Rust project without bevy" in capsys.readouterr().out


def test_a_virtual_workspace_root_is_not_the_game(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["game", "tools/*"]\n')
    for member, dep in (("game", 'bevy = "0.14"'), ("tools/cli", 'clap = "4"')):
        (tmp_path / member).mkdir(parents=True)
        (tmp_path / member / "Cargo.toml").write_text(f'[package]\nname = "x"\n[dependencies]\n{dep}\n')
    with pytest.raises(ExportError, match=r"is a Cargo workspace, not a game: it has no \[package\] "
                                          r"\(its members using bevy: game\)") as exc:
        export_sheet(tmp_path, "s.png", grid_sheet(1, 1, 4))
    assert str(tmp_path / "game") in exc.value.hint and not (tmp_path / "assets").exists()
    assert export_sheet(tmp_path / "game", "s.png", grid_sheet(1, 1, 4)).bevy.minor == 14


def test_no_cargo_gives_none(tmp_path):
    assert detect_bevy_version(tmp_path) is None


# ------------------------------------------------------------------ .meta


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_meta_parses_and_has_the_right_loader_and_fields(version):
    text = render_meta(version)
    pyron.loads(text)  # a real RON parser accepts it
    tree = read_ron(text)
    assert tree[0] == "struct" and set(tree[2]) == {"meta_format_version", "asset"}
    assert tree[2]["meta_format_version"] == ("str", "1.0")
    load = tree[2]["asset"]
    assert load[:2] == ("struct", "Load")  # a struct-like enum variant
    body = load[2]
    minor = int(version.split(".")[1])
    loader = "bevy_image::image_loader::ImageLoader" if minor >= 15 else "bevy_render::texture::image_loader::ImageLoader"
    assert body["loader"] == ("str", loader)
    assert set(body) == {"loader", "settings"}
    settings = body["settings"][2]
    want = {"format", "is_srgb", "sampler"} | ({"asset_usage"} if minor >= 13 else set())
    assert set(settings) == want
    assert settings["format"] == ("ident", "FromExtension")
    sampler = settings["sampler"]
    assert sampler[1] == "Descriptor"
    desc = sampler[2][0][2]
    for key in ("mag_filter", "min_filter", "mipmap_filter"):
        assert desc[key] == ("ident", "Nearest")
    for key in ("address_mode_u", "address_mode_v", "address_mode_w"):
        assert desc[key] == ("ident", "ClampToEdge")
    # indentation: 4 spaces per level, no tabs
    assert "\t" not in text
    for line in text.splitlines():
        assert (len(line) - len(line.lstrip(" "))) % 4 == 0


@needs_ref
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_meta_matches_reference_files_structurally(version):
    ours = normalize(read_ron(render_meta(version)))
    for ref in ref_meta_for(version):
        theirs = normalize(read_ron(ref.read_text()))
        assert field_paths(ours) == field_paths(theirs), ref.name
        assert ours == theirs, ref.name


@needs_ref
def test_meta_is_byte_identical_to_bevys_own_examples():
    real14 = (REF / "meta" / "bevy-v0.14.0__bevy_pixel_dark_with_meta.png.meta").read_text()
    real15 = (REF / "meta" / "bevy-v0.15.0-to-v0.19.1__bevy_pixel_dark_with_meta.png.meta").read_text()
    assert render_meta("0.14") == real14
    for v in ("0.15", "0.16", "0.17", "0.18", "0.19"):
        assert render_meta(v) == real15


@needs_ref
def test_meta_for_012_and_013_is_byte_identical_to_the_templates():
    assert render_meta("0.12") == (REF / "derived" / "image-nearest.bevy-0.12.png.meta").read_text()
    assert render_meta("0.13") == (REF / "derived" / "image-nearest.bevy-0.13-0.14.png.meta").read_text()


@needs_ref
def test_meta_format_version_matches_every_real_meta():
    for f in (REF / "meta").glob("*.meta"):
        assert read_ron(f.read_text())[2]["meta_format_version"] == ("str", "1.0")


# ------------------------------------------------------------------ Aseprite JSON


def frames_with_margins(n=10, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 12 + i % 4, 9 + i % 3
        f = np.zeros((h, w, 4), np.uint8)
        y0, x0 = i % 3, (i + 1) % 2
        f[y0 : h - 1, x0 : w - 1, :3] = rng.integers(0, 256, (h - 1 - y0, w - 1 - x0, 3))
        f[y0 : h - 1, x0 : w - 1, 3] = 255
        out.append(f)
    out.append(np.zeros((5, 5, 4), np.uint8))  # an empty frame
    return out


@pytest.mark.parametrize("trim", ["each", "none"])
@pytest.mark.parametrize("anchor", ["bottom-center", "center", "top-left"])
def test_atlas_rects_match_the_pixels(trim, anchor):
    frames = frames_with_margins()
    sheet = build_sheet(frames, padding=2, offset=1, trim=trim, anchor=anchor, animations="a:0-4@8, b:5-9@12:pingpong")
    doc = atlas_json(sheet, "knight.png")
    assert len(doc["frames"]) == len(frames)
    for i, (src, fr) in enumerate(zip(frames, doc["frames"])):
        r = fr["frame"]
        crop = sheet.image[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
        # rebuilding the source canvas (the cell) from frame + spriteSourceSize gives the cell
        canvas = np.zeros((fr["sourceSize"]["h"], fr["sourceSize"]["w"], 4), np.uint8)
        sss = fr["spriteSourceSize"]
        canvas[sss["y"] : sss["y"] + sss["h"], sss["x"] : sss["x"] + sss["w"]] = crop
        np.testing.assert_array_equal(canvas, sheet.cell(i))
        # and the cropped pixels are exactly the input frame's visible pixels
        if (src[..., 3] > 0).any():
            if trim == "each":
                ys, xs = np.nonzero(src[..., 3])
                want = src[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            else:
                want = src
            np.testing.assert_array_equal(crop, want)
            assert fr["trimmed"] == ((r["w"], r["h"]) != (sheet.cell_w, sheet.cell_h))
        else:
            assert not crop[..., 3].any()
    assert doc["meta"]["size"] == {"w": sheet.width, "h": sheet.height}
    assert doc["meta"]["frameTags"] == [
        {"name": "a", "from": 0, "to": 4, "direction": "forward"},
        {"name": "b", "from": 5, "to": 9, "direction": "pingpong"},
    ]
    assert [f["duration"] for f in doc["frames"]][:6] == [125] * 5 + [83]


@needs_ref
def test_atlas_frame_names_are_unique_when_an_animation_is_named_like_the_sheet():
    sheet = build_sheet([np.full((4, 4, 4), 255, np.uint8)] * 8, trim="none", animations="walk:4-7@12")
    names = [f["filename"] for f in atlas_json(sheet, "walk.png")["frames"]]
    assert len(set(names)) == 8 and names[4:] == ["walk_0", "walk_1", "walk_2", "walk_3"]
    assert names[:4] == ["walk_0_2", "walk_1_2", "walk_2_2", "walk_3_2"]
    assert [f["filename"] for f in atlas_json(sheet, "hero.png")["frames"]][:4] == ["hero_0", "hero_1", "hero_2", "hero_3"]


def test_atlas_json_has_the_keys_of_a_real_aseprite_export():
    witch = json.loads((REF / "aseprite" / "witch.sprite.json").read_text())
    sheet = build_sheet(frames_with_margins(4), animations="idle:0-1@10, run:2-3@12:reverse")
    ours = json.loads(json.dumps(atlas_json(sheet, "knight.png")))
    assert isinstance(ours["frames"], list)  # the array form
    assert set(ours["frames"][0]) == set(witch["frames"][0])
    for key in ("frame", "spriteSourceSize", "sourceSize"):
        assert set(ours["frames"][0][key]) == set(witch["frames"][0][key])
    assert set(witch["meta"]) <= set(ours["meta"])
    assert {"layers", "slices"} <= set(ours["meta"])
    assert set(ours["meta"]["frameTags"][0]) == set(witch["meta"]["frameTags"][0])
    assert isinstance(ours["meta"]["scale"], str) and ours["meta"]["image"] == "knight.png"
    allowed = {"forward", "reverse", "pingpong"}
    assert {t["direction"] for t in witch["meta"]["frameTags"]} <= allowed
    assert {t["direction"] for t in ours["meta"]["frameTags"]} <= allowed


# ------------------------------------------------------------------ bevy_asset_loader RON


def grid_sheet(cols=8, rows=4, cell=32, padding=0, offset=0):
    frames = [np.full((cell, cell, 4), 255, np.uint8) for _ in range(cols * rows)]
    return build_sheet(frames, columns=cols, padding=padding, offset=offset, trim="none")


@needs_ref
def test_ron_matches_the_derived_template_exactly():
    sheet = grid_sheet()
    entries = ron_entries(sheet, "sprites/knight.png", parse_bevy_version("0.15"))
    ours = merge_ron(None, entries)
    assert ours == (REF / "derived" / "knight.bevy_asset_loader-0.21-0.26.assets.ron").read_text()


@pytest.mark.parametrize("version", ["0.13", "0.14", "0.15", "0.18", "0.19"])
def test_ron_layout_fields_with_padding_and_offset(version):
    sheet = grid_sheet(cols=3, rows=2, cell=16, padding=2, offset=1)
    text = merge_ron(None, ron_entries(sheet, "sprites/knight.png", parse_bevy_version(version)))
    parsed = pyron.loads(text)[0]
    assert parsed["knight.layout"] == {
        "tile_size_x": 16, "tile_size_y": 16, "columns": 3, "rows": 2,
        "padding_x": 2, "padding_y": 2, "offset_x": 1, "offset_y": 1,
    }
    tree = ron_map(text)
    assert tree["knight.image"][1] == "Image" and tree["knight.image"][2]["sampler"] == ("ident", "Nearest")
    assert tree["knight.layout"][1] == "TextureAtlasLayout"
    allowed = {"tile_size_x", "tile_size_y", "columns", "rows", "padding_x", "padding_y", "offset_x", "offset_y"}
    assert set(tree["knight.layout"][2]) == allowed
    # the layout numbers describe the written image
    w = 1 + 3 * 16 + 2 * 2
    h = 1 + 2 * 16 + 1 * 2
    assert (sheet.width, sheet.height) == (w, h)


def test_bevy_012_padding_in_assets_ron_loads_with_both_loader_versions(tmp_path):
    """Bevy 0.12's TextureAtlas entry has Option<f32> padding and offset: bevy_asset_loader 0.18
    reads them as plain options (it refused the bare 4.0 written), 0.19 as bare numbers. RON's
    implicit_some extension makes one file that both load: enabled at the top of the file."""
    project = make_project(tmp_path, 'bevy = "0.12"')
    export_sheet(project, "s/k.png", grid_sheet(2, 1, 4, padding=2, offset=1), assets_ron="game.assets.ron")
    text = (project / "assets" / "game.assets.ron").read_text()
    assert text.startswith("#![enable(implicit_some)]\n")
    tree = ron_map(without_extensions(text))
    assert tree["k.atlas"][2]["padding_x"] == ("num", 2.0)
    # exported again (merged): the extension is there once
    export_sheet(project, "s/j.png", grid_sheet(2, 1, 4, padding=2), assets_ron="game.assets.ron")
    assert (project / "assets" / "game.assets.ron").read_text().count("implicit_some") == 1
    # without padding or offset nothing needs it; Bevy 0.13+ has no such options
    p13 = make_project(tmp_path, 'bevy = "0.13"', "g13")
    export_sheet(p13, "s/k.png", grid_sheet(2, 1, 4, padding=2), assets_ron="game.assets.ron")
    assert "implicit_some" not in (p13 / "assets" / "game.assets.ron").read_text()


def test_ron_for_bevy_012_uses_the_old_texture_atlas_variant():
    sheet = grid_sheet(cols=2, rows=1, cell=8)
    text = merge_ron(None, ron_entries(sheet, "a.png", parse_bevy_version("0.12")))
    pyron.loads(text)
    tree = ron_map(text)
    assert tree["a.atlas"][1] == "TextureAtlas"
    assert tree["a.atlas"][2]["tile_size_x"] == ("num", 8.0)


@pytest.mark.parametrize("existing", [
    '// my assets\n({\n    "a": File (path: "a.png") // trailing comment\n})\n',
    '({\n    "x": File (path: "x.png"),\n    /* block } */\n})\n',
    '({\n    "x": File (path: "x.png") /* c */ , // after the comma\n    "y": File (path: "y.png")\n    // the end\n})\n',
    '({"x": File (path: "x.png")})',
    '#![enable(implicit_some)]\n({\n    "x": File (path: "x.png"),\n})\n',  # a RON extension first
])
def test_merge_into_a_hand_written_file_with_comments_stays_valid_ron(existing):
    # the RON reader here knows no extensions: it reads the file after its #![...] line, which
    # the merge must keep as it was
    attr = re.match(r"#!\[[^\]]*\]\s*", existing)
    head = attr.group(0) if attr else ""

    def body(text: str) -> str:
        assert text.startswith(head)
        return text[len(head):]

    entries = ron_entries(grid_sheet(2, 1, 4), "s/k.png", parse_bevy_version("0.16"))
    merged = merge_ron(existing, entries)
    pyron.loads(body(merged))
    tree = ron_map(body(merged))
    assert tree["k.layout"][2]["columns"] == ("num", 2.0)
    assert set(tree) == set(ron_map(body(existing))) | {"k.image", "k.layout"}
    for comment in re.findall(r"//[^\n]*|/\*.*?\*/", existing):
        assert comment in merged
    # merged again with the layout dropped: still valid, the layout gone, the rest kept
    again = merge_ron(merged, {"k.image": entries["k.image"]}, drop=["k.layout"])
    pyron.loads(body(again))
    assert set(ron_map(body(again))) == set(ron_map(body(existing))) | {"k.image"}


def test_a_shared_assets_ron_never_gives_one_key_to_two_assets(tmp_path):
    project = make_project(tmp_path, 'bevy = "0.16"')
    export_sheet(project, "s/knight.png", grid_sheet(3, 2, 4), assets_ron="game.assets.ron")
    ron = project / "assets" / "game.assets.ron"
    before = ron.read_text()
    with pytest.raises(ExportError, match=r"game.assets.ron already has an entry 'knight.image' for s/knight.png, "
                                          r"another asset than ui/knight.png"):
        export_asset(project, "ui/knight.png", np.zeros((4, 4, 4), np.uint8), assets_ron="game.assets.ron")
    assert ron.read_text() == before and not (project / "assets" / "ui" / "knight.png").exists()
    # the same asset again, now a single image: its entry is replaced and its layout removed
    export_asset(project, "s/knight.png", np.zeros((4, 4, 4), np.uint8), assets_ron="game.assets.ron",
                 overwrite="replace")
    assert set(ron_map(ron.read_text())) == {"knight.image"}


@pytest.mark.parametrize("name, message", [
    ('q/my"hero.png', "which Windows does not allow in file names"), ("q/a|b.png", "which Windows does not allow"),
    ("q/what?.png", "which Windows does not allow"), ("q/<x>.png", "which Windows does not allow"),
    ("q/*.png", "which Windows does not allow"), ("q/con.png", "is a device name on Windows"),
    ("nul/x.png", "is a device name on Windows"), ("q/COM1.tar.png", "is a device name on Windows"),
    ("q/#1.png", "Bevy reads '#' in an asset path as the start of a label"), ("q/.png", "has no file name before .png"),
    (".DGX-PIXELS/manifest.png", "holds DGX-Pixels' own records"), ("q/" + "x" * 300 + ".png", "File name too long"),
])
def test_a_name_windows_or_bevy_cannot_take_is_refused(tmp_path, name, message):
    project = make_project(tmp_path)
    with pytest.raises((PathEscapeError, ExportError), match=re.escape(message)):
        export_sheet(project, name, grid_sheet(2, 1, 4), assets_ron=True)
    assert not [p for p in (project / "assets").rglob("*") if p.is_file() and ".dgx-pixels" not in p.parts]


@needs_ref
def test_merge_keeps_other_entries_and_replaces_ours():
    original = (REF / "bevy_asset_loader" / "full_dynamic_collection.assets.ron").read_text()
    sheet = grid_sheet(cols=2, rows=2, cell=8)
    v = parse_bevy_version("0.18")
    merged = merge_ron(original, ron_entries(sheet, "sprites/knight.png", v))
    before = ron_map(original)
    after = ron_map(merged)
    for k, val in before.items():
        assert after[k] == val
    assert after["knight.layout"][2]["columns"] == ("num", 2.0)
    pyron.loads(merged)
    # exporting again replaces, never duplicates
    sheet2 = grid_sheet(cols=4, rows=1, cell=8)
    again = merge_ron(merged, ron_entries(sheet2, "sprites/knight.png", v))
    assert again.count('"knight.layout"') == 1
    assert ron_map(again)["knight.layout"][2]["columns"] == ("num", 4.0)
    with pytest.raises(ValueError):
        merge_ron("(not a map", ron_entries(sheet, "x.png", v))


# ------------------------------------------------------------------ Rust snippets


@pytest.mark.parametrize(
    "version, must, must_not",
    [
        ("0.12", ["TextureAtlas::from_grid(texture, Vec2::new(32.0, 32.0), 8, 4, None, None)",
                  "TextureAtlasSprite::new(index)", "ResMut<Assets<TextureAtlas>>", "Camera2dBundle"],
         ["TextureAtlasLayout", "UVec2", "from_atlas_image"]),
        ("0.13", ["TextureAtlasLayout::from_grid(Vec2::new(32.0, 32.0), 8, 4, None, None)",
                  "SpriteSheetBundle", "atlas: TextureAtlas { layout, index }"],
         ["UVec2", "TextureAtlasSprite", "from_atlas_image"]),
        ("0.14", ["TextureAtlasLayout::from_grid(UVec2::new(32, 32), 8, 4, None, None)", "SpriteBundle {",
                  "TextureAtlas { layout, index },"],
         ["SpriteSheetBundle", "TextureAtlasSprite", "from_atlas_image"]),
        ("0.15", ["TextureAtlasLayout::from_grid(UVec2::new(32, 32), 8, 4, None, None)",
                  "Sprite::from_atlas_image(texture, TextureAtlas { layout, index })", "sprite.texture_atlas"],
         ["SpriteBundle", "SpriteSheetBundle", "Vec2::new(32.0"]),
        ("0.19", ["Sprite::from_atlas_image"], ["SpriteBundle"]),
    ],
)
def test_snippet_uses_the_api_of_each_version(version, must, must_not):
    sheet = grid_sheet()
    sheet.animations = []
    from comfy_nodes.pixel.sheet import parse_animations

    sheet.animations = parse_animations("idle:0-3@8, walk:4-11@12, jump:12-15@10:pingpong", 32)
    code = rust_snippet(sheet, "sprites/knight.png", parse_bevy_version(version))
    for s in must:
        assert s in code, s
    for s in must_not:
        assert s not in code, s
    assert 'asset_server.load("sprites/knight.png")' in code
    assert "DefaultPlugins.set(ImagePlugin::default_nearest())" in code
    assert 'KnightClip { name: "jump", first: 12, last: 15, fps: 10.0, play: KnightPlay::PingPong }' in code
    assert code.count("{") == code.count("}") and code.count("(") == code.count(")")


@pytest.mark.parametrize("version", ["0.12", "0.13", "0.14", "0.16"])
def test_snippet_keeps_each_frames_own_duration(version):
    """An idle whose first frame holds 1 s (a GIF's timing: 1000, 100, 100, 100 ms) plays it so:
    one frame rate from the median made it a flat 10 fps, a 0.4 s loop instead of 1.3 s.
    Frames of one duration keep the clips' fps."""
    sheet = grid_sheet(cols=4, rows=1)
    from comfy_nodes.pixel.sheet import parse_animations

    sheet.animations = parse_animations("idle:0-3@10", 4)
    sheet.frame_ms = [1000, 100, 100, 250]
    code = rust_snippet(sheet, "sprites/knight.png", parse_bevy_version(version))
    assert "pub const KNIGHT_FRAME_SECS: &[f32] = &[1.0, 0.1, 0.1, 0.25];" in code
    assert "KNIGHT_FRAME_SECS[animation.index()]" in code  # the first frame's own time
    step = code[code.index("animation.step += 1;"):]
    assert step.index("set_duration(std::time::Duration::from_secs_f32(KNIGHT_FRAME_SECS[index]))") < step.index("}")
    assert code.count("{") == code.count("}") and code.count("(") == code.count(")")
    sheet.frame_ms = [100] * 4
    plain = rust_snippet(sheet, "sprites/knight.png", parse_bevy_version(version))
    assert "FRAME_SECS" not in plain and "1.0 / KNIGHT_CLIPS[clip].fps" in plain


def test_snippet_padding_offset_and_identifiers():
    sheet = grid_sheet(cols=2, rows=2, cell=8, padding=1, offset=3)
    code = rust_snippet(sheet, "ui/2-knight v2.png", parse_bevy_version("0.16"))
    assert "from_grid(UVec2::new(8, 8), 2, 2, Some(UVec2::new(1, 1)), Some(UVec2::new(3, 3)))" in code
    assert "pub struct Sprite2KnightV2SpritePlugin" in code and "fn spawn_sprite_2_knight_v2(" in code
    code13 = rust_snippet(sheet, "k.png", parse_bevy_version("0.13"))
    assert "Some(Vec2::new(1.0, 1.0)), Some(Vec2::new(3.0, 3.0))" in code13


def test_single_sprite_snippet_says_where_it_goes_and_how_to_run_it():
    """The still-image snippet used to be a bare ``pub fn spawn_hero``: nothing said where to
    paste it, that it is a startup system, or that the app needs a camera. Pinned whole for the
    default version (this text compiled in a game crate, pasted below main() and as its own
    module, with no warnings); 0.14 names its camera bundle."""
    code = rust_snippet(None, "sprites/hero.png", parse_bevy_version("0.19"))
    assert code == (
        '// DGX-Pixels export for Bevy 0.19: "sprites/hero.png"\n'
        "// The .png.meta next to the image selects nearest (pixel-crisp) filtering. If your app\n"
        "// turns .meta reading off (AssetMetaCheck::Never), add instead: "
        "DefaultPlugins.set(ImagePlugin::default_nearest())\n"
        "//\n"
        "// Where it goes: below main() in src/main.rs (leave out the `use` line main.rs already has),\n"
        "// or in a file of its own, src/hero.rs, with `mod hero;` and `use hero::*;` in main.rs.\n"
        "// Use: app.add_systems(Startup, spawn_hero); it spawns the sprite once at startup. The app\n"
        "// needs a 2D camera, e.g. in a startup system:\n"
        "//     commands.spawn(Camera2d);\n"
        "use bevy::prelude::*;\n"
        "\n"
        "pub fn spawn_hero(mut commands: Commands, asset_server: Res<AssetServer>) {\n"
        "    commands.spawn((\n"
        '        Sprite::from_image(asset_server.load("sprites/hero.png")),\n'
        "        Transform::from_scale(Vec3::splat(4.0)),\n"
        "    ));\n"
        "}\n"
    )
    old = rust_snippet(None, "sprites/hero.png", parse_bevy_version("0.14"))
    assert "//     commands.spawn(Camera2dBundle::default());\n" in old
    assert "app.add_systems(Startup, spawn_hero)" in old and "SpriteBundle {" in old


@pytest.mark.parametrize("stem, module", [("knight", "knight"), ("main", "main_sprite"), ("type", "type_sprite"),
                                          ("bevy", "bevy_sprite"), ("2-knight v2", "sprite_2_knight_v2")])
def test_every_snippet_names_a_module_file_rust_accepts(stem, module):
    """``mod main;`` in main.rs loads itself, ``mod type;`` is not Rust and ``mod bevy;`` makes the
    snippet's own ``use bevy::prelude::*`` ambiguous: those stems get a ``_sprite`` module."""
    sheet = grid_sheet(cols=2, rows=1)
    from comfy_nodes.pixel.sheet import parse_animations

    sheet.animations = parse_animations("idle:0-1@4", 2)
    line = f"// or in a file of its own, src/{module}.rs, with `mod {module};` and `use {module}::*;` in main.rs."
    for code in (rust_snippet(None, f"s/{stem}.png", parse_bevy_version("0.19")),
                 rust_snippet(sheet, f"s/{stem}.png", parse_bevy_version("0.16")),
                 rust_snippet(sheet, f"s/{stem}.png", parse_bevy_version("0.19"), tile_array=True)):
        assert line in code.splitlines()


def test_sheet_snippet_as_its_own_module_has_no_dead_code_warnings():
    """In a module file (``mod knight;``) rustc warns about play modes no clip uses and, when the
    frames carry their own durations, the unread ``fps``: the snippet allows both, nothing more."""
    sheet = grid_sheet(cols=4, rows=1)
    from comfy_nodes.pixel.sheet import parse_animations

    sheet.animations = parse_animations("idle:0-3@10", 4)
    code = rust_snippet(sheet, "sprites/knight.png", parse_bevy_version("0.19"))
    assert ("#[derive(Clone, Copy, PartialEq, Eq, Debug)]\n"
            "#[allow(dead_code)] // the clips below may use only some of the modes\n"
            "pub enum KnightPlay {\n") in code
    assert code.count("#[allow(dead_code)]") == 1
    sheet.frame_ms = [1000, 100, 100, 250]
    timed = rust_snippet(sheet, "sprites/knight.png", parse_bevy_version("0.19"))
    assert ("#[allow(dead_code)] // fps: the frames' own durations below time this sheet\n"
            "pub struct KnightClip {\n") in timed
    assert timed.count("#[allow(dead_code)]") == 2


def test_tile_array_snippet_shows_the_call():
    from comfy_nodes.pixel.tileset import build_tileset

    tiles = [np.full((16, 16, 4), 30 * i, np.uint8) for i in range(4)]
    code = rust_snippet(build_tileset(tiles, columns=2).as_sheet(), "tiles/grass.png", parse_bevy_version("0.19"),
                        tile_array=True)
    assert ("// Use, in a system that takes asset_server: Res<AssetServer>:\n"
            "//     let tileset = grass_tileset(&asset_server);\n"
            "use bevy::prelude::*;\n\n"
            "pub fn grass_tileset(asset_server: &AssetServer) -> Handle<Image> {\n"
            '    asset_server.load("tiles/grass.png")\n'
            "}\n") in code


# ------------------------------------------------------------------ the export transaction


def make_project(tmp_path, cargo='bevy = "0.15"', name="game"):
    p = tmp_path / name
    p.mkdir()
    (p / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n\n[dependencies]\n{cargo}\n')
    return p


@pytest.mark.parametrize("version, cargo", [("0.12", 'bevy = "0.12.1"'), ("0.14", 'bevy = { version = "0.14" }'),
                                            ("0.15", 'bevy = "0.15"'), ("0.19", 'bevy = "0.19.0"')])
def test_export_sheet_writes_everything(tmp_path, version, cargo):
    project = make_project(tmp_path, cargo)
    frames = frames_with_margins()
    sheet = build_sheet(frames, padding=1, animations="idle:0-3@8, walk:4-9@12:pingpong")
    res = export_sheet(project, "sprites/knight.png", sheet, assets_ron=True,
                       provenance={"workflow": "txt2sprite@1", "seed": 7})
    assert res.bevy.short == version
    assets = project / "assets"
    assert [f.kind for f in res.files] == ["meta", "png", "atlas", "ron", "manifest"]
    png = assets / "sprites" / "knight.png"
    got = np.array(Image.open(png))
    assert Image.open(png).mode == "RGBA"
    np.testing.assert_array_equal(got, sheet.image)
    assert (assets / "sprites" / "knight.png.meta").read_text() == render_meta(version)
    doc = json.loads((assets / "sprites" / "knight.json").read_text())
    assert doc["meta"]["image"] == "knight.png"
    ron = (assets / "sprites" / "knight.assets.ron").read_text()
    pyron.loads(without_extensions(ron))
    # no temp files left behind
    assert not [p for p in (assets / "sprites").iterdir() if p.name.endswith(".tmp")]
    m = asset_manifest.read_manifest(project)
    entry = m["assets"][0]
    assert entry["path"] == "sprites/knight.png" and entry["provenance"]["seed"] == 7
    import hashlib

    assert entry["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert entry["size"] == png.stat().st_size and entry["bevy_version"] == version
    assert {f["kind"] for f in entry["files"]} == {"meta", "png", "atlas", "ron"}
    assert res.snippet and "sprites/knight.png" in res.snippet


def test_meta_is_renamed_before_png(tmp_path, monkeypatch):
    project = make_project(tmp_path)
    order = []
    real_replace = os.replace

    def spy(src, dst, **kw):  # kw: the folder descriptors the names are relative to
        order.append(Path(dst).name)
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", spy)
    export_sheet(project, "a/b.png", grid_sheet(2, 1, 4))
    assert order.index("b.png.meta") < order.index("b.png")


def test_overwrite_policies(tmp_path):
    project = make_project(tmp_path)
    s1 = grid_sheet(2, 1, 4)
    s2 = build_sheet([np.full((4, 4, 4), 9, np.uint8)] * 3, trim="none")
    export_sheet(project, "k.png", s1)
    png = project / "assets" / "k.png"
    first = png.read_bytes()
    with pytest.raises(ExportError, match="already exists"):
        export_sheet(project, "k.png", s2)
    assert png.read_bytes() == first
    kept = export_sheet(project, "k.png", s2, overwrite="keep")
    assert kept.skipped and kept.files == [] and png.read_bytes() == first
    v2 = export_sheet(project, "k.png", s2, overwrite="version")
    v3 = export_sheet(project, "k.png", s2, overwrite="version")
    assert (v2.asset_path, v3.asset_path) == ("k-2.png", "k-3.png")
    assert (project / "assets" / "k-2.png.meta").is_file() and (project / "assets" / "k-3.json").is_file()
    assert png.read_bytes() == first
    rep = export_sheet(project, "k.png", s2, overwrite="replace")
    assert rep.asset_path == "k.png" and png.read_bytes() != first
    paths = [e["path"] for e in asset_manifest.read_manifest(project)["assets"]]
    assert sorted(paths) == ["k-2.png", "k-3.png", "k.png"]
    assert asset_manifest.find_asset(project, "k.png")["exports"] == 2


def test_a_users_file_under_a_sidecars_name_is_never_written_over(tmp_path):
    project = make_project(tmp_path)
    levels = project / "assets" / "levels"
    levels.mkdir(parents=True)
    (levels / "forest.json").write_text('{"my": "level data"}')
    (levels / "forest-2.json").write_text('{"my": "other level"}')
    (levels / "cave.assets.ron").write_text("({})")
    with pytest.raises(ExportError, match=re.escape(f"{levels / 'forest.json'} already exists")):
        export_sheet(project, "levels/forest.png", grid_sheet(2, 1, 4))
    assert not (levels / "forest.png").exists() and (levels / "forest.json").read_text() == '{"my": "level data"}'
    # keep has no forest.png to keep: said, not reported as kept
    with pytest.raises(ExportError, match=re.escape(f"{levels / 'forest.json'} is in the way, but levels/forest.png "
                                                    "itself does not exist")):
        export_sheet(project, "levels/forest.png", grid_sheet(2, 1, 4), overwrite="keep")
    assert not (levels / "forest.png").exists() and (levels / "forest.json").read_text() == '{"my": "level data"}'
    # version skips every name whose atlas would land on a user's file
    v = export_sheet(project, "levels/forest.png", grid_sheet(2, 1, 4), overwrite="version")
    assert v.asset_path == "levels/forest-3.png" and (levels / "forest-2.json").read_text() == '{"my": "other level"}'
    with pytest.raises(ExportError, match="cave.assets.ron already exists"):
        export_sheet(project, "levels/cave.png", grid_sheet(2, 1, 4), assets_ron=True)
    # no atlas written, no clash: a single image next to a level file of the same name is fine
    export_asset(project, "levels/forest.png", np.zeros((4, 4, 4), np.uint8))
    assert (levels / "forest.json").read_text() == '{"my": "level data"}'


def test_the_manifests_own_folder_is_not_an_asset_location(tmp_path):
    project = make_project(tmp_path)
    export_sheet(project, "k.png", grid_sheet(2, 1, 4))
    manifest = asset_manifest.manifest_path(project)
    before = manifest.read_bytes()
    for kwargs in ({"asset_path": ".dgx-pixels/manifest.png"}, {"asset_path": "ok.png", "assets_ron": ".dgx-pixels/a.assets.ron"}):
        with pytest.raises(ExportError, match=r"\.dgx-pixels/ holds DGX-Pixels' own records"):
            export_sheet(project, sheet=grid_sheet(2, 1, 4), overwrite="replace", **kwargs)
    assert manifest.read_bytes() == before and not (project / "assets" / "ok.png").exists()


def test_a_deleted_png_whose_own_sidecars_remain_is_exported_again_under_its_name(tmp_path):
    project = make_project(tmp_path)
    a = project / "assets" / "s"
    export_sheet(project, "s/k.png", grid_sheet(2, 1, 4))
    (a / "k.png").unlink()  # the .meta and the atlas stay, as this export wrote them
    for policy in ("fail", "version"):
        assert export_sheet(project, "s/k.png", grid_sheet(2, 1, 4), overwrite=policy).asset_path == "s/k.png"
        (a / "k.png").unlink()
    # a sidecar edited since is someone's: then the name is taken
    (a / "k.json").write_text('{"edited": true}')
    with pytest.raises(ExportError, match="k.json already exists"):
        export_sheet(project, "s/k.png", grid_sheet(2, 1, 4))
    assert export_sheet(project, "s/k.png", grid_sheet(2, 1, 4), overwrite="version").asset_path == "s/k-2.png"


def test_replace_does_not_overwrite_a_file_beside_the_asset_that_no_export_wrote(tmp_path):
    """Re-exporting an image as a sheet with replace wrote the atlas over the user's own
    ogre.json (level data next to the PNG): replace is asked for the asset, not for that."""
    project = make_project(tmp_path)
    a = project / "assets" / "chars"
    a.mkdir(parents=True)
    (a / "ogre.json").write_text('{"my": "level data"}')
    export_asset(project, "chars/ogre.png", np.full((4, 4, 4), 255, np.uint8))
    with pytest.raises(ExportError, match=r"ogre.json is in the way and no export of chars/ogre.png wrote it"):
        export_sheet(project, "chars/ogre.png", grid_sheet(2, 1, 4), overwrite="replace")
    assert (a / "ogre.json").read_text() == '{"my": "level data"}'
    # a sheet export's own atlas is replaced as before
    export_sheet(project, "chars/troll.png", grid_sheet(2, 1, 4))
    export_sheet(project, "chars/troll.png", grid_sheet(3, 1, 4), overwrite="replace")
    assert json.loads((a / "troll.json").read_text())["meta"]["size"] == {"w": 12, "h": 4}


def test_replacing_an_asset_keeps_its_sidecars_in_step_with_the_png(tmp_path):
    project = make_project(tmp_path)
    a = project / "assets" / "a"
    export_sheet(project, "a/k.png", grid_sheet(3, 2, 4), assets_ron=True)
    assert "columns: 3" in (a / "k.assets.ron").read_text()
    # a new grid without --assets-ron: the asset's own .assets.ron follows the new grid
    res = export_sheet(project, "a/k.png", grid_sheet(6, 1, 4), overwrite="replace")
    assert "columns: 6" in (a / "k.assets.ron").read_text() and "rows: 1" in (a / "k.assets.ron").read_text()
    assert {f.kind for f in res.files} == {"meta", "png", "atlas", "ron", "manifest"}
    # a single image replaces the sheet: the atlas goes, the .assets.ron loses its layout
    export_asset(project, "a/k.png", np.zeros((4, 4, 4), np.uint8), overwrite="replace")
    assert not (a / "k.json").exists()
    assert "layout" not in (a / "k.assets.ron").read_text() and '"k.image"' in (a / "k.assets.ron").read_text()
    entry = asset_manifest.find_asset(project, "a/k.png")
    assert sorted(f["kind"] for f in entry["files"]) == ["meta", "png", "ron"]
    # an atlas the user edited since is theirs: it stays
    export_sheet(project, "a/k.png", grid_sheet(2, 1, 4), overwrite="replace")
    (a / "k.json").write_text('{"edited": true}')
    export_asset(project, "a/k.png", np.zeros((4, 4, 4), np.uint8), overwrite="replace")
    assert (a / "k.json").read_text() == '{"edited": true}'


def test_single_image_export_and_upscale(tmp_path):
    project = make_project(tmp_path, 'bevy = "0.13"')
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    res = export_asset(project, "items/gem.png", img, upscale=3)
    assert [f.kind for f in res.files] == ["meta", "png", "manifest"]
    got = np.array(Image.open(project / "assets" / "items" / "gem.png"))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(img, 3, 0), 3, 1))
    assert "asset_usage" in (project / "assets" / "items" / "gem.png.meta").read_text()


@pytest.mark.parametrize("upscale,shown", [(1, "4.0"), (2, "2.0"), (8, "0.5"), (64, "0.0625")])
def test_snippet_shows_an_upscaled_export_at_the_same_size_on_screen(tmp_path, upscale, shown):
    """The snippet shows the true sprite 4x: an image already enlarged 2x gets 2.0, not 4.0
    (which showed it 8x). Still images and sheets alike."""
    project = make_project(tmp_path)
    res = export_asset(project, "gem.png", np.full((4, 4, 4), 255, np.uint8), upscale=upscale)
    assert f"Vec3::splat({shown})" in res.snippet and "Vec3::splat(4.0)" not in res.snippet.replace(shown, "")
    res = export_sheet(project, "s.png", grid_sheet(2, 1, 4), upscale=upscale)
    assert f"Vec3::splat({shown})" in res.snippet


def test_upscaled_sheet_layout_numbers_follow(tmp_path):
    project = make_project(tmp_path)
    sheet = grid_sheet(3, 2, 8, padding=1, offset=2)
    res = export_sheet(project, "s.png", sheet, upscale=2, assets_ron=True)
    layout = pyron.loads((project / "assets" / "s.assets.ron").read_text())[0]["s.layout"]
    assert layout == {"tile_size_x": 16, "tile_size_y": 16, "columns": 3, "rows": 2,
                      "padding_x": 2, "padding_y": 2, "offset_x": 4, "offset_y": 4}
    assert (res.width, res.height) == (4 + 3 * 16 + 2 * 2, 4 + 2 * 16 + 2)


def test_bad_layout_is_refused_before_writing(tmp_path):
    project = make_project(tmp_path)
    sheet = grid_sheet(2, 1, 4)
    sheet.columns = 3  # numbers no longer describe the image
    with pytest.raises(InvalidArgumentError, match="needs"):
        export_sheet(project, "s.png", sheet)
    assert not (project / "assets" / "s.png").exists()


def test_version_override_and_default(tmp_path):
    project = make_project(tmp_path, 'bevy = "0.15"')
    res = export_sheet(project, "s.png", grid_sheet(1, 1, 4), bevy_version="0.12")
    assert res.bevy.source == "override"
    assert "bevy_render::texture::image_loader::ImageLoader" in (project / "assets" / "s.png.meta").read_text()
    bare = tmp_path / "bare"
    bare.mkdir()
    # a folder that is no Rust project: a mistyped --bevy, refused unless a version is given
    with pytest.raises(ExportError, match=r"bare is not a Bevy project: it holds no Cargo.toml \(hint"):
        export_sheet(bare, "s.png", grid_sheet(1, 1, 4))
    assert not (bare / "assets").exists()
    # the game's assets/ given as the project: assets/assets/ would be read by nothing
    with pytest.raises(ExportError, match=r"assets is not a Bevy project: it holds no Cargo.toml \(the game at "):
        export_sheet(project / "assets", "s.png", grid_sheet(1, 1, 4))
    assert not (project / "assets" / "assets").exists()
    assert export_sheet(bare, "s.png", grid_sheet(1, 1, 4), bevy_version="0.16").bevy.short == "0.16"
    # a Rust project whose bevy the files do not name (a git dependency): the newest layout
    (bare / "Cargo.toml").write_text('[dependencies]\nbevy = { git = "https://github.com/bevyengine/bevy" }\n')
    res = export_sheet(bare, "t.png", grid_sheet(1, 1, 4))
    assert res.bevy.minor == 19 and res.bevy.source.startswith("default")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        export_sheet(tmp_path / "missing", "s.png", grid_sheet(1, 1, 4))
    with pytest.raises(InvalidArgumentError, match=r"must end in \.png"):
        export_sheet(project, "s.gif", grid_sheet(1, 1, 4))


def test_concurrent_exports_lose_no_manifest_entry(tmp_path):
    project = make_project(tmp_path)
    sheet = grid_sheet(2, 1, 4)
    errors = []

    def work(i):
        try:
            export_sheet(project, f"many/s{i}.png", sheet)
            export_sheet(project, "same.png", sheet, overwrite="version")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    paths = {e["path"] for e in asset_manifest.read_manifest(project)["assets"]}
    assert {f"many/s{i}.png" for i in range(12)} <= paths
    versions = {p for p in paths if p.startswith("same")}
    assert versions == {"same.png"} | {f"same-{n}.png" for n in range(2, 13)}


def test_record_asset_directly(tmp_path):
    project = tmp_path / "p"
    (project / "assets").mkdir(parents=True)
    asset_manifest.record_asset(project, {"path": "a.png", "sha256": "x", "provenance": {"w": 1}})
    asset_manifest.record_asset(project, {"path": "b.png"})
    asset_manifest.record_asset(project, {"path": "a.png", "sha256": "y"})
    m = asset_manifest.read_manifest(project)
    assert [e["path"] for e in m["assets"]] == ["a.png", "b.png"]
    assert m["assets"][0]["sha256"] == "y" and m["assets"][0]["exports"] == 2
    with pytest.raises(ExportError):
        asset_manifest.record_asset(project, {"path": "c.png", "bad": object()})
    with pytest.raises(ExportError):
        asset_manifest.record_asset(project, {"size": 1})


def test_bevy_version_object_properties():
    v = BevyVersion(13, "0.13", "x")
    assert v.has_asset_usage and v.loader.startswith("bevy_render")
    assert not BevyVersion(12, "0.12", "x").has_asset_usage


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from comfy_nodes.pixel import bevy_export

    project = make_project(tmp_path)
    export_sheet(project, "keep.png", grid_sheet(1, 1, 4))
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    manifest_before = (project / "assets" / ".dgx-pixels" / "manifest.json").read_bytes()
    real_stage = bevy_export._stage

    def flaky(target, data, created):
        if target.name == "new.png":
            raise OSError(28, "No space left on device")
        return real_stage(target, data, created)

    monkeypatch.setattr(bevy_export, "_stage", flaky)
    # A write failure is an ExportError naming the cause (the CLI prints it, no traceback).
    with pytest.raises(ExportError, match="No space"):
        export_sheet(project, "sub/new.png", grid_sheet(2, 1, 4), assets_ron=True)
    after = sorted(p.relative_to(project) for p in project.rglob("*") if not p.is_dir())
    assert [p for p in after if p.name.endswith(".tmp")] == []
    assert not (project / "assets" / "sub" / "new.png.meta").exists()
    assert (project / "assets" / ".dgx-pixels" / "manifest.json").read_bytes() == manifest_before
    assert set(after) <= set(before)


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as from a terminal (a test run in the background
    inherits it ignored)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_while_writing_leaves_no_temp_file_and_none_while_renaming_a_half_export(tmp_path, monkeypatch,
                                                                                               ctrl_c):
    """A real SIGINT, sent to this process at two moments the test picks: while the files are
    being written (nothing of the export may remain), and at the first rename (the export
    completes, record included, and the interrupt arrives after it)."""
    import os
    import signal
    import time

    from comfy_nodes.pixel import bevy_export

    project = make_project(tmp_path)
    export_sheet(project, "keep.png", grid_sheet(1, 1, 4))
    before = sorted(p.relative_to(project) for p in project.rglob("*") if not p.is_dir())
    real_stage = bevy_export._stage

    def interrupted_stage(target, data, created):
        if target.name == "new.png":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the other workers are still writing when the interrupt lands
        return real_stage(target, data, created)

    monkeypatch.setattr(bevy_export, "_stage", interrupted_stage)
    with pytest.raises(KeyboardInterrupt):
        export_sheet(project, "sub/new.png", grid_sheet(2, 1, 4), assets_ron=True)
    after = sorted(p.relative_to(project) for p in project.rglob("*") if not p.is_dir())
    assert [p for p in after if p.name.endswith(".tmp")] == []
    assert set(after) <= set(before) | {Path("assets/.dgx-pixels/manifest.lock")}
    assert asset_manifest.find_asset(project, "sub/new.png") is None

    monkeypatch.setattr(bevy_export, "_stage", real_stage)
    real_replace = os.replace
    sent = []

    def interrupted_replace(src, dst, **kw):
        if not sent:
            sent.append(dst)
            os.kill(os.getpid(), signal.SIGINT)
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(bevy_export.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        export_sheet(project, "sub/new.png", grid_sheet(2, 1, 4), assets_ron=True)
    monkeypatch.setattr(bevy_export.os, "replace", real_replace)
    entry = asset_manifest.find_asset(project, "sub/new.png")
    assert entry is not None and sorted(f["kind"] for f in entry["files"]) == ["atlas", "meta", "png", "ron"]
    for f in entry["files"]:
        assert (project / "assets" / f["path"]).is_file()
    assert not [p for p in project.rglob("*.tmp")]


def test_an_unwritable_records_folder_or_asset_folder_is_a_write_error_naming_the_file(tmp_path, monkeypatch, capsys):
    from comfy_nodes.pixel import bevy_export
    from orchestrator.cli import main

    project = make_project(tmp_path)
    (project / "assets").mkdir()
    (project / "assets" / ".dgx-pixels").write_text("a file where the records folder goes")
    src = tmp_path / "k.png"
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(src)
    assert main(["export", str(src), "--bevy", str(project), "--path", "s/k.png"]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {project / 'assets' / '.dgx-pixels'}") and "Traceback" not in err
    assert not (project / "assets" / "s").exists()
    # A read-only assets folder cannot be made for real here (these tests may run as root, whom
    # no mode bit stops), so the file system's refusal is simulated where the file is created.
    (project / "assets" / ".dgx-pixels").unlink()

    def read_only(folder, name, data):
        raise OSError(30, "Read-only file system", str(folder.path / f".{name}.x1y2.tmp"))

    monkeypatch.setattr(bevy_export.ConfinedFolder, "stage", read_only)
    assert main(["export", str(src), "--bevy", str(project), "--path", "s/k.png"]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {project / 'assets' / 's'}/k.png") and ".tmp" not in err, err


def test_a_folder_where_a_file_goes_refuses_the_export_before_anything_is_written(tmp_path):
    project = make_project(tmp_path)
    (project / "assets" / "sprites" / "hero.json").mkdir(parents=True)
    with pytest.raises(ExportError) as exc:
        export_sheet(project, "sprites/hero.png", grid_sheet(2, 1, 4))
    assert exc.value.message.startswith("cannot write sprites/hero.json: a folder stands where that file goes")
    assert sorted(p.name for p in (project / "assets" / "sprites").iterdir()) == ["hero.json"]
    assert not (project / "assets" / ".dgx-pixels" / "manifest.json").exists()


def test_written_files_get_the_umask_or_keep_the_mode_of_the_file_they_replace(tmp_path):
    """A temp file is created 0600; renamed into place as it is, an asset would be unreadable to
    a web server, a container or another user of a shared checkout."""
    project = make_project(tmp_path)
    old = os.umask(0o022)
    try:
        res = export_sheet(project, "k.png", grid_sheet(2, 1, 4))
        modes = {f.asset_path: stat.S_IMODE(f.path.stat().st_mode) for f in res.files}
        assert set(modes.values()) == {0o644}, modes
        png = project / "assets" / "k.png"
        png.chmod(0o664)
        export_sheet(project, "k.png", grid_sheet(2, 1, 4), overwrite="replace")
        assert stat.S_IMODE(png.stat().st_mode) == 0o664
        assert stat.S_IMODE((project / "assets" / "k.png.meta").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_manifest_is_renamed_last(tmp_path, monkeypatch):
    project = make_project(tmp_path)
    order = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d, **kw: (order.append(Path(d).name), real_replace(s, d, **kw)))
    export_sheet(project, "k.png", grid_sheet(2, 1, 4), assets_ron=True)
    assert order == ["k.png.meta", "k.png", "k.json", "k.assets.ron", "manifest.json"]


# ------------------------------------------------------------------ CLI (in-process)


def save_frames(folder: Path, frames) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f, "RGBA").save(folder / f"f{i}.png")
    return folder


def test_cli_sheet_takes_every_frame_of_an_animated_gif_and_apng(tmp_path):
    """An animation file is its frames, in order, not its first frame only; a still file
    among them is one frame."""
    from orchestrator.cli import main

    frames = [np.pad(np.full((6, 6, 4), 255, np.uint8), ((1, 1), (1, 1), (0, 0))) for _ in range(5)]
    for i, f in enumerate(frames):
        f[1:7, 1:7, :3] = (40 * i, 200 - 30 * i, 90)
    pil = [Image.fromarray(f, "RGBA") for f in frames]
    pil[0].save(tmp_path / "walk.gif", save_all=True, append_images=pil[1:3], duration=80, loop=0, disposal=2)
    pil[3].save(tmp_path / "jump.png", save_all=True, append_images=pil[4:], duration=80)  # APNG, 2 frames
    still = tmp_path / "idle.png"
    pil[0].save(still)
    sheet_png = tmp_path / "sheet.png"
    assert main(["sheet", str(tmp_path / "walk.gif"), str(tmp_path / "jump.png"), str(still), "-o", str(sheet_png),
                 "--columns", "6", "--trim", "none", "--json", str(tmp_path / "sheet.json")]) == 0
    img = np.array(Image.open(sheet_png).convert("RGBA"))
    assert img.shape == (8, 6 * 8, 4)
    for i, f in enumerate(frames + [frames[0]]):
        np.testing.assert_array_equal(img[:, 8 * i:8 * i + 8], f)
    assert len(json.loads((tmp_path / "sheet.json").read_text())["frames"]) == 6


def test_cli_sheet_split_and_export_existing_sheet(tmp_path, capsys):
    from orchestrator.cli import main

    frames = [np.pad(np.full((6, 6, 4), 40 * (i + 1), np.uint8), ((1, 1), (1, 1), (0, 0))) for i in range(6)]
    fdir = save_frames(tmp_path / "frames", frames)
    sheet_png = tmp_path / "sheet.png"
    assert main(["sheet", str(fdir), "-o", str(sheet_png), "--columns", "3", "--padding", "2", "--trim", "none",
                 "--json", str(tmp_path / "sheet.json"), "--preview", str(tmp_path / "p.png")]) == 0
    img = np.array(Image.open(sheet_png))
    assert img.shape == (2 * 8 + 2, 3 * 8 + 2 * 2, 4)
    doc = json.loads((tmp_path / "sheet.json").read_text())
    assert doc["meta"]["image"] == "sheet.png" and len(doc["frames"]) == 6
    assert main(["sheet", "--split", str(sheet_png), "-o", str(tmp_path / "out")]) == 0
    out = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in out] == [f"frame_{i:03d}.png" for i in range(6)]
    for p, f in zip(out, frames):
        np.testing.assert_array_equal(np.array(Image.open(p)), f)
    # an existing sheet exported as is, grid given
    project = make_project(tmp_path, 'bevy = "0.13"')
    assert main(["export", str(sheet_png), "--bevy", str(project), "--path", "s/sheet.png", "--sheet-cell", "8x8",
                 "--padding", "2", "--animations", "all:0-5@6", "--assets-ron"]) == 0
    captured = capsys.readouterr()
    assert "TextureAtlasLayout::from_grid(Vec2::new(8.0, 8.0), 3, 2, Some(Vec2::new(2.0, 2.0)), None)" in captured.out
    np.testing.assert_array_equal(np.array(Image.open(project / "assets" / "s" / "sheet.png")), img)
    layout = pyron.loads((project / "assets" / "s" / "sheet.assets.ron").read_text())[0]["sheet.layout"]
    assert layout["padding_x"] == 2 and layout["columns"] == 3
    # detected grid gives the same numbers
    assert main(["export", str(sheet_png), "--bevy", str(project), "--path", "s/sheet.png", "--detect-grid",
                 "--overwrite", "version", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["asset_path"] == "s/sheet-2.png" and res["bevy_version"] == "0.13"
    # the manifest says where each export came from, and history shows it
    entry = next(e for e in json.loads((project / "assets" / ".dgx-pixels" / "manifest.json").read_text())["assets"]
                 if e["path"] == "s/sheet-2.png")
    digest = hashlib.sha256(sheet_png.read_bytes()).hexdigest()
    assert entry["provenance"]["source"]["files"] == [{"file": str(sheet_png.resolve()), "sha256": digest}]
    assert main(["history", "--bevy", str(project)]) == 0
    assert "s/sheet-2.png  (28x18, " in (out := capsys.readouterr().out) and f"<- {sheet_png.resolve()}" in out
    assert main(["history", "--bevy", str(project), "--workflow", "sprite"]) == 0
    assert "none of the 2 assets recorded in" in capsys.readouterr().out


def test_cli_export_warns_when_the_assets_ron_name_is_not_what_the_loader_reads(tmp_path):
    """bevy_asset_loader reads ``*.assets.ron`` unless the game configures other endings: another
    ``.ron`` name is still written (such a game loads it), with a warning naming the suffix."""
    import subprocess
    import sys

    project = make_project(tmp_path)
    sprite = tmp_path / "knight.png"
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(sprite)

    def export(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator", "export", str(sprite), "--bevy", str(project),
                               "--overwrite", "replace", *extra], capture_output=True, text=True, timeout=120)

    plain = export("--path", "s/knight.png", "--assets-ron", "sprites.ron")
    assert plain.returncode == 0, plain.stderr
    assert ("warning: --assets-ron 'sprites.ron' does not end in .assets.ron: bevy_asset_loader's standard dynamic "
            "assets load only *.assets.ron files by default") in plain.stderr
    assert "set_standard_dynamic_asset_collection_file_endings; name it e.g. sprites.assets.ron" in plain.stderr
    assert "knight.image" in ron_map((project / "assets" / "sprites.ron").read_text())

    as_json = export("--path", "s/knight.png", "--assets-ron", "levels/cave.ron", "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)  # stdout stays one JSON document
    assert len(doc["warnings"]) == 1 and "name it e.g. cave.assets.ron" in doc["warnings"][0]
    assert "warning: --assets-ron 'levels/cave.ron'" in as_json.stderr

    for extra in (["--assets-ron", "game.assets.ron"], ["--assets-ron"], []):
        # --asset-path, as deploy and run spell it, is the same option
        fine = export("--asset-path", "s/knight.png", "--json", *extra)
        assert fine.returncode == 0 and "warning" not in fine.stderr, (extra, fine.stderr)
        assert json.loads(fine.stdout)["warnings"] == []
    assert "knight.image" in ron_map((project / "assets" / "game.assets.ron").read_text())
    assert (project / "assets" / "s" / "knight.assets.ron").is_file()
    # the help says why and names the suffix
    helped = subprocess.run([sys.executable, "-m", "orchestrator", "export", "--help"], capture_output=True, text=True)
    assert "only *.assets.ron files unless the game" in " ".join(helped.stdout.split())


def test_cli_export_refuses_options_it_would_ignore(tmp_path, capsys):
    from orchestrator.cli import main

    project = make_project(tmp_path)
    one = tmp_path / "one.png"
    Image.fromarray(np.full((8, 24, 4), 200, np.uint8), "RGBA").save(one)
    fdir = save_frames(tmp_path / "frames", [np.full((8, 8, 4), 90 + i, np.uint8) for i in range(3)])
    for argv, message in (
        ([str(one), "--pow2", "--columns", "2"], "--pow2, --columns apply to sheets, and this is one sprite"),
        ([str(one), "--tile-array"], "--tile-array apply to sheets"),
        ([str(fdir), "--sheet-cell", "8x8"], "--sheet-cell and --detect-grid cut one sheet image; these are 3 frames"),
        ([str(one), "--sheet-cell", "8x8", "--detect-grid"], "give --sheet-cell or --detect-grid, not both"),
        ([str(one), "--sheet-cell", "8x8", "--trim", "none"], "--trim lay frames out, and this image is a sheet already"),
    ):
        assert main(["export", *argv, "--bevy", str(project), "--path", "x.png"]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "\nhint: " in err, err
    assert not (project / "assets" / "x.png").exists()
    # what they are for still works: a sheet image cut by its own grid
    assert main(["export", str(one), "--sheet-cell", "8x8", "--columns", "3", "--bevy", str(project), "--path", "x.png",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["width"] == 24


def test_cli_export_and_deploy_read_the_grid_a_sheet_made_here_records(tmp_path, capsys):
    """`export sheet.png` of a sheet `dgx-pixels sheet` made was one sprite (no atlas; the
    snippet spawned the whole sheet), and --detect-grid found nothing where the frames touch."""
    from orchestrator.cli import main

    rng = np.random.default_rng(8)
    frames = [rng.integers(1, 256, (10, 9, 4)).astype(np.uint8) for _ in range(5)]
    for f in frames:
        f[..., 3] = 255  # opaque frames side by side: no gutter to detect
    fdir = save_frames(tmp_path / "frames", frames)
    sheet_png = tmp_path / "walk.png"
    assert main(["sheet", str(fdir), "-o", str(sheet_png), "--columns", "3", "--trim", "none"]) == 0
    capsys.readouterr()
    project = make_project(tmp_path)
    assert main(["export", str(sheet_png), "--bevy", str(project), "--path", "sprites/walk.png",
                 "--animations", "walk:0-4@10", "--json"]) == 0
    captured = capsys.readouterr()
    assert "a sheet of 5 frames (3x2 cells of 9x10), on the grid it records" in captured.err
    atlas = json.loads((project / "assets" / "sprites" / "walk.json").read_text())
    assert [(f["frame"]["x"], f["frame"]["y"], f["frame"]["w"], f["frame"]["h"]) for f in atlas["frames"]] == [
        (0, 0, 9, 10), (9, 0, 9, 10), (18, 0, 9, 10), (0, 10, 9, 10), (9, 10, 9, 10)]
    assert "TextureAtlasLayout::from_grid(UVec2::new(9, 10), 3, 2" in json.loads(captured.out)["snippet"]
    # options that lay frames out again are refused for it, as for any sheet image
    assert main(["export", str(sheet_png), "--trim", "none", "--bevy", str(project), "--path", "x.png"]) == 2
    assert "lay frames out, and this image is a sheet already" in capsys.readouterr().err
    # a sheet without gutters or a record: the hint names the option that cuts a sheet here
    plain = tmp_path / "plain.png"
    Image.open(sheet_png).save(plain)  # the pixels without the record
    assert main(["export", str(plain), "--detect-grid", "--bevy", str(project), "--path", "p.png"]) == 3
    assert "hint: give the sheet's cell size with --sheet-cell WxH" in capsys.readouterr().err
    # deploy takes it as the sheet it is too
    assert main(["deploy", str(sheet_png), "--bevy", str(project), "--asset-path", "sprites/again.png", "--json"]) == 0
    atlas = json.loads((project / "assets" / "sprites" / "again.json").read_text())
    assert [(f["frame"]["x"], f["frame"]["y"]) for f in atlas["frames"]] == [(0, 0), (9, 0), (18, 0), (0, 10), (9, 10)]


def test_cli_tileset_strict_and_errors(tmp_path, capsys):
    from orchestrator.cli import main

    flat = np.full((8, 8, 4), 120, np.uint8)
    ramp = flat.copy()
    ramp[..., 0] = np.linspace(0, 255, 8).astype(np.uint8)[None, :]
    tdir = save_frames(tmp_path / "tiles", [flat, ramp])
    assert main(["sheet", "--tileset", str(tdir), "-o", str(tmp_path / "t.png")]) == 0
    assert "1 of 2 tiles are not seamless" in capsys.readouterr().out
    assert main(["sheet", "--tileset", str(tdir), "-o", str(tmp_path / "t.png"), "--strict"]) == 7
    assert main(["sheet", str(tdir), "-o", str(tmp_path / "s.png"), "--cell", "8by8"]) == 2
    assert "--cell must look like" in capsys.readouterr().err
    assert main(["sheet", str(tdir), "-o", str(tmp_path / "s.png"), "--animations", "walk:0-5@8"]) == 2
    assert "only 2 frames" in capsys.readouterr().err
    project = make_project(tmp_path)
    assert main(["export", str(tdir), "--bevy", str(project), "--path", "x.png", "--bevy-version", "0.9"]) == 2
    assert "error: Bevy 0.9 (override) is not supported" in capsys.readouterr().err
    assert main(["export", str(tdir), "--bevy", str(project), "--path", "x.png", "--bevy-version", "foo"]) == 2
    assert "error: cannot read a Bevy version from 'foo' (override)" in capsys.readouterr().err
    (project / "Cargo.toml").write_text('[package]\nname = "g"\n[dependencies]\nbevy = "0.11"\n')
    assert main(["export", str(tdir), "--bevy", str(project), "--path", "x.png"]) == 6  # the project's, refused
    assert "Bevy 0.11 (" in capsys.readouterr().err
    assert not (project / "assets" / "x.png").exists()


# ------------------------------------------------------------------ array-texture tilesets


@needs_ref
def test_tile_array_meta_is_byte_identical_to_the_templates():
    rows = (REF / "derived" / "tileset-array-rowcount.bevy-0.18-0.19.png.meta").read_text()
    grid = (REF / "derived" / "tileset-array-gridsize.bevy-0.19.png.meta").read_text()
    assert render_meta("0.18", array_layout=("rows", 4)) == rows
    assert render_meta("0.19", array_layout=("rows", 4)) == rows
    assert render_meta("0.19", array_layout=("grid", 16, 16)) == grid


def test_tile_array_meta_fields():
    tree = read_ron(render_meta("0.19", array_layout=("grid", 8, 12)))
    settings = tree[2]["asset"][2]["settings"][2]
    assert set(settings) == {"format", "is_srgb", "sampler", "asset_usage", "array_layout"}
    some = settings["array_layout"]
    assert some[1] == "Some" and some[2][0] == ("struct", "GridSize", {
        "tile_width_pixels": ("num", 8.0), "tile_height_pixels": ("num", 12.0)})
    pyron.loads(render_meta("0.18", array_layout=("rows", 3)))


def test_tile_array_assets_ron_has_the_image_and_no_atlas_layout(tmp_path):
    """An array texture is no atlas: a layout entry in the .assets.ron invited a sprite that
    cannot show it (the snippet says so)."""
    from comfy_nodes.pixel.tileset import build_tileset

    tiles = [np.full((16, 16, 4), 30 * i, np.uint8) for i in range(6)]
    p19 = make_project(tmp_path, 'bevy = "0.19"', "g19")
    export_sheet(p19, "tiles/arr.png", build_tileset(tiles, columns=3).as_sheet(), tile_array=True,
                 assets_ron="game.assets.ron")
    tree = ron_map((p19 / "assets" / "game.assets.ron").read_text())
    assert set(tree) == {"arr.image"}


def test_export_tileset_as_array_texture(tmp_path):
    from comfy_nodes.pixel.tileset import build_tileset

    tiles = [np.full((16, 16, 4), 30 * i, np.uint8) for i in range(4)]
    p19 = make_project(tmp_path, 'bevy = "0.19"', "g19")
    res = export_sheet(p19, "tiles/grass.png", build_tileset(tiles, columns=2).as_sheet(), tile_array=True)
    meta = (p19 / "assets" / "tiles" / "grass.png.meta").read_text()
    assert "GridSize(tile_width_pixels: 16, tile_height_pixels: 16)" in meta
    assert res.manifest_entry["array_layout"] == ["grid", 16, 16]
    # an array texture is a tilemap's tileset: the snippet does not spawn it as a sprite sheet
    assert 'pub fn grass_tileset(asset_server: &AssetServer) -> Handle<Image>' in res.snippet
    assert "TextureAtlasLayout" not in res.snippet and "Sprite::" not in res.snippet
    p18 = make_project(tmp_path, 'bevy = "0.18"', "g18")
    export_sheet(p18, "tiles/grass.png", build_tileset(tiles, columns=1).as_sheet(), tile_array=True)
    assert "RowCount(rows: 4)" in (p18 / "assets" / "tiles" / "grass.png.meta").read_text()
    with pytest.raises(InvalidArgumentError, match="one column"):
        export_sheet(p18, "tiles/two.png", build_tileset(tiles, columns=2).as_sheet(), tile_array=True)
    p17 = make_project(tmp_path, 'bevy = "0.17"', "g17")
    with pytest.raises(InvalidArgumentError, match="0.18 or newer"):
        export_sheet(p17, "tiles/grass.png", build_tileset(tiles, columns=1).as_sheet(), tile_array=True)
    with pytest.raises(InvalidArgumentError, match="spacing 0"):
        export_sheet(p19, "tiles/sp.png", build_tileset(tiles, columns=2, spacing=1).as_sheet(), tile_array=True)
    for p in (p17, p18):
        assert not (p / "assets" / "tiles" / "two.png").exists()
    assert not (p17 / "assets" / "tiles").exists()


def test_an_assets_folder_outside_the_project_is_refused_with_the_right_root():
    with pytest.raises(PathEscapeError) as exc:
        export_asset(Path("/tmp/nowhere-project"), "a.png", np.zeros((2, 2, 4), np.uint8), assets_dir="../x",
                     create_project=True)
    assert exc.value.hint == "give the assets folder relative to the project folder, e.g. assets"


# The moment between the checks and the writes cannot be hit reliably from outside: these tests
# swap the folder from a hook the export calls in between (a monkeypatched function).


def test_an_asset_folder_swapped_for_a_symlink_while_the_files_are_staged_takes_nothing_out(tmp_path, monkeypatch):
    """The swap lands after the folders were made and checked, as the first file is staged:
    nothing is written outside, nothing renamed into place, no temp file left."""
    from comfy_nodes.pixel import bevy_export

    project = make_project(tmp_path)
    (project / "assets" / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    real_stage = bevy_export._stage
    swapped = threading.Lock()

    def stage_after_a_swap(target, *rest):
        with swapped:
            if not (project / "assets" / "sub").is_symlink():
                swap_for_link(project / "assets" / "sub", outside)
        return real_stage(target, *rest)

    monkeypatch.setattr(bevy_export, "_stage", stage_after_a_swap)
    with pytest.raises(PathEscapeError, match="sub"):
        export_sheet(project, "sub/new.png", grid_sheet(2, 1, 4), assets_ron=True)
    assert list(outside.iterdir()) == []
    assert not [p for p in project.rglob("*") if p.name.endswith(".tmp")]
    assert asset_manifest.find_asset(project, "sub/new.png") is None


def test_an_asset_folder_swapped_for_a_symlink_after_the_checks_is_a_path_escape(tmp_path, monkeypatch):
    """The swap lands after every path was checked, before any folder is opened for writing."""
    project = make_project(tmp_path)
    (project / "assets" / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    real = asset_manifest.updated_manifest

    def updated_then_swapped(*a, **k):
        out = real(*a, **k)
        swap_for_link(project / "assets" / "sub", outside)
        return out

    monkeypatch.setattr(asset_manifest, "updated_manifest", updated_then_swapped)
    with pytest.raises(PathEscapeError, match=r"sub is a symlink"):
        export_sheet(project, "sub/new.png", grid_sheet(2, 1, 4))
    assert list(outside.iterdir()) == []
    assert not (project / "assets" / ".dgx-pixels" / "manifest.json").exists()


# ------------------------------------------------------------------ an assets folder below a link leading out


def test_an_assets_dir_through_a_symlink_leading_out_is_refused_and_nothing_is_written_there(tmp_path, capsys):
    """``--assets-dir assets/link``, the link leading out of the project: every file went
    through it (PNG, .meta, manifest), although ``--path link/a.png`` is refused. Refused the
    same way now, by name, before anything is written on either side of the link; an assets
    folder that is a plain folder below assets/ still works."""
    from orchestrator.cli import main

    project = make_project(tmp_path)
    (project / "assets").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "assets" / "link").symlink_to(outside, target_is_directory=True)
    src = tmp_path / "goose.png"
    Image.fromarray(np.full((4, 4, 4), 255, np.uint8), "RGBA").save(src)
    for assets_dir in ("assets/link", "assets/link/deeper"):
        rc = main(["export", str(src), "--bevy", str(project), "--path", "t/a.png", "--assets-dir", assets_dir])
        err = capsys.readouterr().err
        assert rc == 6, err
        assert f"refusing the assets folder {assets_dir!r}" in err and "symlink leading outside" in err, err
        assert str(project / "assets" / "link") in err and "Traceback" not in err
        assert list(outside.iterdir()) == []
        assert sorted(p.name for p in (project / "assets").iterdir()) == ["link"]
    with pytest.raises(PathEscapeError, match="symlink leading outside"):
        export_asset(project, "a.png", np.zeros((2, 2, 4), np.uint8), assets_dir="assets/link")
    assert list(outside.iterdir()) == []
    (project / "assets" / "real").mkdir()
    assert main(["export", str(src), "--bevy", str(project), "--path", "t/a.png", "--assets-dir", "assets/real",
                 "--no-snippet"]) == 0
    assert (project / "assets" / "real" / "t" / "a.png.meta").is_file()
    assert (project / "assets" / "real" / ".dgx-pixels" / "manifest.json").is_file()


def _boxed(n: int, size: tuple[int, int], box: tuple[slice, slice], colour) -> list[np.ndarray]:
    """``n`` transparent RGBA frames of ``size`` (h, w), each with the opaque ``box`` in
    ``colour(i)``."""
    frames = []
    for i in range(n):
        f = np.zeros((*size, 4), np.uint8)
        f[box] = colour(i)
        frames.append(f)
    return frames


def test_cli_tile_array_keeps_the_tile_size(tmp_path, capsys):
    """`export TILES --tile-array` trimmed three 16x16 tiles with a transparent border to 10x12
    array layers (a 10x36 PNG) where `sheet --tileset` keeps 16x16: a tile array keeps its
    tiles' size by default; an explicit --trim is still honoured."""
    from orchestrator.cli import main

    project = make_project(tmp_path, cargo='bevy = "0.18"')
    tiles = _boxed(3, (16, 16), (slice(2, 14), slice(3, 13)), lambda i: (50 * i, 100, 20, 255))
    fdir = save_frames(tmp_path / "ftiles", tiles)
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "tl/f.png", "--tile-array", "--columns", "1",
                 "--no-snippet"]) == 0
    capsys.readouterr()
    got = np.asarray(Image.open(project / "assets" / "tl" / "f.png").convert("RGBA"))
    assert got.shape == (48, 16, 4)
    for i, t in enumerate(tiles):
        np.testing.assert_array_equal(got[16 * i:16 * i + 16], t)
    atlas = json.loads((project / "assets" / "tl" / "f.json").read_text())
    assert {(f["frame"]["w"], f["frame"]["h"]) for f in atlas["frames"]} == {(16, 16)}
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "tl/u.png", "--tile-array", "--columns", "1",
                 "--trim", "union", "--no-snippet"]) == 0
    assert Image.open(project / "assets" / "tl" / "u.png").size == (10, 36)
    # without --tile-array a sheet of frames is still trimmed as before
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "tl/s.png", "--columns", "1",
                 "--no-snippet"]) == 0
    assert Image.open(project / "assets" / "tl" / "s.png").size == (10, 36)
    # on 0.18 the layers go in one column without being told (the default layout was refused)
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "tl/d.png", "--tile-array",
                 "--no-snippet"]) == 0, capsys.readouterr().err
    assert Image.open(project / "assets" / "tl" / "d.png").size == (16, 48)
    # on 0.19 the .meta cuts a grid: the default layout stays
    p19 = make_project(tmp_path, cargo='bevy = "0.19"', name="g19")
    assert main(["export", str(fdir), "--bevy", str(p19), "--path", "tl/d.png", "--tile-array", "--no-snippet"]) == 0
    assert Image.open(p19 / "assets" / "tl" / "d.png").size == (32, 32)  # 2x2 cells, as without --tile-array


def test_cli_export_of_a_folder_skips_hidden_files(tmp_path, capsys):
    """A macOS `._f0.png` in a frames folder made `export FOLDER` fail with "not a readable image"."""
    from orchestrator.cli import main

    project = make_project(tmp_path)
    frames = [np.full((8, 8, 4), 90 + 40 * i, np.uint8) for i in range(3)]
    fdir = save_frames(tmp_path / "mixd", frames)
    (fdir / "._f0.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    Image.fromarray(np.full((8, 8, 4), 7, np.uint8), "RGBA").save(fdir / ".thumb.png")
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "m.png", "--columns", "3",
                 "--no-snippet"]) == 0, capsys.readouterr().err
    got = np.asarray(Image.open(project / "assets" / "m.png").convert("RGBA"))
    assert got.shape == (8, 24, 4)
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(got[:, 8 * i:8 * i + 8], f)


def test_cli_export_warns_when_animations_that_share_frames_differ_in_fps(tmp_path, capsys):
    """The atlas JSON holds one duration per frame: `export --animations 'idle:0-2@8,
    back:0-5@7:reverse'` gives frames 0-2 idle's 125 ms, so back plays them at 8 fps in a loader
    that times frames from the JSON. export says so on stderr, as `sheet --json` does; rates
    that do not conflict, or no atlas JSON at all, say nothing."""
    from orchestrator.cli import main

    project = make_project(tmp_path)
    frames = _boxed(6, (12, 10), (slice(2, 10), slice(2, 8)), lambda i: (40 * i, 90, 200, 255))
    fdir = save_frames(tmp_path / "walk", frames)
    capsys.readouterr()
    assert main(["export", str(fdir), "--bevy", str(project), "--path", "a/walk.png", "--no-snippet",
                 "--animations", "idle:0-2@8, back:0-5@7:reverse"]) == 0
    err = capsys.readouterr().err
    assert "animation 'back' (7 fps) shares frames 0-2 with 'idle' (8 fps)" in err, err
    atlas = json.loads((project / "assets" / "a" / "walk.json").read_text())
    assert [f["duration"] for f in atlas["frames"]] == [125, 125, 125, 143, 143, 143]
    for extra in (["--animations", "idle:0-2@8, back:3-5@7"], ["--animations", "idle:0-2@8, back:0-5@7", "--no-atlas"]):
        assert main(["export", str(fdir), "--bevy", str(project), "--path", "a/ok.png", "--no-snippet",
                     "--overwrite", "replace", *extra]) == 0
        assert "shares frames" not in capsys.readouterr().err


def test_replace_never_overwrites_art_that_dgx_pixels_did_not_write_or_that_was_edited(tmp_path):
    """export --overwrite replace (and the Bevy Export node) replaced a hand-edited asset and a
    PNG no export ever wrote, silently; deploy refused both. The export refuses them itself now,
    under the project's lock, and leaves every file as it was."""
    project = make_project(tmp_path)
    one = np.zeros((4, 4, 4), np.uint8)
    one[..., 3] = 255
    two = one.copy()
    two[..., 0] = 200
    export_asset(project, "sprites/knight.png", one)
    png = project / "assets" / "sprites" / "knight.png"
    export_asset(project, "sprites/knight.png", two, overwrite="replace")  # its own, unedited: replaced
    assert np.array(Image.open(png))[0, 0, 0] == 200
    Image.fromarray(one, "RGBA").save(png)  # the artist's edit
    with pytest.raises(ExportError, match=r"knight\.png was changed since dgx-pixels wrote it") as exc:
        export_asset(project, "sprites/knight.png", two, overwrite="replace")
    assert "--overwrite version" in exc.value.hint
    assert np.array(Image.open(png))[0, 0, 0] == 0
    hand = project / "assets" / "sprites" / "hand.png"
    Image.fromarray(one, "RGBA").save(hand)
    with pytest.raises(ExportError, match=r"hand\.png exists and dgx-pixels never wrote it"):
        export_asset(project, "sprites/hand.png", two, overwrite="replace")
    assert hand.read_bytes() == png.read_bytes() and not (project / "assets" / "sprites" / "hand.png.meta").exists()
    assert export_asset(project, "sprites/hand.png", two, overwrite="version").asset_path == "sprites/hand-2.png"


def test_cli_export_refuses_the_asset_itself_as_its_input(tmp_path, capsys):
    """Exported onto itself with --upscale 2 the asset grew on every run (16, 32, 64 px) and the
    original was lost; deploy refused it. export refuses it too, naming the file."""
    from orchestrator.cli import main

    project = make_project(tmp_path)
    src = tmp_path / "k.png"
    Image.fromarray(np.full((4, 4, 4), 255, np.uint8), "RGBA").save(src)
    assert main(["export", str(src), "--bevy", str(project), "--path", "s/k.png", "--no-snippet"]) == 0
    asset = project / "assets" / "s" / "k.png"
    before = asset.read_bytes()
    for given in (str(asset), str(project / "assets" / "s")):
        assert main(["export", given, "--bevy", str(project), "--path", "s/k.png", "--overwrite", "replace",
                     "--upscale", "2"]) == 2
        err = capsys.readouterr().err
        assert f"is the asset 's/k.png' itself" in err, err
    assert asset.read_bytes() == before and Image.open(asset).size == (4, 4)


def test_cli_sheet_written_into_its_frames_folder_is_not_taken_for_a_frame(tmp_path, capsys):
    """`sheet frames/ -o frames/` puts sheet.png among the frames; the next run laid it out as a
    fifth frame (the cells grew to its size). A sheet made here records its grid: in a folder it
    is skipped with a note; named on its own it is used."""
    from orchestrator.cli import main

    frames = [np.full((8, 8, 4), 60 + 40 * i, np.uint8) for i in range(4)]
    fdir = save_frames(tmp_path / "walk", frames)
    assert main(["sheet", str(fdir), "-o", f"{fdir}/", "--columns", "4"]) == 0
    first = np.asarray(Image.open(fdir / "sheet.png").convert("RGBA"))
    assert first.shape == (8, 32, 4)
    capsys.readouterr()
    assert main(["sheet", str(fdir), "-o", str(tmp_path / "again.png"), "--columns", "4"]) == 0
    out, err = capsys.readouterr()
    assert f"note: skipped {fdir / 'sheet.png'}: a sprite sheet made by dgx-pixels" in err and "4 frames" in out
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png").convert("RGBA")), first)
    only = tmp_path / "only"
    only.mkdir()
    (fdir / "sheet.png").rename(only / "sheet.png")
    assert main(["sheet", str(only), "-o", str(tmp_path / "x.png")]) == 2
    assert f"folder {only} holds only sprite sheets made by dgx-pixels" in capsys.readouterr().err
    assert main(["sheet", str(only / "sheet.png"), "--split", "-o", str(tmp_path / "cut")]) == 0
    assert len(list((tmp_path / "cut").glob("*.png"))) == 4


def test_cli_sheet_warns_when_columns_leave_its_row_mostly_empty(tmp_path, capsys):
    """`--columns 100` for 4 frames made a 900-px wide sheet without a word."""
    from orchestrator.cli import main

    fdir = save_frames(tmp_path / "f", [np.full((8, 8, 4), 200, np.uint8) for _ in range(4)])
    assert main(["sheet", str(fdir), "-o", str(tmp_path / "s.png"), "--columns", "10"]) == 0
    assert "warning: --columns 10 for 4 frames: the sheet has 6 empty cells in its row; --columns 4 fits them" \
        in capsys.readouterr().err
    assert Image.open(tmp_path / "s.png").size == (80, 8)
    assert main(["sheet", str(fdir), "-o", str(tmp_path / "t.png"), "--columns", "4"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_rust_names_keep_the_base_letter_of_accented_names():
    """'ü ber.png' gave the Rust types `Ber...`: the ü was dropped with its accent."""
    from comfy_nodes.pixel.bevy_export import rust_names

    assert rust_names("über") == ("uber", "Uber")
    assert rust_names("ü ber") == ("u_ber", "UBer")
    assert rust_names("日本") == ("sprite", "Sprite")
