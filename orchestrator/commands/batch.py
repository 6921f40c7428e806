"""``dgx-pixels batch``: run a jobs file over one or several ComfyUI servers, resumable."""
from __future__ import annotations

import argparse

HELP = "run a TOML/YAML list of jobs over one or more ComfyUI servers (resumable)"

DESCRIPTION = """\
Run every job of JOBS_FILE (TOML; YAML when PyYAML is installed) with IN_FLIGHT jobs
submitted at once, each to the least-loaded server (by /queue). Outputs go to OUT/<job id>/
and jobs with a `bevy` + `asset_path` are deployed into that project with provenance.

Resumable: a journal (JOBS_FILE.journal.jsonl, or in --state-dir) records every job's state.
Run the same command again after a crash or Ctrl-C: finished jobs are skipped, submitted jobs
are re-attached through /history (never submitted twice), outputs are never deployed twice.
Ctrl-C takes the running jobs off the server first (up to 30 s on a server that hangs); a
second Ctrl-C quits at once and leaves them there for the rerun.
A server that goes down: its jobs wait for it (and are resubmitted under the same id if it
lost them), or move to another server after --failover-after seconds. When every server
stays down that long the batch stops (exit 3); rerun the same command once one answers.

jobs file:
  servers = ["http://127.0.0.1:8188"]     # optional
  in_flight = 4                           # optional
  [defaults]
  workflow = "cleanup@1"
  bevy = "../my_game"
  [[job]]
  id = "knight"                           # optional
  set = { image = "art/knight.png" }
  asset_path = "sprites/knight.png"

exit codes: 0 all jobs done, 1 other error, 2 bad jobs file (or its output folder is a file),
3 no server reachable, 4 a workflow/parameter is invalid or a model file a job loads is missing
on a server (nothing was submitted), 5 some jobs failed (see the journal), 6 a job's asset path
or project is refused (nothing was submitted), 130 interrupted (143 by SIGTERM; rerun to
continue). The journal sits beside the jobs file (links resolved); a job whose input image
changed since it ran is run again.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from orchestrator.config import add_server_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("jobs_file", metavar="JOBS_FILE", help="TOML (or YAML) file with [[job]] entries")
    add_server_arguments(p, multi=True)
    p.add_argument("--in-flight", type=int, metavar="N", help="jobs submitted at once across all servers (default 4)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: JOBS_FILE's stem + .out next to it)")
    p.add_argument("--state-dir", metavar="DIR", help="keep the journal here instead of next to the jobs file")
    p.add_argument("--timeout", type=float, metavar="S", help="per-job time limit in seconds (default none)")
    p.add_argument("--failover-after", type=float, metavar="S",
                   help="wait this long for a server that went down before moving its jobs to another one, or, "
                        "when none is left, stopping the batch (default 60; 300 with one server)")
    p.add_argument("--detach", action="store_true",
                   help="on Ctrl-C leave submitted jobs running on the server (a rerun collects them)")
    p.add_argument("--no-retry-failed", action="store_true", help="on a rerun, do not retry jobs that failed before")
    p.add_argument("--json", action="store_true", help="JSON event lines on stdout; the last one is the report")
    p.add_argument("-q", "--quiet", action="store_true", help="only the final summary")


def run(args) -> int:
    import json
    import sys
    import threading
    from dataclasses import asdict

    from orchestrator.batch import BatchRunner, journal_path_for, load_jobs_file
    from orchestrator.config import config_from_args
    from orchestrator.progress import make_reporter

    jf = load_jobs_file(args.jobs_file)
    cfg = config_from_args(args)
    if not args.server and jf.servers:
        cfg = cfg.with_overrides(servers=jf.servers)
    reporter = make_reporter(json_mode=args.json, quiet=args.quiet)
    cancel = threading.Event()
    runner = BatchRunner(
        jf, cfg, servers=list(cfg.servers), in_flight=args.in_flight, out_dir=args.out,
        journal_path=journal_path_for(jf.path, args.state_dir), on_event=reporter, cancel=cancel,
        failover_after=args.failover_after, detach_on_cancel=args.detach, retry_failed=not args.no_retry_failed,
    )
    try:
        runner.prepare()
    except BaseException:
        runner.journal.close()
        raise
    try:
        report = runner.run()
    finally:
        if reporter is not None:
            reporter.close()
    if args.json:
        sys.stdout.write(json.dumps({"event": "report", **asdict(report)}) + "\n")
    else:
        print(
            f"{report.total} jobs: {report.done} ran, {report.skipped} already done, {report.deployed} deployed, "
            f"{report.failed} failed, {report.cancelled} cancelled, {report.resubmitted} resubmitted"
            + (f", {report.unfinished} unfinished" if report.unfinished else "")
            + f" in {report.elapsed_s:.1f} s; journal {report.journal}"
        )
        for jid, msg in list(report.failures.items())[:20]:
            print(f"  {jid}: {msg}", file=sys.stderr)
    if report.cancelled or cancel.is_set():
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    if report.servers_down:
        from orchestrator.errors import ServerUnreachableError

        raise ServerUnreachableError(
            f"{report.servers_down}: {report.unfinished} job{'s' if report.unfinished != 1 else ''} unfinished",
            hint="start ComfyUI again and rerun the same command: finished jobs are skipped and submitted ones "
                 "are collected, never run twice (--failover-after sets the wait)")
    if report.failed:
        return 5
    return 0
