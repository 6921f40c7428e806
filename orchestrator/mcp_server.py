"""MCP server: lets an assistant generate sprites straight into a Bevy game.

Built with FastMCP on the orchestrator and the pixel core (the same functions as the CLI).
Configuration is fixed at start: the ComfyUI server URL(s) and the Bevy project roots the
server may touch. Every path a tool receives is confined to those roots (no ``..``, no
absolute path elsewhere, no symlink leading out); the server reads and writes nothing else.
Errors come back as MCP tool errors carrying the CLI's message and hint.

Long jobs run in a worker thread; their progress is relayed as MCP progress notifications
and kept in a job table that ``job_status`` and ``cancel`` read.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastmcp import Context, FastMCP
from fastmcp.exceptions import ResourceError, ToolError
from fastmcp.tools.base import ToolResult
from mcp.types import ImageContent, TextContent
from pydantic import Field

from comfy_nodes.pixel.errors import DgxPixelsError, InvalidArgumentError, PathEscapeError
from orchestrator.commands.outputs import check_writable

# Previews are small on purpose: an assistant needs to see the sprite, not a 4K image.
PREVIEW_MAX_SIDE = 256
#: The preview of an animation shows at most this many of its frames, side by side.
PREVIEW_FRAMES = 8


@dataclass
class ServerSettings:
    """What the MCP server may do: where ComfyUI is and which Bevy projects it may touch."""

    servers: list[str]
    bevy_roots: list[Path]
    out_dir: Path  # where job outputs are downloaded before deployment (a temp folder)
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.bevy_roots:
            raise InvalidArgumentError("the MCP server needs at least one Bevy project root",
                                       hint="pass --bevy-root DIR (repeatable)")
        roots = []
        for r in self.bevy_roots:
            p = Path(os.path.expanduser(str(r)))
            if not p.is_dir():
                raise InvalidArgumentError(f"Bevy root {p} is not a folder", hint="create it or fix --bevy-root")
            roots.append(Path(os.path.realpath(p)))
        self.bevy_roots = roots


@dataclass
class Job:
    """A generate job: its state, last progress and result, and its cancel switch."""

    id: str
    workflow: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    progress: float = 0.0
    total: float = 0.0
    message: str = ""
    node: str | None = None
    result: dict | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    #: called (from the worker thread) after every progress change and at the end
    listeners: list = field(default_factory=list)

    def changed(self) -> None:
        for fn in list(self.listeners):
            try:
                fn()
            except RuntimeError:  # the waiting call's event loop is gone (client left)
                self.listeners.remove(fn)

    def status(self) -> dict:
        return {
            "id": self.id, "workflow": self.workflow, "state": self.state, "progress": self.progress,
            "total": self.total, "message": self.message, "node": self.node, "error": self.error,
            "result": self.result, "elapsed_s": round((self.finished or time.time()) - self.started, 3),
        }


def _inside(child: Path, root: Path) -> bool:
    return child == root or root in child.parents


# The parameters' descriptions in the tools' schemas, shared by the tools that take them.
FILE_DOC = "inside an allowed Bevy project folder: absolute, or relative to the first one"
PROJECT_DOC = "a configured Bevy project: its folder path, or its folder name"
ASSET_PATH_DOC = "where it goes under the project's assets/, e.g. 'sprites/knight.png' (what asset_server.load takes)"
ANIMATIONS_DOC = ("named frame ranges with frames per second, e.g. 'idle:0-3@8, walk:4-7@12, jump:8-11@10:pingpong' "
                  "(direction forward, reverse or pingpong)")
PALETTE_DOC = ("a built-in palette name (list_palettes: pico-8, nes, gameboy...) or a .hex/.gpl/.pal/.txt/.png palette "
               "file " + FILE_DOC)
OUTPUT_OVERWRITE_DOC = "replace an existing output file (never an asset deployed into a project: use deploy for that)"
WORKFLOW_DOC = "'sprite', 'animation', 'tileset', 'pixelize', 'cleanup' (list_workflows), optionally with '@version'"

#: deploy's policies for an asset path that is taken (as the CLI's --overwrite)
OVERWRITE_POLICIES = ("replace", "keep", "version", "fail")
Overwrite = Literal["replace", "keep", "version", "fail"]
Dither = Literal["none", "bayer2", "bayer4", "bayer8", "floyd-steinberg", "atkinson"]


class Confinement:
    """Resolves every path a tool receives against the configured roots, or refuses it."""

    def __init__(self, roots: list[Path]):
        self.roots = roots

    def _describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def project(self, name_or_path: str) -> Path:
        """A Bevy project: a configured root, a folder inside one, or a root's folder name."""
        from comfy_nodes.pixel.safepath import RootConfig, resolve_project

        project = resolve_project(name_or_path, RootConfig(tuple(self.roots), None, ("--bevy-root",)))
        # A misspelt project would otherwise read as an empty manifest, or fail only after a
        # whole ComfyUI job has run.
        if not project.is_dir():
            raise InvalidArgumentError(f"no Bevy project {name_or_path!r}: {project} is not a folder",
                                       hint=f"name a project folder inside the allowed Bevy roots ({self._describe()})")
        return project

    def file(self, path: str, *, must_exist: bool = True, write: bool | None = None) -> Path:
        """A file named by the user: absolute inside a root, or relative to the first root.
        ``write`` (default: ``not must_exist``): a file a tool writes, never in ``.dgx-pixels/``."""
        write = (not must_exist) if write is None else write
        from comfy_nodes.pixel.safepath import confine

        text = (path or "").strip()
        if not text:
            raise InvalidArgumentError("no file path given")
        if "\x00" in text:
            raise PathEscapeError(f"refusing {text!r}: the path contains a NUL byte",
                                  hint="name a file inside one of the roots the server was started with")
        expanded = os.path.expanduser(text)
        if os.path.isabs(expanded):
            real = Path(os.path.realpath(expanded))
            if not any(_inside(real, r) for r in self.roots):
                raise PathEscapeError(f"refusing {text!r}: it is outside the allowed Bevy roots ({self._describe()})",
                                      hint="name a file inside one of the roots the server was started with")
            target = real
        else:
            target = confine(self.roots[0], text, action="write" if write else "read",
                             hint=f"give a path relative to {self.roots[0]} (or absolute inside a root), without '..'")
        if write:
            self._not_bookkeeping(text, target)
        if must_exist and not target.is_file():
            raise InvalidArgumentError(f"file not found: {target}")
        return target

    def write_png(self, target: Path, rgba) -> Path:
        """Write an image as PNG to ``target`` (a path :meth:`file` gave) atomically. The write
        does not follow a folder on the way swapped for a symlink after :meth:`file` checked it
        (the whole snap runs in between): ``PathEscapeError``, nothing written outside."""
        from comfy_nodes.pixel.imageio import png_bytes
        from comfy_nodes.pixel.safepath import write_confined

        root = next((r for r in self.roots if _inside(target, r)), None)
        if root is None:
            raise PathEscapeError(f"refusing to write {str(target)!r}: it is outside the allowed Bevy roots "
                                  f"({self._describe()})",
                                  hint="name a file inside one of the roots the server was started with")
        return write_confined(root, target, png_bytes(rgba),
                              hint="name a file inside one of the roots the server was started with")

    def check_output(self, text: str, target: Path, overwrite: bool) -> None:
        """Refuse an output file a tool would write over: any existing file unless
        ``overwrite``, and never an asset a project's manifest records (its .meta and
        provenance would then describe other pixels: ``deploy`` replaces an asset with them)."""
        from comfy_nodes.pixel.asset_manifest import read_manifest

        for assets in (d for d in target.parents if d.name == "assets"):
            project = assets.parent
            if not any(_inside(project, r) for r in self.roots):
                break
            rel = target.relative_to(assets).as_posix()
            if any(e.get("path") == rel for e in read_manifest(project, "assets").get("assets", [])):
                raise InvalidArgumentError(
                    f"output {text!r} is the asset {rel} that dgx-pixels deployed into {project}: written over, its "
                    ".meta and provenance record would describe other pixels",
                    hint="write the image elsewhere, then deploy it to that asset path (deploy replaces an asset "
                         "together with its records)")
            break
        if not overwrite and os.path.lexists(target):
            raise InvalidArgumentError(f"output {text!r} exists ({target}): a tool replaces a file only when asked",
                                       hint="give overwrite=true to replace it, or another output name")

    def _not_bookkeeping(self, text: str, target: Path) -> None:
        """A tool never writes into a project's ``assets/.dgx-pixels/`` (the manifest, its lock,
        a watcher's state): those files are DGX-Pixels' own records."""
        from comfy_nodes.pixel.asset_manifest import MANIFEST_DIR

        root = next((r for r in self.roots if _inside(target, r)), None)
        parts = target.relative_to(root).parts if root is not None else target.parts
        if any(part.lower() == MANIFEST_DIR for part in parts[:-1]):
            raise PathEscapeError(f"refusing to write {text!r}: {MANIFEST_DIR}/ holds DGX-Pixels' own records",
                                  hint=f"choose a path outside {MANIFEST_DIR}/")


def _preview_png(rgba) -> bytes:
    """A PNG no larger than PREVIEW_MAX_SIDE a side: a small sprite enlarged by a whole factor
    (nearest), a larger image shrunk by keeping every n-th pixel. An assistant needs to see the
    sprite, and a full-size preview (1536x1024 quantised, 1.7 MB of base64) floods its context."""
    from comfy_nodes.pixel.imageio import png_bytes, upscale_nearest

    h, w = rgba.shape[:2]
    if max(h, w) > PREVIEW_MAX_SIDE:
        step = -(-max(h, w) // PREVIEW_MAX_SIDE)
        return png_bytes(rgba[::step, ::step])
    scale = max(1, PREVIEW_MAX_SIDE // max(h, w))
    return png_bytes(upscale_nearest(rgba, scale))


# The core's messages name its own arguments (and the CLI's --set), which a tool's caller never
# sees: per tool, each core name passed a tool parameter under another name -> that parameter.
SNAP_IMAGE_NAMES = {"cell_w": "cell", "cell_h": "cell", "k": "colors"}
GENERATE_NAMES = {"--set": "params"}
_LEADING_NAME = re.compile(r"(--)?[A-Za-z_]\w*(?=\s)")
_SET_VALUE = re.compile(r"--set (\w+)=VALUE")


def _renamed(text: str, names: dict[str, str]) -> str:
    """``text`` with the core names of ``names`` replaced: as the subject a message starts
    with ("k must be 1..256"), and in a ``--set NAME=VALUE`` example. Only there, so a file
    name or a word elsewhere in the text that happens to match is left alone."""
    if not text or not names:
        return text
    m = _LEADING_NAME.match(text)
    if m and m.group(0) in names:
        text = names[m.group(0)] + text[m.end():]
    if "--set" in names:
        text = _SET_VALUE.sub(lambda v: f'{names["--set"]}={{"{v.group(1)}": VALUE}}', text)
    return text


# The core's default hints point at the CLI (--help, --cell, `dgx-pixels palette list`); a
# tool's caller has the tool descriptions and list_palettes instead.
TOOL_HINTS = {
    "InvalidArgumentError": "the tool's description says what each parameter takes",
    "ServerUnreachableError": "start ComfyUI, or give this MCP server the ComfyUI it should use (dgx-pixels mcp "
                              "--server URL; default http://127.0.0.1:8188)",
    "ParameterError": "describe_workflow lists the parameters with types and defaults",
    "WorkflowError": "list_workflows shows the workflows and their versions",
    "NoGridFoundError": "give snap_image the cell size (cell) or the target size (width and height)",
    "PaletteError": "use a built-in name (list_palettes) or a .hex/.gpl/.pal/.txt/.png file inside the allowed Bevy roots",
}


def _tool_error(exc: DgxPixelsError, names: dict[str, str] | None = None) -> ToolError:
    hint = exc.hint
    if hint and hint == type(exc).default_hint:
        hint = next((TOOL_HINTS[c.__name__] for c in type(exc).__mro__ if c.__name__ in TOOL_HINTS), hint)
    message, hint = _renamed(exc.message, names or {}), _renamed(hint, names or {})
    # a refusal is the client's answer, not the server's failure: logged below the server's
    # level, so its log gets no "Error calling tool" line (nor, for a resource, a traceback)
    return ToolError(message + (f" (hint: {hint})" if hint else ""), log_level=logging.DEBUG)


class PixelMCP:
    """The tools, resources and job table of one MCP server instance."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.paths = Confinement(settings.bevy_roots)
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # --- workflows -------------------------------------------------------------------------

    def list_workflows(self) -> list[dict]:
        from orchestrator.workflows import load_registry

        out = []
        for wf in load_registry().list():
            out.append({"name": wf.name, "version": wf.version, "ref": f"{wf.name}@{wf.version}",
                        "description": wf.description, "parameters": sorted(wf.params)})
        return out

    def describe_workflow(self, name: str) -> dict:
        from orchestrator.workflows import load_registry

        wf = load_registry().get(name)
        params = {}
        for pname, p in wf.params.items():
            params[pname] = {k: v for k, v in _param_dict(p).items() if v is not None}
        return {"name": wf.name, "version": wf.version, "ref": f"{wf.name}@{wf.version}",
                "description": wf.description, "parameters": params,
                "models": [_plain(m) for m in wf.models], "required_nodes": sorted(wf.required_nodes)}

    # --- generate --------------------------------------------------------------------------

    def start_job(self, workflow: str, params: dict | None, bevy_project: str, asset_path: str,
                  animations: str | None = None, overwrite: str = "replace") -> Job:
        """Validate everything that can be validated up front, then run the job in a thread."""
        from comfy_nodes.pixel.safepath import check_relative
        from orchestrator.run import drop_server_exports, is_workflow_file, prepare_job

        if is_workflow_file(workflow):
            # a workflow file is read and sent to ComfyUI: only one inside the roots, like any
            # other file a tool reads
            workflow = str(self.paths.file(workflow))
        project = self.paths.project(bevy_project)
        check_relative(asset_path, project / "assets")
        from comfy_nodes.pixel.asset_manifest import MANIFEST_DIR, in_bookkeeping

        if in_bookkeeping(asset_path):
            raise PathEscapeError(f"refusing asset path {asset_path!r}: {MANIFEST_DIR}/ holds DGX-Pixels' own records",
                                  hint="choose a path outside assets/.dgx-pixels/, e.g. sprites/knight.png")
        if not asset_path.lower().endswith(".png"):
            raise InvalidArgumentError(f"asset path {asset_path!r} must end in .png", hint="e.g. sprites/knight.png")
        if overwrite not in OVERWRITE_POLICIES:
            raise InvalidArgumentError(f"overwrite must be one of {', '.join(OVERWRITE_POLICIES)}, got {overwrite!r}")
        # what the deploy would surely refuse, refused before a GPU run whose images no tool
        # could reach afterwards (they wait in the server's temporary folder)
        from comfy_nodes.pixel.bevy_export import check_bevy_project
        from orchestrator.deploy import check_asset_policy

        try:
            check_bevy_project(project)
        except DgxPixelsError as exc:
            raise type(exc)(exc.message + "; nothing was submitted",
                            hint="name the game's folder, the one that holds Cargo.toml and assets/") from None
        check_asset_policy(str(project), asset_path, overwrite)
        if animations:
            # its syntax now, not after a GPU run (its frame ranges need the job's frame count)
            from comfy_nodes.pixel.sheet import parse_animations

            parse_animations(animations)
        spec = prepare_job(workflow, self._confine_files(workflow, dict(params or {})))
        drop_server_exports(spec)  # the job is deployed here: no second copy on the server
        job = Job(id=uuid.uuid4().hex[:12], workflow=spec.workflow or workflow)
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run_job, args=(job, spec, project, asset_path, animations, overwrite),
                         name=f"dgx-pixels-job-{job.id}", daemon=True).start()
        return job

    def _confine_files(self, workflow: str, params: dict) -> dict:
        """Image-file parameters are uploaded from this machine: only files inside the roots."""
        from orchestrator.workflows import load_registry

        try:
            declared = load_registry().get(workflow).params
        except DgxPixelsError:
            return params  # prepare_job reports the unknown workflow with its own message
        for name, value in params.items():
            p = declared.get(name)
            if p is not None and getattr(p, "type", None) == "image-file" and isinstance(value, str):
                params[name] = str(self.paths.file(value))
        return params

    def _run_job(self, job: Job, spec, project: Path, asset_path: str, animations: str | None,
                 overwrite: str = "replace") -> None:
        from orchestrator.run import JobCancelledError, run_workflow

        def on_event(ev: dict) -> None:
            kind = ev.get("event")
            if kind == "progress":
                job.progress, job.total = float(ev.get("value", 0)), float(ev.get("max", 0) or 0)
            if ev.get("node") is not None:
                job.node = str(ev.get("node"))
            job.message = _event_text(ev, spec.prompt)
            job.changed()

        job.state = "running"
        try:
            result = run_workflow(spec.workflow or spec.prompt, spec.params, spec=spec,
                                  server=self.settings.servers[0], out_dir=self.settings.out_dir / job.id,
                                  on_event=on_event, cancel=job.cancel, timeout=self.settings.timeout)
            job.message = "deploying"
            job.result = deploy_result(result, project, asset_path, prompt=spec.prompt, animations=animations,
                                       overwrite=overwrite)
            job.state = "done"
            job.message = "done"
        except JobCancelledError:
            job.state, job.error = "cancelled", "cancelled"
        except DgxPixelsError as exc:
            job.state = "failed"
            job.error = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
        except Exception as exc:  # a worker thread must always leave a readable state behind
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = time.time()
            job.done.set()
            job.changed()

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise InvalidArgumentError(f"no job with id {job_id!r}",
                                       hint="ids come from generate (its job_id); known: " + (", ".join(self.jobs) or "none"))
        return job

    def job_status(self, job_id: str) -> dict:
        return self._job(job_id).status()

    def cancel(self, job_id: str) -> dict:
        job = self._job(job_id)
        if job.state in ("queued", "running"):
            job.cancel.set()
            job.done.wait(30)
        return job.status()

    # --- offline pixel core ----------------------------------------------------------------

    def snap_image(self, path: str, output: str | None = None, cell: float | None = None,
                   width: int | None = None, height: int | None = None, colors: int | None = None,
                   palette: str | None = None, transparent_background: bool = False,
                   overwrite: bool = False) -> tuple[dict, bytes]:
        from comfy_nodes.pixel import grid
        from comfy_nodes.pixel.imageio import load_frames

        # what the CLI refuses as usage, refused here too rather than one of the two dropped
        if cell is not None and (width is not None or height is not None):
            raise InvalidArgumentError("give either a cell size (cell) or a target size (width/height), not both")
        if colors is not None and palette:
            raise InvalidArgumentError("give either colors or palette, not both")
        src = self.paths.file(path)
        frames = load_frames(src)
        if len(frames) > 1:
            return self._snap_frames(src, frames, output, cell, width, height, colors, palette,
                                     transparent_background, overwrite)
        dst = self._png_output(output, src, overwrite)
        res = grid.snap(frames[0], cell=cell, width=width, height=height,
                        background="transparent" if transparent_background else "keep", source=str(src))
        img = res.image
        if colors is not None or palette is not None:
            img = _reduce([img], colors, palette, self.paths)[0]
        info = {"input": str(src), "width": int(img.shape[1]), "height": int(img.shape[0]),
                "grid": res.grid.to_dict()}
        if dst is not None:
            self.paths.write_png(dst, img)
            info["output"] = str(dst)
        return info, _preview_png(img)

    def _snap_frames(self, src: Path, frames: list, output: str | None, cell, width, height, colors, palette,
                     transparent_background: bool, overwrite: bool = False) -> tuple[dict, bytes]:
        """The frames of an animated file on one grid (and one palette), written as
        ``output``/NAME_000.png...; the preview shows them side by side. Every path is checked
        and every frame snapped before the first file is written."""
        import numpy as np

        from comfy_nodes.pixel import grid

        names = [f"{src.stem}_{i:03d}.png" for i in range(len(frames))]
        dsts = []
        if output:
            if output.strip().lower().endswith(".png"):
                raise InvalidArgumentError(f"{src.name} holds {len(frames)} frames, which are written into a folder, "
                                           f"and output {output!r} names a PNG file",
                                           hint=f"give a folder, e.g. {Path(output).stem}/")
            dsts = [self.paths.file(str(Path(output) / name), must_exist=False) for name in names]
            for name, dst in zip(names, dsts):
                check_writable(dst)
                self.paths.check_output(str(Path(output) / name), dst, overwrite)
        results = grid.snap_batch(frames, cell=cell, width=width, height=height,
                                  background="transparent" if transparent_background else "keep")
        g, imgs = results[0].grid, [r.image for r in results]
        if colors is not None or palette is not None:
            imgs = _reduce(imgs, colors, palette, self.paths)
        info = {"input": str(src), "frames": len(imgs), "width": int(imgs[0].shape[1]),
                "height": int(imgs[0].shape[0]), "grid": g.to_dict()}
        off = {f"frame {i}": r.off_grid for i, r in enumerate(results) if r.off_grid}
        if off:
            info["off_grid"] = off  # frames that are no pixel art on the grid the others share
        if dsts:
            for img, dst in zip(imgs, dsts):
                self.paths.write_png(dst, img)
            info["outputs"] = [str(d) for d in dsts]
        return info, _preview_png(np.concatenate(imgs[:PREVIEW_FRAMES], axis=1))

    def quantize_image(self, path: str, palette: str, output: str | None = None, dither: str = "none",
                       colors: int | None = None, overwrite: bool = False) -> tuple[dict, bytes]:
        from comfy_nodes.pixel.imageio import load_frames

        src = self.paths.file(path)
        dst = self._png_output(output, src, overwrite)
        frames = load_frames(src)
        if len(frames) > 1:
            # one result for an animation would silently drop every frame but the first
            raise InvalidArgumentError(f"{src} has {len(frames)} frames; quantize_image takes one image",
                                       hint="snap_image with colors or palette reads every frame, on one palette")
        img = _reduce(frames, colors, palette, self.paths, dither=dither)[0]
        info = {"input": str(src), "width": int(img.shape[1]), "height": int(img.shape[0]), "palette": palette}
        if dst is not None:
            self.paths.write_png(dst, img)
            info["output"] = str(dst)
        return info, _preview_png(img)

    def _png_output(self, output: str | None, src: Path, overwrite: bool = False) -> Path | None:
        """The checked file ``output`` names inside the roots (None for no output): a .png
        (the image is written as PNG) that is not the input ``src``, which a tool never replaces,
        nor another existing file unless ``overwrite`` (see :meth:`Confinement.check_output`)."""
        if not output:
            return None
        if not output.strip().lower().endswith(".png") or Path(output.strip()).name.lower() == ".png":
            raise InvalidArgumentError(f"output {output!r}: the image is written as PNG, so its name must be NAME.png",
                                       hint=f"e.g. {Path(output).stem or 'sprite'}.png")
        dst = self.paths.file(output, must_exist=False)
        if dst.resolve() == src.resolve():
            raise InvalidArgumentError(f"output {output!r} is the input: a tool never writes over its input",
                                       hint="give another file name")
        check_writable(dst)
        self.paths.check_output(output, dst, overwrite)
        return dst

    def list_palettes(self) -> list[dict]:
        from comfy_nodes.pixel import palettes_builtin

        out = []
        for name in palettes_builtin.list_builtin():
            pal = palettes_builtin.builtin(name)
            out.append({"name": pal.name, "colors": len(pal.colors), "source": pal.source})
        return out

    # --- Bevy projects ---------------------------------------------------------------------

    def deploy(self, file: str, bevy_project: str, asset_path: str, overwrite: str = "replace") -> dict:
        from comfy_nodes.pixel.bevy_export import resolve_bevy_version, rust_snippet
        from orchestrator.deploy import check_not_onto_itself, deploy_file

        src = self.paths.file(file)
        project = self.paths.project(bevy_project)
        check_not_onto_itself(src, project, asset_path, shown=file)
        d = deploy_file(src, project, asset_path, overwrite=overwrite)
        version = resolve_bevy_version(project)
        if d.skipped:
            return {"asset_path": d.asset_path, "kept": True, "written": [],
                    "message": f"kept the existing {d.asset_path} (overwrite 'keep'); nothing written"}
        written = [str(Path(f).relative_to(project)) for f in d.files] if d.files else _written(project, d.path)
        return {"asset_path": d.asset_path, "written": written, "snippet": rust_snippet(None, d.asset_path, version)}

    def export_sprite(self, frames: list[str], bevy_project: str, asset_path: str, animations: str | None = None,
                      columns: int | None = None, padding: int = 0, anchor: str = "bottom-center",
                      trim: str = "auto", upscale: int = 1, overwrite: str = "fail") -> tuple[dict, bytes]:
        """One image, or frames laid out as a sprite sheet, exported into a Bevy project (as the
        CLI's ``export``): PNG, .meta, atlas JSON with the animations, manifest record."""
        from comfy_nodes.pixel.bevy_export import export_asset, export_sheet
        from comfy_nodes.pixel.imageio import load_frames
        from comfy_nodes.pixel.sheet import build_sheet, duration_conflicts

        from orchestrator.commands.sheet import expand_inputs, source_timing

        if isinstance(frames, str):
            frames = [frames]
        if not frames:
            raise InvalidArgumentError("frames is empty: give one image, several frames, or a folder of frames")
        if overwrite not in OVERWRITE_POLICIES:
            raise InvalidArgumentError(f"overwrite must be one of {', '.join(OVERWRITE_POLICIES)}, got {overwrite!r}")
        project = self.paths.project(bevy_project)
        files: list[Path] = []
        for item in frames:
            target = self.paths.file(item, must_exist=False, write=False)
            if target.is_dir():
                # every file a folder lists is confined again: one may be a symlink leading out
                files += [self.paths.file(f) for f in expand_inputs([str(target)])]
            else:
                files.append(self.paths.file(item))
        images = [img for f in files for img in load_frames(f)]
        source = {"files": [str(f) for f in files]}
        common = dict(overwrite=overwrite, upscale=upscale, provenance={"source": source})
        warnings: list[str] = []
        if len(images) == 1 and not animations:
            res = export_asset(project, asset_path, images[0], **common)
            preview = images[0]
        else:
            timing = None if animations else source_timing([str(f) for f in files], len(images))
            sheet = build_sheet(images, columns=columns, anchor=anchor, trim=trim, padding=(padding, padding),
                                animations=timing[0] if timing else animations)
            if timing:
                sheet.frame_ms = timing[1]
            else:
                warnings += duration_conflicts(len(sheet.frames), sheet.animations)
            res = export_sheet(project, asset_path, sheet, **common)
            preview = sheet.image
        info = {"asset_path": res.asset_path, "written": [str(f.path.relative_to(project)) for f in res.files],
                "width": res.width, "height": res.height, "frames": len(images), "snippet": res.snippet,
                "bevy_version": res.bevy.short}
        if res.skipped:
            info["kept"] = True
            info["message"] = res.message
        if warnings:
            info["warnings"] = warnings
        return info, _preview_png(preview)

    def list_assets(self, bevy_project: str) -> dict:
        from comfy_nodes.pixel.asset_manifest import read_manifest

        project = self.paths.project(bevy_project)
        return {"project": str(project), "manifest": read_manifest(project)}


def _param_dict(p: Any) -> dict:
    if isinstance(p, dict):
        return dict(p)
    keys = ("type", "default", "help", "min", "max", "choices")
    return {k: _plain(getattr(p, k, None)) for k in keys}


def _plain(v: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _event_text(ev: dict, prompt: dict | None = None) -> str:
    """A progress message, the node named by its title (or class) in ``prompt``, not its number only."""
    kind = ev.get("event", "")
    node = ev.get("node")
    if node is not None and isinstance((prompt or {}).get(str(node)), dict):
        n = prompt[str(node)]
        meta = n.get("_meta")
        title = meta.get("title") if isinstance(meta, dict) else None
        node = f"{node} ({title or n.get('class_type', '?')})"
    if kind == "progress":
        return f"node {node}: step {ev.get('value')}/{ev.get('max')}"
    if node is not None:
        return f"{kind} node {node}"
    return str(kind)


def _reduce(imgs: list, colors: int | None, palette: str | None, paths: Confinement, dither: str = "none") -> list:
    """``imgs`` on the palette, or on one adaptive palette found over all of them (frames of
    one animation must not flicker)."""
    from comfy_nodes.pixel import palette as P

    if palette:
        pal = _palette(palette, paths)
    elif colors is not None:
        pal = P.adaptive_palette(imgs, colors, seed=0)
    else:
        raise InvalidArgumentError("give a palette name or file, or a number of colours")
    return P.quantize_batch(imgs, pal, dither=dither)


def _palette(name: str, paths: Confinement):
    """A built-in palette, or a palette file inside the roots; never a file found elsewhere
    (a bare name would otherwise be looked up in the server's working folder)."""
    from comfy_nodes.pixel import palette as P
    from comfy_nodes.pixel import palettes_builtin
    from comfy_nodes.pixel.errors import PaletteError

    if palettes_builtin.is_builtin(name):
        return palettes_builtin.builtin(name)
    path = paths.file(name, must_exist=False, write=False)
    if not path.is_file():
        raise PaletteError(
            f"unknown palette {name!r}: not a built-in name and no palette file {path}",
            hint="built-in palettes: " + ", ".join(palettes_builtin.list_builtin())
            + "; or a .hex/.gpl/.pal/.txt/.png file inside the allowed Bevy roots",
        )
    return P.resolve_palette(str(path))


def _written(project: Path, png_path: str) -> list[str]:
    png = Path(png_path)
    files = sorted(f for f in png.parent.glob(png.stem + ".*") if f.is_file())
    return [str(f.relative_to(project)) for f in files]


def deploy_result(result, project: Path, asset_path: str, *, prompt: dict | None = None,
                  animations: str | None = None, overwrite: str = "replace") -> dict:
    """Deploy a finished job into ``project``: a sheet (from a Sprite Sheet / Tileset node, or
    several frames) with its atlas JSON, or a single sprite.

    Outputs of a sheet node go through ``deploy_outputs`` (the same deploy as ``run --bevy``).
    Returns the written files (relative to the project), the Rust snippet for the project's Bevy
    version and a small preview PNG (bytes, under ``preview``).
    """
    from comfy_nodes.pixel.bevy_export import export_sheet, resolve_bevy_version, rust_snippet
    from comfy_nodes.pixel.imageio import load_image
    from orchestrator.deploy import build_provenance, deploy_outputs
    from orchestrator.sheet_deploy import sheet_layout

    images = [o for o in result.outputs if o.path.lower().endswith(".png")]
    has_sheet = bool(prompt) and any(sheet_layout(prompt, o.node_id, result.sheets) for o in images)
    if len(images) > 1 and not has_sheet:
        # Several frames and no sheet node: the frames become one sheet here.
        sheet = [load_image(o.path) for o in images]
        spec = animations or f"{Path(asset_path).stem}:0-{len(images) - 1}@8"
        res = export_sheet(project, asset_path, sheet, animations=spec, overwrite=overwrite,
                           provenance=build_provenance(result, images[0]))
        return {"asset_path": res.asset_path, "written": [str(f.path.relative_to(project)) for f in res.files],
                "snippet": res.snippet, "preview": _preview_png(res.sheet.image)}
    deployed = deploy_outputs(result, project, asset_path, overwrite=overwrite, prompt=prompt, animations=animations)
    first = next((d for d in deployed if d.kind == "sheet"), deployed[0])
    kept = all(d.skipped for d in deployed)
    written = [] if kept else ([str(Path(f).relative_to(project)) for d in deployed for f in d.files]
                               or _written(project, first.path))
    snippet = first.snippet or rust_snippet(None, first.asset_path, resolve_bevy_version(project))
    out = {"asset_path": first.asset_path, "written": written, "snippet": snippet,
           "preview": _preview_png(load_image(first.path))}
    if kept:
        out["kept"] = True
        out["message"] = f"kept the existing {first.asset_path} (overwrite 'keep'); nothing written"
    if animations and not any(d.kind == "sheet" for d in deployed):
        # said, not dropped without a word: the assistant asked for animations it did not get
        out["warnings"] = [f"animations {animations!r} were not used: the job made one image, not frames "
                           "(a workflow that makes several frames, such as animation, lays them out as a sheet)"]
    return out


def build_server(settings: ServerSettings):
    """The FastMCP server object with every tool and resource registered."""
    import json

    from orchestrator import __version__

    core = PixelMCP(settings)
    mcp = FastMCP(
        "dgx-pixels",
        version=__version__,
        instructions=(
            "Generates true-grid pixel art with ComfyUI and deploys it into Bevy projects. "
            "Use list_workflows / describe_workflow to see what can be generated, then generate(...) "
            "with a Bevy project and an asset path like 'sprites/knight.png'; the result names the "
            "files written and gives Rust code that loads them. Allowed Bevy projects: "
            + ", ".join(str(r) for r in settings.bevy_roots)
        ),
    )

    def guarded(fn, *args, names: dict[str, str] | None = None, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DgxPixelsError as exc:
            raise _tool_error(exc, names) from None
        except OSError as exc:
            # a file-system failure no tool checks for: a message naming the file, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            raise ToolError(f"{where}{exc.strerror or exc} (hint: check the paths given, the free space and "
                            "the permissions)") from None

    def with_preview(info: dict, png: bytes) -> ToolResult:
        import base64

        return ToolResult(
            # one line: an indented dump put each of a grid's hundreds of line positions on its own
            content=[TextContent(type="text", text=json.dumps(info, default=str, ensure_ascii=False)),
                     ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mimeType="image/png")],
            structured_content=info,
        )

    @mcp.tool
    def list_workflows() -> list[dict]:
        """List the versioned workflows (name, newest version, description, parameter names)."""
        return guarded(core.list_workflows)

    @mcp.tool
    def describe_workflow(name: Annotated[str, Field(description=WORKFLOW_DOC)]) -> dict:
        """Describe one workflow: its parameters with type, default, range and help, and the models it needs."""
        return guarded(core.describe_workflow, name)

    @mcp.tool
    async def generate(
        workflow: Annotated[str, Field(description="'name' or 'name@version' (see list_workflows)")],
        bevy_project: Annotated[str, Field(description=PROJECT_DOC)],
        asset_path: Annotated[str, Field(description=ASSET_PATH_DOC)],
        params: Annotated[dict[str, Any] | None, Field(
            description='workflow parameters (describe_workflow lists them), e.g. {"prompt": "a knight", "seed": 7}')] = None,
        animations: Annotated[str | None, Field(description="for several frames: " + ANIMATIONS_DOC)] = None,
        overwrite: Annotated[Overwrite, Field(description=(
            "when asset_path is taken: replace (only an asset dgx-pixels deployed and nobody edited since), "
            "keep, version (knight-2.png) or fail; checked before the job runs"))] = "replace",
        wait: Annotated[bool, Field(description="false returns a job id at once (poll job_status, stop with cancel)")] = True,
        ctx: Context | None = None,
    ) -> ToolResult:
        """Run a workflow on ComfyUI and deploy the result into a Bevy project's assets/ folder.

        Returns the files written (PNG, .meta, atlas JSON), Rust code for the project's Bevy
        version, and a nearest-upscaled preview image.
        """
        job = guarded(core.start_job, workflow, params, bevy_project, asset_path, animations, overwrite,
                      names=GENERATE_NAMES)
        if not wait:
            return ToolResult(content=[TextContent(type="text", text=json.dumps({"job_id": job.id, "state": job.state}))],
                              structured_content={"job_id": job.id, "state": job.state})
        # the worker wakes this coroutine on every change: no polling delay on completion
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        job.listeners.append(lambda: loop.call_soon_threadsafe(wake.set))
        last = None
        while not job.done.is_set():
            try:
                await asyncio.wait_for(wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            wake.clear()
            now = (job.progress, job.total, job.message)
            if ctx is not None and now != last:
                last = now
                total = job.total or None
                await ctx.report_progress(job.progress, total, job.message)
        if job.state != "done":
            raise ToolError(f"job {job.id} {job.state}: {job.error}")
        info = {k: v for k, v in job.result.items() if k != "preview"}
        info["job_id"] = job.id
        info["bevy_project"] = str(core.paths.project(bevy_project))
        return with_preview(info, job.result["preview"])

    @mcp.tool
    def job_status(job_id: Annotated[str, Field(description="the id generate returned")]) -> dict:
        """State of a generate job: queued, running (with progress), done (with result), failed or cancelled."""
        status = guarded(core.job_status, job_id)
        if status.get("result"):
            status["result"] = {k: v for k, v in status["result"].items() if k != "preview"}
        return status

    @mcp.tool
    def cancel(job_id: Annotated[str, Field(description="the id generate returned")]) -> dict:
        """Cancel a running generate job; the job is also interrupted on the ComfyUI server."""
        status = guarded(core.cancel, job_id)
        if status.get("result"):
            status["result"] = {k: v for k, v in status["result"].items() if k != "preview"}
        return status

    @mcp.tool
    def snap_image(
        path: Annotated[str, Field(description=(
            "the input image, " + FILE_DOC + "; an animated GIF, APNG or WebP is snapped frame by frame "
            "on one grid (and one palette)"))],
        output: Annotated[str | None, Field(description=(
            "PNG file to write the true-resolution sprite to (same rules); for an animation a folder, "
            "which gets NAME_000.png, NAME_001.png..."))] = None,
        cell: Annotated[float | None, Field(description=(
            "the fake-pixel size, in source pixels (e.g. 6.4); default: detected"))] = None,
        width: Annotated[int | None, Field(description="the true width in pixels; default: detected")] = None,
        height: Annotated[int | None, Field(description="the true height in pixels; default: detected")] = None,
        colors: Annotated[int | None, Field(description="reduce to this many colours (1..256)")] = None,
        palette: Annotated[str | None, Field(description=PALETTE_DOC)] = None,
        transparent_background: Annotated[bool, Field(
            description="turn the background colour connected to the border transparent")] = False,
        overwrite: Annotated[bool, Field(description=OUTPUT_OVERWRITE_DOC)] = False,
    ) -> ToolResult:
        """Snap AI pseudo pixel art to its true pixel grid (offline, no ComfyUI needed).

        Give at most one of cell and width/height, and at most one of colors and palette.
        Returns the detected grid and a nearest-upscaled preview (an animation's first frames side by side).
        """
        info, png = guarded(core.snap_image, path, output, cell, width, height, colors, palette, transparent_background,
                            overwrite, names=SNAP_IMAGE_NAMES)
        return with_preview(info, png)

    @mcp.tool
    def quantize_image(
        path: Annotated[str, Field(description="the input image, " + FILE_DOC)],
        palette: Annotated[str, Field(description=PALETTE_DOC)],
        output: Annotated[str | None, Field(description="PNG file to write the result to (same rules)")] = None,
        dither: Annotated[Dither, Field(description="none, ordered Bayer 2x2/4x4/8x8, or error diffusion")] = "none",
        overwrite: Annotated[bool, Field(description=OUTPUT_OVERWRITE_DOC)] = False,
    ) -> ToolResult:
        """Map an image onto a palette (offline); colours are matched in a perceptual space."""
        info, png = guarded(core.quantize_image, path, palette, output, dither, overwrite=overwrite)
        return with_preview(info, png)

    @mcp.tool
    def list_palettes() -> list[dict]:
        """The built-in palettes (PICO-8, NES, Game Boy, DawnBringer, Endesga, ...) with colour counts and sources."""
        return guarded(core.list_palettes)

    @mcp.tool
    def deploy(
        file: Annotated[str, Field(description="the image, " + FILE_DOC)],
        bevy_project: Annotated[str, Field(description=PROJECT_DOC)],
        asset_path: Annotated[str, Field(description=ASSET_PATH_DOC)],
        overwrite: Annotated[Overwrite, Field(description=(
            "when asset_path is taken: replace (only an asset dgx-pixels deployed and nobody edited since), "
            "keep, version (knight-2.png) or fail"))] = "replace",
    ) -> dict:
        """Copy an existing image into a Bevy project's assets/ with a nearest-filter .meta and a provenance record."""
        return guarded(core.deploy, file, bevy_project, asset_path, overwrite)

    @mcp.tool
    def export_sprite(
        frames: Annotated[list[str], Field(description=(
            "images in frame order, each " + FILE_DOC + "; a folder gives its images sorted by name, an "
            "animated GIF/APNG/WebP its frames and their timing"))],
        bevy_project: Annotated[str, Field(description=PROJECT_DOC)],
        asset_path: Annotated[str, Field(description=ASSET_PATH_DOC)],
        animations: Annotated[str | None, Field(description=ANIMATIONS_DOC)] = None,
        columns: Annotated[int | None, Field(description="cells per row; default near-square")] = None,
        padding: Annotated[int, Field(description="pixels between cells")] = 0,
        anchor: Annotated[Literal["bottom-center", "center", "top-left"], Field(description=(
            "where a trimmed frame sits in its cell: bottom-center (characters), center (items), top-left"))]
            = "bottom-center",
        trim: Annotated[Literal["auto", "each", "union", "none"], Field(description=(
            "auto: one box for frames of one size (an animation does not jitter), each frame to its own "
            "pixels for frames of different sizes"))] = "auto",
        upscale: Annotated[int, Field(description="whole-number nearest enlargement, 1..64")] = 1,
        overwrite: Annotated[Overwrite, Field(description="when asset_path is taken: fail, replace, keep or version")]
            = "fail",
    ) -> ToolResult:
        """Export one image, or frames laid out as a sprite sheet, into a Bevy project (offline):
        PNG, a nearest-filter .meta for the project's Bevy version, an atlas JSON with the animations,
        a provenance record, and Rust code that loads it and plays the animations."""
        info, png = guarded(core.export_sprite, frames, bevy_project, asset_path, animations, columns, padding,
                            anchor, trim, upscale, overwrite)
        return with_preview(info, png)

    @mcp.tool
    def list_assets(bevy_project: Annotated[str, Field(description=PROJECT_DOC)]) -> dict:
        """The assets DGX-Pixels deployed into a Bevy project, each with its provenance (workflow, seed, models...)."""
        return guarded(core.list_assets, bevy_project)

    def read(fn, *args):
        """``guarded`` for a resource: its refusals as resource errors."""
        try:
            return guarded(fn, *args)
        except ToolError as exc:
            raise ResourceError(str(exc), log_level=exc.log_level) from None

    @mcp.resource("dgx-pixels://workflows", mime_type="application/json")
    def workflows_resource() -> str:
        """Every versioned workflow with its parameters."""
        return json.dumps([read(core.describe_workflow, w["ref"]) for w in read(core.list_workflows)], default=str)

    @mcp.resource("dgx-pixels://palettes", mime_type="application/json")
    def palettes_resource() -> str:
        """The built-in palettes."""
        return json.dumps(read(core.list_palettes))

    @mcp.resource("dgx-pixels://assets/{project}", mime_type="application/json")
    def assets_resource(project: str) -> str:
        """The asset manifest of a configured Bevy project (by folder name)."""
        return json.dumps(read(core.list_assets, project), default=str)

    mcp.core = core  # for in-process tests and the benchmark
    return mcp
