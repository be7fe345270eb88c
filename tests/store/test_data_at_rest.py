"""What a copied data folder reveals: the flow of a real session (a therapist, a titled session, a
client who gives a name, waits, is admitted, and the end), with the folder copied file by file while
the server runs, the WAL and shared-memory files included, and its raw bytes searched.

Without keys/ nothing personal or secret is in it. With keys/ the code opens the title (so the key is
what protects it) and, while it is kept, the name. After the grace period the name is gone even with
the keys, and after data retention the title and the client's address too."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_client import Server, Therapist, enrol
from tests.support.clock import FakeClock
from tests.support.data_at_rest import copy_data, raw_bytes
from tests.support.rooms_api import Client, create, services, token_of
from vsession.app import create_app
from vsession.audit import verify
from vsession.audit.personal import unseal
from vsession.auth.secretbox import SecretBox
from vsession.config import Settings
from vsession.keyfile import read_key
from vsession.rooms import personal
from vsession.store.therapy_sessions import Seat, TherapySession

# The address the client and the therapist connect from (all of 127/8 is this machine).
CLIENT_IP = "127.83.61.29"
TITLE = "Couples work: Quentin & Marisol"
NAME = "Zephyrine Okonkwo-Blake"
DOTTED_QUAD = re.compile(rb"(?<![0-9.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![0-9.])")


@dataclass
class Flow:
    server: Server
    ada: Therapist
    client: Client
    sid: str
    link_token: str

    @property
    def data_dir(self) -> Path:
        return self.server.settings.data_dir

    def secrets(self) -> dict[str, str]:
        """Everything that must never lie readable in the folder."""
        found = {
            "title": TITLE,
            "name": NAME,
            "address": CLIENT_IP,
            "therapist cookie": self.ada.browser.cookie,
            "CSRF token": self.ada.browser.csrf,
            "guest cookie": self.client.cookie,
            "link token": self.link_token,
        }
        assert all(found.values()), found
        return {k: v for k, v in found.items() if v}


@pytest.fixture
async def flow(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Flow:
    app = create_app(settings, clock=clock)
    connector = aiohttp.TCPConnector(local_addr=(CLIENT_IP, 0))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar(), connector=connector)
    server = Server(client, app, clock, settings)
    ada = await enrol(server)
    sid = await create(ada.browser, title=TITLE, duration=50)
    token = await token_of(ada.browser, sid)
    alice = Client(server)
    assert (await alice.redeem(sid, token)).status == 200
    assert (await alice.wait(sid, NAME)).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    return Flow(server, ada, alice, sid, token)


def readable(folder: Path, secrets: dict[str, str]) -> list[str]:
    """Which secrets appear in the folder's raw bytes, and any address at all."""
    raw = raw_bytes(folder)
    found = [what for what, value in secrets.items() if value.encode() in raw]
    found += [f"address {m.decode()}" for m in DOTTED_QUAD.findall(raw)]
    return found


def stolen_rows(copy: Path, sid: str) -> tuple[TherapySession, list[Seat]]:
    """The session's rows as the copy holds them, opened as a thief would (after the raw search:
    opening applies the copied WAL)."""
    with closing(sqlite3.connect(copy / "vsession.sqlite3")) as conn:
        conn.row_factory = sqlite3.Row
        session = conn.execute("SELECT * FROM therapy_sessions WHERE id = ?", (sid,)).fetchone()
        seats = conn.execute("SELECT * FROM seats WHERE session_id = ?", (sid,)).fetchall()
    return TherapySession.from_row(session), [Seat.from_row(s) for s in seats]


def stolen_box(copy: Path) -> SecretBox:
    return SecretBox(read_key(copy / "keys" / "personal-data.key"))


async def test_a_copy_without_keys_reveals_nothing_while_the_session_runs(flow: Flow, tmp_path: Path) -> None:
    assert (flow.data_dir / "vsession.sqlite3-wal").stat().st_size > 0  # the copy catches a live WAL
    copy = copy_data(flow.data_dir, tmp_path / "stolen", keys=False)
    assert not (copy / "keys").exists()
    assert readable(copy, flow.secrets()) == []
    session, seats = stolen_rows(copy, flow.sid)
    assert session.title_sealed is not None and seats[0].name_sealed is not None  # sealed, not absent


async def test_with_keys_the_code_opens_the_title_and_the_name(flow: Flow, tmp_path: Path) -> None:
    copy = copy_data(flow.data_dir, tmp_path / "stolen", keys=True)
    # Not lying in clear even then: the key is what opens them.
    assert readable(copy, flow.secrets()) == []
    session, seats = stolen_rows(copy, flow.sid)
    box = stolen_box(copy)
    assert personal.title_of(box, session) == TITLE
    assert personal.name_of(box, seats[0]) == NAME
    with closing(sqlite3.connect(copy / "vsession.sqlite3")) as conn:
        rows = conn.execute("SELECT seq, sealed FROM audit_personal").fetchall()
    kept = [unseal(box, seq, sealed).values for seq, sealed in rows]
    assert {"actor": f"ip:{CLIENT_IP}"} in kept  # the address was recorded, sealed


async def test_the_name_is_gone_after_the_end_and_the_grace_period_even_with_keys(
    flow: Flow, tmp_path: Path
) -> None:
    server, services_ = flow.server, services(flow.server)
    assert (await flow.ada.browser.post(f"/api/sessions/{flow.sid}/end")).status == 200
    _, seats = stolen_rows(copy_data(flow.data_dir, tmp_path / "ended", keys=True), flow.sid)
    sealed_name = seats[0].name_sealed
    assert sealed_name is not None

    server.clock.advance(server.settings.link_grace_minutes * 60 - 1)
    assert (await personal.apply_retention(services_))["names"] == 0  # kept through the grace period
    server.clock.advance(2)
    assert (await personal.apply_retention(services_))["names"] == 1

    copy = copy_data(flow.data_dir, tmp_path / "after-grace", keys=True)
    raw = raw_bytes(copy)
    assert sealed_name not in raw  # not even the ciphertext is left for the key to open
    assert readable(copy, flow.secrets()) == []
    session, seats = stolen_rows(copy, flow.sid)
    assert [s.name_sealed for s in seats] == [None]
    assert personal.title_of(stolen_box(copy), session) == TITLE  # the title stays until data retention


async def test_after_data_retention_title_seats_and_addresses_are_gone(flow: Flow, tmp_path: Path) -> None:
    server, services_ = flow.server, services(flow.server)
    assert (await flow.ada.browser.post(f"/api/sessions/{flow.sid}/end")).status == 200
    before = copy_data(flow.data_dir, tmp_path / "ended", keys=True)
    sealed_title = stolen_rows(before, flow.sid)[0].title_sealed
    with closing(sqlite3.connect(before / "vsession.sqlite3")) as conn:
        sealed_addresses = [r[0] for r in conn.execute("SELECT sealed FROM audit_personal")]
    assert sealed_title is not None and sealed_addresses  # the redeem, the enrolment, the sign-in

    server.clock.advance(server.settings.data_retention_days * 86400 + 1)
    erased = await personal.apply_retention(services_)
    assert erased == {"names": 1, "sessions": 1, "addresses": len(sealed_addresses)}

    copy = copy_data(flow.data_dir, tmp_path / "after-retention", keys=True)
    raw = raw_bytes(copy)
    for blob in (sealed_title, *sealed_addresses):
        assert blob not in raw
    assert readable(copy, flow.secrets()) == []
    session, seats = stolen_rows(copy, flow.sid)
    assert (session.title_sealed, seats) == (None, [])
    assert (session.state, session.therapist_id) == ("ended", 1)  # what consent and recordings refer to
    for box in (services_.personal, None):
        result = await verify(services_.db, services_.audit_key, personal_box=box)
        assert result.ok, result.reason


async def test_a_therapist_sees_the_title_and_name_the_database_only_holds_sealed(flow: Flow) -> None:
    sessions = (await flow.ada.browser.get("/api/sessions")).body["sessions"]
    assert [(s["title"], s["seats"][0]["name"]) for s in sessions] == [(TITLE, NAME)]
    status = await flow.client.status(flow.sid)
    assert (status.body["title"], status.body["name"]) == (TITLE, NAME)
