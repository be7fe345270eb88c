"""Janus Gateway's VideoRoom driven from Python, for scripts/bench_relay.py --peer janus: the same
1:1 sessions as vsession's, made of the same aiortc participants and load (scripts/relay_load.py).

A session is a VideoRoom room with two publishers. Each participant, in its own process, has one
Janus session over the HTTP API (long-polled for events) and two handles: a publisher handle
whose peer connection sends its video and audio, and a subscriber handle whose peer connection
receives the other participant's. That is Janus's own way to do what vsession does with one peer
connection per participant: each publishes, and subscribes to the other.

Janus answers and offers with all its candidates in the SDP (no trickle either way), as aiortc
does, so one message carries each description."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import urllib.request
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from relay_load import (
    Clip,
    LightReceiver,
    Probe,
    StampedVideoTrack,
    consume,
    consume_encoded,
    logged_tracks,
    pin_video_bitrate,
    prefer_codecs,
    quietly,
    serve,
)
from replay_media import EncodedMedia, ReplayVideoTrack

from vsession.sfu.ice import offer_loopback
from vsession.sfu.passthrough import receive_encoded

PLUGIN = "janus.plugin.videoroom"
NO_SUCH_FEED = 428  # VideoRoom's error while the other participant has not published yet
_transactions = itertools.count(1)


class JanusError(Exception):
    pass


@dataclass(frozen=True)
class JanusSpec:
    """One participant of a session in a VideoRoom room: publishes as `feed`, receives `other`."""

    name: str
    url: str  # the HTTP API's base, http://127.0.0.1:<port>/janus
    room: int
    feed: int
    other: int


def transaction() -> str:
    return f"t{next(_transactions)}"


def create_rooms(url: str, rooms: list[int]) -> None:
    """Rooms for two publishers each, VP8 and Opus as vsession negotiates (synchronous: the parent)."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            url + path, json.dumps({**body, "transaction": transaction()}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
        if reply.get("janus") != "success":
            raise JanusError(f"{body}: {reply}")
        return reply

    session = post("", {"janus": "create"})["data"]["id"]
    handle = post(f"/{session}", {"janus": "attach", "plugin": PLUGIN})["data"]["id"]
    for room in rooms:
        body = {"request": "create", "room": room, "publishers": 2, "audiocodec": "opus", "videocodec": "vp8"}
        reply = post(f"/{session}/{handle}", {"janus": "message", "body": body})
        data = reply["plugindata"]["data"]
        if data.get("videoroom") != "created":
            raise JanusError(f"room {room}: {data}")
    post(f"/{session}", {"janus": "destroy"})


class JanusSession:
    """One Janus session over the HTTP API; plugin events come back by transaction."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._http = aiohttp.ClientSession()
        self._id: int | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self._http.post(self._url + path, json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {reply.get('error')}")
        return reply

    async def create(self) -> None:
        reply = await self._post("", {"janus": "create", "transaction": transaction()})
        self._id = reply["data"]["id"]
        self._poller = asyncio.create_task(self._poll())

    async def attach(self) -> int:
        reply = await self._post(
            f"/{self._id}", {"janus": "attach", "plugin": PLUGIN, "transaction": transaction()}
        )
        return int(reply["data"]["id"])

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin request and wait for its event: (plugin data, jsep or None)."""
        name = transaction()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[name] = waiter
        message: dict[str, Any] = {"janus": "message", "transaction": name, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            await self._post(f"/{self._id}/{handle}", message)
            event = await asyncio.wait_for(waiter, 30)
        finally:
            self._waiting.pop(name, None)
        return event["plugindata"]["data"], event.get("jsep")

    async def _poll(self) -> None:
        """Long-poll for events; this also keeps the session alive."""
        while True:
            try:
                async with self._http.get(f"{self._url}/{self._id}?maxev=10") as response:
                    events = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                waiter = self._waiting.get(event.get("transaction", ""))
                if waiter is not None and not waiter.done() and event.get("janus") == "event":
                    waiter.set_result(event)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._id is not None:
            with contextlib.suppress(Exception):
                await self._post(f"/{self._id}", {"janus": "destroy", "transaction": transaction()})
        await self._http.close()


def offer_of(pc: RTCPeerConnection) -> dict[str, Any]:
    return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp, "trickle": False}


class JanusParticipant:
    """Publishes `tracks` in the room as `spec.feed` and subscribes to `spec.other`."""

    def __init__(self, spec: JanusSpec, tracks: list[MediaStreamTrack], encoded: bool) -> None:
        self.spec = spec
        self.tracks = tracks
        self.encoded = encoded  # hand over encoded frames instead of decoding (the light load)
        self.session = JanusSession(spec.url)
        self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received: list[MediaStreamTrack] = []
        self.late_receivers: list[str] = []
        self.subscriber.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.encoded:
            receiver = next(
                t.receiver for t in self.subscriber.getTransceivers() if t.receiver.track is track
            )
            if not receive_encoded(receiver):
                self.late_receivers.append(track.kind)
        self.received.append(track)

    async def join(self) -> None:
        await self.session.create()
        await self._publish(await self.session.attach())
        await self._subscribe(await self.session.attach())

    async def _publish(self, handle: int) -> None:
        join = {"request": "join", "ptype": "publisher", "room": self.spec.room, "id": self.spec.feed}
        data, _ = await self.session.message(handle, join)
        if data.get("videoroom") != "joined":
            raise JanusError(f"join as publisher: {data}")
        for track in self.tracks:
            prefer_codecs(self.publisher.addTransceiver(track, direction="sendonly"))
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        data, answer = await self.session.message(handle, {"request": "publish"}, offer_of(self.publisher))
        if answer is None:
            raise JanusError(f"publish: no answer ({data})")
        await self.publisher.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        for transceiver in self.publisher.getTransceivers():
            if isinstance(transceiver.sender.track, ReplayVideoTrack):
                transceiver.sender.track.attach(transceiver.sender)  # PLI/FIR rewind to the keyframe

    async def _subscribe(self, handle: int) -> None:
        join = {
            "request": "join",
            "ptype": "subscriber",
            "room": self.spec.room,
            "streams": [{"feed": self.spec.other}],
        }
        for _ in range(300):  # the other participant publishes in its own time
            data, offer = await self.session.message(handle, join)
            if data.get("error_code") != NO_SUCH_FEED:
                break
            await asyncio.sleep(0.1)
        if offer is None:
            raise JanusError(f"join as subscriber: {data}")
        await self.subscriber.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        data, _ = await self.session.message(handle, {"request": "start"}, offer_of(self.subscriber))
        if data.get("started") != "ok":
            raise JanusError(f"start: {data}")

    async def close(self) -> None:
        await quietly(self.publisher.close())
        await quietly(self.subscriber.close())
        await quietly(self.session.close())


def janus_participant_process(spec: JanusSpec, control: Connection, load: EncodedMedia | int) -> None:
    """Process entry point: a light participant when `load` is the replayed media, a full one
    (live encoding, decoding, stamped video) when it is the pinned video bitrate."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the parent stops workers
    if isinstance(load, int):
        pin_video_bitrate(load)
    asyncio.run(_janus_participant(spec, control, load))


async def _janus_participant(spec: JanusSpec, control: Connection, load: EncodedMedia | int) -> None:
    offer_loopback(True)  # Janus offers only 127.0.0.1 here (scripts/janus_server.py)
    probe = Probe(spec.name)
    readers: list[asyncio.Task[None]] = []
    if isinstance(load, int):
        participant = JanusParticipant(spec, [AudioStreamTrack(), StampedVideoTrack(Clip())], encoded=False)
    else:
        receiver = LightReceiver(probe, load)
        video, audio = logged_tracks(load, probe)
        participant = JanusParticipant(spec, [audio, video], encoded=True)
    try:
        await participant.join()
        for track in participant.received:
            reader = consume(track, probe) if isinstance(load, int) else consume_encoded(track, receiver)
            readers.append(asyncio.create_task(reader))
    except Exception as exc:  # reported to the parent, which prints it
        probe.recording.error = f"join failed: {exc!r}"
    if participant.late_receivers:
        probe.recording.bad.append(f"receivers already started when prepared: {participant.late_receivers}")

    def report() -> None:
        if not isinstance(load, int):
            probe.recording.keyframe_requests = video.keyframe_requests

    try:
        pcs = [participant.publisher, participant.subscriber]
        await serve(control, probe, lambda: pcs, before_report=report)
    finally:
        for task in readers:
            task.cancel()
        await participant.close()
