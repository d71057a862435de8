"""Storage errors a POS can retry: their HTTP answer and their log line.

``E_STORAGE_READONLY`` (the data folder's file system turned read-only under a
running server, or its permissions changed) was answered 500 E_INTERNAL with an
"engine error" log line per request, like a bug; it is a 503 to retry, like a full
disk, logged once a minute at most."""

from __future__ import annotations

import logging

import pytest

from opentse.errors import StorageError
from opentse.server.problems import StorageFailureLog, from_opentse_error


@pytest.mark.parametrize("code", ["E_STORAGE_FULL", "E_STORAGE_READONLY"])
def test_a_disk_that_cannot_be_written_is_503_to_retry_later(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    failures = StorageFailureLog(where="/srv/opentse/opentse.db")
    exc = StorageError(
        "SQLite failed while committing: attempt to write a readonly database", code=code
    )
    with caplog.at_level(logging.WARNING, "opentse.server"):
        answers = [from_opentse_error(exc, failures) for _ in range(4)]
    for answer in answers:
        assert (answer.status, answer.code) == (503, code)
        assert answer.headers == {"Retry-After": "10"}
        assert "nothing was signed" in answer.message and "/srv" not in answer.message
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "cannot be written (/srv/opentse/opentse.db)" in lines[0] and code in lines[0]
