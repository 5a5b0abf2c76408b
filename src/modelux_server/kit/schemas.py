"""Base for request bodies and the rules every body obeys at the boundary.

* Unknown fields are an error, not silently dropped.
* No string anywhere in a body may hold a NUL character (422
  `invalid_characters`): PostgreSQL text cannot store one, SQLite would, so
  without this rule the same request would be a 500 on one database and stored
  on the other.
* `null` is accepted only by the fields listed in `nullable` (422
  `null_not_allowed` elsewhere). A body's default is every field whose type
  admits None; an `Update` (PATCH) body admits None for every field only so it
  can be left out, so there `null` means "clear it" and must be listed.
* The JSON schema a body publishes (/openapi.json, /docs) states both rules:
  `null` only where it is accepted, and a no-NUL pattern on free strings.

The answers' shared shapes live here too, so every entry point (management
API, MCP tools, dashboard forms) builds them the same way: the 422 for bad
input (`invalid_input`, `parse`), the single-object envelope `{"data": ...}`
(`one`) and the list envelope `{"data", "next_cursor", "has_more"}`
(`page_body`, `many`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from modelux_server.errors import BadRequest, ModeluxError, ValidationFailed
from modelux_server.kit.pagination import Page

T = TypeVar("T")
B = TypeVar("B", bound=BaseModel)
Render = Callable[[T], dict[str, Any]]

# pydantic error types that have their own contract code; the rest are `invalid_field`
ERROR_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "invalid_characters": "invalid_characters",
    "null_not_allowed": "null_not_allowed",
}


def error_code(pydantic_type: str) -> str:
    """The contract's `code` for one pydantic validation error type."""
    return ERROR_CODES.get(pydantic_type, "invalid_field")


def invalid_input(errors: Sequence[Mapping[str, Any]]) -> ModeluxError:
    """pydantic's first error as the contract's: a 422 naming the field, or a 400
    when the body is not JSON or not an object."""
    first: Mapping[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return BadRequest("The body is not valid JSON.", code="invalid_json")
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    if kind == "model_attributes_type" or (kind == "missing" and not loc):
        return BadRequest("The body must be a JSON object.", code="invalid_json")
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return ValidationFailed(message, code=error_code(kind), param=param)


def parse(model: type[B], data: Mapping[str, Any]) -> B:
    """`data` checked by a body schema outside FastAPI (dashboard forms, MCP
    arguments), refused exactly as the management API refuses the same body."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from None


def page_body(page: Page[T], render: Render[T]) -> dict[str, Any]:
    """The list envelope of every paginated answer."""
    return {
        "data": [render(item) for item in page.items],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


def one(render: Render[T]) -> Render[T]:
    """`render` inside the single-object envelope `{"data": ...}`."""
    return lambda item: {"data": render(item)}


def many(render: Render[T]) -> Callable[[Page[T]], dict[str, Any]]:
    """`render` applied to a page, inside the list envelope."""
    return lambda page: page_body(page, render)


def nul_path(value: Any) -> str | None:
    """Where the first NUL character hides in a JSON-like value, keys included
    (`targets.0.model`, or "" for the value itself), or None."""
    parts = _nul_parts(value)
    return None if parts is None else ".".join(reversed(parts))


def has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in a JSON-like value, keys included."""
    return _nul_parts(value) is not None


def _nul_parts(value: Any) -> list[str] | None:
    # the path is built (innermost part first) only once something is found
    if isinstance(value, str):
        return [] if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if "\x00" in name:
                # the path is echoed as `param`: it must not carry the character itself
                return [name.replace("\x00", "\\u0000")]
            found = _nul_parts(item)
            if found is not None:
                found.append(name)
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_parts(item)
            if found is not None:
                found.append(str(index))
                return found
    return None


def reject_nul(value: Any) -> Any:
    if has_nul(value):
        raise PydanticCustomError("invalid_characters", "must not contain NUL characters")
    return value


# For the extra fields of a body that allows them (`__pydantic_extra__: dict[str, Clean]`).
Clean = Annotated[Any, AfterValidator(reject_nul)]


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError("int_from_float", "must be a whole number")
        return int(value)
    return value


# A JSON integer as JSON Schema's `integer` reads it: 60 and 60.0, never "60", 60.5 or
# true. Last in `Annotated[int, Field(ge=...), WHOLE_NUMBER]`, so the bounds stay in the schema.
WHOLE_NUMBER = BeforeValidator(_whole_number)


def _admits_none(annotation: Any) -> bool:
    return annotation is None or annotation is Any or type(None) in get_args(annotation)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    nullable: ClassVar[frozenset[str]] = frozenset()
    partial: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "nullable" not in cls.__dict__:
            cls.nullable = (
                frozenset()
                if cls.partial
                else frozenset(name for name, f in cls.model_fields.items() if _admits_none(f.annotation))
            )

    @field_validator("*", mode="before")
    @classmethod
    def _boundary(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise PydanticCustomError("null_not_allowed", "must not be null")
        return reject_nul(value)

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # the published schema admits `null` exactly where `_boundary` does, so a
        # client generator (or a fuzzer) never sends a null the server refuses
        schema = handler(core)
        for name, prop in handler.resolve_ref_schema(schema).get("properties", {}).items():
            if name not in cls.nullable:
                _without_null(prop)
            no_nul(prop, stripped=bool(cls.model_config.get("str_strip_whitespace")))
        return schema


# JSON Schema for "no NUL character", on every string a body or a query may hold
NO_NUL = "^[^\\x00]*$"
# the same, and not blank: a stripped string that must not be empty needs a non-space
NO_NUL_NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"


def no_nul(schema: dict[str, Any], *, stripped: bool = False) -> None:
    """State the NUL rule on every free string in `schema` (in place); with `stripped`
    (the body strips whitespace), a string with a minimum length must hold a non-space.

    A string with its own pattern, enum, const or format is left as it is: those
    say more already (and an email format beside a pattern makes generators
    search for minutes)."""
    if schema.get("type") == "string" and not schema.keys() & {"pattern", "enum", "const", "format"}:
        blank_refused = stripped and schema.get("minLength", 0) >= 1
        schema["pattern"] = NO_NUL_NOT_BLANK if blank_refused else NO_NUL
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, ()):
            no_nul(option, stripped=stripped)
    if isinstance(schema.get("items"), dict):
        no_nul(schema["items"], stripped=stripped)


def _without_null(prop: dict[str, Any]) -> None:
    options = [option for option in prop.get("anyOf", ()) if option.get("type") != "null"]
    if "anyOf" in prop and len(options) == 1:
        del prop["anyOf"]
        prop.update(options[0])
    elif "anyOf" in prop:
        prop["anyOf"] = options
    if "default" in prop and prop["default"] is None:
        del prop["default"]


class Update(Body):
    """A partial update: a field left out stays; `null` clears a field listed in `nullable`."""

    partial = True


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")
