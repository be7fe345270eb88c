"""The RTP relay's packet-level parts: sequence numbers and timestamps carry on across sources and
wraps, packets from before a source switch are not sent, VP8 keyframe starts are recognised, and
what the relay writes is what aiortc (and so a browser) parses, retransmissions included."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx
from av import VideoFrame

from vsession.sfu.rtp.history import Extensions, History, rtx_packet, write
from vsession.sfu.rtp.rewrite import SEQ_MOD, TS_MOD, Rewriter, vp8_keyframe_start


def test_one_source_keeps_its_spacing_across_the_wrap() -> None:
    rewriter = Rewriter(90000)
    first = rewriter.map(SEQ_MOD - 2, TS_MOD - 1500)
    assert first is not None
    out = [
        rewriter.map(seq % SEQ_MOD, (TS_MOD - 1500 + n * 3000) % TS_MOD)
        for n, seq in enumerate(range(SEQ_MOD - 2, SEQ_MOD + 3))
    ]
    assert all(o is not None for o in out)
    seqs = [o[0] for o in out if o is not None]
    stamps = [o[1] for o in out if o is not None]
    assert [(b - a) % SEQ_MOD for a, b in itertools.pairwise(seqs)] == [1, 1, 1, 1]
    assert [(b - a) % TS_MOD for a, b in itertools.pairwise(stamps)] == [3000] * 4


def test_a_later_source_continues_the_line_and_its_stragglers_are_dropped() -> None:
    rewriter = Rewriter(90000)
    for n in range(5):
        assert rewriter.map(1000 + n, 50_000 + n * 3000) is not None
    last = rewriter.map(1005, 50_000 + 5 * 3000)
    assert last is not None
    rewriter.rebase()
    # Another publisher (or the same one reconnected): its own random origins.
    first = rewriter.map(40_000, 7)
    assert first is not None
    assert first[0] == (last[0] + 1) % SEQ_MOD, "no gap, no repeat in the subscriber's sequence"
    assert 0 < (first[1] - last[1]) % TS_MOD < 90000, "the timestamp moved on by the wall clock, no jump"
    assert rewriter.map(39_999, 4) is None, "a packet from before the switch is not sent"
    again = rewriter.map(40_000, 7)
    assert again == first, "a retransmission maps to the same numbers"
    later = rewriter.map(40_003, 9007)
    assert later is not None and (later[0] - first[0]) % SEQ_MOD == 3, (
        "a gap stays a gap (the subscriber NACKs it)"
    )


def test_a_long_stream_is_never_cut_off() -> None:
    """Hours of packets: the sequence wraps many times, and every packet is still sent."""
    rewriter = Rewriter(90000)
    first = rewriter.map(60_000, 0)
    assert first is not None
    for n in range(1, 3 * SEQ_MOD):
        out = rewriter.map((60_000 + n) % SEQ_MOD, n * 3000 % TS_MOD)
        assert out is not None, n
        assert out[0] == (first[0] + n) % SEQ_MOD
    late = rewriter.map((60_000 + 3 * SEQ_MOD - 40) % SEQ_MOD, 0)
    assert late is not None, "a late packet of the same source is still sent"


def test_a_reordered_packet_does_not_move_the_line_back() -> None:
    rewriter = Rewriter(48000)
    rewriter.map(10, 0)
    rewriter.map(12, 1920)
    late = rewriter.map(11, 960)
    assert late is not None
    rewriter.rebase()
    after = rewriter.map(500, 0)
    assert after is not None
    assert after[0] == (late[0] + 2) % SEQ_MOD  # continues after 12, the highest, not after 11


def grey(pts: int) -> VideoFrame:
    frame = VideoFrame(320, 240, "yuv420p")
    for plane in frame.planes:
        # Noise: a keyframe of many packets.
        plane.update(random.Random(pts).randbytes(plane.buffer_size))
    frame.pts, frame.time_base = pts, Fraction(1, 90000)
    return frame


def vp8_payloads(keyframe: bool) -> list[bytes]:
    encoder = Vp8Encoder()
    payloads, _ = encoder.encode(grey(0), True)
    if not keyframe:
        payloads, _ = encoder.encode(grey(3000), False)
    return payloads


def test_vp8_keyframe_starts_are_recognised() -> None:
    key = vp8_payloads(True)
    delta = vp8_payloads(False)
    assert len(key) > 3
    assert vp8_keyframe_start(key[0])
    assert not any(vp8_keyframe_start(p) for p in key[1:]), "only the first packet starts the frame"
    assert not vp8_keyframe_start(delta[0])
    assert not vp8_keyframe_start(b"") and not vp8_keyframe_start(b"\x90")


def extensions_map() -> HeaderExtensionsMap:
    parameters = RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            RTCRtpHeaderExtensionParameters(
                id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            ),
        ]
    )
    ids = HeaderExtensionsMap()
    ids.configure(parameters)
    return ids


def test_written_packets_parse_as_sent() -> None:
    video = Extensions(1, "4", 3, 0)
    block = video.block(0xABCDEF, None)
    data = write(97, 1, 65535, TS_MOD - 1, 0xDEADBEEF, block, b"\x10payload", 0)
    packet = RtpPacket.parse(data, extensions_map())
    assert (packet.payload_type, packet.marker, packet.sequence_number) == (97, 1, 65535)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (TS_MOD - 1, 0xDEADBEEF, b"\x10payload")
    assert packet.extensions.mid == "4" and packet.extensions.abs_send_time == 0xABCDEF
    audio = Extensions(1, "12", 0, 2)
    data = write(111, 0, 7, 960, 1, audio.block(None, (True, 42)), b"opus", 5)
    packet = RtpPacket.parse(data, extensions_map())
    assert packet.extensions.mid == "12" and packet.extensions.audio_level == (True, 42)
    assert packet.payload == b"opus" and packet.padding_size == 5
    bare = write(111, 0, 7, 960, 1, Extensions(0, None, 0, 0).block(None, None), b"x", 0)
    assert len(bare) == 13 and RtpPacket.parse(bare).payload == b"x"


def test_history_answers_with_an_rtx_packet_of_the_original() -> None:
    history = History()
    block = Extensions(1, "3", 3, 0).block(5, None)
    data = write(97, 1, 300, 123456, 42, block, b"frame-bytes", 0)
    history.add(300, 12 + len(block), data)
    assert history.get(301) is None
    assert history.get(300 + 256) is None, "a slot reused by a later packet does not answer for an old one"
    entry = history.get(300)
    assert entry is not None
    rtx = RtpPacket.parse(rtx_packet(entry[1], entry[0], 98, 9, 77), extensions_map())
    assert (rtx.payload_type, rtx.sequence_number, rtx.ssrc, rtx.extensions.mid) == (98, 9, 77, "3")
    original = unwrap_rtx(rtx, payload_type=97, ssrc=42)
    assert (original.sequence_number, original.timestamp, original.payload, original.marker) == (
        300,
        123456,
        b"frame-bytes",
        1,
    )
