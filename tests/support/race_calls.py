"""The parts the end-to-end race rounds (tests.support.race_rounds, tests.support.rejoin_rounds)
are made of: an in-process server that runs outside pytest too, devices (one page of one
participant: a real aiortc CallClient and the camera it sends), and ways to wait and to race."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from aiortc import AudioStreamTrack, MediaStreamTrack

from tests.support.actors import admitted_clients, enrol_therapist, schedule
from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall, free_port
from tests.support.media import ColourTrack, CounterTrack, mean_colour, read_counter
from vsession.app import create_app
from vsession.appkeys import AUTH, SERVICES
from vsession.auth import enrolment
from vsession.config import load_settings

MAX_OFFSET = 0.1  # seconds: the racing events start within about three frames of each other
RED = (220, 40, 40)
KEYFRAME_AFTER = 1.0  # seconds of broken or missing picture before a viewer asks for a keyframe


@contextlib.asynccontextmanager
async def serve_call(root: Path, clients: int, **more: object) -> AsyncIterator[InProcessCall]:
    """tests.support.inprocess's server, outside pytest too: the app on this event loop, a
    therapist enrolled and `clients` clients admitted to a session."""
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": root / "data",
            "port": port,
            "ice_loopback": True,
            "relay": "passthrough",
            **more,
        },
    )
    app = create_app(settings)
    server = TestServer(app, port=port)
    await server.start_server()
    try:
        link = await enrolment.create_link(app[AUTH], None, True)

        def people() -> InProcessCall:
            # Blocking HTTP, so in a thread: the server runs on this event loop.
            therapist = enrol_therapist(settings.origin, link)
            session_id, links = schedule(therapist, clients)
            agents = admitted_clients(settings.origin, therapist, session_id, links)
            return InProcessCall(app[SERVICES], settings.origin, therapist, session_id, agents)

        yield await asyncio.to_thread(people)
    finally:
        await server.close()


@dataclass
class Device:
    """One page of one participant: its socket and peer connection, and the camera it sends."""

    pid: str
    client: CallClient
    camera: MediaStreamTrack
    mark: int = 0  # index into client.messages where the current step began
    errors: int = 0  # len(client.errors) when the current round began
    keyframes_asked: int = 0  # times this page asked for a keyframe because its picture was broken

    @property
    def counter(self) -> int:
        return self.camera.counter if isinstance(self.camera, CounterTrack) else 0


def device(
    call: InProcessCall,
    pid: str,
    base: int = 0,
    colour: tuple[int, int, int] | None = None,
    microphone: bool = True,
) -> Device:
    """A new page for `pid`; its camera stamps counters from base + 1, or shows `colour`."""
    who = call.therapist.agent if pid == "t" else call.clients[int(pid[1:]) - 1]
    url, headers = call.ws(who)
    camera: MediaStreamTrack
    if colour is None:
        camera = CounterTrack()
        camera.counter = base
    else:
        camera = ColourTrack(colour)
    tracks = {"camera": camera, **({"microphone": AudioStreamTrack()} if microphone else {})}
    return Device(pid, CallClient(url, headers, tracks), camera)


def since_mark(d: Device, kind: str) -> list[dict[str, Any]]:
    return [m for m in d.client.messages[d.mark :] if m.get("type") == kind]


def indicator(d: Device) -> str | None:
    last = d.client.last("recording")
    return last["state"] if last else None


def participants(d: Device) -> set[str]:
    return {p["id"] for p in d.client.participants}


def counters(devices: list[Device]) -> dict[str, int]:
    """Per participant, the number of the last frame any of their devices handed to its encoder."""
    found: dict[str, int] = {}
    for d in devices:
        found[d.pid] = max(found.get(d.pid, 0), d.counter)
    return found


async def eventually(
    condition: Callable[[], Any], what: str | Callable[[], str], patience: float = 30
) -> None:
    """Poll until `condition` (sync or async) holds; `what` says what never happened (a callable
    says it with what was seen by then). The limit only stops a broken run from hanging; it
    asserts nothing about speed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.05)


async def at(delay: float, action: Callable[[], Awaitable[object]]) -> None:
    await asyncio.sleep(delay)
    await action()


async def race(actions: dict[str, Callable[[], Awaitable[object]]], offsets: dict[str, float]) -> None:
    """Start each action after its offset, all at once."""
    await asyncio.gather(*(at(offsets[name], action) for name, action in actions.items()))


async def connect(d: Device) -> None:
    """CallClient.join without its join message, so the join can be sent at a chosen moment.
    (For a first device only: a second device's socket replaces the first one on connecting.)"""
    client = d.client
    client._session = aiohttp.ClientSession()
    client._ws = await client._session.ws_connect(client.ws_url, headers=client.headers)
    client._tasks.append(asyncio.create_task(client._read()))


async def send_join(d: Device) -> None:
    await d.client.send({"type": "join"})


async def drop(d: Device) -> None:
    """Cut the socket without a close frame, as a crashed page or a lost network does."""
    ws = d.client._ws
    sock = ws.get_extra_info("socket") if ws is not None else None
    if sock is not None:  # else the server already closed it: a new page's socket replaced it
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


async def leave(d: Device) -> None:
    """Leave with a message, so the server is done with the leaving before the socket goes."""
    d.mark = len(d.client.messages)
    errors = len(d.client.errors)
    with contextlib.suppress(ConnectionError, RuntimeError, AssertionError):
        await d.client.send({"type": "leave"})
        await d.client.wait_for(lambda: bool(since_mark(d, "left")) or len(d.client.errors) > errors, 10)
    await d.client.close()


async def media_report(call: InProcessCall, viewer: Device, sender: Device) -> str:
    """Where the sender's video to the viewer stands, for a failure message: packets the viewer's
    receivers got, and the server's side of the forwarding (its subscription's backlog, and when
    the publisher was last asked for a keyframe)."""
    found = []
    with contextlib.suppress(Exception):
        pc = viewer.client.pc
        for transceiver in pc.getTransceivers() if pc is not None else ():
            if transceiver.kind == "video" and transceiver.receiver.track is not None:
                stats = await transceiver.receiver.getStats()
                got = [(x.packetsReceived, x.packetsLost) for x in stats.values() if x.type == "inbound-rtp"]
                found.append(f"viewer mid {transceiver.mid} received/lost {got}")
    with contextlib.suppress(Exception):
        room = call.services.sfu.rooms[call.session_id]
        for transceiver, what in room.members[viewer.pid].peer.downstream.items():
            if what.peer == sender.pid and what.source == "camera":
                subscription = transceiver.sender.track.subscription
                stats = await transceiver.sender.getStats()
                sent = [x.packetsSent for x in stats.values() if x.type == "outbound-rtp"]
                found.append(
                    f"server mid {transceiver.mid} active {what.active} sent {sent} dropped "
                    f"{subscription.dropped} backlog {len(subscription._backlog)} "
                    f"waiting for a keyframe {subscription._waiting_for_key}"
                )
        keyframes = room.members[sender.pid].sources["camera"].keyframes
        found.append(f"keyframe last asked {time.monotonic() - keyframes._last:.1f} s ago")
    return "; ".join(found)


async def ask_for_keyframe(viewer: Device, pid: str) -> None:
    """What a browser does when the picture it decodes is broken (RFC 4585 6.3.1, PLI). aiortc's
    receiver asks only when its jitter buffer overflows or the decoder fails, so a lost packet on
    a machine this busy can leave its picture broken until the sender's next keyframe (aiortc
    makes one every 3000 frames)."""
    client = viewer.client
    streams = getattr(client, "streams", None) or getattr(client, "_streams", {})  # mid -> whose
    mids = {mid for mid, info in streams.items() if (info["peer"], info["source"]) == (pid, "camera")}
    for transceiver in client.pc.getTransceivers() if client.pc is not None else ():
        if transceiver.mid in mids:
            for source in transceiver.receiver.getSynchronizationSources():
                # aiortc has no public API for this; the SFU uses it too (vsession/sfu/keyframes.py).
                await transceiver.receiver._send_rtcp_pli(source.source)
    viewer.keyframes_asked += 1


async def receives_live_video(viewer: Device, sender: Device, call: InProcessCall | None = None) -> None:
    """More of the sender's camera reaches the viewer, and its latest frame is fresh: stamped by
    this very device since the check began, or the sender's colour (RED). While it is not, the
    viewer asks for a keyframe once a second, as a browser would."""
    pid, start, seen = sender.pid, sender.counter, viewer.client.frames[(sender.pid, "camera")]
    latest: list[object] = [None]  # what the latest frame showed
    loop = asyncio.get_running_loop()
    asked = [loop.time()]

    def shows_it() -> bool:
        frame = viewer.client.last_video.get(pid)
        if viewer.client.frames[(pid, "camera")] < seen + 5 or frame is None:
            return False
        if isinstance(sender.camera, CounterTrack):
            counter = latest[0] = read_counter(frame)
            return counter is not None and start < counter <= sender.counter
        colour = latest[0] = mean_colour(frame)
        return all(abs(a - b) < 40 for a, b in zip(colour, RED, strict=True))

    async def fresh() -> bool:
        if shows_it():
            return True
        if loop.time() - asked[0] > KEYFRAME_AFTER:
            asked[0] = loop.time()
            await ask_for_keyframe(viewer, pid)
        return False

    def seen_by_then() -> str:
        return (
            f"{viewer.pid} receives {pid}'s live video: {viewer.client.frames[(pid, 'camera')] - seen} "
            f"frames since the check began, the latest shows {latest[0]} (sender's counter {start} then, "
            f"{sender.counter} now); all frames {dict(viewer.client.frames)}; errors {viewer.client.errors}"
        )

    try:
        await eventually(fresh, seen_by_then)
    except AssertionError as exc:
        report = "" if call is None else f"; {await media_report(call, viewer, sender)}"
        raise AssertionError(f"{MEDIA}{exc}{report}") from None


async def receives_audio(viewer: Device, pid: str) -> None:
    seen = viewer.client.frames[(pid, "microphone")]
    await eventually(
        lambda: viewer.client.frames[(pid, "microphone")] >= seen + 10, f"{MEDIA}{viewer.pid} hears {pid}"
    )


MEDIA = "media: "  # how a failure of the media checks begins (the call's health, not consent's)


def failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"


def media_only(failures: list[str]) -> bool:
    """Whether every failure of a round is one of the media checks."""
    return bool(failures) and all(f.startswith(MEDIA) for f in failures)
