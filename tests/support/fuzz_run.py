"""Fuzzed frames (tests/support/fuzz_frames.py) sent to a live server over the sockets of a therapist
and two admitted clients, every reply checked; then whether the server is still well and a normal
call between two real aiortc peers still works.

Each socket gets a fresh rate-limit bucket, so the frames go out in short scripts, one socket each:
- probe: up to 18 messages (after a `join` on every other one) and a closing `ping`, within the
  burst and the strike limit, so the socket must stay open: at least one error reply for every
  message the documented schema refuses, and never more error replies than messages;
- flood: 21 refused messages: 21 error replies, then the server closes the socket;
- close: one frame over 64 KiB (close code 1009) or not UTF-8 (1007).
No reply may be empty, non-JSON, or carry a traceback, and the server's log must show no unhandled
error."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.call_server import Call, prepare_call
from tests.support.fuzz_frames import CANNED_SDP, NOT_UTF8, PER_EXAMPLE, STRIKES, TOO_BIG, Frame, generate
from tests.support.live_server import LiveServer
from tests.support.media import ColourTrack, mean_colour

PROBE_SIZE = 18  # a join, 18 messages and a ping stay within the 20 strikes and the burst of 40
PATIENCE = 30.0  # only stops a broken run from hanging; nothing here measures speed
COLOURS = {"t": (220, 40, 40), "s1": (40, 200, 40)}


# ---------------------------------------------------------------------------------------------------
# Scripts: one socket each


@dataclass
class Script:
    mode: str  # "probe", "flood" or "close"
    frames: list[Frame]
    join_first: bool = False


def plan(generated: list[Frame]) -> list[Script]:
    closing = deque(f for f in generated if f.expect in ("too big", "not utf-8"))
    refused = deque(f for f in generated if f.expect == "refused")
    other = deque(f for f in generated if f.expect == "maybe")
    scripts: list[Script] = []
    n = 0
    while closing or refused or other:
        n += 1
        if closing and (n % 6 == 0 or not (refused or other)):
            scripts.append(Script("close", [closing.popleft()], join_first=n % 12 == 0))
        elif n % 5 == 0 and len(refused) > STRIKES:
            scripts.append(Script("flood", [refused.popleft() for _ in range(STRIKES + 1)]))
        else:
            batch: list[Frame] = []
            while len(batch) < PROBE_SIZE and (refused or other):
                # Interleave the two pools, so refused and accepted messages mix on one socket.
                pool = refused if (len(batch) % 2 == 0 and refused) or not other else other
                batch.append(pool.popleft())
            scripts.append(Script("probe", batch, join_first=n % 2 == 0))
    return scripts


@dataclass
class Figures:
    generated: int = 0
    generating: float = 0.0  # seconds
    fuzzing: float = 0.0
    calling: float = 0.0  # the normal call afterwards, until video and audio flow both ways
    sockets: int = 0
    generated_sent: int = 0
    frames_sent: int = 0
    errors: int = 0
    offers: int = 0
    scripts: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    server_closes: Counter[str] = field(default_factory=Counter)
    sentences: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    latest_offer: str | None = None

    def report(self) -> str:
        return "\n".join(
            [
                f"generated {self.generated} frames in {self.generating:.1f} s; sent {self.generated_sent} "
                f"of them ({self.frames_sent} with joins and pings) over {self.sockets} sockets in "
                f"{self.fuzzing:.1f} s; scripts {dict(self.scripts)}; {self.errors} error replies; "
                f"{self.offers} offers; closed by the server: {dict(self.server_closes)}",
                f"categories: {dict(self.categories)}",
                "error sentences:",
                *(f"  {n:5} {s}" for s, n in self.sentences.most_common(25)),
                f"normal call after fuzzing: video and audio both ways in {self.calling:.1f} s",
            ]
        )


class Socket:
    """One fuzzing socket: sends frames, and reads and checks every reply."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, figures: Figures) -> None:
        self.ws = ws
        self.figures = figures
        self.kinds: Counter[str] = Counter()
        self.errors: list[str] = []
        self.offer: str | None = None
        self.close: tuple[int | None, str] | None = None
        self.bad_replies: list[str] = []
        self._news = asyncio.Event()

    async def read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                self._take(message.data)
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                self.close = (self.ws.close_code, str(message.extra or ""))
                break
            else:
                self.bad_replies.append(f"{message.type.name} frame: {str(message.data)[:200]}")
                if message.type == aiohttp.WSMsgType.ERROR:
                    self.close = (self.ws.close_code, "client error")
                    break
            self._news.set()
        self._news.set()

    def _take(self, data: str) -> None:
        if not data.strip() or "Traceback" in data or 'File "' in data:
            self.bad_replies.append(f"reply {data[:300]!r}")
            return
        try:
            reply = json.loads(data)
        except ValueError:
            self.bad_replies.append(f"non-JSON reply {data[:300]!r}")
            return
        if not isinstance(reply, dict) or not isinstance(reply.get("type"), str):
            self.bad_replies.append(f"reply without a type {data[:300]!r}")
            return
        self.kinds[reply["type"]] += 1
        if reply["type"] == "error":
            sentence = reply.get("error")
            if not isinstance(sentence, str) or not sentence.strip():
                self.bad_replies.append(f"error reply without a sentence {data[:300]!r}")
            else:
                self.errors.append(sentence)
        elif reply["type"] == "offer":
            self.offer = self.figures.latest_offer = reply["sdp"]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until the condition holds or the socket closes."""
        while not condition() and self.close is None:
            self._news.clear()
            await self._news.wait()

    async def send(self, frame: Frame) -> None:
        data, text = frame.data, frame.text
        if frame.mutation is not None:
            sdp = frame.mutation.apply(self.offer or self.figures.latest_offer or CANNED_SDP)
            data = json.dumps({"type": "answer", "sdp": sdp}).encode()
        opcode = aiohttp.WSMsgType.TEXT if text else aiohttp.WSMsgType.BINARY
        await self.ws.send_frame(data, opcode)
        self.figures.frames_sent += 1


def describe(script: Script) -> str:
    shown = [
        f"{f.category}/{f.expect}, {len(f.data)} bytes: {f.data[:120]!r}"
        if f.mutation is None
        else f"{f.category}: {f.mutation!r}"[:200]
        for f in script.frames
    ]
    return f"{script.mode} script (join first: {script.join_first}):\n    " + "\n    ".join(shown)


async def run_script(
    session: aiohttp.ClientSession, endpoint: tuple[str, dict[str, str]], script: Script, figures: Figures
) -> None:
    url, headers = endpoint
    try:
        ws = await session.ws_connect(url, headers=headers)
    except (aiohttp.ClientError, ConnectionError) as exc:
        figures.problems.append(f"{describe(script)}\n  -> could not connect: {exc!r}")
        return
    figures.sockets += 1
    figures.scripts[script.mode] += 1
    sock = Socket(ws, figures)
    reader = asyncio.create_task(sock.read())
    problems: list[str] = []
    sent = 0
    try:
        async with asyncio.timeout(PATIENCE):
            if script.join_first:
                await sock.send(Frame("join", b'{"type": "join"}'))
                sent += 1
                # Answers that follow then meet an outstanding offer.
                await sock.until(lambda: sock.offer is not None or bool(sock.errors))
                if sock.offer is None:
                    problems.append(f"join got no offer: {sock.errors}")
            for frame in script.frames:
                if sock.close is not None:
                    break
                await sock.send(frame)
                sent += 1
                figures.generated_sent += 1
                figures.categories[frame.category] += 1
            if script.mode == "probe":
                await sock.send(Frame("ping", b'{"type": "ping"}'))
                sent += 1
                pings = 1 + sum(f.is_ping for f in script.frames)
                await sock.until(lambda: sock.kinds["pong"] >= pings)
                if sock.close is not None:
                    problems.append(f"the server closed a socket that stayed within the limits: {sock.close}")
                refused = sum(f.expect == "refused" for f in script.frames)
                if not refused <= len(sock.errors) <= sent:
                    problems.append(
                        f"{len(sock.errors)} error replies for {refused} refused of {sent} messages"
                    )
                await ws.close()
            elif script.mode == "flood":
                await sock.until(lambda: False)
                if len(sock.errors) != STRIKES + 1:
                    problems.append(f"{len(sock.errors)} error replies to {STRIKES + 1} refused messages")
                if sock.close is None or sock.close[0] in (None, 1006) or sock.close[1] == "client error":
                    problems.append(
                        f"not closed by the server after {STRIKES + 1} refused messages: {sock.close}"
                    )
            else:
                await sock.until(lambda: False)
                want = TOO_BIG if script.frames[0].expect == "too big" else NOT_UTF8
                if sock.close is None or sock.close[0] != want:
                    problems.append(f"closed with {sock.close}, not {want}")
            await reader
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
        await ws.close()
    finally:
        reader.cancel()
    problems.extend(sock.bad_replies)
    figures.errors += len(sock.errors)
    figures.offers += sock.kinds["offer"]
    figures.sentences.update(e[:70] for e in sock.errors)
    if sock.close is not None and script.mode != "probe":
        figures.server_closes[f"{sock.close[0]} {sock.close[1]}".strip()] += 1
    if problems:
        figures.problems.append(f"{describe(script)}\n  -> " + "\n  -> ".join(problems))


async def fuzz(call: Call, scripts: list[Script], figures: Figures) -> None:
    """Sockets for the therapist and each client, one at a time per person, people in parallel."""
    endpoints = [call.therapist_ws()] + [call.client_ws(i) for i in range(len(call.clients))]
    lanes: list[list[Script]] = [scripts[i :: len(endpoints)] for i in range(len(endpoints))]

    async def lane(endpoint: tuple[str, dict[str, str]], mine: list[Script]) -> None:
        async with aiohttp.ClientSession() as session:
            for script in mine:
                if len(figures.problems) >= 10:
                    return
                await run_script(session, endpoint, script, figures)

    await asyncio.gather(*(lane(e, s) for e, s in zip(endpoints, lanes, strict=True)))


def server_failures(log: Path) -> list[str]:
    """Log entries that show an unhandled error: anything at error level or with a traceback."""
    failures = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            failures.append(line[:500])  # not our JSON log: printed by something else
            continue
        if entry.get("level") in ("error", "critical") or "exc" in entry:
            failures.append(line[:2000])
    return failures


def close_to(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) < 40 for x, y in zip(a, b, strict=True))


async def stale_socket(session: aiohttp.ClientSession, endpoint: tuple[str, dict[str, str]]) -> Any:
    """A connection that joined and then went quiet, like a page whose network dropped."""
    url, headers = endpoint
    ws = await session.ws_connect(url, headers=headers)
    await ws.send_str('{"type": "join"}')
    async with asyncio.timeout(PATIENCE):
        while (await ws.receive_json()).get("type") != "offer":
            pass
    return ws


async def normal_call(call: Call) -> None:
    """Two real aiortc peers, therapist and client, each receiving the other's video and audio. Each
    first has an older connection in the call that went quiet; the therapist's closes only once the
    call is up (as when the heartbeat gives up on a dropped page) and must not take the new one out."""
    endpoints = {"t": call.therapist_ws(), "s1": call.client_ws(0)}
    peers = {
        pid: CallClient(url, headers, {"camera": ColourTrack(COLOURS[pid]), "microphone": AudioStreamTrack()})
        for pid, (url, headers) in endpoints.items()
    }
    async with aiohttp.ClientSession() as session:
        stale = [await stale_socket(session, endpoint) for endpoint in endpoints.values()]
        try:
            for peer in peers.values():
                await peer.join()
            for pid, peer in peers.items():
                other = next(o for o in peers if o != pid)
                await peer.wait_for(
                    lambda peer=peer, other=other: (
                        peer.frames[(other, "camera")] >= 30 and peer.frames[(other, "microphone")] >= 50
                    ),
                    patience=45,
                )
                assert close_to(mean_colour(peer.last_video[other]), COLOURS[other]), (pid, other)
                assert {p["id"] for p in peer.participants} == set(peers)
            for ws in stale:
                await ws.close()  # the client's was already closed by the server: replaced
            for pid, peer in peers.items():
                other = next(o for o in peers if o != pid)
                counted = peer.frames[(other, "camera")]
                await peer.wait_for(lambda peer=peer, other=other, counted=counted: (
                    peer.frames[(other, "camera")] >= counted + 30
                    and {p["id"] for p in peer.participants} == set(peers)
                ))  # fmt: skip
                assert peer.errors == []
        finally:
            for peer in peers.values():
                await peer.close()


async def still_well(server: LiveServer, log: Path) -> list[str]:
    """What is wrong with the server after the fuzzing: it died, /healthz fails, or it logged an
    unhandled error."""
    if server.process.poll() is not None:
        return [f"the server died: exit code {server.process.returncode}"]
    async with aiohttp.ClientSession() as session, session.get(server.url + "/healthz") as response:
        health = (await response.json())["status"] if response.status == 200 else None
    problems = [] if health == "ok" else [f"/healthz answered {response.status} {health!r}"]
    return problems + [f"server log: {line}" for line in server_failures(log)]


async def fuzz_then_call(server: LiveServer, log: Path, seed: int, examples: int) -> Figures:
    """`examples` x PER_EXAMPLE frames from hypothesis with this seed, sent to `server` (loopback ICE,
    its log in `log`); then, if nothing went wrong, a normal call (which raises if it fails).
    Whatever went wrong is in the figures' `problems`."""
    figures = Figures()
    started = time.monotonic()
    generated = await generate(examples, seed)
    figures.generated, figures.generating = len(generated), time.monotonic() - started
    call = await prepare_call(server, clients=2)
    started = time.monotonic()
    await fuzz(call, plan(generated), figures)
    figures.fuzzing = time.monotonic() - started
    if figures.problems:
        return figures
    if figures.generated_sent != len(generated) or len(generated) != examples * PER_EXAMPLE:
        figures.problems.append(f"sent {figures.generated_sent} of {len(generated)} generated frames")
    figures.problems.extend(await still_well(server, log))
    if not figures.problems:
        started = time.monotonic()
        await normal_call(call)
        figures.calling = time.monotonic() - started
        figures.problems.extend(await still_well(server, log))
    return figures
