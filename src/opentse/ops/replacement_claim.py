"""One successor per TSE: a replacement claims its old TSE before its first step.

What an auditor reads as "TSE B replaced TSE A" is the protocol (``replace.started``
... ``replace.done`` naming the new TSE), the site record (``replaced_by``) and, for a
TSS served over the API, the new clients' metadata ``replaces_client``, which the
tills follow to their successor. Two replacements of one TSE run at once (two
admins, two nodes of one database) both passed the checks before either wrote its
``replace.started``: both created a new TSE, registered the registers there and
wrote ``replace.new_tse_ready`` for the same predecessor, and the site record and
the tills' lookup took whichever came last, without a word.

So the ``replace.started`` entry is the claim, written in a transaction that first
reads the old TSE's replacements again (``OpsDB.tx``: one ops writer at a time, on
SQLite and on PostgreSQL): the second claim is refused while another replacement of
the TSE has started and not finished (whatever its new TSE's state), or once one is
done. A claim already made through the API (a client at another TSS whose metadata
``replaces_client`` names a client of the old TSS) is refused too, naming it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from opentse.errors import ConflictError, OpenTSEError
from opentse.ops import protocol
from opentse.ops.store import OpsContext

_KINDS = (protocol.REPLACE_STARTED, protocol.REPLACE_DONE)


def _replacements(conn: Any, old_tse_id: str) -> list[tuple[int, str, str]]:
    """(seq, kind, new TSE) of the old TSE's replace.started / replace.done entries."""
    rows = conn.execute(
        "SELECT seq, kind, details FROM ops_protocol WHERE tse_id=? AND kind IN (?,?) ORDER BY seq",
        (old_tse_id, *_KINDS),
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(json.loads(r[2]).get("new_tse", ""))) for r in rows]


def pending(entries: list[tuple[int, str, str]]) -> tuple[int, str] | None:
    """The last started replacement without its ``replace.done``: (seq, new TSE)."""
    found: tuple[int, str] | None = None
    for seq, kind, new in entries:
        found = (seq, new) if kind == protocol.REPLACE_STARTED else None
    return found


def claim(
    ctx: OpsContext,
    old_tse_id: str,
    new_tse_id: str,
    *,
    may_supersede: Callable[[str], bool],
    in_progress: Callable[[str], OpenTSEError],
    started: dict[str, Any],
    resumed: dict[str, Any],
) -> tuple[int, bool]:
    """Write ``replace.started`` (or ``replace.resumed`` for the replacement by
    ``new_tse_id`` that stopped) after reading the old TSE's replacements again in
    the same transaction. Returns (seq of its ``replace.started``, resumed).
    ``may_supersede(new)``: an unfinished replacement by ``new`` can never be
    finished (so it does not hold the claim); ``in_progress(new)``: the error naming
    the unfinished replacement to finish instead."""
    try:
        with ctx.db.tx() as c:
            entries = _replacements(c, old_tse_id)
            open_ = pending(entries)
            if open_ is not None and open_[1] == new_tse_id:
                protocol.append(c, ctx.now(), protocol.REPLACE_RESUMED, **resumed)
                return open_[0], True
            if open_ is not None and not may_supersede(open_[1]):
                raise in_progress(open_[1])
            done = [new for _, kind, new in entries if kind == protocol.REPLACE_DONE]
            if done:
                raise ConflictError(
                    f"TSE {old_tse_id} was replaced by {done[-1]} already (opentse tse"
                    f" protocol {old_tse_id}): a TSE has one successor",
                    code="E_REPLACE_INACTIVE",
                )
            return protocol.append(c, ctx.now(), protocol.REPLACE_STARTED, **started), False
    except sqlite3.IntegrityError:  # another append took the same seq (not expected)
        raise ConflictError(
            f"another command wrote to the protocol at the same moment as this replacement"
            f" of TSE {old_tse_id} began (perhaps a replacement of it): see `opentse tse"
            f" protocol {old_tse_id}`, then run the command again",
            code="E_REPLACE_IN_PROGRESS",
        ) from None


def api_claims(ctx: OpsContext, old_tse_id: str, new_tse_id: str) -> list[tuple[str, str, str]]:
    """(TSS, client UUID, serial number) of clients at TSSs other than the old and the
    new one whose metadata ``replaces_client`` names a client of the old TSS."""
    rows = ctx.db.rows("SELECT client_id FROM svc_clients WHERE tss_id=?", (old_tse_id,))
    own = {str(r[0]) for r in rows}
    if not own:
        return []
    found: list[tuple[str, str, str]] = []
    for tss, client, serial, meta in ctx.db.rows(
        "SELECT tss_id, client_id, serial_number, metadata FROM svc_clients"
        " WHERE tss_id NOT IN (?,?) AND metadata LIKE ?",
        (old_tse_id, new_tse_id, '%"replaces_client"%'),
    ):
        try:
            names = json.loads(meta).get("replaces_client")
        except (ValueError, AttributeError):
            continue
        if str(names) in own:
            found.append((str(tss), str(client), str(serial)))
    return sorted(found)


def refuse_api_claims(ctx: OpsContext, old_tse_id: str, new_tse_id: str) -> None:
    """E_REPLACE_CLAIMED when a client elsewhere already claims to replace one of the
    old TSS's (the tills' lookup would have two successors to choose from)."""
    found = api_claims(ctx, old_tse_id, new_tse_id)
    if not found:
        return
    named = ", ".join(f"client {c} ({s}) at TSS {t}" for t, c, s in found)
    raise ConflictError(
        f"{named} already claims to replace a client of TSS {old_tse_id} (metadata"
        " replaces_client), which this replacement would claim too: the tills could not"
        " tell their successor. If that is no replacement of it, remove the key (PATCH"
        ' /api/v2/tss/{tss}/client/{client}/metadata with {"replaces_client": null}),'
        " then run the replacement again",
        code="E_REPLACE_CLAIMED",
    )
