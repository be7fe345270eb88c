"""Scheduling, listing and ending therapy sessions. A therapist only ever sees their own."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from vsession.errors import Refusal
from vsession.rooms import invites, personal
from vsession.rooms.access import owned
from vsession.services import Services
from vsession.store import therapy_sessions
from vsession.store.therapy_sessions import TherapySession

MAX_SEATS = 7  # individual, couple or family: up to 8 people with the therapist


@dataclass(frozen=True)
class NewSession:
    title: str
    starts_at: float
    duration_minutes: int
    seats: int

    def problem(self, now: float) -> str | None:
        if not now - 12 * 3600 <= self.starts_at <= now + 366 * 86400:
            return "Please choose a start time from today to a year ahead."
        if len(self.title) > 120:
            return "The title is too long (120 characters at most)."
        if not 1 <= self.seats <= MAX_SEATS:
            return f"A session has 1 to {MAX_SEATS} client seats."
        if not 5 <= self.duration_minutes <= 480:
            return "A session lasts 5 to 480 minutes."
        return None


async def create(services: Services, therapist_id: int, new: NewSession) -> str:
    problem = new.problem(services.clock.now())
    if problem:
        raise Refusal(400, problem)
    session_id = secrets.token_urlsafe(12)
    now = services.clock.now()
    title = personal.seal_title(services.personal, session_id, new.title.strip())
    async with services.db.transaction() as tx:
        await therapy_sessions.insert_session(
            tx, session_id, therapist_id, title, new.starts_at, new.duration_minutes, now
        )
        await services.audit.append(
            tx,
            actor=f"therapist:{therapist_id}",
            action="session.create",
            obj=f"session:{session_id}",
            details={"seats": new.seats},
        )
        for seat in range(1, new.seats + 1):
            await invites.issue(services, tx, therapist_id, session_id, seat, reissue=False)
    return session_id


async def overview(services: Services, therapist_id: int) -> list[dict[str, Any]]:
    """What the dashboard shows: open sessions, each seat's state, presence and copyable link."""
    async with services.db.transaction() as tx:
        found = await therapy_sessions.open_for_therapist(tx, therapist_id)
        result = []
        for session in found:
            seats = await therapy_sessions.seats_of(tx, session.id)
            result.append(
                {
                    "id": session.id,
                    "title": personal.title_of(services.personal, session),
                    "starts_at": session.starts_at,
                    "duration_minutes": session.duration_minutes,
                    "seats": [
                        {
                            "seat": seat.seat,
                            "state": seat.state,
                            "name": personal.name_of(services.personal, seat),
                            "online": services.registry.guest_online(session.id, seat.seat),
                            "link": invites.unsealed_link(services, seat),
                            "reuse_attempts": seat.reuse_attempts,
                        }
                        for seat in seats
                    ],
                }
            )
    return result


async def end(services: Services, session: TherapySession, actor: str, reason: str) -> None:
    # The call ends first: its consent machine closes the recorder's gate and ends any recording
    # request, before anything waits on the database or on the clients' sockets.
    await services.sfu.end(session.id)
    async with services.db.transaction() as tx:
        seats = await therapy_sessions.seats_of(tx, session.id)
        await therapy_sessions.mark_ended(tx, session.id, services.clock.now())
        await services.audit.append(
            tx, actor=actor, action="session.end", obj=f"session:{session.id}", details={"reason": reason}
        )
    for seat in seats:
        await services.registry.tell_guest(
            session.id, seat.seat, {"type": "state", "state": "ended"}, close=True
        )
    await services.registry.tell_therapist(session.therapist_id, {"type": "sessions_changed"})


async def end_owned(services: Services, therapist_id: int, session_id: str) -> None:
    async with services.db.transaction() as tx:
        session = await owned(tx, therapist_id, session_id)
    if session.state == "ended":
        raise Refusal(409, "This session has already ended.")
    await end(services, session, f"therapist:{therapist_id}", "ended by therapist")


async def close_overdue(services: Services) -> int:
    """Sessions whose scheduled end is long past close on their own, links and all."""
    cutoff = services.clock.now() - services.settings.link_grace_minutes * 60
    async with services.db.transaction() as tx:
        stale = await therapy_sessions.overdue(tx, cutoff)
    for session in stale:
        await end(services, session, "system", "scheduled end passed")
    return len(stale)
