"""The operations tables (migration 0003_ops) and the context ops code runs in.

``OpsDB`` talks to the same database as the engine and the HTTP service through the
service store's connection handling (``ServiceStore._conn``/``_tx``): on SQLite a
per-thread connection, on PostgreSQL ``PgServiceStore`` translates the ``?``
placeholders. So ops works on both stores with one set of queries, and API key
rotation (moving.py) changes ``svc_api_keys`` in the same transaction as its
protocol entry.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from opentse.engine.ports import Clock
from opentse.server.service_store import ServiceStore

DEFAULT_CAPACITY = 20_000_000  # signatures, like a USB TSE
DEFAULT_REMINDER_DAYS = 30


class OpsDB:
    """Small query helpers over a ``ServiceStore``'s connections."""

    def __init__(self, svc: ServiceStore) -> None:
        self.svc = svc

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.svc._conn().execute(sql, tuple(args)).fetchall()]

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self.rows(sql, args)
        return found[0] if found else None

    @contextlib.contextmanager
    def tx(self) -> Iterator[Any]:
        """One durable write transaction; ops write transactions take turns.

        SQLite's ``BEGIN IMMEDIATE`` lets one writer in at a time. PostgreSQL's READ
        COMMITTED does not: two commands at once both read ``MAX(seq)`` of the protocol
        (one then failed with a raw unique violation) and both passed checks such as
        "no organization of this name yet" before either wrote. So on PostgreSQL the
        transaction first locks ``ops_protocol`` against other writers (plain reads go
        on); what the transaction then reads is what the one before it committed.
        """
        with self.svc._tx(durable=True) as conn:
            if not isinstance(conn, sqlite3.Connection):
                conn.execute("LOCK TABLE ops_protocol IN SHARE ROW EXCLUSIVE MODE")
            yield conn

    def setting(self, name: str, default: str) -> str:
        row = self.one("SELECT value FROM ops_settings WHERE name=?", (name,))
        return str(row[0]) if row else default

    def set_setting(self, name: str, value: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM ops_settings WHERE name=?", (name,))
            c.execute("INSERT INTO ops_settings(name, value) VALUES (?,?)", (name, value))


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class OpsContext:
    """An installation (engine, store, CA) plus the service store and ops tables.

    ``OpsContext.open(data_dir)`` for CLI and tests; the server builds one from its
    ``ServerContext`` with ``OpsContext(installation, svc, owns_svc=False)``.
    """

    def __init__(
        self,
        installation: Any,
        svc: ServiceStore,
        *,
        clock: Clock | None = None,
        owns: bool = True,
        owns_svc: bool = True,
    ) -> None:
        self.installation = installation
        self.service = installation.service
        self.store = installation.store
        self.data_dir: Path = Path(installation.data_dir)
        self.svc = svc
        self.db = OpsDB(svc)
        self.clock: Clock = clock or installation.service.clock
        self._owns = owns
        self._owns_svc = owns_svc

    @classmethod
    def open(
        cls, data_dir: Path | str, *, clock: Clock | None = None, database_url: str | None = None
    ) -> OpsContext:
        from opentse.installation import Installation
        from opentse.storage.pg_service import open_service_store

        inst = Installation.open(data_dir, clock=clock, database_url=database_url)
        try:
            svc = open_service_store(inst, Path(data_dir))
        except BaseException:
            inst.close()
            raise
        return cls(inst, svc, clock=clock)

    def now(self) -> int:
        return self.clock.now()

    def close(self) -> None:
        if self._owns_svc:
            self.svc.close()
        if self._owns:
            self.installation.close()

    def __enter__(self) -> OpsContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
