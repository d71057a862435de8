"""The data disk fills up while a real ``opentse serve`` signs.

No root needed: the server runs with a file size limit (``RLIMIT_FSIZE``, SIGXFSZ
ignored), so SQLite's writes fail with EFBIG once its files grow past it, as they
fail with ENOSPC or EDQUOT on a full disk or quota. The soft limit is raised on the
running process afterwards (``prlimit``): space is back. A POS must see a 503 with a
stable code and no signature, the log one line, and once space is back the same
server signs on with gapless counters, which ``opentse verify`` checks on an export.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from server_support import login, new_key_in, setup_tss

from opentse.server.auth import create_api_key
from opentse.testing.serving import wait_until_serving
from opentse.verify.report import verify_exports

OPENTSE = str(Path(sys.executable).parent / "opentse")
LIMIT = 700_000  # bytes a file of the server may grow to


@contextmanager
def serve(data: Path, log: Path, limit: int | None) -> Iterator[tuple[httpx.Client, int]]:
    """``opentse serve`` on ``data`` (its output in ``log``), files limited to ``limit``."""

    def limited() -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with log.open("a") as out:
        proc = subprocess.Popen(
            [OPENTSE, "serve", "--data", str(data), "--port", str(port)],
            stdout=out, stderr=out, preexec_fn=limited,
        )  # fmt: skip
    origin = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(origin, proc), log.read_text()
        with httpx.Client(base_url=origin, timeout=30) as client:
            yield client, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _sign(c: httpx.Client, h: dict[str, str], tss: str, cid: str) -> httpx.Response:
    """Start and finish one receipt; the first refused answer, else the finish."""
    tx = str(uuid.uuid4())
    r = c.put(
        f"/api/v2/tss/{tss}/tx/{tx}",
        params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": cid},
        headers=h,
    )
    if r.status_code != 200:
        return r
    body = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": {"receipt_type": "RECEIPT", "amounts_per_vat_rate": [
            {"vat_rate": "NORMAL", "amount": "1.19"}], "amounts_per_payment_type": [
            {"payment_type": "CASH", "amount": "1.19"}]}}},
    }  # fmt: skip
    return c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=body, headers=h)


def _export(c: httpx.Client, h: dict[str, str], tss: str, path: Path) -> None:
    """The TSS's TAR export through the server, as a shop fetches it."""
    exp = str(uuid.uuid4())
    assert c.put(f"/api/v2/tss/{tss}/export/{exp}", headers=h).status_code == 200
    deadline = time.monotonic() + 60
    while True:
        state = c.get(f"/api/v2/tss/{tss}/export/{exp}", headers=h).json()["state"]
        if state == "COMPLETED":
            break
        assert state in ("PENDING", "WORKING") and time.monotonic() < deadline, state
        time.sleep(0.1)
    answer = c.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h)
    assert answer.status_code == 200, answer.text
    path.write_bytes(answer.content)


def test_a_full_disk_answers_503_and_signing_goes_on_gapless_once_space_is_back(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    key = new_key_in(data)
    with serve(data, log, LIMIT) as (c, pid):
        h = login(c, key)
        tss, cid = setup_tss(c, h)
        signed = 0
        for _ in range(3000):
            r = _sign(c, h, tss, cid)
            if r.status_code != 200:
                break
            signed += 1
        else:
            pytest.fail("the file size limit was never reached")
        refused = [r] + [_sign(c, h, tss, cid) for _ in range(5)]
        for answer in refused:
            assert answer.status_code == 503, answer.text
            problem = answer.json()
            assert problem["code"] == "E_STORAGE_FULL", problem
            assert "signature" not in problem and answer.headers["retry-after"]
            assert "full" in problem["message"]
        text = log.read_text()
        assert "Traceback" not in text, text
        lines = [line for line in text.splitlines() if "E_STORAGE_FULL" in line]
        assert len(lines) == 1, text  # one line, not one per request
        assert "full" in lines[0] and str(data) in lines[0]
        # space is back: the same server signs on, without a restart
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        numbers = []
        for _ in range(3):
            r = _sign(c, h, tss, cid)
            assert r.status_code == 200, r.text
            numbers.append(r.json()["number"])
    with serve(data, log, None) as (c, _):  # and after a restart
        h = login(c, key)
        r = _sign(c, h, tss, cid)
        assert r.status_code == 200, r.text
        numbers.append(r.json()["number"])
        # a number a refused start took is not given again, none is skipped after it
        assert numbers == list(range(numbers[0], numbers[0] + 4)), numbers
        assert signed < numbers[0] <= signed + len(refused) + 1
        tar = tmp_path / "export.tar"
        _export(c, h, tss, tar)
    report = verify_exports([tar])  # what `opentse verify` reports: no gap, no duplicate
    assert report.ok, [f for f in report.findings if f.severity.name == "ERROR"]
    assert report.log_messages > 2 * len(numbers)


@pytest.mark.postgres
def test_postgresql_s_disk_full_is_503_storage_full_and_signing_goes_on(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL answers SQLSTATE 53100 (disk_full, "could not extend file ...: No
    space left on device") to the signing INSERT; here a trigger answers so, as the
    server would. It was a 503 E_STORAGE_UNAVAILABLE 'the database is not available'."""
    import psycopg
    from server_support import serve_app

    from opentse.testing.clock import FrozenClock

    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), pg_url) as c:
        key = create_api_key(c.ctx.svc, org_name="shop", env="TEST", now=c.ctx.now())
        h = login(c, key)
        tss, cid = setup_tss(c, h)
        first = _sign(c, h, tss, cid)
        assert first.status_code == 200, first.text
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'could not extend file: No space left on device'"
                " USING ERRCODE = 'disk_full'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER disk_full BEFORE INSERT ON logs"
                " FOR EACH ROW EXECUTE FUNCTION disk_full()"
            )
            for _ in range(3):
                r = _sign(c, h, tss, cid)
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "E_STORAGE_FULL" and r.headers["retry-after"]
                assert "signature" not in r.json()
            conn.execute("DROP TRIGGER disk_full ON logs")
        again = _sign(c, h, tss, cid)  # space is back
        assert again.status_code == 200, again.text
        assert again.json()["number"] == first.json()["number"] + 1  # nothing taken
