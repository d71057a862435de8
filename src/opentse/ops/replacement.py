"""Replacing a TSE (full, expiring or defective) by a new one at the same location.

The order follows the procedure documentation's replacement process:
1. a new TSE is set up beside the old one (same location, curve and time format);
2. every register of the old TSE is registered with the new one and moved to it
   (recorded sharing confirmations of the old TSE carry over: same address);
3. the old TSE is fully exported, the export verified with the verifier and archived
   (hash, result, retention date); a failed verification stops here, nothing is
   disabled, unless the TSE is replaced as defective (below);
4. the old TSE is disabled (disableSecureElement, signed);
5. a final full export (it now holds the exportData and disable logs) is verified
   and archived as well.
Each step is one protocol entry, in this order.

A defective TSE must be replaced without delay (BMF, AEAO zu §146a Nr. 7), also when
its stored logs are damaged and no export of it can verify any more: with
``defective`` a failed verification is recorded (findings, error count) and the
export archived as it is, and the replacement goes on. The old TSE is disabled with
its own signature when it still can (its key opens and its admin PIN is given);
otherwise it is marked DEFECTIVE, its logs are exported straight from the store (no
exportData log), step 4 is the recorded state DEFECTIVE (with the reason) instead of
a signed disable, and step 5 is not needed because it signed nothing new.

A replacement may stop at any step (a failure, a killed process). The new TSE's PUKs
are written to ``DATA/PUK-<NEW>.txt`` (0600, puk_file.py) before the TSE is created,
and the same command run again resumes: every step checks what the stored state and
the protocol already hold and does only what is missing (``replace.resumed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentse.engine import provision, users
from opentse.engine import tse as tse_steps
from opentse.engine.ports import LockedTSE
from opentse.engine.state import Lifecycle
from opentse.errors import ConflictError, NotFoundError, OpenTSEError, ProtocolError, StateError
from opentse.ops import archive, protocol, puk_file, replacement_claim, run_lock, sites
from opentse.ops.store import OpsContext


@dataclass(frozen=True, slots=True)
class Replacement:
    old_tse_id: str
    new_tse_id: str
    admin_puk: str | None  # of the new TSE; None when a rerun found its file deleted
    timeadmin_puk: str | None
    registers: tuple[str, ...]
    export: archive.ArchivedExport
    final_export: archive.ArchivedExport | None
    #: register serial -> its client UUID at the new TSS, for a TSE served over the API
    #: (what the register's ``--client`` is from now on)
    api_clients: dict[str, str] = field(default_factory=dict)
    #: where the PUKs were written before the new TSE was created (mode 0600)
    puk_file: str = ""
    #: this run finished a replacement an earlier run had started
    resumed: bool = False
    #: transactions still open on the old TSE when it was taken out of service
    #: (client id, transaction number): they stay unfinished in its export
    left_open: tuple[tuple[str, int], ...] = ()
    #: the old TSE's state afterwards: DISABLED (signed) or DEFECTIVE (recorded)
    old_state: str = ""
    #: why the old TSE was not disabled with its own signature ("" when it was)
    unsigned_reason: str = ""
    #: what is left to do ("" for nothing): a TSS served over the API whose new id is
    #: no UUID (a replacement begun before ec2ccaf) must itself be replaced
    next_step: str = ""

    @property
    def verified(self) -> bool:
        """Every export archived for the old TSE verified (only a defective TSE's may
        not: its damaged logs are archived as they are)."""
        return self.export.verified_ok and (
            self.final_export is None or self.final_export.verified_ok
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "old_tse_id": self.old_tse_id,
            "new_tse_id": self.new_tse_id,
            "admin_puk": self.admin_puk,
            "timeadmin_puk": self.timeadmin_puk,
            "registers": list(self.registers),
            "export": self.export.to_json(),
            "final_export": self.final_export.to_json() if self.final_export else None,
            "api_clients": dict(self.api_clients),
            "puk_file": self.puk_file,
            "resumed": self.resumed,
            "left_open": [{"client_id": c, "transaction_number": n} for c, n in self.left_open],
            "old_state": self.old_state,
            "old_disabled_signed": not self.unsigned_reason,
            "unsigned_reason": self.unsigned_reason,
            "verified": self.verified,
            "next_step": self.next_step or None,
        }


def cannot_sign(ctx: OpsContext, tse_id: str) -> str:
    """Why the TSE cannot sign any more ("" when it can): recorded as DEFECTIVE, or
    its private key does not open (damaged or lost key data, another secret)."""
    info = ctx.service.get(tse_id)
    if info.state.lifecycle is Lifecycle.DEFECTIVE:
        return "it was marked DEFECTIVE before and signs nothing"
    try:
        ctx.installation.keyring.signer(info.record)
    except (OpenTSEError, ValueError) as exc:  # the message names no secret
        return f"its private key cannot be opened: {getattr(exc, 'message', exc)}"
    return ""


def expired_on(ctx: OpsContext, tse_id: str) -> int | None:
    """When the TSE's certificate expired (unix seconds), or None while it is valid."""
    from cryptography import x509

    chain = ctx.service.get(tse_id).record.certificate_chain
    if not chain:
        return None
    not_after = int(x509.load_der_x509_certificate(chain[0]).not_valid_after_utc.timestamp())
    return not_after if not_after < ctx.now() else None


def mark_defective(ctx: OpsContext, tse_id: str) -> None:
    """Record that the TSE cannot sign any more (state DEFECTIVE; nothing is signed)."""

    def fn(locked: LockedTSE) -> None:
        state = locked.load()
        if state.lifecycle is not Lifecycle.DEFECTIVE:
            locked.save(tse_steps.mark_defective(state))

    ctx.store.run_locked(tse_id, fn)


# the engine's rule for TSE ids (engine/provision.py), checked before the PUK file,
# whose name carries the id, is written
_TSE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def unfinished(ctx: OpsContext, old_tse_id: str) -> tuple[int, str] | None:
    """The last replacement of ``old_tse_id`` that started and has no ``replace.done``:
    (seq of its ``replace.started``, the new TSE's id), else None."""
    found: tuple[int, str] | None = None
    kinds = (protocol.REPLACE_STARTED, protocol.REPLACE_DONE)
    for e in protocol.entries(ctx.db, tse_id=old_tse_id, kinds=kinds):
        started = e.kind == protocol.REPLACE_STARTED
        found = (e.seq, str(e.details.get("new_tse", ""))) if started else None
    return found


def _exists(ctx: OpsContext, tse_id: str) -> bool:
    try:
        ctx.store.get_record(tse_id)
    except NotFoundError:
        return False
    return True


def _recorded(
    ctx: OpsContext, kind: str, tse_id: str, since: int, register_id: str | None = None
) -> list[protocol.Entry]:
    """Entries of ``kind`` this replacement wrote (after its ``replace.started``)."""
    return [
        e
        for e in protocol.entries(ctx.db, tse_id=tse_id, kinds=(kind,))
        if e.seq > since and (register_id is None or e.register_id == register_id)
    ]


def _on_old(step: Callable[[], object]) -> None:
    """A signed step on the old TSE, whose certificate may have expired (often the
    reason it is replaced): TR-03151 stores the log and then answers
    ErrorCertificateExpired (E_CERTIFICATE_EXPIRED), so the step is done all the same
    (a wrong PIN is still its own error: it wins over the expiry)."""
    try:
        step()
    except OpenTSEError as exc:
        if exc.code != "E_CERTIFICATE_EXPIRED":
            raise


def _login(ctx: OpsContext, tse_id: str, pin: str) -> None:
    """Authenticate the admin unless still logged in (a resumed run starts logged out)."""
    until = ctx.service.get(tse_id).state.users[users.ADMIN].logged_in_until
    if until is None or until <= ctx.now():
        ctx.service.authenticate(tse_id, pin)


def _set_up_new(
    ctx: OpsContext,
    old_id: str,
    new_id: str,
    admin_pin: str,
    actor: str,
    since: int,
    puks_path: Path,
) -> puk_file.PUKs | None:
    """Create (PUKs on disk first), set the PIN, initialize; each only if not done yet.
    Returns the PUKs (None when a rerun finds their file deleted)."""
    svc = ctx.service
    puks: puk_file.PUKs | None
    if not _exists(ctx, new_id):
        puks = puk_file.PUKs(provision.generate_puk(), provision.generate_puk())
        puk_file.write(puks_path, new_id, old_id, puks, ctx.now())
        old = svc.get(old_id).record
        svc.create_tse(
            new_id, curve=old.curve, time_format=old.time_format,
            description=f"replaces {old_id}", owner=old.owner,
            admin_puk=puks.admin, timeadmin_puk=puks.timeadmin,
        )  # fmt: skip
    else:
        puks = puk_file.read(puks_path)
    state = svc.get(new_id).state
    if state.lifecycle is Lifecycle.CREATED:
        svc.set_state(new_id, Lifecycle.UNINITIALIZED)
    if state.users[users.ADMIN].pin_hash is None:
        if puks is None:
            raise StateError(
                f"the new TSE {new_id} has no admin PIN yet and {puks_path} (its PUKs) is"
                f" gone: set the PIN with `opentse tse set-pin {new_id} --puk ADMIN_PUK`"
                " (the admin PUK kept from that file), then run the replacement again",
                code="E_REPLACE_PUK_FILE_MISSING",
            )
        svc.set_admin_pin(new_id, puks.admin, admin_pin)
    if not _recorded(ctx, protocol.PIN_CHANGED, new_id, since):
        protocol.record_credential_change(ctx.db, ctx.now(), new_id, what="pin", actor=actor)
    if svc.get(new_id).state.lifecycle is not Lifecycle.INITIALIZED:
        _login(ctx, new_id, admin_pin)
        svc.initialize(new_id, f"replaces {old_id}")
    tss = ctx.svc.get_tss(old_id)
    if tss is not None and ctx.svc.get_tss(new_id) is None:
        # served over the API: the organization keeps seeing it
        ctx.svc.add_tss(new_id, tss.organization_id, tss.env, {"replaces": old_id}, None, ctx.now())
    return puks


def _place_new(
    ctx: OpsContext, site: sites.SiteTSE, loc: sites.Location, old_id: str, new_id: str,
    actor: str, since: int,
) -> None:  # fmt: skip
    """The new TSE at the old one's location, with its shares (each once)."""
    if sites.find_tse(ctx, new_id) is None:
        sites.assign_tse(
            ctx, new_id, site.location_id, capacity=site.capacity,
            hardware_version=site.hardware_version, interface_type=site.interface_type,
            connection_url=site.connection_url, actor=actor,
        )  # fmt: skip
    carried = {s.location_id for s in sites.shares(ctx, new_id)}
    for share in sites.shares(ctx, old_id):  # same address: the confirmation carries over
        if share.location_id not in carried:
            sites.share_tse(
                ctx, new_id, share.location_id, confirmed_by=share.confirmed_by,
                confirmation=f"{share.confirmation} (carried over from TSE {old_id})",
            )  # fmt: skip
    if not _recorded(ctx, protocol.REPLACE_NEW_TSE, new_id, since):
        new_serial = ctx.service.get(new_id).record.serial_number.hex()
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_NEW_TSE, location_id=loc.id, tse_id=new_id,
            actor=actor, details={"replaces": old_id, "serial_number": new_serial},
        )  # fmt: skip


def _registers_to_move(ctx: OpsContext, old_id: str, new_id: str) -> list[str]:
    """The old TSE's registers: recorded ones (also those a stopped run already moved
    to the new TSE), then clients only the old TSE registered."""
    clients = [r.register_id for r in sites.registers(ctx) if r.tse_id in (old_id, new_id)]
    state = ctx.service.get(old_id).state
    for c in sorted(state.clients.values(), key=lambda c: c.registered_at):
        if c.registered and c.client_id not in clients:
            clients.append(c.client_id)
    return clients


def _move_register(
    ctx: OpsContext, old_id: str, new_id: str, client: str, admin_pin: str, actor: str,
    since: int,
) -> str | None:  # fmt: skip
    """Register ``client`` with the new TSE and point it there; for a TSS served over
    the API also its client entry, whose UUID is returned (None otherwise). Each part
    only if not done yet."""
    reg = sites.find_register(ctx, client)
    reassign = reg is not None and reg.tse_id != new_id
    if reassign:
        sites.check_assignment(ctx, client, new_id)  # before the TSE registers it
    at_new = ctx.service.get(new_id).state.clients.get(client)
    if at_new is None or not at_new.registered:
        _login(ctx, new_id, admin_pin)
        ctx.service.register_client(new_id, client)
    if reassign:
        sites.assign_register(
            ctx, client, new_id, actor=actor, protocol_kind=protocol.REPLACE_REGISTER_MOVED
        )
    elif reg is None and not _recorded(
        ctx, protocol.REPLACE_REGISTER_MOVED, new_id, since, register_id=client
    ):
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_REGISTER_MOVED, tse_id=new_id,
            register_id=client, actor=actor, details={"previous_tse": old_id},
        )  # fmt: skip
    tss = ctx.svc.get_tss(old_id)
    old_row = ctx.svc.client_by_serial(old_id, client)
    if tss is None or old_row is None:
        return None
    moved = ctx.svc.client_by_serial(new_id, client)
    if moved is not None:
        return str(moved.client_id)
    from opentse.server.service_store import ClientRow

    now, client_uuid = ctx.now(), str(uuid.uuid4())
    ctx.svc.add_client(
        ClientRow(
            client_uuid, new_id, tss.organization_id, client, "REGISTERED",
            {"replaces_client": old_row.client_id}, now, now,
        )
    )  # fmt: skip
    return client_uuid


def _export_verify_archive(
    ctx: OpsContext, tse_id: str, unsigned: bool, actor: str, *, final: bool, defective: bool
) -> archive.ArchivedExport:
    """Export (straight from the store when ``unsigned``), verify, archive. A failed
    verification stops the replacement, unless the TSE is replaced as ``defective``:
    then its result is recorded and the export kept as it is."""
    file = archive.write_export_file(ctx, tse_id, without_signature=unsigned)
    try:
        return _verify_archive(ctx, file, tse_id, unsigned, actor, final=final, defective=defective)
    finally:
        archive.release(file.path)  # the writer's lock, also when a step below fails


def _verify_archive(
    ctx: OpsContext, file: archive.ExportFile, tse_id: str, unsigned: bool, actor: str, *,
    final: bool, defective: bool,
) -> archive.ArchivedExport:  # fmt: skip
    """``_export_verify_archive`` after the file is written."""
    if not final:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_OLD_EXPORTED, tse_id=tse_id, actor=actor,
            details={"export_id": file.id, "records": file.records,
                     "last_counter": file.last_counter, "without_signature": unsigned},
        )  # fmt: skip
    verification = archive.verification_summary(file.path)
    accepted = {"accepted_as_defective": True} if defective and not verification["ok"] else {}
    if not final:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_EXPORT_VERIFIED, tse_id=tse_id, actor=actor,
            details={"export_id": file.id, **verification, **accepted},
        )  # fmt: skip
    kind = protocol.REPLACE_FINAL_EXPORT if final else protocol.REPLACE_EXPORT_ARCHIVED
    item = archive.store_export(
        ctx, file, verification, actor=actor, protocol_kind=kind, without_signature=unsigned
    )
    if not item.verified_ok and not defective:
        raise StateError(
            f"the export of TSE {tse_id} did not verify ({verification['error_count']}"
            f" error(s): {', '.join(verification['errors'])}); it is archived as {file.path}"
            f" (`opentse verify {file.path}` lists the findings). The old TSE stays in"
            " service, not disabled. If its stored logs are damaged and no backup has them"
            " whole, replace it as defective: the same command with --defective archives"
            " the export as it is, records the findings and takes the old TSE out of service",
            code="E_REPLACE_EXPORT_NOT_VERIFIED",
        )
    return item


def _archived(
    ctx: OpsContext, tse_id: str, kind: str, since: int, defective: bool
) -> archive.ArchivedExport | None:
    """The export this replacement archived as ``kind`` before it stopped: a verified
    one, or for a defective TSE any (its damaged logs cannot verify)."""
    done = _recorded(ctx, kind, tse_id, since)
    if not done:
        return None
    item = archive.get_export(ctx, str(done[-1].details["export_id"]))
    return item if item.verified_ok or defective else None


def _preflight(
    ctx: OpsContext, old_id: str, new_id: str, new_pin: str, old_pin: str | None, resume: bool
) -> None:
    """Fail before the first step: the new id is free (or a stopped replacement's), the
    new PIN acceptable and the admin PINs right (a replacement must not stop halfway
    for a typo)."""
    from opentse.engine import rules

    if _TSE_ID.fullmatch(new_id) is None:
        raise ProtocolError(
            "TSE id must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="E_TSS_ID_INVALID"
        )
    begun_before = resume and _exists(ctx, new_id)  # its id cannot change any more
    if _unreachable(ctx, old_id, new_id) and not begun_before:
        # the tills reach the new TSS by this id in /api/v2/tss/{id}: the API takes only
        # UUIDs (and reads them in lower case), so any other id would be a TSS no till
        # can sign with
        raise ProtocolError(
            f"TSE {old_id} is served over the API, where a TSS id is a UUID in lower case"
            f" (the tills' --tss): {new_id!r} is not one, no till could reach it. Name the"
            f" new TSE with a UUID, e.g. {_api_tss_id(new_id) or uuid.uuid4()}",
            code="E_TSS_ID_INVALID",
        )
    if not resume and _exists(ctx, new_id):
        raise ConflictError(
            f"TSE {new_id!r} exists already: choose another id for the new TSE",
            code="E_REPLACE_NEW_EXISTS",
        )
    rules.check_new_secret(new_pin, kind="pin", minimum=rules.MIN_PIN)
    if old_pin is not None:  # a check only: the old TSE keeps serving its registers
        with _naming(f"old TSE {old_id} (--old-pin)"):
            _on_old(lambda: ctx.service.authenticate(old_id, old_pin))
        _on_old(lambda: ctx.service.logout(old_id))
    set_before = resume and _exists(ctx, new_id)
    if set_before and ctx.service.get(new_id).state.users[users.ADMIN].pin_hash is not None:
        with _naming(f"new TSE {new_id} (--new-pin, as the stopped run set it)"):
            ctx.service.authenticate(new_id, new_pin)


def _may_supersede(ctx: OpsContext, old_id: str, stopped: str) -> bool:
    """A replacement by ``stopped`` that has not finished can never be finished: its
    new TSE was not created and its id is none the API takes (begun before such ids
    were refused). Any other unfinished one holds the old TSE: it may still be running
    (a second replacement begun beside it made a second successor)."""
    return not _exists(ctx, stopped) and _unreachable(ctx, old_id, stopped)


def _in_progress(ctx: OpsContext, old_id: str, new_id: str, stopped: str) -> ConflictError:
    """The refusal of a second replacement while the one by ``stopped`` is unfinished."""
    then = (
        f". {stopped!r} is no UUID, so no till reaches it over the API (that replacement"
        f" began before such ids were refused): once finished, replace it in turn,"
        f" `opentse tse replace {stopped} {new_id} --old-pin <its admin PIN>`"
        if _unreachable(ctx, old_id, stopped)
        else ""
    )
    pin = (
        "with the new TSE's admin PIN given the first time"
        if _exists(ctx, stopped)
        else "its new TSE was not created yet"
    )
    return ConflictError(
        f"the replacement of TSE {old_id} by {stopped} has not finished (stopped, or still"
        f" running): a TSE has one successor. Run `opentse tse replace {old_id} {stopped}`"
        f" again ({pin}) to finish it{then}",
        code="E_REPLACE_IN_PROGRESS",
    )


def _unreachable(ctx: OpsContext, old_id: str, new_id: str) -> bool:
    """The old TSE is served over the API and the new id is none the API takes."""
    return ctx.svc.get_tss(old_id) is not None and _api_tss_id(new_id) != new_id


def _api_tss_id(tse_id: str) -> str:
    """The id as the API reads it (a UUID in lower case), "" when it is no UUID."""
    try:
        return str(uuid.UUID(tse_id)) if len(tse_id) == 36 else ""
    except ValueError:
        return ""


@contextlib.contextmanager
def _naming(which: str) -> Iterator[None]:
    """Say whose PIN was wrong: a replacement checks two, and 'wrong admin PIN' alone
    does not tell the old TSE's from the new one's."""
    try:
        yield
    except OpenTSEError as exc:
        exc.message = f"{which}: {exc.message}"
        exc.args = (exc.message,)
        raise


def replace_tse(
    ctx: OpsContext,
    old_tse_id: str,
    new_tse_id: str,
    *,
    new_admin_pin: str,
    old_admin_pin: str | None = None,
    defective: bool = False,
    reason: str = "",
    actor: str = "",
) -> Replacement:
    """Run the whole replacement (module docstring), or finish one that stopped with
    the same new id; every step to the protocol. One run per old TSE at a time on
    this data folder (``run_lock``): E_REPLACE_RUNNING while another runs."""
    ctx.service.require(old_tse_id)  # E_TSS_NOT_FOUND for a mistyped id
    busy = (
        f"a replacement of TSE {old_tse_id} is running now in another process on this"
        f" data folder: wait until it ends (see `opentse tse protocol {old_tse_id}`)"
    )
    with run_lock.one_run(ctx.data_dir, f"replace:{old_tse_id}", busy, "E_REPLACE_RUNNING"):
        return _replace_tse(
            ctx, old_tse_id, new_tse_id, new_admin_pin=new_admin_pin,
            old_admin_pin=old_admin_pin, defective=defective, reason=reason, actor=actor,
        )  # fmt: skip


def _replace_tse(
    ctx: OpsContext,
    old_tse_id: str,
    new_tse_id: str,
    *,
    new_admin_pin: str,
    old_admin_pin: str | None,
    defective: bool,
    reason: str,
    actor: str,
) -> Replacement:
    site = sites.find_tse(ctx, old_tse_id)
    if site is None:  # the new TSE takes the old one's place: it needs one
        raise StateError(
            f"TSE {old_tse_id!r} is not placed at a location, which the replacement takes"
            " over: place it first (opentse site org-create, site create, then"
            f" opentse site assign-tse {old_tse_id} LOCATION_ID)",
            code="E_SITE_TSE_UNASSIGNED",
        )
    pending = unfinished(ctx, old_tse_id)
    if (
        pending is not None
        and pending[1] != new_tse_id
        and not _may_supersede(ctx, old_tse_id, pending[1])
    ):
        raise _in_progress(ctx, old_tse_id, new_tse_id, pending[1])
    resume = pending is not None and pending[1] == new_tse_id
    if site.status != "active" and not (resume and site.replaced_by == new_tse_id):
        done_by = f" by {site.replaced_by}" if site.replaced_by else ""
        kept = puk_file.path_for(ctx.data_dir, site.replaced_by) if site.replaced_by else None
        # a run killed after its last step never printed the new TSE's PUKs: say where
        puks = (
            f"; the new TSE's PUKs are in {kept} (mode 0600): store them safely, then"
            " delete that file"
            if kept is not None and kept.is_file()
            else ""
        )
        raise StateError(
            f"TSE {old_tse_id} is already {site.status}{done_by}: nothing left to do{puks}",
            code="E_REPLACE_INACTIVE",
        )
    state = ctx.service.get(old_tse_id).state
    defective = defective or state.lifecycle is Lifecycle.DEFECTIVE
    disabled = state.lifecycle is Lifecycle.DISABLED
    broken = "" if disabled else cannot_sign(ctx, old_tse_id)
    if broken and not defective:
        raise StateError(
            f"TSE {old_tse_id} cannot sign any more ({broken}), so it cannot be disabled"
            " with its signature: replace it as defective with --defective (its logs are"
            " exported straight from the store and it is recorded as DEFECTIVE)",
            code="E_REPLACE_OLD_CANNOT_SIGN",
        )
    expired = None if defective or disabled else expired_on(ctx, old_tse_id)
    if expired is not None:
        day = datetime.fromtimestamp(expired, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise StateError(
            f"the certificate of TSE {old_tse_id} expired on {day}: every log it signs now"
            " (the replacement's own too) lies outside that validity, so no export of it"
            " verifies any more. Replace it as defective with --defective (and --old-pin to"
            " disable it with its signature): the export is archived as it is, with the"
            " verifier's findings recorded",
            code="E_REPLACE_OLD_EXPIRED",
        )
    if not defective and not disabled and old_admin_pin is None:
        raise StateError(
            f"the admin PIN of TSE {old_tse_id} is needed to disable it with its signature:"
            " give --old-pin (a defective TSE without it: --defective, recorded DEFECTIVE)",
            code="E_REPLACE_PIN_REQUIRED",
        )
    # a defective TSE that still signs is disabled with its signature when its PIN is
    # given; otherwise it is recorded as DEFECTIVE, and this says why
    unsigned = "" if disabled else broken
    if defective and not disabled and not unsigned and old_admin_pin is None:
        unsigned = "no admin PIN of it given (--old-pin)"
    puks_path = puk_file.path_for(ctx.data_dir, new_tse_id)
    try:
        _preflight(
            ctx, old_tse_id, new_tse_id, new_admin_pin,
            None if unsigned or disabled else old_admin_pin, resume,
        )  # fmt: skip
        replacement_claim.refuse_api_claims(ctx, old_tse_id, new_tse_id)
        loc = sites.get_location(ctx, site.location_id)
        where = {"org_id": loc.org_id, "location_id": loc.id, "tse_id": old_tse_id, "actor": actor}
        since, resumed = replacement_claim.claim(
            ctx, old_tse_id, new_tse_id,
            may_supersede=lambda other: _may_supersede(ctx, old_tse_id, other),
            in_progress=lambda other: _in_progress(ctx, old_tse_id, new_tse_id, other),
            started={**where, "details": {
                "new_tse": new_tse_id, "defective": defective, "reason": reason,
                "signatures": state.signature_counter, "capacity": site.capacity,
                "open_transactions": len(state.open_transactions)}},
            resumed={**where, "details": {
                "new_tse": new_tse_id, "defective": defective, "reason": reason}},
        )  # fmt: skip
        if resumed != resume:  # another run began or finished one since the checks above
            raise ConflictError(
                f"another replacement of TSE {old_tse_id} changed the protocol while this one"
                f" began: see `opentse tse protocol {old_tse_id}`, then run the command again",
                code="E_REPLACE_IN_PROGRESS",
            )
        done = _replace(
            ctx, site, loc, old_tse_id, new_tse_id, new_admin_pin, old_admin_pin, defective,
            unsigned, actor, since, puks_path,
        )  # fmt: skip
        next_step = (
            f"no till reaches TSE {new_tse_id} over the API: its id is no UUID (this"
            " replacement began before such ids were refused). Replace it by a TSS with"
            f" a UUID: opentse tse replace {new_tse_id} {uuid.uuid4()} --old-pin <the"
            " admin PIN just given with --new-pin>"
            if _unreachable(ctx, old_tse_id, new_tse_id)
            else ""
        )
        return dataclasses.replace(done, resumed=resume, next_step=next_step)
    except OpenTSEError as exc:
        stopped = unfinished(ctx, old_tse_id)
        if stopped is not None and stopped[1] == new_tse_id and _exists(ctx, new_tse_id):
            again = f"opentse tse replace {old_tse_id} {new_tse_id}"
            how = (
                f"Run `{again} --defective` (same new admin PIN) to finish it with the logs"
                " archived as they are, or the same command again once they are restored"
                if exc.code == "E_REPLACE_EXPORT_NOT_VERIFIED" and not defective
                else f"Run the same `{again}` (same new admin PIN) again to finish it"
            )
            exc.message += (
                f". The replacement stopped before it finished; the new TSE's PUKs are in"
                f" {puks_path} (mode 0600). {how}"
            )
            exc.args = (exc.message,)
        raise
    finally:
        # whatever step stops it: no admin stays logged in on either TSE (the old one
        # still serves its registers, and anybody on this data could act as admin)
        for tse_id in (new_tse_id, old_tse_id):
            with contextlib.suppress(OpenTSEError):  # logged out, gone or disabled
                if ctx.service.get(tse_id).state.users[users.ADMIN].logged_in_until:
                    ctx.service.logout(tse_id)


def _replace(
    ctx: OpsContext,
    site: sites.SiteTSE,
    loc: sites.Location,
    old_tse_id: str,
    new_tse_id: str,
    new_admin_pin: str,
    old_admin_pin: str | None,
    defective: bool,
    unsigned: str,
    actor: str,
    since: int,
    puks_path: Path,
) -> Replacement:
    """The steps of ``replace_tse`` after its checks, each skipped when the stored
    state or this replacement's protocol entries (after ``since``) show it done.
    ``unsigned``: why the old TSE is recorded DEFECTIVE instead of disabled ("" for a
    signed disable)."""
    if unsigned:
        mark_defective(ctx, old_tse_id)
    puks = _set_up_new(ctx, old_tse_id, new_tse_id, new_admin_pin, actor, since, puks_path)
    _place_new(ctx, site, loc, old_tse_id, new_tse_id, actor, since)
    clients = _registers_to_move(ctx, old_tse_id, new_tse_id)
    api_clients: dict[str, str] = {}
    for client in clients:
        client_uuid = _move_register(
            ctx, old_tse_id, new_tse_id, client, new_admin_pin, actor, since
        )
        if client_uuid is not None:
            api_clients[client] = client_uuid
    lifecycle = ctx.service.get(old_tse_id).state.lifecycle
    export = None
    if lifecycle is Lifecycle.DISABLED:  # a stopped run got past the disable
        export = _archived(ctx, old_tse_id, protocol.REPLACE_EXPORT_ARCHIVED, since, defective)
    if export is None:  # exported again when the old TSE may have signed since
        export = _export_verify_archive(
            ctx, old_tse_id, bool(unsigned), actor, final=False, defective=defective
        )
    final: archive.ArchivedExport | None = None
    disabled_before = _recorded(ctx, protocol.REPLACE_OLD_DISABLED, old_tse_id, since)
    if unsigned:
        if not disabled_before:
            protocol.record(
                ctx.db, ctx.now(), protocol.REPLACE_OLD_DISABLED, tse_id=old_tse_id,
                actor=actor, details={"signed": False, "state": Lifecycle.DEFECTIVE.value,
                                      "why": unsigned},
            )  # fmt: skip
        sites.update_tse(ctx, old_tse_id, status="defective", replaced_by=new_tse_id)
    else:
        if lifecycle is not Lifecycle.DISABLED:
            assert old_admin_pin is not None
            pin = old_admin_pin
            _on_old(lambda: _login(ctx, old_tse_id, pin))
            _on_old(lambda: ctx.service.disable(old_tse_id))
        if not disabled_before:  # the disable log is the old TSE's last signature so far
            counter = ctx.service.get(old_tse_id).state.signature_counter
            protocol.record(
                ctx.db, ctx.now(), protocol.REPLACE_OLD_DISABLED, tse_id=old_tse_id,
                actor=actor, details={"signed": True, "signature_counter": counter,
                                      "state": Lifecycle.DISABLED.value},
            )  # fmt: skip
        status = "defective" if defective else "replaced"
        sites.update_tse(ctx, old_tse_id, status=status, replaced_by=new_tse_id)
        final = _archived(ctx, old_tse_id, protocol.REPLACE_FINAL_EXPORT, since, defective)
        if final is None:
            final = _export_verify_archive(
                ctx, old_tse_id, False, actor, final=True, defective=defective
            )
    protocol.record(
        ctx.db, ctx.now(), protocol.REPLACE_DONE, location_id=loc.id, tse_id=old_tse_id,
        actor=actor, details={"new_tse": new_tse_id, "registers": clients},
    )  # fmt: skip
    old_state = ctx.service.get(old_tse_id).state
    left_open = tuple(sorted((t.client_id, t.number) for t in old_state.open_transactions.values()))
    return Replacement(
        old_tse_id, new_tse_id, puks.admin if puks else None,
        puks.timeadmin if puks else None, tuple(clients), export, final, api_clients,
        str(puks_path), left_open=left_open, old_state=old_state.lifecycle.value,
        unsigned_reason=unsigned,
    )  # fmt: skip
