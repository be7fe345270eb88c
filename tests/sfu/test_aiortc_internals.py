"""The aiortc and aioice internals vsession relies on. When an upgrade changes one of them, these
fail first and name it, instead of calls silently breaking."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import secrets

import aioice
import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import NackGenerator, RemoteStreamTrack, RTCRtpReceiver, TimestampMapper

from vsession.sfu.ports import use_media_ports

PINNED = "1.16.0"


def source_of(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def need(condition: bool, internal: str) -> None:
    if not condition:
        pytest.fail(f"aiortc internal changed: {internal} (pinned {PINNED}, found {aiortc.__version__})")


def test_aiortc_is_the_pinned_version() -> None:
    need(aiortc.__version__ == PINNED, "version; re-check every internal below before moving the pin")


async def test_receiver_decoder_queue_can_be_replaced_before_start() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        need(hasattr(receiver, "_RTCRtpReceiver__decoder_queue"), "RTCRtpReceiver.__decoder_queue")
        handler = source_of(RTCRtpReceiver._handle_rtp_packet)
        need(
            "self.__decoder_queue.put((codec, encoded_frame))" in handler,
            "how _handle_rtp_packet hands frames on",
        )
        need("encoded_frame.timestamp" in handler, "JitterFrame.timestamp set by the receiver")
        receive = source_of(RTCRtpReceiver.receive)
        need("self.__decoder_queue," in receive, "the decoder thread reads __decoder_queue")
        stopper = source_of(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)  # type: ignore[attr-defined]
        need("self.__decoder_queue.put(None)" in stopper, "__stop_decoder() signals the queue with None")
    finally:
        await pc.close()


def test_remote_track_queue() -> None:
    need("self._queue" in source_of(RemoteStreamTrack.__init__), "RemoteStreamTrack._queue")


def test_receiver_can_send_pli() -> None:
    need(hasattr(RTCRtpReceiver, "_send_rtcp_pli"), "RTCRtpReceiver._send_rtcp_pli")
    need(
        list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters) == ["self", "media_ssrc"],
        "RTCRtpReceiver._send_rtcp_pli(media_ssrc)",
    )


def test_sender_answers_pli_and_fir_through_send_keyframe() -> None:
    need(hasattr(RTCRtpSender, "_send_keyframe"), "RTCRtpSender._send_keyframe")
    handler = source_of(RTCRtpSender._handle_rtcp_packet)
    need("self._send_keyframe()" in handler, "_handle_rtcp_packet calls self._send_keyframe() on PLI/FIR")
    need("RTCP_PSFB_PLI" in handler and "RTCP_PSFB_FIR" in handler, "PLI and FIR handling in the sender")


def test_sender_packs_av_packets_as_they_are() -> None:
    need("self.__encoder.pack(data)" in source_of(RTCRtpSender._next_encoded_frame), "sender packs av.Packet")


def test_aioice_host_addresses_hook() -> None:
    need(hasattr(aioice.ice, "get_host_addresses"), "aioice.ice.get_host_addresses")
    need(
        list(inspect.signature(aioice.ice.get_host_addresses).parameters) == ["use_ipv4", "use_ipv6"],
        "aioice.ice.get_host_addresses(use_ipv4, use_ipv6)",
    )
    need(
        "get_host_addresses(" in inspect.getsource(aioice.ice.Connection),
        "Connection calls get_host_addresses",
    )


# vsession/sfu/ports.py replaces this method (host sockets bound in media_ports, then aioice's own
# code with no addresses for TURN). Any change to it, even in a 0.13.x, means diffing it against
# _ranged_candidates there before moving the hash.
GET_COMPONENT_CANDIDATES_SHA256 = "118597a9fcb703f9950c2f2964e3e44423724576eda484ba6747b1610ccf4a2f"


def test_aioice_get_component_candidates_is_the_one_media_ports_replaces() -> None:
    method = aioice.ice.Connection.get_component_candidates
    source = inspect.getsource(method)
    found = hashlib.sha256(source.encode()).hexdigest()
    if found != GET_COMPONENT_CANDIDATES_SHA256:
        pytest.fail(
            f"aioice internal changed: Connection.get_component_candidates (aioice {aioice.__version__}):"
            " re-check vsession/sfu/ports.py's copy of its host part, then update the hash"
        )
    need(
        list(inspect.signature(method).parameters) == ["self", "component", "addresses", "timeout"],
        "aioice Connection.get_component_candidates(component, addresses, timeout)",
    )
    need(
        "self.get_component_candidates(component=component, addresses=addresses)"
        in inspect.getsource(aioice.ice.Connection.gather_candidates),
        "aioice gather_candidates gathers through get_component_candidates",
    )
    need(
        list(inspect.signature(aioice.ice.server_reflexive_candidate).parameters)
        == ["protocol", "stun_server"],
        "aioice.ice.server_reflexive_candidate(protocol, stun_server)",
    )


async def test_media_ports_candidates_match_aioice_but_for_the_port() -> None:
    """The replacement makes the host candidates aioice makes, on a port of the range; and
    switching the range off puts aioice's own method back."""
    original = aioice.ice.Connection.get_component_candidates
    first = 20000 + secrets.randbelow(10000)  # below the kernel's ephemeral ports
    ports = range(first, first + 10)
    plain = aioice.ice.Connection(ice_controlling=True)
    ranged = aioice.ice.Connection(ice_controlling=True)
    try:
        [theirs] = await plain.get_component_candidates(1, ["127.0.0.1"])
        use_media_ports(ports)
        [ours] = await ranged.get_component_candidates(1, ["127.0.0.1"])
    finally:
        use_media_ports(None)
        await plain.close()
        await ranged.close()
    assert aioice.ice.Connection.get_component_candidates is original
    assert ours.port in ports and theirs.port not in ports
    assert vars(ours) == vars(theirs) | {"port": ours.port}


# The RTP relay (vsession/sfu/rtp/) replaces RTCRtpReceiver._handle_rtp_packet with
# Ingress.handle, which does what this method does minus depayloading and the jitter buffer. Any
# change to it means diffing it against Ingress.handle before moving the hash.
HANDLE_RTP_PACKET_SHA256 = "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238"


def test_receiver_rtp_handler_is_the_one_the_rtp_relay_replaces() -> None:
    found = hashlib.sha256(source_of(RTCRtpReceiver._handle_rtp_packet).encode()).hexdigest()
    need(found == HANDLE_RTP_PACKET_SHA256, "RTCRtpReceiver._handle_rtp_packet: re-check Ingress.handle")
    need(
        "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)"
        in source_of(RTCDtlsTransport._handle_rtp_data),
        "the DTLS transport hands parsed packets to the receiver instance's _handle_rtp_packet",
    )
    need(
        "await recipient._handle_rtcp_packet(packet)" in source_of(RTCDtlsTransport._handle_rtcp_data),
        "the DTLS transport hands RTCP to the receiver's and sender's _handle_rtcp_packet",
    )
    sender_side = source_of(RTCDtlsTransport._send_rtp)
    need(
        "protect_rtcp(data)" in sender_side and "protect(data)" in sender_side,
        "_send_rtp protects RTP and RTCP",
    )


async def test_receiver_state_the_rtp_relay_reads() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        for name, kind in (
            ("kind", str),
            ("codecs", dict),
            ("rtx_ssrc", dict),
            ("active_ssrc", dict),
            ("remote_streams", dict),
            ("nack_generator", NackGenerator),
            ("remote_bitrate_estimator", RemoteBitrateEstimator),
        ):
            need(
                isinstance(getattr(receiver, f"_RTCRtpReceiver__{name}", None), kind),
                f"RTCRtpReceiver.__{name}",
            )
        need(
            hasattr(receiver, "_RTCRtpReceiver__rtcp_ssrc") and receiver._enabled,
            "RTCRtpReceiver.__rtcp_ssrc, _enabled",
        )
    finally:
        await pc.close()
    receive = source_of(RTCRtpReceiver.receive)
    # Filled in place, so the dicts read before the receiver starts are the ones it fills.
    need("self.__codecs[codec.payloadType] = codec" in receive, "receive() fills __codecs in place")
    need(
        "self.__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc" in receive, "receive() fills __rtx_ssrc in place"
    )
    need(
        "self.__active_ssrc.items()" in source_of(RTCRtpReceiver.getSynchronizationSources),
        "active SSRCs for PLI",
    )
    need(
        "self.__remote_streams.items()" in source_of(RTCRtpReceiver._run_rtcp),
        "receiver reports from __remote_streams",
    )
    need(
        list(inspect.signature(RTCRtpReceiver._send_rtcp_nack).parameters) == ["self", "media_ssrc", "lost"]
        and list(inspect.signature(RTCRtpReceiver._send_rtcp).parameters) == ["self", "packet"],
        "RTCRtpReceiver._send_rtcp_nack(media_ssrc, lost), _send_rtcp(packet)",
    )
    need(
        list(inspect.signature(RemoteBitrateEstimator.add).parameters)
        == ["self", "arrival_time_ms", "abs_send_time", "payload_size", "ssrc"],
        "RemoteBitrateEstimator.add",
    )
    need("self.missing" in source_of(NackGenerator.__init__), "NackGenerator.missing")


# aiortc's sender sends its SR from these private counters, which the RTP relay sets from the
# publisher's own SR; any change means re-checking Egress.sender_report.
SENDER_RUN_RTCP_SHA256 = "51e0a924eac4e39ba2f333981f298e3f16305582977c5e73fa7128e6f800ab0d"


async def test_sender_hooks_the_rtp_relay_uses() -> None:
    found = hashlib.sha256(source_of(RTCRtpSender._run_rtcp).encode()).hexdigest()
    need(found == SENDER_RUN_RTCP_SHA256, "RTCRtpSender._run_rtcp: re-check Egress.sender_report")
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        for name in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"):
            need(hasattr(sender, f"_RTCRtpSender__{name}"), f"RTCRtpSender.__{name}")
        need(
            isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int),
            "RTCRtpSender._ssrc, _rtx_ssrc",
        )
    finally:
        await pc.close()
    connect = source_of(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    need(
        "await transceiver.sender.send(self.__localRtp(transceiver))" in connect,
        "the connection starts each sender through its instance's send()",
    )
    local = source_of(RTCPeerConnection._RTCPeerConnection__localRtp)  # type: ignore[attr-defined]
    need(
        all(f in local for f in ("codecs=transceiver._codecs", "headerExtensions=", "muxId=transceiver.mid")),
        "send parameters carry the negotiated codecs, header extensions and mid",
    )
    handler = source_of(RTCRtpSender._handle_rtcp_packet)
    need("await self._retransmit(seq)" in handler, "NACKs reach the sender instance's _retransmit(seq)")
    need("unpack_remb_fci(packet.fci)" in handler, "REMB reaches the sender's _handle_rtcp_packet")
    need(
        list(inspect.signature(JitterBuffer.add).parameters) == ["self", "packet"]
        and list(inspect.signature(TimestampMapper.map).parameters) == ["self", "timestamp"],
        "JitterBuffer.add(packet), TimestampMapper.map (the recorder's side path)",
    )


# vsession/sfu/rtp/wire.py does what these do, without their coroutines: receiving (DTLS
# transport's SRTP branch, then its RTP handler) and sending (protect, then the candidate pair's
# socket). Any change to one means diffing it against wire.py before moving its hash.
WIRE_SHA256 = {
    "RTCDtlsTransport._recv_next": "998076720c05aa13faadff2dfa337f6964c171fa6791789a72693e1480c74102",
    "RTCDtlsTransport._handle_rtp_data": "5def9061cc3da1f67db719e43b0b1ee242688f231eb963cf2cb5d9696abfc9e2",
    "RTCDtlsTransport._send_rtp": "763b02bceb0b0ab9c08d87eb6c0852a404322aafd377d28ad4a719f7c790ed9d",
    "StunProtocol.send_data": "8bfbce074a897482d13dba6bf49ff6f09e48f84327143b801a3a12d2e43de358",
    "Connection.data_received": "5631b17fab717d6b9a956b775d6f5580a50c2419dc6ef693286a98355e98a253",
}


async def test_the_paths_the_rtp_relay_takes_without_coroutines() -> None:
    for method in (
        RTCDtlsTransport._recv_next,
        RTCDtlsTransport._handle_rtp_data,
        RTCDtlsTransport._send_rtp,
        aioice.ice.StunProtocol.send_data,
        aioice.ice.Connection.data_received,
    ):
        found = hashlib.sha256(source_of(method).encode()).hexdigest()
        need(
            found == WIRE_SHA256[method.__qualname__],
            f"{method.__qualname__}: re-check vsession/sfu/rtp/wire.py",
        )
    need(
        "self.receiver.data_received(data, self.local_candidate.component)"
        in source_of(aioice.ice.StunProtocol.datagram_received),
        "aioice hands datagrams to its Connection instance's data_received",
    )
    need(
        "await self._queue.get()" in source_of(aioice.ice.Connection.recvfrom),
        "Connection.recvfrom reads _queue",
    )
    need("self._nominated.get(component)" in source_of(aioice.ice.Connection.sendto), "Connection._nominated")
    pc = RTCPeerConnection()
    try:
        transport = pc.addTransceiver("video", direction="recvonly").receiver.transport
        for name in ("_state", "_rx_srtp", "_tx_srtp", "_rtp_router", "_rtp_header_extensions_map"):
            need(hasattr(transport, name), f"RTCDtlsTransport.{name}")
        connection = transport.transport._connection
        need(isinstance(connection, aioice.ice.Connection), "RTCIceTransport._connection")
        need(
            isinstance(connection._queue, asyncio.Queue) and isinstance(connection._nominated, dict),
            "aioice Connection._queue, _nominated",
        )
    finally:
        await pc.close()
