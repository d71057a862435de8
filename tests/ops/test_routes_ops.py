"""/metrics (Prometheus text, parsed), /health and the ops API on a served app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import login, parse_prometheus, setup_tss

from opentse.ops import lifetime, metrics, sites
from opentse.ops.store import OpsContext
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread

DAY = 86400


@contextmanager
def _serving(app: Any) -> Iterator[httpx.Client]:
    """``app`` under uvicorn in a thread on a free 127.0.0.1 port."""
    with serving_in_thread(app) as origin, httpx.Client(base_url=origin, timeout=30) as client:
        yield client


@pytest.fixture
def served(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[httpx.Client, Any]]:
    from opentse.installation import Installation

    with Installation.open(tmp_path / "data", clock=clock) as inst:
        app = create_app(inst, ServerConfig(data_dir=tmp_path / "data"), clock=clock)
        with _serving(app) as client:
            yield client, app


def test_metrics_health_and_ops_api(served: tuple[httpx.Client, Any], clock: FrozenClock) -> None:
    client, app = served
    ctx = app.state.ctx
    key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
    other = create_api_key(ctx.svc, org_name="other", env="TEST", now=ctx.now())
    h = login(client, key["api_key"], key["api_secret"])
    tss = setup_tss(client, h)
    ops: OpsContext = app.state.ops
    org = sites.create_organization(ops, "Shop", svc_org_id=key["organization_id"])
    loc = sites.create_location(ops, org.id, "Shop", street="A 1", postal_code="1", city="B")
    sites.assign_tse(ops, tss, loc.id, capacity=12)
    # a failed call on the TSS (unknown client) is counted
    bad = client.put(
        f"/api/v2/tss/{tss}/tx/00000000-0000-4000-8000-000000000001",
        params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": "00000000-0000-4000-8000-000000000002"},
        headers=h,
    )
    assert bad.status_code >= 400

    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    # anonymous: store reachable, no counts (they are per organization, below)
    assert body["status"] == "ok" and set(body) == {"status", "time"}
    mine = client.get("/api/v2/ops/status", headers=h).json()
    assert mine["count"] == 1 and len(mine["data"][0]["warnings"]) == 1

    # closed without a token; an API access token shows that organization's TSEs only
    assert client.get("/metrics").status_code == 401
    h_other = login(client, other["api_key"], other["api_secret"])
    r = client.get("/metrics", headers=h_other)
    assert r.status_code == 200 and tss not in r.text
    r = client.get("/metrics", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = parse_prometheus(r.text)
    state = ctx.service.get(tss).state

    def value(name: str, **labels: str) -> float:
        found = [v for lb, v in fams[name] if all(lb.get(k) == x for k, x in labels.items())]
        assert len(found) == 1, (name, labels, fams.get(name))
        return found[0]

    assert value("opentse_tse_signatures_total", tse_id=tss) == state.signature_counter
    assert value("opentse_tse_transactions_total", tse_id=tss) == 1
    assert value("opentse_tse_open_transactions", tse_id=tss) == 0
    assert value("opentse_tse_remaining_capacity", tse_id=tss) == 12 - state.signature_counter
    assert 5 * 365 - 1 <= value("opentse_tse_days_to_expiry", tse_id=tss) <= 5 * 365 + 1
    assert value("opentse_tse_warning", tse_id=tss, kind=lifetime.CAPACITY) == 1
    assert value("opentse_tse_failures_total", tse_id=tss, status=str(bad.status_code)) == 1
    assert value("opentse_tse_info", tse_id=tss, state="INITIALIZED") == 1

    r = client.get("/api/v2/ops/warnings", headers=h)
    assert r.status_code == 200
    assert [w["kind"] for w in r.json()["data"]] == [lifetime.CAPACITY]
    r = client.get("/api/v2/ops/status", headers=h)
    (row,) = r.json()["data"]
    assert row["tse_id"] == tss and row["capacity"] == 12 and row["location_id"] == loc.id
    # another organization sees nothing of it; no token is a fiskaly-style 401
    h2 = login(client, other["api_key"], other["api_secret"])
    assert client.get("/api/v2/ops/status", headers=h2).json()["count"] == 0
    r = client.get("/api/v2/ops/warnings")
    assert r.status_code == 401 and r.json()["code"] == "E_UNAUTHORIZED"


def test_label_escaping_parses() -> None:
    fam = metrics.Family("x_total", "counter", "help")
    fam.add(3, tse_id='a"b\\c\nd')
    fams = parse_prometheus(fam.render() + "\n")
    assert fams["x_total"] == [({"tse_id": 'a\\"b\\\\c\\nd'}, 3.0)]
    with pytest.raises(AssertionError):
        parse_prometheus('x_total{tse_id="a"b"} 1\n')


def test_metrics_token(tmp_path: Path, clock: FrozenClock) -> None:
    from opentse.installation import Installation

    with Installation.open(tmp_path / "data", clock=clock) as inst:
        config = ServerConfig(data_dir=tmp_path / "data", extra={"metrics_token": "s3cret-token"})
        with _serving(create_app(inst, config, clock=clock)) as client:
            assert client.get("/metrics").status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert client.get("/metrics", headers=wrong).status_code == 401
            ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
            assert ok.status_code == 200
            assert parse_prometheus(ok.text) == {}  # no TSE yet: families only
            assert "# TYPE opentse_tse_signatures_total counter" in ok.text
            assert client.get("/health").json()["status"] == "ok"  # health stays open
