"""The light load of scripts/bench_relay.py (`--load light`): media that costs a participant
almost nothing to send or receive, while the server sees the same streams as under the full load.

Sending: VP8 640x480@30 and Opus are encoded ONCE, at start-up, by the benchmark's parent process
(PyAV/libvpx with aiortc's own encoder settings, CBR at the pinned bitrate, from the same moving
testsrc2-plus-noise clip as the full load; Opus from 20 ms frames of silence, as aiortc's
AudioStreamTrack sends). Each participant then replays the encoded frames as av.Packet, which
aiortc's RTCRtpSender packetises as it is (no encoder runs). The video loop is one VP8 stream with
a single keyframe, at its start: a sender starts on it, and when it is asked for a keyframe (PLI or
FIR reach RTCRtpSender._send_keyframe, which we point at the track) it jumps back to the start of
the loop. Wrapping round the loop also sends that keyframe, so a sender sends a keyframe at start,
on request, and once per loop (LOOP_SECONDS); every frame sent is valid for a decoder that has
followed the stream.

Receiving: the receiver's decoder queue is replaced before it starts, as the pass-through relay
does on the server (vsession.sfu.passthrough), so RTCRtpReceiver still depacketises and runs its
jitter buffer but hands over assembled encoded frames instead of decoding them. Frames are counted
per second, keyframes are told from the VP8 P bit, and a keyframe must carry VP8's start code and
the expected 640x480 size, so a broken stream shows instead of being counted.

Nothing is decoded, so there is no stamp in the picture to read: delay under this load comes from
send and arrival logs instead, frames matched by their bytes (scripts/logged_replay.py,
scripts/bench_delay.py).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from av import Packet

WIDTH, HEIGHT, FPS = 640, 480, 30
CLIP_SOURCE = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=8:allf=t"
LOOP_SECONDS = 10
VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)


@dataclass(frozen=True)
class EncodedMedia:
    """The loops every light participant replays; picklable, made once per run."""

    video: list[bytes]  # one VP8 frame each, 30 a second; only video[0] is a keyframe
    audio: list[bytes]  # one 20 ms Opus packet each
    video_bps: int

    @property
    def video_kbps_encoded(self) -> float:
        return sum(map(len, self.video)) * 8 * FPS / len(self.video) / 1000


def encode_media(video_bps: int, seconds: int = LOOP_SECONDS) -> EncodedMedia:
    """Encode the video and audio loops with aiortc's own encoder settings (codecs/vpx.py and
    codecs/opus.py), the video at a pinned CBR `video_bps`."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.bit_rate = video_bps
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS)
    encoder.gop_size = 100_000  # no periodic keyframes: the first one only
    encoder.qmin, encoder.qmax = 2, 56
    encoder.options = {
        "bufsize": str(video_bps),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(video_bps),
        "maxrate": str(video_bps),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    video: list[bytes] = []
    container = av.open(CLIP_SOURCE, format="lavfi")
    try:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= seconds * FPS:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame I
            frame.pts, frame.time_base = index, encoder.time_base
            video += [bytes(p) for p in encoder.encode(frame)]
        video += [bytes(p) for p in encoder.encode(None)]
    finally:
        container.close()
    video = video[: seconds * FPS]
    keys = [i for i, data in enumerate(video) if is_vp8_keyframe(data)]
    if len(video) != seconds * FPS or keys != [0]:
        raise RuntimeError(f"VP8 loop: {len(video)} frames, keyframes at {keys[:10]}; want one, first")

    opus = av.CodecContext.create("libopus", "w")
    opus.bit_rate, opus.format, opus.layout = 96_000, "s16", "stereo"
    opus.sample_rate, opus.time_base = AUDIO_RATE, AUDIO_TIME_BASE
    opus.options = {"application": "voip"}
    audio: list[bytes] = []
    for index in range(seconds * AUDIO_RATE // AUDIO_SAMPLES + 5):
        silence = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate, silence.pts, silence.time_base = (
            AUDIO_RATE,
            index * AUDIO_SAMPLES,
            AUDIO_TIME_BASE,
        )
        audio += [bytes(p) for p in opus.encode(silence)]
    return EncodedMedia(video, audio[: seconds * AUDIO_RATE // AUDIO_SAMPLES], video_bps)


def is_vp8_keyframe(data: bytes) -> bool:
    return len(data) > 0 and data[0] & 0x01 == 0  # RFC 6386 9.1: P bit clear


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 keyframe, or None if its header is not one (RFC 6386 9.1)."""
    if len(data) < 10 or not is_vp8_keyframe(data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


class _Paced(MediaStreamTrack):
    """Replays a loop of encoded frames in real time, as av.Packet."""

    def __init__(self, frames: list[bytes], ticks: int, clock: int, time_base: fractions.Fraction) -> None:
        super().__init__()
        self._frames = frames
        self._ticks = ticks  # clock ticks per frame
        self._clock = clock
        self._time_base = time_base
        self._index = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self._ticks
            await asyncio.sleep(self._start + self._pts / self._clock - time.monotonic())
        packet = Packet(self._frames[self._index])
        packet.pts, packet.time_base = self._pts, self._time_base
        self._index = (self._index + 1) % len(self._frames)
        return packet


class ReplayVideoTrack(_Paced):
    kind = "video"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.video, VIDEO_CLOCK // FPS, VIDEO_CLOCK, VIDEO_TIME_BASE)
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        """The next frame sent is the loop's keyframe."""
        self.keyframe_requests += 1
        self._index = 0

    def attach(self, sender: RTCRtpSender) -> None:
        """RTCRtpSender answers PLI/FIR by calling _send_keyframe, which only affects a frame it
        encodes itself; route it here instead (the same private hook the pass-through relay uses)."""
        sender._send_keyframe = self.request_keyframe  # type: ignore[method-assign]


class ReplayAudioTrack(_Paced):
    kind = "audio"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.audio, AUDIO_SAMPLES, AUDIO_RATE, AUDIO_TIME_BASE)


@dataclass
class PacketTally:
    """What one light receiver got: arrival times of video frames and audio packets, keyframes,
    bytes, and any frame that is not sane VP8 of the expected size."""

    video: list[float] = field(default_factory=list)
    audio: list[float] = field(default_factory=list)
    keyframes: list[float] = field(default_factory=list)
    video_bytes: list[tuple[float, int]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def on_packet(self, kind: str, packet: Any) -> None:
        now = time.monotonic()
        if not isinstance(packet, Packet):
            self.bad.append(f"{kind}: got {type(packet).__name__}, not an encoded packet")
            return
        if kind == "audio":
            self.audio.append(now)
            return
        data = bytes(packet)
        self.video.append(now)
        self.video_bytes.append((now, len(data)))
        if is_vp8_keyframe(data):
            self.keyframes.append(now)
            size = vp8_keyframe_size(data)
            if size != (WIDTH, HEIGHT) and len(self.bad) < 10:
                self.bad.append(f"keyframe with a bad header or size {size}")
        elif not data and len(self.bad) < 10:
            self.bad.append("empty video frame")
