"""One participant's RTCPeerConnection to the server. The server always makes the offers, so the
m-line layout is ours and there is never glare; the page only answers.

An m-line never leaves an SDP: a later offer keeps every m= section in its place (JSEP, RFC 8829
§5.2.2). A new m-line for every forwarded track grew the offers with each rejoin until they passed
the signalling message limit, so a new downstream reuses an inactive m-line of its kind."""

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

from vsession.sfu.forwarding import SenderFeed

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
        self.downstream: dict[RTCRtpTransceiver, Downstream] = {}  # inactive ones stay, to be recycled
        self._feeds: dict[RTCRtpTransceiver, SenderFeed] = {}
        # A downstream's media waits here until the page has answered the offer that says whose it
        # is: until then the page would show it in the tile of whoever the m-line carried before,
        # and the sender of an m-line that is still inactive would throw the first keyframe away.
        self._pending: dict[RTCRtpTransceiver, tuple[int, MediaStreamTrack]] = {}
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
        # Not recycled, unlike downstream m-lines: aiortc 1.16 drops what the page sends before the
        # server has applied the answer that re-enables the receiver, and the stale jitter buffer
        # then waited for the lost packet (seen: a re-share's first keyframe 17 s late).
        transceiver = self.upstream.pop(source, None)
        if transceiver is not None:
            transceiver.direction = "inactive"

    def add_downstream(self, track: MediaStreamTrack, what: Downstream) -> RTCRtpSender:
        """Send `track` on an inactive m-line of its kind if there is one, else on a new one."""
        transceiver = next(
            (t for t, old in self.downstream.items() if not old.active and t.kind == track.kind), None
        )
        if transceiver is not None:
            transceiver.direction = "sendonly"
        else:
            feed = SenderFeed(track.kind)
            transceiver = self.pc.addTransceiver(feed, direction="sendonly")
            _prefer(transceiver)
            self._feeds[transceiver] = feed
        self.downstream[transceiver] = what
        self._pending[transceiver] = (self._offers + 1, track)
        return transceiver.sender

    def drop_downstream(self, peer_id: str, source: str | None = None) -> bool:
        """Stop sending a peer's media (one source or all); the m-line stays, inactive."""
        changed = False
        for transceiver, what in self.downstream.items():
            if what.active and what.peer == peer_id and source in (None, what.source):
                what.active = False
                transceiver.direction = "inactive"
                self._feeds[transceiver].detach()
                pending = self._pending.pop(transceiver, None)
                if pending is not None:
                    pending[1].stop()
                changed = True
        return changed

    async def negotiate(self) -> None:
        """Offer the current layout; if an answer is still due, offer again once it arrives."""
        async with self._lock:
            if self._awaiting_answer:
                self._again = True
                return
            self._awaiting_answer = True
            # createOffer does not yield, so the layout read right after it is the one it offers.
            offer = await self.pc.createOffer()
            self._offers += 1
            streams = [(t, what.peer, what.source) for t, what in self.downstream.items() if what.active]
            upstream = dict(self.upstream)
            await self.pc.setLocalDescription(offer)
            await self._send(self._offer_message(streams, upstream))

    def _offer_message(
        self, streams: list[tuple[RTCRtpTransceiver, str, str]], upstream: dict[str, RTCRtpTransceiver]
    ) -> dict[str, Any]:
        return {
            "type": "offer",
            # The first offer of a new server-side connection: the page must start a new one too.
            "restart": self._offers == 1,
            "sdp": self.pc.localDescription.sdp,
            "upstream": {source: t.mid for source, t in upstream.items()},
            # A recycled mid names its new peer and source here: the page drops the old tile.
            "streams": {
                t.mid: {"peer": peer, "source": source, "kind": t.kind} for t, peer, source in streams
            },
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
            for transceiver, (offer, track) in list(self._pending.items()):
                if offer <= self._offers:
                    del self._pending[transceiver]
                    self._feeds[transceiver].attach(track)
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
        # A sender that never started never stops its track.
        for feed in self._feeds.values():
            feed.stop()
        for _, track in self._pending.values():
            track.stop()
        self._pending.clear()
