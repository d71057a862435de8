"""The archive protocol: an append-only record of set-up, moves, replacements and
PIN/PUK changes (GoBD / the Verfahrensdokumentation want the TSE's history kept).

Entries are only ever inserted (the table refuses UPDATE and DELETE by trigger) and
numbered by ``seq`` in the order they were written. PIN and PUK *changes* are
recorded, their values never: ``append`` refuses detail keys that look like secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opentse.errors import ProtocolError
from opentse.ops.store import OpsDB, dumps

# kinds written by the ops modules (stable strings: they end up in archives)
ORG_CREATED = "org.created"
LOCATION_CREATED = "location.created"
TSE_ASSIGNED = "tse.assigned"
TSE_SHARED = "tse.shared"
REGISTER_ASSIGNED = "register.assigned"
REGISTER_MOVED = "register.moved"  # a till taken to another location of the organization
PIN_CHANGED = "pin.changed"
PUK_CHANGED = "puk.changed"
MOVE_STARTED = "move.started"
API_KEY_ROTATED = "move.api_key_rotated"
CONNECTION_DATA = "move.connection_data"
CONNECTION_TEST = "move.connection_test"
MOVE_DONE = "move.done"
MOVE_RESUMED = "move.resumed"  # a rerun testing again with the credentials it made
MOVED_OUT = "move.moved_out"  # this data folder retired: its copy runs elsewhere
REPLACE_STARTED = "replace.started"
REPLACE_NEW_TSE = "replace.new_tse_ready"
REPLACE_REGISTER_MOVED = "replace.register_moved"
REPLACE_OLD_EXPORTED = "replace.old_exported"
REPLACE_EXPORT_VERIFIED = "replace.export_verified"
REPLACE_EXPORT_ARCHIVED = "replace.export_archived"
REPLACE_OLD_DISABLED = "replace.old_disabled"
REPLACE_FINAL_EXPORT = "replace.final_export_archived"
REPLACE_DONE = "replace.done"
REPLACE_RESUMED = "replace.resumed"  # a rerun finishing a replacement that stopped
EXPORT_ARCHIVED = "archive.export"
LOGS_RELEASED = "archive.logs_released"
OUTAGE_RECORDED = "outage.recorded"

_SECRET_WORDS = ("pin", "puk", "secret", "password", "private")
_ALLOWED_SECRET_KEYS = {"api_key", "pin_role", "puk_role", "api_key_old", "api_key_new"}


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: int
    kind: str
    org_id: str
    location_id: str
    tse_id: str
    register_id: str
    actor: str
    details: dict[str, Any]


def _check_details(details: dict[str, Any]) -> None:
    for key in details:
        lowered = key.lower()
        if key not in _ALLOWED_SECRET_KEYS and any(w in lowered for w in _SECRET_WORDS):
            raise ProtocolError(
                f"protocol details must not carry secrets (key {key!r})",
                code="E_PROTOCOL_SECRET",
            )


def append(
    conn: Any,
    at: int,
    kind: str,
    *,
    org_id: str = "",
    location_id: str = "",
    tse_id: str = "",
    register_id: str = "",
    actor: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Insert one entry inside the caller's transaction ``conn``; returns its seq."""
    details = dict(details or {})
    _check_details(details)
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ops_protocol").fetchone()
    seq = int(row[0]) + 1
    conn.execute(
        "INSERT INTO ops_protocol(seq, at, kind, org_id, location_id, tse_id, register_id,"
        " actor, details) VALUES (?,?,?,?,?,?,?,?,?)",
        (seq, at, kind, org_id, location_id, tse_id, register_id, actor, dumps(details)),
    )
    return seq


def record(db: OpsDB, at: int, kind: str, **fields: Any) -> int:
    """``append`` in a transaction of its own."""
    with db.tx() as conn:
        return append(conn, at, kind, **fields)


def entries(
    db: OpsDB,
    *,
    tse_id: str | None = None,
    kinds: tuple[str, ...] | None = None,
    prefix: str | None = None,
) -> list[Entry]:
    """Entries in the order written, optionally for one TSE / some kinds."""
    where: list[str] = []
    args: list[Any] = []
    if tse_id is not None:
        where.append("tse_id=?")
        args.append(tse_id)
    if kinds:
        where.append(f"kind IN ({','.join('?' * len(kinds))})")
        args.extend(kinds)
    if prefix is not None:
        where.append("kind LIKE ?")
        args.append(prefix + "%")
    sql = (
        "SELECT seq, at, kind, org_id, location_id, tse_id, register_id, actor, details"
        " FROM ops_protocol"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq"
    return [
        Entry(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
        for r in db.rows(sql, args)
    ]


def record_credential_change(
    db: OpsDB, at: int, tse_id: str, *, what: str, role: str = "admin", actor: str = ""
) -> int:
    """A PIN or PUK change of ``role`` (the fact and time, never the value)."""
    if what not in ("pin", "puk"):
        raise ProtocolError("what must be 'pin' or 'puk'", code="E_PROTOCOL_KIND")
    kind = PIN_CHANGED if what == "pin" else PUK_CHANGED
    return record(db, at, kind, tse_id=tse_id, actor=actor, details={f"{what}_role": role})
