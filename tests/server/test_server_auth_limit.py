"""The /auth failure limiter: the pure core against a reference model, and over a
served app (addresses told apart by binding the client to other loopback addresses).

Why a correct login from a blocked address (or for a blocked key) is refused too:
the limiter answers before the secret is hashed; if a right secret still got
through, every guess would still be worth its hash and could still load the server.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server_support import new_key, serve_app

from opentse.server.auth_limit import Blocked, FailureLimiter, Limits, address_bucket
from opentse.testing.clock import FrozenClock
from opentse.testing.counting import scrypt_calls

# -- the pure core against a reference model ---------------------------------------------

ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", None]
KEYS = ["key_a", "key_b", "key_c", None]


class Model:
    """Every failure ever recorded, counted by brute force."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.failures: list[tuple[str | None, str | None, int]] = []

    def count(self, index: int, name: str | None, at: float) -> int:
        return sum(1 for f in self.failures if f[index] == name and at - self.limits.window < f[2])

    def wait(self, index: int, name: str | None, limit: int, now: int) -> int | None:
        if name is None or limit == 0 or self.count(index, name, now) < limit:
            return None
        # the first whole second from which one more failure is allowed
        for s in range(1, math.ceil(self.limits.window) + 1):
            if self.count(index, name, now + s) < limit:
                return s
        raise AssertionError("a block outlasting the window")

    def attempt(self, address: str | None, key: str | None, ok: bool, now: int) -> int | None:
        """None when admitted, else the Retry-After seconds."""
        for index, name, limit in (
            (0, address, self.limits.per_address),
            (1, key, self.limits.per_key),
        ):
            wait = self.wait(index, name, limit, now)
            if wait is not None:
                return wait
        if not ok:
            self.failures.append((address, key, now))
        return None


step = st.one_of(
    st.tuples(st.just("tick"), st.integers(0, 40)),
    st.tuples(st.just("try"), st.sampled_from(ADDRESSES), st.sampled_from(KEYS), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(
    per_address=st.integers(0, 6),
    per_key=st.integers(0, 4),
    window=st.integers(1, 90),
    steps=st.lists(step, max_size=80),
)
def test_limiter_matches_the_reference_model(
    per_address: int, per_key: int, window: int, steps: list[tuple[Any, ...]]
) -> None:
    limits = Limits(per_address=per_address, per_key=per_key, window=window, max_entries=100)
    limiter = FailureLimiter(limits)
    model = Model(limits)
    now = 1_700_000_000
    for item in steps:
        if item[0] == "tick":
            now += item[1]
            continue
        _, address, key, ok = item
        expected = model.attempt(address, key, ok, now)
        try:
            ticket = limiter.admit(address, key, now)
        except Blocked as blocked:
            assert expected == blocked.retry_after, (item, now)
            continue
        assert expected is None, (item, now)
        if ok:
            limiter.succeeded(ticket)


def test_admitted_attempts_count_until_they_succeed() -> None:
    """Concurrent attempts cannot all pass the check before one failure is recorded."""
    limiter = FailureLimiter(Limits(per_address=2, per_key=100, window=60))
    first = limiter.admit("10.0.0.1", "k1", 0)
    limiter.admit("10.0.0.1", "k2", 0)  # both still running
    with pytest.raises(Blocked):
        limiter.admit("10.0.0.1", "k3", 0)
    limiter.succeeded(first)  # the first one logged in: it was no failure
    limiter.admit("10.0.0.1", "k3", 0)


def test_memory_is_bounded_and_the_oldest_is_forgotten() -> None:
    limiter = FailureLimiter(Limits(per_address=1, per_key=1, window=60, max_entries=50))
    for i in range(500):
        limiter.admit(f"10.1.{i // 256}.{i % 256}", f"key_{i}", i * 0.01)
    assert limiter.tracked() == (50, 50)
    with pytest.raises(Blocked):  # the newest are still blocked
        limiter.admit("10.1.1.243", "other", 5.0)
    limiter.admit("10.1.0.0", "key_0", 5.0)  # the oldest were forgotten


def test_address_buckets() -> None:
    assert address_bucket("192.0.2.7") == "192.0.2.7"
    assert address_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    one, other = address_bucket("2001:db8::1"), address_bucket("2001:db8::ffff:2")
    assert one == other == "2001:db8::/64"  # one host's /64 counts as one
    assert address_bucket("2001:db8:0:1::1") != one
    assert address_bucket("testclient") == "testclient"
    assert address_bucket(None) is None


# -- over a served app -------------------------------------------------------------------


def _from(origin: str, address: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (any 127.x is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=origin, transport=transport, timeout=30)


def _auth(client: httpx.Client, body: dict[str, str]) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    r = client.post("/api/v2/auth", json=body)
    return r, time.perf_counter() - start


def _good(key: dict[str, str]) -> dict[str, str]:
    return {"api_key": key["api_key"], "api_secret": key["api_secret"]}


def _wrong(api_key: str) -> dict[str, str]:
    return {"api_key": api_key, "api_secret": "W" * 43}


def _assert_limited(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == "E_TOO_MANY_REQUESTS" and body["status_code"] == 429
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 60
    return retry


def test_auth_failures_are_limited_per_address_and_key(tmp_path: Path, clock: FrozenClock) -> None:
    with serve_app(tmp_path / "data", clock) as cl:
        origin = str(cl.base_url)
        shop, other = new_key(cl), new_key(cl, "other-shop")
        with (
            _from(origin, "127.0.0.1") as attacker,
            _from(origin, "127.0.0.2") as pos,
            _from(origin, "127.0.0.3") as guesser,
        ):
            r, _ = _auth(pos, _good(shop))
            assert r.status_code == 200
            refresh = r.json()["refresh_token"]

            # one address, ten unknown keys: ten hashed 401s, then 429 without a hash
            # (the secret checks counted: a ratio of timings can fail on a loaded machine)
            with scrypt_calls() as hashed:
                for _ in range(10):
                    r, _ = _auth(attacker, _wrong("key_" + uuid.uuid4().hex))
                    assert r.status_code == 401 and r.json()["code"] == "E_UNAUTHORIZED"
            assert len(hashed) >= 10, hashed  # (and once for the decoy hash of unknown keys)
            with scrypt_calls() as hashed:
                for _ in range(5):
                    r, _ = _auth(attacker, _wrong("key_" + uuid.uuid4().hex))
                    assert _assert_limited(r) == 60  # frozen clock: all ten failures are now
            assert hashed == []  # a 429 skips the secret check
            # while blocked, the address is refused even with a right secret
            _assert_limited(_auth(attacker, _good(shop))[0])
            # ... which does not touch other addresses, with this key or another
            assert _auth(pos, _good(shop))[0].status_code == 200
            assert _auth(guesser, _good(other))[0].status_code == 200

            # five wrong secrets for one key from a third address block that key
            for _ in range(5):
                assert _auth(guesser, _wrong(other["api_key"]))[0].status_code == 401
            _assert_limited(_auth(guesser, _wrong(other["api_key"]))[0])
            # everywhere (the price of stopping distributed guessing) ...
            _assert_limited(_auth(pos, _good(other))[0])
            # ... but not a different key, and not refresh tokens (no slow hash)
            assert _auth(pos, _good(shop))[0].status_code == 200
            assert _auth(pos, {"refresh_token": refresh})[0].status_code == 200

            clock.advance(61)  # the window passed: everybody may log in again
            assert _auth(attacker, _good(shop))[0].status_code == 200
            assert _auth(pos, _good(other))[0].status_code == 200
            assert _auth(attacker, _wrong(shop["api_key"]))[0].status_code == 401


def test_limits_come_from_the_server_config(tmp_path: Path, clock: FrozenClock) -> None:
    settings = {"auth_failures_per_address": 2, "auth_failure_window": 10}
    with serve_app(tmp_path / "data", clock, **settings) as cl:
        key = new_key(cl)
        for _ in range(2):
            assert cl.post("/api/v2/auth", json=_wrong(key["api_key"])).status_code == 401
        clock.advance(3)
        assert _assert_limited(cl.post("/api/v2/auth", json=_good(key))) == 7
        clock.advance(7)
        assert cl.post("/api/v2/auth", json=_good(key)).status_code == 200


def _dashboard_login(
    client: httpx.Client, body: dict[str, str], lang: str = "de"
) -> httpx.Response:
    page = client.get("/dashboard/login", headers={"Accept-Language": lang})
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return client.post(
        "/dashboard/login",
        data={"csrf": found.group(1), **body},
        headers={"Accept-Language": lang},
    )


def _alert(r: httpx.Response) -> str:
    found = re.search(r'<p class="alert" role="alert">([^<]*)</p>', r.text)
    assert found, r.text
    return found.group(1)


def test_dashboard_login_shares_the_limit(tmp_path: Path, clock: FrozenClock) -> None:
    """The dashboard's login checks the same slow hashes: it is no way around."""
    with serve_app(tmp_path / "data", clock) as cl:
        key = new_key(cl)
        for _ in range(5):
            r = _dashboard_login(cl, _wrong(key["api_key"]))
            assert r.status_code == 401 and _alert(r) == "Anmeldung fehlgeschlagen."
        r = _dashboard_login(cl, _good(key))
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
        # not "login failed": the right secret is refused too, until Retry-After passed
        assert _alert(r) == (
            "Zu viele fehlgeschlagene Anmeldeversuche. "
            "Bitte versuchen Sie es in 60 Sekunden erneut."
        )
        _assert_limited(cl.post("/api/v2/auth", json=_good(key)))
        clock.advance(15)
        r = _dashboard_login(cl, _good(key), lang="en")
        assert r.status_code == 429 and r.headers["Retry-After"] == "45"
        assert _alert(r) == "Too many failed login attempts. Please try again in 45 seconds."
        r = _dashboard_login(cl, _wrong("key_unknown"), lang="en")
        assert r.status_code == 401 and _alert(r) == "Login failed."
        clock.advance(45)
        assert _dashboard_login(cl, _good(key)).status_code == 303
