"""Metadata values sent as JSON numbers or booleans are kept as their text.

fiskaly's metadata values are strings, yet SIGN DE v2 takes ``{"k": 123}`` and
answers ``{"k": "123"}``: its request validation turns a scalar into the string the
schema asks for, as JavaScript writes it (``123`` -> ``"123"``, ``true`` ->
``"true"``). POS software relies on it: fiskaltrust's Middleware (SCU
``FiskalyCertified``) stores its ``LastExportedTransactionNumber`` in the TSS metadata
as a number after every export it erased, and reads it back as a string; opentse
refused the PATCH (400 E_FAILED_SCHEMA_VALIDATION), so the export session ended with
an error and the next export started again from the first transaction.

The conversion runs on the parsed body before the schema check, so every reader of the
body (merge, replay of a revision) sees the stored strings. Arrays, objects and null
keep their meaning (refused, refused, key removed).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from opentse.server.schemas import COMPONENTS, ref

METADATA = "MetadataRequest"
# request bodies whose ``metadata`` member is a MetadataRequest
_WITH_METADATA = frozenset(
    name
    for name, schema in COMPONENTS.items()
    if schema.get("properties", {}).get("metadata") == ref(METADATA)
)


def coerce_metadata(body: Any, body_schema: str) -> None:
    """Turn the number and boolean values of the body's metadata into strings, in
    place (``body_schema``: the component the body is checked against)."""
    if body_schema == METADATA:
        metadata = body
    elif body_schema in _WITH_METADATA and isinstance(body, dict):
        metadata = body.get("metadata")
    else:
        return
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            # 1e999 reads as inf: no number JavaScript writes back, refused as it was
            if isinstance(value, (bool, int)) or (
                isinstance(value, float) and math.isfinite(value)
            ):
                metadata[key] = as_text(value)


def as_text(value: bool | int | float) -> str:
    """A JSON scalar as JavaScript's ``String(value)`` writes it (ECMAScript
    Number::toString for floats); integers keep all their digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _js_number(value)


def _js_number(value: float) -> str:
    """ECMAScript 2023, 6.1.6.1.20 Number::toString(x, 10) for a finite float: the
    shortest digits that read back as ``value`` (Python's repr finds the same), placed
    by the exponent."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    exact = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, exact.digits))
    k = len(digits)
    n = int(exact.exponent) + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text
