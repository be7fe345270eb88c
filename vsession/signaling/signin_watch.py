"""A therapist's socket lives only as long as the sign-in it was opened with.

Two checks, both reading the sign-in's row (one primary-key lookup):
- every message on the socket checks it before acting, so nothing acts after the sign-in ends,
  even when the change came from another process (`vsession user disable` or `reset-2fa`);
- one sweep a second, over every open therapist socket in one query, closes the sockets of
  sign-ins that ended in silence: by expiry, or by a change made elsewhere.

The DB row is the one truth both processes share, so no signal between them is needed. A logout
needs no sweep: it closes its own sockets at once (vsession/http/auth_api.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict

from vsession.auth import signins
from vsession.rooms.registry import TherapistSocket
from vsession.services import Services
from vsession.store import signins as signin_rows

log = logging.getLogger("vsession.signaling")
SWEEP_SECONDS = 1.0


async def check(services: Services, socket: TherapistSocket, touch: bool = False) -> str | None:
    """None while the socket's sign-in is live (then `touch` counts it as activity), else why it
    ended."""
    if socket.ending is not None:
        return socket.ending
    ctx = services.auth
    async with ctx.db.transaction() as tx:
        row = await signin_rows.get(tx, socket.signin)
        reason = await signins.end_reason(ctx, tx, row, socket.seen)
        if row is not None and reason is None:
            if touch:
                now = ctx.clock.now()
                await signin_rows.touch(tx, socket.signin, now)
                row = dataclasses.replace(row, last_seen=now)
            socket.seen = row
    return reason


async def sweep(services: Services) -> None:
    """Close the sockets of every sign-in that has ended."""
    sockets = [s for s in services.registry.therapist_sockets() if s.ending is None]
    if not sockets:
        return
    ctx = services.auth
    ended: defaultdict[str, list[TherapistSocket]] = defaultdict(list)
    async with ctx.db.transaction() as tx:
        rows = await signin_rows.get_many(tx, {s.signin for s in sockets})
        for socket in sockets:
            row = rows.get(socket.signin)
            reason = await signins.end_reason(ctx, tx, row, socket.seen)
            if reason is None:
                socket.seen = row or socket.seen
            else:
                ended[reason].append(socket)
    # Hold all before closing any: a close waits for the page, and no message may act meanwhile.
    for reason, group in ended.items():
        services.registry.hold(group, reason)
    await asyncio.gather(*(services.registry.end(group, reason) for reason, group in ended.items()))


def ensure_sweeping(services: Services) -> None:
    """Start the sweep if it is not running; it stops by itself when no therapist is connected."""
    registry = services.registry
    if registry.sweeper is None or registry.sweeper.done():
        registry.sweeper = asyncio.create_task(_sweep_while_connected(services), name="sign-in sweep")


async def _sweep_while_connected(services: Services) -> None:
    while services.registry.therapist_sockets():
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await sweep(services)
        except Exception:
            # The per-message check still stands guard; the next sweep tries again.
            log.exception("sign-in sweep failed")
