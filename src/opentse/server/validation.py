"""A small JSON-Schema validator for the request bodies of our OpenAPI document.

The schemas in ``schemas.py`` are the single source: the OpenAPI document publishes
them and this module enforces them, so what we document is what we check. Supported
keywords (the subset fiskaly's spec uses): type, properties, required,
additionalProperties, enum, pattern, minLength, maxLength, minimum, maximum, items,
minItems, maxItems, maxProperties, minProperties, oneOf, nullable (OpenAPI 3.0),
$ref to components.
A failure raises ``ApiError(400, "E_FAILED_SCHEMA_VALIDATION")`` (fiskaly, "General
errors": "The request failed to validate against the required OpenAPI schema. The
details are described in the message property of the error.").
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    """A schema pattern with JSON Schema's (ECMA-262) meaning, as fiskaly checks it:
    ``\\d`` is ASCII only, and a final ``$`` ends the input (Python's ``$`` also
    matches before a trailing newline, so "KASSE-1\\n" passed ``^...$``)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.ASCII)


class SchemaViolation(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def _meant(options: list[Schema], value: Any) -> int:
    """The alternative of a oneOf that ``value`` meant: the first whose required
    members it has (``{"refresh_token": null}`` is told about its refresh_token, not
    that api_key is missing), else the first."""
    if isinstance(value, dict):
        for i, option in enumerate(options):
            required = option.get("required")
            if required and all(name in value for name in required):
                return i
    return 0


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
    if value is None and schema.get("nullable") is True:
        return  # OpenAPI 3.0: null is allowed besides the schema's own values
    if "oneOf" in schema:
        matches = 0
        errors: list[SchemaViolation] = []
        for option in schema["oneOf"]:
            try:
                check(value, option, components, path)
                matches += 1
            except SchemaViolation as exc:
                errors.append(exc)
        if matches != 1:
            if matches == 0 and errors:
                raise errors[_meant(schema["oneOf"], value)]
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


# Members nested deeper than this are refused (the body itself is level 1). The
# schemas need 6 (standard_v1.receipt.amounts_per_vat_rate[0].vat_rate); free content
# (standard_v1.other) was signed at any depth the parser took (about 1,000), and the
# answer, which repeats it, then failed 500 past orjson's limit of 255, on every
# retry of the signed revision too.
MAX_BODY_DEPTH = 64


def _nested_beyond(node: Any, levels: int) -> bool:
    """Whether the object or array ``node`` holds one more than ``levels`` levels
    below it (the recursion ends there: at most MAX_BODY_DEPTH frames)."""
    for child in node.values() if type(node) is dict else node:
        if (type(child) is dict or type(child) is list) and (
            levels == 0 or _nested_beyond(child, levels - 1)
        ):
            return True
    return False


def _deep_path(node: Any, levels: int, path: Path) -> Path | None:
    """``_nested_beyond`` telling where: the path of the first such member."""
    for key, child in node.items() if type(node) is dict else enumerate(node):
        if type(child) is dict or type(child) is list:
            if levels == 0:
                return (path, key)
            found = _deep_path(child, levels - 1, (path, key))
            if found is not None:
                return found
    return None


def _too_deep(value: Any) -> Path | None:
    """The path of the first object or array below MAX_BODY_DEPTH levels, else None.
    Bodies come from ``json`` (plain dict and list); the path is only looked for
    once the cheap walk found one."""
    if type(value) is not dict and type(value) is not list:
        return None
    if not _nested_beyond(value, MAX_BODY_DEPTH - 1):
        return None
    return _deep_path(value, MAX_BODY_DEPTH - 1, ROOT)


def validate(value: Any, schema: Schema, components: dict[str, Schema]) -> None:
    """Validate a request body; raise the fiskaly 400 on the first violation.

    A ``{"$ref": ...}`` to a component (what every route passes) runs the compiled
    form of that component (``compiled``); anything else is interpreted by ``check``.
    A body nested deeper than MAX_BODY_DEPTH is refused first, whatever the schema.
    """
    deep = _too_deep(value)
    if deep is not None:
        raise ApiError(
            400,
            "E_FAILED_SCHEMA_VALIDATION",
            f"body/{render_path(deep)}: nested deeper than {MAX_BODY_DEPTH} levels",
        )
    try:
        ref = schema.get("$ref") if len(schema) == 1 else None
        if isinstance(ref, str):
            compiled(components, ref.rsplit("/", 1)[-1])(value, ROOT)
        else:
            check(value, schema, components)
    except SchemaViolation as exc:
        # "body/schema.raw: ..." for a member, "body: ..." for the body itself (it
        # read "body/must be of type object")
        where = f"body/{exc}" if exc.path else f"body: {exc}"
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", where) from None


# compiled validators ---------------------------------------------------------------
#
# ``check`` walks the schema dictionaries on every call; the register's hot route paid
# ~15 us per receipt body for it. ``compile_schema`` turns a schema into closures once,
# testing the same rules in the same order with the same messages (a differential
# property test holds it to ``check``). Paths are built only for an error: a path is
# ``ROOT`` or ``(parent, name)`` / ``(parent, index)``, rendered like ``_join``.

Path = Any  # ROOT, or (parent path, str property name | int item index)
Validator = Callable[[Any, Path], None]
ROOT: Path = None


def render_path(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(part)
    text = ""
    for part in reversed(parts):
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, part)
    return text


def _fail(path: Path, message: str) -> SchemaViolation:
    return SchemaViolation(render_path(path), message)


# memo of compiled components: (id of the mapping, name) -> (the mapping, validator);
# the mapping is kept and compared, so a new mapping at a reused id is compiled anew
_CACHE: dict[tuple[int, str], tuple[dict[str, Schema], Validator]] = {}


def compiled(components: dict[str, Schema], name: str) -> Validator:
    """The validator of component ``name`` (built once per components mapping)."""
    key = (id(components), name)
    found = _CACHE.get(key)
    if found is None or found[0] is not components:
        found = (components, compile_schema({"$ref": f"#/{name}"}, components))
        _CACHE[key] = found
    return found[1]


def compile_schema(schema: Schema, components: dict[str, Schema]) -> Validator:
    """A validator raising the SchemaViolation ``check`` raises (None when valid)."""
    return _Compiler(components).build(schema)


class _Compiler:
    def __init__(self, components: dict[str, Schema]) -> None:
        self.components = components
        self.refs: dict[str, Validator] = {}

    def ref(self, name: str) -> Validator:
        """Components compile once each; a reference is resolved when first called,
        so recursive schemas compile too."""
        done = self.refs.get(name)
        if done is not None:
            return done
        target: list[Validator] = []

        def late(value: Any, path: Path) -> None:
            target[0](value, path)

        self.refs[name] = late
        target.append(self.build(self.components[name]))
        self.refs[name] = target[0]
        return target[0]

    def build(self, schema: Schema) -> Validator:
        if "$ref" in schema:
            return self.ref(schema["$ref"].rsplit("/", 1)[-1])
        if schema.get("nullable") is True:
            inner = self.build({k: v for k, v in schema.items() if k != "nullable"})

            def or_null(value: Any, path: Path) -> None:
                if value is not None:
                    inner(value, path)

            return or_null
        typ = schema.get("type")
        if "oneOf" not in schema and typ in ("string", "object", "array"):
            return self._typed(schema, typ)  # one closure for the whole node
        steps: list[Validator] = []
        if "oneOf" in schema:
            options = schema["oneOf"]
            steps.append(self._one_of([self.build(o) for o in options], options))
        typ = schema.get("type")
        if typ is not None:
            steps.append(_type_step(typ))
        if "enum" in schema:
            steps.append(_enum_step(schema["enum"]))
        kinds = (
            _string_step(schema),
            _number_step(schema),
            self._array_step(schema),
            self._object_step(schema),
        )
        steps.append(_by_kind(*kinds))
        if len(steps) == 1:
            return steps[0]

        def run(value: Any, path: Path) -> None:
            for step in steps:
                step(value, path)

        return run

    def _typed(self, schema: Schema, typ: str) -> Validator:
        """A node whose ``type`` settles which of ``check``'s kind checks apply: the
        type test, the enum test and that kind's rules in one function."""
        type_message = f"must be of type {typ}"
        options = schema.get("enum")
        enum_message = f"must be one of {', '.join(map(str, options))}" if options else ""
        kind: type
        if typ == "string":
            kind, kind_rules = str, _string_step(schema)
        elif typ == "object":
            kind, kind_rules = dict, self._object_step(schema)
        else:
            kind, kind_rules = list, self._array_step(schema)

        def typed(value: Any, path: Path) -> None:
            if not isinstance(value, kind):
                raise _fail(path, type_message)
            if options is not None and value not in options:
                raise _fail(path, enum_message)
            if kind_rules is not None:
                kind_rules(value, path)

        return typed

    @staticmethod
    def _one_of(options: list[Validator], schemas: list[Schema]) -> Validator:
        def one_of(value: Any, path: Path) -> None:
            matches = 0
            errors: list[SchemaViolation] = []
            for option in options:
                try:
                    option(value, path)
                    matches += 1
                except SchemaViolation as exc:
                    errors.append(exc)
            if matches != 1:
                if matches == 0 and errors:
                    raise errors[_meant(schemas, value)]
                raise _fail(path, "matches more than one alternative")

        return one_of

    def _array_step(self, schema: Schema) -> Validator | None:
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        items = self.build(schema["items"]) if schema.get("items") is not None else None
        if lo is None and hi is None and items is None:
            return None

        def array(value: list[Any], path: Path) -> None:
            if lo is not None and len(value) < lo:
                raise _fail(path, f"must have at least {lo} items")
            if hi is not None and len(value) > hi:
                raise _fail(path, f"must have at most {hi} items")
            if items is not None:
                for i, item in enumerate(value):
                    items(item, (path, i))

        return array

    def _object_step(self, schema: Schema) -> Validator | None:
        most, least = schema.get("maxProperties"), schema.get("minProperties")
        required = tuple(schema.get("required", ()))
        properties = {k: self.build(v) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        closed = extra is False
        extra_check = self.build(extra) if isinstance(extra, dict) else None
        limits = most is not None or least is not None or required or properties
        if not limits and not closed and extra_check is None:
            return None

        def obj(value: dict[str, Any], path: Path) -> None:
            if most is not None and len(value) > most:
                raise _fail(path, f"must have at most {most} properties")
            if least is not None and len(value) < least:
                raise _fail(path, f"must have at least {least} properties")
            for name in required:
                if name not in value:
                    raise _fail((path, name), "is required")
            for name, item in value.items():
                prop = properties.get(name)
                if prop is not None:
                    prop(item, (path, name))
                elif closed:
                    raise _fail((path, name), "is not allowed")
                elif extra_check is not None:
                    extra_check(item, (path, name))

        return obj


def _type_step(name: str) -> Validator:
    message = f"must be of type {name}"

    def typed(value: Any, path: Path) -> None:
        if not _is_type(value, name):
            raise _fail(path, message)

    return typed


def _enum_step(options: list[Any]) -> Validator:
    message = f"must be one of {', '.join(map(str, options))}"

    def enum(value: Any, path: Path) -> None:
        if value not in options:
            raise _fail(path, message)

    return enum


def _string_step(schema: Schema) -> Validator | None:
    lo, hi, pattern = schema.get("minLength"), schema.get("maxLength"), schema.get("pattern")
    if lo is None and hi is None and pattern is None:
        return None
    search = _regex(pattern).search if pattern is not None else None

    def string(value: str, path: Path) -> None:
        if lo is not None and len(value) < lo:
            raise _fail(path, f"must have at least {lo} characters")
        if hi is not None and len(value) > hi:
            raise _fail(path, f"must have at most {hi} characters")
        if search is not None and not search(value):
            raise _fail(path, f"must match pattern {pattern}")

    return string


def _number_step(schema: Schema) -> Validator | None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is None and hi is None:
        return None

    def number(value: float, path: Path) -> None:
        if lo is not None and value < lo:
            raise _fail(path, f"must be >= {lo}")
        if hi is not None and value > hi:
            raise _fail(path, f"must be <= {hi}")

    return number


def _by_kind(
    string: Validator | None,
    number: Validator | None,
    array: Validator | None,
    obj: Validator | None,
) -> Validator:
    """``check``'s dispatch on the value's kind (bool is no number here)."""

    def kind(value: Any, path: Path) -> None:
        if isinstance(value, str):
            if string is not None:
                string(value, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if number is not None:
                number(value, path)
        elif isinstance(value, list):
            if array is not None:
                array(value, path)
        elif isinstance(value, dict) and obj is not None:
            obj(value, path)

    return kind
