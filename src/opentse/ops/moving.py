"""Moving a TSE to a new host (Loco-Soft's steps for a LAN TSE that changes machine).

1. The data folder is copied to the new host and ``opentse serve`` started there.
2. ``move_tse`` rotates the organization's API credentials: a new key/secret is
   created and every old key of that organization is disabled in the same database
   transaction, so a copy of the data left on the old host (or a register still
   configured with the old secret) can no longer log in.
3. The registers' new connection data (URL, port, path, key, secret, TLS
   fingerprint) is written to ``TSE-Connection-<tse>.txt`` (0600) and returned once;
   an existing ``LAN-TSE-Session.txt`` is rewritten with the new credentials.
4. ``connection_test`` runs what ``opentse lan test`` runs against the new URL and
   writes the result to the protocol; only a passing test completes the move. The
   same move run again before it completed (the test failed: no server there yet)
   tests with the key and secret it made instead of rotating once more.

Access tokens issued with a disabled key stop working within the server's
``KEY_RECHECK_SECONDS`` (it re-reads the key's ``disabled`` flag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentse.crypto.private_file import write_private_file
from opentse.errors import ProtocolError, StateError
from opentse.ops import protocol, sites
from opentse.ops.store import OpsContext


@dataclass(frozen=True, slots=True)
class ConnectionData:
    """What a register needs to reach the TSE at its new place."""

    tse_id: str
    url: str  # base URL including the path, e.g. https://192.168.1.20:4433/api/v2
    host: str
    port: int
    path: str
    api_key: str
    api_secret: str  # shown once, never stored in clear
    organization_id: str
    tls_fingerprint: str | None
    registers: tuple[str, ...]
    file: str
    #: the organization's other TSEs -> their registers: its old keys stop working for
    #: them too, so these registers need the new key and secret as well
    also_affected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: a move that had not finished, run again: the key and secret it made carry on
    resumed: bool = False
    #: the TSE whose move made the key and secret used ("" for a key made now): the
    #: organization's key made for this URL by the move of another of its TSEs (or
    #: this one's, not finished) is taken over instead of rotating once more
    key_of: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tse_id": self.tse_id,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "path": self.path,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "organization_id": self.organization_id,
            "tls_fingerprint": self.tls_fingerprint,
            "registers": list(self.registers),
            "file": self.file,
            "also_affected": {t: list(r) for t, r in self.also_affected.items()},
            "resumed": self.resumed,
            "key_of": self.key_of or None,
        }


def organization_of(ctx: OpsContext, tse_id: str, org_id: str | None = None) -> str:
    """The service organization whose keys reach ``tse_id``."""
    row = ctx.svc.get_tss(tse_id)
    if row is not None:
        if org_id is not None and org_id != row.organization_id:
            raise ProtocolError(
                "the TSE belongs to another organization", code="E_MOVE_ORG_MISMATCH"
            )
        return row.organization_id
    if org_id is None:
        raise StateError(
            f"TSE {tse_id!r} is not served over the API; name the organization (--org)",
            code="E_MOVE_NO_ORGANIZATION",
        )
    return org_id


def rotate_api_keys(
    ctx: OpsContext, org_id: str, *, tse_id: str = "", actor: str = ""
) -> tuple[str, str]:
    """Create a new key for ``org_id`` and disable all its old ones, atomically.

    Returns ``(api_key, api_secret)``; the secret exists only in the return value and
    as a slow hash.
    """
    from opentse.crypto.secrets import hash_secret
    from opentse.server.auth import new_api_credentials

    old = ctx.db.rows(
        "SELECT api_key, env FROM svc_api_keys WHERE organization_id=? AND disabled=0"
        " ORDER BY created_at",
        (org_id,),
    )
    env_row = ctx.db.one("SELECT env FROM svc_organizations WHERE id=?", (org_id,))
    if env_row is None:
        raise StateError(f"organization {org_id!r} not found", code="E_MOVE_NO_ORGANIZATION")
    api_key, api_secret = new_api_credentials()
    hashed = hash_secret(api_secret)  # slow: outside the transaction
    now = ctx.now()
    with ctx.db.tx() as c:
        c.execute(
            "INSERT INTO svc_api_keys(api_key, secret_hash, organization_id, env, created_at)"
            " VALUES (?,?,?,?,?)",
            (api_key, hashed, org_id, env_row[0], now),
        )
        for key, _env in old:
            c.execute("UPDATE svc_api_keys SET disabled=1 WHERE api_key=?", (key,))
        protocol.append(
            c, now, protocol.API_KEY_ROTATED, tse_id=tse_id, actor=actor,
            details={"organization_id": org_id, "api_key_new": api_key,
                     "api_key_old": [k for k, _ in old]},
        )  # fmt: skip
    return api_key, api_secret


def build_url(host: str, port: int, path: str = "/api/v2", tls: bool = False) -> str:
    """The service URL the tills are given. Refused, not cleaned: white space or a
    control character (a line end would add lines to the connection file, and a
    trailing space made a rerun's URL differ from the one it wrote)."""
    if not host or any(ch in host for ch in "/ ?#@") or not host.isprintable():
        raise ProtocolError(f"not a host name or address: {host!r}", code="E_MOVE_HOST")
    if not (0 < port < 65536):
        raise ProtocolError(f"port out of range: {port}", code="E_MOVE_PORT")
    if not path.isprintable() or any(ch.isspace() for ch in path) or any(c in path for c in "?#"):
        raise ProtocolError(
            f"not a URL path: {path!r} (no white space, control characters, '?' or '#')",
            code="E_MOVE_PATH",
        )
    shown = f"[{host}]" if ":" in host else host
    path = "/" + path.strip("/") if path.strip("/") else ""
    return f"{'https' if tls else 'http'}://{shown}:{port}{path}"


def _write_private(path: Path, text: str) -> None:
    write_private_file(path, text)  # 0600 also over an older, wider file


def move_tse(
    ctx: OpsContext,
    tse_id: str,
    *,
    host: str,
    port: int,
    path: str = "/api/v2",
    tls: bool = False,
    tls_fingerprint: str | None = None,
    org_id: str | None = None,
    actor: str = "",
) -> ConnectionData:
    """Steps 2 and 3 above; run ``connection_test`` afterwards (step 4)."""
    ctx.service.require(tse_id)
    lifecycle = ctx.service.get(tse_id).state.lifecycle.value
    if lifecycle in ("DISABLED", "DEFECTIVE"):  # no register signs there any more
        site = sites.find_tse(ctx, tse_id)
        successor = f" (replaced by {site.replaced_by})" if site and site.replaced_by else ""
        raise StateError(
            f"TSE {tse_id} is {lifecycle}{successor}: no register uses it, and a move would "
            "disable its organization's API keys for nothing; move the TSE that serves "
            "the registers",
            code="E_MOVE_INACTIVE",
        )
    url = build_url(host, port, path, tls)
    org = organization_of(ctx, tse_id, org_id)
    if tls and not tls_fingerprint:
        tls_fingerprint = own_fingerprint(ctx.data_dir)
    file = connection_file(ctx, tse_id)
    made = unfinished_move(ctx, tse_id, url, org, file)
    key_of = tse_id if made is not None else ""
    if made is None and not _done_here(ctx, tse_id, url):  # a rerun after done rotates
        shared = organization_move_key(ctx, tse_id, url, org)
        if shared is not None:
            made, key_of = (shared[0], shared[1]), shared[2]
    resumed = key_of == tse_id
    if made is not None and resumed:  # the same move again: its key and secret carry on
        api_key, api_secret = made
        protocol.record(
            ctx.db, ctx.now(), protocol.MOVE_RESUMED, tse_id=tse_id, actor=actor,
            details={"new_url": url, "organization_id": org, "api_key": api_key},
        )  # fmt: skip
    elif made is not None:  # the organization's key another TSE's move made for this URL
        api_key, api_secret = made
        protocol.record(
            ctx.db, ctx.now(), protocol.MOVE_STARTED, tse_id=tse_id, actor=actor,
            details={"new_url": url, "organization_id": org, "api_key": api_key,
                     "key_of_move": key_of},
        )  # fmt: skip
    else:
        protocol.record(
            ctx.db, ctx.now(), protocol.MOVE_STARTED, tse_id=tse_id, actor=actor,
            details={"new_url": url, "organization_id": org},
        )  # fmt: skip
        api_key, api_secret = rotate_api_keys(ctx, org, tse_id=tse_id, actor=actor)
    regs = _registers_of(ctx, tse_id)
    also = {
        t: _registers_of(ctx, t)
        for t in ctx.svc.list_tss_ids(org)
        if t != tse_id and ctx.service.get(t).state.lifecycle.value not in ("DISABLED", "DEFECTIVE")
    }
    if sites.find_tse(ctx, tse_id) is not None:
        sites.update_tse(ctx, tse_id, connection_url=url)
    lines = [
        "opentse TSE connection data (not BSI-certified): enter in every register below",
        f"TSE:                 {tse_id}",
        f"URL:                 {url}",
        f"Host:                {host}",
        f"Port:                {port}",
        f"Path:                {path}",
        f"API key:             {api_key}",
        f"API secret:          {api_secret}",
        f"Organization:        {org}",
        f"TLS SHA-256:         {(tls_fingerprint or '') if tls else '(no TLS)'}",
        f"Registers:           {', '.join(regs) or '(none)'}",
        *(
            [
                "Also for the registers of the organization's other TSEs (its old keys"
                " are disabled):",
                *(f"  TSE {t}: {', '.join(r) or '(no registers)'}" for t, r in also.items()),
            ]
            if also
            else []
        ),
        "",
        f"Test: opentse lan test --url {url} --api-key {api_key} --api-secret ..."
        + (f" --fingerprint {tls_fingerprint}" if tls and tls_fingerprint else ""),
        "",
    ]
    _write_private(file, "\n".join(lines))
    session = ctx.data_dir / "LAN-TSE-Session.txt"
    if session.exists():
        from opentse.server.lan import write_session_file

        write_session_file(
            ctx.data_dir, address=host, port=port, api_key=api_key, api_secret=api_secret,
            fingerprint=tls_fingerprint or "", tls=tls,
        )  # fmt: skip
    protocol.record(
        ctx.db, ctx.now(), protocol.CONNECTION_DATA, tse_id=tse_id, actor=actor,
        details={"url": url, "registers": list(regs), "api_key": api_key,
                 "tls_fingerprint": tls_fingerprint or ""},
    )  # fmt: skip
    return ConnectionData(
        tse_id, url, host, port, path, api_key, api_secret, org, tls_fingerprint, regs,
        str(file), also, resumed=resumed, key_of=key_of,
    )  # fmt: skip


def own_fingerprint(data_dir: Path) -> str | None:
    """The SHA-256 fingerprint of this data folder's LAN certificate (the one ``serve
    --lan`` serves and prints), None without one. The folder moved with it, so the new
    host serves the same certificate: the tills pin this fingerprint, and without it
    the connection test refused the self-signed certificate (CERTIFICATE_VERIFY_FAILED)
    and the connection file told the tills no fingerprint."""
    from opentse.server.lan import CERT_FILE, file_fingerprint

    try:
        return file_fingerprint(data_dir / CERT_FILE)
    except (OSError, ValueError):
        return None


def connection_file(ctx: OpsContext, tse_id: str) -> Path:
    """Where the move of ``tse_id`` writes the registers' connection data."""
    return ctx.data_dir / f"TSE-Connection-{tse_id}.txt"


def _last_move(ctx: OpsContext, tse_id: str) -> protocol.Entry | None:
    """The last ``move.started`` or ``move.done`` of ``tse_id``."""
    found = protocol.entries(ctx.db, tse_id=tse_id, kinds=(protocol.MOVE_STARTED,
                                                           protocol.MOVE_DONE))  # fmt: skip
    return found[-1] if found else None


def _done_here(ctx: OpsContext, tse_id: str, url: str) -> bool:
    """The last move of ``tse_id`` went to ``url`` and its connection test passed."""
    last = _last_move(ctx, tse_id)
    return last is not None and last.kind == protocol.MOVE_DONE and last.details.get("url") == url


def unfinished_move(
    ctx: OpsContext, tse_id: str, url: str, org_id: str, file: Path
) -> tuple[str, str] | None:
    """The key and secret a move of ``tse_id`` to ``url`` made and did not finish
    (no ``move.done`` after its ``move.started``, e.g. the connection test failed
    because ``opentse serve`` was not running there yet), read back from its
    connection file while that key is still the organization's and enabled. Run
    again, the move tests with them instead of rotating once more: the secret the
    first run printed (and the registers may have been given) keeps working."""
    last = _last_move(ctx, tse_id)
    if last is None or last.kind != protocol.MOVE_STARTED or last.details.get("new_url") != url:
        return None
    return _key_in_file(ctx, file, url, org_id)


def organization_move_key(
    ctx: OpsContext, tse_id: str, url: str, org_id: str
) -> tuple[str, str, str] | None:
    """(key, secret, TSE) of the organization's key that the move of another of its
    TSEs to ``url`` made, read back from that TSE's connection file while the key is
    enabled; the newest such move first. Keys belong to the organization: a second
    TSE moved to the same host rotated again and disabled the key the first move had
    just given its registers, and each rerun of either move rotated the other's."""
    seen = {tse_id}
    for e in reversed(protocol.entries(ctx.db, kinds=(protocol.MOVE_STARTED,))):
        if e.tse_id in seen or e.details.get("organization_id") != org_id:
            continue
        seen.add(e.tse_id)
        if e.details.get("new_url") != url:
            continue
        found = _key_in_file(ctx, connection_file(ctx, e.tse_id), url, org_id)
        if found is not None:
            return (*found, e.tse_id)
    return None


def _key_in_file(ctx: OpsContext, file: Path, url: str, org_id: str) -> tuple[str, str] | None:
    """Key and secret of a connection file for ``url``, while that key is an enabled
    key of ``org_id`` and the secret is its own."""
    from opentse.crypto.secrets import verify_secret

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    fields = dict(
        (name.strip(), value.strip())
        for name, sep, value in (line.partition(":") for line in text.splitlines())
        if sep
    )
    key, secret = fields.get("API key", ""), fields.get("API secret", "")
    if not key or not secret or fields.get("URL") != url:
        return None
    row = ctx.db.one(
        "SELECT secret_hash FROM svc_api_keys WHERE api_key=? AND organization_id=? AND disabled=0",
        (key, org_id),
    )
    if row is None or not verify_secret(secret, str(row[0])):
        return None
    return key, secret


def _registers_of(ctx: OpsContext, tse_id: str) -> tuple[str, ...]:
    """The registers recorded at ``tse_id``, else (no site model) its registered clients."""
    regs = tuple(r.register_id for r in sites.registers(ctx, tse_id=tse_id))
    if not regs:
        state = ctx.service.get(tse_id).state
        regs = tuple(sorted(c.client_id for c in state.clients.values() if c.registered))
    return regs


def move_out(ctx: OpsContext, *, to: str, actor: str = "") -> Path:
    """Retire this data folder after it was copied to another host: recorded, then
    ``MOVED-AWAY.txt`` written, after which the installation refuses to open
    (E_DATA_MOVED), so a restarted service here cannot sign as the same TSEs as the
    copy. Deleting the file undoes it."""
    from datetime import UTC, datetime

    from opentse.installation import MOVED_FILE

    to = to.strip()
    if not to:
        raise ProtocolError("name the new host (--to)", code="E_MOVE_HOST")
    tses = [i.record.tse_id for i in ctx.service.list()]
    protocol.record(
        ctx.db, ctx.now(), protocol.MOVED_OUT, actor=actor, details={"to": to, "tses": tses}
    )
    when = datetime.fromtimestamp(ctx.now(), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    path = (ctx.data_dir / MOVED_FILE).absolute()
    path.write_text(
        f"This opentse data folder was moved to {to} on {when} (TSEs: {', '.join(tses)}).\n"
        "opentse refuses to use it (E_DATA_MOVED): the copy there signs for these TSEs.\n"
        "Delete this file only if this folder is that copy or the move was undone.\n",
        encoding="utf-8",
    )
    return path


def connection_test(
    ctx: OpsContext,
    data: ConnectionData,
    *,
    insecure: bool = False,
    actor: str = "",
) -> dict[str, Any]:
    """``opentse lan test`` against the new place; the result goes to the protocol and
    a passing test that sees the TSE completes the move."""
    from opentse.server.lan import connection_test as lan_test

    try:
        result = lan_test(
            data.url, data.api_key, data.api_secret, insecure=insecure,
            fingerprint=data.tls_fingerprint if data.url.startswith("https") else None,
        )  # fmt: skip
    except Exception as exc:  # refused, TLS failure ...: a failed test, recorded
        result = {"ok": False, "step": "connect", "error": f"{type(exc).__name__}: {exc}"}
    seen = [t.get("id") for t in result.get("tss", [])] if result.get("ok") else []
    served = ctx.svc.get_tss(data.tse_id) is not None
    if result.get("ok") and served and data.tse_id not in seen:
        result = {**result, "ok": False, "step": "tss", "error": "the TSE is not listed"}
    details = {k: result[k] for k in ("ok", "step", "error", "round_trip_ms") if k in result}
    protocol.record(
        ctx.db, ctx.now(), protocol.CONNECTION_TEST, tse_id=data.tse_id, actor=actor,
        details={**details, "url": data.url},
    )  # fmt: skip
    if result.get("ok"):
        protocol.record(
            ctx.db, ctx.now(), protocol.MOVE_DONE, tse_id=data.tse_id, actor=actor,
            details={"url": data.url},
        )  # fmt: skip
    return result
