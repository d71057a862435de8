"""Failed-login limiter for ``POST /api/v2/auth`` (pure: the caller passes ``now``).

Every API secret check is a slow hash (~45 ms of CPU, crypto.secrets), and an unknown
key pays for a decoy hash so timing does not reveal which keys exist. Without a limit
anybody could load the server through /auth and guess secrets at full speed. So
failures are counted in a sliding window per client address and per API key; while
either is at its limit the login is refused (429) *before* any hash is computed.

- An attempt is counted as a failure when it is admitted and taken back when it
  succeeds: concurrent attempts from one address cannot all slip past the check
  before the first failure is recorded. Successes never touch other counters.
- When the limit is reached only by attempts still running (not by failures known
  as such), a new attempt is :class:`Busy`, not blocked: the caller waits for one of
  them to end and asks again. Tills sharing one API key that all log in at the same
  moment (the shop opens, a node restarts) are served one hash after another instead
  of being answered 429, and no more than the limit are ever in doubt at once.
- Answers refused with 429 are not counted (a client honouring Retry-After gets in
  again after one window; counting them would extend the block for ever).
- Memory is bounded: at most ``max_entries`` addresses and as many keys are tracked;
  the one whose latest failure is oldest is forgotten first.
- In memory, per process: every node of a cluster counts for itself.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Failures allowed per ``window`` seconds, per address and per API key (0: that
    one is not limited, e.g. every client comes through one proxy's address)."""

    per_address: int = 10
    per_key: int = 5
    window: float = 60.0
    max_entries: int = 10_000


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted attempt: its provisional failure, taken back on success."""

    address: str | None
    key: str | None
    at: float


class Blocked(Exception):
    """Over the limit: retry after ``retry_after`` whole seconds (at least 1)."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"too many failed logins ({scope})")
        self.retry_after = retry_after
        self.scope = scope


class Busy(Blocked):
    """At the limit only through attempts still running: ask again once one of them
    has ended (``succeeded`` or ``failed``); ``retry_after`` as for Blocked."""


def address_bucket(host: str | None) -> str | None:
    """The unit an address is counted in: an IPv4 address, or an IPv6 /64 (one host
    usually holds a whole /64, so counting single IPv6 addresses would count nothing).
    Anything that is no IP address (a Unix socket, a test client's name) is itself."""
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Windows:
    """Failure times per name, newest-touched last, at most ``cap`` names."""

    def __init__(self, limit: int, window: float, cap: int) -> None:
        self.limit = limit
        self.window = window
        self.cap = cap
        self.times: OrderedDict[str, deque[float]] = OrderedDict()

    def _live(self, name: str, now: float) -> deque[float] | None:
        times = self.times.get(name)
        if times is None:
            return None
        while times and (times[0] <= now - self.window or times[0] > now + self.window):
            times.popleft()  # expired (or from before the clock stepped far back)
        if not times:
            del self.times[name]
            return None
        return times

    def retry_after(self, name: str | None, now: float) -> int | None:
        """Seconds until ``name`` may fail again, or None when it may now."""
        if name is None or self.limit <= 0:
            return None
        times = self._live(name, now)
        if times is None or len(times) < self.limit:
            return None
        wait = times[len(times) - self.limit] + self.window - now
        return max(1, min(math.ceil(wait), math.ceil(self.window)))

    def add(self, name: str | None, now: float) -> None:
        if name is None or self.limit <= 0:
            return
        times = self._live(name, now)
        if times is None:
            times = self.times[name] = deque(maxlen=self.limit)
        times.append(now)
        self.times.move_to_end(name)
        while len(self.times) > self.cap:
            self.times.popitem(last=False)

    def remove(self, name: str | None, at: float) -> None:
        times = self.times.get(name) if name is not None else None
        if times is not None and at in times:
            times.remove(at)  # equal times are interchangeable: any one goes
            if not times:
                del self.times[name]  # type: ignore[arg-type]


class FailureLimiter:
    """Sliding-window failure counts per client address and per API key."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._addresses = _Windows(limits.per_address, limits.window, limits.max_entries)
        self._keys = _Windows(limits.per_key, limits.window, limits.max_entries)
        self._running: dict[tuple[str, str], int] = {}  # (scope, name) -> attempts running

    def admit(self, address: str | None, key: str | None, now: float) -> Ticket:
        """Let one attempt through (counted as a failure until ``succeeded``) or raise
        :class:`Blocked` when the address or the key is at its limit (:class:`Busy`
        when attempts still running make up the difference)."""
        for scope, windows, name in (
            ("address", self._addresses, address),
            ("key", self._keys, key),
        ):
            wait = windows.retry_after(name, now)
            if wait is not None:
                running = self._running.get((scope, name or ""), 0)
                live = windows._live(name, now) if name is not None else None
                known = (len(live) if live is not None else 0) - running
                raise (Busy if running and known < windows.limit else Blocked)(wait, scope)
        self._addresses.add(address, now)
        self._keys.add(key, now)
        for scope, name in (("address", address), ("key", key)):
            if name is not None:
                self._running[(scope, name)] = self._running.get((scope, name), 0) + 1
        return Ticket(address, key, now)

    def _ended(self, ticket: Ticket) -> None:
        for scope, name in (("address", ticket.address), ("key", ticket.key)):
            if name is None:
                continue
            left = self._running.get((scope, name), 0) - 1
            if left > 0:
                self._running[(scope, name)] = left
            else:
                self._running.pop((scope, name), None)

    def succeeded(self, ticket: Ticket) -> None:
        """The attempt logged in (or failed on our side): it is no failure."""
        self._ended(ticket)
        self._addresses.remove(ticket.address, ticket.at)
        self._keys.remove(ticket.key, ticket.at)

    def failed(self, ticket: Ticket) -> None:
        """The attempt failed (a wrong secret): its failure stays counted."""
        self._ended(ticket)

    def tracked(self) -> tuple[int, int]:
        """(addresses, keys) currently held in memory."""
        return len(self._addresses.times), len(self._keys.times)
