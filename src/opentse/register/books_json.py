"""How the register's books store what they keep: the booked sale, the Finish log's
data and the master data as JSON text in SQLite (books.py). Decimal amounts are kept
as their exact text; signatures and keys as base64. Pure."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from opentse.formats.dsfinvk import model
from opentse.register.backends import Signed
from opentse.register.sale import Sale, SaleLine, SalePayment


@dataclasses.dataclass(frozen=True)
class MasterData:
    """Who keeps the books: company (Unternehmen), location (Standort), the register
    (KASSE_SERIENNR = its TSE client id) and the TSE it signs with."""

    company: model.Company
    location: model.Location
    register: model.CashRegister
    tse_id: str = ""


def sale_to_json(sale: Sale) -> str:
    lines = [
        [ln.text, str(ln.quantity), str(ln.unit_price), ln.vat_key, ln.gv_typ, str(ln.discount)]
        for ln in sale.lines
    ]
    payments = [
        [p.method, str(p.amount), p.currency, None if p.amount_eur is None else str(p.amount_eur),
         p.name]
        for p in sale.payments
    ]  # fmt: skip
    data = {"bon_typ": sale.bon_typ, "lines": lines, "payments": payments}
    return json.dumps(data, ensure_ascii=False)


def sale_from_json(text: str) -> Sale:
    data = json.loads(text)
    return Sale(
        data["bon_typ"],
        [
            SaleLine(t, Decimal(q), Decimal(p), int(k), g, Decimal(d))
            for t, q, p, k, g, d in data["lines"]
        ],
        [
            SalePayment(m, Decimal(a), c, None if e is None else Decimal(e), n)
            for m, a, c, e, n in data["payments"]
        ],
    )


def signed_to_json(signed: Signed) -> str:
    return json.dumps(
        {
            "tse_id": signed.tse_id,
            "number": signed.transaction_number,
            "counter": signed.signature_counter,
            "start": signed.start_time.isoformat(),
            "end": signed.log_time.isoformat(),
            "signature": base64.b64encode(signed.signature).decode(),
            "public_key": base64.b64encode(signed.public_key).decode(),
            "serial": signed.serial_number,
            "algorithm": signed.algorithm,
            "time_format": signed.time_format,
            "client_id": signed.client_id,
            "process_type": signed.process_type,
            "process_data": signed.process_data,
        },
        ensure_ascii=False,
    )


def signed_from_json(text: str) -> Signed:
    d: dict[str, Any] = json.loads(text)
    return Signed(
        d["tse_id"],
        int(d["number"]),
        int(d["counter"]),
        datetime.fromisoformat(d["start"]),
        datetime.fromisoformat(d["end"]),
        base64.b64decode(d["signature"]),
        base64.b64decode(d["public_key"]),
        d["serial"],
        d["algorithm"],
        d["time_format"],
        d["client_id"],
        d["process_type"],
        d["process_data"],
    )


def master_to_json(master: MasterData) -> dict[str, Any]:
    return {
        "company": dataclasses.asdict(master.company),
        "location": dataclasses.asdict(master.location),
        "register": dataclasses.asdict(master.register),
        "tse_id": master.tse_id,
    }


def master_from_json(d: dict[str, Any]) -> MasterData:
    return MasterData(
        model.Company(**d["company"]),
        model.Location(**d["location"]),
        model.CashRegister(**d["register"]),
        d.get("tse_id", ""),
    )


def tse_to_json(t: model.TseInfo) -> list[Any]:
    cert = base64.b64encode(t.certificate).decode()
    return [t.tse_id, base64.b64encode(t.public_key).decode(), cert, t.signature_algorithm,
            t.time_format]  # fmt: skip


def tse_from_json(v: list[Any]) -> model.TseInfo:
    return model.TseInfo(int(v[0]), base64.b64decode(v[1]), base64.b64decode(v[2]), v[3], v[4])


def money_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
