"""One therapy session's call, driven through the real consent machine, room membership and
recording service by a `ShuffledLoop`, with the invariants of consent checked after every step.

A schedule is a list of batches of events; the events of a batch start together and race. Each
event is what a page's message or a socket's end makes the server do. Participants' connections
are light stand-ins for aiortc peers (no ICE, no media), so thousands of schedules run in
minutes; tests/consent/test_race_rounds.py runs the same races with real peers and media.

The invariant (issue 10):
- the gate is open only if every present participant's latest stored answer to the active
  request is accept, given after the last close that concerned them, and the request was made
  after the last stop-like event;
- a close is sticky: once a close concerning the recorded people has arrived, the epoch that
  was open is never open again;
- when things are quiet: one call room per session, at most one segment being written, and only
  while the gate is open; DB rows, audit entries and files agree; no file is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import os
import random
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.support.inline_sqlite import InlineConnection, open_inline
from tests.support.scheduler import InlineExecutor, ShuffledLoop, Violation
from vsession.audit import AuditLog
from vsession.auth.context import AuthContext
from vsession.auth.secretbox import SecretBox
from vsession.clock import SystemClock
from vsession.config import Settings, load_settings
from vsession.consent.machine import Consent, Records
from vsession.errors import Refusal
from vsession.recording import age, recorder
from vsession.recording.service import Recordings, recordings_dir
from vsession.rooms.registry import Registry
from vsession.services import Services, open_sfu
from vsession.sfu.room import THERAPIST_PEER, CallEnded, CallFull, MediaRoom, RoomListener
from vsession.store import consent as consent_store
from vsession.store.db import Database

Event = tuple[str, ...]
# The task's event, by arrival step: what the store calls below attribute their rows to.
ARRIVAL: contextvars.ContextVar[int] = contextvars.ContextVar("arrival", default=-1)
STOP_LIKE = ("stop", "session_ended", "recorder_failed")
START_SPREAD = 40  # steps over which the events of a batch arrive
# An "age1" recipient that is not valid Bech32: it passes a prefix check, and nothing more.
BAD_RECIPIENT = "age1" + "q" * 58


@dataclass(frozen=True)
class Schedule:
    participants: int  # the therapist and participants - 1 clients
    batches: list[list[Event]]
    seed: int
    db_delay: int = 0  # each query yields up to this many times before it runs

    def people(self) -> list[str]:
        return [THERAPIST_PEER] + [f"s{n}" for n in range(1, self.participants)]


class LightPeer:
    """A participant's connection as the room sees it, without ICE or media."""

    def __init__(
        self, peer_id: str, _config: object, send: Callable[[dict[str, Any]], Awaitable[None]], *_: object
    ) -> None:
        self.id = peer_id
        self._send = send
        self.upstream: dict[str, object] = {}
        self.downstream: dict[object, object] = {}
        self.closed = False

    async def negotiate(self) -> None:
        await _pause(3)
        await self._send({"type": "offer"})

    def drop_downstream(self, peer_id: str, source: str | None = None) -> bool:
        return False

    async def close(self) -> None:
        await _pause(3)
        self.closed = True


@dataclass
class Ledger:
    """What arrived when (in loop steps), and which rows each arrival caused."""

    closes: dict[str, int] = field(default_factory=dict)  # participant -> last close concerning them
    stop_like: int = -1
    answer_arrival: dict[tuple[str, str, str], int] = field(default_factory=dict)
    request_arrival: dict[str, int] = field(default_factory=dict)
    # (machine, epoch) -> when it opened, and for whom
    opened: dict[tuple[int, int], tuple[int, frozenset[str]]] = field(default_factory=dict)
    leaving: set[str] = field(default_factory=set)  # still members of the room, but their leave arrived


@contextlib.contextmanager
def attributed_rows(ledgers: dict[str, Ledger]) -> Iterator[None]:
    """Remember which event's arrival each stored request and answer belongs to."""
    insert_request, insert_answer = consent_store.insert_request, consent_store.insert_answer

    async def request_row(tx: Any, request_id: str, session_id: str, *rest: Any) -> None:
        ledgers[session_id].request_arrival[request_id] = ARRIVAL.get()
        await insert_request(tx, request_id, session_id, *rest)

    async def answer_row(tx: Any, request_id: str, participant: str, prompt: str, *rest: Any) -> None:
        for ledger in ledgers.values():
            if request_id in ledger.request_arrival:
                ledger.answer_arrival[(request_id, participant, prompt)] = ARRIVAL.get()
        await insert_answer(tx, request_id, participant, prompt, *rest)

    consent_store.insert_request, consent_store.insert_answer = request_row, answer_row  # type: ignore[assignment]
    try:
        yield
    finally:
        consent_store.insert_request, consent_store.insert_answer = insert_request, insert_answer


class World:
    """The server side of one schedule: services on the real DB file, one therapy session."""

    def __init__(
        self,
        loop: ShuffledLoop,
        services: Services,
        session_id: str,
        schedule: Schedule,
        ledger: Ledger,
        reader: sqlite3.Connection,
    ) -> None:
        self.loop = loop
        self.services = services
        self.session_id = session_id
        self.schedule = schedule
        self.ledger = ledger
        self.reader = reader
        self.prompts: dict[str, list[dict[str, Any]]] = {p: [] for p in schedule.people()}
        self.peers: dict[str, Any] = {}
        self.rooms: list[MediaRoom] = []
        self.machines: list[Consent] = []
        self.ended = False
        self.errors: list[str] = []
        # Audit entries before this schedule's are other schedules'.
        self.audit_from = reader.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0]

    # -- the machine, as the signalling code reaches it ----------------------------------------

    def consent(self, who: str = THERAPIST_PEER) -> Consent:
        """The machine, as ws.py reaches it: only for someone in the call."""
        room = self.services.sfu.rooms.get(self.session_id)
        if room is None or who not in room.members:
            raise Refusal(409, "Join the call first.")
        return self.services.consent(self.session_id)

    def observe(self, machine: RoomListener, room: MediaRoom) -> RoomListener:
        """A new room and its machine: note the arrival of the events they send each other."""
        assert isinstance(machine, Consent)
        self.rooms.append(room)
        self.machines.append(machine)

        def arriving(kind: str, method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            async def call(*args: Any) -> None:
                self._arrive(kind, args[0] if kind.startswith("member_") else None)
                await method(*args)

            return call

        for kind in ("member_joining", "member_leaving", "session_ended", "recorder_failed"):
            setattr(machine, kind, arriving(kind, getattr(machine, kind)))
        return machine

    def _arrive(self, kind: str, who: str | None) -> None:
        step = self.loop.steps
        ARRIVAL.set(step)
        if kind in STOP_LIKE or (who == THERAPIST_PEER and kind in ("member_leaving", "withdraw")):
            self.ledger.stop_like = step
        if who is not None and kind in ("member_joining", "member_leaving", "withdraw"):
            self.ledger.closes[who] = step
        if kind == "member_leaving":
            self.ledger.leaving.add(str(who))
        elif kind == "member_joining":
            self.ledger.leaving.discard(str(who))

    # -- events --------------------------------------------------------------------------------

    async def run(self, event: Event) -> None:
        kind, who = event[0], (event[1] if len(event) > 1 else THERAPIST_PEER)
        await self.loop.yields(START_SPREAD)  # events of a batch arrive in any order, spread out
        try:
            await getattr(self, f"_{kind}")(who)
        except (Refusal, CallFull, CallEnded):
            pass
        except ValueError as exc:  # what ws.py turns into an error message for the page
            self.errors.append(f"{event}: {exc}")

    async def _join(self, who: str) -> None:
        if self.ended:  # what ws.py checks in the DB first
            return

        async def send(message: dict[str, Any]) -> None:
            await self.loop.yields(2)
            if message.get("type") == "consent_prompt":
                self.prompts[who].append(message)

        role = "therapist" if who == THERAPIST_PEER else "client"
        self.peers[who] = await self.services.sfu.join(self.session_id, who, who, role, send)

    async def _leave(self, who: str, reason: str = "left") -> None:
        await self.services.sfu.leave(self.session_id, who, reason, self.peers.get(who))

    async def _drop(self, who: str) -> None:
        await self._leave(who, "disconnected")

    async def _request(self, who: str) -> None:
        self._arrive("request", who)
        await self.consent(who).request_recording(who)

    async def _ask(self, who: str) -> None:
        self._arrive("ask", who)
        await self.consent(who).ask_again(who)

    async def _stop(self, who: str) -> None:
        self._arrive("stop", who)
        await self.consent(who).stop(who, "stopped by therapist")

    async def _answer(self, who: str, answer: str, back: int) -> None:
        prompts = self.prompts[who]
        if len(prompts) < back:
            return
        prompt = prompts[-back]
        self._arrive(answer, who)
        message = {
            "type": "consent",
            "request": prompt["request"],
            "prompt": prompt["prompt"],
            "answer": answer,
        }
        await self.consent(who).answer(who, message)

    async def _accept(self, who: str) -> None:
        await self._answer(who, "accept", 1)

    async def _decline(self, who: str) -> None:
        await self._answer(who, "decline", 1)

    async def _stale_accept(self, who: str) -> None:
        await self._answer(who, "accept", 2)

    async def _withdraw(self, who: str) -> None:
        self._arrive("withdraw", who)
        await self.consent(who).withdraw(who)

    async def _fail(self, who: str) -> None:
        room = self.services.sfu.rooms.get(self.session_id)
        if room is not None and isinstance(room.listener, Consent):
            await room.listener.recorder_failed("injected disk error")

    async def _bad_key(self, who: str) -> None:
        recordings = self.services.recordings
        recordings.settings = dataclasses.replace(recordings.settings, recording_recipient=BAD_RECIPIENT)

    async def _end(self, who: str) -> None:
        self.ended = True
        await self.services.sfu.end(self.session_id)

    # -- the invariant -------------------------------------------------------------------------

    def check_step(self) -> None:
        for machine in self.machines:
            gate = machine.gate
            if not gate.is_open:
                continue
            present = frozenset(machine.room.members) - self.ledger.leaving
            opened = self.ledger.opened.setdefault((id(machine), gate.epoch), (self.loop.steps, present))
            self._check_open(gate.epoch, opened, present)

    def _check_open(self, epoch: int, opened: tuple[int, frozenset[str]], present: frozenset[str]) -> None:
        opened_at, recorded = opened
        ledger = self.ledger
        if ledger.stop_like > opened_at:
            raise Violation(f"epoch {epoch} still open after a stop-like event at step {ledger.stop_like}")
        for who in present | recorded:
            if ledger.closes.get(who, -1) > opened_at:
                raise Violation(f"epoch {epoch} still open after a close concerning {who}")
        active = self.reader.execute(
            "SELECT id FROM consent_requests WHERE session_id = ? AND ended_at IS NULL", (self.session_id,)
        ).fetchall()
        if len(active) != 1:
            raise Violation(f"gate open with {len(active)} active requests in the DB")
        request_id = active[0]["id"]
        if ledger.request_arrival.get(request_id, -1) < ledger.stop_like:
            raise Violation("gate open for a request made before the last stop-like event")
        for who in present:
            row = self.reader.execute(
                "SELECT participant, prompt_id, answer FROM consent_answers WHERE request_id = ?"
                " AND participant = ? ORDER BY id DESC LIMIT 1",
                (request_id, who),
            ).fetchone()
            if row is None or row["answer"] != "accept":
                raise Violation(f"gate open while {who}'s latest stored answer is {row and row['answer']}")
            arrived = ledger.answer_arrival.get((request_id, who, row["prompt_id"]), -1)
            if arrived < ledger.closes.get(who, -1):
                raise Violation(f"gate open on {who}'s accept that arrived before their last close")

    def check_quiet(self) -> None:
        """Between batches, with nothing left running."""
        occupied = [room for room in self.rooms if room.members]
        if len(occupied) > 1 or (
            occupied and self.services.sfu.rooms.get(self.session_id) is not occupied[0]
        ):
            raise Violation(f"the call is split: {[sorted(r.members) for r in occupied]}")
        if self.ended and occupied:
            raise Violation(f"people in the call of an ended session: {sorted(occupied[0].members)}")
        writing = self.reader.execute(
            "SELECT id, participants FROM recordings WHERE session_id = ? AND state = 'writing'",
            (self.session_id,),
        ).fetchall()
        open_gates = [m for m in self.machines if m.gate.is_open]
        if len(writing) != len(open_gates) or len(writing) > 1:
            raise Violation(f"{len(writing)} segments being written, {len(open_gates)} gates open")
        for machine in open_gates:
            if machine.segment is None:
                raise Violation("the gate is open with no segment")
            if set(json.loads(writing[0]["participants"])) != set(machine.room.members):
                raise Violation(
                    f"segment of {writing[0]['participants']} while {sorted(machine.room.members)} present"
                )
        self._check_files()
        if self.errors:
            raise Violation(f"errors: {self.errors}")

    def _check_files(self) -> None:
        rows = self.reader.execute(
            "SELECT id, file_name, state, bytes, ciphertext_sha256 FROM recordings WHERE session_id = ?",
            (self.session_id,),
        ).fetchall()
        folder = recordings_dir(self.services.settings)
        audited = self._audited_recordings()
        for row in rows:
            path = folder / row["file_name"]
            if not path.exists() and (row["state"], row["bytes"]) != ("failed", 0):
                raise Violation(f"recording {row['id']} has no file")
            started, stopped = audited.get(row["id"], (0, []))
            if started != 1:
                raise Violation(f"recording {row['id']} has {started} recording.start entries")
            if row["state"] == "writing":
                if stopped:
                    raise Violation(f"recording {row['id']} is writing but audited as stopped")
                continue
            data = path.read_bytes() if path.exists() else b""
            if (len(data), hashlib.sha256(data).hexdigest()) != (row["bytes"], row["ciphertext_sha256"]):
                raise Violation(f"recording {row['id']}: file and row disagree")
            if stopped != [("complete" if row["state"] == "complete" else "failed")]:
                raise Violation(f"recording {row['id']} is {row['state']} but audited {stopped}")
        if self.ended:  # listing the process's files is slow: once, at the end
            open_files = open_recording_files(folder, {row["file_name"] for row in rows})
            if open_files:
                raise Violation(f"{open_files} recording files left open")

    def _audited_recordings(self) -> dict[str, tuple[int, list[str]]]:
        found: dict[str, tuple[int, list[str]]] = {}
        for row in self.reader.execute(
            "SELECT action, object, outcome FROM audit_log"
            " WHERE seq > ? AND action IN ('recording.start', 'recording.stop')",
            (self.audit_from,),
        ):
            recording = row["object"].split(":", 1)[1]
            started, stopped = found.get(recording, (0, []))
            if row["action"] == "recording.start":
                started += 1
            else:
                stopped = [*stopped, row["outcome"]]
            found[recording] = (started, stopped)
        return found

    def check_end(self) -> None:
        active = self.reader.execute(
            "SELECT count(*) FROM consent_requests WHERE session_id = ? AND ended_at IS NULL",
            (self.session_id,),
        ).fetchone()[0]
        if active:
            raise Violation(f"{active} consent requests never ended")


def open_recording_files(folder: Path, names: set[str]) -> int:
    """How many of these files in the folder this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
            count += target.parent == folder and target.name in names
    return count


class Bench:
    """What schedules share: a data dir and DB file (a new one every ROTATE schedules, so queries
    stay fast), a practice key, and a therapy session per schedule."""

    ROTATE = 250

    def __init__(self, root: Path) -> None:
        self.root = root
        _, self.recipient = age.generate_identity()
        self.ledgers: dict[str, Ledger] = {}
        self.audit_key = os.urandom(32)
        self.count = 0
        self._conn: InlineConnection | None = None
        self._reader: sqlite3.Connection | None = None

    def run(self, schedule: Schedule) -> None:
        loop = ShuffledLoop(schedule.seed)
        threads = recorder.ThreadPoolExecutor
        recorder.ThreadPoolExecutor = InlineExecutor  # type: ignore[misc,assignment]
        try:
            loop.run_schedule(lambda: self._run(loop, schedule))
        finally:
            recorder.ThreadPoolExecutor = threads  # type: ignore[misc]
            loop.close()

    def close(self) -> None:
        if self._conn is not None and self._reader is not None:
            self._conn.raw.close()
            self._reader.close()
            self._conn = self._reader = None

    async def _open(self) -> tuple[Database, sqlite3.Connection]:
        if self.count % self.ROTATE == 0 or self._conn is None or self._reader is None:
            self.close()
            self.settings: Settings = load_settings(
                environ={},
                overrides={
                    "data_dir": self.root / f"data{self.count}",
                    "recording_recipient": self.recipient,
                },
            )
            self.settings.data_dir.mkdir(parents=True)
            db = await open_inline(self.settings.db_path, _no_delay)
            self._conn = db._conn  # type: ignore[assignment]
            self._reader = sqlite3.connect(self.settings.db_path)
            self._reader.row_factory = sqlite3.Row
            return db, self._reader
        return Database(self._conn), self._reader  # type: ignore[arg-type]

    async def _run(self, loop: ShuffledLoop, schedule: Schedule) -> None:
        async def delay() -> None:
            await loop.yields(schedule.db_delay)

        db, reader = await self._open()
        assert self._conn is not None
        self._conn.delay = delay
        self.count += 1
        session_id = f"sess{self.count}"
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT OR IGNORE INTO therapists (id, username, display_name, password_hash, totp_secret,"
                " created_at) VALUES (1, 't', 'T', '-', x'00', 0)"
            )
            await tx.execute(
                "INSERT INTO therapy_sessions (id, therapist_id, title, starts_at, duration_minutes, state,"
                " created_at) VALUES (?, 1, 'x', 0, 50, 'open', 0)",
                (session_id,),
            )
        clock = SystemClock()
        audit = AuditLog(self.audit_key, clock)
        box = SecretBox(os.urandom(32))
        recordings = Recordings(self.settings, db, audit, clock)
        sfu = open_sfu(self.settings, Records(db, audit, clock), recordings, make_peer=LightPeer)
        auth = AuthContext(self.settings, db, audit, clock, box)
        services = Services(
            self.settings, clock, db, self.audit_key, audit, box, auth, Registry(), sfu, recordings, box
        )
        ledger = self.ledgers[session_id] = Ledger()
        world = World(loop, services, session_id, schedule, ledger, reader)
        make_listener = sfu._make_listener
        assert make_listener is not None
        sfu._make_listener = lambda sid, room: world.observe(make_listener(sid, room), room)
        # The schedule starts here, whatever setup took (the first one migrates the DB).
        loop.rng.seed(schedule.seed)
        loop.steps = 0
        loop.after_step = world.check_step
        try:
            with attributed_rows(self.ledgers):
                for batch in schedule.batches:
                    await asyncio.gather(*(world.run(event) for event in batch))
                    await settle()
                    world.check_quiet()
                await world.run(("end",))
                await settle()
                world.check_quiet()
                world.check_end()
        finally:
            loop.after_step = None
            await services.sfu.close()


async def settle() -> None:
    """Let every other task run to its end (a recorder's tasks included)."""
    me = asyncio.current_task()
    for _ in range(10_000):
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not others:
            return
        await asyncio.sleep(0)
    raise Violation(f"still running after 10,000 steps: {others}")


def random_schedule(rng: random.Random) -> Schedule:
    """Everyone joins; often a request is made and accepted; then 1-5 batches of 1-4 racing events."""
    size = rng.randint(2, 4)
    people = [THERAPIST_PEER] + [f"s{n}" for n in range(1, size)]
    batches: list[list[Event]] = [[("join", who)] for who in people]
    level = rng.randint(0, 2)
    if level >= 1:
        batches.append([("request",)])
    if level >= 2:
        batches.append([("accept", who) for who in people[1:]])
    for _ in range(rng.randint(1, 5)):
        batches.append([_random_event(rng, people) for _ in range(rng.randint(1, 4))])
    return Schedule(size, batches, rng.getrandbits(32), rng.choice([0, 1, 3]))


def _random_event(rng: random.Random, people: list[str]) -> Event:
    kind = rng.choice(PERSONAL_EVENTS + PERSONAL_EVENTS + CALL_EVENTS)
    return (kind, rng.choice(people)) if kind in PERSONAL_EVENTS else (kind,)


PERSONAL_EVENTS = ["join", "leave", "drop", "accept", "decline", "stale_accept", "withdraw"]
CALL_EVENTS = ["request", "stop", "ask", "fail", "bad_key"]


def schedules() -> st.SearchStrategy[Schedule]:
    """For hypothesis: it draws the random choices, so it can shrink a failing schedule."""
    return st.randoms(use_true_random=False).map(random_schedule)


async def _no_delay() -> None:
    return None


async def _pause(most: int) -> None:
    """An await of random length, where a real peer connection would wait on the network."""
    loop = asyncio.get_running_loop()
    if isinstance(loop, ShuffledLoop):
        await loop.yields(most)


def _joins(*people: str) -> list[list[Event]]:
    return [[("join", who)] for who in people]


# Found by the search on the code before issue 10's fix (scripts/consent_interleavings.py, then
# narrowed by hand); each failed there with the violation named.
REGRESSIONS = {
    # A close is not sticky: the therapist's stop, sent during a client's accept, was followed
    # by a segment ("gate open for a request made before the last stop-like event").
    "race1-stop-during-accept": Schedule(
        2, [*_joins("t", "s1"), [("request",)], [("accept", "s1"), ("stop",)]], seed=0, db_delay=3
    ),
    # Check-then-act across an await: s2 leaves, s1 withdraws while the old segment finishes,
    # and the next segment opens with s1 in it ("gate open on s1's accept that arrived before
    # their last close").
    "race2-withdraw-during-finish": Schedule(
        3,
        [
            *_joins("t", "s1", "s2"),
            [("request",)],
            [("accept", "s1"), ("accept", "s2")],
            [("leave", "s2"), ("withdraw", "s1")],
        ],
        seed=1,
        db_delay=3,
    ),
    # A segment that fails to start (a recipient that is not valid Bech32) left the gate open
    # with no segment, the row 'writing' and the file open ("the gate is open with no segment").
    "race3-failed-start": Schedule(
        2, [*_joins("t", "s1"), [("request",)], [("bad_key",)], [("accept", "s1")]], seed=0
    ),
    # A rejoin waiting for the room while the last member's leave removed it landed in an
    # orphaned room ("the call is split").
    "race4-rejoin-split": Schedule(
        2, [*_joins("t", "s1"), [("leave", "t")], [("leave", "s1"), ("join", "s1")], [("join", "t")]], seed=21
    ),
    # Found by the random search: a request from a therapist who was leaving was never ended
    # ("1 consent requests never ended").
    "request-while-leaving": Schedule(
        2,
        [*_joins("t", "s1"), [("request",)], [("request",), ("leave", "t"), ("drop", "s1")], [("drop", "t")]],
        seed=0,
    ),
}
