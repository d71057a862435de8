"""Moving without servers: LAN session file rewritten, failed connection test does
not complete the move, organizations and hosts checked."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PIN, ready_tse
from opentse.errors import OpenTSEError
from opentse.ops import moving, protocol
from opentse.ops.store import OpsContext
from opentse.server import lan
from opentse.server.auth import create_api_key


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def _served_tse_with_session(ops: OpsContext) -> dict[str, str]:
    """TSE t1 (register K1) served over the API to an organization "lan", whose key a
    LAN-TSE-Session.txt names (TLS, fingerprint AA:BB); the key."""
    ready_tse(ops, "t1", "K1")
    key = create_api_key(ops.svc, org_name="lan", env="TEST", now=ops.now())
    ops.svc.add_tss("t1", key["organization_id"], "TEST", {}, None, ops.now())
    lan.write_session_file(
        ops.data_dir, address="10.0.0.1", port=4433, api_key=key["api_key"],
        api_secret=key["api_secret"], fingerprint="AA:BB",
    )  # fmt: skip
    return key


def test_move_rewrites_lan_session_and_needs_a_passing_test(ops: OpsContext) -> None:
    key = _served_tse_with_session(ops)
    port = _closed_port()
    conn = moving.move_tse(
        ops, "t1", host="127.0.0.1", port=port, tls=True, tls_fingerprint="CC:DD"
    )
    assert conn.url == f"https://127.0.0.1:{port}/api/v2" and conn.registers == ("K1",)
    old = ops.svc.get_api_key(key["api_key"])
    assert old is not None and old.disabled
    new = ops.svc.get_api_key(conn.api_key)
    assert new is not None and not new.disabled
    session = (ops.data_dir / lan.SESSION_FILE).read_text(encoding="utf-8")
    assert conn.api_key in session and conn.api_secret in session
    assert key["api_secret"] not in session and "CC:DD" in session
    assert lan._read_session(ops.data_dir / lan.SESSION_FILE) == (conn.api_key, conn.api_secret)
    # the test command the registers are told to run pins the new TLS certificate
    # (without it, a self-signed LAN certificate fails with CERTIFICATE_VERIFY_FAILED)
    test_line = next(
        line
        for line in Path(conn.file).read_text(encoding="utf-8").splitlines()
        if line.startswith("Test:")
    )
    assert f"--url {conn.url} " in test_line and test_line.rstrip().endswith("--fingerprint CC:DD")
    assert conn.api_secret not in test_line

    result = moving.connection_test(ops, conn)  # nothing listens there
    assert result["ok"] is False and result["step"] == "connect"
    kinds = [e.kind for e in protocol.entries(ops.db, tse_id="t1")]
    assert kinds[-1] == protocol.CONNECTION_TEST and protocol.MOVE_DONE not in kinds


def test_move_checks_organization_and_host(ops: OpsContext) -> None:
    ready_tse(ops, "t1")
    with pytest.raises(OpenTSEError) as exc:
        moving.move_tse(ops, "t1", host="127.0.0.1", port=8000)
    assert exc.value.code == "E_MOVE_NO_ORGANIZATION"
    key = create_api_key(ops.svc, org_name="shop", env="TEST", now=ops.now())
    with pytest.raises(OpenTSEError) as exc:
        moving.move_tse(ops, "t1", host="bad host/x", port=8000, org_id=key["organization_id"])
    assert exc.value.code == "E_MOVE_HOST"
    with pytest.raises(OpenTSEError) as exc:
        moving.move_tse(ops, "t1", host="127.0.0.1", port=70000, org_id=key["organization_id"])
    assert exc.value.code == "E_MOVE_PORT"
    conn = moving.move_tse(ops, "t1", host="::1", port=8000, org_id=key["organization_id"])
    assert conn.url == "http://[::1]:8000/api/v2" and conn.organization_id == key["organization_id"]
    text = Path(conn.file).read_text(encoding="utf-8")
    assert "TLS SHA-256:         (no TLS)" in text and "--fingerprint" not in text
    assert ops.svc.get_api_key(key["api_key"]).disabled  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tls", "fingerprint", "scheme", "shown"),
    [(True, None, "https", "(not given)"), (False, "CC:DD", "http", "(no TLS)")],
)
def test_a_moves_session_file_says_what_the_new_host_serves(
    ops: OpsContext, tls: bool, fingerprint: str | None, scheme: str, shown: str
) -> None:
    """LAN-TSE-Session.txt follows --tls of the move, as its connection file does: a
    host serving HTTPS without a pin given (a certificate the registers trust) was
    written as http:// "(no TLS)", and a pin without TLS as an https URL."""
    _served_tse_with_session(ops)
    conn = moving.move_tse(
        ops, "t1", host="10.0.0.2", port=4433, tls=tls, tls_fingerprint=fingerprint
    )
    assert conn.url == f"{scheme}://10.0.0.2:4433/api/v2"
    session = (ops.data_dir / lan.SESSION_FILE).read_text(encoding="utf-8")
    assert f"URL:                 {conn.url}" in session
    assert f"TLS SHA-256:         {shown}" in session
    assert "--fingerprint" not in session
    assert f"--url {scheme}://10.0.0.2:4433 " in session


def test_moving_a_disabled_tse_is_refused_and_keeps_the_keys(ops: OpsContext) -> None:
    """A replaced (disabled) TSE was "moved": every key of its organization disabled,
    so every register of the organization locked out, for a TSE nobody signs with."""
    key = _served_tse_with_session(ops)
    ops.service.authenticate("t1", PIN)
    ops.service.disable("t1")
    with pytest.raises(OpenTSEError) as exc:
        moving.move_tse(ops, "t1", host="10.0.0.2", port=4433)
    assert exc.value.code == "E_MOVE_INACTIVE" and "DISABLED" in exc.value.message
    assert not ops.svc.get_api_key(key["api_key"]).disabled  # type: ignore[union-attr]
    assert protocol.entries(ops.db, prefix="move.") == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    host=st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(str),
        st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True),
    ),
    port=st.integers(1, 65535),
    path=st.sampled_from(["/api/v2", "/", "", "/tse/api/v2/", "kasse:1/api"]),
)
def test_an_unfinished_move_is_read_back_from_its_connection_file(
    ops: OpsContext, host: str, port: int, path: str
) -> None:
    """The connection file move_tse writes is what a rerun reads the key and secret
    back from (whatever host, IPv6 included, port and path): written, then parsed."""
    if not ops.svc.get_tss("t1"):
        _served_tse_with_session(ops)
    conn = moving.move_tse(ops, "t1", host=host, port=port, path=path)
    file = Path(conn.file)
    assert moving.unfinished_move(ops, "t1", conn.url, conn.organization_id, file) == (
        conn.api_key,
        conn.api_secret,
    )
    again = moving.move_tse(ops, "t1", host=host, port=port, path=path)
    assert again.resumed and (again.api_key, again.api_secret) == (conn.api_key, conn.api_secret)
    protocol.record(ops.db, ops.now(), protocol.MOVE_DONE, tse_id="t1", details={})
    assert moving.unfinished_move(ops, "t1", conn.url, conn.organization_id, file) is None
