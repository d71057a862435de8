"""schemathesis over the whole API of a real ``opentse serve`` process, with auth.

Extends tests/server/test_server_schemathesis.py (in-process app, one token) to the
subprocess server and three callers: the owner's bearer token, another
organization's token (path ids of the owner mixed in) and no token at all. Only
``not_a_server_error`` is checked here (schema conformance is F's test): whoever
calls, with whatever body, the answer is never a 5xx. Examples per operation and
mode: ``OPENTSE_SCHEMATHESIS_EXAMPLES`` (CI 1; the long run in docs/proof.md).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_server import LiveServer, new_tss, ok
from schemathesis import GenerationMode

EXAMPLES = int(os.environ.get("OPENTSE_SCHEMATHESIS_EXAMPLES", "1"))


def test_no_server_error_for_owner_stranger_or_anonymous(live: LiveServer) -> None:
    owner = live.token(live.new_key("st-owner"))
    stranger = live.token(live.new_key("st-stranger"))
    with live.client(owner) as c:
        tss, _ = new_tss(c, live)
        cid = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{cid}", json={"serial_number": "ST-1"}))
    doc = httpx.get(live.base + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=live.origin)
    known = {"tss_id": tss, "client_id": cid}
    callers = {"owner": owner, "stranger": stranger, "anonymous": None}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    calls: dict[str, int] = {}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=True)  # fmt: skip
            @given(
                case=op.as_strategy(generation_mode=mode),
                caller=st.sampled_from(sorted(callers)),
                use_known=st.booleans(),
            )
            def run(case: Any, caller: str, use_known: bool) -> None:
                if use_known and case.path_parameters:
                    for name, value in known.items():
                        if name in case.path_parameters:
                            case.path_parameters[name] = value
                token = callers[caller]
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = case.call(headers=headers, timeout=60)
                calls[caller] = calls.get(caller, 0) + 1
                if response.status_code >= 500:
                    failures.append(
                        f"{caller} {case.method} {case.formatted_path}: {response.text[:200]}"
                    )
                if response.status_code >= 400:
                    live.error_bodies.append(response.text)

            run()
    assert failures == []
    assert set(calls) == set(callers)  # every kind of caller really ran
