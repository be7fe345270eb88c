"""The aiortc and aioice internals vsession relies on. When an upgrade changes one of them, these
fail first and name it, instead of calls silently breaking."""

from __future__ import annotations

import inspect

import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver

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
