"""Sending and receiving SRTP without a coroutine per packet.

aiortc sends through five awaits (DTLS transport, ICE transport, aioice connection, candidate
pair, protocol) that never wait, and receives through an asyncio.Queue that wakes the DTLS
transport's task once per datagram. For the relay's packets both are done by plain calls here:
protect and sendto on the nominated pair's socket; and, on the publisher's side, a datagram that
is SRTP is unprotected, parsed and forwarded right where aioice hands it over. Everything else
(DTLS, SRTCP, STUN, any packet no relay ingress takes) keeps aiortc's own path.

aiortc and aioice internals used, guarded by tests/sfu/test_aiortc_internals.py:
RTCDtlsTransport._state/_tx_srtp/_rx_srtp/_rtp_router/_rtp_header_extensions_map,
RTCIceTransport._connection, aioice Connection.data_received/_queue/_nominated, and
StunProtocol.send_data being `self.transport.sendto(data, addr)`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import clock
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtp import RtpPacket, is_rtcp

log = logging.getLogger("vsession.sfu")


def send_now(transport: RTCDtlsTransport, data: bytes) -> bool:
    """Protect and send one RTP or RTCP packet now; False when the connection cannot send."""
    t: Any = transport
    if t._state != State.CONNECTED:
        return False
    pair = t.transport._connection._nominated.get(1)
    if pair is None:
        return False
    srtp = t._tx_srtp
    protected = srtp.protect_rtcp(data) if is_rtcp(data) else srtp.protect(data)
    # What StunProtocol.send_data does, minus its coroutine (a TURN relay's transport included).
    pair.protocol.transport.sendto(protected, pair.remote_addr)
    return True


Handler = Callable[[RtpPacket, int], bool]


def receive_directly(transport: RTCDtlsTransport) -> None:
    """From now on SRTP datagrams on this transport's connection that a relay ingress takes are
    handled as they arrive (see module doc). Idempotent."""
    t: Any = transport
    connection = t.transport._connection
    if getattr(connection, "_vsession_direct", False):
        return
    queue: asyncio.Queue[tuple[bytes, int] | None] = connection._queue
    pending: set[asyncio.Future[None]] = set()

    def data_received(data: bytes, component: int) -> None:
        first = data[0] if data else 0
        srtp = t._rx_srtp
        if not 127 < first < 192 or srtp is None or is_rtcp(data) or t._state != State.CONNECTED:
            queue.put_nowait((data, component))  # DTLS, SRTCP, before keys: aiortc's path
            return
        arrival_time_ms = clock.current_ms()
        try:
            plain = srtp.unprotect(data)
            packet = RtpPacket.parse(plain, t._rtp_header_extensions_map)
        except (pylibsrtp.Error, ValueError):
            return  # as aiortc: dropped (a replay, a forgery, garbage)
        receiver = t._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        ingress = getattr(receiver, "_vsession_ingress", None)
        if ingress is not None:
            ingress.handle_now(packet, arrival_time_ms)
        else:
            # Not the relay's: aiortc's receiver, on a task of its own (the packet is unprotected
            # already, so it cannot go back on the queue).
            task = asyncio.ensure_future(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms))
            pending.add(task)
            task.add_done_callback(pending.discard)

    connection.data_received = data_received
    connection._vsession_direct = True
