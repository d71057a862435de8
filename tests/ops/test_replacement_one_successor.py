"""A TSE has one successor: a second replacement of it is refused at replace time.

Before: two replacements of one TSE begun at once (two admins, two nodes of one
database) both passed the checks, since the first had written ``replace.started`` but
not yet created its new TSE: both created a new TSE, registered the registers there
and wrote ``replace.new_tse_ready`` for the same predecessor; the site record and the
tills' lookup took the last without a word, the other stayed an initialized TSE
"replacing" the old one. The runs here are real forked processes, held at a step by
SIGSTOP while the other replacement runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest

from conftest import PIN, START, ready_tse
from opentse.errors import OpenTSEError
from opentse.ops import protocol, replacement, sites
from opentse.ops.store import OpsContext
from opentse.server.auth import create_api_key
from opentse.server.service_store import ClientRow
from opentse.testing.clock import FrozenClock

NEW_PIN = "654321"


def _site(ops: OpsContext) -> None:
    org = sites.create_organization(ops, "Bäckerei Korn")
    loc = sites.create_location(
        ops, org.id, "Laden", street="Ringstraße 4", postal_code="50667", city="Köln"
    )
    ready_tse(ops, "old", "K1")
    sites.assign_tse(ops, "old", loc.id)
    sites.add_register(ops, "K1", loc.id)
    sites.assign_register(ops, "K1", "old")


def _stop_at(code: CodeType, event: str) -> Callable[[FrameType, str, Any], None]:
    done = False

    def hook(frame: FrameType, ev: str, arg: Any) -> None:
        nonlocal done
        if not done and ev == event and frame.f_code is code:
            done = True
            os.kill(os.getpid(), signal.SIGSTOP)

    return hook


def _replace_in_child(data: Path, new: str, hook: Callable[..., Any], out: Path) -> int:
    """A ``tse replace old NEW`` in a forked process, stopped where ``hook`` says; its
    result (``ok`` or the error code) written to ``out``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        result = "crashed"
        try:
            ctx = OpsContext.open(data, clock=FrozenClock(START + 60))
            sys.setprofile(hook)
            try:
                replacement.replace_tse(ctx, "old", new, new_admin_pin=NEW_PIN, old_admin_pin=PIN)
                result = "ok"
            except OpenTSEError as exc:
                result = exc.code
            sys.setprofile(None)
        finally:
            out.write_text(result, encoding="utf-8")
            os._exit(0)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), status
    return pid


def _finish(pid: int, out: Path) -> str:
    os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), status
    return out.read_text(encoding="utf-8")


def _claims(ops: OpsContext) -> list[str]:
    """The new TSEs the protocol names as ready to replace 'old'."""
    return [
        e.tse_id
        for e in protocol.entries(ops.db, kinds=(protocol.REPLACE_NEW_TSE,))
        if e.details.get("replaces") == "old"
    ]


def _exists(ops: OpsContext, tse_id: str) -> bool:
    return any(i.record.tse_id == tse_id for i in ops.service.list())


def _on_another_host(ops: OpsContext, new: str) -> replacement.Replacement:
    """``tse replace old NEW`` as a node on another machine runs it (one database): the
    data folder's run lock (ops.run_lock) is not shared there, the protocol's claim is."""
    return replacement._replace_tse(
        ops, "old", new, new_admin_pin=NEW_PIN, old_admin_pin=PIN, defective=False,
        reason="", actor="",
    )  # fmt: skip


def test_a_second_replacement_while_one_runs_is_refused(ops: OpsContext, tmp_path: Path) -> None:
    """The first run holds after writing replace.started, before its new TSE exists."""
    _site(ops)
    out = tmp_path / "first.txt"
    pid = _replace_in_child(
        ops.data_dir, "newB", _stop_at(replacement._set_up_new.__code__, "call"), out
    )
    try:
        with pytest.raises(OpenTSEError) as here:  # on this machine: the run lock
            replacement.replace_tse(ops, "old", "newC", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
        assert here.value.code == "E_REPLACE_RUNNING"
        with pytest.raises(OpenTSEError) as exc:  # elsewhere: the claim
            _on_another_host(ops, "newC")
        assert exc.value.code == "E_REPLACE_IN_PROGRESS"
        assert "opentse tse replace old newB" in exc.value.message
        assert "one successor" in exc.value.message
        assert not _exists(ops, "newC")
    finally:
        first = _finish(pid, out)
    assert first == "ok"
    assert _claims(ops) == ["newB"] and not _exists(ops, "newC")
    site = sites.find_tse(ops, "old")
    assert site is not None and site.replaced_by == "newB"


def test_two_replacements_past_their_checks_make_one_claim(ops: OpsContext, tmp_path: Path) -> None:
    """The second run held after its checks (before any step) while the first runs to
    the end (on another machine: no run lock between them): its replace.started is
    refused in the transaction that writes it."""
    _site(ops)
    out = tmp_path / "second.txt"
    pid = _replace_in_child(
        ops.data_dir, "newC", _stop_at(replacement._preflight.__code__, "return"), out
    )
    try:
        done = _on_another_host(ops, "newB")
        assert done.old_state == "DISABLED"
    finally:
        second = _finish(pid, out)
    assert second in ("E_REPLACE_INACTIVE", "E_REPLACE_IN_PROGRESS"), second
    assert _claims(ops) == ["newB"] and not _exists(ops, "newC")
    started = protocol.entries(ops.db, tse_id="old", kinds=(protocol.REPLACE_STARTED,))
    assert [e.details["new_tse"] for e in started] == ["newB"]


def test_a_client_claiming_the_old_one_through_the_api_is_named(ops: OpsContext) -> None:
    """A client at another TSS whose metadata replaces_client names a client of the
    old TSS (the tills follow that key to their successor) is a claim already: the
    replacement would make a second one and is refused before its first step."""
    _site(ops)
    org = create_api_key(ops.svc, org_name="Korn", env="TEST", now=ops.now())["organization_id"]
    ops.svc.add_tss("old", org, "TEST", {}, None, ops.now())
    ready_tse(ops, "other", "K1")
    ops.svc.add_tss("other", org, "TEST", {}, None, ops.now())
    own, forged = str(uuid.uuid4()), str(uuid.uuid4())
    now = ops.now()
    ops.svc.add_client(ClientRow(own, "old", org, "K1", "REGISTERED", {}, now, now))
    ops.svc.add_client(
        ClientRow(forged, "other", org, "K1", "REGISTERED", {"replaces_client": own}, now, now)
    )
    new = str(uuid.uuid4())
    with pytest.raises(OpenTSEError) as exc:
        replacement.replace_tse(ops, "old", new, new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert exc.value.code == "E_REPLACE_CLAIMED"
    assert forged in exc.value.message and "TSS other" in exc.value.message
    assert '{"replaces_client": null}' in exc.value.message
    assert protocol.entries(ops.db, prefix="replace.") == [] and not _exists(ops, new)
    ops.svc.update_client(forged, "REGISTERED", {}, ops.now())  # the key removed
    done = replacement.replace_tse(ops, "old", new, new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    assert json.dumps(done.api_clients) and done.api_clients["K1"] != forged


def test_the_same_replacement_run_twice_at_once_runs_once(ops: OpsContext, tmp_path: Path) -> None:
    """The same `tse replace old newB` started again while the first run still works
    (its stop message says to run it again): refused while it runs; before, both did
    every step and the protocol ended with two replace.done (review of c4efe62)."""
    _site(ops)
    out = tmp_path / "first.txt"
    pid = _replace_in_child(
        ops.data_dir, "newB", _stop_at(replacement._set_up_new.__code__, "call"), out
    )
    try:
        with pytest.raises(OpenTSEError) as second:
            replacement.replace_tse(ops, "old", "newB", new_admin_pin=NEW_PIN, old_admin_pin=PIN)
    finally:
        first = _finish(pid, out)
    assert second.value.code == "E_REPLACE_RUNNING"
    assert "tse protocol old" in second.value.message
    assert first == "ok"
    kinds = [e.kind for e in protocol.entries(ops.db, prefix="replace.")]
    assert kinds.count(protocol.REPLACE_DONE) == 1
    assert kinds.count(protocol.REPLACE_RESUMED) == 0
