"""Rejoins and repeated screen shares do not wear a call out (issue 10). The server reuses the
m-lines that leavers and stopped shares left inactive, so the therapist's offer stays the same size
however often a client reloads, and media keeps flowing both ways on the reused m-lines.

Before, every rejoin added two m-lines (about 2.7 KB) to the therapist's offer: here its media
stopped at the 21st rejoin, and the issue saw the socket closed (code 1009) at about the 25th.

Real aiortc peers through an in-process server. Each new connection of the client sends another
colour than the one before it, so the colour the therapist receives shows that the media on a
recycled m-line comes from the newest connection, not from a stale one."""

from __future__ import annotations

import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection

from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall
from tests.support.media import ColourTrack, mean_colour

RED, GREEN, BLUE, YELLOW = (220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 210, 40)
CLIENT_COLOURS = (GREEN, BLUE)
# An SDP's size varies a little with the digits of random SSRCs, ports and session ids, never by
# an m-line (about 1 KB each).
SDP_SLACK = 256


def close_to(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) < 40 for x, y in zip(a, b, strict=True))


def m_lines(offer: dict) -> int:
    return sum(1 for line in offer["sdp"].splitlines() if line.startswith("m="))


def peer(call: InProcessCall, who: object, colour: tuple[int, int, int]) -> CallClient:
    url, headers = call.ws(who)  # type: ignore[arg-type]
    return CallClient(url, headers, {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()})


async def receives(
    viewer: CallClient, peer_id: str, colour: tuple[int, int, int], source: str = "camera"
) -> None:
    """More of `peer_id`'s video (in `colour`) and, for a camera, its audio reach `viewer` from now on."""
    video, audio = viewer.frames[(peer_id, source)], viewer.frames[(peer_id, "microphone")]

    def flowing() -> bool:
        frame = viewer.latest.get((peer_id, source))
        return (
            viewer.frames[(peer_id, source)] >= video + 10
            and (source != "camera" or viewer.frames[(peer_id, "microphone")] >= audio + 10)
            and frame is not None
            and close_to(mean_colour(frame), colour)
        )

    await viewer.wait_for(flowing, patience=30)


async def rejoins_keep_the_offer_bounded(call: InProcessCall, rejoins: int) -> list[int]:
    """The client connects afresh `rejoins` times (as a reload does); returns the therapist's
    offer size after the first join and after each rejoin."""
    therapist = peer(call, call.therapist.agent, RED)
    client: CallClient | None = None
    sizes: list[int] = []
    try:
        await therapist.join()
        for round_ in range(rejoins + 1):
            if client is not None:
                await client.close()
            colour = CLIENT_COLOURS[round_ % 2]
            client = peer(call, call.clients[0], colour)
            await client.join()
            await receives(therapist, "s1", colour)
            await receives(client, "t", RED)
            assert therapist.last_offer is not None and therapist.errors == []
            sizes.append(len(therapist.last_offer["sdp"]))
            # Two upstream m-lines (microphone, camera) and the client's two, whatever the round.
            assert m_lines(therapist.last_offer) == 4, (round_, sizes)
            if round_ > 2:
                assert sizes[-1] <= sizes[2] + SDP_SLACK, (round_, sizes)
    finally:
        await therapist.close()
        if client is not None:
            await client.close()
    return sizes


async def test_create_offer_does_not_yield() -> None:
    """Peer.negotiate reads whose media each m-line carries right after createOffer, trusting that
    nothing ran in between; aiortc 1.16's createOffer finishes without giving up the loop."""
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="sendonly")
        making = pc.createOffer()
        with pytest.raises(StopIteration) as done:
            making.send(None)
        assert "m=video" in done.value.value.sdp
    finally:
        await pc.close()


async def test_thirty_rejoins_reuse_the_therapist_m_lines(inprocess_call) -> None:
    sizes = await rejoins_keep_the_offer_bounded(await inprocess_call(clients=1), rejoins=30)
    print(f"therapist offer SDP bytes: first join {sizes[0]}, rejoin 1 {sizes[1]}, rejoin 30 {sizes[30]}")


@pytest.mark.slow
async def test_a_hundred_rejoins_reuse_the_therapist_m_lines(inprocess_call, request) -> None:
    if "slow" not in request.config.getoption("markexpr"):
        pytest.skip("100 rejoins take about 1.5 minutes: run with -m slow (the 30-rejoin test runs always)")
    sizes = await rejoins_keep_the_offer_bounded(await inprocess_call(clients=1), rejoins=100)
    print(
        f"therapist offer SDP bytes: first join {sizes[0]}, rejoin 1 {sizes[1]}, rejoin 25 {sizes[25]},"
        f" rejoin 100 {sizes[100]}"
    )


@pytest.mark.parametrize("relay", ["passthrough", "decoding"])
async def test_a_recycled_mid_carries_the_next_participant(inprocess_call, relay: str) -> None:
    """s1 leaves for good and s2 arrives: s2's media takes s1's old m-lines at the therapist, the
    offer says so, and the therapist gets s2's media there (and nothing more counted as s1's)."""
    call = await inprocess_call(clients=2, relay=relay)
    therapist = peer(call, call.therapist.agent, RED)
    first = peer(call, call.clients[0], GREEN)
    second = peer(call, call.clients[1], BLUE)
    try:
        await therapist.join()
        await first.join()
        await receives(therapist, "s1", GREEN)
        assert therapist.last_offer is not None
        mids_of_first = {mid for mid, info in therapist.last_offer["streams"].items() if info["peer"] == "s1"}
        lines = m_lines(therapist.last_offer)
        await first.close()
        await therapist.wait_for(lambda: {p["id"] for p in therapist.participants} == {"t"})
        of_first = therapist.frames[("s1", "camera")]
        await second.join()
        await receives(therapist, "s2", BLUE)
        await receives(second, "t", RED)
        streams = therapist.last_offer["streams"]
        assert {mid for mid, info in streams.items() if info["peer"] == "s2"} == mids_of_first
        assert all(info["peer"] != "s1" for info in streams.values())
        assert therapist.frames[("s1", "camera")] == of_first
        assert m_lines(therapist.last_offer) == lines
        assert therapist.errors == [] and second.errors == []
    finally:
        for client in (therapist, first, second):
            await client.close()


async def test_decoding_relay_rejoins_reuse_the_therapist_m_lines(inprocess_call) -> None:
    """The decoding relay re-encodes per sender; a recycled sender keeps its encoder and restarts
    it on a keyframe."""
    await rejoins_keep_the_offer_bounded(await inprocess_call(clients=1, relay="decoding"), rejoins=4)


async def test_repeated_screen_shares_recycle_the_viewers_m_lines(inprocess_call) -> None:
    """Each share used to add a downstream m-line at everyone else; now the last share's is reused,
    and each share's video arrives on it. (The sharer's upstream m-line is new each time: see
    Peer.drop_upstream.)"""
    call = await inprocess_call(clients=1)
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    sizes: list[int] = []
    try:
        await therapist.join()
        await client.join()
        await receives(client, "t", RED)
        for share in range(5):
            colour = (YELLOW, BLUE)[share % 2]
            await therapist.share_screen(ColourTrack(colour))
            await receives(client, "t", colour, source="screen")
            assert client.last_offer is not None
            sizes.append(len(client.last_offer["sdp"]))
            # The client's two upstream m-lines, the therapist's camera, microphone and screen.
            assert m_lines(client.last_offer) == 5, (share, sizes)
            await therapist.stop_screen()
            await client.wait_for(lambda: all(i["source"] != "screen" for i in client.streams.values()))
        assert max(sizes) <= sizes[1] + SDP_SLACK, sizes
        await receives(client, "t", RED)
        await receives(therapist, "s1", GREEN)
    finally:
        await therapist.close()
        await client.close()
