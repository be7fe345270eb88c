"""One-time client links. The token rides in the URL fragment, so it never reaches a server log,
a proxy or a Referer; the page trades it once for an HttpOnly guest cookie bound to one seat."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vsession.auth.tokens import looks_like_token, new_token, token_hash
from vsession.errors import Refusal
from vsession.rooms.access import owned
from vsession.services import Services
from vsession.sfu.room import guest_peer_id
from vsession.store import therapy_sessions
from vsession.store.db import Tx
from vsession.store.therapy_sessions import Seat, TherapySession

GUEST_COOKIE = "__Host-vsession-guest"

INVALID = (
    "This link is not valid. It may have been replaced by a newer one. "
    "Please ask your therapist for a new link."
)
USED = "This link was already used on another device. Please ask your therapist for a new one."
ENDED = "This session has ended. Thank you."
TOO_MANY = "Too many invalid links were tried for this session from this network. Please wait a few minutes."
TOO_MANY_HERE = "Too many invalid links were tried from this network. Please wait a few minutes."


@dataclass(frozen=True)
class Guest:
    session: TherapySession
    seat: Seat


def link_url(services: Services, session_id: str, token: str) -> str:
    return f"{services.settings.origin}/j/{session_id}#t={token}"


def _context(session_id: str, seat: int) -> bytes:
    return f"link:{session_id}:{seat}".encode()


def unsealed_link(services: Services, seat: Seat) -> str | None:
    """The link the therapist can still copy: only while nobody has used it."""
    if seat.link_sealed is None or seat.redeemed_at is not None:
        return None
    token = services.box.open(seat.link_sealed, _context(seat.session_id, seat.seat)).decode()
    return link_url(services, seat.session_id, token)


async def issue(
    services: Services, tx: Tx, therapist_id: int, session_id: str, seat: int, reissue: bool
) -> str:
    token = new_token()
    sealed = services.box.seal(token.encode(), _context(session_id, seat))
    now = services.clock.now()
    if reissue:
        await therapy_sessions.reissue(tx, session_id, seat, token_hash(token), sealed, now)
    else:
        await therapy_sessions.insert_seat(tx, session_id, seat, token_hash(token), sealed, now)
    await services.audit.append(
        tx,
        actor=f"therapist:{therapist_id}",
        action="link.reissue" if reissue else "link.issue",
        obj=f"session:{session_id}",
        details={"seat": seat},
    )
    return link_url(services, session_id, token)


def _closed(services: Services, session: TherapySession) -> bool:
    grace = services.settings.link_grace_minutes * 60
    return session.state == "ended" or services.clock.now() > session.ends_at + grace


async def redeem(
    services: Services, session_id: str, token: str, guest_cookie: str | None, ip: str
) -> str | None:
    """Trade a link for a guest cookie (returned), or None when this device already holds it."""
    now = services.clock.now()
    # Counted per link and per address, so a neighbour's bad links (one router, one proxy) do not
    # lock out a client with a good one; only many more from the address stop everyone there.
    guesses = services.registry.link_guesses
    wait_here, wait_link = guesses.address_limited(ip, now), guesses.link_limited(ip, session_id, now)
    async with services.db.transaction() as tx:
        if wait_here is not None:
            raise_after = Refusal(429, TOO_MANY_HERE, math.ceil(wait_here))
        elif wait_link is not None:
            raise_after = Refusal(429, TOO_MANY, math.ceil(wait_link))
        else:
            raise_after = None
            seat = (
                await therapy_sessions.seat_by_link(tx, token_hash(token))
                if looks_like_token(token)
                else None
            )
            session = await therapy_sessions.get(tx, session_id)
            if session is not None and _closed(services, session):
                # Ending wipes the session's link hashes, so this is checked before the token: an
                # old link then says "ended", not "not valid". No token of it can work any more.
                raise_after = Refusal(410, ENDED)
            elif seat is None or session is None or seat.session_id != session_id:
                guesses.failed(ip, session_id, now)
                await services.audit.append(
                    tx, actor=f"ip:{ip}", action="link.redeem", obj=f"session:{session_id}", outcome="invalid"
                )
                raise_after = Refusal(404, INVALID)
            elif seat.redeemed_at is None:
                guest = new_token()
                await therapy_sessions.redeem(tx, session_id, seat.seat, token_hash(guest), now)
                await services.audit.append(
                    tx,
                    actor=f"ip:{ip}",
                    action="link.redeem",
                    obj=f"session:{session_id}",
                    details={"seat": seat.seat},
                )
            elif guest_cookie and seat.guest_hash == token_hash(guest_cookie):
                guest = None  # the same device reloading its page
            else:
                await therapy_sessions.count_reuse(tx, session_id, seat.seat)
                await services.audit.append(
                    tx,
                    actor=f"ip:{ip}",
                    action="link.reuse",
                    obj=f"session:{session_id}",
                    outcome="refused",
                    details={"seat": seat.seat},
                )
                raise_after = Refusal(409, USED)
    if raise_after is not None:
        if raise_after.status == 409:
            await services.registry.tell_therapist(session.therapist_id, {"type": "sessions_changed"})
        raise raise_after
    return guest


async def guest_of(services: Services, guest_cookie: str | None) -> Guest | None:
    """The seat this cookie is bound to, while its session is open."""
    if not guest_cookie or not looks_like_token(guest_cookie):
        return None
    async with services.db.transaction() as tx:
        seat = await therapy_sessions.seat_by_guest(tx, token_hash(guest_cookie))
        session = await therapy_sessions.get(tx, seat.session_id) if seat else None
    if seat is None or session is None or _closed(services, session):
        return None
    return Guest(session, seat)


async def reissue_owned(services: Services, therapist_id: int, session_id: str, seat: int) -> str:
    async with services.db.transaction() as tx:
        session = await owned(tx, therapist_id, session_id)
        if session.state == "ended":
            raise Refusal(409, "This session has ended; its links cannot be reissued.")
        if await therapy_sessions.seat(tx, session_id, seat) is None:
            raise Refusal(404, "There is no such seat.")
        url = await issue(services, tx, therapist_id, session_id, seat, reissue=True)
    # The device that held the old link is out.
    await services.sfu.leave(session_id, guest_peer_id(seat))
    await services.registry.tell_guest(session_id, seat, {"type": "state", "state": "removed"}, close=True)
    return url
