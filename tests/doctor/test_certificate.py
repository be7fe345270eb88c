"""The certificate check on real PEM files: each problem, the warnings, and the good cases."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vsession.config import Settings, load_settings
from vsession.doctor.certificate import check_certificate
from vsession.doctor.findings import Level

MakeCert = Callable[..., tuple[Path, Path]]

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
HOST = "video.example-practice.de"


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    return load_settings(environ={}, overrides={"data_dir": tmp_path / "data", **values})


def with_pair(tmp_path: Path, cert: Path, key: Path, **values: Any) -> Settings:
    return settings_for(
        tmp_path, tls_cert=cert, tls_key=key, host="0.0.0.0", public_origin=f"https://{HOST}", **values
    )


def test_a_good_certificate_is_ok(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - 10 * DAY, NOW + 80 * DAY)
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.OK, finding.line()
    assert "issued by Test CA" in finding.found and "80 days" in finding.found


def test_bound_to_every_address_with_no_origin_the_name_is_not_judged(
    tmp_path: Path, make_cert: MakeCert
) -> None:
    cert, key = make_cert(HOST, NOW - 10 * DAY, NOW + 80 * DAY)
    settings = settings_for(tmp_path, tls_cert=cert, tls_key=key, host="0.0.0.0")
    finding = check_certificate(settings, NOW)
    assert finding.level is Level.OK, finding.line()
    assert "for this host" in finding.found


def test_an_expired_certificate_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - 100 * DAY, NOW - 2 * DAY)
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.PROBLEM
    assert f"expired on {(NOW - 2 * DAY):%Y-%m-%d}" in finding.found and "renew" in finding.fix


def test_a_certificate_expiring_soon_is_a_warning(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - 80 * DAY, NOW + 5 * DAY + datetime.timedelta(hours=1))
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.WARN
    assert "expires in 5 days" in finding.found and "renew" in finding.fix


def test_a_key_that_is_not_the_certificates_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, _ = make_cert(HOST, NOW - DAY, NOW + 80 * DAY)
    _, other_key = make_cert(HOST, NOW - DAY, NOW + 80 * DAY)
    finding = check_certificate(with_pair(tmp_path, cert, other_key), NOW)
    assert finding.level is Level.PROBLEM
    assert f"tls_key {other_key} is not the key of the certificate" in finding.found


def test_a_missing_file_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - DAY, NOW + 80 * DAY)
    key.unlink()
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.PROBLEM
    assert f"cannot read tls_key {key}" in finding.found


def test_a_key_with_a_pass_phrase_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - DAY, NOW + 80 * DAY, pass_phrase=b"correct horse")
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.PROBLEM
    assert "pass phrase" in finding.found and "openssl pkey" in finding.fix


def test_a_certificate_for_another_host_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert("other.example.org", NOW - DAY, NOW + 80 * DAY)
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.PROBLEM
    assert f"does not name {HOST}" in finding.found


def test_a_certificate_not_yet_valid_is_a_problem(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW + 2 * DAY, NOW + 80 * DAY)
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.PROBLEM
    assert "valid only from" in finding.found and "clock" in finding.fix


def test_self_signed_is_a_warning_for_a_public_host(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert(HOST, NOW - DAY, NOW + 80 * DAY, self_signed=True)
    finding = check_certificate(with_pair(tmp_path, cert, key), NOW)
    assert finding.level is Level.WARN
    assert f"self-signed, for the public host {HOST}" in finding.found and "public CA" in finding.fix


def test_self_signed_on_a_lan_address_is_fine(tmp_path: Path, make_cert: MakeCert) -> None:
    cert, key = make_cert("192.168.1.20", NOW - DAY, NOW + 80 * DAY, self_signed=True)
    settings = settings_for(tmp_path, tls_cert=cert, tls_key=key, host="192.168.1.20")
    finding = check_certificate(settings, NOW)
    assert finding.level is Level.OK, finding.line()
    assert "self-signed (fine on a LAN" in finding.found


def test_the_self_signed_setting_for_a_public_host_is_a_warning(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, self_signed=True, host="0.0.0.0", public_origin=f"https://{HOST}")
    finding = check_certificate(settings, NOW)
    assert finding.level is Level.WARN
    assert f"self_signed is on, for the public host {HOST}" in finding.found


def test_plain_http_on_loopback_behind_a_proxy_is_fine(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, host="127.0.0.1", public_origin=f"https://{HOST}")
    finding = check_certificate(settings, NOW)
    assert finding.level is Level.OK
    assert "behind a proxy" in finding.found and "(fine)" in finding.found


def test_plain_http_with_no_proxy_origin_is_a_warning(tmp_path: Path) -> None:
    finding = check_certificate(settings_for(tmp_path, host="127.0.0.1"), NOW)
    assert finding.level is Level.WARN
    assert "only browsers on this machine" in finding.found


def test_a_plain_http_public_origin_is_a_problem(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, host="127.0.0.1", public_origin=f"http://{HOST}")
    finding = check_certificate(settings, NOW)
    assert finding.level is Level.PROBLEM
    assert "camera and microphone only to https" in finding.found
