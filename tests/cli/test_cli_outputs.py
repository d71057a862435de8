"""``opentse export`` and ``opentse demo`` with an output that cannot be written, and
``demo --curve`` on a folder that already has a demo TSE: one-line errors before
anything is signed, and the curve asked for is the curve used."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from cli_support import run

from opentse.installation import Installation


def _counters(data: Path) -> dict[str, int]:
    with Installation.open(data) as inst:
        return {i.record.tse_id: i.state.signature_counter for i in inst.service.list()}


def test_export_to_a_folder_or_a_missing_folder_is_refused_before_signing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "d"
    tse_id = json.loads(run("demo", "--data", str(data), "--transactions", "2", "--json").stdout)[
        "tse_id"
    ]
    before = _counters(data)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for out, words in ((folder, "is a folder"), (tmp_path / "nope" / "x.tar", "does not exist")):
        result = run("export", str(out), "--tss", tse_id, "--data", str(data), "--json", ok=False)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.startswith("error E_EXPORT_OUTPUT:") and words in result.stderr
        assert "Traceback" not in result.output
    assert _counters(data) == before
    assert list(folder.iterdir()) == [] and not (tmp_path / "nope").exists()
    good = tmp_path / "good.tar"
    summary = json.loads(
        run("export", str(good), "--tss", tse_id, "--data", str(data), "--json").stdout
    )
    with tarfile.open(good) as tf:
        assert sum(n.endswith(".log") for n in tf.getnames()) == summary["records"]


def test_demo_export_to_a_folder_is_refused_before_the_receipts(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("demo", "--data", str(data), "--transactions", "1")
    before = _counters(data)
    result = run("demo", "--data", str(data), "--export", str(tmp_path), "--json", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error E_EXPORT_OUTPUT:") and "Traceback" not in result.output
    assert _counters(data) == before


@pytest.mark.parametrize("curve", ["P-384", "brainpoolP256r1", "brainpoolP384r1"])
def test_demo_curve_on_a_used_folder(tmp_path: Path, curve: str) -> None:
    data = str(tmp_path / "d")
    first = json.loads(run("demo", "--data", data, "--transactions", "1", "--json").stdout)
    assert first["curve"] == "P-256"
    other = json.loads(
        run("demo", "--data", data, "--transactions", "1", "--curve", curve, "--json").stdout
    )
    assert other["curve"] == curve and other["created"] and other["tse_id"] != first["tse_id"]
    again = json.loads(
        run("demo", "--data", data, "--transactions", "1", "--curve", curve, "--json").stdout
    )
    assert again["tse_id"] == other["tse_id"] and not again["created"]
    plain = json.loads(
        run("demo", "--data", data, "--transactions", "1", "--curve", "P-256", "--json").stdout
    )
    assert plain["tse_id"] == first["tse_id"]


def test_demo_unknown_curve_signs_nothing_and_makes_no_folder(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("demo", "--data", str(data), "--transactions", "1")
    before = _counters(data)
    for folder in (data, tmp_path / "new"):
        result = run("demo", "--data", str(folder), "--curve", "P-999", "--json", ok=False)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.startswith("error E_CURVE_INVALID:")
    assert _counters(data) == before and not (tmp_path / "new").exists()
