"""Why a recording segment ended: a short code kept in the database and the audit chain (peer ids,
never names, which are personal data erased on schedule), and the plain words a therapist reads.

The consent machine tells a segment why it finishes (vsession/consent/segments.py). When it says
only that consent is no longer complete, the stored answers say who changed it: the first
withdrawal, decline or leave by a recorded participant after the last of their accepts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vsession.store.db import Row

# What the consent machine passes when the gate closed for a participant's answer or presence.
CONSENT_INCOMPLETE = "consent no longer complete"
JOINED = "joined"  # consent was complete, then someone who had not been asked came in
INTERRUPTED = "interrupted: the server stopped while writing"  # found 'writing' at start-up
RECORDER_ERROR = "recorder error"
SERVER_STOPPED = "server stopped"  # a graceful stop (SIGTERM) closed the call under it

# A participant's own event, stored as "<event>:<peer id>": the answers' words, and a leave's reason.
PARTICIPANT_EVENTS = {
    "withdraw": "{} withdrew consent",
    "decline": "{} declined",
    "left": "{} left the call",
    "disconnected": "{} lost their connection",
    "reconnected": "{} reconnected and was asked again",
    "failed to join": "{} lost their connection",
}
THERAPIST_EVENTS = {
    "therapist withdrew": "Recording stopped by the therapist",
    "stopped by therapist": "Recording stopped by the therapist",
    "therapist left": "The therapist left the call",
    "therapist disconnected": "The therapist lost their connection",
    "therapist reconnected": "The therapist reconnected",
    "therapist failed to join": "The therapist lost their connection",
}
CALL_EVENTS = {
    "session ended": "Session ended",
    "everyone left": "Everyone left the call",
    INTERRUPTED: "Server restarted",
    SERVER_STOPPED: "Server restarted",
    CONSENT_INCOMPLETE: "Paused when someone's consent changed",  # rows from before the codes
}


def after_answers(answers: Sequence[Row], recorded: Sequence[str]) -> str:
    """The code for a segment that ended because consent was no longer complete. `answers` are the
    request's rows in order; `recorded`, who the segment recorded (each had accepted)."""
    last_accept = max(
        (r["id"] for r in answers if r["participant"] in recorded and r["answer"] == "accept"), default=0
    )
    for row in answers:
        if row["id"] > last_accept and row["participant"] in recorded and row["answer"] != "accept":
            event = row["reason"] if row["answer"] == "void" else row["answer"]
            if event in PARTICIPANT_EVENTS:
                return f"{event}:{row['participant']}"
    return JOINED


def error(detail: str) -> str:
    return f"{RECORDER_ERROR}: {detail}"


def words(code: str, name: Callable[[str], str], newcomer: tuple[str, str] | None = None) -> str:
    """Plain words for a stored code. `name` gives a participant's name from their peer id;
    `newcomer` is who came in after a JOINED end, with their first answer, if known."""
    event, _, peer = code.rpartition(":")
    if event in PARTICIPANT_EVENTS and peer:
        return PARTICIPANT_EVENTS[event].format(name(peer))
    if code == JOINED:
        if newcomer is None:
            return "Paused while someone joined the call"
        who, answer = newcomer
        if answer == "decline":
            return f"{name(who)} joined the call and declined"
        return f"Paused while {name(who)} joined the call"
    if code in THERAPIST_EVENTS:
        return THERAPIST_EVENTS[code]
    if code in CALL_EVENTS:
        return CALL_EVENTS[code]
    if code.startswith(RECORDER_ERROR):
        # The detail is for the server's log; a full disk is the one a therapist can act on.
        return "Recorder error: the server's disk was full" if "No space left" in code else "Recorder error"
    return code[:1].upper() + code[1:] if code else "Ended"
