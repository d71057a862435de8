"""Secrets never leak: not into the server's captured stdout/stderr, not into error
bodies, not into the database; private keys are unreadable without the installation
secret.

The log grep runs after flows with wrong API secrets, wrong PINs and PUKs (and with
whatever the other tests of this folder did on the same server, when they ran first),
over the server's whole captured output and every error body the tests received.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from live_server import PIN, LiveServer, finished_tx, new_tss, ok

from opentse.crypto import installation_secret
from opentse.crypto.keys import decrypt_private_key
from opentse.errors import OpenTSEError


def _db(live: LiveServer) -> Path:
    found = sorted(live.data.glob("*.sqlite3")) + sorted(live.data.glob("*.db"))
    assert found, sorted(p.name for p in live.data.iterdir())
    return found[0]


def test_secrets_never_in_logs_error_bodies_or_database(live: LiveServer) -> None:
    key = live.new_key("leak-check")
    wrong_secret = "Wrong-Secret-" + key["api_secret"][:20]
    wrong_pin, wrong_puk = "Wrong-Pin-Q7", "Wrong-Puk-Z9x8c7"
    live.secrets.update((wrong_secret, wrong_pin, wrong_puk))
    with live.client() as anon:
        r = anon.post("/auth", json={"api_key": key["api_key"], "api_secret": wrong_secret})
        assert r.status_code == 401
        r = anon.post("/auth", json={"api_key": key["api_key"] + "x", "api_secret": wrong_secret})
        assert r.status_code == 401
    with live.client(live.token(key)) as c:
        tss, puk = new_tss(c, live)
        cid = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{cid}", json={"serial_number": "LEAK-1"}))
        finished_tx(c, tss, cid)
        ok(c.post(f"/tss/{tss}/admin/logout", json={}))
        r = c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": wrong_pin})
        assert r.status_code == 401
        r = c.patch(f"/tss/{tss}/admin", json={"admin_puk": wrong_puk, "new_admin_pin": PIN})
        assert r.status_code in (400, 401)
        r = c.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "short"})
        assert r.status_code == 400
        ok(c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))

    secrets = sorted(s for s in live.secrets if len(s) >= 6)
    assert len(secrets) >= 6 and puk in secrets and key["api_secret"] in secrets
    log = live.log_path.read_bytes().decode("utf-8", "replace")
    assert "opentse serving" in log  # the capture works
    bodies = "\n".join(live.error_bodies)
    assert len(live.error_bodies) >= 4
    leaked = [s[:4] + "..." for s in secrets if s in log or s in bodies]
    assert leaked == [], "secret found in the server output or an error body"

    raw = _db(live).read_bytes()
    for wal in _db(live).parent.glob(_db(live).name + "-wal"):
        raw += wal.read_bytes()
    stored = [s[:4] + "..." for s in secrets if s.encode() in raw]
    assert stored == [], "secret stored in plain text in the database"


def test_private_keys_unreadable_without_the_installation_secret(live: LiveServer) -> None:
    with live.client(live.token(live.new_key("keys"))) as c:
        new_tss(c, live)
    with sqlite3.connect(f"file:{_db(live)}?mode=ro", uri=True) as db:
        blobs = [bytes(row[0]) for row in db.execute("SELECT encrypted_private_key FROM tses")]
    assert blobs
    secret = installation_secret.load_or_create(installation_secret.resolve_path(live.data))
    wrong = bytes(b ^ 0x5A for b in secret)
    for blob in blobs:
        # no PKCS#8 / SEC1 DER or PEM in the clear: the EC private key OID and markers
        assert b"-----BEGIN" not in blob and b"PRIVATE KEY" not in blob
        assert b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" not in blob  # id-ecPublicKey
        assert not blob.startswith(b"\x30")  # not a bare DER structure
        key = decrypt_private_key(blob, secret)  # the right secret opens it
        assert key.curve.name
        with pytest.raises(OpenTSEError):
            decrypt_private_key(blob, wrong)
        damaged = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(OpenTSEError):
            decrypt_private_key(damaged, secret)
    key_file = installation_secret.resolve_path(live.data)
    assert key_file.stat().st_mode & 0o077 == 0, oct(key_file.stat().st_mode)
