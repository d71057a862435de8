"""Receipt verification: the spec's vectors, every single-field alteration, our own
receipts cross-checked against the core encoder, and QR images read by zxing-cpp."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import segno
from receipt_support import finish_receipts
from typer.testing import CliRunner
from verify_data import qr_vectors, vendor_export

from opentse.cli.main import build_app
from opentse.crypto.keys import PlainSigner, default_algorithm, generate_private_key
from opentse.formats.qr import FIELD_NAMES, build_qr_payload, format_qr_time, parse_qr_payload
from opentse.tr03151.codec import encode_signed_part
from opentse.tr03151.logmessage import FINISH, LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.verify.findings import Severity
from opentse.verify.qrimage import read_qr_texts
from opentse.verify.receipt import rebuild_signed_data, verify_receipt

VECTORS = qr_vectors()
needs_vectors = pytest.mark.skipif(not VECTORS, reason="shared/spec/tr03151.md absent")


@needs_vectors
@pytest.mark.parametrize("index", [0, 1, 2])
def test_spec_vectors_verify(index: int) -> None:
    result = verify_receipt(VECTORS[index])
    assert result.ok, result.findings
    assert result.curve == ("brainpoolP256r1" if index == 2 else "secp256r1")
    assert result.signed_data is not None and result.signed_data.startswith(b"\x02\x01\x02\x06\x09")


def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _later(value: str, seconds: int) -> str:
    when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return format_qr_time(when + timedelta(seconds=seconds))


# One alteration per field. startTime is not signed: the only detectable change is
# one that puts it after the Finish log's time.
ALTER: dict[str, Callable[[str, list[str]], str]] = {
    "version": lambda v, p: "V1",
    "clientId": lambda v, p: v + "X",
    "processType": lambda v, p: "Bestellung-V1",
    "processData": lambda v, p: v.replace("^", "^1", 1),
    "transactionNumber": lambda v, p: str(int(v) + 1),
    "signatureCounter": lambda v, p: str(int(v) + 1),
    "startTime": lambda v, p: _later(p[7], 1),
    "logTime": lambda v, p: _later(v, 1),
    "signatureAlgorithm": lambda v, p: "ecdsa-plain-SHA384",
    "logTimeFormat": lambda v, p: "utcTime",
    "signature": lambda v, p: _flip_b64(v),
    "publicKey": lambda v, p: _flip_b64(v),
}
# fields whose alteration is pinned to exactly that field (not "one of the signed ones")
PRECISE = {
    "version",
    "startTime",
    "signatureAlgorithm",
    "logTimeFormat",
    "publicKey",
    "transactionNumber",
    "signatureCounter",
    "logTime",
}


@needs_vectors
@pytest.mark.parametrize("vector", [0, 1, 2])
@pytest.mark.parametrize("field", FIELD_NAMES)
def test_altering_any_field_fails_naming_it(vector: int, field: str) -> None:
    parts = VECTORS[vector].split(";")
    index = FIELD_NAMES.index(field)
    parts[index] = ALTER[field](parts[index], parts)
    result = verify_receipt(";".join(parts))
    assert not result.ok
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    assert any(field in f.fields for f in errors)
    if field in PRECISE:
        assert errors[0].fields == (field,)
        assert field in errors[0].message


@pytest.mark.parametrize(
    ("curve", "fmt"),
    [
        ("P-256", TimeFormat.UNIX),
        ("P-384", TimeFormat.UTC),
        ("brainpoolP256r1", TimeFormat.GENERALIZED),
        ("brainpoolP384r1", TimeFormat.UNIX),
    ],
)
def test_own_receipt_rebuild_equals_core_encoder(curve: str, fmt: TimeFormat) -> None:
    """Our hand-written rebuild and the core encoder agree byte for byte (two
    independent writers of one layout), and the receipt verifies."""
    signer = PlainSigner(generate_private_key(curve), default_algorithm(curve))
    point = signer.public_key_point
    log_time = LogTime(fmt, 1_700_000_000 + 200)
    data = "Beleg^" + "x" * 150 + "^1.00:Bar"  # long: two-byte DER length
    msg = LogMessage(
        TransactionLogData(FINISH, "Kasse 1", data.encode(), "Kassenbeleg-V1", 300),
        hashlib.sha256(point).digest(),
        signer.algorithm_oid,
        70000,
        log_time,
    )
    signed = encode_signed_part(msg)
    text = build_qr_payload(
        client_id="Kasse 1",
        process_type="Kassenbeleg-V1",
        process_data=data,
        transaction_number=300,
        signature_counter=70000,
        start_time=log_time.as_datetime() - timedelta(seconds=30),
        log_time=log_time.as_datetime(),
        signature_algorithm=default_algorithm(curve),
        time_format=fmt,
        signature=signer.sign(signed),
        public_key=point,
    )
    assert next(rebuild_signed_data(parse_qr_payload(text))) == signed
    result = verify_receipt(text)
    assert result.ok and result.signed_data == signed


def test_a_generalized_time_before_year_1000_is_rebuilt_as_the_core_writes_it() -> None:
    """GeneralizedTime has four year digits (the core encoder pads them); the
    rebuild wrote strftime's '999...' on glibc and the receipt did not verify."""
    signer = PlainSigner(generate_private_key("P-256"), default_algorithm("P-256"))
    point = signer.public_key_point
    when = datetime(999, 12, 31, 23, 59, 58, tzinfo=UTC)
    log_time = LogTime(TimeFormat.GENERALIZED, int(when.timestamp()))
    msg = LogMessage(
        TransactionLogData(
            FINISH, "K1", b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar", "Kassenbeleg-V1", 7
        ),
        hashlib.sha256(point).digest(),
        signer.algorithm_oid,
        9,
        log_time,
    )
    signed = encode_signed_part(msg)
    assert b"\x18\x0f0999123123595" + b"8Z" in signed
    text = build_qr_payload(
        client_id="K1",
        process_type="Kassenbeleg-V1",
        process_data="Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar",
        transaction_number=7,
        signature_counter=9,
        start_time=when,
        log_time=when,
        signature_algorithm=default_algorithm("P-256"),
        time_format=TimeFormat.GENERALIZED,
        signature=signer.sign(signed),
        public_key=point,
    )
    result = verify_receipt(text)
    assert result.ok, result.findings
    assert result.signed_data == signed


@needs_vectors
def test_qr_image_round_trip(tmp_path: Path) -> None:
    """segno writes the PNG, zxing-cpp reads it back, the CLI verifies it."""
    png = tmp_path / "receipt.png"
    segno.make(VECTORS[0], error="m").save(str(png), scale=4, border=4)
    assert read_qr_texts(png) == [VECTORS[0]]
    result = CliRunner().invoke(build_app(), ["verify-receipt", "--image", str(png), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True
    assert body["fields"]["transactionNumber"] == 1
    assert body["fields"]["signatureCounter"] == 31
    assert body["curve"] == "secp256r1"


@needs_vectors
def test_cli_receipt_text_and_failures(tmp_path: Path) -> None:
    app = build_app()
    ok = CliRunner().invoke(app, ["verify-receipt", VECTORS[2]])
    assert ok.exit_code == 0
    assert "VERIFIED" in ok.stdout and "brainpoolP256r1" in ok.stdout
    bad = CliRunner().invoke(app, ["verify-receipt", VECTORS[2].replace(";18;", ";19;"), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["ok"] is False
    not_image = tmp_path / "x.png"
    not_image.write_bytes(b"not an image")
    assert CliRunner().invoke(app, ["verify-receipt", "--image", str(not_image)]).exit_code == 2
    assert CliRunner().invoke(app, ["verify-receipt"]).exit_code == 2


VENDOR_ARCHIVES = [
    "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar",  # BER indefinite processData
    "fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar",  # utcTime
    "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar",  # unixTime
]


@pytest.mark.parametrize("archive", VENDOR_ARCHIVES)
def test_receipts_rebuilt_from_vendor_finish_logs_verify(archive: str) -> None:
    """Every Finish log of real TSEs, turned into a QR text, verifies through the
    hand-written rebuild: D-Trust's BER processData and fiskaly's UTCTime included."""
    receipts = finish_receipts(vendor_export(archive))
    for receipt in receipts:
        result = verify_receipt(receipt.text)
        assert result.ok, (receipt.file, result.findings)
        assert result.signed_data == receipt.message.signed_data
    assert len(receipts) >= 5


@needs_vectors
def test_qr_read_from_a_photo_like_image(tmp_path: Path) -> None:
    """Rotated, on a grey background, JPEG-compressed: still read."""
    from PIL import Image

    png = tmp_path / "qr.png"
    segno.make(VECTORS[1], error="m").save(str(png), scale=5, border=4)
    with Image.open(png) as qr:
        code = qr.convert("L").rotate(17, expand=True, fillcolor=200)
    photo = Image.new("L", (code.width + 200, code.height + 150), 170)
    photo.paste(code, (120, 60))
    jpg = tmp_path / "photo.jpg"
    photo.save(jpg, quality=60)
    (text, *_) = read_qr_texts(jpg)
    assert text == VECTORS[1]
    assert verify_receipt(text).ok


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (8-bit grey, one IDAT)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (10_000, 10_000)])
def test_cli_refuses_an_image_claiming_too_many_pixels(
    tmp_path: Path, width: int, height: int
) -> None:
    """Beyond Pillow's bomb limit (an error that is no OSError: a traceback before) and
    just below it (decoded into hundreds of MB before): exit 2 with a clear message,
    decided from the header alone."""
    image = tmp_path / "huge.png"
    image.write_bytes(_png_claiming(width, height))
    with pytest.raises(Exception) as info:
        read_qr_texts(image)
    assert getattr(info.value, "code", None) == "E_QR_IMAGE_TOO_LARGE"
    result = CliRunner().invoke(build_app(), ["verify-receipt", "--image", str(image)])
    assert result.exit_code == 2, result.output
    assert "million pixels" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


@needs_vectors
def test_a_verified_receipt_says_what_it_does_not_prove() -> None:
    """startTime is signed by the Start log, not by the receipt's signature, and the key
    is the one printed on the receipt: a moved start time still verifies, so the OK
    finding must say both limits in words."""
    fields = VECTORS[0].split(";")
    fields[6] = "2021-08-20T08:00:00.000Z"  # three days before the Finish
    result = verify_receipt(";".join(fields))
    assert result.ok
    (ok,) = result.findings
    assert ok.code == "I_RECEIPT_OK"
    assert "Start log signs that" in ok.message  # not the receipt's own signature
    assert "public key printed in the QR code" in ok.message and "certificate" in ok.message


@needs_vectors
def test_a_photo_of_two_receipts_verifies_both(tmp_path: Path) -> None:
    """Two receipts side by side, the second one altered: both are checked (before,
    only the first was, silently) and the exit status says one failed."""
    from PIL import Image

    fields = VECTORS[1].split(";")
    fields[3] = fields[3].replace("21.42", "12.42")  # a cheaper receipt, same signature
    parts = []
    for index, text in enumerate((VECTORS[0], ";".join(fields))):
        part = tmp_path / f"{index}.png"
        segno.make(text, error="m").save(str(part), scale=4, border=4)
        parts.append(Image.open(part).convert("L"))
    both = Image.new("L", (sum(p.width for p in parts) + 40, max(p.height for p in parts)), 255)
    both.paste(parts[0], (0, 0))
    both.paste(parts[1], (parts[0].width + 40, 0))
    photo = tmp_path / "two.png"
    both.save(photo)
    result = CliRunner().invoke(build_app(), ["verify-receipt", "--image", str(photo)])
    assert result.exit_code == 1, result.output
    assert result.stdout.count("Receipt") >= 2
    # one verdict line per code ("VERIFIED" alone is also inside "NOT VERIFIED")
    verdicts = [v for v in result.stdout.splitlines() if v in ("VERIFIED", "NOT VERIFIED")]
    assert sorted(verdicts) == ["NOT VERIFIED", "VERIFIED"], result.stdout
    result = CliRunner().invoke(build_app(), ["verify-receipt", "--image", str(photo), "--json"])
    body = json.loads(result.stdout)
    assert sorted(r["ok"] for r in body) == [False, True]


@needs_vectors
def test_a_line_end_after_the_text_is_said_a_leading_space_refused() -> None:
    """Piped with echo (a line end after it): verified, and the result says the line
    end was taken as the end of the line. A leading space (pasted with the text) is
    an error naming the space, not "version ' V0'"."""
    app = build_app()
    result = CliRunner().invoke(app, ["verify-receipt", VECTORS[0] + "\n", "--json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [f["code"] for f in findings] == ["I_RECEIPT_OK", "I_QR_LINE_END"]
    assert "'\\n'" in findings[1]["message"] and "end of the line" in findings[1]["message"]
    assert [f.code for f in verify_receipt(VECTORS[0]).findings] == ["I_RECEIPT_OK"]
    result = CliRunner().invoke(app, ["verify-receipt", " " + VECTORS[0]])
    assert result.exit_code == 1, result.output
    assert "E_QR_FORMAT: payload: starts with a space before 'V0;'" in result.stdout
    assert "NOT VERIFIED" in result.stdout and "' V0'" not in result.stdout
