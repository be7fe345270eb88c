"""The admin's command line against a live app's data folder: setup-link, user list | disable |
enable | reset-2fa, each seen through the HTTP API afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from tests.support.app_client import NEW_PASSWORD, PASSWORD, USERNAME, Server, Therapist, enrol
from tests.support.clock import FakeClock
from tests.support.paths import REPO
from vsession.auth import login


@pytest.fixture
def clock() -> FakeClock:
    # The CLI stamps setup links with the real time; start the server's fake clock there too.
    return FakeClock(start=time.time())


async def vsession(server: Server, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vsession",
        *args,
        "--data-dir",
        str(server.settings.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def listed(output: str, username: str) -> list[str]:
    [line] = [line for line in output.splitlines() if line.split()[:1] == [username]]
    return line.split()


async def test_setup_link_prints_a_working_one_time_link(
    server: Server, enrolled_therapist: Therapist
) -> None:
    rc, out, err = await vsession(server, "setup-link")
    assert rc == 0, err
    [url] = [word for word in out.split() if "/setup#t=" in word]
    token = url.split("#t=", 1)[1]
    browser = server.browser()
    reply = await browser.post(
        "/api/setup", {"token": token, "name": "Bob", "username": "bob", "password": PASSWORD}
    )
    assert reply.status == 200, reply.body
    again = await server.browser().post(
        "/api/setup", {"token": token, "name": "Eve", "username": "eve", "password": PASSWORD}
    )
    assert again.status == 400
    assert ("setup_link.create", "", "ok") in await server.audit("setup_link.create")


async def test_user_list_shows_the_therapists(server: Server, enrolled_therapist: Therapist) -> None:
    await enrol(server, username="bob", name="Bob")
    rc, out, err = await vsession(server, "user", "list")
    assert rc == 0, err
    ada = listed(out, USERNAME)
    assert ada[-3:] == ["yes", "enrolled", "active"]
    assert "Ada" in ada
    assert listed(out, "bob")[-2:] == ["enrolled", "active"]


async def test_user_disable_stops_sign_in_with_the_generic_message(
    server: Server, enrolled_therapist: Therapist
) -> None:
    rc, out, err = await vsession(server, "user", "disable", USERNAME)
    assert rc == 0, err
    # Sessions end at once.
    assert (await enrolled_therapist.browser.get("/api/me")).status == 401
    refused = await server.browser().password()
    unknown = await server.browser().password("nobody", PASSWORD)
    assert refused.status == unknown.status == 401
    assert refused.body == unknown.body == {"error": login.BAD_CREDENTIALS}
    assert refused.set_cookie is None
    rc, out, _ = await vsession(server, "user", "list")
    assert listed(out, USERNAME)[-1] == "disabled"
    assert ("therapist.disable", USERNAME, "ok") in await server.audit("therapist.disable")

    rc, _, err = await vsession(server, "user", "enable", USERNAME)
    assert rc == 0, err
    await server.browser().login(enrolled_therapist.secret)


async def test_user_reset_2fa_sends_the_next_sign_in_to_enrolment(
    server: Server, enrolled_therapist: Therapist
) -> None:
    rc, _, err = await vsession(server, "user", "reset-2fa", USERNAME)
    assert rc == 0, err
    assert (await enrolled_therapist.browser.get("/api/me")).status == 401

    browser = server.browser()
    reply = await browser.password()
    assert reply.status == 200
    assert reply.body == {"next": "enrol"}
    details = await browser.get("/api/enrol")
    assert details.status == 200
    new_secret = details.body["secret"]
    assert new_secret != enrolled_therapist.secret
    browser.csrf = details.body["csrf"]
    assert (await browser.post("/api/enrol", {"code": server.code(new_secret)})).status == 200
    server.next_step()

    # The old authenticator and recovery codes are worthless now.
    old = server.browser()
    assert (await old.password()).body == {"next": "totp"}
    assert (await old.send_code(server.code(enrolled_therapist.secret))).status == 401
    assert (await old.send_code(enrolled_therapist.recovery_codes[0], kind="recovery")).status == 401
    assert (await old.send_code(server.code(new_secret))).status == 200


async def test_unknown_user_is_an_error(server: Server) -> None:
    rc, _, err = await vsession(server, "user", "disable", "nobody")
    assert rc == 1
    assert "nobody" in err


async def account_row(server: Server, username: str) -> dict:
    row = await server.ctx.db.fetchone("SELECT * FROM therapists WHERE username = ?", (username,))
    assert row is not None
    return dict(row)


@pytest.mark.parametrize("owns_a_session", [False, True])
async def test_reset_2fa_never_frees_the_username(
    server: Server, enrolled_therapist: Therapist, owns_a_session: bool
) -> None:
    """The account keeps its id, username and password; no setup link can claim the name, so
    audit entries for therapist:<id> keep pointing at the same person."""
    browser = enrolled_therapist.browser
    if owns_a_session:
        reply = await browser.post(
            "/api/sessions",
            {"title": "Weekly", "starts_at": int(server.clock.now()), "duration_minutes": 50, "seats": 1},
        )
        assert reply.status == 201, reply.body
    before = await account_row(server, USERNAME)
    rc, _, err = await vsession(server, "user", "reset-2fa", USERNAME)
    assert rc == 0, err

    token = await server.setup_link(admin=True)
    for claimed in (USERNAME, USERNAME.upper(), f" {USERNAME} "):
        taken = await server.browser().post(
            "/api/setup", {"token": token, "name": "Mallory", "username": claimed, "password": NEW_PASSWORD}
        )
        assert taken.status == 409, taken.body
        assert taken.set_cookie is None
    after = await account_row(server, USERNAME)
    assert {k: after[k] for k in ("id", "username", "display_name", "password_hash", "created_at")} == {
        k: before[k] for k in ("id", "username", "display_name", "password_hash", "created_at")
    }
    assert (await server.browser().password(USERNAME, NEW_PASSWORD)).status == 401
    # The owner signs in with the old password and is sent to enrol again; the link still works for
    # a name that is free.
    assert (await server.browser().password()).body == {"next": "enrol"}
    fresh = await server.browser().post(
        "/api/setup", {"token": token, "name": "Bob", "username": "bob", "password": NEW_PASSWORD}
    )
    assert fresh.status == 200, fresh.body
    created = [obj for _, obj, _ in await server.audit("therapist.create")]
    assert created == [USERNAME, "bob"]
