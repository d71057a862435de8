"""TSEService over both stores: persistence, restarts, auto time, idempotency, errors
raised after commit, concurrency. Logs are checked with the codec and ECDSA verify."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opentse.crypto.ca import LocalCA
from opentse.engine.keyring import Keyring
from opentse.engine.ports import TSEStore
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import (
    ADMIN_PIN,
    ADMIN_PUK,
    TEST_SECRET,
    FrozenClock,
    MemoryStore,
    ready_tse,
)
from opentse.tr03151 import codec, sysdata
from opentse.tr03151.signature import verify_signature

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.create(TEST_SECRET, NOW - 3600)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TSEStore]:
    s: Any = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "t.db")
    yield s
    s.close()


def make(store: TSEStore, ca: LocalCA | None = None, **kw: Any) -> TSEService:
    return TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW), ca=ca, **kw)


def expect(code: str, fn: Any, *args: Any, **kwargs: Any) -> OpenTSEError:
    with pytest.raises(OpenTSEError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


def check_logs(service: TSEService, tse_id: str) -> list[Any]:
    record = service.store.get_record(tse_id)
    logs = list(service.store.iter_logs(tse_id))
    assert [log.signature_counter for log in logs] == list(range(1, len(logs) + 1))
    for log in logs:
        msg = codec.decode_log_message(log.message)
        assert msg.signed_data is not None
        verify_signature(
            record.public_key_point,
            msg.signature_algorithm,
            msg.signed_data,
            msg.signature_value,
            record.curve,
        )
    assert service.store.get_state(tse_id).signature_counter == len(logs)
    return logs


def test_flow_restart_and_auto_time(store: TSEStore, ca: LocalCA) -> None:
    svc = make(store, ca)
    ready = ready_tse(svc, "t1")
    r = svc.start_transaction("t1", ready.client_id, b"a", "Kassenbeleg-V1")
    clock = svc.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(30)
    f = svc.finish_transaction("t1", ready.client_id, r.transaction_number, b"b", "Kassenbeleg-V1")
    assert f.start_time == NOW and f.log_time == NOW + 30
    assert f.serial_number == svc.get("t1").record.serial_number
    # "power loss": a new service (new keyring decrypts the stored key) on the same store
    svc2 = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW + 60), ca=ca)
    assert not svc2.get("t1").state.time_set
    r2 = svc2.start_transaction("t1", ready.client_id, b"", "")
    assert r2.transaction_number == 2
    logs = check_logs(svc2, "t1")
    assert logs[-2].operation == "updateTime" and logs[-1].signature_counter == r2.signature_counter
    fields = sysdata.parse_system_operation_data(
        codec.decode_log_message(logs[-2].message).certified.system_operation_data  # type: ignore[union-attr]
    )
    assert sysdata.field(fields, 0x81) is None  # no time before the update after start-up
    assert [log.operation for log in logs].count("updateTime") == 2
    info = svc2.get("t1")
    assert info.state.time_set and info.record.certificate_chain[1:] == ca.chain()


def test_manual_time(store: TSEStore) -> None:
    svc = make(store, auto_time=False)
    svc.create_tse("t1", admin_puk=ADMIN_PUK)
    svc.set_state("t1", "UNINITIALIZED")
    expect("E_TIME_NOT_SET", svc.set_admin_pin, "t1", ADMIN_PUK, ADMIN_PIN)
    svc.update_time("t1")  # start-up synchronisation
    svc.set_admin_pin("t1", ADMIN_PUK, ADMIN_PIN)
    expect("E_ADMIN_NOT_AUTHENTICATED", svc.update_time, "t1")
    svc.authenticate("t1", ADMIN_PIN)
    svc.update_time("t1", user_id="admin")
    assert [log.operation for log in check_logs(svc, "t1")] == [
        "updateTime",
        "unblockUser",
        "authenticateUser",
        "updateTime",
    ]


def test_wrong_pin_is_logged_then_raised(store: TSEStore) -> None:
    svc = make(store)
    ready_tse(svc, "t1", logout=True)
    n = store.count_logs("t1")
    err = expect("E_PIN_INVALID", svc.authenticate, "t1", "wrong-pin")
    assert err.http_status == 401 and "wrong-pin" not in str(err)
    assert store.count_logs("t1") == n + 1
    assert store.get_state("t1").users["admin"].retries_left == 4
    last = list(store.iter_logs("t1"))[-1]
    assert last.operation == "authenticateUser"
    for _ in range(3):
        expect("E_PIN_INVALID", svc.authenticate, "t1", "wrong-pin")
    expect("E_ADMIN_PIN_BLOCKED", svc.authenticate, "t1", "wrong-pin")
    blocked_at = store.count_logs("t1")
    err = expect("E_ADMIN_PIN_BLOCKED", svc.authenticate, "t1", ADMIN_PIN)
    assert err.http_status == 423
    # the refused attempt is logged too (TR-03151: every attempt is a system log)
    assert store.count_logs("t1") == blocked_at + 1
    assert list(store.iter_logs("t1"))[-1].operation == "authenticateUser"
    assert store.get_state("t1").users["admin"].retries_left == 0
    expect("E_PUK_INVALID", svc.set_admin_pin, "t1", "wrong-puk-123", "654321")
    expect("E_PIN_INVALID_FORMAT", svc.set_admin_pin, "t1", ADMIN_PUK, "123")
    result = svc.set_admin_pin("t1", ADMIN_PUK, "654321")
    assert result.ok and result.remaining_retries == 10
    assert svc.authenticate("t1", "654321").ok
    check_logs(svc, "t1")


def test_idempotent_refs(store: TSEStore) -> None:
    svc = make(store)
    ready = ready_tse(svc, "t1")
    c = ready.client_id
    r = svc.start_transaction("t1", c, b"x", "T", ref="tx:1:1", extra={"schema": "raw"})
    again = svc.start_transaction("t1", c, b"other", "T", ref="tx:1:1")
    assert again.replayed and not r.replayed
    assert (again.signature_counter, again.signature, again.process_data) == (
        r.signature_counter,
        r.signature,
        b"x",
    )
    svc.clock.advance(5)  # type: ignore[attr-defined]
    f = svc.finish_transaction("t1", c, r.transaction_number, b"y", "T", ref="tx:1:2")
    f2 = svc.finish_transaction("t1", c, r.transaction_number, b"y", "T", ref="tx:1:2")
    assert f2.replayed and f2.start_time == r.log_time == f.start_time
    assert f2.signature_counter == f.signature_counter and f2.log_time == f.log_time
    assert svc.find_ref("t1", "tx:1:1") == again
    assert store.find_ref("t1", "tx:1:1").extra == {"schema": "raw"}  # type: ignore[union-attr]
    check_logs(svc, "t1")


def test_bad_input_changes_nothing(store: TSEStore) -> None:
    svc = make(store)
    ready = ready_tse(svc, "t1")
    before = store.get_state("t1").to_dict()
    n = store.count_logs("t1")
    for args, code in [
        ((ready.client_id, b"x" * 1_000_001, ""), "E_PROCESS_DATA_TOO_LARGE"),
        ((ready.client_id, b"", "x" * 101), "E_PROCESS_TYPE_INVALID"),
        (("bad_client", b"", ""), "E_CLIENT_ID_INVALID"),
        (("unknown", b"", ""), "E_CLIENT_NOT_FOUND"),
    ]:
        expect(code, svc.start_transaction, "t1", *args)
    expect("E_TX_NOT_FOUND", svc.finish_transaction, "t1", ready.client_id, 1, b"", "")
    after = store.get_state("t1").to_dict()
    before.pop("version"), after.pop("version")
    assert after == before and store.count_logs("t1") == n


def test_create_validation_and_listing(store: TSEStore) -> None:
    svc = make(store)
    expect("E_TSS_ID_INVALID", svc.create_tse, "bad id!")
    expect("E_CURVE_INVALID", svc.create_tse, "t1", curve="P-521")
    expect("E_TIME_FORMAT_INVALID", svc.create_tse, "t1", time_format="epoch")
    expect("E_PUK_INVALID_FORMAT", svc.create_tse, "t1", admin_puk="short")
    created = svc.create_tse("t1", curve="brainpoolP384r1", description="Kasse")
    assert len(created.admin_puk) >= 10 and created.admin_puk != created.timeadmin_puk
    assert created.record.signature_algorithm == "ecdsa-plain-SHA384"
    assert created.admin_puk not in repr(store.get_state("t1"))
    expect("E_TSE_CONFLICT", svc.create_tse, "t1")
    assert [i.record.tse_id for i in svc.list()] == ["t1"]
    assert svc.get("t1").state.lifecycle.value == "CREATED"
    expect("E_ILLEGAL_TSS_STATE_CHANGE", svc.set_state, "t1", "INITIALIZED")
    expect("E_ILLEGAL_TSS_STATE_CHANGE", svc.set_state, "t1", "BROKEN")
    assert svc.set_state("t1", "UNINITIALIZED").state.lifecycle.value == "UNINITIALIZED"
    assert store.count_logs("t1") == 0  # nothing signed so far


def test_certificate_expiry(store: TSEStore, ca: LocalCA) -> None:
    svc = make(store, ca, certificate_days=1)
    ready = ready_tse(svc, "t1")
    svc.clock.advance(2 * 86400)  # type: ignore[attr-defined]
    n = store.count_logs("t1")
    expect("E_CERTIFICATE_EXPIRED", svc.start_transaction, "t1", ready.client_id, b"", "")
    assert store.count_logs("t1") == n + 1  # stored, then raised (TR-03151)
    assert store.get_state("t1").transaction_counter == 1


def test_self_test_disable_and_export_after_disable(store: TSEStore, ca: LocalCA) -> None:
    import io

    svc = make(store, ca)
    ready = ready_tse(svc, "t1")
    assert svc.self_test("t1").operation == "selfTest"
    svc.configure("t1", description="new")
    svc.disable("t1")
    expect("E_TSS_DISABLED", svc.start_transaction, "t1", ready.client_id, b"", "")
    buf = io.BytesIO()
    summary = svc.export("t1", buf)
    assert summary.export_log is None and summary.records == store.count_logs("t1")
    check_logs(svc, "t1")


def test_threads_keep_counters_gapless(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    try:
        svc = make(store)
        ready = ready_tse(svc, "t1")
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(15):
                    r = svc.start_transaction("t1", ready.client_id, b"x", "T")
                    svc.finish_transaction("t1", ready.client_id, r.transaction_number, b"y", "T")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        logs = check_logs(svc, "t1")
        numbers = sorted({log.transaction_number for log in logs if log.transaction_number})
        assert numbers == list(range(1, 61))
        assert store.get_state("t1").open_transactions == {}
    finally:
        store.close()


def test_refused_call_after_restart_signs_no_update_time(store: TSEStore) -> None:
    svc = make(store)
    ready = ready_tse(svc, "t1")
    n = store.count_logs("t1")
    svc2 = make(store)  # restart: time not set in this process
    expect("E_CLIENT_NOT_FOUND", svc2.start_transaction, "t1", "nobody", b"", "")
    expect("E_TX_NOT_FOUND", svc2.finish_transaction, "t1", ready.client_id, 99, b"", "")
    assert store.count_logs("t1") == n and not svc2.is_time_set("t1")
    svc2.start_transaction("t1", ready.client_id, b"", "")
    ops = [log.operation for log in store.iter_logs("t1")][n:]
    assert ops == ["updateTime", "StartTransaction"] and svc2.is_time_set("t1")


def test_se_api_queries(store: TSEStore, ca: LocalCA) -> None:
    svc = make(store, ca)
    ready = ready_tse(svc, "t1")
    r = svc.start_transaction("t1", ready.client_id, b"q", "T")
    last = codec.decode_log_message(svc.read_log_message("t1"))
    assert last.signature_counter == r.signature_counter and last.signature_value == r.signature
    assert codec.decode_log_message(svc.read_log_message("t1", 1)).signature_counter == 1
    expect("E_LOG_NOT_FOUND", svc.read_log_message, "t1", 999)
    chain = svc.export_certificates("t1")
    assert len(chain) == 3 and chain[1:] == ca.chain()
    assert svc.limits("t1") == {
        "max_number_clients": 199,
        "current_number_clients": 1,
        "max_number_transactions": 2000,
        "current_number_transactions": 1,
    }
    assert svc.supported_update_variants() == ("SIGNED",)
