"""Reading JSON bodies: malformed or mistyped input gets a clear 400 and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_error(status: int, message: str, **extra: Any) -> web.HTTPException:
    text = json.dumps({"error": message, **extra})
    if status == 413:
        # aiohttp's 413 requires the sizes; they go nowhere but its default text, which we replace.
        return web.HTTPRequestEntityTooLarge(0, 0, text=text, content_type="application/json")
    return _BY_STATUS[status](text=text, content_type="application/json")


_BY_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    410: web.HTTPGone,
    429: web.HTTPTooManyRequests,
}


_KIND_NAMES = {str: "text", int: "a whole number", bool: "true or false", float: "a number"}
# The whole numbers a browser holds exactly (Number.MAX_SAFE_INTEGER); they also fit SQLite and a float.
MAX_INT = 2**53 - 1


async def read_fields(request: web.Request, **fields: type) -> dict[str, Any]:
    """The named fields, each of the given type; strings are capped at 4096 characters."""
    try:
        body = await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        raise json_error(413, "The request is too large.") from None
    except (ValueError, UnicodeDecodeError):
        raise json_error(400, "The request body is not valid JSON.") from None
    except RecursionError:
        # Python's parser recurses once per bracket; no form of ours nests more than twice.
        raise json_error(400, "The request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise json_error(400, "The request body must be a JSON object.")
    values: dict[str, Any] = {}
    for name, kind in fields.items():
        value = body.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise json_error(400, f"Field '{name}' is missing or is not {_KIND_NAMES[kind]}.")
        if isinstance(value, str) and len(value) > 4096:
            raise json_error(400, f"Field '{name}' is too long.")
        if isinstance(value, str) and not _is_unicode(value):
            raise json_error(400, f"Field '{name}' is not valid text.")
        if kind is int and not -MAX_INT <= value <= MAX_INT:
            raise json_error(400, f"Field '{name}' is out of range.")
        values[name] = value
    return values


def _is_unicode(text: str) -> bool:
    """JSON may escape half a surrogate pair ("\\ud800"); Python decodes it into a str that cannot be
    encoded again, for SQLite, a hash or a seal."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
