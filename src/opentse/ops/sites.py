"""Organization -> locations (physical addresses) -> TSEs -> registers.

The law wants one TSE per physical location (AEAO zu §146a, Nr. 1.6 / the BMF's
"Kassensicherungsverordnung" FAQ: a TSE serves the registers of one place of
business). A branch at the *same* address may use the main site's TSE only after
an explicit confirmation, which is recorded (Loco-Soft's multi-site rules). Giving
a register of one location another location's TSE is refused with
``E_SITE_CROSS_LOCATION``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from opentse.errors import ConflictError, NotFoundError, ProtocolError, StateError
from opentse.ops import protocol
from opentse.ops.store import DEFAULT_CAPACITY, OpsContext


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    tax_number: str
    svc_org_id: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    org_id: str
    name: str
    street: str
    postal_code: str
    city: str
    country: str
    address_key: str
    created_at: int

    @property
    def address(self) -> str:
        return f"{self.street}, {self.postal_code} {self.city}, {self.country}"


@dataclass(frozen=True, slots=True)
class SiteTSE:
    tse_id: str
    location_id: str
    capacity: int
    hardware_version: str
    software_version: str
    interface_type: str
    connection_url: str
    status: str
    replaced_by: str | None
    assigned_at: int


@dataclass(frozen=True, slots=True)
class Share:
    tse_id: str
    location_id: str
    confirmed_by: str
    confirmation: str
    confirmed_at: int


@dataclass(frozen=True, slots=True)
class RegisterRow:
    register_id: str
    location_id: str
    tse_id: str | None
    model: str
    hardware_version: str
    software_version: str
    created_at: int
    assigned_at: int | None


_ABBREV = ((r"strasse\b", "str"), (r"str\.", "str"), (r"\bstr\b", "str"))


def address_key(street: str, postal_code: str, city: str, country: str = "DE") -> str:
    """A comparison key for "the same physical address": case, accents, spacing,
    punctuation and the Straße/Str. spelling do not matter."""

    def norm(text: str) -> str:
        text = text.strip().lower().replace("ß", "ss")
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        for pattern, repl in _ABBREV:
            text = re.sub(pattern, repl, text)
        return re.sub(r"[^a-z0-9]", "", text)

    return "|".join(norm(p) for p in (street, postal_code, city, country or "DE"))


def _required(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(f"{what} is required", code="E_SITE_FIELD_REQUIRED")
    return value.strip()


# DSFinV-K location.csv (Stamm_Orte) takes a location as it is recorded here: the
# country as ISO 3166 alpha-3 (A3), the rest at most this long. Checked when it is
# recorded and again before a closing uses it: a closing, once made, keeps it, so a
# value that does not fit would leave that closing's export impossible for good.
_ALPHA3 = {
    "DE": "DEU", "AT": "AUT", "CH": "CHE", "LU": "LUX", "NL": "NLD", "BE": "BEL",
    "FR": "FRA", "DK": "DNK", "PL": "POL", "CZ": "CZE", "IT": "ITA", "ES": "ESP",
}  # fmt: skip
_LENGTHS = (("name", 60), ("street", 60), ("postal code", 10), ("city", 62))


def dsfinvk_country(country: str) -> str:
    """The ISO 3166 alpha-3 code of ``country`` (alpha-3 as given, or the alpha-2 code
    of Germany and its neighbours); E_SITE_COUNTRY for anything else."""
    code = country.strip().upper()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return code
    if code in _ALPHA3:
        return _ALPHA3[code]
    raise ProtocolError(
        f"country {country!r} is no ISO 3166 code DSFinV-K can take: give the three-letter"
        " code (DEU, AUT, GBR, ...; two letters only for DE and its neighbours)",
        code="E_SITE_COUNTRY",
    )


def check_dsfinvk_fields(name: str, street: str, postal_code: str, city: str) -> None:
    """E_SITE_FIELD_LENGTH when a field is longer than location.csv takes."""
    for (what, limit), value in zip(_LENGTHS, (name, street, postal_code, city), strict=True):
        if len(value) > limit:
            raise ProtocolError(
                f"the location's {what} has {len(value)} characters; DSFinV-K location.csv"
                f" takes at most {limit}",
                code="E_SITE_FIELD_LENGTH",
            )


# --- organizations and locations ---------------------------------------------------


def create_organization(
    ctx: OpsContext,
    name: str,
    *,
    tax_number: str = "",
    svc_org_id: str | None = None,
    actor: str = "",
    org_id: str | None = None,
) -> Organization:
    """A legal entity, once: a second organization of the same name (case and spacing
    aside) would split its locations, TSEs and procedure documentation between two ids
    no list tells apart, so it is refused with E_SITE_ORG_EXISTS naming the first;
    unless both have tax numbers and they differ (two entities of one name)."""
    org = Organization(
        org_id or str(uuid.uuid4()), _required(name, "name"), tax_number, svc_org_id, ctx.now()
    )
    with ctx.db.tx() as c:  # checked in the write transaction: no twin slips in between
        for existing_id, existing_name, existing_tax in c.execute(
            "SELECT id, name, tax_number FROM ops_organizations"
        ).fetchall():
            told_apart = bool(existing_tax and tax_number) and existing_tax != tax_number
            if _same_name(existing_name, org.name) and not told_apart:
                raise ConflictError(
                    f"organization {existing_name!r} exists already: {existing_id} (use that id)",
                    code="E_SITE_ORG_EXISTS",
                )
        c.execute(
            "INSERT INTO ops_organizations(id, name, tax_number, svc_org_id, created_at)"
            " VALUES (?,?,?,?,?)",
            (org.id, org.name, org.tax_number, org.svc_org_id, org.created_at),
        )
        protocol.append(
            c, org.created_at, protocol.ORG_CREATED, org_id=org.id, actor=actor,
            details={"name": org.name},
        )  # fmt: skip
    return org


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def get_organization(ctx: OpsContext, org_id: str) -> Organization:
    row = ctx.db.one(
        "SELECT id, name, tax_number, svc_org_id, created_at FROM ops_organizations WHERE id=?",
        (org_id,),
    )
    if row is None:
        raise NotFoundError(f"organization {org_id!r} not found", code="E_SITE_ORG_NOT_FOUND")
    return Organization(*row)


def organizations(ctx: OpsContext) -> list[Organization]:
    return [
        Organization(*r)
        for r in ctx.db.rows(
            "SELECT id, name, tax_number, svc_org_id, created_at FROM ops_organizations"
            " ORDER BY created_at, id"
        )
    ]


_LOC_COLS = "id, org_id, name, street, postal_code, city, country, address_key, created_at"


def create_location(
    ctx: OpsContext,
    org_id: str,
    name: str,
    *,
    street: str,
    postal_code: str,
    city: str,
    country: str = "DE",
    actor: str = "",
) -> Location:
    get_organization(ctx, org_id)
    country = country or "DE"
    dsfinvk_country(country)  # kept as given (the address key uses it), checked here
    loc = Location(
        str(uuid.uuid4()),
        org_id,
        _required(name, "name"),
        _required(street, "street"),
        _required(postal_code, "postal code"),
        _required(city, "city"),
        country,
        address_key(street, postal_code, city, country),
        ctx.now(),
    )
    check_dsfinvk_fields(loc.name, loc.street, loc.postal_code, loc.city)
    with ctx.db.tx() as c:  # checked in the write transaction, as for organizations
        for existing_id, existing_name in c.execute(
            "SELECT id, name FROM ops_locations WHERE org_id=? AND address_key=?",
            (org_id, loc.address_key),
        ).fetchall():
            # a set-up script run twice: a second id for the same shop would split its
            # TSEs and registers between two locations no list tells apart
            if _same_name(existing_name, loc.name):
                raise ConflictError(
                    f"location {existing_name!r} at {loc.address} exists already:"
                    f" {existing_id} (use that id)",
                    code="E_SITE_LOCATION_EXISTS",
                )
        c.execute(
            f"INSERT INTO ops_locations({_LOC_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                loc.id, loc.org_id, loc.name, loc.street, loc.postal_code, loc.city,
                loc.country, loc.address_key, loc.created_at,
            ),
        )  # fmt: skip
        protocol.append(
            c, loc.created_at, protocol.LOCATION_CREATED, org_id=org_id, location_id=loc.id,
            actor=actor, details={"name": loc.name, "address": loc.address},
        )  # fmt: skip
    return loc


def get_location(ctx: OpsContext, location_id: str) -> Location:
    row = ctx.db.one(f"SELECT {_LOC_COLS} FROM ops_locations WHERE id=?", (location_id,))
    if row is None:
        raise NotFoundError(f"location {location_id!r} not found", code="E_SITE_LOCATION_NOT_FOUND")
    return Location(*row)


def locations(ctx: OpsContext, org_id: str | None = None) -> list[Location]:
    sql = f"SELECT {_LOC_COLS} FROM ops_locations"
    args: tuple[str, ...] = ()
    if org_id is not None:
        sql += " WHERE org_id=?"
        args = (org_id,)
    return [Location(*r) for r in ctx.db.rows(sql + " ORDER BY created_at, id", args)]


# --- TSEs --------------------------------------------------------------------------

_TSE_COLS = (
    "tse_id, location_id, capacity, hardware_version, software_version, interface_type,"
    " connection_url, status, replaced_by, assigned_at"
)


SERVED_INTERFACE = "HTTP (fiskaly SIGN DE v2 API)"
EMBEDDED_INTERFACE = "embedded (opentse library / CLI on the same machine)"


def default_interface(ctx: OpsContext, tse_id: str) -> str:
    """How a TSE is reached when nobody said: over the API if it is served there,
    else embedded (the procedure documentation states it: say what is true)."""
    return SERVED_INTERFACE if ctx.svc.get_tss(tse_id) is not None else EMBEDDED_INTERFACE


def default_software_version() -> str:
    """The TSE software: this opentse (with the commit of a checkout)."""
    from opentse.version import version_text

    return version_text()


def assign_tse(
    ctx: OpsContext,
    tse_id: str,
    location_id: str,
    *,
    capacity: int = DEFAULT_CAPACITY,
    hardware_version: str = "",
    software_version: str = "",
    interface_type: str = "",
    connection_url: str = "",
    actor: str = "",
) -> SiteTSE:
    """Place an existing engine TSE at its (one) home location."""
    ctx.service.require(tse_id)
    info = ctx.service.get(tse_id)
    loc = get_location(ctx, location_id)
    if capacity < 1:
        raise ProtocolError("capacity must be at least 1 signature", code="E_SITE_CAPACITY")
    placed = find_tse(ctx, tse_id)
    if placed is not None:
        home = get_location(ctx, placed.location_id)
        raise ConflictError(
            f"TSE {tse_id!r} already belongs to location {home.name!r} ({home.id}, {home.address})",
            code="E_SITE_TSE_ASSIGNED",
        )
    software_version = software_version or default_software_version()
    interface_type = interface_type or default_interface(ctx, tse_id)
    row = SiteTSE(
        tse_id, location_id, capacity, hardware_version or "software TSE (no hardware)",
        software_version, interface_type, connection_url, "active", None, ctx.now(),
    )  # fmt: skip
    with ctx.db.tx() as c:
        c.execute(
            f"INSERT INTO ops_tses({_TSE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                row.tse_id, row.location_id, row.capacity, row.hardware_version,
                row.software_version, row.interface_type, row.connection_url, row.status,
                row.replaced_by, row.assigned_at,
            ),
        )  # fmt: skip
        protocol.append(
            c, row.assigned_at, protocol.TSE_ASSIGNED, org_id=loc.org_id,
            location_id=location_id, tse_id=tse_id, actor=actor,
            details={"capacity": capacity, "interface_type": row.interface_type,
                     "serial_number": info.record.serial_number.hex(),
                     "state": info.state.lifecycle.value,
                     "initialized_at": info.state.initialized_at},
        )  # fmt: skip
    return row


def find_tse(ctx: OpsContext, tse_id: str) -> SiteTSE | None:
    row = ctx.db.one(f"SELECT {_TSE_COLS} FROM ops_tses WHERE tse_id=?", (tse_id,))
    return SiteTSE(*row) if row else None


def get_tse(ctx: OpsContext, tse_id: str) -> SiteTSE:
    found = find_tse(ctx, tse_id)
    if found is None:
        ctx.service.require(tse_id)  # a mistyped id: E_TSS_NOT_FOUND, not 'unassigned'
        raise NotFoundError(
            f"TSE {tse_id!r} is not assigned to a location: place it first (opentse site"
            f" assign-tse {tse_id} LOCATION_ID)",
            code="E_SITE_TSE_UNASSIGNED",
        )
    return found


def site_tses(ctx: OpsContext, location_id: str | None = None) -> list[SiteTSE]:
    sql = f"SELECT {_TSE_COLS} FROM ops_tses"
    args: tuple[str, ...] = ()
    if location_id is not None:
        sql += " WHERE location_id=?"
        args = (location_id,)
    return [SiteTSE(*r) for r in ctx.db.rows(sql + " ORDER BY assigned_at, tse_id", args)]


def update_tse(ctx: OpsContext, tse_id: str, **fields: object) -> SiteTSE:
    """Change descriptive columns (connection_url, status, replaced_by ...)."""
    allowed = {
        "connection_url", "status", "replaced_by", "hardware_version", "software_version",
        "interface_type", "capacity",
    }  # fmt: skip
    bad = set(fields) - allowed
    if bad:
        raise ProtocolError(f"unknown TSE fields {sorted(bad)}", code="E_SITE_FIELD")
    get_tse(ctx, tse_id)
    if fields:
        sets = ", ".join(f"{k}=?" for k in fields)
        with ctx.db.tx() as c:
            c.execute(f"UPDATE ops_tses SET {sets} WHERE tse_id=?", (*fields.values(), tse_id))
    return get_tse(ctx, tse_id)


def share_tse(
    ctx: OpsContext,
    tse_id: str,
    location_id: str,
    *,
    confirmed_by: str,
    confirmation: str,
) -> Share:
    """Let a second location at the same address use ``tse_id``: only with a named
    person's explicit confirmation, which is stored and written to the protocol."""
    home = get_location(ctx, get_tse(ctx, tse_id).location_id)
    other = get_location(ctx, location_id)
    if other.id == home.id:
        raise ProtocolError("the TSE already belongs to this location", code="E_SITE_SHARE_SELF")
    if other.org_id != home.org_id:
        # a TSE records the transactions of one taxpayer (its exports, its procedure
        # documentation, the §146a Abs. 4 AO notice): a shop-in-shop of another
        # legal entity needs its own TSE, even at the same address
        raise StateError(
            f"location {other.name!r} belongs to another organization than the TSE's"
            f" location {home.name!r}: a TSE serves one organization (legal entity) only;"
            " give that location its own TSE",
            code="E_SITE_SHARE_OTHER_ORG",
        )
    if other.address_key != home.address_key:
        raise StateError(
            f"location {other.name!r} ({other.address}) is not at the TSE's address "
            f"({home.address}): one TSE per physical location",
            code="E_SITE_ADDRESS_MISMATCH",
        )
    for done in shares(ctx, tse_id):
        if done.location_id == location_id:  # one confirmation per TSE and location
            raise ConflictError(
                f"TSE {tse_id!r} is shared with location {other.name!r} already (confirmed"
                f" by {done.confirmed_by}); the recorded confirmation stands",
                code="E_SITE_SHARE_EXISTS",
            )
    share = Share(
        tse_id,
        location_id,
        _required(confirmed_by, "the confirming person"),
        _confirmation(confirmation),
        ctx.now(),
    )
    with ctx.db.tx() as c:
        c.execute(
            "INSERT INTO ops_tse_shares(tse_id, location_id, confirmed_by, confirmation,"
            " confirmed_at) VALUES (?,?,?,?,?)",
            (tse_id, location_id, share.confirmed_by, share.confirmation, share.confirmed_at),
        )
        protocol.append(
            c, share.confirmed_at, protocol.TSE_SHARED, org_id=other.org_id,
            location_id=location_id, tse_id=tse_id, actor=share.confirmed_by,
            details={"home_location": home.id, "confirmation": share.confirmation,
                     "address": home.address},
        )  # fmt: skip
    return share


def _confirmation(text: str) -> str:
    if not isinstance(text, str) or len(text.strip()) < 10:
        raise ProtocolError(
            "sharing a TSE needs an explicit written confirmation (at least 10 characters)",
            code="E_SITE_CONFIRMATION_REQUIRED",
        )
    return text.strip()


def shares(ctx: OpsContext, tse_id: str | None = None) -> list[Share]:
    sql = "SELECT tse_id, location_id, confirmed_by, confirmation, confirmed_at FROM ops_tse_shares"
    args: tuple[str, ...] = ()
    if tse_id is not None:
        sql += " WHERE tse_id=?"
        args = (tse_id,)
    return [Share(*r) for r in ctx.db.rows(sql + " ORDER BY confirmed_at", args)]


def may_serve(ctx: OpsContext, tse_id: str, location_id: str) -> bool:
    """True when ``tse_id`` belongs to ``location_id`` or is shared with it."""
    tse = get_tse(ctx, tse_id)
    if tse.location_id == location_id:
        return True
    return any(s.location_id == location_id for s in shares(ctx, tse_id))


# --- registers -----------------------------------------------------------------------

_REG_COLS = (
    "register_id, location_id, tse_id, model, hardware_version, software_version,"
    " created_at, assigned_at"
)


def add_register(
    ctx: OpsContext,
    register_id: str,
    location_id: str,
    *,
    model: str = "",
    hardware_version: str = "",
    software_version: str = "",
) -> RegisterRow:
    """A register (its client id / serial number as written into the TSE logs)."""
    from opentse.engine import rules

    rules.check_client_id(register_id)
    target = get_location(ctx, location_id)
    found = find_register(ctx, register_id)
    if found is not None:
        at = get_location(ctx, found.location_id)
        if at.org_id != target.org_id:  # move-register refuses that (another org's till)
            raise ConflictError(
                f"register {register_id!r} exists at a location of another organization; "
                "a register id is one till: give this till another id",
                code="E_SITE_REGISTER_EXISTS",
            )
        moved = (
            ""
            if found.location_id == location_id
            else f"; a till taken to another location: opentse site move-register"
            f" {register_id} {location_id}"
        )
        raise ConflictError(
            f"register {register_id!r} exists at location {at.name!r} ({at.id}){moved}",
            code="E_SITE_REGISTER_EXISTS",
        )
    row = RegisterRow(
        register_id, location_id, None, model, hardware_version, software_version, ctx.now(), None
    )
    with ctx.db.tx() as c:
        c.execute(
            f"INSERT INTO ops_registers({_REG_COLS}) VALUES (?,?,?,?,?,?,?,?)",
            (
                row.register_id, row.location_id, row.tse_id, row.model,
                row.hardware_version, row.software_version, row.created_at, row.assigned_at,
            ),
        )  # fmt: skip
    return row


def find_register(ctx: OpsContext, register_id: str) -> RegisterRow | None:
    row = ctx.db.one(f"SELECT {_REG_COLS} FROM ops_registers WHERE register_id=?", (register_id,))
    return RegisterRow(*row) if row else None


def get_register(ctx: OpsContext, register_id: str) -> RegisterRow:
    found = find_register(ctx, register_id)
    if found is None:
        raise NotFoundError(f"register {register_id!r} not found", code="E_SITE_REGISTER_NOT_FOUND")
    return found


def registers(
    ctx: OpsContext, *, location_id: str | None = None, tse_id: str | None = None
) -> list[RegisterRow]:
    where: list[str] = []
    args: list[str] = []
    if location_id is not None:
        where.append("location_id=?")
        args.append(location_id)
    if tse_id is not None:
        where.append("tse_id=?")
        args.append(tse_id)
    sql = f"SELECT {_REG_COLS} FROM ops_registers"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [RegisterRow(*r) for r in ctx.db.rows(sql + " ORDER BY created_at, register_id", args)]


def check_assignment(ctx: OpsContext, register_id: str, tse_id: str) -> RegisterRow:
    """Raise unless ``register_id`` may use ``tse_id`` (same location or confirmed share)."""
    reg = get_register(ctx, register_id)
    tse = get_tse(ctx, tse_id)
    if tse.status != "active":
        successor = f" by {tse.replaced_by}: assign it to that one" if tse.replaced_by else ""
        raise StateError(
            f"TSE {tse_id!r} is {tse.status}{successor}; registers are assigned to an active TSE",
            code="E_SITE_TSE_INACTIVE",
        )
    if not may_serve(ctx, tse_id, reg.location_id):
        home = get_location(ctx, tse.location_id)
        mine = get_location(ctx, reg.location_id)
        raise StateError(
            f"register {register_id!r} belongs to location {mine.name!r}, TSE {tse_id!r} to "
            f"location {home.name!r}: a register may only use its own location's TSE "
            "(or one shared with it after a recorded confirmation)",
            code="E_SITE_CROSS_LOCATION",
        )
    return reg


def assign_register(
    ctx: OpsContext, register_id: str, tse_id: str, *, actor: str = "", protocol_kind: str = ""
) -> RegisterRow:
    """Point a register at a TSE after ``check_assignment``; written to the protocol."""
    reg = check_assignment(ctx, register_id, tse_id)
    now = ctx.now()
    loc = get_location(ctx, reg.location_id)
    with ctx.db.tx() as c:
        c.execute(
            "UPDATE ops_registers SET tse_id=?, assigned_at=? WHERE register_id=?",
            (tse_id, now, register_id),
        )
        protocol.append(
            c, now, protocol_kind or protocol.REGISTER_ASSIGNED, org_id=loc.org_id,
            location_id=loc.id, tse_id=tse_id, register_id=register_id, actor=actor,
            details={"previous_tse": reg.tse_id or ""},
        )  # fmt: skip
    return get_register(ctx, register_id)


def previous_tse(ctx: OpsContext, register_id: str) -> str | None:
    """The TSE the register's last move took it from (``register.moved``), if any."""
    moved = protocol.entries(ctx.db, kinds=(protocol.REGISTER_MOVED,))
    mine = [e for e in moved if e.register_id == register_id]
    return str(mine[-1].details.get("previous_tse") or "") or None if mine else None


def move_register(
    ctx: OpsContext, register_id: str, location_id: str, *, tse_id: str | None = None,
    actor: str = "",
) -> RegisterRow:  # fmt: skip
    """A till taken to another location of the same organization: its record moves
    there and loses its TSE (the old location's TSE may not serve it any more), then
    is assigned to ``tse_id`` if given (checked before anything moves). Run again
    after it stopped between the two, it does the assignment."""
    reg = get_register(ctx, register_id)
    old = get_location(ctx, reg.location_id)
    new = get_location(ctx, location_id)
    if new.id == old.id:
        if tse_id is not None and reg.tse_id is None:
            # a move that stopped between its two steps (moved, not yet assigned: a
            # killed process) run again: it finishes with the assignment
            return assign_register(ctx, register_id, tse_id, actor=actor)
        assign = f" (to point it at a TSE: opentse site assign {register_id} TSE_ID)"
        raise ProtocolError(
            f"register {register_id!r} is at location {new.name!r} already{assign}",
            code="E_SITE_REGISTER_SAME_LOCATION",
        )
    if new.org_id != old.org_id:  # its books and the TSE logs belong to one taxpayer
        raise StateError(
            f"location {new.name!r} belongs to another organization than {old.name!r}:"
            " a register moves between the locations of its own organization only",
            code="E_SITE_REGISTER_OTHER_ORG",
        )
    if tse_id is not None:
        tse = get_tse(ctx, tse_id)
        if tse.status != "active" or not may_serve(ctx, tse_id, new.id):
            raise StateError(
                f"TSE {tse_id!r} is {tse.status} or not one of location {new.name!r}: give"
                " --tse an active TSE of the new location (or one shared with it)",
                code="E_SITE_CROSS_LOCATION",
            )
    now = ctx.now()
    with ctx.db.tx() as c:
        c.execute(
            "UPDATE ops_registers SET location_id=?, tse_id=NULL, assigned_at=NULL"
            " WHERE register_id=?",
            (new.id, register_id),
        )
        protocol.append(
            c, now, protocol.REGISTER_MOVED, org_id=new.org_id, location_id=new.id,
            tse_id=reg.tse_id or "", register_id=register_id, actor=actor,
            details={"from_location": old.id, "from_address": old.address,
                     "to_address": new.address, "previous_tse": reg.tse_id or ""},
        )  # fmt: skip
    if tse_id is not None:
        return assign_register(ctx, register_id, tse_id, actor=actor)
    return get_register(ctx, register_id)
