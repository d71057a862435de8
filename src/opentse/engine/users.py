"""Users, PINs and PUKs: authenticateUser, unblockUser, logOut (TR-03151 SE API).

Hashing is slow (crypto.secrets), so each check runs in three steps and the service
hashes between them, outside the TSE lock:

1. ``begin_check``: count the retry counter down and let the service commit it
   BEFORE the secret is checked (a smartcard's rule: cutting the power after a
   wrong guess must not save the guess). Blocked users are refused here, their
   attempt logged first (``begin_attempt``).
2. the service verifies the secret against the hash ``begin_check`` returned;
3. ``finish_authenticate`` / ``finish_unblock``: reset the counter on success, block
   at zero, and sign the AuthenticateUser / UnblockUser system log. TR-03151: every
   authentication attempt, successful or not, is logged; a failed attempt's log is
   committed and the error raised afterwards (``Outcome.error``).

PUK retries: a wrong PUK counts down its own counter (``puk_retries_left``, 10);
at zero the user is blocked for good (``E_<ROLE>_PUK_BLOCKED``), which on a real
TSE means replacing it. fiskaly: the admin PIN starts blocked until set with the PUK.
"""

from __future__ import annotations

from opentse.engine import rules
from opentse.engine.results import AuthResult, SystemLogResult
from opentse.engine.signing import Outcome, TSEContext, evolve, expiry_error, sign_system
from opentse.engine.state import Role, TSEState, UserState
from opentse.errors import AuthenticationError, NotFoundError, OpenTSEError
from opentse.tr03151 import sysdata
from opentse.tr03151.logmessage import SystemLogData

ADMIN = "admin"
TIMEADMIN = "timeadmin"
_ROLE_NAMES = {Role.ADMIN: "admin", Role.TIMEADMIN: "timeAdmin"}  # sysdata.ROLES


def new_users(admin_puk_hash: str, timeadmin_puk_hash: str) -> dict[str, UserState]:
    """Both roles of TR-03151 start with a PUK and a blocked, unset PIN."""
    return {
        ADMIN: UserState(
            ADMIN,
            Role.ADMIN,
            puk_hash=admin_puk_hash,
            max_retries=rules.PIN_RETRIES,
            retries_left=rules.PIN_RETRIES,
        ),
        TIMEADMIN: UserState(
            TIMEADMIN,
            Role.TIMEADMIN,
            puk_hash=timeadmin_puk_hash,
            max_retries=rules.PIN_RETRIES,
            retries_left=rules.PIN_RETRIES,
        ),
    }


def _user(state: TSEState, user_id: str) -> UserState:
    user = state.users.get(user_id)
    if user is None:
        raise NotFoundError(f"unknown user {user_id!r}", code="E_USER_NOT_FOUND")
    return user


def _with_user(state: TSEState, user: UserState, **changes: object) -> TSEState:
    users = dict(state.users)
    users[user.user_id] = evolve(user, **changes)  # type: ignore[arg-type]
    return evolve(state, users=users)


def puk_retries(user: UserState) -> int:
    return int(getattr(user, "puk_retries_left", rules.PUK_RETRIES))


def pin_blocked_error(user: UserState) -> OpenTSEError:
    return AuthenticationError(
        f"the {user.user_id} PIN is blocked; set a new one with the PUK",
        code=f"E_{user.user_id.upper()}_PIN_BLOCKED",
        http_status=423,
    )


def is_logged_in(state: TSEState, user_id: str, now: int) -> bool:
    user = state.users.get(user_id)
    return user is not None and user.logged_in_until is not None and now < user.logged_in_until


def require_login(state: TSEState, now: int, *user_ids: str) -> str:
    """The first of ``user_ids`` with a live session, else E_UNAUTHORIZED-style error."""
    for user_id in user_ids:
        if is_logged_in(state, user_id, now):
            return user_id
    names = " or ".join(user_ids)
    raise AuthenticationError(
        f"{names} must be authenticated for this operation (sessions last "
        f"{rules.LOGIN_SECONDS // 60} minutes)",
        code=f"E_{user_ids[0].upper()}_NOT_AUTHENTICATED",
    )


def _check_can_sign(state: TSEState, op: rules.Op) -> None:
    rules.check_allowed(op, state.lifecycle)
    if not state.time_set:
        raise rules.time_not_set()


def _blocked(user: UserState, kind: str) -> OpenTSEError | None:
    """Why an attempt with the PIN (``kind="pin"``) or PUK cannot succeed, or None."""
    if kind == "pin":
        if user.blocked or user.pin_hash is None or user.retries_left <= 0:
            return pin_blocked_error(user)
        return None
    if user.puk_hash is None or puk_retries(user) <= 0:
        return AuthenticationError(
            f"the {user.user_id} PUK is blocked after too many wrong attempts",
            code=f"E_{user.user_id.upper()}_PUK_BLOCKED",
            http_status=423,
        )
    return None


def begin_check(state: TSEState, user_id: str, kind: str) -> Outcome[str]:
    """Step 1: count down the PIN (``kind="pin"``) or PUK retry counter; the result is
    the hash the service must check the secret against."""
    op = rules.Op.AUTHENTICATE if kind == "pin" else rules.Op.SET_PIN
    _check_can_sign(state, op)
    user = _user(state, user_id)
    blocked = _blocked(user, kind)
    if blocked is not None:
        raise blocked
    if kind == "pin":
        assert user.pin_hash is not None  # _blocked refuses an unset PIN
        new_state = _with_user(state, user, retries_left=user.retries_left - 1)
        return Outcome(new_state, (), user.pin_hash)
    assert user.puk_hash is not None  # and an unset PUK
    new_state = _with_user(state, user, puk_retries_left=puk_retries(user) - 1)
    return Outcome(new_state, (), user.puk_hash)


def begin_attempt(
    ctx: TSEContext, state: TSEState, now: int, user_id: str, kind: str
) -> Outcome[str]:
    """Step 1 as the service runs it: ``begin_check``, except that an attempt on a
    blocked PIN (``kind="pin"``) or PUK is logged before it is refused (an
    AuthenticateUser log with authenticationResult FALSE, an UnblockUser log with
    unblockResult failed). TR-03151: every authentication attempt, successful or
    not, is a system log -- also one that cannot succeed. Where the TSE cannot sign
    or the user does not exist, nothing is logged (``begin_check`` raises)."""
    op = rules.Op.AUTHENTICATE if kind == "pin" else rules.Op.SET_PIN
    _check_can_sign(state, op)
    user = _user(state, user_id)
    blocked = _blocked(user, kind)
    if blocked is None:
        return begin_check(state, user_id, kind)
    if kind == "pin":
        data = sysdata.authenticate_user(user_id, _ROLE_NAMES[user.role], False)
    else:
        data = sysdata.unblock_user(user_id, "failed")
    state, _log, logs = sign_system(ctx, state, now, SystemLogData(op.value, data))
    return Outcome(state, logs, "", blocked)


def finish_authenticate(
    ctx: TSEContext, state: TSEState, now: int, user_id: str, ok: bool, checked_hash: str
) -> Outcome[AuthResult]:
    """Step 3 of authenticateUser. If the PIN changed between the steps the attempt
    counts as failed (the check was made against a stale hash)."""
    _check_can_sign(state, rules.Op.AUTHENTICATE)
    user = _user(state, user_id)
    ok = ok and user.pin_hash == checked_hash and not user.blocked
    if ok:
        until = now + rules.LOGIN_SECONDS
        state = _with_user(state, user, retries_left=user.max_retries, logged_in_until=until)
        left = user.max_retries
    else:
        left = max(user.retries_left, 0)
        until = None
        state = _with_user(state, user, blocked=left == 0, logged_in_until=None)
    data = sysdata.authenticate_user(user_id, _ROLE_NAMES[user.role], ok)
    state, log, logs = sign_system(
        ctx, state, now, SystemLogData(rules.Op.AUTHENTICATE.value, data)
    )
    error: OpenTSEError | None = expiry_error(ctx, log.log_time)
    if not ok:
        error = (
            pin_blocked_error(user)
            if left == 0
            else AuthenticationError(
                f"wrong {user_id} PIN; {left} attempt{'' if left == 1 else 's'} left",
                code="E_PIN_INVALID",
            )
        )
    result = AuthResult(user_id, ok, left, until, log)
    return Outcome(state, logs, result, error)


def finish_unblock(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    user_id: str,
    ok: bool,
    checked_hash: str,
    new_pin_hash: str | None,
) -> Outcome[AuthResult]:
    """Step 3 of unblockUser (fiskaly PATCH /admin {admin_puk, new_admin_pin}): on a
    correct PUK the new PIN is set, the PIN unblocked and any session ended."""
    _check_can_sign(state, rules.Op.SET_PIN)
    user = _user(state, user_id)
    ok = ok and user.puk_hash == checked_hash and new_pin_hash is not None
    if ok:
        state = _with_user(
            state,
            user,
            pin_hash=new_pin_hash,
            retries_left=user.max_retries,
            blocked=False,
            logged_in_until=None,
            puk_retries_left=rules.PUK_RETRIES,
        )
    left = rules.PUK_RETRIES if ok else puk_retries(user)
    data = sysdata.unblock_user(user_id, "ok" if ok else "failed")
    state, log, logs = sign_system(ctx, state, now, SystemLogData(rules.Op.SET_PIN.value, data))
    error: OpenTSEError | None = expiry_error(ctx, log.log_time)
    if not ok:
        error = AuthenticationError(
            f"wrong {user_id} PUK; {left} attempt{'' if left == 1 else 's'} left",
            code="E_PUK_INVALID" if left else f"E_{user_id.upper()}_PUK_BLOCKED",
            http_status=401 if left else 423,
        )
    return Outcome(state, logs, AuthResult(user_id, ok, left, None, log), error)


def logout(
    ctx: TSEContext, state: TSEState, now: int, user_id: str
) -> Outcome[SystemLogResult | None]:
    """logOut: ends the session and writes a LogOut log (cause "user"). Logging out
    a user who is not logged in changes nothing and signs nothing."""
    user = _user(state, user_id)
    if not is_logged_in(state, user_id, now):
        if user.logged_in_until is None:
            return Outcome(state, (), None)
        return Outcome(_with_user(state, user, logged_in_until=None), (), None)
    _check_can_sign(state, rules.Op.LOGOUT)
    state = _with_user(state, user, logged_in_until=None)
    data = sysdata.log_out(user_id, "user")
    state, log, logs = sign_system(ctx, state, now, SystemLogData(rules.Op.LOGOUT.value, data))
    return Outcome(state, logs, log, expiry_error(ctx, log.log_time))
