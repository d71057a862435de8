"""What fuzz/fuzz_processdata.py found in the processData parsers, each input kept as
it crashed (now a FormatError with a stable code), and the receipt seeds' promise."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import fuzz_processdata  # noqa: E402
from opentse.errors import FormatError  # noqa: E402
from opentse.formats import processdata as pd  # noqa: E402
from opentse.verify.receipt import verify_receipt  # noqa: E402

RECEIPT: dict[str, Any] = {
    "receipt_type": "RECEIPT",
    "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
    "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "21.42"}],
}


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (("receipt_type",), {}, "E_RECEIPT_TYPE"),
        (("receipt_type",), {"amount": "CASH"}, "E_RECEIPT_TYPE"),
        (("receipt_type",), ["\u0661.00", "NORMAL"], "E_RECEIPT_TYPE"),
        (("amounts_per_vat_rate", 0, "vat_rate"), ["\u0661.00", "NORMAL"], "E_VAT_RATE"),
        (("amounts_per_payment_type", 0, "payment_type"), ["CASH"], "E_PAYMENT_TYPE"),
        (("amounts_per_payment_type", 0, "payment_type"), {"a": 1}, "E_PAYMENT_TYPE"),
    ],
)
def test_unhashable_json_values_are_format_errors(
    path: tuple[str | int, ...], value: object, code: str
) -> None:
    """Found: a list or object where fiskaly's schema has a string made the dict
    lookups raise TypeError ('unhashable type: dict') instead of FormatError."""
    receipt = json.loads(json.dumps(RECEIPT))
    node: Any = receipt
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(FormatError) as info:
        pd.from_fiskaly_receipt(receipt)
    assert info.value.code == code


@pytest.mark.parametrize("amount", ["\u0661.00", "1.\u0660\u0660", "\uff11.00", "\u0967\u0966.50"])
def test_non_ascii_digits_are_no_amount(amount: str) -> None:
    """Found (invariant 'Kassenbeleg-V1 is ASCII'): the amount patterns used \\d, so
    ARABIC-INDIC or FULLWIDTH digits parsed (Decimal reads them) and the receipt
    printed back different bytes than the TSE signed."""
    with pytest.raises(FormatError) as info:
        pd.parse_kassenbeleg(f"Beleg^{amount}_0.00_0.00_0.00_0.00^")
    assert info.value.code == "E_AMOUNT_FORMAT"
    with pytest.raises(FormatError):
        pd.parse_bestellung(f'1;"Kaffee";{amount}')
    with pytest.raises(FormatError) as info:
        pd.from_fiskaly_receipt(
            {**RECEIPT, "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}]}
        )
    assert info.value.code == "E_AMOUNT_FORMAT"


def test_non_ascii_quantity_is_refused() -> None:
    with pytest.raises(FormatError) as info:
        pd.parse_bestellung('\u0662;"Kaffee";2.00')
    assert info.value.code == "E_ORDER_LINE"
    order = {"line_items": [{"quantity": "\u0662", "text": "K", "price_per_unit": "2.00"}]}
    with pytest.raises(FormatError) as info:
        pd.from_fiskaly_order(order)
    assert info.value.code == "E_ORDER_LINE"


def test_ascii_amounts_still_parse() -> None:
    k = pd.parse_kassenbeleg("Beleg^21.42_-3.10_0.00_0.00_0.00^18.32:Bar")
    assert k.gross[0] == pd.parse_amount("21.42") and k.total == pd.parse_amount("18.32")


def test_seeds_reach_every_target_and_the_signed_receipt_verifies() -> None:
    seeds = fuzz_processdata.seeds()
    assert {s[:1] for s in seeds} == {b"K", b"B", b"R", b"O", b"Q"}
    for seed in seeds:
        fuzz_processdata.TestOneInput(seed)  # every seed is valid: nothing raises
    assert verify_receipt(seeds[-1][1:].decode()).ok
