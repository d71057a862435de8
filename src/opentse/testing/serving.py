"""Waiting for a real ``opentse serve`` process (tests and benchmarks start them)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx


def wait_until_serving(
    origin: str,
    process: subprocess.Popen[Any],
    *,
    seconds: float = 60.0,
    request_timeout: float = 1.0,
) -> bool:
    """Poll ``GET {origin}/health`` until it answers 200 (True), or until ``process``
    has ended or ``seconds`` have passed (False: the caller reports, with the output
    it kept)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(origin + "/health", timeout=request_timeout).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
