"""Liveness for Docker and scripts: answers only when the database does."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import DB


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[DB].fetchone("SELECT 1")
    except Exception:
        return web.json_response({"status": "error", "detail": "database unavailable"}, status=503)
    return web.json_response({"status": "ok"})
