"""Two TSEs of one organization moved to the same host: one key for both.

API keys belong to the organization, so a move rotates them for all its TSEs. The
resumable move kept "the key this move made" per TSE (read back from that TSE's own
connection file): moving the second TSE rotated again and disabled the key the first
move had just given its registers, and every rerun of either move (the connection
test failing while ``opentse serve`` is not started there yet) found its own key
disabled by the other and rotated once more, without end.
"""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import ready_tse
from opentse.ops import moving, protocol
from opentse.ops.store import OpsContext
from opentse.server.auth import create_api_key


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _two_served_tses(ops: OpsContext) -> str:
    ready_tse(ops, "berlin", "KASSE-B1")
    ready_tse(ops, "leipzig", "KASSE-L1")
    key = create_api_key(ops.svc, org_name="chain", env="TEST", now=ops.now())
    for tse in ("berlin", "leipzig"):
        ops.svc.add_tss(tse, key["organization_id"], "TEST", {}, None, ops.now())
    return key["organization_id"]


def _file_key(conn: moving.ConnectionData) -> str:
    line = next(
        x
        for x in Path(conn.file).read_text(encoding="utf-8").splitlines()
        if x.startswith("API key:")
    )
    return line.partition(":")[2].strip()


def _enabled(ops: OpsContext, org: str) -> list[str]:
    rows = ops.db.rows(
        "SELECT api_key FROM svc_api_keys WHERE organization_id=? AND disabled=0", (org,)
    )
    return [str(r[0]) for r in rows]


def test_second_tse_and_reruns_keep_the_one_key(ops: OpsContext) -> None:
    org = _two_served_tses(ops)
    port = _closed_port()  # nothing serves there yet: each connection test fails
    first = moving.move_tse(ops, "berlin", host="127.0.0.1", port=port)
    assert moving.connection_test(ops, first)["ok"] is False
    second = moving.move_tse(ops, "leipzig", host="127.0.0.1", port=port)
    # the key berlin's registers were just given stays the organization's key
    assert (second.api_key, second.api_secret) == (first.api_key, first.api_secret)
    assert second.key_of == "berlin" and not second.resumed
    assert _enabled(ops, org) == [first.api_key]
    for _ in range(2):  # reruns of both moves, in turn, until the server is there
        for tse in ("berlin", "leipzig"):
            again = moving.move_tse(ops, tse, host="127.0.0.1", port=port)
            assert (again.api_key, again.api_secret) == (first.api_key, first.api_secret)
            assert moving.connection_test(ops, again)["ok"] is False
    assert _enabled(ops, org) == [first.api_key]
    assert _file_key(first) == _file_key(second) == first.api_key
    rotations = protocol.entries(ops.db, kinds=(protocol.API_KEY_ROTATED,))
    assert len(rotations) == 1
    started = protocol.entries(ops.db, tse_id="leipzig", kinds=(protocol.MOVE_STARTED,))
    assert started[-1].details["api_key"] == first.api_key
    assert started[-1].details["key_of_move"] == "berlin"


def test_a_rerun_after_the_other_rotated_takes_the_enabled_key(ops: OpsContext) -> None:
    """A folder where the two moves already rotated each other's key (before this fix):
    berlin's file names a disabled key, leipzig's the enabled one. berlin's rerun takes
    leipzig's (still enabled, made for this URL) instead of rotating once more."""
    org = _two_served_tses(ops)
    port = _closed_port()
    first = moving.move_tse(ops, "berlin", host="127.0.0.1", port=port)
    protocol.record(  # leipzig's move as it ran before: a rotation of its own
        ops.db, ops.now(), protocol.MOVE_STARTED, tse_id="leipzig",
        details={"new_url": f"http://127.0.0.1:{port}/api/v2", "organization_id": org},
    )  # fmt: skip
    made = moving.rotate_api_keys(ops, org, tse_id="leipzig")
    leipzig_file = ops.data_dir / "TSE-Connection-leipzig.txt"
    leipzig_file.write_text(
        f"URL:                 http://127.0.0.1:{port}/api/v2\n"
        f"API key:             {made[0]}\nAPI secret:          {made[1]}\n",
        encoding="utf-8",
    )
    assert first.api_key not in _enabled(ops, org)
    again = moving.move_tse(ops, "berlin", host="127.0.0.1", port=port)
    assert (again.api_key, again.api_secret) == made and again.key_of == "leipzig"
    assert _enabled(ops, org) == [made[0]]


def test_a_move_to_another_url_or_after_done_rotates(ops: OpsContext) -> None:
    """Only a key made for the same URL is taken over; a rerun of a move that is done
    still rotates (the documented way to a new secret)."""
    org = _two_served_tses(ops)
    port = _closed_port()
    first = moving.move_tse(ops, "berlin", host="127.0.0.1", port=port)
    other = moving.move_tse(ops, "leipzig", host="127.0.0.1", port=_closed_port())
    assert other.api_key != first.api_key and other.key_of == ""
    assert _enabled(ops, org) == [other.api_key]
    protocol.record(
        ops.db, ops.now(), protocol.MOVE_DONE, tse_id="leipzig", details={"url": other.url}
    )
    rerun = moving.move_tse(ops, "leipzig", host="127.0.0.1", port=int(other.port))
    assert rerun.api_key != other.api_key and _enabled(ops, org) == [rerun.api_key]
