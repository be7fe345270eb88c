"""One recording segment: the consenting participants' encoded packets, remuxed with PyAV into
WebM (one track per participant and kind, no transcoding), written only through the encrypting
writer. The gate is checked before every packet; once it closes, nothing more is written.

The event loop that runs this carries every call's media, so the disk stays off it: opening the
file, sealing chunks, writing, fsync, closing and the whole-file hash all run on the segment's
own thread, one job at a time and in order. Muxing stays on the loop (microseconds a packet), so
the gate check and the packet it admits are never apart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
from av import Packet

from vsession.consent.gate import Gate
from vsession.recording.age import CHUNK_SIZE, EncryptingWriter
from vsession.sfu.passthrough import Subscription

log = logging.getLogger("vsession.recording")

FIRST_PACKET_WAIT = 3.0  # seconds to wait for every track's first packet (a keyframe for video)
SYNC_SECONDS = 1.0  # no media waits longer than this unsealed, so a crash loses about a second
SYNC_TICK = 0.25  # how often the timer looks
CLUSTER_MS = 250  # the muxer holds the open cluster in memory: keep it short


@dataclass
class Input:
    participant: str
    source: str  # "camera" | "microphone"
    subscription: Subscription
    name: str = ""  # the participant's display name, for the track's title
    stream: av.stream.Stream | None = None
    base_pts: int = 0
    offset: int = 0  # in the packet's time base: when this track started, after the segment did


def ebml_void(size: int) -> bytes:
    """A Matroska Void element of exactly `size` bytes (at least 2), which every reader skips."""
    if size < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    if size <= 9:  # an empty payload, with a size field of size - 1 bytes
        return b"\xec" + bytes([0x80 >> (size - 2)]) + bytes(size - 2)
    payload = size - 9  # an 8-byte size field
    return b"\xec\x01" + payload.to_bytes(7, "big") + bytes(payload)


def vp8_size(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1)."""
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


class SegmentRecorder:
    def __init__(
        self,
        gate: Gate,
        epoch: int,
        path: Path,
        recipients: list[str],
        inputs: list[Input],
        on_writing: Callable[[bool], Awaitable[None]],
        on_error: Callable[[str], Awaitable[None]],
    ) -> None:
        self.gate = gate
        self.epoch = epoch
        self.path = path
        self.recipients = recipients
        self.inputs = inputs
        self._on_writing = on_writing
        self._on_error = on_error
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._file: BinaryIO | None = None
        self._writer: EncryptingWriter | None = None
        self._container: av.container.OutputContainer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._failed = False
        self._finishing = False
        self._error_task: asyncio.Task[None] | None = None
        self.packets_written = 0
        self.last_written_at = 0.0
        # Since when media bytes have sat in the writer's partial chunk (None: nothing unsealed).
        self._unsealed_since: float | None = None
        self._seen = (0, 0)  # (plaintext bytes, chunks cut) after the last mux

    async def start(self) -> None:
        """Open the file and start recording. `finish()` is still due if this fails."""
        self._loop = asyncio.get_running_loop()
        opening = self._loop.run_in_executor(self._io, self._open)
        try:
            await asyncio.shield(opening)
        except BaseException as exc:
            self._failed = True  # so finish() reports it incomplete
            if isinstance(exc, asyncio.CancelledError):
                # The file gets opened all the same: close it, whether or not finish() follows.
                self._io.submit(self._close, False)
            raise
        self._tasks.append(asyncio.create_task(self._run()))

    def _open(self) -> None:
        """On the segment's thread: a new file, and the writer with its header on its way."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        handle = os.fdopen(fd, "wb")
        try:
            self._writer = EncryptingWriter(handle, self.recipients, self._io, self._writer_failed)
        except BaseException:
            handle.close()
            raise
        self._file = handle

    async def _run(self) -> None:
        try:
            firsts = await self._first_packets()
            if not firsts:
                return
            self._open_container(firsts)
            await self._on_writing(True)
            for item, packet in firsts:
                if not self._write(item, packet):
                    return
            self._tasks.append(asyncio.create_task(self._seal_timer()))
            await asyncio.gather(*(self._pump(item) for item, _ in firsts))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    async def _first_packets(self) -> list[tuple[Input, Packet]]:
        """Every track's first packet (subscriptions start video on a keyframe); tracks that give
        nothing in time are left out of this segment."""
        started = time.monotonic()

        async def first(item: Input) -> tuple[Input, Packet] | None:
            packet = await item.subscription.get()
            if packet is None:
                return None
            item.base_pts = int(packet.pts or 0)
            item.offset = int((time.monotonic() - started) / packet.time_base)
            return item, packet

        tasks = [asyncio.create_task(first(item)) for item in self.inputs]
        if not tasks:  # nobody present publishes camera or microphone: an empty segment
            return []
        try:
            done, _ = await asyncio.wait(tasks, timeout=FIRST_PACKET_WAIT)
        finally:
            # Also when the segment finishes during the wait: a task left waiting on a closed
            # subscription would be destroyed while still pending.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [r for t in done if (r := t.result()) is not None]

    def _open_container(self, firsts: list[tuple[Input, Packet]]) -> None:
        # Live Matroska: no seeking back (the bytes are already encrypted on disk), clusters of
        # at most CLUSTER_MS so a crash loses little, and a stream that still plays when cut short.
        self._container = av.open(
            self._writer,
            "w",
            format="webm",
            options={"live": "1", "cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
            buffer_size=4096,
        )
        for item, packet in sorted(firsts, key=lambda f: (f[0].participant, f[0].source)):
            if item.source == "camera":
                # A stream without an encoder: opening libvpx's would hold the GIL for 10-30 ms,
                # on any thread, to encode nothing. VP8 in WebM needs no codec private data.
                width, height = vp8_size(bytes(packet))
                stream = self._container.add_mux_stream("vp8", rate=30, width=width, height=height)
            else:
                # Opus in WebM needs its OpusHead header, which the (cheap) encoder supplies.
                stream = self._container.add_stream("libopus", rate=48000)
                stream.layout = "stereo"
            # Named for whoever opens the file later; the participant's id ties the track to the
            # recording's row (a Matroska tag, read back as PARTICIPANT).
            stream.metadata["title"] = f"{item.name or item.participant} ({item.source})"
            stream.metadata["participant"] = item.participant
            item.stream = stream
        self._container.start_encoding()  # the header, now rather than inside the first mux

    async def _pump(self, item: Input) -> None:
        while True:
            packet = await item.subscription.get()
            if packet is None or not self._write(item, packet):
                return

    def _write(self, item: Input, packet: Packet) -> bool:
        """Mux one packet if, and only if, the gate is still open for this segment."""
        if self._failed or not self.gate.allows(self.epoch) or self._container is None:
            return False
        pts = int(packet.pts or 0) - item.base_pts + item.offset
        if pts < 0:
            return True
        packet.pts = packet.dts = pts
        packet.stream = item.stream
        self._container.mux(packet)
        self.packets_written += 1
        self.last_written_at = time.time()
        self._note_unsealed()
        return True

    def _note_unsealed(self) -> None:
        writer = self._writer
        if writer is None or writer.plaintext_bytes == self._seen[0]:
            return
        if writer.chunks_cut != self._seen[1] or self._unsealed_since is None:
            # Only bytes from this packet on are unsealed now.
            self._unsealed_since = time.monotonic()
        self._seen = (writer.plaintext_bytes, writer.chunks_cut)

    def _seal_with_padding(self) -> None:
        """age's STREAM seals only full chunks before the last, so a quiet second of media would
        sit in memory. Fill the chunk with a Matroska Void element (between clusters: the muxer
        hands over whole clusters and flushes after every packet) so it is sealed and fsynced.
        The writer keeps one byte back for its final chunk: that byte is the Void's last."""
        writer = self._writer
        assert writer is not None
        size = CHUNK_SIZE + 1 - writer.buffered
        if size < 2:
            size += CHUNK_SIZE
        writer.write(ebml_void(size))
        self._unsealed_since = None
        self._seen = (writer.plaintext_bytes, writer.chunks_cut)

    async def _seal_timer(self) -> None:
        # No fsync here: the writer's thread fsyncs every batch of chunks it writes.
        while True:
            await asyncio.sleep(SYNC_TICK)
            since = self._unsealed_since
            if since is not None and time.monotonic() - since >= SYNC_SECONDS - SYNC_TICK:
                try:
                    self._seal_with_padding()
                except Exception as exc:  # the writer failed: fail closed
                    self._fail(exc)
                    return

    def _writer_failed(self, exc: BaseException) -> None:
        """On the writer's thread, as a disk error happens: fail on the loop straight away."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._fail, exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failed:
            return
        self._failed = True
        self.gate.close()
        if self._writer is not None and self._writer.error is not None:
            exc = self._writer.error  # the disk's own error, not a refusal that followed it
        log.error("recording segment failed: %s", exc)
        if self._finishing:
            return  # finish() is under way and reports the segment incomplete
        # In a task of its own: handling the error finishes this segment, which cancels this task.
        self._error_task = asyncio.create_task(self._on_error(f"{type(exc).__name__}: {exc}"[:200]))

    async def finish(self) -> tuple[bool, int, str]:
        """Stop, finalise the file, and return (complete, size, ciphertext SHA-256)."""
        self._finishing = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for item in self.inputs:
            item.subscription.close()
        loop = asyncio.get_running_loop()
        try:
            # Shielded: once asked, the file is closed even if this caller is cancelled.
            complete = await asyncio.shield(loop.run_in_executor(self._io, self._close, not self._failed))
        finally:
            await self._on_writing(False)
        size, sha256 = await asyncio.shield(loop.run_in_executor(self._io, digest, self.path))
        self._io.shutdown(wait=False)
        return complete, size, sha256

    def _close(self, complete: bool) -> bool:
        """On the segment's thread, after every chunk queued before: finalise and close the
        file. Returns whether the segment is complete."""
        try:
            if self._container is not None and complete:
                self._container.close()
            if self._writer is not None:
                # A failed segment gets no final chunk, so it reads TRUNCATED, as the DB says.
                self._writer.close() if complete else self._writer.abort()
                complete = complete and self._writer.error is None
        except Exception as exc:
            complete = False
            if self._writer is not None:
                self._writer.abort()
            log.exception("closing a recording segment failed", exc_info=exc)
        finally:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
        return complete


def digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file (0 and the empty hash if it is missing)."""
    hasher = hashlib.sha256()
    size = 0
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()
