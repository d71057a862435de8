"""Sites: two locations, a TSE shared at one address after a recorded confirmation,
cross-location assignments refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ready_tse
from opentse.errors import OpenTSEError
from opentse.ops import protocol, sites
from opentse.ops.store import OpsContext


def _two_sites(ops: OpsContext) -> tuple[sites.Location, sites.Location, sites.Location]:
    org = sites.create_organization(ops, "Café Sonne GmbH", tax_number="12/345/67890")
    main = sites.create_location(
        ops, org.id, "Hauptgeschäft", street="Hauptstraße 1", postal_code="10115", city="Berlin"
    )
    upstairs = sites.create_location(
        ops, org.id, "Bar im 1. OG", street="Hauptstr. 1", postal_code="10115", city="berlin"
    )
    branch = sites.create_location(
        ops, org.id, "Filiale Süd", street="Marktplatz 7", postal_code="80331", city="München"
    )
    return main, upstairs, branch


def test_address_key_ignores_spelling() -> None:
    a = sites.address_key("Hauptstraße 1", "10115", "Berlin")
    assert a == sites.address_key(" hauptstr. 1 ", "10115", "BERLIN", "DE")
    assert a != sites.address_key("Hauptstraße 3", "10115", "Berlin")


def test_two_sites_share_and_refuse(ops: OpsContext) -> None:
    main, upstairs, branch = _two_sites(ops)
    ready_tse(ops, "tse-main", "KASSE-1")
    ready_tse(ops, "tse-south", "KASSE-S1")
    sites.assign_tse(ops, "tse-main", main.id)
    sites.assign_tse(ops, "tse-south", branch.id)
    for reg, loc in (("KASSE-1", main), ("KASSE-2", upstairs), ("KASSE-S1", branch)):
        sites.add_register(ops, reg, loc.id, model="opentse pos", software_version="0.1")
    sites.assign_register(ops, "KASSE-1", "tse-main")
    sites.assign_register(ops, "KASSE-S1", "tse-south")

    # the bar upstairs (same address) may not use the main TSE before confirming
    with pytest.raises(OpenTSEError) as exc:
        sites.assign_register(ops, "KASSE-2", "tse-main")
    assert exc.value.code == "E_SITE_CROSS_LOCATION"
    with pytest.raises(OpenTSEError) as exc:
        sites.share_tse(ops, "tse-main", upstairs.id, confirmed_by="A. Wirt", confirmation="ok")
    assert exc.value.code == "E_SITE_CONFIRMATION_REQUIRED"
    share = sites.share_tse(
        ops, "tse-main", upstairs.id, confirmed_by="A. Wirt",
        confirmation="Bar im 1. OG ist dieselbe Betriebsstätte wie das Hauptgeschäft.",
    )  # fmt: skip
    assert share.confirmed_at == ops.now()
    assert sites.assign_register(ops, "KASSE-2", "tse-main").tse_id == "tse-main"

    # a branch at another address can never share, nor use another site's TSE
    with pytest.raises(OpenTSEError) as exc:
        sites.share_tse(
            ops, "tse-main", branch.id, confirmed_by="A. Wirt",
            confirmation="Die Filiale soll die TSE mitbenutzen.",
        )  # fmt: skip
    assert exc.value.code == "E_SITE_ADDRESS_MISMATCH"
    with pytest.raises(OpenTSEError) as exc:
        sites.assign_register(ops, "KASSE-S1", "tse-main")
    assert exc.value.code == "E_SITE_CROSS_LOCATION"
    assert "Filiale Süd" in exc.value.message
    with pytest.raises(OpenTSEError) as exc:
        sites.assign_register(ops, "KASSE-1", "tse-south")
    assert exc.value.code == "E_SITE_CROSS_LOCATION"
    assert sites.get_register(ops, "KASSE-S1").tse_id == "tse-south"

    kinds = [e.kind for e in protocol.entries(ops.db)]
    assert kinds == [
        protocol.ORG_CREATED,
        *[protocol.LOCATION_CREATED] * 3,
        protocol.TSE_ASSIGNED,
        protocol.TSE_ASSIGNED,
        protocol.REGISTER_ASSIGNED,
        protocol.REGISTER_ASSIGNED,
        protocol.TSE_SHARED,
        protocol.REGISTER_ASSIGNED,
    ]
    shared = protocol.entries(ops.db, kinds=(protocol.TSE_SHARED,))[0]
    assert shared.actor == "A. Wirt" and shared.location_id == upstairs.id
    assert "dieselbe Betriebsstätte" in shared.details["confirmation"]


def test_protocol_is_append_only(ops: OpsContext) -> None:
    sites.create_organization(ops, "X GmbH")
    with pytest.raises(Exception, match="append-only"), ops.db.tx() as c:
        c.execute("UPDATE ops_protocol SET kind='x'")
    with pytest.raises(Exception, match="append-only"), ops.db.tx() as c:
        c.execute("DELETE FROM ops_protocol")
    assert len(protocol.entries(ops.db)) == 1


def test_protocol_refuses_secret_values(ops: OpsContext) -> None:
    with pytest.raises(OpenTSEError) as exc:
        protocol.record(ops.db, 1, protocol.PIN_CHANGED, details={"new_pin": "123456"})
    assert exc.value.code == "E_PROTOCOL_SECRET"
    seq = protocol.record_credential_change(ops.db, 5, "t", what="puk")
    entry = protocol.entries(ops.db)[-1]
    assert entry.seq == seq and entry.kind == protocol.PUK_CHANGED
    assert entry.details == {"puk_role": "admin"}


@settings(max_examples=100, deadline=None)
@given(
    street=st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöü0123456789 ", min_size=1, max_size=30),
    number=st.integers(1, 999),
    city=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20),
)
def test_address_key_is_case_and_space_insensitive(street: str, number: int, city: str) -> None:
    a = sites.address_key(f"{street} {number}", "12345", city)
    b = sites.address_key(f"  {street.upper()}  {number} ", "12345", f" {city.title()} ")
    assert a == b
    assert a != sites.address_key(f"{street} {number + 1000}", "12345", city)


def test_default_interface_says_how_the_tse_is_reached(ops: OpsContext) -> None:
    """The procedure documentation prints the interface: a TSE only the CLI or an
    embedded register uses must not be recorded as reached over the HTTP API."""
    from opentse.server.auth import create_api_key

    main, _, branch = _two_sites(ops)
    ready_tse(ops, "embedded")
    ready_tse(ops, "served")
    key = create_api_key(ops.svc, org_name="shop", env="TEST", now=ops.now())
    ops.svc.add_tss("served", key["organization_id"], "TEST", {}, None, ops.now())
    assert sites.assign_tse(ops, "embedded", main.id).interface_type == sites.EMBEDDED_INTERFACE
    assert sites.assign_tse(ops, "served", branch.id).interface_type == sites.SERVED_INTERFACE
    assert sites.SERVED_INTERFACE != sites.EMBEDDED_INTERFACE
    (entry,) = protocol.entries(ops.db, tse_id="embedded")
    assert entry.details["interface_type"] == sites.EMBEDDED_INTERFACE
