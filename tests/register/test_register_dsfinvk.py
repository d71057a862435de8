"""Sales signed by the embedded TSE, exported as DSFinV-K and checked by the export
checker (formats.dsfinvk.check): it rebuilds each processData from the CSV tables and
verifies TSE_TA_SIG with the TSE's public key -- export and signature must agree."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import (
    CashRegister,
    Closing,
    Company,
    Location,
    TseInfo,
    VatAmount,
    VatRate,
    closing_totals,
)
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.dsfinvk_bridge import dsfinvk_lines, dsfinvk_receipt, rate_on
from opentse.register.money import VAT_TABLE
from opentse.testing import ADMIN_PIN, ready_tse

CLIENT = "KASSE-DSFINVK"


def _sales() -> list[Sale]:
    card = Sale()
    card.add_line("Brot", 1, "21.42", 1)
    card.add_payment("card", "21.42", name="Girocard")
    mixed = Sale()
    mixed.add_line("Kaffee", 3, "2.45", 1)
    mixed.add_line("Brötchen", 7, "0.39", 2)
    mixed.add_line("Zeitung", 1, "2.20", 2)
    mixed.add_line("Briefmarke", 1, "0.95", 6)
    mixed.add_discount("Treue", "0.50", 1)
    mixed.add_payment("card", "5.00")
    mixed.add_payment("cash", "20.00")
    foreign = Sale()
    foreign.add_line("Souvenir", 1, "15.00", 1)
    foreign.add_payment("cash", "20.00", currency="USD", amount_eur="18.50")
    training = Sale("AVTraining")
    training.add_line("Kaffee", 1, "2.45", 1)
    training.add_payment("cash", "2.45")
    storno = Sale()
    storno.add_line("Kuchen", 2, "3.10", 2)
    storno.add_payment("cash", "6.20")
    return [card, mixed, foreign, training, storno.storno(), mixed.aborted()]


def test_register_export_passes_the_checker(tmp_path: Path) -> None:
    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, "tse-d", client_id=CLIENT, logout=True)
        record = inst.service.get("tse-d").record
        journal = OutageLog(tmp_path / "journal.db")
        seller = Seller("Kiosk", ("Weg 1", "12345 Ort"))
        register = Register(
            EmbeddedBackend(inst.service, "tse-d"), RegisterConfig(seller, CLIENT), journal
        )
        register.connect()
        receipts = []
        for number, sale in enumerate(_sales(), start=1):
            result = register.sell(sale)
            assert not result.tse_failed, result.error
            receipts.append(dsfinvk_receipt(sale, result, bon_nr=number))
        # one receipt while the TSE refuses: exported with TSE_TA_FEHLER, no signature
        inst.service.authenticate("tse-d", ADMIN_PIN)
        inst.service.deregister_client("tse-d", CLIENT)
        failed_sale = _sales()[0]
        failed = register.sell(failed_sale)
        assert failed.tse_failed
        receipts.append(dsfinvk_receipt(failed_sale, failed, bon_nr=len(receipts) + 1))
        journal.close()
    closing = Closing(
        z_kasse_id=CLIENT,
        created=datetime.now(UTC),
        z_nr=1,
        company=Company("Kiosk GmbH", "Weg 1", "12345", "Ort", tax_number="123/456/78901"),
        location=Location("Kiosk", "Weg 1", "12345", "Ort"),
        register=CashRegister(CLIENT),
        tses=(
            TseInfo(
                1,
                record.public_key_point,
                record.certificate_chain[0],
                record.signature_algorithm,
                record.time_format,
            ),
        ),
        vat_rates=tuple(VatRate(k, v.percent, v.description) for k, v in VAT_TABLE.items()),
        receipts=tuple(receipts),
    )
    out = write_export([closing], tmp_path / "export")
    findings = check_export(out)
    errors = [f for f in findings if f.severity == "error"]
    assert errors == [], "\n".join(map(str, errors))
    # the same export with one cent moved: the checker must notice
    first = receipts[0]
    line = dataclasses.replace(
        first.lines[0], vat=(VatAmount(1, Decimal("21.43"), Decimal("18.01"), Decimal("3.42")),)
    )
    payment = dataclasses.replace(first.payments[0], amount=Decimal("21.43"))
    tampered = dataclasses.replace(first, lines=(line,), payments=(payment,))
    bad = dataclasses.replace(closing, receipts=(tampered, *receipts[1:]))
    codes = {f.code for f in check_export(write_export([bad], tmp_path / "bad"))}
    assert "E_SIGNATURE_INVALID" in codes
    totals = closing_totals(closing)
    assert totals.all_payments == sum(
        (r.total for r in receipts if r.bon_typ in ("Beleg", "AVBelegstorno")), Decimal("0.00")
    )


def test_line_nets_add_up_to_the_printed_receipt() -> None:
    sale = Sale()
    for price in ("0.99", "1.01", "0.33", "0.34", "2.05"):
        sale.add_line("Artikel", 1, price, 1)
        sale.add_line("Artikel", 1, price, 2)
    lines = dsfinvk_lines(sale)
    for key, total in sale.totals_by_vat_key().items():
        vat = [v for line in lines for v in line.vat if v.key == key]
        assert sum(v.net for v in vat) == total.net
        assert sum(v.vat for v in vat) == total.tax
        assert all(v.gross == v.net + v.vat for v in vat)


def test_a_discount_after_lines_keeps_its_own_vat() -> None:
    """The key's rounding rest no longer all lands on its last line: -0.50 at 19 %
    after 1.00 and 1.66 carried -0.09 VAT (exact -0.0798; E_VAT_AMOUNT)."""
    sale = Sale()
    sale.add_line("A", 1, "1.00", 1)
    sale.add_line("B", 1, "1.66", 1)
    sale.add_discount("Rabatt", "0.50", 1)
    (net, vat), *_ = ((v.net, v.vat) for v in dsfinvk_lines(sale)[-1].vat)
    assert (net, vat) == (Decimal("-0.42"), Decimal("-0.08"))


@settings(max_examples=200, deadline=None)
@given(
    day=st.one_of(st.none(), st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31))),
    lines=st.lists(
        st.tuples(st.integers(min_value=-5_000, max_value=50_000), st.sampled_from([1, 2, 3, 4])),
        min_size=1,
        max_size=12,
    ),
)
def test_every_line_within_a_cent_of_its_vat_and_keys_add_up(
    day: date | None, lines: list[tuple[int, int]]
) -> None:
    """Each Bonpos_USt row is within a cent of its own exact VAT (what the checker's
    E_VAT_AMOUNT asks) and a key's rows add up to the receipt's net and tax."""
    sale = Sale()
    for n, (cents, key) in enumerate(lines):
        sale.add_line(f"Posten {n}", 1, Decimal(cents) / 100, key)
    out = [v for line in dsfinvk_lines(sale, day) for v in line.vat]
    for v in out:
        rate = rate_on(v.key, day)
        assert v.gross == v.net + v.vat
        assert abs(v.vat - v.gross * rate / (100 + rate)) <= Decimal("0.01"), v
    for key, total in sale.totals_by_vat_key(day).items():
        assert sum((v.net for v in out if v.key == key), Decimal("0.00")) == total.net
        assert sum((v.vat for v in out if v.key == key), Decimal("0.00")) == total.tax
