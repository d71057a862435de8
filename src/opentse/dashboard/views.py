"""What the dashboard pages show, gathered from the same services the API uses.

Every function takes the server context (engine service, service store) or the ops
context and the caller's organization, and returns plain dataclasses the templates
lay out. Ownership is checked here: another organization's TSE or transaction is
``None`` (the route answers 404, like the API).
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from opentse.dashboard.tse_exports import ExportEntry, ExportLogs, SystemLog, attribute
from opentse.engine.results import TSEInfo
from opentse.errors import OpenTSEError
from opentse.ops import archive, lifetime, outages, protocol, sites, status
from opentse.ops.store import OpsContext
from opentse.server.service_store import Page, TssRow

GREEN, YELLOW, RED, GREY = "green", "yellow", "red", "grey"
RECENT_FAILURE_SECONDS = 3600


# --- TSE list and detail -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    key: str  # i18n key
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TseRow:
    tss_id: str
    serial: str
    description: str
    state: str
    light: str
    reasons: tuple[Reason, ...]
    signatures: int
    transactions: int
    open_transactions: int
    registers: int
    capacity: int
    remaining: int
    not_before: int | None
    not_after: int | None
    days_to_expiry: float | None
    warnings: tuple[lifetime.Warning, ...]

    @property
    def validity_days(self) -> float:
        if self.not_before is None or self.not_after is None:
            return 0.0
        return max((self.not_after - self.not_before) / lifetime.DAY, 1.0)


class FailureWatch:
    """When the API's failure counter (ops.metrics) grew for each TSE, so the traffic
    light can show *recent* failures from a counter that only ever grows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._events: dict[str, list[tuple[float, int]]] = {}

    def update(self, snapshot: dict[tuple[str, str], int]) -> None:
        totals: dict[str, int] = {}
        for (tse_id, _status), count in snapshot.items():
            totals[tse_id] = totals.get(tse_id, 0) + count
        now = time.monotonic()
        with self._lock:
            for tse_id, total in totals.items():
                grown = total - self._seen.get(tse_id, 0)
                if grown > 0:
                    self._events.setdefault(tse_id, []).append((now, grown))
                self._seen[tse_id] = total

    def recent(self, tse_id: str) -> int:
        """Failed API calls on this TSE noticed within the last hour."""
        cutoff = time.monotonic() - RECENT_FAILURE_SECONDS
        with self._lock:
            events = [e for e in self._events.get(tse_id, []) if e[0] >= cutoff]
            self._events[tse_id] = events
            return sum(n for _, n in events)


def owned_tss(ctx: Any, org: str, tss_id: str) -> TssRow | None:
    row: TssRow | None = ctx.svc.get_tss(tss_id.lower())
    return row if row is not None and row.organization_id == org else None


def all_clients(ctx: Any, org: str, tss_id: str) -> list[Any]:
    """Every client (register) of a TSS, page by page (the store pages by 100)."""
    found: list[Any] = []
    while True:
        rows, total = ctx.svc.list_clients(org, tss_id, Page(limit=100, offset=len(found)))
        found.extend(rows)
        if not rows or len(found) >= total:
            return found


def tss_choices(ctx: Any, org: str) -> list[tuple[str, str]]:
    """(TSS id, serial number) of the organization's TSEs, for select boxes."""
    found: list[tuple[str, str]] = []
    for tss_id in ctx.svc.list_tss_ids(org):
        try:
            found.append((tss_id, ctx.service.get(tss_id).record.serial_number.hex()))
        except OpenTSEError:
            continue
    return found


def cert_times(info: TSEInfo) -> tuple[int | None, int | None]:
    if not info.record.certificate_chain:
        return None, None
    cert = x509.load_der_x509_certificate(info.record.certificate_chain[0])
    return int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())


def last_signature_ok(ctx: Any, info: TSEInfo) -> bool | None:
    """Does the TSE's last log message verify with its public key? None: nothing signed.

    "Last signing fine" is checked, not assumed: the stored DER is decoded and its
    signature verified over the exact signed bytes (TR-03151 signature check)."""
    from opentse.tr03151.codec import decode_log_message
    from opentse.tr03151.signature import verify_signature

    if info.state.signature_counter == 0:
        return None
    try:
        message = decode_log_message(ctx.service.read_log_message(info.record.tse_id))
        if message.serial_number != info.record.serial_number or message.signed_data is None:
            return False
        verify_signature(
            info.record.public_key_point,
            message.signature_algorithm,
            message.signed_data,
            message.signature_value,
        )
    except (OpenTSEError, ValueError):
        return False
    return True


def _light(
    st: status.TSEStatus,
    overdue: bool,
    failures: int,
    last_ok: bool | None = True,
    replaced_by: str | None = None,
) -> tuple[str, tuple[Reason, ...]]:
    """Red: not usable; yellow: usable with a warning; green: fine; grey: taken out of
    service by ``opentse tse replace`` (nothing to do: another TSE does its work)."""
    state = st.info.state.lifecycle.value
    if replaced_by is not None and state in ("DISABLED", "DEFECTIVE"):
        replaced = Reason("reason_replaced", {"new": replaced_by})
        if state == "DEFECTIVE":
            return GREY, (Reason("reason_defective"), replaced)
        return GREY, (replaced,)
    if state in ("CREATED", "UNINITIALIZED"):
        return RED, (Reason("reason_not_init"),)
    if state == "DISABLED":
        return RED, (Reason("reason_disabled"),)
    if state == "DEFECTIVE":
        return RED, (Reason("reason_defective"),)
    if last_ok is False:
        return RED, (Reason("reason_last_bad"),)
    reasons = [Reason("w_" + w.kind + "_" + w.level, _warn_values(w)) for w in st.warnings]
    if any(w.level == "critical" for w in st.warnings):
        return RED, tuple(reasons)
    if overdue:
        reasons.append(Reason("reason_export"))
    if failures:
        reasons.append(Reason("reason_failures", {"n": failures}))
    if reasons:
        return YELLOW, tuple(reasons)
    return GREEN, (Reason("reason_ok", {"n": st.info.state.signature_counter}),)


def _warn_values(w: lifetime.Warning) -> dict[str, Any]:
    return {"days": f"{w.days_left:.1f}"}


def tse_rows(
    ctx: Any, ops: OpsContext, org: str, watch: FailureWatch, tss_id: str | None = None
) -> list[TseRow]:
    ids = ctx.svc.list_tss_ids(org)
    if tss_id is not None:
        ids = [i for i in ids if i == tss_id]
    overdue = {r.tse_id for r in archive.reminders(ops)}
    now = ops.now()
    rows: list[TseRow] = []
    for tid in ids:
        svc_row = ctx.svc.get_tss(tid)
        try:
            info = ctx.service.get(tid)
        except OpenTSEError:
            continue
        st = status.status_of(ops, info, now)
        last_ok = (
            last_signature_ok(ctx, info) if info.state.lifecycle.value == "INITIALIZED" else None
        )
        site = sites.find_tse(ops, tid)
        replaced_by = site.replaced_by if site is not None else None
        light, reasons = _light(st, tid in overdue, watch.recent(tid), last_ok, replaced_by)
        s = info.state
        not_before, not_after = cert_times(info)
        rows.append(
            TseRow(
                tss_id=tid,
                serial=info.record.serial_number.hex(),
                description=s.description or (svc_row.metadata.get("name", "") if svc_row else ""),
                state=s.lifecycle.value,
                light=light,
                reasons=reasons,
                signatures=s.signature_counter,
                transactions=s.transaction_counter,
                open_transactions=len(s.open_transactions),
                registers=sum(1 for c in s.clients.values() if c.registered),
                capacity=st.facts.capacity,
                remaining=st.life.remaining_signatures,
                not_before=not_before,
                not_after=not_after,
                days_to_expiry=st.life.days_to_expiry,
                warnings=st.warnings,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: int
    not_after: int
    serial: str


def certificate_of(info: TSEInfo) -> CertInfo | None:
    if not info.record.certificate_chain:
        return None
    cert = x509.load_der_x509_certificate(info.record.certificate_chain[0])
    return CertInfo(
        cert.subject.rfc4514_string(),
        cert.issuer.rfc4514_string(),
        int(cert.not_valid_before_utc.timestamp()),
        int(cert.not_valid_after_utc.timestamp()),
        format(cert.serial_number, "x"),
    )


@dataclass(frozen=True, slots=True)
class TseDetail:
    row: TseRow
    info: TSEInfo
    clients: list[Any]
    certificate: CertInfo | None
    protocol: list[protocol.Entry]
    exports: list[ExportEntry]
    public_key: str
    system_events: list[SystemLog]  # the first ones: the set-up as the TSE recorded it
    #: the latest ones after those, newest first (a TSE in use signs thousands)
    latest_system_events: list[SystemLog] = field(default_factory=list)


TSE_EXPORTS_SHOWN = 50
#: API exports read to tell their exportData logs from CLI ones (newest first)
TSE_API_EXPORTS_READ = 1000


def tse_exports(
    ctx: Any, ops: OpsContext, org: str, tss_id: str, logs: ExportLogs
) -> list[ExportEntry]:
    """The TSE's exports from the API, the archive and the CLI, newest first."""
    api, _ = ctx.svc.list_exports(org, Page(limit=TSE_API_EXPORTS_READ, order="desc"), tss_id)
    found = attribute(api, archive.exports(ops, tss_id), logs.of(ctx.service, tss_id))
    return found[:TSE_EXPORTS_SHOWN]


def tse_detail(
    ctx: Any,
    ops: OpsContext,
    org: str,
    tss_id: str,
    watch: FailureWatch,
    export_logs: ExportLogs | None = None,
) -> TseDetail | None:
    if owned_tss(ctx, org, tss_id) is None:
        return None
    rows = tse_rows(ctx, ops, org, watch, tss_id.lower())
    if not rows:
        return None
    row = rows[0]
    info = ctx.service.get(row.tss_id)
    clients = all_clients(ctx, org, row.tss_id)
    logs = export_logs or ExportLogs()
    exports = tse_exports(ctx, ops, org, row.tss_id, logs)
    first = logs.first(ctx.service, row.tss_id)
    last_first = first[-1].counter if first else 0
    return TseDetail(
        row,
        info,
        clients,
        certificate_of(info),
        protocol.entries(ops.db, tse_id=row.tss_id),
        exports,
        base64.b64encode(info.record.public_key_point).decode(),
        first,
        [e for e in reversed(logs.latest(ctx.service, row.tss_id)) if e.counter > last_first],
    )


# --- outages and warnings -------------------------------------------------------------


def outage_rows(ops: OpsContext, org_tss: set[str]) -> list[outages.OutageRow]:
    return [r for r in outages.outages(ops) if r.tse_id in org_tss]


@dataclass(frozen=True, slots=True)
class WarningView:
    tss_id: str
    serial: str
    kind: str
    level: str
    key: str
    values: dict[str, Any]


#: red-light reasons that are no lifetime warning: the TSE cannot be relied on
STATUS_REASONS = ("reason_last_bad", "reason_defective", "reason_disabled", "reason_not_init")


def warning_rows(rows: list[TseRow], ops: OpsContext, watch: FailureWatch) -> list[WarningView]:
    """Everything that needs the shop's attention, worst first per TSE: a TSE whose
    light is red for its state (last signature does not verify, defective, disabled,
    not initialized), lifetime warnings, failed calls and overdue exports."""
    by_id = {r.tss_id: r for r in rows}
    found: list[WarningView] = []
    for r in rows:
        if r.light == RED:
            found.extend(
                WarningView(r.tss_id, r.serial, "status", "critical", reason.key, reason.values)
                for reason in r.reasons
                if reason.key in STATUS_REASONS
            )
        for w in r.warnings:
            found.append(
                WarningView(
                    r.tss_id, r.serial, w.kind, w.level, f"w_{w.kind}_{w.level}", _warn_values(w)
                )
            )
        failures = watch.recent(r.tss_id)
        if failures:
            found.append(
                WarningView(
                    r.tss_id, r.serial, "failures", "warning", "reason_failures", {"n": failures}
                )
            )
    for rem in archive.reminders(ops):
        if rem.tse_id in by_id:
            found.append(
                WarningView(
                    rem.tse_id,
                    by_id[rem.tse_id].serial,
                    "export",
                    "warning",
                    "w_export",
                    {"days": f"{rem.days_since:.0f}"},
                )
            )
    return found
