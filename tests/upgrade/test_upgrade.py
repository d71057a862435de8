"""An installation made by an older opentse, opened by this one.

Each fixture (``fixtures/<commit>-sqlite.tar.gz``, made by ``make_fixtures.py`` with
that commit's own code) holds a data folder as a shop left it: a demo TSE with
receipts and its TAR export, a register's books with a closing, an API key, and a
TSS with a client, signed transactions and an export made through the old
``opentse serve``. The current code then does what an admin does after pulling main
(docs/upgrading.md): ``opentse migrate``, ``opentse tse list``, ``opentse serve``,
and the checks of that page: the same key logs in (API and dashboard), the old
export still downloads unchanged, the counters go on with no gap and no repeat
(the whole TSE exported and verified as one chain across the upgrade), the
register's books still close and export DSFinV-K.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import upgrade_support as up
from upgrade_support import CURRENT, run_json

from opentse.cli.migrate import run_migrations
from opentse.storage import migrations
from opentse.verify.report import verify_exports

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LATEST = max(m.version for m in migrations.load("sqlite"))
SQLITE = sorted(FIXTURES.glob("*-sqlite.tar.gz"))


def unpack(archive: Path, into: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    facts: dict[str, Any] = json.loads((into / "facts.json").read_text())
    return facts


def versions_in(db: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(db)) as lite:
        return migrations.applied_versions(lite)


def verify_chain(tar: Path, cli: bool = False) -> dict[str, Any]:
    """The current verifier (``opentse verify`` with ``cli``, else the library it
    runs, one process less) over one export; its single serial's counters."""
    report = run_json(CURRENT, "verify", str(tar)) if cli else verify_exports([tar]).to_json()
    assert report["ok"], report["findings"]
    ((serial,),) = [report["serial_numbers"].keys()]
    chain: dict[str, Any] = report["serial_numbers"][serial]
    assert chain["missing_ranges"] == [] and chain["duplicates"] == []
    assert chain["first_counter"] == 1 and chain["count"] == chain["last_counter"]
    return chain


def test_fixtures_present() -> None:
    """Every version make_fixtures.py lists has its fixture (a lost file would
    silently shrink the upgrade tests)."""
    from make_fixtures import EXTRAS as WITH_EXTRAS
    from make_fixtures import POSTGRES, VERSIONS

    assert {p.name.split("-")[0] for p in EXTRAS} == set(WITH_EXTRAS)

    names = {p.name for p in FIXTURES.glob("*.tar.gz")}
    assert names == {f"{c}-sqlite.tar.gz" for c in VERSIONS} | {
        f"{c}-postgresql.tar.gz" for c in POSTGRES
    }


@pytest.mark.parametrize("archive", SQLITE, ids=[p.name.split("-")[0] for p in SQLITE])
def test_sqlite_installation_upgrades(archive: Path, tmp_path: Path) -> None:
    facts = unpack(archive, tmp_path)
    data = tmp_path / "data"
    old_versions = versions_in(data / "opentse.db")
    assert max(old_versions) < LATEST  # the fixture is older than this code

    # 1. the schema: migrate applies exactly the missing versions, then nothing
    out = run_json(CURRENT, "migrate", "--data", str(data))
    assert out == {
        "dialect": "sqlite",
        "applied": [v for v in range(1, LATEST + 1) if v not in old_versions],
        "current": LATEST,
    }
    assert run_migrations(data, None)[1] == []  # a second run: nothing left

    # 2. the TSEs as they were
    listed = {t["id"]: t for t in run_json(CURRENT, "tse", "list", "--data", str(data))}
    demo, api = facts["demo"], facts["api"]
    assert listed[demo["tse_id"]]["signature_counter"] >= demo["signature_counter"]
    assert listed[api["tss_id"]]["signature_counter"] == api["signature_counter"]
    assert listed[api["tss_id"]]["state"] == "INITIALIZED"

    # 3. the service: same key, old export unchanged, counters go on
    check_service(facts, data, tmp_path)

    # the API's TSS exported by the command docs/upgrading.md names: one chain
    cli_tar = tmp_path / "cli-after.tar"
    run_json(CURRENT, "export", "--data", str(data), "--tss", api["tss_id"], str(cli_tar))
    assert verify_chain(cli_tar)["last_counter"] > api["signature_counter"]

    # 4. the register's books (a sale, a deposit, a storno, a training receipt and two
    # Vorgänge the TSE did not sign, made by the old version): a sale, a closing that
    # carries the cash counted at the old closing
    pos = ["--data", str(data), "--tss", demo["tse_id"], "--client", demo["client_id"]]
    run_json(CURRENT, "pos", "sell", *pos, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    closing = run_json(CURRENT, "pos", "close", *pos, "--counted-cash", "6.80", *up.COMPANY)
    assert closing["z_nr"] == 2 and closing["difference"] == "0.00", closing
    # the demo below signs receipts these books do not hold: the cross-check of step 6
    # warns of them when they come after the closing's second; in that very second
    # whole seconds cannot tell them from a Bon left out of the closing (an error,
    # verify/crosscheck.py _AT_CLOSING). A process per command took longer than that.
    closed_in = int(time.time())
    while int(time.time()) == closed_in:
        time.sleep(0.02)

    # 5. the embedded demo TSE signs on; its whole export is one gapless chain
    before = listed[demo["tse_id"]]["signature_counter"]
    again = run_json(CURRENT, "demo", "--data", str(data), "--transactions", "1",
                     "--export", str(tmp_path / "demo-after.tar"))  # fmt: skip
    assert again["created"] is False and again["tse_id"] == demo["tse_id"]
    assert again["receipts"][0]["signature_counter"] > before
    chain = verify_chain(tmp_path / "demo-after.tar")
    assert chain["last_counter"] > before
    assert hashlib.sha256((tmp_path / "demo.tar").read_bytes()).hexdigest() == demo["export_sha256"]
    verify_chain(tmp_path / "demo.tar")  # the old version's export, current verifier

    # 6. DSFinV-K of both closings: every signature re-verified from the CSVs, and
    # every signed Bon found in the TSE's export (no error; the demo's receipts are
    # in the TSE but not in these books: warnings)
    out_zip = tmp_path / "dsfinvk.zip"
    exported = run_json(CURRENT, "dsfinvk", "export", "--data", str(data),
                        "--register", demo["client_id"], str(out_zip))  # fmt: skip
    assert exported["closings"] == [1, 2] and exported["not_closed"]["open_receipts"] == 0
    checked = run_json(CURRENT, "dsfinvk", "check", str(out_zip),
                       "--tse-export", str(tmp_path / "demo-after.tar"))  # fmt: skip
    assert checked["errors"] == 0, checked["findings"]
    # the old closing's 8 Bons (book_a_day's 7 with the sale, and its DifferenzSollIst)
    # and today's sale
    assert checked["summary"]["bons"] == exported["receipts"] == 9


def fixture_facts(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("facts.json")
        assert member is not None
        facts: dict[str, Any] = json.loads(member.read())
    return facts


EXTRAS = [p for p in SQLITE if "site" in fixture_facts(p)]


@pytest.mark.parametrize("archive", EXTRAS, ids=[p.name.split("-")[0] for p in EXTRAS])
def test_operator_records_upgrade(archive: Path, tmp_path: Path) -> None:
    """The operator's records of the oldest version; the first command of the new
    version here is ``opentse site list`` (it migrates on its own)."""
    facts = unpack(archive, tmp_path)
    check_operator_records(facts, tmp_path / "data", tmp_path)


def check_operator_records(facts: dict[str, Any], data: Path, root: Path) -> None:
    """Sites, the archive and the LAN session of the old version, after the upgrade.

    Versions before fb114d8 recorded every TSE placed without ``--interface`` as
    reached over the HTTP API, also one only used embedded (``opentse demo``, ``pos
    --data``); the procedure documentation printed that. Migration 0011 corrects
    those rows (a TSE the API does not serve) and says so in the protocol."""
    from opentse.ops.sites import EMBEDDED_INTERFACE, SERVED_INTERFACE

    demo_tse, api_tss = facts["demo"]["tse_id"], facts["api"]["tss_id"]
    assert facts["site"]["interfaces"] == {demo_tse: SERVED_INTERFACE, api_tss: SERVED_INTERFACE}
    sites = run_json(CURRENT, "site", "list", "--data", str(data))
    interfaces = {t["tse_id"]: t["interface_type"] for t in sites["tses"]}
    assert interfaces == {demo_tse: EMBEDDED_INTERFACE, api_tss: SERVED_INTERFACE}
    assert [(r["register_id"], r["tse_id"]) for r in sites["registers"]] == [
        (facts["demo"]["client_id"], demo_tse)
    ]
    protocol = run_json(CURRENT, "tse", "protocol", demo_tse, "--data", str(data))
    corrected = [e for e in protocol if e["kind"] == "tse.interface_corrected"]
    assert [(e["tse_id"], e["details"]) for e in corrected] == [
        (
            demo_tse,
            {
                "interface_type_before": SERVED_INTERFACE,
                "interface_type": EMBEDDED_INTERFACE,
                "reason": "migration 0011: the TSE is not served over this installation's API",
            },
        )
    ]
    assert corrected[0]["org_id"] == facts["site"]["org_id"]

    # the archived export: listed with its hash, the file where the folder is now
    (item,) = run_json(CURRENT, "archive", "list", "--data", str(data))
    assert (item["id"], item["sha256"]) == (facts["archive"]["id"], facts["archive"]["sha256"])
    assert item["file_intact"] is True and item["verified_ok"] is True
    assert Path(item["file"]).is_relative_to(data) and Path(item["file"]).is_file()

    # LAN: the tills' pinned fingerprint and key still work; the old plain TLS key
    # is stored encrypted from the first start on
    lan = facts["lan"]
    with up.serving(CURRENT, data, lan=True) as (base, _proc):
        login = ["--api-key", facts["key"]["api_key"], "--api-secret", facts["key"]["api_secret"]]
        pin = ["--fingerprint", lan["fingerprint"]]
        tested = run_json(CURRENT, "lan", "test", "--url", base, *login, *pin)
        assert tested["ok"] is True, tested
    assert (
        f"TLS SHA-256:         {lan['fingerprint']}" in (data / "LAN-TSE-Session.txt").read_text()
    )
    assert (data / "lan-tls-key.pem").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY")


def check_service(
    facts: dict[str, Any], data: Path, root: Path, database: str | None = None
) -> None:
    api = facts["api"]
    tss = api["tss_id"]
    with (
        up.serving(CURRENT, data, database) as (base, _proc),
        contextlib.closing(up.api_client(base, facts["key"])) as c,
    ):
        body = up.ok(c.get(f"/tss/{tss}"))
        assert int(body["signature_counter"]) == api["signature_counter"]
        assert int(body["transaction_counter"]) == api["transaction_counter"]
        old = c.get(f"/tss/{tss}/export/{api['export_id']}/file")
        assert old.status_code == 200, old.text
        assert hashlib.sha256(old.content).hexdigest() == api["export_sha256"]
        assert (
            up.ok(c.get(f"/tss/{tss}/tx/{api['last_tx']['number']}"))["_id"] == api["last_tx"]["id"]
        )
        up.ok(c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": api["admin_pin"]}))
        start, finish = up.sign_receipt(c, tss, api["client_id"], "2.00")
        assert start["number"] == finish["number"] == api["transaction_counter"] + 1
        assert int(finish["signature"]["counter"]) > api["signature_counter"]
        up.download_export(c, tss, root / "api-after.tar")
        counter = int(up.ok(c.get(f"/tss/{tss}"))["signature_counter"])
        login, (exports,) = up.dashboard_login(base, facts["key"], "/dashboard/exports")
        assert login.status_code == 303, login.text
        assert re.search(r"/dashboard/tss\b", login.headers["location"]), login.headers
        assert api["export_id"] in exports  # the old export in the dashboard's list
    chain = verify_chain(root / "api-after.tar", cli=True)
    # every log before and after the upgrade, none twice: the export's own log is
    # signed after the archive is written, so it is the one counter not in it
    assert chain["last_counter"] == counter - 1
    verify_chain(root / "api-export.tar")  # the old version's own export


POSTGRES = sorted(FIXTURES.glob("*-postgresql.tar.gz"))


@pytest.mark.postgres
@pytest.mark.parametrize("archive", POSTGRES, ids=[p.name.split("-")[0] for p in POSTGRES])
def test_postgresql_installation_upgrades(archive: Path, tmp_path: Path, pg_server: str) -> None:
    """The old version's tables restored from its pg_dump into a schema of this
    test (the fixture's schema name replaced), then migrate and the service checks."""
    import psycopg
    from make_fixtures import SCHEMA

    from opentse.storage.nodes import PG_ONLY_FROM
    from opentse.storage.pg_testing import with_search_path

    if shutil.which("psql") is None:
        pytest.skip("psql (PostgreSQL client) not installed: the fixture is a pg_dump")
    facts = unpack(archive, tmp_path)
    schema = "opentse_upgrade_" + secrets.token_hex(6)
    dump = (tmp_path / "dump.sql").read_text().replace(SCHEMA, schema)
    (tmp_path / "restore.sql").write_text(dump)
    try:
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(tmp_path / "restore.sql"), pg_server],
            check=True,
            capture_output=True,
            timeout=60,
        )
        url = with_search_path(pg_server, schema)
        with psycopg.connect(url, autocommit=True) as pg:
            old_versions = migrations.applied_versions(pg)
        wanted = [m.version for m in migrations.load("postgresql")]
        out = run_json(CURRENT, "migrate", "--database", url)
        assert out == {
            "dialect": "postgresql",
            "applied": [v for v in wanted if v not in old_versions],
            "current": max(v for v in wanted if v < PG_ONLY_FROM),  # not 0900 (ce1bb84)
        }
        assert out["applied"], "the fixture is as new as this code"
        check_service(facts, tmp_path / "data", tmp_path, database=url)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


ROLLBACK = "5f0adb6"  # an old version with a fixture; its code comes from git history


def old_tree(commit: str, into: Path) -> Path:
    """``commit``'s source tree from this repository's history (git archive), or skip:
    a shallow clone or a source tarball has no history."""
    repo = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None:
        pytest.skip("git not installed: the rollback test runs the old version's code")
    found = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        pytest.skip(f"commit {commit} not in this clone (shallow?): fetch the full history")
    tree = into / f"old-{commit}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def sign_once(
    command: list[str],
    facts: dict[str, Any],
    data: Path,
    root: Path,
    export: str | None,
    then_export: Path | None = None,
) -> tuple[dict[str, Any], str]:
    """One receipt on the fixture's TSS through ``command``'s ``opentse serve``; then
    the file of ``export`` (an id) must download as ``root/<id>.tar`` holds, or, with
    None, a new export is written there; ``then_export``: a new export of the whole
    TSS written there last, by the same server. The receipt's Finish and the export id."""
    api = facts["api"]
    tss = api["tss_id"]
    with (
        up.serving(command, data) as (base, _proc),
        contextlib.closing(up.api_client(base, facts["key"])) as c,
    ):
        up.ok(c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": api["admin_pin"]}))
        _start, finish = up.sign_receipt(c, tss, api["client_id"], "3.00")
        up.ok(c.post(f"/tss/{tss}/admin/logout"))
        if export is None:
            out = root / "new.tar"
            export = up.download_export(c, tss, out)
            out.rename(root / f"{export}.tar")
        else:
            file = c.get(f"/tss/{tss}/export/{export}/file")
            assert file.status_code == 200, file.text
            assert file.content == (root / f"{export}.tar").read_bytes()
        if then_export is not None:
            up.download_export(c, tss, then_export)
    return finish, export


def test_rollback_paths_of_docs_upgrading(tmp_path: Path) -> None:
    """docs/upgrading.md's two ways back. Nothing signed yet: the copy of the data
    folder taken before is put back (the old schema again). Signed already: the old
    version runs on the migrated database (migrations only add), its receipts go on
    from the new version's counters and it serves the new version's export, and the
    new version after it again; one export of the whole TSS verifies as one gapless
    chain."""
    facts = unpack(FIXTURES / f"{ROLLBACK}-sqlite.tar.gz", tmp_path)
    data = tmp_path / "data"
    old_versions = versions_in(data / "opentse.db")
    backup = tmp_path / "data.before-upgrade"
    subprocess.run(["cp", "-a", str(data), str(backup)], check=True)
    run_json(CURRENT, "migrate", "--data", str(data))
    assert versions_in(data / "opentse.db") == set(range(1, LATEST + 1))
    shutil.rmtree(data)
    subprocess.run(["mv", str(backup), str(data)], check=True)
    assert versions_in(data / "opentse.db") == old_versions  # as before the upgrade

    old = up.old_command(old_tree(ROLLBACK, tmp_path))
    run_json(CURRENT, "migrate", "--data", str(data))
    numbers = []
    export = None  # made by the new version, then served by the old one
    everything = tmp_path / "all.tar"  # exported by the last server (one start less)
    for command, last in ((CURRENT, None), (old, None), (CURRENT, everything)):
        finish, export = sign_once(command, facts, data, tmp_path, export, last)
        numbers.append((finish["number"], int(finish["signature"]["counter"])))
    first = facts["api"]["transaction_counter"] + 1
    assert [n for n, _ in numbers] == [first, first + 1, first + 2]
    assert [c for _, c in numbers] == sorted({c for _, c in numbers})
    assert versions_in(data / "opentse.db") == set(range(1, LATEST + 1))
    chain = verify_chain(everything)
    assert chain["last_counter"] >= numbers[-1][1]
