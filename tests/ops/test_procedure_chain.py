"""A shop chain built with the CLI as a user builds it (two locations, three
registers, one TSE replaced, one moved to a new host, an outage recorded, an export
archived and the TSE's logs deleted): every fact the procedure documentation states
is checked against what the CLI itself reports (tse list, tse protocol, archive list)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.ops.procedure import _dt

runner = CliRunner()
APP = build_app()
PIN = "12345678"


def run(data: Path, *args: str) -> str:
    result = runner.invoke(APP, [*args, "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _id(output: str) -> str:
    return str(json.loads(output)["id"])


def _german(iso: str) -> str:
    return _dt(int(datetime.fromisoformat(iso).timestamp()))


def test_a_shop_chain_documented_as_the_cli_reports_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    org = _id(run(data, "site", "org-create", "Bäckerei Müller GmbH", "--tax-number",
                  "21/815/08150", "--json"))  # fmt: skip
    mitte = _id(run(data, "site", "create", org, "Filiale Mitte", "--street", "Hauptstraße 1",
                    "--postal-code", "10115", "--city", "Berlin", "--json"))  # fmt: skip
    nord = _id(run(data, "site", "create", org, "Filiale Nord", "--street", "Nordweg 7",
                   "--postal-code", "13359", "--city", "Berlin", "--json"))  # fmt: skip
    for tse, loc in (("tse-mitte", mitte), ("tse-nord", nord)):
        puk = json.loads(run(data, "tse", "create", tse, "--json"))["admin_puk"]
        run(data, "tse", "initialize", tse, "--pin", PIN, "--puk", puk)
        run(data, "site", "assign-tse", tse, loc)
    for register, loc, tse in (
        ("KASSE-1", mitte, "tse-mitte"), ("KASSE-2", mitte, "tse-mitte"),
        ("KASSE-3", nord, "tse-nord"),
    ):  # fmt: skip
        run(data, "client", "register", register, "--tss", tse, "--pin", PIN)
        run(data, "site", "add-register", register, loc, "--model", "opentse pos")
        run(data, "site", "assign", register, tse)
    run(data, "tse", "outage", "--start", "2026-07-01T08:00", "--end", "2026-07-01T09:30",
        "--reason", "Router defekt", "--tse", "tse-nord")  # fmt: skip
    run(data, "archive", "export", "tse-nord")
    run(data, "tse", "delete-stored-data", "tse-nord", "--pin", PIN)
    run(data, "tse", "replace", "tse-mitte", "tse-mitte-2", "--new-pin", PIN, "--old-pin", PIN,
        "--reason", "Zertifikat läuft ab", "--by", "A. Müller")  # fmt: skip
    svc_org = json.loads(run(data, "apikey", "create", "--org", "Müller", "--json"))
    run(data, "tse", "move", "tse-nord", "--host", "192.168.1.30", "--port", "8000",
        "--no-test", "--org", svc_org["organization_id"])  # fmt: skip
    out = tmp_path / "vd.md"
    run(data, "docs", "procedure", str(out))
    md = out.read_text(encoding="utf-8")

    tses = {t["id"]: t for t in json.loads(run(data, "tse", "list", "--json"))}
    assert set(tses) == {"tse-mitte", "tse-nord", "tse-mitte-2"}
    for tse_id, t in tses.items():
        block = md.split(f"### TSE {tse_id}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        assert f"`{t['serial_number']}`" in block
        assert f"| Inbetriebnahme (Initialisierung) | {_german(t['time_init'])} |" in block
        out_of_service = _german(t["time_disable"]) if t.get("time_disable") else "-"
        assert f"| Außerbetriebnahme | {out_of_service} |" in block
        assert "| BSI-Zertifizierungs-ID | keine: opentse ist nicht vom BSI zertifiziert |" in block
        assert f"| Signaturen / Kapazität | {t['signature_counter']} / 20.000.000 |" in block
    assert "| Zustand | außer Betrieb (DISABLED), ersetzt |" in md
    nord = md.split("### TSE tse-nord\n", 1)[1].split("\n### ", 1)[0]
    assert "gelöscht (deleteStoredData" in nord and "nur noch in den archivierten" in nord
    assert "http://192.168.1.30:8000/api/v2" in nord

    entries = json.loads(run(data, "tse", "protocol", "--json"))
    section5 = md.split("## 5.", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section5.splitlines() if line[:3].strip("| ").isdigit()]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        assert row.startswith(f"| {entry['seq']} | {_dt(entry['at'])} | ")
        assert f"({entry['kind']}) |" in row or f"| {entry['kind']} |" in row

    for item in json.loads(run(data, "archive", "list", "--json")):
        assert f"`{item['sha256']}`" in md.split("## 8.", 1)[1]

    # the outage given without a zone is UTC (docs/operations.md): 10:00 MESZ in July
    assert "| 01.07.2026 10:00:00 MESZ | 01.07.2026 11:30:00 MESZ | tse-nord |" in md
    registers = md.split("## 3.", 1)[1].split("\n## ", 1)[0]
    for register, tse in (("KASSE-1", "tse-mitte-2"), ("KASSE-2", "tse-mitte-2"),
                          ("KASSE-3", "tse-nord")):  # fmt: skip
        [row] = [line for line in registers.splitlines() if line.startswith(f"| `{register}` | op")]
        assert f"| `{tse}` |" in row and row.endswith(" | - |")  # still in service
    assert "(TSE außer Betrieb)" in registers  # KASSE-1/2 left the replaced TSE
