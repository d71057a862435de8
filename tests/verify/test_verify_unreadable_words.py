"""An input ``opentse verify`` cannot read says why in words a user can act on:
no such file, a folder, a ZIP (a DSFinV-K export given by mistake) -- not an OS
error text inside 'not a readable TAR archive'. Exit status 2, E_EXPORT_UNREADABLE."""

from __future__ import annotations

import zipfile
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app


def _verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["verify", str(path)], env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())


def test_a_missing_file(tmp_path: Path) -> None:
    code, out = _verify(tmp_path / "tse.tar")
    assert code == 2 and f"E_EXPORT_UNREADABLE: {tmp_path / 'tse.tar'}: no such file" in out
    assert "Errno" not in out


def test_a_folder(tmp_path: Path) -> None:
    code, out = _verify(tmp_path)
    assert code == 2 and "a folder, not a TAR archive: name the export's .tar file(s)" in out
    assert "Errno" not in out


def test_a_zip_names_the_dsfinvk_check(tmp_path: Path) -> None:
    path = tmp_path / "dsfinvk.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.xml", "<DataSet/>")
    code, out = _verify(path)
    assert code == 2 and "E_EXPORT_UNREADABLE" in out
    assert "it is a ZIP file: unpack the TSE's .tar from it, or, for a DSFinV-K export" in out
    assert "`opentse dsfinvk check`" in out


def test_with_json_stdout_is_one_json_object_saying_why(tmp_path: Path) -> None:
    """A script running `opentse verify --json` read an empty stdout at exit 2."""
    import json

    result = CliRunner().invoke(build_app(), ["verify", "--json", str(tmp_path / "tse.tar")])
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body == {
        "ok": False,
        "unreadable": {
            "code": "E_EXPORT_UNREADABLE",
            "message": f"{tmp_path / 'tse.tar'}: no such file",
        },
    }


def test_an_html_report_that_cannot_be_written_has_a_code(tmp_path: Path) -> None:
    import json

    from opentse.verify.synthetic import build_export

    tar = tmp_path / "t.tar"
    build_export(tar, 3)
    target = tmp_path / "missing" / "r.html"
    result = CliRunner().invoke(build_app(), ["verify", "--json", str(tar), "--html", str(target)])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["unreadable"] == {
        "code": "E_HTML_UNWRITABLE",
        "message": f"cannot write --html {target}: no folder {target.parent}",
    }
    code, out = _verify_args(str(tar), "--html", str(tmp_path))
    assert code == 2 and f"E_HTML_UNWRITABLE: cannot write --html {tmp_path}: it is a folder" in out


def _verify_args(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["verify", *args], env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())
