"""Who is connected right now, and pushing them news. Memory only: a restart drops every socket,
and pages reconnect."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from aiohttp import WSCloseCode, web


class Registry:
    def __init__(self) -> None:
        self._therapists: defaultdict[int, set[web.WebSocketResponse]] = defaultdict(set)
        self._guests: dict[tuple[str, int], web.WebSocketResponse] = {}

    def add_therapist(self, therapist_id: int, ws: web.WebSocketResponse) -> None:
        self._therapists[therapist_id].add(ws)

    def drop_therapist(self, therapist_id: int, ws: web.WebSocketResponse) -> None:
        self._therapists[therapist_id].discard(ws)

    async def add_guest(self, session_id: str, seat: int, ws: web.WebSocketResponse) -> None:
        """One device per seat: a newer connection replaces the older one."""
        old = self._guests.get((session_id, seat))
        self._guests[(session_id, seat)] = ws
        if old is not None and old is not ws:
            await old.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")

    def drop_guest(self, session_id: str, seat: int, ws: web.WebSocketResponse) -> None:
        if self._guests.get((session_id, seat)) is ws:
            del self._guests[(session_id, seat)]

    def guest_online(self, session_id: str, seat: int) -> bool:
        return (session_id, seat) in self._guests

    async def tell_therapist(self, therapist_id: int, message: dict[str, Any]) -> None:
        for ws in list(self._therapists.get(therapist_id, ())):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)

    async def tell_guest(
        self, session_id: str, seat: int, message: dict[str, Any], close: bool = False
    ) -> None:
        ws = self._guests.get((session_id, seat))
        if ws is None:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json(message)
        if close:
            self.drop_guest(session_id, seat, ws)
            await ws.close(code=WSCloseCode.GOING_AWAY, message=message.get("state", "").encode())

    async def close_all(self) -> None:
        sockets = [ws for group in self._therapists.values() for ws in group] + list(self._guests.values())
        for ws in sockets:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self._therapists.clear()
        self._guests.clear()
