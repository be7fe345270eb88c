"""Object-level access: a therapist acts only on their own sessions."""

from __future__ import annotations

from vsession.errors import Refusal
from vsession.store import therapy_sessions
from vsession.store.db import Tx
from vsession.store.therapy_sessions import TherapySession

NOT_FOUND = "There is no such session."


async def owned(tx: Tx, therapist_id: int, session_id: str) -> TherapySession:
    """The session if it belongs to this therapist. Someone else's is reported as missing, so
    session ids cannot be probed."""
    found = await therapy_sessions.get(tx, session_id)
    if found is None or found.therapist_id != therapist_id:
        raise Refusal(404, NOT_FOUND)
    return found
