"""`dgx-pixels models`: manifest, resumable download, sha256 check, atomic placement.

Downloads go to a real HTTP server on loopback (stdlib ``http.server``) that honours
``Range``; one route really closes the socket in the middle of the body, one ignores Range,
one is missing, others send no length, a chunked body, 503/429 with ``Retry-After``, hold
the body back until the test lets it go, or fall silent in the middle of the body with the
connection open. A full disk is the real ENOSPC of a small tmpfs mounted in a user namespace
(``unshare``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator import models as m
from comfy_nodes.pixel.errors import InvalidArgumentError
from orchestrator.errors import ModelError, SetupError

PAYLOAD = bytes((i * 7 + (i >> 8) * 13) % 256 for i in range(300_000))
SHA = hashlib.sha256(PAYLOAD).hexdigest()
CUT_AT = 123_457
STALL_AT = 200_003  # mid-body, and no multiple of any buffer size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if self.path.startswith(("/busy", "/ratelimited")) and srv.busy_left > 0:
            srv.busy_left -= 1
            code, wait = (503, "1") if self.path.startswith("/busy") else (429, "3600")
            self.send_response(code)
            self.send_header("Retry-After", wait)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/nolength"):
            # HTTP/1.0 style: no Content-Length, the end of the body is the end of the connection
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PAYLOAD if self.path.startswith("/nolength-full") else PAYLOAD[:CUT_AT])
            self.close_connection = True
            return
        if self.path.startswith("/chunked"):  # no Range support
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(PAYLOAD), 65536):
                block = PAYLOAD[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        honour_range = not self.path.startswith("/norange")
        start = 0
        rng = self.headers.get("Range")
        if rng and honour_range:
            mt = re.match(r"bytes=(\d+)-$", rng)
            start = int(mt.group(1))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        chunked = "chunked" in self.path
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if honour_range else "none")
        self.end_headers()
        if self.path.startswith("/held"):
            # the first part, then the rest only once the test opens the gate
            self.wfile.write(body[:1000])
            self.wfile.flush()
            srv.gate.wait(60)
            self.wfile.write(body[1000:])
            return
        if self.path.startswith("/stall") and srv.stalls_left > 0:
            srv.stalls_left -= 1
            # Part of the body, then silence longer than the client's timeout: the connection
            # stays open, so only the client's own clock can end this read.
            part = body[: max(0, STALL_AT - start)]
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            else:
                self.wfile.write(part)
            self.wfile.flush()
            srv.unstall.wait(60)
            self.close_connection = True
            return
        if chunked:
            for i in range(0, len(body), 65536):
                block = body[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/cut") and srv.cuts_left > 0:
            srv.cuts_left -= 1
            # Send part of the promised body, then really drop the TCP connection.
            self.wfile.write(body[: max(0, CUT_AT - start)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests = []
    srv.cuts_left = 0
    srv.busy_left = 0
    srv.gate = threading.Event()
    srv.stalls_left = 0
    srv.unstall = threading.Event()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.gate.set()
    srv.unstall.set()
    srv.shutdown()
    srv.server_close()


def _entry(url: str, sha: str | None = SHA, size: int | None = len(PAYLOAD), name="tiny") -> m.ModelEntry:
    return m.ModelEntry(name=name, file="tiny.safetensors", folder="loras", url=url, size=size, sha256=sha,
                        license="MIT")


def _write_manifest(path: Path, url: str, sha: str = SHA) -> Path:
    path.write_text(
        f"""[[model]]
name = "tiny"
file = "tiny.safetensors"
folder = "loras"
url = "{url}"
size = {len(PAYLOAD)}
sha256 = "{sha}"
license = "MIT"
required = true
"""
    )
    return path


def test_shipped_manifest_is_complete_and_pinned():
    entries = m.load_manifest()
    by_name = {e.name: e for e in entries}
    assert {"sdxl-base", "pixel-art-xl"} <= set(by_name)
    sdxl, lora = by_name["sdxl-base"], by_name["pixel-art-xl"]
    assert (sdxl.file, sdxl.folder) == ("sd_xl_base_1.0.safetensors", "checkpoints")
    assert (lora.file, lora.folder) == ("pixel-art-xl.safetensors", "loras")
    for e in entries:
        assert e.sha256 and re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert e.size and e.size > 1_000_000, e.name
        assert "RAIL" in e.license or e.license in ("MIT", "Apache-2.0"), e.license
        # pinned to a revision (40 hex) so the published hash cannot drift under us
        assert re.search(r"/resolve/[0-9a-f]{40}/", e.url), e.url
        assert e.url.endswith("/" + e.file)


def test_manifest_errors_name_the_entry_and_field(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[[model]]\nname = "x"\nfile = "a.safetensors"\nfolder = "loras"\nurl = "http://h/a"\n'
                   'license = "MIT"\nsha256 = "abc"\n')
    with pytest.raises(ModelError, match=r"model 'x': sha256 must be 64 hex"):
        m.load_manifest(bad)
    bad.write_text('[[model]]\nname = "x"\nfile = "../a"\nfolder = "loras"\nurl = "http://h/a"\nlicense = "MIT"\n')
    with pytest.raises(ModelError, match="bare file name"):
        m.load_manifest(bad)
    with pytest.raises(ModelError, match="not found"):
        m.load_manifest(tmp_path / "nope.toml")


def test_full_download_is_verified_and_placed_atomically(server, tmp_path):
    rep = m.download(_entry(server.base + "/good.bin"), tmp_path)
    target = tmp_path / "loras" / "tiny.safetensors"
    assert target.read_bytes() == PAYLOAD
    assert rep.sha256 == SHA and rep.resumed_from == 0
    assert not (tmp_path / "loras" / "tiny.safetensors.part").exists()
    # second pull: nothing fetched
    n = len(server.requests)
    assert m.download(_entry(server.base + "/good.bin"), tmp_path).already_present
    assert len(server.requests) == n


def test_interrupted_transfer_keeps_part_and_next_pull_resumes(server, tmp_path):
    server.cuts_left = 1
    entry = _entry(server.base + "/cut.bin")
    with pytest.raises(ModelError, match="interrupted") as exc:
        m.download(entry, tmp_path, retries=0)
    assert "resumes" in exc.value.hint
    part = tmp_path / "loras" / "tiny.safetensors.part"
    target = tmp_path / "loras" / "tiny.safetensors"
    assert not target.exists()
    assert part.read_bytes() == PAYLOAD[:CUT_AT]

    rep = m.download(entry, tmp_path, retries=0)
    assert rep.resumed_from == CUT_AT
    assert rep.bytes_fetched == len(PAYLOAD) - CUT_AT
    assert server.requests[-1] == ("/cut.bin", f"bytes={CUT_AT}-")
    assert target.read_bytes() == PAYLOAD and not part.exists()


def test_dropped_connection_is_retried_within_one_pull(server, tmp_path):
    server.cuts_left = 2
    rep = m.download(_entry(server.base + "/cut.bin"), tmp_path, retries=3, retry_wait=0)
    assert rep.restarts == 2
    assert (tmp_path / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    ranges = [r for p, r in server.requests]
    assert ranges == [None, f"bytes={CUT_AT}-", f"bytes={CUT_AT}-"]


@pytest.mark.parametrize("route", ["/stall.bin", "/stall-chunked.bin"])
def test_a_stalled_read_keeps_every_byte_received_and_resumes_from_there(server, tmp_path, route):
    # The server sends STALL_AT bytes and then nothing, connection open, so the read times out.
    # The bytes already received must be in the .part: the retry asks for exactly the rest.
    server.stalls_left = 1
    notes: list[str] = []
    rep = m.download(_entry(server.base + route), tmp_path, retries=1, retry_wait=0, timeout=1.0,
                     note=notes.append)
    assert server.requests == [(route, None), (route, f"bytes={STALL_AT}-")]
    assert rep.restarts == 1 and rep.bytes_fetched == len(PAYLOAD)
    assert any(f"trying again in 0 s from {m._human(STALL_AT)}" in n for n in notes), notes
    target = tmp_path / "loras" / "tiny.safetensors"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SHA == rep.sha256


def test_a_stalled_read_that_uses_up_the_retries_leaves_what_it_received_for_the_next_pull(server, tmp_path):
    server.stalls_left = 1
    entry = _entry(server.base + "/stall.bin")
    with pytest.raises(ModelError, match=f"interrupted .* at {re.escape(m._human(STALL_AT))} of"):
        m.download(entry, tmp_path, retries=0, timeout=1.0)
    part = tmp_path / "loras" / "tiny.safetensors.part"
    assert part.read_bytes() == PAYLOAD[:STALL_AT]
    rep = m.download(entry, tmp_path, retries=0, timeout=1.0)
    assert rep.resumed_from == STALL_AT and server.requests[-1] == ("/stall.bin", f"bytes={STALL_AT}-")
    assert (tmp_path / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD and rep.sha256 == SHA


# ----------------------------------------------------------------------------- network timeout


def test_pull_timeout_comes_from_the_flag_the_environment_or_the_settings_file(server, tmp_path, capsys, monkeypatch):
    # A server that stalls mid-body shows which timeout the pull used: the error names it.
    monkeypatch.delenv("DGX_PIXELS_DOWNLOAD_TIMEOUT", raising=False)
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/stall.bin")
    settings = tmp_path / "dgx-pixels.toml"
    settings.write_text("[timeouts]\ndownload = 1.5\n")
    args = ["models", "pull", "--manifest", str(manifest), "--models-dir", str(tmp_path / "m"), "--retries", "0",
            "--config", str(settings)]

    def stalled_after(extra: list[str]) -> str:
        server.stalls_left = 1
        assert cli.main([*args, *extra]) == 1
        return capsys.readouterr().err

    err = stalled_after([])
    assert "interrupted (no data for 1.5 s) at " in err, err
    assert "raise --timeout (now 1.5 s)" in err
    monkeypatch.setenv("DGX_PIXELS_DOWNLOAD_TIMEOUT", "1")
    assert "interrupted (no data for 1 s) at " in stalled_after([])
    assert "interrupted (no data for 0.5 s) at " in stalled_after(["--timeout", "0.5"])
    # every byte that came before a stall is kept, whichever timeout ended it
    assert (tmp_path / "m" / "loras" / "tiny.safetensors.part").read_bytes() == PAYLOAD[:STALL_AT]
    assert cli.main([*args, "--timeout", "5"]) == 0
    assert (tmp_path / "m" / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/stall.bin", f"bytes={STALL_AT}-")


@pytest.mark.parametrize("value, shown", [("0", "0"), ("-2", "-2"), ("nan", "nan"), ("inf", "inf")])
def test_a_timeout_that_is_not_a_positive_number_is_bad_input_naming_the_option(
        server, tmp_path, capsys, monkeypatch, value, shown):
    monkeypatch.delenv("DGX_PIXELS_DOWNLOAD_TIMEOUT", raising=False)
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/good.bin")
    args = ["models", "pull", "--manifest", str(manifest), "--models-dir", str(tmp_path / "m")]
    assert cli.main([*args, f"--timeout={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --timeout must be a positive number of seconds, got {shown}\nhint: "), err

    monkeypatch.setenv("DGX_PIXELS_DOWNLOAD_TIMEOUT", value)
    assert cli.main(args) == 2
    assert f"error: DGX_PIXELS_DOWNLOAD_TIMEOUT must be a positive number of seconds, got {shown}\n" \
        in capsys.readouterr().err
    monkeypatch.setenv("DGX_PIXELS_DOWNLOAD_TIMEOUT", "soon")
    assert cli.main(args) == 2
    assert "DGX_PIXELS_DOWNLOAD_TIMEOUT must be a positive number of seconds, got 'soon'" in capsys.readouterr().err
    monkeypatch.delenv("DGX_PIXELS_DOWNLOAD_TIMEOUT")

    settings = tmp_path / "dgx-pixels.toml"
    settings.write_text(f"[timeouts]\ndownload = {value}\n")  # TOML spells nan and inf the same
    assert cli.main([*args, "--config", str(settings)]) == 2
    assert f"error: {settings}: [timeouts] download must be a positive number of seconds, got {shown}\n" \
        in capsys.readouterr().err
    settings.write_text('[timeouts]\ndownload = "60"\n')
    assert cli.main([*args, "--config", str(settings)]) == 2
    assert "[timeouts] download must be a positive number of seconds, got '60'" in capsys.readouterr().err

    with pytest.raises(InvalidArgumentError, match="timeout must be a positive number of seconds"):
        m.download(_entry(server.base + "/good.bin"), tmp_path / "lib", timeout=float(value))
    assert server.requests == [] and not (tmp_path / "m").exists()


def test_pull_help_documents_the_timeout(capsys):
    with pytest.raises(SystemExit):
        cli.main(["models", "pull", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--timeout SECONDS" in out
    assert "DGX_PIXELS_DOWNLOAD_TIMEOUT" in out and "[timeouts] download" in out and "else 30)" in out


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    part = tmp_path / "loras" / "tiny.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    notes = []
    rep = m.download(_entry(server.base + "/norange.bin"), tmp_path, note=notes.append)
    assert rep.range_ignored
    assert any("does not support resuming" in n for n in notes)
    assert (tmp_path / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD


def test_wrong_hash_is_refused_and_removed(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ModelError, match=f"sha256 mismatch for tiny.safetensors: expected {wrong}, got {SHA}"):
        m.download(_entry(server.base + "/good.bin", sha=wrong), tmp_path)
    assert list((tmp_path / "loras").iterdir()) == []


def test_wrong_size_is_refused(server, tmp_path):
    with pytest.raises(ModelError, match="manifest says"):
        m.download(_entry(server.base + "/good.bin", size=len(PAYLOAD) + 5), tmp_path)
    assert not (tmp_path / "loras" / "tiny.safetensors").exists()


def test_404_names_the_url(server, tmp_path):
    with pytest.raises(ModelError, match=r"404 Not Found: http://127\.0\.0\.1:\d+/missing/x"):
        m.download(_entry(server.base + "/missing/x"), tmp_path)


def test_unreachable_server(tmp_path):
    with pytest.raises(ModelError, match="cannot reach"):
        m.download(_entry("http://127.0.0.1:9/x"), tmp_path, retries=0, timeout=2)


def test_not_enough_space_is_refused_before_downloading(server, tmp_path):
    with pytest.raises(ModelError, match="disk full: no space left") as exc:
        m.download(_entry(server.base + "/good.bin", size=1 << 60), tmp_path)
    assert "resumes" in exc.value.hint
    assert server.requests == []


_ENOSPC_CHILD = """
import json, sys
from orchestrator import models as m
from orchestrator.errors import ModelError
entry = m.ModelEntry(name="tiny", file="tiny.safetensors", folder="loras", url=sys.argv[2], size=None,
                     sha256=sys.argv[3], license="MIT")
try:
    m.download(entry, sys.argv[1], retries=0)
    print(json.dumps({"error": None}))
except ModelError as exc:
    print(json.dumps({"error": exc.message, "hint": exc.hint}))
"""


def test_enospc_while_writing_is_reported(server, tmp_path, repo_root):
    # A real full disk: a 128 KiB tmpfs, mounted in a private user + mount namespace so no
    # privilege is needed. No size in the entry, so nothing refuses the download up front.
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs `unshare -rm` (user namespaces) to mount a small tmpfs")
    models = tmp_path / "models"
    models.mkdir()
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=128k tmpfs "$1" && shift && exec "$@"', "sh",
         str(models), sys.executable, "-c", _ENOSPC_CHILD, str(models), server.base + "/good.bin", SHA],
        capture_output=True, text=True, cwd=repo_root, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["error"] and result["error"].startswith("disk full: no space left in"), result
    assert "resumes" in result["hint"]
    assert not (models / "loras").exists()  # it all happened on the tmpfs, gone with its namespace


def test_cli_pull_and_verify(server, tmp_path, capsys):
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/good.bin")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    assert cli.main(["models", "verify", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 1
    assert "missing" in capsys.readouterr().out
    assert cli.main(["models", "pull", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 0
    assert (models_dir / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    assert cli.main(["models", "verify", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 0
    assert re.search(r"tiny\s+ok", capsys.readouterr().out)
    # corrupt the installed file: verify must fail and say what it expected
    with open(models_dir / "loras" / "tiny.safetensors", "r+b") as fh:
        fh.write(b"X")
    assert cli.main(["models", "verify", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 1
    assert f"wrong_hash (expected {SHA}" in capsys.readouterr().out


def test_cli_reports_hash_error_as_error_line(server, tmp_path, capsys):
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/good.bin", sha="f" * 64)
    code = cli.main(["models", "pull", "--manifest", str(manifest), "--models-dir", str(tmp_path / "mm")])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: sha256 mismatch for tiny.safetensors" in err and "hint:" in err
    assert "Traceback" not in err


def test_cli_list_and_bad_comfyui_path(tmp_path, capsys):
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "sd_xl_base_1.0.safetensors" in out and "31e35c80fc4829d1" in out
    assert cli.main(["models", "pull", "--comfyui", str(tmp_path)]) == 2
    assert f"error: {tmp_path} is not a ComfyUI folder" in capsys.readouterr().err


def test_a_models_folder_that_is_not_there_is_named_not_listed_as_missing_models(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "mdoels"
    for action in ("list", "verify"):
        assert cli.main(["models", action, "--models-dir", str(missing)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: models folder {missing} does not exist\n") and "`models pull` creates it" in err
    (tmp_path / "afile").write_text("x")
    assert cli.main(["models", "pull", "--models-dir", str(tmp_path / "afile")]) == 2
    assert f"models folder {tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setenv("DGX_PIXELS_COMFYUI", str(tmp_path))
    assert cli.main(["models", "verify"]) == 2
    assert f"error: DGX_PIXELS_COMFYUI: {tmp_path} is not a ComfyUI folder" in capsys.readouterr().err
    assert not missing.exists()


def test_resolve_models_dir(tmp_path):
    (tmp_path / "main.py").write_text("")
    (tmp_path / "folder_paths.py").write_text("")
    assert m.resolve_models_dir(comfyui=str(tmp_path)) == tmp_path / "models"
    assert m.resolve_models_dir(models_dir=str(tmp_path / "x")) == tmp_path / "x"
    with pytest.raises(InvalidArgumentError):
        m.resolve_models_dir(comfyui=str(tmp_path), models_dir=str(tmp_path))


# ----------------------------------------------------------------------------- one pull per file


def _cli_pull(manifest: Path, models_dir: Path, repo_root: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "models", "pull", "--manifest", str(manifest), "--models-dir",
         str(models_dir), "--quiet"],
        cwd=repo_root, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )


def _wait_for(cond, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_a_second_pull_of_the_same_file_waits_and_never_writes_into_it(server, tmp_path, repo_root):
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/held.bin")
    models_dir = tmp_path / "models"
    part = models_dir / "loras" / "tiny.safetensors.part"
    first = _cli_pull(manifest, models_dir, repo_root, tmp_path / "first.log")
    second = None
    try:
        # the first pull holds the lock and its request is in flight, its body held back
        assert _wait_for(lambda: len(server.requests) == 1 and part.is_file()), "the first pull never started"
        second = _cli_pull(manifest, models_dir, repo_root, tmp_path / "second.log")
        waiting = _wait_for(lambda: "waiting for it to finish" in (tmp_path / "second.log").read_text()
                            or second.poll() is not None)
        server.gate.set()
        assert first.wait(60) == 0 and second.wait(60) == 0
    finally:
        server.gate.set()
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    log = (tmp_path / "second.log").read_text()
    assert waiting and f"another `dgx-pixels models pull` (pid {first.pid}) is downloading tiny.safetensors" in log
    assert "tiny: already installed and verified" in log
    assert (models_dir / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/held.bin"]  # the file came down once
    assert sorted(p.name for p in (models_dir / "loras").iterdir()) == ["tiny.safetensors"]


@pytest.mark.skipif(os.name == "nt", reason="the lock holder below uses fcntl")
def test_a_lock_left_by_a_killed_pull_does_not_block(server, tmp_path):
    lock = tmp_path / "loras" / "tiny.safetensors.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nos.write(fd, b'%d' % os.getpid())\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(120)\n", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        notes: list[str] = []
        done: dict = {}
        t = threading.Thread(target=lambda: done.update(
            rep=m.download(_entry(server.base + "/good.bin"), tmp_path, note=notes.append, lock_poll=0.05)))
        t.start()
        assert _wait_for(lambda: any("waiting for it to finish" in n for n in notes), 10), notes
        assert server.requests == []
        holder.send_signal(signal.SIGKILL)  # no clean-up: the kernel drops the lock, the file stays
        t.join(30)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert done["rep"].waited_for_lock
    assert (tmp_path / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    assert not lock.exists()
    # a leftover lock file that nobody holds is simply taken over
    lock.write_text("999999\n")
    (tmp_path / "loras" / "tiny.safetensors").unlink()
    assert not m.download(_entry(server.base + "/good.bin"), tmp_path).waited_for_lock


# ----------------------------------------------------------------------------- symbolic links


@pytest.mark.parametrize("route", ["/good.bin", "/norange.bin"])
def test_a_part_file_that_is_a_symlink_is_never_written_through(server, tmp_path, route):
    models_dir, outside = tmp_path / "models", tmp_path / "outside"
    (models_dir / "loras").mkdir(parents=True)
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"IMPORTANT USER DATA\n")
    part = models_dir / "loras" / "tiny.safetensors.part"
    part.symlink_to(victim)
    (models_dir / "loras" / "tiny.safetensors.lock").symlink_to(outside / "lock-created-here")
    notes: list[str] = []
    rep = m.download(_entry(server.base + route), models_dir, note=notes.append)
    target = models_dir / "loras" / "tiny.safetensors"
    assert victim.read_bytes() == b"IMPORTANT USER DATA\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert not target.is_symlink() and target.read_bytes() == PAYLOAD and rep.resumed_from == 0
    assert any(f"{part} is a symbolic link (to {victim})" in n for n in notes), notes

    # a link to a file that does not exist yet: nothing is created there either
    target.unlink()
    part.symlink_to(outside / "created.bin")
    m.download(_entry(server.base + route), models_dir)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert not target.is_symlink() and target.read_bytes() == PAYLOAD


def test_a_folder_where_the_model_goes_is_refused_before_downloading(server, tmp_path):
    (tmp_path / "loras" / "tiny.safetensors").mkdir(parents=True)
    with pytest.raises(ModelError, match=r"tiny\.safetensors is a folder; the model file tiny\.safetensors goes there"):
        m.download(_entry(server.base + "/good.bin"), tmp_path)
    assert server.requests == []


# ----------------------------------------------------------------------------- no length, no checksum


def test_a_body_of_unknown_length_is_not_installed_without_size_or_sha256(server, tmp_path, capsys):
    entry = _entry(server.base + "/nolength.bin", sha=None, size=None)
    with pytest.raises(ModelError, match="cannot be told apart from a cut-off download") as exc:
        m.download(entry, tmp_path, retries=0)
    assert "add size = <bytes> and sha256" in exc.value.hint and "manifest entry 'tiny'" in exc.value.hint
    assert not (tmp_path / "loras" / "tiny.safetensors").exists()
    assert (tmp_path / "loras" / "tiny.safetensors.part").read_bytes() == PAYLOAD[:CUT_AT]
    # the whole body without a length is just as uncheckable
    with pytest.raises(ModelError, match="cannot be told apart"):
        m.download(_entry(server.base + "/nolength-full.bin", sha=None, size=None), tmp_path / "b", retries=0)
    # with a sha256 the hash decides, and a whole body passes
    assert m.download(_entry(server.base + "/nolength-full.bin", size=None), tmp_path / "c").sha256 == SHA
    # a chunked body ends with a terminator, so its end is known even with neither value
    assert m.download(_entry(server.base + "/chunked.bin", sha=None, size=None), tmp_path / "d").sha256 == SHA
    assert (tmp_path / "d" / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD


def test_a_file_without_published_sha256_is_called_unverified_not_verified(server, tmp_path, capsys):
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(f'[[model]]\nname = "tiny"\nfile = "tiny.safetensors"\nfolder = "loras"\n'
                        f'url = "{server.base}/chunked.bin"\nsize = "unknown"\nsha256 = "unknown"\nlicense = "MIT"\n')
    args = ["--manifest", str(manifest), "--models-dir", str(tmp_path / "models")]
    assert cli.main(["models", "pull", *args]) == 0
    assert "tiny: placed unverified (the manifest publishes no sha256" in capsys.readouterr().err
    assert cli.main(["models", "pull", *args]) == 0
    err = capsys.readouterr().err
    assert "tiny: already installed, unverified" in err and "verified" not in err.replace("unverified", "")
    assert cli.main(["models", "verify", *args]) == 0
    assert f"tiny           unverified (the manifest publishes no sha256 and no size: nothing to check it against; " \
           f"sha256 {SHA})" in capsys.readouterr().out


# ----------------------------------------------------------------------------- temporary errors


def test_a_temporary_server_error_is_retried_after_its_retry_after(server, tmp_path):
    server.busy_left = 1
    notes: list[str] = []
    t0 = time.monotonic()
    rep = m.download(_entry(server.base + "/busy.bin"), tmp_path, retry_wait=0, note=notes.append)
    assert time.monotonic() - t0 >= 0.9  # Retry-After: 1
    assert rep.restarts == 1 and (tmp_path / "loras" / "tiny.safetensors").read_bytes() == PAYLOAD
    assert any("HTTP 503 Service Unavailable); trying again in 1 s" in n for n in notes), notes
    # used up: the error says so, and keeps the partial file for the next run
    server.busy_left = 5
    with pytest.raises(ModelError, match=r"HTTP 503 Service Unavailable while downloading") as exc:
        m.download(_entry(server.base + "/busy.bin"), tmp_path / "b", retries=1)
    assert "resumes" in exc.value.hint
    # a long Retry-After is not slept through
    server.busy_left = 1
    with pytest.raises(ModelError, match="the server asks to wait 3600 s"):
        m.download(_entry(server.base + "/ratelimited.bin"), tmp_path / "c")


def test_a_refused_connection_is_retried(tmp_path):
    notes: list[str] = []
    with pytest.raises(ModelError, match="cannot reach"):
        m.download(_entry("http://127.0.0.1:9/x"), tmp_path, retries=2, retry_wait=0, note=notes.append)
    assert [n for n in notes if "connection refused" in n] == [
        "temporary error (connection refused); trying again in 0 s from 0 B (try 1/2)",
        "temporary error (connection refused); trying again in 0 s from 0 B (try 2/2)",
    ]


# ----------------------------------------------------------------------------- bad manifests, bad names


def _model_toml(**fields) -> str:
    base = {"name": '"x"', "file": '"x.safetensors"', "folder": '"loras"', "url": '"http://h/x"', "license": '"MIT"'}
    base.update(fields)
    return "[[model]]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe[[model]]\n", "is not UTF-8 text"),
    (b"model = [1, 2]\n", "entry #1: expected a [[model]] table, got int 1"),
    (b'model = ["a"]\n', "entry #1: expected a [[model]] table, got str 'a'"),
    (_model_toml(used_by="5").encode(), "model 'x': used_by must be a list of workflow names, got 5"),
    (_model_toml(file='"x\\u0000y.safetensors"').encode(), "model 'x': file must be a bare file name, got 'x\\x00y"),
    (_model_toml(required='"false"').encode(), "model 'x': required must be true or false (no quotes), got 'false'"),
    (_model_toml(title="[1]").encode(), "model 'x': title must be a string"),
])
def test_a_malformed_manifest_is_bad_input_naming_file_and_entry(tmp_path, capsys, content, message):
    manifest = tmp_path / "manifest.toml"
    manifest.write_bytes(content)
    for action in (["list"], ["pull", "--models-dir", str(tmp_path / "m")], ["verify", "--models-dir", str(tmp_path)]):
        assert cli.main(["models", *action, "--manifest", str(manifest)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(manifest) in err and message in err, err
        assert "hint: " in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_an_unknown_model_name_is_bad_input(tmp_path, capsys):
    manifest = _write_manifest(tmp_path / "manifest.toml", "http://127.0.0.1:9/x")
    for action in ("pull", "verify"):
        assert cli.main(["models", action, "nosuch", "--manifest", str(manifest), "--models-dir", str(tmp_path)]) == 2
        assert "error: no model named 'nosuch' in the manifest" in capsys.readouterr().err


def test_required_only_says_which_named_models_it_skips(server, tmp_path, capsys):
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(_model_toml(url=f'"{server.base}/good.bin"', required="false"))
    assert cli.main(["models", "pull", "x", "--required-only", "--manifest", str(manifest),
                     "--models-dir", str(tmp_path / "m")]) == 0
    assert "x: optional, skipped (--required-only)" in capsys.readouterr().err
    assert server.requests == []


# ----------------------------------------------------------------------------- doctor's models check


class _ComfyModelsHandler(BaseHTTPRequestHandler):
    """Only ComfyUI's /models and /models/<folder>; ``server.refuse`` is the code to answer instead."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        if srv.refuse:
            body, code = b'{"error": "forbidden"}', srv.refuse
        else:
            folder = self.path[len("/models/"):] if self.path.startswith("/models/") else None
            listing = srv.files.get(folder, []) if folder is not None else list(srv.files)
            body, code = json.dumps(listing).encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_doctor_says_it_could_not_check_models_and_counts_files_not_uses():
    pytest.importorskip("requests")
    from orchestrator.client import ComfyClient
    from orchestrator.commands.doctor import _check_workflows
    from orchestrator.workflows import load_registry

    wfs = load_registry().list()
    info = {t: {} for wf in wfs for t in (getattr(wf, "required_nodes", None)
                                          or {n.get("class_type") for n in wf.api_prompt.values()})}
    files = {(mm.folder, mm.name) for wf in wfs for mm in wf.models}
    uses = sum(len(wf.models) for wf in wfs)
    assert len(files) == 2 and uses > len(files)  # the shipped workflows share both files
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _ComfyModelsHandler)
    srv.files, srv.refuse = {}, 403
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = ComfyClient(f"http://127.0.0.1:{srv.server_address[1]}")
    try:
        def models_check() -> tuple[str, str]:
            checks = []
            _check_workflows(client, info, lambda name, status, detail: checks.append((name, status, detail)))
            return next((status, detail) for name, status, detail in checks if name == "models")

        status, detail = models_check()
        assert status == "warn" and "missing" not in detail, detail
        assert detail.startswith("could not check checkpoints/sd_xl_base_1.0.safetensors (for ")
        assert "the server would not list /models/checkpoints (" in detail and "403" in detail

        srv.refuse = 0
        for folder, name in files:
            srv.files.setdefault(folder, []).append(name)
        assert models_check() == ("ok", "2 model file(s) present")
        srv.files["loras"] = []
        status, detail = models_check()
        assert status == "fail" and detail.startswith("missing: loras/pixel-art-xl.safetensors (for ")
    finally:
        client.close()
        srv.shutdown()
        srv.server_close()


def test_a_size_the_server_announces_against_the_manifest_is_refused_before_the_body(server, tmp_path):
    """A 200 whose Content-Length is not the manifest's size was refused only after the whole
    body had been fetched (for SDXL, 6.5 GiB thrown away). It is refused on the headers."""
    with pytest.raises(ModelError, match=rf"tiny.safetensors: the server announces {len(PAYLOAD)} bytes but the "
                                         rf"manifest says {len(PAYLOAD) + 5}") as exc:
        m.download(_entry(server.base + "/good.bin", size=len(PAYLOAD) + 5), tmp_path)
    assert "check the URL" in exc.value.hint
    assert [p.name for p in (tmp_path / "loras").iterdir() if p.stat().st_size > 0] == []


def test_negative_retries_and_the_list_label(server, tmp_path, capsys):
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/good.bin")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    assert cli.main(["models", "pull", "--manifest", str(manifest), "--models-dir", str(models_dir),
                     "--retries", "-1"]) == 2
    assert "error: --retries must be 0 or more, got -1" in capsys.readouterr().err
    assert not (models_dir / "loras").exists()
    assert cli.main(["models", "pull", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 0
    # one byte changed, the size the same: list (which reads no hash) does not call it ok
    with open(models_dir / "loras" / "tiny.safetensors", "r+b") as fh:
        fh.write(b"X")
    capsys.readouterr()
    assert cli.main(["models", "list", "--manifest", str(manifest), "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "[present, size matches; `models verify` checks its sha256]" in out and "[ok]" not in out


def test_a_folder_or_file_in_the_way_is_named_by_verify_and_pull(server, tmp_path, capsys):
    """verify said "missing" for a model name that is a folder, or whose folder is a file; pull
    said "cannot create md/checkpoints: File exists" with no hint."""
    manifest = _write_manifest(tmp_path / "manifest.toml", server.base + "/good.bin")
    md = tmp_path / "md"
    (md / "loras" / "tiny.safetensors").mkdir(parents=True)
    assert cli.main(["models", "verify", "--manifest", str(manifest), "--models-dir", str(md)]) == 1
    assert f"blocked ({md / 'loras' / 'tiny.safetensors'} is a folder)" in capsys.readouterr().out
    (md / "loras" / "tiny.safetensors").rmdir()
    (md / "loras").rmdir()
    (md / "loras").write_text("not a folder")
    assert cli.main(["models", "verify", "--manifest", str(manifest), "--models-dir", str(md)]) == 1
    assert f"blocked ({md / 'loras'} is a file where its folder goes)" in capsys.readouterr().out
    assert cli.main(["models", "pull", "--manifest", str(manifest), "--models-dir", str(md)]) == 1
    err = capsys.readouterr().err
    assert f"error: {md / 'loras'} is a file; it must be the folder the model file tiny.safetensors goes into" in err
    assert "hint: move or remove that file" in err
    assert (md / "loras").read_text() == "not a folder"
