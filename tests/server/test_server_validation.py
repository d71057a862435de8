"""The request validator and the token service, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.server.auth import TokenService, create_api_key, derive_key, seal, unseal
from opentse.server.problems import ApiError
from opentse.server.schemas import AMOUNT, COMPONENTS
from opentse.server.service_store import ServiceStore
from opentse.server.validation import validate

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, name=st.sampled_from(sorted(COMPONENTS)))
def test_validator_only_ever_raises_the_fiskaly_error(value: Any, name: str) -> None:
    try:
        validate(value, {"$ref": f"#/components/schemas/{name}"}, COMPONENTS)
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "E_FAILED_SCHEMA_VALIDATION"


@settings(max_examples=100, deadline=None)
@given(
    units=st.integers(-(10**9), 10**9),
    decimals=st.text(alphabet="0123456789", min_size=0, max_size=7),
)
def test_amount_pattern_is_fiskalys(units: int, decimals: str) -> None:
    amount = f"{units}.{decimals}" if decimals else str(units)
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}],
    }
    ok = decimals != "" and 2 <= len(decimals) <= 5
    try:
        validate(receipt, {"$ref": "#/components/schemas/ReceiptV1"}, COMPONENTS)
        accepted = True
    except ApiError:
        accepted = False
    assert accepted == ok, (amount, AMOUNT)


def test_validator_messages_name_the_field() -> None:
    with pytest.raises(ApiError) as info:
        validate({"state": "ACTIVE", "client_id": 5}, {"$ref": "#/x/TxRequest"}, COMPONENTS)
    assert "client_id" in info.value.message
    with pytest.raises(ApiError) as info:
        validate({"state": "INITIALIZED", "extra": 1}, {"$ref": "#/x/UpdateTssRequest"}, COMPONENTS)
    assert "extra" in info.value.message and "not allowed" in info.value.message
    schema = {
        "standard_v1": {"receipt": {"receipt_type": "RECEIPT", "amounts_per_vat_rate": []}},
        "raw": {"process_type": "x", "process_data": ""},
    }
    with pytest.raises(ApiError):  # exactly one schema kind
        validate(
            {"state": "ACTIVE", "client_id": "c", "schema": schema},
            {"$ref": "#/x/TxRequest"},
            COMPONENTS,
        )


def test_tokens_and_sealed_puk(tmp_path: Path) -> None:
    from opentse.installation import Installation

    inst = Installation.open(tmp_path / "data")
    store = ServiceStore(Path(inst.store._path))
    try:
        key = create_api_key(store, org_name="a", env="LIVE", now=1_700_000_000)
        row = store.get_api_key(key["api_key"])
        assert row is not None and key["api_secret"] not in row.secret_hash
        tokens = TokenService(store, inst.secret, access_ttl=60, refresh_ttl=120)
        out = tokens.login(
            {"api_key": key["api_key"], "api_secret": key["api_secret"]}, 1_700_000_000
        )
        assert out["access_token_claims"] == {
            "env": "LIVE",
            "organization_id": key["organization_id"],
        }
        who = tokens.authenticate("Bearer " + out["access_token"], 1_700_000_059)
        assert who.organization_id == key["organization_id"] and who.env == "LIVE"
        with pytest.raises(ApiError):
            tokens.authenticate("Bearer " + out["access_token"], 1_700_000_060)  # expired
        other = TokenService(store, b"\x00" * 32)  # another installation's key
        with pytest.raises(ApiError):
            other.authenticate("Bearer " + out["access_token"], 1_700_000_001)
        assert json.dumps(out).count(key["api_secret"]) == 0
        k = derive_key(inst.secret, "test")
        blob = seal(k, "PUK-1234567890", "tss-1")
        assert unseal(k, blob, "tss-1") == "PUK-1234567890" and b"PUK" not in blob
        with pytest.raises(InvalidTag):  # bound to its TSS id
            unseal(k, blob, "tss-2")
    finally:
        store.close()
        inst.close()
