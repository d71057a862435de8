"""Cross-origin calls to the API from a POS that runs in a browser (CORS).

fiskaly SIGN DE v2 answers browsers from any origin, and POS software relies on it:
Odoo's German point of sale (``l10n_de_pos_cert``) signs each order from the till's
browser page with ``$.ajax`` (a JSON body and an ``Authorization: Bearer`` header), so
the browser sends a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) before every call and shows the page no answer
without ``Access-Control-Allow-Origin``: not even the status of a 401 it would log in
again on (Fetch standard, "CORS protocol").

Every origin is allowed, without credentials: the API takes bearer tokens only, never
a cookie, so a foreign page gains nothing a script outside a browser could not do
(``Access-Control-Allow-Credentials`` is never sent, and a browser sends no cookie to
``*``). Only paths under ``/api/`` take part; the dashboard, whose login is a session
cookie, stays same-origin. A request without ``Origin`` is answered as before.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import Message, Send

API = "/api/"
ORIGIN = b"origin"
REQUEST_METHOD = b"access-control-request-method"
REQUEST_HEADERS = b"access-control-request-headers"
REQUEST_PRIVATE = b"access-control-request-private-network"

METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
# always allowed; the preflight's own list is echoed besides (a till library may add
# a header of its own), when it is a plain list of header names
HEADERS = b"authorization, content-type, request-id"
EXPOSED = b"request-id, retry-after, content-disposition"
MAX_AGE = b"600"  # seconds a browser may keep a preflight's answer
_NAMES = re.compile(
    rb"[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+([ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*[ \t]*"
)

ANSWER: list[tuple[bytes, bytes]] = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", EXPOSED),
]


def origin_of(path: str, headers: Any) -> bytes | None:
    """The request's ``Origin`` when it is an API call from a browser page, else None."""
    if not path.startswith(API):
        return None
    for name, value in headers:
        if name == ORIGIN:
            return bytes(value)
    return None


def preflight(headers: Any) -> list[tuple[bytes, bytes]] | None:
    """The headers of the answer (204) to a preflight, or None when the ``OPTIONS``
    request is none (no ``Access-Control-Request-Method``: it is answered as before)."""
    method = asked = None
    private = False
    for name, value in headers:
        if name == REQUEST_METHOD:
            method = value
        elif name == REQUEST_HEADERS:
            asked = value
        elif name == REQUEST_PRIVATE:
            private = value.lower() == b"true"
    if method is None:
        return None
    allowed = HEADERS
    if asked and len(asked) <= 1024 and _NAMES.fullmatch(asked):
        allowed += b", " + asked.strip().lower()
    answer = [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", METHODS),
        (b"access-control-allow-headers", allowed),
        (b"access-control-max-age", MAX_AGE),
        (b"vary", b"Access-Control-Request-Headers"),
    ]
    if private:  # Chromium's Private Network Access preflight: opentse is on a LAN
        answer.append((b"access-control-allow-private-network", b"true"))
    return answer


def allowing(send: Send) -> Send:
    """``send`` with the CORS headers added to the response's start."""

    async def allowed(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *ANSWER]}
        await send(message)

    return allowed
