"""End-to-end withdrawal rounds (issue 10), run by tests/consent/test_race_rounds.py and, any number
of them, by scripts/race_rounds.py. Real aiortc peers through an in-process server; every camera
stamps a frame counter into its frames (tests.support.media.CounterTrack).

All rounds share one call (therapist t, clients s1 and s2; s3 is the newcomer's seat). Each round
gets everyone recording, then fires, with random offsets of up to MAX_OFFSET, a client's
withdrawal together with one of: the other client's accept (after that client withdrew and the
therapist asked again), a newcomer joining, the other client rejoining from a new device, the
therapist's ask-again, or all of accept, newcomer and ask-again. After the round settles:
  - no segment file holds a frame captured after a withdrawal was sent. The senders' counters are
    read right after the withdrawal's send returned: a frame numbered above that was handed to the
    encoder after the withdrawal was on the wire. (tests/consent/test_gate_closing.py reads them
    right before the send and allows one frame more, for the frame that can be captured while the
    send is under way; reading after the send needs no allowance);
  - no segment opened with anyone whose withdrawal or joining arrived after their last accept
    (seen in the machine's own order, tests.support.race_checks.ConsentLog);
  - every segment row is complete, its size and sha256 are the file's, its two audit entries
    agree, each withdrawal is stored and audited, and the audit chain is intact;
  - everyone in the call still receives everyone's live video.

The pages send cameras only: with microphones too (50 packets a second each, more than a camera's
30), four peers in one process fell behind on a busy 2-core machine and lost video packets. The
rejoin rounds (tests.support.rejoin_rounds) check that audio flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.inprocess import InProcessCall
from tests.support.practice_key import make_key
from tests.support.race_calls import (
    MAX_OFFSET,
    Device,
    connect,
    counters,
    device,
    eventually,
    failure,
    indicator,
    leave,
    media_only,
    participants,
    race,
    receives_live_video,
    send_join,
    serve_call,
    since_mark,
)
from tests.support.race_checks import (
    ConsentLog,
    Counters,
    audit_chain_intact,
    read_segment,
    records_agree,
    segment_rows,
)

RECORD_FRAMES = 20  # recorded before the race, so the segment the withdrawal cuts holds media
AFTER_FRAMES = 15  # after the round settled: time for a wrongly open gate to write something
DEVICE_GAP = 90  # a new device's counters start this far above its predecessor's
ROUNDS_PER_CALL = 100  # counters are 16 bits: a fresh call after this many rounds
KINDS = ("accept", "newcomer", "rejoin", "ask_again", "all")
RECORDING_AT_RACE = ("newcomer", "rejoin", "ask_again")  # the others begin paused
# The one refusal a round may cause: the therapist's ask-again replaced the prompt an accept answers.
STALE_PROMPT = "answered without a current prompt"
Action = Callable[[], Awaitable[object]]


@dataclass
class Withdrawal:
    pid: str
    before: dict[str, int]  # every sender's counter right before the withdrawal was sent
    after: dict[str, int]  # and right after the send returned


@dataclass
class RoundResult:
    index: int
    kind: str
    withdrawer: str
    offsets: dict[str, float] = field(default_factory=dict)
    order: str = ""  # the race's events in the order the server's consent machine got them
    segments: int = 0
    header_only: int = 0  # segments cut between their WebM header and their first packet
    frames: int = 0
    margin: int | None = None  # withdrawer's counter at the withdrawal - its last recorded frame
    # Whether the segment the withdrawal cut held the withdrawer's video from after everyone showed
    # recording (None: the round began paused). Not so when the recorder left the cameras out of
    # the segment (no keyframe within its first-packet wait) or got no media before the race.
    cut_video: bool | None = None
    keyframes_asked: int = 0  # by viewers whose picture was broken, at the round's media check
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        offsets = " ".join(f"{k}+{v * 1000:.0f}ms" for k, v in self.offsets.items())
        margin = "-" if self.margin is None else f"{self.margin} frames"
        video = {None: "", True: "", False: "; no video of the withdrawer up to the race"}[self.cut_video]
        asked = f"; viewers asked for {self.keyframes_asked} keyframes" if self.keyframes_asked else ""
        verdict = "ok" if not self.failures else "FAILED: " + "; ".join(self.failures)
        return (
            f"round {self.index:3} {self.kind:9} {self.withdrawer} withdraws [{offsets}] server order: "
            f"{self.order}; {self.segments} segments ({self.header_only} header only), {self.frames} frames, "
            f"margin {margin}{video}{asked}; {verdict}"
        )


@dataclass
class Race:
    """One round's race: what to fire, the devices it brings, and what it left to check."""

    actions: dict[str, Action] = field(default_factory=dict)
    arriving: dict[str, Device] = field(default_factory=dict)  # devices that replace or join
    senders: list[Device] = field(default_factory=list)  # every device whose counters matter
    withdrawals: list[Withdrawal] = field(default_factory=list)  # in the order they were sent
    since: int = 0  # the consent log's length when the round began
    first_segment: int = 0  # segments before this round's
    recording_at: dict[str, int] = field(default_factory=dict)  # counters when all showed recording
    last_answer: int = 0  # the last consent_answers row before this round
    last_audit: int = 0  # the last audit entry before this round


class WithdrawalCall:
    """The call the withdrawal rounds share: therapist t and clients s1 and s2 (s3 joins and leaves)."""

    def __init__(self, call: InProcessCall, identity: Path) -> None:
        self.call = call
        self.identity = identity
        self.services: Any = call.services
        self.devices: dict[str, Device] = {}  # the current device of each participant in the call
        self.made: list[Device] = []  # every device, each closed at the end (closing twice is harmless)
        self.next_base = {"t": 0, "s1": 0, "s2": 0, "s3": 0}
        self.log: ConsentLog | None = None

    async def start(self) -> None:
        for pid in ("t", "s1", "s2"):
            self.devices[pid] = self.new_device(pid)
            await self.devices[pid].client.join()
        await self.everyone_sees_everyone()
        self.log = ConsentLog(self.consent)

    def new_device(self, pid: str) -> Device:
        old = self.devices.get(pid)
        base = max(self.next_base[pid], old.counter + DEVICE_GAP if old else 0)
        self.next_base[pid] = base
        self.made.append(device(self.call, pid, base, microphone=False))
        return self.made[-1]

    @property
    def consent(self) -> Any:
        return self.services.consent(self.call.session_id)

    @property
    def therapist(self) -> Device:
        return self.devices["t"]

    async def everyone_sees_everyone(self) -> None:
        present = list(self.devices.values())
        await asyncio.gather(
            *(receives_live_video(v, s, self.call) for v in present for s in present if s is not v)
        )
        everyone = set(self.devices)
        for d in present:
            await eventually(lambda d=d: participants(d) == everyone, f"{d.pid} sees {everyone}")

    def mark(self) -> None:
        for d in self.devices.values():
            d.mark = len(d.client.messages)

    async def frames_pass(self, frames: int) -> None:
        """A clock made of the therapist's frames, not of sleeps."""
        target = self.therapist.counter + frames
        await eventually(lambda: self.therapist.counter >= target, f"{frames} more frames")

    async def all_show(self, state: str) -> None:
        for d in self.devices.values():
            await eventually(lambda d=d: indicator(d) == state, f"{d.pid}'s indicator shows {state}")

    async def prompt_for(self, d: Device) -> dict[str, Any]:
        await eventually(lambda: bool(since_mark(d, "consent_prompt")), f"{d.pid} is asked for consent")
        return since_mark(d, "consent_prompt")[-1]

    async def accept(self, d: Device, prompt: dict[str, Any]) -> None:
        assert self.log is not None
        self.log.accept_sent(d.pid)
        message = {"type": "consent", "request": prompt["request"], "prompt": prompt["prompt"]}
        await d.client.send({**message, "answer": "accept"})

    async def therapist_says(self, action: str) -> None:
        await self.therapist.client.send({"type": "record", "action": action})

    async def everyone_recording(self) -> dict[str, int]:
        """Ask (or ask again) whoever has no accept in effect; they accept. Returns the counters
        when every indicator showed recording."""
        self.mark()
        request = self.consent.request
        if request is None:
            pending = [d for pid, d in self.devices.items() if pid != "t"]
            await self.therapist_says("request")
        else:
            pending = [d for pid, d in self.devices.items() if request.answers.get(pid) != "accept"]
            if pending:
                await self.therapist_says("ask_again")
        for d in pending:
            await self.accept(d, await self.prompt_for(d))
        await self.all_show("recording")
        return counters(list(self.devices.values()))

    async def withdraw(self, pid: str, race_: Race) -> None:
        before = counters(race_.senders)
        await self.devices[pid].client.send({"type": "withdraw"})
        race_.withdrawals.append(Withdrawal(pid, before, counters(race_.senders)))

    async def quiet(self) -> bool:
        consent = self.consent
        if consent.gate.is_open or consent.segment is not None:
            return False
        if any(indicator(d) != "paused" for d in self.devices.values()):
            return False
        rows = await self.services.db.fetchall(
            "SELECT 1 FROM recordings WHERE session_id = ? AND state = 'writing'", (self.call.session_id,)
        )
        return not rows

    async def settled(self) -> None:
        """The gate stays closed, nothing is written and every indicator shows paused."""
        await eventually(self.quiet, "the gate closed, no segment written, every indicator paused")
        await self.frames_pass(AFTER_FRAMES)
        await eventually(self.quiet, "still so after more media")

    # -- a round --------------------------------------------------------------------------------

    async def round(self, index: int, rng: random.Random) -> RoundResult:
        kind = KINDS[index % len(KINDS)]
        w, o = rng.sample(["s1", "s2"], 2)
        result = RoundResult(index, kind, w)
        try:
            await self.play(result, o, rng)
        except Exception as exc:
            result.failures.append(failure(exc))
        return result

    async def play(self, result: RoundResult, o: str, rng: random.Random) -> None:
        assert self.log is not None
        race_ = Race(since=len(self.log.events), first_segment=self.consent.segments)
        race_.last_answer, race_.last_audit = await last_ids(self.services)
        for d in self.devices.values():
            d.errors = len(d.client.errors)
        race_.recording_at = await self.everyone_recording()
        await self.frames_pass(RECORD_FRAMES)
        race_.senders = list(self.devices.values())
        await self.prepare(result.kind, result.withdrawer, o, race_)
        result.offsets = {name: round(rng.uniform(0, MAX_OFFSET), 3) for name in race_.actions}
        race_start = len(self.log.events)
        await race(race_.actions, result.offsets)
        self.devices.update(race_.arriving)
        try:
            await self.settled()
        except AssertionError as exc:
            consent = self.consent
            result.failures.append(f"{exc} (gate open: {consent.gate.is_open}, state: {consent.state})")
            await self.stop()  # finish what is being written, so the files can be read
        result.order = self.log.order(race_start, ("withdraw", "answer:accept", "joining", "ask_again"))
        await self.check(result, race_)
        if result.failures:
            return  # the call is no longer known to be sound: a new one follows
        asked = sum(d.keyframes_asked for d in self.devices.values())
        try:
            await self.everyone_sees_everyone()
        finally:
            result.keyframes_asked = sum(d.keyframes_asked for d in self.devices.values()) - asked
        await self.newcomer_leaves()

    async def prepare(self, kind: str, w: str, o: str, race_: Race) -> None:
        """Set the race up; the withdrawal is its last action."""
        actions = race_.actions
        if kind in ("accept", "all"):
            await self.withdraw(o, race_)  # o's own withdrawal is checked like any other
            await self.all_show("paused")
            self.mark()
            await self.therapist_says("ask_again")
            prompt = await self.prompt_for(self.devices[o])
            actions[f"accept:{o}"] = lambda: self.accept(self.devices[o], prompt)
        if kind in ("newcomer", "all"):
            newcomer = race_.arriving["s3"] = self.new_device("s3")
            await connect(newcomer)  # its socket is open: joining the call is the event
            actions["join:s3"] = lambda: send_join(newcomer)
        if kind == "rejoin":
            old, new = self.devices[o], self.new_device(o)
            race_.arriving[o] = new
            actions[f"gone:{o}"] = old.client.close
            actions[f"rejoin:{o}"] = new.client.join  # its socket replaces the old one's
        if kind in ("ask_again", "all"):
            actions["ask_again:t"] = lambda: self.therapist_says("ask_again")
        race_.senders += race_.arriving.values()
        actions[f"withdraw:{w}"] = lambda: self.withdraw(w, race_)

    async def newcomer_leaves(self) -> None:
        gone = self.devices.pop("s3", None)
        if gone is None:
            return
        self.next_base["s3"] = gone.counter + DEVICE_GAP
        await leave(gone)
        for d in self.devices.values():
            await eventually(lambda d=d: participants(d) == {"t", "s1", "s2"}, f"{d.pid} sees s3 leave")

    async def stop(self) -> None:
        consent = self.consent
        with contextlib.suppress(AssertionError, ConnectionError, RuntimeError):
            if consent.request is not None:
                await self.therapist_says("stop")
                await eventually(lambda: consent.request is None, "the request ends", 10)
            await eventually(lambda: consent.segment is None, "the segment is finished", 10)

    async def close(self) -> None:
        await self.stop()
        for d in self.made:
            await d.client.close()

    # -- what a round must show -----------------------------------------------------------------

    async def check(self, result: RoundResult, race_: Race) -> None:
        assert self.log is not None
        log, failures = self.log, result.failures
        for d in self.devices.values():
            allowed = result.kind == "all" and d.pid not in (result.withdrawer, "t")
            failures += [
                f"{d.pid} was refused: {e}"
                for e in d.client.errors[d.errors :]
                if not (allowed and STALE_PROMPT in e)
            ]
        failures += log.opened_without_consent(race_.since)
        rows = await segment_rows(self.services, self.call.session_id, race_.first_segment)
        plans = {plan.number: (i, plan) for i, plan in log.plans(race_.since)}
        if sorted(plans) != [r["segment"] for r in rows]:
            failures.append(f"planned segments {sorted(plans)}, rows {[r['segment'] for r in rows]}")
        files: dict[int, Counters] = {}
        for row in rows:
            path = self.services.settings.data_dir / "recordings" / row["file_name"]
            failures += await records_agree(self.services, row, path, plans.get(row["segment"], (0, None))[1])
            try:
                files[row["segment"]] = await asyncio.to_thread(read_segment, self.identity, path)
            except Exception as exc:
                failures.append(f"segment {row['segment']} cannot be read: {failure(exc)}")
        failures += await audit_chain_intact(self.services)
        failures += await withdrawals_recorded(self.services, race_)
        result.segments, result.frames = len(files), sum(c.frames for c in files.values())
        result.header_only = sum(1 for c in files.values() if c.header_only)
        unreadable = sum(c.unreadable for c in files.values())
        if unreadable > result.frames // 20:
            failures.append(f"{unreadable} of {result.frames + unreadable} frames had no clean counter")
        for number, (_, plan) in plans.items():
            if number in files and set(files[number].by_sender) - set(plan.participants):
                failures.append(f"segment {number} holds {sorted(files[number].by_sender)}, planned {plan}")
        opened = {n: i for n, (i, _) in plans.items() if n in files}
        for k, withdrawal in enumerate(race_.withdrawals):
            arrived = log.arrived("withdraw", withdrawal.pid, race_.since)
            if arrived is None:
                failures.append(f"{withdrawal.pid}'s withdrawal never reached the consent machine")
                continue
            # A segment planned before the withdrawal arrived must hold nothing from after it; so must
            # any segment after the race's own withdrawal, since nobody accepts again in the round.
            race_withdrawal = k == len(race_.withdrawals) - 1
            cut = {n: files[n] for n, i in opened.items() if race_withdrawal or i < arrived}
            failures += frames_after(withdrawal, cut)
        self.margin(result, race_, files, opened)

    def margin(
        self, result: RoundResult, race_: Race, files: dict[int, Counters], opened: dict[int, int]
    ) -> None:
        """How close to the withdrawal the segment it cut ends: the segments planned before it
        arrived (and after the other client's withdrawal, in the rounds that begin with one)."""
        assert self.log is not None
        withdrawal, *setup = reversed(race_.withdrawals)
        arrived = self.log.arrived("withdraw", withdrawal.pid, race_.since) or 0
        after = max((self.log.arrived("withdraw", s.pid, race_.since) or 0 for s in setup), default=-1)
        tops = [
            max(files[n].by_sender[withdrawal.pid])
            for n, i in opened.items()
            if after < i < arrived and withdrawal.pid in files[n].by_sender
        ]
        if tops:
            result.margin = withdrawal.after[withdrawal.pid] - max(tops)
        if result.kind in RECORDING_AT_RACE:
            result.cut_video = max(tops, default=0) >= race_.recording_at[withdrawal.pid]


async def last_ids(services: Any) -> tuple[int, int]:
    row = await services.db.fetchone(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM consent_answers),"
        " (SELECT COALESCE(MAX(seq), 0) FROM audit_log)"
    )
    return row[0], row[1]


async def withdrawals_recorded(services: Any, race_: Race) -> list[str]:
    """Each withdrawal of the round is stored as an answer and in the audit log, once."""
    stored = await services.db.fetchall(
        "SELECT participant FROM consent_answers WHERE id > ? AND answer = 'withdraw' ORDER BY id",
        (race_.last_answer,),
    )
    audited = await services.db.fetchall(
        "SELECT seq FROM audit_log WHERE seq > ? AND action = 'consent.withdraw'", (race_.last_audit,)
    )
    sent = [w.pid for w in race_.withdrawals]
    if [r["participant"] for r in stored] != sent or len(audited) != len(sent):
        return [
            f"withdrawals sent {sent}, stored {[r['participant'] for r in stored]}, audited {len(audited)}"
        ]
    return []


def frames_after(withdrawal: Withdrawal, files: dict[int, Counters]) -> list[str]:
    found = []
    for number, held in files.items():
        for sender, numbers in held.by_sender.items():
            limit = withdrawal.after.get(sender, 0)
            late = [n for n in numbers if n > limit]
            if late:
                found.append(
                    f"segment {number} holds {sender}'s frames {late[:5]} captured after {withdrawal.pid}"
                    f" withdrew ({sender}'s counter was {withdrawal.before.get(sender)} before the send,"
                    f" {limit} after)"
                )
    return found


async def withdrawal_rounds(
    root: Path, rounds: int, seed: int, report: Callable[[RoundResult], None], keep_going: bool = False
) -> list[RoundResult]:
    """Run `rounds` rounds; round i draws from random.Random(f'{seed}:{i}'). Stops at the first
    failure unless `keep_going` (then the rounds go on in a fresh call)."""
    results: list[RoundResult] = []
    first = 0
    while first < rounds:
        batch = range(first, min(rounds, first + ROUNDS_PER_CALL))
        await withdrawal_batch(root / f"call-{first}", batch, seed, report, results)
        first = results[-1].index + 1 if results else batch.stop
        if results and results[-1].failures and not keep_going:
            break
    return results


async def withdrawal_batch(
    folder: Path, batch: range, seed: int, report: Callable[[RoundResult], None], results: list[RoundResult]
) -> None:
    """The rounds of `batch` in one call, until one fails."""
    await asyncio.to_thread(folder.mkdir, parents=True)
    identity, recipient = await asyncio.to_thread(make_key, folder)
    async with serve_call(folder, 3, recording_recipient=recipient) as inprocess:
        world = WithdrawalCall(inprocess, identity)
        try:
            await world.start()
            for index in batch:
                results.append(await world.round(index, random.Random(f"{seed}:{index}")))
                report(results[-1])
                if results[-1].failures:
                    return
        finally:
            await world.close()


def withdrawal_summary(results: list[RoundResult]) -> str:
    passed = sum(1 for r in results if not r.failures)
    media = sum(1 for r in results if media_only(r.failures))
    segments, header_only = sum(r.segments for r in results), sum(r.header_only for r in results)
    margins = [r.margin for r in results if r.margin is not None]
    margin = f"max {max(margins)}, median {statistics.median(margins)}" if margins else "none"
    first = sum(1 for r in results if r.order.startswith("withdraw"))
    cut = [r.cut_video for r in results if r.cut_video is not None]
    return "\n  ".join(
        [
            f"withdrawal rounds: {passed}/{len(results)} passed ({media} failed the media checks only)",
            f"{segments} segments ({header_only} header only) and {sum(r.frames for r in results)} frames "
            "checked",
            f"margin (the withdrawer's counter when the withdrawal was sent - its last recorded frame, "
            f"in 33 ms frames): {margin}",
            f"the withdrawal reached the server before the event it raced in {first} rounds",
            f"the segment the withdrawal cut held the withdrawer's video right up to the race in "
            f"{sum(cut)} of {len(cut)} rounds that began recording",
            f"viewers asked for {sum(r.keyframes_asked for r in results)} keyframes",
        ]
    )
