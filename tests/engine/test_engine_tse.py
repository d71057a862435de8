"""The pure engine: every SE API error and state change, logs decoded and verified by
the codec and ECDSA verification (tr03151.signature) rather than trusted."""

from __future__ import annotations

from typing import Any

import pytest

from opentse.engine import rules, tse, users
from opentse.engine.state import Lifecycle
from opentse.errors import OpenTSEError
from opentse.tr03151 import codec, sysdata
from opentse.tr03151.logmessage import AuditLogData, SystemLogData, TransactionLogData
from opentse.tr03151.oids import LogType

L = Lifecycle


def expect(code: str, fn: Any, *args: Any, **kwargs: Any) -> OpenTSEError:
    with pytest.raises(OpenTSEError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- lifecycle -----------------------------------------------------------------


def _driver_in(build: Any, lifecycle: Lifecycle) -> Any:
    d = build.new()
    if lifecycle is L.CREATED:
        return d
    d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.UNINITIALIZED))
    d.run(tse.update_time(d.ctx, d.state, d.now))
    d.set_pin()
    d.login()
    if lifecycle is L.INITIALIZED:
        d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.INITIALIZED))
    elif lifecycle is L.DISABLED:
        d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.DISABLED))
    elif lifecycle is L.DEFECTIVE:
        d.state = tse.mark_defective(d.state)
    return d


@pytest.mark.parametrize("source", list(Lifecycle))
@pytest.mark.parametrize("target", list(Lifecycle))
def test_lifecycle_table(build: Any, source: Lifecycle, target: Lifecycle) -> None:
    d = _driver_in(build, source)
    before = d.state
    if (source, target) in rules.LIFECYCLE_TRANSITIONS:
        d.run(tse.set_lifecycle(d.ctx, d.state, d.now, target))
        assert d.state.lifecycle is target
        d.verify_all()
    elif source is target and source is not L.CREATED:
        out = tse.set_lifecycle(d.ctx, d.state, d.now, target)
        assert out.state is before and out.logs == ()
    else:
        expect("E_ILLEGAL_TSS_STATE_CHANGE", tse.set_lifecycle, d.ctx, d.state, d.now, target)
        assert d.state is before


def test_initialize_writes_log_and_needs_admin(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    expect("E_ADMIN_NOT_AUTHENTICATED", tse.initialize, d.ctx, d.state, d.now)
    d.login()
    d.run(tse.initialize(d.ctx, d.state, d.now, "Kasse 1"))
    assert d.state.lifecycle is L.INITIALIZED and d.state.initialized_at == d.now
    msg = codec.decode_log_message(d.logs[-1].message)
    assert isinstance(msg.certified, SystemLogData)
    assert msg.certified.operation_type == "initialize"
    assert msg.certified.system_operation_data == sysdata.initialize("Kasse 1")
    d.verify_all()


def test_nothing_signed_before_time_is_set(build: Any) -> None:
    d = build.new()
    d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.UNINITIALIZED))
    expect("E_TIME_NOT_SET", users.begin_check, d.state, "admin", "puk")
    d2 = build.initialized()
    d2.state = d2.state.__class__(**{**d2.state.__dict__, "time_set": False})
    err = expect("E_TIME_NOT_SET", tse.start_transaction, d2.ctx, d2.state, d2.now, "C1", b"", "x")
    assert err.se_error == "ErrorTimeNotSet"


def test_operations_before_initialize_and_after_disable(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    err = expect(
        "E_TSS_NOT_INITIALIZED", tse.start_transaction, d.ctx, d.state, d.now, "C1", b"", "x"
    )
    assert err.se_error == "ErrorSeApiNotInitialized"
    expect("E_TSS_NOT_INITIALIZED", tse.register_client, d.ctx, d.state, d.now, "C1")
    d = build.initialized()
    d.run(tse.disable(d.ctx, d.state, d.now))
    assert d.state.lifecycle is L.DISABLED
    assert d.state.users["admin"].logged_in_until is None
    err = expect("E_TSS_DISABLED", tse.start_transaction, d.ctx, d.state, d.now, "C1", b"", "x")
    assert err.se_error == "ErrorSecureElementDisabled"
    expect("E_TSS_DISABLED", users.begin_check, d.state, "admin", "pin")
    expect("E_TSS_DISABLED", tse.self_test, d.ctx, d.state, d.now)
    assert d.logs[-1].operation == "disableSecureElement"
    # a disabled TSE's export is not logged (it signs nothing)
    out = tse.export_log(d.ctx, d.state, d.now, description="")
    assert out.logs == () and out.result is None
    d.verify_all()


# --- transactions ------------------------------------------------------------------


def test_transaction_flow_counters_and_logs(driver: Any) -> None:
    d = driver
    base = d.state.signature_counter
    r1 = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    d.now += 5
    r2 = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"a", "Kassenbeleg-V1"))
    d.now += 5
    u = d.run(tse.update_transaction(d.ctx, d.state, d.now, "C1", 1, b"b", "Kassenbeleg-V1"))
    f = d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C1", 1, b"Beleg^", "Kassenbeleg-V1"))
    assert (r1.transaction_number, r2.transaction_number) == (1, 2)
    assert [r.signature_counter for r in (r1, r2, u, f)] == [base + i for i in range(1, 5)]
    assert f.start_time == r1.log_time == 1_700_000_000 and f.log_time == d.now
    assert d.state.transaction_counter == 2 and list(d.state.open_transactions) == [2]
    msg = codec.decode_log_message(d.logs[-1].message)
    assert msg.certified == TransactionLogData(
        "FinishTransaction", "C1", b"Beleg^", "Kassenbeleg-V1", 1
    )
    assert msg.signature_value == f.signature
    assert d.logs[-1].filename == f.filename
    assert (
        f.filename == f"Unixt_{d.now}_Sig-{f.signature_counter}_Log-Tra_No-1_Finish_Client-C1.log"
    )
    d.verify_all()


def test_finish_errors(driver: Any) -> None:
    d = driver
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C1", 1, b"", ""))
    before = d.state
    err = expect("E_TX_NOT_FOUND", tse.finish_transaction, d.ctx, d.state, d.now, "C1", 1, b"", "")
    assert "already finished" in err.message and err.se_error == "ErrorNoTransaction"
    assert err.http_status == 404
    err = expect("E_TX_NOT_FOUND", tse.update_transaction, d.ctx, d.state, d.now, "C1", 7, b"", "")
    assert "not been started" in err.message
    expect("E_TX_NUMBER", tse.finish_transaction, d.ctx, d.state, d.now, "C1", 0, b"", "")
    d.login()
    d.run(tse.register_client(d.ctx, d.state, d.now, "C2"))
    d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    assert before.signature_counter + 3 == d.state.signature_counter  # login, register, start
    d.verify_all()


def test_another_registered_client_takes_an_open_transaction_over(driver: Any) -> None:
    """A table moved to another till: certified TSEs let another client finish (the
    fiskaly export 685e1812, transaction 31); the log names the client that signed
    it, and a client that is not registered (now) is refused as at start."""
    d = driver
    d.run(tse.register_client(d.ctx, d.state, d.now, "C2"))
    d.run(tse.register_client(d.ctx, d.state, d.now, "C3"))
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", "Kassenbeleg-V1"))
    update = d.run(tse.update_transaction(d.ctx, d.state, d.now, "C2", 1, b"a", "Kassenbeleg-V1"))
    assert update.client_id == "C2" and update.filename.endswith("_Update_Client-C2.log")
    before = d.state
    expect("E_CLIENT_NOT_FOUND", tse.finish_transaction, d.ctx, d.state, d.now, "C9", 1, b"", "")
    d.login()
    d.run(tse.deregister_client(d.ctx, d.state, d.now, "C3"))
    err = expect(
        "E_CLIENT_DEREGISTERED", tse.finish_transaction, d.ctx, d.state, d.now, "C3", 1, b"", ""
    )
    assert "deregistered" in err.message
    assert d.state.open_transactions == before.open_transactions  # nothing moved
    # C2 holds it now: C1 can be deregistered, C2 cannot while it is open
    assert d.state.open_transactions[1].client_id == "C2"
    d.run(tse.deregister_client(d.ctx, d.state, d.now, "C1"))
    expect("E_CLIENT_HAS_OPEN_TRANSACTIONS", tse.deregister_client, d.ctx, d.state, d.now, "C2")
    finish = d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C2", 1, b"b", "Kassenbeleg-V1"))
    assert finish.client_id == "C2" and finish.transaction_number == 1
    assert 1 not in d.state.open_transactions
    d.verify_all()


@pytest.mark.parametrize(
    ("client", "data", "ptype", "code"),
    [
        ("C1", b"x" * (tse.MAX_PROCESS_DATA + 1), "", "E_PROCESS_DATA_TOO_LARGE"),
        ("C1", b"", "x" * 101, "E_PROCESS_TYPE_INVALID"),
        ("C1", b"", "Kassenbeleg_V1", "E_PROCESS_TYPE_INVALID"),
        ("C1", b"", "Käse", "E_PROCESS_TYPE_INVALID"),
        ("C 1_", b"", "", "E_CLIENT_ID_INVALID"),
        ("", b"", "", "E_CLIENT_ID_INVALID"),
        ("x" * 71, b"", "", "E_CLIENT_ID_INVALID"),
        ("C2", b"", "", "E_CLIENT_NOT_FOUND"),
    ],
)
def test_bad_input_changes_nothing(
    driver: Any, client: str, data: bytes, ptype: str, code: str
) -> None:
    d = driver
    before = d.state
    snapshot = before.to_dict()
    expect(code, tse.start_transaction, d.ctx, d.state, d.now, client, data, ptype)
    assert d.state is before and before.to_dict() == snapshot


def test_process_type_of_100_printable_chars_is_fine(driver: Any) -> None:
    d = driver
    ptype = ("Ab0 '()+,-./:=?" * 7)[:100]
    r = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"\x00\xff", ptype))
    assert codec.decode_log_message(d.logs[-1].message).certified.process_type == ptype  # type: ignore[union-attr]
    assert r.process_data == b"\x00\xff"


def test_open_transaction_limit(driver: Any) -> None:
    d = driver
    d.run(tse.configure(d.ctx, d.state, d.now, max_open_transactions=2))
    for _ in range(2):
        d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    counter = d.state.signature_counter
    expect("E_TX_LIMIT_REACHED", tse.start_transaction, d.ctx, d.state, d.now, "C1", b"", "")
    assert d.state.transaction_counter == 2 and d.state.signature_counter == counter
    d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C1", 1, b"", ""))
    r = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    assert r.transaction_number == 3  # a refused start consumed no number


def test_log_time_never_goes_back_except_update_time(driver: Any) -> None:
    d = driver
    d.now += 100
    r1 = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", ""))
    d.now -= 50  # clock steps back
    r2 = d.run(tse.update_transaction(d.ctx, d.state, d.now, "C1", 1, b"", ""))
    assert r2.log_time == r1.log_time
    d.run(tse.update_time(d.ctx, d.state, d.now, user_id="admin"))
    assert d.logs[-1].log_time == d.now < r1.log_time
    fields = sysdata.parse_system_operation_data(
        codec.decode_log_message(d.logs[-1].message).certified.system_operation_data  # type: ignore[union-attr]
    )
    assert sysdata.decode_time(sysdata.field(fields, 0x81) or b"", d.ctx.time_format) == r1.log_time
    assert sysdata.decode_time(sysdata.field(fields, 0x82) or b"", d.ctx.time_format) == d.now
    r3 = d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C1", 1, b"", ""))
    assert r3.log_time == d.now and r3.start_time == r1.log_time
    d.verify_all()


def test_update_time_needs_login_once_set(driver: Any) -> None:
    d = driver
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    expect("E_ADMIN_NOT_AUTHENTICATED", tse.update_time, d.ctx, d.state, d.now)
    expect(
        "E_TIMEADMIN_NOT_AUTHENTICATED", tse.update_time, d.ctx, d.state, d.now, user_id="timeadmin"
    )
    expect("E_FORBIDDEN", tse.update_time, d.ctx, d.state, d.now, user_id="root")
    d.set_pin("timeadmin")
    d.login("timeadmin")
    d.run(tse.update_time(d.ctx, d.state, d.now, user_id="timeadmin"))
    assert d.logs[-1].operation == "updateTime"


def test_certificate_expired_log_stored_then_error(build: Any) -> None:
    d = build.initialized(build.ctx(not_after=1_700_000_100))
    d.now = 1_700_000_101
    counter = d.state.signature_counter
    out = tse.start_transaction(d.ctx, d.state, d.now, "C1", b"", "")
    assert out.error is not None and out.error.code == "E_CERTIFICATE_EXPIRED"
    assert out.error.se_error == "ErrorCertificateExpired"
    assert len(out.logs) == 1 and out.state.signature_counter == counter + 1
    assert out.state.transaction_counter == 1  # the stored start keeps its number


# --- clients -----------------------------------------------------------------------


def test_client_rules(driver: Any) -> None:
    d = driver
    err = expect("E_CLIENT_CONFLICT", tse.register_client, d.ctx, d.state, d.now, "C1")
    assert err.http_status == 409
    d.run(tse.configure(d.ctx, d.state, d.now, max_clients=2))
    d.run(tse.register_client(d.ctx, d.state, d.now, "C2"))
    err = expect("E_CLIENT_LIMIT_REACHED", tse.register_client, d.ctx, d.state, d.now, "C3")
    assert err.http_status == 403
    d.run(tse.start_transaction(d.ctx, d.state, d.now, "C2", b"", ""))
    err = expect(
        "E_CLIENT_HAS_OPEN_TRANSACTIONS", tse.deregister_client, d.ctx, d.state, d.now, "C2"
    )
    assert err.http_status == 409
    d.run(tse.finish_transaction(d.ctx, d.state, d.now, "C2", 1, b"", ""))
    d.run(tse.deregister_client(d.ctx, d.state, d.now, "C2"))
    expect("E_CLIENT_DEREGISTERED", tse.start_transaction, d.ctx, d.state, d.now, "C2", b"", "")
    expect("E_CLIENT_DEREGISTERED", tse.deregister_client, d.ctx, d.state, d.now, "C2")
    expect("E_CLIENT_NOT_FOUND", tse.deregister_client, d.ctx, d.state, d.now, "C9")
    d.run(tse.register_client(d.ctx, d.state, d.now, "C3"))  # a free slot again
    d.run(tse.deregister_client(d.ctx, d.state, d.now, "C3"))
    d.run(tse.register_client(d.ctx, d.state, d.now, "C2"))  # re-registration
    assert d.state.clients["C2"].registered
    ops = [log.operation for log in d.logs if log.log_type is LogType.SYSTEM]
    assert ops.count("registerClient") == 4 and ops.count("deregisterClient") == 2
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    expect("E_ADMIN_NOT_AUTHENTICATED", tse.register_client, d.ctx, d.state, d.now, "C4")
    d.verify_all()


def test_configure_writes_audit_log(driver: Any) -> None:
    d = driver
    assert tse.configure(d.ctx, d.state, d.now).logs == ()  # nothing changed, nothing signed
    d.run(tse.configure(d.ctx, d.state, d.now, description="Filiale 2", max_clients=10))
    assert d.state.description == "Filiale 2" and d.state.max_clients == 10
    log = d.logs[-1]
    assert log.log_type is LogType.AUDIT and log.filename.endswith("_Log-Aud.log")
    msg = codec.decode_log_message(log.message)
    assert isinstance(msg.certified, AuditLogData)
    event, changes = sysdata.parse_audit_data(msg.certified.se_audit_data)
    assert event == "configure" and changes == {"description": "Filiale 2", "max_clients": "10"}
    expect("E_CONFIG_INVALID", tse.configure, d.ctx, d.state, d.now, max_clients=500)
    expect("E_CONFIG_INVALID", tse.configure, d.ctx, d.state, d.now, max_open_transactions=0)
    d.verify_all()


def test_self_test_and_export_logs(driver: Any) -> None:
    d = driver
    d.run(tse.self_test(d.ctx, d.state, d.now))
    d.run(tse.export_log(d.ctx, d.state, d.now, description="", up_to=5))
    assert [log.operation for log in d.logs[-2:]] == ["selfTest", "exportData"]
    assert d.state.exported_up_to == 5
    d.verify_all()


# --- users -------------------------------------------------------------------------------


def test_admin_pin_starts_blocked(build: Any) -> None:
    d = build.new()
    d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.UNINITIALIZED))
    d.run(tse.update_time(d.ctx, d.state, d.now))
    err = expect("E_ADMIN_PIN_BLOCKED", users.begin_check, d.state, "admin", "pin")
    assert err.http_status == 423
    expect("E_USER_NOT_FOUND", users.begin_check, d.state, "root", "pin")


def test_wrong_pin_counts_down_logs_and_blocks(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    d.run(users.logout(d.ctx, d.state, d.now, "admin"))
    n_logs = len(d.logs)
    for attempt in range(1, 6):
        checked = d.run(users.begin_check(d.state, "admin", "pin"))
        assert d.state.users["admin"].retries_left == 5 - attempt  # down before the check
        out = users.finish_authenticate(d.ctx, d.state, d.now, "admin", False, checked)
        assert out.result.ok is False and out.result.remaining_retries == 5 - attempt
        assert len(out.logs) == 1 and out.error is not None
        assert out.error.code == ("E_ADMIN_PIN_BLOCKED" if attempt == 5 else "E_PIN_INVALID")
        d.state = out.state
        d.logs.extend(out.logs)
    assert len(d.logs) == n_logs + 5 and d.state.users["admin"].blocked
    fields = sysdata.parse_system_operation_data(
        codec.decode_log_message(d.logs[-1].message).certified.system_operation_data  # type: ignore[union-attr]
    )
    assert sysdata.decode_bool(sysdata.field(fields, 0x83) or b"") is False
    expect("E_ADMIN_PIN_BLOCKED", users.begin_check, d.state, "admin", "pin")
    d.set_pin()  # unblock with the PUK
    assert d.state.users["admin"].retries_left == 5 and not d.state.users["admin"].blocked
    d.login()
    assert users.is_logged_in(d.state, "admin", d.now)
    d.verify_all()


def _auth_fields(log: Any) -> Any:
    msg = codec.decode_log_message(log.message)
    assert isinstance(msg.certified, SystemLogData)
    return msg.certified.operation_type, sysdata.parse_system_operation_data(
        msg.certified.system_operation_data
    )


def test_attempts_on_a_blocked_pin_or_puk_are_logged_then_refused(build: Any) -> None:
    """TR-03151: every authentication attempt, successful or not, is a system log;
    one the block refuses checks nothing and counts nothing down."""
    d = build.new()
    d.run(tse.set_lifecycle(d.ctx, d.state, d.now, L.UNINITIALIZED))
    d.run(tse.update_time(d.ctx, d.state, d.now))  # the admin PIN starts blocked (unset)
    out = users.begin_attempt(d.ctx, d.state, d.now, "admin", "pin")
    assert out.error is not None and out.error.code == "E_ADMIN_PIN_BLOCKED"
    assert len(out.logs) == 1
    operation, fields = _auth_fields(out.logs[0])
    assert operation == "authenticateUser"
    assert sysdata.decode_bool(sysdata.field(fields, 0x83) or b"") is False
    assert out.state.users["admin"].retries_left == d.state.users["admin"].retries_left
    with pytest.raises(OpenTSEError) as info:
        d.run(out)
    assert info.value.code == "E_ADMIN_PIN_BLOCKED"
    # a PUK blocked by wrong guesses: the next attempt, the right PUK too, is logged
    for _ in range(rules.PUK_RETRIES):
        checked = d.run(users.begin_attempt(d.ctx, d.state, d.now, "admin", "puk"))
        assert isinstance(checked, str)
        wrong = users.finish_unblock(d.ctx, d.state, d.now, "admin", False, checked, None)
        d.state = wrong.state
        d.logs.extend(wrong.logs)
    out = users.begin_attempt(d.ctx, d.state, d.now, "admin", "puk")
    assert out.error is not None and out.error.code == "E_ADMIN_PUK_BLOCKED"
    operation, fields = _auth_fields(out.logs[0])
    assert operation == "unblockUser"
    assert (
        sysdata.decode_enum(sysdata.field(fields, 0x82) or b"")
        == (sysdata.UNBLOCK_RESULTS["failed"])
    )
    d.state = out.state
    d.logs.extend(out.logs)
    d.verify_all()
    # nothing to log where the TSE cannot sign or the user does not exist
    expect("E_USER_NOT_FOUND", users.begin_attempt, d.ctx, d.state, d.now, "root", "pin")
    unset = d.state.__class__(**{**d.state.__dict__, "time_set": False})
    expect("E_TIME_NOT_SET", users.begin_attempt, d.ctx, unset, d.now, "admin", "pin")


def test_success_resets_counter_and_session_expires(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    checked = d.run(users.begin_check(d.state, "admin", "pin"))
    d.state = users.finish_authenticate(d.ctx, d.state, d.now, "admin", False, checked).state
    assert d.state.users["admin"].retries_left == 4
    d.login()
    assert d.state.users["admin"].retries_left == 5
    d.now += rules.LOGIN_SECONDS
    expect("E_ADMIN_NOT_AUTHENTICATED", tse.initialize, d.ctx, d.state, d.now)


def test_pin_changed_between_steps_counts_as_failure(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    checked = d.run(users.begin_check(d.state, "admin", "pin"))
    out = users.finish_authenticate(d.ctx, d.state, d.now, "admin", True, checked + "-stale")
    assert out.result.ok is False and out.error is not None


def test_wrong_puk_counts_down_its_own_retries(build: Any) -> None:
    d = _driver_in(build, L.UNINITIALIZED)
    for attempt in range(1, rules.PUK_RETRIES + 1):
        checked = d.run(users.begin_check(d.state, "admin", "puk"))
        out = users.finish_unblock(d.ctx, d.state, d.now, "admin", False, checked, None)
        assert out.error is not None and out.result.remaining_retries == rules.PUK_RETRIES - attempt
        d.state = out.state
        d.logs.extend(out.logs)
    assert out.error.code == "E_ADMIN_PUK_BLOCKED"
    expect("E_ADMIN_PUK_BLOCKED", users.begin_check, d.state, "admin", "puk")
    assert d.logs[-1].operation == "unblockUser"
    d.verify_all()


def test_logout_logs_only_live_sessions(driver: Any) -> None:
    d = driver
    out = users.logout(d.ctx, d.state, d.now, "admin")
    assert len(out.logs) == 1 and out.logs[0].operation == "logOut"
    d.run(out)
    again = users.logout(d.ctx, d.state, d.now, "admin")
    assert again.logs == () and again.result is None


@pytest.mark.parametrize("time_format", ["unixTime", "utcTime", "generalizedTime"])
@pytest.mark.parametrize("curve", ["P-256", "P-384", "brainpoolP256r1", "brainpoolP384r1"])
def test_curves_and_time_formats(build: Any, curve: str, time_format: str) -> None:
    d = build.initialized(build.ctx(curve, time_format))
    r = d.run(tse.start_transaction(d.ctx, d.state, d.now, "C1", b"x", "y"))
    assert len(r.signature) == (64 if curve.endswith("256r1") or curve == "P-256" else 96)
    prefix = {"unixTime": "Unixt_", "utcTime": "Utc_", "generalizedTime": "Gent_"}[time_format]
    assert r.filename.startswith(prefix)
    d.verify_all()


def test_lifecycle_diagram_is_generated_from_the_table() -> None:
    text = rules.lifecycle_diagram()
    assert text.startswith("stateDiagram-v2\n")
    for src, dst in rules.LIFECYCLE_TRANSITIONS:
        assert f"    {src.value} --> {dst.value}" in text
    arrows = [line for line in text.splitlines() if "-->" in line and "[*]" not in line]
    assert len(arrows) == len(rules.LIFECYCLE_TRANSITIONS)
