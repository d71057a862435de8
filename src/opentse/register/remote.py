"""The remote backend: any fiskaly SIGN DE v2-compatible service (opentse serve, fiskaly).

* Authentication: ``POST /api/v2/auth`` with API key and secret; the access token is
  renewed with the refresh token shortly before it expires, and once more on a 401.
* Retries: transport errors, 429 and 5xx are retried with exponential backoff
  (``Retry-After`` honoured). Retrying is safe because every call names its revision:
  fiskaly's upsertTransaction is idempotent ("you can send the same request several
  times safely ... only one transaction will be started"), so a retry after a lost
  answer returns the stored signature instead of signing twice.
* TLS: a LAN TSE (``opentse serve --lan``) has a self-signed certificate; with
  ``fingerprint`` (its SHA-256, as ``serve --lan`` prints it) the certificate is fetched
  before the first request and trusted only if it has that fingerprint, so the API
  secret is never sent to another server.
* Transaction ids are UUIDv5 of the register's receipt ref, so even a restarted
  register asks for the same transaction again rather than starting a new one.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from opentse.crypto.tlspin import PinMismatch, pinned_context
from opentse.errors import OpenTSEError, ProtocolError
from opentse.formats import processdata as pd
from opentse.register.backends import (
    OUT_OF_SERVICE,
    OpenTransaction,
    RegisterNotAccepted,
    Signed,
    Started,
    TakenOver,
    TseDescription,
    TSEReplaced,
    TSEUnavailable,
    issued_by_opentse,
    not_accepted,
)

#: Namespace of the transaction ids this register derives from its receipt refs.
TX_NAMESPACE = uuid.UUID("6f0e6a34-5d7e-4d55-9a1d-6f70656e7473")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RemoteError(OpenTSEError):
    """The service answered with an error body (``code`` as the service sent it)."""


def _utc(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def api_root(base_url: str) -> str:
    """The service's ``/api/v2`` root, whether the URL names it (as ``opentse serve``,
    the connection file of ``tse move`` and LAN-TSE-Session.txt print it) or not."""
    root = base_url.rstrip("/")
    return root if root.endswith("/api/v2") else root + "/api/v2"


def tx_id_for(ref: str) -> str:
    """The transaction UUID of a receipt ref (``<ref>:start`` and ``<ref>:finish`` agree)."""
    base = ref.rsplit(":", 1)[0] if ref.endswith((":start", ":finish")) else ref
    return str(uuid.uuid5(TX_NAMESPACE, base))


def signed_from_body(body: dict[str, Any]) -> Signed:
    """A finished transaction response -> :class:`Signed`."""
    raw = (body.get("schema") or {}).get("raw") or {}
    return Signed(
        tse_id=str(body["tss_id"]),
        transaction_number=int(body["number"]),
        signature_counter=int(body["signature"]["counter"]),
        start_time=_utc(body["time_start"]),
        log_time=_utc(body["log"]["timestamp"]),
        signature=base64.b64decode(body["signature"]["value"]),
        public_key=base64.b64decode(body["signature"]["public_key"]),
        serial_number=str(body["tss_serial_number"]),
        algorithm=str(body["signature"]["algorithm"]),
        time_format=str(body["log"]["timestamp_format"]),
        client_id=str(body["client_serial_number"]),
        process_type=str(raw.get("process_type", "")),
        process_data=base64.b64decode(raw.get("process_data", "")).decode("utf-8"),
    )


def _certificate(body: dict[str, Any]) -> bytes:
    """The TSS resource's certificate as DER (base64 DER or PEM, as services differ)."""
    cert_text = str(body.get("certificate") or "")
    if cert_text.startswith("-----BEGIN"):
        return x509.load_pem_x509_certificate(cert_text.encode()).public_bytes(
            serialization.Encoding.DER
        )
    return base64.b64decode(cert_text) if cert_text else b""


PAGE = 100  # fiskaly's largest page (lists: limit 1..100)


class RemoteBackend:
    """One TSS and one client of a fiskaly-compatible service."""

    #: set once the TSS names an opentse CA's certificate (opentse serve): never
    #: BSI-certified, its receipts say so (backends.never_certified)
    never_certified = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        tss_id: str,
        client_uuid: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        fingerprint: str | None = None,
    ) -> None:
        self.tse_id = tss_id
        self.client_uuid = client_uuid
        self._credentials = {"api_key": api_key, "api_secret": api_secret}
        self._retries = self._configured_retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._root = api_root(base_url)
        parts = urlsplit(self._root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # else every sale was printed "TSE ausgefallen" (httpx: missing protocol)
            raise ProtocolError(
                f"the service URL {base_url!r} needs http:// or https:// and a host",
                code="E_REGISTER_CONFIG",
            )
        if fingerprint is not None and urlsplit(self._root).scheme != "https":
            raise ProtocolError(
                "a TLS fingerprint needs an https:// URL", code="E_REMOTE_FINGERPRINT_HTTP"
            )
        self._timeout = timeout
        self._transport = transport
        self._fingerprint = fingerprint
        self._client: httpx.Client | None = None
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0
        self.requests = 0  # HTTP requests sent (for tests and diagnostics)

    #: the longest processData a request can carry: base64 (4/3) in a JSON body under
    #: the service's 1 MB limit (fiskaly, opentse serve: 413 beyond it)
    max_process_data = (1024 * 1024 - 1024) // 4 * 3

    def set_single_attempt(self, on: bool) -> None:
        """Try each call once, no retries (the register does so while in an outage)."""
        self._retries = 0 if on else self._configured_retries

    def __repr__(self) -> str:  # never show the secret
        return f"RemoteBackend({self._root!r}, tss={self.tse_id})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, made at the first request: with a fingerprint only once the
        server's certificate has it (pinned_context)."""
        if self._client is None:
            verify: ssl.SSLContext | bool = True
            if self._fingerprint is not None:
                try:
                    verify = pinned_context(self._root, self._fingerprint, self._timeout)
                except PinMismatch as exc:  # before the secret is sent
                    parts = urlsplit(self._root)
                    raise TSEUnavailable(
                        f"the TLS certificate of {parts.hostname}:{parts.port or 443} has "
                        f"the SHA-256 fingerprint {exc.got}, not the one configured"
                    ) from None
                except OSError as exc:  # not reachable: retried like any transport error
                    raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
            self._client = httpx.Client(
                base_url=self._root, timeout=self._timeout, transport=self._transport, verify=verify
            )
        return self._client

    # --- HTTP plumbing ---------------------------------------------------------------

    def _login(self) -> None:
        body: dict[str, str] = (
            {"refresh_token": self._refresh} if self._refresh else self._credentials
        )
        response = self._send("POST", "/auth", json=body, auth=False)
        if response.status_code == 401 and "refresh_token" in body:
            response = self._send("POST", "/auth", json=self._credentials, auth=False)
        if response.status_code in (401, 403):
            # the key or secret is wrong or revoked: no outage, the till is set up wrong
            raise RegisterNotAccepted(
                f"the service refused the API key {self._credentials['api_key']!r} and its "
                f"secret (HTTP {response.status_code}): check --api-key and --api-secret",
                code="E_REGISTER_AUTH",
            )
        data = self._check(response)
        self._access = str(data["access_token"])
        self._refresh = str(data.get("refresh_token") or "") or None
        lifetime = float(data.get("access_token_expires_in", 300))
        self._renew_at = time.monotonic() + max(lifetime - 30, lifetime / 2)

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        auth: bool = True,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access}"} if auth else {}
        self.requests += 1
        return self._http.request(method, path, json=json, params=params, headers=headers)

    @staticmethod
    def _check(response: httpx.Response) -> dict[str, Any]:
        if response.status_code < 400:
            data = response.json()
            return data if isinstance(data, dict) else {"data": data}
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = str(body.get("code") or f"E_HTTP_{response.status_code}")
        message = str(body.get("message") or response.reason_phrase)
        raise RemoteError(message, code=code, http_status=response.status_code)

    def _request(
        self, method: str, path: str, *, json: Any = None, params: Any = None
    ) -> dict[str, Any]:
        """One API call with token handling and retries; raises RemoteError or
        TSEUnavailable (after the retries are spent).

        The call keeps the retries it began with, and starts no attempt once
        ``timeout`` seconds have passed since it began: the register's deadline
        (``pos`` gives both one ``--timeout``), after which it has booked the sale
        without the TSE and its call goes on in a thread nobody waits for. Such a
        call in an outage retried three more times (single_attempts had ended
        meanwhile), asking a hung service four times a sale."""
        reauthenticated = False
        last: str = ""
        attempt = 0
        retries, began = self._retries, time.monotonic()
        while attempt <= retries:
            if attempt and time.monotonic() - began >= self._timeout:
                break
            try:
                if self._access is None or time.monotonic() >= self._renew_at:
                    self._login()
                response = self._send(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._pause(attempt, None, retries)
                attempt += 1
                continue
            except RemoteError as exc:  # the login itself failed
                if exc.http_status not in RETRY_STATUSES:
                    raise
                last = f"HTTP {exc.http_status}"
                self._pause(attempt, None, retries)
                attempt += 1
                continue
            if response.status_code == 401 and not reauthenticated:
                self._access, reauthenticated = None, True
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                self._pause(attempt, response.headers.get("Retry-After"), retries)
                attempt += 1
                continue
            return self._check(response)
        raise TSEUnavailable(f"TSE service not reachable ({last})")

    def _pause(self, attempt: int, retry_after: str | None, retries: int) -> None:
        if attempt >= retries:
            return
        delay = self._backoff * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        self._sleep(delay)

    # --- Backend protocol ----------------------------------------------------------------

    def check(self, client_id: str) -> None:
        try:
            tss = self._request("GET", f"/tss/{self.tse_id}")
        except RemoteError as exc:
            if exc.http_status == 404:
                raise RegisterNotAccepted(
                    f"the service has no TSS {self.tse_id} for this API key: check --tss",
                    code="E_REGISTER_TSS_UNKNOWN",
                ) from None
            raise TSEUnavailable(f"TSS not usable: {exc.code}") from exc
        if tss.get("state") in OUT_OF_SERVICE:  # signs nothing more
            self._replaced(str(tss.get("state")), client_id)
            raise TSEUnavailable(
                f"TSS {self.tse_id} is {tss.get('state')}: if it was replaced (opentse tse "
                "replace), point the till at its successor: opentse pos repoint --session "
                "TILL_FILE (a till file of pos setup), or the --tss and --client tse replace "
                "printed"
            )
        if tss.get("state") != "INITIALIZED":
            raise TSEUnavailable(f"TSS {self.tse_id} is {tss.get('state')}")
        client = self._client_resource()
        if client.get("state") != "REGISTERED":
            raise RegisterNotAccepted(
                f"the register's client {self.client_uuid} is {client.get('state')} at "
                f"TSS {self.tse_id}: check --client, or register it again"
            )
        if client.get("serial_number") != client_id:
            if client_id == self.client_uuid:  # its serial was not known yet: ask again
                raise TSEUnavailable(f"the serial number of client {client_id} is not known")
            raise RegisterNotAccepted(
                f"client {self.client_uuid} has serial number {client.get('serial_number')!r},"
                f" not {client_id!r}: check --client"
            )

    def _replaced(self, state: str, client_id: str) -> None:
        """Raise TSEReplaced when the service records a client that replaces this
        till's (tse replace of a TSS served over the API); a lookup that fails leaves
        the plain outage."""
        from opentse.register.till_repoint import last_replacement

        try:
            own = self._client_resource()
            clients = self._all_clients(str(own.get("serial_number")))
        except Exception:
            return
        new = last_replacement(own, clients)
        if new is own or new.get("state") != "REGISTERED":
            return
        tss, uuid = str(new.get("tss_id")), str(new.get("_id"))
        how = f"opentse pos repoint --session TILL_FILE, or --tss {tss} --client {uuid}"
        raise TSEReplaced(self.tse_id, state, tss, client_id, True, how)

    def _all_clients(self, serial: str) -> list[dict[str, Any]]:
        """Every client of this API key with ``serial``, page by page (fiskaly's
        listClients: limit, offset, count). One page of 100 missed a successor once
        a serial number had more clients than that (tills replaced again and again,
        or the same serial at many TSSs), and the till stayed on its out-of-service TSE."""
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            page = self._request(
                "GET",
                "/client",
                params={"serial_number": serial, "limit": PAGE, "offset": len(found)},
            )
            items = [c for c in page.get("data") or [] if isinstance(c, dict)]
            ids = {str(c.get("_id", "")) for c in items}
            if ids and ids <= seen:  # a service that ignores offset: the same page again
                return found
            seen |= ids
            found += items
            # a short page is the last one, whether a service's count is the total or
            # the page's own (the next page is asked for only after a full one)
            if len(items) < PAGE:
                return found

    def _client_resource(self) -> dict[str, Any]:
        """The client's resource; 404 is :class:`RegisterNotAccepted` (a configuration
        error: the service is there but does not know the register)."""
        try:
            return self._request("GET", f"/tss/{self.tse_id}/client/{self.client_uuid}")
        except RemoteError as exc:
            if exc.http_status == 404 and not_accepted(exc) == "E_REGISTER_TSS_UNKNOWN":
                raise RegisterNotAccepted(
                    f"the service has no TSS {self.tse_id} for this API key: check --tss",
                    code="E_REGISTER_TSS_UNKNOWN",
                ) from None
            if exc.http_status == 404:
                raise RegisterNotAccepted(
                    f"TSS {self.tse_id} has no client {self.client_uuid}: check --client "
                    "(and --tss; after a TSE replacement the client UUID is a new one)"
                ) from None
            raise TSEUnavailable(f"client not usable: {exc.code}") from exc

    def client_serial(self) -> str:
        """The register serial number the service holds for this client."""
        return str(self._client_resource()["serial_number"])

    def _tss(self) -> dict[str, Any]:
        """The TSS resource; its certificate tells an opentse TSE (never_certified)."""
        body = self._request("GET", f"/tss/{self.tse_id}")
        with contextlib.suppress(ValueError, TypeError):  # a certificate not read: no sign
            if issued_by_opentse(_certificate(body)):
                self.never_certified = True
        return body

    def serial_number(self) -> str:
        return str(self._tss()["serial_number"])

    def describe(self) -> TseDescription:
        """Public key, certificate (base64 DER or PEM, as services differ), algorithm
        and time format from the TSS resource."""
        body = self._tss()
        cert = _certificate(body)
        return TseDescription(
            base64.b64decode(body["public_key"]),
            cert,
            str(body.get("signature_algorithm", "ecdsa-plain-SHA256")),
            str(body.get("signature_timestamp_format", "unixTime")),
        )

    def _upsert(self, tx: str, revision: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._request(
            "PUT",
            f"/tss/{self.tse_id}/tx/{tx}",
            params={"tx_revision": revision},
            json={"client_id": self.client_uuid, **body},
        )

    def start(self, client_id: str, process_type: str, *, ref: str) -> Started:
        raw = {"process_type": process_type, "process_data": ""}
        try:
            body = self._upsert(tx_id_for(ref), 1, {"state": "ACTIVE", "schema": {"raw": raw}})
        except RemoteError as exc:
            state = {"E_TSS_DISABLED": "DISABLED", "E_TSS_DEFECTIVE": "DEFECTIVE"}
            if exc.code in state:  # the journal names the successor, as check does
                self._replaced(state[exc.code], client_id)
            raise
        return Started(int(body["number"]), _utc(body["time_start"]))

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        data = base64.b64encode(process_data.encode("utf-8")).decode("ascii")
        request = {
            "state": "FINISHED",
            "schema": {"raw": {"process_type": process_type, "process_data": data}},
        }
        abort = (process_type, process_data) == (pd.PROCESS_TYPE_KASSENBELEG, pd.ABORTED_RECEIPT)
        if ref.endswith(":finish"):
            tx = tx_id_for(ref)
            try:
                return signed_from_body(self._own(self._finish_as(tx, 2, request, abort)))
            except RemoteError as exc:
                if exc.http_status != 409:
                    raise
                # revision 2 was signed with another request: recovery's abort after
                # the sale's own Finish was signed (a service that refuses a changed
                # revision, E_TX_REVISION_CONFLICT, rather than answering what was
                # signed), or another till's revision
                return signed_from_body(self._own(self._signed_finish(tx, exc)))
        # a transaction found open on reconnect: finish the revision after its latest
        current = self._request("GET", f"/tss/{self.tse_id}/tx/{number}")
        if current.get("state") != "ACTIVE":
            return signed_from_body(current)
        revision = int(current["latest_revision"]) + 1
        return signed_from_body(self._finish_as(str(current["_id"]), revision, request, abort))

    def _finish_as(
        self, tx: str, revision: int, request: dict[str, Any], abort: bool
    ) -> dict[str, Any]:
        """The Finish, or for recovery's abort of a transaction started with another
        process type (an order, Bestellung-V1) the CANCELLED revision: fiskaly refuses
        a Finish that changes the type (409 E_TX_ILLEGAL_TYPE_CHANGE), so the abort was
        refused at every reconnect and the order stayed open. A CANCELLED revision
        without schema is signed as the same aborted receipt (fiskaly's cancellation)."""
        try:
            return self._upsert(tx, revision, request)
        except RemoteError as exc:
            if not (abort and exc.http_status == 409 and exc.code == "E_TX_ILLEGAL_TYPE_CHANGE"):
                raise
        return self._upsert(tx, revision, {"state": "CANCELLED"})

    def _signed_finish(self, tx: str, refused: RemoteError) -> dict[str, Any]:
        """The transaction's latest revision when it is a Finish (``refused`` raised
        when it is not: the conflict was about something else)."""
        body = self._request("GET", f"/tss/{self.tse_id}/tx/{tx}")
        signer = body.get("client_id")
        if body.get("state") in ("FINISHED", "CANCELLED") or (
            signer and signer != self.client_uuid
        ):
            return body
        raise refused

    def _own(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` if this register signed it: a revision 2 another till signed (it
        took the transaction over, fiskaly's revisions are idempotent) is answered
        with that till's revision, which is not this register's Finish."""
        signer = body.get("client_id")
        if signer and signer != self.client_uuid:
            holder = str(body.get("client_serial_number") or signer)
            raise TakenOver(int(body.get("number", 0)), holder)
        return body

    def _transaction(self, tx: str | int) -> dict[str, Any] | None:
        """The transaction by its id or number; None when the service has none (404)."""
        try:
            return self._request("GET", f"/tss/{self.tse_id}/tx/{tx}")
        except RemoteError as exc:
            if exc.http_status == 404:
                return None
            raise

    def holder(self, client_id: str, number: int, ref: str) -> str | None:
        body = self._transaction(tx_id_for(ref) if ref else number)
        if body is None:
            return None
        signer = body.get("client_id")
        if body.get("state") != "ACTIVE" or not signer or signer == self.client_uuid:
            return None
        return str(body.get("client_serial_number") or signer)

    def finished_transaction(self, number: int) -> tuple[str, datetime] | None:
        body = self._transaction(number)
        if body is None or body.get("state") != "FINISHED" or body.get("time_start") is None:
            return None
        raw = (body.get("schema") or {}).get("raw") or {}
        return str(raw.get("process_type", "")), _utc(body["time_start"])

    def started_number(self, client_id: str, ref: str) -> int | None:
        """The transaction id is derived from the ref, so the service finds it even
        if this register never got the Start's answer; 404: the Start never arrived."""
        body = self._transaction(tx_id_for(ref))
        return None if body is None else int(body["number"])

    def open_transactions(self, client_id: str) -> list[OpenTransaction]:
        found: list[OpenTransaction] = []
        offset = 0
        while True:
            page = self._request(
                "GET",
                f"/tss/{self.tse_id}/client/{self.client_uuid}/tx",
                params={"states": "ACTIVE", "limit": 100, "offset": offset},
            )
            items = page.get("data") or []
            for item in items:
                raw = (item.get("schema") or {}).get("raw") or {}
                started = item.get("time_start")
                signed = (item.get("log") or {}).get("timestamp")
                found.append(
                    OpenTransaction(
                        int(item["number"]),
                        str(raw.get("process_type", "")),
                        None if started is None else _utc(started),
                        None if signed is None else _utc(signed),
                    )
                )
            offset += len(items)
            if not items or offset >= int(page.get("count", offset)):
                return sorted(found, key=lambda t: t.transaction_number)
