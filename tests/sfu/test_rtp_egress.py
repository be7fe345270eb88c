"""One subscriber's outgoing stream in the RTP relay, on a real aiortc sender: the payload type is
this leg's, video starts on a keyframe, a publisher's new SSRC starts a new stretch of the same
line, a NACK is answered with an RTX packet of what was sent, and the sender's SR carries the
publisher's clock in this stream's timestamps."""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from vsession.sfu.passthrough import Forwarded
from vsession.sfu.rtp.egress import ABS_SEND_TIME, MID, egress_of
from vsession.sfu.rtp.ingress import Ingress

KEY = b"\x10\x00\x9d\x01\x2a"  # descriptor S=1 PID=0, then a frame whose P bit is 0
DELTA = b"\x10\x01\x00\x00"
INCOMING_VP8 = 120  # the publisher leg's payload type, unlike this leg's
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri=MID),
    RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME),
]


def parameters() -> RTCRtpSendParameters:
    return RTCRtpSendParameters(
        codecs=[
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
            ),
        ],
        headerExtensions=EXTENSIONS,
        muxId="5",
    )


def parse(data: bytes) -> RtpPacket:
    ids = HeaderExtensionsMap()
    ids.configure(RTCRtpParameters(headerExtensions=EXTENSIONS))
    return RtpPacket.parse(data, ids)


def incoming(seq: int, ts: int, payload: bytes, ssrc: int = 1111) -> RtpPacket:
    packet = RtpPacket(
        payload_type=INCOMING_VP8, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload
    )
    packet.extensions.mid = "0"  # the publisher leg's mid: never passed on
    return packet


async def test_an_egress_rewrites_starts_on_keyframes_and_answers_nacks() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        egress = egress_of(sender)
        assert egress_of(sender) is egress, "one egress per sender, for its whole life"
        assert egress.forward(incoming(10, 0, KEY), "vp8", True) is None, "nothing before negotiation"
        await sender.send(parameters())  # the wrapped send learns this leg's parameters
        assert egress.forward(incoming(11, 3000, DELTA), "vp8", False) is None, "video starts on a keyframe"
        first = egress.forward(incoming(12, 6000, KEY), "vp8", True)
        assert first is not None
        out = parse(first)
        assert (out.payload_type, out.ssrc, out.extensions.mid, out.payload) == (96, sender._ssrc, "5", KEY)
        assert out.extensions.abs_send_time is not None
        second = egress.forward(incoming(13, 9000, DELTA), "vp8", False)
        assert second is not None and parse(second).sequence_number == (out.sequence_number + 1) % 65536
        assert egress.forward(incoming(14, 9000, DELTA), "h264", False) is None, "no payload type for it here"

        # The publisher's stream comes back under another SSRC: same line, from a keyframe on.
        assert egress.forward(incoming(40_000, 5, DELTA, ssrc=2222), "vp8", False) is None
        restarted = egress.forward(incoming(40_001, 3005, KEY, ssrc=2222), "vp8", True)
        assert restarted is not None
        assert parse(restarted).sequence_number == (out.sequence_number + 2) % 65536
        assert parse(restarted).ssrc == sender._ssrc

        sent: list[bytes] = []

        def capture(data: bytes) -> bool:
            sent.append(data)
            return True

        egress.transmit = capture  # type: ignore[method-assign]  # the socket, which needs a connection
        await sender._retransmit(out.sequence_number)  # what aiortc calls for each NACKed number
        await sender._retransmit((out.sequence_number + 100) % 65536)  # never sent: no answer
        [rtx] = sent
        resent = parse(rtx)
        assert (resent.payload_type, resent.ssrc) == (97, sender._rtx_ssrc)
        original = unwrap_rtx(resent, payload_type=96, ssrc=sender._ssrc)
        assert (original.sequence_number, original.timestamp, original.payload) == (
            out.sequence_number,
            out.timestamp,
            KEY,
        )
        assert egress.retransmitted == 1

        # The publisher's SR (its NTP time, and its RTP time then) goes out in this line's terms.
        egress.sender_report(0x1234_5678_9ABC_DEF0, 3005 + 90000)
        assert sender._RTCRtpSender__ntp_timestamp == 0x1234_5678_9ABC_DEF0  # type: ignore[attr-defined]
        expected = (parse(restarted).timestamp + 90000) % (1 << 32)
        assert sender._RTCRtpSender__rtp_timestamp == expected  # type: ignore[attr-defined]
        assert sender._RTCRtpSender__packet_count == 3  # type: ignore[attr-defined]
    finally:
        await pc.close()


async def test_a_failing_subscriber_does_not_end_the_publishers_connection() -> None:
    """The ingress runs inside the publisher's DTLS receive loop: an error while forwarding to
    one subscriber is counted and logged, never raised into that loop, and the others still get
    the packet."""
    publisher, subscriber = RTCPeerConnection(), RTCPeerConnection()
    try:
        receiver = publisher.addTransceiver("video", direction="recvonly").receiver
        ingress = Ingress(receiver, Forwarded())
        vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=INCOMING_VP8)
        receiver._RTCRtpReceiver__codecs[INCOMING_VP8] = vp8  # type: ignore[attr-defined]  # as receive() does
        good, bad = (egress_of(subscriber.addTransceiver("video", direction="sendonly").sender) for _ in "ab")
        sent: list[bytes] = []
        for egress in (bad, good):
            await egress.sender.send(parameters())

            def capture(data: bytes) -> bool:
                sent.append(data)
                return True

            egress.transmit = capture  # type: ignore[method-assign]
            ingress.egresses.add(egress)

        def broken(*args: object) -> bytes:
            raise RuntimeError("a bug in forwarding")

        bad.forward = broken  # type: ignore[method-assign]
        await receiver._handle_rtp_packet(incoming(1, 0, KEY), arrival_time_ms=0)
        assert ingress.failures == 1
        [only] = sent
        assert parse(only).payload == KEY and parse(only).ssrc == good.ssrc, "the others still got it"
        await receiver._handle_rtp_packet(incoming(2, 0, DELTA), arrival_time_ms=1)
        assert ingress.failures == 2 and parse(sent[-1]).payload == DELTA
    finally:
        await publisher.close()
        await subscriber.close()
