"""The privacy notice a client reads before anything else, and their acknowledgement of it.

Versioned and hashed like the consent text (vsession/consent/text.py): the record says exactly which
words each client acknowledged. The practice may write its own in `privacy_notice_file`: a first
line `version: <name>`, then paragraphs separated by blank lines (a paragraph's first line is its
heading when more lines follow). A changed text needs a new version; never edit one in place."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from vsession.errors import Refusal
from vsession.store import notice_acks
from vsession.versioned_text import VersionedText

if TYPE_CHECKING:
    from vsession.config import Settings
    from vsession.rooms.invites import Guest
    from vsession.services import Services

VERSION = "2026-11-v1"
TEXT = (
    "Who runs this\n"
    "This video service is run by {practice}, on a server it controls.\n\n"
    "Where your audio and video go\n"
    "Only through this server, to the other people in your session. The server passes them on "
    "and does not store them.{relay} Chat messages are not saved.\n\n"
    "Recording\n"
    "Nothing is recorded without your consent. If your therapist asks to record, you are asked "
    "first and can say no. If you agree, you can withdraw your consent at any time with a button "
    "that stays on screen, and recording stops at once.\n\n"
    "What is kept, and for how long\n"
    "The name you type here is deleted {name_retention} after the session ends. The practice's "
    "security log notes that you joined, with the time and your network address; the address is "
    "removed {data_retention}. A recording you agreed to is encrypted and kept "
    "{recording_retention}.\n\n"
    "How to leave\n"
    "In the waiting room or the call, press Leave at any time: your camera and microphone are "
    "turned off, and this browser keeps nothing from the session. Closing this page also turns "
    "them off."
)
PLACEHOLDERS = ("practice", "relay", "name_retention", "data_retention", "recording_retention")
RELAY = (
    " If your network blocks a direct connection, they travel through a relay server the practice "
    "has set up, still encrypted: the relay cannot see or hear them."
)
UNNAMED_PRACTICE = "the practice that invited you"
MAX_CHARS = 20_000
_VERSION_LINE = re.compile(r"version:\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63})\s*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")

CHANGED = "The privacy notice has changed since this page loaded. Please read it again."
UNREAD = "Please read the privacy notice first."


def read_notice_file(path: Path) -> tuple[str, str]:
    """(version, template) of a practice's notice file; ValueError saying what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    first, _, rest = content.lstrip("\ufeff").partition("\n")
    found = _VERSION_LINE.fullmatch(first.strip())
    if found is None:
        raise ValueError(f"{path} must start with a line 'version: <name>' (letters, digits, . _ -)")
    template = rest.strip()
    if not template:
        raise ValueError(f"{path} has no text after its version line")
    if len(template) > MAX_CHARS:
        raise ValueError(f"{path} is longer than {MAX_CHARS} characters")
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        raise ValueError(f"{path} uses unknown placeholder {{{unknown[0]}}}; known: {known}")
    return found.group(1), template


def _span(minutes: int) -> str:
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def _values(settings: Settings) -> dict[str, str]:
    days, kept = settings.data_retention_days, settings.retention_days
    return {
        "practice": settings.practice_name or UNNAMED_PRACTICE,
        "relay": RELAY if any(url.startswith(("turn:", "turns:")) for url in settings.ice_servers) else "",
        "name_retention": _span(settings.link_grace_minutes),
        "data_retention": f"after {days} days" if days else "only when the practice deletes it",
        "recording_retention": (
            f"for {kept} days, then deleted automatically" if kept else "until the practice deletes it"
        ),
    }


def load(settings: Settings) -> VersionedText:
    """The notice with this server's practice name and retention settings filled in. Blocking."""
    version, template = VERSION, TEXT
    if settings.privacy_notice_file is not None:
        version, template = read_notice_file(settings.privacy_notice_file)
    values = _values(settings)
    # Named placeholders only, replaced one by one: other braces in a practice's text stay as written.
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    return VersionedText(version, text)


_loaded: dict[Settings, VersionedText] = {}


async def current(settings: Settings) -> VersionedText:
    """Read once per process (start-up already checked the file); a changed file needs a restart."""
    notice = _loaded.get(settings)
    if notice is None:
        notice = await asyncio.to_thread(load, settings)
        if len(_loaded) > 16:  # tests make many Settings; a server has one
            _loaded.clear()
        _loaded[settings] = notice
    return notice


async def acknowledged(services: Services, guest: Guest) -> bool:
    """Whether this device (its guest cookie, not just its seat) acknowledged the current notice."""
    notice = await current(services.settings)
    if guest.seat.guest_hash is None:
        return False
    async with services.db.transaction() as tx:
        return await notice_acks.exists(tx, guest.seat.guest_hash, notice.sha256)


async def acknowledge(services: Services, guest: Guest, version: str, sha256: str) -> None:
    """Store and audit the acknowledgement of exactly the words the page showed; once per device."""
    notice = await current(services.settings)
    if (version, sha256) != (notice.version, notice.sha256):
        raise Refusal(409, CHANGED)
    seat = guest.seat
    if seat.guest_hash is None:
        raise Refusal(401, "Please open the link your therapist sent you.")
    async with services.db.transaction() as tx:
        if await notice_acks.exists(tx, seat.guest_hash, notice.sha256):
            return
        now = services.clock.now()
        await notice_acks.insert(
            tx, seat.session_id, seat.seat, seat.guest_hash, notice.version, notice.sha256, now
        )
        await services.audit.append(
            tx,
            actor=f"guest:{seat.session_id}:{seat.seat}",
            action="notice.acknowledge",
            obj=f"session:{seat.session_id}",
            details={"seat": seat.seat, "version": notice.version, "sha256": notice.sha256},
        )
