"""Fuzz the processData parsers and the receipt check of ``opentse verify-receipt``.

The first byte picks the target: ``K`` ``parse_kassenbeleg``, ``B`` ``parse_bestellung``,
``R`` ``from_fiskaly_receipt`` and ``O`` ``from_fiskaly_order`` (the rest as JSON, as
the API hands a request body over), ``Q`` ``verify_receipt`` with the command's JSON
and terminal output (any other byte: chosen by its value). The rest is decoded as
UTF-8 (invalid bytes replaced).

Allowed: FormatError/OpenTSEError with an ``E_`` code from the parsers;
``verify_receipt`` never raises (it reports). Invariants: what parses prints back to
a text that parses to the same value; Kassenbeleg-V1 is ASCII (Anhang I); a quantity
or amount is ASCII digits; the fiskaly mappings give processData the parsers read.

    .venv/bin/python -m fuzz.fuzz_processdata -runs=100000    # atheris (libFuzzer)
    .venv/bin/python -m fuzz.fuzz_processdata --plain 100000  # plain mutator
"""

from __future__ import annotations

import copy
import io
import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from fuzz import driver

with driver.instrumented(__name__ == "__main__"):
    from opentse.formats import processdata as pd

from fuzz.seeds import qr_seeds
from opentse.cli.verify import _print_receipt, _receipt_json
from opentse.errors import OpenTSEError
from opentse.verify.receipt import verify_receipt

_CODE = re.compile(r"E_[A-Z0-9_]+")
TARGETS = b"KBROQ"


def _kassenbeleg(text: str) -> None:
    k = pd.parse_kassenbeleg(text)
    assert text.isascii(), text
    assert pd.parse_kassenbeleg(k.render()) == k, (text, k.render())


def _bestellung(text: str) -> None:
    lines = pd.parse_bestellung(text)
    assert all(line.quantity.isascii() for line in lines), lines
    assert pd.parse_bestellung(pd.build_bestellung(lines)) == lines, lines


def _fiskaly(text: str, order: bool) -> None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return
    if order:
        kind, data = pd.from_fiskaly_order(obj)
        assert kind == pd.PROCESS_TYPE_BESTELLUNG
        pd.parse_bestellung(data)
    else:
        kind, data = pd.from_fiskaly_receipt(obj)
        assert kind == pd.PROCESS_TYPE_KASSENBELEG
        _kassenbeleg(data)


def _receipt(text: str) -> None:
    result = verify_receipt(text)
    assert result.findings, "a receipt check always says something"
    if result.ok:
        assert result.payload is not None and result.signed_data is not None
    out = json.dumps(_receipt_json(result), allow_nan=False)
    assert json.loads(out)["ok"] == result.ok
    console = Console(file=io.StringIO(), width=100, color_system=None)
    _print_receipt(console, result)
    console.file.getvalue().encode("utf-8")  # type: ignore[attr-defined]


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    target = data[0] if data[0] in TARGETS else TARGETS[data[0] % len(TARGETS)]
    text = data[1:].decode("utf-8", errors="replace")
    try:
        if target == ord("K"):
            _kassenbeleg(text)
        elif target == ord("B"):
            _bestellung(text)
        elif target in (ord("R"), ord("O")):
            _fiskaly(text, target == ord("O"))
        else:
            _receipt(text)
    except OpenTSEError as exc:
        assert target != ord("Q"), f"verify_receipt raised {exc.code}"
        assert _CODE.fullmatch(exc.code), exc.code


_ODD: tuple[Any, ...] = (
    [],
    {},
    None,
    1,
    1.5,
    True,
    "1e999",
    "9" * 5000 + ".00",
    "\u0661.00",
    "1.\u0660\u0660",
    "-0.00",
    "NORMAL",
    "CASH",
    "eur",
    "\u00c4\u00d6\u00dc",
    "x" * 300,
    ["NORMAL"],
    {"amount": "1.00"},
)


def _json_edit(rng: random.Random, obj: Any) -> Any:
    """Replace one value somewhere in ``obj`` (or a key) with an odd one."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        key = rng.choice(sorted(obj))
        if rng.random() < 0.15:
            obj.pop(key)
        else:
            obj[key] = _json_edit(rng, obj[key])
        return obj
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        if rng.random() < 0.15:
            obj.append(obj[i])
        else:
            obj[i] = _json_edit(rng, obj[i])
        return obj
    return copy.deepcopy(rng.choice(_ODD))  # the shared values must stay as they are


def mutator(rng: random.Random, data: bytes, corpus: Sequence[bytes], hot: Sequence[int]) -> bytes:
    """JSON-aware edits of the fiskaly inputs, byte edits (separators hot) of the rest."""
    if data[:1] in (b"R", b"O") and rng.random() < 0.6:
        try:
            obj = json.loads(data[1:])
        except ValueError:
            return driver.mutate(rng, data, corpus, hot)
        for _ in range(rng.randint(1, 3)):
            obj = _json_edit(rng, obj)
        return data[:1] + json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()
    return driver.mutate(rng, data, corpus, hot)


def hot(blob: bytes) -> Sequence[int]:
    """Separators of processData, QR fields and JSON, and their neighbours."""
    return [i for i, b in enumerate(blob) if b in b'^_:;"\r\n.,'][:400]


def _signed_qr() -> bytes:
    """A receipt QR text whose signature verifies (rebuilt Finish log, P-256)."""
    from opentse.crypto.keys import PlainSigner, generate_private_key, public_key_point
    from opentse.formats.qr import build_qr_payload, parse_qr_payload
    from opentse.tr03151.logtime import TimeFormat
    from opentse.verify.receipt import rebuild_signed_data

    key = generate_private_key("P-256")
    signer = PlainSigner(key, "ecdsa-plain-SHA256")
    fields: dict[str, Any] = {
        "client_id": "KASSE-1",
        "process_type": pd.PROCESS_TYPE_KASSENBELEG,
        "process_data": "Beleg^10.00_2.55_0.00_0.00_0.00^12.55:Bar",
        "transaction_number": 17,
        "signature_counter": 42,
        "start_time": datetime(2024, 1, 1, 8, 0, 0, tzinfo=UTC),
        "log_time": datetime(2024, 1, 1, 8, 0, 3, tzinfo=UTC),
        "signature_algorithm": "ecdsa-plain-SHA256",
        "time_format": TimeFormat.UNIX,
        "public_key": public_key_point(key),
    }
    draft = parse_qr_payload(build_qr_payload(signature=bytes(64), **fields))
    signed = next(iter(rebuild_signed_data(draft)))
    return build_qr_payload(signature=signer.sign(signed), **fields).encode()


def seeds() -> list[bytes]:
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [
            {"vat_rate": "NORMAL", "amount": "21.42"},
            {"vat_rate": "REDUCED_1", "amount": "3.12345"},
            {"vat_rate": "19", "amount": "-1.00"},
        ],
        "amounts_per_payment_type": [
            {"payment_type": "NON_CASH", "amount": "10.00"},
            {"payment_type": "CASH", "amount": "20.00", "currency_code": "USD"},
        ],
    }
    order = {
        "line_items": [
            {"quantity": "1", "text": 'Tasse "Kaffee"', "price_per_unit": "2.00"},
            {"quantity": "0.5", "text": "Brötchen", "price_per_unit": "0.39000"},
        ]
    }
    return [
        b"KBeleg^21.42_3.12_0.00_0.00_0.00^10.00:Unbar_20.00:Bar:USD",
        b"KAVTraining^0.00_0.00_0.00_0.00_0.00^",
        b'B1;"Tasse Kaffee";2.00\r1;"Espresso";1.90',
        b'B2.5;"Br\xc3\xb6tchen ""gro\xc3\x9f""";0.39\r\n-1;"x;y";-0.10',
        b"R" + json.dumps(receipt).encode(),
        b"O" + json.dumps(order).encode(),
        *(b"Q" + q for q in qr_seeds()),
        b"Q" + _signed_qr(),
    ]


if __name__ == "__main__":
    driver.main("processdata", TestOneInput, seeds, hot, mutator=mutator)
