"""Load generator for scripts/bench_relay.py: participant processes that send synthetic video and
audio, receive the other party's, and record what arrived and when.

Each process runs one participant: either a real call participant speaking our signalling protocol
through a live server (tests/support/call_client.py), or one half of a direct aiortc pair with no
server at all (the latency baseline). Both send the same media and do the same per-process work:
one VP8 encode, one Opus encode, one VP8 decode and one Opus decode.

Video: 640x480@30 VP8 made from FFmpeg's `testsrc2` pattern (moving shapes and a scrolling
gradient) plus temporal noise like a camera sensor's, so the encoder cannot coast on a static
image. A few seconds are precomputed, so making a frame is a copy. The top 32 rows carry the
sender's clock as black and white 16x16 blocks (see `stamp_band`), which survive VP8 coding, and
re-encoding in the decoding relay, with a wide margin.

Audio: aiortc's AudioStreamTrack (Opus, 20 ms frames of silence, 50 packets a second).

That is the full load (`--load full`). Under the light load (`--load light`,
`light_participant_process`) a participant replays VP8 and Opus encoded once by the parent and
counts the encoded frames it receives without decoding them (scripts/replay_media.py): the server
sees the same kind of streams and the participant costs a fraction of the CPU. Its delay, video
and audio, comes from logs of what was sent and received (scripts/bench_delay.py), and the light
direct pair (`light_direct_process`) is its baseline.

All times are `time.monotonic()`: Linux's CLOCK_MONOTONIC is one clock for every process on the
machine and, unlike the wall clock, never jumps, so a stamp made in one process can be subtracted
in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiortc.codecs.vpx as vpx
import av
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_delay import FrameLog, Identifier  # noqa: E402
from logged_replay import LoggedAudioTrack, LoggedVideoTrack  # noqa: E402
from replay_media import EncodedMedia, PacketTally, ReplayVideoTrack  # noqa: E402

# A plain aiortc client of our signalling, with no pytest in it (nor in what it imports).
from tests.support.call_client import CallClient  # noqa: E402
from vsession.sfu.passthrough import receive_encoded  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
CLIP_SOURCE = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=8:allf=t"
CLIP_FRAMES = 60  # a 2 s loop: enough that the encoder never sees a repeat within its references

# The stamp: one row of 40 blocks (a 32-bit millisecond clock, then an 8-bit checksum) and below
# it the same row inverted. A frame counts only if both rows agree and the checksum holds, so a
# half-decoded or concealed frame is rejected instead of giving a wrong latency.
BLOCK = 16  # one VP8 macroblock, so a block never shares a macroblock with the picture
BITS = 40
WHITE, BLACK, THRESHOLD, MARGIN = 235, 16, 126, 40
STAMP_MASK = 0xFFFFFFFF
MAX_PLAUSIBLE_MS = 60_000


def clock_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _stamp_word(stamp: int) -> int:
    value = stamp & STAMP_MASK
    return (value << 8) | (sum(value.to_bytes(4, "big")) & 0xFF)


def stamp_band(stamp: int, line_size: int) -> bytes:
    """The Y-plane bytes of the top 2*BLOCK rows that encode `stamp`."""
    word = _stamp_word(stamp)
    bits = [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    pad = bytes(line_size - BITS * BLOCK)
    row = b"".join(bytes([WHITE if bit else BLACK]) * BLOCK for bit in bits) + pad
    inverted = b"".join(bytes([BLACK if bit else WHITE]) * BLOCK for bit in bits) + pad
    return row * BLOCK + inverted * BLOCK


def _read_row(luma: memoryview, stride: int, row: int) -> list[int] | None:
    """The bits of one band row, from the 2x2 pixels at each block's centre; None when a block is
    too grey to call."""
    y = row * BLOCK + BLOCK // 2
    bits = []
    for i in range(BITS):
        x = i * BLOCK + BLOCK // 2
        level = (
            luma[y * stride + x]
            + luma[y * stride + x - 1]
            + luma[(y - 1) * stride + x]
            + luma[(y - 1) * stride + x - 1]
        ) // 4
        if abs(level - THRESHOLD) < MARGIN:
            return None
        bits.append(1 if level > THRESHOLD else 0)
    return bits


def read_stamp(frame: VideoFrame) -> int | None:
    """The sender's clock (ms, modulo 2**32) stamped into a decoded frame, or None if unreadable."""
    if frame.width < BITS * BLOCK or frame.height < 2 * BLOCK:
        return None
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    luma = memoryview(plane)
    top, bottom = _read_row(luma, plane.line_size, 0), _read_row(luma, plane.line_size, 1)
    if top is None or bottom is None or any(a == b for a, b in zip(top, bottom, strict=True)):
        return None
    word = int("".join(map(str, top)), 2)
    stamp = word >> 8
    return stamp if _stamp_word(stamp) == word else None


class Clip:
    """A short loop of precomputed frames, kept as raw plane bytes."""

    def __init__(self, frames: int = CLIP_FRAMES) -> None:
        container = av.open(CLIP_SOURCE, format="lavfi")
        try:
            decoded = islice(container.decode(video=0), frames)
            self.planes = [[bytes(p) for p in f.reformat(format="yuv420p").planes] for f in decoded]
        finally:
            container.close()
        fresh = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        if [p.buffer_size for p in fresh.planes] != [len(b) for b in self.planes[0]]:
            raise RuntimeError("precomputed planes do not match a fresh frame's layout")
        self.line_size = fresh.planes[0].line_size

    def frame(self, index: int, stamp: int) -> VideoFrame:
        # A fresh frame every time: lavfi marks each frame it makes as a keyframe (pict_type I),
        # and aiortc's encoder honours that, which would send nothing but keyframes.
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        y, u, v = self.planes[index % len(self.planes)]
        band = stamp_band(stamp, self.line_size)
        frame.planes[0].update(band + y[len(band) :])
        frame.planes[1].update(u)
        frame.planes[2].update(v)
        return frame


class StampedVideoTrack(VideoStreamTrack):
    """The clip at 30 fps, each frame stamped with the moment it is handed to the encoder."""

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self._clip = clip
        self._index = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()  # paces to 30 fps
        frame = self._clip.frame(self._index, clock_ms())
        self._index += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


@dataclass
class Recording:
    """What one participant process saw. Times are time.monotonic(); the parent cuts the window."""

    name: str
    video: list[float] = field(default_factory=list)  # decoded video frames from the other party
    audio: list[float] = field(default_factory=list)  # decoded 20 ms audio frames
    latency: list[tuple[float, float]] = field(default_factory=list)  # (arrival, ms since stamped)
    unreadable: list[float] = field(default_factory=list)  # video frames whose stamp failed its checks
    stats: list[tuple[float, int, int]] = field(
        default_factory=list
    )  # (time, video bytes sent, bytes received)
    error: str = ""
    # Light load only: encoded video frames that were keyframes, (arrival, bytes) of every video
    # frame, what was wrong with the stream if anything, and keyframe requests this sender served.
    keyframes: list[float] = field(default_factory=list)
    video_bytes: list[tuple[float, int]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    keyframe_requests: int = 0
    # Light load only: what this participant sent and which frames arrived (scripts/bench_delay.py).
    sent: FrameLog = field(default_factory=FrameLog)
    arrived: FrameLog = field(default_factory=FrameLog)


class Probe:
    def __init__(self, name: str) -> None:
        self.recording = Recording(name)

    @property
    def receiving(self) -> bool:
        return bool(self.recording.video) and bool(self.recording.audio)

    def on_frame(self, frame: Any) -> None:
        now = time.monotonic()
        if not isinstance(frame, VideoFrame):
            self.recording.audio.append(now)
            return
        self.recording.video.append(now)
        stamp = read_stamp(frame)
        # clock_ms() is read after the frame is in hand, so the age covers the decode too.
        age = None if stamp is None else (clock_ms() - stamp) & STAMP_MASK
        if age is None or age > MAX_PLAUSIBLE_MS:
            self.recording.unreadable.append(now)
        else:
            self.recording.latency.append((now, float(age)))


@dataclass(frozen=True)
class ParticipantSpec:
    """A call participant: the therapist or the client of one session."""

    name: str
    ws_url: str
    headers: dict[str, str]
    other: str  # the peer id ("t" or "s1") whose media this participant should receive


def participant_process(spec: ParticipantSpec, control: Connection, video_bps: int) -> None:
    """Process entry point. Says ("ready",) once the other party's video and audio arrive, then
    sends its Recording when the parent says "stop" (or closes the pipe)."""
    setup_worker(video_bps)
    asyncio.run(_participant(spec, control))


def direct_process(name: str, offerer: bool, control: Connection, link: Connection, video_bps: int) -> None:
    """Process entry point for one half of a direct pair; `link` carries the SDP to the other half."""
    setup_worker(video_bps)
    asyncio.run(_direct(name, offerer, control, link))


def setup_worker(video_bps: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_video_bitrate(video_bps)


def pin_video_bitrate(bps: int) -> None:
    """aiortc's VP8 encoder starts at 500 kbps and then follows the receiver's REMB estimate
    between 250 kbps and 1.5 Mbps. Pinning all three makes every run, relay and step send the same
    load, whatever the estimate. Module globals, so this process only."""
    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bps


async def _participant(spec: ParticipantSpec, control: Connection) -> None:
    probe = Probe(spec.name)

    def on_frame(peer: str, source: str, frame: Any) -> None:
        if peer == spec.other:
            probe.on_frame(frame)

    tracks: dict[str, MediaStreamTrack] = {
        "camera": StampedVideoTrack(Clip()),
        "microphone": AudioStreamTrack(),
    }
    client = CallClient(spec.ws_url, spec.headers, tracks, on_frame=on_frame)
    try:
        await client.join()
    except Exception as exc:  # reported to the parent, which prints it
        probe.recording.error = f"join failed: {exc!r}"
    try:
        await serve(control, probe, lambda: [client.pc])
    finally:
        await quietly(client.close())


def light_participant_process(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    """Process entry point under the light load: replays `media`, counts encoded frames."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_light_participant(spec, control, media))


class EncodedCallClient(CallClient):
    """A CallClient whose receivers hand over encoded frames (av.Packet) instead of decoding, and
    whose replayed video answers PLI/FIR by going back to its keyframe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.late_receivers: list[str] = []

    def _track(self, track: MediaStreamTrack) -> None:
        # "track" is emitted inside setRemoteDescription, which only schedules the connection:
        # RTCRtpReceiver.receive() (which starts the decoder thread on the queue swapped here) has
        # not run yet. Check it anyway, so a change in aiortc shows instead of silently decoding.
        assert self.pc is not None
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        if not receive_encoded(receiver):
            self.late_receivers.append(track.kind)
        super()._track(track)

    async def _answer(self, offer: dict[str, Any]) -> None:
        await super()._answer(offer)
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            if isinstance(transceiver.sender.track, ReplayVideoTrack):
                transceiver.sender.track.attach(transceiver.sender)


class LightReceiver:
    """A light participant's receiving side: counts, checks and identifies encoded frames, into
    the probe's recording (its lists are the tally's, so readiness and the parent's fps see them)."""

    def __init__(self, probe: Probe, media: EncodedMedia) -> None:
        self.tally = PacketTally()
        self.identifier = Identifier(media)
        recording = probe.recording
        recording.video, recording.audio = self.tally.video, self.tally.audio
        recording.keyframes, recording.video_bytes = self.tally.keyframes, self.tally.video_bytes
        recording.bad, recording.arrived = self.tally.bad, self.identifier.log

    def on_packet(self, kind: str, packet: Any) -> None:
        self.tally.on_packet(kind, packet)
        self.identifier.on_packet(kind, packet)


def logged_tracks(media: EncodedMedia, probe: Probe) -> tuple[LoggedVideoTrack, LoggedAudioTrack]:
    return LoggedVideoTrack(media, probe.recording.sent), LoggedAudioTrack(media, probe.recording.sent)


async def _light_participant(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    probe = Probe(spec.name)
    receiver = LightReceiver(probe, media)
    video, audio = logged_tracks(media, probe)

    def on_frame(peer: str, source: str, packet: Any) -> None:
        if peer == spec.other:
            receiver.on_packet("video" if source in ("camera", "screen") else "audio", packet)

    tracks: dict[str, MediaStreamTrack] = {"camera": video, "microphone": audio}
    client = EncodedCallClient(spec.ws_url, spec.headers, tracks, on_frame=on_frame)
    try:
        await client.join()
    except Exception as exc:
        probe.recording.error = f"join failed: {exc!r}"
    try:
        await serve(
            control, probe, lambda: [client.pc], before_report=lambda: _light_report(client, video, probe)
        )
    finally:
        await quietly(client.close())


def _light_report(client: EncodedCallClient, video: ReplayVideoTrack, probe: Probe) -> None:
    probe.recording.keyframe_requests = video.keyframe_requests
    if client.late_receivers:
        probe.recording.bad.append(f"receivers already started when prepared: {client.late_receivers}")


def light_direct_process(
    name: str, offerer: bool, control: Connection, link: Connection, media: EncodedMedia
) -> None:
    """Process entry point for one half of the light load's direct pair (the delay baseline)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_direct(name, offerer, control, link, media))


async def _direct(
    name: str, offerer: bool, control: Connection, link: Connection, media: EncodedMedia | None = None
) -> None:
    probe = Probe(name)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    readers: list[asyncio.Task[None]] = []
    tracks: list[MediaStreamTrack]
    if media is None:
        tracks = [AudioStreamTrack(), StampedVideoTrack(Clip())]
        pc.on("track", lambda track: readers.append(asyncio.create_task(consume(track, probe))))
    else:
        video, audio = logged_tracks(media, probe)
        tracks = [audio, video]
        receiver = LightReceiver(probe, media)

        def on_track(track: MediaStreamTrack) -> None:
            rtp = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            if not receive_encoded(rtp):
                probe.recording.bad.append(f"{track.kind} receiver already started when prepared")
            readers.append(asyncio.create_task(consume_encoded(track, receiver)))

        pc.on("track", on_track)
    try:
        await _connect_direct(pc, offerer, link, tracks)
        if media is not None:
            for transceiver in pc.getTransceivers():
                if isinstance(transceiver.sender.track, ReplayVideoTrack):
                    transceiver.sender.track.attach(transceiver.sender)
    except Exception as exc:
        probe.recording.error = f"direct connection failed: {exc!r}"
    try:
        await serve(control, probe, lambda: [pc])
    finally:
        for task in readers:
            task.cancel()
        await quietly(pc.close())


async def _connect_direct(
    pc: RTCPeerConnection, offerer: bool, link: Connection, tracks: list[MediaStreamTrack]
) -> None:
    """Offer/answer over the pipe. ICE gathering completes before setLocalDescription returns, so
    one message each way is all the signalling needed."""
    # The server offers 127.0.0.1 when ice_loopback is on; do the same here so the pair also
    # connects on a host with nothing but loopback.
    from vsession.sfu.ice import offer_loopback

    offer_loopback(True)
    loop = asyncio.get_running_loop()
    if offerer:
        for track in tracks:
            prefer_codecs(pc.addTransceiver(track, direction="sendrecv"))
        await pc.setLocalDescription(await pc.createOffer())
        link.send(pc.localDescription.sdp)
        answer = await loop.run_in_executor(None, link.recv)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    else:
        offer = await loop.run_in_executor(None, link.recv)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for track in tracks:
            pc.addTrack(track)  # takes the transceiver the offer created for this kind
        await pc.setLocalDescription(await pc.createAnswer())
        link.send(pc.localDescription.sdp)


def prefer_codecs(transceiver: Any) -> None:
    """VP8 and Opus, as the server negotiates, so the direct pair does the same coding work."""
    wanted = {"video": "video/VP8", "audio": "audio/opus"}[transceiver.kind]
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType in (wanted, f"{transceiver.kind}/rtx")])


async def consume(track: MediaStreamTrack, probe: Probe) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            probe.on_frame(await track.recv())


async def consume_encoded(track: MediaStreamTrack, receiver: LightReceiver) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            receiver.on_packet(track.kind, await track.recv())


async def serve(
    control: Connection,
    probe: Probe,
    pcs: Callable[[], list[RTCPeerConnection | None]],
    before_report: Callable[[], None] | None = None,
) -> None:
    """Run until the parent says stop, then hand it the recording. `pcs` gives the participant's
    peer connections (one for vsession, a publisher and a subscriber for Janus)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_control() -> None:
        # Level-triggered: stop watching at once, or the loop would spin while the byte waits.
        loop.remove_reader(control.fileno())
        stop.set()

    loop.add_reader(control.fileno(), on_control)  # a "stop" message, or EOF if the parent died
    stats = asyncio.create_task(_poll_stats(pcs, probe.recording))
    announced = False
    while not stop.is_set():
        if not announced and probe.receiving:
            control.send(("ready",))
            announced = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    stats.cancel()
    await _sample_stats(pcs(), probe.recording)
    if before_report is not None:
        before_report()
    with contextlib.suppress(OSError, EOFError):
        control.send(probe.recording)


async def _poll_stats(pcs: Callable[[], list[RTCPeerConnection | None]], recording: Recording) -> None:
    while True:
        await _sample_stats(pcs(), recording)
        await asyncio.sleep(1.0)


async def _sample_stats(pcs: list[RTCPeerConnection | None], recording: Recording) -> None:
    """Bytes of video sent (RTP payload and headers) and bytes received on the transports (all
    media, RTCP and SRTP overhead), for the bitrate columns."""
    sent = received = 0
    for pc in pcs:
        if pc is None or pc.connectionState == "closed":
            return
        try:
            report = await pc.getStats()
        except Exception:  # stats are a nicety; a connection in flux must not end the run
            return
        sent += sum(s.bytesSent for s in report.values() if s.type == "outbound-rtp" and s.kind == "video")
        received += sum(s.bytesReceived for s in report.values() if s.type == "transport")
    recording.stats.append((time.monotonic(), sent, received))


async def quietly(closing: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(closing, 5)
