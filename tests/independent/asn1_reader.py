"""An independent reader of TR-03151 log messages built only on asn1crypto.

It shares no code with opentse.tr03151.der/codec: the structures below are written
from the specification (TR-03151 v1.0.1 5.1, digest tr03151.md) so that tests can
check our encoder and decoder against a second implementation.
"""

from __future__ import annotations

from typing import Any, ClassVar

from asn1crypto import core

TRANSACTION = "0.4.0.127.0.7.3.7.1.1"
SYSTEM = "0.4.0.127.0.7.3.7.1.2"
AUDIT = "0.4.0.127.0.7.3.7.1.3"


class AlgorithmIdentifier(core.Sequence):
    _fields: ClassVar = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class LogTime(core.Choice):
    _alternatives: ClassVar = [
        ("unixTime", core.Integer),
        ("utcTime", core.UTCTime),
        ("generalizedTime", core.GeneralizedTime),
    ]


_HEAD: list[tuple[Any, ...]] = [
    ("version", core.Integer),
    ("certifiedDataType", core.ObjectIdentifier),
]
_TAIL: list[tuple[Any, ...]] = [
    ("serialNumber", core.OctetString),
    ("signatureAlgorithm", AlgorithmIdentifier),
    ("signatureCounter", core.Integer),
    ("logTime", LogTime),
    ("signatureValue", core.OctetString),
]


class TransactionLogMessage(core.Sequence):
    _fields: ClassVar = [
        *_HEAD,
        ("operationType", core.PrintableString, {"implicit": 0}),
        ("clientId", core.PrintableString, {"implicit": 1}),
        ("processData", core.OctetString, {"implicit": 2, "optional": True}),
        ("processType", core.PrintableString, {"implicit": 3, "optional": True}),
        ("additionalExternalData", core.OctetString, {"implicit": 4, "optional": True}),
        ("transactionNumber", core.Integer, {"implicit": 5}),
        ("additionalInternalData", core.OctetString, {"implicit": 6, "optional": True}),
        *_TAIL,
    ]


class SystemLogMessage(core.Sequence):
    _fields: ClassVar = [
        *_HEAD,
        ("operationType", core.PrintableString, {"implicit": 0}),
        ("systemOperationData", core.OctetString, {"implicit": 1, "optional": True}),
        ("additionalInternalData", core.OctetString, {"implicit": 2, "optional": True}),
        *_TAIL,
    ]


class AuditLogMessage(core.Sequence):
    _fields: ClassVar = [
        *_HEAD,
        _TAIL[0],
        _TAIL[1],
        ("seAuditData", core.OctetString),
        *_TAIL[2:],
    ]


class _Probe(core.SequenceOf):
    _child_spec = core.Any


_BY_OID = {TRANSACTION: TransactionLogMessage, SYSTEM: SystemLogMessage, AUDIT: AuditLogMessage}


def load(data: bytes) -> core.Sequence:
    """The asn1crypto object of a log message (class chosen by certifiedDataType)."""
    probe = _Probe.load(data, strict=True)
    data_type = probe[1].parse(core.ObjectIdentifier).dotted
    return _BY_OID[data_type].load(data, strict=True)


def read(data: bytes) -> dict[str, Any]:
    """Native field values of a version 2 log message, plus ``signedData``: the content
    of the outer SEQUENCE without the signatureValue TLV, as written."""
    message = load(data)
    out: dict[str, Any] = {}
    for name, *_ in message._fields:
        value = message[name]
        if isinstance(value, core.Void):
            out[name] = None
        elif name == "logTime":
            out[name] = (value.name, value.chosen.native)
        elif name == "signatureAlgorithm":
            out[name] = value["algorithm"].dotted
        elif name == "certifiedDataType":
            out[name] = value.dotted
        else:
            out[name] = value.native
    contents = message.contents
    signature_tlv = message["signatureValue"].dump()
    assert contents.endswith(signature_tlv)
    out["signedData"] = contents[: len(contents) - len(signature_tlv)]
    return out
