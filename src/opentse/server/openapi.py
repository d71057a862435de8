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
from opentse.server.schemas import COMPONENTS, ref

_PARAM = re.compile(r"{([a-z_]+)}")

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
}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name in _PARAM.findall(op.path):
        schema = _PATH_PARAM_SCHEMAS.get(name, {"type": "string", "format": "uuid"})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    for name, schema in op.query:
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
            "Not BSI-certified.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"JWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"JWT": []}],
    }
