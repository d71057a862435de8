"""The pipelined SQLite store through the real engine.

The writer thread sequences (and signs) the next batch while the committer thread
commits the last one (storage/sqlite_writer.py, storage/sqlite_batch.py). These
tests check what that must not change: every stored log's signature verifies
(checked by ``cryptography`` on the stored DER, split by asn1crypto), the
signature a caller got is the one stored, counters stay gapless under
concurrency, a replayed ref returns the stored signature, and a failing signer
stores nothing and leaves the TSE usable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import parser as asn1_parser

from opentse.crypto.keys import PlainSigner
from opentse.engine.keyring import Keyring
from opentse.engine.ports import AsyncLockedStore, LockedTSE
from opentse.engine.results import SignResult
from opentse.engine.service import TSEService
from opentse.engine.state import TSEState
from opentse.errors import OpenTSEError
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, SystemClock, ready_tse
from opentse.testing.memory_store import MemoryStore
from opentse.testing.store_conformance import append_and_save, make_log, make_record
from opentse.tr03151.oids import algorithm_oid
from opentse.tr03151.signature import verify_signature
from opentse.tr03151.signer import Signer

ECDSA_SHA256 = algorithm_oid("ecdsa-plain-SHA256")
PROCESS_DATA = b"Beleg^10.00_0.00_0.00_0.00_0.00^10.00:Bar"


def _signature_and_signed_part(message: bytes) -> tuple[bytes, bytes]:
    """Independent split of a stored LogMessage with asn1crypto's BER parser: the
    signature covers every element but the last (TR-03151 5.1)."""
    contents = asn1_parser.parse(message)[4]
    parts = []
    while contents:
        size = asn1_parser.peek(contents)
        parts.append(contents[:size])
        contents = contents[size:]
    signature = asn1_parser.parse(parts[-1])[4]
    return signature, b"".join(parts[:-1])


def _run_receipts(services: list[TSEService], each: int) -> list[SignResult]:
    """One thread per entry of ``services``, each running ``each`` receipts."""
    results: list[SignResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(service: TSEService) -> None:
        try:
            for _ in range(each):
                start = service.start_transaction("t", "C1", b"", "")
                finish = service.finish_transaction(
                    "t", "C1", start.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
                )
                with lock:
                    results.extend((start, finish))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(s,)) for s in services]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert errors == []
    return results


def test_concurrent_receipts_store_exactly_the_signatures_returned(service: TSEService) -> None:
    results = _run_receipts([service] * 12, each=15)
    record = service.store.get_record("t")
    logs = {log.signature_counter: log for log in service.store.iter_logs("t")}
    assert sorted(logs) == list(range(1, len(logs) + 1))  # gapless, no repeats
    assert len({r.signature_counter for r in results}) == len(results) == 360
    for result in results:
        signature, signed = _signature_and_signed_part(logs[result.signature_counter].message)
        assert signature == result.signature  # what the caller got is what is stored
        verify_signature(record.public_key_point, ECDSA_SHA256, signed, signature)
    assert {r.transaction_number for r in results} == set(range(1, 181))


def test_replaying_a_ref_returns_the_stored_signature(service: TSEService) -> None:
    barrier = threading.Barrier(6)
    got: list[SignResult] = []
    lock = threading.Lock()

    def same_request() -> None:
        barrier.wait()
        result = service.start_transaction("t", "C1", b"", "", ref="tx-1:1")
        with lock:
            got.append(result)

    workers = [threading.Thread(target=same_request) for _ in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(30)
    assert len(got) == 6
    assert len({(r.signature_counter, r.signature) for r in got}) == 1  # signed once
    assert sum(not r.replayed for r in got) == 1
    stored = service.store.find_ref("t", "tx-1:1")
    assert stored is not None
    assert _signature_and_signed_part(stored.message)[0] == got[0].signature


class _BrokenAfter:
    """The real key, failing from the ``n``-th signature on (a dying HSM, say)."""

    def __init__(self, signer: Signer, n: int) -> None:
        self._signer = signer
        self._left = n
        self.broken = True

    @property
    def algorithm_oid(self) -> str:
        return self._signer.algorithm_oid

    @property
    def public_key_point(self) -> bytes:
        return self._signer.public_key_point

    def sign(self, data: bytes) -> bytes:
        self._left -= 1
        if self._left < 0 and self.broken:
            raise RuntimeError("signing device gone")
        return self._signer.sign(data)


def test_a_failing_signature_stores_nothing_and_the_tse_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    store = SQLiteStore(path)
    first = TSEService(store, Keyring(TEST_SECRET), SystemClock())
    ready_tse(first, "t", client_id="C1", logout=True)
    record = store.get_record("t")
    real = first.keyring.signer(record)
    assert isinstance(real, PlainSigner)
    before = store.get_state("t").signature_counter

    keyring = Keyring(TEST_SECRET)
    broken = _BrokenAfter(real, 2)  # the new service signs UpdateTime first, then Start
    keyring.add("t", broken)
    service = TSEService(store, keyring, SystemClock())
    started = service.start_transaction("t", "C1", b"", "")
    with pytest.raises(RuntimeError, match="signing device gone"):
        service.finish_transaction(
            "t", "C1", started.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
        )
    assert store.get_state("t").signature_counter == started.signature_counter
    assert store.count_logs("t") == started.signature_counter > before

    broken.broken = False  # the device is back: the same transaction can be finished
    finished = service.finish_transaction(
        "t", "C1", started.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
    )
    assert finished.signature_counter == started.signature_counter + 1
    counters = [log.signature_counter for log in store.iter_logs("t")]
    assert counters == list(range(1, finished.signature_counter + 1))
    store.close()


def test_two_stores_on_one_file_with_the_engine_take_turns(tmp_path: Path) -> None:
    """Two processes' stores (here: two objects) signing for one TSE: conflicts are
    sequenced again, never returned and never stored twice."""
    path = tmp_path / "two.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    services = [TSEService(s, Keyring(TEST_SECRET), SystemClock()) for s in stores]
    ready_tse(services[0], "t", client_id="C1", logout=True)
    try:
        results = _run_receipts(services * 3, each=10)
        logs = {log.signature_counter: log for log in stores[0].iter_logs("t")}
        assert sorted(logs) == list(range(1, len(logs) + 1))
        for result in results:
            assert _signature_and_signed_part(logs[result.signature_counter].message)[0] == (
                result.signature
            )
        numbers = [r.transaction_number for r in results if r.operation == "StartTransaction"]
        assert len(numbers) == len(set(numbers)) == 60
    finally:
        for store in stores:
            store.close()


def test_a_failed_commit_fails_its_batch_and_the_store_goes_on(tmp_path: Path) -> None:
    """A COMMIT that fails (here: a state the JSON writer refuses, saved frozen, so
    only the batch write finds out) fails the requests written with it, stores none
    of their logs, and the next requests start again from the file."""
    store = SQLiteStore(tmp_path / "fail.db")
    store.create_tse(make_record("t"), TSEState("t"))
    append_and_save(store, "t", 1)
    outcomes: list[object] = []
    lock = threading.Lock()

    def bad(locked: LockedTSE) -> int:
        state = locked.load()
        counter = state.signature_counter + 1
        locked.append([make_log("t", counter)])
        broken = dataclasses.replace(state, signature_counter=counter)
        broken.description = b"x"  # type: ignore[assignment]
        locked.save(broken, frozen=True)
        return counter

    def call(action: Callable[[], object]) -> None:
        try:
            result = action()
        except Exception as exc:
            result = exc
        with lock:
            outcomes.append(result)

    actions: list[Callable[[], object]] = [lambda: append_and_save(store, "t")[0]] * 6
    actions.append(lambda: store.run_locked("t", bad))
    threads = [threading.Thread(target=call, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert any(getattr(o, "code", "") == "E_STORAGE_DATA" for o in failed)
        stored = [log.signature_counter for log in store.iter_logs("t")]
        assert stored == list(range(1, len(stored) + 1))
        assert len(stored) == 1 + sum(1 for o in outcomes if isinstance(o, int))
        assert store.get_state("t").signature_counter == len(stored)
        assert append_and_save(store, "t", 1) == [len(stored) + 1]
        assert store.get_state("t").description == ""
    finally:
        store.close()


async def _async_receipts(service: TSEService, tasks: int, each: int) -> list[SignResult]:
    """``tasks`` registers on one event loop, awaiting the engine (no threads)."""

    async def register() -> list[SignResult]:
        mine = []
        for _ in range(each):
            start = await service.transaction_async("start", "t", "C1")
            finish = await service.transaction_async(
                "finish", "t", "C1", start.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
            )
            mine += [start, finish]
        return mine

    done = await asyncio.gather(*(register() for _ in range(tasks)))
    return [r for mine in done for r in mine]


def test_asyncio_callers_and_threads_share_gapless_counters(service: TSEService) -> None:
    """Event-loop callers (the HTTP hot route) and blocking threads at once: one
    sequence, each caller's signature the stored one, every one verifying."""
    got: list[SignResult] = []
    loop_thread = threading.Thread(
        target=lambda: got.extend(asyncio.run(_async_receipts(service, tasks=16, each=10)))
    )
    loop_thread.start()
    threaded = _run_receipts([service] * 4, each=10)
    loop_thread.join(120)
    assert len(got) == 320
    results = got + threaded
    record = service.store.get_record("t")
    logs = {log.signature_counter: log for log in service.store.iter_logs("t")}
    assert sorted(logs) == list(range(1, len(logs) + 1))
    assert len({r.signature_counter for r in results}) == len(results) == 400
    for result in results:
        signature, signed = _signature_and_signed_part(logs[result.signature_counter].message)
        assert signature == result.signature
        verify_signature(record.public_key_point, ECDSA_SHA256, signed, signature)
    assert {r.transaction_number for r in results} == set(range(1, 201))


def test_asyncio_caller_gets_engine_errors_and_replays(service: TSEService) -> None:
    async def scenario() -> tuple[SignResult, SignResult, str]:
        first = await service.transaction_async("start", "t", "C1", ref="r:1")
        again = await service.transaction_async("start", "t", "C1", ref="r:1")
        try:
            await service.transaction_async("finish", "t", "C1", 999_999, PROCESS_DATA, "X")
        except OpenTSEError as exc:
            return first, again, exc.code
        raise AssertionError("finishing an unknown transaction was accepted")

    before = service.store.get_state("t").signature_counter
    first, again, code = asyncio.run(scenario())
    assert code == "E_TX_NOT_FOUND"
    assert again.replayed and not first.replayed
    assert (again.signature_counter, again.signature) == (first.signature_counter, first.signature)
    # one Start signed (plus the UpdateTime a new service signs first), nothing else
    assert service.store.get_state("t").signature_counter == first.signature_counter
    assert first.signature_counter - before in (1, 2)


def test_asyncio_caller_on_a_store_without_loop_support(tmp_path: Path) -> None:
    """The memory store has no ``run_locked_async``: the call runs on a thread."""
    store = MemoryStore()
    svc = TSEService(store, Keyring(TEST_SECRET), SystemClock())
    ready_tse(svc, "t", client_id="C1", logout=True)
    assert not isinstance(store, AsyncLockedStore)
    result = asyncio.run(svc.transaction_async("start", "t", "C1"))
    assert result.signature_counter == store.get_state("t").signature_counter
