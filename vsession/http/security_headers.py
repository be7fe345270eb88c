"""Headers on every response, including static files and error pages."""

from __future__ import annotations

from aiohttp import web, web_response

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
BASE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"
    ),
}
HSTS = "max-age=31536000"
# No version: aiohttp's default names itself and Python with their versions, a map to known bugs.
SERVER = "vsession"


def install(app: web.Application, tls: bool) -> None:
    """Use on_response_prepare, which also fires for FileResponse and aiohttp's own errors."""
    # aiohttp's HTTP parser answers a malformed request before any app sees it, so no signal runs;
    # those replies take their Server header from this module default (tests/http/test_server_header.py).
    web_response.SERVER_SOFTWARE = SERVER
    headers = dict(BASE_HEADERS)
    if tls:
        headers["Strict-Transport-Security"] = HSTS

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        response.headers["Server"] = SERVER
        if "Cache-Control" not in response.headers and not request.path.startswith("/static/"):
            # Pages may show private data; keep them out of shared and disk caches.
            response.headers["Cache-Control"] = "no-store"

    app.on_response_prepare.append(add_headers)
