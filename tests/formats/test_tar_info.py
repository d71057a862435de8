"""info.csv of our TAR export says which TSE wrote it, as the vendors' do (fiskaly:
the TSS's description and id; D-Trust: the TSE's id): read with stdlib tarfile and
csv, its layout checked against the vendor files in shared/testdata."""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse import __version__
from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

EXPORTS = Path(__file__).resolve().parents[2] / "../shared/testdata/tse-exports"


def _info_rows(tar: Path) -> list[list[str]]:
    with tarfile.open(tar) as archive:
        member = archive.extractfile("info.csv")
        assert member is not None
        text = member.read().decode("utf-8")
    return list(csv.reader(io.StringIO(text), skipinitialspace=True))


def _export(data: Path, tss: str, out: Path) -> Path:
    result = CliRunner().invoke(
        build_app(), ["export", str(out), "--tss", tss, "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_each_tse_names_itself_in_info_csv(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serials = {}
    with Installation.open(data) as inst:
        for tss in ("tse-laden", "tse-cafe"):
            ready_tse(inst.service, tss, client_id="K1", logout=True)
            serials[tss] = inst.service.get(tss).record.serial_number.hex()
        inst.service.authenticate("tse-cafe", "123456")
        inst.service.configure("tse-cafe", description="Cafe am Markt")
        inst.service.logout("tse-cafe")
    infos = {}
    for tss in serials:
        (row,) = _info_rows(_export(data, tss, tmp_path / f"{tss}.tar"))
        # the vendors' layout: one line, three "key:" / value pairs in this order
        assert row[0::2] == ["description:", "manufacturer:", "version:"]
        infos[tss] = dict(zip(row[0::2], row[1::2], strict=True))
    laden, cafe = infos["tse-laden"], infos["tse-cafe"]
    assert laden["description:"] != cafe["description:"]
    for tss, info in infos.items():
        assert tss in info["description:"] and serials[tss] in info["description:"]
        assert "not BSI-certified" in info["description:"]
        assert info["manufacturer:"] == "opentse" and info["version:"] == __version__
    assert cafe["description:"].startswith("Cafe am Markt")


@pytest.mark.skipif(not EXPORTS.is_dir(), reason=f"vendor exports not found in {EXPORTS}")
def test_the_layout_is_the_vendors_quoted_one(tmp_path: Path) -> None:
    """Ours reads like the quoted vendor files (fiskaly, D-Trust): every cell quoted."""
    vendor = EXPORTS / "dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar"
    with tarfile.open(vendor) as archive:
        member = archive.extractfile("info.csv")
        assert member is not None
        theirs = member.read().decode("utf-8")
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t1", client_id="K1", logout=True)
    with tarfile.open(_export(data, "t1", tmp_path / "t1.tar")) as archive:
        member = archive.extractfile("info.csv")
        assert member is not None
        ours = member.read().decode("utf-8")
    for text in (theirs, ours):
        cells = text.rstrip("\n").split('","')
        assert len(cells) == 6 and text.startswith('"description:","')
        assert text.rstrip("\n").endswith('"') and text.count("\n") <= 1
