"""Row <-> object conversions and filter SQL shared by the SQL stores.

Kept apart from the connection handling so the PostgreSQL adapter can reuse them
with its own placeholder style.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from typing import Any

from opentse.engine.ports import LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, StorageError
from opentse.tr03151.oids import LogType

RECORD_COLUMNS = (
    "tse_id, serial_number, curve, signature_algorithm, time_format, public_key_point, "
    "encrypted_private_key, certificate_chain, created_at, owner, extra"
)
LOG_COLUMNS = (
    "tse_id, signature_counter, log_type, operation, log_time, filename, message, "
    "transaction_number, client_id, ref, extra"
)


def dump_json(value: Any, what: str) -> str:
    """Compact JSON; StorageError (before anything is written) when not JSON-safe."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"{what} is not JSON-serialisable: {exc}", code="E_STORAGE_DATA"
        ) from exc


def state_to_json(state: TSEState) -> str:
    return dump_json(state.to_dict(), "TSE state")


def state_from_json(text: str, version: int) -> TSEState:
    state = TSEState.from_dict(json.loads(text))
    state.version = version
    return state


def record_params(record: TSERecord) -> tuple[Any, ...]:
    chain = [base64.b64encode(cert).decode("ascii") for cert in record.certificate_chain]
    return (
        record.tse_id,
        bytes(record.serial_number),
        record.curve,
        record.signature_algorithm,
        record.time_format,
        bytes(record.public_key_point),
        bytes(record.encrypted_private_key),
        dump_json(chain, "certificate chain"),
        int(record.created_at),
        record.owner,
        dump_json(record.extra, "TSE record extra"),
    )


def record_from_row(row: Sequence[Any]) -> TSERecord:
    chain = tuple(base64.b64decode(cert) for cert in json.loads(row[7]))
    return TSERecord(
        tse_id=row[0],
        serial_number=bytes(row[1]),
        curve=row[2],
        signature_algorithm=row[3],
        time_format=row[4],
        public_key_point=bytes(row[5]),
        encrypted_private_key=bytes(row[6]),
        certificate_chain=chain,
        created_at=int(row[8]),
        owner=row[9],
        extra=json.loads(row[10]),
    )


def log_params(log: StoredLog) -> tuple[Any, ...]:
    return (
        log.tse_id,
        int(log.signature_counter),
        LogType(log.log_type).value,
        log.operation,
        int(log.log_time),
        log.filename,
        bytes(log.message),
        log.transaction_number,
        log.client_id,
        log.ref,
        None if log.extra is None else dump_json(log.extra, "log extra"),
    )


def log_from_row(row: Sequence[Any]) -> StoredLog:
    return StoredLog(
        tse_id=row[0],
        signature_counter=int(row[1]),
        log_type=LogType(row[2]),
        operation=row[3],
        log_time=int(row[4]),
        filename=row[5],
        message=bytes(row[6]),
        transaction_number=row[7],
        client_id=row[8],
        ref=row[9],
        extra=None if row[10] is None else json.loads(row[10]),
    )


def filter_sql(flt: LogFilter | None, placeholder: str = "?") -> tuple[str, list[Any]]:
    """``AND``-ed conditions for a LogFilter: every given bound applies, inclusive.

    TR-03151 export semantics (a transaction range pulling in the system logs signed
    between its Start and Finish ...) are the engine's; here filters are plain.
    An empty ``log_types`` tuple matches nothing.
    """
    if flt is None:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    p = placeholder
    bounds = (
        ("client_id = ", flt.client_id),
        ("transaction_number >= ", flt.start_transaction_number),
        ("transaction_number <= ", flt.end_transaction_number),
        ("log_time >= ", flt.start_time),
        ("log_time <= ", flt.end_time),
        ("signature_counter >= ", flt.start_signature_counter),
        ("signature_counter <= ", flt.end_signature_counter),
    )
    for condition, value in bounds:
        if value is not None:
            clauses.append(condition + p)
            params.append(value)
    if flt.log_types is not None:
        if flt.log_types:
            # Literals (LogType's three values, never caller text), not parameters:
            # a generic plan (PostgreSQL after psycopg prepares a statement, or
            # plan_cache_mode = force_generic_plan) cannot prove a parameter implies
            # the partial index logs_system's WHERE (migration 0013) and walked every
            # log of the TSE instead.
            types = sorted({LogType(t).value for t in flt.log_types})
            clauses.append("log_type IN (" + ", ".join(f"'{t}'" for t in types) + ")")
        else:
            clauses.append("1 = 0")
    return "".join(" AND " + c for c in clauses), params


def ref_deleted(ref: str, signature_counter: int) -> ConflictError:
    """A ref whose log deleteStoredData dropped: answered instead of "not found", so a
    late retry of that request is not signed again as a new one."""
    return ConflictError(
        f"the request {ref!r} was signed (signature counter {signature_counter}); its "
        "log was deleted after an export",
        code="E_REF_DELETED",
    )


def find_ref_sql(placeholder: str = "?") -> str:
    """One statement for ``find_ref`` (it runs for every request with a ref): the log
    with that ref, else a row of NULLs ending in the counter of a deleted one.
    Parameters: tse_id, ref, tse_id, ref. Read the row with ``stored_or_deleted``."""
    p = placeholder
    nulls = ", ".join(["NULL"] * len(LOG_COLUMNS.split(",")))
    return (
        f"SELECT {LOG_COLUMNS}, NULL FROM logs WHERE tse_id = {p} AND ref = {p}"
        f" UNION ALL SELECT {nulls}, signature_counter"
        f" FROM deleted_refs WHERE tse_id = {p} AND ref = {p} LIMIT 1"
    )


@functools.lru_cache(maxsize=64)
def refs_present_sql(count: int, placeholder: str = "?") -> str:
    """Which of ``count`` refs of one TSE are stored or deleted (a batched
    ``find_ref_sql`` miss check). Parameters: tse_id, the refs, tse_id, the refs."""
    p = placeholder
    marks = ", ".join([p] * count)
    return (
        f"SELECT ref FROM logs WHERE tse_id = {p} AND ref IN ({marks})"
        f" UNION ALL SELECT ref FROM deleted_refs WHERE tse_id = {p} AND ref IN ({marks})"
    )


def stored_or_deleted(row: Sequence[Any] | None, ref: str) -> StoredLog | None:
    """A ``find_ref_sql`` row: the log, None, or E_REF_DELETED."""
    if row is None:
        return None
    if row[0] is None:
        raise ref_deleted(ref, int(row[-1]))
    return log_from_row(row[:-1])


def delete_logs_sql(placeholder: str = "?") -> tuple[str, str, str]:
    """deleteStoredData's three statements, each with parameters (tse_id, up_to): keep
    the refs of the logs that go (``deleted_refs``), flag the transactions whose
    latest revision's log goes (the service's index, ``svc_transactions.log_deleted``,
    migration 0014: its lists filter on it), then drop the logs.

    The flag is set in the same transaction as the refs are kept, for the transactions
    of the logs that go now (their refs ``tx:<uuid>:<rev>``, ids of 36 characters;
    the logs of earlier deletions are gone): the index rows of the TSE are not read.
    A row not yet written gets it from the index writer (``ServiceStore``)."""
    p = placeholder
    return (
        "INSERT INTO deleted_refs (tse_id, ref, signature_counter)"
        " SELECT tse_id, ref, signature_counter FROM logs"
        f" WHERE tse_id = {p} AND signature_counter <= {p} AND ref IS NOT NULL"
        " ON CONFLICT DO NOTHING",
        "UPDATE svc_transactions SET log_deleted = 1"
        " WHERE log_deleted = 0 AND (tss_id, tx_id) IN ("
        " SELECT tse_id, substr(ref, 4, 36) FROM logs"
        f" WHERE tse_id = {p} AND signature_counter <= {p} AND substr(ref, 1, 3) = 'tx:')"
        " AND EXISTS (SELECT 1 FROM deleted_refs d WHERE d.tse_id = svc_transactions.tss_id"
        " AND d.ref = 'tx:' || svc_transactions.tx_id || ':' || svc_transactions.latest_revision)",
        f"DELETE FROM logs WHERE tse_id = {p} AND signature_counter <= {p}",
    )
