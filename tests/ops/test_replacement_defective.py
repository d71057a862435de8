"""Replacing a defective TSE through the CLI: stored logs damaged in the SQLite file
(a log's bytes flipped, a log row missing) or its private key gone. A defective TSE
must be replaced without delay, so `tse replace --defective` finishes although no
export of it verifies, records what the verifier found, and leaves the old TSE
disabled (when it can still sign) or recorded as DEFECTIVE."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from conftest import PIN, ready_tse, sell
from opentse.cli.main import build_app
from opentse.errors import OpenTSEError
from opentse.ops import protocol, replacement, sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

runner = CliRunner()
APP = build_app()
NEW_PIN = "65432100"


def run(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(APP, [*args, "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    return result.output


def _shop(tmp_path: Path) -> Path:
    """A TSE at a location with one register and two sales, nothing damaged yet."""
    data = tmp_path / "data"
    with OpsContext.open(data) as ctx:
        org = sites.create_organization(ctx, "Imbiss Nord")
        loc = sites.create_location(
            ctx, org.id, "Imbiss", street="Hafenweg 1", postal_code="20457", city="Hamburg"
        )
        ready_tse(ctx, "old", "K1")
        sites.assign_tse(ctx, "old", loc.id)
        sites.add_register(ctx, "K1", loc.id)
        sites.assign_register(ctx, "K1", "old")
        sell(ctx, "old", "K1", 2)
    return data


def _flip_a_signature(data: Path) -> None:
    with sqlite3.connect(data / "opentse.db") as db:
        counter, message = db.execute(
            "SELECT signature_counter, message FROM logs WHERE tse_id='old' AND log_type='Tra'"
            " ORDER BY signature_counter LIMIT 1"
        ).fetchone()
        damaged = bytearray(message)
        damaged[-3] ^= 0xFF  # inside the signature value
        db.execute(
            "UPDATE logs SET message=? WHERE tse_id='old' AND signature_counter=?",
            (bytes(damaged), counter),
        )


def _protocol(data: Path, kind: str) -> list[dict[str, object]]:
    entries = json.loads(run(data, "tse", "protocol", "old", "--json"))
    return [e["details"] for e in entries if e["kind"] == kind]


def _lifecycle(data: Path, tse_id: str) -> str:
    rows = json.loads(run(data, "tse", "status", tse_id, "--json"))["tses"]
    return str(rows[0]["state"])


def test_damaged_logs_stop_a_plain_replacement_and_name_defective(tmp_path: Path) -> None:
    data = _shop(tmp_path)
    _flip_a_signature(data)
    out = run(data, "tse", "replace", "old", "new", "--new-pin", NEW_PIN, "--old-pin", PIN,
              code=1)  # fmt: skip
    flat = " ".join(out.split())
    assert "E_REPLACE_EXPORT_NOT_VERIFIED" in flat and "1 error(s): E_SIGNATURE_INVALID" in flat
    assert "--defective" in flat and "opentse verify " in flat
    # the stopped run's own hint says how to finish: with --defective, not the same again
    assert "Run `opentse tse replace old new --defective` (same new admin PIN)" in flat
    assert _lifecycle(data, "old") == "INITIALIZED"  # still serving, not disabled


def test_defective_replacement_finishes_with_damaged_logs(tmp_path: Path) -> None:
    """The stopped replacement, run again with --defective: the export is archived as
    it is, the findings are in the protocol, the output and the procedure document,
    and the old TSE (which can still sign) is disabled with its signature."""
    data = _shop(tmp_path)
    _flip_a_signature(data)
    args = ("tse", "replace", "old", "new", "--new-pin", NEW_PIN, "--old-pin", PIN)
    run(data, *args, code=1)
    out = run(data, *args, "--defective", "--reason", "Speicher beschädigt")
    assert "it did NOT verify (1 error(s): E_SIGNATURE_INVALID)" in out
    assert "signature counter" in out  # a finding's text, not only its code
    assert "TSE old is disabled (its disable log signed)." in out
    assert _lifecycle(data, "old") == "DISABLED" and _lifecycle(data, "new") == "INITIALIZED"

    (first, second) = _protocol(data, "replace.export_verified")  # the stopped run, the rerun
    assert first["ok"] is False and "accepted_as_defective" not in first
    assert second["ok"] is False and second["accepted_as_defective"] is True
    assert second["error_count"] == 1 and second["errors"] == ["E_SIGNATURE_INVALID"]
    findings = second["findings"]
    assert isinstance(findings, list) and findings[0]["code"] == "E_SIGNATURE_INVALID"
    assert findings[0]["file"].endswith(".log")
    (disabled,) = _protocol(data, "replace.old_disabled")
    assert disabled["signed"] is True and disabled["state"] == "DISABLED"
    assert len(_protocol(data, "replace.done")) == 1

    listed = json.loads(run(data, "archive", "list", "old", "--json"))
    assert [x["verified_ok"] for x in listed] == [False, False, False]  # kept, all of them
    assert all(x["file_intact"] and Path(x["file"]).is_file() for x in listed)
    doc = tmp_path / "vd.md"
    run(data, "docs", "procedure", str(doc))
    text = doc.read_text(encoding="utf-8")
    assert "NEIN (1 Fehler: E_SIGNATURE_INVALID)" in text
    assert "Befunde der nicht bestandenen Prüfungen" in text
    assert "  - E_SIGNATURE_INVALID: the signature of the" in text
    assert "replace.old_disabled" in text


def test_missing_log_row_without_old_pin_is_recorded_defective(tmp_path: Path) -> None:
    data = _shop(tmp_path)
    with sqlite3.connect(data / "opentse.db") as db:
        db.execute(
            "DELETE FROM logs WHERE tse_id='old' AND signature_counter=(SELECT MIN"
            "(signature_counter) FROM logs WHERE tse_id='old' AND log_type='Tra')"
        )
    done = json.loads(
        run(data, "tse", "replace", "old", "new", "--new-pin", NEW_PIN, "--defective", "--json")
    )
    assert done["old_state"] == "DEFECTIVE" and done["old_disabled_signed"] is False
    assert "--old-pin" in done["unsigned_reason"]
    assert done["verified"] is False and done["final_export"] is None
    verification = done["export"]["verification"]
    assert verification["error_count"] >= 1 and "E_COUNTER_GAP" in verification["errors"]
    (disabled,) = _protocol(data, "replace.old_disabled")
    assert disabled["signed"] is False and "--old-pin" in str(disabled["why"])
    assert _lifecycle(data, "old") == "DEFECTIVE"


def test_an_old_tse_whose_key_is_gone_is_replaceable(tmp_path: Path) -> None:
    """It cannot sign at all: a plain replacement said only 'E_KEY_FORMAT ... (--old-pin)',
    as if the PIN were wrong; --defective replaces it, recorded as DEFECTIVE."""
    data = _shop(tmp_path)
    with sqlite3.connect(data / "opentse.db") as db:
        db.execute("UPDATE tses SET encrypted_private_key=x'00' WHERE tse_id='old'")
    args = ("tse", "replace", "old", "new", "--new-pin", NEW_PIN, "--old-pin", PIN)
    flat = " ".join(run(data, *args, code=1).split())
    assert "E_REPLACE_OLD_CANNOT_SIGN" in flat and "--defective" in flat
    assert "private key cannot be opened" in flat
    out = run(data, *args, "--defective")
    assert "TSE old is recorded as DEFECTIVE, not disabled with its own signature" in out
    assert "NOT verify" not in out  # its stored logs are whole: the export verifies
    assert _lifecycle(data, "old") == "DEFECTIVE" and _lifecycle(data, "new") == "INITIALIZED"
    (disabled,) = _protocol(data, "replace.old_disabled")
    assert disabled["signed"] is False and "private key" in str(disabled["why"])


def test_a_tse_whose_certificate_expired_is_replaced_as_defective(
    ops: OpsContext, clock: FrozenClock
) -> None:
    """The operator missed the expiry warnings. The replacement stopped at the old PIN
    check with E_CERTIFICATE_EXPIRED blamed on --old-pin, with --defective too, so an
    expired TSE could not be replaced at all."""
    org = sites.create_organization(ops, "Kiosk")
    loc = sites.create_location(
        ops, org.id, "Kiosk", street="Markt 2", postal_code="04109", city="Leipzig"
    )
    ready_tse(ops, "old", "K1")
    sites.assign_tse(ops, "old", loc.id)
    sell(ops, "old", "K1")
    cert = x509.load_der_x509_certificate(ops.service.get("old").record.certificate_chain[0])
    clock.set(int(cert.not_valid_after_utc.timestamp()) + 86400)
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert exc.value.code == "E_REPLACE_OLD_EXPIRED" and "--defective" in exc.value.message
    assert protocol.entries(ops.db, prefix="replace.") == []  # stopped before the first step
    done = replacement.replace_tse(
        ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN, defective=True
    )
    assert done.old_state == "DISABLED" and done.unsigned_reason == ""
    assert ops.service.get("old").state.lifecycle.value == "DISABLED"
    # the disable (and the PIN check) are signed after the expiry: the verifier says so
    assert not done.verified and "E_CERT_NOT_VALID" in done.export.verification["errors"]
    assert protocol.entries(ops.db, prefix="replace.")[-1].kind == protocol.REPLACE_DONE
    sell(ops, "new", "K1")
