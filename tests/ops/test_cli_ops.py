"""The ops commands through the real CLI app (typer's runner, one installation)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app

runner = CliRunner()
APP = build_app()


def run(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(APP, [*args, "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_site_tse_archive_docs_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = json.loads(run(data, "tse", "create", "t1", "--json"))
    run(data, "tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"])
    org = json.loads(run(data, "site", "org-create", "Kiosk Ost", "--json"))["id"]
    loc_args = ("--street", "Ostweg 2", "--postal-code", "04109", "--city", "Leipzig")
    a = json.loads(run(data, "site", "create", org, "Kiosk", *loc_args, "--json"))["id"]
    other = (
        "--street", "Westweg 9", "--postal-code", "04109", "--city", "Leipzig",
    )  # fmt: skip
    b = json.loads(run(data, "site", "create", org, "Stand", *other, "--json"))["id"]
    run(data, "site", "assign-tse", "t1", a, "--capacity", "1000", "--url", "http://10.0.0.5:8000")
    run(data, "site", "add-register", "K1", a, "--model", "Kasse A")
    run(data, "site", "add-register", "K2", b)
    assert json.loads(run(data, "site", "assign", "K1", "t1", "--json"))["tse_id"] == "t1"
    result = runner.invoke(APP, ["site", "assign", "K2", "t1", "--data", str(data)])
    assert result.exit_code == 1
    assert "E_SITE_CROSS_LOCATION" in result.output
    result = runner.invoke(
        APP,
        ["site", "share", "t1", b, "--confirmed-by", "X", "--confirmation",
         "gleiche Adresse? nein", "--data", str(data)],
    )  # fmt: skip
    assert result.exit_code == 1 and "E_SITE_ADDRESS_MISMATCH" in result.output
    listing = json.loads(run(data, "site", "list", "--json"))
    tables = run(data, "site", "list")  # the organization and its id, not only in --json
    assert "Organizations" in tables and "Kiosk Ost" in tables and "Shared TSEs" in tables
    assert [r["tse_id"] for r in listing["registers"]] == ["t1", None]

    status = json.loads(run(data, "tse", "status", "t1", "--json"))
    (row,) = status["tses"]
    assert row["capacity"] == 1000 and row["warnings"] == []
    run(data, "archive", "remind", "--days", "0", code=2)  # no export yet
    item = json.loads(run(data, "archive", "export", "t1", "--json"))
    assert item["verified_ok"] is True and len(item["sha256"]) == 64
    (listed,) = json.loads(run(data, "archive", "list", "--json"))
    assert listed["file_intact"] is True and listed["id"] == item["id"]
    assert json.loads(run(data, "archive", "remind", "--json"))["reminders"] == []
    assert "no TSE in use has gone more than 30 days" in run(data, "archive", "remind")
    assert "released" in run(data, "archive", "release", "t1")

    run(data, "tse", "outage", "--start", "2025-10-01T08:00:00", "--end", "2025-10-01T09:30",
        "--reason", "Router defekt", "--tse", "t1")  # fmt: skip
    out_md, out_pdf = tmp_path / "vd.md", tmp_path / "vd.pdf"
    run(data, "docs", "procedure", str(out_md), "--org", org)
    run(data, "docs", "procedure", str(out_pdf))
    text = out_md.read_text(encoding="utf-8")
    assert "## 8. Archiv der Exporte" in text and item["sha256"] in text
    assert "http://10.0.0.5:8000" in text
    # times without zone are UTC; the document shows German local time (MESZ in October)
    assert "| 01.10.2025 10:00:00 MESZ | 01.10.2025 11:30:00 MESZ | t1 |  | Router defekt |" in text
    assert out_pdf.read_bytes()[:5] == b"%PDF-"
    kinds = [e["kind"] for e in json.loads(run(data, "tse", "protocol", "t1", "--json"))]
    assert kinds == [
        "tse.assigned", "register.assigned", "archive.export", "archive.logs_released",
        "outage.recorded",
    ]  # fmt: skip

    replaced = json.loads(
        run(data, "tse", "replace", "t1", "t2", "--new-pin", "654321", "--old-pin", "123456",
            "--reason", "Test", "--by", "Tester", "--json")
    )  # fmt: skip
    assert replaced["registers"] == ["K1"] and replaced["export"]["verified_ok"] is True
    assert replaced["final_export"]["verified_ok"] is True and len(replaced["admin_puk"]) >= 10
    rows = {r["tse_id"]: r for r in json.loads(run(data, "tse", "status", "--json"))["tses"]}
    assert rows["t1"]["state"] == "DISABLED" and rows["t1"]["ops_status"] == "replaced"
    assert rows["t2"]["state"] == "INITIALIZED" and rows["t2"]["location_id"] == a
    kinds = [e["kind"] for e in json.loads(run(data, "tse", "protocol", "t1", "--json"))]
    assert kinds[-1] == "replace.done" and "replace.old_disabled" in kinds


def test_status_announce_prints_only_new_warnings(tmp_path: Path) -> None:
    """`tse status --announce` is the daily cron job of docs/operations.md: it prints
    each warning once a day and nothing else (cron mails any output)."""
    data = tmp_path / "data"
    for tse_id, capacity in (("big", "1000000"), ("small", "8")):
        created = json.loads(run(data, "tse", "create", tse_id, "--json"))
        run(data, "tse", "initialize", tse_id, "--pin", "123456", "--puk", created["admin_puk"])
        org = json.loads(run(data, "site", "org-create", f"Org {tse_id}", "--json"))["id"]
        loc = json.loads(
            run(data, "site", "create", org, tse_id, "--street", f"{tse_id}weg 1",
                "--postal-code", "04109", "--city", "Leipzig", "--json")
        )["id"]  # fmt: skip
        run(data, "site", "assign-tse", tse_id, loc, "--capacity", capacity)
    full = run(data, "tse", "status")
    assert "TSE status" in full and "small" in full and "big" in full
    first = run(data, "tse", "status", "--announce")
    (line,) = first.splitlines()
    assert line.startswith("warning: TSE small: 3 signatures left")
    assert run(data, "tse", "status", "--announce") == ""  # announced today already
    again = json.loads(run(data, "tse", "status", "--announce", "--json"))
    assert again["announced"] == [] and len(again["tses"]) == 2


def _tse_at_a_site(data: Path, tse_id: str) -> str:
    """An initialized TSE (admin PIN 123456) assigned to a new location; its id."""
    created = json.loads(run(data, "tse", "create", tse_id, "--json"))
    run(data, "tse", "initialize", tse_id, "--pin", "123456", "--puk", created["admin_puk"])
    org = json.loads(run(data, "site", "org-create", "Bäckerei Müller GmbH", "--json"))["id"]
    where = ("--street", "Hauptstraße 5", "--postal-code", "10115", "--city", "Berlin")
    loc: str = json.loads(run(data, "site", "create", org, "Filiale", *where, "--json"))["id"]
    run(data, "site", "assign-tse", tse_id, loc)
    return loc


def test_assign_says_when_the_register_is_not_registered_at_the_tse(tmp_path: Path) -> None:
    """`site assign` records which TSE a register uses; signing also needs the TSE's own
    registerClient. Following the first set-up of operations.md, the till's first sale
    was 'TSE ausgefallen: E_CLIENT_NOT_FOUND' with nothing said at the assignment."""
    data = tmp_path / "data"
    loc = _tse_at_a_site(data, "T1")
    run(data, "site", "add-register", "KASSE-1", loc)
    out = run(data, "site", "assign", "KASSE-1", "T1")
    assert "not registered at TSE T1" in out and "opentse client register KASSE-1" in out
    assert (
        json.loads(run(data, "site", "assign", "KASSE-1", "T1", "--json"))["registered_at_tse"]
        is False
    )
    run(data, "client", "register", "KASSE-1", "--tss", "T1", "--pin", "123456")
    out = run(data, "site", "assign", "KASSE-1", "T1")
    assert "not registered" not in out
    assert (
        json.loads(run(data, "site", "assign", "KASSE-1", "T1", "--json"))["registered_at_tse"]
        is True
    )


def test_replace_asks_the_new_pin_on_stderr_so_json_stays_clean(tmp_path: Path) -> None:
    """Without --new-pin the PIN is asked for (twice, hidden) on stderr; the option's
    own prompt wrote 'New pin:' to stdout before the JSON, which a script then could
    not read. Run as the console script with the PIN piped in."""
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    _tse_at_a_site(data, "t1")
    opentse = str(Path(sys.executable).parent / "opentse")
    done = subprocess.run(
        [opentse, "tse", "replace", "t1", "t2", "--old-pin", "123456", "--json",
         "--data", str(data)],
        input="654321\n654321\n", capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "OPENTSE_NEW_ADMIN_PIN"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new_tse_id"] == "t2"  # stdout is the JSON alone
    assert "New admin PIN" in done.stderr and "654321" not in done.stdout + done.stderr


def test_unknown_and_unplaced_tses_are_named(tmp_path: Path) -> None:
    """`tse protocol NOPE` printed an empty protocol (exit 0) and `tse status NOPE`
    had its own code; `tse replace` of a TSE placed at no location said only that,
    not how to place it (the replacement takes its place over)."""
    data = tmp_path / "data"
    created = json.loads(run(data, "tse", "create", "t1", "--json"))
    run(data, "tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"])
    for args in (("tse", "protocol", "nope"), ("tse", "status", "nope")):
        out = run(data, *args, code=1)
        assert "E_TSS_NOT_FOUND" in out and "'nope'" in out, (args, out)
    out = run(data, "tse", "replace", "t1", "t2", "--old-pin", "123456", "--new-pin", "654321",
              code=1)  # fmt: skip
    flat = " ".join(out.split())
    assert "E_SITE_TSE_UNASSIGNED" in flat and "opentse site assign-tse t1 LOCATION_ID" in flat
    assert [t["id"] for t in json.loads(run(data, "tse", "list", "--json"))] == ["t1"]


def test_status_within_plans_replacements_ahead(tmp_path: Path) -> None:
    """Which TSEs need replacing within a quarter, a year ...: `tse status` warned only
    15 days ahead, and an operator could neither plan further nor see the expiry
    warning before those last 15 days."""
    data = tmp_path / "data"
    created = json.loads(run(data, "tse", "create", "t1", "--json"))
    run(data, "tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"])
    (row,) = json.loads(run(data, "tse", "status", "t1", "--json"))["tses"]
    assert row["warnings"] == [] and 1820 < row["days_to_expiry"] <= 1825
    (row,) = json.loads(run(data, "tse", "status", "t1", "--within", "1900", "--json"))["tses"]
    assert [(w["kind"], w["level"]) for w in row["warnings"]] == [("certificate_expiry", "warning")]
    result = runner.invoke(APP, ["tse", "status", "--within", "90", "--announce", "--data",
                                 str(data)])  # fmt: skip
    assert result.exit_code == 2 and "--announce keeps 15 days" in result.output


def test_sharing_twice_with_one_location_is_refused_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "tse", "create", "t1")
    org = json.loads(run(data, "site", "org-create", "Kiosk Ost", "--json"))["id"]
    at = ("--street", "Ostweg 2", "--postal-code", "04109", "--city", "Leipzig", "--json")
    home = json.loads(run(data, "site", "create", org, "Kiosk", *at))["id"]
    cafe = json.loads(run(data, "site", "create", org, "Café", *at))["id"]
    run(data, "site", "assign-tse", "t1", home)
    share = ("site", "share", "t1", cafe, "--confirmed-by", "Frau Ost",
             "--confirmation", "gleiche Adresse, Ostweg 2")  # fmt: skip
    run(data, *share)
    out = run(data, *share, code=1)
    assert "E_SITE_SHARE_EXISTS" in out and "Frau Ost" in out
    assert len(json.loads(run(data, "site", "list", "--json"))["shares"]) == 1


def test_procedure_to_a_missing_folder_and_negative_remind_days_are_errors(
    tmp_path: Path,
) -> None:
    """`docs procedure /no/such/dir/OUT.pdf` ended in a FileNotFoundError traceback;
    `archive remind --days -1` listed reminders as if -1 days meant something."""
    data = tmp_path / "data"
    run(data, "tse", "create", "t1")
    for name in ("out.pdf", "out.md"):
        out = run(data, "docs", "procedure", str(tmp_path / "missing" / name), code=1)
        assert "E_DOCS_OUTPUT" in out and "No such file or directory" in out, out
    out = run(data, "archive", "remind", "--days", "-1", code=1)
    assert "E_ARCHIVE_DAYS" in out


def test_outage_without_reason_and_move_out_of_a_mistyped_folder(tmp_path: Path) -> None:
    """`tse outage --reason ''` went into the append-only outage log without a reason;
    `tse move-out --data TYPO` made a new, empty installation there and "retired" it,
    while the real folder went on signing."""
    data = tmp_path / "data"
    run(data, "tse", "create", "t1")
    out = run(data, "tse", "outage", "--start", "2026-11-21T08:00", "--reason", " ", code=1)
    assert "E_OUTAGE_REASON" in out
    typo = tmp_path / "dtaa"
    out = run(typo, "tse", "move-out", "--to", "10.0.0.7", code=1)
    assert "E_DATA_DIR" in out and not typo.exists()


def test_reporting_on_a_mistyped_data_folder_is_an_error(tmp_path: Path) -> None:
    """A cron job with a mistyped --data (`tse status --announce`, `archive remind`)
    made a new, empty installation there and reported it as all well (exit 0, no
    output) every day. Only `site org-create` may still start a new folder."""
    typo = tmp_path / "opentse-dta"
    for args in (("tse", "status", "--announce"), ("archive", "remind"), ("archive", "list"),
                 ("tse", "protocol"), ("site", "list")):  # fmt: skip
        out = run(typo, *args, code=1)
        assert "E_DATA_DIR" in out and "holds no opentse installation" in out, (args, out)
    assert not typo.exists()
    run(typo, "site", "org-create", "Kiosk Ost")
    run(typo, "archive", "remind")  # an installation now: nothing to remind of


def test_an_open_outage_is_ended_by_recording_it_with_its_end(tmp_path: Path) -> None:
    """ "Omit --end while it lasts": recording it again with --end added a second
    entry, so the outage log listed it twice, once as still going on."""
    data = tmp_path / "data"
    run(data, "tse", "create", "t1")
    at = ("tse", "outage", "--start", "2026-11-21T08:00", "--reason", "Router defekt",
          "--tse", "t1")  # fmt: skip
    run(data, *at)
    run(data, *at, "--end", "2026-11-21T09:30")
    md = tmp_path / "doc.md"
    run(data, "docs", "procedure", str(md))
    section = md.read_text(encoding="utf-8").split("## 7.", 1)[1].split("## 8.", 1)[0]
    [row] = [line for line in section.splitlines() if "Router defekt" in line]
    assert "21.11.2026 09:00:00 MEZ" in row and "21.11.2026 10:30:00 MEZ" in row
    kinds = [e["kind"] for e in json.loads(run(data, "tse", "protocol", "--json"))]
    assert kinds.count("outage.recorded") == 2  # both facts stay in the protocol


def test_a_mistyped_tse_id_in_site_commands_is_not_found(tmp_path: Path) -> None:
    """`site assign KASSE-1 T22` (a typo for T2) said 'TSE 'T22' is not assigned to a
    location' (E_SITE_TSE_UNASSIGNED), as if T22 existed and only needed placing.
    An unknown id is E_TSS_NOT_FOUND, as tse status/protocol and archive say; a known
    TSE placed nowhere still gets E_SITE_TSE_UNASSIGNED, with how to place it."""
    data = tmp_path / "data"
    run(data, "tse", "create", "t1")
    org = json.loads(run(data, "site", "org-create", "Kiosk", "--json"))["id"]
    where = ("--street", "Weg 1", "--postal-code", "1", "--city", "Ort", "--json")
    loc = json.loads(run(data, "site", "create", org, "Kiosk", *where))["id"]
    run(data, "site", "add-register", "KASSE-1", loc)
    for args in (
        ("site", "assign", "KASSE-1", "t22"),
        ("site", "share", "t22", loc, "--confirmed-by", "A", "--confirmation", "0123456789"),
    ):
        out = " ".join(run(data, *args, code=1).split())
        assert "E_TSS_NOT_FOUND" in out and "'t22'" in out, (args, out)
    out = " ".join(run(data, "site", "assign", "KASSE-1", "t1", code=1).split())
    assert "E_SITE_TSE_UNASSIGNED" in out and "opentse site assign-tse t1 LOCATION_ID" in out


def test_refusals_name_the_way_on(tmp_path: Path) -> None:
    """`site add-register K1 B` of a till recorded at A said only 'register 'K1'
    exists'; `site assign K1 t1` after t1 was replaced by t2 said 't1 is replaced;
    assign registers to an active TSE' without naming t2."""
    data = tmp_path / "data"
    created = json.loads(run(data, "tse", "create", "t1", "--json"))
    run(data, "tse", "initialize", "t1", "--pin", "123456", "--puk", created["admin_puk"])
    org = json.loads(run(data, "site", "org-create", "Kiosk", "--json"))["id"]
    where = ("--postal-code", "1", "--city", "Ort", "--json")
    a = json.loads(run(data, "site", "create", org, "A", "--street", "Weg 1", *where))["id"]
    b = json.loads(run(data, "site", "create", org, "B", "--street", "Gasse 2", *where))["id"]
    run(data, "site", "assign-tse", "t1", a)
    run(data, "site", "add-register", "K1", a)
    out = " ".join(run(data, "site", "add-register", "K1", b, code=1).split())
    assert "E_SITE_REGISTER_EXISTS" in out and f"at location 'A' ({a})" in out, out
    assert f"opentse site move-register K1 {b}" in out, out
    run(data, "tse", "replace", "t1", "t2", "--new-pin", "654321", "--old-pin", "123456")
    out = " ".join(run(data, "site", "assign", "K1", "t1", code=1).split())
    assert "E_SITE_TSE_INACTIVE" in out and "replaced by t2: assign it to that one" in out, out
