"""The OpenAPI document as the reference page shows it: plain values, no HTML.

The template escapes every value; a type is a list of `Token`s (text and an
optional anchor) so a `$ref` becomes a link without Python writing markup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
# JSON Schema keywords shown beside a type, in this order, with their labels
CONSTRAINTS = (
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minimum", "min"),
    ("maximum", "max"),
    ("exclusiveMinimum", "greater than"),
    ("exclusiveMaximum", "less than"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("pattern", "pattern"),
    ("format", "format"),
    ("default", "default"),
)


@dataclass(frozen=True)
class Token:
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Field:
    name: str
    type: list[Token]
    required: bool
    description: str
    constraints: list[str]
    location: str = ""


@dataclass(frozen=True)
class Body:
    content_type: str
    type: list[Token]
    required: bool
    fields: list[Field]
    open_fields: bool  # fields besides the listed ones are allowed


@dataclass(frozen=True)
class Response:
    status: str
    description: str
    type: list[Token]


@dataclass(frozen=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    security: list[str]
    parameters: list[Field]
    body: Body | None
    responses: list[Response]


@dataclass(frozen=True)
class Section:
    tag: str
    anchor: str
    operations: list[Operation]


@dataclass(frozen=True)
class Model:
    name: str
    anchor: str
    description: str
    fields: list[Field]
    open_fields: bool


@dataclass(frozen=True)
class Scheme:
    name: str
    anchor: str
    kind: str
    description: str


@dataclass
class Reference:
    title: str
    version: str
    description: str
    sections: list[Section] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    schemes: list[Scheme] = field(default_factory=list)

    @property
    def paths(self) -> set[str]:
        return {op.path for section in self.sections for op in section.operations}


def reference(document: dict[str, Any], *, path_prefix: str = "") -> Reference:
    """Every operation under `path_prefix`, grouped by its first tag in the order tags first appear."""
    info = document.get("info", {})
    ref = Reference(
        title=str(info.get("title", "API")),
        version=str(info.get("version", "")),
        description=str(info.get("description", "")),
    )
    sections: dict[str, list[Operation]] = {}
    for path, item in document.get("paths", {}).items():
        if not path.startswith(path_prefix):
            continue
        for method in METHODS:
            if method in item:
                op = _operation(document, path, method, item[method])
                tag = (item[method].get("tags") or ["other"])[0]
                sections.setdefault(str(tag), []).append(op)
    ref.sections = [Section(tag, anchor("tag", tag), ops) for tag, ops in sections.items()]
    components = document.get("components", {})
    ref.models = [_model(name, schema) for name, schema in sorted(components.get("schemas", {}).items())]
    ref.schemes = [_scheme(name, s) for name, s in components.get("securitySchemes", {}).items()]
    return ref


def anchor(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def type_of(schema: dict[str, Any]) -> list[Token]:
    """A schema as a short type: `string`, `Project`, `array of Plan`, `string | null`."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return [Token(name, anchor("model", name))]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _joined([type_of(option) for option in schema[key]], " | ")
    if "allOf" in schema:
        return _joined([type_of(part) for part in schema["allOf"]], " & ")
    if "enum" in schema:
        return [Token("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))]
    if "const" in schema:
        return [Token(json.dumps(schema["const"]))]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [Token(" | ".join(str(k) for k in kind))]
    if kind == "array":
        return [Token("array of "), *type_of(schema.get("items", {}))]
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return [Token("object of "), *type_of(schema["additionalProperties"])]
    return [Token(str(kind or "any"))]


def constraints(schema: dict[str, Any]) -> list[str]:
    # a pattern as written (JSON quoting would double every backslash)
    return [
        f"{label} {schema[key] if key == 'pattern' else json.dumps(schema[key])}"
        for key, label in CONSTRAINTS
        if key in schema
    ]


def _joined(parts: list[list[Token]], separator: str) -> list[Token]:
    out: list[Token] = []
    for index, part in enumerate(parts):
        if index:
            out.append(Token(separator))
        out.extend(part)
    return out


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = document
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _fields(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required", []))
    return [
        Field(
            name=name,
            type=type_of(prop),
            required=name in required,
            description=str(prop.get("description", "")),
            constraints=constraints(prop),
        )
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(document: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> Operation:
    parameters = [
        Field(
            name=str(p["name"]),
            location=str(p["in"]),
            type=type_of(p.get("schema", {})),
            required=bool(p.get("required", False)),
            description=str(p.get("description") or p.get("schema", {}).get("description", "")),
            constraints=constraints(p.get("schema", {})),
        )
        for p in (_resolve(document, p) for p in op.get("parameters", []))
    ]
    security = op.get("security", document.get("security", []))
    return Operation(
        anchor=anchor("op", str(op.get("operationId") or f"{method}-{path}")),
        method=method.upper(),
        path=path,
        summary=str(op.get("summary", "")),
        description=str(op.get("description", "")),
        security=sorted({name for requirement in security for name in requirement}),
        parameters=parameters,
        body=_body(document, op.get("requestBody")),
        responses=[
            Response(str(status), str(r.get("description", "")), _response_type(r))
            for status, r in sorted(op.get("responses", {}).items())
        ],
    )


def _body(document: dict[str, Any], body: dict[str, Any] | None) -> Body | None:
    if not body:
        return None
    content: dict[str, Any] = body.get("content", {})
    content_type, media = next(iter(content.items()), ("application/json", {"schema": {}}))
    schema: dict[str, Any] = media.get("schema") or {}
    # an optional body is FastAPI's `anyOf: [Model, null]`: document the model
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    target = _resolve(document, options[0]) if len(options) == 1 else {}
    return Body(
        content_type=str(content_type),
        type=type_of(options[0]) if len(options) == 1 else type_of(schema),
        required=bool(body.get("required", False)),
        fields=_fields(target),
        open_fields=_open(target),
    )


def _open(schema: dict[str, Any]) -> bool:
    # pydantic writes `true` or `{}` for a model that keeps unknown fields
    return schema.get("additionalProperties", False) not in (False, None)


def _response_type(response: dict[str, Any]) -> list[Token]:
    media = next(iter(response.get("content", {}).values()), None)
    if media is None:
        return []
    schema = media.get("schema", {})
    return type_of(schema) if schema else []


def _model(name: str, schema: dict[str, Any]) -> Model:
    return Model(
        name=name,
        anchor=anchor("model", name),
        description=str(schema.get("description", "")),
        fields=_fields(schema),
        open_fields=_open(schema),
    )


def _scheme(name: str, scheme: dict[str, Any]) -> Scheme:
    kind = str(scheme.get("type", ""))
    if kind == "http":
        kind = f"HTTP {scheme.get('scheme', '')}".strip()
        if scheme.get("bearerFormat"):
            kind += f" ({scheme['bearerFormat']})"
    return Scheme(
        name=name, anchor=anchor("auth", name), kind=kind, description=str(scheme.get("description", ""))
    )
