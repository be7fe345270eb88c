"""create_app(settings): wiring only. Each concern lives in its own package."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from vsession.appkeys import AUDIT, AUTH, DB, SERVICES, SETTINGS
from vsession.clock import Clock
from vsession.config import Settings
from vsession.http import auth_api, csrf, errors, pages, security_headers
from vsession.http.health import healthz
from vsession.services import open_services
from vsession.webdir import web_dir

MAX_BODY = 64 * 1024


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[errors.error_middleware, csrf.origin_check], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    security_headers.install(app, tls=settings.uses_tls)

    async def services(app: web.Application) -> AsyncIterator[None]:
        opened = await open_services(settings, clock)
        app[SERVICES], app[DB], app[AUDIT], app[AUTH] = opened, opened.db, opened.audit, opened.auth
        yield
        await opened.close()

    app.cleanup_ctx.append(services)
    app.router.add_get("/healthz", healthz)
    pages.add_routes(app)
    auth_api.add_routes(app)
    app.router.add_static("/static/", web_dir(), follow_symlinks=False)
    return app
