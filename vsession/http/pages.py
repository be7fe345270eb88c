"""Static HTML pages from web/. Pages carry no data; their modules fetch it from /api/."""

from __future__ import annotations

from aiohttp import web

from vsession.http.guards import optional_session
from vsession.webdir import web_dir


def page(name: str) -> web.FileResponse:
    return web.FileResponse(web_dir() / name)


async def index(request: web.Request) -> web.StreamResponse:
    if await optional_session(request) is not None:
        raise web.HTTPFound("/dashboard")
    return page("index.html")


async def setup(request: web.Request) -> web.StreamResponse:
    return page("setup.html")


async def login(request: web.Request) -> web.StreamResponse:
    return page("login.html")


async def enrol(request: web.Request) -> web.StreamResponse:
    if await optional_session(request, "enrol") is None:
        raise web.HTTPFound("/login")
    return page("enrol.html")


async def dashboard(request: web.Request) -> web.StreamResponse:
    if await optional_session(request) is None:
        raise web.HTTPFound("/login")
    return page("dashboard.html")


async def call(request: web.Request) -> web.StreamResponse:
    if await optional_session(request) is None:
        raise web.HTTPFound("/login")
    return page("call.html")


async def recordings(request: web.Request) -> web.StreamResponse:
    if await optional_session(request) is None:
        raise web.HTTPFound("/login")
    return page("recordings.html")


async def join(request: web.Request) -> web.StreamResponse:
    return page("join.html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/setup", setup)
    app.router.add_get("/login", login)
    app.router.add_get("/enrol", enrol)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/j/{sid}", join)
    app.router.add_get("/call/{sid}", call)
    app.router.add_get("/recordings", recordings)
