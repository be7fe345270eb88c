"""Settings: defaults, the order of the layers, and the one-line error with exit code 2."""

import subprocess
from pathlib import Path

import bech32
import pytest

from tests.support.cli import run_vsession
from vsession.config import ConfigError, Settings, load_settings
from vsession.recording.recipients import recording_status

REPO = Path(__file__).resolve().parent.parent


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vsession.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_suit_the_embedded_mode() -> None:
    s = load_settings(environ={})
    assert s.data_dir == Path("data")
    assert s.db_path == Path("data") / "vsession.sqlite3"
    assert s.host == "127.0.0.1"
    assert s.port == 8443
    assert s.uses_tls is False
    assert s.origin == "http://127.0.0.1:8443"


def test_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'port = 9001\nhost = "localhost"\nlog_level = "debug"\n')

    only_file = load_settings(config, environ={})
    assert (only_file.port, only_file.host, only_file.log_level) == (9001, "localhost", "debug")

    env = {"VSESSION_PORT": "9002", "VSESSION_DATA_DIR": str(tmp_path / "env-data"), "HOME": "/x"}
    file_and_env = load_settings(config, environ=env)
    assert file_and_env.port == 9002
    assert file_and_env.data_dir == tmp_path / "env-data"
    assert file_and_env.host == "localhost"  # only in the file

    all_three = load_settings(config, environ=env, overrides={"port": "9003", "host": None})
    assert all_three.port == 9003
    assert all_three.host == "localhost"  # None means "flag not given", not "unset"
    assert all_three.data_dir == tmp_path / "env-data"


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "prot = 8443\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.name == "prot"
    assert "'prot'" in str(caught.value)


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"VSESSION_BOGUS": "1"})
    assert caught.value.name == "VSESSION_BOGUS"
    assert "VSESSION_BOGUS" in str(caught.value)


def test_other_environment_variables_are_ignored() -> None:
    assert load_settings(environ={"PATH": "/bin", "VSESSIONX": "1"}) == Settings()


@pytest.mark.parametrize(
    ("layer", "name", "value"),
    [
        ("override", "port", 70000),
        ("override", "port", -1),
        ("override", "port", "abc"),
        ("env", "port", "abc"),
        ("toml", "port", "8443.5"),
        ("toml", "port", "true"),
        ("override", "log_level", "loud"),
        ("env", "log_level", "loud"),
        ("override", "lockout_threshold", 0),
        ("env", "lockout_threshold", "-3"),
        ("env", "data_retention_days", "-1"),
        ("env", "self_signed", "maybe"),
        ("toml", "host", "1"),
        ("override", "public_origin", "example.org"),
    ],
)
def test_bad_values_are_refused_and_named(tmp_path: Path, layer: str, name: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        if layer == "override":
            load_settings(environ={}, overrides={name: value})
        elif layer == "env":
            load_settings(environ={f"VSESSION_{name.upper()}": str(value)})
        else:
            load_settings(write_toml(tmp_path, f"{name} = {value}\n"), environ={})
    assert caught.value.name == name
    assert "\n" not in str(caught.value)


def test_port_zero_is_allowed_for_picking_a_free_port() -> None:
    assert load_settings(environ={}, overrides={"port": "0"}).port == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_plain_http_only_on_loopback(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"host": host})
    assert caught.value.name == "host"
    assert load_settings(environ={}, overrides={"host": host, "self_signed": True}).uses_tls


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_may_use_plain_http(host: str) -> None:
    assert load_settings(environ={}, overrides={"host": host}).host == host


def test_tls_cert_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"tls_cert": str(tmp_path / "c.pem")})
    assert caught.value.name == "tls_key"


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, "port = = 1\n"), environ={})
    assert caught.value.name == "config"
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml", environ={})


# The command line: one line on stderr naming the setting, exit code 2.


def assert_one_line_error(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsession: invalid setting"), lines[0]
    assert name in lines[0]


def test_cli_bad_port_flag(tmp_path: Path) -> None:
    result = run_vsession("serve", "--data-dir", str(tmp_path / "data"), "--port", "abc")
    assert_one_line_error(result, "'port'")
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_cli_unknown_environment_variable(tmp_path: Path) -> None:
    result = run_vsession(
        "audit", "checkpoint", "--data-dir", str(tmp_path / "data"), env={"VSESSION_BOGUS": "1"}
    )
    assert_one_line_error(result, "VSESSION_BOGUS")
    assert not (tmp_path / "data").exists()


def test_cli_unknown_key_in_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_toml(tmp_path, f'data_dir = "{data}"\nlockout_treshold = 5\n')
    result = run_vsession("audit", "verify", "--config", str(config))
    assert_one_line_error(result, "'lockout_treshold'")
    assert not data.exists()


def test_cli_non_loopback_without_tls(tmp_path: Path) -> None:
    result = run_vsession("serve", "--data-dir", str(tmp_path / "data"), "--host", "0.0.0.0")
    assert_one_line_error(result, "'host'")


# The recording recipients: parsed in full (Bech32, checksum, X25519 length) when settings load.

RECIPIENTS = ("recording_recipient", "breakglass_recipient")


@pytest.fixture(scope="module")
def stock_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """(recipient, another recipient, the first one's secret identity line), from stock age-keygen."""
    folder = tmp_path_factory.mktemp("keys")
    made = []
    for name in ("practice.txt", "breakglass.txt"):
        subprocess.run(["age-keygen", "-o", str(folder / name)], check=True, capture_output=True)
        made.append(
            subprocess.run(
                ["age-keygen", "-y", str(folder / name)], check=True, capture_output=True, text=True
            ).stdout.strip()
        )
    [secret] = [x for x in (folder / "practice.txt").read_text().splitlines() if x.startswith("AGE-")]
    return made[0], made[1], secret


def flip(text: str, index: int) -> str:
    other = "q" if text[index] != "q" else "p"  # both are Bech32 characters
    return text[:index] + other + text[index + 1 :]


def bech32_text(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5, True)
    assert words is not None
    return bech32.bech32_encode(hrp, words)


def recipient_settings(name: str, value: str, good: str) -> dict[str, str]:
    """`value` in setting `name`; breakglass needs a (good) recording recipient beside it."""
    return {name: value} if name == "recording_recipient" else {"recording_recipient": good, name: value}


@pytest.mark.parametrize("name", RECIPIENTS)
@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("wrong hrp", "plugin"),
        ("bad checksum", "checksum"),
        ("31 bytes", "31 bytes"),
        ("33 bytes", "33 bytes"),
        ("upper case", "lowercase"),
        ("mixed case", "lowercase"),
        ("identity", "secret key"),
    ],
)
def test_bad_recipients_are_refused_and_named(
    stock_keys: tuple[str, str, str], name: str, case: str, fragment: str
) -> None:
    good, _, secret = stock_keys
    key = bytes(32 * [7])
    value = {
        "wrong hrp": bech32_text("age1yubikey", key),  # a plugin recipient passes an 'age1' prefix check
        "bad checksum": flip(good, 30),
        "31 bytes": bech32_text("age", key[:31]),
        "33 bytes": bech32_text("age", key + b"\x00"),
        "upper case": good.upper(),
        "mixed case": good[:40] + good[40:].upper(),
        "identity": secret,
    }[case]
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides=recipient_settings(name, value, good))
    assert caught.value.name == name
    message = str(caught.value)
    assert message.startswith(f"invalid setting '{name}': ")
    assert fragment in message
    assert "\n" not in message
    assert value[8:] not in message and secret[16:30] not in message  # never echoed: it may be a secret


@pytest.mark.parametrize("layer", ["toml", "env"])
def test_good_recipients_load_from_every_layer_and_enable_recording(
    tmp_path: Path, stock_keys: tuple[str, str, str], layer: str
) -> None:
    good, other, _ = stock_keys
    if layer == "toml":
        config = write_toml(tmp_path, f'recording_recipient = "{good}"\nbreakglass_recipient = "{other}"\n')
        s = load_settings(config, environ={})
    else:
        env = {"VSESSION_RECORDING_RECIPIENT": f"{good}\n", "VSESSION_BREAKGLASS_RECIPIENT": other}
        s = load_settings(environ=env)  # a trailing newline from a paste is harmless
    status = recording_status(s.recording_recipient, s.breakglass_recipient)
    assert status.startswith(f"recording: enabled, recipient {good[:8]}…{good[-4:]} (sha256 ")
    assert f", break-glass {other[:8]}…{other[-4:]} (sha256 " in status


def test_empty_recipients_mean_recording_is_disabled(stock_keys: tuple[str, str, str]) -> None:
    s = load_settings(environ={"VSESSION_RECORDING_RECIPIENT": "", "VSESSION_BREAKGLASS_RECIPIENT": ""})
    assert recording_status(s.recording_recipient, s.breakglass_recipient) == (
        "recording: disabled (no recording_recipient)"
    )
    # An empty break-glass recipient is just "no second key".
    good = stock_keys[0]
    s = load_settings(environ={"VSESSION_RECORDING_RECIPIENT": good, "VSESSION_BREAKGLASS_RECIPIENT": ""})
    assert recording_status(s.recording_recipient, s.breakglass_recipient).startswith("recording: enabled")


def test_breakglass_alone_is_refused(stock_keys: tuple[str, str, str]) -> None:
    # A break-glass key opens recordings made for the practice key; alone it is a mistake
    # (recording would be silently off), so start-up says so instead of guessing.
    _, other, _ = stock_keys
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"breakglass_recipient": other})
    assert caught.value.name == "breakglass_recipient"
    assert "recording_recipient" in str(caught.value)


def test_breakglass_must_be_another_key(stock_keys: tuple[str, str, str]) -> None:
    good, _, _ = stock_keys
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"recording_recipient": good, "breakglass_recipient": good})
    assert caught.value.name == "breakglass_recipient"
    assert "same key" in str(caught.value)


TURN = "turn:turn.example.org:3478"


@pytest.mark.parametrize(
    ("values", "name", "words"),
    [
        ({"media_ports": "50000"}, "media_ports", "FIRST-LAST"),
        ({"media_ports": "50000-50003"}, "media_ports", "at least 10"),
        ({"media_ports": "1000-1100"}, "media_ports", "1024-65535"),
        ({"media_ports": "50100-50000"}, "media_ports", "FIRST <= LAST"),
        ({"turn_secret": "short", "ice_servers": TURN}, "turn_secret", "at least 16"),
        ({"turn_secret": "s" * 32}, "turn_secret", "no turn: or turns: URL"),
        ({"turn_secret": "s" * 32, "ice_servers": TURN, "turn_username": "u"}, "turn_secret", "not both"),
        ({"turn_ttl_minutes": 0}, "turn_ttl_minutes", "positive"),
        ({"trusted_proxies": "10.0.0.0/8,nonsense"}, "trusted_proxies", "'nonsense'"),
        ({"metrics_bind": "9464"}, "metrics_bind", "HOST:PORT"),
        ({"metrics_bind": "127.0.0.1:99999"}, "metrics_bind", "HOST:PORT"),
        ({"metrics_bind": "0.0.0.0:8443", "port": 8443}, "metrics_bind", "public port"),
    ],
)
def test_bad_deployment_settings_are_refused_and_named(
    values: dict[str, object], name: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides=values)
    assert caught.value.name == name
    assert words in str(caught.value)


def test_deployment_settings_load_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "VSESSION_MEDIA_PORTS": "50000-50199",
            "VSESSION_ICE_SERVERS": f"{TURN},turns:turn.example.org:443?transport=tcp",
            "VSESSION_TURN_SECRET": "x" * 40,
            "VSESSION_TRUSTED_PROXIES": "127.0.0.1, 172.16.0.0/12",
            "VSESSION_METRICS_BIND": "[::1]:9464",
        }
    )
    assert settings.media_port_range == range(50000, 50200)
    assert settings.trusted_proxies == ("127.0.0.1", "172.16.0.0/12")
    assert settings.metrics_address == ("::1", 9464)
    assert load_settings(environ={}).media_port_range is None
    assert load_settings(environ={}).metrics_address is None
