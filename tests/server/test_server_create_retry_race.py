"""createClient sent again while the first request is still in flight (a POS that
timed out and retried): the retry is answered as one, 200 with the client. It
found no client, then lost the insert (or the TSE's registration) to its own first
request and answered 409 E_CLIENT_CONFLICT, a 4xx a POS never retries: the till
looked unregistered. The TSE registers each serial once whatever the race (one
signature each). On SQLite and PostgreSQL, with real concurrent requests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock

AT_ONCE = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def test_identical_creates_at_once_are_one_client(served: AppClient) -> None:
    h = login(served, new_key(served))
    tss, _ = setup_tss(served, h)  # the admin stays logged in
    origin = str(served.base_url)
    counter = int(served.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for n, cid in enumerate(ids):
        start = threading.Barrier(AT_ONCE)

        def create(cid: str = cid, n: int = n, start: threading.Barrier = start) -> None:
            with httpx.Client(base_url=origin, timeout=30) as c:
                start.wait()
                r = c.put(
                    f"/api/v2/tss/{tss}/client/{cid}", json={"serial_number": f"R{n}"}, headers=h
                )
            with lock:
                answers.append((r.status_code, r.json().get("_id") or r.text))

        threads = [threading.Thread(target=create) for _ in range(AT_ONCE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(answers) == sorted((200, cid) for cid in ids for _ in range(AT_ONCE)), answers
    listed = served.get(f"/api/v2/tss/{tss}/client", headers=h).json()["data"]
    assert sorted(c["_id"] for c in listed if c["serial_number"].startswith("R")) == sorted(ids)
    after = int(served.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])
    assert after == counter + len(ids)  # one registerClient log per serial
