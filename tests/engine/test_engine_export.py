"""exportData: selection semantics, limits, and the TAR read back by stdlib tarfile,
the codec + ECDSA verification, and the verifier (opentse.verify) as a whole."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from opentse.crypto.ca import LocalCA
from opentse.crypto.keys import public_key_point
from opentse.engine.export import ExportFilter
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.formats import tar as tarfmt
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, FrozenClock, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.signature import verify_signature

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.create(TEST_SECRET, NOW - 3600)


@pytest.fixture(scope="module")
def svc(ca: LocalCA, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """TX 1 (C1) spans an admin login and client registration; TX 2 (C2) and 3 (C1)
    are later; TX 4 stays open. Time advances 10 s per step."""
    store = SQLiteStore(tmp_path_factory.mktemp("export") / "t.db")
    service = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW), ca=ca)
    ready_tse(service, "t1", client_id="C1")
    clock = service.clock
    step = lambda: clock.advance(10)  # noqa: E731
    step()
    t1 = service.start_transaction("t1", "C1", b"a", "Kassenbeleg-V1")
    step()
    service.register_client("t1", "C2")
    step()
    service.update_transaction("t1", "C1", t1.transaction_number, b"b", "Kassenbeleg-V1")
    step()
    service.finish_transaction("t1", "C1", t1.transaction_number, b"c", "Kassenbeleg-V1")
    step()
    t2 = service.start_transaction("t1", "C2", b"", "SonstigerVorgang")
    step()
    service.finish_transaction("t1", "C2", t2.transaction_number, b"", "SonstigerVorgang")
    step()
    t3 = service.start_transaction("t1", "C1", b"", "Kassenbeleg-V1")
    service.finish_transaction("t1", "C1", t3.transaction_number, b"", "Kassenbeleg-V1")
    step()
    service.start_transaction("t1", "C1", b"", "Kassenbeleg-V1")
    yield service
    store.close()


def export(
    svc: TSEService, log: bool = False, **kw: Any
) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    buf = io.BytesIO()
    svc.export("t1", buf, ExportFilter(**kw), log_export=log)
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:") as tf:
        members = tf.getmembers()
        data = {m.name: tf.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    return members, data


def log_counters(data: dict[str, bytes]) -> list[int]:
    return sorted(
        codec.decode_log_message(v).signature_counter for k, v in data.items() if k.endswith(".log")
    )


def test_full_export_reads_back(svc: Any, ca: LocalCA) -> None:
    members, data = export(svc)
    record = svc.store.get_record("t1")
    assert all(m.isreg() for m in members)
    assert members[0].name == "info.csv"
    assert tarfmt.parse_info_csv(data["info.csv"])["manufacturer"] == "opentse"
    certs = [n for n in data if n.endswith("_X509.cer")]
    assert f"{record.serial_number.hex().upper()}_X509.cer" in certs and len(certs) == 3
    tse_cert = x509.load_der_x509_certificate(
        data[f"{record.serial_number.hex().upper()}_X509.cer"]
    )
    assert public_key_point(tse_cert.public_key()) == record.public_key_point  # type: ignore[arg-type]
    logs = {n: v for n, v in data.items() if n.endswith(".log")}
    stored = list(svc.store.iter_logs("t1"))
    assert sorted(logs) == sorted(s.filename for s in stored)
    for name, der in logs.items():
        msg = codec.decode_log_message(der)
        parsed = tarfmt.parse_log_filename(name)
        assert parsed is not None and parsed.signature_counter == msg.signature_counter
        verify_signature(
            record.public_key_point,
            msg.signature_algorithm,
            msg.signed_data or b"",
            msg.signature_value,
            record.curve,
        )
    assert [m.mtime for m in members if m.name.endswith(".log")][-1] == stored[-1].log_time


def test_verifier_accepts_export(svc: Any, ca: LocalCA, tmp_path: Path) -> None:
    from opentse.verify.report import verify_exports

    out = tmp_path / "e.tar"
    with out.open("wb") as fh:
        svc.export("t1", fh, log_export=False)
    report = verify_exports([out], trust=[x509.load_der_x509_certificate(ca.chain()[1])])
    assert report.ok, [f.to_json() for f in report.findings]
    assert report.log_messages == svc.store.count_logs("t1")


def test_filter_by_transaction_includes_system_logs_in_between(svc: Any) -> None:
    stored = list(svc.store.iter_logs("t1"))
    tx1 = [s.signature_counter for s in stored if s.transaction_number == 1]
    _, data = export(svc, transaction_number=1)
    expected = list(range(tx1[0], tx1[-1] + 1))  # Start .. Finish, with registerClient
    assert log_counters(data) == expected
    ops = [codec.decode_log_message(v).certified for k, v in data.items() if k.endswith(".log")]
    assert sum(1 for c in ops if getattr(c, "operation_type", "") == "registerClient") == 1
    _, data = export(svc, start_transaction_number=2, end_transaction_number=3)
    assert [s.transaction_number for s in stored if s.signature_counter in log_counters(data)] == [
        2,
        2,
        3,
        3,
    ]


def test_filter_by_client_date_and_counter(svc: Any) -> None:
    stored = list(svc.store.iter_logs("t1"))
    _, data = export(svc, client_id="C2")
    assert log_counters(data) == [s.signature_counter for s in stored if s.client_id == "C2"]
    t = stored[-3].log_time
    _, data = export(svc, start_date=t, end_date=t)  # inclusive on both ends
    assert log_counters(data) == [s.signature_counter for s in stored if s.log_time == t]
    _, data = export(svc, start_signature_counter=3, end_signature_counter=5)
    assert log_counters(data) == [3, 4, 5]
    _, data = export(svc, client_id="C1", transaction_number=1, start_signature_counter=1)
    assert len(log_counters(data)) == 4


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"transaction_number": 1, "start_date": NOW}, "E_PARAMETER_MISMATCH"),
        ({"start_transaction_number": 1, "end_date": NOW}, "E_PARAMETER_MISMATCH"),
        ({"transaction_number": 1, "end_transaction_number": 3}, "E_PARAMETER_MISMATCH"),
        ({"start_signature_counter": 5, "end_signature_counter": 4}, "E_PARAMETER_MISMATCH"),
        ({"maximum_number_records": 3}, "E_TOO_MANY_RECORDS"),
        ({"maximum_number_records": 0}, "E_PARAMETER_MISMATCH"),
    ],
)
def test_refusals_write_nothing(svc: Any, kw: dict[str, Any], code: str) -> None:
    buf = io.BytesIO()
    with pytest.raises(OpenTSEError) as info:
        svc.export("t1", buf, ExportFilter(**kw))
    assert info.value.code == code and buf.getvalue() == b""


def test_unknown_transaction_exports_empty_archive(svc: Any) -> None:
    members, _ = export(svc, transaction_number=999)
    assert [m.name for m in members if m.name.endswith(".log")] == []


def test_export_logs_itself_afterwards_and_reports_progress(svc: Any) -> None:
    seen: list[tuple[int, int]] = []
    n = svc.store.count_logs("t1")
    summary = svc.export("t1", io.BytesIO(), progress=lambda d, t: seen.append((d, t)))
    assert summary.records == n and seen[0] == (0, n) and seen[-1] == (n, n)
    assert summary.export_log is not None and summary.export_log.signature_counter == n + 1
    assert svc.store.get_state("t1").exported_up_to == n
    assert svc.store.count_logs("t1") == n + 1
    assert summary.bytes_written % 512 == 0


def test_export_is_a_snapshot_while_signing_goes_on(svc: Any) -> None:
    """Logs signed while the archive is written are not in it; count == written."""
    n = svc.store.count_logs("t1")
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(total)
        if done == 0:  # after counting, before streaming: sign two more logs
            svc.start_transaction("t1", "C1", b"", "")
            svc.self_test("t1")

    buf = io.BytesIO()
    summary = svc.export("t1", buf, log_export=False, progress=progress)
    assert summary.records == n == seen[0] == seen[-1]
    assert summary.last_signature_counter == n
    assert svc.store.count_logs("t1") == n + 2


def _independent_reader() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "independent" / "asn1_reader.py"
    if not path.exists():
        pytest.skip("tests/independent/asn1_reader.py not available")
    spec = importlib.util.spec_from_file_location("asn1_reader_for_engine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_read_by_independent_asn1_reader(svc: Any) -> None:
    """Every log in the TAR read by asn1crypto (no opentse code) and its signature
    checked by cryptography over the signed bytes that reader found."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    reader = _independent_reader()
    record = svc.store.get_record("t1")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), record.public_key_point)
    _, data = export(svc)
    logs = {k: v for k, v in data.items() if k.endswith(".log")}
    assert logs
    for name, der in logs.items():
        fields = reader.read(der)
        assert fields["version"] == 2 and fields["serialNumber"] == record.serial_number
        assert f"_Sig-{fields['signatureCounter']}_" in name
        sig = fields["signatureValue"]
        half = len(sig) // 2
        dss = encode_dss_signature(
            int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
        )
        public.verify(dss, fields["signedData"], ec.ECDSA(hashes.SHA256()))


def test_a_defective_tse_exports_its_data_and_signs_nothing(ca: LocalCA, tmp_path: Path) -> None:
    """fiskaly: a DEFECTIVE TSS still exports (its journal must stay archivable); it
    cannot sign, so there is no exportData log and no counter moves."""
    from opentse.engine import tse as tse_steps
    from opentse.engine.rules import Op
    from opentse.engine.transactions import can_sign
    from opentse.verify.report import verify_exports

    store = SQLiteStore(tmp_path / "d.db")
    try:
        service = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW), ca=ca)
        ready_tse(service, "d1", client_id="C1")
        started = service.start_transaction("d1", "C1", b"", "Kassenbeleg-V1")
        service.finish_transaction(
            "d1",
            "C1",
            started.transaction_number,
            b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar",
            "Kassenbeleg-V1",
        )
        store.run_locked("d1", lambda t: t.save(tse_steps.mark_defective(t.load())))
        before = store.get_state("d1")
        out = tmp_path / "defective.tar"
        with out.open("wb") as fh:
            summary = service.export("d1", fh)
        assert summary.export_log is None
        assert summary.records == store.count_logs("d1") == before.signature_counter
        after = store.get_state("d1")
        assert after.signature_counter == before.signature_counter
        assert after.exported_up_to == before.exported_up_to  # nothing logged the export
        report = verify_exports([out], trust=[x509.load_der_x509_certificate(ca.chain()[1])])
        assert report.ok, [f.to_json() for f in report.findings]
        assert report.log_messages == before.signature_counter
        logged = tse_steps.export_log(service.context("d1"), after, NOW, description="")
        assert logged.logs == () and logged.state is after
        with pytest.raises(OpenTSEError) as info:  # nothing signs, whatever the op table says
            can_sign(after, Op.EXPORT)
        assert info.value.code == "E_TSS_DEFECTIVE"
    finally:
        store.close()
