"""A server stopped the normal way (SIGTERM, as systemd or an admin's restart does) while recording:
the segment is finished whole, and its reason is the server stopping, not the participants' sockets
closing under it ("Sam lost their connection" would blame the client)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from aiortc import AudioStreamTrack

from tests.support.actors import Agent
from tests.support.call_client import CallClient
from tests.support.call_server import prepare_call, start_call_server
from tests.support.consent_calls import record_with_consent
from tests.support.media import ColourTrack
from vsession.recording import age, end_reasons


async def test_a_recording_cut_by_a_server_stop_says_so(tmp_path: Path) -> None:
    _, recipient = age.generate_identity()
    settings = (f'recording_recipient = "{recipient}"', "retention_days = 30")
    server = start_call_server(tmp_path, *settings)
    try:
        call = await prepare_call(server, clients=1)
        tracks = {"microphone": AudioStreamTrack()}
        therapist = CallClient(*call.therapist_ws(), {**tracks, "camera": ColourTrack((220, 40, 40))})
        client = CallClient(*call.client_ws(0), {**tracks, "camera": ColourTrack((40, 200, 40))})
        try:
            await therapist.join()
            await client.join()
            await record_with_consent(therapist, client)
            await asyncio.sleep(1.5)
            assert server.stop() == 0
        finally:
            await therapist.close()
            await client.close()
    finally:
        server.stop()

    database = server.data_dir / "vsession.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT state, end_reason FROM recordings").fetchall()
    assert rows == [("complete", end_reasons.SERVER_STOPPED)], rows

    again = start_call_server(tmp_path, *settings)
    try:
        therapist_there = Agent(again.url, dict(call.therapist.agent.cookies))
        [shown] = (await asyncio.to_thread(therapist_there.get, "/api/recordings"))["recordings"]
        assert (shown["ended"], shown["file"]) == ("Server restarted", "complete"), shown
    finally:
        again.stop()
