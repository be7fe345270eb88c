"""GET /ws: one socket per page. The cookie decides who you are; the URL only says which role the
page wants, and a guest's session must match its cookie."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from vsession.appkeys import AUTH, SERVICES, SETTINGS
from vsession.auth import sessions as web_sessions
from vsession.rooms import invites
from vsession.rooms.invites import GUEST_COOKIE
from vsession.signaling.ratelimit import TokenBucket

MAX_MESSAGE = 64 * 1024
MAX_STRIKES = 20  # refused messages before the connection is closed


async def websocket(request: web.Request) -> web.WebSocketResponse:
    # Browsers do not apply CORS to WebSockets; the Origin check is what stops cross-site pages.
    if request.headers.get("Origin") != request.app[SETTINGS].origin:
        raise web.HTTPForbidden(text="Cross-site WebSocket refused.")
    role = request.query.get("role")
    services = request.app[SERVICES]
    if role == "therapist":
        session = await web_sessions.lookup(request.app[AUTH], request.cookies.get(web_sessions.COOKIE))
        if session is None or session.stage != "full":
            raise web.HTTPUnauthorized(text="Please sign in.")
        ws = await _open(request)
        services.registry.add_therapist(session.therapist_id, ws)
        try:
            await _serve(request, ws, session_token=request.cookies.get(web_sessions.COOKIE))
        finally:
            services.registry.drop_therapist(session.therapist_id, ws)
        return ws
    if role == "guest":
        guest = await invites.guest_of(services, request.cookies.get(GUEST_COOKIE))
        if guest is None or guest.session.id != request.query.get("session"):
            raise web.HTTPUnauthorized(text="Please open the link your therapist sent you.")
        ws = await _open(request)
        sid, seat = guest.session.id, guest.seat.seat
        await services.registry.add_guest(sid, seat, ws)
        await services.registry.tell_therapist(guest.session.therapist_id, {"type": "sessions_changed"})
        await ws.send_json({"type": "state", "state": guest.seat.state})
        try:
            await _serve(request, ws)
        finally:
            services.registry.drop_guest(sid, seat, ws)
            await services.registry.tell_therapist(guest.session.therapist_id, {"type": "sessions_changed"})
        return ws
    raise web.HTTPBadRequest(text="Say ?role=therapist or ?role=guest&session=<id>.")


async def _open(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=20)
    await ws.prepare(request)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse, session_token: str | None = None) -> None:
    bucket = TokenBucket(rate=20, burst=40)
    strikes = 0
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            if message.type == WSMsgType.ERROR:
                break
            await ws.send_json({"type": "error", "error": "Only JSON text messages are accepted."})
            strikes += 1
        elif not bucket.take():
            await ws.send_json({"type": "error", "error": "Too many messages; slow down."})
            strikes += 1
        else:
            reply = await _handle(request, message.data, session_token)
            if reply.get("type") == "error":
                strikes += 1
            await ws.send_json(reply)
        if strikes > MAX_STRIKES:
            await ws.close(message=b"too many bad messages")
            break


async def _handle(request: web.Request, data: str, session_token: str | None) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except ValueError:
        return {"type": "error", "error": "That message is not valid JSON."}
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return {"type": "error", "error": "A message is a JSON object with a string 'type'."}
    if message["type"] == "ping":
        if session_token is not None:
            # A live page counts as activity, so a long call is not taken for an idle session.
            if await web_sessions.lookup(request.app[AUTH], session_token) is None:
                return {"type": "error", "error": "Your sign-in has expired."}
        return {"type": "pong"}
    return {"type": "error", "error": f"Unknown message type {message['type'][:40]!r}."}
