"""The TSE's rules as tables (h11 ``_state.py`` style) plus input validation.

Two tables drive the engine:
- ``LIFECYCLE_TRANSITIONS``: which lifecycle changes exist (fiskaly SIGN DE v2
  ``PATCH /tss``: CREATED -> UNINITIALIZED -> INITIALIZED -> DISABLED, and
  UNINITIALIZED -> DISABLED; anything else is ``E_ILLEGAL_TSS_STATE_CHANGE``);
- ``ALLOWED``: in which lifecycle states an SE API operation may run. TR-03151
  1.0.1 names the errors: ErrorSeApiNotInitialized (here ``E_TSS_NOT_INITIALIZED``)
  and ErrorSecureElementDisabled (``E_TSS_DISABLED``; exports still work).
Validation functions raise before anything changes ("bad input changes nothing").
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NoReturn

from opentse.engine.state import Lifecycle
from opentse.errors import OpenTSEError, ProtocolError, StateError

L = Lifecycle


class Op(StrEnum):
    """SE API operations (and service operations) the lifecycle table knows."""

    SET_PIN = "unblockUser"
    AUTHENTICATE = "authenticateUser"
    LOGOUT = "logOut"
    UPDATE_TIME = "updateTime"
    INITIALIZE = "initialize"
    DISABLE = "disableSecureElement"
    REGISTER_CLIENT = "registerClient"
    DEREGISTER_CLIENT = "deregisterClient"
    START = "startTransaction"
    UPDATE = "updateTransaction"
    FINISH = "finishTransaction"
    SELF_TEST = "selfTest"
    CONFIGURE = "configure"  # audit-logged configuration changes
    EXPORT = "exportData"
    DELETE_STORED_DATA = "deleteStoredData"


LIFECYCLE_TRANSITIONS: frozenset[tuple[Lifecycle, Lifecycle]] = frozenset(
    {
        (L.CREATED, L.UNINITIALIZED),
        (L.UNINITIALIZED, L.INITIALIZED),
        (L.INITIALIZED, L.DISABLED),
        (L.UNINITIALIZED, L.DISABLED),
    }
)

_ACTIVE = frozenset({L.UNINITIALIZED, L.INITIALIZED})
ALLOWED: dict[Op, frozenset[Lifecycle]] = {
    Op.SET_PIN: _ACTIVE,
    Op.AUTHENTICATE: _ACTIVE,
    Op.LOGOUT: _ACTIVE,
    Op.UPDATE_TIME: _ACTIVE,
    Op.INITIALIZE: frozenset({L.UNINITIALIZED}),
    Op.DISABLE: _ACTIVE,
    Op.REGISTER_CLIENT: frozenset({L.INITIALIZED}),
    Op.DEREGISTER_CLIENT: frozenset({L.INITIALIZED}),
    Op.START: frozenset({L.INITIALIZED}),
    Op.UPDATE: frozenset({L.INITIALIZED}),
    Op.FINISH: frozenset({L.INITIALIZED}),
    Op.SELF_TEST: _ACTIVE,
    Op.CONFIGURE: _ACTIVE,
    # TR-03151: the export still works after disableSecureElement; fiskaly: a
    # DEFECTIVE TSS still exports its data (it cannot sign the exportData log,
    # TSEService.export leaves it out), so a broken TSE's journal can be archived.
    Op.EXPORT: frozenset({L.INITIALIZED, L.DISABLED, L.DEFECTIVE}),
    # signs a system log, so only while the TSE can sign
    Op.DELETE_STORED_DATA: frozenset({L.INITIALIZED}),
}

# Limits (fiskaly SIGN DE v2 TSS fields; TR-03151 processType <= 100 characters).
MAX_CLIENTS = 199
MAX_OPEN_TRANSACTIONS = 2000
MAX_PROCESS_TYPE = 100
MAX_CLIENT_ID = 70
MIN_PIN = 6
MIN_PUK = 10
MAX_SECRET = 256
LOGIN_SECONDS = 15 * 60
PIN_RETRIES = 5
PUK_RETRIES = 10
# Largest processData accepted; the codec's limit wins when it exports one.
DEFAULT_MAX_PROCESS_DATA = 1 << 20

# ASN.1 PrintableString (X.680 41.4): A-Z a-z 0-9 space ' ( ) + , - . / : = ?
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
# fiskaly client serial_number: the PrintableString alphabet without '/'.
_CLIENT_ID = re.compile(r"[A-Za-z0-9 '()+,\-.:=?]{1,70}")


def check_allowed(op: Op, lifecycle: Lifecycle) -> None:
    """Raise the SE API error for ``op`` in ``lifecycle`` unless the table allows it."""
    if lifecycle in ALLOWED[op]:
        return
    refuse(op, lifecycle)


def check_can_sign(op: Op, lifecycle: Lifecycle) -> None:
    """``check_allowed`` for an ``op`` that signs a log: a DEFECTIVE TSE signs
    nothing, also where the table lets it act (an export of its data)."""
    if lifecycle is L.DEFECTIVE:
        refuse(op, lifecycle)
    check_allowed(op, lifecycle)


def refuse(op: Op, lifecycle: Lifecycle) -> NoReturn:
    """The SE API error for ``op`` in ``lifecycle``."""
    if lifecycle is L.DISABLED:
        raise StateError(
            f"the TSS is disabled; {op.value} is not possible (exports still work)",
            code="E_TSS_DISABLED",
            se_error="ErrorSecureElementDisabled",
        )
    if lifecycle is L.DEFECTIVE:
        raise StateError(
            f"the TSS is defective; {op.value} is not possible",
            code="E_TSS_DEFECTIVE",
        )
    if op is Op.INITIALIZE:
        raise StateError(
            f"cannot initialize a TSS in state {lifecycle.value}",
            code="E_ILLEGAL_TSS_STATE_CHANGE",
        )
    raise StateError(
        f"the TSS is {lifecycle.value}, {op.value} needs "
        + " or ".join(sorted(s.value for s in ALLOWED[op])),
        code="E_TSS_NOT_INITIALIZED",
        se_error="ErrorSeApiNotInitialized",
    )


def check_transition(current: Lifecycle, target: Lifecycle) -> None:
    if (current, target) not in LIFECYCLE_TRANSITIONS:
        raise StateError(
            f"illegal TSS state change {current.value} -> {target.value}",
            code="E_ILLEGAL_TSS_STATE_CHANGE",
        )


def is_printable(text: str) -> bool:
    return _PRINTABLE.fullmatch(text) is not None


def check_client_id(client_id: str) -> None:
    """TR-03151 clientId is a PrintableString; fiskaly limits it to 1-70 characters."""
    if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
        raise ProtocolError(
            "client id must be 1-70 characters of A-Z a-z 0-9 space ' ( ) + , - . : = ?",
            code="E_CLIENT_ID_INVALID",
        )


def check_process_type(process_type: str) -> None:
    """TR-03151 5.2: processType PrintableString, at most 100 characters."""
    if (
        not isinstance(process_type, str)
        or len(process_type) > MAX_PROCESS_TYPE
        or not is_printable(process_type)
    ):
        raise ProtocolError(
            "processType must be a PrintableString of at most 100 characters",
            code="E_PROCESS_TYPE_INVALID",
        )


def check_process_data(process_data: bytes, limit: int) -> None:
    if not isinstance(process_data, bytes | bytearray):
        raise ProtocolError("processData must be bytes", code="E_PROCESS_DATA_INVALID")
    if len(process_data) > limit:
        raise ProtocolError(
            f"processData is {len(process_data)} bytes, the limit is {limit}",
            code="E_PROCESS_DATA_TOO_LARGE",
        )


def check_new_secret(secret: str, *, kind: str, minimum: int) -> None:
    """fiskaly: admin PIN at least 6, PUK at least 10 characters."""
    if not isinstance(secret, str) or not (minimum <= len(secret) <= MAX_SECRET):
        raise ProtocolError(
            f"the new {kind} must have {minimum} to {MAX_SECRET} characters",
            code=f"E_{kind.upper()}_INVALID_FORMAT",
        )


def time_not_set() -> OpenTSEError:
    return StateError(
        "the TSE time is not set (after start-up nothing is signed before updateTime)",
        code="E_TIME_NOT_SET",
        se_error="ErrorTimeNotSet",
    )


def lifecycle_diagram() -> str:
    """The lifecycle table as a Mermaid state diagram (docs are generated from it)."""
    labels = {
        (L.CREATED, L.UNINITIALIZED): "PATCH state",
        (L.UNINITIALIZED, L.INITIALIZED): "initialize (admin)",
        (L.INITIALIZED, L.DISABLED): "disableSecureElement (admin)",
        (L.UNINITIALIZED, L.DISABLED): "disableSecureElement (admin)",
    }
    order = list(Lifecycle)
    lines = ["stateDiagram-v2", f"    [*] --> {L.CREATED.value}"]
    for src, dst in sorted(
        LIFECYCLE_TRANSITIONS, key=lambda t: (order.index(t[0]), order.index(t[1]))
    ):
        lines.append(f"    {src.value} --> {dst.value}: {labels.get((src, dst), '')}".rstrip(": "))
    lines.append(f"    {L.DISABLED.value} --> [*]")
    return "\n".join(lines) + "\n"
