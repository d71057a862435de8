"""Which books `dsfinvk export` reads: docs/dsfinvk.md says `--data`/`--register` or
`--journal`. A till on `--url` keeps its books in ~/.opentse/pos/<client UUID>.db
(or the `--journal` it was given), not under its serial, so `--journal` alone is how
its export is written. It stopped with 'Missing option --register' (E_USAGE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.check import check_export
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
COMPANY = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
COMPANY += ["--tax-number", "123"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed day of register KASSE-1, its books in a file of its own (--journal)."""
    folder = tmp_path_factory.mktemp("till")
    data, journal = folder / "data", folder / "till-books.db"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id="KASSE-1", logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", "KASSE-1", "--journal", str(journal)]
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 0, out
    code, out = run("pos", "close", *base, "--counted-cash", "1.80", *COMPANY)
    assert code == 0, out
    return journal


def test_journal_alone_names_the_books(books: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.zip"
    code, text = run("dsfinvk", "export", "--journal", str(books), str(out), "--json")
    assert code == 0, text
    assert json.loads(text)["closings"] == [1]
    assert check_export(out) == []


def test_journal_of_another_register_is_refused(books: Path, tmp_path: Path) -> None:
    """--register with --journal: the closings carry the books' own serial as
    Z_KASSE_ID, so an export 'of KASSE-2' from KASSE-1's books would be mislabelled."""
    out = tmp_path / "day.zip"
    code, text = run("dsfinvk", "export", "--register", "KASSE-2", "--journal", str(books),
                     str(out))  # fmt: skip
    assert code == 1 and "E_DSFINVK_REGISTER" in text, text
    assert "'KASSE-1'" in text and not out.exists()
    code, text = run("dsfinvk", "export", "--register", "KASSE-1", "--journal", str(books),
                     str(out))  # fmt: skip
    assert code == 0, text


def test_neither_register_nor_journal_says_which_is_needed(tmp_path: Path) -> None:
    code, text = run("dsfinvk", "export", str(tmp_path / "x.zip"))
    assert code == 1, text
    text = " ".join(text.split())
    assert "E_DSFINVK_NO_BOOKS" in text and "--register" in text and "--journal" in text


def test_register_without_data_names_the_url_tills_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    code, text = run("dsfinvk", "export", "--register", "KASSE-1", str(tmp_path / "x.zip"))
    assert code == 1, text
    text = " ".join(text.split())
    assert "E_DSFINVK_NO_BOOKS" in text and "client UUID" in text and "--journal" in text


@pytest.mark.parametrize("kind", ["other sqlite", "installation", "text"])
def test_a_file_that_holds_no_books_is_refused_and_left_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    """--journal took any SQLite file as books: it added the books' tables to it (the
    installation's opentse.db included) and then said 'nothing was closed yet'."""
    import sqlite3

    path = tmp_path / "some.db"
    if kind == "text":
        path.write_text("no database\n")
    elif kind == "installation":
        Installation.open(tmp_path / "data").close()
        path = tmp_path / "data" / "opentse.db"
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
        db.close()
    before = path.read_bytes()
    code, out = run("dsfinvk", "export", "--journal", str(path), str(tmp_path / "out.zip"))
    assert code == 1 and "E_DSFINVK_NO_BOOKS" in out and "holds no register's books" in out, out
    assert path.read_bytes() == before
    assert not (tmp_path / "out.zip").exists()
