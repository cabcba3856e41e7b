"""Project a tool's JSON schema onto the parameter dialect SWML accepts.

SWAIG function ``parameters`` are a closed subset of JSON Schema: the top level
allows only ``type``, ``properties`` and ``required``, and each property only a
few keys per type (``description``, ``enum``, ``default``, ``nullable``,
``pattern``, ``format``, ``items``, ...). Validation keywords such as
``additionalProperties``, ``minimum`` or ``maxLength`` make the whole SWML
document invalid. They are dropped here; nothing is lost, because the webhook
validates every call's arguments against the tool's full schema before the
handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livekit_fallback.errors import SwaigSchemaError

__all__ = ["SwaigSchemaError", "swaig_parameters"]

_ALLOWED: dict[str, frozenset[str]] = {
    "string": frozenset({"type", "description", "nullable", "enum", "default", "pattern", "format"}),
    "integer": frozenset({"type", "description", "nullable", "enum", "default"}),
    "number": frozenset({"type", "description", "nullable", "enum", "default"}),
    "boolean": frozenset({"type", "description", "nullable", "default"}),
    "array": frozenset({"type", "description", "nullable", "default", "items"}),
    "object": frozenset({"type", "description", "nullable", "default", "properties", "required"}),
    "null": frozenset({"type", "description"}),
}
_FORMATS = {
    "date-time": "date_time",
    "date_time": "date_time",
    "time": "time",
    "date": "date",
    "duration": "duration",
    "email": "email",
    "hostname": "hostname",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
    "uri": "uri",
    "uuid": "uuid",
}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def swaig_parameters(schema: Mapping[str, Any], *, tool: str) -> dict[str, Any]:
    """Convert a tool's ``type: object`` JSON schema to SWAIG ``parameters``.

    Args:
        schema: The tool's argument schema (``{"type": "object", "properties": ...}``).
        tool: The tool name, for error messages.

    Returns:
        ``{"type": "object", "properties": {...}}`` plus ``required`` when the
        schema has it, using only keys the SWML schema allows.

    Raises:
        SwaigSchemaError: A property has no representable shape (no ``type``,
            ``enum``, ``const``, ``anyOf``, ``oneOf`` or ``allOf``), or uses
            ``$ref``.
    """
    properties = schema.get("properties") or {}
    out: dict[str, Any] = {
        "type": "object",
        "properties": {name: _property(sub, f"{tool}.{name}") for name, sub in properties.items()},
    }
    required = [r for r in schema.get("required") or () if r in properties]
    if required:
        out["required"] = required
    return out


def _property(schema: Any, path: str) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise SwaigSchemaError(f"{path}: a property schema must be an object")
    if "$ref" in schema:
        raise SwaigSchemaError(f"{path}: $ref cannot be declared in SWML; inline the definition")
    for keyword in ("anyOf", "oneOf", "allOf"):
        if keyword in schema:
            return {keyword: [_property(sub, f"{path}.{keyword}[{i}]") for i, sub in enumerate(schema[keyword])]}
    if "const" in schema and "type" not in schema:
        return {"const": schema["const"]}
    kind, nullable = _type_of(schema, path)
    out: dict[str, Any] = {"type": kind}
    for key in sorted(_ALLOWED[kind] - {"type"}):
        if key in schema:
            value = _keyword(kind, key, schema[key], path)
            if value is not None:
                out[key] = value
    _finish(out, schema, kind, nullable, path)
    return out


def _keyword(kind: str, key: str, value: Any, path: str) -> Any:
    """One keyword of a property as SWML takes it (``None``: leave it out)."""
    if key == "items":
        return _property(value, f"{path}[]")
    if key == "properties":
        return {name: _property(sub, f"{path}.{name}") for name, sub in (value or {}).items()}
    if key == "format":
        return _FORMATS.get(value)
    if key == "enum":
        return [v for v in value if _fits(kind, v)] or None
    if key == "default" and not _fits(kind, value):
        return None
    return value


def _finish(out: dict[str, Any], schema: Mapping[str, Any], kind: str, nullable: bool, path: str) -> None:
    """``const`` as a one-value enum, nullability, and the defaults SWML needs."""
    if "const" in schema and "enum" not in out and _fits(kind, schema["const"]) and "enum" in _ALLOWED[kind]:
        out["enum"] = [schema["const"]]
    if nullable or schema.get("nullable") is True:
        if kind == "null":
            raise SwaigSchemaError(f"{path}: a null property cannot also be nullable")
        out["nullable"] = True
    if kind == "array" and "items" not in out:
        out["items"] = {"type": "string"}
    if kind == "null" and "description" not in out:
        out["description"] = "Always null."


def _type_of(schema: Mapping[str, Any], path: str) -> tuple[str, bool]:
    declared = schema.get("type")
    if declared is None and "enum" in schema:
        values = schema["enum"]
        declared = next((k for k in ("string", "integer", "number") if all(_fits(k, v) for v in values)), None)
    types = declared if isinstance(declared, list) else [declared]
    non_null = [t for t in types if t != "null"]
    nullable = "null" in types and bool(non_null)
    types = non_null or types
    if len(types) != 1 or types[0] not in _ALLOWED:
        raise SwaigSchemaError(f"{path}: type {declared!r} cannot be declared in SWML")
    return types[0], nullable


def _fits(kind: str, value: Any) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES.get(kind, ()))
