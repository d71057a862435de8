"""Every member of every real vendor export (fiskaly, D-Trust) is understood: log names
parse (and our writer names them identically), certificates are named like ours,
info.csv reads in both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentse.formats.tar import (
    certificate_filename,
    iter_members,
    log_filename,
    parse_certificate_filename,
    parse_info_csv,
    parse_log_filename,
)
from opentse.tr03151.logtime import LogTime

EXPORTS = Path(__file__).resolve().parents[2] / "../shared/testdata/tse-exports"
ARCHIVES = sorted(EXPORTS.glob("*/*.tar")) if EXPORTS.is_dir() else []

# Names that do not match the SHA-256 of the key's uncompressed point, and why.
KNOWN_CERT_NAME_MISMATCHES = {
    # the deliberately faulty archive (README): name BDB64..., key hash adb64...
    "bdb6400083cdcb70bdbeebfa86dea3951394567dfe693d3c849c787947715f5c",
    # fiskaly's old test CA: its file name is not the hash of its key in any encoding
    "dca282b45885cf64d2b80a98e466a303e6799f77b1fa59774b54b6e77493a7ac",
}

pytestmark = pytest.mark.skipif(
    not ARCHIVES, reason=f"vendor exports not found in {EXPORTS} (shared/testdata absent)"
)


@pytest.mark.parametrize("archive", ARCHIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_member_is_understood(archive: Path) -> None:
    logs = certs = infos = 0
    for member in iter_members(archive):
        parsed = parse_log_filename(member.name)
        if parsed is not None:
            logs += 1
            assert member.name.endswith(".log")
            unix = parsed.unix_time()
            assert unix is not None and unix > 1_500_000_000
            # our writer produces the vendor's name from the parsed fields
            again = log_filename(
                parsed.log_type,
                LogTime(parsed.time_format, unix, text=parsed.time_text),
                parsed.signature_counter,
                operation=parsed.operation,
                transaction_number=parsed.transaction_number,
                client_id=parsed.client_id,
                fc=parsed.fc,
            )
            assert again == member.name
            continue
        stem = parse_certificate_filename(member.name)
        if stem is not None:
            certs += 1
            ours = certificate_filename(member.data)
            if stem in KNOWN_CERT_NAME_MISMATCHES:
                assert ours[:64].lower() != stem
            else:
                assert ours[:64].lower() == stem
            continue
        assert member.name == "info.csv", member.name
        infos += 1
        info = parse_info_csv(member.data)
        assert set(info) == {"description", "manufacturer", "version"}
        assert "gmbh" in info["manufacturer"].lower()
        assert not info["version"].startswith(('"', " "))
    assert logs > 0 and certs > 0
    assert infos == 1


def test_known_counts_from_readme() -> None:
    # README table: number of log messages per archive
    expected = {
        "4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar": 8,
        "54312d72-d3ed-413c-9d32-7f457576e4c8.tar": 20,
        "ThreeMissingAreasOfSignatureCounter.tar": 41,
        "inconsistent_certificates.tar": 3,
        "TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar": 97,
        "TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar": 155,
        "TSE_Export_e7d7835e-41c0-4aa2-a3c7-3c2bd62c9e9a_202109161500.tar": 10,
        "TSSProtokoll_GF_2021-09-28_11_07_59.tar": 6,
        "TSSProtokoll_WB_2021-09-27_12_09_56.tar": 10,
    }
    for archive in ARCHIVES:
        names = [m.name for m in iter_members(archive)]
        logs = [n for n in names if parse_log_filename(n) is not None]
        assert len(logs) == expected[archive.name], archive.name
        counters = [parse_log_filename(n).signature_counter for n in logs]  # type: ignore[union-attr]
        assert len(set(counters)) == len(counters)
