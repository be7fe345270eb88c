"""A therapist's open sockets end with the sign-in they were opened with: logout, `vsession user
disable` and `reset-2fa` (run as the real CLI, in its own process), a password change, and idle and
absolute expiry each close them at once, with a reason the page can show; and a chat, a recording
request or a join sent on an old socket does nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.app_client import NEW_PASSWORD, PASSWORD, Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from tests.support.practice_key import make_key
from tests.support.rooms_api import receive, therapist_socket
from tests.support.signin_sockets import (
    Scene,
    act_on,
    client_heard,
    closed,
    consent_requests,
    run_cli,
    scene,
)
from vsession.appkeys import SERVICES
from vsession.auth import signins
from vsession.config import Settings
from vsession.rooms.registry import SIGNED_OUT
from vsession.signaling import signin_watch

IDLE_MINUTES, ABSOLUTE_HOURS = 30, 1
ACTED = {"joined", "chat", "consent_status", "recording", "error"}


def acted_for_client(message: dict[str, Any]) -> bool:
    """A chat, a consent prompt or a recording state other than stopped, on the client's socket."""
    kind = message["type"]
    return kind in ("chat", "consent_prompt") or (kind == "recording" and message["state"] != "stopped")


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock, tmp_path: Path) -> Server:
    # With a recording key, a recording request would reach the consent machine and the client.
    _, recipient = make_key(tmp_path)
    return await open_server(
        aiohttp_client,
        settings,
        clock,
        idle_timeout_minutes=IDLE_MINUTES,
        absolute_timeout_hours=ABSOLUTE_HOURS,
        recording_recipient=recipient,
    )


@pytest.fixture
async def ada(server: Server) -> Therapist:
    return await enrol(server)


async def logout(s: Scene) -> None:
    assert (await s.therapist.browser.post("/api/logout")).status == 200


async def disable(s: Scene) -> None:
    await run_cli(s.server.settings, "user", "disable", s.therapist.username)


async def reset_2fa(s: Scene) -> None:
    await run_cli(s.server.settings, "user", "reset-2fa", s.therapist.username)


async def change_password(s: Scene) -> None:
    reply = await s.therapist.browser.post("/api/password", {"current": PASSWORD, "new": NEW_PASSWORD})
    assert reply.status == 200, reply.body


async def idle(s: Scene) -> None:
    s.server.clock.advance(IDLE_MINUTES * 60 + 1)


async def absolute(s: Scene) -> None:
    # Active all along (the page's heartbeat), so only the absolute limit can end it.
    for _ in range(2):
        s.server.clock.advance(20 * 60)
        assert (await s.therapist.browser.post("/api/heartbeat")).status == 200
    s.server.clock.advance(21 * 60)


EVENTS: dict[str, tuple[Callable[[Scene], Awaitable[None]], str]] = {
    "logout": (logout, signins.LOGGED_OUT),
    "disable": (disable, signins.DISABLED),
    "password": (change_password, signins.PASSWORD_CHANGED),
    "reset-2fa": (reset_2fa, signins.TWO_STEP_RESET),
    "idle": (idle, signins.IDLE.format(minutes=IDLE_MINUTES)),
    "absolute": (absolute, signins.ABSOLUTE.format(hours=ABSOLUTE_HOURS)),
}


@pytest.mark.parametrize("event", list(EVENTS))
async def test_the_sign_in_ending_closes_its_sockets_and_they_do_nothing(
    server: Server, ada: Therapist, event: str
) -> None:
    cause, reason = EVENTS[event]
    s = await scene(server, ada)
    await cause(s)
    await act_on(s)

    for ws in (s.in_call, s.outside):
        code, said, before = await closed(ws)
        assert (code, said) == (SIGNED_OUT, reason)
        # Nothing acted: no joined or offer for the join, no echo of the chat, no consent status.
        assert not [m for m in before if m["type"] in ACTED or (ws is s.outside and m["type"] == "offer")]
    heard = await client_heard(s)
    assert not [m for m in heard if acted_for_client(m)], heard
    assert await consent_requests(server, s.sid) == 0
    assert "t" not in server.app[SERVICES].sfu.room(s.sid).members
    await s.client.close()


async def test_a_message_after_a_disable_in_another_process_acts_on_nothing(
    server: Server, ada: Therapist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message checks its sign-in itself: with no sweep to close the sockets first, the
    chat, recording request and join that follow a CLI disable are still refused, and they close
    the socket with the reason."""
    monkeypatch.setattr(signin_watch, "SWEEP_SECONDS", 3600.0)
    s = await scene(server, ada)
    await disable(s)
    await act_on(s)
    for ws in (s.in_call, s.outside):
        code, said, before = await closed(ws)
        assert (code, said) == (SIGNED_OUT, signins.DISABLED)
        assert before == []
    heard = await client_heard(s)
    assert not [m for m in heard if acted_for_client(m)], heard
    assert await consent_requests(server, s.sid) == 0
    await s.client.close()


async def test_another_sign_in_of_the_same_therapist_keeps_its_sockets(
    server: Server, ada: Therapist
) -> None:
    """Logging out on one device ends that device's sign-in only."""
    s = await scene(server, ada)
    other = server.browser()
    server.next_step()
    await other.login(ada.secret)
    mine = Therapist(ada.username, ada.password, ada.secret, ada.recovery_codes, other)
    kept = await therapist_socket(mine)
    await logout(s)
    await closed(s.in_call)
    await closed(s.outside)
    await kept.send_json({"type": "ping"})
    assert await receive(kept) == {"type": "pong"}
    await kept.close()
    await s.client.close()


@pytest.mark.parametrize("event", ["logout", "password"])
async def test_a_change_made_on_this_server_closes_the_sockets_without_waiting_for_the_sweep(
    server: Server, ada: Therapist, event: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin_watch, "SWEEP_SECONDS", 3600.0)
    cause, reason = EVENTS[event]
    s = await scene(server, ada)
    await cause(s)
    for ws in (s.in_call, s.outside):
        code, said, _ = await closed(ws)
        assert (code, said) == (SIGNED_OUT, reason)
    await s.client.close()
