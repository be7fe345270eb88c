"""Who is connected right now, and pushing them news; and who keeps knocking with bad links.
Memory only: a restart drops every socket, and pages reconnect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, web

from vsession.signaling.ratelimit import LinkGuesses
from vsession.store.signins import SignIn

# Close codes the pages know (4000-4999 are the application's): neither is worth reconnecting for.
SIGNED_OUT = 4401  # the sign-in behind a therapist's socket ended; the page shows the reason
REPLACED = 4409  # a newer page took this one's place

# A therapist has a dashboard and a call page or two open; more is a leak or abuse. The newest
# page is the one in front of the person, so the oldest gives way.
THERAPIST_SOCKETS = 8
TOO_MANY_PAGES = (
    f"More than {THERAPIST_SOCKETS} pages of this account were open, so this one, the oldest, stopped."
)
# A client's link is bound to one seat, and the seat to one page: the newest.
SEAT_TAKEN = "This link was opened in another tab or window, so this page stopped."


@dataclass(eq=False)
class TherapistSocket:
    ws: web.WebSocketResponse
    therapist_id: int
    signin: str  # token hash of the sign-in the socket was opened with
    seen: SignIn  # that sign-in's row as last read
    ending: str | None = None  # set once the sign-in is ending: the close reason, and no more messages


class Registry:
    def __init__(self) -> None:
        # Per therapist, its sockets in the order they came (dicts keep it): the oldest first.
        self._therapists: dict[int, dict[web.WebSocketResponse, TherapistSocket]] = {}
        self._guests: dict[tuple[str, int], web.WebSocketResponse] = {}
        self.sweeper: asyncio.Task[None] | None = None  # vsession/signaling/signin_watch.py
        self.link_guesses = LinkGuesses()  # vsession/rooms/invites.py

    async def add_therapist(self, socket: TherapistSocket) -> None:
        mine = self._therapists.setdefault(socket.therapist_id, {})
        mine[socket.ws] = socket
        oldest = list(mine.values())[: max(0, len(mine) - THERAPIST_SOCKETS)]
        for old in oldest:
            del mine[old.ws]
        await _close([old.ws for old in oldest], REPLACED, TOO_MANY_PAGES)

    def drop_therapist(self, therapist_id: int, ws: web.WebSocketResponse) -> None:
        mine = self._therapists.get(therapist_id)
        if mine is not None:
            mine.pop(ws, None)
            if not mine:
                del self._therapists[therapist_id]

    def therapist_sockets(self) -> list[TherapistSocket]:
        return [s for mine in self._therapists.values() for s in mine.values()]

    def signin_sockets(self, signin: str) -> list[TherapistSocket]:
        return [s for s in self.therapist_sockets() if s.signin == signin]

    def hold(self, sockets: Iterable[TherapistSocket], reason: str) -> None:
        """Mark sockets whose sign-in is ending, at once: no message of theirs acts from now on
        (vsession/signaling/ws.py checks `ending`), and no news reaches them."""
        for socket in sockets:
            socket.ending = socket.ending or reason
            self.drop_therapist(socket.therapist_id, socket.ws)

    async def end(self, sockets: Iterable[TherapistSocket], reason: str) -> None:
        """Close sockets whose sign-in ended, each with the reason its page shows."""
        sockets = list(sockets)
        self.hold(sockets, reason)
        await asyncio.gather(
            *(_close([s.ws], SIGNED_OUT, s.ending or reason) for s in sockets), return_exceptions=True
        )

    async def add_guest(self, session_id: str, seat: int, ws: web.WebSocketResponse) -> None:
        """One device per seat: a newer connection replaces the older one."""
        old = self._guests.get((session_id, seat))
        self._guests[(session_id, seat)] = ws
        if old is not None and old is not ws:
            await _close([old], REPLACED, SEAT_TAKEN)

    def drop_guest(self, session_id: str, seat: int, ws: web.WebSocketResponse) -> None:
        if self._guests.get((session_id, seat)) is ws:
            del self._guests[(session_id, seat)]

    def guest_online(self, session_id: str, seat: int) -> bool:
        return (session_id, seat) in self._guests

    async def tell_therapist(self, therapist_id: int, message: dict[str, Any]) -> None:
        for socket in list(self._therapists.get(therapist_id, {}).values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.ws.send_json(message)

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
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        sockets = [s.ws for s in self.therapist_sockets()] + list(self._guests.values())
        self._therapists.clear()
        self._guests.clear()
        await _close(sockets, WSCloseCode.GOING_AWAY, "server shutdown")


async def _close(sockets: list[web.WebSocketResponse], code: int, reason: str) -> None:
    """Close together: each waits for its page's reply, and one slow page must not hold the rest."""
    await asyncio.gather(
        *(ws.close(code=code, message=reason.encode()) for ws in sockets), return_exceptions=True
    )
