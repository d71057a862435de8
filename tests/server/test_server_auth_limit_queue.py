"""Tills sharing one API key that log in at the same moment (the shop opens, a node
restarts) are all let in. The failure limiter counts a running login as a failure
until it succeeds, so that guesses sent at once cannot all slip past it; it answered
the sixth of twelve simultaneous CORRECT logins 429 "too many failed logins". Now a
login held back only by logins still running waits for one of them to end; wrong
secrets sent at once are still hashed at most as often as the limit allows."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from server_support import new_key, serve_app

from opentse.server.auth_limit import Blocked, Busy, FailureLimiter, Limits
from opentse.testing.clock import FrozenClock
from opentse.testing.counting import scrypt_calls


def test_a_limit_made_of_running_attempts_is_busy_then_blocked() -> None:
    limiter = FailureLimiter(Limits(per_address=100, per_key=2, window=60))
    first = limiter.admit("10.0.0.1", "k", 0)
    second = limiter.admit("10.0.0.2", "k", 0)
    with pytest.raises(Busy):  # nothing failed yet: wait for one of the two
        limiter.admit("10.0.0.3", "k", 0)
    limiter.succeeded(first)
    third = limiter.admit("10.0.0.3", "k", 0)
    limiter.failed(second)
    with pytest.raises(Busy):  # one known failure, one running
        limiter.admit("10.0.0.4", "k", 0)
    limiter.failed(third)
    with pytest.raises(Blocked) as blocked:  # two known failures: blocked, not busy
        limiter.admit("10.0.0.4", "k", 0)
    assert not isinstance(blocked.value, Busy) and blocked.value.retry_after == 60


def _at_once(origin: str, body: dict[str, str], count: int) -> list[httpx.Response]:
    start = threading.Barrier(count)
    answers: list[httpx.Response | None] = [None] * count

    def login(i: int) -> None:
        with httpx.Client(base_url=origin, timeout=60) as client:
            start.wait()
            answers[i] = client.post("/api/v2/auth", json=body)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_twelve_tills_of_one_key_log_in_at_once(tmp_path: Path, clock: FrozenClock) -> None:
    with serve_app(tmp_path / "data", clock, handler_threads=16) as cl:
        key = new_key(cl)
        good = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        answers = _at_once(str(cl.base_url), good, 12)
        assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
        # guesses sent at once for one key: at most five are hashed, the rest refused
        wrong = {"api_key": key["api_key"], "api_secret": "W" * 43}
        with scrypt_calls() as hashed:
            guesses = _at_once(str(cl.base_url), wrong, 12)
        codes = sorted(a.status_code for a in guesses)
        assert codes.count(401) == 5 and codes.count(429) == 7, codes
        assert len(hashed) == 5, hashed
        assert cl.post("/api/v2/auth", json=good).status_code == 429  # the key is blocked
