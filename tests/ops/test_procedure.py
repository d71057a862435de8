"""The procedure documentation from live data: every section, the facts, no secrets;
rendered to PDF and from there to PNG (artifacts/ops/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from PIL import Image, ImageDraw, ImageFont

from conftest import PIN, ready_tse, sell
from opentse import NOT_CERTIFIED_NOTICE
from opentse.ops import archive, outages, procedure, protocol, replacement, sites
from opentse.ops.store import OpsContext

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ops"
SECRET_PIN = "Pin-Geheim-4711"


def _scenario(ops: OpsContext, tmp_path: Path) -> tuple[Path, str]:
    org = sites.create_organization(ops, "Café Sonne GmbH", tax_number="12/345/67890")
    main = sites.create_location(
        ops, org.id, "Hauptgeschäft", street="Hauptstraße 1", postal_code="10115", city="Berlin"
    )
    bar = sites.create_location(
        ops, org.id, "Bar 1. OG", street="Hauptstr. 1", postal_code="10115", city="Berlin"
    )
    ready_tse(ops, "tse-main", "KASSE-1", "KASSE-2", pin=SECRET_PIN)
    sites.assign_tse(
        ops, "tse-main", main.id, capacity=1000,
        connection_url="https://192.168.1.20:4433/api/v2", interface_type="LAN (HTTPS, TLS)",
    )  # fmt: skip
    sites.share_tse(
        ops, "tse-main", bar.id, confirmed_by="A. Wirt",
        confirmation="Die Bar im 1. OG gehört zur selben Betriebsstätte.",
    )  # fmt: skip
    sites.add_register(ops, "KASSE-1", main.id, model="opentse pos", software_version="0.1.0")
    sites.add_register(ops, "KASSE-2", bar.id, model="Tablet-Kasse", hardware_version="A7")
    sites.assign_register(ops, "KASSE-1", "tse-main")
    sites.assign_register(ops, "KASSE-2", "tse-main")
    sell(ops, "tse-main", "KASSE-1", 3)
    protocol.record_credential_change(ops.db, ops.now(), "tse-main", what="puk", actor="A. Wirt")
    outages.record_outage(
        ops, started_at=ops.now() - 7200, ended_at=ops.now() - 3600,
        reason="Stromausfall im Back-Office", tse_id="tse-main",
    )  # fmt: skip
    # a register's own outage journal (opentse.register) is merged in
    from opentse.register.outage import OutageLog

    journal = tmp_path / "register-outages.db"
    log = OutageLog(journal)
    log.record_unreachable(at=datetime(2025, 10, 1, 9, 0, tzinfo=UTC), reason="WLAN gestört")
    log.close()
    done = replacement.replace_tse(
        ops, "tse-main", "tse-main-2", new_admin_pin=SECRET_PIN, old_admin_pin=SECRET_PIN,
        reason="Zertifikat läuft ab", actor="A. Wirt",
    )  # fmt: skip
    return journal, done.export.sha256


def _png_from_pdf(pdf: Path, out_prefix: Path) -> list[Path]:
    """pdftoppm (poppler-utils) when installed, otherwise Pillow draws the text."""
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "70", str(pdf), str(out_prefix)], check=True, timeout=120
        )
        return sorted(out_prefix.parent.glob(out_prefix.name + "-*.png"))
    return []


def _png_from_text(text: str, out: Path) -> Path:
    font = ImageFont.load_default()
    lines = text.splitlines()[:400]
    img = Image.new("RGB", (1400, 14 * len(lines) + 20), "white")
    draw = ImageDraw.Draw(img)
    for n, line in enumerate(lines):
        draw.text((10, 10 + 14 * n), line, fill="black", font=font)
    img.save(out)
    return out


def test_procedure_document(ops: OpsContext, tmp_path: Path) -> None:
    journal, sha = _scenario(ops, tmp_path)
    data = procedure.collect(ops, journals=(journal,))
    md = procedure.render_markdown(data)
    for heading in procedure.SECTIONS:
        assert f"# {heading}\n" in md, heading
    old = ops.service.get("tse-main")
    new = ops.service.get("tse-main-2")
    for fact in (
        NOT_CERTIFIED_NOTICE,
        "Café Sonne GmbH",
        "Hauptstraße 1, 10115 Berlin",
        "Die Bar im 1. OG gehört zur selben Betriebsstätte.",
        old.record.serial_number.hex(),
        new.record.serial_number.hex(),
        "https://192.168.1.20:4433/api/v2",
        "192.168.1.20 / 4433 / /api/v2",
        "LAN (HTTPS, TLS)",
        "opentse 0.1.0",
        "KASSE-1",
        "Tablet-Kasse",
        "PUK (admin)",
        "PIN gesetzt/entsperrt mit PUK (unblockUser, Benutzer ",
        "Stromausfall im Back-Office",
        "WLAN gestört",
        sha,
        protocol.REPLACE_EXPORT_VERIFIED,
        protocol.REPLACE_OLD_DISABLED,
    ):
        assert fact in md, fact
    cert_serial = procedure._tse_row(ops, "tse-main", {})["cert_serial"]
    assert cert_serial != "-" and f"`{cert_serial}`" in md
    assert "| Inbetriebnahme (Initialisierung) | 09.10.2025 10:53:20 MESZ |" in md
    assert SECRET_PIN not in md  # PIN changes are documented, values never

    # an organization filter still shows its TSEs; an unknown one is an error
    assert "tse-main-2" in procedure.render_markdown(procedure.collect(ops, data.orgs[0].id))
    with pytest.raises(Exception, match="E_SITE_ORG_NOT_FOUND"):
        procedure.collect(ops, "nope")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    md_path = procedure.write(ops, ARTIFACTS / "procedure.md", journals=(journal,))
    pdf_path = procedure.write(ops, ARTIFACTS / "procedure.pdf", journals=(journal,))
    assert md_path.read_text(encoding="utf-8") == md.replace(data.generated, data.generated)
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True,
            check=True, timeout=60,
        ).stdout  # fmt: skip
        squashed = " ".join(text.split())
        for heading in procedure.SECTIONS:
            assert " ".join(heading.split()) in squashed, heading
        assert SECRET_PIN not in text
    for old_png in ARTIFACTS.glob("procedure-*.png"):
        old_png.unlink()
    pages = _png_from_pdf(pdf_path, ARTIFACTS / "procedure")
    if not pages:  # no poppler: render the Markdown text instead (said in the report)
        pages = [_png_from_text(md, ARTIFACTS / "procedure-text.png")]
    assert pages
    for page in pages:
        with Image.open(page) as img:
            assert img.width > 300 and img.height > 300
            gray = img.convert("L")
            darkest = gray.getextrema()[0]
            assert isinstance(darkest, int) and darkest < 100  # dark text on the page
    assert archive.exports(ops, "tse-main")


def test_defective_tse_shows_when_it_was_taken_out_of_service(ops: OpsContext) -> None:
    """A defective TSE signs no disable log; the documentation takes the date from the
    protocol instead of claiming it is still in service ("-")."""
    org = sites.create_organization(ops, "Kiosk GmbH")
    loc = sites.create_location(
        ops, org.id, "Kiosk", street="Ring 2", postal_code="04109", city="Leipzig"
    )
    ready_tse(ops, "broken", "K1")
    sites.assign_tse(ops, "broken", loc.id)
    sites.add_register(ops, "K1", loc.id)
    sites.assign_register(ops, "K1", "broken")
    replacement.replace_tse(ops, "broken", "fresh", new_admin_pin="654321", defective=True)
    taken_out = protocol.entries(ops.db, kinds=(protocol.REPLACE_OLD_DISABLED,))[0]
    md = procedure.render_markdown(procedure.collect(ops))
    block = md.split("### TSE broken", 1)[1].split("### TSE fresh", 1)[0]
    when = procedure._dt(taken_out.at)
    assert f"| Außerbetriebnahme | {when} (DEFECTIVE, laut Protokoll) |" in block
    fresh = md.split("### TSE fresh", 1)[1]
    assert "| Außerbetriebnahme | - |" in fresh


def test_tse_at_no_location_is_described_as_it_is(ops: OpsContext) -> None:
    """A TSE nobody placed with `site assign-tse` (e.g. created through the API) is
    still documented, with its real interface and the running software version."""
    from opentse.server.auth import create_api_key
    from opentse.version import version_text

    ready_tse(ops, "cli-only")
    ready_tse(ops, "api")
    key = create_api_key(ops.svc, org_name="shop", env="TEST", now=ops.now())
    ops.svc.add_tss("api", key["organization_id"], "TEST", {}, None, ops.now())
    md = procedure.render_markdown(procedure.collect(ops))
    cli_only = md.split("### TSE cli-only", 1)[1].split("### TSE", 1)[0]
    api = md.split("### TSE api", 1)[1].split("### TSE", 1)[0]
    assert (
        "| Schnittstelle | eingebettet (opentse-Bibliothek bzw. -CLI auf demselben Rechner) |"
        in cli_only
    )
    assert "| Schnittstelle | HTTP-API (fiskaly SIGN DE v2 kompatibel, opentse serve) |" in api
    assert f"| Software-Version | {version_text()} |" in cli_only  # with the commit
    assert "| Standort | - |" in api


def test_unblock_logs_say_whose_pin_and_whether_it_changed(ops: OpsContext) -> None:
    """Section 4 reads the TSE's unblockUser logs: a wrong PUK is logged as well
    (TR-03151) and must not be documented as a PIN change; the user is named."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    data = ops.data_dir
    ops.close()
    app, runner = build_app(), CliRunner()
    made = runner.invoke(app, ["tse", "create", "p1", "--json", "--data", str(data)])
    puks = json.loads(made.output)
    for args in (
        ["tse", "initialize", "p1", "--pin", "123456", "--puk", puks["admin_puk"]],
        ["tse", "set-pin", "p1", "--user", "timeadmin", "--puk", "wrong-puk-1", "--pin", "777777"],
        ["tse", "set-pin", "p1", "--user", "timeadmin", "--puk", puks["timeadmin_puk"],
         "--pin", "777777"],
    ):  # fmt: skip
        runner.invoke(app, [*args, "--data", str(data)], catch_exceptions=False)
    ctx = OpsContext.open(data)
    try:
        rows = [c["what"] for c in procedure.collect(ctx).credential_changes]
    finally:
        ctx.close()
    assert len(rows) == 3, rows
    assert rows[0].startswith("PIN gesetzt/entsperrt mit PUK (unblockUser, Benutzer ")
    assert "admin" in rows[0].lower() and "time" not in rows[0].lower()
    assert rows[1].startswith("Versuch ohne Änderung (unblockUser, Benutzer ")
    assert "Ergebnis failed" in rows[1] and "time" in rows[1].lower()
    assert rows[2].startswith("PIN gesetzt/entsperrt") and "time" in rows[2].lower()
    assert not any(puks["timeadmin_puk"] in r or "wrong-puk-1" in r for r in rows)


def test_clients_registered_at_a_tse_but_never_recorded_are_listed(ops: OpsContext) -> None:
    """Section 3 does not depend on the operator having recorded each till: a client
    only registered at the TSE (e.g. by a POS through the API) is listed too, once,
    and a recorded register is not listed twice."""
    org = sites.create_organization(ops, "Kiosk am Park")
    loc = sites.create_location(
        ops, org.id, "Kiosk", street="Parkweg 2", postal_code="10115", city="Berlin"
    )
    ready_tse(ops, "tse-k", "KASSE-A", "TABLET-7")
    sites.assign_tse(ops, "tse-k", loc.id)
    sites.add_register(ops, "KASSE-A", loc.id, model="opentse pos")
    sites.assign_register(ops, "KASSE-A", "tse-k")
    md = procedure.render_markdown(procedure.collect(ops))
    section = md.split("## 3.", 1)[1].split("## 4.", 1)[0]
    unrecorded = section.split("ohne Kassen-Eintrag", 1)[1]
    assert "`KASSE-A`" not in unrecorded and section.count("`TABLET-7`") == 1
    [row] = [line for line in section.splitlines() if "`TABLET-7`" in line]
    assert row.startswith("| `TABLET-7` | `tse-k` | ") and row.endswith("| - |")
    assert "ohne Kassen-Eintrag" in section


def test_markdown_paragraphs_after_tables_and_tills_in_the_outage_log(
    ops: OpsContext, tmp_path: Path
) -> None:
    """The paragraph after section 1's last table ran on as a table row (no blank line:
    GFM continues a table until one), an organization without locations showed an
    empty table, and the outages from a till's journal named neither the till nor the
    TSE, although `opentse pos` keeps both in the same file."""
    org = sites.create_organization(ops, "Bäckerei Müller GmbH")
    sites.create_location(
        ops, org.id, "Filiale", street="Hauptstraße 5", postal_code="10115", city="Berlin"
    )
    sites.create_organization(ops, "Bäckerei Müller Holding")  # no location yet
    journal = tmp_path / "kasse-1.db"
    opentse = str(Path(sys.executable).parent / "opentse")
    # a till whose TSE does not sign (disabled), so its receipt goes to the outage log
    ready_tse(ops, "tse-backstube", "KASSE-1")
    ops.service.authenticate("tse-backstube", PIN)
    ops.service.disable("tse-backstube")
    sold = subprocess.run(
        [opentse, "pos", "sell", "--data", str(ops.data_dir), "--tss", "tse-backstube",
         "--client", "KASSE-1", "--journal", str(journal), "--line", "Brot:1:3.80:2",
         "--pay", "bar:5.00"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert sold.returncode == 0 and "TSE ausgefallen" in sold.stdout, sold.stderr
    md = procedure.render_markdown(procedure.collect(ops, journals=(journal,)))
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<p>Keine TSE wird von mehreren Standorten genutzt.</p>" in html
    assert "<p>Keine Standorte erfasst.</p>" in html
    assert html.count("<table>") == sum(line.startswith("|---") for line in md.splitlines())
    section = md.split("## 7.", 1)[1].split("## 8.", 1)[0]
    [row] = [line for line in section.splitlines() if "kasse-1.db" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["tse-backstube", "KASSE-1"] and cells[5] == "1", row
