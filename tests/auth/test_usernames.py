"""A username belongs to one account for good: no setup link can claim one that exists, whether its
owner finished enrolment or not, so an audit entry's therapist:<id> always means the same person."""

from __future__ import annotations

from tests.support.app_client import NEW_PASSWORD, PASSWORD, Server


async def setup(server: Server, token: str, username: str, password: str, name: str) -> tuple[int, object]:
    reply = await server.browser().post(
        "/api/setup", {"token": token, "name": name, "username": username, "password": password}
    )
    return reply.status, reply.body


async def test_a_setup_link_cannot_claim_a_name_whose_enrolment_is_unfinished(server: Server) -> None:
    status, _ = await setup(server, await server.setup_link(), "carol", PASSWORD, "Carol")
    assert status == 200
    row = await server.ctx.db.fetchone("SELECT id, password_hash FROM therapists WHERE username = 'carol'")
    assert row is not None

    status, body = await setup(server, await server.setup_link(), "Carol", NEW_PASSWORD, "Mallory")
    assert status == 409, body
    again = await server.ctx.db.fetchone("SELECT id, password_hash FROM therapists WHERE username = 'carol'")
    assert again is not None and tuple(again) == tuple(row)
    # Whoever chose the password carries on enrolling by signing in with it.
    assert (await server.browser().password("carol", PASSWORD)).body == {"next": "enrol"}
    assert (await server.browser().password("carol", NEW_PASSWORD)).status == 401
