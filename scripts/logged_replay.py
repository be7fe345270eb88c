"""The light load with delay measurement: replayed tracks that log when each frame is handed to
aiortc, and an audio loop whose every packet differs, so a receiver can tell which one arrived
(scripts/bench_delay.py). The silence of replay_media's audio encodes to identical packets; quiet
noise does not, and costs the server what speech would (about 100 kbit/s of Opus)."""

from __future__ import annotations

import dataclasses
import random
import time

import av
from av import Packet
from bench_delay import FrameLog, identities
from replay_media import (
    AUDIO_RATE,
    AUDIO_SAMPLES,
    AUDIO_TIME_BASE,
    LOOP_SECONDS,
    EncodedMedia,
    ReplayAudioTrack,
    ReplayVideoTrack,
)

NOISE = 300  # peak amplitude of 16-bit samples: quiet, about -40 dBFS


def with_distinct_audio(media: EncodedMedia, seconds: int = LOOP_SECONDS) -> EncodedMedia:
    """`media` with its audio loop replaced by Opus-encoded quiet noise (aiortc's Opus settings)."""
    opus = av.CodecContext.create("libopus", "w")
    opus.bit_rate, opus.format, opus.layout = 96_000, "s16", "stereo"
    opus.sample_rate, opus.time_base = AUDIO_RATE, AUDIO_TIME_BASE
    opus.options = {"application": "voip"}
    noise = random.Random(20)
    audio: list[bytes] = []
    packets = seconds * AUDIO_RATE // AUDIO_SAMPLES
    for index in range(packets + 5):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
        values = [noise.randint(-NOISE, NOISE) for _ in range(2 * AUDIO_SAMPLES)]
        frame.planes[0].update(b"".join(v.to_bytes(2, "little", signed=True) for v in values))
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, index * AUDIO_SAMPLES, AUDIO_TIME_BASE
        audio += [bytes(p) for p in opus.encode(frame)]
    audio = audio[:packets]
    if len(identities(audio)) < 0.99 * len(audio):
        raise RuntimeError(f"audio loop: only {len(identities(audio))} of {len(audio)} packets differ")
    return dataclasses.replace(media, audio=audio)


class LoggedVideoTrack(ReplayVideoTrack):
    def __init__(self, media: EncodedMedia, log: FrameLog) -> None:
        super().__init__(media)
        self._log = log.video
        self._count = len(media.video)

    async def recv(self) -> Packet:
        packet = await super().recv()
        # No await between choosing the frame and advancing the index: this is the frame sent.
        self._log.append((time.monotonic(), (self._index - 1) % self._count))
        return packet


class LoggedAudioTrack(ReplayAudioTrack):
    def __init__(self, media: EncodedMedia, log: FrameLog) -> None:
        super().__init__(media)
        self._log = log.audio
        self._count = len(media.audio)

    async def recv(self) -> Packet:
        packet = await super().recv()
        self._log.append((time.monotonic(), (self._index - 1) % self._count))
        return packet
