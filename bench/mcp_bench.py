#!/usr/bin/env python3
"""MCP tool-call overhead: the same work through a real MCP client and called directly.

Starts its own ComfyUI (CPU, ``orchestrator.embedded.start_server``) and, in one run, times:

1. ``generate`` (workflow ``cleanup`` on a degraded sample sprite, deployed into a temporary
   Bevy project: PNG + ``.meta`` + manifest) against the direct orchestrator call the tool
   wraps (``prepare_job`` + ``run_workflow`` + ``deploy_result``, in this process);
2. ``snap_image`` on a 1024x1024 benchmark input against ``PixelMCP.snap_image`` in process;
3. ``describe_workflow`` against ``PixelMCP.describe_workflow`` (the protocol alone).

Each MCP call goes through FastMCP's ``Client`` to a separate ``dgx-pixels mcp`` process, over
stdio and over streamable HTTP on loopback. Rounds alternate direct / stdio / HTTP so load
drifts hit all three; the overhead is the median of the per-round differences (MCP minus
direct). Identical generate calls are answered from ComfyUI's cache (our client returns the
cached outputs and still downloads and deploys them), so the comparison isolates what MCP
adds. Target: overhead <= 20 ms median.

    python3 dev.py env  # or use .venv/bin/python (needs the `mcp` extra: fastmcp)
    .venv/bin/python bench/mcp_bench.py [--rounds 40] [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project(root: Path) -> Path:
    game = root / "game"
    (game / "assets").mkdir(parents=True)
    (game / "Cargo.toml").write_text('[package]\nname = "game"\nversion = "0.1.0"\n\n[dependencies]\nbevy = "0.15"\n')
    return game


def summary(direct: list[float], mcp: list[float]) -> dict:
    diffs = [m - d for m, d in zip(mcp, direct)]
    return {"direct_median_ms": round(statistics.median(direct) * 1000, 2),
            "mcp_median_ms": round(statistics.median(mcp) * 1000, 2),
            "overhead_median_ms": round(statistics.median(diffs) * 1000, 2),
            "overhead_p90_ms": round(sorted(diffs)[int(0.9 * (len(diffs) - 1))] * 1000, 2),
            "rounds": len(diffs)}


async def timed(client, tool: str, args: dict) -> float:
    t = time.perf_counter()
    res = await client.call_tool(tool, args, timeout=300)
    dt = time.perf_counter() - t
    if res.is_error:
        raise SystemExit(f"{tool} failed: {res.content}")
    return dt


async def bench(url: str, game: Path, snap_input: Path, rounds: int, warmup: int) -> dict:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

    from orchestrator.mcp_server import PixelMCP, ServerSettings, deploy_result
    from orchestrator.run import prepare_job, run_workflow

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, "-m", "orchestrator.cli", "mcp", "--bevy-root", str(game), "--server", url]
    port = free_port()
    http_proc = subprocess.Popen(base + ["--http", f"127.0.0.1:{port}"], env=env, cwd=str(game),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        http_proc.kill()
        raise SystemExit("the MCP HTTP server did not start")

    out_dir = Path(tempfile.mkdtemp(prefix="mcp-bench-out-"))
    core = PixelMCP(ServerSettings(servers=[url], bevy_roots=[game], out_dir=out_dir))
    image = str(game / "potion-ai.png")
    gen_args = {"workflow": "cleanup", "bevy_project": "game", "asset_path": "sprites/potion.png",
                "params": {"image": image}}

    def direct_generate() -> float:
        t = time.perf_counter()
        spec = prepare_job("cleanup", {"image": image})
        result = run_workflow(spec.workflow or spec.prompt, spec.params, spec=spec, server=url, out_dir=out_dir / "direct")
        deploy_result(result, game, "sprites/potion.png", prompt=spec.prompt)
        return time.perf_counter() - t

    def direct(fn, *a) -> float:
        t = time.perf_counter()
        fn(*a)
        return time.perf_counter() - t

    cases = {
        "generate": (direct_generate, "generate", gen_args),
        "snap_image": (lambda: direct(core.snap_image, str(snap_input)), "snap_image", {"path": str(snap_input)}),
        "describe_workflow": (lambda: direct(core.describe_workflow, "cleanup"), "describe_workflow", {"name": "cleanup"}),
    }
    results: dict[str, dict] = {}
    try:
        stdio = Client(StdioTransport(command=base[0], args=base[1:], env=env, cwd=str(game)))
        http = Client(StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp"))
        async with stdio, http:
            for name, (fn, tool, args) in cases.items():
                t_direct, t_stdio, t_http = [], [], []
                for i in range(rounds + warmup):
                    d = await asyncio.to_thread(fn)
                    s = await timed(stdio, tool, args)
                    h = await timed(http, tool, args)
                    if i >= warmup:
                        t_direct.append(d)
                        t_stdio.append(s)
                        t_http.append(h)
                results[name] = {"stdio": summary(t_direct, t_stdio), "http": summary(t_direct, t_http)}
                print(f"{name:18s} direct {results[name]['stdio']['direct_median_ms']:8.2f} ms | "
                      f"stdio {results[name]['stdio']['mcp_median_ms']:8.2f} ms "
                      f"(+{results[name]['stdio']['overhead_median_ms']:.2f}) | "
                      f"http {results[name]['http']['mcp_median_ms']:8.2f} ms "
                      f"(+{results[name]['http']['overhead_median_ms']:.2f})", flush=True)
    finally:
        http_proc.terminate()
        http_proc.wait(10)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()

    from comfy_nodes.pixel.imageio import save_png
    from orchestrator import samples
    from orchestrator.embedded import start_server

    shared = Path(os.environ.get("DGX_PIXELS_SHARED", ROOT.parent / "shared"))
    real = sorted((shared / "bench" / "real").glob("*.png"))
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        game = project(Path(tmp))
        save_png(samples.degrade(samples.sprites()["potion"], cell=12.4, seed=5).image, game / "potion-ai.png")
        snap_input = game / "snap-input.png"
        if real:
            snap_input.write_bytes(real[0].read_bytes())
        else:  # no shared data: a synthetic 1024 px input of the same kind
            save_png(samples.degrade(samples.sprites()["potion"], cell=64.0, seed=1).image, snap_input)
        print("starting ComfyUI (CPU) ...", flush=True)
        server = start_server()
        try:
            results = asyncio.run(bench(server.url, game, snap_input, args.rounds, args.warmup))
        finally:
            server.stop()
    results["machine"] = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
