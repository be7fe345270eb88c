"""Session titles and client names at rest: sealed with the personal-data key, which lives with the
other keys outside the database, and erased on schedule. Nothing looks a session up by its title or
a seat by its name, so neither needs a searchable form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vsession.audit import personal as audit_personal
from vsession.auth.secretbox import SecretBox
from vsession.store import therapy_sessions
from vsession.store.db import Database
from vsession.store.therapy_sessions import Seat, TherapySession

if TYPE_CHECKING:
    from vsession.services import Services


def _title_context(session_id: str) -> bytes:
    # Bound as associated data: a sealed title moved to another session's row does not open there.
    return f"title:{session_id}".encode()


def _name_context(session_id: str, seat: int) -> bytes:
    return f"name:{session_id}:{seat}".encode()


def seal_title(box: SecretBox, session_id: str, title: str) -> bytes:
    return box.seal(title.encode(), _title_context(session_id))


def title_of(box: SecretBox, session: TherapySession) -> str:
    if session.title_sealed is None:
        return ""
    return box.open(session.title_sealed, _title_context(session.id)).decode()


def seal_name(box: SecretBox, session_id: str, seat: int, name: str) -> bytes:
    return box.seal(name.encode(), _name_context(session_id, seat))


def name_of(box: SecretBox, seat: Seat) -> str:
    if seat.name_sealed is None:
        return ""
    return box.open(seat.name_sealed, _name_context(seat.session_id, seat.seat)).decode()


async def seal_legacy(db: Database, box: SecretBox) -> int:
    """Seal the titles and names an older version wrote in clear (once, at the first start of v5)."""
    async with db.transaction() as tx:
        titles = await therapy_sessions.legacy_titles(tx)
        for sid, title in titles:
            await therapy_sessions.replace_legacy_title(tx, sid, seal_title(box, sid, title))
        names = await therapy_sessions.legacy_names(tx)
        for sid, seat, name in names:
            await therapy_sessions.replace_legacy_name(tx, sid, seat, seal_name(box, sid, seat, name))
    return len(titles) + len(names)


async def apply_retention(services: Services) -> dict[str, int]:
    """Run by housekeeping every minute. Client names go when their session has ended and the grace
    period has passed; after data_retention_days an ended session keeps no title or seats, and audit
    entries no address. What was erased is counted in the audit log."""
    now = services.clock.now()
    settings = services.settings
    days = settings.data_retention_days
    async with services.db.transaction() as tx:
        erased = {"names": await therapy_sessions.erase_names(tx, now - settings.link_grace_minutes * 60)}
        if days:
            erased["sessions"] = await therapy_sessions.reduce_ended(tx, now - days * 86400)
            erased["addresses"] = await audit_personal.purge(tx, now - days * 86400)
        if any(erased.values()):
            await services.audit.append(tx, actor="system", action="data.retention", details=erased)
    # With secure_delete the database holds no trace now, but the WAL keeps older copies of each page.
    await services.db.checkpoint()
    return erased
