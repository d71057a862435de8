"""triggerExport with an export_id already used for other filters is 400
E_DUPLICATE_EXPORT (fiskaly's triggerExport code), nothing new triggered.

It answered the export there was, 200: a POS that reused an id (its own "daily"
id, a bug) and asked for transactions 1-5 was handed the file of 1-1 as if it were
that. The same request again is still the idempotent retry fiskaly promises. On
SQLite and PostgreSQL (the filters come back from the stored export)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def test_an_export_id_names_one_request(served: AppClient) -> None:
    c = served
    h = login(c, new_key(c))
    tss, cid = setup_tss(c, h)
    ex = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/export/{ex}"
    first = {"start_transaction_number": "1", "end_transaction_number": "1"}
    r = c.put(url, params=first, headers=h)
    assert r.status_code == 200, r.text
    again = c.put(url, params=first, headers=h)  # a retry after a lost answer
    assert again.status_code == 200 and again.json()["_id"] == ex, again.text
    assert again.json()["time_request"] == r.json()["time_request"]

    shown = "end_transaction_number=1, start_transaction_number=1"
    for other in (
        {"start_transaction_number": "1", "end_transaction_number": "5"},
        {},
        {"client_id": cid},
    ):
        r = c.put(url, params=other, headers=h)
        assert r.status_code == 400, (other, r.text)
        assert r.json() == {
            "status_code": 400,
            "error": "Bad Request",
            "code": "E_DUPLICATE_EXPORT",
            "message": f"export {ex} exists with other filters ({shown}); "
            "a new export needs a new export_id",
        }
    listed = c.get(f"/api/v2/tss/{tss}/export", headers=h).json()
    assert listed["count"] == 1  # nothing else was triggered

    by_client = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/export/{by_client}"
    assert c.put(url, params={"client_id": cid}, headers=h).status_code == 200
    assert c.put(url, params={"client_id": cid}, headers=h).status_code == 200
    r = c.put(url, headers=h)
    assert r.status_code == 400 and "(client serial_number KASSE-1)" in r.json()["message"]


def test_retries_racing_their_first_request_are_answered_as_retries(served: AppClient) -> None:
    """A POS that timed out and sent its triggerExport again while the first was
    still in flight: the retry found no export, then failed to store its own and
    answered 400 E_DUPLICATE_EXPORT (a 4xx a POS never retries: the export looked
    failed). Eight identical requests at once, five times: every one answers 200
    with the one export of its id."""
    h = login(served, new_key(served))
    tss, _ = setup_tss(served, h)
    origin = str(served.base_url)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for ex in ids:
        start = threading.Barrier(8)

        def trigger(ex: str = ex, start: threading.Barrier = start) -> None:
            with httpx.Client(base_url=origin, timeout=30) as c:
                start.wait()
                r = c.put(f"/api/v2/tss/{tss}/export/{ex}", params={"end_date": "0"}, headers=h)
            with lock:
                answers.append((r.status_code, r.json().get("_id") or r.text))

        threads = [threading.Thread(target=trigger) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(answers) == sorted((200, ex) for ex in ids for _ in range(8)), answers
    listed = served.get(f"/api/v2/tss/{tss}/export", headers=h).json()
    assert sorted(e["_id"] for e in listed["data"]) == sorted(ids)


@pytest.fixture(params=["sqlite", "postgresql"])
def idle(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    """A served app without export workers: its exports stay PENDING."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    clock = FrozenClock(1_700_000_000)
    with serve_app(tmp_path / "data", clock, url, export_workers=0) as client:
        yield client


def test_cancels_at_once_name_the_state_that_refused_them(idle: AppClient) -> None:
    """cancelExport sent again while the first cancel is in flight: one cancels, the
    others are 400 E_CANCEL_EXPORT naming the state the export is in. They said
    'export is PENDING; only PENDING or WORKING can be cancelled' (the state read
    before the other request cancelled it), which contradicts itself."""
    served = idle
    h = login(served, new_key(served))
    tss, _ = setup_tss(served, h)
    origin = str(served.base_url)
    answers: dict[str, list[tuple[int, str]]] = {}
    lock = threading.Lock()
    for _ in range(3):
        ex = str(uuid.uuid4())
        assert served.put(f"/api/v2/tss/{tss}/export/{ex}", headers=h).status_code == 200
        start = threading.Barrier(6)

        def cancel(ex: str = ex, start: threading.Barrier = start) -> None:
            with httpx.Client(base_url=origin, timeout=30) as c:
                start.wait()
                r = c.delete(f"/api/v2/tss/{tss}/export/{ex}", headers=h)
            with lock:
                answers.setdefault(ex, []).append((r.status_code, r.json().get("message", "")))

        threads = [threading.Thread(target=cancel) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = served.get(f"/api/v2/tss/{tss}/export/{ex}", headers=h).json()["state"]
        refused = [message for status, message in answers[ex] if status == 400]
        assert final == "CANCELLED" and len(refused) == 5, answers  # one cancelled it
        for message in refused:
            assert message == f"export is {final}; only PENDING or WORKING can be cancelled"
