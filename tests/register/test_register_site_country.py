"""A site's location goes into DSFinV-K location.csv only as it fits there.

``site create`` took any text as the country, and pos close (d17a0ac) wrote it to
LOC_LAND (A3): 'Deutschland' made the closing, then every export of it failed for
good (E_DSFINVK_LENGTH), and 'GB' was written as it stood. Now the country must be an
ISO 3166 code (three letters, two only where opentse knows the three), the fields fit
location.csv, and a location recorded before this check is refused by pos close
*before* the day is closed, naming the way out."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_register_replacement import _location_row, _shop, run

SEAT = ["--company", "Laden GmbH", "--street", "V 1", "--postal-code", "20095", "--city"]
SEAT += ["Hamburg", "--tax-number", "12/345/67890"]


def _site(data: Path, country: str, name: str = "Laden Mitte") -> tuple[int, str]:
    where = ("--data", str(data), "--json")
    org = json.loads(run("site", "org-create", "Laden GmbH", *where)[1])["id"]
    return run("site", "create", org, name, "--street", "Hauptstr 5", "--postal-code", "10115",
               "--city", "Berlin", "--country", country, *where)  # fmt: skip


@pytest.mark.parametrize("country", ["Deutschland", "GB", "D", "DE U"])
def test_site_create_refuses_what_location_csv_cannot_take(tmp_path: Path, country: str) -> None:
    data = tmp_path / "data"
    code, out = _site(data, country)
    assert code == 1 and "E_SITE_COUNTRY" in out, out


def test_site_create_refuses_a_name_too_long(tmp_path: Path) -> None:
    code, out = _site(tmp_path / "data", "DEU", name="L" * 61)
    assert code == 1 and "E_SITE_FIELD_LENGTH" in out and "at most 60" in out, out


@pytest.mark.parametrize(("country", "written"), [("DE", "DEU"), ("gbr", "GBR"), ("AT", "AUT")])
def test_a_country_that_fits_is_written_as_alpha_3(
    tmp_path: Path, country: str, written: str
) -> None:
    data = tmp_path / "data"
    _shop(data)
    code, out = _site(data, country)
    assert code == 0, out
    assert _close(data, tmp_path / "z.zip")[0] == 0
    assert _location_row(tmp_path / "z.zip")["LOC_LAND"] == written


def _close(data: Path, out: Path) -> tuple[int, str]:
    loc = json.loads(run("site", "list", "--data", str(data), "--json")[1])
    loc_id = loc[0]["id"] if isinstance(loc, list) else loc["locations"][0]["id"]
    for args in (
        ("assign-tse", "t1", loc_id),
        ("add-register", "K1", loc_id),
        ("assign", "K1", "t1"),
    ):
        run("site", *args, "--data", str(data))
    till = ("--data", str(data), "--client", "K1", "--tss", "t1")
    code, sold = run("pos", "sell", *till, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 0, sold
    return run("pos", "close", *till, "--counted-cash", "1.80", *SEAT, "--out", str(out))


def test_a_location_recorded_before_the_check_is_refused_before_the_day_is_closed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _shop(data)
    assert _site(data, "DEU")[0] == 0
    with sqlite3.connect(data / "opentse.db") as db:  # as an older version recorded it
        db.execute("UPDATE ops_locations SET country = 'Deutschland'")
    db.close()
    code, out = _close(data, tmp_path / "z.zip")
    assert code == 1 and "E_SITE_COUNTRY" in out and "Nothing was closed" in out, out
    assert "site move-register" in out
    assert not (tmp_path / "z.zip").exists()
    status = run("pos", "status", "--data", str(data), "--client", "K1", "--tss", "t1", "--json")
    assert status[0] == 0, status[1]
    code, out = run("dsfinvk", "export", str(tmp_path / "e.zip"), "--data", str(data),
                    "--register", "K1")  # fmt: skip
    assert code == 1 and "E_DSFINVK_LENGTH" not in out, out  # no closing was made
