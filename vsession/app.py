"""create_app(settings): wiring only. Each concern lives in its own package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from vsession.appkeys import AUDIT, AUDIT_KEY, CLOCK, DB, SETTINGS
from vsession.audit import AuditLog
from vsession.clock import Clock, SystemClock
from vsession.config import Settings
from vsession.http import errors, security_headers
from vsession.http.health import healthz
from vsession.http.pages import index
from vsession.keyfile import load_or_create_key
from vsession.store import Database
from vsession.webdir import web_dir

MAX_BODY = 64 * 1024


def audit_key_path(settings: Settings) -> Path:
    return settings.key_dir / "audit-hmac.key"


async def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return await Database.open(settings.db_path)


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[errors.error_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    security_headers.install(app, tls=settings.uses_tls)

    async def storage(app: web.Application) -> AsyncIterator[None]:
        app[DB] = await open_database(settings)
        app[AUDIT_KEY] = load_or_create_key(audit_key_path(settings))
        app[AUDIT] = AuditLog(app[AUDIT_KEY], app[CLOCK])
        yield
        await app[DB].close()

    app.cleanup_ctx.append(storage)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_static("/static/", web_dir(), follow_symlinks=False)
    return app
