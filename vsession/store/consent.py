"""Consent requests and answers, and the recordings they allowed."""

from __future__ import annotations

import json

from vsession.store.db import Row, Tx


async def insert_request(
    tx: Tx, request_id: str, session_id: str, version: str, sha256: str, requested_by: str, now: float
) -> None:
    await tx.execute(
        "INSERT INTO consent_requests (id, session_id, text_version, text_sha256, requested_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (request_id, session_id, version, sha256, requested_by, now),
    )


async def end_request(tx: Tx, request_id: str, reason: str, now: float) -> None:
    await tx.execute(
        "UPDATE consent_requests SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
        (now, reason, request_id),
    )


async def insert_answer(
    tx: Tx, request_id: str, participant: str, prompt_id: str, answer: str, reason: str, now: float
) -> None:
    await tx.execute(
        "INSERT INTO consent_answers (request_id, participant, prompt_id, answer, reason, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (request_id, participant, prompt_id, answer, reason, now),
    )


async def answers(tx: Tx, request_id: str) -> list[Row]:
    return await tx.fetchall("SELECT * FROM consent_answers WHERE request_id = ? ORDER BY id", (request_id,))


async def insert_recording(
    tx: Tx,
    recording_id: str,
    session_id: str,
    request_id: str,
    segment: int,
    therapist_id: int,
    participants: list[str],
    file_name: str,
    now: float,
) -> None:
    await tx.execute(
        "INSERT INTO recordings (id, session_id, request_id, segment, therapist_id, participants, file_name,"
        " started_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'writing')",
        (
            recording_id,
            session_id,
            request_id,
            segment,
            therapist_id,
            json.dumps(participants),
            file_name,
            now,
        ),
    )


async def finish_recording(
    tx: Tx, recording_id: str, state: str, reason: str, size: int, sha256: str, now: float
) -> None:
    await tx.execute(
        "UPDATE recordings SET state = ?, end_reason = ?, bytes = ?, ciphertext_sha256 = ?, ended_at = ?"
        " WHERE id = ?",
        (state, reason, size, sha256, now, recording_id),
    )


async def recordings_of(tx: Tx, therapist_id: int | None) -> list[Row]:
    if therapist_id is None:
        return await tx.fetchall("SELECT * FROM recordings WHERE state != 'deleted' ORDER BY started_at")
    return await tx.fetchall(
        "SELECT * FROM recordings WHERE therapist_id = ? AND state != 'deleted' ORDER BY started_at DESC",
        (therapist_id,),
    )


async def recording(tx: Tx, recording_id: str) -> Row | None:
    return await tx.fetchone("SELECT * FROM recordings WHERE id = ?", (recording_id,))


async def mark_deleted(tx: Tx, recording_id: str, now: float) -> None:
    await tx.execute(
        "UPDATE recordings SET state = 'deleted', deleted_at = ? WHERE id = ?", (now, recording_id)
    )


async def writing(tx: Tx) -> list[Row]:
    return await tx.fetchall("SELECT * FROM recordings WHERE state = 'writing'")


async def older_than(tx: Tx, before: float) -> list[Row]:
    return await tx.fetchall(
        "SELECT * FROM recordings WHERE state != 'deleted' AND started_at < ? AND state != 'writing'",
        (before,),
    )
