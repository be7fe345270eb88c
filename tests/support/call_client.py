"""A real aiortc participant speaking our signalling protocol (docs/signaling.md): joins a call
over /ws, answers the server's offers, publishes given tracks and counts what it receives.

The server reuses inactive m-lines for what it forwards, so a mid can carry another participant (or
source) in a later offer. Frames are therefore counted under the (peer, source) that the latest offer
gives their mid when each frame arrives, not under what the mid carried when its track appeared."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame


class CallClient:
    def __init__(
        self,
        ws_url: str,
        headers: dict[str, str],
        tracks: dict[str, MediaStreamTrack],
        on_frame: Callable[[str, str, Any], None] | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.headers = headers
        self.tracks = tracks  # source ("camera", "microphone", "screen") -> track
        self.on_frame = on_frame
        self.frames: Counter[tuple[str, str]] = Counter()  # (peer, source) -> frames received
        self.last_video: dict[str, VideoFrame] = {}  # peer -> its latest video frame, any source
        self.latest: dict[tuple[str, str], VideoFrame] = {}  # (peer, source) -> latest video frame
        self.participants: list[dict[str, Any]] = []
        self.chat: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.messages: list[dict[str, Any]] = []  # everything else the server said, in order
        self.offers = 0
        self.last_offer: dict[str, Any] | None = None
        self.pc: RTCPeerConnection | None = None
        self.streams: dict[str, dict[str, Any]] = {}  # mid -> {peer, source, kind}, latest offer
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.joined = asyncio.Event()

    async def join(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.ws_url, headers=self.headers)
        self._tasks.append(asyncio.create_task(self._read()))
        await self.send({"type": "join"})

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_json(message)

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            kind = data.get("type")
            if kind == "offer":
                await self._answer(data)
            elif kind == "participants":
                self.participants = data["list"]
            elif kind == "chat":
                self.chat.append(data)
            elif kind == "joined":
                self.joined.set()
            elif kind == "error":
                self.errors.append(data["error"])
            else:
                self.messages.append(data)

    async def _answer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        self.last_offer = offer
        self.streams = offer["streams"]
        if self.pc is None:
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.pc.on("track", self._track)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        for source, mid in offer["upstream"].items():
            track = self.tracks.get(source)
            for transceiver in self.pc.getTransceivers():
                if transceiver.mid == mid and track is not None and transceiver.sender.track is None:
                    transceiver.direction = "sendonly"
                    transceiver.sender.replaceTrack(track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})

    def _track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        assert mid is not None
        self._tasks.append(asyncio.create_task(self._count(track, mid)))

    async def _count(self, track: MediaStreamTrack, mid: str) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                info = self.streams.get(mid)
                if info is None:
                    continue  # a frame still on its way when the mid went inactive
                peer, source = info["peer"], info["source"]
                self.frames[(peer, source)] += 1
                if isinstance(frame, VideoFrame):
                    self.last_video[peer] = frame
                    self.latest[(peer, source)] = frame
                if self.on_frame is not None:
                    self.on_frame(peer, source, frame)

    async def share_screen(self, track: MediaStreamTrack) -> None:
        self.tracks["screen"] = track
        await self.send({"type": "screen", "on": True})

    async def stop_screen(self) -> None:
        self.tracks.pop("screen", None)
        await self.send({"type": "screen", "on": False})

    def last(self, kind: str) -> dict[str, Any] | None:
        return next((m for m in reversed(self.messages) if m.get("type") == kind), None)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def wait_for(self, condition: Callable[[], bool], patience: float = 20) -> None:
        """Poll until `condition` holds; fail with what was seen if it never does. The limit only
        stops a broken run from hanging; it asserts nothing about speed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while not condition():
            if loop.time() > deadline:
                raise AssertionError(f"never happened; frames={dict(self.frames)} errors={self.errors}")
            await asyncio.sleep(0.05)
