"""Everything a request handler needs, built once per app from injected config.

No module-level mutable state (architecture habit 8): ``create_app`` builds one
``ServerContext`` and hands it to every route through ``app.state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opentse.engine.ports import AsyncLockedStore, Clock
from opentse.errors import OpenTSEError
from opentse.server.auth import KEY_RECHECK_SECONDS, Principal, TokenService, derive_key
from opentse.server.auth_limit import FailureLimiter, Limits
from opentse.server.coercion import coerce_metadata
from opentse.server.problems import ApiError, StorageFailureLog, from_opentse_error
from opentse.server.qrtext import QRText
from opentse.server.schemas import COMPONENTS
from opentse.server.service_store import Page, ServiceStore
from opentse.server.validation import validate

API_VERSION = "2.1.35"  # the fiskaly SIGN DE contract version these routes implement
MAX_BODY = 1024 * 1024  # fiskaly: "The size limit of request bodies is 1 MB" -> 413
STOP_WAIT = 2.0  # seconds a stopping server waits for handler threads still running


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    env: str = "TEST"
    access_ttl: int = 86400
    refresh_ttl: int = 172800
    max_body: int = MAX_BODY
    max_running_exports: int = 10  # fiskaly v2.1.30: 10 PENDING/WORKING per TSS
    export_workers: int = 2
    retry_after_export: int = 5
    # several nodes on one database: the node working on an export holds a lease of
    # export_lease seconds, renewed every export_renew seconds; others take the
    # export over only after it ran out (routes_export.ExportManager)
    export_lease: float = 30.0
    export_renew: float = 5.0
    # seconds between re-reads of an API key's state (a disabled key's tokens stop
    # within them; auth.KEY_RECHECK_SECONDS; OPENTSE_KEY_RECHECK_SECONDS for serve)
    key_recheck: int = KEY_RECHECK_SECONDS
    # threads running blocking handlers: each waits on the engine's group commit, so
    # enough of them lets every concurrent request join the same commit (anyio's
    # default limiter of 40 would hold the rest back for a whole commit round)
    handler_threads: int = 128
    # upsertTransaction's quick path awaits the engine on the event loop where the
    # stores allow it (ServerContext.loop_signing); False: always a handler thread
    loop_signing: bool = True
    # POST /auth: failed logins allowed per auth_failure_window seconds per client
    # address (IPv6: per /64) and per API key, then 429 without a hash (auth_limit);
    # counted in memory on each node for itself
    auth_failures_per_address: int = 10
    auth_failures_per_key: int = 5
    auth_failure_window: int = 60
    auth_limiter_entries: int = 10_000  # addresses and keys tracked (oldest forgotten)
    extra: dict[str, Any] = field(default_factory=dict)  # settings of add-on routes (ops)


class ServerContext:
    """The installation's engine and stores plus the service's own tables."""

    def __init__(self, installation: Any, config: ServerConfig, clock: Clock | None = None) -> None:
        self.installation = installation
        # absolute: paths recorded from it (export files) must not depend on the
        # working directory of the process that wrote them
        config = dataclasses.replace(config, data_dir=Path(config.data_dir).expanduser().absolute())
        self.config = config
        self.service = installation.service
        self.store = installation.store
        self.clock: Clock = clock or installation.service.clock
        from opentse.storage.pg_service import open_service_store

        self.svc = open_service_store(installation, config.data_dir)
        self.tokens = TokenService(
            self.svc,
            installation.secret,
            access_ttl=config.access_ttl,
            refresh_ttl=config.refresh_ttl,
            key_recheck=config.key_recheck,
        )
        self.auth_limiter = FailureLimiter(
            Limits(
                per_address=config.auth_failures_per_address,
                per_key=config.auth_failures_per_key,
                window=config.auth_failure_window,
                max_entries=config.auth_limiter_entries,
            )
        )
        # handlers run on several threads; a login that is Busy waits on it (auth_limit)
        self.auth_limiter_lock = threading.Condition()
        self.puk_key = derive_key(installation.secret, "opentse/server/puk-seal/v1")
        self.exports: Any = None  # set by create_app (ExportManager)
        self.executor = HandlerPool(config.handler_threads)
        # The register's hot route awaits the engine on the event loop when the
        # engine store answers the loop itself and the index reads are local
        # (embedded SQLite); PostgreSQL's network reads stay off the loop.
        self.loop_signing = config.loop_signing and (
            isinstance(self.store, AsyncLockedStore) and type(self.svc) is ServiceStore
        )
        self.qr = QRText()  # qr_code_data of Finish responses
        # set by the export heartbeat while the database has migrations this code does
        # not know: writes are refused (503 E_SCHEMA_NEWER, storage/nodes.py)
        self.stale_schema: str | None = None
        # 503s for a database away or its disk full: a few lines
        # (an SQLite file is named: its disk is this machine's)
        where = (
            str(db_path_of(installation, config.data_dir)) if type(self.svc) is ServiceStore else ""
        )
        self.storage_failures = StorageFailureLog(where=where)

    def now(self) -> int:
        return self.clock.now()

    def close(self) -> None:
        """Stop in seconds also while the database does not answer: its waits are cut
        short first (``stopping``), handler threads still waiting for it are left (they
        are daemons; closing the stores' pools wakes them with an error)."""
        self.svc.stopping()
        if self.exports is not None:
            self.exports.shutdown()
        self.executor.shutdown(timeout=STOP_WAIT)
        self.svc.close()


class HandlerPool:
    """Threads for the blocking handlers, resolving asyncio futures directly.

    ``loop.run_in_executor`` chains a concurrent.futures.Future to an asyncio one
    (two futures, a lock, two callbacks per request); here the worker hands the result
    to the loop with one ``call_soon_threadsafe``. Threads start on demand up to
    ``size`` and stay; ``shutdown`` stops them after the queued work is done.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"opentse-handler-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._idle -= 1  # claimed by this item until a worker takes the next one
        return await future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, fn, args = item
            try:
                result, error = fn(*args), None
            except BaseException as exc:
                result, error = None, exc
            with self._lock:
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future, result, error)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the threads after the queued work; wait at most ``timeout`` seconds
        for all of them together."""
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def db_path_of(installation: Any, data_dir: Path) -> Path:
    """The SQLite file of the engine store (service tables live beside its tables)."""
    for holder in (installation.store, installation):
        for attr in ("db_path", "path", "database", "_path"):
            value = getattr(holder, attr, None)
            if isinstance(value, (str, Path)):
                return Path(value)
    return Path(data_dir) / "opentse.sqlite3"


# request plumbing ---------------------------------------------------------------------


@dataclass
class Call:
    """One parsed, authenticated request as a handler sees it."""

    ctx: ServerContext
    principal: Principal | None
    path: dict[str, str]
    query: Mapping[str, str]
    query_multi: list[tuple[str, str]]
    body: Any
    client: str | None = None  # the peer's address (ASGI scope; proxy headers ignored)


def peer_address(scope: Mapping[str, Any]) -> str | None:
    """The client's address as the ASGI server saw the connection (proxy headers are
    not read: opentse serve runs uvicorn with proxy_headers=False)."""
    peer = scope.get("client")
    return str(peer[0]) if peer else None


Handler = Callable[[Call], "tuple[int, Any] | Response"]


def _not_json(name: str) -> Any:
    """``json.loads`` takes NaN, Infinity and -Infinity, which are no JSON (RFC 8259,
    section 6): a body holding one is refused as invalid JSON, not half-read."""
    raise ValueError(f"{name} is not JSON")


# made once: json.loads(raw, parse_constant=...) builds a decoder per call (~3 us)
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def loads_body(raw: bytes) -> Any:
    """A request body as ``json.loads`` reads bytes (UTF-8/16/32 detected), without
    NaN and the Infinities; raises ValueError / UnicodeDecodeError."""
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def schema_newer(message: str) -> ApiError:
    """A write at a node older than its database (``ServerContext.stale_schema``): the
    API's, the dashboard's (an export form) and the export workers' alike."""
    return ApiError(503, "E_SCHEMA_NEWER", message, {"Retry-After": "10"})


def refuse_if_stale(ctx: ServerContext) -> None:
    """503 E_SCHEMA_NEWER while this node's code is older than its database."""
    if ctx.stale_schema is not None:
        raise schema_newer(ctx.stale_schema)


def endpoint(
    handler: Handler,
    *,
    body_schema: str | None = None,
    auth: bool = True,
    body_required: bool = False,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a blocking handler: size limit, JSON parsing, schema, auth, threadpool."""

    async def run(request: Request) -> Response:
        ctx: ServerContext = request.app.state.ctx
        raw = b""
        if request.method in ("PUT", "PATCH", "POST"):
            raw = await read_limited(request, ctx.config.max_body)
        principal = None
        if auth:  # before looking at the body: strangers learn nothing about the schema
            principal = await authenticate(ctx, request.headers.get("authorization"))
        # writes stop at a node older than its database; a route without auth writes
        # nothing (POST /auth reads the key and signs a token: no row, nothing durable)
        if ctx.stale_schema is not None and auth and request.method != "GET":
            raise schema_newer(ctx.stale_schema)
        body: Any = None
        if request.method in ("PUT", "PATCH", "POST"):
            if raw.strip():
                try:
                    body = loads_body(raw)
                    if b"\\u" in raw:  # an escaped lone surrogate cannot be stored or shown
                        orjson.dumps(body)
                except (ValueError, UnicodeDecodeError, RecursionError, orjson.JSONEncodeError):
                    raise ApiError(
                        400, "E_FAILED_SCHEMA_VALIDATION", "body is not valid JSON"
                    ) from None
            elif body_required:
                raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "body is required")
            if body_schema is not None:
                coerce_metadata(body, body_schema)  # fiskaly keeps 123 as "123"
                validate({} if body is None else body, {"$ref": f"#/{body_schema}"}, COMPONENTS)
        # fiskaly 2.0.50: leading question marks of a malformed query are ignored
        query = QueryParams(request.scope["query_string"].lstrip(b"?"))
        call = Call(
            ctx,
            principal,
            dict(request.path_params),
            query,
            list(query.multi_items()),
            body,
            peer_address(request.scope),
        )
        result = await ctx.executor.run(_invoke, handler, call)
        if isinstance(result, Response):
            return result
        status, payload = result
        return FastJSONResponse(payload, status_code=status)

    return run


class FastJSONResponse(JSONResponse):
    """Same bytes as Starlette's compact UTF-8 JSON, encoded by orjson (~5x faster)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def authenticate(ctx: ServerContext, authorization: str | None) -> Principal:
    """The caller's principal (401 otherwise). The token is verified on the event loop;
    whether its API key is still active is read from the store on a handler thread
    (every few seconds per key): a database that is away must not hold the event loop
    (every request, /health too) for the pool's wait, and answers 503, not 500."""
    now = ctx.now()
    principal, due = ctx.tokens.verify(authorization, now)
    if due:
        await ctx.executor.run(_check_key, ctx, principal, now)
    return principal


def _check_key(ctx: ServerContext, principal: Principal, now: int) -> None:
    try:
        ctx.tokens.check_key(principal, now)
    except OpenTSEError as exc:
        raise from_opentse_error(exc, ctx.storage_failures) from None


def _invoke(handler: Handler, call: Call) -> tuple[int, Any] | Response:
    try:
        return handler(call)
    except OpenTSEError as exc:
        raise from_opentse_error(exc, call.ctx.storage_failures) from None


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "E_REQUEST_TOO_LARGE", "request body exceeds 1 MB")
        except ValueError:
            raise ApiError(400, "E_BAD_REQUEST", "bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "E_REQUEST_TOO_LARGE", "request body exceeds 1 MB")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Operation:
    """One route: the OpenAPI document and the router are both built from these."""

    method: str
    path: str  # below /api/v2, Starlette syntax: /tss/{tss_id}
    operation_id: str  # fiskaly's operationId
    handler: Handler
    summary: str
    tag: str
    body_schema: str | None = None
    body_required: bool = False
    response: str | None = None  # component name of the 200 body
    response_media: str = "application/json"
    errors: tuple[int, ...] = (400, 401, 404)
    query: tuple[tuple[str, dict[str, Any]], ...] = ()
    auth: bool = True


# small parsers shared by the routes -----------------------------------------------------


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_uuid(value: str, what: str, where: str = "params") -> str:
    """fiskaly v2.0.4: received UUIDs are converted to lower case. ``where``: the part
    of the request the message names (``params`` for the path, ``body``)."""
    if _CANONICAL_UUID.fullmatch(value) is not None:
        return value  # already what uuid.UUID would print
    try:
        return str(uuid.UUID(value)).lower() if len(value) == 36 else _bad_uuid(what, where)
    except ValueError:
        return _bad_uuid(what, where)


def _bad_uuid(what: str, where: str) -> str:
    raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", f"{where}/{what} must be a UUID")


def parse_int(q: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = q.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(
            400, "E_FAILED_SCHEMA_VALIDATION", f"querystring/{name} must be an integer"
        ) from None
    if not lo <= number <= hi:
        raise ApiError(
            400, "E_FAILED_SCHEMA_VALIDATION", f"querystring/{name} must be in {lo}..{hi}"
        )
    return number


def parse_page(call: Call, order_fields: tuple[str, ...]) -> Page:
    q = call.query
    limit = parse_int(q, "limit", 100, 1, 100)
    offset = parse_int(q, "offset", 0, 0, 2**53 - 1)
    order_by = q.get("order_by")
    if order_by is not None and order_by not in order_fields:
        raise ApiError(
            400,
            "E_FAILED_SCHEMA_VALIDATION",
            f"querystring/order_by must be one of {', '.join(order_fields)}",
        )
    order = q.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "querystring/order must be asc or desc")
    # every list takes fiskaly's boolean show_deleted (no TSS is DELETED here, so it
    # changes nothing), but a value that is no boolean is refused as fiskaly does
    if q.get("show_deleted", "") not in ("", "true", "false"):
        raise ApiError(
            400, "E_FAILED_SCHEMA_VALIDATION", "querystring/show_deleted must be true or false"
        )
    assert limit is not None and offset is not None
    return Page(limit, offset, order_by, order)


def parse_states(call: Call, allowed: list[str]) -> list[str]:
    """``states``, ``states[]`` and ``states[0]`` (fiskaly: ``states%5B0%5D=...``)."""
    values = [
        v
        for k, v in call.query_multi
        if k == "states" or (k.startswith("states[") and k.endswith("]"))
    ]
    for v in values:
        if v not in allowed:
            raise ApiError(
                400,
                "E_FAILED_SCHEMA_VALIDATION",
                f"querystring/states must be one of {', '.join(allowed)}",
            )
    return values


def envelope(call: Call, type_name: str, data: list[Any], count: int) -> dict[str, Any]:
    return {
        "data": data,
        "count": count,
        "_type": type_name,
        "_env": call.principal.env if call.principal else call.ctx.config.env,
        "_version": API_VERSION,
    }


def merge_metadata(old: Mapping[str, str], new: Mapping[str, str | None] | None) -> dict[str, str]:
    """fiskaly: new metadata is merged into the existing; at most 40 keys. A key
    sent as null is removed (a value is a string, so null cannot be kept; fiskaly's
    Postman collection sets metadata "to Null/Empty String"); "" is kept as sent."""
    merged = dict(old)
    for key, value in (new or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 40:
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "metadata may hold at most 40 keys")
    if any(len(k) > 40 for k in merged):
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", "metadata keys are at most 40 characters")
    return merged
