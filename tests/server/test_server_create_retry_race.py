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
    assert [a for a in answers if a[0] != 200] == []
    assert sorted(answers) == sorted((200, cid) for cid in ids for _ in range(AT_ONCE))
    listed = served.get(f"/api/v2/tss/{tss}/client", headers=h).json()["data"]
    assert sorted(c["_id"] for c in listed if c["serial_number"].startswith("R")) == sorted(ids)
    after = int(served.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])
    assert after == counter + len(ids)  # one registerClient log per serial


def _at_once(
    origin: str, method: str, path: str, body: dict[str, str], h: dict[str, str]
) -> list[int]:
    """``AT_ONCE`` identical requests released together; their statuses."""
    start = threading.Barrier(AT_ONCE)
    statuses: list[int] = []
    refusals: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=origin, timeout=30) as c:
            start.wait()
            r = c.request(method, path, json=body, headers=h)
        with lock:
            statuses.append(r.status_code)
            if r.status_code != 200:
                refusals.append(r.text)

    threads = [threading.Thread(target=send) for _ in range(AT_ONCE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refusals == []
    return statuses


def test_identical_state_changes_at_once_all_answer_200(served: AppClient) -> None:
    """updateTss to INITIALIZED and updateClient DEREGISTERED / REGISTERED sent again
    while the first is in flight: the retries answered 400 E_ILLEGAL_TSS_STATE_CHANGE
    'cannot initialize a TSS in state INITIALIZED', 400 E_CLIENT_DEREGISTERED and 409
    E_CLIENT_CONFLICT, where the same request a moment later answers 200. Each change
    is signed once."""
    h = login(served, new_key(served))
    origin = str(served.base_url)
    tss = str(uuid.uuid4())
    puk = served.put(f"/api/v2/tss/{tss}", json={}, headers=h).json()["admin_puk"]
    assert served.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h).is_success
    pin = {"admin_puk": puk, "new_admin_pin": "123456"}
    assert served.patch(f"/api/v2/tss/{tss}/admin", json=pin, headers=h).is_success
    auth = served.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h)
    assert auth.is_success

    def counter() -> int:
        return int(served.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])

    before = counter()
    statuses = _at_once(origin, "PATCH", f"/api/v2/tss/{tss}", {"state": "INITIALIZED"}, h)
    assert statuses == [200] * AT_ONCE
    assert served.get(f"/api/v2/tss/{tss}", headers=h).json()["state"] == "INITIALIZED"
    assert counter() > before
    cid = str(uuid.uuid4())
    made = served.put(f"/api/v2/tss/{tss}/client/{cid}", json={"serial_number": "K1"}, headers=h)
    assert made.is_success
    for state in ("DEREGISTERED", "REGISTERED"):
        before = counter()
        path = f"/api/v2/tss/{tss}/client/{cid}"
        assert _at_once(origin, "PATCH", path, {"state": state}, h) == [200] * AT_ONCE
        assert served.get(path, headers=h).json()["state"] == state
        assert counter() == before + 1  # one deregisterClient / registerClient log
