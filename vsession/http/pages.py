"""Static HTML pages from web/. Pages carry no data; their modules fetch it from /api/."""

from __future__ import annotations

from aiohttp import web

from vsession.webdir import web_dir


def page(name: str) -> web.FileResponse:
    return web.FileResponse(web_dir() / name)


async def index(request: web.Request) -> web.StreamResponse:
    return page("index.html")
