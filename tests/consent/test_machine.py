"""The consent machine's rules, end to end with real aiortc peers through an in-process server:
the gate opens only when everyone present has an active accept; a decline keeps the client in the
call; every answer is stored (row and audit entry) against a versioned, hashed consent text;
"ask again" prompts only whoever has no accept; a participant who leaves and returns is asked
again; each segment's metadata and ciphertext SHA-256 are in the DB and the audit chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.consent_calls import (
    audit,
    audit_intact,
    consent_message,
    messages,
    new_prompt,
    record_with_consent,
    recordings,
    refused,
    rows,
    sha256_of,
    start_call,
    state,
    sync,
    until,
    wait_state,
)
from vsession.consent import text as consent_text
from vsession.recording import age


async def test_gate_opens_only_when_everyone_accepts_and_every_answer_is_stored(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2, retention_days=14)
    t, s1, s2 = rec.peers["t"], rec.peers["s1"], rec.peers["s2"]
    services = rec.services
    try:
        await t.send({"type": "record", "action": "request"})
        p1, p2 = await new_prompt(s1, 0), await new_prompt(s2, 0)
        words = consent_text.current(14)
        assert "14 days" in words.text
        assert p1["text"] == words.text and p1["version"] == words.version
        assert p1["request"] == p2["request"]
        request_id = p1["request"]

        # The request, with the version and hash of the words shown, and the therapist's own accept.
        [request] = await rows(services, "SELECT * FROM consent_requests")
        assert (request["id"], request["text_version"], request["text_sha256"]) == (
            request_id,
            words.version,
            words.sha256,
        )
        [asked] = await audit(services, "consent.request")
        assert asked["details"] == {
            "request": request_id,
            "version": words.version,
            "text_sha256": words.sha256,
        }
        assert asked["actor"].endswith(":t")

        # One accept of two: still closed, nothing recorded.
        await s1.send(consent_message(p1, "accept"))
        await until(t, lambda: (t.last("consent_status") or {}).get("answers", {}).get("s1") == "accept")
        assert not rec.consent.gate.is_open
        assert await recordings(services) == []
        assert state(s1) == state(s2) == state(t) == "paused"

        # A decline: the client stays in the call, still sends and receives media, gate closed.
        await s2.send(consent_message(p2, "decline"))
        await until(t, lambda: (t.last("consent_status") or {}).get("answers", {}).get("s2") == "decline")
        assert "s2" in rec.consent.room.members
        assert {p["id"] for p in s2.participants} == {"t", "s1", "s2"}
        got, sent = s2.frames[("t", "camera")], t.frames[("s2", "camera")]
        await until(
            s2, lambda: s2.frames[("t", "camera")] > got + 10 and t.frames[("s2", "camera")] > sent + 10
        )
        assert not rec.consent.gate.is_open
        assert await recordings(services) == []
        assert s2.errors == []

        answers = await rows(services, "SELECT * FROM consent_answers ORDER BY id")
        assert [(a["request_id"], a["participant"], a["prompt_id"], a["answer"]) for a in answers] == [
            (request_id, "t", "request", "accept"),
            (request_id, "s1", p1["prompt"], "accept"),
            (request_id, "s2", p2["prompt"], "decline"),
        ]
        accepts = [
            (e["actor"].rsplit(":", 1)[1], e["details"]) for e in await audit(services, "consent.accept")
        ]
        assert accepts == [("t", {"request": request_id}), ("s1", {"request": request_id})]
        [declined] = await audit(services, "consent.decline")
        assert declined["actor"] == f"participant:{rec.call.session_id}:s2"
        assert declined["details"] == {"request": request_id}

        # Ask again: only the one without an accept is prompted.
        await t.send({"type": "record", "action": "ask_again"})
        again = await new_prompt(s2, 1)
        await sync(s1)
        assert len(messages(s1, "consent_prompt")) == 1
        assert again["request"] == request_id and again["prompt"] != p2["prompt"]

        # Now everyone present accepts: the gate opens and the indicator, from the recorder, says so.
        await s2.send(consent_message(again, "accept"))
        for peer in (t, s1, s2):
            await wait_state(peer, "recording")
        assert rec.consent.gate.is_open
        [writing] = await recordings(services)
        assert writing["state"] == "writing"
        await t.wait_for(lambda: t.frames[("s1", "camera")] > 60)
        await t.send({"type": "record", "action": "stop"})
        for peer in (t, s1, s2):
            await wait_state(peer, "stopped")
    finally:
        await rec.close()

    # The segment's metadata, in the DB and in the audit chain, matching the file on disk.
    [row] = await recordings(services)
    path = services.settings.data_dir / "recordings" / row["file_name"]
    assert (row["session_id"], row["request_id"], row["segment"], row["state"]) == (
        rec.call.session_id,
        request_id,
        1,
        "complete",
    )
    assert sorted(json.loads(row["participants"])) == ["s1", "s2", "t"]
    assert row["ciphertext_sha256"] == sha256_of(path) and row["bytes"] == path.stat().st_size
    [start] = await audit(services, "recording.start")
    assert start["object"] == f"recording:{row['id']}"
    assert start["details"]["session"] == rec.call.session_id
    assert start["details"]["request"] == request_id
    assert start["details"]["segment"] == 1
    assert start["details"]["text_sha256"] == words.sha256
    [stop] = await audit(services, "recording.stop")
    assert stop["object"] == f"recording:{row['id']}" and stop["outcome"] == "complete"
    assert stop["details"]["ciphertext_sha256"] == sha256_of(path)
    assert age.verify(path, age.read_identities(rec.identity)).status == age.Status.COMPLETE
    [ended] = await rows(services, "SELECT * FROM consent_requests")
    assert ended["ended_at"] is not None and ended["end_reason"] == "stopped by therapist"
    await audit_intact(services)


async def test_withdraw_then_ask_again_prompts_only_that_person_and_opens_a_new_segment(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=2)
    t, s1, s2 = rec.peers["t"], rec.peers["s1"], rec.peers["s2"]
    services = rec.services
    try:
        await t.send({"type": "record", "action": "request"})
        p1, p2 = await new_prompt(s1, 0), await new_prompt(s2, 0)
        await s1.send(consent_message(p1, "accept"))
        await s2.send(consent_message(p2, "accept"))
        await wait_state(t, "recording")
        await t.wait_for(lambda: t.frames[("s1", "camera")] > 40)

        await s1.send({"type": "withdraw"})
        for peer in (t, s1, s2):
            await wait_state(peer, "paused")
        assert not rec.consent.gate.is_open
        withdrawn = await rows(services, "SELECT * FROM consent_answers WHERE answer = 'withdraw'")
        assert [(w["request_id"], w["participant"]) for w in withdrawn] == [(p1["request"], "s1")]
        [audited] = await audit(services, "consent.withdraw")
        assert audited["actor"].endswith(":s1") and audited["details"] == {"request": p1["request"]}

        # Ask again: only s1, who withdrew, is prompted; s2's accept still stands.
        await t.send({"type": "record", "action": "ask_again"})
        again = await new_prompt(s1, 1)
        await sync(s2)
        assert len(messages(s2, "consent_prompt")) == 1
        assert again["request"] == p1["request"]
        await s1.send(consent_message(again, "accept"))
        await wait_state(t, "recording")
        await t.wait_for(lambda: t.frames[("s1", "camera")] > 100)
        await t.send({"type": "record", "action": "stop"})
        await wait_state(t, "stopped")
    finally:
        await rec.close()

    segments = await recordings(services)
    assert [(r["request_id"], r["segment"], r["state"]) for r in segments] == [
        (p1["request"], 1, "complete"),
        (p1["request"], 2, "complete"),
    ]
    stops = {e["object"]: e["details"]["ciphertext_sha256"] for e in await audit(services, "recording.stop")}
    for row in segments:
        path = services.settings.data_dir / "recordings" / row["file_name"]
        assert row["ciphertext_sha256"] == stops[f"recording:{row['id']}"] == sha256_of(path)
    assert [e["details"]["segment"] for e in await audit(services, "recording.start")] == [1, 2]
    await audit_intact(services)


async def test_who_leaves_and_comes_back_is_asked_again_and_their_old_accept_is_void(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1)
    t, s1 = rec.peers["t"], rec.peers["s1"]
    services = rec.services
    try:
        first = await record_with_consent(t, s1)

        # The client leaves the call, then comes back on a new device (socket and connection).
        # An explicit leave, answered by "left", so the test knows the server has handled it.
        await s1.send({"type": "leave"})
        await until(s1, lambda: s1.last("left"))
        await s1.close()
        await until(t, lambda: {p["id"] for p in t.participants} == {"t"})
        [void] = await rows(services, "SELECT * FROM consent_answers WHERE answer = 'void'")
        assert (void["request_id"], void["participant"], void["reason"]) == (first["request"], "s1", "left")
        assert [e["actor"][-2:] for e in await audit(services, "consent.void")] == ["s1"]

        back = rec.client_peer(0)
        rec.peers["s1"] = back
        await back.join()
        prompt = await new_prompt(back, 0)
        assert prompt["request"] == first["request"] and prompt["prompt"] != first["prompt"]
        await back.wait_for(lambda: back.frames[("t", "camera")] >= 5)
        # Present again without an accept: nothing is recorded while s1 is in the call.
        await sync(back)
        assert state(back) == "paused"
        assert not rec.consent.gate.is_open
        assert all(r["state"] != "writing" for r in await recordings(services))

        # Their old accept does not count: replaying it is refused.
        error = await refused(back, consent_message(first, "accept"))
        assert "Refused" in error
        assert not rec.consent.gate.is_open

        await back.send(consent_message(prompt, "accept"))
        await wait_state(back, "recording")
        [open_segment] = [r for r in await recordings(services) if r["state"] == "writing"]
        assert sorted(json.loads(open_segment["participants"])) == ["s1", "t"]
        await t.send({"type": "record", "action": "stop"})
        await wait_state(t, "stopped")
    finally:
        await rec.close()
    # Every segment, including the one the leave cut short, was finalised, stored and audited.
    segments = await recordings(services)
    assert sorted(json.loads(segments[0]["participants"])) == ["s1", "t"]
    assert sorted(json.loads(segments[-1]["participants"])) == ["s1", "t"]
    assert [r["state"] for r in segments] == ["complete"] * len(segments)
    stops = {e["object"]: e["details"]["ciphertext_sha256"] for e in await audit(services, "recording.stop")}
    for row in segments:
        path = services.settings.data_dir / "recordings" / row["file_name"]
        assert stops[f"recording:{row['id']}"] == row["ciphertext_sha256"] == sha256_of(path)
    await audit_intact(services)


async def test_requesting_without_a_recording_key_is_refused_clearly(
    inprocess_call: Any, tmp_path: Path
) -> None:
    rec = await start_call(inprocess_call, tmp_path, clients=1, media=False, recording_recipient="")
    t = rec.peers["t"]
    try:
        error = await refused(t, {"type": "record", "action": "request"})
        assert "no recording key" in error and "vsession keys" in error
        assert await rows(rec.services, "SELECT * FROM consent_requests") == []
        assert await audit(rec.services, "consent.request") == []
        assert messages(rec.peers["s1"], "consent_prompt") == []
        assert rec.consent.request is None and not rec.consent.gate.is_open
    finally:
        await rec.close()
