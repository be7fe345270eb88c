"""compose.yaml, .env.example and deploy/vsession.service, checked statically (no Docker engine or
systemd here): every file they name exists, and with .env.example's values the vsession service's
settings pass vsession's own start-up checks and agree with the image, Caddy and coturn."""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.image import final_stage
from tests.support.paths import REPO
from vsession.cli import build_parser, settings_from
from vsession.config import ENV_PREFIX, FIELDS, Settings, is_loopback

VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
TURN_SECRET = "a-test-secret-of-32-characters-x"  # .env.example leaves it for the admin to make


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(value: Any, values: dict[str, str]) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, applied to every string."""
    if isinstance(value, dict):
        return {key: interpolate(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, values) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if values.get(name):
            return values[name]
        if operator and operator.endswith("?"):
            raise AssertionError(f"compose would stop: {name}: {argument}")
        return argument if operator else ""

    return VARIABLE.sub(one, value).replace("$$", "$")  # "$$" is a literal "$" to compose


def compose(values: dict[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "compose.yaml").read_text())
    return interpolate(raw, values if values is not None else env_example() | {"TURN_SECRET": TURN_SECRET})


def vsession_settings(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings `serve` would load in the container: the image's ENV, then the service's."""
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    image_env = dict(item.split("=", 1) for value in final_stage()["ENV"] for item in value.split())
    for key, value in image_env.items() | service["environment"].items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, str(value))
    command = service["command"]
    assert command[0] == "vsession"
    return settings_from(build_parser().parse_args(command[1:]))


def test_every_variable_is_in_the_example_and_required_ones_stop_compose() -> None:
    text = (REPO / "compose.yaml").read_text()
    used = {match.group(1) for match in VARIABLE.finditer(text)}
    assert used == set(env_example()), "every ${NAME} in compose.yaml has a line in .env.example, and no more"
    with pytest.raises(AssertionError, match="TURN_SECRET"):
        compose(env_example())  # left empty in the example: compose refuses to start without it


def test_every_file_it_mounts_or_builds_exists() -> None:
    config = compose()
    named = set(config["volumes"])
    for name, service in config["services"].items():
        if "build" in service:
            assert (REPO / service["build"] / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).is_file(), f"{name} mounts {source}"
            else:
                assert source in named, f"{name}: declare the volume {source}"


def test_host_network_for_media_and_nothing_published() -> None:
    for name, service in compose()["services"].items():
        assert service["network_mode"] == "host", f"{name}: ICE candidates must carry the host's addresses"
        assert "ports" not in service


def test_vsession_settings_pass_the_servers_own_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    service = compose()["services"]["vsession"]
    assert all(key.removeprefix(ENV_PREFIX).lower() in FIELDS for key in service["environment"])
    settings = vsession_settings(service, monkeypatch)  # raises ConfigError on anything bad
    # Plain http is allowed on loopback only, and Caddy in front holds the public certificate.
    assert is_loopback(settings.host) and not settings.uses_tls
    assert settings.origin == f"https://{env_example()['DOMAIN']}"
    assert "127.0.0.1" in settings.trusted_proxies
    assert settings.data_dir == Path("/data") and "vsession-data:/data" in service["volumes"]
    (udp,) = [p for p in " ".join(final_stage()["EXPOSE"]).split() if p.endswith("/udp")]
    assert settings.media_ports == udp.removesuffix("/udp"), "the range the image exposes"
    assert settings.turn_secret == TURN_SECRET
    # The probe speaks what the server speaks, on its port.
    (probe,) = re.findall(r"https?://[^'\"]+", " ".join(service["healthcheck"]["test"]))
    assert probe == f"http://127.0.0.1:{settings.port}/healthz"


def test_caddy_gets_every_variable_of_the_caddyfile_and_reaches_vsession(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = compose()
    caddy = config["services"]["caddy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    text = (REPO / "deploy" / "Caddyfile").read_text()
    for name, default in re.findall(r"\{\$(\w+)(?::([^}]*))?\}", text):
        assert name in caddy["environment"] or default, f"Caddyfile needs {name}"
    settings = vsession_settings(config["services"]["vsession"], monkeypatch)
    assert caddy["environment"]["VSESSION_UPSTREAM"] == f"{settings.host}:{settings.port}"
    assert caddy["environment"]["VSESSION_DOMAIN"] == urlsplit(settings.origin).hostname


def test_coturn_shares_the_secret_and_listens_where_the_pages_look(monkeypatch: pytest.MonkeyPatch) -> None:
    config = compose()
    coturn = config["services"]["coturn"]
    settings = vsession_settings(config["services"]["vsession"], monkeypatch)
    assert coturn["environment"]["TURN_SECRET"] == settings.turn_secret
    script = " ".join(coturn["entrypoint"])
    assert settings.turn_secret not in script + " ".join(coturn.get("command", [])), "`ps` shows it"
    # The mounted file, copied with the secret added; the copy is what turnserver reads.
    (source, copy) = re.search(r"cp (\S+) (\S+)", script).groups()
    assert f"./deploy/turnserver.conf:{source}:ro" in coturn["volumes"]
    assert f'static-auth-secret=%s\\n\' "$TURN_SECRET" >> {copy}' in script
    assert f"exec turnserver -c {copy}" in script
    assert copy.startswith("/tmp/") and "/tmp" in coturn["tmpfs"], "in memory only"
    conf = (REPO / "deploy" / "turnserver.conf").read_text().splitlines()
    assert "use-auth-secret" in conf
    assert not any(line.startswith("static-auth-secret") for line in conf), "the secret stays out of git"
    (port,) = [line.split("=", 1)[1] for line in conf if line.startswith("listening-port=")]
    urls = [url for url in settings.ice_servers if url.startswith(("turn:", "stun:"))]
    assert urls and all(url.split("?")[0].rsplit(":", 1)[1] == port for url in urls)


def unit() -> dict[str, list[str]]:
    """deploy/vsession.service as key -> values (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / "vsession.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_starts_the_real_command_as_its_own_user() -> None:
    entries = unit()
    (exec_start,) = entries["ExecStart"]
    argv = shlex.split(exec_start)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name in scripts
    assert build_parser().parse_args(argv[1:]).command == "serve"
    assert entries["User"] != ["root"] and entries["User"] == entries["Group"]
    environment = dict(
        item.split("=", 1) for value in entries.get("Environment", []) for item in value.split()
    )
    assert all(
        key.removeprefix(ENV_PREFIX).lower() in FIELDS for key in environment if key.startswith("VSESSION")
    )
    assert entries["ReadWritePaths"] == [environment["VSESSION_DATA_DIR"]]
    assert Path(environment["VSESSION_DATA_DIR"]).name == entries["StateDirectory"][0]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "RestartPreventExitStatus": "2",  # a bad setting: restarting would only repeat it
    }.items():
        assert entries[key] == [value], key
