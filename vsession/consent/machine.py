"""The consent state machine of one session's call: the ONLY code that opens the recorder's gate.

The gate is open exactly when a request is active, every participant present has an active accept
for it, and the recorder is healthy. Each open interval is one recording segment.

One order for events, and closes that stick:
- Every event that can close (a withdrawal, decline, leave, disconnect, newcomer, stop, the
  session ending, a recorder error) changes the state and closes the gate synchronously, the
  moment it arrives, before any await. Its record (row and audit entry) is stored after.
- An accept takes effect only once it is stored, and only if nothing about that participant
  changed meanwhile.
- Only `_settle` opens the gate, from a decision it makes with no await between the decision and
  the open; after every await it decides afresh. One settle runs at a time (`_lock`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vsession.audit import AuditLog
from vsession.clock import Clock
from vsession.consent import indicator
from vsession.consent import text as consent_text
from vsession.consent.gate import Gate
from vsession.consent.segments import Plan, Recorder, Segment
from vsession.errors import Refusal
from vsession.sfu.room import THERAPIST_PEER, MediaRoom
from vsession.store import consent as store
from vsession.store.db import Database, Tx

log = logging.getLogger("vsession.consent")

# An answer in memory: "accepting" is an accept on its way to the DB, not yet in effect.
ACCEPT, ACCEPTING, PENDING = "accept", "accepting", "pending"


@dataclass(frozen=True)
class Records:
    """Where consent is written down."""

    db: Database
    audit: AuditLog
    clock: Clock


@dataclass(frozen=True)
class Policy:
    retention_days: int
    unavailable: str = ""  # why recording cannot be asked for on this server, if it cannot


@dataclass
class Request:
    id: str
    version: str
    text: str
    sha256: str
    # participant -> accept | accepting | decline | withdraw | pending
    answers: dict[str, str] = field(default_factory=dict)
    # participant -> the prompt they may answer now; consumed by their answer
    prompts: dict[str, str] = field(default_factory=dict)
    closing: str = ""  # why it ends, once a stop-like event arrived: it can never open again
    ended: bool = False  # its end is stored
    recorded: bool = False  # the recorder wrote under it: its end reads "Recording stopped"

    def end_shown(self) -> indicator.Ended:
        status = indicator.STOPPED if self.recorded else indicator.NOT_RECORDING
        return indicator.Ended(status, indicator.reason_code(self.closing or "ended"))


async def refuse_forgery(
    records: Records, session_id: str, by: str, why: str, details: dict[str, str] | None = None
) -> None:
    """Forgeries are refused and audited; nothing else changes."""
    await records.audit.record(
        records.db,
        actor=f"participant:{session_id}:{by}",
        action="consent.forgery",
        obj=f"session:{session_id}",
        outcome="refused",
        details={"why": why, **(details or {})},
    )
    raise Refusal(403, f"Refused: {why}.")


class Consent:
    def __init__(
        self, records: Records, policy: Policy, session_id: str, room: MediaRoom, recorder: Recorder
    ) -> None:
        self.records = records
        self.policy = policy
        self.session_id = session_id
        self.room = room
        self.recorder = recorder
        self.gate = Gate()
        self.request: Request | None = None
        self.present: set[str] = set()  # who is in the call, as far as consent is concerned
        self.arriving: Counter[str] = Counter()  # joins received, not yet admitted or turned back
        self.segment: Segment | None = None
        self.segment_plan: Plan | None = None
        self.segments = 0
        self.state = "stopped"  # what the recorder is really doing: recording | paused | stopped
        self.last_end = indicator.NEVER  # how the last request ended, told until the next one
        self.ended = False
        self._stops = 0  # stop-like events so far: one that arrives while a request waits cancels it
        self._writing = False
        self._lock = asyncio.Lock()

    # -- the therapist ------------------------------------------------------------------------

    async def request_recording(self, by: str) -> None:
        if by != THERAPIST_PEER:
            await self._refuse(by, "a client asked to start recording")
        if by not in self.present:
            raise Refusal(409, "Join the call before asking to record.")
        stops = self._stops  # a stop-like event from now on cancels this request
        async with self._lock:
            if self._stops != stops:
                raise Refusal(409, "Recording was stopped before this request could start.")
            if self.ended:
                raise Refusal(409, "This call has ended.")
            if by not in self.present:
                raise Refusal(409, "Join the call before asking to record.")
            if self.request is not None:
                raise Refusal(409, "A recording request is already active. Stop it first.")
            if self.policy.unavailable:
                raise Refusal(409, self.policy.unavailable)
            words = consent_text.current(self.policy.retention_days)
            request = Request(secrets.token_urlsafe(12), words.version, words.text, words.sha256)
            request.answers[by] = ACCEPTING  # asking is the therapist's own consent
            self.request = request
            try:
                now = self.records.clock.now()
                async with self.records.db.transaction() as tx:
                    await store.insert_request(
                        tx, request.id, self.session_id, words.version, words.sha256, by, now
                    )
                    await store.insert_answer(tx, request.id, by, "request", ACCEPT, "", now)
                    await self._audit(
                        tx,
                        by,
                        "consent.request",
                        {"request": request.id, "version": words.version, "text_sha256": words.sha256},
                    )
                    await self._audit(tx, by, "consent.accept", {"request": request.id})
            except BaseException:
                if self.request is request:
                    self.request = None
                raise
            if request.closing:  # the therapist left (or the call ended) while it was stored
                await self._end_request(request, "system")
                return
            if request.answers.get(by) == ACCEPTING:
                request.answers[by] = ACCEPT
            await self._prompt_pending(request, again=False)
            await self._settle_locked()

    async def ask_again(self, by: str) -> None:
        """Prompt again whoever has no active accept (after a decline, withdrawal or rejoin)."""
        if by != THERAPIST_PEER:
            await self._refuse(by, "a client asked to prompt others")
        request = self.request
        if request is None or request.closing:
            raise Refusal(409, "There is no recording request to ask about.")
        await self._prompt_pending(request, again=True)
        await self.push_state()  # "declined" becomes "asking" for whoever was asked again

    async def stop(self, by: str, reason: str) -> None:
        if by not in (THERAPIST_PEER, "system"):
            await self._refuse(by, "a client asked to stop the therapist's request")
        request = self._close_request(reason)
        if request is not None:
            async with self._lock:
                await self._end_request(request, by)
        else:
            await self.push_state()

    # -- every participant --------------------------------------------------------------------

    async def answer(self, by: str, message: dict[str, Any]) -> None:
        request = self.request
        answer = message["answer"]
        claimed = message.get("participant", by)
        if claimed != by:
            await self._refuse(by, "answered for another participant", {"claimed": str(claimed)[:16]})
        if request is not None and request.closing and message["request"] == request.id:
            raise Refusal(409, "This recording request has ended.")
        if request is None or message["request"] != request.id:
            await self._refuse(by, "answered a request that is not the active one")
        assert request is not None
        if request.prompts.get(by) != message["prompt"]:
            await self._refuse(by, "answered without a current prompt (replayed, or after withdrawing)")
        del request.prompts[by]  # used once, from now
        if answer == ACCEPT:
            request.answers[by] = ACCEPTING
        else:
            self._close()
            request.answers[by] = answer
        try:
            async with self.records.db.transaction() as tx:
                await store.insert_answer(
                    tx, request.id, by, message["prompt"], answer, "", self.records.clock.now()
                )
                await self._audit(tx, by, f"consent.{answer}", {"request": request.id})
        except BaseException:
            if request.answers.get(by) == ACCEPTING:
                request.answers[by] = PENDING
            raise
        # Stored; an accept now takes effect, unless something about this person changed meanwhile.
        if answer == ACCEPT and request.answers.get(by) == ACCEPTING:
            request.answers[by] = ACCEPT
        await self._settle()

    async def withdraw(self, by: str) -> None:
        if by == THERAPIST_PEER:
            self._stops += 1  # the therapist's withdrawal is a stop, also of a request on its way
        request = self.request
        if request is None or request.closing or request.answers.get(by) not in (ACCEPT, ACCEPTING):
            raise Refusal(409, "You have no active consent to withdraw.")
        self._close()  # first: nothing more is written, whatever happens next
        request.answers[by] = "withdraw"
        request.prompts.pop(by, None)
        if by == THERAPIST_PEER:
            self._close_request("therapist withdrew")
        async with self.records.db.transaction() as tx:
            await store.insert_answer(tx, request.id, by, "-", "withdraw", "", self.records.clock.now())
            await self._audit(tx, by, "consent.withdraw", {"request": request.id})
        if request.closing:
            async with self._lock:
                await self._end_request(request, by)
        else:
            await self._settle()

    # -- the call (told by the room before the change takes effect) -----------------------------

    def join_arriving(self, peer_id: str) -> None:
        """A join message arrived: the gate closes now, before the checks that admit it (awaits),
        and stays closed until the join is admitted (member_joining) or turned back."""
        self.arriving[peer_id] += 1
        if self.request is not None:
            self._close()

    async def join_settled(self, peer_id: str) -> None:
        """The join that `join_arriving` announced is in the call, or was turned back."""
        self.arriving[peer_id] -= 1
        if self.arriving[peer_id] <= 0:
            del self.arriving[peer_id]
        await self._settle()

    async def member_joining(self, peer_id: str) -> None:
        self.present.add(peer_id)
        request = self.request
        if request is None:
            return
        self._close()  # a newcomer has not consented to anything yet
        request.answers[peer_id] = PENDING
        request.prompts.pop(peer_id, None)
        await self._settle()

    async def member_joined(self, peer_id: str) -> None:
        request = self.request
        if (
            request is not None
            and not request.closing
            and request.answers.get(peer_id) not in (ACCEPT, ACCEPTING)
        ):
            await self._prompt(request, peer_id)
        await self.push_state()

    async def member_leaving(self, peer_id: str, reason: str) -> None:
        self.present.discard(peer_id)
        if peer_id == THERAPIST_PEER:  # ends the request, and cancels one still on its way
            self._close_request(f"therapist {reason}")
        request = self.request
        if request is None:
            return
        self._close()  # before the leaver's media stops: their consent covered being present
        previous = request.answers.pop(peer_id, None)
        request.prompts.pop(peer_id, None)
        if previous in (ACCEPT, ACCEPTING) and not request.closing:
            # Their consent was for being recorded while present; coming back means asking again.
            async with self.records.db.transaction() as tx:
                await store.insert_answer(
                    tx, request.id, peer_id, "-", "void", reason, self.records.clock.now()
                )
                await self._audit(tx, peer_id, "consent.void", {"request": request.id, "reason": reason})
        if request.closing:
            async with self._lock:
                await self._end_request(request, "system")
        else:
            await self._settle()

    async def recorder_failed(self, error: str) -> None:
        """Fail closed: a recorder or disk error ends the request; the therapist may ask again."""
        log.error("recorder failed", extra={"session": self.session_id, "error": error})
        request = self._close_request(f"recorder error: {error}")
        if request is not None:
            async with self._lock:
                await self._end_request(request, "system")

    async def session_ended(self, reason: str = "session ended") -> None:
        self.ended = True
        request = self._close_request(reason)
        async with self._lock:
            if request is not None:
                await self._end_request(request, "system")
            else:
                await self._settle_locked()

    # -- deciding -----------------------------------------------------------------------------

    def _close(self) -> None:
        self.gate.close()

    def _close_request(self, reason: str) -> Request | None:
        """A stop-like event: this request can never open the gate again. Synchronous."""
        self._close()
        self._stops += 1
        request = self.request
        if request is None or request.closing:
            return None
        request.closing = reason
        return request

    def _decide(self) -> tuple[str, ...] | None:
        """Who may be recorded now, or None. Synchronous: the caller opens right after, or not."""
        request = self.request
        if request is None or request.closing or self.ended or not self.present or self.arriving:
            return None
        if all(request.answers.get(pid) == ACCEPT for pid in self.present):
            return tuple(sorted(self.present))
        return None

    async def _settle(self) -> None:
        async with self._lock:
            await self._settle_locked()

    async def _settle_locked(self) -> None:
        """Bring the recorder in line with consent. Every await is followed by a fresh decision."""
        try:
            while await self._step():
                pass
        except Exception as exc:  # fail closed, and say why
            log.exception("consent: the recorder could not follow consent", exc_info=exc)
            self._close_request(f"recorder error: {type(exc).__name__}")
            try:
                if self.request is not None:
                    await self._end_request(self.request, "system")
            except Exception as again:
                log.exception("consent: ending the request failed too", exc_info=again)
            self.segment, self.segment_plan = None, None
        await self.push_state()

    async def _step(self) -> bool:
        """One change towards what consent allows; False when there is nothing left to do."""
        want = self._decide()
        plan = self.segment_plan
        if self.segment is not None and plan is not None:
            if want == plan.participants and self.gate.allows(plan.epoch):
                return False
            self._close()
            segment, self.segment, self.segment_plan = self.segment, None, None
            request = self.request
            await segment.finish(
                request.closing if request and request.closing else "consent no longer complete"
            )
            return True
        if want is None:
            return False
        request = self.request
        assert request is not None
        self.segments += 1
        plan = Plan(self.session_id, request.id, request.sha256, self.segments, self.gate.epoch + 1, want)
        try:
            segment = self.recorder.prepare(plan, self.gate, self.set_recording, self.recorder_failed)
        except Exception as exc:
            log.exception("consent: a recording segment could not start", exc_info=exc)
            self._close_request(f"recorder error: {type(exc).__name__}: {str(exc)[:120]}")
            await self.recorder.failed(plan, f"{type(exc).__name__}: {str(exc)[:160]}")
            await self._end_request(request, "system")
            return True
        # No await since the decision: open now.
        epoch = self.gate._open()
        assert epoch == plan.epoch
        self.segment, self.segment_plan = segment, plan
        await segment.begin()
        return True

    # -- telling people -----------------------------------------------------------------------

    async def set_recording(self, writing: bool) -> None:
        """Called by the recorder with what it is really doing; the indicator follows this."""
        self._writing = writing
        if writing and self.request is not None:
            self.request.recorded = True
        await self.push_state()

    async def push_state(self) -> None:
        writing = self._writing and self.gate.is_open
        request = self.request
        self.state = "recording" if writing else "paused" if request and not request.closing else "stopped"
        await self.room.broadcast({"type": "recording", "state": self.state, **self.shown()})
        therapist = self.room.members.get(THERAPIST_PEER)
        if therapist is not None:
            await therapist.send(self.status())

    def shown(self) -> dict[str, Any]:
        """What every page shows about the recording (vsession/consent/indicator.py)."""
        request = self.request
        active = request is not None and not request.closing
        return indicator.describe(
            writing=self._writing and self.gate.is_open,
            active=active,
            answers=request.answers if request is not None and active else {},
            prompted=request.prompts if request is not None and active else (),
            present=self.present,
            arriving=self.arriving,
            ended=request.end_shown() if request is not None and not active else self.last_end,
        )

    def status(self) -> dict[str, Any]:
        request = self.request
        answers = {pid: self._shown_answer(request, pid) for pid in sorted(self.present)}
        return {
            "type": "consent_status",
            "request": request.id if request else None,
            "state": self.state,
            "answers": answers,
        }

    @staticmethod
    def _shown_answer(request: Request | None, pid: str) -> str:
        if request is None:
            return "none"
        answer = request.answers.get(pid, PENDING)
        return PENDING if answer == ACCEPTING else answer

    async def _prompt_pending(self, request: Request, again: bool) -> None:
        for pid in sorted(self.present):
            if request.answers.get(pid) not in (ACCEPT, ACCEPTING) and (again or pid not in request.prompts):
                await self._prompt(request, pid)

    async def _prompt(self, request: Request, peer_id: str) -> None:
        member = self.room.members.get(peer_id)
        if member is None or request is not self.request or request.closing:
            return
        prompt = secrets.token_urlsafe(9)
        request.prompts[peer_id] = prompt
        request.answers.setdefault(peer_id, PENDING)
        await member.send(
            {
                "type": "consent_prompt",
                "request": request.id,
                "prompt": prompt,
                "version": request.version,
                "text": request.text,
            }
        )

    async def _end_request(self, request: Request, by: str) -> None:
        """Finish the segment and store the end of a closing request. Called holding `_lock`."""
        if request.ended:
            return
        request.ended = True
        reason = request.closing or "ended"
        self._close()
        if self.segment is not None:
            segment, self.segment, self.segment_plan = self.segment, None, None
            await segment.finish(reason)
        if self.request is request:
            self.request = None
            self.last_end = request.end_shown()
        async with self.records.db.transaction() as tx:
            await store.end_request(tx, request.id, reason, self.records.clock.now())
            await self._audit(tx, by, "consent.end", {"request": request.id, "reason": reason})
        # Pages get the reason's code only, as in the indicator (no recorder error's details).
        code = indicator.reason_code(reason)
        await self.room.broadcast({"type": "consent_closed", "request": request.id, "reason": code})
        await self.push_state()

    async def _refuse(self, by: str, why: str, details: dict[str, str] | None = None) -> None:
        await refuse_forgery(self.records, self.session_id, by, why, details)

    async def _audit(self, tx: Tx, by: str, action: str, details: dict[str, Any]) -> None:
        await self.records.audit.append(
            tx,
            actor=f"participant:{self.session_id}:{by}",
            action=action,
            obj=f"session:{self.session_id}",
            details=details,
        )
