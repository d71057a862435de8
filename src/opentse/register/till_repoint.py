"""Point a till set up by ``opentse pos setup`` at the TSS that replaced its own.

``opentse tse replace`` of a TSS served over the API (docs/operations.md, step 3)
gives every register a client at the new TSS with a new UUID, whose metadata names
the client it replaces (``replaces_client``). The till file still names the old TSS
and client, and every sale was "TSE ausgefallen: E_TSS_DISABLED". :func:`find_successor`
asks the service (with the till's own API key) which registered client replaces the
till's, following a chain of replacements, and never picks one by guessing: the same
serial number at another TSS without that record is not taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentse.errors import ProtocolError
from opentse.register.backends import OUT_OF_SERVICE, SuccessorAmbiguous
from opentse.register.till_setup import _Api


@dataclass(frozen=True, slots=True)
class Successor:
    """Where the till signs from now on (``tss``, ``client``), and whether that is
    another TSS than the till file names (``changed``)."""

    tss: str
    client: str
    serial_number: str
    old_state: str
    changed: bool


def last_replacement(own: dict[str, Any], clients: list[dict[str, Any]]) -> dict[str, Any]:
    """The client resource that replaces ``own`` (a client of fiskaly's API), following
    the ``replaces_client`` metadata that tse replace writes through ``clients`` (the
    clients of own's serial number) to the last; ``own`` when none replaces it.
    :class:`SuccessorAmbiguous` when two clients claim to replace the same client of
    the chain: taking either would be a guess, and a till that follows the wrong one
    signs at the wrong TSE."""
    serial = own.get("serial_number")
    replacing: dict[str, list[dict[str, Any]]] = {}
    for c in clients:
        meta = c.get("metadata")
        if not isinstance(meta, dict) or c.get("serial_number") != serial:
            continue
        named = meta.get("replaces_client")
        if named is not None and str(named) != str(c.get("_id")):
            replacing.setdefault(str(named), []).append(c)
    current, seen = own, {str(own.get("_id"))}
    while str(current.get("_id")) in replacing:  # a TSS replaced twice: the last one
        claims = {str(c.get("_id")): c for c in replacing[str(current.get("_id"))]}
        if len(claims) > 1:
            found = sorted(
                (str(c.get("tss_id")), key, str(c.get("state"))) for key, c in claims.items()
            )
            raise SuccessorAmbiguous(str(current.get("_id")), str(serial), found)
        current = next(iter(claims.values()))
        if str(current.get("_id")) in seen:
            break
        seen.add(str(current.get("_id")))
    return current


def find_successor(
    url: str,
    api_key: str,
    api_secret: str,
    tss: str,
    client: str,
    *,
    fingerprint: str | None = None,
    timeout: float = 10.0,
) -> Successor:
    """The TSS and client that replace ``tss``/``client``; unchanged (``changed``
    False) while ``tss`` is in service. ``E_POS_REPOINT`` when the TSS or client is
    unknown or out of service with no recorded successor."""
    api = _Api(url, api_key, api_secret, fingerprint, timeout)
    try:
        status, body = api.call("GET", f"/tss/{tss}")
        if status == 404:
            raise ProtocolError(
                f"the service has no TSS {tss} for this API key: check the till file",
                code="E_POS_REPOINT",
            )
        state = str(body.get("state", ""))
        status, own = api.call("GET", f"/tss/{tss}/client/{client}")
        if status == 404:
            raise ProtocolError(
                f"TSS {tss} has no client {client}: check the till file", code="E_POS_REPOINT"
            )
        serial = str(own.get("serial_number", ""))
        if state not in OUT_OF_SERVICE:
            return Successor(tss, client, serial, state, changed=False)
        current = last_replacement(own, api.pages("/client", serial_number=serial))
        new_tss, new_client = str(current.get("tss_id")), str(current.get("_id"))
        if new_client == client:
            raise ProtocolError(
                f"TSS {tss} is {state} and no TSS of this API key has a client replacing "
                f"{client} ({serial}): replace it on the server first (opentse tse replace, "
                "docs/operations.md), or set the till up anew (opentse pos setup)",
                code="E_POS_REPOINT",
            )
        _, new_body = api.call("GET", f"/tss/{new_tss}")
        if current.get("state") != "REGISTERED" or new_body.get("state") in OUT_OF_SERVICE:
            raise ProtocolError(
                f"TSS {tss} was replaced by {new_tss}, but client {new_client} there is "
                f"{current.get('state')} and the TSS {new_body.get('state')}: finish the "
                "replacement on the server (run opentse tse replace again)",
                code="E_POS_REPOINT",
            )
        return Successor(new_tss, new_client, serial, state, changed=True)
    finally:
        api.close()
