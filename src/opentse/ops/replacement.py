"""Replacing a TSE (full, expiring or defective) by a new one at the same location.

The order follows the procedure documentation's replacement process:
1. a new TSE is set up beside the old one (same location, curve and time format);
2. every register of the old TSE is registered with the new one and moved to it
   (recorded sharing confirmations of the old TSE carry over: same address);
3. the old TSE is fully exported, the export verified with the verifier and archived
   (hash, result, retention date); a failed verification stops here, nothing is
   disabled;
4. the old TSE is disabled (disableSecureElement, signed);
5. a final full export (it now holds the exportData and disable logs) is verified
   and archived as well.
Each step is one protocol entry, in this order. A defective TSE takes the same path
without its own signature: it is marked DEFECTIVE, its logs are exported straight
from the store (no exportData log), and step 4 is the recorded state DEFECTIVE
instead of a signed disable; step 5 is not needed because it signed nothing new.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from opentse.engine import tse as tse_steps
from opentse.engine import users
from opentse.engine.ports import LockedTSE
from opentse.engine.state import Lifecycle, TSEState
from opentse.errors import ConflictError, NotFoundError, OpenTSEError, StateError
from opentse.ops import archive, protocol, sites
from opentse.ops.store import OpsContext


@dataclass(frozen=True, slots=True)
class Replacement:
    old_tse_id: str
    new_tse_id: str
    admin_puk: str  # of the new TSE, shown once
    timeadmin_puk: str
    registers: tuple[str, ...]
    export: archive.ArchivedExport
    final_export: archive.ArchivedExport | None
    #: register serial -> its client UUID at the new TSS, for a TSE served over the API
    #: (what the register's ``--client`` is from now on)
    api_clients: dict[str, str] = field(default_factory=dict)

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
        }


def mark_defective(ctx: OpsContext, tse_id: str) -> None:
    """Record that the TSE cannot sign any more (state DEFECTIVE; nothing is signed)."""

    def fn(locked: LockedTSE) -> None:
        state = locked.load()
        if state.lifecycle is not Lifecycle.DEFECTIVE:
            locked.save(tse_steps.mark_defective(state))

    ctx.store.run_locked(tse_id, fn)


def _set_up_new(
    ctx: OpsContext, old_id: str, new_id: str, admin_pin: str, actor: str
) -> tuple[str, str]:
    svc = ctx.service
    old = svc.get(old_id).record
    created = svc.create_tse(
        new_id, curve=old.curve, time_format=old.time_format,
        description=f"replaces {old_id}", owner=old.owner,
    )  # fmt: skip
    svc.set_state(new_id, Lifecycle.UNINITIALIZED)
    svc.set_admin_pin(new_id, created.admin_puk, admin_pin)
    protocol.record_credential_change(ctx.db, ctx.now(), new_id, what="pin", actor=actor)
    svc.authenticate(new_id, admin_pin)
    svc.initialize(new_id, f"replaces {old_id}")
    tss = ctx.svc.get_tss(old_id)
    if tss is not None:  # served over the API: the organization keeps seeing it
        ctx.svc.add_tss(new_id, tss.organization_id, tss.env, {"replaces": old_id}, None, ctx.now())
    return created.admin_puk, created.timeadmin_puk


def _move_register(
    ctx: OpsContext, old_id: str, new_id: str, client: str, actor: str
) -> str | None:
    """Register ``client`` with the new TSE; for a TSS served over the API also its
    client entry, whose new UUID is returned (None otherwise)."""
    known = sites.find_register(ctx, client) is not None
    if known:
        sites.check_assignment(ctx, client, new_id)  # before the TSE registers it
    ctx.service.register_client(new_id, client)
    if known:
        sites.assign_register(
            ctx, client, new_id, actor=actor, protocol_kind=protocol.REPLACE_REGISTER_MOVED
        )
    else:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_REGISTER_MOVED, tse_id=new_id,
            register_id=client, actor=actor, details={"previous_tse": old_id},
        )  # fmt: skip
    tss = ctx.svc.get_tss(old_id)
    old_row = ctx.svc.client_by_serial(old_id, client)
    if tss is not None and old_row is not None:
        from opentse.server.service_store import ClientRow

        now, client_uuid = ctx.now(), str(uuid.uuid4())
        ctx.svc.add_client(
            ClientRow(
                client_uuid, new_id, tss.organization_id, client, "REGISTERED",
                {"replaces_client": old_row.client_id}, now, now,
            )
        )  # fmt: skip
        return client_uuid
    return None


def _export_verify_archive(
    ctx: OpsContext, tse_id: str, defective: bool, actor: str, *, final: bool
) -> archive.ArchivedExport:
    file = archive.write_export_file(ctx, tse_id, without_signature=defective)
    if not final:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_OLD_EXPORTED, tse_id=tse_id, actor=actor,
            details={"export_id": file.id, "records": file.records,
                     "last_counter": file.last_counter, "without_signature": defective},
        )  # fmt: skip
    verification = archive.verification_summary(file.path)
    if not final:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_EXPORT_VERIFIED, tse_id=tse_id, actor=actor,
            details={"export_id": file.id, **verification},
        )  # fmt: skip
    kind = protocol.REPLACE_FINAL_EXPORT if final else protocol.REPLACE_EXPORT_ARCHIVED
    item = archive.store_export(
        ctx, file, verification, actor=actor, protocol_kind=kind, without_signature=defective
    )
    if not item.verified_ok:
        raise StateError(
            f"the export of TSE {tse_id} did not verify ({', '.join(verification['errors'])});"
            " the old TSE stays as it is",
            code="E_REPLACE_EXPORT_NOT_VERIFIED",
        )
    return item


def _preflight(
    ctx: OpsContext, old_id: str, new_id: str, new_pin: str, old_pin: str | None
) -> None:
    """Fail before the first step: the new id is free, the new PIN acceptable and the
    old admin PIN right (a replacement must not stop halfway for a typo)."""
    from opentse.engine import rules

    try:
        ctx.store.get_record(new_id)
    except NotFoundError:
        pass
    else:
        raise ConflictError(f"TSE {new_id!r} exists already", code="E_REPLACE_NEW_EXISTS")
    rules.check_new_secret(new_pin, kind="pin", minimum=rules.MIN_PIN)
    if old_pin is not None:  # a check only: the old TSE keeps serving its registers
        ctx.service.authenticate(old_id, old_pin)
        ctx.service.logout(old_id)


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
    """Run the whole replacement (module docstring); every step to the protocol."""
    site = sites.get_tse(ctx, old_tse_id)
    if site.status != "active":
        raise StateError(f"TSE {old_tse_id} is already {site.status}", code="E_REPLACE_INACTIVE")
    state = ctx.service.get(old_tse_id).state
    defective = defective or state.lifecycle is Lifecycle.DEFECTIVE
    if not defective and old_admin_pin is None:
        raise StateError(
            "the old TSE's admin PIN is needed to disable it (or mark it defective)",
            code="E_REPLACE_PIN_REQUIRED",
        )
    _preflight(ctx, old_tse_id, new_tse_id, new_admin_pin, None if defective else old_admin_pin)
    loc = sites.get_location(ctx, site.location_id)
    protocol.record(
        ctx.db, ctx.now(), protocol.REPLACE_STARTED, org_id=loc.org_id, location_id=loc.id,
        tse_id=old_tse_id, actor=actor,
        details={"new_tse": new_tse_id, "defective": defective, "reason": reason,
                 "signatures": state.signature_counter, "capacity": site.capacity,
                 "open_transactions": len(state.open_transactions)},
    )  # fmt: skip
    try:
        return _replace(
            ctx, site, loc, state, old_tse_id, new_tse_id, new_admin_pin, old_admin_pin,
            defective, actor,
        )  # fmt: skip
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
    state: TSEState,
    old_tse_id: str,
    new_tse_id: str,
    new_admin_pin: str,
    old_admin_pin: str | None,
    defective: bool,
    actor: str,
) -> Replacement:
    """The steps of ``replace_tse`` after its checks."""
    if defective:
        mark_defective(ctx, old_tse_id)
    admin_puk, timeadmin_puk = _set_up_new(ctx, old_tse_id, new_tse_id, new_admin_pin, actor)
    sites.assign_tse(
        ctx, new_tse_id, site.location_id, capacity=site.capacity,
        hardware_version=site.hardware_version, interface_type=site.interface_type,
        connection_url=site.connection_url, actor=actor,
    )  # fmt: skip
    for share in sites.shares(ctx, old_tse_id):  # same address: the confirmation carries over
        sites.share_tse(
            ctx, new_tse_id, share.location_id, confirmed_by=share.confirmed_by,
            confirmation=f"{share.confirmation} (carried over from TSE {old_tse_id})",
        )  # fmt: skip
    new_serial = ctx.service.get(new_tse_id).record.serial_number.hex()
    protocol.record(
        ctx.db, ctx.now(), protocol.REPLACE_NEW_TSE, location_id=loc.id, tse_id=new_tse_id,
        actor=actor, details={"replaces": old_tse_id, "serial_number": new_serial},
    )  # fmt: skip
    clients = [r.register_id for r in sites.registers(ctx, tse_id=old_tse_id)]
    for c in sorted(state.clients.values(), key=lambda c: c.registered_at):
        if c.registered and c.client_id not in clients:
            clients.append(c.client_id)
    api_clients: dict[str, str] = {}
    for client in clients:
        client_uuid = _move_register(ctx, old_tse_id, new_tse_id, client, actor)
        if client_uuid is not None:
            api_clients[client] = client_uuid
    export = _export_verify_archive(ctx, old_tse_id, defective, actor, final=False)
    final: archive.ArchivedExport | None = None
    if defective:
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_OLD_DISABLED, tse_id=old_tse_id, actor=actor,
            details={"signed": False, "state": Lifecycle.DEFECTIVE.value},
        )  # fmt: skip
        sites.update_tse(ctx, old_tse_id, status="defective", replaced_by=new_tse_id)
    else:
        assert old_admin_pin is not None
        ctx.service.authenticate(old_tse_id, old_admin_pin)
        log = ctx.service.disable(old_tse_id)
        protocol.record(
            ctx.db, ctx.now(), protocol.REPLACE_OLD_DISABLED, tse_id=old_tse_id, actor=actor,
            details={"signed": True, "signature_counter": log.signature_counter,
                     "state": Lifecycle.DISABLED.value},
        )  # fmt: skip
        sites.update_tse(ctx, old_tse_id, status="replaced", replaced_by=new_tse_id)
        final = _export_verify_archive(ctx, old_tse_id, False, actor, final=True)
    protocol.record(
        ctx.db, ctx.now(), protocol.REPLACE_DONE, location_id=loc.id, tse_id=old_tse_id,
        actor=actor, details={"new_tse": new_tse_id, "registers": clients},
    )  # fmt: skip
    return Replacement(
        old_tse_id, new_tse_id, admin_puk, timeadmin_puk, tuple(clients), export, final,
        api_clients,
    )  # fmt: skip
