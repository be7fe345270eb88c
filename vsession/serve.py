"""Running the server until SIGINT/SIGTERM, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from vsession.app import create_app
from vsession.config import Settings
from vsession.logs import AccessLogger
from vsession.metrics import endpoint as metrics
from vsession.tls import ssl_context

OnReady = Callable[[web.Application, Settings], Awaitable[None]]


class StartupFailed(Exception):
    """The server could not start (a bind, the key folder, the database): one line for the admin."""


def _listen(
    bind: Callable[[tuple[str, int]], socket.socket], address: tuple[str, int], name: str
) -> socket.socket:
    try:
        return bind(address)
    except OSError as exc:
        host, port = address
        reason = (
            os.strerror(exc.errno) if exc.errno else str(exc)
        )  # without create_server's repeat of the address
        raise StartupFailed(f"cannot listen on {host}:{port} ({name}): {reason}") from None


async def serve(settings: Settings, on_ready: OnReady | None = None) -> None:
    # Handle signals from the start: a script that reads the URL line and stops the server at
    # once must get a graceful shutdown, not the default "killed by SIGTERM" mid-start-up.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The metrics address before the public one: a clash between the two fails here, before
    # anything is served, rather than leaving /metrics where the public could reach it.
    address = settings.metrics_address
    metrics_sock = _listen(metrics.bind, address, "metrics_bind") if address is not None else None
    # Bind first, so `--port 0` resolves to a real port before the app learns its origin.
    sock = _listen(socket.create_server, (settings.host, settings.port), "host/port")
    settings = dataclasses.replace(settings, port=sock.getsockname()[1])
    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False)
    try:
        await runner.setup()
    except (OSError, RuntimeError) as exc:
        # Opening the database and the key files (vsession/services.py says what is wrong).
        sock.close()
        if metrics_sock is not None:
            metrics_sock.close()
        raise StartupFailed(f"cannot start: {exc}") from None
    site = web.SockSite(runner, sock, ssl_context=ssl_context(settings))
    await site.start()
    metrics_runner = await metrics.start(app, metrics_sock) if metrics_sock is not None else None
    # Everything made at start-up (modules, the app, codecs' tables) lives as long as the process:
    # frozen, the collector never scans it again, so a full collection during a call pauses the
    # loop for a few ms instead of 30-60 ms.
    gc.collect()
    gc.freeze()
    print(settings.origin, flush=True)
    if on_ready is not None:
        await on_ready(app, settings)
    try:
        await stop.wait()
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
