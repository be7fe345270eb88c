"""The TURN check against real coturn (tests/support/coturn.py, with the shipped deploy/turnserver.conf)."""

from __future__ import annotations

import asyncio
import socket
from contextlib import closing
from pathlib import Path

from tests.support.coturn import running_coturn
from vsession.doctor import turn
from vsession.doctor.findings import Finding, Level


def check(url: str, secret: str, within: float = 3.0) -> Finding:
    return asyncio.run(turn.check_turn(url, secret, "", "", within=within))


def test_coturn_allocates_with_a_fresh_credential(tmp_path: Path) -> None:
    with running_coturn(tmp_path / "coturn") as coturn:
        over_udp = check(coturn.url, coturn.secret)
        over_tcp = check(f"{coturn.url}?transport=tcp", coturn.secret)
        log = coturn.log()
    assert over_udp.level is Level.OK, f"{over_udp.line()}\n{log}"
    assert f"{coturn.url} allocated a relay (127.0.0.1:" in over_udp.found
    assert "a fresh credential" in over_udp.found
    assert over_tcp.level is Level.OK, f"{over_tcp.line()}\n{log}"


def test_a_wrong_secret_is_refused(tmp_path: Path) -> None:
    with running_coturn(tmp_path / "coturn") as coturn:
        finding = check(coturn.url, "not-the-secret-coturn-has")
    assert finding.level is Level.PROBLEM
    assert f"{coturn.url} refused a fresh credential (valid 5 minutes) (401" in finding.found
    assert "static-auth-secret" in finding.fix


def test_nothing_listening_is_a_problem() -> None:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # UDP: the request goes unanswered; TCP: the connection is refused at once.
    silent = check(f"turn:127.0.0.1:{port}", "a-secret-of-some-length", within=1.0)
    refused = check(f"turn:127.0.0.1:{port}?transport=tcp", "a-secret-of-some-length", within=1.0)
    assert silent.level is Level.PROBLEM
    assert silent.found == f"no answer from turn:127.0.0.1:{port} within 1 s"
    assert refused.level is Level.PROBLEM
    assert refused.found.startswith(f"cannot reach turn:127.0.0.1:{port}?transport=tcp")


def test_nothing_to_try() -> None:
    none = turn.check_turn_config(("stun:stun.example.org",), "", "")
    no_credential = turn.check_turn_config(("turn:turn.example.org",), "", "")
    assert none is not None and none.level is Level.WARN
    assert no_credential is not None and no_credential.level is Level.PROBLEM
    assert turn.check_turn_config(("turn:turn.example.org",), "s" * 16, "") is None
