"""Therapist endpoints for recordings: list, download the encrypted file, delete. The server
cannot decrypt; downloading and deleting need a fresh TOTP code (step-up)."""

from __future__ import annotations

from aiohttp import web

from vsession.appkeys import SERVICES
from vsession.http.auth_api import require_step_up
from vsession.http.guards import session_of
from vsession.recording import library
from vsession.store.db import Row


async def list_recordings(request: web.Request) -> web.Response:
    session = await session_of(request)
    return web.json_response(
        {"recordings": await library.listing(request.app[SERVICES], session.therapist_id)}
    )


async def _owned_after_step_up(request: web.Request) -> tuple[int, Row]:
    """The therapist's own recording, once they have confirmed with a fresh code."""
    session = await session_of(request)
    require_step_up(request, session)
    row = await library.owned(request.app[SERVICES], session.therapist_id, request.match_info["rid"])
    return session.therapist_id, row


async def download(request: web.Request) -> web.StreamResponse:
    therapist_id, row = await _owned_after_step_up(request)
    services = request.app[SERVICES]
    await services.audit.record(
        services.db,
        actor=f"therapist:{therapist_id}",
        action="recording.download",
        obj=f"recording:{row['id']}",
        details={"ciphertext_sha256": row["ciphertext_sha256"]},
    )
    response = web.FileResponse(library.path_of(services, row))
    response.headers["Content-Type"] = "application/octet-stream"
    response.headers["Content-Disposition"] = f'attachment; filename="vsession-{row["id"]}.age"'
    return response


async def delete(request: web.Request) -> web.Response:
    therapist_id, row = await _owned_after_step_up(request)
    await library.delete(request.app[SERVICES], row, f"therapist:{therapist_id}", "deleted by therapist")
    return web.json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{rid}/download", download)
    app.router.add_post("/api/recordings/{rid}/delete", delete)
