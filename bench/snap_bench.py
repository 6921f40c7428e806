#!/usr/bin/env python3
"""Grid-snap benchmark: `dgx-pixels snap` against the public peers, scored in the same run.

    python bench/snap_bench.py                      # every tool, every snap-dev case
    python bench/snap_bench.py --limit 2            # 2 cases per level, quick check while developing
    python bench/snap_bench.py --tools ours,perfect-pixel --cases /path/to/other/cases

Every tool runs once per case as its own process through the shared scorer
(`../shared/bench/score_snap.py`), so whole-process time and peak RSS are comparable. The peers
run from their own pinned venv (bench/peers/requirements.txt, built once under
~/.cache/dgx-pixels/peers-venv/). Then, for our own code only:
  * in-process time of `comfy_nodes.pixel.grid.snap` on the 1024x1024 real AI images
    (median of --repeat calls after one warm-up, OMP/OPENBLAS/MKL threads = 1);
  * start-up cost of the CLI (`python -X importtime -m orchestrator --version`, and the wall time
    of `dgx-pixels --version`).
It prints one Markdown table per level (and the easy+medium+hard total) and writes everything
under --out (default bench/results/, git-ignored). Metric definitions: ../shared/bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_DIR = HERE / "peers"
LEVEL_ORDER = ("easy", "medium", "hard", "warp")
# The shared README's headline total is over the regular-lattice levels only.
TOTAL_LEVELS = ("easy", "medium", "hard")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")

# tool name -> (adapter script in bench/peers, distribution name in requirements.txt)
PEERS = {
    "perfect-pixel": ("run_perfect_pixel.py", "perfect-pixel"),
    "proper-pixel-art": ("run_proper_pixel_art.py", "proper-pixel-art"),
    "unfake": ("run_unfake.py", "unfake"),
    "pixel-snapper": ("run_pixel_snapper.py", "pixel-snapper"),
    "ai2pixelart": ("run_ai2pixelart.py", "ai2pixelart"),
    "repixelator": ("run_repixelator.py", "repixelator"),
    "pxl-cleanup": ("run_pxl_cleanup.py", "pxl-cleanup"),
    "spritegrid": ("run_spritegrid.py", "spritegrid"),
}
ALL_TOOLS = ("ours",) + tuple(PEERS)


class BenchError(Exception):
    """A condition the user can fix (missing data, unknown tool); printed without a traceback."""


# ----------------------------------------------------------------------------- locating things
def shared_bench_dir() -> Path:
    """The shared benchmark folder: $DGX_PIXELS_SHARED/bench, else ../shared/bench next to the repo."""
    root = Path(os.environ["DGX_PIXELS_SHARED"]) if os.environ.get("DGX_PIXELS_SHARED") else REPO.parent / "shared"
    bench = root / "bench"
    if not (bench / "score_snap.py").is_file():
        raise BenchError(
            f"benchmark data not found: expected {bench}/score_snap.py (the shared folder next to the "
            f"checkout). It is not part of the repository; put it at {REPO.parent / 'shared'} or point "
            f"DGX_PIXELS_SHARED at the folder that holds bench/.")
    return bench


def ours_command() -> list[str]:
    """How to start our CLI: the console script next to this Python (a version-manager shim in
    front of it would add its own start-up time to every case), else `python -m orchestrator`."""
    script = Path(sys.executable).parent / "dgx-pixels"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "orchestrator"]


def peer_versions() -> dict[str, str]:
    sys.path.insert(0, str(PEERS_DIR))
    import peers_venv  # noqa: E402

    out = {}
    for req in peers_venv.requirements():
        name, _, ver = req.partition("==")
        out[name.strip()] = ver.strip()
    return out


def peers_python(tools: list[str]) -> tuple[Path | None, dict[str, str]]:
    """Build or reuse the peers venv; return its python and {tool: reason} for peers that did not install."""
    if not any(t in PEERS for t in tools):
        return None, {}
    sys.path.insert(0, str(PEERS_DIR))
    import peers_venv  # noqa: E402

    py = peers_venv.build()
    report = peers_venv.load_report()
    missing = {}
    for t in tools:
        if t not in PEERS:
            continue
        dist = PEERS[t][1]
        rec = next((r for req, r in report.items() if req.split("==")[0].strip() == dist), None)
        if rec is None:
            missing[t] = "not in bench/peers/requirements.txt"
        elif not rec["ok"]:
            missing[t] = "pip install failed: " + rec["error"].strip().splitlines()[-1][:200]
    return py, missing


# ----------------------------------------------------------------------------- cases
def case_level(case: Path) -> str:
    try:
        return json.loads((case / "params.json").read_text()).get("level", "?")
    except (OSError, ValueError):
        return "?"


def select_cases(cases_dir: Path, limit: int, levels: list[str] | None) -> list[Path]:
    """Case folders (holding input.png and gt.png), sorted; with `limit`, the first `limit` of each level."""
    if not cases_dir.is_dir():
        raise BenchError(f"cases folder not found: {cases_dir}")
    cases = sorted(p for p in cases_dir.iterdir() if (p / "input.png").is_file() and (p / "gt.png").is_file())
    if not cases:
        raise BenchError(f"no cases in {cases_dir}: expected sub-folders with input.png, gt.png and params.json")
    missing = [c.name for c in cases if not (c / "params.json").is_file()]
    if missing:
        raise BenchError(f"{len(missing)} case(s) in {cases_dir} lack params.json (the scorer reads the level "
                         f"from it), e.g. {missing[0]}")
    picked, per_level = [], {}
    for c in cases:
        lv = case_level(c)
        if levels and lv not in levels:
            continue
        per_level[lv] = per_level.get(lv, 0) + 1
        if limit and per_level[lv] > limit:
            continue
        picked.append(c)
    if not picked:
        raise BenchError(f"no case in {cases_dir} matches levels {levels}")
    return picked


# ----------------------------------------------------------------------------- scoring runs
@dataclass
class ToolRun:
    tool: str
    label: str
    records: list[dict] = field(default_factory=list)
    skipped: str = ""
    wall_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the tool's run


def tool_command(tool: str, peers_py: Path | None) -> str:
    if tool == "ours":
        return " ".join(shlex.quote(a) for a in ours_command()) + " snap {in} -o {out}"
    script = PEERS_DIR / PEERS[tool][0]
    return f"{shlex.quote(str(peers_py))} {shlex.quote(str(script))} {{in}} {{out}}"


def score_tool(tool: str, label: str, cmd: str, scorer: Path, cases_link_dir: Path, json_path: Path,
               timeout: float, env: dict[str, str]) -> ToolRun:
    """Run the shared scorer for one tool; its per-case lines go to stderr as progress."""
    print(f"\n== {label}: {cmd}", file=sys.stderr, flush=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(scorer), "--cmd", cmd, "--cases", str(cases_link_dir),
                        "--json", str(json_path), "--timeout", str(timeout)],
                       stdout=subprocess.PIPE, text=True, env=env)
    run = ToolRun(tool, label, wall_s=time.perf_counter() - t0, load=(load0, os.getloadavg()[0]))
    if p.returncode != 0 or not json_path.exists():
        run.skipped = f"scorer exited {p.returncode}"
        return run
    run.records = json.loads(json_path.read_text())
    return run


def summarise(records: list[dict]) -> dict:
    n = len(records)

    def pct(key):
        return 100.0 * sum(bool(r[key]) for r in records) / n

    rss = [r["rss_mb"] for r in records if r.get("rss_mb")]
    return {
        "n": n,
        "solved_pct": pct("solved"),
        "size_exact_pct": pct("size_exact"),
        "size_pm1_pct": pct("size_pm1"),
        "pix_acc_mean": statistics.fmean(r["pix_acc"] for r in records),
        "de2000_mean": statistics.fmean(r["mean_de2000"] for r in records),
        "time_median_s": statistics.median(r["time_s"] for r in records),
        "rss_median_mb": statistics.median(rss) if rss else None,
        "failed_runs": sum(r["rc"] != 0 for r in records),
    }


def level_groups(runs: list[ToolRun]) -> list[tuple[str, tuple[str, ...]]]:
    """(title, levels) for every level present, in the usual order, then the easy+medium+hard total."""
    present = []
    for r in runs:
        for rec in r.records:
            if rec["level"] not in present:
                present.append(rec["level"])
    ordered = [lv for lv in LEVEL_ORDER if lv in present] + sorted(lv for lv in present if lv not in LEVEL_ORDER)
    groups = [(lv, (lv,)) for lv in ordered]
    total = tuple(lv for lv in TOTAL_LEVELS if lv in present)
    if len(total) > 1:
        groups.append(("+".join(total), total))
    if len(ordered) > 1 and set(ordered) != set(total):
        groups.append(("all", tuple(ordered)))
    return groups


def markdown_tables(runs: list[ToolRun]) -> tuple[str, dict]:
    lines, data = [], {}
    for title, lvs in level_groups(runs):
        counts = {len([r for r in run.records if r["level"] in lvs]) for run in runs if run.records}
        n = max(counts) if counts else 0
        lines += [f"### {title} ({n} cases)", "",
                  "| tool | solved | size exact | size within 1 | pixel acc mean | dE00 mean | time median s "
                  "| peak RSS MB | failed runs |",
                  "|---|---|---|---|---|---|---|---|---|"]
        data[title] = {}
        for run in runs:
            recs = [r for r in run.records if r["level"] in lvs]
            if not recs:
                continue
            s = summarise(recs)
            data[title][run.tool] = s
            rss = f"{s['rss_median_mb']:.0f}" if s["rss_median_mb"] else "-"
            lines.append(f"| {run.label} | {s['solved_pct']:.0f}% | {s['size_exact_pct']:.0f}% | "
                         f"{s['size_pm1_pct']:.0f}% | {s['pix_acc_mean']:.3f} | {s['de2000_mean']:.2f} | "
                         f"{s['time_median_s']:.2f} | {rss} | {s['failed_runs']} |")
        lines.append("")
    return "\n".join(lines), data


# ----------------------------------------------------------------------------- our own timings
def inproc_worker(paths: list[str], repeat: int) -> int:
    """Runs in a child whose thread variables are already 1: time grid.snap on each image, print JSON."""
    import resource

    t0 = time.perf_counter()
    import numpy as np  # noqa: F401  (its import is part of what a node pays once, reported apart)
    from comfy_nodes.pixel import grid
    from comfy_nodes.pixel.imageio import load_image
    import_s = time.perf_counter() - t0
    out = {"import_s": import_s, "images": []}
    for p in paths:
        rgba = load_image(p)
        res = grid.snap(rgba)  # warm-up: first call pays lazy imports and page faults
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            res = grid.snap(rgba)
            times.append(time.perf_counter() - t)
        h, w = res.image.shape[:2]
        out["images"].append({"image": Path(p).name, "in_size": [rgba.shape[1], rgba.shape[0]],
                              "out_size": [w, h], "median_s": statistics.median(times),
                              "min_s": min(times), "max_s": max(times), "repeat": repeat})
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


def one_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: "1" for k in THREAD_VARS})
    return env


def inprocess_timing(real_dir: Path, repeat: int) -> dict:
    """grid.snap on every 1024x1024 image of real/ (the size diffusion models draw), one thread."""
    from PIL import Image

    imgs = []
    for p in sorted(real_dir.glob("*.png")):
        with Image.open(p) as im:
            if im.size == (1024, 1024):
                imgs.append(str(p))
    if not imgs:
        return {"error": f"no 1024x1024 image in {real_dir}"}
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--inproc-worker", *imgs,
                        "--repeat", str(repeat)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=one_thread_env(), cwd=REPO)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-600:]}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["median_of_medians_s"] = statistics.median(i["median_s"] for i in res["images"])
    return res


def startup_timing(repeat: int) -> dict:
    """Import cost of the CLI and whole-process wall time of `dgx-pixels --version`."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", "--version"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    top, heavy_present = [], []
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cum_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        if indent == 1:  # top-level import (nested ones are indented further)
            top.append((name, cum_us))
        if name.split(".")[0] in ("numpy", "PIL", "sklearn", "scipy", "requests", "torch"):
            heavy_present.append(name.split(".")[0])
    total_us = sum(c for _, c in top)
    project_us = sum(c for n, c in top if n.split(".")[0] in ("orchestrator", "comfy_nodes"))
    cmd = ours_command() + ["--version"]
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    base = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], stdout=subprocess.DEVNULL)
        base.append(time.perf_counter() - t)
    return {
        "importtime_total_ms": total_us / 1000,
        "importtime_project_ms": project_us / 1000,
        "importtime_top": sorted(top, key=lambda x: -x[1])[:6],
        "heavy_modules_at_startup": sorted(set(heavy_present)),
        "version_wall_median_s": statistics.median(walls),
        "python_bare_wall_median_s": statistics.median(base),
        "command": " ".join(cmd),
    }


# ----------------------------------------------------------------------------- main
def parse_tools(spec: str) -> list[str]:
    if spec == "all":
        return list(ALL_TOOLS)
    tools = [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in tools if t not in ALL_TOOLS]
    if unknown:
        raise BenchError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(ALL_TOOLS)}")
    return tools


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", default="all", help=f"comma list or 'all' (default): {','.join(ALL_TOOLS)}")
    ap.add_argument("--cases", help="folder of case folders (default: ../shared/bench/snap-dev/cases); any folder "
                                    "with the same layout (input.png, gt.png, params.json per case) works")
    ap.add_argument("--levels", help="comma list of levels to keep, e.g. easy,warp (default: all)")
    ap.add_argument("--limit", type=int, default=0, help="at most N cases per level (0 = all)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per case before a run counts as failed")
    ap.add_argument("--repeat", type=int, default=5, help="calls per image for the in-process timing")
    ap.add_argument("--no-inproc", action="store_true", help="skip the in-process and start-up timings")
    ap.add_argument("--threads", type=int, help="set OMP/OPENBLAS/MKL thread counts for every tool's process "
                                                "(default: leave the environment as it is)")
    ap.add_argument("--json", help="also write the whole summary as JSON here")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder (default bench/results/)")
    ap.add_argument("--inproc-worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.inproc_worker:
        return inproc_worker(a.inproc_worker, a.repeat)
    try:
        return run_bench(a)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_bench(a) -> int:
    bench = shared_bench_dir()
    scorer = bench / "score_snap.py"
    cases_dir = Path(a.cases) if a.cases else bench / "snap-dev" / "cases"
    tools = parse_tools(a.tools)
    levels = [s.strip() for s in a.levels.split(",")] if a.levels else None
    cases = select_cases(cases_dir, a.limit, levels)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(a.out) / f"snap-bench-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    if a.threads:
        env.update({k: str(a.threads) for k in THREAD_VARS})
    # Whole-process times as on a user's machine, where imports come from cached bytecode:
    # a sandbox's PYTHONDONTWRITEBYTECODE would make every tool recompile its modules per call
    # (~0.1 s for ours). The cache lives in the results folder, for every tool alike.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(out_dir / "pycache")
    peers_py, not_installed = peers_python(tools)
    versions = peer_versions() if peers_py else {}

    runs: list[ToolRun] = []
    with tempfile.TemporaryDirectory(prefix="snap-bench-cases-") as tmp:
        # The scorer takes one folder; the chosen subset is a folder of links to the real cases.
        link_dir = Path(tmp)
        for c in cases:
            (link_dir / c.name).symlink_to(c.resolve(), target_is_directory=True)
        for tool in tools:
            label = "dgx-pixels snap (ours)" if tool == "ours" else f"{tool} {versions.get(PEERS[tool][1], '')}".strip()
            if tool in not_installed:
                runs.append(ToolRun(tool, label, skipped=not_installed[tool]))
                print(f"\n== {label}: skipped ({not_installed[tool]})", file=sys.stderr)
                continue
            runs.append(score_tool(tool, label, tool_command(tool, peers_py), scorer, link_dir,
                                   out_dir / f"cases-{tool}.json", a.timeout, env))

    tables, data = markdown_tables(runs)
    report = {"cases_dir": str(cases_dir), "n_cases": len(cases), "limit_per_level": a.limit,
              "threads": a.threads, "machine_cpus": os.cpu_count(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "tools": {r.tool: {"label": r.label, "skipped": r.skipped, "wall_s": r.wall_s, "load_1min": r.load}
                        for r in runs},
              "levels": data}
    md = [f"## Grid-snap benchmark: {len(cases)} cases from {cases_dir}", "",
          "One process per image per tool, scored by score_snap.py in one run; `peak RSS MB` is the median "
          "over cases of each process's peak RSS; `failed runs`: non-zero exit or no output (scored as "
          "all-wrong).", "", tables]
    loads = [x for r in runs if not r.skipped for x in r.load]
    if loads:
        # Whole-process times scale with the machine's load; say how busy it was.
        md += [f"Machine: {os.cpu_count()} CPUs, 1-minute load average {min(loads):.1f} to {max(loads):.1f} "
               f"during the scoring runs (times are comparable within this run only).", ""]
    skipped = [r for r in runs if r.skipped]
    if skipped:
        md += ["Skipped: " + "; ".join(f"{r.label} ({r.skipped})" for r in skipped), ""]

    if not a.no_inproc and "ours" in tools:
        print("\n== in-process grid.snap timing (1 thread) and CLI start-up", file=sys.stderr, flush=True)
        inproc = inprocess_timing(bench / "real", a.repeat)
        startup = startup_timing(max(5, a.repeat))
        report["inprocess"], report["startup"] = inproc, startup
        md += ["### ours: in-process and start-up", ""]
        if "error" in inproc:
            md.append(f"in-process timing failed: {inproc['error']}")
        else:
            md += [f"`comfy_nodes.pixel.grid.snap` on {len(inproc['images'])} real 1024x1024 images, one thread, "
                   f"median of {a.repeat} calls after a warm-up: **{inproc['median_of_medians_s'] * 1000:.0f} ms** "
                   f"(median over images); import of numpy + grid: {inproc['import_s'] * 1000:.0f} ms; "
                   f"peak RSS of that process {inproc['peak_rss_mb']:.0f} MB.", "",
                   "| image | output size | median ms | min ms | max ms |", "|---|---|---|---|---|"]
            for i in inproc["images"]:
                md.append(f"| {i['image']} | {i['out_size'][0]}x{i['out_size'][1]} | {i['median_s'] * 1000:.0f} | "
                          f"{i['min_s'] * 1000:.0f} | {i['max_s'] * 1000:.0f} |")
        md += ["", f"CLI start-up: `python -X importtime -m orchestrator --version` imports "
                   f"{startup['importtime_total_ms']:.0f} ms in total, {startup['importtime_project_ms']:.0f} ms of it "
                   f"the project's modules; heavy modules loaded at start-up: "
                   f"{', '.join(startup['heavy_modules_at_startup']) or 'none'}. `{startup['command']}` whole process: "
                   f"median {startup['version_wall_median_s'] * 1000:.0f} ms (bare `python -c pass`: "
                   f"{startup['python_bare_wall_median_s'] * 1000:.0f} ms).", ""]

    text = "\n".join(md)
    print("\n" + text)
    (out_dir / "summary.md").write_text(text + "\n")
    (out_dir / "summary.json").write_text(json.dumps(report, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    print(f"\nresults: {out_dir}", file=sys.stderr)
    if any(r.tool == "ours" for r in skipped):
        # a run without our row is no benchmark result, whatever the peers did
        print("error: ours was skipped (see above); run the script with the project's venv", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
