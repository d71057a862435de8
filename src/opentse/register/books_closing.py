"""From the books' rows to a DSFinV-K Kassenabschluss, and back from a kept closing.

DSFinV-K 2.4 (chapter 5) builds the Kassenabschluss from the single records, so a
closing is derived from the booked rows (sale, Finish log or TSE failure, the TSEs
described) rather than from running totals. What a closing cannot rebuild from the
rows later -- master data, TSE numbering, VAT rates, the counted cash -- is kept as
JSON next to it (``closing_record``), so the same closing can be exported again
byte for byte (``closed_day``). Every function here runs with the books' lock held.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk import model
from opentse.register.backends import TseDescription
from opentse.register.books_json import (
    MasterData,
    master_from_json,
    master_to_json,
    money_or_none,
    sale_from_json,
    signed_from_json,
    tse_from_json,
    tse_to_json,
)
from opentse.register.books_schema import ENDED_AT, RECEIPT_COLUMNS
from opentse.register.dsfinvk_bridge import rate_on, to_dsfinvk_receipt
from opentse.register.money import VAT_TABLE
from opentse.register.shoptime import business_day as business_day_of
from opentse.register.shoptime import local_day


@dataclasses.dataclass(frozen=True)
class ClosedDay:
    """A closing as the books remember it (for the Z report and later exports)."""

    closing: model.Closing
    opening_cash: Decimal
    counted_cash: Decimal | None


def open_rows(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The receipts no closing has taken yet, by BON_NR."""
    return list(
        db.execute(
            f"SELECT {RECEIPT_COLUMNS} FROM books_receipts WHERE z_nr IS NULL ORDER BY bon_nr"
        )
    )


def next_z_nr(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COALESCE(MAX(z_nr), 0) + 1 FROM books_closings").fetchone()
    return int(row[0])


def tse_infos(db: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> dict[str, model.TseInfo]:
    """TSE_ID 1, 2 ... in order of first use, for the TSEs described so far."""
    known = {
        r[0]: TseDescription(bytes(r[1]), bytes(r[2]), r[3], r[4])
        for r in db.execute(
            "SELECT tse_id, public_key, certificate, algorithm, time_format FROM books_tses"
        )
    }
    out: dict[str, model.TseInfo] = {}
    for row in rows:
        tse_id = row[2]
        if tse_id in known and tse_id not in out:
            d = known[tse_id]
            out[tse_id] = model.TseInfo(
                len(out) + 1,
                d.public_key,
                d.certificate,
                d.algorithm,
                model.zeitformat(d.time_format),
            )
    return out


def check_business_day(
    db: sqlite3.Connection,
    zone: tzinfo,
    business_day: date,
    closing_day: date,
    rows: list[tuple[Any, ...]],
    *,
    day_start: time | None = None,
) -> None:
    """A business day given for a closing (a shop closing after midnight for the
    evening before) lies between the business day of its first receipt (its local
    day, the day before while earlier than ``day_start``) and the day the closing is
    made, and not before the previous closing's (Z_BUCHUNGSTAG does not go back)."""
    first = min(
        business_day_of(datetime.fromisoformat(str(r[ENDED_AT])), zone, day_start) for r in rows
    )
    row = db.execute("SELECT MAX(business_day) FROM books_closing_data").fetchone()
    previous = date.fromisoformat(row[0]) if row and row[0] else None
    if business_day > closing_day:
        problem = f"is after the closing's own day {closing_day}"
    elif business_day < first:
        problem = f"is before the day of its first receipt ({first})"
    elif previous is not None and business_day < previous:
        problem = f"is before the previous closing's business day {previous}"
    else:
        return
    raise ProtocolError(f"business day {business_day} {problem}", code="E_BUSINESS_DAY")


def _references(
    db: sqlite3.Connection, zone: tzinfo, bon_id: str, z_nr: int, created: datetime
) -> tuple[model.Reference, ...]:
    refs = []
    for ref_bon_id, ref_type, ref_z_nr, ref_end in db.execute(
        "SELECT r.ref_bon_id, r.ref_type, o.z_nr, o.ended_at FROM books_references r "
        "JOIN books_receipts o ON o.bon_id = r.ref_bon_id WHERE r.bon_id = ? "
        "ORDER BY r.ref_bon_id",
        (bon_id,),
    ):
        target = z_nr if ref_z_nr is None else int(ref_z_nr)
        when = created
        if target != z_nr:
            found = db.execute(
                "SELECT created_at FROM books_closings WHERE z_nr = ?", (target,)
            ).fetchone()
            when = datetime.fromisoformat(found[0]) if found else datetime.fromisoformat(ref_end)
        refs.append(
            model.Reference(ref_type, ref_bon_id, ref_z_nr=target, ref_date=local_day(when, zone))
        )
    return tuple(refs)


def build_closing(
    db: sqlite3.Connection,
    zone: tzinfo,
    z_kasse_id: str,
    z_nr: int,
    created: datetime,
    master: MasterData,
    rows: Iterable[tuple[Any, ...]],
    tses: dict[str, model.TseInfo],
    business_day: date | None = None,
    vat_rates: tuple[model.VatRate, ...] | None = None,
) -> model.Closing:
    """The closing Z_NR over ``rows`` (``RECEIPT_COLUMNS``); days in the shop's
    ``zone``; VAT rates in force on the business day unless given (a kept closing)."""
    receipts = []
    for bon_nr, bon_id, tse_id, start, end, sale_text, signed_text, error, ptype in rows:
        signed = None if signed_text is None else signed_from_json(signed_text)
        info = tses.get(tse_id)
        receipt = to_dsfinvk_receipt(
            sale_from_json(sale_text),
            signed,
            process_type=ptype,  # NULL in books older than the column: by BON_TYP
            bon_id=bon_id,
            bon_nr=int(bon_nr),
            start=datetime.fromisoformat(start),
            end=datetime.fromisoformat(end),
            error=error,
            tse_id=0 if info is None else info.tse_id,
            zone=zone,
        )
        refs = tuple(
            dataclasses.replace(r, ref_z_kasse_id=z_kasse_id)
            for r in _references(db, zone, bon_id, z_nr, created)
        )
        receipt = dataclasses.replace(
            receipt, references=refs, tse=None if info is None else receipt.tse
        )  # a TSE never described (never reached): no TSE row
        receipts.append(receipt)
    return model.Closing(
        z_kasse_id=z_kasse_id,
        created=created,
        z_nr=z_nr,
        company=master.company,
        location=master.location,
        register=master.register,
        tses=tuple(tses.values()),
        vat_rates=vat_rates
        or tuple(
            model.VatRate(k, rate_on(k, business_day or local_day(created, zone)), v.description)
            for k, v in VAT_TABLE.items()
        ),
        receipts=tuple(receipts),
        business_day=business_day,
    )


def closing_record(
    closing: model.Closing,
    master: MasterData,
    tses: dict[str, model.TseInfo],
    opening_cash: Decimal | None,
    counted_cash: Decimal | None,
) -> dict[str, Any]:
    """What is kept with a closing (``books_closing_data.data``) to rebuild it later."""
    return {
        "z_kasse_id": closing.z_kasse_id,
        "created": closing.created.isoformat(),
        "master": master_to_json(master),
        "tses": {k: tse_to_json(v) for k, v in tses.items()},
        "vat_rates": [[v.key, str(v.rate), v.description] for v in closing.vat_rates],
        "opening_cash": None if opening_cash is None else str(opening_cash),
        "counted_cash": None if counted_cash is None else str(counted_cash),
    }


def closed_day(
    db: sqlite3.Connection, zone: tzinfo, z_nr: int, day: date, data: dict[str, Any]
) -> ClosedDay:
    """Closing Z_NR as it was made, from its receipts and its ``closing_record``."""
    rows = list(
        db.execute(
            f"SELECT {RECEIPT_COLUMNS} FROM books_receipts WHERE z_nr = ? ORDER BY bon_nr",
            (z_nr,),
        )
    )
    tses = {k: tse_from_json(v) for k, v in data["tses"].items()}
    rates = tuple(model.VatRate(int(k), Decimal(r), d) for k, r, d in data["vat_rates"])
    closing = build_closing(
        db,
        zone,
        data["z_kasse_id"],
        z_nr,
        datetime.fromisoformat(data["created"]),
        master_from_json(data["master"]),
        rows,
        tses,
        day,
        rates,
    )
    return ClosedDay(
        closing,
        money_or_none(data["opening_cash"]) or model.ZERO,
        money_or_none(data["counted_cash"]),
    )
