"""verify-receipt --image with a file it cannot read says what to give instead: the
SVG and PDF that `pos sell --qr x.svg / --pdf` write were 'not a readable image
(cannot identify image file ...)', a missing file an Errno text."""

from __future__ import annotations

from pathlib import Path

import segno
from typer.testing import CliRunner

from opentse.cli.main import build_app


def _run(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_app(), ["verify-receipt", "--image", str(path)], env={"COLUMNS": "200"}
    )
    return result.exit_code, " ".join(result.output.split())


def test_an_svg_qr_code(tmp_path: Path) -> None:
    svg = tmp_path / "qr.svg"
    segno.make("V0;K;Kassenbeleg-V1;x").save(str(svg))
    code, out = _run(svg)
    assert code == 2
    assert "E_QR_IMAGE: qr.svg: an SVG is not read: give a photo or scan of the QR code" in out


def test_a_pdf_and_a_missing_file(tmp_path: Path) -> None:
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.3\n%...")
    code, out = _run(pdf)
    assert code == 2 and "r.pdf: a PDF is not read" in out
    code, out = _run(tmp_path / "none.png")
    assert code == 2 and "E_QR_IMAGE: none.png: no such file" in out and "Errno" not in out


def test_with_json_an_unusable_input_is_one_json_object(tmp_path: Path) -> None:
    import json

    result = CliRunner().invoke(
        build_app(), ["verify-receipt", "--json", "--image", str(tmp_path / "none.png")]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "unreadable": {"code": "E_QR_IMAGE", "message": "none.png: no such file"},
    }
    result = CliRunner().invoke(build_app(), ["verify-receipt", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["unreadable"]["code"] == "E_RECEIPT_INPUT"
