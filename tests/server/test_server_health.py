"""Anonymous ``GET /health``: cheap, tenant-free, 503 when the store cannot be read."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock


def test_anonymous_health_shows_no_tenant_counts(app_client: AppClient) -> None:
    shop = login(app_client, new_key(app_client, "shop"))
    other = login(app_client, new_key(app_client, "other"))
    shop_tss, _ = setup_tss(app_client, shop)
    other_tss, _ = setup_tss(app_client, other)
    setup_tss(app_client, other)

    r = app_client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body == {"status": "ok", "time": app_client.ctx.now()}
    assert shop_tss not in r.text and other_tss not in r.text
    # a token does not change the anonymous answer either
    assert app_client.get("/health", headers=shop).json().keys() == {"status", "time"}

    # the counts stay with the organization that owns them
    mine = app_client.get("/api/v2/ops/status", headers=shop).json()
    assert mine["count"] == 1
    theirs = app_client.get("/api/v2/ops/status", headers=other).json()
    assert theirs["count"] == 2
    assert app_client.get("/api/v2/ops/status").status_code == 401


def test_health_answers_a_load_balancer_probe_on_a_fresh_server(
    tmp_path: Path, clock: FrozenClock
) -> None:
    with serve_app(tmp_path / "fresh", clock) as client:
        # what haproxy's `option httpchk GET /health` sends: bare HTTP/1.0, no headers
        url = urlsplit(str(client.base_url))
        assert url.hostname is not None and url.port is not None
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        status_line, _, rest = reply.partition(b"\r\n")
        assert status_line.split(b" ")[1] == b"200", reply
        assert rest.endswith(b'"status":"ok","time":1700000000}')
        head = client.head("/health")
        assert head.status_code == 200 and head.content == b""


def test_health_is_503_with_the_error_class_when_the_store_is_closed(
    tmp_path: Path, clock: FrozenClock
) -> None:
    with serve_app(tmp_path / "data", clock) as client:
        assert client.get("/health").status_code == 200
        client.ctx.store.close()
        r = client.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "error" and body.keys() == {"status", "error"}
        assert body["error"].isidentifier()  # a class name, nothing from the message
