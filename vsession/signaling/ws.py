"""GET /ws: one socket per page. The cookie decides who you are; the URL only says which role and
session the page wants, and both are checked against the cookie at the handshake and again at
every action that matters. A therapist's socket lives only as long as its sign-in: every message
checks it first (vsession/signaling/signin_watch.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from vsession.appkeys import AUTH, SERVICES, SETTINGS
from vsession.auth import signins
from vsession.consent.indicator import NOT_RECORDING
from vsession.consent.machine import Consent, Records, refuse_forgery
from vsession.errors import Refusal
from vsession.rooms import invites, personal
from vsession.rooms.access import owned
from vsession.rooms.invites import GUEST_COOKIE
from vsession.rooms.registry import TherapistSocket
from vsession.services import Services
from vsession.sfu.ice import THERAPIST_TURN_NAME, browser_ice_servers
from vsession.sfu.peer import Peer
from vsession.sfu.room import THERAPIST_PEER, CallEnded, CallFull, guest_peer_id
from vsession.signaling import schema, signin_watch
from vsession.signaling.ratelimit import TokenBucket
from vsession.store import therapists, therapy_sessions

log = logging.getLogger("vsession.signaling")
MAX_MESSAGE = 64 * 1024
MAX_STRIKES = 20  # refused messages before the connection is closed


@dataclass
class Caller:
    """Who is on the other end of a socket, as established from the cookie."""

    ws: web.WebSocketResponse
    session_id: str | None
    peer_id: str
    role: str
    therapist_id: int
    seat: int = 0
    signin: TherapistSocket | None = None  # a therapist's: its sign-in, checked at every message
    in_call: bool = False
    peer: Peer | None = None  # this socket's connection in the call; a later join may replace it


async def websocket(request: web.Request) -> web.WebSocketResponse:
    # Browsers do not apply CORS to WebSockets; the Origin check is what stops cross-site pages.
    if request.headers.get("Origin") != request.app[SETTINGS].origin:
        raise web.HTTPForbidden(text="Cross-site WebSocket refused.")
    services = request.app[SERVICES]
    role = request.query.get("role")
    session_id = request.query.get("session")
    if role == "therapist":
        token = request.cookies.get(signins.COOKIE)
        session = await signins.lookup(request.app[AUTH], token)
        if session is None or session.stage != "full":
            raise web.HTTPUnauthorized(text="Please sign in.")
        if session_id is not None:
            try:
                async with services.db.transaction() as tx:
                    await owned(tx, session.therapist_id, session_id)
            except Refusal as exc:
                raise web.HTTPNotFound(text=exc.message) from None
        ws = _ws()
        signin = TherapistSocket(ws, session.therapist_id, session.token_hash, session)
        caller = Caller(ws, session_id, THERAPIST_PEER, "therapist", session.therapist_id, signin=signin)
    elif role == "guest":
        guest = await invites.guest_of(services, request.cookies.get(GUEST_COOKIE))
        if guest is None or guest.session.id != session_id:
            raise web.HTTPUnauthorized(text="Please open the link your therapist sent you.")
        caller = Caller(
            _ws(),
            session_id,
            guest_peer_id(guest.seat.seat),
            "client",
            guest.session.therapist_id,
            guest.seat.seat,
        )
    else:
        raise web.HTTPBadRequest(text="Say ?role=therapist[&session=<id>] or ?role=guest&session=<id>.")

    await caller.ws.prepare(request)
    await _register(services, caller)
    try:
        await _serve(services, caller)
    finally:
        # Shielded: aiohttp cancels the handler of a vanished client, and a half-done leave would
        # keep a ghost in the call and its recording segment unfinished.
        await asyncio.shield(_unregister(services, caller))
    return caller.ws


def _ws() -> web.WebSocketResponse:
    # aiohttp refuses a message of max_msg_size bytes or more; a message of exactly 64 KiB is allowed.
    return web.WebSocketResponse(max_msg_size=MAX_MESSAGE + 1, heartbeat=20)


async def _register(services: Services, caller: Caller) -> None:
    if caller.signin is not None:
        await services.registry.add_therapist(caller.signin)
        signin_watch.ensure_sweeping(services)
        return
    assert caller.session_id is not None
    await services.registry.add_guest(caller.session_id, caller.seat, caller.ws)
    await services.registry.tell_therapist(caller.therapist_id, {"type": "sessions_changed"})
    async with services.db.transaction() as tx:
        seat = await therapy_sessions.seat(tx, caller.session_id, caller.seat)
    await caller.ws.send_json({"type": "state", "state": seat.state if seat else "removed"})


async def _unregister(services: Services, caller: Caller) -> None:
    if caller.in_call and caller.session_id is not None:
        await services.sfu.leave(caller.session_id, caller.peer_id, "disconnected", caller.peer)
    if caller.role == "therapist":
        services.registry.drop_therapist(caller.therapist_id, caller.ws)
        return
    assert caller.session_id is not None
    services.registry.drop_guest(caller.session_id, caller.seat, caller.ws)
    await services.registry.tell_therapist(caller.therapist_id, {"type": "sessions_changed"})


async def _serve(services: Services, caller: Caller) -> None:
    bucket = TokenBucket(rate=20, burst=40)
    strikes = 0
    async for message in caller.ws:
        if message.type == WSMsgType.ERROR:
            break
        reply: dict[str, Any] | None
        if message.type != WSMsgType.TEXT:
            reply = _error("Only JSON text messages are accepted.")
        elif not bucket.take():
            reply = _error("Too many messages; slow down.")
        else:
            try:
                reply = await _handle(services, caller, message.data)
            except (schema.Invalid, ValueError) as exc:
                reply = _error(str(exc))
            except Refusal as exc:
                reply = _error(exc.message)
            except Exception:
                # A bug or a broken part: the page hears it plainly, the log gets the traceback.
                log.exception("websocket message failed", extra={"session": caller.session_id})
                reply = _error("Something went wrong on the server. Please try again, or rejoin the call.")
        if reply is not None:
            if reply["type"] == "error":
                strikes += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                await caller.ws.send_json(reply)
        if strikes > MAX_STRIKES:
            await caller.ws.close(message=b"too many bad messages")
            break


async def _handle(services: Services, caller: Caller, data: str) -> dict[str, Any] | None:
    try:
        message: dict[str, Any] | None = schema.parse(data)
        problem = ""
    except schema.Invalid as exc:
        message, problem = None, str(exc)
    if caller.signin is not None:
        # A therapist's message acts only while the sign-in behind its socket lives. A page's ping
        # counts as activity, so a long call is not taken for an idle sign-in.
        touch = message is not None and message["type"] == "ping"
        reason = await signin_watch.check(services, caller.signin, touch=touch)
        if reason is not None:
            # Closed with the reason; the handler's loop then ends, and the message did nothing.
            await services.registry.end([caller.signin], reason)
            return None
    if message is None:
        return _error(problem)
    return await _dispatch(services, caller, message)


def _error(text: str) -> dict[str, Any]:
    return {"type": "error", "error": text}


async def _dispatch(services: Services, caller: Caller, message: dict[str, Any]) -> dict[str, Any] | None:
    kind = message["type"]
    if kind == "ping":
        return {"type": "pong"}
    if caller.session_id is None:
        return _error("This connection is not for a session.")
    if kind == "join":
        return await _join(services, caller)
    if kind in ("record", "consent", "withdraw"):
        # Checked (and forgeries audited) by the consent machine whether or not this page is in the call.
        return await _consent(services, caller, message)
    if not caller.in_call:
        return _error("Join the call first.")
    room = services.sfu.room(caller.session_id)
    member = room.members.get(caller.peer_id)
    if kind == "leave":
        caller.in_call = False
        await services.sfu.leave(caller.session_id, caller.peer_id, "left", caller.peer)
        return {"type": "left"}
    if member is None or member.peer is not caller.peer:
        caller.in_call = False
        return _error("You are no longer in the call. Join again.")
    if kind == "answer":
        await member.peer.answer(message["sdp"])
        return None
    if kind == "screen":
        await room.screen(caller.peer_id, message["on"])
        return None
    if kind == "media":
        await room.set_media(caller.peer_id, message["audio"], message["video"])
        return None
    if kind == "chat":
        text = message["text"].strip()
        if text:
            # Relayed to whoever is in the call now, and never stored.
            await room.broadcast({"type": "chat", "from": caller.peer_id, "name": member.name, "text": text})
        return None
    return _error("Unknown message.")


async def _consent(services: Services, caller: Caller, message: dict[str, Any]) -> dict[str, Any] | None:
    assert caller.session_id is not None
    room = services.sfu.rooms.get(caller.session_id)
    if room is None or caller.peer_id not in room.members:
        # Not in the call: nothing to consent to. A client asking to record is still a forgery.
        if message["type"] == "record" and caller.role != "therapist":
            await refuse_forgery(
                Records(services.db, services.audit, services.clock),
                caller.session_id,
                caller.peer_id,
                "a client asked to control recording",
            )
        return _error("Join the call first.")
    consent = services.consent(caller.session_id)
    if message["type"] == "record":
        action = message["action"]
        if action == "request":
            await consent.request_recording(caller.peer_id)
        elif action == "ask_again":
            await consent.ask_again(caller.peer_id)
        else:
            await consent.stop(caller.peer_id, "stopped by therapist")
    elif message["type"] == "consent":
        await consent.answer(caller.peer_id, message)
    else:
        await consent.withdraw(caller.peer_id)
    return None


async def _join(services: Services, caller: Caller) -> dict[str, Any] | None:
    assert caller.session_id is not None
    # A newcomer closes the recorder's gate as their join arrives, before the awaits that admit it.
    room = services.sfu.rooms.get(caller.session_id)
    consent = room.listener if room is not None and isinstance(room.listener, Consent) else None
    if consent is not None:
        consent.join_arriving(caller.peer_id)
    try:
        return await _join_call(services, caller)
    finally:
        if consent is not None:
            await asyncio.shield(consent.join_settled(caller.peer_id))


async def _join_call(services: Services, caller: Caller) -> dict[str, Any] | None:
    assert caller.session_id is not None
    async with services.db.transaction() as tx:
        if caller.role == "therapist":
            session = await owned(tx, caller.therapist_id, caller.session_id)
            if session.state != "open":
                return _error("This session has ended.")
            account = await therapists.by_id(tx, caller.therapist_id)
            name = account.display_name if account else "Therapist"
        else:
            seat = await therapy_sessions.seat(tx, caller.session_id, caller.seat)
            session = await therapy_sessions.get(tx, caller.session_id)
            if seat is None or session is None or session.state != "open" or seat.state != "admitted":
                return _error("You have not been admitted to this session.")
            name = personal.name_of(services.personal, seat) or f"Client {caller.seat}"

    # A credential of its own for each participant, fresh with every offer (minting is one HMAC).
    turn_name = THERAPIST_TURN_NAME if caller.role == "therapist" else str(caller.seat)

    async def send(message: dict[str, Any]) -> None:
        if message.get("type") == "offer":
            servers = browser_ice_servers(services.settings, turn_name, services.clock.now())
            message = {**message, "iceServers": servers}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await caller.ws.send_json(message)

    # Say who you are before the first offer and participant list, so the page can tell itself apart.
    # With what the recorder is doing now: the page shows nothing it was told before a reconnect.
    room = services.sfu.rooms.get(caller.session_id)
    consent = room.listener if room is not None and isinstance(room.listener, Consent) else None
    state = consent.state if consent is not None else "stopped"
    shown = consent.shown() if consent is not None else {"status": NOT_RECORDING, "who": [], "reason": ""}
    await send({"type": "joined", "id": caller.peer_id, "recording": state, "indicator": shown})
    try:
        caller.peer = await services.sfu.join(caller.session_id, caller.peer_id, name, caller.role, send)
    except CallFull:
        return _error("This call is full.")
    except CallEnded:
        return _error("This session has ended.")
    caller.in_call = True
    return None
