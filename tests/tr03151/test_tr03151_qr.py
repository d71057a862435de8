"""The three receipt QR vectors of the spec digest (tr03151.md): rebuild the Finish
log's signed bytes with our encoder from the QR fields and verify the signature."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest

from opentse.errors import VerificationError
from opentse.tr03151.codec import encode_signed_part
from opentse.tr03151.logmessage import FINISH, LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import algorithm_oid
from opentse.tr03151.signature import public_key_from_point, verify_signature

VECTORS = [
    "V0;ERS 8cb8e2de-4052-481b-945b-118022951944;Kassenbeleg-V1;Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar;1;31;2021-08-23T14:36:27.000Z;2021-08-23T14:36:33.000Z;ecdsa-plain-SHA256;unixTime;TGnWiq3ZW7gi4Vs+DxLGsJZj9v271dHmhQAcb057F3oWkdKJ61UW2LLVTZQhW673yLa53Mm6oPeMU1Ns3ZOH7w==;BGFKQP7EENf3s5hTDXvlh+xyJ1Q9BNIa9LyYbYK+pTAKAGQ2fmI40p5QOrpHpvb+UuOrNQJdhzggHNfyyyDyf/g=",  # noqa: E501
    "V0;ERS f3ab7b96-6d82-433e-a87a-cccc8e001e20;Kassenbeleg-V1;Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar;1;34;2023-01-20T18:27:22.000Z;2023-01-20T18:33:07.000Z;ecdsa-plain-SHA256;unixTime;qvyQJduZN29b2kXpEqhXlJ0Hmy3rYiPzBiu/QTPPei7bnGIwMysPV3Q39gMwoEfxtp3KXqWEfUrBulTcBbRpRQ==;BO8SGEEyy6KZQeZ+gbaJK9A9s8UkNZ8NhUut3t2BB9D9heCk/rJRwEKIJUCDcjLHl7c3M6jZ8rq98zYeuLuirHc=",  # noqa: E501
    "V0;955002-00;Kassenbeleg-V1;Beleg^0.00_2.55_0.00_0.00_0.00^2.55:Bar;18;112;2019-07-10T18:41:04.000Z;2019-07-10T18:41:04.000Z;ecdsa-plain-SHA256;unixTime;MEQCIAy4P9k+7x9saDO0uRZ4El8QwN+qTgYiv1DIaJIMWRiuAiAt+saFDGjK2Yi5Cxgy7PprXQ5O0seRgx4ltdpW9REvwA==;BHhWOeisRpPBTGQ1W4VUH95TXx2GARf8e2NYZXJoInjtGqnxJ8sZ3CQpYgjI+LYEmW5A37sLWHsyU7nSJUBemyU=",
]


def _finish_log(qr: str) -> tuple[bytes, bytes, bytes, str]:
    """(signed bytes, signature, public key point, algorithm OID) from a QR text."""
    fields = qr.split(";")
    assert fields[0] == "V0" and len(fields) == 12
    client_id, process_type, process_data, txn, counter = fields[1:6]
    log_time = int(datetime.fromisoformat(fields[7].replace("Z", "+00:00")).timestamp())
    assert fields[9] == "unixTime"
    point = base64.b64decode(fields[11])
    oid = algorithm_oid(fields[8])
    msg = LogMessage(
        certified=TransactionLogData(
            FINISH, client_id, process_data.encode(), process_type, int(txn)
        ),
        serial_number=hashlib.sha256(point).digest(),
        signature_algorithm=oid,
        signature_counter=int(counter),
        log_time=LogTime(TimeFormat.UNIX, log_time),
    )
    return encode_signed_part(msg), base64.b64decode(fields[10]), point, oid


@pytest.mark.parametrize("qr", VECTORS)
def test_qr_vector_verifies(qr: str) -> None:
    signed, signature, point, oid = _finish_log(qr)
    verify_signature(point, oid, signed, signature)
    # the digest's recipe, written out by hand, gives the same bytes
    assert signed.startswith(
        bytes.fromhex("020102060904007f000703070101801146696e6973685472616e73616374696f6e")
    )


def test_third_vector_is_brainpool_with_der_signature() -> None:
    signed, signature, point, oid = _finish_log(VECTORS[2])
    assert public_key_from_point(point).curve.name == "brainpoolP256r1"
    assert signature[0] == 0x30 and len(signature) != 64
    verify_signature(point, oid, signed, signature, curve="brainpoolP256r1")
    with pytest.raises(VerificationError):
        verify_signature(point, oid, signed, signature, curve="P-256")


@pytest.mark.parametrize("qr", VECTORS)
def test_qr_vector_with_changed_field_fails(qr: str) -> None:
    signed, signature, point, oid = _finish_log(qr.replace("Kassenbeleg-V1", "Kassenbeleg-V2"))
    with pytest.raises(VerificationError) as info:
        verify_signature(point, oid, signed, signature)
    assert info.value.code == "E_SIGNATURE_INVALID"
