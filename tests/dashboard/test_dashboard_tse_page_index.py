"""The first view of a TSE page reads the TSE's system logs along the partial index
of system logs (migration 0013), not along all its logs: the store's query for one
log type walked every transaction log of the TSE to find its few system logs (1.4 s
at 10^6 logs; seconds timed in bench/bench_dashboard_tse_page.py). The plan of the
statement the store really sends is checked, on SQLite and PostgreSQL, on a TSE
whose logs are almost all transaction logs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, setup_tss

from opentse.dashboard.tse_exports import ExportLogs
from opentse.engine.ports import LockedTSE, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread
from opentse.tr03151.oids import LogType

LOGS = 20_000
#: logs one signing batch writes here. The PostgreSQL store drops a batch not done
#: within QUERY_DEADLINE (5 s, storage/pg_deadline.py), and a log costs more the more
#: the batch holds (the counter trigger updates the TSE's row once per log, in one
#: transaction). Batches of 2,000 took 2.8 s (4.6 s at most) on a loaded machine and
#: some were cut there (E_STORAGE_UNAVAILABLE, 'server closed the connection
#: unexpectedly'); batches of 250 took 0.75 s at most, 13 s in all (2,000: 28 s)
BATCH = 250


def _sign(inst: Installation, tss: str, count: int) -> None:
    """``count`` logs, every 200th an updateTime system log, the others
    FinishTransaction logs, written through the store as the engine writes them."""
    now = int(time.time())

    def log(n: int) -> StoredLog:
        if n % 200 == 0:
            name = f"Unixt_{now}_Sig-{n}_Log-Sys_updateTime.log"
            return StoredLog(tss, n, LogType.SYSTEM, "updateTime", now, name, b"\x30\x00")
        return StoredLog(tss, n, LogType.TRANSACTION, "FinishTransaction", now,
                         f"Unixt_{now}_Sig-{n}_Log-Tra_No-{n}_Finish_Client-K1.log", b"\x30\x00",
                         n, "KASSE-1")  # fmt: skip

    def batch(locked: LockedTSE) -> None:
        state = locked.load()
        first = state.signature_counter + 1
        locked.append([log(n) for n in range(first, first + BATCH)])
        state.signature_counter = first + BATCH - 1
        locked.save(state)

    # seeding is no test of the deadline (tests/storage has those): a loaded CI machine
    # once took over 5 s for a batch of 250 here, so the seed batches get a minute
    store: Any = inst.store  # PostgresStore.batch_deadline; SQLite has none
    deadline = getattr(store, "batch_deadline", None)
    if deadline is not None:
        store.batch_deadline = 60.0
    try:
        for _ in range(count // BATCH):
            store.run_locked(tss, batch)
    finally:
        if deadline is not None:
            store.batch_deadline = deadline


def _shop(inst: Installation, data: Path) -> Iterator[tuple[Any, str, httpx.Client]]:
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
        key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
        tss, _ = setup_tss(web, api_login(web, key), "KASSE-1")
        _sign(inst, tss, LOGS)
        assert dashboard_login(web, key).status_code == 303
        yield ctx, tss, web


def _system_log_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM logs" in s and "log_type IN" in s]


def test_the_first_view_reads_the_system_logs_along_their_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    try:
        for _, tss, web in _shop(inst, data):
            store = inst.store
            with store._reading("warming up"):  # type: ignore[attr-defined]
                pass
            statements: list[str] = []
            for conn in list(store._readers):  # type: ignore[attr-defined]
                conn.set_trace_callback(statements.append)
            try:
                logs = ExportLogs()  # nothing kept: the first view
                first = logs.first(inst.service, tss)
            finally:
                for conn in list(store._readers):  # type: ignore[attr-defined]
                    conn.set_trace_callback(None)
            assert [e.operation for e in first][-3:] == ["updateTime"] * 3
            assert len(first) == 50
            reads = _system_log_reads(statements)
            assert reads, statements
            with sqlite3.connect(store._path) as conn:  # type: ignore[attr-defined]
                for sql in reads:
                    plan = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
                    assert "USING INDEX logs_system" in plan, (sql, plan)
                # the index holds the system logs only, not the 20,000 of the TSE
                (indexed,) = conn.execute(
                    "SELECT count(*) FROM logs INDEXED BY logs_system"
                    " WHERE tse_id = ? AND log_type IN ('Sys')",
                    (tss,),
                ).fetchone()
            assert 100 <= indexed <= LOGS // 200 + 20, indexed
            page = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"})
            assert page.status_code == 200 and "updateTime" in page.text
    finally:
        inst.close()


@pytest.mark.postgres
def test_the_system_log_query_uses_the_index_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    from opentse.engine.ports import LogFilter
    from opentse.storage.rows import LOG_COLUMNS, filter_sql

    data = tmp_path / "data"
    inst = Installation.open(data, database_url=pg_url)
    try:
        for _, tss, _ in _shop(inst, data):
            flt = LogFilter(
                start_signature_counter=1, end_signature_counter=LOGS, log_types=(LogType.SYSTEM,)
            )
            where, params = filter_sql(flt, "%s")  # as the PostgreSQL store asks
            sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s{where}"
            sql += " ORDER BY signature_counter"
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("ANALYZE logs")
                plan = " | ".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, [tss, *params]))
            assert "logs_system" in plan, plan
            assert len(ExportLogs().first(inst.service, tss)) == 50
    finally:
        inst.close()


@pytest.mark.postgres
def test_a_generic_plan_of_the_system_log_query_uses_the_index(tmp_path: Path, pg_url: str) -> None:
    """psycopg prepares a statement run five times on a connection, and PostgreSQL may
    then plan it once for any parameters (always with plan_cache_mode =
    force_generic_plan). Such a plan cannot tell whether a log type given as a
    parameter is 'Sys': the partial index was skipped and every log of the TSE read."""
    import psycopg
    from psycopg import sql as pgsql

    from opentse.engine.ports import LogFilter
    from opentse.storage.rows import LOG_COLUMNS, filter_sql

    data = tmp_path / "data"
    inst = Installation.open(data, database_url=pg_url)
    try:
        for _, tss, _ in _shop(inst, data):
            flt = LogFilter(
                start_signature_counter=1, end_signature_counter=LOGS, log_types=(LogType.SYSTEM,)
            )
            where, params = filter_sql(flt, "%s")  # as the PostgreSQL store asks
            query = f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s{where}"
            query += " ORDER BY signature_counter"
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("ANALYZE logs")
                conn.execute("SET plan_cache_mode = force_generic_plan")
                rows = conn.execute(query, [tss, *params], prepare=True).fetchall()
                (name,) = conn.execute(
                    "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                    ["%FROM logs WHERE tse_id%"],
                ).fetchone() or ("",)
                assert name, "psycopg did not prepare the statement"
                values = pgsql.SQL(", ").join(pgsql.Literal(v) for v in [tss, *params])
                explain = pgsql.SQL("EXPLAIN EXECUTE {}({})").format(pgsql.Identifier(name), values)
                plan = " | ".join(str(r[0]) for r in conn.execute(explain))
            assert "logs_system" in plan, plan
            assert all(row[2] == LogType.SYSTEM.value for row in rows) and len(rows) >= 100
    finally:
        inst.close()
