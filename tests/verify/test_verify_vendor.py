"""Every vendor archive gives exactly the numbers of testdata/tse-exports/README.md."""

from __future__ import annotations

import pytest
from verify_data import vendor_export

from opentse.verify.report import verify_exports

# archive, log messages, valid signatures, (first, last counter), gaps, started, finished
README_TABLE = [
    ("dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar", 8, 8, (677, 684), 0, 0, 0),
    ("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar", 20, 20, (625, 644), 0, 6, 6),
    ("faulty/ThreeMissingAreasOfSignatureCounter.tar", 41, 41, (2, 52), 3, 3, 4),
    ("faulty/inconsistent_certificates.tar", 3, 3, (643, 1043), 2, 0, 3),
    (
        "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar",
        97,
        97,
        (2, 98),
        0,
        12,
        12,
    ),
    (
        "fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar",
        155,
        155,
        (1, 155),
        0,
        73,
        70,
    ),
    (
        "fiskaly/TSE_Export_e7d7835e-41c0-4aa2-a3c7-3c2bd62c9e9a_202109161500.tar",
        10,
        10,
        (1, 10),
        0,
        0,
        0,
    ),
    ("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar", 6, 6, (1, 6), 0, 3, 3),
    ("fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar", 10, 10, (26, 35), 0, 5, 5),
]


@pytest.mark.parametrize(
    ("archive", "logs", "valid", "counters", "gaps", "started", "finished"),
    README_TABLE,
    ids=[row[0].split("/")[-1][:40] for row in README_TABLE],
)
def test_readme_numbers(
    archive: str,
    logs: int,
    valid: int,
    counters: tuple[int, int],
    gaps: int,
    started: int,
    finished: int,
) -> None:
    report = verify_exports([vendor_export(archive)]).to_json()
    assert report["log_messages"] == logs
    assert report["valid_signatures"] == valid
    assert report["invalid_signatures"] == []
    assert report["parse_errors"] == []
    (serial,) = report["serial_numbers"].values()
    assert (serial["first_counter"], serial["last_counter"]) == counters
    assert serial["count"] == logs
    assert len(serial["missing_ranges"]) == gaps
    assert serial["duplicates"] == []
    assert report["transactions"]["started"] == started
    assert report["transactions"]["finished"] == finished
    # nothing but the faulty archives is in error
    assert report["ok"] is (not archive.startswith("faulty/"))


def test_three_missing_ranges_each_listed() -> None:
    report = verify_exports(
        [vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar")]
    ).to_json()
    (serial,) = report["serial_numbers"].values()
    assert serial["missing_ranges"] == [[7, 9], [19, 22], [43, 45]]
    gaps = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert [f["severity"] for f in gaps] == ["error"] * 3
    assert "7 to 9" in gaps[0]["message"] and "Sig-10_" in gaps[0]["file"]
    assert "19 to 22" in gaps[1]["message"]
    assert "43 to 45" in gaps[2]["message"]


def test_inconsistent_certificate_name_reported() -> None:
    report = verify_exports([vendor_export("faulty/inconsistent_certificates.tar")]).to_json()
    mismatches = report["certificates"]["name_mismatches"]
    assert mismatches == [
        "BDB6400083CDCB70BDBEEBFA86DEA3951394567DFE693D3C849C787947715F5C_X509.crt"
    ]
    (finding,) = [f for f in report["findings"] if f["code"] == "E_CERT_NAME_MISMATCH"]
    assert finding["file"] == mismatches[0]
    assert "adb6400083cdcb70bdbeebfa86dea3951394567dfe693d3c849c787947715f5c" in finding["message"]
    assert report["certificates"]["chain"] == "ok"  # the signatures still find the key


def test_vendor_chains_and_formats() -> None:
    """D-Trust chains reach the root in the archive; the Utc_ fiskaly export keeps one
    time format; the open transactions of the 685e1812 export are listed."""
    dtrust = verify_exports([vendor_export("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar")])
    assert dtrust.to_json()["certificates"] == {"count": 3, "name_mismatches": [], "chain": "ok"}
    fiskaly = verify_exports(
        [vendor_export("fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar")]
    ).to_json()
    assert fiskaly["transactions"]["open"] == [7, 27, 28]
    codes = {f["code"] for f in fiskaly["findings"]}
    assert "E_TIME_FORMAT_MIXED" not in codes and "E_TIME_BACKWARDS" not in codes
    # a certified TSE let another client finish transaction 31: a warning, named
    (mismatch,) = [f for f in fiskaly["findings"] if f["code"] == "W_TX_CLIENT_MISMATCH"]
    assert "No-31_Finish" in mismatch["file"]


def test_two_exports_checked_as_one_sequence() -> None:
    """The two D-Trust exports of one TSE: names carry the archive, counters merge."""
    a = vendor_export("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar")
    b = vendor_export("dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar")
    report = verify_exports([a, b]).to_json()
    assert report["log_messages"] == 28
    (serial,) = report["serial_numbers"].values()
    assert (serial["first_counter"], serial["last_counter"]) == (625, 684)
    assert serial["missing_ranges"] == [[645, 676]]
    assert all(":" in f["file"] for f in report["findings"] if f["file"])


@pytest.mark.parametrize(
    "archive",
    [
        "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar",
        "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar",
    ],
)
def test_system_logs_are_named_as_asn1crypto_reads_them(archive: str) -> None:
    """Every system log of real TSEs is listed with its data; the elements the digest
    names (userId, role, result, times, description) read as asn1crypto reads the
    systemOperationData, element by element."""
    import tarfile
    from datetime import UTC, datetime

    from asn1crypto import parser

    def elements(data: bytes) -> list[tuple[int, bytes]]:
        """(tag number, content) of each TLV, by asn1crypto's parser."""
        out, pointer = [], 0
        while pointer < len(data):
            _cls, _method, tag, header, content, trailer = parser.parse(data[pointer:])
            pointer += len(header) + len(content) + len(trailer)
            out.append((tag, content))
        return out

    path = vendor_export(archive)
    report = verify_exports([path]).to_json()
    logs = report["system_logs"]
    assert logs["count"] == len(logs["logs"]) > 0
    assert not [f for f in report["findings"] if f["code"] == "W_SYSTEM_DATA_UNREADABLE"]
    with tarfile.open(path) as tar:
        raw = {m.name.rsplit("/", 1)[-1]: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    checked = 0
    for log in logs["logs"]:
        (_tag, body), *_ = elements(raw[log["file"].rsplit("/", 1)[-1]])
        outer = elements(body)
        assert outer[2][1].decode("ascii") == log["operation"]  # [0] operationType
        theirs = dict(elements(outer[3][1]))  # [1] systemOperationData's elements
        named = {f["name"]: f["value"] for f in log["fields"]}
        if log["operation"] in ("authenticateUser", "logOut", "unblockUser"):
            assert named["userId"] == repr(theirs[1].decode("ascii"))
            checked += 1
        if log["operation"] == "authenticateUser":
            assert named["role"].startswith(f"{int.from_bytes(theirs[2], 'big')} (")
            assert named["authenticationResult"] == ("true" if theirs[3] != b"\x00" else "false")
        if log["operation"] == "updateTime":
            after = datetime.fromtimestamp(int.from_bytes(theirs[2], "big"), UTC)
            assert named["timeAfterUpdate"] == after.isoformat().replace("+00:00", "Z")
            checked += 1
        if log["operation"] == "initialize":
            assert named["description"] == repr(theirs[1].decode("ascii"))
    assert checked >= 3


def test_a_gap_between_two_incremental_exports_names_both_archives() -> None:
    """D-Trust's two exports of one TSE (counters 625..644 and 677..684), verified
    together: the missing 645..676 are in neither archive, which the gap says with
    both names (it said 'removed from it, or an export of one client', as for one
    archive); a gap inside one archive keeps its words."""
    first = vendor_export("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar")
    second = vendor_export("dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar")
    for order in ([first, second], [second, first]):
        report = verify_exports(order).to_json()
        (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
        message = gap["message"]
        assert "645 to 676 missing (32 log(s))" in message
        assert f"the log before the gap is in {first.name}, the one after it in {second.name}" in (
            message
        )
        assert "an export between them is missing" in message
        assert "removed from it, or an export of one client" not in message
    single = verify_exports([vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar")])
    gaps = [f for f in single.to_json()["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert len(gaps) == 3
    assert all("these logs are not in the export (removed from it" in g["message"] for g in gaps)
