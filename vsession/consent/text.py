"""What people are asked to agree to. Versioned, and hashed into every request, so the record says
exactly which words each person accepted. A changed text gets a new version; never edit one."""

from __future__ import annotations

from vsession.versioned_text import VersionedText

VERSION = "2026-11-v1"
TEXT = (
    "Your therapist asks to record this session.\n\n"
    "What is recorded: the audio and video of everyone in the call, from now until anyone stops "
    "it. Chat and screen shares are not recorded.\n\n"
    "Who can access it: the recording is encrypted as it is written, to a key your therapist's "
    "practice keeps off this server. The server itself cannot play it. Only the practice, holding "
    "that key, can open it.\n\n"
    "How long it is kept: {retention}, then it is deleted automatically.\n\n"
    "Recording starts only when everyone present has agreed. You can stop your consent at any "
    "moment with the button that stays on screen; recording then stops at once. If you decline, "
    "you stay in the session and nothing is recorded."
)


def current(retention_days: int) -> VersionedText:
    retention = f"{retention_days} days" if retention_days else "until the practice deletes it"
    return VersionedText(VERSION, TEXT.format(retention=retention))
