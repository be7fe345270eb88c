"""The waiting room: a client announces a name and waits; the therapist admits, denies or removes
each person separately. Denied or removed devices lose their seat until a link is reissued."""

from __future__ import annotations

from vsession.errors import Refusal
from vsession.rooms import personal
from vsession.rooms.access import owned
from vsession.rooms.invites import Guest
from vsession.services import Services
from vsession.sfu.room import guest_peer_id
from vsession.store import therapy_sessions

DECISIONS = {"admit": "admitted", "deny": "denied", "remove": "removed"}


async def wait(services: Services, guest: Guest, name: str) -> str:
    name = " ".join(name.split())[:60]
    seat = guest.seat
    if seat.state in ("denied", "removed"):
        raise Refusal(403, "The therapist has closed this seat. Please ask for a new link.")
    state = "admitted" if seat.state == "admitted" else "waiting"
    async with services.db.transaction() as tx:
        sealed = personal.seal_name(services.personal, seat.session_id, seat.seat, name)
        await therapy_sessions.set_state(tx, seat.session_id, seat.seat, state, sealed)
        if state == "waiting":
            await services.audit.append(
                tx,
                actor=f"guest:{seat.session_id}:{seat.seat}",
                action="waiting.enter",
                obj=f"session:{seat.session_id}",
                details={"seat": seat.seat},
            )
    await services.registry.tell_therapist(guest.session.therapist_id, {"type": "sessions_changed"})
    return state


async def decide(services: Services, therapist_id: int, session_id: str, seat: int, decision: str) -> None:
    state = DECISIONS[decision]
    async with services.db.transaction() as tx:
        session = await owned(tx, therapist_id, session_id)
        found = await therapy_sessions.seat(tx, session_id, seat)
        if session.state == "ended":
            raise Refusal(409, "This session has ended.")
        if found is None:
            raise Refusal(404, "There is no such seat.")
        if decision == "admit" and found.state != "waiting":
            raise Refusal(409, "Only someone in the waiting room can be admitted.")
        if decision == "deny" and found.state != "waiting":
            raise Refusal(409, "Only someone in the waiting room can be denied.")
        if decision == "remove" and found.state != "admitted":
            raise Refusal(409, "Only someone in the session can be removed.")
        if decision == "admit":
            await therapy_sessions.set_state(tx, session_id, seat, state)
        else:
            await therapy_sessions.revoke_guest(tx, session_id, seat, state)
        await services.audit.append(
            tx,
            actor=f"therapist:{therapist_id}",
            action=f"waiting.{decision}",
            obj=f"session:{session_id}",
            details={"seat": seat},
        )
    if decision != "admit":
        await services.sfu.leave(session_id, guest_peer_id(seat))
    await services.registry.tell_guest(
        session_id, seat, {"type": "state", "state": state}, close=decision != "admit"
    )
    await services.registry.tell_therapist(therapist_id, {"type": "sessions_changed"})
