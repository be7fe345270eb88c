"""A full flow writes every audit entry issue 4 asks for, in a chain that verifies, with no secret in it."""

from __future__ import annotations

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import Client, audit_entries, create, services, token_of
from vsession.audit import verify

REQUIRED = {
    "session.create",
    "link.issue",
    "link.redeem",
    "link.reuse",
    "notice.acknowledge",
    "waiting.enter",
    "waiting.admit",
    "waiting.deny",
    "waiting.remove",
    "link.reissue",
    "session.end",
}


async def test_a_full_flow_is_audited_in_a_verifiable_chain(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, seats=2)
    first, second = await token_of(ada.browser, sid, 1), await token_of(ada.browser, sid, 2)
    alice, bob = Client(server), Client(server)
    assert (await alice.redeem(sid, first)).status == 200
    assert (await alice.wait(sid, "Alice")).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    assert (await Client(server).redeem(sid, first)).status == 409  # reuse from another device
    assert (await bob.redeem(sid, second)).status == 200
    assert (await bob.wait(sid, "Bob")).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/2/deny")).status == 200
    reissued = await ada.browser.post(f"/api/sessions/{sid}/seats/2/reissue")
    assert reissued.status == 200
    third = reissued.body["link"].split("#t=", 1)[1]
    bob_again = Client(server)
    assert (await bob_again.redeem(sid, third)).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/remove")).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/end")).status == 200

    entries = [e for e in await audit_entries(server) if e["object"] == f"session:{sid}"]
    actions = [e["action"] for e in entries]
    assert REQUIRED <= set(actions), REQUIRED - set(actions)
    assert actions == [
        "session.create",
        "link.issue",
        "link.issue",
        "link.redeem",
        "notice.acknowledge",
        "waiting.enter",
        "waiting.admit",
        "link.reuse",
        "link.redeem",
        "notice.acknowledge",
        "waiting.enter",
        "waiting.deny",
        "link.reissue",
        "link.redeem",
        "waiting.remove",
        "session.end",
    ]
    seats = [e["details"].get("seat") for e in entries]
    assert seats == [None, 1, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, None]

    result = await verify(server.ctx.db, services(server).audit_key)
    assert result.ok, result.reason
    assert result.entries == len(await audit_entries(server))

    # No link token or guest cookie is written to the log.
    rows = await server.ctx.db.fetchall("SELECT * FROM audit_log")
    text = "\n".join(" ".join(str(v) for v in tuple(r)) for r in rows)
    for secret in (first, second, third, alice.cookie, bob.cookie, bob_again.cookie):
        assert secret and secret not in text
