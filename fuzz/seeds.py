"""Seed inputs: vendor exports from ``../shared/testdata`` (when present) and exports
written by our own code (always), so fuzzing starts from real, valid structure."""

from __future__ import annotations

import functools
import io
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from fuzz.driver import TESTDATA
from opentse.formats.qr import build_qr_payload
from opentse.formats.tar import iter_members, parse_log_filename
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.synthetic import build_export


def vendor_tars() -> list[bytes]:
    if not TESTDATA.is_dir():
        return []
    return [p.read_bytes() for p in sorted(TESTDATA.rglob("*.tar"))]


@functools.cache
def own_tars() -> tuple[bytes, ...]:
    """Two small exports of ours (unixTime, P-256; generalizedTime, brainpoolP384r1)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (count, curve, fmt) in enumerate(
            ((12, "P-256", TimeFormat.UNIX), (8, "brainpoolP384r1", TimeFormat.GENERALIZED))
        ):
            path = Path(tmp) / f"own{i}.tar"
            build_export(path, count, curve=curve, time_format=fmt)
            out.append(path.read_bytes())
    return tuple(out)


def tar_seeds() -> list[bytes]:
    small = [t for t in vendor_tars() if len(t) <= 64 * 1024]
    return [*small, *own_tars(), _unsafe_tar()]


def _unsafe_tar() -> bytes:
    """A stdlib-written TAR with a log, a symlink and a traversal name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"\x30\x03\x02\x01\x03"
        info = tarfile.TarInfo("Unixt_1700000000_Sig-1_Log-Tra_No-1_Start_Client-K.log")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.log")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        evil = tarfile.TarInfo("../evil.log")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    return buf.getvalue()


def log_seeds() -> list[bytes]:
    """Every log message member of the vendor and own TARs (DER and D-Trust's BER)."""
    logs: list[bytes] = []
    for blob in [*vendor_tars(), *own_tars()]:
        try:
            for member in iter_members(io.BytesIO(blob)):
                if parse_log_filename(member.name) is not None:
                    logs.append(member.data)
        except Exception:
            continue
    return logs


def qr_seeds() -> list[bytes]:
    key = bytes([4]) + bytes(range(1, 65))
    texts = [
        build_qr_payload(
            client_id="KASSE-1",
            process_type="Kassenbeleg-V1",
            process_data="Beleg^10.00_2.55_0.00_0.00_0.00^12.55:Bar",
            transaction_number=17,
            signature_counter=42,
            start_time=datetime(2024, 1, 1, 8, 0, 0, tzinfo=UTC),
            log_time=datetime(2024, 1, 1, 8, 0, 3, 250000, tzinfo=UTC),
            signature_algorithm="ecdsa-plain-SHA256",
            time_format=TimeFormat.UNIX,
            signature=bytes(range(64)),
            public_key=key,
        ),
        build_qr_payload(
            client_id="POS;2",
            process_type="Bestellung-V1",
            process_data='1;"Bier";4.50\n2;"Brot";3.00',
            transaction_number=1,
            signature_counter=3,
            start_time=datetime(2021, 9, 17, 10, 15, tzinfo=UTC),
            log_time=datetime(2021, 9, 17, 10, 15, tzinfo=UTC),
            signature_algorithm="ecdsa-plain-SHA384",
            time_format=TimeFormat.GENERALIZED,
            signature=bytes(96),
            public_key=bytes([4]) + bytes(96),
        ),
    ]
    return [t.encode() for t in texts]


def tar_hot_offsets(blob: bytes) -> list[int]:
    """Offsets of each member header's name, size, typeflag and linkname fields."""
    offsets: list[int] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for info in tar.getmembers():
                base = info.offset
                offsets += [base, base + 100, base + 124, base + 148, base + 156, base + 157]
    except (tarfile.TarError, EOFError):
        pass
    return offsets
