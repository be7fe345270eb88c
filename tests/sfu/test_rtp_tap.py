"""The recorder's side path of the RTP relay, made in the middle of a stream: its first frame is a
whole keyframe (never the tail of a frame that began before it), and its frames are the
publisher's frames byte for byte, which libvpx decodes."""

from __future__ import annotations

import random
from fractions import Fraction

from aiortc import RTCPeerConnection
from aiortc.codecs import depayload
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from av import VideoFrame

from vsession.sfu.keyframes import KeyframeRequester
from vsession.sfu.rtp.rewrite import vp8_keyframe_start
from vsession.sfu.rtp.tap import FrameTap

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def noisy(n: int) -> VideoFrame:
    frame = VideoFrame(320, 240, "yuv420p")
    for plane in frame.planes:
        plane.update(random.Random(n).randbytes(plane.buffer_size))
    frame.pts, frame.time_base = n * 3000, Fraction(1, 90000)
    return frame


async def test_a_tap_made_mid_stream_starts_on_a_whole_keyframe() -> None:
    encoder = Vp8Encoder()
    frames = [encoder.encode(noisy(n), n in (0, 3))[0] for n in range(6)]  # keyframes at 0 and 3
    packets: list[RtpPacket] = []
    for n, payloads in enumerate(frames):
        for i, payload in enumerate(payloads):
            packets.append(
                RtpPacket(
                    payload_type=96,
                    marker=int(i == len(payloads) - 1),
                    sequence_number=1000 + len(packets),
                    timestamp=n * 3000,
                    payload=payload,
                )
            )
    assert len(frames[1]) > 2
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        tap = FrameTap("video", KeyframeRequester(receiver))
        subscription = tap.subscribe()
        # The segment starts in the middle of frame 1 (a delta frame).
        start = len(frames[0]) + 1
        for packet in packets[start:]:
            tap.add(packet, VP8, vp8_keyframe_start(packet.payload))
        got = []
        while subscription._backlog:
            packet = await subscription.get()
            assert packet is not None
            got.append(packet)
        whole = [b"".join(depayload(VP8, p) for p in payloads) for payloads in frames]
        # aiortc's jitter buffer hands a frame on once the next one begins: the last stays inside.
        assert [bytes(p) for p in got] == whole[3:5]
        assert got[0].is_keyframe and subscription.dropped == 0
        decoder = Vp8Decoder()
        assert all(decoder.decode(JitterFrame(bytes(p), 0)) for p in got), "each frame decodes"
        tap.end()
        assert await subscription.get() is None
    finally:
        await pc.close()
