"""Gaps an adversarial review of the HTTP service found, each over a real served app.

- /metrics: the failure counter takes the TSS id from the request path, which anybody
  can type (no token needed for a 401): junk must neither grow it without bound nor
  show up as a label in the operator's metrics.
- /auth: an unknown API key must cost as much as a wrong secret, so the answer's
  timing does not tell which keys exist.
- createClient / triggerExport with an id another organization holds answer 404
  like every other route on another organization's things (as createTss does), not
  409 / 400 "already exists".
"""

from __future__ import annotations

import uuid
from pathlib import Path

from server_support import login, new_key, serve_app, setup_tss

from opentse.crypto import secrets
from opentse.testing.clock import FrozenClock
from opentse.testing.counting import scrypt_calls

OPERATOR = "operator-metrics-token-1"


def test_path_junk_does_not_grow_the_failure_counter_or_reach_metrics(
    tmp_path: Path, clock: FrozenClock
) -> None:
    extra = {"metrics_token": OPERATOR, "failure_ids_max": 20}
    with serve_app(tmp_path / "data", clock, extra=extra) as cl:
        h = login(cl, new_key(cl))
        tss, _cid = setup_tss(cl, h)
        junk = [str(uuid.uuid4()) for _ in range(60)]
        for tss_id in junk:  # no token at all: 401, counted against that id before
            assert cl.get(f"/api/v2/tss/{tss_id}").status_code == 401
        for i in range(10):  # the hot route, with label-ish junk in the id
            r = cl.put(f'/api/v2/tss/junk-{i}"x/tx/1', json={"state": "ACTIVE"})
            assert r.status_code == 401
        # failures of the real TSS still count, on both routes
        r = cl.get(f"/api/v2/tss/{tss}/client/{uuid.uuid4()}", headers=h)
        assert r.status_code == 404
        r = cl.put(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}", json={"state": "ACTIVE"})
        assert r.status_code == 401
        for tss_id in junk[:30]:  # more junk after the real ones
            assert cl.get(f"/api/v2/tss/{tss_id}/export").status_code == 401

        counts = cl.app.failures.snapshot()
        assert counts[(tss, "404")] == 1 and counts[(tss, "401")] == 1
        assert len(counts) <= 20, len(counts)
        assert not any("junk" in tid for tid, _ in counts)

        text = cl.get("/metrics", headers={"Authorization": f"Bearer {OPERATOR}"}).text
        assert f'opentse_tse_failures_total{{tse_id="{tss}",status="404"}} 1' in text
        assert "junk" not in text
        leaked = [tid for tid in junk if tid in text]
        assert leaked == []


def _secret_checks(cl: object, body: dict[str, str]) -> list[tuple[int, int, int]]:
    """The scrypt calls (cost parameters) one refused /auth makes: the work counted,
    not timed (a ratio of timings can fail on a loaded machine)."""
    with scrypt_calls() as calls:
        r = cl.post("/api/v2/auth", json=body)  # type: ignore[attr-defined]
    assert r.status_code == 401 and r.json()["code"] == "E_UNAUTHORIZED"
    return calls


def test_unknown_api_key_costs_as_much_as_a_wrong_secret(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """An unknown key pays for the same secret check as a known key with a wrong
    secret (a decoy hash): without it an unknown key answered in ~1-2 ms instead of
    the tens of ms of scrypt, which told which keys exist."""
    with serve_app(tmp_path / "data", clock) as cl:
        key = new_key(cl)
        wrong = {"api_key": key["api_key"], "api_secret": "W" * 43}
        unknown = {"api_key": "key_" + "0" * 32, "api_secret": "W" * 43}
        _secret_checks(cl, unknown)  # the first one also makes the decoy hash
        known = _secret_checks(cl, wrong)
        assert known == [(secrets.N, secrets.R, secrets.P)], known
        assert _secret_checks(cl, unknown) == known


def test_ids_of_another_organization_are_404_on_create(tmp_path: Path, clock: FrozenClock) -> None:
    with serve_app(tmp_path / "data", clock) as cl:
        ha = login(cl, new_key(cl, "org-a"))
        hb = login(cl, new_key(cl, "org-b"))
        tss_a, client_a = setup_tss(cl, ha)
        tss_b, _client_b = setup_tss(cl, hb)
        export_a = str(uuid.uuid4())
        assert cl.put(f"/api/v2/tss/{tss_a}/export/{export_a}", headers=ha).status_code == 200

        r = cl.put(
            f"/api/v2/tss/{tss_b}/client/{client_a}", json={"serial_number": "B-1"}, headers=hb
        )
        assert (r.status_code, r.json()["code"]) == (404, "E_CLIENT_NOT_FOUND"), r.text
        r = cl.put(f"/api/v2/tss/{tss_b}/export/{export_a}", headers=hb)
        assert (r.status_code, r.json()["code"]) == (404, "E_EXPORT_NOT_FOUND"), r.text

        # the owner still gets the conflicts fiskaly documents
        r = cl.put(
            f"/api/v2/tss/{tss_a}/client/{client_a}", json={"serial_number": "A-2"}, headers=ha
        )
        assert (r.status_code, r.json()["code"]) == (409, "E_CLIENT_CONFLICT"), r.text
        tss_a2, _ = setup_tss(cl, ha)
        r = cl.put(f"/api/v2/tss/{tss_a2}/export/{export_a}", headers=ha)
        assert (r.status_code, r.json()["code"]) == (400, "E_DUPLICATE_EXPORT"), r.text
        # and B's attempts changed nothing of A's
        r = cl.get(f"/api/v2/tss/{tss_a}/client/{client_a}", headers=ha)
        assert r.status_code == 200 and r.json()["serial_number"] == "KASSE-1"
        r = cl.get(f"/api/v2/tss/{tss_a}/export/{export_a}", headers=ha)
        assert r.status_code == 200 and r.json()["tss_id"] == tss_a


def test_lan_session_file_is_private_even_when_it_existed_readable(tmp_path: Path) -> None:
    """os.open's mode applies only to a new file: a session file restored from a
    backup as 0644 got the API secret written into it world-readable."""
    from opentse.server import lan

    path = tmp_path / lan.SESSION_FILE
    path.write_text("old\n")
    path.chmod(0o644)
    lan.write_session_file(
        tmp_path,
        address="127.0.0.1",
        port=4433,
        api_key="key_x",
        api_secret="Lan-Secret-123",
        fingerprint="AA",
    )
    assert "Lan-Secret-123" in path.read_text()
    assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)


def test_lan_tls_key_is_encrypted_with_the_installation_secret(tmp_path: Path) -> None:
    """Every private key of an installation is encrypted at rest (docs/keys-and-
    secrets.md); the LAN server's TLS key was plain PKCS#8 PEM beside the database.
    A key written plain by an older version is encrypted at the next start."""
    from cryptography.hazmat.primitives import serialization

    from opentse.server import lan

    secret = bytes(range(32))
    files = lan.ensure_certificate(tmp_path, ["127.0.0.1"], secret=secret)
    pem = files.key.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert files.password
    for wrong in (None, b"not-it"):
        try:
            serialization.load_pem_private_key(pem, wrong)
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError("the TLS key opened without its password")
    key = serialization.load_pem_private_key(pem, files.password.encode())
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files.key.write_bytes(plain)  # as an older version left it
    again = lan.ensure_certificate(tmp_path, ["127.0.0.1"], secret=secret)
    assert again.fingerprint == files.fingerprint  # same certificate, same key
    assert b"ENCRYPTED PRIVATE KEY" in again.key.read_bytes()
    assert again.key.stat().st_mode & 0o077 == 0


def test_answers_with_tokens_or_the_puk_are_not_stored_by_caches(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """RFC 6749 5.1: a token response carries Cache-Control: no-store; the same for
    createTss, whose answer holds the admin PUK."""
    with serve_app(tmp_path / "data", clock) as cl:
        key = new_key(cl)
        r = cl.post(
            "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
        )
        assert r.status_code == 200 and "no-store" in r.headers.get("cache-control", "")
        refresh = {"refresh_token": r.json()["refresh_token"]}
        r = cl.post("/api/v2/auth", json=refresh)
        assert r.status_code == 200 and "no-store" in r.headers.get("cache-control", "")
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        tss = str(uuid.uuid4())
        for _ in range(2):  # the create and its idempotent retry both show the PUK
            r = cl.put(f"/api/v2/tss/{tss}", json={}, headers=h)
            assert r.status_code == 200 and r.json()["admin_puk"]
            assert "no-store" in r.headers.get("cache-control", "")


def test_admin_pin_counter_holds_under_concurrency_and_across_a_restart(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """Not a gap the review found, but not covered before: wrong PINs sent at once
    are all counted (no lost updates), and the count survives a restart."""
    import concurrent.futures

    import httpx

    data = tmp_path / "data"
    with serve_app(data, clock) as cl:
        key = new_key(cl)
        h = login(cl, key)
        tss, _cid = setup_tss(cl, h)
        assert cl.post(f"/api/v2/tss/{tss}/admin/logout", json={}, headers=h).status_code == 200
        url = str(cl.base_url.join(f"/api/v2/tss/{tss}/admin/auth"))

        def guess(i: int) -> int:
            r = httpx.post(url, json={"admin_pin": f"wrong-{i}"}, headers=h, timeout=60)
            return r.status_code

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            assert sorted(pool.map(guess, range(3))) == [401, 401, 401]
    with serve_app(data, clock) as cl:  # restarted on the same data
        h = login(cl, key)
        r = cl.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "wrong-x"}, headers=h)
        assert r.status_code == 401 and "1 attempt left" in r.json()["message"], r.text
        r = cl.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "wrong-y"}, headers=h)
        assert (r.status_code, r.json()["code"]) == (423, "E_ADMIN_PIN_BLOCKED")
        r = cl.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h)
        assert r.status_code == 423  # the right PIN too, until the PUK sets a new one
