"""Recording for the whole server: a consent machine per call, segments started only through it,
and every segment's metadata in the database and the audit chain (never beside the media)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vsession.consent.machine import Consent
from vsession.errors import Refusal
from vsession.recording.recorder import Input, SegmentRecorder
from vsession.sfu.passthrough import PassthroughRelay
from vsession.store import consent as store

if TYPE_CHECKING:
    from vsession.services import Services

log = logging.getLogger("vsession.recording")
RECORDED_SOURCES = ("camera", "microphone")  # screen shares and chat are not recorded


def recordings_dir(services: Services) -> Path:
    return services.settings.data_dir / "recordings"


@dataclass
class SegmentHandle:
    services: Services
    consent: Consent
    recording_id: str
    recorder: SegmentRecorder

    async def finish(self, reason: str) -> None:
        complete, size, sha256 = await self.recorder.finish()
        state = "complete" if complete else "failed"
        async with self.services.db.transaction() as tx:
            await store.finish_recording(
                tx, self.recording_id, state, reason, size, sha256, self.services.clock.now()
            )
            await self.services.audit.append(
                tx,
                actor="system",
                action="recording.stop",
                obj=f"recording:{self.recording_id}",
                outcome=state,
                details={
                    "reason": reason,
                    "bytes": size,
                    "ciphertext_sha256": sha256,
                    "packets": self.recorder.packets_written,
                    # How the cut-off went: the last packet written against the gate's closing.
                    "last_packet_unix": round(self.recorder.last_written_at, 4),
                    "gate_closed_unix": round(self.consent.gate.closed_at, 4),
                },
            )
        self.services.recordings.live.discard(self.recording_id)


class Recordings:
    def __init__(self, services: Services) -> None:
        self.services = services
        # Segments this process is writing; any other row left 'writing' was cut off by a crash
        # (see vsession.recording.library.recover_interrupted).
        self.live: set[str] = set()

    def consent_for(self, session_id: str) -> Consent:
        """The consent machine of this session's call, attached to the room as its listener."""
        room = self.services.sfu.room(session_id)
        if not isinstance(room.listener, Consent):
            room.listener = Consent(self.services, session_id, room, self._start_segment)
        return room.listener

    async def _start_segment(self, consent: Consent, epoch: int, participants: list[str]) -> SegmentHandle:
        services = self.services
        relay = services.sfu.forwarder
        if not isinstance(relay, PassthroughRelay):
            raise Refusal(409, 'Recording needs the pass-through relay (setting relay = "passthrough").')
        recipients = [
            r for r in (services.settings.recording_recipient, services.settings.breakglass_recipient) if r
        ]
        inputs = [
            Input(pid, name, relay.subscribe_packets(source))
            for pid in participants
            if (member := consent.room.members.get(pid)) is not None
            for name, source in member.sources.items()
            if name in RECORDED_SOURCES
        ]
        recording_id = secrets.token_urlsafe(12)
        self.live.add(recording_id)  # before its row exists, so recovery never takes it for a crash's
        path = recordings_dir(services) / f"{recording_id}.age"
        request = consent.request
        assert request is not None
        async with services.db.transaction() as tx:
            session_row = await tx.fetchone(
                "SELECT therapist_id FROM therapy_sessions WHERE id = ?", (consent.session_id,)
            )
            therapist_id = session_row["therapist_id"] if session_row else 0
            await store.insert_recording(
                tx,
                recording_id,
                consent.session_id,
                request.id,
                consent.segments,
                therapist_id,
                participants,
                path.name,
                services.clock.now(),
            )
            await services.audit.append(
                tx,
                actor="system",
                action="recording.start",
                obj=f"recording:{recording_id}",
                details={
                    "session": consent.session_id,
                    "request": request.id,
                    "segment": consent.segments,
                    "text_sha256": request.sha256,
                    "participants": participants,
                },
            )
        recorder = SegmentRecorder(
            consent.gate, epoch, path, recipients, inputs, consent.set_recording, consent.recorder_failed
        )
        await recorder.start()
        return SegmentHandle(services, consent, recording_id, recorder)
