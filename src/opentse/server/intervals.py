"""The server's timing intervals, settable per process through the environment.

For tests and for operators who know why: a disabled API key's tokens stop within
``OPENTSE_KEY_RECHECK_SECONDS`` (default 5, whole seconds: tokens carry whole-second
times), and the export lease heartbeat (which also notices a database that went away
or came back) runs every ``OPENTSE_EXPORT_RENEW_SECONDS`` (default 5) on leases of
``OPENTSE_EXPORT_LEASE_SECONDS`` (default 30). Shorter intervals cost database reads;
a lease shorter than two heartbeats would be lost by a node that is merely slow, so
it is refused. Every value is checked when ``opentse serve`` starts: a bad one stops
the start with one line (``E_SERVE_SETTING``), never a silent default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentse.errors import ProtocolError

KEY_RECHECK = "OPENTSE_KEY_RECHECK_SECONDS"
EXPORT_RENEW = "OPENTSE_EXPORT_RENEW_SECONDS"
EXPORT_LEASE = "OPENTSE_EXPORT_LEASE_SECONDS"
MAX_SECONDS = 3600.0  # an hour: longer would only hide a typo (ms for s)


@dataclass(frozen=True)
class Intervals:
    """The defaults are ServerConfig's (auth.KEY_RECHECK_SECONDS; tests check)."""

    key_recheck: int = 5
    export_renew: float = 5.0
    export_lease: float = 30.0


def _seconds(environ: Mapping[str, str], name: str, default: float, *, whole: bool) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    kind = "a whole number of seconds" if whole else "a number of seconds"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise _bad(f"{name}={raw!r} is not {kind}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise _bad(f"{name}={raw!r} must be more than 0 and at most {MAX_SECONDS:.0f}")
    return value


def _bad(message: str) -> ProtocolError:
    return ProtocolError(message, code="E_SERVE_SETTING")


def from_environment(environ: Mapping[str, str] | None = None) -> Intervals:
    """The intervals ``environ`` (default ``os.environ``) sets; raises
    ProtocolError(E_SERVE_SETTING) naming the variable for a bad value."""
    env = os.environ if environ is None else environ
    default = Intervals()
    recheck = int(_seconds(env, KEY_RECHECK, default.key_recheck, whole=True))
    renew = _seconds(env, EXPORT_RENEW, default.export_renew, whole=False)
    lease = _seconds(env, EXPORT_LEASE, default.export_lease, whole=False)
    if lease < 2 * renew:
        raise _bad(
            f"{EXPORT_LEASE}={lease:g} must be at least twice {EXPORT_RENEW}={renew:g}: "
            "a node would lose its exports' leases between two heartbeats"
        )
    return Intervals(key_recheck=recheck, export_renew=renew, export_lease=lease)
