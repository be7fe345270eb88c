"""Forged consent messages over the WebSocket, with real aiortc peers and media flowing: a client
that asks to start (or stop, or re-prompt) a recording, answers for someone else, replays an answer
to an old request or prompt, or accepts after withdrawing without a new prompt is refused with an
error, changes nothing (the gate stays as it was, no recording row, the indicator unchanged) and
leaves a `consent.forgery` entry, outcome 'refused', saying why, in the audit chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.support.consent_calls import (
    audit,
    audit_intact,
    consent_message,
    new_prompt,
    record_with_consent,
    recordings,
    refused,
    rows,
    start_call,
    state,
    sync,
    until,
    wait_state,
)


async def forgeries(services: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(peer id, outcome, details) of every consent.forgery audit entry, oldest first."""
    return [
        (e["actor"].rsplit(":", 1)[1], e["outcome"], e["details"])
        for e in await audit(services, "consent.forgery")
    ]


async def test_a_client_cannot_start_stop_or_reprompt_a_recording(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    try:
        error = await refused(s1, {"type": "record", "action": "request"})
        assert error.startswith("Refused")
        assert await rows(services, "SELECT * FROM consent_requests") == []
        assert await recordings(services) == []
        assert rec.consent.request is None and not rec.consent.gate.is_open
        await sync(t)
        assert state(t) == state(s1) == "stopped"
        assert await forgeries(services) == [("s1", "refused", {"why": "a client asked to start recording"})]

        # A real recording; the client may neither stop it nor prompt anyone.
        await record_with_consent(t, s1)
        for action, why in (
            ("stop", "a client asked to stop the therapist's request"),
            ("ask_again", "a client asked to prompt others"),
        ):
            error = await refused(s1, {"type": "record", "action": action})
            assert error.startswith("Refused")
            assert (await forgeries(services))[-1] == ("s1", "refused", {"why": why})
            assert rec.consent.gate.is_open and rec.consent.request is not None
            await sync(t)
            await sync(s1)
            assert state(t) == state(s1) == "recording"
            assert [r["state"] for r in await recordings(services)] == ["writing"]
        assert len(await rows(services, "SELECT * FROM consent_requests")) == 1
    finally:
        await rec.close()
    assert len(await forgeries(services)) == 3
    await audit_intact(services)


async def test_answering_for_another_participant_is_refused(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2)
    t, s1, s2 = rec.peers["t"], rec.peers["s1"], rec.peers["s2"]
    services = rec.services
    try:
        await t.send({"type": "record", "action": "request"})
        p1 = await new_prompt(s1, 0)
        await new_prompt(s2, 0)
        # s1 accepts for themself, then tries to accept for s2, who has not answered.
        await s1.send(consent_message(p1, "accept"))
        await until(t, lambda: (t.last("consent_status") or {}).get("answers", {}).get("s1") == "accept")
        error = await refused(s1, consent_message(p1, "accept", participant="s2"))
        assert error.startswith("Refused")
        assert await forgeries(services) == [
            ("s1", "refused", {"why": "answered for another participant", "claimed": "s2"})
        ]
        assert not rec.consent.gate.is_open
        assert rec.consent.request is not None and rec.consent.request.answers["s2"] == "pending"
        assert await rows(services, "SELECT * FROM consent_answers WHERE participant = 's2'") == []
        assert await recordings(services) == []
        for peer in (t, s1, s2):
            await sync(peer)
            assert state(peer) == "paused"
        # And for the therapist, whose answer is already in.
        await refused(s2, consent_message(p1, "decline", participant="t"))
        assert (await forgeries(services))[-1][0] == "s2"
        assert rec.consent.request.answers["t"] == "accept"
    finally:
        await rec.close()
    await audit_intact(services)


async def test_replayed_answers_are_refused(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    try:
        old = await record_with_consent(t, s1)
        await t.send({"type": "record", "action": "stop"})
        await wait_state(t, "stopped")

        await t.send({"type": "record", "action": "request"})
        current = await new_prompt(s1, 1)
        assert current["request"] != old["request"]
        # The accept of the earlier request, replayed.
        await refused(s1, consent_message(old, "accept"))
        assert (await forgeries(services))[-1] == (
            "s1",
            "refused",
            {"why": "answered a request that is not the active one"},
        )
        assert not rec.consent.gate.is_open
        await sync(s1)
        assert state(s1) == "paused"
        assert [r["request_id"] for r in await recordings(services)] == [old["request"]]

        # The current request, with a prompt that was never issued.
        await refused(s1, {**consent_message(current, "accept"), "prompt": old["prompt"]})
        # An answer to the current prompt, then the same prompt replayed with another answer.
        await s1.send(consent_message(current, "decline"))
        await until(t, lambda: (t.last("consent_status") or {}).get("answers", {}).get("s1") == "decline")
        await refused(s1, consent_message(current, "accept"))
        why = "answered without a current prompt (replayed, or after withdrawing)"
        assert [f[2]["why"] for f in await forgeries(services)][-2:] == [why, why]
        assert not rec.consent.gate.is_open
        await sync(t)
        assert state(t) == "paused"
        assert len(await recordings(services)) == 1
        answers = await rows(
            services,
            "SELECT answer FROM consent_answers WHERE request_id = ? AND participant = 's1'",
            current["request"],
        )
        assert [a["answer"] for a in answers] == ["decline"]
    finally:
        await rec.close()
    await audit_intact(services)


async def test_accepting_after_withdrawing_needs_a_new_prompt(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    try:
        prompt = await record_with_consent(t, s1)
        await s1.send({"type": "withdraw"})
        await wait_state(t, "paused")

        await refused(s1, consent_message(prompt, "accept"))
        assert await forgeries(services) == [
            ("s1", "refused", {"why": "answered without a current prompt (replayed, or after withdrawing)"})
        ]
        assert not rec.consent.gate.is_open
        await sync(t)
        await sync(s1)
        assert state(t) == state(s1) == "paused"
        assert [r["state"] for r in await recordings(services)] == ["complete"]

        # A fresh prompt from the therapist is what makes an accept count again.
        await t.send({"type": "record", "action": "ask_again"})
        again = await new_prompt(s1, 1)
        await s1.send(consent_message(again, "accept"))
        await wait_state(t, "recording")
        assert [r["segment"] for r in await recordings(services)] == [1, 2]
        assert len(s1.errors) == 1  # only the one refusal
    finally:
        await rec.close()
    await audit_intact(services)


async def test_a_guest_not_in_the_call_is_refused(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2, joined=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    url, headers = rec.call.ws(rec.call.clients[1])
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as outsider:

        async def outsider_says(message: dict[str, Any]) -> dict[str, Any]:
            await outsider.send_json(message)
            while True:
                reply = await outsider.receive_json(timeout=10)
                if reply["type"] == "error":
                    return reply

        try:
            prompt = await record_with_consent(t, s1)

            for message in (
                {"type": "withdraw"},
                consent_message(prompt, "decline"),
                consent_message(prompt, "accept"),
            ):
                reply = await outsider_says(message)
                assert reply["error"] == "Join the call first."
                assert rec.consent.gate.is_open
            for action in ("stop", "request"):
                reply = await outsider_says({"type": "record", "action": action})
                assert reply["error"].startswith("Refused")
            assert [(who, outcome) for who, outcome, _ in await forgeries(services)] == [
                ("s2", "refused"),
                ("s2", "refused"),
            ]
            assert "s2" not in rec.consent.room.members
            assert rec.consent.gate.is_open
            await sync(t)
            assert state(t) == "recording"
            assert [r["state"] for r in await recordings(services)] == ["writing"]
            answers = await rows(services, "SELECT participant FROM consent_answers")
            assert sorted(a["participant"] for a in answers) == ["s1", "t"]
        finally:
            await rec.close()
    await audit_intact(services)


async def test_garbage_answers_get_a_schema_error(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1, media=False)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    try:
        await t.send({"type": "record", "action": "request"})
        prompt = await new_prompt(s1, 0)
        assert (
            await refused(s1, consent_message(prompt, "maybe"))
            == "A consent answer is 'accept' or 'decline'."
        )
        assert (
            await refused(s1, consent_message(prompt, "withdraw"))
            == "A consent answer is 'accept' or 'decline'."
        )
        assert (
            await refused(s1, {"type": "consent", "request": prompt["request"], "answer": "accept"})
            == "'consent' needs a str field 'prompt'."
        )
        assert await refused(s1, {**consent_message(prompt, "accept"), "request": 7}) == (
            "'consent' needs a str field 'request'."
        )
        assert (await refused(s1, {"type": "record", "action": "start"})).startswith(
            "'record' action is one of"
        )
        # None of it reached the consent machine: nothing stored, the prompt still good.
        assert await forgeries(services) == []
        answers = await rows(services, "SELECT participant FROM consent_answers")
        assert [a["participant"] for a in answers] == ["t"]
        assert rec.consent.request is not None and rec.consent.request.prompts["s1"] == prompt["prompt"]
        assert not rec.consent.gate.is_open
    finally:
        await rec.close()
