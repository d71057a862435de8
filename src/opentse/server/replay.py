"""A revision sent again: the same request answers what was signed, another is a 409.

fiskaly SIGN DE v2, "Idempotent Requests": a request sent again *with the same request
body* is answered as if it had been sent once (a retry after a lost answer); its 4xx
text: retrying with the same body gives the same answer, a changed request needs a
change first. A revision already signed is no place for a changed body: answering
what was signed, as opentse did, told a register that sent other amounts, CANCELLED
instead of FINISHED or another till that its receipt was signed as sent. fiskaly's
contract names no code for it. Its ``E_PENDING_TX_CONFLICT`` (listed for
upsertTransaction's 409, never defined) reads as "a pending operation conflicts",
which client libraries retry as transient; a changed revision is permanent, so it is
409 ``E_TX_REVISION_CONFLICT``: a 409, which registers already treat as "do not send
this again", with a code no library retries.

Compared is what the revision's log holds, never the index row, so the answer is the
same after a crash that lost the row (it is rebuilt from the logs): state and client
from the log's ``extra``, processType and processData as signed, and the metadata
keys the body sends against the metadata logged with that revision. Only requests
for a revision that exists come here; signing a new revision costs nothing more.

``standard_v1.other`` is signed as its JSON text, members in the order the first
request sent them. That order carries no meaning (RFC 8259 section 4: an object is
an unordered collection), and a POS that rebuilds its body from a dict may send them
in another: such a retry is the same request, compared member by member (arrays keep
their order, ``true`` is no ``1``), and is answered with what was signed first.
"""

from __future__ import annotations

import json
from typing import Any

from opentse.engine.results import SignResult
from opentse.server.context import Call, parse_uuid
from opentse.server.problems import ApiError
from opentse.server.tx_index import CANCEL_PROCESS_DATA, CANCEL_PROCESS_TYPE, derive_raw, tx_ref


def refuse_changed(
    call: Call, tss_id: str, tx_id: str, revision: int, result: SignResult, extra: dict[str, Any]
) -> None:
    """409 ``E_TX_REVISION_CONFLICT`` when ``call.body`` is not the request that signed
    ``revision`` (``result``, ``extra``: its log); nothing when it is."""
    changed = _differences(call, tss_id, tx_id, revision, result, extra)
    if changed:
        raise ApiError(
            409,
            "E_TX_REVISION_CONFLICT",
            f"revision {revision} of transaction {tx_id} was already signed with another "
            f"request ({', '.join(changed)} differ); a retry must send it unchanged, a "
            "change needs the next revision (latest_revision + 1)",
        )


def _differences(
    call: Call, tss_id: str, tx_id: str, revision: int, result: SignResult, extra: dict[str, Any]
) -> list[str]:
    body = call.body
    changed = []
    if body["state"] != str(extra.get("state", "ACTIVE")):
        changed.append("state")
    if parse_uuid(body["client_id"], "client_id", "body") != str(extra.get("client", "")):
        changed.append("client_id")
    signed = _signed_content(call, tss_id, tx_id, revision, body)
    if signed is not None and not _same_content(
        signed, (result.process_type, result.process_data), _sends_other(body)
    ):
        changed.append("schema")
    # no metadata logged: the revision was signed with none (upsert logs it whenever
    # the transaction has any), so a value sent now is a change
    logged = extra.get("metadata")
    logged = logged if isinstance(logged, dict) else {}
    sent = body.get("metadata") or {}
    if any(
        (key in logged) if value is None else logged.get(key) != value
        for key, value in sent.items()
    ):
        changed.append("metadata")
    return changed


def _sends_other(body: dict[str, Any]) -> bool:
    """Whether the body's processData is JSON text opentse wrote (``standard_v1.other``);
    raw processData is signed byte for byte as the POS sent it."""
    schema = body.get("schema")
    std = schema.get("standard_v1") if isinstance(schema, dict) else None
    return isinstance(std, dict) and "receipt" not in std and "order" not in std


def _same_content(sent: tuple[str, bytes], signed: tuple[str, bytes], as_json: bool) -> bool:
    """``sent`` asks to sign what ``signed`` holds; for JSON text (``as_json``) the
    order of an object's members does not count."""
    if sent == signed:
        return True
    if not as_json or sent[0] != signed[0]:
        return False
    ours, theirs = _canonical(sent[1]), _canonical(signed[1])
    return ours is not None and ours == theirs


def _canonical(data: bytes) -> str | None:
    """JSON text with every object's members sorted, None when ``data`` is no JSON.
    Compared as text, not as Python values: ``True == 1`` and ``1 == 1.0`` there."""
    try:
        return json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return None


def _signed_content(
    call: Call, tss_id: str, tx_id: str, revision: int, body: dict[str, Any]
) -> tuple[str, bytes] | None:
    """(processType, processData) the body asks to sign, as upsert derives them; None
    where that cannot be told any more (a Finish without schema whose previous
    revision's log was deleted after an export)."""
    schema = body.get("schema")
    state = body["state"]
    if schema:
        ptype, data, _ = derive_raw(schema)
        if ptype or state == "ACTIVE":
            return ptype, data
        # a schema with an empty process type: upsert signs CANCELLED and FINISHED
        # as if none were sent (the aborted receipt; what the revision before signed)
    if state == "ACTIVE":
        return "", b""
    if state == "CANCELLED":
        return CANCEL_PROCESS_TYPE, CANCEL_PROCESS_DATA.encode()
    # FINISHED without a schema finishes with what the revision before signed
    before = (
        call.ctx.service.find_ref(tss_id, tx_ref(tx_id, revision - 1)) if revision > 1 else None
    )
    return None if before is None else (before.process_type, before.process_data)
