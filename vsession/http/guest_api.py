"""Client endpoints: redeem a link once, then act only as the seat the guest cookie is bound to."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import SERVICES
from vsession.http.json_body import json_error, read_fields
from vsession.rooms import invites, personal, waiting_room
from vsession.rooms.invites import GUEST_COOKIE, Guest
from vsession.store import therapists


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
        request.remote or "unknown",
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


async def wait(request: web.Request) -> web.Response:
    guest = await guest_for(request)
    f = await read_fields(request, name=str)
    state = await waiting_room.wait(request.app[SERVICES], guest, f["name"])
    return web.json_response({"state": state})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/join/{sid}/redeem", redeem)
    app.router.add_get("/api/join/{sid}", status)
    app.router.add_post("/api/join/{sid}/wait", wait)
