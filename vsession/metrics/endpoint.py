"""The /metrics site: a small aiohttp app of its own on `metrics_bind`, so the public app never
has the route, with a registry of its own (not prometheus_client's global one)."""

from __future__ import annotations

import socket

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from vsession.metrics.collector import ServerCollector


def metrics_app(app: web.Application) -> web.Application:
    """The metrics of the server running `app`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(app))
    ProcessCollector(registry=registry)  # CPU seconds, memory, open files
    metrics = web.Application()
    metrics.router.add_get("/metrics", make_aiohttp_handler(registry))
    return metrics


def bind(address: tuple[str, int]) -> socket.socket:
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)


async def start(app: web.Application, sock: socket.socket) -> web.AppRunner:
    # No access log: a scrape every few seconds would drown the one that matters.
    runner = web.AppRunner(metrics_app(app), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
