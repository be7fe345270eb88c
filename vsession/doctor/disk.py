"""Room on data_dir's file system for recordings (a full disk closes the gate mid-session)."""

from __future__ import annotations

import shutil
from pathlib import Path

from vsession.doctor.findings import Finding, ok, problem, warn

CHECK = "disk"
# The recorder remuxes what browsers send, without transcoding. The pages ask for 640x480, for which
# libwebrtc caps VP8 at 1700 kbit/s (GetMaxDefaultVideoBitrateKbps); Opus voice is about 32 kbit/s.
# WebM framing and age's 16 bytes per 64 KiB chunk add about 1%. An upper bound: a congested
# connection sends less.
VIDEO_BPS = 1_700_000
AUDIO_BPS = 32_000
OVERHEAD = 1.01
BYTES_PER_PARTICIPANT_HOUR = int((VIDEO_BPS + AUDIO_BPS) / 8 * 3600 * OVERHEAD)
SESSION_PARTICIPANTS = 2  # a therapist and one client
BYTES_PER_SESSION_HOUR = BYTES_PER_PARTICIPANT_HOUR * SESSION_PARTICIPANTS
PROBLEM_HOURS = 1  # less cannot hold one recorded session
WARN_HOURS = 8  # a working day of recorded sessions
NO_RECORDING_MIN = 256 << 20  # the database and logs alone


def check_disk(data_dir: Path, recording: bool) -> Finding:
    folder = existing(data_dir)
    free = shutil.disk_usage(folder).free
    if not recording:
        found = f"{gb(free)} free under {folder}; recording is off, so the database alone needs little"
        if free < NO_RECORDING_MIN:
            return problem(CHECK, found, f"free at least {NO_RECORDING_MIN >> 20} MB for the database")
        return ok(CHECK, found)
    hours = free / BYTES_PER_SESSION_HOUR
    found = (
        f"{gb(free)} free under {folder}: about {hours:.1f} hours of a recorded two-person session "
        f"(the recorder writes up to {BYTES_PER_PARTICIPANT_HOUR / 1e6:.0f} MB an hour per participant: "
        f"VP8 at most {VIDEO_BPS // 1000} kbit/s at 640x480 plus Opus {AUDIO_BPS // 1000} kbit/s)"
    )
    fix = (
        "free space or move data_dir to a larger disk; lower retention_days so old recordings go sooner; "
        "`vsession recordings list` shows their sizes"
    )
    if hours < PROBLEM_HOURS:
        return problem(CHECK, found, fix)
    if hours < WARN_HOURS:
        return warn(CHECK, found, fix)
    return ok(CHECK, found)


def existing(path: Path) -> Path:
    """data_dir before the first start does not exist yet: its nearest existing parent holds it."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"
