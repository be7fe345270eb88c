"""Consent-gated recording end to end with real aiortc peers through an in-process server: the
file decrypts with the stock `age` tool and ffprobe sees one video and one audio track per
consenting participant."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from aiortc import (
    AudioStreamTrack,
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCRtpReceiver,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from tests.support.call_client import CallClient
from tests.support.media import ColourTrack
from tests.support.practice_key import stock_age_decrypt
from vsession.consent.gate import Gate
from vsession.recording import age
from vsession.recording.recorder import Input, SegmentRecorder
from vsession.sfu.passthrough import PassthroughRelay

RED, GREEN = (220, 40, 40), (40, 200, 40)


def make_key(tmp_path: Path) -> tuple[Path, str]:
    identity, recipient = age.generate_identity()
    path = tmp_path / "practice-identity.txt"
    age.write_identity_file(path, identity, recipient)
    return path, recipient


def peer(call, who, colour) -> CallClient:
    url, headers = call.ws(who)
    return CallClient(url, headers, {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()})


def stream_seconds(path: Path) -> dict[str, float]:
    """Each track's span from its packets' timestamps: a live WebM carries no Duration element."""
    import av

    spans: dict[str, list[float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                title = packet.stream.metadata.get("title", str(packet.stream.index))
                spans.setdefault(title, []).append(float(packet.pts * packet.time_base))
    return {title: max(times) - min(times) for title, times in spans.items()}


def ffprobe_streams(path: Path) -> list[dict]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name:stream_tags=title",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["streams"]


async def test_consented_recording_decrypts_with_stock_age(inprocess_call, tmp_path: Path) -> None:
    identity, recipient = make_key(tmp_path)
    call = await inprocess_call(clients=1, recording_recipient=recipient)
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    try:
        await therapist.join()
        await client.join()
        await therapist.wait_for(
            lambda: therapist.frames[("s1", "camera")] >= 5 and client.frames[("t", "camera")] >= 5
        )
        await therapist.send({"type": "record", "action": "request"})
        await client.wait_for(lambda: client.last("consent_prompt") is not None)
        prompt = client.last("consent_prompt")
        await client.send(
            {"type": "consent", "request": prompt["request"], "prompt": prompt["prompt"], "answer": "accept"}
        )
        await client.wait_for(lambda: (client.last("recording") or {}).get("state") == "recording")
        started = time.monotonic()
        await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= 100)
        recorded = time.monotonic() - started
        await client.send({"type": "withdraw"})
        await therapist.wait_for(lambda: (therapist.last("recording") or {}).get("state") == "paused")
    finally:
        await therapist.close()
        await client.close()

    files = list((call.services.settings.data_dir / "recordings").glob("*.age"))
    assert len(files) == 1
    plain = tmp_path / "out.webm"
    stock_age_decrypt(identity, files[0], plain)
    streams = ffprobe_streams(plain)
    # Tracks are titled with the participants' display names.
    assert sorted((s["codec_type"], s["tags"]["title"]) for s in streams) == [
        ("audio", "Client 1 (microphone)"),
        ("audio", "Dr. Ada Example (microphone)"),
        ("video", "Client 1 (camera)"),
        ("video", "Dr. Ada Example (camera)"),
    ]
    # Plausible durations: every track spans about as long as the recording ran (a live WebM has
    # no Duration element, so from the packets).
    spans = stream_seconds(plain)
    assert set(spans) == {
        "Client 1 (microphone)",
        "Dr. Ada Example (microphone)",
        "Client 1 (camera)",
        "Dr. Ada Example (camera)",
    }
    for title, seconds in spans.items():
        assert recorded - 1.0 <= seconds <= recorded + 2.0, (title, seconds, recorded)


def test_finishing_while_waiting_for_first_packets_leaves_no_task_pending(tmp_path: Path) -> None:
    """A segment finished before every track gave its first packet: the tasks that waited for
    those packets are cancelled and awaited, not left pending until the loop closes (where
    asyncio reports each as "Task was destroyed but it is pending!")."""
    _, recipient = make_key(tmp_path)

    async def record_briefly() -> tuple[bool, int]:
        # A participant whose microphone has sent nothing yet: a real receiver whose transport
        # never connects, its remote track read by the pass-through relay as in a call.
        transport = RTCDtlsTransport(
            RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
        )
        relay = PassthroughRelay()
        source = relay.add_source(RemoteStreamTrack(kind="audio"), RTCRtpReceiver("audio", transport))
        try:
            recorder = SegmentRecorder(
                Gate(),
                1,
                tmp_path / "recordings" / "segment.age",
                [recipient],
                [Input("t", "microphone", relay.subscribe_packets(source))],
                on_writing=nothing,
                on_error=nothing,
            )
            await recorder.start()
            await asyncio.sleep(0.2)  # well inside the wait for first packets
            complete, size, _ = await recorder.finish()
        finally:
            await relay.remove_source(source)
        return complete, size

    # A loop of our own, closed without cancelling what is left, as a server's can be.
    loop = asyncio.new_event_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        complete, size = loop.run_until_complete(record_briefly())
    finally:
        loop.close()
    del loop
    gc.collect()
    assert [c.get("message") for c in reported] == []
    assert complete and size > 0  # an empty segment, but a whole age file


async def test_a_segment_whose_start_fails_leaves_no_file_open(tmp_path: Path) -> None:
    _, recipient = make_key(tmp_path)
    bad = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")  # its bech32 checksum fails
    open_files = open_file_count()
    recorder = SegmentRecorder(
        Gate(), 1, tmp_path / "recordings" / "segment.age", [bad], [], on_writing=nothing, on_error=nothing
    )
    try:
        await recorder.start()
    except ValueError as exc:
        assert "checksum" in str(exc)
    else:
        raise AssertionError("a recipient with a bad checksum was accepted")
    assert open_file_count() == open_files
    complete, size, _ = await recorder.finish()
    assert (complete, size) == (False, 0)


def open_file_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def nothing(*_: object) -> None:
    pass
