"""Signature results per log, as findings.

The checks themselves run while the logs are decoded (``logcheck``: each log against
the certificate whose public-key hash equals its serial number, TR-03151); this module
turns their outcome into the report's valid / invalid lists and findings, and names
serials no certificate in the export holds and signature algorithms the core does not
know (their logs cannot be checked: not the same as a wrong signature).
"""

from __future__ import annotations

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
    unsupported: dict[str, list[str]] = {}
    for entry in export.logs:
        if entry.fields is None:
            continue
        if entry.signature_ok is None:
            oid = entry.fields.signature_algorithm
            if oid in ALGORITHM_BY_OID:
                missing.setdefault(entry.fields.serial_number.hex(), []).append(entry.file)
            else:
                unsupported.setdefault(oid, []).append(entry.file)
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
                f"ECSDSA in plain format): {len(logs)} log(s) cannot be verified",
                logs[0],
            )
        )
    for serial, logs in missing.items():
        result.findings.append(
            error(
                "E_NO_CERTIFICATE",
                f"no certificate in the export holds the key of serial {serial}: "
                f"{len(logs)} log(s) cannot be verified",
                logs[0],
            )
        )
    return result
