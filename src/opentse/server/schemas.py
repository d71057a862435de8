"""JSON schemas of the /api/v2 bodies (fiskaly SIGN DE v2 field names and limits).

Written by us from fiskaly's OpenAPI 2.1.35 contract: same field names, enums,
required fields and patterns, because those are the interface POS systems speak.
``COMPONENTS`` is published in /api/v2/openapi.json and enforced by ``validation``.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


MAX_SAFE = 9007199254740991
AMOUNT = r"^-?\d+(\.\d{2,5})$"  # fiskaly DSFinVKNumeric: 2 to 5 decimals

_TIMESTAMP: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_SAFE}
_UUID: Schema = {"type": "string", "format": "uuid"}

TSS_STATES = [
    "CREATED",
    "UNINITIALIZED",
    "INITIALIZED",
    "DISABLED",
    "DELETED",
    "DEFECTIVE",
    "EVICTED",
]
TX_STATES = ["ACTIVE", "CANCELLED", "FINISHED"]
EXPORT_STATES = ["CANCELLED", "PENDING", "WORKING", "COMPLETED", "ERROR"]
CLIENT_STATES = ["REGISTERED", "DEREGISTERED"]
EXPORT_EXCEPTIONS = [  # fiskaly ExportException: the codes an ERROR export may carry
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
]
RECEIPT_TYPES = [
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
]
VAT_RATES = ["NORMAL", "REDUCED_1", "SPECIAL_RATE_1", "SPECIAL_RATE_2", "NULL"]
VAT_RATES_DEPRECATED = ["19", "7", "10.7", "5.5", "0"]

COMPONENTS: dict[str, Schema] = {
    "Timestamp": _TIMESTAMP,
    "Uuid": _UUID,
    "Env": {"type": "string", "enum": ["TEST", "LIVE"]},
    "Version": {"type": "string"},
    "Metadata": {
        "type": "object",
        "maxProperties": 40,
        "additionalProperties": {"type": "string", "maxLength": 500},
    },
    # what a request may send: a null value removes that key (fiskaly's own Postman
    # collection sends {"custom_field": null} to its metadata and expects 200)
    "MetadataRequest": {
        "type": "object",
        "maxProperties": 40,
        "additionalProperties": {"type": "string", "maxLength": 500, "nullable": True},
    },
    "Error": {
        "type": "object",
        "properties": {
            "status_code": {"type": "integer"},
            "error": {"type": "string"},
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["status_code", "error", "code", "message"],
    },
    "AuthRequest": {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "api_key": {"type": "string", "minLength": 1, "maxLength": 200},
                    "api_secret": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                "required": ["api_key", "api_secret"],
            },
            {
                "type": "object",
                "properties": {
                    "refresh_token": {"type": "string", "minLength": 1, "maxLength": 4000}
                },
                "required": ["refresh_token"],
            },
        ]
    },
    "AuthResponse": {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"},
            "access_token_claims": {
                "type": "object",
                "properties": {"env": ref("Env"), "organization_id": _UUID},
                "required": ["env"],
            },
            "access_token_expires_in": {"type": "integer"},
            "access_token_expires_at": ref("Timestamp"),
            "refresh_token": {"type": "string"},
            "refresh_token_expires_in": {"type": "integer"},
            "refresh_token_expires_at": ref("Timestamp"),
        },
        "required": ["access_token"],
    },
    "AdminAuthRequest": {
        "type": "object",
        "properties": {"admin_pin": {"type": "string", "minLength": 6, "maxLength": 100}},
        "required": ["admin_pin"],
    },
    "ChangeAdminPinRequest": {
        "type": "object",
        "properties": {
            "admin_puk": {"type": "string", "minLength": 10, "maxLength": 100},
            "new_admin_pin": {"type": "string", "minLength": 6, "maxLength": 100},
        },
        "required": ["admin_puk", "new_admin_pin"],
    },
    "EmptyObject": {"type": "object"},
    "CreateTssRequest": {"type": "object", "properties": {"metadata": ref("MetadataRequest")}},
    "UpdateTssRequest": {
        "type": "object",
        "properties": {
            "description": {"type": "string", "pattern": r"^[A-Za-z0-9 '()+,-./:=?]{0,100}$"},
            "state": {"type": "string", "enum": ["UNINITIALIZED", "INITIALIZED", "DISABLED"]},
            "metadata": ref("MetadataRequest"),
        },
        "required": ["state"],
        "additionalProperties": False,
    },
    "Tss": {
        "type": "object",
        "properties": {
            "certificate": {"type": "string"},
            "serial_number": {"type": "string"},
            "public_key": {"type": "string"},
            "signature_algorithm": {"type": "string"},
            "signature_timestamp_format": {"type": "string"},
            "transaction_data_encoding": {"type": "string", "enum": ["UTF-8"]},
            "max_number_registered_clients": {"type": "integer", "minimum": 0},
            "max_number_active_transactions": {"type": "integer", "minimum": 0},
            "supported_update_variants": {"type": "string", "enum": ["SIGNED"]},
            "metadata": ref("Metadata"),
            "description": {"type": "string"},
            "state": {"type": "string", "enum": TSS_STATES},
            "signature_counter": {"type": "string"},
            "transaction_counter": {"type": "string"},
            "number_registered_clients": {"type": "integer", "minimum": 0},
            "number_active_transactions": {"type": "integer", "minimum": 0},
            "admin_puk": {"type": "string"},
            "time_creation": ref("Timestamp"),
            "time_uninit": ref("Timestamp"),
            "time_init": ref("Timestamp"),
            "time_disable": ref("Timestamp"),
            "time_defective": ref("Timestamp"),
            "_id": _UUID,
            "_type": {"type": "string", "enum": ["TSS"]},
            "_env": ref("Env"),
            "_version": ref("Version"),
        },
        "required": [
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
        ],
    },
    "CreateClientRequest": {
        "type": "object",
        "properties": {
            "serial_number": {
                "type": "string",
                "minLength": 1,
                "maxLength": 70,
                "pattern": r"^[A-Za-z0-9 '()+,\-.:=?]{1,70}$",
            },
            "metadata": ref("MetadataRequest"),
        },
        "required": ["serial_number"],
    },
    "UpdateClientRequest": {
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": CLIENT_STATES},
            "metadata": ref("MetadataRequest"),
        },
        "required": ["state"],
    },
    "Client": {
        "type": "object",
        "properties": {
            "serial_number": {"type": "string"},
            "state": {"type": "string", "enum": CLIENT_STATES},
            "tss_id": _UUID,
            "metadata": ref("Metadata"),
            "time_creation": ref("Timestamp"),
            "time_update": ref("Timestamp"),
            "_id": _UUID,
            "_type": {"type": "string", "enum": ["CLIENT"]},
            "_env": ref("Env"),
            "_version": ref("Version"),
        },
        "required": [
            "serial_number",
            "state",
            "tss_id",
            "_id",
            "_type",
            "_env",
            "_version",
            "time_creation",
            "time_update",
        ],
    },
    "ReceiptV1": {
        "type": "object",
        "properties": {
            "receipt_type": {"type": "string", "enum": RECEIPT_TYPES},
            "amounts_per_vat_rate": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "vat_rate": {"type": "string", "enum": VAT_RATES + VAT_RATES_DEPRECATED},
                        "amount": {"type": "string", "pattern": AMOUNT, "maxLength": 30},
                    },
                    "required": ["vat_rate", "amount"],
                },
            },
            "amounts_per_payment_type": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "payment_type": {"type": "string", "enum": ["CASH", "NON_CASH"]},
                        "amount": {"type": "string", "pattern": AMOUNT, "maxLength": 30},
                        "currency_code": {"type": "string", "pattern": r"^[a-zA-Z]{3}$"},
                    },
                    "required": ["payment_type", "amount"],
                },
            },
        },
        "required": ["receipt_type", "amounts_per_vat_rate"],
    },
    "OrderV1": {
        "type": "object",
        "properties": {
            "line_items": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "properties": {
                        "quantity": {
                            "type": "string",
                            "pattern": r"^-?\d+(\.\d{1,5})?$",
                            "maxLength": 30,
                        },
                        "text": {"type": "string", "maxLength": 255},
                        "price_per_unit": {"type": "string", "pattern": AMOUNT, "maxLength": 30},
                    },
                    "required": ["quantity", "text", "price_per_unit"],
                },
            }
        },
        "required": ["line_items"],
    },
    "StandardV1": {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "receipt": ref("ReceiptV1"),
            "order": ref("OrderV1"),
            "other": {"type": "object"},
        },
        "additionalProperties": False,
    },
    "RawSchema": {
        "type": "object",
        "properties": {
            "process_type": {"type": "string", "maxLength": 100, "pattern": r"^[ -~]*$"},
            "process_data": {"type": "string", "pattern": r"^[A-Za-z0-9+/]*={0,2}$"},
        },
        "required": ["process_type", "process_data"],
    },
    "TxSchema": {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {"standard_v1": ref("StandardV1"), "raw": ref("RawSchema")},
        "additionalProperties": False,
    },
    "TxRequest": {
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": TX_STATES},
            "client_id": _UUID,
            "schema": ref("TxSchema"),
            "metadata": ref("MetadataRequest"),
        },
        "required": ["state", "client_id"],
    },
    "Transaction": {
        "type": "object",
        "properties": {
            "number": {"type": "integer", "minimum": 0},
            "time_start": ref("Timestamp"),
            "time_end": ref("Timestamp"),
            "client_serial_number": {"type": "string"},
            "tss_serial_number": {"type": "string"},
            "state": {"type": "string", "enum": TX_STATES},
            "client_id": _UUID,
            "schema": {
                "type": "object",
                "properties": {"standard_v1": {"type": "object"}, "raw": ref("RawSchema")},
            },
            "revision": {"type": "integer", "minimum": 1},
            "latest_revision": {"type": "integer", "minimum": 1},
            "tss_id": _UUID,
            "metadata": ref("Metadata"),
            "qr_code_data": {"type": "string"},
            "log": {
                "type": "object",
                "properties": {
                    "operation": {"type": "string", "enum": ["Start", "Update", "Finish"]},
                    "timestamp": ref("Timestamp"),
                    "timestamp_format": {"type": "string"},
                },
                "required": ["operation", "timestamp", "timestamp_format"],
            },
            "signature": {
                "type": "object",
                "properties": {
                    "value": {"type": "string"},
                    "algorithm": {"type": "string"},
                    "counter": {"type": "string"},
                    "public_key": {"type": "string"},
                },
                "required": ["value", "algorithm", "counter", "public_key"],
            },
            "_id": _UUID,
            "_type": {"type": "string", "enum": ["TRANSACTION"]},
            "_env": ref("Env"),
            "_version": ref("Version"),
        },
        "required": [
            "tss_id",
            "tss_serial_number",
            "client_id",
            "client_serial_number",
            "state",
            "revision",
            "latest_revision",
            "_type",
            "_id",
            "_env",
            "_version",
            "number",
            "time_start",
            "log",
            "signature",
        ],
    },
    "Export": {
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": EXPORT_STATES},
            "exception": {"type": "string", "enum": EXPORT_EXCEPTIONS},
            "time_request": ref("Timestamp"),
            "time_start": ref("Timestamp"),
            "time_end": ref("Timestamp"),
            "time_error": ref("Timestamp"),
            "time_expiration": ref("Timestamp"),
            "estimated_time_of_completion": ref("Timestamp"),
            "metadata": ref("Metadata"),
            "tss_id": _UUID,
            "_id": _UUID,
            "_type": {"type": "string", "enum": ["EXPORT"]},
            "_env": ref("Env"),
            "_version": ref("Version"),
        },
        "required": ["state", "time_request", "_type", "_id", "_env", "_version"],
    },
}


SHOW_DELETED: tuple[str, Schema] = ("show_deleted", {"type": "boolean"})  # accepted, no effect


def states_query(states: list[str]) -> tuple[str, Schema]:
    """fiskaly's ``states`` list filter (``states=A&states=B`` or ``states[0]=A``)."""
    return "states", {"type": "array", "items": {"type": "string", "enum": states}}


def list_schema(item: str, type_name: str) -> Schema:
    return {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": ref(item)},
            "count": {"type": "integer", "minimum": 0},
            "_type": {"type": "string", "enum": [type_name]},
            "_env": ref("Env"),
            "_version": ref("Version"),
        },
        "required": ["data", "count", "_type", "_env", "_version"],
    }
