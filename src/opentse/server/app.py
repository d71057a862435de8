"""The Starlette application: ``create_app(installation, config)``.

Everything is built from the injected installation and config; nothing lives at module
level. Routes come from the ``OPERATIONS`` tables of the route modules, so the
router and the OpenAPI document (``/api/v2/openapi.json``) cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opentse.engine.ports import Clock
from opentse.server import (
    routes_client,
    routes_export,
    routes_ops,
    routes_tss,
    routes_tx,
    tx_index,
    upsert,
)
from opentse.server.context import Operation, ServerConfig, ServerContext, endpoint
from opentse.server.hotpath import ServerApp
from opentse.server.openapi import build_document
from opentse.server.problems import (
    ApiError,
    api_error_handler,
    http_exception_handler,
    unexpected_error_handler,
)
from opentse.server.routes_export import ExportManager
from opentse.server.schemas import COMPONENTS, list_schema

OPERATIONS: list[Operation] = [
    *routes_tss.OPERATIONS,
    *routes_client.OPERATIONS,
    *routes_tx.OPERATIONS,
    *routes_export.OPERATIONS,
]


def components() -> dict[str, Any]:
    return {
        **COMPONENTS,
        "TssList": list_schema("Tss", "TSS_LIST"),
        "ClientList": list_schema("Client", "CLIENT_LIST"),
        "TransactionList": list_schema("Transaction", "TRANSACTION_LIST"),
        "ExportList": list_schema("Export", "EXPORT_LIST"),
    }


def create_app(installation: Any, config: ServerConfig, *, clock: Clock | None = None) -> Starlette:
    """The /api/v2 application over one installation (its engine and store).

    The context's threads (the service store's index writer) run from here on: an
    error later in the start (E_TIMEZONE from the dashboard, an unwritable exports
    folder) closes it again, or a caller that handles the error (a test) goes on with
    them running (and ``opentse verify`` may not fork beside other threads)."""
    ctx = ServerContext(installation, config, clock)
    try:
        return _build(ctx, config)
    except BaseException:
        ctx.close()
        raise


def _build(ctx: ServerContext, config: ServerConfig) -> Starlette:
    ctx.exports = ExportManager(ctx, config.export_workers)
    tx_index.rebuild_index(ctx)  # index rows a crash lost (GET by number, lists)
    document = build_document(OPERATIONS, components())

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route("/api/v2/openapi.json", openapi, methods=["GET"])]  # /health: routes_ops
    by_path: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op
    # the register's hot route first: Starlette tries routes in order (regex each)
    for path, ops in sorted(by_path.items(), key=lambda item: item[0] != routes_tx.HOT_PATH):
        routes.append(Route("/api/v2" + path, _dispatch(ops), methods=list(ops)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:  # a failed resume (the first sweep) closes the context too
            ctx.exports.resume()
            yield
        finally:
            ctx.close()

    app = ServerApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
    )
    app.state.ctx = ctx
    app.hot_handler = upsert.upsert_transaction  # answered before the router (hotpath)
    if ctx.loop_signing:  # the quick path awaits the engine on the event loop
        app.hot_async = upsert.upsert_transaction_async
        app.hot_full = upsert.upsert_transaction_full
    routes_ops.install(app, ctx)  # /metrics, /health, /api/v2/ops/*
    from opentse.dashboard.routes import mount_dashboard

    mount_dashboard(app)  # /dashboard: server-rendered pages; / redirects there
    return app


def _dispatch(ops: dict[str, Operation]) -> Any:
    handlers = {
        method: endpoint(
            op.handler, body_schema=op.body_schema, auth=op.auth, body_required=op.body_required
        )
        for method, op in ops.items()
    }

    async def run(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return run
