"""An archive the fast scan leaves to ``tarfile`` (here: a pax global header, type
``g``, which tools such as ``git archive`` write) is refused as the scan refuses a
plain one when ``tarfile`` stops before its end: at a damaged header after the
first, or at the end-of-archive blocks of the first of two joined exports.
``tarfile`` says nothing either way; the verifier answered "OK: no errors" over
the part before (6 of 16 logs for two joined exports), plain or compressed."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner
from verify_data import vendor_export, with_global_header

from opentse.cli.main import build_app
from opentse.verify.archive import member_batches
from opentse.verify.reading import UnreadableExportError
from opentse.verify.report import verify_exports

FISKALY = "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar"
GF = "fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar"  # 6 logs
WB = "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar"  # 10 logs

PACK = {"tar": lambda data: data, "tar.gz": gzip.compress}


def _refused(path: Path) -> str:
    result = CliRunner().invoke(build_app(), ["verify", str(path), "--json"])
    assert result.exit_code == 2, result.stdout
    unreadable = json.loads(result.stdout)["unreadable"]
    assert unreadable["code"] == "E_EXPORT_UNREADABLE"
    with pytest.raises(UnreadableExportError):
        for _ in member_batches(path):  # the DSFinV-K cross-check's reader
            pass
    return str(unreadable["message"])


@pytest.mark.parametrize("suffix", sorted(PACK))
def test_two_joined_exports_the_scan_leaves_to_tarfile(tmp_path: Path, suffix: str) -> None:
    first = with_global_header(vendor_export(GF), 0)
    path = tmp_path / f"all.{suffix}"
    path.write_bytes(PACK[suffix](first + vendor_export(WB).read_bytes()))
    alone = tmp_path / f"first.{suffix}"
    alone.write_bytes(PACK[suffix](first))
    assert verify_exports([alone], workers=1).to_json()["log_messages"] == 6  # read whole
    message = _refused(path)
    assert f"followed by data at octet {len(first)}" in message
    assert "another archive appended" in message


@pytest.mark.parametrize("suffix", sorted(PACK))
def test_a_damaged_header_in_an_archive_the_scan_leaves_to_tarfile(
    tmp_path: Path, suffix: str
) -> None:
    data = bytearray(with_global_header(vendor_export(FISKALY), 0))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        offset = tar.getmembers()[40].offset
    data[offset + 100] ^= 0x01
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        assert len(tar.getmembers()) == 40  # the stdlib stops there without a word
    path = tmp_path / f"damaged.{suffix}"
    path.write_bytes(PACK[suffix](bytes(data)))
    assert f"the header at octet {offset} cannot be read" in _refused(path)


def test_zero_padding_after_the_end_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "padded.tar"
    path.write_bytes(with_global_header(vendor_export(GF), 0) + bytes(30000))
    report = verify_exports([path], workers=1).to_json()
    assert report["ok"] is True and report["log_messages"] == 6
