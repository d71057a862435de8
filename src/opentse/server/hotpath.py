"""The register's hot route, served before Starlette's middleware and router.

A receipt is two ``PUT /api/v2/tss/{tss_id}/tx/{tx_id}`` calls (upsertTransaction);
through Starlette's stack (error middleware, failure counter, exception middleware,
router regexes, ``Request``, ``QueryParams``, ``JSONResponse``) each paid more Python
time than its own handler. ``ServerApp.__call__`` recognises exactly that method and
path shape and runs the same steps as ``context.endpoint`` directly on the ASGI
messages: body size limit (413), bearer token (401), JSON (400), schema (400), the
handler in the handler pool, an orjson body. Errors are the same fiskaly problem
bodies (``problems.problem_response``) and are counted for ``/metrics`` like the
``FailureMiddleware`` counts them. Every other request goes through Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from opentse.errors import OpenTSEError
from opentse.server import cors
from opentse.server.coercion import coerce_metadata
from opentse.server.context import (
    Call,
    ServerContext,
    _invoke,
    authenticate,
    loads_body,
    schema_newer,
)
from opentse.server.problems import ApiError, from_opentse_error, problem_response
from opentse.server.schemas import COMPONENTS
from opentse.server.validation import validate

log = logging.getLogger("opentse.server")

PREFIX = "/api/v2/tss/"
API = "/api/"  # below it every path is an API route: no trailing slash redirect
_JSON_HEADERS = b"application/json"
_SCHEMA_REF = {"$ref": "#/TxRequest"}

# fiskaly "Request IDs": every answer names its request in the ``request-id`` header,
# the id the register sent there (it generates one, fiskaly's text says) or, without
# one, ours: a per-process random prefix and a counter, unique across nodes and
# restarts without a random draw per request. Problem bodies stay fiskaly's four
# fields (its error schemas have no request id). Only visible ASCII is echoed, so
# nothing a client sends can split or bend a header line.
REQUEST_ID = b"request-id"
SCOPE_KEY = "opentse.request_id"  # where handlers and error logs read it
_ECHOED = re.compile(rb"[!-~]{1,128}")
_PREFIX = os.urandom(8).hex()
_NUMBERS = itertools.count(1)


def request_id(headers: Any) -> bytes:
    """The request's ``request-id``: the client's when it sent a usable one, else a
    new one."""
    for name, value in headers:
        if name == REQUEST_ID:
            if _ECHOED.fullmatch(value):
                return bytes(value)
            break
    return f"{_PREFIX}-{next(_NUMBERS):x}".encode()


# Every answer says its Content-Type is meant (no MIME sniffing): a browser that
# opened a JSON problem body or an export TAR could otherwise read it as HTML
NOSNIFF = (b"x-content-type-options", b"nosniff")


def _naming_request(send: Send, rid: bytes) -> Send:
    """``send`` with the ``request-id`` header, and ``X-Content-Type-Options: nosniff``
    where the answer has none (the dashboard's pages set theirs), added to the
    response's start."""

    async def named(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (REQUEST_ID, rid)]
            if not any(name == NOSNIFF[0] for name, _ in headers):
                headers.append(NOSNIFF)
            message = {**message, "headers": headers}
        await send(message)

    return named


class Disconnected(Exception):
    """The client went away before its body was complete: nothing to answer."""


def hot_route(scope: Scope) -> tuple[str, str] | None:
    """``(tss_id, tx_id_or_number)`` of ``PUT /api/v2/tss/{a}/tx/{b}``, else None.

    Same segments Starlette's ``{name}`` convertor matches (non-empty, no ``/``) on
    the decoded path, so every request this takes, the router would have given to
    upsertTransaction too.
    """
    if scope["method"] != "PUT":
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX) or scope.get("root_path"):
        return None
    parts = path[len(PREFIX) :].split("/")
    if len(parts) != 3 or parts[1] != "tx" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


class ServerApp(Starlette):
    """The Starlette application with upsertTransaction answered in front of it."""

    hot_handler: Any = None  # upsert.upsert_transaction, set by create_app
    # upsert.upsert_transaction_async / _full, set by create_app when the engine
    # store answers the event loop itself (ServerContext.loop_signing)
    hot_async: Any = None
    hot_full: Any = None
    failures: Any = None  # ops metrics.FailureCounter, set by routes_ops.install

    def build_middleware_stack(self) -> ASGIApp:
        # a client gone before its body was complete (it closed, or the read timeout
        # of server/protocol.py cut it off): nothing to answer; it was logged as an
        # unhandled error with two tracebacks
        self.exception_handlers.setdefault(ClientDisconnect, _client_gone)
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        scope[SCOPE_KEY] = rid
        if cors.origin_of(scope["path"], scope["headers"]) is not None:  # a browser page
            if scope["method"] == "OPTIONS" and await _preflight(scope, send, rid):
                return
            send = cors.allowing(send)
        named = _naming_request(send, rid)
        try:
            if self.hot_handler is not None:
                ids = hot_route(scope)
                if ids is not None:
                    await self._upsert(scope, receive, send, named, ids[0], ids[1], rid)
                    return
            path: str = scope["path"]
            if path[-1:] == "/" and path.startswith(API):
                await self._trailing_slash(scope, receive, named, path)
                return
            await super().__call__(scope, receive, named)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when SIGTERM's grace is over (a request
            # waiting for a database that is away): a 503 to retry elsewhere or later,
            # where the answer has not begun, instead of a dropped connection and a
            # traceback in the log
            response = problem_response(
                503, "E_SERVER_STOPPING", "the server is stopping; retry", {"Retry-After": "1"}
            )
            with contextlib.suppress(Exception):
                await response(scope, receive, named)

    async def _trailing_slash(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """``/api/v2/tss/`` and the like: 404 in fiskaly's shape, naming the path
        without the slash when that one exists. Starlette's router redirected (307) to
        an absolute URL built from the Host header and the scheme uvicorn saw: plain
        http behind a proxy that ends TLS, a body-less answer a POS does not follow for
        a PUT (httpx, fetch with redirect "manual") and cannot read as a problem."""
        bare = path.rstrip("/")
        probe = {**scope, "path": bare}
        known = bare and any(
            route.matches(probe)[0] is not Match.NONE for route in self.router.routes
        )
        message = f"no API route {path}" + (
            f"; API paths have no trailing slash: {bare}" if known else ""
        )
        response = problem_response(404, "E_NOT_FOUND", message)
        await response(scope, receive, send)

    async def _upsert(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        named: Send,
        tss: str,
        tx: str,
        rid: bytes,
    ) -> None:
        """The hot route; its answer carries ``request-id`` itself, problems go
        through ``named`` (``send`` with the header added)."""
        ctx: ServerContext = self.state.ctx
        try:
            status, payload = await self._run(ctx, scope, receive, tss, tx)
        except Disconnected:
            return
        except ApiError as exc:
            await self._problem(scope, receive, named, tss, exc)
            return
        except Exception:  # as ServerErrorMiddleware: a fiskaly 500 that names nothing
            log.exception(
                "unhandled error on %s %s (request-id %s)",
                scope["method"],
                scope["path"],
                rid.decode("ascii"),
            )
            response = problem_response(500, "E_INTERNAL", "internal error")
            await response(scope, receive, named)  # not counted, as before (outside it)
            return
        body = orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", _JSON_HEADERS),
                    (REQUEST_ID, rid),
                    NOSNIFF,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        if status >= 400 and self.failures is not None:
            self.failures.add(tss, status)

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, tss: str, exc: ApiError
    ) -> None:
        response = problem_response(exc.status, exc.code, exc.message, exc.headers)
        await response(scope, receive, send)
        if self.failures is not None:
            self.failures.add(tss, exc.status)

    async def _run(
        self, ctx: ServerContext, scope: Scope, receive: Receive, tss: str, tx: str
    ) -> tuple[int, Any]:
        """What ``context.endpoint`` does, in the same order (413, 401, 400, handler)."""
        authorization: str | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value
        limit = ctx.config.max_body
        if declared is not None:
            try:
                if int(declared.decode("latin-1")) > limit:
                    raise ApiError(413, "E_REQUEST_TOO_LARGE", "request body exceeds 1 MB")
            except ValueError:
                raise ApiError(400, "E_BAD_REQUEST", "bad Content-Length") from None
        raw = await _read_body(receive, limit)
        principal = await authenticate(ctx, authorization)
        if ctx.stale_schema is not None:
            raise schema_newer(ctx.stale_schema)
        if not raw.strip():
            raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "body is required")
        body = _parse_json(raw)
        coerce_metadata(body, "TxRequest")  # fiskaly keeps 123 as "123"
        validate({} if body is None else body, _SCHEMA_REF, COMPONENTS)
        query, multi = _query(scope["query_string"])
        call = Call(ctx, principal, {"tss_id": tss, "tx_id_or_number": tx}, query, multi, body)
        handler = self.hot_handler
        if self.hot_async is not None:
            try:
                answer = await self.hot_async(call)
            except OpenTSEError as exc:
                raise from_opentse_error(exc, ctx.storage_failures) from None
            if answer is not None:
                return answer  # type: ignore[no-any-return]
            handler = self.hot_full  # the quick path could not decide
        result = await ctx.executor.run(_invoke, handler, call)
        if not isinstance(result, tuple):  # the handler answers JSON only
            raise TypeError("upsertTransaction returned a Response")
        return result


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The answer to a request whose client went away: uvicorn drops it."""
    return problem_response(400, "E_BAD_REQUEST", "the client closed before its body ended")


async def _preflight(scope: Scope, send: Send, rid: bytes) -> bool:
    """Answer a browser's CORS preflight (204, ``cors.preflight``); False when the
    ``OPTIONS`` request is none, for the router to answer as before (405)."""
    headers = cors.preflight(scope["headers"])
    if headers is None:
        return False
    headers += [(b"content-length", b"0"), (REQUEST_ID, rid), NOSNIFF]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    return True


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "E_REQUEST_TOO_LARGE", "request body exceeds 1 MB")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    """``loads_body`` exactly as ``endpoint`` does it (orjson would be faster, but it
    reads integers beyond 64 bits as floats, and telling those apart costs more than
    the stdlib parser saves here)."""
    try:
        body = loads_body(raw)
        if b"\\u" in raw:  # an escaped lone surrogate cannot be stored or shown
            orjson.dumps(body)
    except (ValueError, UnicodeDecodeError, RecursionError, orjson.JSONEncodeError):
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "body is not valid JSON") from None
    return body


def _query(raw: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Starlette's QueryParams for the usual ``tx_revision=N`` without building one
    (leading question marks ignored, as fiskaly 2.0.50 does and ``context`` does)."""
    raw = raw.lstrip(b"?")
    if raw.startswith(b"tx_revision=") and raw[12:].isdigit():
        value = raw[12:].decode("ascii")
        return {"tx_revision": value}, [("tx_revision", value)]
    from starlette.datastructures import QueryParams

    params = QueryParams(raw)
    return dict(params), list(params.multi_items())
