"""Client endpoints: redeem a link once, then act only as the seat the guest cookie is bound to:
acknowledge the privacy notice, wait to be admitted, and give the seat up when leaving."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import SERVICES
from vsession.errors import Refusal
from vsession.http.client_address import client_address
from vsession.http.json_body import json_error, read_fields
from vsession.rooms import invites, notice, personal, waiting_room
from vsession.rooms.invites import GUEST_COOKIE, Guest
from vsession.services import Services
from vsession.sfu.room import guest_peer_id
from vsession.store import therapists, therapy_sessions


async def guest_for(request: web.Request) -> Guest:
    """The guest's seat, refused unless it belongs to the session in the URL."""
    guest = await invites.guest_of(request.app[SERVICES], request.cookies.get(GUEST_COOKIE))
    if guest is None:
        raise json_error(401, "Please open the link your therapist sent you.")
    if guest.session.id != request.match_info["sid"]:
        raise json_error(403, "Your invitation is for a different session.")
    return guest


async def redeem(request: web.Request) -> web.Response:
    f = await read_fields(request, token=str)
    services = request.app[SERVICES]
    guest_token = await invites.redeem(
        services,
        request.match_info["sid"],
        f["token"],
        request.cookies.get(GUEST_COOKIE),
        client_address(request),
    )
    response = web.json_response({"ok": True})
    if guest_token is not None:
        response.set_cookie(
            GUEST_COOKIE, guest_token, path="/", secure=True, httponly=True, samesite="Strict"
        )
    return response


async def status(request: web.Request) -> web.Response:
    guest = await guest_for(request)
    services = request.app[SERVICES]
    async with services.db.transaction() as tx:
        therapist = await therapists.by_id(tx, guest.session.therapist_id)
    return web.json_response(
        {
            "session": guest.session.id,
            "title": personal.title_of(services.personal, guest.session),
            "therapist": therapist.display_name if therapist else "",
            "seat": guest.seat.seat,
            "state": guest.seat.state,
            "name": personal.name_of(services.personal, guest.seat),
        }
    )


async def privacy_notice(request: web.Request) -> web.Response:
    guest = await guest_for(request)
    services = request.app[SERVICES]
    words = await notice.current(services.settings)
    return web.json_response(
        {
            "practice": services.settings.practice_name,
            "version": words.version,
            "sha256": words.sha256,
            "text": words.text,
            "acknowledged": await notice.acknowledged(services, guest),
        }
    )


async def acknowledge(request: web.Request) -> web.Response:
    guest = await guest_for(request)
    f = await read_fields(request, version=str, sha256=str)
    await notice.acknowledge(request.app[SERVICES], guest, f["version"], f["sha256"])
    return web.json_response({"ok": True})


async def wait(request: web.Request) -> web.Response:
    guest = await guest_for(request)
    f = await read_fields(request, name=str)
    services = request.app[SERVICES]
    # The page shows the notice first; the server is what makes it a condition of a seat.
    if not await notice.acknowledged(services, guest):
        raise Refusal(409, notice.UNREAD)
    state = await waiting_room.wait(services, guest, f["name"])
    return web.json_response({"state": state})


async def leave(request: web.Request) -> web.Response:
    """The client is done: this device's seat and cookie stop working, and the browser drops the
    cookie. Answered the same with no seat, so a page can always clean up after a session ended."""
    services = request.app[SERVICES]
    guest = await invites.guest_of(services, request.cookies.get(GUEST_COOKIE))
    response = web.json_response({"ok": True})
    if guest is not None and guest.session.id != request.match_info["sid"]:
        return response  # the cookie now holds another session's seat, not this page's to give up
    if guest is not None:
        await _give_up(services, guest)
    response.del_cookie(GUEST_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


async def _give_up(services: Services, guest: Guest) -> None:
    sid, number = guest.session.id, guest.seat.seat
    async with services.db.transaction() as tx:
        seat = await therapy_sessions.seat(tx, sid, number)
        if seat is None or seat.guest_hash != guest.seat.guest_hash:
            return  # reissued or revoked meanwhile
        # The seat keeps its state for the therapist's list; only its device is gone.
        await therapy_sessions.revoke_guest(tx, sid, number, seat.state)
        await services.audit.append(
            tx,
            actor=f"guest:{sid}:{number}",
            action="seat.leave",
            obj=f"session:{sid}",
            details={"seat": number},
        )
    await services.sfu.leave(sid, guest_peer_id(number))
    await services.registry.tell_guest(sid, number, {"type": "state", "state": "left"}, close=True)
    await services.registry.tell_therapist(guest.session.therapist_id, {"type": "sessions_changed"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/join/{sid}/redeem", redeem)
    app.router.add_get("/api/join/{sid}", status)
    app.router.add_get("/api/join/{sid}/notice", privacy_notice)
    app.router.add_post("/api/join/{sid}/notice", acknowledge)
    app.router.add_post("/api/join/{sid}/wait", wait)
    app.router.add_post("/api/join/{sid}/leave", leave)
