"""The procedure documentation of a TSE moved with `tse move` while it is not served
over the API: it printed the move's URL (host, port, path) beside "Schnittstelle:
embedded", as if registers reached this TSE there; the API serves only its own TSSs,
so none does. Now the URL line says so, and a TSE served over the API is documented
with its URL and the HTTP interface, whatever assign-tse recorded at the time."""

from __future__ import annotations

from conftest import ready_tse
from opentse.ops import moving, procedure, sites
from opentse.ops.store import OpsContext
from opentse.server.auth import create_api_key


def _block(md: str, tse_id: str) -> str:
    return md.split(f"### TSE {tse_id}", 1)[1].split("### TSE", 1)[0]


def test_moved_tse_not_served_over_the_api_has_no_url(ops: OpsContext) -> None:
    key = create_api_key(ops.svc, org_name="shop", env="TEST", now=ops.now())
    org = sites.create_organization(ops, "Laden GmbH")
    loc = sites.create_location(
        ops, org.id, "Laden", street="Weg 1", postal_code="10115", city="Berlin"
    )
    ready_tse(ops, "local", "K1")
    sites.assign_tse(ops, "local", loc.id)  # embedded then, and still
    ready_tse(ops, "api", "K2")
    sites.assign_tse(ops, "api", loc.id)  # recorded embedded: served over the API only since
    ops.svc.add_tss("api", key["organization_id"], "TEST", {}, None, ops.now())
    for tse_id in ("local", "api"):
        moving.move_tse(ops, tse_id, host="192.168.1.20", port=8000, org_id=key["organization_id"])
    md = procedure.render_markdown(procedure.collect(ops))
    local, api = _block(md, "local"), _block(md, "api")
    assert (
        "| Schnittstelle | eingebettet (opentse-Bibliothek bzw. -CLI auf demselben Rechner) |"
        in local
    )
    assert "| Verbindung (URL) | keine: die TSE wird nicht über die API bereitgestellt" in local
    assert "erreicht keine Kasse diese TSE" in local
    assert "| Host / Port / Pfad | - / - / - |" in local
    assert "| Schnittstelle | HTTP-API (fiskaly SIGN DE v2 kompatibel, opentse serve) |" in api
    assert "| Verbindung (URL) | http://192.168.1.20:8000/api/v2 |" in api
    assert "| Host / Port / Pfad | 192.168.1.20 / 8000 / /api/v2 |" in api
