"""A small JSON-Schema validator for the request bodies of our OpenAPI document.

The schemas in ``schemas.py`` are the single source: the OpenAPI document publishes
them and this module enforces them, so what we document is what we check. Supported
keywords (the subset fiskaly's spec uses): type, properties, required,
additionalProperties, enum, pattern, minLength, maxLength, minimum, maximum, items,
minItems, maxItems, maxProperties, minProperties, oneOf, $ref to components.
A failure raises ``ApiError(400, "E_FAILED_SCHEMA_VALIDATION")`` (fiskaly, "General
errors": "The request failed to validate against the required OpenAPI schema. The
details are described in the message property of the error.").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from opentse.server.problems import ApiError

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class SchemaViolation(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def check(value: Any, schema: Schema, components: dict[str, Schema], path: str = "") -> None:
    """Raise SchemaViolation at the first rule ``value`` breaks."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        check(value, components[name], components, path)
        return
    if "oneOf" in schema:
        matches = 0
        first_error: SchemaViolation | None = None
        for option in schema["oneOf"]:
            try:
                check(value, option, components, path)
                matches += 1
            except SchemaViolation as exc:
                first_error = first_error or exc
        if matches != 1:
            if matches == 0 and first_error is not None:
                raise first_error
            raise SchemaViolation(path, "matches more than one alternative")
    typ = schema.get("type")
    if typ is not None and not _is_type(value, typ):
        raise SchemaViolation(path, f"must be of type {typ}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(path, f"must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        _check_string(value, schema, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(path, f"must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(path, f"must be <= {schema['maximum']}")
    elif isinstance(value, list):
        _check_array(value, schema, components, path)
    elif isinstance(value, dict):
        _check_object(value, schema, components, path)


def _check_string(value: str, schema: Schema, path: str) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise SchemaViolation(path, f"must have at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaViolation(path, f"must have at most {schema['maxLength']} characters")
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        raise SchemaViolation(path, f"must match pattern {schema['pattern']}")


def _check_array(
    value: list[Any], schema: Schema, components: dict[str, Schema], path: str
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise SchemaViolation(path, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaViolation(path, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for i, item in enumerate(value):
            check(item, items, components, f"{path}[{i}]")


def _check_object(
    value: dict[str, Any], schema: Schema, components: dict[str, Schema], path: str
) -> None:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise SchemaViolation(path, f"must have at most {schema['maxProperties']} properties")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        raise SchemaViolation(path, f"must have at least {schema['minProperties']} properties")
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaViolation(_join(path, name), "is required")
    properties: dict[str, Schema] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = _join(path, name)
        if name in properties:
            check(item, properties[name], components, sub)
        elif extra is False:
            raise SchemaViolation(sub, "is not allowed")
        elif isinstance(extra, dict):
            check(item, extra, components, sub)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(value: Any, schema: Schema, components: dict[str, Schema]) -> None:
    """Validate a request body; raise the fiskaly 400 on the first violation."""
    try:
        check(value, schema, components)
    except SchemaViolation as exc:
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", f"body/{exc}") from None
