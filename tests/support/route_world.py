"""The world the route walk (tests/support/route_walk.py) acts in: the real app on a real SQLite file,
two enrolled therapists (the owner of the objects, who is an admin, and another), a third account
half-way through enrolment, therapy sessions with seats in several states, recordings, and the
cookies and CSRF tokens of everyone who sends requests.

A successful request may change who can do what (a logout, a password change, an ended session, a
denied guest): `repair` puts each actor back, through the same domain functions the app uses, so
every case is sent by who it says. It also clears the sign-in failure counters from time to time,
so a lockout early in a run does not hide the sign-in code from the rest of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.app_client import NEW_PASSWORD, PASSWORD, Server, Therapist, enrol
from vsession.appkeys import SERVICES
from vsession.auth import enrolment, signins
from vsession.auth.context import totp_context
from vsession.auth.tokens import token_hash
from vsession.recording import library
from vsession.rooms import invites, sessions, waiting_room
from vsession.services import Services
from vsession.store import consent as consent_store
from vsession.store import signins as signin_rows
from vsession.store import therapists, therapy_sessions

SEATS = 3  # seat 1: the owner's guest, admitted; 2: someone waiting; 3: a link nobody used yet
IP = "192.0.2.1"  # the world's own guests (TEST-NET-1): not the walk's address, which guesses links


@dataclass
class Actor:
    therapist_cookie: str | None = None
    guest_cookie: str | None = None

    @property
    def csrf(self) -> str | None:
        return signins.csrf_token(self.therapist_cookie) if self.therapist_cookie else None


@dataclass
class World:
    server: Server
    owner: Therapist
    other: Therapist
    enrolling_username: str
    owner_id: int = 0
    other_id: int = 0
    enrolling_id: int = 0
    owner_password_hash: str = ""
    actors: dict[str, Actor] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    setup_token: str = ""
    link_token: str = ""
    enrolling_secret: str = ""
    recovery_used: int = 0
    made: int = 0  # recordings made, for their ids
    _refs: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    def refs(self) -> dict[str, Any]:
        """What a case's Ref names stands for right now (the fake clock stands still between repairs)."""
        self.recovery_used = (self.recovery_used + 1) % len(self.owner.recovery_codes)
        return {**self._refs, "recovery": self.owner.recovery_codes[self.recovery_used]}

    def _remember_refs(self) -> None:
        server = self.server
        self._refs = {
            "username": self.owner.username,
            "other_username": self.other.username,
            "enrolling_username": self.enrolling_username,
            "password": PASSWORD,
            "totp": server.code(self.owner.secret),
            "totp_enrolling": server.code(self.enrolling_secret),
            "setup_token": self.setup_token,
            "link_token": self.link_token,
            "now": int(server.clock.now()),
            **self.ids,
        }

    async def repair(self, clear_failures: bool = False) -> None:
        """Put every actor and object back where a case expects it. Writes only when something is off."""
        services = self.services
        async with services.db.transaction() as tx:
            if clear_failures:
                await tx.execute("DELETE FROM login_failures")
                await tx.execute("DELETE FROM ip_failures")
            owner = await therapists.by_id(tx, self.owner_id)
            assert owner is not None
            if owner.password_hash != self.owner_password_hash:  # a case changed the password
                await therapists.set_password(tx, self.owner_id, self.owner_password_hash)
            carol = await therapists.by_id(tx, self.enrolling_id)
            assert carol is not None
            if carol.totp_enrolled:  # a case finished the enrolment
                await enrolment.reset_totp(services.auth, tx, carol, "admin:cli")
                carol = await therapists.by_id(tx, self.enrolling_id)
                assert carol is not None
            self.enrolling_secret = services.box.open(carol.totp_secret, totp_context(carol.id)).decode()
            for name, therapist_id, stage in (
                ("owner", self.owner_id, "full"),
                ("other_therapist", self.other_id, "full"),
                ("second_factor", self.owner_id, "second_factor"),
                ("enrolling", self.enrolling_id, "enrol"),
            ):
                actor = self.actors.setdefault(name, Actor())
                cookie = actor.therapist_cookie
                row = await signin_rows.get(tx, token_hash(cookie)) if cookie else None
                if row is None or row.stage != stage:
                    # totp_at now: the owner's step-up actions are open to cases, as after a fresh code.
                    now = services.clock.now()
                    actor.therapist_cookie = await signins.issue(tx, services.auth, therapist_id, stage, now)
            if await _unused_setup_link(tx, self.setup_token, services.clock.now()) is False:
                self.setup_token = ""
        if not self.setup_token:
            url = await enrolment.create_link(services.auth, self.owner_id, is_admin=False)
            self.setup_token = url.split("#t=", 1)[1]
        await self._sessions()
        await self._recordings()
        self._remember_refs()

    async def _sessions(self) -> None:
        services = self.services
        for key, therapist_id, guest in (
            ("own_session", self.owner_id, "guest_own"),
            ("other_session", self.other_id, "guest_other"),
        ):
            sid = self.ids.get(key)
            async with services.db.transaction() as tx:
                found = await therapy_sessions.get(tx, sid) if sid else None
            if found is None or found.state == "ended":
                sid = self.ids[key] = await self._new_session(therapist_id)
                self.actors[guest] = Actor(guest_cookie=await self._guest(sid, therapist_id, 1, admit=True))
                if key == "own_session":
                    await self._guest(sid, therapist_id, 2, admit=False)
            actor = self.actors[guest]
            if await invites.guest_of(services, actor.guest_cookie) is None:  # denied, removed, reissued
                actor.guest_cookie = await self._guest(sid, therapist_id, 1, admit=False, reissue=True)
        # Sessions the cases scheduled are ended, so the dashboard a case lists stays the size of a day's.
        keep = {self.ids["own_session"], self.ids["other_session"]}
        async with services.db.transaction() as tx:
            extra = [
                found
                for therapist_id in (self.owner_id, self.other_id)
                for found in await therapy_sessions.open_for_therapist(tx, therapist_id)
                if found.id not in keep
            ]
        for found in extra:
            await sessions.end(services, found, f"therapist:{found.therapist_id}", "ended by therapist")
        async with services.db.transaction() as tx:
            seat = await therapy_sessions.seat(tx, self.ids["own_session"], SEATS)
        link = invites.unsealed_link(services, seat) if seat is not None else None
        if link is None:  # a case used or replaced the link
            async with services.db.transaction() as tx:
                link = await invites.issue(
                    services, tx, self.owner_id, self.ids["own_session"], SEATS, reissue=seat is not None
                )
        self.link_token = link.split("#t=", 1)[1]
        if "ended_session" not in self.ids:
            self.ids["ended_session"] = ended = await self._new_session(self.owner_id)
            async with services.db.transaction() as tx:
                found = await therapy_sessions.get(tx, ended)
            assert found is not None
            await sessions.end(services, found, f"therapist:{self.owner_id}", "ended by therapist")

    async def _new_session(self, therapist_id: int) -> str:
        services = self.services
        new = sessions.NewSession("Weekly", services.clock.now(), 50, SEATS)
        return await sessions.create(services, therapist_id, new)

    async def _guest(self, sid: str, therapist_id: int, seat: int, admit: bool, reissue: bool = False) -> str:
        """A device holding seat `seat`: redeemed, in the waiting room, and admitted if asked."""
        services = self.services
        async with services.db.transaction() as tx:
            row = await therapy_sessions.seat(tx, sid, seat)
            if reissue or row is None or invites.unsealed_link(services, row) is None:
                url = await invites.issue(services, tx, therapist_id, sid, seat, reissue=row is not None)
            else:
                url = invites.unsealed_link(services, row)
        assert url is not None
        cookie = await invites.redeem(services, sid, url.split("#t=", 1)[1], None, IP)
        assert cookie is not None
        guest = await invites.guest_of(services, cookie)
        assert guest is not None
        await waiting_room.wait(services, guest, f"Guest {seat}")
        if admit:
            await waiting_room.decide(services, therapist_id, sid, seat, "admit")
        return cookie

    async def _recordings(self) -> None:
        for key, sid_key, therapist_id in (
            ("own_recording", "own_session", self.owner_id),
            ("other_recording", "other_session", self.other_id),
        ):
            rid = self.ids.get(key)
            async with self.services.db.transaction() as tx:
                row = await consent_store.recording(tx, rid) if rid else None
            if row is None or row["state"] == "deleted":
                self.ids[key] = await self._recording(self.ids[sid_key], therapist_id)
        if "ended_recording" not in self.ids:
            rid = self.ids["ended_recording"] = await self._recording(self.ids["own_session"], self.owner_id)
            async with self.services.db.transaction() as tx:
                row = await consent_store.recording(tx, rid)
            assert row is not None
            await library.delete(self.services, row, f"therapist:{self.owner_id}", "deleted by therapist")

    async def _recording(self, sid: str, therapist_id: int) -> str:
        """A finished recording row and its file (bytes standing in for age ciphertext)."""
        services = self.services
        now = services.clock.now()
        self.made += 1
        rid, request = f"rec{self.made:06d}", f"req{self.made:06d}"
        folder = services.settings.data_dir / "recordings"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{rid}.age").write_bytes(b"age-encryption.org/v1\n" + bytes(range(256)) * 4)
        async with services.db.transaction() as tx:
            await consent_store.insert_request(
                tx, request, sid, "v1", "0" * 64, f"therapist:{therapist_id}", now
            )
            await consent_store.insert_recording(
                tx, rid, sid, request, 1, therapist_id, ["t", "s1"], f"{rid}.age", now
            )
            await consent_store.finish_recording(tx, rid, "complete", "stopped", 1046, "1" * 64, now)
        return rid


async def _unused_setup_link(tx: Any, token: str, now: float) -> bool | None:
    """Whether the world's setup link can still be used (None: there is none yet)."""
    if not token:
        return None
    row = await tx.fetchone(
        "SELECT used_at, expires_at FROM setup_links WHERE token_hash = ?", (token_hash(token),)
    )
    return row is not None and row["used_at"] is None and row["expires_at"] > now


async def build_world(server: Server) -> World:
    owner = await enrol(server, username="ada", name="Dr. Ada Example")
    other = await enrol(
        server, username="bob", name="Dr. Bob Example", token=await server.setup_link(admin=False)
    )
    setup = await server.browser().post(
        "/api/setup",
        {
            "token": await server.setup_link(admin=False),
            "name": "Carol",
            "username": "carol",
            "password": NEW_PASSWORD,
        },
    )
    assert setup.status == 200, setup.body
    world = World(server, owner, other, "carol")
    async with world.services.db.transaction() as tx:
        for name in ("ada", "bob", "carol"):
            account = await therapists.by_username(tx, name)
            assert account is not None
            setattr(world, {"ada": "owner_id", "bob": "other_id", "carol": "enrolling_id"}[name], account.id)
            if name == "ada":
                world.owner_password_hash = account.password_hash
    await world.repair()
    return world
