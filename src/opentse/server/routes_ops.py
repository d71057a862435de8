"""Operations endpoints: ``GET /metrics`` (Prometheus), the anonymous ``GET /health``
(store reachable, nothing about any tenant), and the authenticated
``GET /api/v2/ops/status`` and ``GET /api/v2/ops/warnings``.

``install(app, ctx)`` adds the routes in front of the app's own and a small ASGI
middleware that counts failed API calls per TSS for the metrics. The ops endpoints
are scoped like the rest of the API: an organization sees only its own TSS.
``/metrics`` wants the operator's metrics token (``metrics_token``: every TSE) or an
API access token (that organization's TSEs).
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opentse.ops import archive, metrics, status
from opentse.ops.store import OpsContext
from opentse.server.context import authenticate
from opentse.server.health import HealthProbe
from opentse.server.hotpath import ServerApp
from opentse.server.problems import ApiError

_TSS_PATH = re.compile(r"^/api/v2/tss/([^/]+)")


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FAILURE_IDS_MAX = 4096  # (TSS id, status) pairs kept before ids of no TSS are dropped
HEALTH_PROBE_ID = "health-probe"  # no TSS has this id (they are UUIDs): the read finds nothing


class TssFailureCounter:
    """Failed API calls per (TSS id, status), the id taken from the request path.

    Anybody can type that path (a 401 needs no token), so the counter must not grow
    with whatever ids strangers send: only UUIDs are counted, and once ``limit``
    pairs are held the ids that are no TSS (``known()``) are dropped; the limit
    doubles only when the real TSSes alone fill it. Same ``add``/``snapshot`` as
    ``ops.metrics.FailureCounter``.
    """

    def __init__(self, known: Callable[[], set[str]], limit: int = FAILURE_IDS_MAX) -> None:
        self._known = known
        self._limit = limit
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, tse_id: str, status: int) -> None:
        tse_id = tse_id.lower()
        if _CANONICAL_UUID.fullmatch(tse_id) is None:
            return
        key = (tse_id, str(status))
        with self._lock:
            if key not in self._counts and len(self._counts) >= self._limit:
                known = self._known()
                self._counts = {k: v for k, v in self._counts.items() if k[0] in known}
                if tse_id not in known:
                    return
                if len(self._counts) >= self._limit:
                    self._limit *= 2
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


class FailureMiddleware:
    """Counts responses >= 400 on ``/api/v2/tss/{id}...`` per TSS and status."""

    def __init__(self, app: ASGIApp, counter: TssFailureCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = _TSS_PATH.match(scope.get("path", ""))
        if match is None:
            await self.app(scope, receive, send)
            return
        tss_id = match.group(1)

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.counter.add(tss_id, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting)


def metrics_token(ctx: Any) -> str | None:
    """``ServerConfig.extra["metrics_token"]`` or ``OPENTSE_METRICS_TOKEN``: when set,
    ``/metrics`` wants ``Authorization: Bearer <token>`` (Prometheus
    ``authorization: {credentials: ...}``)."""
    value = ctx.config.extra.get("metrics_token") or os.environ.get("OPENTSE_METRICS_TOKEN")
    return str(value) if value else None


def _bearer_matches(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return hmac.compare_digest(given.encode(), token.encode())


def _last_exports(ops: OpsContext) -> dict[str, int]:
    last: dict[str, int] = {}
    for item in archive.exports(ops):
        last[item.tse_id] = max(last.get(item.tse_id, 0), item.created_at)
    return last


def install(app: Starlette, ctx: Any) -> OpsContext:
    """Wire the ops routes and the failure counter into ``app`` (server/app.py)."""
    ops = OpsContext(ctx.installation, ctx.svc, clock=ctx.clock, owns=False, owns_svc=False)

    def known_tss() -> set[str]:
        return {tss_id for tss_id, _org in ctx.svc.all_tss()}

    limit = int(ctx.config.extra.get("failure_ids_max", FAILURE_IDS_MAX))
    counter = TssFailureCounter(known_tss, limit)

    def owned(principal_org: str) -> list[status.TSEStatus]:
        ids = set(ctx.svc.list_tss_ids(principal_org))
        return [s for s in status.all_status(ops) if s.info.record.tse_id in ids]

    token = metrics_token(ctx)

    async def metrics_endpoint(request: Request) -> Response:
        # Closed by default: TSS ids and counters are an organization's business. The
        # operator's metrics token shows every TSE; an organization's API access token
        # shows only its own; anything else is refused.
        org: str | None = None
        if token is None or not _bearer_matches(request, token):
            try:
                principal = await authenticate(ctx, request.headers.get("authorization"))
            except ApiError as exc:
                if exc.status != 401:
                    raise
                return PlainTextResponse(
                    "unauthorized: send the metrics token (OPENTSE_METRICS_TOKEN) or an API "
                    "access token as 'Authorization: Bearer ...'\n",
                    status_code=401,
                )
            org = principal.organization_id

        def build() -> str:
            if org is None:
                every = status.all_status(ops)
                ids = {st.info.record.tse_id for st in every}
                # ids of no TSS (typed by anybody) not yet dropped by the counter
                known = {k: v for k, v in counter.snapshot().items() if k[0] in ids}
                return metrics.render(every, known, _last_exports(ops))
            mine = owned(org)
            ids = {st.info.record.tse_id for st in mine}
            failures = {k: v for k, v in counter.snapshot().items() if k[0] in ids}
            exports = {k: v for k, v in _last_exports(ops).items() if k in ids}
            return metrics.render(mine, failures, exports)

        text = await run_in_threadpool(build)
        return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)

    # Anonymous and cheap (load balancers poll it every few seconds): one indexed read
    # of the engine store that finds nothing, no tenant's counts. Those are for the
    # organization itself (/api/v2/ops/status) and for /metrics.
    def check() -> None:
        ping = getattr(ctx.store, "ping", None)  # PostgreSQL: a short wait, not 30 s
        if ping is not None:
            ping(HEALTH_PROBE_ID)
        else:
            ctx.store.get_log(HEALTH_PROBE_ID, 0)

    probe = HealthProbe(check)

    async def health(request: Request) -> Response:

        failure = await probe.failure()  # in seconds, also when the store never answers
        if failure is not None:
            return JSONResponse({"status": "error", "error": failure}, status_code=503)
        return JSONResponse({"status": "ok", "time": ctx.now()})

    async def ops_status(request: Request) -> Response:
        principal = await authenticate(ctx, request.headers.get("authorization"))
        rows = await run_in_threadpool(owned, principal.organization_id)
        return JSONResponse({"data": [r.to_json() for r in rows], "count": len(rows)})

    async def ops_warnings(request: Request) -> Response:
        principal = await authenticate(ctx, request.headers.get("authorization"))
        rows = await run_in_threadpool(owned, principal.organization_id)
        data = [w.to_json() for r in rows for w in r.warnings]
        return JSONResponse({"data": data, "count": len(data)})

    async def without_slash(request: Request) -> Response:
        """redirects to the path without the slash (a path, not an absolute URL)

        The router's own redirect was an absolute URL from the Host header and the
        scheme uvicorn saw: http behind a proxy ending TLS, where a scraper would
        send the metrics token next."""
        query = request.url.query
        target = request.url.path.rstrip("/") + (f"?{query}" if query else "")
        return RedirectResponse(target, status_code=307)

    app.router.routes[0:0] = [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics/", without_slash, methods=["GET"]),
        Route("/health/", without_slash, methods=["GET"]),
        Route("/api/v2/ops/status", ops_status, methods=["GET"]),
        Route("/api/v2/ops/warnings", ops_warnings, methods=["GET"]),
    ]
    app.add_middleware(FailureMiddleware, counter=counter)
    if isinstance(app, ServerApp):
        app.failures = counter  # the hot route is answered before this middleware
    app.state.ops = ops
    return ops
