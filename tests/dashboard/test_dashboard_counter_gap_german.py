"""The German text of E_COUNTER_GAP follows the verifier's own cause.

Read from what the verifier says about real vendor exports: a range of counters
('645 to 676') fell back to the general text, and every gap got the one-archive
cause ('aus ihm entfernt'), also the gap between two archives verified together (no
archive holds those logs: an export between them is missing) and a gap whose files
are there but cannot be read."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from opentse.dashboard.findings_text import finding_text
from opentse.verify.report import verify_exports

EXPORTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "tse-exports"


def _vendor(relative: str) -> Path:
    path = EXPORTS / relative
    if not path.exists():
        pytest.skip(f"vendor test data absent: {path}")
    return path


def _gaps(paths: list[Path]) -> list[str]:
    report = verify_exports(paths).to_json()
    return [f["message"] for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]


def _german(message: str) -> str:
    text = finding_text({"code": "E_COUNTER_GAP", "message": message}, "de")
    assert text.text_lang == "de" and text.original == message
    return text.text


def test_a_gap_between_two_archives_says_an_export_is_missing() -> None:
    (message,) = _gaps(
        [
            _vendor("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar"),
            _vendor("dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar"),
        ]
    )
    text = _german(message)
    assert text.startswith("Signaturzähler 645–676 fehlen (32 Log-Nachricht(en))"), text
    assert "in keinem der geprüften Archive" in text and "ein Export dazwischen fehlt" in text
    assert "aus ihm entfernt" not in text


def test_gaps_in_one_archive_keep_the_one_archive_cause() -> None:
    messages = _gaps([_vendor("faulty/ThreeMissingAreasOfSignatureCounter.tar")])
    assert len(messages) == 3
    for message in messages:
        text = _german(message)
        assert "Sie wurden aus ihm entfernt" in text and "fehlen (" in text, text
        assert " to " not in text


def test_files_with_those_counters_that_cannot_be_read_are_named(tmp_path: Path) -> None:
    source = _vendor("faulty/ThreeMissingAreasOfSignatureCounter.tar")
    damaged = tmp_path / "damaged.tar"
    with (
        tarfile.open(source) as made,
        tarfile.open(damaged, "w", format=tarfile.USTAR_FORMAT) as out,
    ):
        members = [m for m in made.getmembers() if m.isfile()]
        logs = [m for m in members if m.name.endswith(".log")]
        broken = logs[len(logs) // 2].name
        for member in members:
            data = made.extractfile(member).read()  # type: ignore[union-attr]
            out.addfile(
                member, io.BytesIO(b"\x00" * member.size if member.name == broken else data)
            )
    messages = [m for m in _gaps([damaged]) if "cannot be decoded" in m]
    assert messages, _gaps([damaged])
    text = _german(messages[0])
    assert "nicht lesbar (E_LOG_FORMAT)" in text, text
