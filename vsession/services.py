"""Opening the long-lived pieces (database, keys, audit log, auth) once, for the server and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsession.audit import AuditLog
from vsession.audit.personal import reduce_legacy
from vsession.auth.context import AuthContext
from vsession.auth.secretbox import SecretBox
from vsession.clock import Clock, SystemClock
from vsession.config import Settings
from vsession.consent.machine import Consent, Policy, Records
from vsession.keyfile import load_or_create_key
from vsession.recording.service import Recordings, unavailable
from vsession.rooms.personal import seal_legacy
from vsession.rooms.registry import Registry
from vsession.sfu.forwarding import make_forwarder
from vsession.sfu.ice import rtc_configuration
from vsession.sfu.room import SFU, MediaRoom
from vsession.store import Database


def audit_key_path(settings: Settings) -> Path:
    return settings.key_folder / "audit-hmac.key"


def totp_key_path(settings: Settings) -> Path:
    return settings.key_folder / "totp-secrets.key"


def personal_key_path(settings: Settings) -> Path:
    """Seals session titles, client names and the addresses in audit entries."""
    return settings.key_folder / "personal-data.key"


async def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return await Database.open(settings.db_path)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    audit_key: bytes
    audit: AuditLog
    box: SecretBox
    auth: AuthContext
    registry: Registry
    sfu: SFU
    recordings: Recordings
    personal: SecretBox

    def consent(self, session_id: str) -> Consent:
        """The consent machine of the session's call (made with the call's room)."""
        listener = self.sfu.room(session_id).listener
        assert isinstance(listener, Consent)
        return listener

    async def close(self) -> None:
        await self.sfu.close()
        await self.db.close()


async def open_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    db = await open_database(settings)
    try:
        audit_key = load_or_create_key(audit_key_path(settings))
        personal = SecretBox(await _personal_key(settings, db))
        await seal_legacy(db, personal)
        await reduce_legacy(db, audit_key, personal)
        box = SecretBox(load_or_create_key(totp_key_path(settings)))
    except BaseException:
        # An open database's thread would keep the process alive after the error.
        await db.close()
        raise
    audit = AuditLog(audit_key, clock, personal)
    auth = AuthContext(settings, db, audit, clock, box)
    recordings = Recordings(settings, db, audit, clock)
    sfu = open_sfu(settings, Records(db, audit, clock), recordings)
    return Services(settings, clock, db, audit_key, audit, box, auth, Registry(), sfu, recordings, personal)


async def _personal_key(settings: Settings, db: Database) -> bytes:
    """Fail closed: a fresh key beside data sealed with a lost one would make that data unreadable
    and every page showing it fail."""
    path = personal_key_path(settings)
    if not path.exists():
        row = await db.fetchone(
            "SELECT EXISTS (SELECT 1 FROM therapy_sessions WHERE title_sealed IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM seats WHERE name_sealed IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM audit_personal)"
        )
        if row is not None and row[0]:
            raise RuntimeError(
                f"key file {path} is missing, and the database holds data sealed with it:"
                " restore the key folder (see README, 'What lives where')"
            )
    return load_or_create_key(path)


def open_sfu(settings: Settings, records: Records, recordings: Recordings, **more: Any) -> SFU:
    """The calls, each room with its consent machine, which records through `recordings`."""
    forwarder = make_forwarder(settings.relay)
    policy = Policy(settings.retention_days, unavailable(settings, forwarder))

    def consent(session_id: str, room: MediaRoom) -> Consent:
        return Consent(records, policy, session_id, room, recordings.recorder_for(room, forwarder))

    return SFU(rtc_configuration(settings), forwarder, make_listener=consent, **more)
