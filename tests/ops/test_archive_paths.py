"""Archived exports are found again from any working directory.

An operator who runs ``opentse archive export --data data`` in one folder and the
daily ``archive list`` / ``archive release`` cron job in another (cron starts in
$HOME) must not see the archive as changed on disk: the recorded path was relative
to the first command's working directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app

runner = CliRunner()
APP = build_app()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(APP, list(args), catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_archive_recorded_with_a_relative_data_folder_is_intact_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)
    created = json.loads(run("tse", "create", "t1", "--json", "--data", "data"))
    run("tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"],
        "--data", "data")  # fmt: skip
    item = json.loads(run("archive", "export", "t1", "--json", "--data", "data"))
    assert Path(item["path"]).is_absolute()
    assert Path(item["path"]).is_file()

    elsewhere = tmp_path / "cron-home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    absolute = str(site / "data")
    (listed,) = json.loads(run("archive", "list", "--json", "--data", absolute))
    assert listed["file_intact"] is True
    assert "released" in run("archive", "release", "t1", "--data", absolute)


def test_archive_folder_moved_with_the_data_folder_is_found_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data folder restored or mounted at another path: the file is looked for in
    its own ``archive/<tse>/`` under the recorded name, as export downloads are."""
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "old"
    created = json.loads(run("tse", "create", "t1", "--json", "--data", str(old)))
    run("tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"],
        "--data", str(old))  # fmt: skip
    run("archive", "export", "t1", "--data", str(old))
    new = tmp_path / "new"
    shutil.move(old, new)
    (listed,) = json.loads(run("archive", "list", "--json", "--data", str(new)))
    assert listed["file_intact"] is True
    # "file" says where it is now (the recorded "path" is the old place: a script
    # handing it to opentse verify found nothing)
    assert Path(listed["file"]).parent == (new / "archive" / "t1").absolute()
    assert Path(listed["file"]).is_file() and not Path(listed["path"]).exists()
    assert "released" in run("archive", "release", "t1", "--data", str(new))
    # a file that really changed is still caught
    (file,) = (new / "archive" / "t1").glob("*.tar")
    file.write_bytes(file.read_bytes()[:-512])
    (listed,) = json.loads(run("archive", "list", "--json", "--data", str(new)))
    assert listed["file_intact"] is False
    out = run("archive", "release", "t1", "--data", str(new), code=1)
    assert "E_ARCHIVE_NOT_VERIFIED" in out


def test_archive_list_of_an_unknown_tse_says_so(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("tse", "create", "t1", "--data", data)
    assert json.loads(run("archive", "list", "t1", "--json", "--data", data)) == []
    out = run("archive", "list", "t2", "--data", data, code=1)
    assert "E_TSS_NOT_FOUND" in out and "t2" in out


def test_a_folder_copied_on_the_same_host_is_checked_by_its_own_files(tmp_path: Path) -> None:
    """The data folder copied to another path on the same host, the old one retired
    (tse move-out) with its archive still in it: archive list named the old folder's
    files (the recorded path exists), so a damaged copy in the folder in use passed as
    intact and archive release let the logs go. The folder's own copy counts."""
    old = tmp_path / "old"
    created = json.loads(run("tse", "create", "t1", "--json", "--data", str(old)))
    run("tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"],
        "--data", str(old))  # fmt: skip
    run("archive", "export", "t1", "--data", str(old))
    new = tmp_path / "new"
    shutil.copytree(old, new)
    run("tse", "move-out", "--data", str(old), "--to", "localhost")
    (listed,) = json.loads(run("archive", "list", "--json", "--data", str(new)))
    assert Path(listed["file"]).parent == (new / "archive" / "t1").absolute()
    assert listed["file_intact"] is True
    (file,) = (new / "archive" / "t1").glob("*.tar")
    file.write_bytes(file.read_bytes()[:-512])  # the copy in use is damaged
    (listed,) = json.loads(run("archive", "list", "--json", "--data", str(new)))
    assert listed["file_intact"] is False
    assert Path(listed["path"]).is_file()  # the retired folder's file, still whole
    out = run("archive", "release", "t1", "--data", str(new), code=1)
    assert "E_ARCHIVE_NOT_VERIFIED" in out
