"""Transactions (TR-03151 1.0.1 SE API start/update/finishTransaction), pure.

startTransaction numbers from ``transaction_counter + 1``; all checks run before
numbering, so a refused start consumes no number; a start whose log was stored keeps
its number even if ErrorCertificateExpired is raised afterwards. A transaction is
open from Start until Finish (``TX_TRANSITIONS``); update/finish of an unknown or
finished one is ErrorNoTransaction (``E_TX_NOT_FOUND``). Another registered client
may update or finish it (a table moved to another till: certified TSEs accept it,
e.g. the fiskaly export 685e1812 in the vendor data, where transaction 31 is finished
by another client than started it); its log names that client, which holds the
transaction from then on (deregistering counts it, recovery lists it), and an unknown
or deregistered one is refused as at start. Limits: fiskaly's 2000 open
transactions (``E_TX_LIMIT_REACHED``), the codec's processData size, processType a
PrintableString of at most 100 characters.
"""

from __future__ import annotations

from opentse.engine import rules
from opentse.engine.results import SignResult
from opentse.engine.signing import (
    Outcome,
    TSEContext,
    evolve,
    expiry_error,
    next_log_time,
    sign_log,
)
from opentse.engine.state import ClientState, Lifecycle, OpenTransaction, TSEState
from opentse.errors import NotFoundError, ProtocolError, StateError
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import FINISH, START, UPDATE, TransactionLogData

Op = rules.Op

# Transaction states: None (not started / finished) -> ACTIVE -> FINISHED.
ACTIVE = "ACTIVE"
FINISHED = "FINISHED"
TX_TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, START): ACTIVE,
    (ACTIVE, UPDATE): ACTIVE,
    (ACTIVE, FINISH): FINISHED,
}

MAX_PROCESS_DATA: int = int(getattr(codec, "MAX_PROCESS_DATA", rules.DEFAULT_MAX_PROCESS_DATA))


def can_sign(state: TSEState, op: Op) -> None:
    if state.time_set and state.lifecycle is Lifecycle.INITIALIZED:
        return  # the hot path: enum hashing in the table lookup costs microseconds
    rules.check_can_sign(op, state.lifecycle)
    if not state.time_set:
        raise rules.time_not_set()


def registered_client(state: TSEState, client_id: str) -> ClientState:
    client = state.clients.get(client_id)
    if client is None:
        raise NotFoundError(f"client {client_id!r} is not registered", code="E_CLIENT_NOT_FOUND")
    if not client.registered:
        raise StateError(f"client {client_id!r} is deregistered", code="E_CLIENT_DEREGISTERED")
    return client


def _check_tx_input(client_id: str, process_data: bytes, process_type: str) -> None:
    rules.check_client_id(client_id)
    rules.check_process_type(process_type)
    rules.check_process_data(process_data, MAX_PROCESS_DATA)


def _sign_tx(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    operation: str,
    number: int,
    start_time: int | None,
    client_id: str,
    process_data: bytes,
    process_type: str,
    ref: str | None,
    extra: dict[str, object] | None,
) -> tuple[int, int, SignResult, tuple[object, ...]]:
    counter = state.signature_counter + 1
    log_time = next_log_time(now, state.last_log_time)
    certified = TransactionLogData(operation, client_id, bytes(process_data), process_type, number)
    signed = sign_log(ctx, counter, log_time, certified, ref=ref, extra=extra)
    rec = ctx.record
    result = SignResult(
        tse_id=rec.tse_id,
        operation=operation,
        transaction_number=number,
        signature_counter=counter,
        signature=signed.signature,
        log_time=log_time,
        start_time=log_time if start_time is None else start_time,
        time_format=rec.time_format,
        serial_number=rec.serial_number,
        public_key_point=rec.public_key_point,
        algorithm=rec.signature_algorithm,
        client_id=client_id,
        process_type=process_type,
        process_data=bytes(process_data),
        filename=signed.log.filename,
        ref=ref,
    )
    return counter, log_time, result, (signed.log,)


def start_transaction(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    client_id: str,
    process_data: bytes,
    process_type: str,
    *,
    ref: str | None = None,
    extra: dict[str, object] | None = None,
) -> Outcome[SignResult]:
    """startTransaction(clientId, processData, processType) -> transactionNumber ..."""
    _check_tx_input(client_id, process_data, process_type)
    can_sign(state, Op.START)
    registered_client(state, client_id)
    if len(state.open_transactions) >= state.max_open_transactions:
        raise ProtocolError(
            f"{len(state.open_transactions)} transactions are open, the maximum",
            code="E_TX_LIMIT_REACHED",
        )
    number = state.transaction_counter + 1
    counter, log_time, result, logs = _sign_tx(
        ctx, state, now, START, number, None, client_id, process_data, process_type, ref, extra
    )
    open_txs = dict(state.open_transactions)
    open_txs[number] = OpenTransaction(number, client_id, log_time, log_time, process_type)
    state = evolve(
        state,
        signature_counter=counter,
        last_log_time=log_time,
        transaction_counter=number,
        open_transactions=open_txs,
    )
    return Outcome(state, logs, result, expiry_error(ctx, log_time))  # type: ignore[arg-type]


def _open_tx(state: TSEState, client_id: str, number: int) -> OpenTransaction:
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ProtocolError("transaction number must be a positive integer", code="E_TX_NUMBER")
    tx = state.open_transactions.get(number)
    if tx is None:
        why = (
            "is already finished" if number <= state.transaction_counter else "has not been started"
        )
        raise NotFoundError(
            f"transaction {number} {why}", code="E_TX_NOT_FOUND", se_error="ErrorNoTransaction"
        )
    if tx.client_id != client_id:
        registered_client(state, client_id)  # another till takes the transaction over
    return tx


def update_transaction(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    client_id: str,
    number: int,
    process_data: bytes,
    process_type: str,
    *,
    ref: str | None = None,
    extra: dict[str, object] | None = None,
) -> Outcome[SignResult]:
    """updateTransaction (variant SIGNED: every update is signed and logged)."""
    return _continue(
        ctx, state, now, UPDATE, client_id, number, process_data, process_type, ref, extra
    )


def finish_transaction(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    client_id: str,
    number: int,
    process_data: bytes,
    process_type: str,
    *,
    ref: str | None = None,
    extra: dict[str, object] | None = None,
) -> Outcome[SignResult]:
    """finishTransaction; a cancellation is a Finish whose processData says so (the
    service layer builds it, e.g. Kassenbeleg-V1 ``AVBelegabbruch``)."""
    return _continue(
        ctx, state, now, FINISH, client_id, number, process_data, process_type, ref, extra
    )


def _continue(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    operation: str,
    client_id: str,
    number: int,
    process_data: bytes,
    process_type: str,
    ref: str | None,
    extra: dict[str, object] | None,
) -> Outcome[SignResult]:
    _check_tx_input(client_id, process_data, process_type)
    can_sign(state, Op.UPDATE if operation == UPDATE else Op.FINISH)
    tx = _open_tx(state, client_id, number)
    target = TX_TRANSITIONS[(ACTIVE, operation)]
    counter, log_time, result, logs = _sign_tx(
        ctx,
        state,
        now,
        operation,
        number,
        tx.started_at,
        client_id,
        process_data,
        process_type,
        ref,
        extra,
    )
    open_txs = dict(state.open_transactions)
    if target == FINISHED:
        del open_txs[number]
    else:
        # the client that signed last holds it (a table moved to another till): its
        # open transactions are counted at deregistering, listed for recovery
        open_txs[number] = evolve(
            tx, last_signed_at=log_time, process_type=process_type, client_id=client_id
        )
    state = evolve(
        state, signature_counter=counter, last_log_time=log_time, open_transactions=open_txs
    )
    return Outcome(state, logs, result, expiry_error(ctx, log_time))  # type: ignore[arg-type]
