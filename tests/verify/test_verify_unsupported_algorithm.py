"""A log signed with an algorithm the verifier does not implement is reported as
such (E_ALGORITHM_UNSUPPORTED, "cannot be verified"), never as a wrong signature,
and the other logs of the export are still checked."""

from __future__ import annotations

from pathlib import Path

from opentse.formats.tar import TarWriter, certificate_filename, info_csv, log_filename
from opentse.tr03151.codec import assemble, encode_signed_part
from opentse.tr03151.logmessage import LogMessage, SystemLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.verify.report import verify_exports
from opentse.verify.synthetic import SyntheticTSE

# TeleTrusT ecgdsa-with-SHA256 (EC-GDSA, ISO 14888-3): a real signature OID outside
# TR-03116-5's list, so no verifier of ours knows it
ECGDSA_SHA256 = "1.3.36.3.3.2.5.4.3"
T0 = 1_700_000_000


def test_unknown_algorithm_is_unsupported_not_invalid(tmp_path: Path) -> None:
    tse = SyntheticTSE("P-256")
    members: dict[str, bytes] = {}
    for counter, oid in enumerate(
        (tse.signer.algorithm_oid, ECGDSA_SHA256, ECGDSA_SHA256, tse.signer.algorithm_oid),
        start=1,
    ):
        log_time = LogTime(TimeFormat.UNIX, T0 + counter)
        msg = LogMessage(SystemLogData("selfTest", b""), tse.serial, oid, counter, log_time)
        signed = encode_signed_part(msg)
        name = log_filename(msg.log_type, log_time, counter, operation="selfTest")
        members[name] = assemble(signed, tse.signer.sign(signed))  # ECDSA bytes either way
    path = tmp_path / "e.tar"
    with path.open("wb") as out, TarWriter(out) as tar:
        tar.add("info.csv", info_csv("x", "opentse-test", "1"), 0)
        tar.add(certificate_filename(tse.certificate), tse.certificate, 0)
        for name, data in members.items():
            tar.add(name, data, T0)
    report = verify_exports([path]).to_json()
    names = list(members)
    assert report["valid_signatures"] == 2 and report["invalid_signatures"] == []
    assert report["ok"] is False  # two logs nobody could check
    found = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["code"], f["file"]) for f in found] == [("E_ALGORITHM_UNSUPPORTED", names[1])]
    assert "signature algorithm 1.3.36.3.3.2.5.4.3 not supported" in found[0]["message"]
    assert "2 log(s) cannot be verified" in found[0]["message"]
