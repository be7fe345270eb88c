"""The privacy notice (issue 12): its words, the practice's own file, the acknowledgement the server
stores and audits and requires before the waiting room, and a client giving up their seat."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import Client, audit_entries, create, receive, seat_view, token_of
from vsession.config import ConfigError, Settings, load_settings
from vsession.rooms import notice
from vsession.rooms.invites import GUEST_COOKIE

PRACTICE = "Lakeside Counselling"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={}, overrides={"data_dir": tmp_path / "data", "port": 0, "practice_name": PRACTICE}
    )


def settings_with(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(environ={}, overrides={"data_dir": tmp_path / "data", "port": 0, **overrides})


def test_the_built_in_notice_says_who_where_recording_how_long_and_how_to_leave(tmp_path: Path) -> None:
    words = notice.load(
        settings_with(
            tmp_path,
            practice_name=PRACTICE,
            retention_days=14,
            data_retention_days=60,
            link_grace_minutes=90,
        )
    )
    assert words.version == notice.VERSION
    text = words.text
    assert f"run by {PRACTICE}, on a server it controls" in text
    assert "Only through this server" in text
    assert "Nothing is recorded without your consent" in text and "withdraw your consent" in text
    assert "deleted 90 minutes after the session ends" in text
    assert "removed after 60 days" in text
    assert "kept for 14 days, then deleted automatically" in text
    assert "press Leave at any time" in text
    assert "{" not in text, "every placeholder is filled"
    assert "relay" not in text, "no relay is mentioned where none is configured"
    # Hashed exactly as the consent text is: over the version and the words shown.
    assert words.sha256 == hashlib.sha256(f"{words.version}\n{text}".encode()).hexdigest()


def test_the_notice_follows_the_settings_and_its_hash_with_it(tmp_path: Path) -> None:
    kept = notice.load(settings_with(tmp_path, retention_days=0, data_retention_days=0))
    assert "the practice that invited you" in kept.text
    assert "kept until the practice deletes it" in kept.text
    assert "removed only when the practice deletes it" in kept.text
    other = notice.load(settings_with(tmp_path, retention_days=7))
    assert other.version == kept.version and other.sha256 != kept.sha256
    relayed = notice.load(settings_with(tmp_path, ice_servers="turn:turn.example.org:3478"))
    assert "relay server the practice has set up, still encrypted" in relayed.text


def test_a_practice_writes_its_own_notice(tmp_path: Path) -> None:
    own = tmp_path / "notice.txt"
    own.write_text(
        "version: 2027-01.b\n\nWho we are\n{practice} keeps recordings {recording_retention}.\n\n"
        "Questions { in English or Welsh }: help@example.org\n",
        encoding="utf-8",
    )
    words = notice.load(settings_with(tmp_path, practice_name=PRACTICE, privacy_notice_file=own))
    assert words.version == "2027-01.b"
    assert words.text == (
        "Who we are\nLakeside Counselling keeps recordings for 30 days, then deleted automatically.\n\n"
        "Questions { in English or Welsh }: help@example.org"
    )
    assert words.sha256 == hashlib.sha256(f"2027-01.b\n{words.text}".encode()).hexdigest()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"Our notice\n\nNo version line.", "must start with a line 'version: <name>'"),
        (b"version: 1\n\n   \n", "has no text"),
        (b"version: two words\nText", "must start with a line 'version: <name>'"),
        (b"version: 1\n\xff\xfe notice", "is not UTF-8"),
        (b"version: 1\nKept {retention}.", "unknown placeholder {retention}"),
        (b"version: 1\n" + b"x" * 20_001, "longer than 20000 characters"),
    ],
)
def test_a_bad_notice_file_stops_start_up_naming_it(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "notice.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        settings_with(tmp_path, privacy_notice_file=path)
    assert raised.value.name == "privacy_notice_file"
    assert problem in str(raised.value)


def test_a_practice_name_is_short(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="practice_name"):
        settings_with(tmp_path, practice_name="x" * 121)


async def shown(client: Client, sid: str) -> tuple[int, dict[str, object]]:
    response = await client.server.client.get(f"/api/join/{sid}/notice", headers=client.headers())
    async with response:
        return response.status, await response.json()


async def acks(server: Server) -> list[dict[str, object]]:
    return [dict(r) for r in await server.ctx.db.fetchall("SELECT * FROM notice_acks ORDER BY id")]


async def test_no_waiting_room_before_the_notice_is_acknowledged(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    status, body = await shown(alice, sid)
    words = notice.load(server.settings)
    assert status == 200
    assert body == {
        "practice": PRACTICE,
        "version": words.version,
        "sha256": words.sha256,
        "text": words.text,
        "acknowledged": False,
    }

    # The server, not the page, keeps the order: straight to the waiting room is refused.
    entered = await alice.post(f"/api/join/{sid}/wait", {"name": "Alice Smith"})
    assert (entered.status, entered.body) == (409, {"error": notice.UNREAD})
    assert (await seat_view(ada.browser, sid))["state"] == "joined"

    # An acknowledgement of other words (an older version, a page's stale copy) is refused.
    stale = await alice.post(f"/api/join/{sid}/notice", {"version": words.version, "sha256": "0" * 64})
    assert (stale.status, stale.body) == (409, {"error": notice.CHANGED})
    older = await alice.post(f"/api/join/{sid}/notice", {"version": "2020-01", "sha256": words.sha256})
    assert older.status == 409
    assert await acks(server) == []

    done = await alice.post(f"/api/join/{sid}/notice", {"version": words.version, "sha256": words.sha256})
    assert (done.status, done.body) == (200, {"ok": True})
    again = await alice.post(f"/api/join/{sid}/notice", {"version": words.version, "sha256": words.sha256})
    assert again.status == 200
    rows = await acks(server)
    assert len(rows) == 1, "one acknowledgement per device and text"
    assert (rows[0]["session_id"], rows[0]["seat"]) == (sid, 1)
    assert (rows[0]["notice_version"], rows[0]["notice_sha256"]) == (words.version, words.sha256)
    assert (await shown(alice, sid))[1]["acknowledged"] is True

    entered = await alice.post(f"/api/join/{sid}/wait", {"name": "Alice Smith"})
    assert (entered.status, entered.body) == (200, {"state": "waiting"})
    entries = await audit_entries(server, "notice.acknowledge")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["actor"], entry["object"]) == (f"guest:{sid}:1", f"session:{sid}")
    assert entry["details"] == {"seat": 1, "version": words.version, "sha256": words.sha256}
    everything = "\n".join(str(e) for e in await audit_entries(server))
    assert "Alice" not in everything and PRACTICE not in everything


async def test_an_acknowledgement_belongs_to_the_device_that_gave_it(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.wait(sid)).status == 200  # acknowledges first (tests/support/rooms_api.py)
    reissued = await ada.browser.post(f"/api/sessions/{sid}/seats/1/reissue")
    phone = Client(server)
    assert (await phone.redeem(sid, reissued.body["link"].split("#t=", 1)[1])).status == 200
    assert (await shown(phone, sid))[1]["acknowledged"] is False
    refused = await phone.post(f"/api/join/{sid}/wait", {"name": "Alice"})
    assert refused.status == 409


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"version": 1, "sha256": "x"}, 400), ({"version": "v", "sha256": "\ud800"}, 400)],
)
async def test_a_malformed_acknowledgement_is_400_and_stores_nothing(
    server: Server, ada: Therapist, body: dict[str, object], status: int
) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.post(f"/api/join/{sid}/notice", body)).status == status
    assert await acks(server) == []


async def test_only_a_guest_of_the_session_acknowledges(server: Server, ada: Therapist) -> None:
    sid, other = await create(ada.browser), await create(ada.browser)
    words = notice.load(server.settings)
    answer = {"version": words.version, "sha256": words.sha256}
    assert (await Client(server).post(f"/api/join/{sid}/notice", answer)).status == 401
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.post(f"/api/join/{other}/notice", answer)).status == 403
    assert (await shown(Client(server), sid))[0] == 401
    assert await acks(server) == []


def cookie_dropped(set_cookie: list[str]) -> bool:
    """A Set-Cookie that deletes the guest cookie; __Host- needs Secure and Path=/ to be honoured."""
    return any(
        header.split(";")[0] in (f'{GUEST_COOKIE}=""', f"{GUEST_COOKIE}=")
        and "Max-Age=0" in header
        and "Secure" in header
        and "Path=/" in header
        for header in set_cookie
    )


async def test_leaving_ends_the_seat_and_drops_the_cookie(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.wait(sid)).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    socket = await alice.socket(sid)
    assert await receive(socket) == {"type": "state", "state": "admitted"}
    left = await alice.post(f"/api/join/{sid}/leave")
    assert (left.status, left.body) == (200, {"ok": True})
    assert cookie_dropped(left.raw_set_cookie), left.raw_set_cookie
    # The page's other socket, if any, hears it and is closed.
    assert await receive(socket) == {"type": "state", "state": "left"}
    assert (await socket.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # The cookie the browser dropped would not work anyway.
    assert (await alice.status(sid)).status == 401
    assert (await alice.post(f"/api/join/{sid}/wait", {"name": "Alice"})).status == 401
    entries = await audit_entries(server, "seat.leave")
    assert [(e["actor"], e["details"]) for e in entries] == [(f"guest:{sid}:1", {"seat": 1})]
    # The therapist's list keeps the seat as it was; a new link brings the client back.
    assert (await seat_view(ada.browser, sid))["state"] == "admitted"

    again = await alice.post(f"/api/join/{sid}/leave")
    assert again.status == 200 and cookie_dropped(again.raw_set_cookie)
    assert len(await audit_entries(server, "seat.leave")) == 1


async def test_leaving_one_session_leaves_another_seat_alone(server: Server, ada: Therapist) -> None:
    sid, other = await create(ada.browser), await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(other, await token_of(ada.browser, other))).status == 200
    # A page of `sid` ending after this browser's cookie moved to a seat of `other`.
    assert (await alice.post(f"/api/join/{sid}/leave")).status == 200
    assert (await alice.status(other)).status == 200
    # Nobody's seat: nothing to end, and still a clean answer for the page.
    nobody = await Client(server).post(f"/api/join/{sid}/leave")
    assert nobody.status == 200 and cookie_dropped(nobody.raw_set_cookie)
    assert await audit_entries(server, "seat.leave") == []
