"""Certificates: file names vs key hashes, the chain to a root, validity at log time.

Digest tr03151.md / testdata README: TSE certificates are named ``<SHA-256 of the
public key point, hex>_X509.<ext>`` in either case, and the archive carries the
issuing CA certificates. CA certificates are not always named that way (fiskaly's
test CA is not), so a CA name that differs is only noted; a TSE certificate whose
name differs is an error (the case of ``faulty/inconsistent_certificates.tar``).

Chain: each TSE certificate is followed issuer by issuer (name match plus a verified
signature) to a self-signed root. ``ok``: every chain reaches a root found in the
archive, or one of the ``--trust`` roots when given; ``untrusted``: a chain stops at a
certificate whose issuer is missing, or at a root not in ``--trust``; ``broken``: a
certificate's signature does not verify under its named issuer.

Without ``--trust`` an untrusted chain is a warning: any cheat can make a CA, so a
chain to a root the export carries itself proves nothing, and the report says the
root was not checked. With ``--trust`` the auditor names the roots that count (the
TSE manufacturer's, the BSI's): a chain that does not end at one of them is an error
(``E_CHAIN_UNTRUSTED``), since its logs cannot be attributed to a trusted TSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from opentse.verify.archive import CertEntry, LoadedExport
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, error, info, warning

_MAX_DEPTH = 8


@dataclass(slots=True)
class CertificateResult:
    count: int = 0
    name_mismatches: list[str] = field(default_factory=list)
    chain: str = "ok"
    findings: list[Finding] = field(default_factory=list)
    #: whether ``--trust`` roots were given (an ``ok`` chain then ends at one of them)
    trust_given: bool = False
    #: why the chain is ``untrusted``, for the words of the report: "no-leaf" (no
    #: certificate holds a log's key), "incomplete" (an issuer is missing, no
    #: ``--trust``), "" (not at a ``--trust`` root, or nothing to check)
    reason: str = ""


def chain_words(result: CertificateResult) -> str:
    """The chain status as the text and HTML reports word it: an ``ok`` chain without
    ``--trust`` ends at a root the export carries itself, which nobody vouched for."""
    if result.chain == "broken":
        return "chain broken: a certificate does not verify under its issuer (E_CHAIN_BROKEN)"
    if result.reason == "no-leaf":
        return "no TSE certificate: none holds the key of a log's serial (E_NO_CERTIFICATE)"
    if result.reason == "incomplete":
        return (
            "chain incomplete: an issuer is neither in the export nor a --trust root "
            "(W_CHAIN_INCOMPLETE)"
        )
    if result.chain != "ok" and result.trust_given:
        return "chain untrusted: it does not end at a --trust root (E_CHAIN_UNTRUSTED)"
    if result.chain != "ok":
        return f"chain {result.chain}"
    if result.trust_given:
        return "chain ok, to a --trust root"
    return "chain complete to a root from the export itself, root not checked: use --trust"


def load_trust_roots(data: bytes) -> list[x509.Certificate]:
    """Roots from a PEM bundle or one DER certificate (``--trust ROOT.pem``)."""
    if b"-----BEGIN" in data:
        return list(x509.load_pem_x509_certificates(data))
    return [x509.load_der_x509_certificate(data)]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _chain_status(
    leaf: CertEntry,
    pool: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate] | None,
    findings: list[Finding],
    chain: list[x509.Certificate],
) -> str:
    """Follow issuers from ``leaf``; the issuers found are appended to ``chain``."""
    assert leaf.certificate is not None
    cert = leaf.certificate
    candidates = [*pool, *(trust or [])]
    for _ in range(_MAX_DEPTH):
        if cert.issuer == cert.subject and _issued_by(cert, cert):
            if trust is not None and cert not in trust:
                findings.append(
                    error(
                        "E_CHAIN_UNTRUSTED",
                        f"the certificate chain of TSE {leaf.key_hash} ends at root "
                        f"{cert.subject.rfc4514_string()!r}, which is not one of the --trust "
                        "roots: its logs cannot be attributed to a TSE you trust",
                        leaf.file,
                    )
                )
                return "untrusted"
            return "ok"
        if trust is not None and cert in trust:
            return "ok"
        named = [c for c in candidates if c.subject == cert.issuer and c != cert]
        if not named:
            missing = cert.issuer.rfc4514_string()
            if trust is not None:
                findings.append(
                    error(
                        "E_CHAIN_UNTRUSTED",
                        f"the certificate chain of TSE {leaf.key_hash} stops at issuer "
                        f"{missing!r}, which is neither in the export nor a --trust root: "
                        "its logs cannot be attributed to a TSE you trust",
                        leaf.file,
                    )
                )
            else:
                findings.append(
                    warning(
                        "W_CHAIN_INCOMPLETE",
                        f"issuer {missing!r} is neither in the export nor a --trust root",
                        leaf.file,
                    )
                )
                return "incomplete"
            return "untrusted"
        issuer = next((c for c in named if _issued_by(cert, c)), None)
        if issuer is None:
            findings.append(
                error(
                    "E_CHAIN_BROKEN",
                    f"the signature of {cert.subject.rfc4514_string()!r} does not verify "
                    f"under its issuer {cert.issuer.rfc4514_string()!r}",
                    leaf.file,
                )
            )
            return "broken"
        cert = issuer
        chain.append(issuer)
    findings.append(error("E_CHAIN_BROKEN", "certificate chain is too long", leaf.file))
    return "broken"


def _validity(
    entry: CertEntry,
    chain: Sequence[x509.Certificate],
    export: LoadedExport,
    findings: list[Finding],
) -> None:
    """Every log of the certificate's serial must lie inside the validity period of the
    certificate and of each issuer above it (one finding per certificate)."""
    logs = logs_by_serial(export).get(entry.key_hash or "", [])
    assert entry.certificate is not None
    times = [log.fields.unix for log in logs if log.fields]
    first, last = (min(times), max(times)) if times else (0, 0)
    for cert in (entry.certificate, *chain):
        start: datetime = cert.not_valid_before_utc
        end: datetime = cert.not_valid_after_utc
        low, high = start.timestamp(), end.timestamp()
        if low <= first and last <= high:
            continue  # every log inside: no need to look at each
        outside = [log for log in logs if log.fields and not low <= log.fields.unix <= high]
        if outside:
            what = "certificate" if cert is entry.certificate else "issuer certificate"
            findings.append(
                error(
                    "E_CERT_NOT_VALID",
                    f"{len(outside)} log(s) lie outside the validity of the {what} "
                    f"{cert.subject.rfc4514_string()!r} ({start.isoformat()} .. "
                    f"{end.isoformat()}), e.g. this one",
                    outside[0].file,
                )
            )


def check_certificates(
    export: LoadedExport, trust: Sequence[x509.Certificate] | None = None
) -> CertificateResult:
    result = CertificateResult(count=len(export.certificates), trust_given=trust is not None)
    serials = set(logs_by_serial(export))
    for entry in export.certificates:
        if entry.certificate is None or entry.key_hash is None:
            continue
        if entry.name_hash is not None and entry.name_hash != entry.key_hash:
            # a CA may be named otherwise; a name claiming a logging TSE's key may not
            claims_tse = entry.name_hash in serials or entry.key_hash in serials
            if entry.is_ca and not claims_tse:
                result.findings.append(
                    info(
                        "I_CA_CERT_NAME",
                        f"CA certificate file name is not the SHA-256 of its key "
                        f"({entry.key_hash})",
                        entry.file,
                    )
                )
            else:
                result.name_mismatches.append(entry.file)
                result.findings.append(
                    error(
                        "E_CERT_NAME_MISMATCH",
                        f"file name says key hash {entry.name_hash} but the SHA-256 of the "
                        f"certificate's public key is {entry.key_hash}",
                        entry.file,
                    )
                )
        elif serials and not entry.is_ca and entry.key_hash not in serials:
            # a TSE (end-entity) certificate no log uses: another TSE's, or an older
            # key of this one (a filtered export): worth knowing, not proof of anything
            result.findings.append(
                info(
                    "I_CERT_UNUSED",
                    f"TSE certificate {entry.certificate.subject.rfc4514_string()!r} (key "
                    f"{entry.key_hash[:16]}...) belongs to no log in this export: another "
                    "TSE's certificate, or an earlier key of this TSE",
                    entry.file,
                )
            )
    pool = [c.certificate for c in export.certificates if c.certificate is not None]
    leaves = [c for c in export.certificates if c.key_hash in serials and c.certificate]
    statuses: list[str] = []
    for leaf in leaves:
        chain: list[x509.Certificate] = []
        statuses.append(_chain_status(leaf, pool, trust, result.findings, chain))
        _validity(leaf, chain, export, result.findings)
    if "broken" in statuses:
        result.chain = "broken"
    elif "untrusted" in statuses or "incomplete" in statuses or not leaves:
        result.chain = "untrusted"  # the JSON's word for all three
        if not leaves and serials:
            result.reason = "no-leaf"
        elif "incomplete" in statuses and "untrusted" not in statuses:
            result.reason = "incomplete"
    return result
