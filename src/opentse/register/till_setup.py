"""Setting a till up on a fiskaly SIGN DE v2 service, as a POS does it.

A till that signs on ``opentse serve`` (or fiskaly) needs an initialized TSS and a
registered client; the API has no one-step call for it, so this runs the requests a
POS runs (fiskaly's "TSS lifecycle" guide): create the TSS (its admin PUK is in that
answer only), UNINITIALIZED, set the admin PIN with the PUK, admin login,
INITIALIZED, create the client, admin logout. With an existing TSS only the client is
added (admin login with its PIN). The register's serial number is the key: a till
whose serial is registered already is reported and nothing is changed, so running
the set-up twice is harmless. The client UUID is derived from TSS and serial, so a
retry after a lost answer creates the same client, not a second one. With a
``pending_file`` the new TSS's PUK and PIN are written there before the TSS is
deployed (:mod:`opentse.register.setup_file`), so a set-up stopped at any later step
is finished by running it again.
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from opentse.crypto.tlspin import PinMismatch, fingerprint_hex, pinned_context
from opentse.engine.rules import check_client_id
from opentse.errors import OpenTSEError, ProtocolError
from opentse.register import setup_file
from opentse.register.remote import api_root

#: namespace of the client UUIDs derived from (TSS, serial number)
CLIENT_NAMESPACE = uuid.UUID("2b1e6c55-0c3f-4c0e-8d7a-74696c6c7365")


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What was found or made; the PUK and PIN only for a TSS made now."""

    url: str
    tss: str
    client: str
    serial_number: str
    created_tss: bool
    created_client: bool
    admin_puk: str | None = field(default=None, repr=False)
    admin_pin: str | None = field(default=None, repr=False)
    #: a set-up an earlier run began (its pending file was found) was finished
    resumed: bool = False
    #: what this run did on the service, in order (STEPS)
    steps: tuple[str, ...] = ()


#: the steps a set-up may take, as ``SetupResult.steps`` names them
STEPS = (
    "tss_created",
    "tss_deployed",
    "admin_pin_set",
    "tss_initialized",
    "client_registered",
)


class SetupIncomplete(OpenTSEError):
    """A set-up that stopped after it made a TSS (the network went away, the client
    was refused): the PUK is in no other answer, so the caller shows it and the PIN
    (attributes only, never in the message) and the TSS is not lost."""

    def __init__(
        self,
        cause: OpenTSEError,
        tss: str,
        puk: str,
        pin: str | None,
        pending_file: Path | None = None,
    ) -> None:
        if pending_file is not None:
            again = (
                f"they are kept in {pending_file} (mode 0600) until the set-up is done: run "
                "the same command again to finish (with what was refused fixed), or run it "
                f"with --tss {tss} and its --admin-pin"
            )
        elif pin:
            again = f"run again with --tss {tss} and its --admin-pin to finish"
        else:
            again = (
                f"set its admin PIN with the PUK (PATCH /api/v2/tss/{tss}/admin), then "
                f"run again with --tss {tss} and --admin-pin"
            )
        super().__init__(
            f"{cause.message}; TSS {tss} was created (its admin PUK"
            f"{' and PIN are' if pin else ' is'} printed above): {again}",
            code=cause.code,
            http_status=cause.http_status,
        )
        self.tss, self.admin_puk, self.admin_pin = tss, puk, pin
        self.pending_file = pending_file


def client_uuid_for(tss: str, serial_number: str) -> str:
    return str(uuid.uuid5(CLIENT_NAMESPACE, f"{tss}\n{serial_number}"))


def new_admin_pin() -> str:
    """Eight random digits (fiskaly and opentse ask for at least six characters)."""
    return f"{secrets.randbelow(10**8):08d}"


def _ssl(root: str, fingerprint: str | None, timeout: float) -> ssl.SSLContext | bool:
    """A context trusting only the pinned certificate, checked before the secret is
    sent (E_TLS_PIN naming the fingerprint the server has)."""
    if fingerprint is None:
        return True
    if urlsplit(root).scheme != "https":
        raise ProtocolError(
            "a TLS fingerprint needs an https:// URL", code="E_REMOTE_FINGERPRINT_HTTP"
        )
    try:
        return pinned_context(root, fingerprint, timeout)
    except PinMismatch as exc:
        raise ProtocolError(
            f"the TLS certificate of {urlsplit(root).netloc} has the SHA-256 fingerprint "
            f"{exc.got}, not {fingerprint_hex(fingerprint)}: check --fingerprint (another "
            "server answers at this address?); nothing was sent",
            code="E_TLS_PIN",
        ) from None
    except (OSError, ValueError) as exc:
        raise _unreachable(root, exc) from None


def _unreachable(root: str, exc: BaseException) -> OpenTSEError:
    return OpenTSEError(
        f"the service at {root} cannot be reached ({type(exc).__name__}: {exc}): check "
        "the URL, that 'opentse serve' runs there and that the network lets the till in",
        code="E_SETUP_UNREACHABLE",
        http_status=503,
    )


class _Api:
    """The service's /api/v2 with a token; every refusal becomes an E_ code."""

    def __init__(
        self, url: str, api_key: str, api_secret: str, fingerprint: str | None, timeout: float
    ) -> None:
        self.root = api_root(url)
        parts = urlsplit(self.root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProtocolError(
                f"the service URL {url!r} needs http:// or https:// and a host",
                code="E_REGISTER_CONFIG",
            )
        verify = _ssl(self.root, fingerprint, timeout)
        self.http = httpx.Client(base_url=self.root, timeout=timeout, verify=verify)
        try:
            self._login(api_key, api_secret)
        except BaseException:
            self.http.close()
            raise

    def close(self) -> None:
        self.http.close()

    def _login(self, api_key: str, api_secret: str) -> None:
        body = {"api_key": api_key, "api_secret": api_secret}
        response = self._send("POST", "/auth", body)
        if response.status_code in (400, 401, 403):
            raise ProtocolError(
                f"the service refused the API key {api_key!r} and its secret (HTTP "
                f"{response.status_code}): check --api-key and --api-secret (or the "
                "session file)",
                code="E_SETUP_AUTH",
            )
        token = self._json(response, "POST /auth").get("access_token")
        if response.status_code != 200 or not token:
            raise self._refused(response, "POST /auth")
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, json=body, params=params or None)
        except httpx.TransportError as exc:
            raise _unreachable(self.root, exc) from None

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise OpenTSEError(
                f"the answer to {what} at {self.root} is not JSON (HTTP "
                f"{response.status_code}): no opentse or fiskaly API at this URL?",
                code="E_SETUP_UNREACHABLE",
                http_status=503,
            ) from None
        return data if isinstance(data, dict) else {}

    def _refused(self, response: httpx.Response, what: str) -> OpenTSEError:
        body = self._json(response, what)
        code = body.get("code") or body.get("error") or f"HTTP {response.status_code}"
        return OpenTSEError(
            f"the service refused {what}: {code}: {body.get('message', '')}".rstrip(": "),
            code="E_SETUP_REFUSED",
            http_status=response.status_code,
        )

    def call(
        self, method: str, path: str, body: Any = None, *, what: str = "", **params: Any
    ) -> tuple[int, dict[str, Any]]:
        """(status, body) for 2xx and 404; any other answer is E_SETUP_REFUSED, with
        the step named by ``what`` (the body may hold a PIN: it is never echoed)."""
        response = self._send(method, path, body, **params)
        label = what or f"{method} {path}"
        if response.status_code == 404:
            return 404, {}
        if response.status_code >= 400:
            raise self._refused(response, label)
        return response.status_code, self._json(response, label)

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            status, page = self.call("GET", path, limit=100, offset=len(found), **params)
            items = (page.get("data") or []) if status == 200 else []
            found += [item for item in items if isinstance(item, dict)]
            if not items or len(found) >= int(page.get("count", len(found))):
                return found


def setup_till(
    url: str,
    api_key: str,
    api_secret: str,
    serial_number: str,
    *,
    fingerprint: str | None = None,
    tss: str | None = None,
    client: str | None = None,
    admin_pin: str | None = None,
    ask_pin: Callable[[], str] | None = None,
    timeout: float = 10.0,
    pending_file: Path | None = None,
) -> SetupResult:
    """Find the till's client by its serial number, or make what is missing.

    ``admin_pin``: for a new TSS the PIN to set (default: :func:`new_admin_pin`); for
    an existing TSS the PIN to log in with (E_SETUP_ADMIN_PIN when needed and absent
    or wrong); ``ask_pin`` asks for it, only when an existing TSS needs it.
    ``pending_file``: where a new TSS's PUK and PIN are kept until the set-up is done;
    a set-up that finds one (of this service and serial number) finishes that TSS and
    returns its PUK and PIN again. The caller deletes it (:func:`setup_file.forget`)
    once it has shown them."""
    try:
        check_client_id(serial_number)  # before anything is sent
    except ProtocolError as exc:
        raise ProtocolError(
            f"--serial {serial_number!r}: the TSE would refuse it as a client id ({exc.message})",
            code="E_CLIENT_ID_INVALID",
        ) from None
    if client is not None:
        client = _uuid(client, "--client")
    if tss is not None:
        tss = _uuid(tss, "--tss")
    api = _Api(url, api_key, api_secret, fingerprint, timeout)
    try:
        pending = _pending(api.root, serial_number, tss, pending_file)
        return _run(api, serial_number, tss, client, admin_pin, ask_pin, pending)
    finally:
        api.close()


@dataclass(slots=True)
class _Pending:
    """The pending file and what it holds for this set-up (None: nothing yet)."""

    path: Path
    found: setup_file.PendingSetup | None


def _pending(root: str, serial: str, tss: str | None, path: Path | None) -> _Pending | None:
    if path is None:
        return None
    found = setup_file.read(path)
    if found is None and setup_file.foreign(path):
        if tss is not None:
            return None  # adding a till writes no PUK: the file stays, untouched
        raise ProtocolError(
            f"{path} exists and is not a set-up file of opentse: the new TSS's PUK is "
            "kept in a file of its own, never over another; move that file, or give "
            "another --puk-file",
            code="E_SETUP_PENDING",
        )
    if found is None:
        return _Pending(path, None)
    if found.url == root and found.serial == serial and tss in (None, found.tss):
        return _Pending(path, found)
    if tss is not None:
        return None  # another TSS named on purpose: the file stays, untouched
    raise ProtocolError(
        f"{path} keeps the admin PUK of TSS {found.tss} (serial number {found.serial!r} "
        f"at {found.url}), a set-up that did not finish: finish that one (run it again "
        "with the same service and --serial), or keep its PUK safely and delete the "
        "file, or give another --puk-file",
        code="E_SETUP_PENDING",
    )


def _uuid(value: str, option: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ProtocolError(
            f"{option} {value!r} is not a UUID (fiskaly's ids are UUIDs)", code="E_SETUP_ID"
        ) from None


def _run(
    api: _Api,
    serial: str,
    tss: str | None,
    client: str | None,
    pin: str | None,
    ask_pin: Callable[[], str] | None,
    pending: _Pending | None,
) -> SetupResult:
    found = None if pending is None else pending.found
    if found is not None:
        tss = found.tss  # finish the TSS this set-up made before
    existing = _existing(api, serial, tss, client)
    if existing is not None:
        state = api.call("GET", f"/tss/{existing[0]}")[1].get("state")
        if state != "INITIALIZED":
            raise ProtocolError(
                f"client {existing[1]} ({serial}) is registered at TSS {existing[0]}, which "
                f"is {state}: a till cannot sign there",
                code="E_SETUP_TSS_STATE",
            )
        if found is not None and found.tss == existing[0]:  # done, but not yet shown
            return SetupResult(
                api.root,
                existing[0],
                existing[1],
                serial,
                True,
                False,
                found.puk,
                found.pin,
                resumed=True,
            )
        return SetupResult(api.root, existing[0], existing[1], serial, False, False)
    made: dict[str, str] = {}
    try:
        return _steps(api, serial, tss, client, pin, ask_pin, made, pending)
    except OpenTSEError as exc:
        if "puk" in made:
            found = None if pending is None else pending.found
            where = pending.path if pending and found and found.tss == made["tss"] else None
            raise SetupIncomplete(exc, made["tss"], made["puk"], made.get("pin"), where) from None
        raise


def _steps(
    api: _Api,
    serial: str,
    tss: str | None,
    client: str | None,
    pin: str | None,
    ask_pin: Callable[[], str] | None,
    made: dict[str, str],
    pending: _Pending | None,
) -> SetupResult:
    """The requests; ``made`` gets the TSS, PUK and PIN as soon as each exists, and
    the pending file both before the TSS is deployed."""
    puk = None
    found = None if pending is None else pending.found
    created_tss = tss is None or found is not None
    steps: list[str] = []
    if tss is None:
        tss = str(uuid.uuid4())
    if found is not None:  # this set-up made the TSS: its PUK, and the PIN unless given
        puk, pin = found.puk, pin or found.pin
        made["tss"], made["puk"], made["pin"] = tss, puk, pin
    status, body = api.call("GET", f"/tss/{tss}")
    if status == 404 and not created_tss:
        raise ProtocolError(
            f"the service has no TSS {tss} for this API key: check --tss (without "
            "--tss a new TSS is made)",
            code="E_SETUP_TSS_UNKNOWN",
        )
    state = "CREATED" if status == 404 else str(body.get("state"))
    if state == "CREATED":  # new, or a set-up that stopped right after creating it
        _, answer = api.call("PUT", f"/tss/{tss}", {}, what="creating the TSS")
        steps.append("tss_created")
        puk = str(answer["admin_puk"])
        pin = pin or new_admin_pin()
        made["tss"], made["puk"], made["pin"] = tss, puk, pin
        _keep(pending, api.root, tss, serial, puk, pin)  # before the service forgets it
        api.call("PATCH", f"/tss/{tss}", {"state": "UNINITIALIZED"}, what="deploying the TSS")
        steps.append("tss_deployed")
        state = "UNINITIALIZED"
        created_tss = True
    if state == "UNINITIALIZED" and puk is not None:
        assert pin is not None
        _keep(pending, api.root, tss, serial, puk, pin)  # a PIN given now replaces it
        body = {"admin_puk": puk, "new_admin_pin": pin}
        api.call("PATCH", f"/tss/{tss}/admin", body, what="setting the admin PIN")
        steps.append("admin_pin_set")
    if state not in ("UNINITIALIZED", "INITIALIZED"):
        raise ProtocolError(
            f"TSS {tss} is {state}: a till cannot be added to it", code="E_SETUP_TSS_STATE"
        )
    if not pin and ask_pin is not None:
        pin = ask_pin()
    if not pin:
        raise ProtocolError(
            f"TSS {tss} exists: give its admin PIN (--admin-pin or OPENTSE_ADMIN_PIN) to "
            "register a client",
            code="E_SETUP_ADMIN_PIN",
        )
    _admin_login(api, tss, pin)
    try:
        if state == "UNINITIALIZED":
            api.call("PATCH", f"/tss/{tss}", {"state": "INITIALIZED"}, what="initializing")
            steps.append("tss_initialized")
        client = client or client_uuid_for(tss, serial)
        body = {"serial_number": serial}
        api.call("PUT", f"/tss/{tss}/client/{client}", body, what="creating the client")
        steps.append("client_registered")
    finally:
        with contextlib.suppress(OpenTSEError):  # must not hide what went wrong
            api.call("POST", f"/tss/{tss}/admin/logout", {}, what="admin logout")
    return SetupResult(
        api.root,
        tss,
        client,
        serial,
        created_tss,
        True,
        puk,
        pin if puk else None,
        resumed=found is not None,
        steps=tuple(steps),
    )


def _keep(pending: _Pending | None, url: str, tss: str, serial: str, puk: str, pin: str) -> None:
    if pending is None:
        return
    kept = setup_file.PendingSetup(url, tss, serial, puk, pin)
    if pending.found != kept:
        setup_file.write(pending.path, kept)
        pending.found = kept


def _admin_login(api: _Api, tss: str, pin: str) -> None:
    response = api._send("POST", f"/tss/{tss}/admin/auth", {"admin_pin": pin})
    if response.status_code in (401, 403, 423):
        blocked = response.status_code == 423
        raise ProtocolError(
            f"TSS {tss} refused the admin PIN"
            + (" (blocked: unblock it with the PUK)" if blocked else ": check --admin-pin"),
            code="E_SETUP_ADMIN_PIN",
        )
    if response.status_code >= 400:
        raise api._refused(response, "the admin login")


def _existing(
    api: _Api, serial: str, tss: str | None, client: str | None
) -> tuple[str, str] | None:
    """(tss, client) of the till's registered client, None when there is none; a
    serial or client UUID held otherwise is E_SETUP_CLIENT_CONFLICT."""
    if client is not None and tss is not None:
        status, body = api.call("GET", f"/tss/{tss}/client/{client}")
        if status == 200:
            return _same(body, tss, client, serial)
    path = "/client" if tss is None else f"/tss/{tss}/client"
    if tss is not None and api.call("GET", f"/tss/{tss}")[0] == 404:
        raise ProtocolError(
            f"the service has no TSS {tss} for this API key: check --tss (without "
            "--tss a new TSS is made)",
            code="E_SETUP_TSS_UNKNOWN",
        )
    found = [c for c in api.pages(path, serial_number=serial) if c.get("serial_number") == serial]
    if client is not None:
        found = [c for c in found if c.get("_id") == client] or found
    if not found:
        return None
    if len(found) > 1:
        where = ", ".join(sorted(str(c.get("tss_id")) for c in found))
        raise ProtocolError(
            f"serial number {serial!r} is registered at several TSS ({where}): give --tss",
            code="E_SETUP_CLIENT_CONFLICT",
        )
    return _same(found[0], str(found[0].get("tss_id") or tss), client, serial)


def _same(body: dict[str, Any], tss: str, client: str | None, serial: str) -> tuple[str, str]:
    found_id, found_serial = str(body.get("_id")), str(body.get("serial_number"))
    if client is not None and found_id != client:
        raise ProtocolError(
            f"serial number {serial!r} is registered at TSS {tss} as client {found_id}, "
            f"not {client}: give --client {found_id}, or another serial number",
            code="E_SETUP_CLIENT_CONFLICT",
        )
    if found_serial != serial:
        raise ProtocolError(
            f"client {found_id} has the serial number {found_serial!r}, not {serial!r}: "
            "check --client and --serial",
            code="E_SETUP_CLIENT_CONFLICT",
        )
    if body.get("state") != "REGISTERED":
        raise ProtocolError(
            f"client {found_id} ({serial}) is {body.get('state')} at TSS {tss}: register "
            "it again (PATCH its state to REGISTERED) or choose another serial number",
            code="E_SETUP_CLIENT_CONFLICT",
        )
    return tss, found_id
