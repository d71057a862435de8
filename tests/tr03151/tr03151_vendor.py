"""Loads the vendor TAR exports of ../shared/testdata (read-only test input, never
copied into the repository) with the stdlib tarfile and cryptography only."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

EXPORTS = Path(__file__).resolve().parents[2] / "../shared/testdata/tse-exports"

# README of tse-exports: archive -> (log messages, valid signatures, first counter,
# last counter, gaps, transactions started, transactions finished)
FACTS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar": (8, 8, 677, 684, 0, 0, 0),
    "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar": (20, 20, 625, 644, 0, 6, 6),
    "faulty/ThreeMissingAreasOfSignatureCounter.tar": (41, 41, 2, 52, 3, 3, 4),
    "faulty/inconsistent_certificates.tar": (3, 3, 643, 1043, 2, 0, 3),
    "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar": (
        97,
        97,
        2,
        98,
        0,
        12,
        12,
    ),
    "fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar": (
        155,
        155,
        1,
        155,
        0,
        73,
        70,
    ),
    "fiskaly/TSE_Export_e7d7835e-41c0-4aa2-a3c7-3c2bd62c9e9a_202109161500.tar": (
        10,
        10,
        1,
        10,
        0,
        0,
        0,
    ),
    "fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar": (6, 6, 1, 6, 0, 3, 3),
    "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar": (10, 10, 26, 35, 0, 5, 5),
}


def require_exports() -> Path:
    if not EXPORTS.is_dir():
        pytest.skip(f"vendor exports not found at {EXPORTS} (shared/testdata beside the repo)")
    return EXPORTS


@dataclass
class Archive:
    name: str
    logs: dict[str, bytes] = field(default_factory=dict)  # member name -> bytes
    certificates: dict[str, list[x509.Certificate]] = field(default_factory=dict)

    def keys_by_serial(self) -> dict[bytes, ec.EllipticCurvePublicKey]:
        """SHA-256 of the uncompressed public point -> key, over every certificate."""
        out: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for certs in self.certificates.values():
            for cert in certs:
                key = cert.public_key()
                assert isinstance(key, ec.EllipticCurvePublicKey)
                out[hashlib.sha256(point(key)).digest()] = key
        return out


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def load(relative: str) -> Archive:
    archive = Archive(relative)
    with tarfile.open(require_exports() / relative) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            base = member.name.rsplit("/", 1)[-1]
            if base.lower().endswith(".log"):
                archive.logs[base] = data
            elif "_x509." in base.lower():
                if data.lstrip().startswith(b"-----BEGIN"):
                    archive.certificates[base] = x509.load_pem_x509_certificates(data)
                else:
                    archive.certificates[base] = [x509.load_der_x509_certificate(data)]
    return archive
