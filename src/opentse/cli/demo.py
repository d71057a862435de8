"""``opentse demo``: a TSE, a register and realistic receipts in one command.

On an empty installation it creates and initializes a demo TSE (printing the PUK and
PIN it set, once), registers ``DEMO-KASSE-1`` and runs N receipts with Kassenbeleg-V1
processData: several VAT rates, cash, card and mixed payments, one receipt with an
Update (the order lines as Bestellung-V1), one cancelled (AVBelegabbruch). Run again,
it reuses the demo TSE and continues numbering; ``--curve`` picks the demo TSE of that
curve (a new one beside the others when there is none).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    check_output_file,
    cli_errors,
    console,
    echo_json,
    installation,
    pairs,
    table,
)
from opentse.crypto.keys import CURVES
from opentse.engine.results import SignResult
from opentse.engine.service import TSEService
from opentse.engine.state import Lifecycle
from opentse.errors import ProtocolError
from opentse.formats import processdata as pd
from opentse.formats.qr import build_qr_payload

DEMO_CLIENT = "DEMO-KASSE-1"

# (text, unit price, DSFinV-K VAT key: 1 = 19 %, 2 = 7 %)
CATALOG: tuple[tuple[str, Decimal, int], ...] = (
    ("Kaffee", Decimal("2.80"), 1),
    ("Croissant", Decimal("1.90"), 2),
    ("Brezel", Decimal("0.95"), 2),
    ("Orangensaft 0,3l", Decimal("3.20"), 1),
    ("Kuchen", Decimal("3.50"), 2),
    ("Wasser 0,5l", Decimal("1.99"), 1),
    ("Zeitung", Decimal("2.70"), 2),
)


@dataclass(frozen=True, slots=True)
class Receipt:
    kind: str  # "cash" | "card" | "mixed" | "update" | "cancelled"
    lines: tuple[tuple[int, str, Decimal, int], ...]  # quantity, text, price, VAT key

    def gross_by_vat(self) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for qty, _, price, key in self.lines:
            out[key] = out.get(key, Decimal("0.00")) + qty * price
        return out

    @property
    def total(self) -> Decimal:
        return sum(self.gross_by_vat().values(), Decimal("0.00"))

    def process_data(self) -> str:
        if self.kind == "cancelled":
            return pd.build_kassenbeleg("AVBelegabbruch", {}, [])
        total = self.total
        if self.kind in ("card", "update"):
            payments = [pd.Payment(total, "Unbar")]
        elif self.kind == "mixed":
            cash = (total / 2).quantize(Decimal("0.01"))
            payments = [pd.Payment(cash, "Bar"), pd.Payment(total - cash, "Unbar")]
        else:
            payments = [pd.Payment(total, "Bar")]
        return pd.build_kassenbeleg("Beleg", self.gross_by_vat(), payments)

    def order(self) -> str:
        return pd.build_bestellung(
            [pd.OrderLine(str(q), text, price) for q, text, price, _ in self.lines]
        )


def make_receipt(index: int) -> Receipt:
    """Receipt ``index`` of the demo (deterministic): a mix of kinds and VAT rates."""
    kinds = ("cash", "card", "update", "mixed", "cancelled", "cash", "card", "cash")
    kind = kinds[index % len(kinds)]
    count = 1 + index % 3
    lines = []
    for j in range(count):
        text, price, key = CATALOG[(index * 3 + j * 2) % len(CATALOG)]
        lines.append((1 + (index + j) % 2, text, price, key))
    return Receipt(kind, tuple(lines))


def find_demo_tse(service: TSEService, curve: str | None = None) -> str | None:
    """The installation's demo TSE (of ``curve`` when one is asked for)."""
    for info in service.list():
        if (
            info.record.extra.get("demo")
            and info.state.lifecycle is Lifecycle.INITIALIZED
            and curve in (None, info.record.curve)
        ):
            return info.record.tse_id
    return None


def setup_demo_tse(service: TSEService, curve: str) -> dict[str, str]:
    tse_id = str(uuid.uuid4())
    created = service.create_tse(
        tse_id, curve=curve, description="opentse demo", extra={"demo": True}
    )
    pin = f"{secrets.randbelow(10**8):08d}"
    service.set_state(tse_id, Lifecycle.UNINITIALIZED)
    service.set_admin_pin(tse_id, created.admin_puk, pin)
    service.authenticate(tse_id, pin)
    service.initialize(tse_id, "opentse demo")
    service.register_client(tse_id, DEMO_CLIENT)
    service.logout(tse_id)
    return {
        "tse_id": tse_id,
        "admin_puk": created.admin_puk,
        "admin_pin": pin,
        "timeadmin_puk": created.timeadmin_puk,
    }


def run_receipt(service: TSEService, tse_id: str, receipt: Receipt) -> SignResult:
    start = service.start_transaction(tse_id, DEMO_CLIENT, b"", "")
    n = start.transaction_number
    if receipt.kind == "update":
        service.update_transaction(
            tse_id, DEMO_CLIENT, n, receipt.order().encode(), pd.PROCESS_TYPE_BESTELLUNG
        )
    return service.finish_transaction(
        tse_id, DEMO_CLIENT, n, receipt.process_data().encode(), pd.PROCESS_TYPE_KASSENBELEG
    )


def qr_text(result: SignResult) -> str:
    return build_qr_payload(
        client_id=result.client_id,
        process_type=result.process_type,
        process_data=result.process_data.decode(),
        transaction_number=result.transaction_number,
        signature_counter=result.signature_counter,
        start_time=datetime.fromtimestamp(result.start_time, tz=UTC),
        log_time=datetime.fromtimestamp(result.log_time, tz=UTC),
        signature_algorithm=result.algorithm,
        time_format=result.time_format,
        signature=result.signature,
        public_key=result.public_key_point,
    )


def demo_command(
    data: Path = DATA_OPTION,
    transactions: int = typer.Option(10, "--transactions", min=0, max=100_000),
    curve: str | None = typer.Option(
        None,
        "--curve",
        help="P-256, P-384, brainpoolP256r1, brainpoolP384r1: the demo TSE of this curve, "
        "created when there is none. Default: the demo TSE there is, else a new P-256 one.",
    ),
    export: Path | None = typer.Option(None, "--export", help="Write a TAR export here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create (or reuse) a demo TSE and register, sign N receipts, optionally export."""
    with cli_errors():
        if curve is not None and curve not in CURVES:  # before the data folder is made
            raise ProtocolError(
                f"unsupported curve {curve!r}; use one of {', '.join(CURVES)}",
                code="E_CURVE_INVALID",
            )
        if export is not None:
            export.parent.mkdir(parents=True, exist_ok=True)
            check_output_file(export, "--export", "E_EXPORT_OUTPUT")
    with installation(data) as inst:
        service: TSEService = inst.service
        tse_id = find_demo_tse(service, curve)
        secrets_shown: dict[str, str] = {}
        if tse_id is None:
            secrets_shown = setup_demo_tse(service, curve or "P-256")
            tse_id = secrets_shown["tse_id"]
        offset = service.get(tse_id).state.transaction_counter
        results: list[tuple[Receipt, SignResult]] = []
        for i in range(transactions):
            receipt = make_receipt(offset + i)
            results.append((receipt, run_receipt(service, tse_id, receipt)))
        summary = None
        if export is not None:
            try:
                with export.open("wb") as fh:
                    summary = service.export(tse_id, fh)
            except OSError as exc:
                raise ProtocolError(
                    f"cannot write {export}: {exc}; the {len(results)} receipts are signed",
                    code="E_EXPORT_OUTPUT",
                ) from None
        info = service.get(tse_id)
    out: dict[str, Any] = {
        "tse_id": tse_id,
        "created": bool(secrets_shown),
        "serial_number": info.record.serial_number.hex(),
        "curve": info.record.curve,
        "signature_algorithm": info.record.signature_algorithm,
        "client_id": DEMO_CLIENT,
        "transactions": len(results),
        "transaction_counter": info.state.transaction_counter,
        "signature_counter": info.state.signature_counter,
        "receipts": [
            {
                "number": r.transaction_number,
                "kind": rc.kind,
                "total": str(rc.total if rc.kind != "cancelled" else Decimal("0.00")),
                "process_data": r.process_data.decode(),
                "signature_counter": r.signature_counter,
                "signature": base64.b64encode(r.signature).decode(),
            }
            for rc, r in results
        ],
        "qr_code_data": qr_text(results[-1][1]) if results else None,
        "export": None
        if summary is None
        else {"file": str(export), "records": summary.records, "bytes": summary.bytes_written},
    }
    if secrets_shown:
        out["admin_puk"] = secrets_shown["admin_puk"]
        out["admin_pin"] = secrets_shown["admin_pin"]
        out["timeadmin_puk"] = secrets_shown["timeadmin_puk"]
    if as_json:
        echo_json(out)
        return
    if secrets_shown:
        console.print(
            f"[yellow]New demo TSE {tse_id}. Admin PUK {secrets_shown['admin_puk']}, "
            f"admin PIN {secrets_shown['admin_pin']}, timeadmin PUK "
            f"{secrets_shown['timeadmin_puk']}: shown only now.[/yellow]"
        )
    table(
        f"Receipts on TSE {tse_id} (client {DEMO_CLIENT})",
        ("no.", "kind", "total", "processData", "sig. counter"),
        [
            (x["number"], x["kind"], x["total"], x["process_data"], x["signature_counter"])
            for x in out["receipts"]
        ],
    )
    pairs(
        "Summary",
        {
            k: out[k]
            for k in (
                "tse_id",
                "serial_number",
                "curve",
                "transactions",
                "transaction_counter",
                "signature_counter",
            )
        }
        | ({"export": f"{export} ({summary.records} logs)"} if summary else {}),
    )
    if out["qr_code_data"]:
        console.print(f"QR code of the last receipt:\n{out['qr_code_data']}", highlight=False)
    console.print("[dim]opentse is not BSI-certified: for development and testing.[/dim]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
