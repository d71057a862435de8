"""The procedure documentation as a German tax advisor or Betriebsprüfer reads it
(GoBD Rz. 151 ff., AEAO zu §146a, §146a Abs. 4 AO): German local times with the zone
named, every TSE's certification ID (none: opentse is not certified), every register's
dates of putting into and out of service and the TSEs it signed at, deleted logs, a
protocol in words, no English defaults, no empty tables, and a PDF that says what the
Markdown says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PIN, START, ready_tse, sell
from opentse.ops import archive, procedure, replacement, sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

WINTER = 1_765_000_000  # 06.12.2025 05:46:40 UTC = 06:46:40 MEZ


def _shop(ops: OpsContext) -> str:
    org = sites.create_organization(ops, "Bäckerei Müller GmbH", tax_number="21/815/08150")
    loc = sites.create_location(
        ops, org.id, "Filiale Mitte", street="Hauptstraße 1", postal_code="10115", city="Berlin"
    )
    ready_tse(ops, "alt", "KASSE-1", "KASSE-2")
    sites.assign_tse(ops, "alt", loc.id)
    for register in ("KASSE-1", "KASSE-2"):
        sites.add_register(ops, register, loc.id, model="opentse pos", software_version="0.1.0")
        sites.assign_register(ops, register, "alt")
    sell(ops, "alt", "KASSE-1", 2)
    return loc.id


def _section(md: str, number: str) -> str:
    return md.split(f"## {number}.", 1)[1].split("\n## ", 1)[0]


def test_times_are_german_local_time_with_the_zone_named(
    ops: OpsContext, clock: FrozenClock
) -> None:
    """Every time was printed as UTC ('2025-10-09 08:53:20 UTC'): a Prüfer compares it
    with receipts and Z reports in the shop's time, one or two hours off."""
    _shop(ops)
    clock.set(WINTER)
    replacement.replace_tse(ops, "alt", "neu", new_admin_pin=PIN, old_admin_pin=PIN)
    md = procedure.render_markdown(procedure.collect(ops))
    assert " UTC" not in md
    assert "Erstellt am 06.12.2025 06:46:40 MEZ" in md
    alt = md.split("### TSE alt", 1)[1].split("### TSE", 1)[0]
    assert "| Inbetriebnahme (Initialisierung) | 09.10.2025 10:53:20 MESZ |" in alt
    assert "| Außerbetriebnahme | 06.12.2025 06:46:40 MEZ |" in alt
    # the retention date is a calendar date (31 December), not the next day in Berlin
    exports = _section(md, "8")
    assert "| 31.12.2035 |" in exports and "01.01.2036" not in exports
    assert procedure._dt(START) == "09.10.2025 10:53:20 MESZ"


def test_every_tse_names_its_certification_and_section_9_the_notification(
    ops: OpsContext,
) -> None:
    """§146a Abs. 4 AO and the AEAO ask for each TSE's BSI certification ID: the
    document had no such line, and no summary of what is to be notified."""
    _shop(ops)
    md = procedure.render_markdown(procedure.collect(ops))
    assert "9. Angaben für die Mitteilung nach §146a Abs. 4 AO" in procedure.SECTIONS
    assert (
        md.count("| BSI-Zertifizierungs-ID | keine: opentse ist nicht vom BSI zertifiziert |") == 1
    )
    notice = _section(md, "9")
    assert (
        "keine BSI-Zertifizierungs-ID und können nicht als zertifizierte TSE mitgeteilt" in notice
    )
    serial = ops.service.get("alt").record.serial_number.hex()
    [row] = [line for line in notice.splitlines() if line.startswith("| `KASSE-1`")]
    assert f"alt (`{serial}`)" in row and "| 09.10.2025 10:53:20 MESZ | - |" in row
    assert row.endswith("| keine |")


def test_registers_show_when_they_went_into_and_out_of_service_and_where_they_signed(
    ops: OpsContext, clock: FrozenClock
) -> None:
    """Section 3 showed only when a register was last assigned ('zugeordnet', the
    replacement's time after a replacement), not when it was put into service, nor
    when a register deregistered from every TSE went out of service, nor which TSE
    signed its receipts before."""
    _shop(ops)
    clock.set(WINTER)
    replacement.replace_tse(ops, "alt", "neu", new_admin_pin=PIN, old_admin_pin=PIN)
    clock.advance(3600)
    ops.service.authenticate("neu", PIN)
    ops.service.deregister_client("neu", "KASSE-2")
    ops.service.logout("neu")
    md = procedure.render_markdown(procedure.collect(ops))
    registers = _section(md, "3")
    head = "| Kasse (Client-ID / Seriennummer) | Art / Modell | Hardware | Software | Standort"
    assert head in registers and "| Inbetriebnahme | Außerbetriebnahme |" in registers
    [k1] = [line for line in registers.splitlines() if line.startswith("| `KASSE-1` | opentse")]
    [k2] = [line for line in registers.splitlines() if line.startswith("| `KASSE-2` | opentse")]
    assert k1.endswith("| `neu` | 09.10.2025 10:53:20 MESZ | - |"), k1
    assert k2.endswith("| 09.10.2025 10:53:20 MESZ | 06.12.2025 07:46:40 MEZ |"), k2
    assert "| nicht erfasst |" in k1  # no hardware version recorded: said, not blank
    usage = registers.split("Nutzung der TSE durch die Kassen", 1)[1]
    assert (
        "| `KASSE-1` | `alt` | 09.10.2025 10:53:20 MESZ | 06.12.2025 06:46:40 MEZ"
        " (TSE außer Betrieb) |" in usage
    )
    assert "| `KASSE-1` | `neu` | 06.12.2025 06:46:40 MEZ | - |" in usage
    assert (
        "| `KASSE-2` | `neu` | 06.12.2025 06:46:40 MEZ | 06.12.2025 07:46:40 MEZ (abgemeldet) |"
        in usage
    )


def test_deleted_logs_are_documented(ops: OpsContext, clock: FrozenClock) -> None:
    """After deleteStoredData the TSE's own unblockUser logs are gone from section 4
    without a word: the document now says what was deleted, when, and where it is."""
    _shop(ops)
    assert archive.archive_export(ops, "alt").verified_ok
    clock.advance(60)
    ops.service.authenticate("alt", PIN)
    deleted = ops.service.delete_stored_data("alt")
    ops.service.logout("alt")
    upto = ops.service.get("alt").state.deleted_up_to
    md = procedure.render_markdown(procedure.collect(ops))
    alt = md.split("### TSE alt", 1)[1].split("\n## ", 1)[0]
    assert (
        f"| Gelöschte Protokolle | 09.10.2025 10:54:20 MESZ: gespeicherte Protokolle bis"
        f" Signaturzähler {upto} gelöscht (deleteStoredData, Signaturzähler"
        f" {deleted.signature_counter}); sie sind nur noch in den archivierten Exporten"
        " (Abschnitt 8) |" in alt
    )
    credentials = _section(md, "4")
    assert "unblockUser" not in credentials.split("|---|", 1)[-1].split("\n\n", 1)[0]
    assert "Bei TSE alt wurden gespeicherte Protokolle gelöscht" in credentials


def test_logs_deleted_after_an_export_outside_the_archive_are_not_said_archived(
    ops: OpsContext,
) -> None:
    """The TSE deletes what any complete export covered (`opentse export`, never
    archived, never verified): the document must not say those logs are in the
    archive."""
    _shop(ops)
    with open(ops.data_dir / "outside.tar", "wb") as out:
        ops.service.export("alt", out)
    ops.service.authenticate("alt", PIN)
    ops.service.delete_stored_data("alt")
    ops.service.logout("alt")
    md = procedure.render_markdown(procedure.collect(ops))
    [row] = [line for line in md.splitlines() if line.startswith("| Gelöschte Protokolle |")]
    assert "KEIN geprüfter archivierter Export enthält sie alle" in row, row
    assert "nur noch in den archivierten Exporten" not in row


def test_protocol_in_words_with_readable_times(ops: OpsContext, clock: FrozenClock) -> None:
    """The protocol showed its codes only ('replace.old_disabled') and times inside
    the details as unix seconds ('initialized_at': 1760000000, 'retain_until':
    2082758399): nothing a tax advisor can read."""
    _shop(ops)
    clock.set(WINTER)
    replacement.replace_tse(ops, "alt", "neu", new_admin_pin=PIN, old_admin_pin=PIN)
    section = _section(procedure.render_markdown(procedure.collect(ops)), "5")
    assert "| Austausch: alte TSE außer Betrieb genommen (replace.old_disabled) |" in section
    assert "| TSE am Standort aufgestellt (tse.assigned) |" in section
    assert '"initialized_at": "09.10.2025 10:53:20 MESZ"' in section
    assert '"retain_until": "31.12.2035"' in section
    assert not re.search(r"\b1[67]\d{8}\b", section), section  # no unix seconds left
    assert "embedded (opentse library" not in section


def test_a_fresh_installation_says_what_is_missing_and_nothing_untrue(ops: OpsContext) -> None:
    """A fresh installation (opentse demo): section 1 was silent about the missing
    organization, section 5 was a table heading without rows, the TSE's hardware and
    interface were English defaults, and 6.1 said every register connects with API
    key and secret, checked with 'lan test', of a TSE no register reaches over a
    network."""
    ready_tse(ops, "demo", "DEMO-KASSE-1")
    md = procedure.render_markdown(procedure.collect(ops))
    assert "Kein Unternehmen erfasst (`opentse site org-create`)" in _section(md, "1")
    assert "|---|" not in _section(md, "5") and "Keine Einträge" in _section(md, "5")
    assert "software TSE (no hardware)" not in md and "embedded (" not in md
    assert "| Hardware-Version | keine (Software-TSE ohne Sicherheitsmodul) |" in md
    use = md.split("### 6.1", 1)[1].split("###", 1)[0]
    assert "API-Schlüssel" not in use and "lan test" not in use
    assert "eingebettete TSE läuft im Programm der Kasse auf demselben Rechner" in use
    assert "nicht vom BSI zertifiziert" in use
    assert "| Signaturen / Kapazität | 6 / 20.000.000 |" in md


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) missing")
def test_pdf_says_what_the_markdown_says(ops: OpsContext, tmp_path: Path) -> None:
    """Every word of the Markdown is in the PDF's text (tables, notes, section 9)."""
    _shop(ops)
    replacement.replace_tse(ops, "alt", "neu", new_admin_pin=PIN, old_admin_pin=PIN)
    md = procedure.write(ops, tmp_path / "vd.md").read_text(encoding="utf-8")
    pdf = procedure.write(ops, tmp_path / "vd.pdf")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    words, squashed = set(text.split()), "".join(text.split())
    plain = re.sub(r"\*\*|`", "", md).replace("\\|", "|")
    missing = [
        w
        for w in (t.strip("|") for t in plain.split())
        if w and not set(w) <= set("|-#>") and w not in words and w not in squashed
    ]
    assert missing == []
    assert "nicht BSI-zertifiziert" in text and "MESZ" in text


def test_outage_log_says_what_it_knows(ops: OpsContext, tmp_path: Path) -> None:
    """An outage recorded with `tse outage` counted '0' receipts (it counts none: the
    tills' journals do), one still going on ended '-', and a till's journal entry began
    with its code word ('start: WLAN gestört')."""
    from datetime import UTC, datetime

    from opentse.ops import outages
    from opentse.register.outage import OutageLog

    ready_tse(ops, "t1", "K1")
    outages.record_outage(ops, started_at=START - 600, ended_at=None, reason="Router defekt",
                          tse_id="t1")  # fmt: skip
    journal = tmp_path / "kasse.db"
    log = OutageLog(journal)
    log.record_unreachable(at=datetime(2025, 10, 1, 9, 0, tzinfo=UTC), reason="WLAN gestört")
    log.close()
    section = _section(procedure.render_markdown(procedure.collect(ops, journals=(journal,))), "7")
    [ops_row] = [line for line in section.splitlines() if "Router defekt" in line]
    assert ops_row.startswith("| 09.10.2025 10:43:20 MESZ | andauernd | t1 |  | Router defekt |")
    assert "| nicht erfasst |" in ops_row
    [till] = [line for line in section.splitlines() if "WLAN" in line]
    assert "| TSE beim Start der Kasse nicht erreichbar: WLAN gestört |" in till
    assert "| Ausfalljournal der Kasse kasse.db |" in till


def test_processes_say_what_is_true_in_correct_german(ops: OpsContext) -> None:
    """6.3 said every export is archived ('Alle Exporte werden ... archiviert'), but an
    `opentse export` is not; 6.4 closed its German quote with an English one."""
    ready_tse(ops, "t1", "K1")
    md = procedure.render_markdown(procedure.collect(ops))
    audits = md.split("### 6.3", 1)[1].split("###", 1)[0]
    assert "Alle Exporte werden" not in audits
    assert "ein Export mit `opentse export` wird nicht archiviert" in audits
    outage = md.split("### 6.4", 1)[1].split("\n## ", 1)[0]
    assert "„TSE ausgefallen“" in outage
    assert "Ausfall ist dem Finanzamt" not in outage  # an outage itself is not notified


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) missing")
def test_pdf_table_headings_do_not_break_inside_a_word(ops: OpsContext, tmp_path: Path) -> None:
    """Columns were sized by their values only: a heading over short values broke in
    the middle of a word ('Außerbetriebna' / 'hme', 'Hardwa' / 're')."""
    org = sites.create_organization(ops, "Bäckerei Müller GmbH")
    loc = sites.create_location(
        ops, org.id, "Filiale Mitte", street="Hauptstraße 1", postal_code="10115", city="Berlin"
    )
    ready_tse(ops, "tse-mitte", "KASSE-1", "KASSE-2")
    sites.assign_tse(ops, "tse-mitte", loc.id)
    for register in ("KASSE-1", "KASSE-2"):
        sites.add_register(ops, register, loc.id, model="opentse pos", hardware_version="PC",
                           software_version="opentse 0.1.0")  # fmt: skip
        sites.assign_register(ops, register, "tse-mitte")
    md = procedure.render_markdown(procedure.collect(ops))
    pdf = procedure.write(ops, tmp_path / "vd.pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout  # fmt: skip
    words = set(text.split())
    lines = md.splitlines()
    headings = {
        word
        for n, line in enumerate(lines[1:], 1)
        if line.startswith("|---")
        for word in re.sub(r"[`*|]", " ", lines[n - 1]).split()
    }
    assert {"Außerbetriebnahme", "Hardware", "Inbetriebnahme"} <= headings
    assert sorted(w for w in headings if w not in words) == []


def test_logs_deleted_before_an_archive_export_are_not_said_to_be_archived(
    ops: OpsContext, tmp_path: Path
) -> None:
    """An archive export made after a deletion holds only the logs the TSE still had:
    its last counter alone does not put the older, deleted logs into the archive
    (review of 07ff2e8). Exported with opentse export, deleted, two sales, archived,
    deleted again: logs 1..N1 are only in the export outside the archive."""
    _shop(ops)
    with open(tmp_path / "outside.tar", "wb") as out:  # opentse export, never archived
        ops.service.export("alt", out)
    ops.service.authenticate("alt", PIN)
    ops.service.delete_stored_data("alt")
    ops.service.logout("alt")
    sell(ops, "alt", "KASSE-1", 2)
    item = archive.archive_export(ops, "alt")
    assert item.verified_ok and item.first_counter is not None and item.first_counter > 1
    ops.service.authenticate("alt", PIN)
    ops.service.delete_stored_data("alt")
    ops.service.logout("alt")
    md = procedure.render_markdown(procedure.collect(ops))
    (row,) = [line for line in md.splitlines() if line.startswith("| Gelöschte Protokolle |")]
    assert "KEIN geprüfter archivierter Export enthält sie alle" in row, row
    assert "nur noch in den archivierten Exporten" not in row, row
