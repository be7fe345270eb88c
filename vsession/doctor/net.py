"""Name lookups with a deadline that cannot hold up the exit."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from typing import Any


async def resolve(host: str, port: int, kind: socket.SocketKind) -> tuple[int, tuple[Any, ...]]:
    """The first address of `host` as (family, sockaddr). getaddrinfo cannot be cancelled, and
    asyncio's executor would make the exit wait for a stuck lookup: a daemon thread cannot. The caller
    bounds the wait."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, port)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[tuple[int, tuple[Any, ...]]] = loop.create_future()

    def settle(result: tuple[int, tuple[Any, ...]] | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            assert result is not None  # getaddrinfo returns at least one address or raises
            answer.set_result(result)

    def lookup() -> None:
        result: tuple[int, tuple[Any, ...]] | None = None
        error: OSError | None = None
        try:
            infos = socket.getaddrinfo(host, port, type=kind)
            result = (infos[0][0], infos[0][4])
        except OSError as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop has closed: nobody waits for this answer any more

    threading.Thread(target=lookup, name="doctor-resolve", daemon=True).start()
    return await answer
