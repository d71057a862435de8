"""docs/api.md says what /metrics wants: a bearer token always (the operator's
OPENTSE_METRICS_TOKEN or an organization's API access token). It said "bearer token
when configured", as if /metrics were open without OPENTSE_METRICS_TOKEN; it has been
closed by default since TSE ids and counters became an organization's business."""

from __future__ import annotations

from pathlib import Path

from server_support import AppClient, login, new_key

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_metrics_is_closed_without_a_configured_token_as_the_docs_say(
    app_client: AppClient,
) -> None:
    row = next(line for line in API_MD.read_text().splitlines() if "`/metrics`" in line)
    assert "when configured" not in row
    assert "always" in row
    assert app_client.get("/metrics").status_code == 401  # no OPENTSE_METRICS_TOKEN here
    h = login(app_client, new_key(app_client))
    assert app_client.get("/metrics", headers=h).status_code == 200
