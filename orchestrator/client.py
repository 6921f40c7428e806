"""HTTP and websocket client of one ComfyUI server.

``ComfyClient`` wraps the server's REST routes (``/prompt``, ``/history/<id>``, ``/queue``,
``/interrupt``, ``/view``, ``/upload/image``, ``/system_stats``, ``/object_info``) on one
keep-alive HTTP session, and owns ONE websocket (``/ws?clientId=<id>``) for all the jobs it
submits. A reader thread receives every message and hands it to the job it is about
(``prompt_id``); when the connection drops it reconnects with the same client id and tells
every job, so each can recover its state from ``/history`` and ``/queue`` (ComfyUI only sends
a job's messages to the socket of the client id the job was submitted with, and drops them
while that socket is gone). The socket is pinged every ``ping_interval`` seconds: proxies and
load balancers close idle connections, and long jobs are silent for minutes.

Every error is a ``DgxPixelsError`` whose text went through ``Config.mask``: tokens and URL
passwords never reach a terminal or a log.
"""
from __future__ import annotations

import json
import queue
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from comfy_nodes.pixel.errors import DgxPixelsError
from orchestrator.config import Config, normalize_url
from orchestrator.errors import ExecutionError, ServerUnreachableError

# Synthetic event types the reader thread adds to the server's own.
DISCONNECTED = "_disconnected"
RECONNECTED = "_reconnected"
PREVIEW = "_preview"


class PromptRejectedError(ExecutionError):
    """The server refused the prompt before running it (validation: ``node_errors``, unknown node type)."""

    exit_code = 4


class MissingModelError(PromptRejectedError):
    """A node loads a model file the server does not have (found by the server's rejection, or
    before submitting by its ``/object_info``)."""

    default_hint = "`dgx-pixels models list` shows the model files and `dgx-pixels models pull` downloads them"


class AuthError(ServerUnreachableError):
    """The server answered 401/403: the token is missing or wrong."""

    default_hint = "set DGX_PIXELS_TOKEN (or --token) and, if needed, --auth-header"


@dataclass(frozen=True)
class QueueState:
    """Prompt ids the server is running and has pending (``GET /queue``)."""

    running: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def load(self) -> int:
        return len(self.running) + len(self.pending)

    def __contains__(self, prompt_id: str) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


def _short(value: Any, limit: int = 200) -> str:
    s = value if isinstance(value, str) else json.dumps(value, default=str)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


NOT_COMFYUI_HINT = ("check --server: the address of ComfyUI itself, e.g. http://127.0.0.1:8188, with no path "
                    "after the port (`dgx-pixels doctor --server URL` checks it)")
# Answers that mean "no such route here": another web server, or ComfyUI under a wrong path.
_NO_ROUTE = (404, 405, 501)


def _answer_text(resp) -> str:
    """A short excerpt of an error answer for a message: never a web page (HTML says nothing
    a terminal can show), else its first 200 characters."""
    ctype = (resp.headers.get("Content-Type") or "").lower()
    text = resp.text or ""
    if "html" in ctype or text.lstrip()[:1] == "<":
        return ""
    return _short(text, 200)


def describe_node_errors(body: dict, prompt: dict | None = None) -> str:
    """One readable message from a ``POST /prompt`` 400 answer.

    Names each failing node's id, type and input with the server's words, e.g.
    ``node 3 (ImageScale), input 'width': Value -5 smaller than min of 0``.
    """
    lines: list[str] = []
    node_errors = body.get("node_errors") or {}
    for node_id, info in node_errors.items():
        ctype = info.get("class_type") or (prompt or {}).get(node_id, {}).get("class_type", "?")
        for err in info.get("errors", []):
            extra = err.get("extra_info") or {}
            inp = extra.get("input_name")
            where = f"node {node_id} ({ctype})" + (f", input '{inp}'" if inp else "")
            msg = err.get("message", "invalid")
            details = err.get("details")
            if details and details not in msg:
                msg = f"{msg}: {details}"
            # the server says "Exception when validating (inner) node: '99'"
            dangling = [(name, str(v[0])) for name, v in ((prompt or {}).get(node_id, {}).get("inputs") or {}).items()
                        if isinstance(v, list) and len(v) == 2 and str(v[0]) not in (prompt or {})
                        and (inp is None or name == inp)]
            if dangling:
                where = f"node {node_id} ({ctype})"
                msg = "; ".join(f"input '{name}' links to node {src!r}, which is not in the workflow"
                                for name, src in dangling)
            lines.append(f"{where}: {_short(msg, 300)}")
    if not lines:
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message", "prompt rejected")
            details = err.get("details") or ""
            # "Node ID '#7'" is how ComfyUI names the node of a prompt-level error.
            node_hint = ""
            if details.startswith("Node ID '#"):
                nid = details[len("Node ID '#"):].rstrip("'")
                ctype = (prompt or {}).get(nid, {}).get("class_type")
                node_hint = f"node {nid} ({ctype}): " if ctype else f"node {nid}: "
                details = ""
            lines.append(f"{node_hint}{msg}" + (f" ({_short(details, 300)})" if details else ""))
        elif err:
            lines.append(_short(err, 300))
        else:
            lines.append("the server rejected the prompt")
    return "; ".join(lines)


def describe_execution_error(data: dict) -> str:
    """One readable message from an ``execution_error`` event (websocket or /history)."""
    node_id = data.get("node_id", "?")
    ctype = data.get("node_type", "?")
    etype = data.get("exception_type", "")
    msg = (data.get("exception_message") or "").strip()
    # ComfyUI appends generic tips after a blank line; the first paragraph is the error.
    msg = msg.split("\n\n")[0].strip() or "failed"
    etype_short = etype.rsplit(".", 1)[-1] if etype else ""
    inputs = data.get("current_inputs") or {}
    inp = ""
    if isinstance(inputs, dict) and inputs:
        inp = " (inputs: " + ", ".join(sorted(inputs)[:6]) + ")"
    prefix = f"{etype_short}: " if etype_short and etype_short not in msg else ""
    return f"node {node_id} ({ctype}) failed{inp}: {prefix}{_short(msg, 400)}"


class EventStream:
    """The websocket of one client id, read by a background thread.

    ``subscribe(prompt_id)`` returns a queue of that job's events (dicts with ``type`` and
    ``data``, as the server sends them, plus ``_disconnected`` / ``_reconnected`` /
    ``_preview``). Subscribe BEFORE submitting: messages can arrive before ``POST /prompt``
    returns. ``listeners`` see every event (used for ``status`` queue counts).
    """

    def __init__(self, url: str, client_id: str, config: Config):
        parts = urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.ws_url = f"{scheme}://{parts.netloc}{parts.path}/ws?clientId={client_id}"
        self.config = config
        self._subs: dict[str, queue.SimpleQueue] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._ws = None
        self.current_prompt: str | None = None
        self.connects = 0
        self.last_error: str | None = None
        self.queue_remaining: int | None = None
        self.listeners: list[Callable[[dict], None]] = []

    # -- subscriptions -------------------------------------------------------------------
    def subscribe(self, prompt_id: str) -> queue.SimpleQueue:
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._subs[prompt_id] = q
        self.start()
        return q

    def unsubscribe(self, prompt_id: str) -> None:
        with self._lock:
            self._subs.pop(prompt_id, None)

    def _dispatch(self, prompt_id: str | None, event: dict) -> None:
        if prompt_id is None:
            return
        q = self._subs.get(prompt_id)
        if q is not None:
            q.put(event)

    def _broadcast(self, event: dict) -> None:
        with self._lock:
            subs = list(self._subs.values())
        for q in subs:
            q.put(event)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._run, name="dgx-pixels-ws", daemon=True)
                    self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Start the reader if needed and wait until the socket is open."""
        self.start()
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.sock and ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)

    def drop_connection(self) -> None:
        """Close the socket as a network failure would (the reader reconnects)."""
        ws = self._ws
        if ws is not None and ws.sock is not None:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connect(self):
        import websocket

        sslopt = None
        if self.ws_url.startswith("wss"):
            v = self.config.verify_tls
            if v is False:
                sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
            elif isinstance(v, str):
                sslopt = {"ca_certs": v}
        headers = [f"{k}: {v}" for k, v in self.config.auth_headers().items()]
        ws = websocket.create_connection(
            self.ws_url,
            timeout=self.config.connect_timeout,
            header=headers,
            sslopt=sslopt,
            enable_multithread=False,
            skip_utf8_validation=True,
        )
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # After the handshake, reads wait in select(); the socket timeout only bounds a
        # frame that stalls half-way (a dead network), which then means reconnect.
        ws.settimeout(max(self.config.request_timeout, self.config.ping_interval))
        return ws

    def _run(self) -> None:
        import websocket

        backoff = 0.05
        first = True
        while not self._stop.is_set():
            try:
                ws = self._connect()
            except Exception as exc:  # noqa: BLE001 - any failure means "try again later"
                self.last_error = self.config.mask(f"{type(exc).__name__}: {exc}")
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 2.0)
                continue
            self._ws = ws
            self.connects += 1
            backoff = 0.05
            self._connected.set()
            # Also on the first connect: a job subscribed before it may have missed messages.
            self._broadcast({"type": RECONNECTED, "data": {"first": first}})
            first = False
            try:
                self._read_loop(ws)
            except (websocket.WebSocketException, OSError, ValueError) as exc:
                self.last_error = self.config.mask(f"{type(exc).__name__}: {exc}")
            finally:
                self._connected.clear()
                self._ws = None
                try:
                    ws.close(timeout=0.2)
                except Exception:  # noqa: BLE001
                    pass
            if not self._stop.is_set():
                self._broadcast({"type": DISCONNECTED, "data": {"error": self.last_error}})

    def _read_loop(self, ws) -> None:
        from websocket import ABNF

        ping = self.config.ping_interval
        last_rx = time.monotonic()
        ping_sent = 0.0
        sock = ws.sock
        while not self._stop.is_set():
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending:
                r, _, _ = select.select([sock], [], [], min(ping, 1.0))
                if not r:
                    now = time.monotonic()
                    if ping_sent and now - ping_sent > ping + self.config.connect_timeout:
                        raise OSError(f"no answer to websocket ping for {now - ping_sent:.0f} s")
                    if not ping_sent and now - last_rx >= ping:
                        ws.ping(b"dgx")
                        ping_sent = now
                    continue
            opcode, frame = ws.recv_data_frame(True)
            last_rx = time.monotonic()
            ping_sent = 0.0
            if opcode == ABNF.OPCODE_CLOSE:
                raise OSError("server closed the websocket")
            if opcode == ABNF.OPCODE_TEXT:
                self._on_text(frame.data)
            elif opcode == ABNF.OPCODE_BINARY:
                self._on_binary(frame.data)

    def _on_text(self, raw: bytes | str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        mtype = msg.get("type")
        data = msg.get("data") or {}
        if mtype == "status":
            info = (data.get("status") or {}).get("exec_info") or {}
            if isinstance(info.get("queue_remaining"), int):
                self.queue_remaining = info["queue_remaining"]
        pid = data.get("prompt_id") if isinstance(data, dict) else None
        if mtype == "executing" and isinstance(data, dict):
            self.current_prompt = pid if data.get("node") is not None else None
        for fn in self.listeners:
            fn(msg)
        self._dispatch(pid, msg)

    def _on_binary(self, raw: bytes) -> None:
        # Binary frames are previews: 4-byte big-endian event type, then the payload. They
        # carry no prompt id; they belong to the prompt that is executing now.
        if len(raw) < 4:
            return
        (etype,) = struct.unpack(">I", raw[:4])
        self._dispatch(self.current_prompt, {"type": PREVIEW, "data": {"kind": etype, "bytes": len(raw) - 4}})


class ComfyClient:
    """One ComfyUI server: REST calls on a keep-alive session plus one shared websocket."""

    def __init__(self, url: str | None = None, config: Config | None = None, *, client_id: str | None = None):
        import requests

        self.config = config or Config()
        self.url = normalize_url(url or self.config.server)
        self.client_id = client_id or uuid.uuid4().hex
        self.session = requests.Session()
        # Batch workers share this session: room for every job in flight plus downloads.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(self.config.auth_headers())
        self.session.headers["User-Agent"] = "dgx-pixels"
        self.session.verify = self.config.verify_tls
        self.events = EventStream(self.url, self.client_id, self.config)
        self._uploaded: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ComfyClient({self.config.mask(self.url)!r})"

    @property
    def display_url(self) -> str:
        """The URL with any password masked."""
        return self.config.mask(self.url)

    def close(self) -> None:
        self.events.close()
        self.session.close()

    def __enter__(self) -> "ComfyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, timeout: float | None = None, **kw):
        import requests

        t = (self.config.connect_timeout, timeout or self.config.request_timeout)
        if self.config.verify_tls is not True:
            # Per request: requests lets $REQUESTS_CA_BUNDLE override a session's own setting.
            kw.setdefault("verify", self.config.verify_tls)
        try:
            resp = self.session.request(method, self.url + path, timeout=t, **kw)
        except requests.exceptions.SSLError as exc:
            raise ServerUnreachableError(
                self.config.mask(f"TLS error talking to {self.url}: {exc}"),
                hint="check the certificate, or set verify_tls to a CA bundle path in dgx-pixels.toml",
            ) from None
        except requests.exceptions.RequestException as exc:
            reason = type(exc).__name__
            if isinstance(exc, requests.exceptions.ConnectionError):
                reason = "connection refused or host unreachable"
            elif isinstance(exc, requests.exceptions.Timeout):
                reason = f"no answer within {t[1]:g} s"
            raise ServerUnreachableError(
                self.config.mask(f"ComfyUI server {self.url} is not reachable ({reason}) [{method} {path.split('?')[0]}]"),
                hint=self.config.unreachable_hint(),
            ) from None
        if resp.status_code in (401, 403):
            raise AuthError(self.config.mask(f"{self.url} refused the request ({resp.status_code} {resp.reason}) [{method} {path.split('?')[0]}]"))
        return resp

    def not_comfyui(self, method: str, path: str, resp) -> ServerUnreachableError:
        """The error for an answer no ComfyUI gives (a missing route, a web page): exit 3, as
        for a server that is not there, with the status and never the page itself."""
        text = _answer_text(resp)
        return ServerUnreachableError(
            self.config.mask(f"{self.url} is not a ComfyUI server (or not at this path): {method} "
                             f"{path.split('?')[0]} answered HTTP {resp.status_code} {resp.reason or ''}".rstrip()
                             + (f": {text}" if text and (resp.reason or "\0") not in text else "")),
            hint=NOT_COMFYUI_HINT,
        )

    def _json(self, method: str, path: str, **kw) -> Any:
        resp = self._request(method, path, **kw)
        if resp.status_code != 200:
            raise self.not_comfyui(method, path, resp)
        try:
            return resp.json()
        except ValueError:
            raise ServerUnreachableError(
                self.config.mask(f"{self.url} is not a ComfyUI server (or not at this path): {method} "
                                 f"{path.split('?')[0]} did not answer JSON"), hint=NOT_COMFYUI_HINT,
            ) from None

    def ping(self) -> bool:
        """True when the server answers ``/queue``."""
        try:
            self.queue()
            return True
        except ServerUnreachableError:
            return False

    def system_stats(self) -> dict:
        return self._json("GET", "/system_stats")

    def object_info(self, node_class: str | None = None) -> dict:
        return self._json("GET", "/object_info" + (f"/{node_class}" if node_class else ""))

    def queue(self) -> QueueState:
        data = self._json("GET", "/queue")
        return QueueState(
            running=tuple(str(x[1]) for x in data.get("queue_running", []) if len(x) > 1),
            pending=tuple(str(x[1]) for x in data.get("queue_pending", []) if len(x) > 1),
        )

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a prompt, or ``None`` while it is queued/running or unknown.

        ComfyUI answers ``{}`` in both cases; ``locate`` tells them apart.
        """
        data = self._json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    def locate(self, prompt_id: str) -> tuple[str, dict | None]:
        """Where the server has a prompt: ``("done", entry)``, ``("queued", None)`` or ``("unknown", None)``.

        The queue is read BEFORE the history: a prompt that leaves the queue between the two
        calls is then found in the history, never missed by both.
        """
        q = self.queue()
        if prompt_id in q:
            return "queued", None
        h = self.history(prompt_id)
        if h is not None:
            return "done", h
        return "unknown", None

    def submit(self, prompt: dict, *, prompt_id: str | None = None, extra_data: dict | None = None, front: bool = False) -> str:
        """``POST /prompt`` under this client's id; returns the prompt id.

        ``prompt_id`` may be chosen by the caller (ComfyUI keeps it): the batch journal
        records it before submitting, so a crash between the two never loses the job.
        Raises ``PromptRejectedError`` naming the failing nodes and inputs.
        """
        body: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
        if extra_data:
            body["extra_data"] = extra_data
        if front:
            body["front"] = True
        resp = self._request("POST", "/prompt", data=json.dumps(body), headers={"Content-Type": "application/json"})
        if resp.status_code in _NO_ROUTE:
            raise self.not_comfyui("POST", "/prompt", resp)
        try:
            data = resp.json()
        except ValueError:
            if resp.status_code == 400 or resp.status_code == 200:
                raise self.not_comfyui("POST", "/prompt", resp) from None
            data = {"error": _answer_text(resp)}
        if resp.status_code == 400 or (resp.status_code == 200 and "prompt_id" not in data):
            if isinstance(data, dict):
                _raise_missing_models(data, prompt, self.config)
            exc = PromptRejectedError(
                self.config.mask(f"the server rejected the workflow: {describe_node_errors(data, prompt)}"),
                hint="fix the named node input (or install the missing node pack), then run again",
            )
            exc.body = data if isinstance(data, dict) else {}  # for callers that know what the inputs meant
            raise exc
        if resp.status_code != 200:
            raise ServerUnreachableError(self.config.mask(
                f"{self.url}: POST /prompt answered HTTP {resp.status_code} {resp.reason or ''}".rstrip()
                + (f": {_answer_text(resp)}" if _answer_text(resp) else "")),
                hint="check the server's log; run again once it answers")
        return str(data["prompt_id"])

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop ``prompt_id`` if it is the one running (all execution when ``None``)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        self._request("POST", "/interrupt", data=json.dumps(body), headers={"Content-Type": "application/json"})

    def delete_queued(self, prompt_ids: list[str]) -> None:
        """Remove pending prompts from the queue (running ones need ``interrupt``)."""
        self._request("POST", "/queue", data=json.dumps({"delete": list(prompt_ids)}), headers={"Content-Type": "application/json"})

    def cancel(self, prompt_id: str) -> None:
        """Remove a prompt from the queue if pending, interrupt it if running."""
        self.delete_queued([prompt_id])
        self.interrupt(prompt_id)

    def view(self, filename: str, subfolder: str = "", type: str = "output", *, max_bytes: int = 1 << 30) -> bytes:
        """Bytes of one output file (``GET /view``). Raises when missing or larger than ``max_bytes``."""
        params = {"filename": filename, "subfolder": subfolder or "", "type": type or "output"}
        resp = self._request("GET", "/view", params=params, stream=True)
        try:
            if resp.status_code != 200:
                raise ExecutionError(
                    self.config.mask(f"could not fetch output {subfolder + '/' if subfolder else ''}{filename} ({type}): HTTP {resp.status_code}"),
                    hint="the file may have been deleted from the server's output folder; run with --fresh",
                )
            declared = resp.headers.get("Content-Length")
            if declared is not None and int(declared) > max_bytes:
                raise ExecutionError(f"output {filename} is {declared} bytes, more than the {max_bytes} allowed")
            chunks = []
            total = 0
            for chunk in resp.iter_content(1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    raise ExecutionError(f"output {filename} is larger than the {max_bytes} bytes allowed")
                chunks.append(chunk)
            data = b"".join(chunks)
            if declared is not None and len(data) != int(declared):
                raise ExecutionError(f"output {filename} arrived incomplete ({len(data)} of {declared} bytes)", hint="run again")
            return data
        finally:
            resp.close()

    def upload_image(self, data: bytes, name: str, *, subfolder: str = "dgx-pixels") -> str:
        """Upload an input image (``POST /upload/image``); returns the name LoadImage takes.

        Names are content hashes, so an image is uploaded once per server however many jobs use it.
        """
        key = f"{subfolder}/{name}"
        if key in self._uploaded:
            return self._uploaded[key]
        files = {"image": (name, data, "application/octet-stream")}
        # No overwrite: the name pins the content, and ComfyUI keeps a file of that name with the
        # same bytes instead of writing it again. Rewritten under a LoadImage of another batch
        # reading it, the image was read half written and the job failed as "no pixel grid".
        resp = self._request("POST", "/upload/image", files=files, data={"subfolder": subfolder, "type": "input"})
        if resp.status_code in _NO_ROUTE or (resp.status_code != 200 and not _answer_text(resp)):
            raise self.not_comfyui("POST", "/upload/image", resp)
        if resp.status_code != 200:
            # ComfyUI's own refusal (400: no image in the request, 413: larger than its limit)
            raise ExecutionError(
                self.config.mask(f"uploading {name} to {self.url} failed: HTTP {resp.status_code} {resp.reason or ''}"
                                 f": {_answer_text(resp)}"),
                hint="check the image file (ComfyUI refuses uploads over --max-upload-size MB) and the server's log")
        try:
            info = resp.json()
        except ValueError:
            raise self.not_comfyui("POST", "/upload/image", resp) from None
        if not isinstance(info, dict):
            raise self.not_comfyui("POST", "/upload/image", resp)
        ref = info.get("name", name)
        if info.get("subfolder"):
            ref = f"{info['subfolder']}/{ref}"
        self._uploaded[key] = ref
        return ref


def _raise_missing_models(body: dict, prompt: dict, config: Config) -> None:
    """``MissingModelError`` when the rejection is (also) about model files the server lacks:
    the server's "Value not in list" names neither that a file is missing nor where it belongs."""
    from orchestrator.validate import missing_models_hint, missing_models_in_rejection, missing_models_message

    missing = missing_models_in_rejection(body, prompt)
    if not missing:
        return
    rest = {}
    for nid, info in (body.get("node_errors") or {}).items():
        errs = [e for e in (info.get("errors") or []) if not any(
            m.node_id == str(nid) and m.input == (e.get("extra_info") or {}).get("input_name") for m in missing)]
        if errs:
            rest[nid] = {**info, "errors": errs}
    others = describe_node_errors({"node_errors": rest}, prompt) if rest else ""
    raise MissingModelError(config.mask(missing_models_message(missing, others)), hint=missing_models_hint(missing))


def server_version(client: ComfyClient) -> str | None:
    """ComfyUI's version from ``/system_stats``, or ``None`` when the server does not say."""
    try:
        return (client.system_stats().get("system") or {}).get("comfyui_version")
    except DgxPixelsError:
        return None
