"""An operator with two shops walks through `opentse site` and `opentse archive`
(the real CLI app on one data folder)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app

runner = CliRunner()
APP = build_app()
MITTE = ("--street", "Hauptstraße 1", "--postal-code", "10115", "--city", "Berlin")
BAHNHOF = ("--street", "Bahnhofstr. 5", "--postal-code", "10117", "--city", "Berlin")


def run(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        APP, [*args, "--data", str(data)], catch_exceptions=False, env={"COLUMNS": "220"}
    )
    assert result.exit_code == code, (args, result.output)
    return result.output


def _two_shops(data: Path) -> tuple[str, str, str]:
    for tse_id in ("tA", "tB"):
        puk = json.loads(run(data, "tse", "create", tse_id, "--json"))["admin_puk"]
        run(data, "tse", "initialize", tse_id, "--pin", "12345678", "--puk", puk)
    org = json.loads(run(data, "site", "org-create", "Bäckerei Korn GmbH", "--json"))["id"]
    a = json.loads(run(data, "site", "create", org, "Filiale Mitte", *MITTE, "--json"))["id"]
    b = json.loads(run(data, "site", "create", org, "Filiale Bahnhof", *BAHNHOF, "--json"))["id"]
    run(data, "site", "assign-tse", "tA", a)
    run(data, "site", "assign-tse", "tB", b)
    return org, a, b


def test_a_location_created_twice_is_refused_naming_the_first(tmp_path: Path) -> None:
    """The set-up run a second time made a second 'Filiale Mitte' at the same address,
    listed like the first: TSEs and registers were then split between two ids."""
    data = tmp_path / "data"
    org, a, _ = _two_shops(data)
    again = ("--street", "Hauptstr. 1", "--postal-code", "10115", "--city", "berlin")
    out = " ".join(run(data, "site", "create", org, "filiale  mitte", *again, code=1).split())
    assert "E_SITE_LOCATION_EXISTS" in out and a in out
    # another shop at the same address (to share the TSE with), or the name elsewhere: fine
    run(data, "site", "create", org, "Café im Haus", *MITTE)
    run(data, "site", "create", org, "Filiale Mitte", "--street", "Ring 9",
        "--postal-code", "10115", "--city", "Berlin")  # fmt: skip
    names = [x["name"] for x in json.loads(run(data, "site", "list", "--json"))["locations"]]
    assert sorted(names) == ["Café im Haus", "Filiale Bahnhof", "Filiale Mitte", "Filiale Mitte"]


def test_site_list_says_which_shop_each_tse_and_register_is_at(tmp_path: Path) -> None:
    """The TSE and register tables showed a location's UUID only: with two shops the
    operator had to match ids against the location table by eye."""
    data = tmp_path / "data"
    _, a, b = _two_shops(data)
    run(data, "site", "add-register", "KB1", b)
    rows = {line.split("│")[1].strip(): line for line in run(data, "site", "list").splitlines()
            if line.count("│") > 3}  # fmt: skip
    assert f"Filiale Mitte ({a[:8]})" in rows["tA"]
    assert f"Filiale Bahnhof ({b[:8]})" in rows["tB"] and "Filiale Bahnhof" in rows["KB1"]
    out = " ".join(run(data, "site", "assign-tse", "tA", b, code=1).split())
    assert "E_SITE_TSE_ASSIGNED" in out and "'Filiale Mitte'" in out and a in out


def test_archive_release_of_a_mistyped_tse_names_it(tmp_path: Path) -> None:
    """`archive release` of an unknown id said 'no archived export' (E_ARCHIVE_NOT_VERIFIED),
    as if that TSE existed; list and export say E_TSS_NOT_FOUND."""
    data = tmp_path / "data"
    _two_shops(data)
    for args in (("archive", "release", "tX"), ("archive", "list", "tX")):
        out = run(data, *args, code=1)
        assert "E_TSS_NOT_FOUND" in out and "'tX'" in out, (args, out)
    run(data, "archive", "export", "tB")
    assert "released" in run(data, "archive", "release", "tB")


def test_a_tse_is_not_shared_with_another_organizations_shop(tmp_path: Path) -> None:
    """A shop-in-shop of another legal entity at the same address got the TSE shared
    (confirmation recorded): its sales would be signed into the first organization's
    TSE, and `docs procedure --org` of its organization did not list that TSE."""
    data = tmp_path / "data"
    org, a, _ = _two_shops(data)
    other = json.loads(run(data, "site", "org-create", "Café Bohne UG", "--json"))["id"]
    cafe = json.loads(run(data, "site", "create", other, "Café", *MITTE, "--json"))["id"]
    confirm = ("--confirmed-by", "A. Korn", "--confirmation", "gleiche Betriebsstätte, ja")
    out = " ".join(run(data, "site", "share", "tA", cafe, *confirm, code=1).split())
    assert "E_SITE_SHARE_OTHER_ORG" in out and "'Café'" in out
    assert json.loads(run(data, "site", "list", "--json"))["shares"] == []
    own = json.loads(run(data, "site", "create", org, "Backstube", *MITTE, "--json"))["id"]
    run(data, "site", "share", "tA", own, *confirm)  # the same organization's: recorded
    assert a != own


def test_a_till_taken_to_the_other_shop_is_moved_there(tmp_path: Path) -> None:
    """There was no way to move a register to the other location: add-register said
    it exists, assign refused the other shop's TSE (E_SITE_CROSS_LOCATION)."""
    data = tmp_path / "data"
    _, a, b = _two_shops(data)
    run(data, "site", "add-register", "K1", a)
    run(data, "client", "register", "K1", "--tss", "tA", "--pin", "12345678")
    run(data, "site", "assign", "K1", "tA")
    # a TSE of the old shop is refused before anything moves
    out = " ".join(run(data, "site", "move-register", "K1", b, "--tse", "tA", code=1).split())
    assert "E_SITE_CROSS_LOCATION" in out
    (reg,) = json.loads(run(data, "site", "list", "--json"))["registers"]
    assert (reg["location_id"], reg["tse_id"]) == (a, "tA")

    result = runner.invoke(
        APP, ["site", "move-register", "K1", b, "--tse", "tB", "--by", "Chefin", "--data",
              str(data)], env={"COLUMNS": "220"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "opentse client deregister K1 --tss tA" in result.output  # still signs there
    assert "opentse client register K1 --tss tB" in result.output
    (reg,) = json.loads(run(data, "site", "list", "--json"))["registers"]
    assert (reg["location_id"], reg["tse_id"]) == (b, "tB")
    (moved,) = [e for e in json.loads(run(data, "tse", "protocol", "--json"))
                if e["kind"] == "register.moved"]  # fmt: skip
    assert moved["register_id"] == "K1" and moved["actor"] == "Chefin"
    assert moved["details"]["from_location"] == a and moved["location_id"] == b
    assert "E_SITE_CROSS_LOCATION" in run(data, "site", "assign", "K1", "tA", code=1)
    out = run(data, "site", "move-register", "K1", b, code=1)
    assert "E_SITE_REGISTER_SAME_LOCATION" in out


def test_export_reminders_say_which_shop(tmp_path: Path) -> None:
    """`archive remind` (the cron job) said 'TSE tA: no export yet' only: with two
    shops the operator had to look up where that TSE is."""
    data = tmp_path / "data"
    _two_shops(data)
    lines = run(data, "archive", "remind", "--days", "0", code=2).splitlines()
    assert any(line.startswith("TSE tA (Filiale Mitte): no export yet") for line in lines)
    assert any(line.startswith("TSE tB (Filiale Bahnhof): no export yet") for line in lines)
    (row,) = [r for r in json.loads(run(data, "archive", "remind", "--days", "0", "--json",
                                        code=2))["reminders"] if r["tse_id"] == "tB"]  # fmt: skip
    assert "(Filiale Bahnhof)" in row["message"]
