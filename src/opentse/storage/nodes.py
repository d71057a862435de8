"""Which API nodes run on a PostgreSQL database, and of which schema level: the guard
of a rolling upgrade.

A migration can change what rows mean (0008: a cash movement's amount in the
transaction index is its payments' sum, not the zero gross total); a node of an
older opentse that still runs goes on writing with its old rules after the new
code migrated (it indexed cash movements with amount 0 again). So migrations are
applied only when no node of a lower level is alive: ``opentse migrate`` and a node
that would migrate at start refuse, naming the nodes (``E_MIGRATE_OLD_NODES``);
``opentse migrate --force`` applies them anyway (the operator knows those nodes are
gone, or accepts it).

Nodes from migration 0010 on record themselves in ``svc_nodes`` (level, host, pid,
heartbeat). Older nodes record nothing of the kind; one that signed within
``OLD_SIGNING_WINDOW`` seconds left its host's ``svc_index_mark`` that recent and is
counted as alive too (an idle one is not seen: stop old nodes before migrating). A
node whose code is older than the database (the schema has migrations it does not
know) refuses to start (``E_SCHEMA_NEWER``) and a running one stops writing, unless
``OPENTSE_ALLOW_NEWER_SCHEMA=1`` says the operator goes back on purpose: once a newer
version has signed, the backup from before the upgrade must not come back (its
counters would repeat), so a rollback runs the older code on the migrated database
(docs/upgrading.md, "Rolling back").
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentse.errors import StorageError

OLD_SIGNING_WINDOW = 60  # seconds: a node of before 0010 that signed this recently
LIVE_BEATS = 3  # heartbeats a node may miss (plus LIVE_SLACK_MS) and still count
LIVE_SLACK_MS = 5000
PG_ONLY_FROM = 900  # 09xx: PostgreSQL-only migrations, outside the mirrored numbering

_NOW_MS = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"


def schema_version(versions: Iterable[int], default: int = 0) -> int:
    """The highest of ``versions`` in the numbering both dialects share (09xx are
    PostgreSQL's own files, the installation check): a database's or a code's
    schema version, as people are told it."""
    return max((v for v in versions if v < PG_ONLY_FROM), default=default)


@functools.cache
def schema_level() -> int:
    """The highest mirrored migration this code ships (its schema level)."""
    from opentse.storage import migrations

    return schema_version(m.version for m in migrations.load("postgresql"))


@functools.cache
def known_versions() -> frozenset[int]:
    """Every migration number this code ships (either dialect)."""
    from opentse.storage import migrations

    return frozenset(m.version for d in ("sqlite", "postgresql") for m in migrations.load(d))


#: The environment variable that lets an older opentse run on a newer database (a
#: rollback on purpose).
ALLOW_NEWER_SCHEMA = "OPENTSE_ALLOW_NEWER_SCHEMA"


def newer_schema_allowed() -> bool:
    """``OPENTSE_ALLOW_NEWER_SCHEMA=1``: the operator rolls back on purpose."""
    return os.environ.get(ALLOW_NEWER_SCHEMA, "") == "1"


def stale_message(applied: set[int]) -> str | None:
    """Why a running node must stop writing, if its database has migrations this
    code lacks (``opentse migrate --force`` ran under it): else None (also with
    ``OPENTSE_ALLOW_NEWER_SCHEMA=1``)."""
    unknown = sorted(applied - known_versions())
    if not unknown or newer_schema_allowed():
        return None
    return (
        f"this node's opentse is older than its database (migrations "
        f"{', '.join(f'{v:04d}' for v in unknown)} unknown to it): it no longer writes; "
        "retry at an upgraded node, or upgrade this one"
    )


@dataclass(frozen=True)
class NodeSeen:
    """A node that looks alive and knows less than the code about to migrate."""

    name: str  # host:pid (svc_nodes) or host (a node of before 0010)
    level: int | None  # None: a node of before 0010 (no svc_nodes row)
    seconds_ago: int

    def describe(self) -> str:
        level = f"schema {self.level:04d}" if self.level is not None else "before 0010"
        return f"{self.name} ({level}, seen {self.seconds_ago} s ago)"


def _has_table(conn: Any, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def older_nodes(conn: Any, level: int) -> list[NodeSeen]:
    """The nodes alive on ``conn``'s schema (PostgreSQL) whose level is below ``level``."""
    seen: list[NodeSeen] = []
    registered_hosts: set[str] = set()
    if _has_table(conn, "svc_nodes"):
        # a host that ever ran a node of 0010 or later (alive or stopped on purpose):
        # its svc_index_mark is that node's, not one of an older version
        registered_hosts = {
            str(r[0]) for r in conn.execute("SELECT DISTINCT host FROM svc_nodes").fetchall()
        }
        rows = conn.execute(
            f"SELECT host, pid, schema_level, ({_NOW_MS} - seen_ms) / 1000 FROM svc_nodes"
            f" WHERE seen_ms >= {_NOW_MS} - beat_ms * %s - %s",
            (LIVE_BEATS, LIVE_SLACK_MS),
        ).fetchall()
        for host, pid, node_level, ago in rows:
            if int(node_level) < level:
                seen.append(NodeSeen(f"{host}:{pid}", int(node_level), max(0, int(ago))))
    if _has_table(conn, "svc_index_mark"):
        rows = conn.execute(
            "SELECT node, EXTRACT(EPOCH FROM clock_timestamp())::BIGINT - mark"
            " FROM svc_index_mark"
            " WHERE mark >= EXTRACT(EPOCH FROM clock_timestamp())::BIGINT - %s",
            (OLD_SIGNING_WINDOW,),
        ).fetchall()
        for host, ago in rows:
            if str(host) not in registered_hosts:  # signed, but never said its level
                seen.append(NodeSeen(str(host), None, max(0, int(ago))))
    return seen


def refuse_if_older_nodes(conn: Any, pending: list[int]) -> None:
    """Raise E_MIGRATE_OLD_NODES when ``pending`` migrations would run under live
    nodes of a lower schema level than this code's."""
    if not pending:
        return
    level = schema_level()
    found = older_nodes(conn, level)
    if not found:
        return
    names = "; ".join(node.describe() for node in found)
    versions = ", ".join(f"{v:04d}" for v in pending)
    raise StorageError(
        f"not migrating ({versions}) while nodes of an older opentse run on this database: "
        f"{names}. Stop or upgrade them first (a node of before 0010 counts while it "
        f"signed within the last {OLD_SIGNING_WINDOW} s), or run 'opentse migrate --force' "
        "if they are gone or you accept that they write with the old rules until they "
        "are upgraded",
        code="E_MIGRATE_OLD_NODES",
    )


def refuse_if_schema_newer(applied: set[int], known: set[int]) -> None:
    """A node older than its database: the schema has migrations this code lacks
    (allowed with ``OPENTSE_ALLOW_NEWER_SCHEMA=1``)."""
    unknown = sorted(applied - known)
    if unknown and not newer_schema_allowed():
        database = schema_version(applied, default=max(applied))
        code = schema_version(known)
        raise StorageError(
            f"the database was migrated by a newer opentse: its schema version is "
            f"{database:04d}, this opentse knows up to {code:04d} (migrations "
            f"{', '.join(f'{v:04d}' for v in unknown)} are unknown to it): upgrade this node "
            f"(its opentse) before starting it, or set {ALLOW_NEWER_SCHEMA}=1 to roll back "
            "to this version on purpose (docs/upgrading.md, 'Rolling back')",
            code="E_SCHEMA_NEWER",
        )
