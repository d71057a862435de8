"""Our OpenAPI 3.0 document, built from the route table (served at /api/v2/openapi.json).

The operationIds, paths, field names and error shapes are fiskaly SIGN DE v2's (the
interface POS systems already speak); the text is ours. Path parameters that fiskaly
types as UUIDs are UUIDs here too; ``tx_id_or_number`` is a UUID or an integer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from opentse.server.context import API_VERSION, Operation
from opentse.server.schemas import COMPONENTS, SHOW_DELETED, ref

_PARAM = re.compile(r"{([a-z_]+)}")

# What we do differently from fiskaly's v2.1.35 contract on purpose (published in the
# document's info and in docs/api.md; tests/server/test_fiskaly_contract.py holds the
# contract and names each of these)
FISKALY_DIFFERENCES: tuple[str, ...] = (
    "`bsi_certification_id` is never returned: opentse is not BSI-certified.",
    "`signature_algorithm` and `signature.algorithm` are `ecdsa-plain-SHA384` for a TSE "
    "on a 384-bit curve, and `signature_timestamp_format` and `log.timestamp_format` "
    "are the TSE's configured format; fiskaly knows only `ecdsa-plain-SHA256` and "
    "`unixTime` (our defaults).",
    "`signature.counter` is always a string, as fiskaly's schema says (its middleware "
    "sometimes sends a number).",
    "`schema.dsfinvtw_v1` (taximeters, DSFinV-TW) is not supported: 400.",
    "A request body nested deeper than 64 levels (objects and arrays, the body itself "
    "is one; free content such as `standard_v1.other`) answers 400 "
    "`E_FAILED_SCHEMA_VALIDATION` naming where, and nothing is signed.",
    "Client `serial_number` refuses `/` as well as `_` (DSFinV-K 2.3, which fiskaly's "
    "text demands but its pattern lets through).",
    "`raw.process_type` is at most 100 printable ASCII characters (TR-03151 processType); "
    "`raw.process_data` must be padded standard base64.",
    "Amounts, prices and quantities are at most 30 characters, admin PIN and PUK at most "
    "100, API key and secret at most 200.",
    "upsertTransaction without `tx_revision` answers 400 `E_TX_UPSERT` (fiskaly's text: "
    "the query string must include it; its schema marks it optional): it is never taken "
    "as the next revision, which made a retried PUT sign again.",
    "Exports: `time_expiration` and `estimated_time_of_completion` are never set (files "
    "are kept until deleted); triggerExport answers 409 "
    "`E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT` for a TSS that is not INITIALIZED, "
    "DISABLED or DEFECTIVE, never 423 (a DEFECTIVE TSS exports its data without an "
    "exportData log: it cannot sign).",
    "An id another organization already uses answers 404 (not found) on createTss, "
    "createClient and triggerExport, never 409 or `E_DUPLICATE_EXPORT`: an answer "
    "must not confirm that somebody else holds the id.",
    "No TSS is ever DELETED or EVICTED: `show_deleted` is accepted and changes nothing, "
    "cancelExport never answers 423, and logoutAdmin answers 200 on a DEFECTIVE TSS "
    "(there is nothing to log out of).",
    # where fiskaly's documentation is silent: what opentse chose (a POS vendor's view)
    "Every answer carries the `request-id` header fiskaly documents: the value the "
    "register sent in a `request-id` header (1-128 visible ASCII characters), else one "
    "the server made; the server's error log names it. Error bodies keep fiskaly's four "
    "fields.",
    "A POS whose till runs in a browser page (Odoo's German point of sale calls the API "
    "from the page, as fiskaly allows) may call `/api/` from any origin (CORS): a "
    "preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) answers "
    "204, and every answer to a request with `Origin` carries "
    "`Access-Control-Allow-Origin: *` and exposes `request-id` and `Retry-After`. No "
    "credentials are allowed (the API takes bearer tokens only, no cookie); the "
    "dashboard stays same-origin. A page loaded over https reaches the server only over "
    "TLS the browser trusts (`serve --lan` with its certificate installed on the till), "
    "and a page from the internet that calls a server on the LAN needs the browser's "
    "permission for local network access.",
    "Where fiskaly's text is silent, a metadata value sent as `null` removes that key "
    "(fiskaly's own Postman collection sends null; a value is a string, so null cannot "
    'be kept) and `""` is kept as an empty string. A number or boolean value is kept as '
    'its text (`123` as `"123"`, `true` as `"true"`), as fiskaly keeps it (fiskaltrust\'s '
    "Middleware stores a number there after each export); a list or object is refused.",
    "A revision already signed answers what was signed for it when the same request is "
    "sent again (a retry after a lost answer signs nothing again), a lower revision with "
    "`latest_revision` the newest; sent with another request (its `state`, `client_id`, "
    "`schema` or a `metadata` value differ) it answers 409 `E_TX_REVISION_CONFLICT` "
    "(fiskaly's text promises the stored answer for the same request body only and names "
    "no code for another; its `E_PENDING_TX_CONFLICT` reads as a transient conflict that "
    "client libraries retry, and a changed revision never succeeds): a change needs the "
    "next revision. The members of a JSON object (`standard_v1.other`, signed as its JSON "
    "text) may come in another order in the retry: that order means nothing, the retry "
    "is the same request and answers the text signed first (arrays keep their order).",
    "A revision may name another registered client than the one that started the "
    "transaction (a table moved to another till): its log and `qr_code_data` name that "
    "client, and the transaction is listed under the client of its latest revision, as "
    "fiskaly lists them (v2.1.32); certified TSEs accept it (the fiskaly export in "
    "opentse's vendor test data has such a transaction).",
    "upsertTransaction FINISHED without `schema` finishes the transaction with the type "
    "and data its latest revision signed (fiskaly's text asks for the process_type: "
    "409 `E_TX_NO_TYPE_DEFINED`, which opentse answers when no revision signed data "
    "yet); a Finish with empty data would be a receipt without amounts.",
    "A revision whose log was deleted after an export (deleteStoredData; fiskaly keeps "
    "its data) answers retrieveTransaction with 400 `E_TX_REVISION_NOT_FOUND` (its 404 "
    "tells a register there is no such transaction) and retrieveTransactionLog with 404 "
    "`E_LOG_NOT_FOUND` (fiskaly's code for a missing log), naming the export it is in; "
    "the transaction lists leave out (and do not count) a closed transaction whose latest "
    "revision's log was deleted, as they cannot show its `log` and `signature`. A "
    "transaction still ACTIVE whose latest log was deleted is open at the TSE (counted "
    "in `number_active_transactions`, to be finished or cancelled with the next "
    "revision): the lists show it, and retrieveTransaction answers its latest revision, "
    "with what is still known: no `schema`, a `signature` without `value` (its counter "
    "is the deleted log's), a `log` whose `timestamp` is `time_start` for the Start and "
    "missing for an Update.",
    "`description` is taken with the change to INITIALIZED only (fiskaly: only when "
    "initializing a TSS may a description be provided); sent with any other updateTss "
    "it is accepted and ignored, the TSS keeps its description.",
)

_PATH_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "tx_id_or_number": {
        "anyOf": [
            {"type": "string", "format": "uuid"},
            {"type": "integer", "minimum": 0, "maximum": 9007199254740991},
        ]
    },
}

_ERROR_TEXT = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Resource does not exist",
    409: "Conflict",
    413: "Request body too large",
    423: "Locked",
    429: "Too many failed logins: wait as long as Retry-After says",
}


def _error_response(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if status == 429:
        seconds = {"type": "integer", "minimum": 1}
        answer["headers"] = {"Retry-After": {"required": True, "schema": seconds}}
    return answer


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name in _PARAM.findall(op.path):
        schema = _PATH_PARAM_SCHEMAS.get(name, {"type": "string", "format": "uuid"})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    query = list(op.query)
    if (op.response or "").endswith("List") and all(n != SHOW_DELETED[0] for n, _ in query):
        query.append(SHOW_DELETED)  # every fiskaly list takes it; no TSS is DELETED here
    for name, schema in query:
        params.append({"in": "query", "name": name, "required": False, "schema": schema})
    if op.response_media == "application/json":
        ok_schema = ref(op.response) if op.response else {"type": "object"}
        ok = {"description": "OK", "content": {"application/json": {"schema": ok_schema}}}
    else:
        ok = {
            "description": "OK",
            "content": {op.response_media: {"schema": {"type": "string", "format": "binary"}}},
        }
    responses: dict[str, Any] = {"200": ok}
    statuses = set(op.errors) | ({401} if op.auth else set())
    if op.method in ("PUT", "PATCH", "POST"):
        statuses |= {400, 413}
    for status in sorted(statuses):
        responses[str(status)] = _error_response(status)
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
        "security": [{"JWT": []}] if op.auth else [],
    }
    if op.body_schema is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": ref(op.body_schema)}},
        }
    return doc


def build_document(
    operations: Sequence[Operation], components: dict[str, Any] | None = None
) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault("/api/v2" + op.path, {})[op.method.lower()] = _operation(op)
    schemas = dict(COMPONENTS if components is None else components)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "opentse TSE service (fiskaly SIGN DE v2 compatible)",
            "version": API_VERSION,
            "description": "An open software TSE service speaking the fiskaly SIGN DE v2 API. "
            "Not BSI-certified.\n\nDifferences from fiskaly:\n\n"
            + "\n".join(f"- {line}" for line in FISKALY_DIFFERENCES),
            "x-fiskaly-differences": list(FISKALY_DIFFERENCES),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"JWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"JWT": []}],
    }
