"""The sales inquiry's body and answer.

The body is tenant text that ends up in an email to people: every rule is
stated in the published schema, so a request valid by the schema is accepted
and one that is not is refused with the contract's 422 (tests/fuzz holds both):

* `message`: 1 to 5,000 characters once line breaks are normalised (CRLF and
  CR become LF, as a browser's textarea sends them), no control character but
  the line feed and the tab;
* `needs`: known words only, each at most once;
* `contact_email`: a plain ASCII address (what the pattern states), stored
  lower-cased.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from modelux_server.kit.schemas import WHOLE_NUMBER, Body, iso
from modelux_server.models import SalesInquiry

MAX_MESSAGE = 5_000
MAX_SEATS = 1_000_000
MAX_MONTHLY_REQUESTS = 1_000_000_000_000

Need = Literal[
    "sso",
    "scim",
    "audit_log",
    "residency",
    "retention",
    "invoicing",
    "warehouse_export",
    "sla",
    "support",
    "volume",
    "other",
]
NEEDS: tuple[str, ...] = get_args(Need)
# how the dashboard's form and the email to sales name each need
NEED_LABELS: dict[str, str] = {
    "sso": "Single sign-on (SSO)",
    "scim": "User provisioning (SCIM)",
    "audit_log": "Audit log",
    "residency": "Data residency",
    "retention": "Payload retention controls",
    "invoicing": "Invoicing instead of a card",
    "warehouse_export": "Warehouse export",
    "sla": "An SLA",
    "support": "A dedicated support channel",
    "volume": "More requests than the self-serve plans allow",
    "other": "Something else",
}

# C0 and C1 controls (Unicode category Cc) but tab, line feed and carriage return
# (the latter normalised away before the check): the pattern the schema publishes
_CONTROL = "\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F"
MESSAGE_PATTERN = f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"
_ALLOWED_CONTROLS = frozenset("\n\t")
# what `organization.service.normalize_email` accepts, restricted to ASCII so that a
# JSON-schema validator and this server agree on every address (white space around
# it is allowed: every body strips it)
EMAIL_PATTERN = (
    "^\\s*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\\s*$"
)
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-")


def _clean_message(value: Any) -> Any:
    """Line breaks as LF, then no other control character (before whitespace is stripped,
    so a control character at either end is refused, as the pattern says)."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in text):
        raise PydanticCustomError(
            "invalid_characters", "must not contain control characters other than line breaks and tabs"
        )
    return text


Message = Annotated[
    str,
    Field(min_length=1, max_length=MAX_MESSAGE),
    BeforeValidator(_clean_message),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_MESSAGE,
            "pattern": MESSAGE_PATTERN,
            "description": "What you would like to talk about. Line breaks and tabs are kept.",
        }
    ),
]


def _label_ok(label: str) -> bool:
    return (
        bool(label)
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
    )


def _email(value: str) -> str:
    address = value.lower()
    local, at, domain = address.partition("@")
    labels = domain.split(".")
    if (
        not at
        or not local
        or not set(local) <= _EMAIL_LOCAL
        or len(labels) < 2
        or not all(_label_ok(label) for label in labels)
    ):
        raise PydanticCustomError("invalid_email", "must be an email address, e.g. jane@example.com")
    return address


ContactEmail = Annotated[
    str,
    Field(min_length=3, max_length=320),
    AfterValidator(_email),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": 320,
            "pattern": EMAIL_PATTERN,
            "description": "Where sales should reply; by default the sender's email or the owners'.",
        }
    ),
]
Seats = Annotated[
    int,
    Field(ge=1, le=MAX_SEATS, description="How many people would use modelux."),
    WHOLE_NUMBER,
]
MonthlyRequests = Annotated[
    int,
    Field(ge=0, le=MAX_MONTHLY_REQUESTS, description="Expected proxy requests a month."),
    WHOLE_NUMBER,
]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("needs_repeat", "must not name a need twice")
    return values


Needs = Annotated[
    list[Need],
    Field(
        max_length=len(NEEDS),
        description="What the plan should cover: " + ", ".join(NEEDS) + ".",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_unique),
]


class SalesInquiryCreate(Body):
    message: Message
    seats: Seats | None = None
    monthly_requests: MonthlyRequests | None = None
    needs: Needs = Field(default_factory=list)
    contact_email: ContactEmail | None = None


def render(inquiry: SalesInquiry) -> dict[str, Any]:
    return {
        "id": inquiry.id,
        "object": "sales_inquiry",
        "org_id": inquiry.org_id,
        "seats": inquiry.seats,
        "monthly_requests": inquiry.monthly_requests,
        "needs": list(inquiry.needs),
        "message": inquiry.message,
        "contact_email": inquiry.contact_email,
        "requested_by": inquiry.requested_by,
        "source": inquiry.source,
        "created_at": iso(inquiry.created_at),
    }
