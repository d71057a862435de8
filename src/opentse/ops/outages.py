"""The outage log the procedure documentation lists: TSE outages recorded here
(``record_outage``) plus, optionally, the registers' own outage journals
(``opentse.register.outage.OutageLog`` files), merged in time order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from opentse.errors import NotFoundError, ProtocolError
from opentse.ops import protocol
from opentse.ops.store import OpsContext


@dataclass(frozen=True, slots=True)
class OutageRow:
    source: str  # "ops" or the journal file name
    tse_id: str
    register_id: str
    started_at: int
    ended_at: int | None
    reason: str
    receipts: int = 0


def record_outage(
    ctx: OpsContext,
    *,
    started_at: int,
    ended_at: int | None,
    reason: str,
    tse_id: str = "",
    register_id: str = "",
    actor: str = "",
) -> OutageRow:
    if ended_at is not None and ended_at < started_at:
        raise ProtocolError("an outage cannot end before it starts", code="E_OUTAGE_TIMES")
    if not reason.strip():  # the procedure documentation lists it; the log is append-only
        raise ProtocolError("an outage needs its reason (--reason)", code="E_OUTAGE_REASON")
    if tse_id:  # the log and its protocol entry are append-only: no typo goes in for good
        ctx.service.require(tse_id)  # E_TSS_NOT_FOUND
    row = OutageRow("ops", tse_id, register_id, started_at, ended_at, reason.strip())
    with ctx.db.tx() as c:
        # the same outage recorded again with its end, as the docs say ("omit --end
        # while it lasts"): it ends the open entry instead of adding a second one
        open_id = None
        if ended_at is not None:
            found = c.execute(
                "SELECT id FROM ops_outages WHERE tse_id=? AND register_id=? AND started_at=?"
                " AND ended_at IS NULL",
                (tse_id, register_id, started_at),
            ).fetchone()
            open_id = found[0] if found else None
        if open_id is not None:
            c.execute("UPDATE ops_outages SET ended_at=? WHERE id=?", (ended_at, open_id))
        else:
            c.execute(
                "INSERT INTO ops_outages(id, tse_id, register_id, started_at, ended_at, reason)"
                " VALUES (?,?,?,?,?,?)",
                (str(uuid.uuid4()), tse_id, register_id, started_at, ended_at, row.reason),
            )
        details = {"started_at": started_at, "ended_at": ended_at, "reason": row.reason}
        if open_id is not None:
            details["ends_open_outage"] = True
        protocol.append(
            c, ctx.now(), protocol.OUTAGE_RECORDED, tse_id=tse_id, register_id=register_id,
            actor=actor, details=details,
        )  # fmt: skip
    return row


def outages(ctx: OpsContext, journals: tuple[Path, ...] = ()) -> list[OutageRow]:
    rows = [
        OutageRow("ops", r[0], r[1], int(r[2]), r[3], r[4])
        for r in ctx.db.rows(
            "SELECT tse_id, register_id, started_at, ended_at, reason FROM ops_outages"
        )
    ]
    for path in journals:
        rows += _journal_rows(path)
    return sorted(rows, key=lambda r: (r.started_at, r.source))


def _journal_rows(path: Path) -> list[OutageRow]:
    """One register's outages. The books in the same file (``opentse pos``) name the
    register (its serial) and the TSE each unsigned receipt was meant for; a journal
    without books leaves both empty."""
    from opentse.register.books import Books
    from opentse.register.outage import OutageLog

    if not path.is_file():  # opening would create an empty journal: a typo listed nothing
        raise NotFoundError(f"register journal {path} does not exist", code="E_JOURNAL_NOT_FOUND")
    log, books = OutageLog(path), Books(path)
    try:
        register = books.register_serial() or ""
        return [
            OutageRow(
                path.name,
                ", ".join(books.tses_of(o.receipt_refs)),
                register,
                int(o.started_at.timestamp()),
                int(o.ended_at.timestamp()) if o.ended_at else None,
                f"{o.kind}: {o.reason}",
                len(o.receipt_refs),
            )
            for o in log.outages()
        ]
    finally:
        books.close_file()
        log.close()
