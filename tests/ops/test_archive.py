"""Archive: exports kept with hash, verification and retention; reminders; release."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import ready_tse, sell
from opentse.errors import OpenTSEError
from opentse.ops import archive, protocol
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

DAY = 86400


def test_archive_export_hash_verify_retention(ops: OpsContext) -> None:
    ready_tse(ops, "t1", "K1")
    sell(ops, "t1", "K1", 3)
    item = archive.archive_export(ops, "t1")
    data = Path(item.path).read_bytes()
    assert item.sha256 == hashlib.sha256(data).hexdigest() and item.size == len(data)
    assert item.verified_ok and item.verification["invalid_signatures"] == 0
    assert item.verification["log_messages"] == item.records > 6
    year = datetime.fromtimestamp(item.created_at, tz=UTC).year
    assert datetime.fromtimestamp(item.retain_until, tz=UTC) == datetime(
        year + 10, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    assert archive.exports(ops, "t1") == [item]
    assert archive.check_integrity(item)
    Path(item.path).write_bytes(data[:-1] + b"\x01")
    assert not archive.check_integrity(item)
    (entry,) = protocol.entries(ops.db, kinds=(protocol.EXPORT_ARCHIVED,))
    assert entry.details["sha256"] == item.sha256


def test_reminder_after_n_days(ops: OpsContext, clock: FrozenClock) -> None:
    ready_tse(ops, "t1", "K1")
    assert archive.reminder_days(ops) == 30
    clock.advance(30 * DAY)
    assert archive.reminders(ops) == []
    clock.advance(DAY)
    (r,) = archive.reminders(ops)
    assert r.tse_id == "t1" and r.last_export_at is None and "no export yet" in r.message
    archive.archive_export(ops, "t1")
    assert archive.reminders(ops) == []
    archive.set_reminder_days(ops, 7)
    clock.advance(8 * DAY)
    (r,) = archive.reminders(ops)
    assert r.last_export_at is not None and round(r.days_since) == 8


def test_release_only_after_verified_export(ops: OpsContext) -> None:
    ready_tse(ops, "t1", "K1")
    sell(ops, "t1", "K1", 2)
    with pytest.raises(OpenTSEError) as exc:
        archive.release_logs(ops, "t1")
    assert exc.value.code == "E_ARCHIVE_NOT_VERIFIED"
    item = archive.archive_export(ops, "t1")
    Path(item.path).write_bytes(b"tampered")
    with pytest.raises(OpenTSEError) as exc:
        archive.release_logs(ops, "t1")
    assert exc.value.code == "E_ARCHIVE_NOT_VERIFIED"
    assert archive.released_up_to(ops, "t1") == 0
    good = archive.archive_export(ops, "t1")
    assert archive.release_logs(ops, "t1") == good.last_counter
    assert archive.released_up_to(ops, "t1") == good.last_counter
    assert ops.service.get("t1").state.exported_up_to >= good.last_counter  # engine mark


def test_reminder_boundaries() -> None:
    """With 0 days a TSE without any export is due even in the second it started;
    one exported this very second is not; otherwise due after more than ``days``."""
    now = 1_800_000_000
    started = {"new": now, "old": now - 3 * archive.DAY}
    assert [r.tse_id for r in archive.due_reminders({}, started, now, 0)] == ["new", "old"]
    exported = {"new": now, "old": now - 2 * archive.DAY}
    assert [r.tse_id for r in archive.due_reminders(exported, started, now, 0)] == ["old"]
    assert [r.tse_id for r in archive.due_reminders(exported, started, now, 2)] == []
    assert [r.tse_id for r in archive.due_reminders({}, started, now, 3)] == []
    assert [r.tse_id for r in archive.due_reminders({}, started, now, 2)] == ["old"]


def test_retention_counts_germanys_calendar_year() -> None:
    """§147 Abs. 4 AO: ten years from the end of the calendar year the export was made
    in, Germany's year. New Year's night before 01:00 German time is still the old
    year in UTC; it took that year's end (31.12.2035 for an export of 2026)."""
    new_years_night = int(datetime(2025, 12, 31, 23, 30, tzinfo=UTC).timestamp())  # 00:30 MEZ
    assert datetime.fromtimestamp(archive.retain_until(new_years_night), tz=UTC) == datetime(
        2036, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    evening = int(datetime(2025, 12, 31, 22, 30, tzinfo=UTC).timestamp())  # 23:30 MEZ
    assert datetime.fromtimestamp(archive.retain_until(evening), tz=UTC).year == 2035
