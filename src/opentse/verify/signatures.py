"""Signature results per log, as findings.

The checks themselves run while the logs are decoded (``logcheck``: each log against
the certificate whose public-key hash equals its serial number, TR-03151); this module
turns their outcome into the report's valid / invalid lists and findings, and names
serials no certificate in the export holds and signature algorithms the core does not
know (their logs cannot be checked: not the same as a wrong signature).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from opentse.tr03151.oids import ALGORITHM_BY_OID
from opentse.verify.archive import LoadedExport
from opentse.verify.findings import Finding, error, log_words


@dataclass(slots=True)
class SignatureResult:
    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def check_signatures(export: LoadedExport) -> SignatureResult:
    result = SignatureResult()
    missing: dict[str, list[str]] = {}
    unsupported: dict[str, list[tuple[str, str]]] = {}  # oid -> (file, serial)
    known: dict[str, Counter[str]] = defaultdict(Counter)  # serial -> algorithms
    for entry in export.logs:
        if entry.fields is None:
            continue
        serial = entry.fields.serial_number.hex()
        oid = entry.fields.signature_algorithm
        if entry.signature_ok is not None:  # a certificate holds this serial's key
            known[serial][oid] += 1
        if entry.signature_ok is None:
            if oid in ALGORITHM_BY_OID:
                missing.setdefault(serial, []).append(entry.file)
            else:
                unsupported.setdefault(oid, []).append((entry.file, serial))
            result.unverifiable.append(entry.file)
        elif entry.signature_ok:
            result.valid.append(entry.file)
        else:
            result.invalid.append(entry.file)
            f = entry.fields
            words = log_words(
                f.kind,
                f.operation_type,
                f.client_id,
                f.transaction_number,
                f.signature_counter,
                f.serial_number,
            )
            result.findings.append(
                error(
                    "E_SIGNATURE_INVALID",
                    f"the signature of {words} does not verify: the log was changed after "
                    "the TSE signed it, or another key signed it",
                    entry.file,
                )
            )
    for oid, logs in unsupported.items():
        result.findings.append(
            error(
                "E_ALGORITHM_UNSUPPORTED",
                f"signature algorithm {oid} not supported (TR-03116-5 names ECDSA and "
                f"ECSDSA in plain format): {len(logs)} log(s) cannot be verified"
                + _other_algorithms(known, {serial for _file, serial in logs}),
                logs[0][0],
            )
        )
    for serial, files in missing.items():
        result.findings.append(
            error(
                "E_NO_CERTIFICATE",
                f"no certificate in the export holds the key of serial {serial}: "
                f"{len(files)} log(s) cannot be verified" + _close_serial(serial, known),
                files[0],
            )
        )
    return result


#: At most this many differing hex digits make a serial "one of the export's, altered"
#: (two SHA-256 values differ in about 60 of 64).
CLOSE_SERIAL_DIGITS = 8


def _close_serial(serial: str, known: dict[str, Counter[str]]) -> str:
    """Why a serial without a certificate is most likely an altered log: it differs in
    a few hex digits from a serial whose certificate the export holds (serialNumber is
    signed, so the log no longer verifies with that key either)."""
    best: tuple[int, str] | None = None
    for other in known:
        if len(other) == len(serial):
            digits = sum(a != b for a, b in zip(serial, other, strict=True))
            if best is None or digits < best[0]:
                best = (digits, other)
    if best is None or best[0] > CLOSE_SERIAL_DIGITS:
        return ""
    digits, other = best
    return (
        f"; it differs in {digits} of {len(serial)} hex digits from serial {other[:16]}..., "
        "whose certificate is in the export: the log's serialNumber was most likely "
        "altered after the TSE signed it"
    )


def _other_algorithms(known: dict[str, Counter[str]], serials: set[str]) -> str:
    """Why an unknown algorithm in logs of a TSE whose other logs name a known one is
    most likely an altered log: a TSE signs with the one algorithm of its key."""
    used: Counter[str] = Counter()
    for serial in serials:
        used.update({o: n for o, n in known.get(serial, Counter()).items()})
    if not used:
        return ""
    names = ", ".join(ALGORITHM_BY_OID.get(o, o) for o, _n in used.most_common())
    return (
        f"; the TSE's {sum(used.values())} other log(s) are signed with {names}: a TSE "
        "signs with the one algorithm of its key, so the log's signatureAlgorithm was "
        "most likely altered after the TSE signed it"
    )
