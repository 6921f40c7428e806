"""`dgx-pixels models`: manifest, resumable download, sha256 check, atomic placement.

Downloads go to a real HTTP server on loopback (stdlib ``http.server``) that honours
``Range``; one route really closes the socket in the middle of the body, one ignores Range,
one is missing. A full disk is the real ENOSPC of ``/dev/full``.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
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
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if honour_range else "none")
        self.end_headers()
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
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
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


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full not available on this system")
def test_enospc_while_writing_is_reported(server, tmp_path):
    part = tmp_path / "loras" / "tiny.safetensors.part"
    part.parent.mkdir(parents=True)
    part.symlink_to("/dev/full")  # every write there fails with the real ENOSPC
    with pytest.raises(ModelError, match="disk full"):
        m.download(_entry(server.base + "/good.bin"), tmp_path)
    assert not (tmp_path / "loras" / "tiny.safetensors").exists()


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
