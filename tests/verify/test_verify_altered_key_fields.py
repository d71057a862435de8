"""A byte changed in a field the verifier picks the key or the algorithm by (the log's
serialNumber, its signatureAlgorithm OID) makes the log look like another TSE's or an
unknown algorithm's: the finding must tell an auditor that the log was most likely
altered, not only that a certificate or an algorithm is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_verify_tampering import FINISH_2, SERIAL, Members, _tampered

#: ecdsa-plain-SHA256 (0.4.0.127.0.7.1.1.4.1.3), DER, as the fiskaly archive writes it
ECDSA_SHA256 = bytes.fromhex("060a04007f00070101040103")


def _finding(report: dict[str, Any], code: str) -> str:
    (finding,) = [f for f in report["findings"] if f["code"] == code]
    assert finding["severity"] == "error" and finding["file"] == FINISH_2
    return str(finding["message"])


def test_a_changed_serial_number_names_the_tse_it_is_close_to(tmp_path: Path) -> None:
    def flip(m: Members) -> None:
        data = bytearray(m[FINISH_2])
        at = data.index(bytes.fromhex(SERIAL))
        data[at + 3] ^= 0x01
        m[FINISH_2] = bytes(data)

    report = _tampered(tmp_path, flip)
    message = _finding(report, "E_NO_CERTIFICATE")
    assert f"serial {SERIAL[:16]}" in message and "2 of 64 hex digits" not in message
    assert "differs in 1 of 64 hex digits" in message and "altered" in message
    assert report["ok"] is False


def test_a_changed_algorithm_oid_says_the_tses_other_logs_use_another(tmp_path: Path) -> None:
    def flip(m: Members) -> None:
        data = bytearray(m[FINISH_2])
        at = data.index(ECDSA_SHA256)
        data[at + 2] ^= 0x01  # 0.4.0... -> 0.5.0...
        m[FINISH_2] = bytes(data)

    report = _tampered(tmp_path, flip)
    message = _finding(report, "E_ALGORITHM_UNSUPPORTED")
    assert "the TSE's 9 other log(s) are signed with ecdsa-plain-SHA256" in message
    assert "altered" in message
    assert report["ok"] is False


def test_a_log_renamed_to_another_extension_is_named_as_a_renamed_log(tmp_path: Path) -> None:
    renamed = FINISH_2.removesuffix(".log") + ".txt"

    def rename(m: Members) -> None:
        m[renamed] = m.pop(FINISH_2)

    report = _tampered(tmp_path, rename)
    (unknown,) = [f for f in report["findings"] if f["code"] == "W_UNKNOWN_MEMBER"]
    assert unknown["file"] == renamed
    assert "named like the log of signature counter 29" in unknown["message"]
    assert "not read as a log" in unknown["message"]
    (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert "29" in gap["message"]
