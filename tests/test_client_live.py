"""The ComfyUI client against a real ComfyUI 0.3.75 (the ``comfy_server`` fixture).

Some tests put a small loopback proxy between the client and the server. It forwards every
HTTP request to the real server and splices the websocket at TCP level, so it can cut the
socket the way a network failure does, record what the client sends (auth headers, pings),
or act as a hostile server that renames outputs to path-traversal names.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("requests")
pytest.importorskip("websocket")

from orchestrator.client import ComfyClient, PromptRejectedError  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.errors import ServerUnreachableError  # noqa: E402
from orchestrator.run import JobRun, prepare_job, run_workflow, safe_filename  # noqa: E402


# ----------------------------------------------------------------------------- helpers


def _sprite(seed: int, size: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb, "RGB").save(path)
    return path


def postproc_prompt(image: str, scale: int = 2, prefix: str = "client") -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "DGXPixelsNearestUpscale", "inputs": {"image": ["2", 0], "scale": scale}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def slow_prompt(color: int, size: int = 768, radius: int = 12, prefix: str = "slow") -> dict:
    """A job that takes a moment on CPU (a big blur); ``color`` makes it uncached."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": radius, "sigma": 4.0}},
        "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "upscale_method": "nearest-exact", "scale_by": 0.05}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def expected_pixels(rgb: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(255 - rgb, scale, axis=0), scale, axis=1)


class LoopbackProxy:
    """HTTP proxy on 127.0.0.1 in front of a real ComfyUI (see the module docstring)."""

    def __init__(self, upstream: str, *, hostile: bool = False, tls: tuple[str, str] | None = None, port: int = 0):
        import requests
        import ssl

        parts = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = parts.hostname, parts.port
        self.upstream = upstream.rstrip("/")
        self.hostile = hostile
        self.renamed: dict[str, tuple[str, str]] = {}
        self.headers_seen: list[dict] = []
        self.ws_client_bytes = 0
        self.ws_connections = 0
        self._ws_socks: list[socket.socket] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", port))
        self._srv.listen(64)
        self.port = self._srv.getsockname()[1]
        self._tls = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every connection, kept-alive HTTP ones too: to the client
        the server is gone."""
        self._stop = True
        self._srv.close()
        self.drop_websockets()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_websockets(self) -> int:
        with self._lock:
            socks, self._ws_socks = self._ws_socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(socks)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _wrap(self, conn: socket.socket) -> socket.socket | None:
        if self._tls is None:
            return conn
        try:
            return self._tls.wrap_socket(conn, server_side=True)
        except OSError:  # e.g. a client that refused our certificate
            conn.close()
            return None

    @staticmethod
    def _read_head(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        conn = self._wrap(conn)
        if conn is None:
            return
        with self._lock:
            self._conns.append(conn)
        try:
            while not self._stop:
                got = self._read_head(conn, buf)
                if got is None:
                    return
                head, rest = got
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                with self._lock:
                    self.headers_seen.append({"path": target, **headers})
                if target.startswith("/ws"):
                    self._splice(conn, head + b"\r\n\r\n" + rest)
                    return
                length = int(headers.get("content-length", "0") or 0)
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                body, buf = rest[:length], rest[length:]
                self._forward(conn, method, target, headers, body)
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _forward(self, conn, method, target, headers, body) -> None:
        path, _, query = target.partition("?")
        if self.hostile and path == "/view":
            q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            real = self.renamed.get(q.get("filename", ""))
            if real is not None:
                q["filename"], q["subfolder"] = real
                query = urllib.parse.urlencode(q)
        fwd = {k: v for k, v in headers.items() if k not in ("host", "content-length", "connection", "accept-encoding")}
        resp = self._session.request(method, self.upstream + path + (f"?{query}" if query else ""), data=body or None,
                                     headers=fwd, timeout=60)
        data = resp.content
        if self.hostile and path.startswith("/history/") and resp.status_code == 200:
            doc = resp.json()
            for entry in doc.values():
                for ui in (entry.get("outputs") or {}).values():
                    for items in ui.values():
                        for it in items if isinstance(items, list) else []:
                            if isinstance(it, dict) and "filename" in it:
                                evil = f"../../../../../tmp/{it['filename']}"
                                self.renamed[evil] = (it["filename"], it.get("subfolder", ""))
                                it["filename"] = evil
                                it["subfolder"] = "../../../.."
            data = json.dumps(doc).encode()
        ctype = resp.headers.get("Content-Type", "application/octet-stream")
        out = (f"HTTP/1.1 {resp.status_code} {resp.reason}\r\nContent-Type: {ctype}\r\n"
               f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n").encode() + data
        conn.sendall(out)

    def _splice(self, client: socket.socket, first: bytes) -> None:
        up = socket.create_connection((self.up_host, self.up_port))
        up.sendall(first)
        with self._lock:
            self._ws_socks += [client, up]
            self.ws_connections += 1
        handshake_done = threading.Event()

        def pump(src, dst, count: bool):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if count and handshake_done.is_set():
                        with self._lock:
                            self.ws_client_bytes += len(data)
                    if not count:
                        handshake_done.set()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(up, client, False), daemon=True)
        t.start()
        pump(client, up, True)
        t.join(5)
        up.close()


@pytest.fixture
def client(comfy_server):
    c = ComfyClient(comfy_server.url, load_config(servers=[comfy_server.url], environ={}))
    yield c
    c.close()


# ----------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ComfyUI_00001_.png", "ComfyUI_00001_.png"),
        ("../../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.png", "evil.png"),
        ("/abs/path/x.png", "x.png"),
        (".bashrc", "bashrc"),
        ("..", "output"),
        ("", "output"),
        ("con.png", "con_.png"),
        ("a b;rm -rf $(x).png", "a_b_rm_-rf_x_.png"),
        ("nul\x00.png", "nul_.png"),
        ("ok\x00.png", "ok.png"),
    ],
)
def test_safe_filename_strips_every_path_and_odd_character(name, expected):
    assert safe_filename(name) == expected


def test_safe_filename_caps_length():
    out = safe_filename("x" * 500 + ".png")
    assert out.endswith(".png") and len(out) <= 120


def test_config_masks_token_and_url_password():
    cfg = load_config(servers=["https://user:hunter2pw@gpu.example:8443"], token="tok-abcdef123", environ={})
    text = cfg.mask("failed https://user:hunter2pw@gpu.example:8443 with header Bearer tok-abcdef123")
    assert "hunter2pw" not in text and "tok-abcdef123" not in text
    assert "***" in text
    assert cfg.auth_headers() == {"Authorization": "Bearer tok-abcdef123"}
    cfg2 = load_config(token="k", auth_header="X-Api-Key", environ={})
    assert cfg2.auth_headers() == {"X-Api-Key": "k"}


def test_config_file_env_and_flags_merge(tmp_path):
    f = tmp_path / "dgx-pixels.toml"
    f.write_text('[server]\nurls = ["http://a:1", "b:2"]\ntoken_env = "MY_TOK"\n[timeouts]\njob = 7\nping = 3\n[batch]\nin_flight = 9\n')
    cfg = load_config(f, environ={"MY_TOK": "from-env"})
    assert cfg.servers == ("http://a:1", "http://b:2")
    assert cfg.token == "from-env" and cfg.job_timeout == 7 and cfg.ping_interval == 3 and cfg.in_flight == 9
    cfg = load_config(f, environ={"DGX_PIXELS_SERVER": "http://c:3", "DGX_PIXELS_TOKEN": "t2"}, servers=["http://d:4"])
    assert cfg.servers == ("http://d:4",) and cfg.token == "t2"


def test_config_file_server_shorthand(tmp_path):
    f = tmp_path / "dgx-pixels.toml"
    f.write_text('server = "http://127.0.0.1:8299"\n')
    assert load_config(f, environ={}).servers == ("http://127.0.0.1:8299",)


@pytest.mark.parametrize("text, message", [
    ('[server]\nurl = 5\n', "[server] url must be a URL text, or urls a list of them; got 5"),
    ('server = 5\n', "server must be a [server] table, got 5"),
    ('[batch]\nin_flight = "x"\n', "[batch] in_flight must be a whole number >= 1, got 'x'"),
    ('timeouts = "fast"\n', "timeouts must be a [timeouts] table"),
    ('[server]\ntoken = 5\n', "[server] token must be text, got 5"),
])
def test_a_malformed_config_file_is_named_not_a_traceback(tmp_path, capsys, text, message):
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.cli import main

    f = tmp_path / "dgx-pixels.toml"
    f.write_text(text)
    with pytest.raises(InvalidArgumentError) as exc:
        load_config(f, environ={})
    assert exc.value.message == f"{f}: {message}" or exc.value.message.startswith(f"{f}: {message}")
    assert main(["doctor", "--config", str(f)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_negative_job_time_limit_is_refused():
    from comfy_nodes.pixel.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="the job time limit must be >= 0 seconds"):
        load_config(job_timeout=-5, environ={})


def test_unreachable_server_is_a_clear_error_without_secrets():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(servers=[f"http://user:pw-secret-9@127.0.0.1:{port}"], token="tok-secret-1", environ={})
    c = ComfyClient(config=cfg)
    try:
        with pytest.raises(ServerUnreachableError) as ei:
            c.queue()
    finally:
        c.close()
    msg = str(ei.value)
    assert "not reachable" in msg and f"127.0.0.1:{port}" in msg
    assert "pw-secret-9" not in msg and "tok-secret-1" not in msg
    assert ei.value.exit_code == 3


# ----------------------------------------------------------------------------- live


def test_locate_tells_queued_done_and_unknown_apart(client, tmp_path):
    img = client.upload_image(_png_bytes(_sprite(1)), "client-a.png")
    prompt = postproc_prompt(img, prefix="locate")
    assert client.locate("no-such-prompt-id") == ("unknown", None)
    assert client.history("no-such-prompt-id") is None
    run = JobRun(client, prepare_job(prompt, fresh=True))
    pid = run.submit()
    entry = run.wait()
    state, h = client.locate(pid)
    assert state == "done" and h["status"]["status_str"] == "success"
    assert entry["outputs"]["4"]["images"][0]["filename"].startswith("locate")


def _png_bytes(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG")
    return buf.getvalue()


def test_node_errors_become_one_message_naming_node_type_and_input(client):
    img = client.upload_image(_png_bytes(_sprite(2)), "client-b.png")
    prompt = postproc_prompt(img)
    prompt["3"]["inputs"]["scale"] = 999
    with pytest.raises(PromptRejectedError) as ei:
        client.submit(prompt)
    msg = ei.value.message
    assert "node 3 (DGXPixelsNearestUpscale)" in msg
    assert "input 'scale'" in msg
    assert "999" in msg and "max" in msg
    assert ei.value.exit_code == 4


def test_missing_node_type_is_named(client):
    img = client.upload_image(_png_bytes(_sprite(3)), "client-c.png")
    prompt = postproc_prompt(img)
    prompt["2"]["class_type"] = "DGXPixelsNoSuchNode"
    with pytest.raises(PromptRejectedError) as ei:
        client.submit(prompt)
    assert "node 2 (DGXPixelsNoSuchNode)" in ei.value.message
    assert "does not exist" in ei.value.message


def test_websocket_drop_mid_job_is_survived(comfy_server, tmp_path):
    proxy = LoopbackProxy(comfy_server.url)
    cfg = load_config(servers=[proxy.url], environ={})
    c = ComfyClient(proxy.url, cfg)
    events = []
    dropped = []

    def on_event(ev):
        events.append(ev["event"])
        if ev["event"] in ("started", "executing") and not dropped:
            dropped.append(proxy.drop_websockets())

    try:
        res = run_workflow(slow_prompt(color=int(time.time() * 1000) % 0xFFFFFF, size=768, radius=10),
                           client=c, out_dir=tmp_path / "out", on_event=on_event)
    finally:
        c.close()
        proxy.close()
    assert dropped and dropped[0] >= 2  # both ends of the spliced socket were cut
    assert "reconnecting" in events
    assert proxy.ws_connections >= 2
    assert res.resubmitted == 0  # the server still knew the job: recovered, not resubmitted
    assert len(res.outputs) == 1 and Path(res.outputs[0].path).is_file()
    assert events.count("submitted") == 1 and events[-1] == "output"


def test_hostile_output_names_stay_inside_the_output_folder(comfy_server, tmp_path):
    proxy = LoopbackProxy(comfy_server.url, hostile=True)
    c = ComfyClient(proxy.url, load_config(servers=[proxy.url], environ={}))
    rgb = _sprite(4)
    src = _write_png(tmp_path / "in.png", rgb)
    out = tmp_path / "deep" / "out"
    try:
        res = run_workflow(postproc_prompt(str(src), scale=3, prefix="hostile"), client=c, out_dir=out, fresh=True)
    finally:
        c.close()
        proxy.close()
    assert proxy.renamed, "the proxy did rename the outputs"
    f = res.outputs[0]
    assert f.server_filename.startswith("../../../../../tmp/")
    p = Path(f.path)
    assert p.parent == out.resolve() and p.name == safe_filename(f.server_filename)
    assert not (Path("/tmp") / p.name).exists() or (Path("/tmp") / p.name).stat().st_mtime < time.time() - 60
    assert sorted(x.name for x in out.iterdir()) == [p.name]
    assert not any(x.name.endswith(".png") for x in tmp_path.iterdir() if x.name != "in.png")
    np.testing.assert_array_equal(np.asarray(Image.open(p).convert("RGB")), expected_pixels(rgb, 3))


def test_token_is_sent_on_http_and_websocket_and_pings_keep_the_socket(comfy_server):
    proxy = LoopbackProxy(comfy_server.url)
    cfg = load_config(servers=[proxy.url], token="tok-live-test-42", environ={}).with_overrides(ping_interval=0.2)
    c = ComfyClient(proxy.url, cfg)
    try:
        assert c.events.wait_connected(10)
        c.queue()
        time.sleep(1.2)
        assert c.events.connects == 1  # idle but alive: no reconnect
    finally:
        c.close()
        proxy.close()
    http = [h for h in proxy.headers_seen if h["path"].startswith("/queue")]
    ws = [h for h in proxy.headers_seen if h["path"].startswith("/ws")]
    assert http and http[0].get("authorization") == "Bearer tok-live-test-42"
    assert ws and ws[0].get("authorization") == "Bearer tok-live-test-42"
    # Pings are the only frames the client sends after the handshake.
    assert proxy.ws_client_bytes >= 3 * 6


def test_cached_prompt_returns_the_earlier_outputs_and_fresh_runs_again(client, tmp_path):
    rgb = _sprite(5)
    src = _write_png(tmp_path / "c.png", rgb)
    prompt = postproc_prompt(str(src), scale=2, prefix=f"cache{os.getpid()}")
    first = run_workflow(prompt, client=client, out_dir=tmp_path / "o1", fresh=True)
    # The same prompt twice: the second answer comes from ComfyUI's cache (no new file).
    again = run_workflow(prompt, client=client, out_dir=tmp_path / "o2")
    again2 = run_workflow(prompt, client=client, out_dir=tmp_path / "o3")
    assert again2.cached and again2.outputs[0].server_filename == again.outputs[0].server_filename
    assert again2.outputs[0].sha256 == again.outputs[0].sha256
    fresh = run_workflow(prompt, client=client, out_dir=tmp_path / "o4", fresh=True)
    assert not fresh.cached
    assert fresh.outputs[0].server_filename != again2.outputs[0].server_filename
    for r in (first, again2, fresh):
        np.testing.assert_array_equal(np.asarray(Image.open(r.outputs[0].path).convert("RGB")), expected_pixels(rgb, 2))
    assert hashlib.sha256(Path(fresh.outputs[0].path).read_bytes()).hexdigest() == fresh.outputs[0].sha256


def test_reporters_bar_plain_and_json():
    import io as _io

    from orchestrator.progress import JsonReporter, PlainReporter, TtyReporter, make_reporter

    evs = [
        {"event": "submitted", "prompt_id": "abcdef123456", "server": "http://s", "workflow": "w@1"},
        {"event": "executing", "prompt_id": "abcdef123456", "node": "3", "node_type": "KSampler", "nodes_done": 1, "nodes_total": 4},
        *({"event": "progress", "prompt_id": "abcdef123456", "node": "3", "node_type": "KSampler", "value": v, "max": 20} for v in range(1, 21)),
        {"event": "completed", "prompt_id": "abcdef123456", "elapsed_s": 1.5},
        {"event": "output", "prompt_id": "abcdef123456", "path": "/o/x.png", "cached": False},
    ]
    tty, plain, js = _io.StringIO(), _io.StringIO(), _io.StringIO()
    for rep, stream in ((TtyReporter(tty), tty), (PlainReporter(plain), plain), (JsonReporter(js), js)):
        for ev in evs:
            rep(ev)
        rep.close()
    # the bar is the whole job's (node 2 of 4 done at 20/20 steps: half), never stepping back
    assert "\r" in tty.getvalue() and "[############------------] 20/20 KSampler" in tty.getvalue()
    assert "node 2/4 KSampler #3" in tty.getvalue()
    fills = [frame.count("#") - frame.count("#3") for frame in tty.getvalue().split("\r") if frame.startswith("[")]
    assert fills == sorted(fills) and fills[-1] == 12
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue()
    assert lines[0] == "submitted w@1 as abcdef12 to http://s"
    assert sum("node 3: " in x for x in lines) <= 5  # at most every 25 %
    assert lines[-1] == "output /o/x.png"
    assert [json.loads(x)["event"] for x in js.getvalue().splitlines()] == [e["event"] for e in evs]
    assert isinstance(make_reporter(json_mode=False, stream=_io.StringIO()), PlainReporter)
    assert make_reporter(quiet=True) is None


def test_a_lost_server_is_said_once_with_how_long_it_is_waited_for():
    """A server that died mid-run printed "connection ... lost; reconnecting" twice (socket,
    then server) and said nothing of the 120 s it was waited for before exit 3."""
    import io as _io

    from orchestrator.progress import PlainReporter, TtyReporter

    evs = [{"event": "reconnecting", "prompt_id": "p1", "server": "http://s", "error": "closed"},
           {"event": "server_down", "prompt_id": "p1", "server": "http://s", "error": "refused", "wait_s": 120.0}]
    plain, tty = _io.StringIO(), _io.StringIO()
    for rep in (PlainReporter(plain), TtyReporter(tty)):
        for ev in evs:
            rep(ev)
        rep.close()
    assert plain.getvalue().splitlines() == [
        "connection to http://s lost (closed); reconnecting",
        "http://s does not answer either; waiting up to 120 s for it to come back"]
    assert "server not answering, waiting up to 120 s" in tty.getvalue()


def test_doctor_reports_each_check(comfy_server, tmp_path, capsys):
    from orchestrator.cli import main

    proj = tmp_path / "game"
    proj.mkdir()
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.17"\n')
    rc = main(["doctor", "--server", comfy_server.url, "--bevy", str(proj), "--json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)}
    assert rc in (0, 1)
    assert checks["server"]["status"] == "ok" and "ComfyUI 0.3.75" in checks["server"]["detail"]
    assert checks["websocket"]["status"] == "ok"
    assert checks["nodes"]["status"] == "ok" and "DGX-Pixels nodes loaded" in checks["nodes"]["detail"]
    assert checks["bevy"]["status"] == "ok" and "Bevy 0.17" in checks["bevy"]["detail"]
    assert rc == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)
    rc = main(["doctor", "--server", comfy_server.url, "--bevy", str(tmp_path / "nope")])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL  bevy" in out and "not found" in out


def test_doctor_names_a_workflow_version_that_cannot_be_loaded(comfy_server, tmp_path, monkeypatch, capsys):
    """A user workflow whose file is no JSON leaves the others usable, but `run NAME` of it
    fails: doctor, run before a batch, says so (FAIL, exit 1) naming the version and the file."""
    from orchestrator.cli import main

    root = tmp_path / "wf" / "sprite" / "9.9.9"
    root.mkdir(parents=True)
    (root / "workflow.toml").write_text('name = "sprite"\nversion = "9.9.9"\ndescription = "x"\noutputs = ["2"]\n')
    (root / "workflow.api.json").write_text("{bad")
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(tmp_path / "wf"))
    rc = main(["doctor", "--server", comfy_server.url, "--json"])
    checks = [c for c in json.loads(capsys.readouterr().out) if c["check"] == "workflows"]
    assert rc == 1
    bad = [c for c in checks if c["status"] == "fail"]
    assert len(bad) == 1 and "sprite@9.9.9" in bad[0]["detail"] and "workflow.api.json" in bad[0]["detail"], checks
    assert any(c["status"] == "ok" and "cleanup@" in c["detail"] for c in checks), checks


def test_doctor_models_check_names_missing_files_and_finds_added_ones(managed_comfy_server, tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main
    from orchestrator.workflows import load_registry

    server = managed_comfy_server
    tag = os.urandom(4).hex()
    # A user workflow adds two models of its own: one in a named folder, one with no folder
    # (then any model folder of the server counts).
    root = tmp_path / "wf" / "doctor-probe" / "1.0.0"
    root.mkdir(parents=True)
    probe_vae, probe_any = f"probe-vae-{tag}.safetensors", f"probe-any-{tag}.safetensors"
    (root / "workflow.toml").write_text(
        'name = "doctor-probe"\nversion = "1.0.0"\ndescription = "needs two model files"\noutputs = ["2"]\n'
        f'models = [{{ folder = "vae", name = "{probe_vae}" }}, "{probe_any}"]\n'
    )
    (root / "workflow.api.json").write_text(json.dumps({
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}},
    }))
    monkeypatch.setenv("DGX_PIXELS_WORKFLOWS", str(tmp_path / "wf"))
    needs: dict[str, set] = {}
    for wf in load_registry().list():
        for m in wf.models:
            needs.setdefault(f"{m.folder}/{m.name}" if m.folder else m.name, set()).add(wf.ref)
    shipped = {"checkpoints/sd_xl_base_1.0.safetensors", "loras/pixel-art-xl.safetensors"}
    assert set(needs) == shipped | {f"vae/{probe_vae}", probe_any}
    assert needs[f"vae/{probe_vae}"] == needs[probe_any] == {"doctor-probe@1.0.0"}
    n_entries = len(needs)  # distinct files, however many workflows load each

    models = Path(server.base_dir) / "models"
    placed = {
        "checkpoints/sd_xl_base_1.0.safetensors": models / "checkpoints" / "sd_xl_base_1.0.safetensors",
        f"vae/{probe_vae}": models / "vae" / probe_vae,
        probe_any: models / "upscale_models" / probe_any,
        "loras/pixel-art-xl.safetensors": models / "loras" / "pixel-art-xl.safetensors",
    }
    for path in placed.values():
        assert not path.exists(), f"{path} is already there: the server's models folder is not the test's own"

    def doctor() -> tuple[int, dict]:
        rc = main(["doctor", "--server", server.url, "--json"])
        return rc, {c["check"]: c for c in json.loads(capsys.readouterr().out)}

    def place(*keys: str) -> None:
        for key in keys:
            placed[key].parent.mkdir(parents=True, exist_ok=True)
            placed[key].write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # a header-only safetensors file

    try:
        rc, checks = doctor()
        assert rc == 1 and checks["models"]["status"] == "fail", checks["models"]
        detail = checks["models"]["detail"]
        assert detail.startswith("missing: ") and detail.endswith("`dgx-pixels models pull` downloads them")
        for f, refs in needs.items():
            assert f"{f} (for {', '.join(sorted(refs))})" in detail, (f, detail)

        place("checkpoints/sd_xl_base_1.0.safetensors", f"vae/{probe_vae}", probe_any)
        rc, checks = doctor()
        assert rc == 1 and checks["models"]["status"] == "fail"
        refs = ", ".join(sorted(needs["loras/pixel-art-xl.safetensors"]))
        assert checks["models"]["detail"] == (
            f"missing: loras/pixel-art-xl.safetensors (for {refs}) - `dgx-pixels models pull` downloads them")

        place("loras/pixel-art-xl.safetensors")
        rc, checks = doctor()
        assert checks["models"] == {"check": "models", "status": "ok", "detail": f"{n_entries} model file(s) present"}
        assert rc == 0, [c for c in checks.values() if c["status"] != "ok"]
        rc = main(["doctor", "--server", server.url])
        out = capsys.readouterr().out
        assert rc == 0 and f"ok    models     {n_entries} model file(s) present" in out
    finally:
        for path in placed.values():
            path.unlink(missing_ok=True)


def test_https_with_a_ca_bundle_and_a_clear_error_without(comfy_server, tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    proxy = LoopbackProxy(comfy_server.url, tls=(str(cert), str(key)))
    try:
        assert proxy.url.startswith("https://")
        cfg = load_config(servers=[proxy.url], environ={}).with_overrides(verify_tls=str(cert))
        c = ComfyClient(proxy.url, cfg)
        rgb = _sprite(9)
        try:
            res = run_workflow(postproc_prompt(str(_write_png(tmp_path / "t.png", rgb)), prefix="tls"), client=c,
                               out_dir=tmp_path / "o", fresh=True)
            assert c.events.ws_url.startswith("wss://")
        finally:
            c.close()
        np.testing.assert_array_equal(np.asarray(Image.open(res.outputs[0].path).convert("RGB")), expected_pixels(rgb, 2))
        c = ComfyClient(proxy.url, load_config(servers=[proxy.url], environ={}))  # system CAs only
        try:
            with pytest.raises(ServerUnreachableError, match="TLS error"):
                c.queue()
        finally:
            c.close()
    finally:
        proxy.close()


@pytest.fixture
def plain_web_server(tmp_path):
    """A real web server that is not ComfyUI (Python's http.server: GET only, HTML errors)."""
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_server_that_is_not_comfyui_is_exit_3_with_or_without_an_upload(plain_web_server, comfy_server, tmp_path,
                                                                          capsys):
    """Another web server, or ComfyUI under a wrong path: whether the first request that meets
    it is the image upload or the prompt, the same exit 3 with a hint to check --server, and
    no web page in the message."""
    from orchestrator.cli import main

    img = _write_png(tmp_path / "knight.png", _sprite(3))
    for url, status in ((plain_web_server, "HTTP 501"), (comfy_server.url + "/some/path", "HTTP 405")):
        for sets, route in ((["--set", f"image={img}"], "POST /upload/image"), ([], "POST /prompt")):
            rc = main(["run", "cleanup", *sets, "--server", url, "--out", str(tmp_path / "o")])
            err = capsys.readouterr().err
            assert rc == 3, err
            assert err.startswith(f"error: {url} is not a ComfyUI server (or not at this path): {route} answered {status}"), err
            assert "<" not in err and err.count(status[5:]) == 1, err
            assert "\nhint: check --server: the address of ComfyUI itself" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("url", ["htp:/127.0.0.1:8188", "http:/localhost:8188"])
def test_a_server_url_with_a_mistyped_scheme_is_bad_usage(capsys, url):
    """`--server htp:/bad` was taken for a host named "htp" and reported as a server that does
    not answer (exit 3): the URL itself is wrong (exit 2)."""
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.cli import main

    assert main(["doctor", "--server", url]) == 2
    assert capsys.readouterr().err.startswith(f"error: --server {url!r} is not an http(s) URL\nhint: ")
    with pytest.raises(InvalidArgumentError, match="is not an http"):
        load_config(environ={"DGX_PIXELS_SERVER": url})


@pytest.mark.parametrize("url, port", [("http://127.0.0.1:99999", "99999"), ("http://127.0.0.1:0", "0"),
                                       ("127.0.0.1:80a", "80a"), ("http://127.0.0.1:", "")])
def test_a_server_url_with_an_invalid_port_is_bad_usage_naming_the_flag(tmp_path, capsys, url, port):
    """Not "server not reachable (InvalidURL)", exit 3: the URL itself is wrong (exit 2)."""
    from comfy_nodes.pixel.errors import InvalidArgumentError
    from orchestrator.cli import main

    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nworkflow = "cleanup@1"\n')
    for args in (["run", "cleanup"], ["doctor"], ["batch", str(jobs)]):
        rc = main([*args, "--server", url])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.startswith(f"error: --server {url!r} has an invalid port {port!r}: a port is a whole number "
                              "from 1 to 65535\nhint: "), err
    assert load_config(servers=["http://127.0.0.1:8188/"], environ={}).servers == ("http://127.0.0.1:8188",)
    with pytest.raises(InvalidArgumentError, match="DGX_PIXELS_SERVER 'http://h:65536' has an invalid port"):
        load_config(environ={"DGX_PIXELS_SERVER": "http://h:65536"})


def test_a_server_that_does_not_answer_is_hinted_at_where_its_url_was_set(tmp_path, capsys, monkeypatch):
    """The hint always said "pass --server URL", also when the URL came from $DGX_PIXELS_SERVER
    or the config file (where the fix is), and doctor printed no hint at all."""
    from orchestrator.cli import main

    dead = "http://127.0.0.1:9"
    monkeypatch.setenv("DGX_PIXELS_SERVER", dead)
    assert main(["run", "cleanup", "--out", str(tmp_path / "o")]) == 3
    assert "hint: start ComfyUI there, or change $DGX_PIXELS_SERVER (a --server URL wins over it)" in capsys.readouterr().err
    monkeypatch.delenv("DGX_PIXELS_SERVER")
    conf = tmp_path / "dgx-pixels.toml"
    conf.write_text(f'[server]\nurl = "{dead}"\n')
    assert main(["run", "cleanup", "--config", str(conf), "--out", str(tmp_path / "o")]) == 3
    assert f"hint: start ComfyUI there, or change [server] url in {conf}" in capsys.readouterr().err
    assert main(["doctor", "--server", dead]) == 3
    out = capsys.readouterr().out
    assert f"FAIL  server     ComfyUI server {dead} is not reachable" in out
    assert "(hint: start ComfyUI there, or check the --server URL)" in out
