"""Recording for the whole server: segments, started only by a call's consent machine through the
small interface in vsession.consent.segments, with every segment's metadata in the database and
the audit chain (never beside the media)."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from vsession.audit import AuditLog
from vsession.clock import Clock
from vsession.config import Settings
from vsession.consent.gate import Gate
from vsession.consent.segments import Plan
from vsession.recording import end_reasons
from vsession.recording.recorder import Input, SegmentRecorder
from vsession.sfu.passthrough import PassthroughRelay
from vsession.sfu.room import MediaRoom
from vsession.store import consent as store
from vsession.store.db import Database, Tx

log = logging.getLogger("vsession.recording")
RECORDED_SOURCES = ("camera", "microphone")  # screen shares and chat are not recorded


def recordings_dir(settings: Settings) -> Path:
    return settings.data_dir / "recordings"


def recipients(settings: Settings) -> list[str]:
    return [r for r in (settings.recording_recipient, settings.breakglass_recipient) if r]


def unavailable(settings: Settings, relay: object) -> str:
    """Why a therapist cannot ask to record on this server, or "" if they can."""
    if not settings.recording_recipient:
        return "Recording is not set up: the practice has no recording key (see `vsession keys`)."
    if not isinstance(relay, PassthroughRelay):
        return 'Recording needs the pass-through relay (setting relay = "passthrough").'
    return ""


class Recordings:
    """The server's recording service: a `Recorder` for each call, and what is being written."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.audit = audit
        self.clock = clock
        # Segments this process is writing; any other row left 'writing' was cut off by a crash
        # (see vsession.recording.library.recover_interrupted).
        self.live: set[str] = set()
        # Segments ended since start, by their row's final state ("complete" or "failed"): a count
        # for the metrics endpoint, so a practice hears of failing recordings before a client asks.
        self.ended: Counter[str] = Counter()
        # Set as the server shuts down, before it closes the sockets: segments that end from then
        # on ended because the server stopped, whatever the closing sockets look like.
        self.stopping = False

    def recorder_for(self, room: MediaRoom, relay: object) -> CallRecorder:
        return CallRecorder(self, room, relay)

    async def _audit(
        self, tx: Tx, action: str, recording_id: str, outcome: str, details: dict[str, object]
    ) -> None:
        await self.audit.append(
            tx,
            actor="system",
            action=action,
            obj=f"recording:{recording_id}",
            outcome=outcome,
            details=details,
        )


@dataclass
class CallRecorder:
    """One call's recorder: makes the segments its consent machine plans."""

    service: Recordings
    room: MediaRoom
    relay: object

    def prepare(
        self,
        plan: Plan,
        gate: Gate,
        on_writing: Callable[[bool], Awaitable[None]],
        on_error: Callable[[str], Awaitable[None]],
    ) -> SegmentHandle:
        relay = self.relay
        if not isinstance(relay, PassthroughRelay):
            raise RuntimeError("recording needs the pass-through relay")
        inputs = [
            # The display name titles the tracks inside the encrypted file, where it is safe.
            Input(pid, name, relay.subscribe_packets(source), member.name)
            for pid in plan.participants
            if (member := self.room.members.get(pid)) is not None
            for name, source in member.sources.items()
            if name in RECORDED_SOURCES
        ]
        recording_id = secrets.token_urlsafe(12)
        self.service.live.add(recording_id)  # before its row exists, so recovery never takes it for a crash's
        path = recordings_dir(self.service.settings) / f"{recording_id}.age"
        recorder = SegmentRecorder(
            gate, plan.epoch, path, recipients(self.service.settings), inputs, on_writing, on_error
        )
        return SegmentHandle(self.service, plan, gate, recording_id, recorder)

    async def failed(self, plan: Plan, error: str) -> None:
        recording_id = secrets.token_urlsafe(12)
        service = self.service
        reason = end_reasons.error(error)
        async with service.db.transaction() as tx:
            await _insert_row(tx, service, plan, recording_id, f"{recording_id}.age")
            await store.finish_recording(tx, recording_id, "failed", reason, 0, "", service.clock.now())
            await service._audit(
                tx, "recording.start", recording_id, "failed", _start_details(plan) | {"error": error}
            )
        service.ended["failed"] += 1


@dataclass
class SegmentHandle:
    service: Recordings
    plan: Plan
    gate: Gate
    recording_id: str
    recorder: SegmentRecorder
    stored: bool = False
    error: str = ""

    async def begin(self) -> None:
        service = self.service
        async with service.db.transaction() as tx:
            await _insert_row(tx, service, self.plan, self.recording_id, self.recorder.path.name)
            await service._audit(tx, "recording.start", self.recording_id, "ok", _start_details(self.plan))
        self.stored = True
        try:
            await self.recorder.start()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            raise

    async def finish(self, reason: str) -> None:
        service = self.service
        try:
            complete, size, sha256 = await self.recorder.finish()
        finally:
            service.live.discard(self.recording_id)
        complete = complete and not self.error
        state = "complete" if complete else "failed"
        async with service.db.transaction() as tx:
            if not self.stored:
                await _insert_row(tx, service, self.plan, self.recording_id, self.recorder.path.name)
                await service._audit(
                    tx, "recording.start", self.recording_id, "ok", _start_details(self.plan)
                )
            if self.error:
                reason = end_reasons.error(self.error)
            elif service.stopping:
                reason = end_reasons.SERVER_STOPPED
            elif reason == end_reasons.CONSENT_INCOMPLETE:
                # The answer that closed the gate was stored before the machine finished this.
                answers = await store.answers(tx, self.plan.request_id)
                reason = end_reasons.after_answers(answers, self.plan.participants)
            await store.finish_recording(
                tx, self.recording_id, state, reason, size, sha256, service.clock.now()
            )
            await service._audit(
                tx,
                "recording.stop",
                self.recording_id,
                state,
                {
                    "reason": reason,
                    "bytes": size,
                    "ciphertext_sha256": sha256,
                    "packets": self.recorder.packets_written,
                    # How the cut-off went: the last packet written against the gate's closing.
                    "last_packet_unix": round(self.recorder.last_written_at, 4),
                    "gate_closed_unix": round(self.gate.closed_at, 4),
                },
            )
        service.ended[state] += 1


def _start_details(plan: Plan) -> dict[str, object]:
    return {
        "session": plan.session_id,
        "request": plan.request_id,
        "segment": plan.number,
        "text_sha256": plan.text_sha256,
        "participants": list(plan.participants),
    }


async def _insert_row(tx: Tx, service: Recordings, plan: Plan, recording_id: str, file_name: str) -> None:
    session_row = await tx.fetchone(
        "SELECT therapist_id FROM therapy_sessions WHERE id = ?", (plan.session_id,)
    )
    await store.insert_recording(
        tx,
        recording_id,
        plan.session_id,
        plan.request_id,
        plan.number,
        session_row["therapist_id"] if session_row else 0,
        list(plan.participants),
        file_name,
        service.clock.now(),
    )
