"""create_app(settings): wiring only. Each concern lives in its own package."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from vsession.appkeys import AUDIT, AUTH, DB, SERVICES, SETTINGS
from vsession.clock import Clock
from vsession.config import Settings
from vsession.http import (
    auth_api,
    csrf,
    errors,
    guest_api,
    pages,
    recordings_api,
    rooms_api,
    security_headers,
    static,
)
from vsession.http.health import healthz
from vsession.looplag import monitor_loop
from vsession.recording import library
from vsession.rooms import personal, sessions
from vsession.services import Services, open_services
from vsession.sfu.ice import offer_loopback
from vsession.sfu.ports import use_media_ports
from vsession.signaling.ws import websocket

MAX_BODY = 64 * 1024
HOUSEKEEPING_SECONDS = 60
log = logging.getLogger("vsession.app")


async def housekeeping(services: Services) -> None:
    while True:
        try:
            await sessions.close_overdue(services)
            await library.apply_retention(services)
            await personal.apply_retention(services)
        except Exception:
            log.exception("housekeeping failed")
        await asyncio.sleep(HOUSEKEEPING_SECONDS)


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[errors.error_middleware, csrf.origin_check], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    errors.quiet_malformed_requests()
    offer_loopback(settings.ice_loopback)
    use_media_ports(settings.media_port_range)
    security_headers.install(app, tls=settings.uses_tls)

    async def services(app: web.Application) -> AsyncIterator[None]:
        opened = await open_services(settings, clock)
        app[SERVICES], app[DB], app[AUDIT], app[AUTH] = opened, opened.db, opened.audit, opened.auth
        task = asyncio.create_task(housekeeping(opened))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await opened.close()

    async def close_sockets(app: web.Application) -> None:
        app[SERVICES].recordings.stopping = True
        # Open WebSockets would otherwise hold shutdown for aiohttp's whole grace period.
        await app[SERVICES].registry.close_all()

    app.cleanup_ctx.append(monitor_loop)  # first in, last out: it watches start-up and shutdown too
    app.cleanup_ctx.append(services)
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/healthz", healthz)
    pages.add_routes(app)
    auth_api.add_routes(app)
    rooms_api.add_routes(app)
    guest_api.add_routes(app)
    recordings_api.add_routes(app)
    app.router.add_get("/ws", websocket)
    static.add_routes(app)
    return app
