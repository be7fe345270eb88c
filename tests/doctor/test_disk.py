"""The disk check on real file systems of known size: small tmpfs mounts (tests/support/small_disk.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.small_disk import fill_up, mounted
from vsession.doctor import disk
from vsession.doctor.findings import Level


def test_a_full_disk_is_a_problem(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk") as folder:
        fill_up(folder)
        finding = disk.check_disk(folder / "data", recording=True)
        assert finding.level is Level.PROBLEM
        assert "0.0 GB free" in finding.found and "0.0 hours" in finding.found
        assert "retention_days" in finding.fix
        # Without recording too: the database still needs room.
        assert disk.check_disk(folder / "data", recording=False).level is Level.PROBLEM


def test_less_than_a_day_of_recordings_is_a_warning(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", size="4g") as folder:
        finding = disk.check_disk(folder, recording=True)
        assert finding.level is Level.WARN
        assert "hours of a recorded two-person session" in finding.found
        per_hour = f"up to {disk.BYTES_PER_PARTICIPANT_HOUR / 1e6:.0f} MB an hour per participant"
        assert per_hour in finding.found


def test_room_for_many_sessions_is_ok(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", size="64g") as folder:
        data = folder / "data"  # not made yet, as before the first start
        finding = disk.check_disk(data, recording=True)
        assert finding.level is Level.OK, finding.line()
        assert f"under {folder}" in finding.found
