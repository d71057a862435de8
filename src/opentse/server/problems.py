"""fiskaly-style error bodies: ``{"status_code", "error", "code", "message"}``.

fiskaly SIGN DE v2, "Errors and Status Codes": 4xx bodies carry a stable ``code``
(``E_...``) a client can branch on; 5xx are temporary and may be retried. Every error
the server returns goes through :func:`problem_response`; a catch-all maps anything
unexpected to a 500 body that names no internals (tests assert it never happens).
"""

from __future__ import annotations

import logging
import threading
import time
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opentse.errors import OpenTSEError, StorageError

log = logging.getLogger("opentse.server")


class ApiError(Exception):
    """An error with the HTTP status and fiskaly code it is answered with."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"status_code": status, "error": reason(status), "code": code, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


# Engine codes whose fiskaly name differs; (status, fiskaly code).
_ENGINE_TO_FISKALY: dict[str, tuple[int, str]] = {
    "E_TSE_NOT_FOUND": (404, "E_TSS_NOT_FOUND"),
    "E_TSE_NOT_INITIALIZED": (400, "E_TSS_NOT_INITIALIZED"),
    "E_NOT_INITIALIZED": (400, "E_TSS_NOT_INITIALIZED"),
    "E_TSE_DISABLED": (400, "E_TSS_DISABLED"),
    "E_DISABLED": (400, "E_TSS_DISABLED"),
    "E_SE_DISABLED": (400, "E_TSS_DISABLED"),
    "E_TSE_DEFECTIVE": (423, "E_TSS_DEFECTIVE"),
    "E_TSS_DEFECTIVE": (423, "E_TSS_DEFECTIVE"),  # engine.rules.check_allowed's code
    "E_PIN_BLOCKED": (423, "E_ADMIN_PIN_BLOCKED"),
    "E_ADMIN_PIN_BLOCKED": (423, "E_ADMIN_PIN_BLOCKED"),
    "E_CLIENT_LIMIT": (403, "E_CLIENT_LIMIT_REACHED"),
    "E_CLIENT_LIMIT_REACHED": (403, "E_CLIENT_LIMIT_REACHED"),
    "E_TX_LIMIT": (400, "E_TX_LIMIT_REACHED"),
    "E_TOO_MANY_TRANSACTIONS": (400, "E_TX_LIMIT_REACHED"),
    "E_TX_LIMIT_REACHED": (400, "E_TX_LIMIT_REACHED"),
    "E_CLIENT_NOT_REGISTERED": (400, "E_CLIENT_DEREGISTERED"),
    "E_CLIENT_DEREGISTERED": (400, "E_CLIENT_DEREGISTERED"),
    "E_NOT_AUTHENTICATED": (401, "E_UNAUTHORIZED"),
    "E_ADMIN_NOT_AUTHENTICATED": (401, "E_UNAUTHORIZED"),
    "E_PIN_INVALID": (401, "E_UNAUTHORIZED"),
    "E_PUK_INVALID": (400, "E_CHANGE_ADMIN_PIN_FAILED"),
    "E_PIN_INVALID_FORMAT": (400, "E_FAILED_SCHEMA_VALIDATION"),
    "E_TX_NOT_FOUND": (400, "E_TX_UPSERT"),
    "E_TIME_NOT_SET": (503, "E_TSS_LOCKED"),
}


# storage errors a request can retry: the answer to the POS and its Retry-After
_RETRY_LATER = {
    "E_STORAGE_UNAVAILABLE": ("the database is not available right now; retry", "1"),
    "E_STORAGE_BUSY": ("the database is not available right now; retry", "1"),
    # a disk does not empty itself in a second; nothing was signed or stored
    "E_STORAGE_FULL": (
        "the TSE's data disk is full or cannot be written; nothing was signed; "
        "retry once space is freed",
        "10",
    ),
    # the file system turned read-only under a running server (remounted after disk
    # errors, permissions changed): nothing was signed
    "E_STORAGE_READONLY": (
        "the TSE's data disk is full or cannot be written; nothing was signed; "
        "retry once it can be written again",
        "10",
    ),
}


class StorageFailureLog:
    """Requests answered 503 because the database is away or busy: the first one is
    logged at once, the others counted and summed up at most once per ``every``
    seconds, so an outage under a shop's registers is a few lines, not one per
    request."""

    def __init__(self, every: float = 60.0, where: str = "") -> None:
        self._every = every
        self._where = where  # the database a full disk is named by (its file)
        self._lock = threading.Lock()
        self._last: float | None = None
        self._unlogged = 0

    def add(self, exc: OpenTSEError) -> None:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._every:
                self._unlogged += 1
                return
            more, self._unlogged, self._last = self._unlogged, 0, now
        if exc.code in ("E_STORAGE_FULL", "E_STORAGE_READONLY"):
            what = "the data disk is full or cannot be written"
            if self._where:
                what += f" ({self._where})"
        else:
            what = "the database is not available"
        log.warning(
            "API requests answered 503, %s: %s: %s%s",
            what,
            exc.code,
            exc.message,
            f" ({more} more since the last such line)" if more else "",
        )


def from_opentse_error(exc: OpenTSEError, failures: StorageFailureLog | None = None) -> ApiError:
    """Map an engine/store error onto the fiskaly status and code (``failures``: where
    a database that is away is logged; else a line per request)."""
    mapped = _ENGINE_TO_FISKALY.get(exc.code)
    if mapped is not None:
        return ApiError(mapped[0], mapped[1], exc.message)
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    if isinstance(exc, StorageError) and exc.code in _RETRY_LATER:
        # the database is away or busy, or its disk full: retry (at any node, or once
        # space is freed); its details stay in the log
        if failures is not None:
            failures.add(exc)
        else:
            log.warning("storage error %s: %s", exc.code, exc.message)
        message, seconds = _RETRY_LATER[exc.code]
        return ApiError(503, exc.code, message, {"Retry-After": seconds})
    if status >= 500 and exc.code not in ("E_STORAGE",):
        log.error("engine error %s: %s", exc.code, exc.message)
        return ApiError(500, "E_INTERNAL", "internal error")
    headers = {"Retry-After": "1"} if status == 503 else None
    return ApiError(status, exc.code, exc.message, headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(exc.status, exc.code, exc.message, exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Catch-all: never leak internals, always a fiskaly-shaped 500 body. The log line
    names the request's ``request-id`` (the header the answer carries), so a shop that
    reports it leads to the traceback."""
    rid = request.scope.get("opentse.request_id", b"-")
    log.exception(
        "unhandled error on %s %s (request-id %s)",
        request.method,
        request.url.path,
        rid.decode("ascii"),
    )
    return problem_response(500, "E_INTERNAL", "internal error")


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in fiskaly shape. On the
    API the message names the route and, for 405, the methods it takes: a POS
    developer read only 'Not Found' or 'Method Not Allowed'."""
    status = int(getattr(exc, "status_code", 500))
    code = {404: "E_NOT_FOUND", 405: "E_METHOD_NOT_ALLOWED"}.get(status, "E_HTTP")
    headers = getattr(exc, "headers", None)
    message = str(getattr(exc, "detail", reason(status)))
    path = request.url.path
    if path.startswith("/api/"):
        if status == 404:
            message = f"no API route {path}"
        elif status == 405 and headers and headers.get("Allow"):
            allowed = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
            message = f"{request.method} is not allowed on {path}; it takes {allowed}"
    return problem_response(status, code, message, headers)
