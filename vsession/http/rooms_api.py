"""Therapist endpoints for sessions, seats and the waiting room. Every one checks ownership."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import SERVICES
from vsession.errors import Refusal
from vsession.http.guards import session_of
from vsession.http.json_body import read_fields
from vsession.rooms import invites, sessions, waiting_room


async def list_sessions(request: web.Request) -> web.Response:
    session = await session_of(request)
    return web.json_response(
        {"sessions": await sessions.overview(request.app[SERVICES], session.therapist_id)}
    )


async def create_session(request: web.Request) -> web.Response:
    session = await session_of(request)
    f = await read_fields(request, title=str, starts_at=int, duration_minutes=int, seats=int)
    new = sessions.NewSession(f["title"], float(f["starts_at"]), f["duration_minutes"], f["seats"])
    session_id = await sessions.create(request.app[SERVICES], session.therapist_id, new)
    return web.json_response({"id": session_id}, status=201)


async def end_session(request: web.Request) -> web.Response:
    session = await session_of(request)
    await sessions.end_owned(request.app[SERVICES], session.therapist_id, request.match_info["sid"])
    return web.json_response({"ok": True})


def _seat_number(request: web.Request) -> int:
    """Only the plain decimal form names a seat: int() would also take "+1", " 1", "1_0", Arabic-Indic
    digits, and numbers too large for SQLite."""
    text = request.match_info["seat"]
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and text[0] != "0"):
        raise Refusal(404, "There is no such seat.")
    return int(text)


async def reissue_link(request: web.Request) -> web.Response:
    session = await session_of(request)
    url = await invites.reissue_owned(
        request.app[SERVICES], session.therapist_id, request.match_info["sid"], _seat_number(request)
    )
    return web.json_response({"link": url})


async def decide(request: web.Request) -> web.Response:
    session = await session_of(request)
    decision = request.match_info["decision"]
    await waiting_room.decide(
        request.app[SERVICES],
        session.therapist_id,
        request.match_info["sid"],
        _seat_number(request),
        decision,
    )
    return web.json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/sessions", list_sessions)
    app.router.add_post("/api/sessions", create_session)
    app.router.add_post("/api/sessions/{sid}/end", end_session)
    app.router.add_post("/api/sessions/{sid}/seats/{seat}/reissue", reissue_link)
    app.router.add_post("/api/sessions/{sid}/seats/{seat}/{decision:admit|deny|remove}", decide)
