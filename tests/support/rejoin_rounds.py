"""End-to-end rejoin rounds (issue 10), run by tests/consent/test_race_rounds.py and, any number
of them, by scripts/race_rounds.py. Real aiortc peers through an in-process server.

A client alone in the call reloads its page: the old page's socket goes (closed, or dropped
without a close frame), which empties the room, closes it and removes it, while the new page
connects (its socket replaces the old one's) and joins; both start at random offsets. The
therapist joins after the race, or in it (around the moment the old page goes, when the room is
being removed). Then the two must be in one call: each sees the other in the participant list,
the session's one room holds both, and each receives the other's live media from the new page
(the client's camera stamps counters only the new page uses; the therapist's is red) and audio.
The therapist leaves before the next round, so the client is alone again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.inprocess import InProcessCall
from tests.support.race_calls import (
    MAX_OFFSET,
    RED,
    Device,
    connect,
    device,
    drop,
    eventually,
    failure,
    leave,
    media_only,
    participants,
    race,
    receives_audio,
    receives_live_video,
    send_join,
    serve_call,
)

DEVICE_BASE = 1000  # page k counts from (k % 60 + 1) * 1000: no two pages in a row overlap, and < 2^16
THERAPIST_SPREAD = 0.03  # seconds either side of the old page going, for a therapist who races


@dataclass
class RejoinResult:
    index: int
    how: str = "?"  # the old page's socket: closed, or dropped without a close frame
    therapist: str = "?"  # the therapist's join: after the race, or racing it
    offsets: dict[str, float] = field(default_factory=dict)
    outcome: str = ""  # where the two met: the room the client was alone in, or a new one
    keyframes_asked: int = 0  # by a viewer whose picture was broken
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        offsets = " ".join(f"{k}+{v * 1000:.0f}ms" for k, v in self.offsets.items())
        asked = f"; viewers asked for {self.keyframes_asked} keyframes" if self.keyframes_asked else ""
        verdict = "ok" if not self.failures else "FAILED: " + "; ".join(self.failures)
        return (
            f"rejoin {self.index:3} old socket {self.how:7} therapist {self.therapist:6} [{offsets}] "
            f"met in the {self.outcome}{asked}; {verdict}"
        )


class RejoinCall:
    def __init__(self, call: InProcessCall) -> None:
        self.call = call
        self.services: Any = call.services
        self.client: Device | None = None
        self.therapist: Device | None = None
        self.made: list[Device] = []  # every device, each closed at the end

    def device(self, pid: str, base: int = 0, colour: tuple[int, int, int] | None = None) -> Device:
        self.made.append(device(self.call, pid, base, colour))
        return self.made[-1]

    def members(self) -> set[str]:
        return set(getattr(self.services.sfu.rooms.get(self.call.session_id), "members", {}))

    async def round(self, index: int, rng: random.Random) -> RejoinResult:
        result = RejoinResult(index)
        try:
            await self.play(result, rng)
        except Exception as exc:
            result.failures.append(failure(exc))
        return result

    async def play(self, result: RejoinResult, rng: random.Random) -> None:
        if self.client is None:  # the first round's client joins alone
            self.client = self.device("s1", DEVICE_BASE * 61)
            await self.client.client.join()
        if self.therapist is not None:
            await leave(self.therapist)
        await eventually(lambda: self.members() == {"s1"}, "s1 is alone in the call")
        old = self.client
        new = self.client = self.device("s1", (result.index % 60 + 1) * DEVICE_BASE)
        therapist = self.therapist = self.device("t", colour=RED)
        result.how, result.therapist = rng.choice(["closed", "dropped"]), rng.choice(["after", "racing"])
        actions: dict[str, Callable[[], Awaitable[object]]] = {
            "old goes": old.client.close if result.how == "closed" else lambda: drop(old),
            "new joins": new.client.join,
        }
        result.offsets = {name: round(rng.uniform(0, MAX_OFFSET), 3) for name in actions}
        if result.therapist == "racing":
            await connect(therapist)
            actions["t joins"] = lambda: send_join(therapist)
            spread = rng.uniform(-THERAPIST_SPREAD, THERAPIST_SPREAD)
            result.offsets["t joins"] = round(max(0.0, result.offsets["old goes"] + spread), 3)
        room_before = self.services.sfu.rooms.get(self.call.session_id)
        await race(actions, result.offsets)
        if result.therapist == "after":
            await eventually(new.client.joined.is_set, "the new page joined")
            await therapist.client.join()
        try:
            await self.same_call(new, therapist)
        finally:
            room = self.services.sfu.rooms.get(self.call.session_id)
            result.outcome = "old room" if room is room_before else "new room"
            if room_before is not None and room_before is not room:
                if room_before.members or not room_before.closed:
                    result.failures.append(f"the old room is still open with {sorted(room_before.members)}")
            for d in (new, therapist):
                result.failures += [f"{d.pid} was refused: {e}" for e in d.client.errors]
                result.keyframes_asked += d.keyframes_asked
            await old.client.close()

    async def same_call(self, client: Device, therapist: Device) -> None:
        both = {"t", "s1"}
        await eventually(lambda: participants(client) == both, f"the rejoiner sees {both}")
        await eventually(lambda: participants(therapist) == both, f"the therapist sees {both}")
        await eventually(lambda: self.members() == both, "the session's room holds both")
        await asyncio.gather(
            receives_live_video(therapist, client, self.call),
            receives_live_video(client, therapist, self.call),
            receives_audio(therapist, "s1"),
            receives_audio(client, "t"),
        )

    async def close(self) -> None:
        for d in self.made:
            await d.client.close()


async def rejoin_rounds(
    root: Path, rounds: int, seed: int, report: Callable[[RejoinResult], None], keep_going: bool = False
) -> list[RejoinResult]:
    """Run `rounds` rounds in one call; round i draws from random.Random(f'{seed}:rejoin:{i}').
    Stops at the first failure unless `keep_going` (then the rounds go on in a fresh call)."""
    results: list[RejoinResult] = []
    first = 0
    while first < rounds:
        await rejoin_batch(root / f"rejoin-{first}", range(first, rounds), seed, report, results)
        first = results[-1].index + 1
        if results[-1].failures and not keep_going:
            break
    return results


async def rejoin_batch(
    folder: Path, batch: range, seed: int, report: Callable[[RejoinResult], None], results: list[RejoinResult]
) -> None:
    await asyncio.to_thread(folder.mkdir, parents=True)
    async with serve_call(folder, 1) as inprocess:
        world = RejoinCall(inprocess)
        try:
            for index in batch:
                results.append(await world.round(index, random.Random(f"{seed}:rejoin:{index}")))
                report(results[-1])
                if results[-1].failures:
                    return
        finally:
            await world.close()


def rejoin_summary(results: list[RejoinResult]) -> str:
    passed = sum(1 for r in results if not r.failures)
    ways = ", ".join(
        f"therapist {how} in the {room}: {sum(1 for r in results if (r.therapist, r.outcome) == (how, room))}"
        for how in ("after", "racing")
        for room in ("old room", "new room")
    )
    asked = sum(r.keyframes_asked for r in results)
    media = sum(1 for r in results if media_only(r.failures))
    return (
        f"rejoin rounds: {passed}/{len(results)} passed ({media} failed the media checks only); {ways}; "
        f"viewers asked for {asked} keyframes"
    )
