"""An installation opened with a relative data folder keeps reading the same database
after the process's working directory changes: the store opens further connections
lazily (a reader per concurrent read), and a relative path opened them elsewhere
("unable to open database file", or another folder's database)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from opentse.installation import Installation
from opentse.testing import ready_tse


def test_relative_data_folder_survives_a_change_of_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "shop")
    with Installation.open(Path("data")) as inst:
        ready_tse(inst.service, "t", logout=True)
        monkeypatch.chdir(tmp_path / "elsewhere")
        with ThreadPoolExecutor(8) as pool:  # concurrent reads need new connections
            seen = list(pool.map(lambda _: [i.record.tse_id for i in inst.service.list()],
                                 range(64)))  # fmt: skip
    assert seen == [["t"]] * 64
    assert not (tmp_path / "elsewhere" / "data").exists()
