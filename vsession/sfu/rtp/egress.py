"""One subscriber's outgoing stream: a downstream m-line's RTCRtpSender, driven from outside.

aiortc's sender keeps its SSRCs, its place in the SDP, RTCP routing and its RTCP task (SR, SDES,
BYE); its own RTP loop waits on a SenderFeed that is never fed. The packets are written here,
straight to the subscriber's DTLS transport (wire.py). Hooks, per instance, guarded by
tests/sfu/test_aiortc_internals.py:
- `send` is wrapped to learn the negotiated payload types, mid and extension ids;
- `_retransmit` (NACK) answers from this stream's own history, RTX-wrapped when negotiated;
- `_send_keyframe` (PLI/FIR) asks the current source's publisher, rate-limited;
- `_handle_rtcp_packet` is wrapped to pass the subscriber's REMB on to the publisher;
- the private counters aiortc's SR is made from are set from the publisher's own SR."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import RTCP_PSFB_APP, AnyRtcpPacket, RtcpPsfbPacket, RtpPacket, unpack_remb_fci

from vsession.sfu.rtp.history import Extensions, History, rtx_packet, write
from vsession.sfu.rtp.rewrite import SEQ_MOD, Rewriter
from vsession.sfu.rtp.wire import send_now

if TYPE_CHECKING:
    from vsession.sfu.rtp.ingress import Downlink

log = logging.getLogger("vsession.sfu")

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME_UNITS = 1 << 18  # 6.18 fixed point seconds


class Egress:
    """Rewrites and sends one source after another on one subscriber's m-line."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        self.kind = sender.kind
        self.ssrc: int = sender._ssrc  # type: ignore[attr-defined]
        self.rtx_ssrc: int = sender._rtx_ssrc  # type: ignore[attr-defined]
        self.downlink: Downlink | None = None  # what this m-line carries now, once its answer is in
        self._payload_types: dict[str, int] = {}  # codec name (lower case) -> this leg's PT
        self._rtx_payload_type: int | None = None
        self._extensions: Extensions | None = None
        self._rewriter = Rewriter(48000 if self.kind == "audio" else 90000)
        self._history = History() if self.kind == "video" else None
        self._rtx_seq = secrets.randbelow(1 << 15)
        self._waiting_for_key = True
        self._source_ssrc: int | None = None
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0
        self._hook()

    def _hook(self) -> None:
        sender: Any = self.sender
        send: Callable[[RTCRtpSendParameters], Awaitable[None]] = sender.send
        handle_rtcp: Callable[[AnyRtcpPacket], Awaitable[None]] = sender._handle_rtcp_packet

        async def learning_send(parameters: RTCRtpSendParameters) -> None:
            self.configure(parameters)
            await send(parameters)

        async def handle(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                self._remb(packet)
            await handle_rtcp(packet)

        sender.send = learning_send
        sender._handle_rtcp_packet = handle
        sender._retransmit = self.retransmit
        sender._send_keyframe = self.request_keyframe

    def configure(self, parameters: RTCRtpSendParameters) -> None:
        codecs: list[RTCRtpCodecParameters] = parameters.codecs
        self._payload_types = {}
        for codec in codecs:
            if is_rtx(codec):
                if codecs and codec.parameters.get("apt") == codecs[0].payloadType:
                    self._rtx_payload_type = codec.payloadType
            else:
                self._payload_types.setdefault(codec.name.lower(), codec.payloadType)
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        self._extensions = Extensions(
            ids.get(MID, 0),
            parameters.muxId,
            ids.get(ABS_SEND_TIME, 0) if self.kind == "video" else 0,
            ids.get(AUDIO_LEVEL, 0) if self.kind == "audio" else 0,
        )

    def bind(self, downlink: Downlink | None) -> None:
        """Carry `downlink`'s source from now on (None: nothing); a new source starts a new
        stretch of this stream's timeline, video on a keyframe."""
        if downlink is self.downlink:
            return
        old, self.downlink = self.downlink, downlink
        if old is not None:
            old.ingress.egresses.discard(self)
            old.ingress.downlink_estimates.pop(self, None)
        self._rewriter.rebase()
        self._waiting_for_key = self.kind == "video"
        self._set_report(0, 0)  # NTP 0: no mapping until the new source's sender report
        if downlink is not None:
            downlink.ingress.egresses.add(self)
            if self._waiting_for_key:
                downlink.ingress.keyframes.request()

    def forward(self, packet: RtpPacket, codec_name: str, keyframe_start: bool) -> bytes | None:
        """The packet as this subscriber gets it, or None when it is not sent to them."""
        extensions = self._extensions
        if extensions is None:
            return None  # not negotiated yet
        if packet.ssrc != self._source_ssrc:
            # The publisher's stream restarted under a new SSRC: a new stretch, as for a new source.
            self._source_ssrc = packet.ssrc
            self._rewriter.rebase()
            self._waiting_for_key = self.kind == "video"
        if self._waiting_for_key:
            if not keyframe_start:
                # Asked again while it waits (rate-limited): a lost PLI must not leave it dark.
                self.request_keyframe()
                return None
            self._waiting_for_key = False
        payload_type = self._payload_types.get(codec_name)
        if payload_type is None:
            return None
        mapped = self._rewriter.map(packet.sequence_number, packet.timestamp)
        if mapped is None:
            return None
        seq, ts = mapped
        send_time = int(time.time() * ABS_SEND_TIME_UNITS) if extensions.abs_send_time else None
        block = extensions.block(send_time, packet.extensions.audio_level)
        payload = packet.payload
        data = write(payload_type, packet.marker, seq, ts, self.ssrc, block, payload, packet.padding_size)
        if self._history is not None:
            self._history.add(seq, 12 + len(block), data)
        self.packets += 1
        self.octets += len(payload)
        return data

    async def retransmit(self, seq: int) -> None:
        """Answer one NACKed sequence number, if this stream still holds that packet."""
        history = self._history
        entry = history.get(seq) if history is not None else None
        if entry is None:
            return  # never had it (lost upstream: the ingress asks the publisher) or too old
        header_size, data = entry
        if self._rtx_payload_type is not None:
            data = rtx_packet(data, header_size, self._rtx_payload_type, self._rtx_seq, self.rtx_ssrc)
            self._rtx_seq = (self._rtx_seq + 1) % SEQ_MOD
        if self.transmit(data):
            self.retransmitted += 1

    def transmit(self, data: bytes) -> bool:
        """Protect and send one packet to this subscriber now; False if their connection cannot."""
        return send_now(self.sender.transport, data)

    def request_keyframe(self) -> None:
        downlink = self.downlink
        if downlink is not None:
            downlink.ingress.keyframes.request()

    def _remb(self, packet: RtcpPsfbPacket) -> None:
        downlink = self.downlink
        if downlink is None:
            return
        try:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:
            return
        if self.ssrc in ssrcs:
            downlink.ingress.downlink_estimate(self, bitrate)

    def sender_report(self, ntp: int, rtp_timestamp: int) -> None:
        """The publisher's SR (NTP time and its RTP timestamp then), for this stream's next SR:
        the NTP clock stays the publisher's, so its audio and video stay in step."""
        ts = self._rewriter.timestamp(rtp_timestamp)
        if ts is not None and not self._waiting_for_key:
            self._set_report(ntp, ts)

    def _set_report(self, ntp: int, ts: int) -> None:
        sender: Any = self.sender
        sender._RTCRtpSender__ntp_timestamp = ntp
        sender._RTCRtpSender__rtp_timestamp = ts
        sender._RTCRtpSender__packet_count = self.packets & 0xFFFFFFFF
        sender._RTCRtpSender__octet_count = self.octets & 0xFFFFFFFF


def egress_of(sender: RTCRtpSender) -> Egress:
    """The sender's one Egress, made (and its hooks installed) the first time."""
    egress: Egress | None = getattr(sender, "_vsession_egress", None)
    if egress is None:
        egress = Egress(sender)
        sender._vsession_egress = egress  # type: ignore[attr-defined]
    return egress
