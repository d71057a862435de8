"""Replacing a full TSE and a defective one: every step, in order, in the protocol."""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

import pytest

from conftest import PIN, ready_tse, sell
from opentse.errors import OpenTSEError
from opentse.ops import archive, lifetime, protocol, replacement, sites, status
from opentse.ops.store import OpsContext

STEPS = [
    protocol.REPLACE_STARTED,
    protocol.PIN_CHANGED,
    protocol.TSE_ASSIGNED,
    protocol.REPLACE_NEW_TSE,
    protocol.REPLACE_REGISTER_MOVED,
    protocol.REPLACE_REGISTER_MOVED,
    protocol.REPLACE_OLD_EXPORTED,
    protocol.REPLACE_EXPORT_VERIFIED,
    protocol.REPLACE_EXPORT_ARCHIVED,
    protocol.REPLACE_OLD_DISABLED,
]


def _site(ops: OpsContext, capacity: int) -> sites.Location:
    org = sites.create_organization(ops, "Bäckerei Korn")
    loc = sites.create_location(
        ops, org.id, "Laden", street="Ringstraße 4", postal_code="50667", city="Köln"
    )
    ready_tse(ops, "old", "K1", "K2")
    sites.assign_tse(ops, "old", loc.id, capacity=capacity)
    for reg in ("K1", "K2"):
        sites.add_register(ops, reg, loc.id)
        sites.assign_register(ops, reg, "old")
    return loc


def _replace_steps(ops: OpsContext) -> list[str]:
    start = next(e.seq for e in protocol.entries(ops.db) if e.kind == protocol.REPLACE_STARTED)
    return [e.kind for e in protocol.entries(ops.db) if e.seq >= start]


def test_replace_full_tse(ops: OpsContext) -> None:
    loc = _site(ops, capacity=20)
    while ops.service.get("old").state.signature_counter < 20:
        sell(ops, "old", "K1")
    (st,) = status.all_status(ops, "old")
    assert [(w.kind, w.level) for w in st.warnings] == [(lifetime.CAPACITY, "critical")]
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", "new", new_admin_pin="654321")
    assert exc.value.code == "E_REPLACE_PIN_REQUIRED"
    # which option (it said 'the old TSE's admin PIN is needed ... (or mark it defective)')
    assert "--old-pin" in exc.value.message and "--defective" in exc.value.message
    # a wrong old PIN, a taken id or a too short new PIN stop it before the first step
    for new_id, new_pin, old_pin, code in (
        ("new", "654321", "wrong-pin", "E_PIN_INVALID"),
        ("old", "654321", PIN, "E_REPLACE_NEW_EXISTS"),
        ("new", "123", PIN, "E_PIN_INVALID_FORMAT"),
    ):
        with pytest.raises(OpenTSEError) as exc:
            replacement.replace_tse(
                ops, "old", new_id, new_admin_pin=new_pin, old_admin_pin=old_pin
            )
        assert exc.value.code == code
    assert protocol.entries(ops.db, prefix="replace.") == []

    done = replacement.replace_tse(
        ops, "old", "new", new_admin_pin="654321", old_admin_pin=PIN, reason="capacity"
    )
    assert _replace_steps(ops) == [
        *STEPS, protocol.REPLACE_FINAL_EXPORT, protocol.REPLACE_DONE
    ]  # fmt: skip
    old = ops.service.get("old").state
    assert old.lifecycle.value == "DISABLED"
    # the archived export was verified before the disable, the final one covers it all
    assert done.export.verified_ok and done.final_export is not None
    assert done.final_export.verified_ok
    assert done.export.last_counter is not None
    assert done.final_export.last_counter == old.signature_counter > done.export.last_counter
    with tarfile.open(done.final_export.path) as tar:
        names = tar.getnames()
    assert any("Disable" in n or "disable" in n.lower() for n in names), names
    assert [e.id for e in archive.exports(ops, "old")] == [done.export.id, done.final_export.id]
    verified = protocol.entries(ops.db, kinds=(protocol.REPLACE_EXPORT_VERIFIED,))[0]
    assert verified.details["ok"] is True and verified.details["export_id"] == done.export.id
    disabled = protocol.entries(ops.db, kinds=(protocol.REPLACE_OLD_DISABLED,))[0]
    assert disabled.details["signed"] is True and disabled.seq > verified.seq
    # registers moved, the new TSE signs for them at the same location
    assert {r.register_id: r.tse_id for r in sites.registers(ops)} == {"K1": "new", "K2": "new"}
    assert sites.get_tse(ops, "new").location_id == loc.id
    assert sites.get_tse(ops, "old").status == "replaced"
    assert sites.get_tse(ops, "old").replaced_by == "new"
    sell(ops, "new", "K2")
    new = ops.service.get("new").state
    assert new.lifecycle.value == "INITIALIZED" and new.transaction_counter == 1
    assert done.left_open == () and done.to_json()["left_open"] == []
    with pytest.raises(OpenTSEError):
        sell(ops, "old", "K1")
    assert done.admin_puk and Path(done.export.path).exists()


def test_replace_defective_tse_without_its_signature(ops: OpsContext) -> None:
    _site(ops, capacity=1000)
    sell(ops, "old", "K1", 2)
    before = ops.service.get("old").state.signature_counter
    done = replacement.replace_tse(
        ops, "old", "new", new_admin_pin="654321", defective=True, reason="hardware fault"
    )
    assert _replace_steps(ops) == [*STEPS, protocol.REPLACE_DONE]
    old = ops.service.get("old").state
    assert old.lifecycle.value == "DEFECTIVE"
    assert old.signature_counter == before  # the old TSE signed nothing more
    assert done.export.verified_ok and done.final_export is None
    assert done.export.last_counter == before
    disabled = protocol.entries(ops.db, kinds=(protocol.REPLACE_OLD_DISABLED,))[0]
    assert disabled.details["signed"] is False and disabled.details["state"] == "DEFECTIVE"
    assert "--old-pin" in disabled.details["why"]  # it could sign, but no PIN was given
    assert sites.get_tse(ops, "old").status == "defective"
    sell(ops, "new", "K1")


def test_no_disable_when_export_does_not_verify(ops: OpsContext) -> None:
    """A stored log damaged on disk: the real export carries it, the verifier finds
    the broken signature, and the old TSE is not disabled."""
    _site(ops, capacity=1000)
    sell(ops, "old", "K1", 2)
    with sqlite3.connect(ops.data_dir / "opentse.db") as db:
        (counter, message) = db.execute(
            "SELECT signature_counter, message FROM logs WHERE tse_id='old' AND log_type='Tra'"
            " ORDER BY signature_counter DESC LIMIT 1"
        ).fetchone()
        damaged = bytearray(message)
        damaged[-3] ^= 0xFF  # inside the signature value
        db.execute(
            "UPDATE logs SET message=? WHERE tse_id='old' AND signature_counter=?",
            (bytes(damaged), counter),
        )
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", "new", new_admin_pin="654321", old_admin_pin=PIN)
    assert exc.value.code == "E_REPLACE_EXPORT_NOT_VERIFIED"
    assert ops.service.get("old").state.lifecycle.value == "INITIALIZED"
    # the old TSE serves on: no admin left logged in there (the PIN check of the
    # preflight logged in and stayed so), nor on the new one
    for tse_id in ("old", "new"):
        assert ops.service.get(tse_id).state.users["admin"].logged_in_until is None, tse_id
    kinds = _replace_steps(ops)
    assert protocol.REPLACE_OLD_DISABLED not in kinds
    assert kinds[-1] == protocol.REPLACE_EXPORT_ARCHIVED
    verified = protocol.entries(ops.db, kinds=(protocol.REPLACE_EXPORT_VERIFIED,))[0]
    assert verified.details["ok"] is False and verified.details["invalid_signatures"] == 1
    (item,) = archive.exports(ops, "old")
    assert not item.verified_ok  # archived with its (failed) result all the same


def test_transactions_left_open_on_the_old_tse_are_named(ops: OpsContext) -> None:
    """A till mid-sale during the replacement: the old TSE is disabled with the
    transaction open, which the result did not say (only a count in the protocol)."""
    _site(ops, capacity=1000)
    started = ops.service.start_transaction("old", "K2", b"", "Kassenbeleg-V1")
    done = replacement.replace_tse(ops, "old", "new", new_admin_pin="654321", old_admin_pin=PIN)
    assert done.left_open == (("K2", started.transaction_number),)
    assert done.to_json()["left_open"] == [
        {"client_id": "K2", "transaction_number": started.transaction_number}
    ]
