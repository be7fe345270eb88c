"""Cross-site request forgery defence, first layer: state changes only from our own origin.

The second layer, a per-session token in X-CSRF-Token, is checked where the session is
(vsession.http.guards). SameSite=Strict cookies are the third."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import SETTINGS
from vsession.http.errors import Handler, error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and request.headers.get("Origin") != request.app[SETTINGS].origin:
        return error_response(request, 403, "Cross-site request refused.")
    return await handler(request)
