"""The hot route (server/hotpath.py) and the quick upsert path (server/upsert.py).

upsertTransaction is answered before Starlette's router and decides on the index row
without reading the logs first. These tests hold it to the old behaviour: the same
answers as the Starlette route for bad input, the same idempotent replays when the
index lost rows (the engine's ref check finds them), no stray signature, a
deregistered client refused despite the client cache, failures counted for /metrics.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.server.hotpath import hot_route
from opentse.testing.clock import FrozenClock

RECEIPT = {
    "receipt_type": "RECEIPT",
    "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
    "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "21.42"}],
}


def _scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


def test_hot_route_takes_only_upsert_paths() -> None:
    assert hot_route(_scope("PUT", "/api/v2/tss/a/tx/b")) == ("a", "b")
    assert hot_route(_scope("PUT", "/api/v2/tss/a/tx/42")) == ("a", "42")
    for method, path in [
        ("GET", "/api/v2/tss/a/tx/b"),
        ("PUT", "/api/v2/tss/a/tx/b/"),
        ("PUT", "/api/v2/tss/a/tx/b/metadata"),
        ("PUT", "/api/v2/tss/a/tx"),
        ("PUT", "/api/v2/tss//tx/b"),
        ("PUT", "/api/v2/tss/a/tx/"),
        ("PUT", "/api/v2/tss/a/client/b"),
        ("PUT", "/api/v1/tss/a/tx/b"),
    ]:
        assert hot_route(_scope(method, path)) is None, (method, path)
    assert hot_route(_scope("PUT", "/x/api/v2/tss/a/tx/b", root_path="/x")) is None


def _ready(client: AppClient) -> tuple[dict[str, str], str, str]:
    h = login(client, new_key(client))
    tss, cid = setup_tss(client, h)
    return h, tss, cid


def _put(
    client: AppClient, h: dict[str, str], tss: str, tx: str, rev: int, body: dict[str, Any]
) -> Any:
    return client.put(f"/api/v2/tss/{tss}/tx/{tx}?tx_revision={rev}", json=body, headers=h)


def _counter(client: AppClient, h: dict[str, str], tss: str) -> int:
    r = client.get(f"/api/v2/tss/{tss}", headers=h)
    assert r.status_code == 200, r.text
    return int(r.json()["signature_counter"])


def _lose_index(client: AppClient) -> None:
    """What a kill -9 before the index writer ran leaves: logs without index rows."""
    svc = client.ctx.svc
    svc.flush()
    with sqlite3.connect(svc._path) as conn:
        conn.execute("DELETE FROM svc_transactions")


def test_index_lost_revisions_replay_and_sign_nothing(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    first = _put(app_client, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
    assert first.status_code == 200, first.text
    finish = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": RECEIPT}},
    }
    second = _put(app_client, h, tss, tx, 2, finish)
    assert second.status_code == 200, second.text
    counter = _counter(app_client, h, tss)
    _lose_index(app_client)
    again = _put(app_client, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["signature"] == first.json()["signature"]
    assert body["revision"] == 1 and body["latest_revision"] == 2  # index recovered
    again2 = _put(app_client, h, tss, tx, 2, finish)
    assert again2.status_code == 200, again2.text
    assert again2.json()["qr_code_data"] == second.json()["qr_code_data"]
    third = _put(app_client, h, tss, tx, 3, {"state": "ACTIVE", "client_id": cid})
    assert third.status_code == 400 and third.json()["code"] == "E_TX_UPSERT"
    assert _counter(app_client, h, tss) == counter  # nothing signed twice
    got = app_client.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h)
    assert got.status_code == 200 and got.json()["state"] == "FINISHED"


def test_index_lost_start_and_finish_in_one_call(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    finish = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": RECEIPT}},
    }
    first = _put(app_client, h, tss, tx, 1, finish)
    assert first.status_code == 200, first.text
    counter = _counter(app_client, h, tss)
    _lose_index(app_client)
    again = _put(app_client, h, tss, tx, 1, finish)
    assert again.status_code == 200, again.text
    assert again.json()["signature"] == first.json()["signature"]
    assert _counter(app_client, h, tss) == counter  # no second Start signed
    # revision 2 of a lost row: decided on the recovered index, not refused as "2 > 1"
    _lose_index(app_client)
    late = _put(app_client, h, tss, tx, 2, {"state": "ACTIVE", "client_id": cid})
    assert late.status_code == 400 and "already FINISHED" in late.json()["message"]


def test_deregistered_client_refused_after_being_cached(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    done = {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": RECEIPT}}}
    ok = _put(app_client, h, tss, str(uuid.uuid4()), 1, done)
    assert ok.status_code == 200, ok.text  # the client row is cached now
    path = f"/api/v2/tss/{tss}/client/{cid}"
    r = app_client.patch(path, json={"state": "DEREGISTERED"}, headers=h)
    assert r.status_code == 200, r.text
    for body in (done, {"state": "ACTIVE", "client_id": cid}):
        refused = _put(app_client, h, tss, str(uuid.uuid4()), 1, body)
        assert refused.status_code == 400 and refused.json()["code"] == "E_CLIENT_DEREGISTERED"
    r = app_client.patch(path, json={"state": "REGISTERED"}, headers=h)
    assert r.status_code == 200, r.text
    back = _put(app_client, h, tss, str(uuid.uuid4()), 1, done)
    assert back.status_code == 200, back.text


STRANGER = "6f1c1f1e-0000-4000-8000-000000000001"  # no TSS, no client has this id


def _bad_requests(tss: str, cid: str, tx: str) -> list[tuple[str, bytes, dict[str, str]]]:
    json_h = {"Content-Type": "application/json"}
    active = b'{"state":"ACTIVE","client_id":"%s"}' % cid.encode()
    return [
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b"", json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b"   ", json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b"null", json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b"{", json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b'{"state": NaN}', json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b'{"state":"\\ud800"}', json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b"[" * 3000 + b"]" * 3000, json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", b'{"state":"X","client_id":1}', json_h),
        (
            f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
            b'{"state":"ACTIVE","client_id":"%s","metadata":{"a":[123456789012345678901234]}}'
            % cid.encode(),
            json_h,
        ),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=0", active, json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=x", active, json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=5", active, json_h),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1&tx_revision=7", active, json_h),
        (f"/api/v2/tss/{tss}/tx/12345?tx_revision=1", active, json_h),
        (f"/api/v2/tss/{tss}/tx/not-a-uuid?tx_revision=1", active, json_h),
        (f"/api/v2/tss/{STRANGER}/tx/{tx}?tx_revision=1", active, json_h),
        (f"/api/v2/tss/nope/tx/{tx}?tx_revision=1", active, json_h),
        (
            f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
            b'{"state":"ACTIVE","client_id":"%s"}' % STRANGER.encode(),
            json_h,
        ),
        (
            f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
            b'{"state":"FINISHED","client_id":"%s"}' % cid.encode(),
            json_h,
        ),
        (f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", active, {**json_h, "Authorization": "x"}),
        (
            f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
            active,
            {**json_h, "Authorization": "Bearer nope"},
        ),
    ]


@pytest.mark.parametrize("hot", [True, False])
def test_bad_input_answers_like_the_starlette_route(app_client: AppClient, hot: bool) -> None:
    """Each refusal of the hot route, byte for byte as the router's endpoint gives it."""
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    handler = app_client.app.hot_handler
    answers: dict[bool, list[tuple[int, bytes, str]]] = {}
    for mode in (hot, not hot):
        app_client.app.hot_handler = handler if mode else None
        out = []
        for path, content, headers in _bad_requests(tss, cid, tx):
            all_headers = {**h, **headers}
            r = app_client.put(path, content=content, headers=all_headers)
            assert r.status_code in (400, 401, 404, 409), (path, content[:60], r.text)
            assert len(r.headers.get_list("request-id")) == 1  # one of its own each
            seen = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "request-id"))
            out.append((r.status_code, r.content, str(seen)))
        answers[mode] = out
    app_client.app.hot_handler = handler
    assert answers[True] == answers[False]


def test_large_body_refused_on_the_hot_route(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    big = b'{"state":"ACTIVE","client_id":"%s","metadata":{"a":"%s"}}' % (
        cid.encode(),
        b"x" * (1024 * 1024 + 10),
    )
    r = app_client.put(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}", content=big, headers=h)
    assert r.status_code == 413 and r.json()["code"] == "E_REQUEST_TOO_LARGE"


def test_hot_route_failures_are_counted_for_metrics(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    before = app_client.app.failures.snapshot().get((tss, "400"), 0)
    r = _put(app_client, h, tss, str(uuid.uuid4()), 3, {"state": "ACTIVE", "client_id": cid})
    assert r.status_code == 400
    assert app_client.app.failures.snapshot()[(tss, "400")] == before + 1
    text = app_client.get("/metrics", headers=h).text
    assert "opentse_tse_failures_total" in text and tss in text


def test_other_organizations_tss_is_not_found_on_the_hot_route(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    ok = _put(app_client, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
    assert ok.status_code == 200, ok.text  # owner and client are cached now
    stranger = login(app_client, new_key(app_client, org="other shop"))
    for rev, state in ((1, "ACTIVE"), (2, "FINISHED"), (1, "FINISHED")):
        r = _put(app_client, stranger, tss, tx, rev, {"state": state, "client_id": cid})
        assert r.status_code == 404 and r.json()["code"] == "E_TSS_NOT_FOUND", r.text
    got = app_client.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h)
    assert got.status_code == 200 and got.json()["latest_revision"] == 1  # untouched


def test_retried_revisions_replay_with_the_index_in_place(app_client: AppClient) -> None:
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    active = {"state": "ACTIVE", "client_id": cid}
    first = _put(app_client, h, tss, tx, 1, active)
    again = _put(app_client, h, tss, tx, 1, active)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()  # the same log, nothing signed again
    finish = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": RECEIPT}},
    }
    done = _put(app_client, h, tss, tx, 2, finish)
    counter = _counter(app_client, h, tss)
    retry = _put(app_client, h, tss, tx, 1, active)  # revision 1 after the Finish
    assert retry.status_code == 200 and retry.json()["signature"] == first.json()["signature"]
    assert retry.json()["latest_revision"] == 2
    assert _put(app_client, h, tss, tx, 2, finish).json() == done.json()
    assert _counter(app_client, h, tss) == counter


VOLATILE = {"value", "public_key", "qr_code_data", "tss_serial_number", "client_serial_number"}


def _normal(value: Any, ids: dict[str, str]) -> Any:
    """A body with the run's own ids named by role and key-dependent fields gone."""
    if isinstance(value, dict):
        return {k: _normal(v, ids) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normal(v, ids) for v in value]
    if isinstance(value, str):
        for real, name in ids.items():
            value = value.replace(real, name)
    return value


def _register_story(client: AppClient) -> list[tuple[int, Any]]:
    """What a register does (and gets wrong), answer by answer."""
    h, tss, cid = _ready(client)
    txs = [str(uuid.UUID(int=i + 1)) for i in range(4)]
    ids = {tss: "<tss>", cid: "<client>"}
    active = {"state": "ACTIVE", "client_id": cid}
    done = {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": RECEIPT}}}
    steps: list[tuple[str, int, dict[str, Any]]] = [
        (txs[0], 1, active),
        (txs[0], 2, active),  # an update
        (txs[0], 3, done),
        (txs[0], 3, done),  # the same revision again: the stored answer
        (txs[0], 5, active),  # a revision skipped
        (txs[0], 4, active),  # finished already
        (txs[1], 1, done),  # started and finished in one call
        (txs[2], 2, active),  # revision 2 of nothing
        (txs[3], 1, {"state": "ACTIVE", "client_id": STRANGER}),
        (txs[3], 1, {"state": "CANCELLED", "client_id": cid}),
        ("2", 2, done),  # by number (the transaction of txs[1]... finished)
    ]
    answers = []
    for tx, rev, body in steps:
        r = _put(client, h, tss, tx, rev, body)
        answers.append((r.status_code, _normal(r.json(), ids)))
    return answers


def test_event_loop_signing_answers_as_handler_threads(tmp_path: Path, clock: FrozenClock) -> None:
    """The quick path awaiting the engine on the event loop (SQLite) and the same
    path on a handler thread give the same answers, errors included."""
    with serve_app(tmp_path / "loop", clock) as on_loop:
        assert on_loop.ctx.loop_signing and on_loop.app.hot_async is not None
        loop_answers = _register_story(on_loop)
    with serve_app(tmp_path / "threads", clock, loop_signing=False) as on_threads:
        assert not on_threads.ctx.loop_signing and on_threads.app.hot_async is None
        thread_answers = _register_story(on_threads)
    assert [a[0] for a in loop_answers] == [200, 200, 200, 200, 400, 400, 200, 400, 400, 200, 400]
    assert loop_answers == thread_answers


def test_index_lost_keeps_the_metadata_sent_with_the_revisions(app_client: AppClient) -> None:
    """The metadata merged by each revision is kept with its log, so a crash that
    lost the index rows (kill -9 before the background writer) loses none of it."""
    h, tss, cid = _ready(app_client)
    tx = str(uuid.uuid4())
    first = _put(
        app_client, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid, "metadata": {"a": "1"}}
    )
    assert first.status_code == 200, first.text
    finish = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": RECEIPT}},
        "metadata": {"b": "2"},
    }
    second = _put(app_client, h, tss, tx, 2, finish)
    assert second.status_code == 200 and second.json()["metadata"] == {"a": "1", "b": "2"}
    _lose_index(app_client)
    got = app_client.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h)
    assert got.status_code == 200, got.text
    assert got.json()["metadata"] == {"a": "1", "b": "2"}
    assert got.json()["state"] == "FINISHED" and got.json()["latest_revision"] == 2
    meta = app_client.get(f"/api/v2/tss/{tss}/tx/{tx}/metadata", headers=h)
    assert meta.status_code == 200 and meta.json() == {"a": "1", "b": "2"}
