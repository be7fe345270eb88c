"""JSON endpoints for setup, enrolment, sign-in and the signed-in therapist."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import AUTH, SERVICES
from vsession.auth import enrolment, login, signins
from vsession.http.client_address import client_address
from vsession.http.guards import session_of
from vsession.http.json_body import json_error, read_fields
from vsession.store import therapists
from vsession.store.signins import SignIn


def _signed_in(body: dict[str, object], token: str) -> web.Response:
    response = web.json_response(body)
    signins.set_cookie(response, token)
    return response


async def setup(request: web.Request) -> web.Response:
    f = await read_fields(request, token=str, name=str, username=str, password=str)
    token = await enrolment.complete_setup(
        request.app[AUTH], f["token"], f["name"], f["username"], f["password"], client_address(request)
    )
    return _signed_in({"next": "/enrol"}, token)


async def enrol_details(request: web.Request) -> web.Response:
    session = await session_of(request, "enrol")
    ctx = request.app[AUTH]
    account = await enrolment.enrolling_account(ctx, session)
    details = await enrolment.enrolment_details(ctx, account)
    return web.json_response(
        {"username": account.username, "secret": details.secret, "qr": details.qr, "csrf": session.csrf_token}
    )


async def enrol(request: web.Request) -> web.Response:
    session = await session_of(request, "enrol")
    f = await read_fields(request, code=str)
    token, codes = await enrolment.complete_enrolment(request.app[AUTH], session, f["code"])
    return _signed_in({"recovery_codes": codes, "next": "/dashboard"}, token)


async def password_step(request: web.Request) -> web.Response:
    f = await read_fields(request, username=str, password=str)
    step = await login.password_step(request.app[AUTH], f["username"], f["password"], client_address(request))
    return _signed_in({"next": step.next}, step.token)


async def code_step(request: web.Request) -> web.Response:
    f = await read_fields(request, code=str, kind=str)
    if f["kind"] not in ("totp", "recovery"):
        raise json_error(400, "Field 'kind' must be 'totp' or 'recovery'.")
    token = await login.code_step(
        request.app[AUTH],
        request.cookies.get(signins.COOKIE),
        f["code"],
        client_address(request),
        use_recovery=f["kind"] == "recovery",
    )
    return _signed_in({"next": "/dashboard"}, token)


async def logout(request: web.Request) -> web.Response:
    session = await session_of(request)
    # This sign-in's open pages stop acting now, before its row goes (so no sweep can take the
    # logout for another cause), and close with the reason even if the logout fails.
    registry = request.app[SERVICES].registry
    sockets = registry.signin_sockets(session.token_hash)
    registry.hold(sockets, signins.LOGGED_OUT)
    try:
        await login.logout(request.app[AUTH], session)
    finally:
        await registry.end(sockets, signins.LOGGED_OUT)
    response = web.json_response({"next": "/login"})
    signins.clear_cookie(response)
    return response


async def me(request: web.Request) -> web.Response:
    session = await session_of(request)
    ctx = request.app[AUTH]
    async with ctx.db.transaction() as tx:
        account = await therapists.by_id(tx, session.therapist_id)
        codes_left = await therapists.recovery_codes_left(tx, session.therapist_id)
    assert account is not None
    return web.json_response(
        {
            "id": account.id,
            "username": account.username,
            "name": account.display_name,
            "is_admin": account.is_admin,
            "csrf": session.csrf_token,
            "recovery_codes_left": codes_left,
            "idle_timeout_minutes": ctx.settings.idle_timeout_minutes,
        }
    )


async def heartbeat(request: web.Request) -> web.Response:
    """A live call pings this so a long session is not taken for an idle one."""
    await session_of(request)
    return web.json_response({"ok": True})


async def step_up(request: web.Request) -> web.Response:
    session = await session_of(request)
    f = await read_fields(request, code=str)
    await login.step_up(request.app[AUTH], session, f["code"], client_address(request))
    return web.json_response({"ok": True})


def require_step_up(request: web.Request, session: SignIn) -> None:
    """Sensitive actions need a TOTP code from the last few minutes; the page asks for one on
    a 403 carrying "step_up"."""
    if login.needs_step_up(request.app[AUTH], session):
        raise json_error(403, "Please confirm with a fresh code from your authenticator.", step_up=True)


async def change_password(request: web.Request) -> web.Response:
    session = await session_of(request)
    require_step_up(request, session)
    f = await read_fields(request, current=str, new=str)
    token = await enrolment.change_password(request.app[AUTH], session, f["current"], f["new"])
    # Every earlier sign-in of the account has ended: its pages close now, not at the next sweep.
    registry = request.app[SERVICES].registry
    mine = [s for s in registry.therapist_sockets() if s.therapist_id == session.therapist_id]
    await registry.end(mine, signins.PASSWORD_CHANGED)
    return _signed_in({"ok": True}, token)


async def create_setup_link(request: web.Request) -> web.Response:
    session = await session_of(request)
    f = await read_fields(request, admin=bool)
    ctx = request.app[AUTH]
    async with ctx.db.transaction() as tx:
        account = await therapists.by_id(tx, session.therapist_id)
    if account is None or not account.is_admin:
        raise json_error(403, "Only a practice admin can invite colleagues.")
    url = await enrolment.create_link(ctx, account.id, f["admin"])
    return web.json_response({"url": url, "expires_minutes": ctx.settings.setup_link_minutes})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/setup", setup)
    app.router.add_get("/api/enrol", enrol_details)
    app.router.add_post("/api/enrol", enrol)
    app.router.add_post("/api/login", password_step)
    app.router.add_post("/api/login/code", code_step)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/heartbeat", heartbeat)
    app.router.add_post("/api/step-up", step_up)
    app.router.add_post("/api/password", change_password)
    app.router.add_post("/api/setup-links", create_setup_link)
