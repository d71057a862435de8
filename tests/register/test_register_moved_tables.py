"""A table moved between two tills: another registered client may update or finish an
open transaction, and the till that signed it last holds it (engine, opentse serve,
fiskaly). The register must leave a transaction another till took over to that till.

Before: a till that died between its Start and Finish, and whose transaction another
till then took over, aborted that till's table on its restart (embedded: the engine
lets any registered client finish it), or took the other till's revision for its own
Finish (remote: revision 2 was the other till's, answered as stored), and a table
moved onto a till's client after hours open counted as abandoned by its Start time.

The TSE is real (an installation's, or ``opentse serve`` in a thread); the till's
death is a BaseException raised right before its Finish is sent."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.engine.service import TSEService
from opentse.errors import ProtocolError
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Signed
from opentse.register.books import Books, MasterData
from opentse.register.receipt import Seller
from opentse.register.recovery import ABORT_PROCESS_DATA
from opentse.register.remote import RemoteBackend, tx_id_for
from opentse.register.zreport import close_day
from opentse.testing import FrozenClock, ready_tse
from opentse.testing.serving import served_installation
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData

NOW = 1_700_000_000
TSE = "tse-1"
SELLER = Seller("Gasthaus Linde", ("Marktplatz 2", "79098 Freiburg"))
TABLE_7 = b"Tisch 7: 2 Schnitzel, 1 Radler"


class Died(BaseException):
    """The till's process dies here (not an Exception: the register cannot note it)."""


class DyingEmbedded(EmbeddedBackend):
    die = False

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        if self.die:
            raise Died("finish")
        return super().finish(client_id, number, process_type, process_data, ref=ref)


class DyingRemote(RemoteBackend):
    die = False

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        if self.die:
            raise Died("finish")
        return super().finish(client_id, number, process_type, process_data, ref=ref)


def _sale() -> Sale:
    sale = Sale()
    sale.add_line("Schnitzel", 2, "14.50", 1)
    sale.add_payment("cash", "29.00")
    return sale


def _logs_of(service: TSEService, number: int) -> list[tuple[str, str, bytes]]:
    """(operation, client id, processData) of each log of transaction ``number``."""
    found = []
    for log in service.store.iter_logs(TSE):
        data = codec.decode_log_message(log.message).certified
        if isinstance(data, TransactionLogData) and data.transaction_number == number:
            found.append((data.operation_type, data.client_id, data.process_data))
    return found


def _clock(tse_clock: FrozenClock) -> Any:
    return lambda: datetime.fromtimestamp(tse_clock.now(), UTC)


def test_a_till_restarted_leaves_its_table_to_the_till_that_took_it_over(
    tmp_path: Path,
) -> None:
    tse_clock = FrozenClock(NOW)
    with Installation.open(tmp_path / "data", clock=tse_clock) as inst:
        service = inst.service
        ready_tse(service, TSE, client_id="KASSE-1")
        service.register_client(TSE, "KASSE-2")
        service.logout(TSE)
        till_file = tmp_path / "kasse-1.db"
        backend = DyingEmbedded(service, TSE)
        journal, books = OutageLog(till_file), Books(till_file)
        till_1 = Register(
            backend, RegisterConfig(SELLER, "KASSE-1"), journal, clock=_clock(tse_clock),
            books=books,
        )  # fmt: skip
        assert till_1.sell(_sale()).signed is not None  # receipt 1, signed
        backend.die = True
        with pytest.raises(Died):
            till_1.sell(_sale())  # dies after its Start: nothing printed
        (number,) = service.get(TSE).state.open_transactions
        # the waiter moves the bill to the other till, which signs the next revision
        tse_clock.advance(60)
        service.update_transaction(TSE, "KASSE-2", number, TABLE_7, "Kassenbeleg-V1")
        assert service.get(TSE).state.open_transactions[number].client_id == "KASSE-2"

        tse_clock.advance(60)
        restarted = Register(
            EmbeddedBackend(service, TSE), RegisterConfig(SELLER, "KASSE-1"), journal,
            clock=_clock(tse_clock), books=books,
        )  # fmt: skip
        assert restarted.connect().light.value == "green"
        # the table stays open at KASSE-2: no abort signed by KASSE-1 (before: it was)
        assert [op for op, _, _ in _logs_of(service, number)] == [
            "StartTransaction",
            "UpdateTransaction",
        ]
        assert service.get(TSE).state.open_transactions[number].client_id == "KASSE-2"
        (dangling,) = journal.dangling()
        assert dangling.transaction_number == number
        assert dangling.resolution == "taken over by till KASSE-2: left to it"
        assert journal.pending_starts() == []  # accounted for: not asked again
        assert books.bon_id_of_transaction(TSE, number) is None  # KASSE-2's receipt
        restarted.connect()  # and again: nothing more is signed
        assert len(_logs_of(service, number)) == 2

        # KASSE-2 bills the table; KASSE-1's day closes and exports cleanly
        bill = b"Beleg^29.00_0.00_0.00_0.00_0.00^29.00:Bar"
        service.finish_transaction(TSE, "KASSE-2", number, bill, "Kassenbeleg-V1")
        assert ABORT_PROCESS_DATA.encode() not in [d for _, _, d in _logs_of(service, number)]
        master = MasterData(
            Company("Linde GmbH", "Marktplatz 2", "79098", "Freiburg", vat_id="DE123456789"),
            Location("Gasthaus Linde", "Marktplatz 2", "79098", "Freiburg"),
            CashRegister("KASSE-1"),
            TSE,
        )
        day = close_day(restarted, books, master, "29.00")
        export = write_export([day.closing], tmp_path / "kasse-1.zip")
        errors = [f for f in check_export(export) if f.severity == "error"]
        assert errors == []
        books.close_file()
        journal.close()


def test_a_table_moved_onto_a_till_after_hours_open_is_not_abandoned(tmp_path: Path) -> None:
    """The age rule (RegisterConfig.abandoned_after, 6 h) counts from the last signing:
    a table opened 7 hours ago and moved to KASSE-2 a minute ago is that till's live
    receipt. Before, it counted from the Start, and the first KASSE-2 register to
    start up aborted it."""
    tse_clock = FrozenClock(NOW)
    with Installation.open(tmp_path / "data", clock=tse_clock) as inst:
        service = inst.service
        ready_tse(service, TSE, client_id="KASSE-1")
        service.register_client(TSE, "KASSE-2")
        service.logout(TSE)
        number = service.start_transaction(TSE, "KASSE-1", b"", "Kassenbeleg-V1").transaction_number
        tse_clock.advance(7 * 3600)  # a long evening at table 7; then it moves
        service.update_transaction(TSE, "KASSE-2", number, TABLE_7, "Kassenbeleg-V1")
        tse_clock.advance(60)
        till_file = tmp_path / "kasse-2.db"
        journal, books = OutageLog(till_file), Books(till_file)
        till_2 = Register(
            EmbeddedBackend(service, TSE), RegisterConfig(SELLER, "KASSE-2"), journal,
            clock=_clock(tse_clock), books=books,
        )  # fmt: skip
        till_2.connect()
        assert number in service.get(TSE).state.open_transactions  # before: aborted
        assert [f.transaction_number for f in journal.foreign_open()] == [number]
        assert journal.dangling() == []

        tse_clock.advance(6 * 3600)  # untouched for six hours since the move: abandoned
        till_2.connect()
        assert service.get(TSE).state.open_transactions == {}
        assert _logs_of(service, number)[-1] == (
            "FinishTransaction",
            "KASSE-2",
            ABORT_PROCESS_DATA.encode(),
        )
        assert books.bon_id_of_transaction(TSE, number) is not None  # booked by KASSE-2
        # its DSFinV-K export holds the abort of a transaction KASSE-1 had started
        master = MasterData(
            Company("Linde GmbH", "Marktplatz 2", "79098", "Freiburg", vat_id="DE123456789"),
            Location("Gasthaus Linde", "Marktplatz 2", "79098", "Freiburg"),
            CashRegister("KASSE-2"),
            TSE,
        )
        day = close_day(till_2, books, master, "0.00")
        export = write_export([day.closing], tmp_path / "kasse-2.zip")
        assert [f for f in check_export(export) if f.severity == "error"] == []
        books.close_file()
        journal.close()
    # and against the TSE's own TAR export, which has KASSE-1's Start of it
    tar = tmp_path / "tse.tar"
    cli = CliRunner()
    done = cli.invoke(
        build_app(), ["export", "--data", str(tmp_path / "data"), "--tss", TSE, str(tar)]
    )
    assert done.exit_code == 0, done.output
    checked = cli.invoke(build_app(), ["dsfinvk", "check", str(export), "--tse-export", str(tar)])
    assert checked.exit_code == 0 and "cross-check: ok" in checked.output, checked.output


@pytest.fixture
def shop_service(tmp_path: Path) -> Iterator[tuple[dict[str, Any], FrozenClock]]:
    """``opentse serve`` in a thread on a frozen clock with one TSS and two clients,
    KASSE-A and KASSE-B: what a RemoteBackend needs for each."""
    tse_clock = FrozenClock(NOW)
    with (
        served_installation(tmp_path / "data", tse_clock) as (_, origin, key),
        httpx.Client(base_url=origin + "/api/v2", timeout=30) as api,
    ):
        credentials = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        token = api.post("/auth", json=credentials).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        tss = str(uuid.uuid4())
        clients = {"KASSE-A": str(uuid.uuid4()), "KASSE-B": str(uuid.uuid4())}
        puk = api.put(f"/tss/{tss}", json={}).json()["admin_puk"]
        for method, path, body in [
            ("PATCH", f"/tss/{tss}", {"state": "UNINITIALIZED"}),
            ("PATCH", f"/tss/{tss}/admin", {"admin_puk": puk, "new_admin_pin": "246810"}),
            ("POST", f"/tss/{tss}/admin/auth", {"admin_pin": "246810"}),
            ("PATCH", f"/tss/{tss}", {"state": "INITIALIZED"}),
            *[
                ("PUT", f"/tss/{tss}/client/{uuid_}", {"serial_number": serial})
                for serial, uuid_ in clients.items()
            ],
        ]:
            answer = api.request(method, path, json=body)
            assert answer.status_code == 200, answer.text
        yield (
            {"api": api, "origin": origin, "tss": tss, "clients": clients, **credentials},
            (tse_clock),
        )


def _remote(shop: dict[str, Any], serial: str, kind: type[RemoteBackend]) -> RemoteBackend:
    return kind(
        shop["origin"], shop["api_key"], shop["api_secret"], shop["tss"], shop["clients"][serial]
    )


def _move(shop: dict[str, Any], tx_id: str, revision: int, serial: str) -> dict[str, Any]:
    """The other till signs the next revision of the table (it takes it over)."""
    raw = {"process_type": "Kassenbeleg-V1", "process_data": base64.b64encode(TABLE_7).decode()}
    body = {"client_id": shop["clients"][serial], "state": "ACTIVE", "schema": {"raw": raw}}
    answer = shop["api"].put(
        f"/tss/{shop['tss']}/tx/{tx_id}", params={"tx_revision": revision}, json=body
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_remote_till_leaves_the_table_another_till_took_over(
    shop_service: tuple[dict[str, Any], FrozenClock], tmp_path: Path
) -> None:
    """Over fiskaly's API: the dead till's recovery sent its Finish as revision 2,
    which the other till had signed; the service answered that revision as stored
    and the journal said 'had been signed by its own Finish'. Now the register sees
    the revision is another till's and leaves the table to it."""
    shop, tse_clock = shop_service
    backend = _remote(shop, "KASSE-A", DyingRemote)
    assert isinstance(backend, DyingRemote)
    till_file = tmp_path / "kasse-a.db"
    journal, books = OutageLog(till_file), Books(till_file)
    config = RegisterConfig(SELLER, "KASSE-A")
    till_a = Register(backend, config, journal, clock=_clock(tse_clock), books=books)
    assert till_a.connect().light.value == "green"
    backend.die = True
    with pytest.raises(Died):
        till_a.sell(_sale())
    (pending,) = journal.pending_starts()
    tx_id = tx_id_for(pending.receipt_ref)
    moved = _move(shop, tx_id, 2, "KASSE-B")
    tse_clock.advance(60)
    restarted = Register(
        _remote(shop, "KASSE-A", RemoteBackend), config, journal, clock=_clock(tse_clock),
        books=books,
    )  # fmt: skip
    assert restarted.connect().light.value == "green"
    (dangling,) = journal.dangling()
    assert dangling.resolution == "taken over by till KASSE-B: left to it"
    assert journal.pending_starts() == []
    now = shop["api"].get(f"/tss/{shop['tss']}/tx/{tx_id}").json()
    assert (now["state"], now["client_serial_number"], now["latest_revision"]) == (
        "ACTIVE",
        "KASSE-B",
        2,
    )
    assert books.bon_id_of_transaction(shop["tss"], int(moved["number"])) is None

    # the same table, hours later: moved back to KASSE-A, whose register starts up
    tse_clock.advance(7 * 3600)
    _move(shop, tx_id, 3, "KASSE-A")
    tse_clock.advance(60)
    restarted.connect()
    now = shop["api"].get(f"/tss/{shop['tss']}/tx/{tx_id}").json()
    assert now["state"] == "ACTIVE" and now["latest_revision"] == 3  # before: aborted
    assert [f.transaction_number for f in journal.foreign_open()] == [int(moved["number"])]
    books.close_file()
    journal.close()
    backend.close()
    restarted.backend.close()  # type: ignore[attr-defined]


def test_remote_till_does_not_take_the_bill_another_till_signed_for_its_own(
    shop_service: tuple[dict[str, Any], FrozenClock], tmp_path: Path
) -> None:
    """The other till billed the table at once (revision 2, FINISHED): nothing is open
    any more, and the dead till's Finish (also revision 2) was answered with that
    till's bill, which its journal called its own Finish."""
    shop, tse_clock = shop_service
    backend = _remote(shop, "KASSE-A", DyingRemote)
    assert isinstance(backend, DyingRemote)
    till_file = tmp_path / "kasse-a.db"
    journal, books = OutageLog(till_file), Books(till_file)
    config = RegisterConfig(SELLER, "KASSE-A")
    till_a = Register(backend, config, journal, clock=_clock(tse_clock), books=books)
    backend.die = True
    with pytest.raises(Died):
        till_a.sell(_sale())
    (pending,) = journal.pending_starts()
    tx_id = tx_id_for(pending.receipt_ref)
    bill = base64.b64encode(b"Beleg^29.00_0.00_0.00_0.00_0.00^29.00:Bar").decode()
    raw = {"process_type": "Kassenbeleg-V1", "process_data": bill}
    body = {"client_id": shop["clients"]["KASSE-B"], "state": "FINISHED", "schema": {"raw": raw}}
    path = f"/tss/{shop['tss']}/tx/{tx_id}"
    answer = shop["api"].put(path, params={"tx_revision": 2}, json=body)
    assert answer.status_code == 200, answer.text
    backend.die = False
    assert till_a.connect().light.value == "green"
    (dangling,) = journal.dangling()
    assert dangling.resolution == "taken over by till KASSE-B: left to it"
    assert books.bon_id_of_transaction(shop["tss"], int(answer.json()["number"])) is None
    assert journal.pending_starts() == []
    books.close_file()
    journal.close()
    backend.close()


def _field(receipt_text: str, label: str) -> str:
    (line,) = [x for x in receipt_text.splitlines() if x.startswith(f"{label}: ")]
    return line.split(": ", 1)[1]


def test_the_bill_of_a_table_moved_from_another_till_names_its_first_order(
    tmp_path: Path,
) -> None:
    """The orders of table 7 were signed at KASSE-1, the bill is at KASSE-2. --first-order
    looks in the till's own books, which do not have the order (E_BOOKS_NO_RECEIPT,
    or worse another order of KASSE-2 with that number). --first-order-tx takes the
    TSE-Transaktion printed on the order slip and asks the TSE for its start."""
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, TSE, client_id="KASSE-1")
        inst.service.register_client(TSE, "KASSE-2")
        inst.service.logout(TSE)
    cli = CliRunner()

    def pos(*args: str) -> Any:
        return cli.invoke(build_app(), ["pos", *args, "--data", str(data), "--tss", TSE])

    ordered = pos("order", "--client", "KASSE-1", "--line", "Schnitzel:2:14.50:1", "--json")
    assert ordered.exit_code == 0, ordered.output
    order = json.loads(ordered.output)
    bill = ("sell", "--client", "KASSE-2", "--line", "Schnitzel:2:14.50:1", "--pay", "bar:29.00")
    number = str(order["transaction_number"])
    refused = pos(*bill, "--first-order", order["receipt_number"])
    assert refused.exit_code == 1 and "E_BOOKS_NO_RECEIPT" in refused.output
    sold = pos(*bill, "--first-order-tx", number, "--json")
    assert sold.exit_code == 0, sold.output
    text = json.loads(sold.output)["receipt_text"]
    assert _field(text, "TSE-Erstbestellung") == _field(order["receipt_text"], "TSE-Start")
    # a receipt's number, and a number the TSE never gave: refused before booking
    paid = str(json.loads(sold.output)["transaction_number"])
    for wrong, why in ((paid, "is a Kassenbeleg-V1"), ("999", "not finished or not known")):
        refused = pos(*bill, "--first-order-tx", wrong)
        assert refused.exit_code == 1 and "E_POS_FIRST_ORDER" in refused.output
        assert why in refused.output
    status = pos("status", "--client", "KASSE-2", "--json")
    assert status.exit_code == 0 and json.loads(status.output)["status"] == "green"


def test_remote_bill_asks_the_service_for_the_first_order_of_another_till(
    shop_service: tuple[dict[str, Any], FrozenClock], tmp_path: Path
) -> None:
    shop, tse_clock = shop_service
    backends = [_remote(shop, serial, RemoteBackend) for serial in ("KASSE-A", "KASSE-B")]
    journals = [OutageLog(tmp_path / f"{n}.db") for n in ("a", "b")]
    books = [Books(tmp_path / f"{n}.db") for n in ("a", "b")]
    till_a, till_b = (
        Register(b, RegisterConfig(SELLER, s), j, clock=_clock(tse_clock), books=k)
        for b, s, j, k in zip(backends, ("KASSE-A", "KASSE-B"), journals, books, strict=True)
    )
    order = Sale("AVBestellung")
    order.add_line("Schnitzel", 2, "14.50", 1)
    ordered = till_a.order(order)
    assert ordered.signed is not None
    tse_clock.advance(90 * 60)  # the table moves and pays an hour and a half later
    first = till_b.order_start_at_tse(ordered.signed.transaction_number)
    assert first == ordered.signed.start_time
    bill = till_b.sell(_sale(), first_order_start=first)
    assert bill.signed is not None and bill.signed.start_time > ordered.signed.start_time
    with pytest.raises(ProtocolError) as info:
        till_b.order_start_at_tse(bill.signed.transaction_number)
    assert info.value.code == "E_POS_FIRST_ORDER"
    for item in (*books,):
        item.close_file()
    for journal in journals:
        journal.close()
    for backend in backends:
        backend.close()
