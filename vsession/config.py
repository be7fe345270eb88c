"""Settings: embedded-mode defaults, then an optional TOML file, then VSESSION_* variables, then flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsession.recording.recipients import parse_recipient
from vsession.rooms.notice import read_notice_file

ENV_PREFIX = "VSESSION_"
LOG_LEVELS = ("debug", "info", "warning", "error")
RELAYS = ("passthrough", "decoding", "rtp")
# Each participant takes one UDP port per server address (bundled media, rtcp-mux); a 1:1 call on a
# one-address server takes 2. Fewer than this would fit only a call or two.
MIN_MEDIA_PORTS = 10
MIN_TURN_SECRET = 16


class ConfigError(Exception):
    """A setting is unknown or invalid; start-up stops with one line naming it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"invalid setting '{name}': {problem}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    # The key files (audit, TOTP secrets, personal data). Unset: data_dir/keys. The database alone,
    # or a copy of data_dir without its keys folder, reveals no client name or session title.
    key_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    # The origin browsers use to reach us (behind a proxy it differs from host:port).
    public_origin: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    self_signed: bool = False
    log_level: str = "info"
    # Therapist sign-in (issue 3 documents why each default).
    lockout_threshold: int = 10
    lockout_minutes: int = 15
    ip_failure_limit: int = 50
    idle_timeout_minutes: int = 30
    absolute_timeout_hours: int = 12
    step_up_minutes: int = 5
    setup_link_minutes: int = 60
    # Client links stop working this long after a session's scheduled end.
    link_grace_minutes: int = 120
    # STUN/TURN URLs for the server and the pages; none by default, so nothing is sent to third parties.
    ice_servers: tuple[str, ...] = field(default=())
    turn_username: str = ""
    turn_password: str = ""
    # coturn's `static-auth-secret`: with it, each admitted participant gets its own TURN credential
    # (vsession/sfu/turn.py), valid this long; the secret itself never leaves the server.
    turn_secret: str = ""
    turn_ttl_minutes: int = 720
    # "50000-50199": every ICE candidate the server gathers binds a UDP port in this range, so a
    # firewall opens only these. Empty: any free port.
    media_ports: str = ""
    # Proxies (addresses or networks) whose X-Forwarded-For names the client's address.
    trusted_proxies: tuple[str, ...] = field(default=())
    # "127.0.0.1:9464": Prometheus /metrics on its own address, never on the public one. Empty: off.
    metrics_bind: str = ""
    # Offer a 127.0.0.1 host candidate too, for hosts (and tests) with only a loopback interface.
    ice_loopback: bool = False
    # How media is forwarded: "passthrough" (encoded frames, no transcoding), "rtp" (RTP packets,
    # rewritten per receiver: no jitter buffer, no re-packetizing) or "decoding" (aiortc's
    # MediaRelay, which decodes and re-encodes per receiver; kept as a fallback and benchmark baseline).
    relay: str = "passthrough"
    # Recordings are encrypted to these age recipients (public keys, "age1..."); the matching
    # identities stay off the server. No recipient: recording is refused.
    recording_recipient: str = ""
    breakglass_recipient: str = ""
    # Recordings older than this are deleted automatically, with a receipt in the audit log.
    retention_days: int = 30
    # Ended sessions older than this lose their title and seats, audit entries their IP address.
    # Client names go earlier: when the session ends plus link_grace_minutes.
    data_retention_days: int = 30
    # Shown to every client before anything else (vsession/rooms/notice.py): who runs this server,
    # in the practice's words. Without a file, a built-in notice naming practice_name.
    practice_name: str = ""
    privacy_notice_file: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "vsession.sqlite3"

    @property
    def key_folder(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def media_port_range(self) -> range | None:
        return parse_port_range(self.media_ports) if self.media_ports else None

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return parse_bind(self.metrics_bind) if self.metrics_bind else None

    @property
    def uses_tls(self) -> bool:
        return self.self_signed or self.tls_cert is not None

    @property
    def origin(self) -> str:
        if self.public_origin:
            return self.public_origin.rstrip("/")
        scheme = "https" if self.uses_tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, raw: Any) -> Any:
    kind = str(FIELDS[name].type)
    try:
        if kind == "int":
            # int(8443.5) would silently truncate a TOML float; only whole numbers or their text.
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise ValueError
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "Path":
            return Path(str(raw))
        if kind == "Path | None":
            return Path(str(raw)) if str(raw) else None
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected {kind}, got {raw!r}") from None


def _validate(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise ConfigError("port", f"must be 0-65535, got {s.port}")
    if s.log_level not in LOG_LEVELS:
        raise ConfigError("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    for name in (
        "lockout_threshold",
        "lockout_minutes",
        "ip_failure_limit",
        "idle_timeout_minutes",
        "absolute_timeout_hours",
        "step_up_minutes",
        "setup_link_minutes",
        "link_grace_minutes",
        "turn_ttl_minutes",
    ):
        if getattr(s, name) <= 0:
            raise ConfigError(name, f"must be positive, got {getattr(s, name)}")
    if (s.tls_cert is None) != (s.tls_key is None):
        raise ConfigError("tls_cert" if s.tls_cert is None else "tls_key", "tls_cert and tls_key go together")
    if s.self_signed and s.tls_cert is not None:
        raise ConfigError("self_signed", "use either self_signed or tls_cert/tls_key, not both")
    _validate_recipients(s)
    if s.retention_days < 0:
        raise ConfigError("retention_days", f"must be 0 (keep) or more, got {s.retention_days}")
    if s.data_retention_days < 0:
        raise ConfigError("data_retention_days", f"must be 0 (keep) or more, got {s.data_retention_days}")
    if len(s.practice_name) > 120:
        raise ConfigError("practice_name", "must be at most 120 characters")
    if s.privacy_notice_file is not None:
        try:
            read_notice_file(s.privacy_notice_file)
        except ValueError as exc:
            raise ConfigError("privacy_notice_file", str(exc)) from None
    if s.relay not in RELAYS:
        raise ConfigError("relay", f"must be one of {', '.join(RELAYS)}, got {s.relay!r}")
    for url in s.ice_servers:
        if not url.startswith(("stun:", "turn:", "turns:")):
            raise ConfigError("ice_servers", f"each entry must be a stun:, turn: or turns: URL, got {url!r}")
    _validate_network(s)
    if s.public_origin and not s.public_origin.startswith(("https://", "http://")):
        raise ConfigError("public_origin", f"must start with https:// or http://, got {s.public_origin!r}")
    if not s.uses_tls and not is_loopback(s.host):
        # Cookies and camera access need a secure context; plain http is only safe on this machine.
        raise ConfigError(
            "host",
            f"plain http is allowed only on loopback; give tls_cert/tls_key or self_signed to bind {s.host}",
        )


def _validate_recipients(s: Settings) -> None:
    """Parsed in full now, by the writer's own parser, so a recording never fails on a bad key."""
    keys: dict[str, bytes] = {}
    for name in ("recording_recipient", "breakglass_recipient"):
        if getattr(s, name):
            try:
                keys[name] = parse_recipient(getattr(s, name)).public_bytes_raw()
            except ValueError as exc:
                raise ConfigError(name, str(exc)) from None
    if "breakglass_recipient" not in keys:
        return
    if "recording_recipient" not in keys:
        # Alone it would leave recording off while the admin believes it is set up.
        raise ConfigError(
            "breakglass_recipient",
            "is a second key for recordings, but recording_recipient is empty: set it too, "
            "or leave both empty to keep recording off",
        )
    if keys["breakglass_recipient"] == keys["recording_recipient"]:
        raise ConfigError(
            "breakglass_recipient",
            "is the same key as recording_recipient; use a second, separately kept key",
        )


def _validate_network(s: Settings) -> None:
    if s.turn_secret:
        if len(s.turn_secret) < MIN_TURN_SECRET:
            # Anyone who guesses it can mint TURN credentials and relay through the practice's server.
            raise ConfigError("turn_secret", f"must be at least {MIN_TURN_SECRET} characters")
        if s.turn_username or s.turn_password:
            raise ConfigError(
                "turn_secret", "use either turn_secret or turn_username/turn_password, not both"
            )
        if not any(url.startswith(("turn:", "turns:")) for url in s.ice_servers):
            raise ConfigError("turn_secret", "is set, but ice_servers has no turn: or turns: URL")
    for name, parse in (("media_ports", parse_port_range), ("metrics_bind", parse_bind)):
        try:
            if getattr(s, name):
                parse(getattr(s, name))
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
    if s.metrics_bind and s.port and parse_bind(s.metrics_bind)[1] == s.port:
        # Any host: a wildcard bind of either would overlap the other.
        raise ConfigError("metrics_bind", f"must not use the public port {s.port}: /metrics is never public")
    for entry in s.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                "trusted_proxies", f"each entry must be an address or network, got {entry!r}"
            ) from None


def parse_port_range(text: str) -> range:
    """ "50000-50199" -> range(50000, 50200); ValueError with the reason otherwise."""
    low, dash, high = text.partition("-")
    if not dash or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"must be FIRST-LAST, e.g. 50000-50199, got {text!r}")
    first, last = int(low), int(high)
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"must lie within 1024-65535 with FIRST <= LAST, got {text!r}")
    if last - first + 1 < MIN_MEDIA_PORTS:
        raise ValueError(
            f"{text!r} has {last - first + 1} ports; give at least {MIN_MEDIA_PORTS}"
            " (each participant takes one per server address)"
        )
    return range(first, last + 1)


def parse_bind(text: str) -> tuple[str, int]:
    """ "127.0.0.1:9464" or "[::1]:9464" -> (host, port); ValueError otherwise."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:9464, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers in order of precedence; raise ConfigError on the first bad one."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            table = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("config", f"cannot read {config_file}: {exc}") from None
        for name, raw in table.items():
            if name not in FIELDS:
                raise ConfigError(name, f"unknown setting in {config_file}")
            values[name] = _convert(name, raw)
    env = os.environ if environ is None else environ
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in FIELDS:
            raise ConfigError(key, "unknown setting")
        values[name] = _convert(name, raw)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _convert(name, raw)
    settings = Settings(**values)
    _validate(settings)
    return settings
