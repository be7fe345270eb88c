"""The consent state machine of one session's call: the ONLY code that opens the recorder's gate.

The gate is open exactly when a request is active, every participant present has an active accept
for it, and the recorder is healthy. It closes on a withdrawal, a leave or drop, a newcomer without
consent, a therapist stop, the session ending, or a recorder error. Reopening needs fresh consent
from whoever caused the closure. Each open interval is one recording segment.

Every answer is bound to the current request and to a prompt issued to that participant; it is
stored (row and audit entry) before it takes effect. A withdrawal closes the gate first, then is
stored: stopping must never wait on a disk.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vsession.consent import text as consent_text
from vsession.consent.gate import Gate
from vsession.errors import Refusal
from vsession.sfu.room import THERAPIST_PEER, MediaRoom
from vsession.store import consent as store

if TYPE_CHECKING:
    from vsession.services import Services

log = logging.getLogger("vsession.consent")


class Segment(Protocol):
    async def finish(self, reason: str) -> None: ...


# (consent, epoch, participant ids) -> a running segment, or raises Refusal when it cannot start
StartSegment = Callable[["Consent", int, list[str]], Awaitable[Segment]]


@dataclass
class Request:
    id: str
    version: str
    text: str
    sha256: str
    # participant -> "accept" | "decline" | "withdraw" | "pending"
    answers: dict[str, str] = field(default_factory=dict)
    # participant -> the prompt they may answer now; consumed by their answer
    prompts: dict[str, str] = field(default_factory=dict)


async def refuse_forgery(
    services: Services, session_id: str, by: str, why: str, details: dict[str, str] | None = None
) -> None:
    """Forgeries are refused and audited; nothing else changes."""
    await services.audit.record(
        services.db,
        actor=f"participant:{session_id}:{by}",
        action="consent.forgery",
        obj=f"session:{session_id}",
        outcome="refused",
        details={"why": why, **(details or {})},
    )
    raise Refusal(403, f"Refused: {why}.")


class Consent:
    def __init__(
        self, services: Services, session_id: str, room: MediaRoom, start_segment: StartSegment
    ) -> None:
        self.services = services
        self.session_id = session_id
        self.room = room
        self.gate = Gate()
        self.request: Request | None = None
        self.segment: Segment | None = None
        self.state = "stopped"  # what the recorder is really doing: recording | paused | stopped
        self._start_segment = start_segment
        self._writing = False
        self.segments = 0
        # One change at a time; closing the gate never waits for it.
        self._lock = asyncio.Lock()

    # -- the therapist ------------------------------------------------------------------------

    async def request_recording(self, by: str) -> None:
        if by != THERAPIST_PEER:
            await self._refuse(by, "a client asked to start recording")
        if by not in self.room.members:
            raise Refusal(409, "Join the call before asking to record.")
        async with self._lock:
            await self._request(by)

    async def _request(self, by: str) -> None:
        if self.request is not None:
            raise Refusal(409, "A recording request is already active. Stop it first.")
        if not self.services.settings.recording_recipient:
            raise Refusal(
                409, "Recording is not set up: the practice has no recording key (see `vsession keys`)."
            )
        words = consent_text.current(self.services.settings.retention_days)
        request = Request(secrets.token_urlsafe(12), words.version, words.text, words.sha256)
        now = self.services.clock.now()
        async with self.services.db.transaction() as tx:
            await store.insert_request(tx, request.id, self.session_id, words.version, words.sha256, by, now)
            # Asking is the therapist's own consent.
            await store.insert_answer(tx, request.id, by, "request", "accept", "", now)
            await self._audit(
                tx,
                by,
                "consent.request",
                {"request": request.id, "version": words.version, "text_sha256": words.sha256},
            )
            await self._audit(tx, by, "consent.accept", {"request": request.id})
        request.answers[by] = "accept"
        self.request = request
        await self._prompt_everyone_pending()
        await self._recompute()

    async def ask_again(self, by: str) -> None:
        """Prompt again whoever has no active accept (after a decline, withdrawal or rejoin)."""
        if by != THERAPIST_PEER:
            await self._refuse(by, "a client asked to prompt others")
        async with self._lock:
            if self.request is None:
                raise Refusal(409, "There is no recording request to ask about.")
            await self._prompt_everyone_pending(again=True)

    async def stop(self, by: str, reason: str) -> None:
        if by not in (THERAPIST_PEER, "system"):
            await self._refuse(by, "a client asked to stop the therapist's request")
        self.gate.close()
        async with self._lock:
            await self._end_request(by, reason)

    # -- every participant --------------------------------------------------------------------

    async def answer(self, by: str, message: dict[str, Any]) -> None:
        async with self._lock:
            await self._answer(by, message)

    async def _answer(self, by: str, message: dict[str, Any]) -> None:
        request = self.request
        answer = message["answer"]
        claimed = message.get("participant", by)
        if claimed != by:
            await self._refuse(by, "answered for another participant", {"claimed": str(claimed)[:16]})
        if request is None or message["request"] != request.id:
            await self._refuse(by, "answered a request that is not the active one")
        assert request is not None
        if request.prompts.get(by) != message["prompt"]:
            await self._refuse(by, "answered without a current prompt (replayed, or after withdrawing)")
        now = self.services.clock.now()
        async with self.services.db.transaction() as tx:
            await store.insert_answer(tx, request.id, by, message["prompt"], answer, "", now)
            await self._audit(tx, by, f"consent.{answer}", {"request": request.id})
        # Stored; now it takes effect.
        del request.prompts[by]
        request.answers[by] = answer
        await self._recompute()

    async def withdraw(self, by: str) -> None:
        request = self.request
        if request is None or request.answers.get(by) != "accept":
            raise Refusal(409, "You have no active consent to withdraw.")
        self.gate.close()  # first: nothing more is written, whatever happens next
        request.answers[by] = "withdraw"
        async with self._lock:
            await self._withdrawn(by, request)

    async def _withdrawn(self, by: str, request: Request) -> None:
        async with self.services.db.transaction() as tx:
            await store.insert_answer(tx, request.id, by, "-", "withdraw", "", self.services.clock.now())
            await self._audit(tx, by, "consent.withdraw", {"request": request.id})
        if by == THERAPIST_PEER:
            await self._end_request(by, "therapist withdrew")
        else:
            await self._recompute()

    # -- the call (called by the room before the change takes effect) ---------------------------

    async def member_joining(self, peer_id: str) -> None:
        request = self.request
        if request is None:
            return
        self.gate.close()  # a newcomer has not consented to anything yet
        async with self._lock:
            request.answers[peer_id] = "pending"
            await self._recompute(extra_present=peer_id)

    async def member_joined(self, peer_id: str) -> None:
        async with self._lock:
            if self.request is not None and self.request.answers.get(peer_id) != "accept":
                await self._prompt(peer_id)
            await self.push_state()

    async def member_leaving(self, peer_id: str, reason: str) -> None:
        if self.request is None:
            return
        self.gate.close()  # before the leaver's media stops: their consent covered being present
        async with self._lock:
            await self._left(peer_id, reason)

    async def _left(self, peer_id: str, reason: str) -> None:
        request = self.request
        if request is None:
            return
        if peer_id == THERAPIST_PEER:
            await self._end_request("system", f"therapist {reason}")
            return
        previous = request.answers.pop(peer_id, None)
        request.prompts.pop(peer_id, None)
        if previous == "accept":
            # Their consent was for being recorded while present; coming back means asking again.
            async with self.services.db.transaction() as tx:
                await store.insert_answer(
                    tx, request.id, peer_id, "-", "void", reason, self.services.clock.now()
                )
                await self._audit(tx, peer_id, "consent.void", {"request": request.id, "reason": reason})
        await self._recompute(absent=peer_id)

    async def recorder_failed(self, error: str) -> None:
        """Fail closed: a recorder or disk error ends the request; the therapist may ask again."""
        self.gate.close()
        log.error("recorder failed", extra={"session": self.session_id, "error": error})
        async with self._lock:
            await self._end_request("system", f"recorder error: {error}")

    async def session_ended(self) -> None:
        self.gate.close()
        async with self._lock:
            await self._end_request("system", "session ended")

    # -- internals ----------------------------------------------------------------------------

    def present(self, extra: str | None = None, absent: str | None = None) -> list[str]:
        people = [pid for pid in self.room.members if pid != absent]
        return [*people, extra] if extra and extra not in people else people

    async def _recompute(self, extra_present: str | None = None, absent: str | None = None) -> None:
        request = self.request
        present = self.present(extra_present, absent)
        should_open = (
            request is not None
            and bool(present)
            and all(request.answers.get(pid) == "accept" for pid in present)
        )
        if should_open and not self.gate.is_open:
            if self.segment is not None:
                # The gate was closed early (someone left) and the rest still all accept: the
                # old segment ends here, or it would never be finalised, stored or audited.
                segment, self.segment = self.segment, None
                await segment.finish("participants changed")
            epoch = self.gate._open()
            self.segments += 1
            try:
                self.segment = await self._start_segment(self, epoch, present)
            except Refusal as exc:
                self.gate.close()
                await self._end_request("system", exc.message)
                raise
        elif not should_open:
            self.gate.close()
            if self.segment is not None:
                segment, self.segment = self.segment, None
                await segment.finish("consent no longer complete")
        await self.push_state()

    async def set_recording(self, writing: bool) -> None:
        """Called by the recorder with what it is really doing; the indicator follows this."""
        self._writing = writing
        await self.push_state()

    async def push_state(self) -> None:
        writing = self._writing and self.gate.is_open
        self.state = "recording" if writing else "paused" if self.request is not None else "stopped"
        await self.room.broadcast({"type": "recording", "state": self.state})
        therapist = self.room.members.get(THERAPIST_PEER)
        if therapist is not None:
            await therapist.send(self.status())

    def status(self) -> dict[str, Any]:
        request = self.request
        return {
            "type": "consent_status",
            "request": request.id if request else None,
            "state": self.state,
            "answers": {
                pid: (request.answers.get(pid, "pending") if request else "none") for pid in self.present()
            },
        }

    async def _prompt_everyone_pending(self, again: bool = False) -> None:
        assert self.request is not None
        for pid in self.present():
            if self.request.answers.get(pid) != "accept" and (again or pid not in self.request.prompts):
                await self._prompt(pid)

    async def _prompt(self, peer_id: str) -> None:
        request = self.request
        member = self.room.members.get(peer_id)
        if request is None or member is None:
            return
        prompt = secrets.token_urlsafe(9)
        request.prompts[peer_id] = prompt
        request.answers.setdefault(peer_id, "pending")
        await member.send(
            {
                "type": "consent_prompt",
                "request": request.id,
                "prompt": prompt,
                "version": request.version,
                "text": request.text,
            }
        )

    async def _end_request(self, by: str, reason: str) -> None:
        self.gate.close()
        request, self.request = self.request, None
        if self.segment is not None:
            segment, self.segment = self.segment, None
            await segment.finish(reason)
        if request is not None:
            async with self.services.db.transaction() as tx:
                await store.end_request(tx, request.id, reason, self.services.clock.now())
                await self._audit(tx, by, "consent.end", {"request": request.id, "reason": reason})
            await self.room.broadcast({"type": "consent_closed", "request": request.id, "reason": reason})
        await self.push_state()

    async def _refuse(self, by: str, why: str, details: dict[str, str] | None = None) -> None:
        await refuse_forgery(self.services, self.session_id, by, why, details)

    def _actor(self, peer_id: str) -> str:
        return f"participant:{self.session_id}:{peer_id}"

    async def _audit(self, tx: Any, by: str, action: str, details: dict[str, Any]) -> None:
        await self.services.audit.append(
            tx, actor=self._actor(by), action=action, obj=f"session:{self.session_id}", details=details
        )
