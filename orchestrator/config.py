"""Where the ComfyUI servers are and how to talk to them: URLs, auth, timeouts.

Settings come from, lowest priority first: built-in defaults, a ``dgx-pixels.toml`` file
(``--config PATH``, else ``$DGX_PIXELS_CONFIG``, else ``./dgx-pixels.toml``, else
``~/.config/dgx-pixels/dgx-pixels.toml``), environment variables, command-line flags::

    [server]
    urls = ["http://127.0.0.1:8188", "https://gpu-2.example:8443"]
    token_env = "MY_COMFY_TOKEN"        # or token = "..." (prefer the env var)
    auth_header = "Authorization"       # a bare token is sent as "Bearer <token>" there
    verify_tls = true                   # or a path to a CA bundle

    [timeouts]                          # seconds
    connect = 5
    request = 60
    job = 0                             # 0 = no limit for one job
    ping = 15                           # websocket keep-alive
    poll = 5                            # /history check when the websocket is quiet
    download = 30                       # `models pull`: connecting, or waiting for more bytes

    [batch]
    in_flight = 4

Environment: ``DGX_PIXELS_SERVER`` (comma-separated URLs), ``DGX_PIXELS_TOKEN``,
``DGX_PIXELS_AUTH_HEADER``, ``DGX_PIXELS_TIMEOUT`` (job timeout),
``DGX_PIXELS_DOWNLOAD_TIMEOUT`` (model downloads), ``DGX_PIXELS_CONFIG``.

Secrets never reach a log line: ``Config.mask`` replaces the token and any password in a
URL with ``***``; every error the client raises goes through it.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from comfy_nodes.pixel.errors import InvalidArgumentError

DEFAULT_SERVER = "http://127.0.0.1:8188"
CONFIG_NAME = "dgx-pixels.toml"
# Seconds one network operation of a model download may take: long enough for a busy CDN to
# send its first byte, short enough that a dead connection is noticed and resumed unattended.
DOWNLOAD_TIMEOUT = 30.0


@dataclass(frozen=True)
class Config:
    """Connection settings shared by every command that talks to ComfyUI.

    Times are seconds. ``job_timeout`` 0 means a job may run forever (the websocket is kept
    alive by pings every ``ping_interval``); ``poll_interval`` is how long the client waits
    without any websocket message about a job before asking ``/history`` directly.
    ``download_timeout`` bounds each network operation of ``models pull``.
    """

    servers: tuple[str, ...] = (DEFAULT_SERVER,)
    token: str | None = None
    auth_header: str = "Authorization"
    verify_tls: bool | str = True
    connect_timeout: float = 5.0
    request_timeout: float = 60.0
    job_timeout: float = 0.0
    ping_interval: float = 15.0
    poll_interval: float = 5.0
    download_timeout: float = DOWNLOAD_TIMEOUT
    in_flight: int = 4
    source: str = "defaults"
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: where ``servers`` came from: "default", "--server", "$DGX_PIXELS_SERVER" or the config
    #: file's path (the hint for a server that does not answer names the setting to change)
    servers_from: str = "default"

    def unreachable_hint(self) -> str:
        """What to do about a server that does not answer, naming where its URL was set."""
        if self.servers_from == "--server":
            return "start ComfyUI there, or check the --server URL"
        if self.servers_from == "$DGX_PIXELS_SERVER":
            return "start ComfyUI there, or change $DGX_PIXELS_SERVER (a --server URL wins over it)"
        if self.servers_from != "default":
            return f"start ComfyUI there, or change [server] url in {self.servers_from} (a --server URL wins over it)"
        return "start ComfyUI or pass --server URL (default http://127.0.0.1:8188)"

    @property
    def server(self) -> str:
        """The first (or only) server."""
        return self.servers[0]

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers carrying the token, or none."""
        if not self.token:
            return {}
        value = self.token
        if self.auth_header.lower() == "authorization" and " " not in value:
            value = f"Bearer {value}"
        return {self.auth_header: value}

    def mask(self, text: str) -> str:
        """``text`` with every secret this config knows replaced by ``***``."""
        out = str(text)
        for s in self.secrets:
            if s and len(s) >= 3:
                out = out.replace(s, "***")
        return mask_url_passwords(out)

    def with_overrides(self, **kw) -> "Config":
        """A copy with the given fields replaced (``None`` values are ignored)."""
        kw = {k: v for k, v in kw.items() if v is not None}
        if "servers" in kw:
            kw["servers"] = tuple(normalize_url(u) for u in kw["servers"])
            kw.setdefault("servers_from", "--server")
        cfg = replace(self, **kw)
        return replace(cfg, secrets=_secrets_of(cfg))


_URL_PW = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def mask_url_passwords(text: str) -> str:
    """Replace the password part of ``scheme://user:password@host`` URLs with ``***``."""
    return _URL_PW.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def normalize_url(url: str, where: str = "server URL") -> str:
    """``host:port`` or ``http(s)://host[:port][/prefix]`` → ``http(s)://host:port[/prefix]``.

    Raises ``InvalidArgumentError`` for anything that is not an http(s) URL, or whose port is
    not a number from 1 to 65535. ``where`` names the setting in the message (``--server``).
    """
    u = url.strip()
    if not u:
        raise InvalidArgumentError(f"empty {where}", hint="use e.g. http://127.0.0.1:8188")
    if "://" not in u:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/", u):
            # "htp:/host", "http:/host": a scheme with a slip, not a host named "htp"
            raise InvalidArgumentError(f"{where} {mask_url_passwords(url)!r} is not an http(s) URL",
                                       hint="use e.g. http://127.0.0.1:8188 or https://host:8443")
        u = "http://" + u
    parts = urlsplit(u)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"{where} {mask_url_passwords(url)!r} is not an http(s) URL",
            hint="use e.g. http://127.0.0.1:8188 or https://host:8443",
        )
    # Checked here: a bad port otherwise surfaces only at the first request, as "server not
    # reachable (InvalidURL)" (exit 3), which sends the user looking for a server that is fine.
    hostport = parts.netloc.rpartition("@")[2]
    raw_port = hostport.rpartition(":")[2] if ":" in hostport.rpartition("]")[2] else None
    try:
        port = parts.port
    except ValueError:
        port = None
    if raw_port is not None and (port is None or not 1 <= port <= 65535):
        raise InvalidArgumentError(
            f"{where} {mask_url_passwords(url)!r} has an invalid port {raw_port!r}: a port is a whole number "
            "from 1 to 65535",
            hint="e.g. http://127.0.0.1:8188 (ComfyUI's default port is 8188)",
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _secrets_of(cfg: Config) -> tuple[str, ...]:
    out = []
    if cfg.token:
        out.append(cfg.token)
    for u in cfg.servers:
        pw = urlsplit(u).password
        if pw:
            out.append(pw)
    return tuple(out)


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The settings file to read, or ``None`` when there is none."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise InvalidArgumentError(f"config file not found: {p}")
        return p
    env = os.environ.get("DGX_PIXELS_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InvalidArgumentError(f"config file from DGX_PIXELS_CONFIG not found: {p}")
        return p
    for p in (Path.cwd() / CONFIG_NAME, Path.home() / ".config" / "dgx-pixels" / CONFIG_NAME):
        if p.is_file():
            return p
    return None


def _table(data: dict, name: str, path: Path) -> dict:
    """The ``[name]`` table of the settings file ({} when absent)."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{path}: {name} must be a [{name}] table, got {value!r}",
                                   hint=f"write it as a table: [{name}] on a line of its own, then key = value lines")
    return value


def _num(table: dict, key: str, default: float, path: Path) -> float:
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise InvalidArgumentError(f"{path}: [timeouts] {key} must be a number of seconds >= 0, got {v!r}")
    return float(v)


def positive_seconds(value: object, name: str) -> float:
    """``value`` as a float number of seconds above 0, else ``InvalidArgumentError`` naming
    ``name``: the flag, setting or variable it came from.

    A timeout of 0 would fail every read at once, and an infinite one would let a dead
    connection hang for ever instead of being noticed and retried.
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value > 0):
        shown = f"{value:g}" if number else repr(value)
        raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {shown}",
                                   hint=f"e.g. 120 for a slow link (default {DOWNLOAD_TIMEOUT:g})")
    return float(value)


def load_config(
    path: str | os.PathLike | None = None,
    *,
    servers: list[str] | None = None,
    token: str | None = None,
    auth_header: str | None = None,
    job_timeout: float | None = None,
    in_flight: int | None = None,
    download_timeout: float | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Merge defaults, the settings file, environment and explicit arguments into a ``Config``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, installed as tomli
        import tomli as tomllib  # type: ignore[no-redef]

    env = os.environ if environ is None else environ
    cfg = Config()
    f = find_config_file(path)
    if f is not None:
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"{f} is not valid TOML: {exc}") from exc
        if isinstance(data.get("server"), str):  # server = "http://..." at the top: the URL
            data["server"] = {"url": data["server"]}
        srv, tmo, bat = (_table(data, name, f) for name in ("server", "timeouts", "batch"))
        urls = srv.get("urls", srv.get("url"))
        if isinstance(urls, str):
            urls = [urls]
        if urls is not None and (not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)):
            raise InvalidArgumentError(f"{f}: [server] url must be a URL text, or urls a list of them; got {urls!r}",
                                       hint='e.g. [server]\nurl = "http://127.0.0.1:8188"')
        for key in ("token", "token_env", "auth_header"):
            if key in srv and not isinstance(srv[key], str):
                raise InvalidArgumentError(f"{f}: [server] {key} must be text, got {srv[key]!r}")
        in_flight = bat.get("in_flight", cfg.in_flight)
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
            raise InvalidArgumentError(f"{f}: [batch] in_flight must be a whole number >= 1, got {in_flight!r}")
        tok = srv.get("token")
        if srv.get("token_env"):
            tok = env.get(str(srv["token_env"])) or tok
        verify = srv.get("verify_tls", True)
        if not isinstance(verify, (bool, str)):
            raise InvalidArgumentError(f"{f}: [server] verify_tls must be true, false or a CA bundle path")
        cfg = Config(
            servers=tuple(normalize_url(u, f"{f}: [server] url") for u in urls) if urls else cfg.servers,
            token=tok,
            auth_header=str(srv.get("auth_header", cfg.auth_header)),
            verify_tls=verify,
            connect_timeout=_num(tmo, "connect", cfg.connect_timeout, f) or cfg.connect_timeout,
            request_timeout=_num(tmo, "request", cfg.request_timeout, f) or cfg.request_timeout,
            job_timeout=_num(tmo, "job", cfg.job_timeout, f),
            ping_interval=_num(tmo, "ping", cfg.ping_interval, f) or cfg.ping_interval,
            poll_interval=_num(tmo, "poll", cfg.poll_interval, f) or cfg.poll_interval,
            download_timeout=positive_seconds(tmo.get("download", cfg.download_timeout), f"{f}: [timeouts] download"),
            in_flight=in_flight,
            source=str(f),
            servers_from=str(f) if urls else cfg.servers_from,
        )
    if env.get("DGX_PIXELS_SERVER"):
        cfg = replace(cfg, servers=tuple(normalize_url(u, "DGX_PIXELS_SERVER") for u in env["DGX_PIXELS_SERVER"].split(",")
                                         if u.strip()), servers_from="$DGX_PIXELS_SERVER")
    if env.get("DGX_PIXELS_TOKEN"):
        cfg = replace(cfg, token=env["DGX_PIXELS_TOKEN"])
    if env.get("DGX_PIXELS_AUTH_HEADER"):
        cfg = replace(cfg, auth_header=env["DGX_PIXELS_AUTH_HEADER"])
    if env.get("DGX_PIXELS_TIMEOUT"):
        try:
            cfg = replace(cfg, job_timeout=float(env["DGX_PIXELS_TIMEOUT"]))
        except ValueError as exc:
            raise InvalidArgumentError(f"DGX_PIXELS_TIMEOUT={env['DGX_PIXELS_TIMEOUT']!r} is not a number of seconds") from exc
    if env.get("DGX_PIXELS_DOWNLOAD_TIMEOUT"):
        raw: str | float = env["DGX_PIXELS_DOWNLOAD_TIMEOUT"]
        try:
            raw = float(raw)
        except ValueError:
            pass  # named as it was written, below
        cfg = replace(cfg, download_timeout=positive_seconds(raw, "DGX_PIXELS_DOWNLOAD_TIMEOUT"))
    if download_timeout is not None:
        download_timeout = positive_seconds(download_timeout, "download_timeout")
    cfg = cfg.with_overrides(
        servers=servers or None,
        token=token,
        auth_header=auth_header,
        job_timeout=job_timeout,
        in_flight=in_flight,
        download_timeout=download_timeout,
    )
    if cfg.in_flight < 1:
        raise InvalidArgumentError(f"in_flight must be >= 1, got {cfg.in_flight}")
    if cfg.job_timeout is not None and not cfg.job_timeout >= 0:
        raise InvalidArgumentError(f"the job time limit must be >= 0 seconds (0: none), got {cfg.job_timeout:g}",
                                   hint="--timeout S, or $DGX_PIXELS_TIMEOUT")
    return cfg


def add_server_arguments(parser, *, multi: bool = False) -> None:
    """The connection flags shared by run, batch, doctor and watch."""
    if multi:
        parser.add_argument(
            "--server", action="append", metavar="URL",
            help="ComfyUI server URL; repeat for several (default: $DGX_PIXELS_SERVER or http://127.0.0.1:8188)",
        )
    else:
        parser.add_argument("--server", metavar="URL", help="ComfyUI server URL (default: $DGX_PIXELS_SERVER or http://127.0.0.1:8188)")
    parser.add_argument("--token", help="auth token for a remote server (prefer $DGX_PIXELS_TOKEN: flags show up in `ps`)")
    parser.add_argument("--auth-header", metavar="NAME", help="HTTP header that carries the token (default Authorization, sent as 'Bearer <token>')")
    parser.add_argument("--config", metavar="PATH", help=f"settings file (default ./{CONFIG_NAME} or ~/.config/dgx-pixels/{CONFIG_NAME})")


def config_from_args(args) -> Config:
    """Build the ``Config`` of a command from its parsed flags."""
    server = getattr(args, "server", None)
    if isinstance(server, str):
        server = [server]
    if server:
        server = [normalize_url(u, "--server") for u in server]  # a bad one is named as the flag
    return load_config(
        getattr(args, "config", None),
        servers=server,
        token=getattr(args, "token", None),
        auth_header=getattr(args, "auth_header", None),
        job_timeout=getattr(args, "timeout", None),
        in_flight=getattr(args, "in_flight", None),
    )
