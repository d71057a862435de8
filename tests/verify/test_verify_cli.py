"""``opentse verify``: exit codes, the --json shape, the HTML report, --trust."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner
from verify_data import vendor_export

from opentse.cli.main import build_app

GOOD = "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar"
FAULTY = "faulty/ThreeMissingAreasOfSignatureCounter.tar"
D_TRUST_ROOT = "34E9DBDEA9FADF71A3BF5402FC47590739E508EB2031758514D897CB7DB99CD2_X509.crt"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["verify", *args])
    return result.exit_code, result.stdout


def test_exit_codes() -> None:
    assert _run(str(vendor_export(GOOD)))[0] == 0
    assert _run(str(vendor_export(FAULTY)))[0] == 1


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 40)
    assert _run(str(junk))[0] == 2
    assert _run(str(tmp_path / "absent.tar"))[0] == 2


def test_json_shape() -> None:
    code, out = _run(str(vendor_export(FAULTY)), "--json")
    assert code == 1
    body = json.loads(out)
    assert list(body) == [
        "ok",
        "log_messages",
        "valid_signatures",
        "invalid_signatures",
        "parse_errors",
        "serial_numbers",
        "transactions",
        "certificates",
        "findings",
        "info",
        "errors",
        "warnings",
        "info_findings",
        "system_logs",
    ]
    assert body["ok"] is False
    (info,) = body["info"]  # which TSE made the export, as its info.csv says
    assert info["file"] == "info.csv" and info["manufacturer"] == "fiskaly GmbH"
    (serial,) = body["serial_numbers"].values()
    assert list(serial) == [
        "first_counter",
        "last_counter",
        "count",
        "missing_ranges",
        "duplicates",
        "first_time",
        "last_time",
    ]
    # the period the logs cover: a tail cut off the export leaves no counter gap
    assert serial["first_time"] == "2021-07-28T12:36:07+00:00"  # the names say so too
    assert serial["last_time"] == "2021-08-27T05:16:14+00:00"
    assert list(body["transactions"]) == ["started", "finished", "open"]
    assert list(body["certificates"]) == ["count", "name_mismatches", "chain"]
    assert body["certificates"]["chain"] in ("ok", "untrusted", "broken")
    for finding in body["findings"]:
        assert list(finding) == ["severity", "code", "message", "file"]
        assert finding["severity"] in ("error", "warning", "info")


def test_html_report(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    code, out = _run(str(vendor_export(FAULTY)), "--html", str(html))
    assert code == 1 and "NOT OK" in out
    page = html.read_text(encoding="utf-8")
    assert page.index('id="summary"') < page.index('id="timeline"') < page.index('id="findings"')
    assert "<svg" in page and "missing 7..9" in page and "missing 43..45" in page
    assert "<td>41</td>" in page  # log messages in the summary
    assert 'id="transactions"' in page and "1a69a823-8302-4dc3-bf93-22d608c40085" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_trust_roots(tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(vendor_export(GOOD)) as tar:
        root = tar.extractfile(D_TRUST_ROOT).read()  # type: ignore[union-attr]
    trusted = tmp_path / "root.pem"
    trusted.write_bytes(root)
    code, out = _run(str(vendor_export(GOOD)), "--json", "--trust", str(trusted))
    assert code == 0 and json.loads(out)["certificates"]["chain"] == "ok"
    # a different root: the auditor asked for that root, the D-Trust chain does not end
    # there, so the logs are not those of a TSE the auditor trusts: an error, exit 1
    with tarfile.open(vendor_export("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar")) as tar:
        other = next(m for m in tar.getmembers() if m.name.endswith(".pem"))
        trusted.write_bytes(tar.extractfile(other).read())  # type: ignore[union-attr]
    code, out = _run(str(vendor_export(GOOD)), "--json", "--trust", str(trusted))
    body = json.loads(out)
    assert code == 1 and body["ok"] is False
    assert body["certificates"]["chain"] == "untrusted"
    (untrusted,) = [f for f in body["findings"] if f["code"] == "E_CHAIN_UNTRUSTED"]
    assert untrusted["severity"] == "error" and "--trust" in untrusted["message"]
    code, out = _run(str(vendor_export(GOOD)), "--trust", str(trusted))
    assert code == 1 and "NOT OK" in out
    trusted.write_bytes(b"garbage")
    assert _run(str(vendor_export(GOOD)), "--trust", str(trusted))[0] == 2


def _demo_export(data: Path, tar: Path) -> None:
    demo = CliRunner().invoke(
        build_app(),
        ["demo", "--data", str(data), "--transactions", "2", "--export", str(tar), "--json"],
    )
    assert demo.exit_code == 0, demo.output


def _root_pem(tar_path: Path, out: Path) -> Path:
    """The self-signed certificate an export carries, as PEM."""
    import tarfile

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            if member.name.lower().endswith(".cer"):
                cert = x509.load_der_x509_certificate(tar.extractfile(member).read())  # type: ignore[union-attr]
                if cert.issuer == cert.subject:
                    out.write_bytes(cert.public_bytes(Encoding.PEM))
                    return out
    raise AssertionError("no root in the export")


def test_forged_export_of_another_installation_fails_against_the_trusted_root(
    tmp_path: Path,
) -> None:
    """A cheat's complete export (own TSE, own CA with the same names) is consistent in
    itself; only --trust can tell. With the shop's real root it must not read OK."""
    real, forged = tmp_path / "real.tar", tmp_path / "forged.tar"
    _demo_export(tmp_path / "shop", real)
    _demo_export(tmp_path / "cheat", forged)
    root = _root_pem(real, tmp_path / "root.pem")
    code, out = _run(str(real), "--trust", str(root))
    assert code == 0 and "OK: no errors" in out and "--trust root" in out
    code, out = _run(str(forged), "--trust", str(root))
    assert code == 1 and "NOT OK" in out and "E_CHAIN_UNTRUSTED" in out
    # without --trust nothing can tell: the report says the root was not checked
    code, out = _run(str(forged))
    assert code == 0 and "root not checked" in out


def test_html_transactions_name_their_tse_when_several_are_verified(tmp_path: Path) -> None:
    """Two TSEs' exports together: both have a transaction 1, so each row says which
    TSE it belongs to; the times say they are UTC."""
    first = vendor_export("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar")
    second = vendor_export("fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar")
    page = tmp_path / "r.html"
    code, _ = _run(str(first), str(second), "--html", str(page))
    assert code == 0
    table = page.read_text(encoding="utf-8").split('id="transactions"')[1]
    assert "<th>TSE</th>" in table and "<th>Start (UTC)</th>" in table
    assert "81de43efe9844e1a" in table and "a62431499ff4bd73" in table


def test_text_report_names_the_tse_from_info_csv() -> None:
    code, out = _run(str(vendor_export(GOOD)))
    assert code == 0
    assert "TSE (info.csv)" in out


def test_html_to_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_app(), ["verify", str(vendor_export(GOOD)), "--html", str(tmp_path / "no/r.html")]
    )
    assert result.exit_code == 2 and not isinstance(result.exception, OSError)
    assert "cannot write --html" in result.output
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        result = CliRunner().invoke(
            build_app(), ["verify", str(vendor_export(GOOD)), "--html", str(read_only / "r.html")]
        )
    finally:
        read_only.chmod(0o700)
    import os

    if os.geteuid() != 0:  # root writes anyway
        assert result.exit_code == 2 and "cannot write --html" in result.output
        assert "OK: no errors" in result.stdout  # the report itself is still printed


def test_each_archives_tse_is_named_when_several_are_verified() -> None:
    """A D-Trust and a fiskaly export together: both info.csv files are reported, not
    only the last one read."""
    dtrust = vendor_export(GOOD)
    fiskaly = vendor_export("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar")
    code, out = _run(str(dtrust), str(fiskaly), "--json")
    assert code == 0
    makers = sorted(i["manufacturer"] for i in json.loads(out)["info"])
    assert makers == ["D-Trust GmbH", "fiskaly Gmbh"]
    code, out = _run(str(dtrust), str(fiskaly))
    assert code == 0 and "D-Trust GmbH" in out and "fiskaly Gmbh" in out


def test_workers_below_one_is_a_usage_error() -> None:
    """--workers 0 or -3 ran with a default instead, as if the option were not given."""
    for value in ("0", "-3"):
        result = CliRunner().invoke(
            build_app(), ["verify", str(vendor_export(GOOD)), "--workers", value]
        )
        assert result.exit_code == 2
        assert "--workers" in result.output and "greater than or equal to 1" in result.output
    assert _run(str(vendor_export(GOOD)), "--workers", "1")[0] == 0
