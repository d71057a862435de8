"""Redirects of a real ``opentse serve`` name no host and no scheme.

Behind a proxy that ends TLS (``https://tse.example/dashboard``), uvicorn sees plain
http (``opentse serve`` reads no proxy headers): an absolute redirect built from what
it sees sends the browser to ``http://tse.example/dashboard/``, where the login form
posts the API secret unencrypted, and one built from the ``Host`` header names any
host a request (or a poisoned cache) put there. Starlette's router answered
``/dashboard`` (without the slash), ``/metrics/`` and ``/health/`` so (a scraper
following the redirect sends the metrics token along); every redirect is a path now.
"""

from __future__ import annotations

import httpx
import pytest
from live_server import LiveServer


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/dashboard/"),
        ("/dashboard", "/dashboard/"),
        ("/dashboard?lang=de", "/dashboard/?lang=de"),
        ("/dashboard/", "/dashboard/login"),
        ("/dashboard/tss/", "/dashboard/tss"),
        ("/metrics/", "/metrics"),
        ("/health/?x=1", "/health?x=1"),
    ],
)
def test_redirects_are_paths_on_this_server(live: LiveServer, path: str, expected: str) -> None:
    headers = {"Host": "evil.example", "X-Forwarded-Proto": "https"}
    for method in ("GET", "HEAD"):
        r = httpx.request(method, live.origin + path, headers=headers, timeout=60)
        assert r.status_code in (303, 307), (method, path, r.status_code)
        assert r.headers["location"] == expected, (method, path)
