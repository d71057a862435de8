"""Our /api/v2 contract held against fiskaly SIGN DE v2.1.35's, operation by operation.

The tables below are facts read in fiskaly's OpenAPI file (repository
i7aket/Vectis.Fiskaly.SDK, ``.../fiskaly-openapi-sign-de-spec-v2.1.35.json``),
restated by hand: operationIds, the statuses each operation documents, request fields
(required, enums, patterns, limits), response fields and list parameters. The tests
load the document the real app serves and compare; ``KNOWN`` lists what we change on
purpose (docs/api.md, "Differences from fiskaly", from ``openapi.FISKALY_DIFFERENCES``).
The rest drives the running server with bodies and queries fiskaly's contract allows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.engine import tse as tse_steps
from opentse.server.openapi import FISKALY_DIFFERENCES
from opentse.testing.clock import FrozenClock

MAX = 9007199254740991
AMOUNT = r"^-?\d+(\.\d{2,5})$"  # fiskaly DSFinVKNumeric
TSS_STATES = {
    "CREATED",
    "UNINITIALIZED",
    "INITIALIZED",
    "DISABLED",
    "DELETED",
    "DEFECTIVE",
    "EVICTED",
}
TX_STATES = {"ACTIVE", "CANCELLED", "FINISHED"}
EXPORT_STATES = {"CANCELLED", "PENDING", "WORKING", "COMPLETED", "ERROR"}
CLIENT_STATES = {"REGISTERED", "DEREGISTERED"}
RECEIPT_TYPES = {
    "RECEIPT",
    "TRAINING",
    "TRANSFER",
    "ORDER",
    "CANCELLATION",
    "ABORT",
    "BENEFIT_IN_KIND",
    "INVOICE",
    "OTHER",
    "ANNULATION",
}
VAT_NAMES = ["NORMAL", "REDUCED_1", "SPECIAL_RATE_1", "SPECIAL_RATE_2", "NULL"]
VAT_DEPRECATED = ["19", "7", "10.7", "5.5", "0"]
EXPORT_EXCEPTIONS = {
    "E_UNEXPECTED",
    "E_ID_NOT_FOUND",
    "E_BAD_REQUEST",
    "E_INTERNAL",
    "E_TRANSACTION_ID_NOT_FOUND",
    "E_NO_DATA_AVAILABLE",
    "E_TOO_MANY_RECORDS",
    "E_ALREADY_PROCESSING",
    "E_LOGS_NOT_DELETED",
    "E_EXPORT_PROCESSING_TIMEOUT",
}

# list parameters: name -> (type, enum or None); limit/offset bounds are checked apart
_PAGING = {
    "limit": ("integer", None),
    "offset": ("integer", None),
    "order": ("string", {"asc", "desc"}),
    "show_deleted": ("boolean", None),
}
TSS_LIST = {
    **_PAGING,
    "order_by": (
        "string",
        {"description", "state", "time_creation", "time_init", "time_disable"},
    ),
    "states": ("array", TSS_STATES),
}
CLIENT_LIST = {
    **_PAGING,
    "order_by": ("string", {"serial_number", "time_creation"}),
    "serial_number": ("string", None),
    "state": ("string", CLIENT_STATES),
}
TX_LIST = {
    **_PAGING,
    "order_by": ("string", {"number", "state", "time_start", "time_end"}),
    "states": ("array", TX_STATES),
}
EXPORT_LIST = {
    **_PAGING,
    "order_by": (
        "string",
        {"state", "time_request", "time_start", "time_end", "time_expiration", "time_error"},
    ),
    "states": ("array", EXPORT_STATES),
}
REVISION = {"tx_revision": ("integer", None)}
TRIGGER = {
    "client_id": ("string", None),
    "transaction_number": ("string", None),
    "start_transaction_number": ("string", None),
    "end_transaction_number": ("string", None),
    "start_date": ("integer", None),
    "end_date": ("integer", None),
    "maximum_number_records": ("string", None),
    "start_signature_counter": ("string", None),
    "end_signature_counter": ("string", None),
}

T = "/tss/{tss_id}"
C = T + "/client/{client_id}"
X = T + "/tx/{tx_id_or_number}"
E = T + "/export/{export_id}"

# operationId -> (method, path below /api/v2, statuses fiskaly documents besides 2xx
# (without 403 organisation access, 432 "use the middleware", 503 maintenance), query)
OPERATIONS: dict[str, tuple[str, str, set[int], dict[str, Any]]] = {
    "authenticateApi": ("POST", "/auth", {401}, {}),
    "authenticateAdmin": ("POST", T + "/admin/auth", {401, 404, 423}, {}),
    "logoutAdmin": ("POST", T + "/admin/logout", {404, 423}, {}),
    "createTss": ("PUT", T, {409}, {}),
    "retrieveTss": ("GET", T, {404}, {}),
    "updateTss": ("PATCH", T, {400, 423}, {}),
    "changeAdminPin": ("PATCH", T + "/admin", {400, 401, 404, 423}, {}),
    "listTss": ("GET", "/tss", set(), TSS_LIST),
    "createClient": ("PUT", C, {400, 404, 409, 423}, {}),
    "retrieveClient": ("GET", C, {404}, {}),
    "updateClient": ("PATCH", C, {400, 404, 423}, {}),
    "listAllClients": ("GET", "/client", {404}, CLIENT_LIST),
    "listClients": ("GET", T + "/client", {404}, CLIENT_LIST),
    "listClientTransactions": ("GET", C + "/tx", {404}, TX_LIST),
    "listAllTransactions": ("GET", "/tx", {404}, TX_LIST),
    "listTransactions": ("GET", T + "/tx", {404}, TX_LIST),
    "retrieveTransaction": ("GET", X, {400, 404}, REVISION),
    "upsertTransaction": ("PUT", X, {400, 404, 409, 423}, REVISION),
    "retrieveTransactionLog": ("GET", X + "/log", {400, 404}, REVISION),
    "cancelExport": ("DELETE", E, {400, 404, 423}, {}),
    "retrieveExport": ("GET", E, {404}, {}),
    "triggerExport": ("PUT", E, {400, 404, 409, 423}, TRIGGER),
    "listAllExports": ("GET", "/export", set(), EXPORT_LIST),
    "listExports": ("GET", "/tss/{tss_id}/export", {404}, EXPORT_LIST),
    "retrieveExportFile": ("GET", E + "/file", {404}, {}),
    "retrieveClientMetadata": ("GET", C + "/metadata", {404}, {}),
    "updateClientMetadata": ("PATCH", C + "/metadata", {404}, {}),
    "retrieveExportMetadata": ("GET", E + "/metadata", {404}, {}),
    "updateExportMetadata": ("PATCH", E + "/metadata", {404}, {}),
    "retrieveTransactionMetadata": ("GET", X + "/metadata", {404}, {}),
    "updateTransactionMetadata": ("PATCH", X + "/metadata", {404}, {}),
    "retrieveTssMetadata": ("GET", T + "/metadata", {404}, {}),
    "updateTssMetadata": ("PATCH", T + "/metadata", {404}, {}),
}

# request bodies: operationId -> {dotted field: facts}; "" is the body itself. Facts:
# required (names), enum, pattern, minLength, maxLength, maxProperties, open (True:
# fiskaly does not close the object, so extra members must not be refused)
REQUESTS: dict[str, dict[str, dict[str, Any]]] = {
    "authenticateAdmin": {"": {"required": {"admin_pin"}}, "admin_pin": {"minLength": 6}},
    "changeAdminPin": {
        "": {"required": {"admin_puk", "new_admin_pin"}},
        "admin_puk": {"minLength": 10},
        "new_admin_pin": {"minLength": 6},
    },
    "createTss": {"": {"required": set()}, "metadata": {"maxProperties": 40}},
    "updateTss": {
        "": {"required": {"state"}, "open": False},
        "state": {"enum": {"UNINITIALIZED", "INITIALIZED", "DISABLED"}},
        "description": {"pattern": r"^[A-Za-z0-9 '()+,-./:=?]{0,100}$"},
        "metadata": {"maxProperties": 40},
    },
    "createClient": {
        "": {"required": {"serial_number"}, "open": True},
        "serial_number": {"minLength": 1},
        "metadata": {"maxProperties": 40},
    },
    "updateClient": {
        "": {"required": {"state"}, "open": True},
        "state": {"enum": CLIENT_STATES},
    },
    "upsertTransaction": {
        "": {"required": {"state", "client_id"}, "open": True},
        "state": {"enum": TX_STATES},
        "metadata": {"maxProperties": 40},
        "schema.standard_v1.receipt": {
            "required": {"receipt_type", "amounts_per_vat_rate"},
            "open": True,
        },
        "schema.standard_v1.receipt.receipt_type": {"enum": RECEIPT_TYPES},
        "schema.standard_v1.receipt.amounts_per_vat_rate[]": {
            "required": {"vat_rate", "amount"},
            "open": True,
        },
        "schema.standard_v1.receipt.amounts_per_vat_rate[].vat_rate": {
            "enum": set(VAT_NAMES) | set(VAT_DEPRECATED)
        },
        "schema.standard_v1.receipt.amounts_per_vat_rate[].amount": {"pattern": AMOUNT},
        "schema.standard_v1.receipt.amounts_per_payment_type[]": {
            "required": {"payment_type", "amount"},
            "open": True,
        },
        "schema.standard_v1.receipt.amounts_per_payment_type[].payment_type": {
            "enum": {"CASH", "NON_CASH"}
        },
        "schema.standard_v1.receipt.amounts_per_payment_type[].amount": {"pattern": AMOUNT},
        "schema.standard_v1.receipt.amounts_per_payment_type[].currency_code": {
            "pattern": r"^[a-zA-Z]{3}$"
        },
        "schema.standard_v1.order": {"required": {"line_items"}, "open": True},
        "schema.standard_v1.order.line_items[]": {
            "required": {"quantity", "text", "price_per_unit"},
            "open": True,
        },
        "schema.standard_v1.order.line_items[].quantity": {"pattern": r"^-?\d+(\.\d{1,5})?$"},
        "schema.standard_v1.order.line_items[].text": {"maxLength": 255},
        "schema.standard_v1.order.line_items[].price_per_unit": {"pattern": AMOUNT},
        "schema.standard_v1.other": {"open": True},
        "schema.raw": {"required": {"process_type", "process_data"}, "open": True},
    },
    **{
        op: {"": {"maxProperties": 40}}
        for op in (
            "updateTssMetadata",
            "updateClientMetadata",
            "updateTransactionMetadata",
            "updateExportMetadata",
        )
    },
}

# response components: our component -> {field: (type, enum or None)}, required fields
S, INT, OBJ = ("string", None), ("integer", None), ("object", None)
ENV = ("string", {"TEST", "LIVE"})
META = {"_env": ENV, "_version": S, "_id": S}
RESPONSES: dict[str, tuple[dict[str, tuple[str, Any]], set[str]]] = {
    "Tss": (
        {
            "certificate": S,
            "serial_number": S,
            "public_key": S,
            "signature_algorithm": ("string", {"ecdsa-plain-SHA256"}),
            "signature_timestamp_format": ("string", {"unixTime"}),
            "transaction_data_encoding": ("string", {"UTF-8"}),
            "max_number_registered_clients": INT,
            "max_number_active_transactions": INT,
            "supported_update_variants": ("string", {"SIGNED"}),
            "metadata": OBJ,
            "description": S,
            "state": ("string", TSS_STATES),
            "bsi_certification_id": S,
            "signature_counter": S,
            "transaction_counter": S,
            "number_registered_clients": INT,
            "number_active_transactions": INT,
            "admin_puk": S,
            "time_creation": INT,
            "time_uninit": INT,
            "time_init": INT,
            "time_disable": INT,
            "time_defective": INT,
            "_type": ("string", {"TSS"}),
            **META,
        },
        {
            "state",
            "certificate",
            "serial_number",
            "public_key",
            "signature_algorithm",
            "signature_timestamp_format",
            "transaction_data_encoding",
            "max_number_registered_clients",
            "max_number_active_transactions",
            "supported_update_variants",
            "_id",
            "_type",
            "_env",
            "_version",
            "time_creation",
        },
    ),
    "Client": (
        {
            "serial_number": S,
            "state": ("string", CLIENT_STATES),
            "tss_id": S,
            "metadata": OBJ,
            "time_creation": INT,
            "time_update": INT,
            "_type": ("string", {"CLIENT"}),
            **META,
        },
        {"serial_number", "state", "tss_id", "_id", "_type", "_env", "_version"}
        | {"time_creation", "time_update"},
    ),
    "Transaction": (
        {
            "number": INT,
            "time_start": INT,
            "time_end": INT,
            "client_serial_number": S,
            "tss_serial_number": S,
            "state": ("string", TX_STATES),
            "client_id": S,
            "schema": OBJ,
            "schema.standard_v1": OBJ,
            "schema.raw": OBJ,
            "schema.raw.process_type": S,
            "schema.raw.process_data": S,
            "revision": INT,
            "latest_revision": INT,
            "tss_id": S,
            "metadata": OBJ,
            "qr_code_data": S,
            "log": OBJ,
            "log.operation": ("string", {"Start", "Update", "Finish"}),
            "log.timestamp": INT,
            "log.timestamp_format": ("string", {"unixTime"}),
            "signature": OBJ,
            "signature.value": S,
            "signature.algorithm": ("string", {"ecdsa-plain-SHA256"}),
            "signature.counter": S,  # TxResponse: a bigint string
            "signature.public_key": S,
            "_type": ("string", {"TRANSACTION"}),
            **META,
        },
        {"tss_id", "tss_serial_number", "client_id", "client_serial_number", "state"}
        | {"revision", "latest_revision", "_type", "_id", "_env", "_version", "number"}
        | {"time_start", "log", "signature"},
    ),
    "Export": (
        {
            "state": ("string", EXPORT_STATES),
            "exception": ("string", EXPORT_EXCEPTIONS),
            "time_request": INT,
            "time_start": INT,
            "time_end": INT,
            "time_expiration": INT,
            "time_error": INT,
            "estimated_time_of_completion": INT,
            "metadata": OBJ,
            "tss_id": S,
            "_type": ("string", {"EXPORT"}),
            **META,
        },
        {"state", "time_request", "_type", "_id", "_env", "_version"},
    ),
    "AuthResponse": (
        {
            "access_token": S,
            "access_token_claims": OBJ,
            "access_token_claims.env": ENV,
            "access_token_claims.organization_id": S,
            "access_token_expires_in": INT,
            "access_token_expires_at": INT,
            "refresh_token": S,
            "refresh_token_expires_in": INT,
            "refresh_token_expires_at": INT,
        },
        {"access_token"},
    ),
    "Error": ({"status_code": INT, "error": S, "code": S, "message": S}, set()),
}
LISTS = {
    "listTss": ("Tss", "TSS_LIST"),
    "listAllClients": ("Client", "CLIENT_LIST"),
    "listClients": ("Client", "CLIENT_LIST"),
    "listClientTransactions": ("Transaction", "TRANSACTION_LIST"),
    "listAllTransactions": ("Transaction", "TRANSACTION_LIST"),
    "listTransactions": ("Transaction", "TRANSACTION_LIST"),
    "listAllExports": ("Export", "EXPORT_LIST"),
    "listExports": ("Export", "EXPORT_LIST"),
}

# what we do differently on purpose: (where, fact) -> words that say so in
# openapi.FISKALY_DIFFERENCES (published in the document and docs/api.md)
KNOWN: dict[tuple[str, str], str] = {
    ("Tss", "bsi_certification_id"): "not BSI-certified",
    ("Tss", "signature_algorithm"): "ecdsa-plain-SHA384",
    ("Tss", "signature_timestamp_format"): "configured format",
    ("Transaction", "signature.algorithm"): "`signature.algorithm`",
    ("Transaction", "log.timestamp_format"): "`log.timestamp_format`",
    ("Export", "time_expiration"): "kept until deleted",
    ("Export", "estimated_time_of_completion"): "`estimated_time_of_completion`",
    ("logoutAdmin", "423"): "logoutAdmin answers 200 on a DEFECTIVE TSS",
    ("cancelExport", "423"): "cancelExport never answers 423",
    ("triggerExport", "423"): "never 423",
    ("createClient", "serial_number.pattern"): "refuses `/`",
    ("upsertTransaction", "schema.dsfinvtw_v1"): "`schema.dsfinvtw_v1`",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    with serve_app(tmp_path_factory.mktemp("contract") / "data", FrozenClock(1_700_000_000)) as c:
        yield c


@pytest.fixture(scope="module")
def document(served: AppClient) -> dict[str, Any]:
    r = httpx.get(str(served.base_url) + "/api/v2/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


@pytest.fixture(scope="module")
def session(served: AppClient) -> tuple[dict[str, str], str, str]:
    headers = login(served, new_key(served))
    tss, cid = setup_tss(served, headers)
    return headers, tss, cid


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _field(doc: dict[str, Any], schema: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The schema at ``a.b[].c`` below ``schema`` (None when we do not declare it)."""
    schema = _resolve(doc, schema)
    for part in filter(None, dotted.split(".")):
        many = part.endswith("[]")
        found = _resolve(doc, schema).get("properties", {}).get(part.removesuffix("[]"))
        if found is None:
            return None
        schema = _resolve(doc, found)
        if many:
            schema = _resolve(doc, schema["items"])
    return schema


def _ops(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            found[op["operationId"]] = (method.upper(), path, op)
    return found


def test_every_known_difference_is_published(document: dict[str, Any]) -> None:
    text = " ".join(FISKALY_DIFFERENCES)
    for key, words in KNOWN.items():
        assert words in text, key
    assert document["info"]["x-fiskaly-differences"] == list(FISKALY_DIFFERENCES)
    docs = Path(__file__).resolve().parents[2] / "docs" / "api.md"
    page = docs.read_text(encoding="utf-8")
    assert "## Differences from fiskaly" in page
    assert all(line in page for line in FISKALY_DIFFERENCES)


def test_every_operation_has_fiskalys_path_method_and_id(document: dict[str, Any]) -> None:
    ours = _ops(document)
    assert set(ours) == set(OPERATIONS)
    for op_id, (method, path, _, _) in OPERATIONS.items():
        assert ours[op_id][:2] == (method, "/api/v2" + path), op_id
    for op_id, (_, path, op) in ours.items():
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "path"}
        assert set(params) == set(_path_names(path)), op_id
        for name, p in params.items():
            assert p["required"] is True
            if name != "tx_id_or_number":
                assert p["schema"] == {"type": "string", "format": "uuid"}, (op_id, name)


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_each_operation_documents_fiskalys_error_statuses(document: dict[str, Any]) -> None:
    ours = _ops(document)
    missing = []
    for op_id, (_, _, statuses, _) in OPERATIONS.items():
        documented = {int(s) for s in ours[op_id][2]["responses"] if s != "200"}
        for status in sorted(statuses - documented):
            if (op_id, str(status)) not in KNOWN:
                missing.append(f"{op_id} {status}")
        for status in documented - {200}:
            body = ours[op_id][2]["responses"][str(status)]["content"]["application/json"]
            assert body["schema"] == {"$ref": "#/components/schemas/Error"}
    assert not missing, missing


def test_query_parameters_are_fiskalys(document: dict[str, Any]) -> None:
    ours = _ops(document)
    for op_id, (_, _, _, query) in OPERATIONS.items():
        params = {
            p["name"]: p["schema"] for p in ours[op_id][2]["parameters"] if p["in"] == "query"
        }
        assert set(query) <= set(params), (op_id, set(query) - set(params))
        for name, (typ, enum) in query.items():
            schema = params[name]
            assert schema["type"] == typ, (op_id, name)
            if enum is not None:
                values = schema["items"]["enum"] if typ == "array" else schema["enum"]
                assert set(values) == enum, (op_id, name)
        if "limit" in query:
            assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 100)
            assert params["offset"]["minimum"] == 0
        if "tx_revision" in query:
            assert (params["tx_revision"]["minimum"], params["tx_revision"]["maximum"]) == (1, MAX)
        for name in TRIGGER if query is TRIGGER else ():
            if TRIGGER[name][0] == "string" and name != "client_id":
                assert params[name]["pattern"] == r"^\d+$", name
            if name == "client_id":  # fiskaly's: any string, no uuid format
                assert set(params[name]) == {"type"}, params[name]
            if TRIGGER[name][0] == "integer":
                assert (params[name]["minimum"], params[name]["maximum"]) == (0, MAX)


def test_request_bodies_follow_fiskalys_rules(document: dict[str, Any]) -> None:
    ours = _ops(document)
    problems = []
    for op_id, fields in REQUESTS.items():
        body = ours[op_id][2]["requestBody"]["content"]["application/json"]["schema"]
        for dotted, facts in fields.items():
            schema = _field(document, body, dotted)
            assert schema is not None, (op_id, dotted)
            for fact, want in facts.items():
                if (op_id, f"{dotted}.{fact}") in KNOWN:
                    continue
                if fact == "required":
                    got: Any = set(schema.get("required", ()))
                elif fact == "open":
                    got = schema.get("additionalProperties", True) is not False
                elif fact == "enum":
                    got = set(schema.get("enum", ()))
                else:
                    got = schema.get(fact)
                if got != want:
                    problems.append(f"{op_id} {dotted} {fact}: fiskaly {want!r}, ours {got!r}")
    assert not problems, "\n".join(problems)


def test_tx_schema_offers_fiskalys_variants(document: dict[str, Any]) -> None:
    body = {"$ref": "#/components/schemas/TxRequest"}
    schema = _field(document, body, "schema")
    assert schema is not None and (schema["minProperties"], schema["maxProperties"]) == (1, 1)
    assert ("upsertTransaction", "schema.dsfinvtw_v1") in KNOWN  # fiskaly's third variant
    assert set(schema["properties"]) == {"standard_v1", "raw"}
    standard = _field(document, body, "schema.standard_v1")
    assert standard is not None and set(standard["properties"]) == {"receipt", "order", "other"}
    auth = _resolve(document, {"$ref": "#/components/schemas/AuthRequest"})
    alternatives = [set(a["required"]) for a in auth["oneOf"]]
    assert alternatives == [{"api_key", "api_secret"}, {"refresh_token"}]
    assert all(a.get("additionalProperties", True) is not False for a in auth["oneOf"])


@pytest.mark.parametrize("component", sorted(RESPONSES))
def test_response_fields_are_fiskalys(document: dict[str, Any], component: str) -> None:
    fields, required = RESPONSES[component]
    ref = {"$ref": f"#/components/schemas/{component}"}
    problems = []
    for dotted, (typ, enum) in fields.items():
        if (component, dotted) in KNOWN:
            continue
        schema = _field(document, ref, dotted)
        if schema is None:
            problems.append(f"{dotted}: missing")
            continue
        if schema.get("type") != typ:
            problems.append(f"{dotted}: type {schema.get('type')}, fiskaly {typ}")
        if enum is not None and set(schema.get("enum", ())) != enum:
            problems.append(f"{dotted}: enum {schema.get('enum')}, fiskaly {sorted(enum)}")
    ours_required = set(_resolve(document, ref).get("required", ()))
    if required - ours_required:
        problems.append(f"not required: {sorted(required - ours_required)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op_id", sorted(LISTS))
def test_list_envelopes_are_fiskalys(document: dict[str, Any], op_id: str) -> None:
    item, type_name = LISTS[op_id]
    op = _ops(document)[op_id][2]
    schema = _resolve(document, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(schema["required"]) == {"data", "count", "_type", "_env", "_version"}
    props = schema["properties"]
    assert props["data"]["items"] == {"$ref": f"#/components/schemas/{item}"}
    assert props["count"]["type"] == "integer" and props["_type"]["enum"] == [type_name]
    assert _resolve(document, props["_env"])["enum"] == ["TEST", "LIVE"]


# --- behaviour: what fiskaly's contract allows, the running server accepts ----------


def _put_tx(
    c: httpx.Client, h: dict[str, str], tss: str, tx: str, rev: int, body: dict[str, Any]
) -> httpx.Response:
    return c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h)


def _finish(
    c: httpx.Client, session: tuple[dict[str, str], str, str], schema: dict[str, Any]
) -> httpx.Response:
    h, tss, cid = session
    tx = str(uuid.uuid4())
    r = _put_tx(c, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
    assert r.status_code == 200, r.text
    return _put_tx(c, h, tss, tx, 2, {"state": "FINISHED", "client_id": cid, "schema": schema})


_digits = st.integers(-(10**9), 10**9).map(str)
_amounts = st.builds(
    lambda u, d: f"{u}.{d}", _digits, st.text("0123456789", min_size=2, max_size=5)
)
_extra = st.dictionaries(
    st.sampled_from(["note", "line_id", "x_pos"]), st.text(max_size=5), max_size=2
)
_vat = st.builds(
    lambda rate, amount, extra: {**extra, "vat_rate": rate, "amount": amount},
    st.sampled_from(VAT_NAMES + VAT_DEPRECATED),
    _amounts,
    _extra,
)
_payment = st.builds(
    lambda kind, amount, currency, extra: {
        **extra,
        "payment_type": kind,
        "amount": amount,
        **({"currency_code": currency} if currency else {}),
    },
    st.sampled_from(["CASH", "NON_CASH"]),
    _amounts,
    st.sampled_from(["", "EUR", "usd", "Chf"]),
    _extra,
)
_receipts = st.builds(
    lambda kind, vats, pays, extra: {
        **extra,
        "receipt_type": kind,
        "amounts_per_vat_rate": vats,
        **({"amounts_per_payment_type": pays} if pays is not None else {}),
    },
    st.sampled_from(sorted(RECEIPT_TYPES)),
    st.lists(_vat, max_size=4),
    st.none() | st.lists(_payment, max_size=3),
    _extra,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
@given(receipt=_receipts)
def test_receipts_valid_for_fiskaly_are_signed(
    served: AppClient, session: tuple[dict[str, str], str, str], receipt: dict[str, Any]
) -> None:
    """fiskaly accepts any receipt its schema allows, extra members included; so must we."""
    r = _finish(served, session, {"standard_v1": {"receipt": receipt}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schema"]["raw"]["process_type"] == "Kassenbeleg-V1"
    assert body["state"] == "FINISHED" and body["qr_code_data"].startswith("V0;")
    assert isinstance(body["signature"]["counter"], str)


@pytest.mark.parametrize(
    "schema",
    [
        {
            "standard_v1": {
                "order": {
                    "line_items": [
                        {"quantity": "2", "text": "Eis", "price_per_unit": "2.50", "sku": "7"}
                    ],
                    "table": "4",
                }
            }
        },
        {"raw": {"process_type": "Kassenbeleg-V1", "process_data": "dGVzdA==", "note": "x"}},
        {"standard_v1": {"other": {"anything": [1, 2]}}},
    ],
    ids=["order-extra-members", "raw-extra-member", "other"],
)
def test_open_objects_take_extra_members(
    served: AppClient, session: tuple[dict[str, str], str, str], schema: dict[str, Any]
) -> None:
    r = _finish(served, session, schema)
    assert r.status_code == 200, r.text
    if "raw" in schema:
        # fiskaly's ProcessDataRaw: the signed process_type and process_data, nothing
        # a request put beside them (it is not signed), in the answer and afterwards
        signed = {"process_type": "Kassenbeleg-V1", "process_data": "dGVzdA=="}
        assert r.json()["schema"] == {"raw": signed}
        h, tss, _ = session
        again = served.get(f"/api/v2/tss/{tss}/tx/{r.json()['_id']}", headers=h)
        assert again.status_code == 200 and again.json()["schema"] == {"raw": signed}


def test_export_client_id_is_any_string_as_fiskalys(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    """fiskaly's triggerExport types ``client_id`` as a plain string: one that is no
    UUID passes the schema and names no client, like an unknown UUID."""
    h, tss, cid = session
    for client_id in ("KASSE-1", "not a uuid <b>", str(uuid.uuid4())):
        r = served.put(
            f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", params={"client_id": client_id}, headers=h
        )
        assert (r.status_code, r.json()["code"]) == (400, "E_CLIENT_NOT_FOUND"), r.text
        assert "<b>" not in r.text
    r = served.put(
        f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", params={"client_id": cid.upper()}, headers=h
    )
    assert r.status_code == 200 and r.json()["state"] in ("PENDING", "WORKING", "COMPLETED")


def test_authentication_takes_extra_members(served: AppClient) -> None:
    key = new_key(served)
    body = {"api_key": key["api_key"], "api_secret": key["api_secret"], "base_url": "x"}
    r = served.post("/api/v2/auth", json=body)
    assert r.status_code == 200, r.text
    refresh = {"refresh_token": r.json()["refresh_token"], "note": "pos"}
    assert served.post("/api/v2/auth", json=refresh).status_code == 200
    both = {**body, "refresh_token": refresh["refresh_token"]}
    r = served.post("/api/v2/auth", json=both)  # fiskaly's oneOf: exactly one alternative
    assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"


@pytest.mark.parametrize(
    "field,value",
    [
        ("amount", "1.00\n"),
        ("amount", "\u0661.\u0660\u0660"),  # Arabic-Indic digits: not \d in JSON Schema
        ("currency_code", "EUR\n"),
    ],
)
def test_patterns_mean_what_json_schema_means(
    served: AppClient, session: tuple[dict[str, str], str, str], field: str, value: str
) -> None:
    """fiskaly's patterns are ECMA-262 regexes: ``$`` ends the input, ``\\d`` is ASCII."""
    pay = {"payment_type": "CASH", "amount": "1.00", field: value}
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "1.00"}],
        "amounts_per_payment_type": [pay],
    }
    r = _finish(served, session, {"standard_v1": {"receipt": receipt}})
    assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION", r.text
    assert "must match pattern" in r.json()["message"]


def test_a_trailing_newline_never_reaches_the_tss(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    h, tss, _ = session
    client = {"serial_number": "KASSE-9\n"}
    r = served.put(f"/api/v2/tss/{tss}/client/{uuid.uuid4()}", json=client, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION", r.text
    update = {"state": "INITIALIZED", "description": "Kasse\n"}
    r = served.patch(f"/api/v2/tss/{tss}", json=update, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION", r.text
    assert served.get(f"/api/v2/tss/{tss}", headers=h).json()["description"] != "Kasse\n"


def test_list_parameters_fiskaly_documents_are_honoured(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    h, tss, cid = session
    tx = str(uuid.uuid4())
    assert _put_tx(served, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid}).status_code == 200
    for path in (f"/api/v2/tss/{tss}/tx", "/api/v2/tx", f"/api/v2/tss/{tss}/client/{cid}/tx"):
        for query in ("states[0]=ACTIVE", "states=ACTIVE", "states%5B0%5D=ACTIVE"):
            url = f"{path}?{query}&show_deleted=false&order_by=time_end&order=desc"
            r = served.get(url, headers=h)
            assert r.status_code == 200, (path, query, r.text)
            data = r.json()["data"]
            assert data and {t["state"] for t in data} == {"ACTIVE"}, (path, query)
    tss_query = {"states[0]": "INITIALIZED", "states[1]": "DISABLED", "show_deleted": "true"}
    r = served.get("/api/v2/tss", params=tss_query, headers=h)
    assert r.status_code == 200 and {t["state"] for t in r.json()["data"]} == {"INITIALIZED"}
    ex = str(uuid.uuid4())
    assert served.put(f"/api/v2/tss/{tss}/export/{ex}", headers=h).status_code == 200
    running = {"states[0]": "PENDING", "states[1]": "WORKING", "states[2]": "COMPLETED"}
    for order_by in EXPORT_LIST["order_by"][1]:
        query = {**running, "order_by": order_by}
        r = served.get(f"/api/v2/tss/{tss}/export", params=query, headers=h)
        assert r.status_code == 200 and r.json()["_type"] == "EXPORT_LIST", (order_by, r.text)
    clients = {"state": "REGISTERED", "serial_number": "KASSE-1", "order_by": "serial_number"}
    r = served.get("/api/v2/client", params={**clients, "show_deleted": "false"}, headers=h)
    assert r.status_code == 200 and [c["_id"] for c in r.json()["data"]] == [cid]


def test_responses_carry_what_fiskaly_requires_per_operation(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    h, _, _ = session
    tss = str(uuid.uuid4())
    created = served.put(f"/api/v2/tss/{tss}", headers=h).json()  # no body: fiskaly's is optional
    assert created["state"] == "CREATED" and len(created["admin_puk"]) >= 10  # CreateTssResponse
    updated = served.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h)
    assert updated.status_code == 200 and isinstance(updated.json()["time_uninit"], int)
    assert "admin_puk" not in served.get(f"/api/v2/tss/{tss}", headers=h).json()


def test_a_defective_tss_answers_423(served: AppClient) -> None:
    """fiskaly: operations a DEFECTIVE TSS cannot do answer 423 E_TSS_DEFECTIVE."""
    h = login(served, new_key(served, org="defective"))
    tss, cid = setup_tss(served, h)
    tx = str(uuid.uuid4())
    assert _put_tx(served, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid}).status_code == 200
    served.ctx.store.run_locked(tss, lambda t: t.save(tse_steps.mark_defective(t.load())))
    answers = [
        _put_tx(served, h, tss, str(uuid.uuid4()), 1, {"state": "ACTIVE", "client_id": cid}),
        _put_tx(served, h, tss, tx, 2, {"state": "CANCELLED", "client_id": cid}),
        served.put(
            f"/api/v2/tss/{tss}/client/{uuid.uuid4()}", json={"serial_number": "K2"}, headers=h
        ),
        served.patch(f"/api/v2/tss/{tss}/client/{cid}", json={"state": "DEREGISTERED"}, headers=h),
    ]
    for r in answers:
        assert (r.status_code, r.json()["code"]) == (423, "E_TSS_DEFECTIVE"), r.text
    tss_now = served.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert tss_now["state"] == "DEFECTIVE"  # retrieve still works


def test_errors_carry_the_status_and_code_fiskaly_names(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    """One refusal per case fiskaly documents for the operation (status, code)."""
    h, tss, cid = session

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        return served.request(method, "/api/v2" + path, headers=h, **kw)

    created, other, tx = (str(uuid.uuid4()) for _ in range(3))
    assert call("PUT", f"/tss/{created}", json={}).status_code == 200
    active = {"state": "ACTIVE", "client_id": cid}
    assert _put_tx(served, h, tss, tx, 1, active).status_code == 200
    stranger = {"state": "ACTIVE", "client_id": other}
    wrong_puk = {"admin_puk": "0" * 10, "new_admin_pin": "222222"}
    cases = [
        # upsertTransaction: 400 for an unknown client (fiskaly 2.1.10), E_TX_UPSERT for
        # a skipped revision, 409 finishing without a process type, 404 unknown TSS
        (_put_tx(served, h, tss, other, 1, stranger), 400, "E_CLIENT_NOT_FOUND"),
        (_put_tx(served, h, tss, tx, 3, active), 400, "E_TX_UPSERT"),
        (
            _put_tx(served, h, tss, tx, 2, {**active, "state": "FINISHED"}),
            409,
            "E_TX_NO_TYPE_DEFINED",
        ),
        (_put_tx(served, h, other, tx, 1, active), 404, "E_TSS_NOT_FOUND"),
        # retrieveTransaction
        (
            call("GET", f"/tss/{tss}/tx/{tx}", params={"tx_revision": 9}),
            400,
            "E_TX_REVISION_NOT_FOUND",
        ),
        (call("GET", f"/tss/{tss}/tx/{other}"), 404, "E_TX_NOT_FOUND"),
        # createTss, updateTss, createClient, changeAdminPin, listClientTransactions
        (call("PUT", f"/tss/{tss}", json={}), 409, "E_TSS_CONFLICT"),
        (
            call("PATCH", f"/tss/{created}", json={"state": "INITIALIZED"}),
            400,
            "E_ILLEGAL_TSS_STATE_CHANGE",
        ),
        (
            call("PUT", f"/tss/{created}/client/{other}", json={"serial_number": "A"}),
            400,
            "E_TSS_NOT_INITIALIZED",
        ),
        (
            call("PUT", f"/tss/{tss}/client/{cid}", json={"serial_number": "B"}),
            409,
            "E_CLIENT_CONFLICT",
        ),
        (call("PATCH", f"/tss/{tss}/admin", json=wrong_puk), 400, "E_CHANGE_ADMIN_PIN_FAILED"),
        (call("GET", f"/tss/{tss}/client/{other}/tx"), 404, "E_CLIENT_NOT_FOUND"),
        # triggerExport before the TSS can export; retrieveExportFile of an unknown export
        (
            call("PUT", f"/tss/{created}/export/{other}"),
            409,
            "E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT",
        ),
        (call("GET", f"/tss/{tss}/export/{other}/file"), 404, "E_EXPORT_NOT_FOUND"),
    ]
    for r, status, code in cases:
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.json()["error"] == httpx.codes.get_reason_phrase(status)


def test_leading_question_marks_of_a_query_are_ignored(
    served: AppClient, session: tuple[dict[str, str], str, str]
) -> None:
    """fiskaly 2.0.50: ``...??tx_revision=2`` means ``tx_revision=2``; a retried revision
    with such a query is answered as stored instead of signing a new one."""
    h, tss, cid = session
    url = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}??tx_revision="
    active = {"state": "ACTIVE", "client_id": cid}
    assert served.put(url + "1", json=active, headers=h).json()["revision"] == 1
    first = served.put(url + "2", json=active, headers=h).json()
    again = served.put(url + "2", json=active, headers=h).json()
    assert (first["revision"], again["revision"]) == (2, 2)
    assert again["signature"] == first["signature"] and again["latest_revision"] == 2
    assert served.get(url + "1", headers=h).json()["revision"] == 1
    listed = served.get(f"/api/v2/tss/{tss}/tx??limit=1", headers=h).json()
    assert len(listed["data"]) == 1
