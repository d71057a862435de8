"""schemathesis against our own /api/v2/openapi.json: no 500, responses conform.

Bounded (a few examples per operation, positive and negative data) so it runs in
well under two minutes on a shared 2-core machine. Requests carry a valid token,
and half of them address a TSS and client that exist, so generated bodies reach
the handlers instead of stopping at 401/404.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from server_support import AppClient, login, new_key, setup_tss

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_api_conforms_to_its_openapi_document(app_client: AppClient) -> None:
    headers = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, headers)
    base = str(app_client.base_url)
    doc = httpx.get(base + "/api/v2/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=base)
    known = {"tss_id": tss, "client_id": cid}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    statuses: list[int] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = op.as_strategy(generation_mode=mode)

            @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)  # fmt: skip
            @given(case=strategy, use_known=st.booleans())
            def run(case: Any, use_known: bool) -> None:
                if use_known and case.path_parameters:
                    for name, value in known.items():
                        if name in case.path_parameters:
                            case.path_parameters[name] = value
                response = case.call(headers=headers)
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.text}")
                if response.status_code >= 400:
                    body = response.json()
                    assert set(body) == {"status_code", "error", "code", "message"}, body
                case.validate_response(response, checks=CHECKS)

            run()
    assert failures == []
    assert len(statuses) > 2 * len(operations)  # every operation really ran, both modes
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)
