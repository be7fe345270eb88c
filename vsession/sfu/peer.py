"""One participant's RTCPeerConnection to the server. The server always makes the offers, so the
m-line layout is ours and there is never glare; the page only answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

log = logging.getLogger("vsession.sfu")

Send = Callable[[dict[str, Any]], Awaitable[None]]
OnTrack = Callable[["Peer", str, MediaStreamTrack, RTCRtpReceiver], Awaitable[None]]
UPSTREAM = ("microphone", "camera")  # every participant's first two m-lines


@dataclass
class Downstream:
    """What one sending m-line carries: whose media, and which of their sources."""

    peer: str
    source: str
    active: bool = True


def _prefer(transceiver: RTCRtpTransceiver) -> None:
    """VP8 and Opus only, on both legs: one codec per kind keeps forwarding free of surprises."""
    wanted = {"video": "video/VP8", "audio": "audio/opus"}[transceiver.kind]
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType in (wanted, f"{transceiver.kind}/rtx")])


class Peer:
    def __init__(
        self,
        peer_id: str,
        config: RTCConfiguration,
        send: Send,
        on_track: OnTrack,
        prepare_receiver: Callable[[RTCRtpReceiver], None],
    ) -> None:
        self.id = peer_id
        self._prepare_receiver = prepare_receiver
        self.pc = RTCPeerConnection(config)
        self._send = send
        self._on_track = on_track
        self.upstream: dict[str, RTCRtpTransceiver] = {}
        self.downstream: dict[RTCRtpTransceiver, Downstream] = {}
        self._awaiting_answer = False
        self._again = False
        self._offers = 0
        self._lock = asyncio.Lock()
        self.pc.on("track", self._track)
        for source in UPSTREAM:
            self.add_upstream(source)

    def add_upstream(self, source: str) -> None:
        kind = "audio" if source == "microphone" else "video"
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        _prefer(transceiver)
        self._prepare_receiver(transceiver.receiver)
        self.upstream[source] = transceiver

    def drop_upstream(self, source: str) -> None:
        transceiver = self.upstream.pop(source, None)
        if transceiver is not None:
            transceiver.direction = "inactive"

    def add_downstream(self, track: MediaStreamTrack, what: Downstream) -> RTCRtpSender:
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        _prefer(transceiver)
        self.downstream[transceiver] = what
        return transceiver.sender

    def drop_downstream(self, peer_id: str, source: str | None = None) -> bool:
        """Stop sending a peer's media (one source or all); the m-line stays, inactive."""
        changed = False
        for transceiver, what in self.downstream.items():
            if what.active and what.peer == peer_id and source in (None, what.source):
                what.active = False
                transceiver.direction = "inactive"
                changed = True
        return changed

    async def negotiate(self) -> None:
        """Offer the current layout; if an answer is still due, offer again once it arrives."""
        async with self._lock:
            if self._awaiting_answer:
                self._again = True
                return
            self._awaiting_answer = True
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self._send(self._offer_message())

    def _offer_message(self) -> dict[str, Any]:
        streams = {
            t.mid: {"peer": what.peer, "source": what.source, "kind": t.kind}
            for t, what in self.downstream.items()
            if what.active and t.mid is not None
        }
        self._offers += 1
        return {
            "type": "offer",
            # The first offer of a new server-side connection: the page must start a new one too.
            "restart": self._offers == 1,
            "sdp": self.pc.localDescription.sdp,
            "upstream": {source: t.mid for source, t in self.upstream.items()},
            "streams": streams,
        }

    async def answer(self, sdp: str) -> None:
        """Apply the page's answer; raises ValueError for an unexpected or malformed one."""
        async with self._lock:
            if not self._awaiting_answer:
                raise ValueError("No offer is waiting for an answer.")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:  # aiortc raises several types on bad SDP
                raise ValueError(f"The answer could not be applied: {str(exc)[:200]}") from None
            self._awaiting_answer = False
            again, self._again = self._again, False
        if again:
            await self.negotiate()

    async def _track(self, track: MediaStreamTrack) -> None:
        for source, transceiver in self.upstream.items():
            if transceiver.receiver.track is track:
                await self._on_track(self, source, track, transceiver.receiver)
                return

    async def close(self) -> None:
        await self.pc.close()
