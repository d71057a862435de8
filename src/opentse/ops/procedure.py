"""The procedure documentation (Verfahrensdokumentation, GoBD Rz. 151 ff.) of the
TSE set-up, generated from live data as Markdown (``render_markdown``) and PDF
(``render_pdf``, fpdf2).

Content, as POS vendors' TSE guides list it: organization and locations (with
recorded TSE sharing), every TSE (hardware/software version, interface type,
connection URL/port/path, certificate and serial numbers, set-up date, capacity),
every register, PIN/PUK changes (time and role, never the values), the protocol of
set-up, moves and replacements, the processes for use, replacement, export for audits
and outages, the outage log and the export archive. Marked as not certified.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from jinja2 import Environment, PackageLoader, StrictUndefined

from opentse import NOT_CERTIFIED_NOTICE
from opentse.engine.ports import LogFilter
from opentse.errors import FormatError, StorageError
from opentse.ops import archive, outages, protocol, sites
from opentse.ops.store import DEFAULT_CAPACITY, OpsContext
from opentse.tr03151 import codec, sysdata
from opentse.tr03151.logmessage import SystemLogData
from opentse.tr03151.oids import LogType

SECTIONS = (
    "Hinweis: nicht zertifiziert",
    "1. Unternehmen und Standorte",
    "2. Technische Sicherheitseinrichtungen (TSE)",
    "3. Kassen (Aufzeichnungssysteme)",
    "4. PIN- und PUK-Änderungen",
    "5. Protokoll: Einrichtung, Umzug, Austausch",
    "6. Prozesse",
    "6.1 Nutzung der TSE",
    "6.2 Austausch der TSE",
    "6.3 Export für Prüfungen (Kassen-Nachschau, Außenprüfung)",
    "6.4 Ausfall der TSE",
    "7. Ausfallprotokoll",
    "8. Archiv der Exporte",
    "9. Angaben für die Mitteilung nach §146a Abs. 4 AO",
)
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


#: German local time: a tax auditor reads the times of the shop, not UTC (GoBD Rz. 151 ff.)
BERLIN = archive.GERMANY  # German local time, zone named (register.shoptime)
_ZONE_NAMES = {"CET": "MEZ", "CEST": "MESZ"}


def _dt(value: int | None) -> str:
    """``22.11.2026 12:18:55 MEZ``: German date, local time of Germany, zone named."""
    if value is None:
        return "-"
    at = datetime.fromtimestamp(int(value), tz=BERLIN)
    zone = at.tzname() or ""
    return f"{at:%d.%m.%Y %H:%M:%S} {_ZONE_NAMES.get(zone, zone)}"


def _date(value: int | None) -> str:
    """A calendar date kept as the last second of its day in UTC (``retain_until``,
    archive.py): read in UTC, or 31.12.2036 23:59:59 UTC would print as 01.01.2037."""
    return "-" if value is None else f"{datetime.fromtimestamp(int(value), tz=UTC):%d.%m.%Y}"


_STATES = {
    "CREATED": "angelegt, nicht in Betrieb (CREATED)",
    "UNINITIALIZED": "nicht initialisiert, nicht in Betrieb (UNINITIALIZED)",
    "INITIALIZED": "in Betrieb (INITIALIZED)",
    "DISABLED": "außer Betrieb (DISABLED)",
    "DEFECTIVE": "defekt, außer Betrieb (DEFECTIVE)",
}
_OPS_STATUS = {"active": "aktiv", "replaced": "ersetzt", "defective": "als defekt ersetzt"}
#: sites.py records these English defaults; the document is German
_INTERFACES = {
    sites.SERVED_INTERFACE: "HTTP-API (fiskaly SIGN DE v2 kompatibel, opentse serve)",
    sites.EMBEDDED_INTERFACE: "eingebettet (opentse-Bibliothek bzw. -CLI auf demselben Rechner)",
}
SOFTWARE_TSE = "software TSE (no hardware)"  # sites.assign_tse's default hardware_version
_HARDWARE = {SOFTWARE_TSE: "keine (Software-TSE ohne Sicherheitsmodul)"}
#: no opentse TSE has one; §146a Abs. 4 AO and AEAO zu §146a ask for it per TSE
NO_CERTIFICATION = "keine: opentse ist nicht vom BSI zertifiziert"


def _num(value: int) -> str:
    """20.000.000: the German thousands separator."""
    return f"{int(value):,}".replace(",", ".")


def _md(value: object) -> str:
    """A value safe inside a Markdown table cell."""
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


#: what a protocol entry's kind means, for a reader who does not know the codes
KIND_NAMES = {
    protocol.ORG_CREATED: "Organisation angelegt",
    protocol.LOCATION_CREATED: "Standort angelegt",
    protocol.TSE_ASSIGNED: "TSE am Standort aufgestellt",
    protocol.TSE_SHARED: "TSE für weiteren Standort freigegeben",
    protocol.REGISTER_ASSIGNED: "Kasse der TSE zugeordnet",
    protocol.REGISTER_MOVED: "Kasse an anderen Standort umgezogen",
    protocol.PIN_CHANGED: "PIN geändert",
    protocol.PUK_CHANGED: "PUK geändert",
    protocol.MOVE_STARTED: "Umzug der TSE begonnen",
    protocol.API_KEY_ROTATED: "Umzug: API-Zugang erneuert",
    protocol.CONNECTION_DATA: "Umzug: Verbindungsdaten für die Kassen",
    protocol.CONNECTION_TEST: "Umzug: Verbindungstest",
    protocol.MOVE_DONE: "Umzug abgeschlossen",
    protocol.MOVE_RESUMED: "Umzug fortgesetzt",
    protocol.MOVED_OUT: "Datenordner stillgelegt (Kopie läuft auf neuem Rechner)",
    protocol.REPLACE_STARTED: "Austausch begonnen",
    protocol.REPLACE_NEW_TSE: "Austausch: neue TSE eingerichtet",
    protocol.REPLACE_REGISTER_MOVED: "Austausch: Kasse zur neuen TSE",
    protocol.REPLACE_OLD_EXPORTED: "Austausch: alte TSE exportiert",
    protocol.REPLACE_EXPORT_VERIFIED: "Austausch: Export geprüft",
    protocol.REPLACE_EXPORT_ARCHIVED: "Austausch: Export archiviert",
    protocol.REPLACE_OLD_DISABLED: "Austausch: alte TSE außer Betrieb genommen",
    protocol.REPLACE_FINAL_EXPORT: "Austausch: Schlussexport archiviert",
    protocol.REPLACE_DONE: "Austausch abgeschlossen",
    protocol.REPLACE_RESUMED: "Austausch fortgesetzt",
    protocol.EXPORT_ARCHIVED: "Export archiviert",
    protocol.LOGS_RELEASED: "Gespeicherte Protokolle zur Löschung freigegeben",
    protocol.OUTAGE_RECORDED: "Ausfall erfasst",
    "tse.interface_corrected": "Schnittstelle berichtigt",
}
DETAILS_LIMIT = 360
#: the kinds of a till's outage journal (opentse.register.outage), in the document's words
OUTAGE_KINDS = {
    "start": "TSE beim Start der Kasse nicht erreichbar",
    "running": "TSE im laufenden Betrieb nicht erreichbar",
    "signing": "Signierung fehlgeschlagen",
    "replaced": "TSE außer Betrieb (ersetzt)",
}


def _outage_reason(row: outages.OutageRow) -> str:
    """A till's journal writes ``kind: reason`` with the kind as code word."""
    kind, sep, reason = row.reason.partition(": ")
    if row.source != "ops" and sep and kind in OUTAGE_KINDS:
        return f"{OUTAGE_KINDS[kind]}: {reason}"
    return row.reason


def _outage_receipts(row: outages.OutageRow) -> str:
    """An outage recorded with ``tse outage`` counts no receipts: "0" would say none
    was issued unsigned; the tills' journals (``--journal``) count theirs."""
    return "nicht erfasst" if row.source == "ops" else str(row.receipts)


def _kind(kind: str) -> str:
    name = KIND_NAMES.get(kind)
    return f"{name} ({kind})" if name else kind


def _is_time_key(key: str) -> bool:
    return key == "at" or key.endswith("_at")


def _details(details: dict[str, Any]) -> str:
    """The entry's details, times as German local times (unix seconds tell a reader
    nothing), cut at DETAILS_LIMIT (the note below the table names the full view)."""
    shown: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, int) and not isinstance(value, bool) and _is_time_key(key):
            value = _dt(value)
        elif key == "retain_until" and isinstance(value, int):
            value = _date(value)
        elif isinstance(value, str) and value in _INTERFACES:
            value = _INTERFACES[value]
        shown[key] = value
    text = json.dumps(shown, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= DETAILS_LIMIT else text[: DETAILS_LIMIT - 3] + "..."


@dataclass
class ProcedureData:
    generated: str
    notice: str
    org: sites.Organization | None
    orgs: list[sites.Organization]
    locations: list[sites.Location]
    location_names: dict[str, str]
    shares: list[sites.Share]
    tses: list[dict[str, Any]]
    registers: list[sites.RegisterRow]
    credential_changes: list[dict[str, Any]]
    protocol: list[protocol.Entry]
    outages: list[outages.OutageRow]
    exports: list[archive.ArchivedExport]
    reminder_days: int
    extra: dict[str, Any] = field(default_factory=dict)
    #: clients the TSEs know that no ``site add-register`` recorded (ids, times)
    unrecorded_clients: list[dict[str, Any]] = field(default_factory=list)
    #: which register signed at which TSE when (the TSEs' client registrations)
    usage: list[dict[str, Any]] = field(default_factory=list)
    #: register id -> (put into service, taken out of service or None), from ``usage``
    in_service: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    #: a TSE is reached over the API (section 6.1 says how registers connect)
    served: bool = False
    embedded: bool = False


def _tse_row(ctx: OpsContext, tse_id: str, names: dict[str, str]) -> dict[str, Any]:
    info = ctx.service.get(tse_id)
    site = sites.find_tse(ctx, tse_id)
    rec, st = info.record, info.state
    interface = _interface(ctx, tse_id, site)
    hardware = site.hardware_version if site else SOFTWARE_TSE
    status = (site.status if site else "") or ""
    row: dict[str, Any] = {
        "tse_id": tse_id,
        "location": names.get(site.location_id, site.location_id) if site else "-",
        "state": _STATES.get(st.lifecycle.value, st.lifecycle.value)
        + (f", {_OPS_STATUS.get(status, status)}" if status else ""),
        "serial": rec.serial_number.hex(),
        "certification": NO_CERTIFICATION,
        "hardware_version": _HARDWARE.get(hardware, hardware),
        "software_version": site.software_version if site else sites.default_software_version(),
        "interface_type": _INTERFACES.get(interface, interface),
        "url": "-",
        "algorithm": rec.signature_algorithm,
        "curve": rec.curve,
        "time_format": rec.time_format,
        "set_up": _dt(st.initialized_at),
        "set_up_at": st.initialized_at,
        "disabled": _dt(st.disabled_at),
        "disabled_at": st.disabled_at,
        "signatures": st.signature_counter,
        "capacity": site.capacity if site else DEFAULT_CAPACITY,
        "replaced_by": site.replaced_by if site else None,
        "deleted": "keine",
        "cert_serial": "-",
        "cert_subject": "-",
        "cert_issuer": "-",
        "cert_from": "-",
        "cert_until": "-",
    }
    if st.disabled_at is None:  # a defective TSE is taken out of service without a log
        taken_out = protocol.entries(ctx.db, tse_id=tse_id, kinds=(protocol.REPLACE_OLD_DISABLED,))
        if taken_out:
            row["disabled"] = f"{_dt(taken_out[-1].at)} ({st.lifecycle.value}, laut Protokoll)"
            row["disabled_at"] = taken_out[-1].at
    url = site.connection_url if site else ""
    # embedded (not served over the API, no interface of the operator's naming): a URL
    # (tse move: where the organization's API is now) does not serve this TSE
    unreachable = interface == sites.EMBEDDED_INTERFACE
    if url and unreachable:
        row["url"] = (
            "keine: die TSE wird nicht über die API bereitgestellt, sondern eingebettet"
            f" genutzt; unter der für sie eingetragenen Adresse {url} (tse move,"
            " site assign-tse --url) erreicht keine Kasse diese TSE"
        )
    elif url:
        row["url"] = url
    parts = urlsplit(url) if url and not unreachable else None
    row["host"] = (parts.hostname if parts else None) or "-"
    row["port"] = str(parts.port) if parts and parts.port else "-"
    row["path"] = (parts.path if parts else "") or "-"
    if rec.certificate_chain:
        cert = x509.load_der_x509_certificate(rec.certificate_chain[0])
        row.update(
            cert_serial=format(cert.serial_number, "x"),
            cert_subject=cert.subject.rfc4514_string(),
            cert_issuer=cert.issuer.rfc4514_string(),
            cert_from=_dt(int(cert.not_valid_before_utc.timestamp())),
            cert_until=_dt(int(cert.not_valid_after_utc.timestamp())),
        )
    return row


def _interface(ctx: OpsContext, tse_id: str, site: sites.SiteTSE | None) -> str:
    """How the TSE is reached. The two defaults are what assign-tse found then; the
    document says what is true now (a TSE served over the API since, or moved with
    tse move while not served there, keeps no stale "HTTP"/"embedded"); an interface
    the operator named stays as named."""
    named = site.interface_type if site else ""
    if named and named not in (sites.SERVED_INTERFACE, sites.EMBEDDED_INTERFACE):
        return named
    return sites.default_interface(ctx, tse_id)


def _unrecorded_clients(
    ctx: OpsContext, tse_ids: list[str], regs: list[sites.RegisterRow]
) -> list[dict[str, Any]]:
    """Every client a TSE registered that no register entry names: the register
    list a tax auditor reads must not depend on the operator having recorded each
    till, so the TSEs' own client lists complete it (model and versions unknown)."""
    recorded = {r.register_id for r in regs}  # moved to a new TSE: still recorded
    found: list[dict[str, Any]] = []
    for tse_id in tse_ids:
        for client in ctx.service.get(tse_id).state.clients.values():
            if client.client_id not in recorded:
                found.append(
                    {
                        "client_id": client.client_id,
                        "tse_id": tse_id,
                        "registered_at": client.registered_at or None,
                        "deregistered_at": client.deregistered_at,
                    }
                )
    return sorted(found, key=lambda c: (c["tse_id"], c["client_id"]))


def _usage(ctx: OpsContext, tses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each client registration of each TSE, from when to when: the register signed
    there until it was deregistered or the TSE went out of service. After a
    replacement or a move a Prüfer finds here which TSE signed which till's receipts."""
    rows: list[dict[str, Any]] = []
    for t in tses:
        for client in ctx.service.get(t["tse_id"]).state.clients.values():
            until, why = client.deregistered_at, "abgemeldet"
            taken_out = t["disabled_at"]
            if taken_out is not None and (until is None or taken_out < until):
                until, why = taken_out, "TSE außer Betrieb"
            rows.append(
                {
                    "client_id": client.client_id,
                    "tse_id": t["tse_id"],
                    "from": client.registered_at or None,
                    "until": until,
                    "why": why if until is not None else "",
                }
            )
    return sorted(rows, key=lambda r: (r["client_id"], r["from"] or 0, r["tse_id"]))


def _in_service(usage: list[dict[str, Any]]) -> dict[str, tuple[int | None, int | None]]:
    """A register is in service from its first registration at a TSE; out of service
    once no registration is open (the latest end), as §146a Abs. 4 AO reports it."""
    spans: dict[str, list[dict[str, Any]]] = {}
    for row in usage:
        spans.setdefault(row["client_id"], []).append(row)
    found: dict[str, tuple[int | None, int | None]] = {}
    for client_id, rows in spans.items():
        starts = [r["from"] for r in rows if r["from"] is not None]
        ends = [r["until"] for r in rows]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        found[client_id] = (min(starts) if starts else None, end)
    return found


def _system_logs(ctx: OpsContext, tse_ids: list[str]) -> dict[str, list[Any]]:
    """The stored unblockUser and deleteStoredData logs of each TSE (one pass)."""
    wanted = ("unblockUser", sysdata.OP_DELETE_STORED_DATA)
    flt = LogFilter(log_types=(LogType.SYSTEM,))
    return {
        tse_id: [log for log in ctx.service.logs(tse_id, flt) if log.operation in wanted]
        for tse_id in tse_ids
    }


def _credential_changes(
    ctx: OpsContext, tse_ids: list[str], system_logs: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """PIN/PUK changes from the protocol and the TSEs' own unblockUser logs."""
    found: list[dict[str, Any]] = []
    wanted = set(tse_ids)
    for e in protocol.entries(ctx.db, kinds=(protocol.PIN_CHANGED, protocol.PUK_CHANGED)):
        if e.tse_id in wanted:
            what = "PIN" if e.kind == protocol.PIN_CHANGED else "PUK"
            role = e.details.get("pin_role") or e.details.get("puk_role") or "admin"
            found.append({"at": e.at, "tse_id": e.tse_id, "what": f"{what} ({role})",
                          "source": f"Protokoll Nr. {e.seq}"})  # fmt: skip
    for tse_id in tse_ids:
        for log in system_logs.get(tse_id, ()):
            if log.operation == "unblockUser":
                found.append(
                    {
                        "at": log.log_time,
                        "tse_id": tse_id,
                        "what": _unblock_text(log.message),
                        "source": f"TSE-Log, Signaturzähler {log.signature_counter}",
                    }
                )
    return sorted(found, key=lambda c: (c["at"], c["tse_id"]))


def _covered_from_one(ranges: Iterable[tuple[int | None, int | None]]) -> int:
    """The highest N such that the archived exports' signature-counter ranges together
    hold every log 1..N (0: none). An archive export made after a deletion holds only
    what the TSE still had, so its last counter alone does not say the deleted logs
    are archived: the ranges must join up from 1."""
    covered = 0
    for first, last in sorted((f, t) for f, t in ranges if f is not None and t is not None):
        if first > covered + 1:
            break  # a hole: the logs in it are in no archived export
        covered = max(covered, last)
    return covered


def _where_kept(upto: int | None, archived_up_to: int) -> str:
    """Whether a verified archived export holds the deleted logs: the TSE deletes
    whatever a complete export covered, also one written with ``opentse export`` and
    never archived; then the document must not say they are in the archive."""
    if upto is not None and upto <= archived_up_to:
        return "sie sind nur noch in den archivierten Exporten (Abschnitt 8)"
    return (
        "KEIN geprüfter archivierter Export enthält sie alle (Abschnitt 8); sie sind nur"
        " in dem Export, nach dem sie gelöscht wurden (z. B. opentse export)"
    )


def _deletions(logs: list[Any], deleted_up_to: int, archived_up_to: int) -> str:
    """What deleteStoredData removed from the TSE (TR-03151: only logs already
    exported): a reader of sections 4 and 8 must know the TSE's older logs are in the
    exports only, and whether the archive holds them."""
    said: list[str] = []
    for log in logs:
        if log.operation != sysdata.OP_DELETE_STORED_DATA:
            continue
        upto: int | None = None
        try:
            certified = codec.decode_log_message(log.message).certified
            if isinstance(certified, SystemLogData):
                fields = sysdata.parse_system_operation_data(certified.system_operation_data)
                raw = sysdata.field(fields, 0x82)
                if raw is not None:
                    upto = int.from_bytes(raw, "big", signed=True)
        except (FormatError, ValueError):
            upto = None
        upto_text = f" bis Signaturzähler {upto}" if upto is not None else ""
        said.append(
            f"{_dt(log.log_time)}: gespeicherte Protokolle{upto_text} gelöscht"
            f" (deleteStoredData, Signaturzähler {log.signature_counter});"
            f" {_where_kept(upto, archived_up_to)}"
        )
    if not said and deleted_up_to > 0:  # its deleteStoredData log was deleted since
        said.append(
            f"gespeicherte Protokolle bis Signaturzähler {deleted_up_to} gelöscht"
            f" (deleteStoredData); {_where_kept(deleted_up_to, archived_up_to)}"
        )
    return "; ".join(said) or "keine"


def _unblock_text(message: bytes) -> str:
    """What an unblockUser log says: whose PIN, and whether the PUK was right (a wrong
    PUK is logged too, TR-03151, and changed nothing)."""
    try:
        certified = codec.decode_log_message(message).certified
        if not isinstance(certified, SystemLogData):
            raise ValueError("not a system log")
        fields = sysdata.parse_system_operation_data(certified.system_operation_data)
        user = (sysdata.field(fields, 0x81) or b"?").decode("ascii", "replace")
        raw = sysdata.field(fields, 0x82)
        result = sysdata.decode_enum(raw) if raw is not None else None
    except (FormatError, ValueError):
        return "unblockUser (Log nicht lesbar)"
    if result == sysdata.UNBLOCK_RESULTS["ok"]:
        return f"PIN gesetzt/entsperrt mit PUK (unblockUser, Benutzer {user})"
    names = {v: k for k, v in sysdata.UNBLOCK_RESULTS.items()}
    outcome = names.get(result, str(result)) if result is not None else "?"
    return f"Versuch ohne Änderung (unblockUser, Benutzer {user}, Ergebnis {outcome})"


def collect(
    ctx: OpsContext, org_id: str | None = None, journals: tuple[Path, ...] = ()
) -> ProcedureData:
    """Everything the document shows, read now from the installation."""
    org = sites.get_organization(ctx, org_id) if org_id else None
    orgs = [org] if org else sites.organizations(ctx)
    locs = [loc for o in orgs for loc in sites.locations(ctx, o.id)]
    loc_ids = {loc.id for loc in locs}
    names = {loc.id: f"{loc.name} ({loc.address})" for loc in locs}
    if org is None:
        tse_ids = [i.record.tse_id for i in ctx.service.list()]
    else:
        tse_ids = [t.tse_id for t in sites.site_tses(ctx) if t.location_id in loc_ids]
    regs = [r for r in sites.registers(ctx) if org is None or r.location_id in loc_ids]
    entries = [
        e for e in protocol.entries(ctx.db)
        if org is None or e.org_id == org.id or e.location_id in loc_ids or e.tse_id in tse_ids
    ]  # fmt: skip
    tses = [_tse_row(ctx, t, names) for t in tse_ids]
    system_logs = _system_logs(ctx, tse_ids)
    kept = [x for x in archive.exports(ctx) if x.tse_id in tse_ids]
    for t in tses:
        deleted_up_to = ctx.service.get(t["tse_id"]).state.deleted_up_to
        archived_up_to = _covered_from_one(
            (x.first_counter, x.last_counter)
            for x in kept
            if x.tse_id == t["tse_id"] and x.verified_ok
        )
        logs = system_logs.get(t["tse_id"], [])
        t["deleted"] = _deletions(logs, deleted_up_to, archived_up_to)
    usage = _usage(ctx, tses)
    interfaces = {t["interface_type"] for t in tses}
    return ProcedureData(
        generated=_dt(ctx.now()),
        notice=NOT_CERTIFIED_NOTICE,
        org=org,
        orgs=orgs,
        locations=locs,
        location_names=names,
        shares=[s for s in sites.shares(ctx) if s.tse_id in tse_ids],
        tses=tses,
        registers=regs,
        unrecorded_clients=_unrecorded_clients(ctx, tse_ids, regs),
        credential_changes=_credential_changes(ctx, tse_ids, system_logs),
        protocol=entries,
        outages=[
            o
            for o in outages.outages(ctx, journals)
            if org is None or not o.tse_id or o.tse_id in tse_ids
        ],
        exports=kept,
        reminder_days=archive.reminder_days(ctx),
        usage=usage,
        in_service=_in_service(usage),
        served=any(i != _INTERFACES[sites.EMBEDDED_INTERFACE] for i in interfaces),
        embedded=_INTERFACES[sites.EMBEDDED_INTERFACE] in interfaces,
    )


def render_markdown(data: ProcedureData) -> str:
    env = Environment(
        loader=PackageLoader("opentse.ops", "templates"),
        autoescape=False,  # Markdown, not HTML; table cells go through |md
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        dt=_dt,
        date=_date,
        md=_md,
        details=_details,
        kind=_kind,
        num=_num,
        outage_reason=_outage_reason,
        outage_receipts=_outage_receipts,
    )
    serials = {t["tse_id"]: t["serial"] for t in data.tses}
    return env.get_template("procedure.md.j2").render(**vars(data), tse_serials=serials)


def render_pdf(markdown: str, out: Path) -> Path:
    """Lay out the Markdown (headings, quotes, bullets, tables, paragraphs) as PDF."""
    from opentse.ops.pdf import markdown_to_pdf

    out.write_bytes(markdown_to_pdf(markdown))
    return out


def write(ctx: OpsContext, out: Path, org_id: str | None = None,
          journals: tuple[Path, ...] = ()) -> Path:  # fmt: skip
    """``OUT.md`` or ``OUT.pdf`` by suffix."""
    text = render_markdown(collect(ctx, org_id, journals))
    try:
        if out.suffix.lower() == ".pdf":
            return render_pdf(text, out)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:  # a folder that does not exist, no permission, a full disk
        raise StorageError(
            f"cannot write {out}: {exc.strerror or exc}", code="E_DOCS_OUTPUT"
        ) from None
    return out
