"""The TSE as a pure engine: SE API operations over ``TSEState`` (no I/O).

Every operation takes ``(ctx, state, now, args)`` and returns an ``Outcome``: the new
state, the signed logs to append with it, and a result. Checks come first and raise
before anything changes ("bad input changes nothing"); states are never mutated, the
new one is a copy (only the touched dict is copied, so 2000 open transactions cost a
dict copy, not a deep copy). Which operation runs in which lifecycle state is the
table ``rules.ALLOWED``; lifecycle changes are ``rules.LIFECYCLE_TRANSITIONS``.

Transactions live in ``transactions.py`` and are re-exported here, so callers use
``tse.start_transaction`` like every other SE API function.
"""

from __future__ import annotations

from opentse.engine import rules
from opentse.engine.results import SystemLogResult
from opentse.engine.signing import (
    Outcome,
    TSEContext,
    evolve,
    expiry_error,
    next_log_time,
    sign_system,
)
from opentse.engine.state import ClientState, Lifecycle, TSEState
from opentse.engine.transactions import (
    MAX_PROCESS_DATA,
    TX_TRANSITIONS,
    can_sign,
    finish_transaction,
    registered_client,
    start_transaction,
    update_transaction,
)
from opentse.engine.users import ADMIN, TIMEADMIN, require_login
from opentse.errors import ConflictError, ProtocolError, StateError
from opentse.tr03151 import sysdata
from opentse.tr03151.logmessage import AuditLogData, SystemLogData
from opentse.tr03151.logtime import LogTime

__all__ = [
    "MAX_PROCESS_DATA",
    "TX_TRANSITIONS",
    "configure",
    "deregister_client",
    "disable",
    "export_log",
    "finish_transaction",
    "initialize",
    "mark_defective",
    "register_client",
    "self_test",
    "set_lifecycle",
    "start_transaction",
    "update_time",
    "update_transaction",
]

Op = rules.Op

# --- lifecycle -------------------------------------------------------------------


def set_lifecycle(
    ctx: TSEContext, state: TSEState, now: int, target: Lifecycle
) -> Outcome[SystemLogResult | None]:
    """fiskaly PATCH /tss {state}. CREATED -> UNINITIALIZED signs nothing;
    -> INITIALIZED is initialize(), -> DISABLED is disableSecureElement()."""
    if target is state.lifecycle and target is not Lifecycle.CREATED:
        return Outcome(state, (), None)  # idempotent PATCH of the current state
    rules.check_transition(state.lifecycle, target)
    if target is Lifecycle.UNINITIALIZED:
        new = evolve(state, lifecycle=target, uninitialized_at=now)
        return Outcome(new, (), None)
    if target is Lifecycle.INITIALIZED:
        return initialize(ctx, state, now)  # type: ignore[return-value]
    return disable(ctx, state, now)  # type: ignore[return-value]


def initialize(
    ctx: TSEContext, state: TSEState, now: int, description: str | None = None
) -> Outcome[SystemLogResult]:
    """initialize(description): admin only; writes the Initialize system log."""
    rules.check_allowed(Op.INITIALIZE, state.lifecycle)
    if not state.time_set:
        raise rules.time_not_set()
    require_login(state, now, ADMIN)
    desc = state.description if description is None else description
    state, log, logs = sign_system(
        ctx, state, now, SystemLogData(Op.INITIALIZE.value, sysdata.initialize(desc))
    )
    state = evolve(
        state, lifecycle=Lifecycle.INITIALIZED, initialized_at=log.log_time, description=desc
    )
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))


def disable(ctx: TSEContext, state: TSEState, now: int) -> Outcome[SystemLogResult]:
    """disableSecureElement: admin only, irreversible; exports keep working."""
    if state.lifecycle is Lifecycle.DISABLED:
        rules.check_transition(state.lifecycle, Lifecycle.DISABLED)
    rules.check_transition(state.lifecycle, Lifecycle.DISABLED)
    can_sign(state, Op.DISABLE)
    require_login(state, now, ADMIN)
    log_time = next_log_time(now, state.last_log_time)
    data = sysdata.disable_secure_element(LogTime(ctx.time_format, log_time))
    state, log, logs = sign_system(ctx, state, now, SystemLogData(Op.DISABLE.value, data))
    users = {uid: evolve(u, logged_in_until=None) for uid, u in state.users.items()}
    state = evolve(state, lifecycle=Lifecycle.DISABLED, disabled_at=log.log_time, users=users)
    return Outcome(state, logs, log)


def mark_defective(state: TSEState) -> TSEState:
    """A TSE whose key cannot be used any more (fiskaly DEFECTIVE); signs nothing."""
    return evolve(state, lifecycle=Lifecycle.DEFECTIVE)


# --- time ------------------------------------------------------------------------


def update_time(
    ctx: TSEContext, state: TSEState, now: int, *, user_id: str | None = None
) -> Outcome[SystemLogResult]:
    """updateTime: sets the TSE time to ``now`` and writes an UpdateTime log (the only
    log whose time may be earlier than the one before it).

    ``user_id`` None is the start-up synchronisation from the service's trusted clock
    (a real SMAERS syncs with its host the same way): allowed without login only
    while the time is not set, since authenticateUser itself needs a time to sign
    its log. Changing a set time needs admin or timeadmin logged in (TR-03151 roles).
    """
    rules.check_allowed(Op.UPDATE_TIME, state.lifecycle)
    if user_id is not None:
        if user_id not in (ADMIN, TIMEADMIN):
            raise ProtocolError(f"user {user_id!r} may not set the time", code="E_FORBIDDEN")
        require_login(state, now, user_id)
    elif state.time_set:
        require_login(state, now, ADMIN, TIMEADMIN)
    before = (
        LogTime(ctx.time_format, next_log_time(now, state.last_log_time))
        if state.time_set
        else None  # no time before: after start-up ("power loss")
    )
    data = sysdata.update_time(before, LogTime(ctx.time_format, now))
    state = evolve(state, time_set=True)
    state, log, logs = sign_system(
        ctx, state, now, SystemLogData(Op.UPDATE_TIME.value, data), log_time=now
    )
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))


# --- clients -----------------------------------------------------------------------


def register_client(
    ctx: TSEContext, state: TSEState, now: int, client_id: str
) -> Outcome[SystemLogResult]:
    """Register a client (fiskaly PUT /client; TR-03151 clientId). A deregistered
    client may be registered again (fiskaly PATCH {state: REGISTERED})."""
    rules.check_client_id(client_id)
    can_sign(state, Op.REGISTER_CLIENT)
    require_login(state, now, ADMIN)
    existing = state.clients.get(client_id)
    if existing is not None and existing.registered:
        raise ConflictError(f"client {client_id!r} is already registered", code="E_CLIENT_CONFLICT")
    registered = sum(1 for c in state.clients.values() if c.registered)
    if registered >= state.max_clients:
        raise ProtocolError(
            f"the TSS has {registered} registered clients, the maximum",
            code="E_CLIENT_LIMIT_REACHED",
            http_status=403,
        )
    data = sysdata.register_client(client_id)
    state, log, logs = sign_system(ctx, state, now, SystemLogData(Op.REGISTER_CLIENT.value, data))
    clients = dict(state.clients)
    clients[client_id] = ClientState(client_id, True, log.log_time, None)
    state = evolve(state, clients=clients)
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))


def deregister_client(
    ctx: TSEContext, state: TSEState, now: int, client_id: str
) -> Outcome[SystemLogResult]:
    """Deregister a client. Refused with ``E_CLIENT_HAS_OPEN_TRANSACTIONS`` (409)
    while it has open transactions: their Finish would need a registered client."""
    rules.check_client_id(client_id)
    can_sign(state, Op.DEREGISTER_CLIENT)
    require_login(state, now, ADMIN)
    client = registered_client(state, client_id)
    open_count = sum(1 for t in state.open_transactions.values() if t.client_id == client_id)
    if open_count:
        raise StateError(
            f"client {client_id!r} has {open_count} open transactions; finish them first",
            code="E_CLIENT_HAS_OPEN_TRANSACTIONS",
            http_status=409,
        )
    data = sysdata.deregister_client(client_id)
    state, log, logs = sign_system(ctx, state, now, SystemLogData(Op.DEREGISTER_CLIENT.value, data))
    clients = dict(state.clients)
    clients[client_id] = evolve(client, registered=False, deregistered_at=log.log_time)
    state = evolve(state, clients=clients)
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))


# --- other system and audit logs ----------------------------------------------------------


def self_test(ctx: TSEContext, state: TSEState, now: int) -> Outcome[SystemLogResult]:
    """selfTest: the service signs a known message and checks it; the log records
    that the test ran and passed (a failing key never reaches here: it cannot sign)."""
    can_sign(state, Op.SELF_TEST)
    data = sysdata.self_test("signer", True)
    state, log, logs = sign_system(ctx, state, now, SystemLogData(Op.SELF_TEST.value, data))
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))


def export_log(
    ctx: TSEContext, state: TSEState, now: int, *, description: str, up_to: int | None = None
) -> Outcome[SystemLogResult | None]:
    """exportData system log, written after the export finished. A disabled TSE signs
    nothing, so its exports are not logged. ``up_to``: an unfiltered export's last
    counter, remembered as ``exported_up_to`` (deleteStoredData may drop up to it)."""
    if state.lifecycle is not Lifecycle.INITIALIZED:
        return Outcome(state, (), None)
    can_sign(state, Op.EXPORT)
    data = sysdata.export_data(description)
    state, log, logs = sign_system(ctx, state, now, SystemLogData(Op.EXPORT.value, data))
    if up_to is not None and up_to > state.exported_up_to:
        state = evolve(state, exported_up_to=up_to)
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))  # type: ignore[arg-type]


def delete_stored_data(ctx: TSEContext, state: TSEState, now: int) -> Outcome[SystemLogResult]:
    """deleteStoredData (TR-03151 SE API: "only exported data"): drops the stored logs
    up to the last counter of the newest complete export (``exported_up_to``) and
    signs a deleteStoredData system log naming that counter; what came after stays.
    ErrorUnexportedStoredData when nothing exported is left to delete."""
    can_sign(state, Op.DELETE_STORED_DATA)
    require_login(state, now, ADMIN)
    up_to = state.exported_up_to
    if up_to <= state.deleted_up_to:
        raise StateError(
            "no exported data to delete: export the TSE completely first",
            code="E_UNEXPORTED_STORED_DATA",
            se_error="ErrorUnexportedStoredData",
        )
    data = sysdata.delete_stored_data(ADMIN, up_to)
    certified = SystemLogData(Op.DELETE_STORED_DATA.value, data)
    state, log, logs = sign_system(ctx, state, now, certified)
    state = evolve(state, deleted_up_to=up_to)
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time), delete_up_to=up_to)


def configure(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    *,
    description: str | None = None,
    max_clients: int | None = None,
    max_open_transactions: int | None = None,
) -> Outcome[SystemLogResult | None]:
    """Configuration changes, each recorded in one signed audit log (seAuditData).
    Limits may only go down to what is in use and up to the fiskaly maxima."""
    rules.check_allowed(Op.CONFIGURE, state.lifecycle)
    changes: dict[str, object] = {}
    if description is not None and description != state.description:
        if len(description) > 1000:
            raise ProtocolError("description is too long", code="E_DESCRIPTION_INVALID")
        changes["description"] = description
    if max_clients is not None and max_clients != state.max_clients:
        used = sum(1 for c in state.clients.values() if c.registered)
        if not (max(used, 1) <= max_clients <= rules.MAX_CLIENTS):
            raise ProtocolError(
                f"max clients must be between {max(used, 1)} and {rules.MAX_CLIENTS}",
                code="E_CONFIG_INVALID",
            )
        changes["max_clients"] = max_clients
    if max_open_transactions is not None and max_open_transactions != state.max_open_transactions:
        used = len(state.open_transactions)
        if not (max(used, 1) <= max_open_transactions <= rules.MAX_OPEN_TRANSACTIONS):
            raise ProtocolError(
                f"max open transactions must be between {max(used, 1)} and "
                f"{rules.MAX_OPEN_TRANSACTIONS}",
                code="E_CONFIG_INVALID",
            )
        changes["max_open_transactions"] = max_open_transactions
    if not changes:
        return Outcome(state, (), None)
    if not state.time_set:
        raise rules.time_not_set()
    require_login(state, now, ADMIN)
    data = sysdata.audit_data("configure", {k: str(v) for k, v in changes.items()})
    state, log, logs = sign_system(ctx, state, now, AuditLogData(data))
    state = evolve(state, **changes)  # type: ignore[arg-type]
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))  # type: ignore[arg-type]
