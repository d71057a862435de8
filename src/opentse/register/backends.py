"""Where the register's signatures come from: the small interface both backends share.

The register needs only four things of a TSE: is it usable, start a transaction, finish
it with processType/processData, and which of this client's transactions are still
open (after a crash). Every call carries an idempotency ``ref`` so a retried call
after a lost answer returns the stored result and never signs twice.

``EmbeddedBackend`` drives a :class:`~opentse.engine.service.TSEService` in the same
process (SQLite store). A remote backend (fiskaly-compatible HTTP) implements the same
protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from opentse.errors import OpenTSEError, ProtocolError, StateError
from opentse.register.receipt import TseSignature

if TYPE_CHECKING:
    from opentse.engine.results import SignResult
    from opentse.engine.service import TSEService


class TSEUnavailable(StateError):
    """The TSE cannot sign right now (not reachable, not initialized, client unknown)."""

    code = "E_TSE_UNAVAILABLE"
    http_status = 503


#: fiskaly TSS states whose TSS signs nothing more
OUT_OF_SERVICE = ("DISABLED", "DEFECTIVE")


class TSEReplaced(TSEUnavailable):
    """The TSE was taken out of service by a replacement (``opentse tse replace``:
    disabled, or recorded defective) and a successor took its place. Not an outage
    that passes: the till is red and the message names the successor and how to
    point the till at it; nothing is ever signed on the successor unasked."""

    code = "E_TSE_REPLACED"

    def __init__(
        self,
        tse_id: str,
        state: str,
        successor: str,
        client_id: str,
        there: bool,
        how: str = "",
    ) -> None:
        where = (
            f"client {client_id!r} is registered there"
            if there
            else f"register client {client_id!r} there first (opentse client register)"
        )
        how = how or f"pos ... --tss {successor}; {where}"
        super().__init__(
            f"TSE {tse_id} was replaced by {successor} ({tse_id} is {state} and signs "
            f"nothing more): point this till at {successor} ({how}); until then its "
            "receipts are printed 'TSE ausgefallen'"
        )
        self.successor = successor


class SuccessorAmbiguous(TSEUnavailable):
    """Two or more clients claim, in their metadata ``replaces_client``, to replace the
    till's client (an API user set the key; ``opentse tse replace`` refuses a second
    replacement). The till follows none of them: one of them signs at the wrong TSE.
    Red, as a replaced TSE: it does not pass by itself."""

    code = "E_TSE_SUCCESSOR_AMBIGUOUS"

    def __init__(self, replaced: str, serial: str, claims: list[tuple[str, str, str]]) -> None:
        """``claims``: (TSS, client UUID, client state) of each claiming client."""
        named = "; ".join(f"client {c} at TSS {t} ({state})" for t, c, state in claims)
        super().__init__(
            f"{len(claims)} clients claim to replace client {replaced} ({serial}) in their "
            f"metadata replaces_client: {named}. The till follows none of them, as one "
            "would sign at the wrong TSE: remove the key from each client that is no "
            "replacement of it (PATCH /api/v2/tss/{tss}/client/{client}/metadata with "
            '{"replaces_client": null}), '
            "then point the till at the one left (opentse pos repoint)"
        )
        self.claims = claims


class RegisterNotAccepted(ProtocolError):
    """The TSE answers, but not for this register as configured: its TSE id is unknown
    (``E_REGISTER_TSS_UNKNOWN``), its client is not registered, deregistered or has
    another serial number (``E_REGISTER_CLIENT_UNKNOWN``), or a service refuses its API
    key and secret (``E_REGISTER_AUTH``). A configuration error, not an
    outage: selling on "TSE ausgefallen" would go on all day while the TSE works."""

    code = "E_REGISTER_CLIENT_UNKNOWN"


#: what a TSE (the engine, opentse serve, fiskaly) answers for a register it does not
#: know -> the register's code for it
_NOT_ACCEPTED = {
    "E_CLIENT_NOT_FOUND": "E_REGISTER_CLIENT_UNKNOWN",
    "E_CLIENT_NOT_REGISTERED": "E_REGISTER_CLIENT_UNKNOWN",
    "E_CLIENT_DEREGISTERED": "E_REGISTER_CLIENT_UNKNOWN",
    "E_TSE_NOT_FOUND": "E_REGISTER_TSS_UNKNOWN",
    "E_TSS_NOT_FOUND": "E_REGISTER_TSS_UNKNOWN",
}


def not_accepted(exc: BaseException) -> str | None:
    """The register's code when ``exc`` says the TSE does not know this register as
    configured (:class:`RegisterNotAccepted`), else None (an outage)."""
    if isinstance(exc, RegisterNotAccepted):
        return exc.code
    code = getattr(exc, "code", None)
    return _NOT_ACCEPTED.get(code) if isinstance(code, str) else None


@dataclass(frozen=True)
class Signed:
    """A finished, signed transaction as the register needs it for the receipt."""

    tse_id: str
    transaction_number: int
    signature_counter: int
    start_time: datetime
    log_time: datetime
    signature: bytes
    public_key: bytes
    serial_number: str  # hex SHA-256 of the public key
    algorithm: str
    time_format: str
    client_id: str
    process_type: str
    process_data: str
    replayed: bool = False

    def to_tse_signature(self) -> TseSignature:
        return TseSignature(
            transaction_number=self.transaction_number,
            signature_counter=self.signature_counter,
            start_time=self.start_time,
            end_time=self.log_time,
            signature=self.signature,
            public_key=self.public_key,
            serial_number=self.serial_number,
            signature_algorithm=self.algorithm,
            time_format=self.time_format,
            client_id=self.client_id,
            process_type=self.process_type,
            process_data=self.process_data,
        )


@dataclass(frozen=True)
class Started:
    transaction_number: int
    start_time: datetime


@dataclass(frozen=True)
class TseDescription:
    """What an export needs to know of a TSE (DSFinV-K tse.csv)."""

    public_key: bytes
    certificate: bytes  # DER; empty when the TSE has none
    algorithm: str
    time_format: str


class TakenOver(StateError):
    """The transaction is open and held by another till (the client that signed it
    last: a table moved to another till), so this register must not finish it."""

    code = "E_TX_TAKEN_OVER"
    http_status = 409

    def __init__(self, number: int, holder: str) -> None:
        super().__init__(
            f"transaction {number} was taken over by till {holder!r}, which holds it now"
        )
        self.holder = holder


@dataclass(frozen=True)
class OpenTransaction:
    """A transaction the TSE still holds open for this client (the client that
    signed it last). ``start_time`` is when the TSE signed its Start and
    ``last_signed`` its latest revision (the TSE's clock; None when a service does
    not say): recovery tells an abandoned transaction from another till's live one
    by the later of the two (a table moved here is as young as its move)."""

    transaction_number: int
    process_type: str
    start_time: datetime | None = None
    last_signed: datetime | None = None


class Backend(Protocol):
    """What the Register calls; implementations raise on any failure."""

    tse_id: str

    def check(self, client_id: str) -> None:
        """Raise :class:`TSEUnavailable` unless the TSE can sign for ``client_id``."""

    def start(self, client_id: str, process_type: str, *, ref: str) -> Started: ...

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed: ...

    def open_transactions(self, client_id: str) -> list[OpenTransaction]: ...

    def started_number(self, client_id: str, ref: str) -> int | None:
        """The number of the transaction a Start with idempotency ``ref`` began, or
        None if that Start never reached the TSE (a lookup: nothing is signed)."""

    def holder(self, client_id: str, number: int, ref: str) -> str | None:
        """The client id of another till holding transaction ``number`` open now (it
        signed it last: taken over), else None (this register's, finished or
        unknown). ``ref``: the receipt ref the transaction was started with, if any."""

    def finished_transaction(self, number: int) -> tuple[str, datetime] | None:
        """(processType, TSE start time) of the finished transaction ``number`` of
        this TSE, signed by any client (an order at another till), else None."""

    def serial_number(self) -> str: ...

    def describe(self) -> TseDescription: ...


#: the organization every opentse CA names (crypto/ca.py): the issuer of its TSEs'
#: certificates, on the embedded TSE and on opentse serve's TSS resource
OPENTSE_CA_ORGANIZATION = "opentse"


def issued_by_opentse(certificate: bytes) -> bool:
    """Whether a TSE certificate (DER) was issued by an opentse CA: that TSE is not
    BSI-certified, whatever the till is configured to say, so its receipts carry the
    notice (receipt.NOT_CERTIFIED_TEXT). False for none or one that does not parse."""
    if not certificate:
        return False
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        issuer = x509.load_der_x509_certificate(certificate).issuer
    except ValueError:
        return False
    names = issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(n.value == OPENTSE_CA_ORGANIZATION for n in names)


def never_certified(backend: object) -> bool:
    """Whether ``backend`` is an opentse TSE by its kind (the embedded one)."""
    return bool(getattr(backend, "never_certified", False))


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def signed_from_result(result: SignResult, *, errors: str = "strict") -> Signed:
    """Convert the engine's SignResult (unix seconds, bytes) to :class:`Signed`.
    ``errors``: how processData that is not UTF-8 is decoded (``"replace"`` to show
    any TSE's data; a register only signs text it made)."""
    return Signed(
        tse_id=result.tse_id,
        transaction_number=result.transaction_number,
        signature_counter=result.signature_counter,
        start_time=_utc(result.start_time),
        log_time=_utc(result.log_time),
        signature=result.signature,
        public_key=result.public_key_point,
        serial_number=result.serial_number.hex(),
        algorithm=result.algorithm,
        time_format=result.time_format,
        client_id=result.client_id,
        process_type=result.process_type,
        process_data=result.process_data.decode("utf-8", errors),
        replayed=result.replayed,
    )


class EmbeddedBackend:
    """The TSE in this process: a TSEService and the id of one of its TSEs."""

    #: an opentse TSE is never BSI-certified: its receipts always say so
    never_certified = True

    def __init__(
        self,
        service: TSEService,
        tse_id: str,
        *,
        successor: Callable[[], str | None] | None = None,
    ) -> None:
        self.service = service
        self.tse_id = tse_id
        #: the TSE that replaced this one, asked only once it is out of service (the
        #: installation's site records: ``ops_tses.replaced_by``)
        self.successor = successor

    def _replaced(self, client_id: str, state: str) -> None:
        """Raise TSEReplaced when this TSE is out of service and a successor is known."""
        if state not in ("DISABLED", "DEFECTIVE") or self.successor is None:
            return
        try:
            new = self.successor()
        except Exception:  # no site records to ask: the plain outage
            return
        if not new:
            return
        try:
            known = self.service.get(new).state.clients.get(client_id)
        except OpenTSEError:
            known = None
        there = known is not None and known.registered
        raise TSEReplaced(self.tse_id, state, new, client_id, there)

    def check(self, client_id: str) -> None:
        try:
            info = self.service.get(self.tse_id)
        except OpenTSEError as exc:
            if not_accepted(exc):
                raise RegisterNotAccepted(
                    f"there is no TSE {self.tse_id!r} in this data folder: check --tss "
                    "(opentse tse list shows the TSEs)",
                    code="E_REGISTER_TSS_UNKNOWN",
                ) from None
            raise TSEUnavailable(f"TSE {self.tse_id} not usable: {exc.code}") from exc
        if info.state.lifecycle.value != "INITIALIZED":
            self._replaced(client_id, info.state.lifecycle.value)
            raise TSEUnavailable(f"TSE {self.tse_id} is {info.state.lifecycle.value}")
        client = info.state.clients.get(client_id)
        if client is None or not client.registered:
            what = "is not registered" if client is None else "is deregistered"
            raise RegisterNotAccepted(
                f"the register (client id {client_id!r}) {what} at TSE {self.tse_id}: "
                f"check --client, or register it (opentse client register {client_id} "
                f"--tss {self.tse_id})"
            )

    def start(self, client_id: str, process_type: str, *, ref: str) -> Started:
        try:
            result = self.service.start_transaction(
                self.tse_id, client_id, b"", process_type, ref=ref
            )
        except OpenTSEError as exc:
            state = {"E_TSS_DISABLED": "DISABLED", "E_TSS_DEFECTIVE": "DEFECTIVE"}
            if exc.code in state:
                self._replaced(client_id, state[exc.code])
            raise
        return Started(result.transaction_number, _utc(result.log_time))

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        result = self.service.finish_transaction(
            self.tse_id, client_id, number, process_data.encode("utf-8"), process_type, ref=ref
        )
        return signed_from_result(result)

    def open_transactions(self, client_id: str) -> list[OpenTransaction]:
        state = self.service.get(self.tse_id).state
        return [
            OpenTransaction(number, tx.process_type, _utc(tx.started_at), _utc(tx.last_signed_at))
            for number, tx in sorted(state.open_transactions.items())
            if tx.client_id == client_id
        ]

    def holder(self, client_id: str, number: int, ref: str) -> str | None:
        tx = self.service.get(self.tse_id).state.open_transactions.get(number)
        return None if tx is None or tx.client_id == client_id else tx.client_id

    def finished_transaction(self, number: int) -> tuple[str, datetime] | None:
        from opentse.engine.ports import LogFilter
        from opentse.tr03151.codec import decode_log_message

        only = LogFilter(start_transaction_number=number, end_transaction_number=number)
        started: int | None = None
        process_type: str | None = None
        for log in self.service.logs(self.tse_id, only):
            if log.transaction_number != number:
                continue
            if log.operation == "StartTransaction":
                started = log.log_time
            elif log.operation == "FinishTransaction":
                certified = decode_log_message(log.message).certified
                process_type = str(getattr(certified, "process_type", ""))
        if started is None or process_type is None:
            return None
        return process_type, _utc(started)

    def started_number(self, client_id: str, ref: str) -> int | None:
        found = self.service.find_ref(self.tse_id, ref)
        if found is None or found.client_id != client_id:
            return None
        return found.transaction_number

    def serial_number(self) -> str:
        return self.service.get(self.tse_id).record.serial_number.hex()

    def describe(self) -> TseDescription:
        record = self.service.get(self.tse_id).record
        chain = record.certificate_chain
        return TseDescription(
            record.public_key_point,
            chain[0] if chain else b"",
            record.signature_algorithm,
            record.time_format,
        )
