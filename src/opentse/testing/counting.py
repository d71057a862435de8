"""Work counted instead of timed: a test that wants to know whether a request paid for
a secret check counts the checks (deterministic) instead of comparing milliseconds on
a machine shared with other work (a ratio of timings fails under load)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def scrypt_calls() -> Iterator[list[tuple[int, int, int]]]:
    """Every ``hashlib.scrypt`` call in this process while the block runs (any thread:
    a server served in a thread too), as its cost parameters ``(n, r, p)``. The calls
    still run: the stdlib function is wrapped, nothing of opentse is replaced."""
    real = hashlib.scrypt
    calls: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def counting(password: Any, **options: Any) -> bytes:
        with lock:
            calls.append((options["n"], options["r"], options["p"]))
        result: bytes = real(password, **options)
        return result

    setattr(hashlib, "scrypt", counting)  # noqa: B010 (mypy: a module's function)
    try:
        yield calls
    finally:
        setattr(hashlib, "scrypt", real)  # noqa: B010
