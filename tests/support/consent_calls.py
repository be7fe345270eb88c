"""Calls with recording set up, for the consent and recording tests: real aiortc peers through an
in-process server, a practice key, and small helpers to ask, answer and inspect."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall
from tests.support.media import ColourTrack
from vsession.audit import verify
from vsession.consent.machine import Consent
from vsession.recording import age
from vsession.store.db import Row

COLOURS = {"t": (220, 40, 40), "s1": (40, 200, 40), "s2": (40, 60, 220)}


@dataclass
class Recorded:
    """A call with a practice key configured, its peers joined and media flowing."""

    call: InProcessCall
    identity: Path
    peers: dict[str, CallClient]

    @property
    def services(self) -> Any:
        return self.call.services

    @property
    def consent(self) -> Consent:
        return self.services.consent(self.call.session_id)

    def client_peer(self, index: int) -> CallClient:
        """A new device (socket and peer connection) for client seat index + 1."""
        pid = f"s{index + 1}"
        url, headers = self.call.ws(self.call.clients[index])
        return CallClient(
            url, headers, {"camera": ColourTrack(COLOURS[pid]), "microphone": AudioStreamTrack()}
        )

    async def close(self) -> None:
        """End any active request first, then hang up, so each test ends with its segment finished
        and audited rather than cut off by the sockets closing."""
        therapist = self.peers.get("t")
        if self.consent.request is not None and therapist is not None:
            with contextlib.suppress(AssertionError, ConnectionError, RuntimeError):
                await therapist.send({"type": "record", "action": "stop"})
                await therapist.wait_for(lambda: self.consent.request is None, patience=10)
        for peer in self.peers.values():
            await peer.close()


async def start_call(
    inprocess_call: Any,
    tmp_path: Path,
    clients: int = 1,
    media: bool = True,
    joined: int | None = None,
    **settings: Any,
) -> Recorded:
    """Admit `clients` clients; the first `joined` of them (default all) join the call."""
    identity_file = tmp_path / "practice-identity.txt"
    identity, recipient = age.generate_identity()
    age.write_identity_file(identity_file, identity, recipient)
    settings.setdefault("recording_recipient", recipient)
    call = await inprocess_call(clients=clients, **settings)
    url, headers = call.ws(call.therapist.agent)
    tracks = {"camera": ColourTrack(COLOURS["t"]), "microphone": AudioStreamTrack()} if media else {}
    peers = {"t": CallClient(url, headers, tracks)}
    recorded = Recorded(call, identity_file, peers)
    for index in range(clients if joined is None else joined):
        peers[f"s{index + 1}"] = (
            recorded.client_peer(index) if media else CallClient(*call.ws(call.clients[index]), {})
        )
    for peer in peers.values():
        await peer.join()
    everyone = set(peers)
    for pid, peer in peers.items():
        if media:
            await peer.wait_for(
                lambda peer=peer, pid=pid: all(peer.frames[(o, "camera")] >= 5 for o in everyone - {pid}),
                patience=30,
            )
        await peer.wait_for(lambda peer=peer: {p["id"] for p in peer.participants} == everyone)
    return recorded


def messages(peer: CallClient, kind: str) -> list[dict[str, Any]]:
    return [m for m in peer.messages if m.get("type") == kind]


def state(peer: CallClient) -> str | None:
    last = peer.last("recording")
    return last["state"] if last else None


async def wait_state(peer: CallClient, wanted: str) -> None:
    await peer.wait_for(lambda: state(peer) == wanted)


async def new_prompt(peer: CallClient, seen: int) -> dict[str, Any]:
    """The consent prompt after the first `seen` ones."""
    await peer.wait_for(lambda: len(messages(peer, "consent_prompt")) > seen)
    return messages(peer, "consent_prompt")[seen]


def consent_message(prompt: dict[str, Any], answer: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "consent",
        "request": prompt["request"],
        "prompt": prompt["prompt"],
        "answer": answer,
        **more,
    }


async def refused(peer: CallClient, message: dict[str, Any]) -> str:
    """Send a message the server must refuse; the error it answers with."""
    before = len(peer.errors)
    await peer.send(message)
    await peer.wait_for(lambda: len(peer.errors) > before)
    return peer.errors[before]


async def sync(peer: CallClient) -> None:
    """A round trip on this peer's socket: whatever the server sent it earlier has arrived."""
    before = len(messages(peer, "pong"))
    await peer.send({"type": "ping"})
    await peer.wait_for(lambda: len(messages(peer, "pong")) > before)


async def until(peer: CallClient, condition: Callable[[], Any]) -> None:
    await peer.wait_for(lambda: bool(condition()))


async def rows(services: Any, sql: str, *params: Any) -> list[Row]:
    return await services.db.fetchall(sql, params)


async def audit(services: Any, action: str) -> list[dict[str, Any]]:
    found = await rows(services, "SELECT * FROM audit_log WHERE action = ? ORDER BY seq", action)
    return [{**dict(r), "details": json.loads(r["details"])} for r in found]


async def recordings(services: Any) -> list[Row]:
    return await rows(services, "SELECT * FROM recordings ORDER BY started_at, segment")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def audit_intact(services: Any) -> None:
    result = await verify(services.db, services.audit_key)
    assert result.ok, result


async def record_with_consent(
    therapist: CallClient, client: CallClient, prompts_seen: int = 0
) -> dict[str, Any]:
    """The therapist asks, the client accepts the prompt, and the recorder really writes."""
    await therapist.send({"type": "record", "action": "request"})
    prompt = await new_prompt(client, prompts_seen)
    await client.send(consent_message(prompt, "accept"))
    await wait_state(therapist, "recording")
    return prompt


async def record_a_segment(therapist: CallClient, client: CallClient) -> None:
    """A consented segment with some 40 frames of the client's camera in it, then stopped."""
    await record_with_consent(therapist, client)
    await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] > 40)
    await therapist.send({"type": "record", "action": "stop"})
    await wait_state(therapist, "stopped")


async def record_once(inprocess_call: Any, tmp_path: Path) -> Recorded:
    """A real call (a therapist and one client) that records one segment, then ends."""
    rec = await start_call(inprocess_call, tmp_path, clients=1)
    try:
        await record_a_segment(rec.peers["t"], rec.peers["s1"])
    finally:
        await rec.close()
    return rec


async def withdraw_then_agree_again(therapist: CallClient, client: CallClient) -> None:
    """The client withdraws (recording pauses); the therapist asks again, the client agrees, and
    the recorder writes again."""
    await client.send({"type": "withdraw"})
    await wait_state(therapist, "paused")
    seen = len(messages(client, "consent_prompt"))
    await therapist.send({"type": "record", "action": "ask_again"})
    await client.send(consent_message(await new_prompt(client, seen), "accept"))
    await wait_state(therapist, "recording")
