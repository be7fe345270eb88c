"""The aiortc and aioice internals vsession relies on. When an upgrade changes one of them, these
fail first and name it, instead of calls silently breaking."""

from __future__ import annotations

import hashlib
import inspect
import secrets

import aioice
import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver

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
