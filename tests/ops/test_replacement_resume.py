"""A replacement that stops half-way (a failed step, a killed process) loses no
credentials and is finished by running it again.

Before: the new TSE's PUKs were only returned at the very end, and a rerun got
E_REPLACE_NEW_EXISTS, so a stopped replacement left a TSE nobody could unblock and
registers split between two TSEs. The kills are real: a forked process running the
replacement on the data folder is SIGKILLed when the named step has returned.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest

from conftest import PIN, START, ready_tse, sell
from opentse.crypto import secrets as secret_hash
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.ops import archive, protocol, puk_file, replacement, sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

NEW_PIN = "654321"


def _site(ops: OpsContext) -> None:
    org = sites.create_organization(ops, "Bäckerei Korn")
    loc = sites.create_location(
        ops, org.id, "Laden", street="Ringstraße 4", postal_code="50667", city="Köln"
    )
    ready_tse(ops, "old", "K1", "K2")
    sites.assign_tse(ops, "old", loc.id)
    for reg in ("K1", "K2"):
        sites.add_register(ops, reg, loc.id)
        sites.assign_register(ops, reg, "old")
    sell(ops, "old", "K1", 2)


def _puks_match(ops: OpsContext, done: replacement.Replacement) -> None:
    """The PUKs in the file (and returned) are the new TSE's, and the file is 0600."""
    path = Path(done.puk_file)
    assert path == ops.data_dir.absolute() / "PUK-new.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    puks = puk_file.read(path)
    assert puks is not None and (puks.admin, puks.timeadmin) == (
        done.admin_puk,
        done.timeadmin_puk,
    )
    users = ops.service.get("new").state.users
    assert users["admin"].puk_hash and users["timeadmin"].puk_hash
    assert secret_hash.verify_secret(puks.admin, users["admin"].puk_hash)
    assert secret_hash.verify_secret(puks.timeadmin, users["timeadmin"].puk_hash)


def _finished(ops: OpsContext, done: replacement.Replacement) -> None:
    kinds = [e.kind for e in protocol.entries(ops.db, prefix="replace.")]
    assert kinds.count(protocol.REPLACE_STARTED) == 1 and kinds[-1] == protocol.REPLACE_DONE
    # each step once, however often the replacement was started
    for kind in (protocol.REPLACE_NEW_TSE, protocol.REPLACE_OLD_DISABLED):
        assert kinds.count(kind) == 1, kinds
    moved = protocol.entries(ops.db, kinds=(protocol.REPLACE_REGISTER_MOVED,))
    assert sorted(e.register_id for e in moved) == ["K1", "K2"]
    assert ops.service.get("old").state.lifecycle.value == "DISABLED"
    assert sites.get_tse(ops, "old").status == "replaced"
    assert {r.register_id: r.tse_id for r in sites.registers(ops)} == {"K1": "new", "K2": "new"}
    assert done.registers == ("K1", "K2")
    assert done.export.verified_ok and done.final_export is not None
    assert done.final_export.verified_ok
    assert done.final_export.last_counter == ops.service.get("old").state.signature_counter
    _puks_match(ops, done)
    sell(ops, "new", "K2")  # the new TSE signs for the moved registers
    assert ops.service.get("new").state.transaction_counter == 1
    for tse_id in ("old", "new"):  # nobody left logged in as admin
        assert ops.service.get(tse_id).state.users["admin"].logged_in_until is None


def test_failed_step_keeps_the_puks_and_a_rerun_finishes(ops: OpsContext) -> None:
    """A real failure after the new TSE exists (the export does not verify), the
    damage repaired, the same command again."""
    _site(ops)
    with sqlite3.connect(ops.data_dir / "opentse.db") as db:
        counter, message = db.execute(
            "SELECT signature_counter, message FROM logs WHERE tse_id='old' AND log_type='Tra'"
            " ORDER BY signature_counter DESC LIMIT 1"
        ).fetchone()
        damaged = bytearray(message)
        damaged[-3] ^= 0xFF
        db.execute(
            "UPDATE logs SET message=? WHERE tse_id='old' AND signature_counter=?",
            (bytes(damaged), counter),
        )
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert exc.value.code == "E_REPLACE_EXPORT_NOT_VERIFIED"
    path = ops.data_dir.absolute() / "PUK-new.txt"
    assert str(path) in exc.value.message and "again" in exc.value.message
    stopped_puks = puk_file.read(path)
    assert stopped_puks is not None
    assert stopped_puks.admin not in exc.value.message  # named, never shown in the error
    # another new id is refused while this one is unfinished, and says which to finish
    with pytest.raises(OpenTSEError) as other:
        replacement.replace_tse(ops, "old", "new2", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert other.value.code == "E_REPLACE_IN_PROGRESS" and "old new" in other.value.message
    with sqlite3.connect(ops.data_dir / "opentse.db") as db:
        db.execute(
            "UPDATE logs SET message=? WHERE tse_id='old' AND signature_counter=?",
            (message, counter),
        )
    # a wrong new PIN on the rerun stops before any step (the first run set it)
    with pytest.raises(OpenTSEError) as wrong:
        replacement.replace_tse(ops, "old", "new", new_admin_pin="999999", old_admin_pin=PIN)
    assert wrong.value.code == "E_PIN_INVALID"
    assert wrong.value.message.startswith("new TSE new (--new-pin")  # whose PIN it was
    with pytest.raises(OpenTSEError) as wrong_old:
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin="999999")
    assert wrong_old.value.code == "E_PIN_INVALID"
    assert wrong_old.value.message.startswith("old TSE old (--old-pin)")
    done = replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert done.resumed
    assert puk_file.read(path) == stopped_puks  # the same PUKs as the stopped run wrote
    assert protocol.REPLACE_RESUMED in [e.kind for e in protocol.entries(ops.db)]
    _finished(ops, done)
    # the first, failed export stays archived with its result; the rerun's verified
    assert [e.verified_ok for e in archive.exports(ops, "old")] == [False, True, True]
    with pytest.raises(OpenTSEError) as again:  # finished: nothing more to resume
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert again.value.code == "E_REPLACE_INACTIVE"


def _kill_after(code: CodeType, nth: int) -> Callable[[FrameType, str, Any], None]:
    seen = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal seen
        if event == "return" and frame.f_code is code:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _replace_killed(data_dir: Path, code: CodeType, nth: int) -> None:
    """Run the replacement in a forked process that is killed after step ``code``
    returned for the ``nth`` time."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            ctx = OpsContext.open(data_dir, clock=FrozenClock(START + 60))
            sys.setprofile(_kill_after(code, nth))
            replacement.replace_tse(ctx, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
        finally:
            os._exit(3)  # not killed: the step was never reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


KILL_POINTS = {
    "puk file written": (puk_file.write.__code__, 1),
    "new TSE created": (TSEService.create_tse.__code__, 1),
    "new admin PIN set": (TSEService.set_admin_pin.__code__, 1),
    "new TSE initialized": (TSEService.initialize.__code__, 1),
    "first register registered": (TSEService.register_client.__code__, 1),
    "old TSE exported": (archive.store_export.__code__, 1),
    "old TSE disabled": (TSEService.disable.__code__, 1),
    "final export archived": (archive.store_export.__code__, 2),
}


@pytest.mark.parametrize("step", list(KILL_POINTS))
def test_killed_at_each_step_then_rerun_finishes(ops: OpsContext, step: str) -> None:
    _site(ops)
    _replace_killed(ops.data_dir, *KILL_POINTS[step])
    path = ops.data_dir.absolute() / "PUK-new.txt"
    assert puk_file.read(path) is not None  # written before the TSE was created
    written = puk_file.read(path)
    done = replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    if step != "puk file written":  # the TSE existed: the same PUKs carry on
        assert done.resumed and puk_file.read(path) == written
    _finished(ops, done)


def test_puk_file_deleted_before_the_pin_was_set(ops: OpsContext) -> None:
    """The one case a rerun cannot finish alone: it says how (set-pin with the PUK)."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    _site(ops)
    _replace_killed(ops.data_dir, *KILL_POINTS["new TSE created"])
    path = ops.data_dir.absolute() / "PUK-new.txt"
    puks = puk_file.read(path)
    assert puks is not None
    path.unlink()  # e.g. "cleaned up" by the operator after copying it elsewhere
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert exc.value.code == "E_REPLACE_PUK_FILE_MISSING"
    assert "opentse tse set-pin new --puk ADMIN_PUK" in exc.value.message
    result = CliRunner().invoke(
        build_app(),
        ["tse", "set-pin", "new", "--puk", puks.admin, "--pin", NEW_PIN,
         "--data", str(ops.data_dir)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        build_app(),
        ["tse", "replace", "old", "new", "--new-pin", NEW_PIN, "--old-pin", PIN,
         "--data", str(ops.data_dir)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "finished the replacement that had stopped" in out
    assert f"The PUKs were in {path}, since deleted" in out and puks.admin not in out
    assert ops.service.get("old").state.lifecycle.value == "DISABLED"
    sell(ops, "new", "K1")


def test_killed_after_the_last_step_the_rerun_says_where_the_puks_are(ops: OpsContext) -> None:
    """Killed once ``replace.done`` was written, before the PUKs were printed: the
    rerun said only 'TSE old is already replaced', and the operator, who never saw
    the PUKs, was not told they wait in the PUK file."""
    _site(ops)
    _replace_killed(ops.data_dir, replacement._replace.__code__, 1)
    kinds = [e.kind for e in protocol.entries(ops.db, prefix="replace.")]
    assert kinds[-1] == protocol.REPLACE_DONE  # finished, but nothing was printed
    with pytest.raises(OpenTSEError) as again:
        replacement.replace_tse(ops, "old", "new", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert again.value.code == "E_REPLACE_INACTIVE"
    message = again.value.message
    path = ops.data_dir.absolute() / "PUK-new.txt"
    assert "already replaced by new" in message and f"PUKs are in {path}" in message
    puks = puk_file.read(path)
    assert puks is not None and puks.admin not in message  # named, never shown
