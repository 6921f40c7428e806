"""Putting collected outputs into a Bevy project, with a record of where each came from.

Every asset goes through the export transaction of ``comfy_nodes.pixel.bevy_export``
(confined to ``<project>/assets``, staged and renamed atomically, ``.meta`` first, overwrite
policy, manifest entry under the project lock). This module adds:

- all-or-nothing checks BEFORE the first write: every output file exists, has the sha256 it
  had when it was downloaded, decodes as one still image (not an animation, of which the PNG
  would keep the first frame), is not the target asset itself, and every target asset path is
  confined; with overwrite policy ``replace`` each target in the way is one dgx-pixels wrote
  and nobody edited since; a job with a missing or changed output deploys nothing;
- a provenance record per asset in the manifest entry: workflow ``name@version`` and content
  hash, parameters, seed, model files (with sha256 when the server is on this machine and the
  file can be found, else names only), ComfyUI version, node pack version, server, prompt id,
  the source file's sha256, time;
- exactly-once: each deploy carries a ``deploy_id`` (batch: journal id + job + output index);
  an asset whose manifest entry already has that id is not exported again, so a batch resumed
  after a crash between "exported" and "journal says deployed" does not deploy twice;
- sheets: given the submitted prompt, an output saved from a Sprite Sheet / Tileset node is
  deployed as a sheet (PNG + ``.meta`` + atlas JSON) with its grid rebuilt from the graph
  (``orchestrator.sheet_deploy``). ``run --bevy``, ``batch`` and the MCP ``generate`` tool all
  deploy through here, so they write the same files.
"""
from __future__ import annotations

import contextlib
import glob
import ipaddress
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from comfy_nodes.pixel.errors import DgxPixelsError, ExportError, InputImageError, InvalidArgumentError
from orchestrator.models import sha256_file

EventFn = Callable[[dict], None]


@dataclass
class DeployedAsset:
    """One asset in a Bevy project: ``asset_path`` is what ``asset_server.load`` takes."""

    asset_path: str
    path: str
    sha256: str
    source_path: str
    source_sha256: str
    deploy_id: str | None
    already: bool = False  # found in the manifest with this deploy_id: nothing written
    skipped: bool = False  # overwrite policy "keep" left an existing asset
    kind: str = "image"  # "image" or "sheet" (then an atlas JSON sits next to the PNG)
    files: list[str] = field(default_factory=list)  # every file written (PNG, .meta, atlas, .ron, manifest)
    snippet: str = ""  # Rust code loading it, for the project's Bevy version

    def to_json(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- server facts

_facts_cache: dict[str, dict] = {}
_facts_lock = threading.Lock()


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def _models_dir_from_argv(argv: list[str]) -> Path | None:
    """ComfyUI's models folder from its command line (``--base-directory`` or main.py's folder)."""
    base = None
    for i, a in enumerate(argv):
        if a == "--base-directory" and i + 1 < len(argv):
            base = Path(argv[i + 1])
        elif a.startswith("--base-directory="):
            base = Path(a.split("=", 1)[1])
    if base is None and argv and argv[0].endswith("main.py"):
        base = Path(argv[0]).parent
    # A relative path is relative to the server's working folder, unknown here.
    if base is None or not base.is_absolute():
        return None
    m = base / "models"
    return m if m.is_dir() else None


def server_facts(client) -> dict:
    """ComfyUI version, and its models folder when the server runs on this machine (cached per server)."""
    key = client.url
    with _facts_lock:
        if key in _facts_cache:
            return _facts_cache[key]
    facts: dict[str, Any] = {"server": client.display_url, "comfyui_version": None, "models_dir": None}
    try:
        stats = client.system_stats()
        system = stats.get("system") or {}
        facts["comfyui_version"] = system.get("comfyui_version")
        if _is_local(client.url):
            md = _models_dir_from_argv([str(a) for a in system.get("argv") or []])
            facts["models_dir"] = str(md) if md else None
    except DgxPixelsError:
        pass
    with _facts_lock:
        _facts_cache[key] = facts
    return facts


_hash_cache: dict[tuple, str] = {}


def _model_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _hash_cache:
        return _hash_cache[key]
    # A model from the manifest with the published size was verified on download: trust its hash.
    try:
        from orchestrator.models import load_manifest

        for e in load_manifest():
            if e.file == path.name and e.size == st.st_size and e.sha256:
                _hash_cache[key] = e.sha256
                return e.sha256
    except Exception:  # noqa: BLE001 - no manifest: hash the file
        pass
    _hash_cache[key] = sha256_file(path)
    return _hash_cache[key]


def model_records(names: Iterable[str], models_dir: str | os.PathLike | None) -> list[dict]:
    """``[{name, sha256}]`` for model files; sha256 is None when the file is not on this machine."""
    out = []
    root = Path(models_dir) if models_dir else None
    for name in names:
        rec: dict[str, Any] = {"name": name, "sha256": None}
        if root is not None and root.is_dir() and "\x00" not in name:
            rel = Path(name)
            if not rel.is_absolute() and ".." not in rel.parts:
                for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                    cand = folder / rel
                    if cand.is_file():
                        rec["sha256"] = _model_sha256(cand)
                        rec["folder"] = folder.name
                        break
        out.append(rec)
    return out


def node_pack_version() -> str:
    from orchestrator import __version__

    return __version__


def build_provenance(result, output, *, client=None, deploy_id: str | None = None) -> dict:
    """The provenance record of one output of a ``RunResult``."""
    from comfy_nodes.pixel.asset_manifest import now_iso

    facts = server_facts(client) if client is not None else {"server": result.server, "comfyui_version": result.comfyui_version, "models_dir": None}
    return {
        "workflow": result.workflow,
        "content_hash": result.content_hash,
        "params": result.params,
        "seed": result.seed,
        "models": model_records(result.models, facts.get("models_dir")),
        "comfyui_version": facts.get("comfyui_version") or result.comfyui_version,
        "node_pack_version": node_pack_version(),
        "server": facts.get("server") or result.server,
        "prompt_id": result.prompt_id,
        "cached": output.cached,
        "source": {"node_id": output.node_id, "node_type": output.node_type, "filename": output.server_filename,
                   "sha256": output.sha256, "size": output.size},
        "deploy_id": deploy_id,
        "time": now_iso(),
    }


# --------------------------------------------------------------------------- targets


def asset_paths_for(names: list[str], asset_path: str) -> list[str]:
    """Asset paths for ``len(names)`` outputs from one ``--asset-path``.

    One output: ``asset_path`` itself (a folder ending in ``/`` gets the output's name).
    Several: ``sprites/x.png`` → ``sprites/x-1.png``, ``sprites/x-2.png``...; a folder → one
    file per output named after it.
    """
    from orchestrator.run import safe_filename

    if not asset_path:
        raise ExportError("no asset path given", hint="pass --asset-path sprites/name.png")
    if asset_path.endswith("/"):
        out = []
        for n in names:
            base = safe_filename(n)
            if not base.lower().endswith(".png"):
                base = base.rsplit(".", 1)[0] + ".png"
            out.append(asset_path + base)
        return out
    if len(names) == 1:
        return [asset_path]
    stem = asset_path[:-4] if asset_path.lower().endswith(".png") else asset_path
    return [f"{stem}-{i}.png" for i in range(1, len(names) + 1)]


def frame_count(path: str | os.PathLike) -> int:
    """Frames in an image file: 1 for a still image, n for an animated GIF, APNG or WebP (or a
    multi-page TIFF); 1 when Pillow cannot tell (decoding the file reports that itself)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return max(1, int(getattr(img, "n_frames", 1)))
    except Exception:  # noqa: BLE001 - unreadable: load_image names the problem
        return 1


def _animation_refused(path: Path, frames: int) -> str:
    return (f"{path} is an animation of {frames} frames, and deploy writes one still image "
            "(only its first frame would reach the game)")


def _animation_hint(path: Path) -> str:
    return (f"lay its frames out as a sprite sheet: `dgx-pixels export {path} --bevy PROJECT --path sprites/NAME.png` "
            "(atlas JSON and its animation included)")


def check_not_onto_itself(source: str | os.PathLike, project: str | os.PathLike, asset_path: str,
                          assets_dir: str = "assets", *, shown: str | None = None) -> None:
    """``InvalidArgumentError`` when ``source`` is the very file ``asset_path`` names in the
    project: deployed onto itself, an asset would be rewritten from itself (an upscale
    compounding on every run) and its record would name it as its own source, losing the
    provenance it had. ``shown``: the file as the user gave it, for the message."""
    text = (asset_path or "").strip()
    if not text:
        return
    src = Path(source)
    target = Path(project) / assets_dir / text
    try:
        same = target.resolve() == src.resolve() or (target.exists() and src.exists() and os.path.samefile(src, target))
    except (OSError, ValueError):
        return  # a path the export refuses with its own message (ValueError: a NUL byte)
    if same:
        raise InvalidArgumentError(f"file {shown if shown is not None else str(src)!r} is the asset {text!r} itself: "
                                   "nothing to deploy",
                                   hint="deploy the image it was made from, or give another asset path")


def _check_replaceable(assets_root: Path, rel: str, entry: dict | None) -> None:
    """Every item's replace is checked before the first is written (the export checks again,
    under the project's lock): a deploy of several outputs is refused whole, not half done."""
    from comfy_nodes.pixel import bevy_export

    bevy_export.check_replaceable(assets_root, rel, entry)


def _deployed_ids(project: Path, assets_dir: str) -> dict[str, dict]:
    from comfy_nodes.pixel.asset_manifest import read_manifest

    out = {}
    for e in read_manifest(project, assets_dir)["assets"]:
        did = (e.get("provenance") or {}).get("deploy_id")
        if did:
            out[did] = e
    return out


def _entry_files(entry: dict) -> dict[str, str | None]:
    """The files one manifest entry records (asset path -> sha256)."""
    return {f["path"]: f.get("sha256") for f in entry.get("files") or []
            if isinstance(f, dict) and isinstance(f.get("path"), str)}


def _recorded_files(project: Path, assets_dir: str) -> dict[str, str | None]:
    """Every file the project's manifest records (asset path → sha256)."""
    from comfy_nodes.pixel.asset_manifest import read_manifest

    out: dict[str, str | None] = {}
    for e in read_manifest(project, assets_dir)["assets"]:
        out.update(_entry_files(e))
        if isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str):
            out.setdefault(e["path"], e["sha256"])
    return out


_MAX_VERSIONS_SCANNED = 200


def _clear_interrupted(project: Path, assets_dir: str, it: "_Item", img: Any, *, upscale: int,
                       bevy_version: str | None) -> None:
    """Remove what a deploy of ``it`` killed half way through its commit left in the project,
    so that deploying it again (a resumed batch, the same ``run --bevy``) finishes it.

    The export renames its files into place one by one (.meta, PNG, atlas JSON) and the
    manifest last: a SIGKILL, a power loss or a second Ctrl-C in between leaves files that the
    manifest does not record (or records with other bytes). Every later deploy refused them as
    the user's own ("dgx-pixels never wrote it"), or stepped around them (policy version), and
    a resumed batch could never finish that job. Under the project lock (no export is between
    its first and last rename then): a file at one of this item's targets that the manifest
    does not record as it is, and whose bytes are exactly the ones this deploy writes there,
    is that torn commit and is removed (the export writes it again, with its record); so are
    the temp files of a killed export. A file with any other content is left as it is.
    """
    from comfy_nodes.pixel import asset_manifest, bevy_export
    from comfy_nodes.pixel.safepath import check_relative, confine, remove_confined

    assets_root = project / assets_dir
    try:
        rel = check_relative(it.asset_path, assets_root).as_posix()
    except DgxPixelsError:
        return  # refused with its own message by the export
    if not rel.lower().endswith(".png"):
        return
    rel = rel[:-4] + ".png"
    stem = rel[:-4]
    bases = [rel]
    for n in range(2, _MAX_VERSIONS_SCANNED):
        v = f"{stem}-{n}.png"
        if not any((assets_root / name).exists() for name in (v, v + ".meta")):
            break
        bases.append(v)

    def names(base: str) -> list[str]:
        return [base, base + ".meta", base[:-4] + ".json"]

    def debris() -> list[Path]:
        # every folder searched (and every file then removed) is confined to the assets folder:
        # a .dgx-pixels/ or an asset folder that is a symlink leading out is never swept
        mdir = confine(assets_root, asset_manifest.MANIFEST_DIR)
        found = list(mdir.glob(glob.escape(f".{asset_manifest.MANIFEST_NAME}.") + "*.tmp")) if mdir.is_dir() else []
        for base in bases:
            for name in names(base):
                p = confine(assets_root, name)
                if p.parent.is_dir():
                    found += p.parent.glob(glob.escape(f".{p.name}.") + "*.tmp")
        return found

    def suspects(recorded: dict[str, str | None]) -> dict[str, list[tuple[str, Path]]]:
        out: dict[str, list[tuple[str, Path]]] = {}
        for base in bases:
            for name in names(base):
                p = confine(assets_root, name, action="read")
                if p.is_file() and not (assets_root / name).is_symlink() and (name not in recorded or sha256_file(p) != recorded[name]):
                    out.setdefault(base, []).append((name, p))
        return out

    try:
        if not suspects(_recorded_files(project, assets_dir)) and not debris():
            return
        version = bevy_export.resolve_bevy_version(project, bevy_version).short
    except (DgxPixelsError, OSError):
        return  # the export itself reports what is wrong
    import tempfile

    # What this deploy writes at each candidate name, from an export into a scratch project.
    expected: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dgx-pixels-redo-") as scratch:
            for i, base in enumerate(bases):
                common = dict(bevy_version=version, overwrite="fail", upscale=upscale, create_project=True)
                where = Path(scratch) / str(i)
                if it.sheet_layout is not None:
                    res = bevy_export.export_sheet(where, base, img, atlas=True, **common)
                else:
                    res = bevy_export.export_asset(where, base, img, **common)
                for f in res.files:
                    if f.kind != "manifest":
                        expected[f.asset_path] = f.sha256
    except (DgxPixelsError, OSError):
        return
    with asset_manifest.project_lock(project, assets_dir):
        # removed by name inside their folder, never through one swapped for a symlink since
        for tmp in debris():
            with contextlib.suppress(FileNotFoundError):
                remove_confined(assets_root, tmp)
        for found in suspects(_recorded_files(project, assets_dir)).values():
            for name, p in found:
                if expected.get(name) is not None and sha256_file(p) == expected[name]:
                    with contextlib.suppress(FileNotFoundError):
                        remove_confined(assets_root, p)


@dataclass
class _Item:
    source: Path
    sha256: str
    asset_path: str
    provenance: dict
    deploy_id: str | None
    sheet_layout: dict | None = None  # from sheet_deploy.sheet_layout: deploy as a sheet
    animations: str | None = None  # replaces the sheet's animations
    image: Any = None  # the file's pixels when already decoded (a local file checked up front)


def _deploy_items(
    items: list[_Item],
    project: str | os.PathLike,
    *,
    overwrite: str,
    upscale: int,
    bevy_version: str | None,
    assets_ron: bool | str,
    assets_dir: str,
    create_project: bool,
    on_event: EventFn | None,
    label: str | None = None,
) -> list[DeployedAsset]:
    from comfy_nodes.pixel import bevy_export
    from comfy_nodes.pixel.imageio import load_image
    from comfy_nodes.pixel.safepath import check_relative, confine, confine_assets_dir
    from orchestrator.sheet_deploy import sheet_from_output

    from comfy_nodes.pixel.asset_manifest import read_manifest

    project = Path(project)
    # before the manifest there is read or a torn commit swept: an assets folder leading out of
    # the project through a symlink would have them read and remove files elsewhere
    confine_assets_dir(project, assets_dir)
    if not create_project:
        bevy_export.require_project_folder(project)
    # Everything is checked before anything is written.
    images = []
    for it in items:
        check_not_onto_itself(it.source, project, it.asset_path, assets_dir)
        if not it.source.is_file():
            raise ExportError(f"output {it.source} is missing; nothing deployed", hint="run the job again")
        actual = sha256_file(it.source)
        if actual != it.sha256:
            raise ExportError(f"output {it.source} changed since it was downloaded (sha256 {actual[:12]} != {it.sha256[:12]}); nothing deployed",
                              hint="run the job again")
        try:
            img = it.image if it.image is not None else load_image(it.source)
        except InputImageError as exc:
            raise ExportError(f"output {it.source} is not a usable image ({exc.message}); nothing deployed") from None
        if it.image is None and (n := frame_count(it.source)) > 1:
            raise ExportError(f"output {_animation_refused(it.source, n)}; nothing deployed",
                              hint=_animation_hint(it.source))
        if it.sheet_layout is not None:
            try:
                img = sheet_from_output(img, it.sheet_layout, it.animations)
            except DgxPixelsError as exc:
                raise ExportError(f"output {it.source} does not match the sheet layout of the graph that made it "
                                  f"({exc.message}); nothing deployed", hint=exc.hint) from None
        images.append(img)
        rel = check_relative(it.asset_path, project / assets_dir).as_posix()
        if not rel.lower().endswith(".png"):
            raise InvalidArgumentError(f"asset path {it.asset_path!r} must end in .png", hint="e.g. sprites/knight.png")
        if (project / assets_dir).exists():
            confine(project / assets_dir, rel)
    done_ids = _deployed_ids(project, assets_dir) if project.is_dir() else {}
    if (project / assets_dir).is_dir():
        for it, img in zip(items, images):
            if not (it.deploy_id and it.deploy_id in done_ids):
                _clear_interrupted(project, assets_dir, it, img, upscale=upscale, bevy_version=bevy_version)
    if overwrite == "replace" and (project / assets_dir).is_dir():
        recorded = {e["path"]: e for e in read_manifest(project, assets_dir)["assets"]}
        for it in items:
            if not (it.deploy_id and it.deploy_id in done_ids):
                rel = check_relative(it.asset_path, project / assets_dir).as_posix()
                rel = rel[:-4] + ".png"  # the name the export writes (sprites/K.PNG -> sprites/K.png)
                _check_replaceable(project / assets_dir, rel, recorded.get(rel))
    results = []
    for it, img in zip(items, images):
        prior = done_ids.get(it.deploy_id) if it.deploy_id else None
        if prior is not None:
            results.append(DeployedAsset(prior["path"], str(project / assets_dir / prior["path"]), prior.get("sha256", ""),
                                         str(it.source), it.sha256, it.deploy_id, already=True))
            continue
        common = dict(bevy_version=bevy_version, overwrite=overwrite, upscale=upscale, assets_ron=assets_ron,
                      provenance=it.provenance, assets_dir=assets_dir, create_project=create_project)
        if it.sheet_layout is not None:
            res = bevy_export.export_sheet(project, it.asset_path, img, atlas=True, **common)
        else:
            res = bevy_export.export_asset(project, it.asset_path, img, **common)
        png = res.file("png")
        d = DeployedAsset(res.asset_path, str(png.path) if png else str(res.assets_root / res.asset_path),
                          png.sha256 if png else "", str(it.source), it.sha256, it.deploy_id, skipped=res.skipped,
                          kind="sheet" if it.sheet_layout is not None else "image",
                          files=[str(f.path) for f in res.files], snippet=res.snippet)
        results.append(d)
        if on_event is not None:
            ev = {"event": "deployed", "asset": d.asset_path, "path": d.path, "skipped": d.skipped,
                  "deploy_id": it.deploy_id, "t": time.time()}
            if label is not None:
                ev["job"] = label
            on_event(ev)
    return results


def deploy_outputs(
    result,
    project: str | os.PathLike,
    asset_path: str,
    *,
    overwrite: str = "replace",
    upscale: int = 1,
    bevy_version: str | None = "auto",
    assets_ron: bool | str = False,
    assets_dir: str = "assets",
    create_project: bool = False,
    client=None,
    deploy_id: str | None = None,
    on_event: EventFn | None = None,
    label: str | None = None,
    prompt: dict | None = None,
    animations: str | None = None,
) -> list[DeployedAsset]:
    """Deploy every output of a ``RunResult`` into a Bevy project; the library entry point.

    ``asset_path`` names the asset (``sprites/knight.png``; several outputs become
    ``knight-1.png``, ``knight-2.png``...; ``sprites/`` keeps the output names). ``deploy_id``
    makes the deploy idempotent (default: the prompt id). ``client`` (the ``ComfyClient`` the
    job ran on) adds ComfyUI's version and model hashes to the provenance. ``prompt`` (the
    API-format graph that was submitted): an output a SaveImage took from a Sprite Sheet or
    Tileset node is deployed as a sheet, with its atlas JSON; ``animations`` (``walk:0-3@8``)
    then replaces the animations the graph gave the sheet. Nothing is written unless every
    output is present, unchanged, decodable and (for a sheet) matches its layout.
    """
    from orchestrator.sheet_deploy import sheet_layout

    outputs = list(result.outputs)
    if not outputs:
        raise ExportError("the job has no outputs to deploy")
    base_id = deploy_id or result.prompt_id
    paths = asset_paths_for([o.server_filename for o in outputs], asset_path)
    items = []
    for i, (o, ap) in enumerate(zip(outputs, paths)):
        did = f"{base_id}:{i}" if base_id else None
        layout = (sheet_layout(prompt, o.node_id, result.sheets)
                  if prompt and o.path.lower().endswith(".png") else None)
        items.append(_Item(Path(o.path), o.sha256, ap, build_provenance(result, o, client=client, deploy_id=did), did,
                           sheet_layout=layout, animations=animations if layout is not None else None))
    return _deploy_items(items, project, overwrite=overwrite, upscale=upscale, bevy_version=bevy_version,
                         assets_ron=assets_ron, assets_dir=assets_dir, create_project=create_project,
                         on_event=on_event, label=label)


def deploy_file(
    path: str | os.PathLike,
    project: str | os.PathLike,
    asset_path: str,
    *,
    overwrite: str = "replace",
    upscale: int = 1,
    bevy_version: str | None = "auto",
    assets_ron: bool | str = False,
    assets_dir: str = "assets",
    create_project: bool = False,
    provenance: dict | None = None,
    deploy_id: str | None = None,
    on_event: EventFn | None = None,
) -> DeployedAsset:
    """Deploy a local image file (``dgx-pixels deploy``, ``watch``). Provenance: the file itself
    (name, sha256) plus what ComfyUI wrote into a PNG's text chunks, plus ``provenance``.

    Refused: an animated GIF, APNG or WebP (``InputImageError``: one still image would hold only
    its first frame), the asset file itself as ``path`` (``InvalidArgumentError``), and with
    ``overwrite="replace"`` a file at the asset path that dgx-pixels did not write or that was
    edited since (``ExportError``)."""
    from comfy_nodes.pixel.asset_manifest import now_iso
    from comfy_nodes.pixel.imageio import load_image

    p = Path(path)
    if not p.is_file():
        # a device or a pipe (/dev/zero) exists: "not found" would send the user looking for it
        why = (f"{p} is a folder, not an image file" if p.is_dir() else
               f"{p} is not a regular file (a device, pipe or socket)" if p.exists() else f"file not found: {p}")
        raise InputImageError(why, hint="deploy takes one image file; `dgx-pixels export` lays a folder of frames out as a sheet")
    try:
        pixels = load_image(p)  # before anything else: an unreadable file is bad input, not a refused deploy
    except InputImageError as exc:
        raise InputImageError(exc.message, hint="deploy takes an image file (PNG, or any format Pillow reads)") from None
    frames = frame_count(p)
    if frames > 1:
        raise InputImageError(_animation_refused(p, frames), hint=_animation_hint(p))
    digest = sha256_file(p)
    prov = {"source": {"file": str(p.resolve()), "sha256": digest, "size": p.stat().st_size},
            "node_pack_version": node_pack_version(), "time": now_iso(), "deploy_id": deploy_id}
    prov.update(png_workflow_facts(p))
    if provenance:
        prov.update(provenance)
    prov["deploy_id"] = deploy_id
    item = _Item(p, digest, asset_path, prov, deploy_id, image=pixels, sheet_layout=_recorded_sheet(p, pixels))
    return _deploy_items([item], project, overwrite=overwrite, upscale=upscale, bevy_version=bevy_version,
                         assets_ron=assets_ron, assets_dir=assets_dir, create_project=create_project,
                         on_event=on_event)[0]


def _recorded_sheet(path: Path, pixels) -> dict | None:
    """A sheet layout (as ``sheet_deploy.sheet_layout`` gives) for a PNG that ``dgx-pixels
    sheet`` made, which records its grid: deployed as a sheet, with its atlas, not as one
    sprite. None for any other image, and for a record the image no longer fits (said)."""
    import json
    import sys

    from comfy_nodes.pixel.imageio import png_text
    from comfy_nodes.pixel.sheet import LAYOUT_KEY, recorded_layout

    text = png_text(path)
    layout, why = recorded_layout(text, pixels.shape[1], pixels.shape[0])
    if layout is None:
        if why:
            print(f"warning: {path}: {why}; deployed as one image", file=sys.stderr)
        return None
    return {"kind": "DGXPixelsSpriteSheet", "record": {"layout": json.loads(text[LAYOUT_KEY]), "animations": ""}}


def check_asset_policy(project: str, asset_path: str, overwrite: str) -> None:
    """Refuse BEFORE the job runs what the deploy would surely refuse after it, for an asset
    the project's manifest records: with ``fail`` that it is there at all, with ``replace``
    that it was edited since it was deployed. A file the manifest does not record is left to
    the deploy: it may be the user's own art (refused then) or what a deploy of this very job
    killed half way through its commit left (swept then), which only the job's bytes tell
    apart. The deploy checks everything again: the asset may appear while the job runs."""
    from comfy_nodes.pixel.errors import ExportError
    from comfy_nodes.pixel.safepath import check_relative, confine

    if asset_path.endswith("/"):
        return  # the names come from the outputs
    assets = Path(project) / "assets"
    rel = check_relative(asset_path, assets).as_posix()
    if not rel.lower().endswith(".png"):
        raise InvalidArgumentError(f"asset path {asset_path!r} must end in .png; nothing was submitted",
                                   hint="e.g. sprites/knight.png")
    if overwrite not in ("fail", "replace") or not assets.is_dir():
        return  # keep and version never refuse
    rel = rel[:-4] + ".png"  # the name the export writes (sprites/K.PNG -> sprites/K.png)
    from comfy_nodes.pixel.asset_manifest import read_manifest

    entry = {e["path"]: e for e in read_manifest(Path(project), "assets")["assets"]}.get(rel)
    if entry is None:
        return
    if overwrite == "fail":
        path = confine(assets, rel, action="read")
        if os.path.lexists(path):
            raise ExportError(f"{path} already exists (--overwrite fail); nothing was submitted",
                              hint="choose another --overwrite policy: replace, keep or version (writes name-2.png)")
        return
    try:
        # the same test the deploy makes
        _check_replaceable(assets, rel, entry)
    except ExportError as exc:
        raise ExportError(f"{exc.message}; nothing was submitted", hint=exc.hint) from None


def parse_provenance_option(text: str, option: str = "--provenance") -> dict:
    """The JSON object of a ``--provenance`` option (export, deploy), stored in the manifest.

    ``InvalidArgumentError`` naming the option for invalid JSON, JSON nested too deeply to read
    (which ``json`` reports as a RecursionError), NaN / Infinity (Python reads them, but the
    manifest would then be no JSON for the game's tools: Rust's serde_json, JavaScript) and
    anything but an object."""
    from comfy_nodes.pixel.asset_manifest import NotFiniteError, loads_json

    try:
        value = loads_json(text, finite=True)
    except NotFiniteError as exc:
        raise InvalidArgumentError(f"{option} is not valid JSON: {exc}",
                                   hint="write a number, or null, in its place") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"{option} is not valid JSON: {exc}",
                                   hint=f"give a JSON object, e.g. {option} '{{\"seed\": 7, \"note\": \"hand-fixed\"}}'") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{option} must be a JSON object", hint=f"e.g. {option} '{{\"seed\": 7}}'")
    return value


def png_workflow_facts(path: Path) -> dict:
    """Seed and model names from the prompt ComfyUI's SaveImage embeds in a PNG, when present."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            text = dict(getattr(img, "text", {}) or {})
    except Exception:  # noqa: BLE001 - not a PNG with text: no facts
        return {}
    raw = text.get("prompt")
    if not raw:
        return {}
    from comfy_nodes.pixel.asset_manifest import loads_json

    try:
        # finite: a NaN seed would make the manifest no JSON; nested past reading: unreadable,
        # ignored like any other broken prompt (the deploy itself does not depend on it)
        prompt = loads_json(raw, finite=True)
    except ValueError:
        return {}
    if not isinstance(prompt, dict):
        return {}
    from orchestrator.run import find_models, find_seed

    try:
        return {"seed": find_seed(prompt), "models": [{"name": m, "sha256": None} for m in find_models(prompt)],
                "embedded_prompt": True}
    except Exception:  # noqa: BLE001 - malformed embedded prompt
        return {}
