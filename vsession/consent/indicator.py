"""What every participant is told about the recording: one status, who it is about, and why.

Pages turn this into words ("Asking everyone for consent (waiting for: Sam)"). It is derived
from the recorder's real state and the consent answers, never from what a page asked for, so a
page cannot show "Recording" while nothing is written, nor "Not recording" while something is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NOT_RECORDING = "not_recording"  # no request, or one that ended before anything was written
ASKING = "asking"  # a request waits for answers: `who` is whom it waits for
RECORDING = "recording"  # the recorder is writing now
DECLINED = "declined"  # `who` declined; nothing is written until they are asked again and agree
WITHDREW = "withdrew"  # `who` withdrew their consent; nothing is written
STOPPED = "stopped"  # the request ended after something was recorded: `reason` says why


@dataclass(frozen=True)
class Ended:
    """How the last request ended, for the time after it."""

    status: str  # NOT_RECORDING or STOPPED
    reason: str


NEVER = Ended(NOT_RECORDING, "")


def reason_code(closing: str) -> str:
    """The request's closing reason as a short code: the full text may carry a recorder error's
    details, which are for the server's log, not for every page."""
    if closing.startswith("recorder error"):
        return "recorder_error"
    if closing == "therapist withdrew":
        return "therapist_withdrew"
    if closing.startswith("therapist"):
        return "therapist_left"
    if closing in ("session ended", "everyone left"):
        return "session_ended"
    return "stopped_by_therapist" if closing == "stopped by therapist" else "ended"


def describe(
    *,
    writing: bool,
    active: bool,
    answers: Mapping[str, str],
    prompted: Iterable[str],
    present: Iterable[str],
    arriving: Iterable[str],
    ended: Ended,
) -> dict[str, Any]:
    """The `status`, `who` and `reason` fields of the `recording` message.

    `active`: a request exists and nothing has closed it. `answers`: its answers by participant
    (accept, accepting, pending, decline, withdraw). `prompted`: who holds a prompt they may still
    answer (asked again after a decline or withdrawal). `ended`: how the last request ended."""
    if writing:
        return {"status": RECORDING, "who": [], "reason": ""}
    if not active:
        return {"status": ended.status, "who": [], "reason": ended.reason}
    asked = set(prompted)
    here = sorted(set(present))
    withdrew = [p for p in here if answers.get(p) == "withdraw" and p not in asked]
    if withdrew:
        return {"status": WITHDREW, "who": withdrew, "reason": ""}
    declined = [p for p in here if answers.get(p) == "decline" and p not in asked]
    if declined:
        return {"status": DECLINED, "who": declined, "reason": ""}
    waiting = [p for p in here if answers.get(p) != "accept"]
    waiting += sorted(set(arriving) - set(here))  # a join on its way is asked as it arrives
    if waiting:
        return {"status": ASKING, "who": waiting, "reason": ""}
    # Everyone agreed and the recorder has not written yet (it starts on a keyframe): the truth
    # is that nothing is being recorded.
    return {"status": NOT_RECORDING, "who": [], "reason": ""}
