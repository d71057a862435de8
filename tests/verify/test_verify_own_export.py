"""Our own engine's export (``opentse demo --export``) passes the verifier with no
finding at all, and the demo's receipt QR code verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.verify.receipt import verify_receipt
from opentse.verify.report import verify_exports

pytest.importorskip("opentse.engine.service", reason="engine not available")


@pytest.mark.parametrize("curve", ["P-256", "brainpoolP384r1"])
def test_demo_export_verifies_cleanly(tmp_path: Path, curve: str) -> None:
    tar = tmp_path / "export.tar"
    demo = CliRunner().invoke(
        build_app(),
        [
            "demo",
            "--data",
            str(tmp_path / "data"),
            "--transactions",
            "7",
            "--curve",
            curve,
            "--export",
            str(tar),
            "--json",
        ],
    )
    assert demo.exit_code == 0, demo.output
    qr = json.loads(demo.stdout)["qr_code_data"]

    report = verify_exports([tar]).to_json()
    assert report["ok"] is True
    assert report["findings"] == []
    assert report["log_messages"] == report["valid_signatures"] > 7 * 2
    (serial,) = report["serial_numbers"].values()
    assert serial["first_counter"] == 1
    assert serial["last_counter"] == serial["count"] == report["log_messages"]
    assert report["transactions"] == {"started": 7, "finished": 7, "open": []}
    assert report["certificates"]["chain"] == "ok"

    receipt = verify_receipt(qr)
    assert receipt.ok, receipt.findings
    assert receipt.serial_number in report["serial_numbers"]

    cli = CliRunner().invoke(build_app(), ["verify", str(tar), "--html", str(tmp_path / "r.html")])
    assert cli.exit_code == 0 and "OK: no errors" in cli.stdout
    assert "OK: no errors (" in (tmp_path / "r.html").read_text(encoding="utf-8")
