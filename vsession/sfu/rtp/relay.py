"""RtpRelay: the Forwarder that moves RTP packets, not frames (setting relay = "rtp").

A publisher's packet is unprotected and parsed once by aiortc's DTLS transport, then rewritten and
protected once per subscriber: no jitter buffer, no depacketizing, no re-packetizing, so nothing
waits in the server. See ingress.py (the publisher's side) and egress.py (each subscriber's).

It is a pass-through relay in the recording service's sense (nothing is transcoded): the recorder
gets encoded frames from a side path (tap.py) that exists only while a segment is written."""

from __future__ import annotations

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

from vsession.sfu.forwarding import Source
from vsession.sfu.passthrough import Forwarded, PassthroughRelay, Subscription
from vsession.sfu.rtp.egress import egress_of
from vsession.sfu.rtp.ingress import Downlink, Ingress
from vsession.sfu.rtp.wire import receive_directly


def ingress_of(receiver: RTCRtpReceiver, forwarded: Forwarded) -> Ingress:
    ingress: Ingress | None = getattr(receiver, "_vsession_ingress", None)
    if ingress is None:
        ingress = Ingress(receiver, forwarded)
        receiver._vsession_ingress = ingress  # type: ignore[attr-defined]
    return ingress


class RtpRelay(PassthroughRelay):
    def __init__(self, direct: bool = True) -> None:
        super().__init__()
        self._made: Downlink | None = None  # subscribe()'s track, until prepare_sender takes it
        self._direct = direct  # publishers' SRTP handled as it arrives (wire.py), not queued

    def prepare_receiver(self, receiver: RTCRtpReceiver) -> None:
        ingress_of(receiver, self.forwarded)

    def add_source(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source:
        ingress = ingress_of(receiver, self.forwarded)
        if self._direct:
            # Now, not in prepare_receiver: the answer that made the track has settled BUNDLE,
            # which replaces a receiver's transport with the bundle's.
            receive_directly(receiver.transport)
        return Source(track, receiver, ingress.keyframes, ingress=ingress)

    def subscribe(self, source: Source) -> MediaStreamTrack:
        assert source.ingress is not None
        self._made = Downlink(source.ingress)
        source.keyframes.request()
        return self._made

    def prepare_sender(self, sender: RTCRtpSender, source: Source) -> None:
        # The room calls this right after subscribe(), for the sender that will carry its track.
        downlink, self._made = self._made, None
        assert downlink is not None and downlink.ingress is source.ingress
        downlink.egress = egress_of(sender)

    def subscribe_packets(self, source: Source) -> Subscription:
        assert source.ingress is not None
        return source.ingress.subscribe_frames()

    async def remove_source(self, source: Source) -> None:
        await source.stop()
        if source.ingress is not None:
            source.ingress.close()
