"""A therapist's sockets beside a call with one admitted client, for the tests that end a sign-in
(logout, disable, password change, reset-2fa, expiry) and check what the old sockets can still do.

Raw WebSockets of aiohttp's test client against the real app: the server makes its real aiortc
peers, the test never answers their offers (nothing here needs media).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import Client, create, receive, token_of
from vsession.appkeys import SERVICES
from vsession.auth.signins import COOKIE
from vsession.config import Settings

WS_TIMEOUT = 10  # only so a missing close fails the test instead of hanging it


@dataclass
class Scene:
    server: Server
    therapist: Therapist
    sid: str
    client: aiohttp.ClientWebSocketResponse  # the admitted client, in the call
    in_call: aiohttp.ClientWebSocketResponse  # the therapist's call page, joined
    outside: aiohttp.ClientWebSocketResponse  # the therapist's call page, not joined yet
    heard: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


async def therapist_call_socket(therapist: Therapist, sid: str) -> aiohttp.ClientWebSocketResponse:
    browser = therapist.browser
    return await browser.server.client.ws_connect(
        f"/ws?role=therapist&session={sid}",
        headers={"Origin": browser.server.origin, "Cookie": f"{COOKIE}={browser.cookie}"},
    )


async def until_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Messages up to and including the first of `kind`."""
    seen = []
    while True:
        message = await receive(ws)
        seen.append(message)
        if message["type"] == kind:
            return seen


async def scene(server: Server, therapist: Therapist) -> Scene:
    """A session (8 hours long, so it outlasts the expiry tests) with its client admitted and in
    the call, the therapist in the call on one socket and on the call page, not joined, on another."""
    sid = await create(therapist.browser, duration=480)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(therapist.browser, sid))).status == 200
    assert (await alice.wait(sid)).status == 200
    assert (await therapist.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    client = await alice.socket(sid)
    assert await receive(client) == {"type": "state", "state": "admitted"}
    await client.send_json({"type": "join"})
    await until_type(client, "participants")

    in_call = await therapist_call_socket(therapist, sid)
    await in_call.send_json({"type": "join"})
    while not ((m := await receive(in_call))["type"] == "consent_status" and "t" in m["answers"]):
        pass
    await in_call.send_json({"type": "ping"})
    await until_type(in_call, "pong")
    await until_participants(client, {"t", "s1"})
    outside = await therapist_call_socket(therapist, sid)
    await outside.send_json({"type": "ping"})
    assert await receive(outside) == {"type": "pong"}
    return Scene(server, therapist, sid, client, in_call, outside)


async def until_participants(ws: aiohttp.ClientWebSocketResponse, ids: set[str]) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = await receive(ws)
        seen.append(message)
        if message["type"] == "participants" and {p["id"] for p in message["list"]} == ids:
            return seen


async def act_on(scene: Scene) -> None:
    """What the old sockets try once their sign-in is gone: chat and a recording request from the
    call, a join from outside it. A send that finds the socket already closed is fine."""
    for ws, message in (
        (scene.in_call, {"type": "chat", "text": "sent after the sign-in ended"}),
        (scene.in_call, {"type": "record", "action": "request"}),
        (scene.outside, {"type": "join"}),
    ):
        try:
            await ws.send_json(message)
        except ConnectionError:
            pass


async def closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str, list[dict[str, Any]]]:
    """Read to the close: its code, its reason, and every message that came before it."""
    before = []
    while True:
        message = await ws.receive(timeout=WS_TIMEOUT)
        if message.type == aiohttp.WSMsgType.TEXT:
            before.append(json.loads(message.data))
            continue
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        return int(message.data), str(message.extra or ""), before


async def client_heard(scene: Scene) -> list[dict[str, Any]]:
    """What the client heard until the therapist's call socket has left (and one round trip more)."""
    heard = await until_participants(scene.client, {"s1"})
    await scene.client.send_json({"type": "ping"})
    heard += await until_type(scene.client, "pong")
    return heard


async def consent_requests(server: Server, sid: str) -> int:
    row = await server.app[SERVICES].db.fetchone(
        "SELECT count(*) FROM consent_requests WHERE session_id = ?", (sid,)
    )
    assert row is not None
    return int(row[0])


async def run_cli(settings: Settings, *args: str) -> str:
    """The real `vsession` command in its own process, on the test server's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vsession",
        *args,
        "--data-dir",
        str(settings.data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()
