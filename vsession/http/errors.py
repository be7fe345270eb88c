"""Every failure becomes a short, clear page or JSON body; details go to the log, not the client."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from vsession.errors import Refusal

log = logging.getLogger("vsession.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    if wants_json(request):
        return web.json_response({"error": message}, status=status)
    return web.Response(status=status, text=page(f"{status}", message), content_type="text/html")


def page(title: str, message: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)} · vsession</title><link rel="stylesheet" href="/static/style.css">'
        '<link rel="icon" href="/static/favicon.svg"></head>'
        f'<body><main class="card"><h1>{escape(title)}</h1><p class="message">{escape(message)}</p>'
        '<p><a href="/">Back to the start page</a></p></main></body></html>'
    )


def _json_body(exc: web.HTTPException) -> dict[str, object] | None:
    if exc.content_type != "application/json":
        return None
    try:
        body = json.loads(exc.text or "")
    except ValueError:
        return None
    return body if isinstance(body, dict) and "error" in body else None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.empty_body:
            raise
        body = _json_body(exc)
        if body is not None and wants_json(request):
            # Keep every field a handler chose to send (e.g. "step_up"), not just the sentence.
            response = web.json_response(body, status=exc.status)
        else:
            plain = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
            response = error_response(request, exc.status, str(body["error"]) if body else plain)
        for name in ("Retry-After", "Allow"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Refusal as exc:
        # A domain module said no: the status and the sentence are its own.
        response = error_response(request, exc.status, exc.message)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(request, 500, "Something went wrong on the server. Please try again.")


class MalformedRequests(logging.Filter):
    """aiohttp logs every request its HTTP parser refuses (a bad method, an over-long line, a broken
    header) at ERROR with a traceback. That is the client's mistake, not a fault of the server, and
    anyone can send it: one line at INFO, naming the kind of mistake but not the request's bytes,
    which may hold anything, typed secrets included."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "refused a malformed request from %s: %s"
            record.args = (remote, type(error).__name__)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")  # aiohttp's web_protocol logs there
    if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
        server_log.addFilter(MalformedRequests())
