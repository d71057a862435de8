"""The compiled validator (validation.compile_schema) against the interpreter (check).

Values are drawn guided by each component schema (mostly valid, with random breaks:
missing or unknown keys, wrong types, values outside enums, patterns and bounds), so
the comparison reaches deep into the schemas; both must accept the same values and
refuse the others with the same message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.server.schemas import COMPONENTS
from opentse.server.validation import ROOT, SchemaViolation, check, compile_schema

Schema = dict[str, Any]

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _value(draw: st.DrawFn, schema: Schema, depth: int = 0) -> Any:
    if depth > 8 or draw(st.integers(0, 19)) == 0:
        return draw(anything)  # a random break
    if "$ref" in schema:
        return _value(draw, COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]], depth + 1)
    if "oneOf" in schema:
        return _value(draw, draw(st.sampled_from(schema["oneOf"])), depth + 1)
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]) | st.text(max_size=6))
    typ = schema.get("type")
    if typ == "object":
        out: dict[str, Any] = {}
        for name, sub in schema.get("properties", {}).items():
            if draw(st.integers(0, 4)):
                out[name] = _value(draw, sub, depth + 1)
        extra = schema.get("additionalProperties", True)
        if draw(st.integers(0, 5)) == 0 or isinstance(extra, dict):
            key = draw(st.text(max_size=6))
            out[key] = _value(draw, extra, depth + 1) if isinstance(extra, dict) else draw(anything)
        return out
    if typ == "array":
        items = schema.get("items", {})
        size = draw(st.integers(0, 3))
        return [_value(draw, items, depth + 1) for _ in range(size)]
    if typ == "string":
        if "pattern" in schema and draw(st.booleans()):
            return draw(st.from_regex(schema["pattern"], fullmatch=True))
        return draw(st.text(max_size=draw(st.sampled_from([3, 40, 300]))))
    if typ in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        near = [v for v in (lo, hi) if v is not None]
        picks = st.integers(-(10**6), 10**6) | st.sampled_from(near or [0])
        if typ == "number":
            picks = picks | st.floats(allow_nan=False)
        return draw(picks)
    if typ == "boolean":
        return draw(st.booleans())
    return draw(anything)


def _outcome(run: Any) -> str | None:
    try:
        run()
    except SchemaViolation as exc:
        return str(exc)
    return None


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(COMPONENTS)))
    return name, _value(draw, COMPONENTS[name])


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_compiled_validator_answers_like_check(case: tuple[str, Any]) -> None:
    name, value = case
    schema = {"$ref": f"#/{name}"}
    compiled = compile_schema(schema, COMPONENTS)
    expected = _outcome(lambda: check(value, schema, COMPONENTS))
    assert _outcome(lambda: compiled(value, ROOT)) == expected


def test_compiled_validator_reports_nested_paths() -> None:
    schema = {"$ref": "#/TxRequest"}
    compiled = compile_schema(schema, COMPONENTS)
    body = {
        "state": "FINISHED",
        "client_id": "6f1c1f1e-0000-4000-8000-000000000001",
        "schema": {
            "standard_v1": {
                "receipt": {
                    "receipt_type": "RECEIPT",
                    "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "1.5x"}],
                    "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "1.50"}],
                }
            }
        },
    }
    message = _outcome(lambda: compiled(body, ROOT))
    assert message is not None and message == _outcome(lambda: check(body, schema, COMPONENTS))
    assert "amounts_per_vat_rate[0].amount" in message
