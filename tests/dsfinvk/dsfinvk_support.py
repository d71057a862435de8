"""Test helpers: a P-256 "TSE" that signs Finish logs, and closings built by hand.

The Finish log's signed bytes are assembled here from the TR-03151 layout directly
(not with opentse's codec), so the checker's reconstruction is tested against an
independent encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from opentse.formats.dsfinvk.model import (
    CashRegister,
    Closing,
    Company,
    Line,
    Location,
    Payment,
    Receipt,
    Reference,
    TseInfo,
    TseTransaction,
    VatAmount,
    VatRate,
)

BERLIN = timezone(timedelta(hours=1))
CLIENT_ID = "KASSE-0001"
RATES = {1: Decimal("19"), 2: Decimal("7"), 5: Decimal("0"), 6: Decimal("0")}
TX_OID = "0.4.0.127.0.7.3.7.1.1"
ECDSA_SHA256_OID = "0.4.0.127.0.7.1.1.4.1.3"


def _len(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def der_int(value: int, tag: int = 0x02) -> bytes:
    return tlv(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def finish_signed_data(
    client_id: str,
    process_data: bytes,
    process_type: str,
    txn: int,
    serial: bytes,
    counter: int,
    unix: int,
    time_format: str = "unixTime",
) -> bytes:
    """TR-03151 v2 Finish log, every element before signatureValue (tr03151.md)."""
    return b"".join(
        [
            der_int(2),
            der_oid(TX_OID),
            tlv(0x80, b"FinishTransaction"),
            tlv(0x81, client_id.encode()),
            tlv(0x82, process_data),
            tlv(0x83, process_type.encode()),
            der_int(txn, 0x85),
            tlv(0x04, serial),
            tlv(0x30, der_oid(ECDSA_SHA256_OID)),
            der_int(counter),
            log_time(unix, time_format),
        ]
    )


def log_time(unix: int, time_format: str) -> bytes:
    """logTime as INTEGER, UTCTime or GeneralizedTime (TR-03151 5.1)."""
    t = datetime.fromtimestamp(unix, UTC)
    if time_format == "utcTimeWithSeconds":
        return tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    if time_format == "generalizedTime":
        return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())
    assert time_format == "unixTime"
    return der_int(unix)


def kassenbeleg(bon_typ: str, lines: tuple[Line, ...], payments: tuple[Payment, ...]) -> str:
    """Kassenbeleg-V1 by hand: five slots (keys 6-8 in slot 5), payments accumulated
    per kind and currency in first-seen order."""
    slots = [Decimal("0.00")] * 5
    for line in lines:
        for v in line.vat:
            slots[min(v.key, 5) - 1] += v.gross
    sums: dict[tuple[str, str], Decimal] = {}
    for p in payments:
        kind = "Bar" if p.type == "Bar" else "Unbar"
        value = p.amount if p.currency == "EUR" else (p.foreign_amount or Decimal("0.00"))
        sums[(kind, p.currency)] = sums.get((kind, p.currency), Decimal("0.00")) + value
    pays = "_".join(
        f"{amount:.2f}:{kind}" + ("" if cur == "EUR" else f":{cur}")
        for (kind, cur), amount in sums.items()
    )
    return f"{bon_typ}^" + "_".join(f"{s:.2f}" for s in slots) + f"^{pays}"


@dataclass
class FakeTSE:
    """A software key that numbers transactions and signs Finish logs."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    counter: int = 0
    txn: int = 0
    time_format: str = "unixTime"
    _certificate: bytes | None = None

    @property
    def point(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def certificate(self) -> bytes:
        if self._certificate is None:
            self._certificate = self._make_certificate()
        return self._certificate

    def _make_certificate(self) -> bytes:
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, hashlib.sha256(self.point).hexdigest())]
        )
        now = datetime(2026, 1, 1, tzinfo=UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=3650))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)

    def info(self, tse_id: int = 1) -> TseInfo:
        return TseInfo(tse_id, self.point, self.certificate(), time_format=self.time_format)

    def sign(
        self,
        process_type: str,
        process_data: str,
        start: datetime,
        end: datetime,
        client_id: str = CLIENT_ID,
    ) -> TseTransaction:
        self.txn += 1
        self.counter += 3  # start, (update), finish
        start_utc = start.astimezone(UTC).replace(microsecond=0)
        end_utc = end.astimezone(UTC).replace(microsecond=0)
        data = finish_signed_data(
            client_id,
            process_data.encode(),
            process_type,
            self.txn,
            hashlib.sha256(self.point).digest(),
            self.counter,
            int(end_utc.timestamp()),
            self.time_format,
        )
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return TseTransaction(
            1, self.txn, start_utc, end_utc, process_type, self.counter, signature, process_data
        )


def vat(key: int, gross: str | Decimal) -> VatAmount:
    """Gross -> net and VAT at the key's rate, rounded half up to cents."""
    g = Decimal(gross)
    rate = RATES[key]
    net = (g * 100 / (100 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return VatAmount(key, g, net, g - net)


def line(pos: int, text: str, key: int, gross: str, gv: str = "Umsatz") -> Line:
    g = Decimal(gross)
    return Line(str(pos), text, gv, (vat(key, g),), Decimal("1"), g)


class DayBuilder:
    """Receipts of one business day, signed as they are added."""

    def __init__(self, tse: FakeTSE, day: date = date(2026, 11, 20)) -> None:
        self.tse = tse
        self.day = day
        self.receipts: list[Receipt] = []
        self.clock = datetime(day.year, day.month, day.day, 9, 0, tzinfo=BERLIN)

    def add(
        self,
        lines: list[Line],
        payments: list[Payment],
        bon_typ: str = "Beleg",
        *,
        storno: bool = False,
        references: tuple[Reference, ...] = (),
        outage: bool = False,
    ) -> Receipt:
        n = len(self.receipts) + 1
        start = self.clock
        end = start + timedelta(seconds=45)
        self.clock = end + timedelta(minutes=7)
        lines_t, pays_t = tuple(lines), tuple(payments)
        if outage:
            tse = TseTransaction(
                1, None, None, None, "Kassenbeleg-V1", None, b"", error="TSE ausgefallen"
            )
        else:
            tse = self.tse.sign("Kassenbeleg-V1", kassenbeleg(bon_typ, lines_t, pays_t), start, end)
        receipt = Receipt(
            bon_id=f"B{n:05d}",
            bon_nr=n,
            bon_typ=bon_typ,
            start=start,
            end=end,
            operator_id="1",
            lines=lines_t,
            payments=pays_t,
            tse=tse,
            storno=storno,
            operator_name="Erika",
            references=references,
        )
        self.receipts.append(receipt)
        return receipt

    def closing(self, z_nr: int = 1, vat_rates: tuple[VatRate, ...] | None = None) -> Closing:
        created = datetime(self.day.year, self.day.month, self.day.day, 23, 0, tzinfo=BERLIN)
        return Closing(
            z_kasse_id=CLIENT_ID,
            created=created,
            z_nr=z_nr,
            company=Company(
                "Café Schöne Aussicht GmbH",
                "Hauptstraße 1",
                "10115",
                "Berlin",
                tax_number="1234567890",
            ),
            location=Location("Filiale Mitte", "Hauptstraße 1", "10115", "Berlin"),
            register=CashRegister(CLIENT_ID, "opentse", "demo", software_version="0.1"),
            tses=(self.tse.info(),),
            vat_rates=vat_rates
            or (
                VatRate(1, Decimal("19.00")),
                VatRate(2, Decimal("7.00")),
                VatRate(5, Decimal("0.00")),
                VatRate(6, Decimal("0.00")),
            ),
            receipts=tuple(self.receipts),
        )


def demo_day(tse: FakeTSE | None = None) -> Closing:
    """The issue's demo day: VAT rates 19/7/0, card and cash, a cancellation, a
    training receipt, a tip, a deposit return, cash in and out, an outage receipt."""
    day = DayBuilder(tse or FakeTSE())
    day.add(
        [line(1, "Kuchen", 1, "11.90"), line(2, "Kaffee; groß", 2, "5.35")],
        [Payment("Bar", Decimal("17.25"))],
    )
    card = day.add([line(1, 'Torte "Sacher"', 1, "23.80")], [Payment("ECKarte", Decimal("23.80"))])
    day.add(
        [line(1, 'Torte "Sacher"', 1, "-23.80")],
        [Payment("ECKarte", Decimal("-23.80"))],
        storno=True,
        references=(Reference("Transaktion", card.bon_id, CLIENT_ID, 1),),
    )
    day.add([line(1, "Übung", 1, "5.00")], [Payment("Bar", Decimal("5.00"))], "AVTraining")
    day.add(
        [line(1, "Menü", 2, "10.00"), line(2, "Trinkgeld", 5, "2.00", "TrinkgeldAN")],
        [Payment("Kreditkarte", Decimal("12.00"))],
    )
    day.add(
        [line(1, "Pfand zurück", 1, "-0.25", "PfandRueckzahlung")],
        [Payment("Bar", Decimal("-0.25"))],
    )
    day.add([line(1, "Einlage", 5, "100.00", "Einzahlung")], [Payment("Bar", Decimal("100.00"))])
    day.add([line(1, "Entnahme", 5, "-50.00", "Auszahlung")], [Payment("Bar", Decimal("-50.00"))])
    day.add([line(1, "Eis", 2, "3.57")], [Payment("Bar", Decimal("3.57"))], outage=True)
    return day.closing()


def edit(folder: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    """Change one file of an export folder (the change must change it)."""
    path = folder / name
    before = path.read_bytes()
    after = change(before)
    assert after != before, "the edit must change the file"
    path.write_bytes(after)
