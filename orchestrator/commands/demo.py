"""``dgx-pixels demo``: the whole pipeline once, on samples the project draws itself.

With no ComfyUI configured it provisions and starts the pinned one (CPU, loopback), runs the
shipped ``cleanup`` workflow on a pseudo-pixel-art knight, deploys the snapped sprite into a
demo Bevy project (PNG, ``.meta``, provenance in ``assets/.dgx-pixels/manifest.json``) and
prints every file it wrote there.
"""
from __future__ import annotations

HELP = "run the whole pipeline once on built-in samples (starts a local ComfyUI if none is configured)"
DESCRIPTION = (
    "Draws a sample sprite, degrades it to diffusion-style pseudo pixel art, runs the shipped "
    "'cleanup' workflow on a ComfyUI server (the one given by --server / $DGX_PIXELS_SERVER, or a "
    "pinned ComfyUI it provisions and starts on loopback), and deploys the result with its Bevy "
    ".meta into a demo Bevy project."
)


def add_arguments(p) -> None:
    p.add_argument("--server", metavar="URL", help="use this ComfyUI server instead of starting the embedded one")
    p.add_argument("--bevy", metavar="DIR", default="demo-bevy", help="demo Bevy project folder (created if missing; default ./demo-bevy)")
    p.add_argument("--bevy-version", default="0.15", help="Bevy version written into a new demo project's Cargo.toml (default 0.15)")
    p.add_argument("--workflow", default="cleanup", help="workflow to run (default: the model-free 'cleanup')")
    p.add_argument("--json", action="store_true", help="progress as JSON event lines")


DEMO_PACKAGE = "dgx_pixels_demo"


def _check_before_work(args, project) -> None:
    """Everything that can be wrong with the options, checked before a server starts or a file
    is written: a failed demo must not leave a half-made project behind."""
    from comfy_nodes.pixel.bevy_export import parse_bevy_version
    from comfy_nodes.pixel.errors import ExportError, InvalidArgumentError
    from orchestrator.errors import WorkflowError
    from orchestrator.workflows import load_registry

    try:
        parse_bevy_version(args.bevy_version, "--bevy-version")
    except ExportError as exc:
        raise InvalidArgumentError(exc.message, hint="give a Bevy release 0.12 to 0.19, e.g. --bevy-version 0.15") from None
    if project.exists() and not project.is_dir():
        raise InvalidArgumentError(f"--bevy {project} is a file, not a folder",
                                   hint="give a new folder for the demo project, or your game's folder")
    if project.is_dir() and not (project / "Cargo.toml").is_file() and any(project.iterdir()):
        raise InvalidArgumentError(f"--bevy {project} is neither a Bevy project (it holds no Cargo.toml) nor empty",
                                   hint="give a new folder for the demo project, or your game's folder")
    workflow = load_registry().get(args.workflow)
    if "image" not in workflow.params:
        raise WorkflowError(f"workflow {workflow.ref} takes no 'image' parameter, so the demo cannot feed it its "
                            "sample", hint="the demo runs image workflows such as 'cleanup'")


def _without_outputs(report):
    """``report`` less the run's "output" events: the demo collects them into a temporary folder
    that is gone when it ends (it printed paths that no longer existed); what it deployed is
    listed instead."""
    def on_event(ev: dict) -> None:
        if ev.get("event") != "output":
            report(ev)
    return on_event


def _ensure_project(root, bevy_version: str) -> list:
    """Create the project's ``assets/`` and, when missing, a ``Cargo.toml`` naming Bevy; returns
    the files it wrote."""
    cargo = root / "Cargo.toml"
    (root / "assets").mkdir(parents=True, exist_ok=True)
    if cargo.exists():
        return []
    cargo.write_text(
        f'[package]\nname = "{DEMO_PACKAGE}"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nbevy = "{bevy_version}"\n',
        encoding="utf-8",
    )
    return [cargo]


def _overwrite_policy(project) -> str:
    """Replace the knight of a demo project; in a game of the user's, never write over a file:
    an existing sprites/knight.png there is theirs, and the demo writes knight-2.png beside it."""
    import re

    cargo = project / "Cargo.toml"
    if not cargo.is_file():
        return "replace"
    text = cargo.read_text(encoding="utf-8", errors="replace")
    return "replace" if re.search(rf'^\s*name\s*=\s*"{DEMO_PACKAGE}"', text, re.M) else "version"


def run(args) -> int:
    import os
    import tempfile
    from pathlib import Path

    from comfy_nodes.pixel.imageio import save_png
    from orchestrator import samples
    from orchestrator.client import ComfyClient
    from orchestrator.deploy import deploy_outputs
    from orchestrator.progress import make_reporter
    from orchestrator.run import drop_server_exports, prepare_job, run_workflow

    project = Path(args.bevy).resolve()
    _check_before_work(args, project)
    written: list = []
    say = (lambda m: None) if args.json else (lambda m: print(f"demo: {m}", flush=True))

    server_url = args.server or os.environ.get("DGX_PIXELS_SERVER", "").split(",")[0].strip() or None
    handle = client = None
    with tempfile.TemporaryDirectory(prefix="dgx-pixels-demo-") as tmp:
        tmp = Path(tmp)
        knight = samples.sprites()["knight"]
        pseudo = samples.degrade(knight, cell=13.6, seed=7)
        src = save_png(pseudo.image, tmp / "knight-pseudo.png")
        say(f"sample input: {pseudo.image.shape[1]}x{pseudo.image.shape[0]} pseudo pixel art of a "
            f"{knight.shape[1]}x{knight.shape[0]} knight")
        try:
            if server_url is None:
                from orchestrator import embedded

                say("no ComfyUI configured: starting the pinned ComfyUI "
                    f"{embedded.COMFYUI_VERSION} on loopback (first run provisions it, ~7.5 GB)")
                handle = embedded.start_server(progress=say)
                server_url = handle.url
                say(f"ComfyUI is up at {server_url}")
            client = ComfyClient(server_url)
            spec = prepare_job(args.workflow, {"image": str(src)}, fresh=True)
            drop_server_exports(spec)  # deployed here, not also into the server's output folder
            result = run_workflow(
                None,
                spec=spec,
                client=client,
                out_dir=tmp / "out",
                on_event=_without_outputs(make_reporter(json_mode=args.json)),
                fresh=True,
            )
            # The project is made only now, once there is a sprite to put in it.
            overwrite = _overwrite_policy(project)
            written = _ensure_project(project, args.bevy_version)
            # With the client the provenance record names the server's ComfyUI version.
            deployed = deploy_outputs(result, project, "sprites/knight.png", overwrite=overwrite, client=client)
        finally:
            if client is not None:
                client.close()
            if handle is not None:
                handle.stop()
    for asset in deployed:
        written += [Path(f) for f in asset.files]
    print(f"deployed into Bevy project {project}; files written:")
    for f in dict.fromkeys(written):  # in order, once (every asset rewrites the manifest)
        print(f"  {f.relative_to(project).as_posix()}  ({f.stat().st_size} bytes)")
    print(f'load it with: asset_server.load("{deployed[0].asset_path}")')
    return 0
