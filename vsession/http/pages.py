"""Static HTML pages from web/. Pages carry no data; their modules fetch it from /api/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from vsession.http.guards import optional_session
from vsession.webdir import web_dir

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(name: str) -> web.FileResponse:
    return web.FileResponse(web_dir() / name)


def public(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return page(name)

    return handler


def signed_in(name: str, stage: str = "full") -> Handler:
    """A page for a therapist session of `stage`; anyone else goes to the sign-in page."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if await optional_session(request, stage) is None:
            raise web.HTTPFound("/login")
        return page(name)

    return handler


async def index(request: web.Request) -> web.StreamResponse:
    if await optional_session(request) is not None:
        raise web.HTTPFound("/dashboard")
    return page("index.html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/setup", public("setup.html"))
    app.router.add_get("/login", public("login.html"))
    app.router.add_get("/j/{sid}", public("join.html"))
    # Where the client's page goes once its session is over for it: a reload or the forward button
    # shows that calm ending again, without asking the server anything (the guest cookie is gone).
    app.router.add_get("/j/{sid}/{end:left|ended|denied|removed}", public("join.html"))
    app.router.add_get("/enrol", signed_in("enrol.html", "enrol"))
    app.router.add_get("/dashboard", signed_in("dashboard.html"))
    app.router.add_get("/call/{sid}", signed_in("call.html"))
    app.router.add_get("/recordings", signed_in("recordings.html"))
