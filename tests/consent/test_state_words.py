"""What every participant is told about the recording (vsession/consent/indicator.py): one status
with whom it is about, from the recorder's real state and the stored answers, pushed to everyone
alike. End to end with real aiortc peers through an in-process server, and the derivation's rules
on their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.call_client import CallClient
from tests.support.consent_calls import (
    consent_message,
    messages,
    new_prompt,
    start_call,
    until,
    wait_state,
)
from vsession.consent import indicator
from vsession.consent.indicator import Ended, describe, reason_code


def shown(peer: CallClient) -> tuple[str, list[str], str] | None:
    last = peer.last("recording")
    return (last["status"], last["who"], last["reason"]) if last else None


async def everyone_sees(peers: list[CallClient], status: str, who: list[str], reason: str = "") -> None:
    for peer in peers:
        await until(peer, lambda peer=peer: shown(peer) == (status, who, reason))


async def test_every_state_in_order_reaches_everyone(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2)
    t, s1, s2 = rec.peers["t"], rec.peers["s1"], rec.peers["s2"]
    everyone = [t, s1, s2]
    try:
        await everyone_sees(everyone, "not_recording", [])

        await t.send({"type": "record", "action": "request"})
        p1, p2 = await new_prompt(s1, 0), await new_prompt(s2, 0)
        await everyone_sees(everyone, "asking", ["s1", "s2"])
        await s1.send(consent_message(p1, "accept"))
        await everyone_sees(everyone, "asking", ["s2"])

        # A decline: "declined", not a pause that suggests it will resume by itself.
        await s2.send(consent_message(p2, "decline"))
        await everyone_sees(everyone, "declined", ["s2"])
        assert s2.last("recording")["state"] == "paused"  # the recorder's own word is unchanged

        # Asked again, s2 is whom the request waits for again.
        await t.send({"type": "record", "action": "ask_again"})
        again = await new_prompt(s2, 1)
        await everyone_sees(everyone, "asking", ["s2"])
        await s2.send(consent_message(again, "accept"))
        await everyone_sees(everyone, "recording", [])
        assert rec.consent.gate.is_open

        await s1.send({"type": "withdraw"})
        await everyone_sees(everyone, "withdrew", ["s1"])
        assert not rec.consent.gate.is_open

        # Ended after something was written: "stopped", with why.
        await t.send({"type": "record", "action": "stop"})
        await everyone_sees(everyone, "stopped", [], "stopped_by_therapist")

        # A request that ends before anything was written leaves "not recording", not "stopped".
        await t.send({"type": "record", "action": "request"})
        await everyone_sees(everyone, "asking", ["s1", "s2"])
        await t.send({"type": "record", "action": "stop"})
        await everyone_sees(everyone, "not_recording", [], "stopped_by_therapist")
    finally:
        await rec.close()


async def test_a_newcomer_during_a_recording_is_whom_everyone_waits_for(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2, joined=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    try:
        await t.send({"type": "record", "action": "request"})
        await s1.send(consent_message(await new_prompt(s1, 0), "accept"))
        await everyone_sees([t, s1], "recording", [])

        newcomer = rec.client_peer(1)
        rec.peers["s2"] = newcomer
        await newcomer.join()
        # Nobody is told "recording" once the newcomer is in: the call waits for them.
        await until(newcomer, lambda: shown(newcomer) is not None)
        assert next(m["status"] for m in messages(newcomer, "recording")) != "recording"
        await everyone_sees([t, s1, newcomer], "asking", ["s2"])
        await newcomer.send(consent_message(await new_prompt(newcomer, 0), "accept"))
        await everyone_sees([t, s1, newcomer], "recording", [])
        await wait_state(newcomer, "recording")
    finally:
        await rec.close()


def test_a_withdrawal_outranks_a_decline_and_a_decline_outranks_waiting() -> None:
    base: dict[str, Any] = {
        "writing": False,
        "active": True,
        "prompted": (),
        "present": ["t", "s1", "s2", "s3"],
        "arriving": (),
        "ended": indicator.NEVER,
    }
    answers = {"t": "accept", "s1": "pending", "s2": "decline", "s3": "withdraw"}
    assert describe(answers=answers, **base)["status"] == "withdrew"
    assert describe(answers={**answers, "s3": "accept"}, **base) == {
        "status": "declined",
        "who": ["s2"],
        "reason": "",
    }
    # Asked again after a decline: waiting for them, with whoever else has not answered.
    assert describe(answers={**answers, "s3": "accept"}, **{**base, "prompted": ["s2"]}) == {
        "status": "asking",
        "who": ["s1", "s2"],
        "reason": "",
    }
    # An accept still being stored is not an accept yet.
    assert describe(answers={"t": "accept", "s1": "accepting"}, **{**base, "present": ["t", "s1"]})[
        "who"
    ] == ["s1"]


def test_writing_wins_and_an_ended_request_says_how_it_ended() -> None:
    everyone_agreed = {
        "answers": {"t": "accept", "s1": "accept"},
        "prompted": (),
        "present": ["t", "s1"],
        "arriving": (),
        "ended": indicator.NEVER,
    }
    assert describe(writing=True, active=True, **everyone_agreed)["status"] == "recording"
    # All agreed, the recorder not writing yet: nothing is being recorded, and it says so.
    assert describe(writing=False, active=True, **everyone_agreed)["status"] == "not_recording"
    # A join on its way is waited for.
    assert describe(writing=False, active=True, **{**everyone_agreed, "arriving": ["s2"]})["who"] == ["s2"]
    stopped = {**everyone_agreed, "ended": Ended("stopped", "recorder_error")}
    assert describe(writing=False, active=False, **stopped) == {
        "status": "stopped",
        "who": [],
        "reason": "recorder_error",
    }


def test_reasons_carry_no_details() -> None:
    assert reason_code("recorder error: OSError: [Errno 28] /srv/data/recordings/x.age") == "recorder_error"
    assert reason_code("stopped by therapist") == "stopped_by_therapist"
    assert reason_code("therapist disconnected") == "therapist_left"
    assert reason_code("therapist withdrew") == "therapist_withdrew"
    assert reason_code("everyone left") == "session_ended"
