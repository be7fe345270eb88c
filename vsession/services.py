"""Opening the long-lived pieces (database, keys, audit log, auth) once, for the server and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vsession.audit import AuditLog
from vsession.auth.context import AuthContext
from vsession.auth.secretbox import SecretBox
from vsession.clock import Clock, SystemClock
from vsession.config import Settings
from vsession.keyfile import load_or_create_key
from vsession.recording.service import Recordings
from vsession.rooms.registry import Registry
from vsession.sfu.forwarding import make_forwarder
from vsession.sfu.ice import rtc_configuration
from vsession.sfu.room import SFU
from vsession.store import Database


def audit_key_path(settings: Settings) -> Path:
    return settings.key_dir / "audit-hmac.key"


def totp_key_path(settings: Settings) -> Path:
    return settings.key_dir / "totp-secrets.key"


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
    recordings: Recordings = field(init=False)

    def __post_init__(self) -> None:
        self.recordings = Recordings(self)

    async def close(self) -> None:
        await self.sfu.close()
        await self.db.close()


async def open_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    db = await open_database(settings)
    audit_key = load_or_create_key(audit_key_path(settings))
    audit = AuditLog(audit_key, clock)
    box = SecretBox(load_or_create_key(totp_key_path(settings)))
    auth = AuthContext(settings, db, audit, clock, box)
    sfu = SFU(rtc_configuration(settings), make_forwarder(settings.relay))
    return Services(settings, clock, db, audit_key, audit, box, auth, Registry(), sfu)
