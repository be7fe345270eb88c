"""Writing a forwarded packet, and the per-subscriber history that answers NACKs.

Packets are written by hand rather than through aiortc's RtpPacket.serialize: the header is 12
fixed bytes and the extensions are few and known, so this is one pack() and a join."""

from __future__ import annotations

import struct

HEADER = struct.Struct("!BBHLL")
HISTORY_SIZE = 256  # about 2 s of 1.2 Mbps video: several round trips for a NACK to come back
RTX_SEQ = struct.Struct("!H")


class Extensions:
    """The header extensions this subscriber's m-line negotiated (RFC 8285 one-byte form), by id;
    0 when absent. aiortc offers mid, abs-send-time (video) and ssrc-audio-level (audio)."""

    __slots__ = ("abs_send_time", "audio_level", "mid_element")

    def __init__(self, mid_id: int, mid: str | None, abs_send_time: int, audio_level: int) -> None:
        encoded = (mid or "").encode()
        # Sent on every packet, as aiortc and browsers do: it never changes, so made once.
        self.mid_element = (
            bytes([(mid_id << 4) | (len(encoded) - 1)]) + encoded if mid_id and encoded else b""
        )
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level

    def block(self, send_time: int | None, audio_level: tuple[bool, int] | None) -> bytes:
        """The extension block (profile, length, elements, padding), or b"" for none."""
        body = self.mid_element
        if send_time is not None and self.abs_send_time:
            body += bytes([(self.abs_send_time << 4) | 2]) + (send_time & 0xFFFFFF).to_bytes(3, "big")
        if audio_level is not None and self.audio_level:
            voice, level = audio_level
            body += bytes([self.audio_level << 4, (0x80 if voice else 0) | (level & 0x7F)])
        if not body:
            return b""
        body += bytes(-len(body) % 4)
        return b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body


def write(
    payload_type: int,
    marker: int,
    seq: int,
    ts: int,
    ssrc: int,
    extensions: bytes,
    payload: bytes,
    padding: int,
) -> bytes:
    """One RTP packet. Padding is kept (its length in the last byte; RFC 3550 §5.1)."""
    first = 0x80 | (0x10 if extensions else 0) | (0x20 if padding else 0)
    header = HEADER.pack(first, (marker << 7) | payload_type, seq, ts, ssrc)
    if padding:
        return b"".join((header, extensions, payload, bytes(padding - 1), bytes([padding])))
    return b"".join((header, extensions, payload))


class History:
    """The packets last sent on one outgoing stream, by sequence number, for retransmission."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[tuple[int, int, bytes] | None] = [None] * HISTORY_SIZE

    def add(self, seq: int, header_size: int, data: bytes) -> None:
        self._slots[seq % HISTORY_SIZE] = (seq, header_size, data)

    def get(self, seq: int) -> tuple[int, bytes] | None:
        """(header size, packet) for `seq` if it is still held."""
        entry = self._slots[seq % HISTORY_SIZE]
        if entry is None or entry[0] != seq:
            return None
        return entry[1], entry[2]


def rtx_packet(original: bytes, header_size: int, payload_type: int, seq: int, ssrc: int) -> bytes:
    """`original` as an RTX packet (RFC 4588 §4): RTX payload type, sequence and SSRC, the
    original sequence number first in the payload; timestamp, marker and extensions unchanged."""
    first, second, original_seq, ts, _ = HEADER.unpack_from(original)
    header = HEADER.pack(first, (second & 0x80) | payload_type, seq, ts, ssrc)
    return b"".join(
        (header, original[HEADER.size : header_size], RTX_SEQ.pack(original_seq), original[header_size:])
    )
