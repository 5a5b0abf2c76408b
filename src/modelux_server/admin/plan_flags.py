"""An Enterprise plan given as command-line options, turned into the API's `PlanInput`.

The options name single fields (`--net-days 45`); the API takes each part of the terms
whole (`payment: {...}`). On edit, a part that some option touches is the current
version's part with those fields changed, so `--net-days 45` keeps the method and the PO
number. On create, a contract given without `--contract-start` starts today.

Two options kept from the free-text plans read as the terms they always meant:
`--invoicing 'net 30'` is invoice payment due in 30 days, `--sla '99.95% uptime'` an
uptime target of 99.95%. Anything else in them is refused with the options to use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from modelux_server.billing.operator import parse_limits
from modelux_server.errors import ValidationFailed

CLEARABLE = ("region", "price", "contract", "payment", "billing_contact", "support_channel", "sla")
MAX_JSON_BYTES = 1_000_000
_NET = re.compile(r"^\s*net\s*(\d{1,3})\s*$", re.IGNORECASE)
_UPTIME = re.compile(r"(\d{2,3}(?:\.\d{1,3})?)\s*%")


@dataclass
class PlanFlags:
    """Every plan option of `create-enterprise-plan` / `edit-enterprise-plan`; None or
    empty is "not given"."""

    name: str | None = None
    limits: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    add_features: list[str] = field(default_factory=list)
    remove_features: list[str] = field(default_factory=list)
    region: str | None = None
    data_residency: str | None = None
    price: str | None = None
    currency: str | None = None
    price_interval: str | None = None
    minimum_commitment: str | None = None
    contract_start: str | None = None
    contract_end: str | None = None
    auto_renew: bool | None = None
    notice_days: int | None = None
    end_plan: str | None = None
    payment: str | None = None
    net_days: int | None = None
    po_number: str | None = None
    billing_contact_email: str | None = None
    billing_contact_name: str | None = None
    support_channel: str | None = None
    sla_uptime: str | None = None
    sla_response: list[str] = field(default_factory=list)
    clear: list[str] = field(default_factory=list)
    invoicing: str | None = None  # the free-text option of old: 'net 30'
    sla: str | None = None  # the free-text option of old: '99.95% uptime'

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) not in (None, [])]


def _refuse(message: str, param: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_terms", param=param)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _date(raw: str | None, option: str) -> str | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise _refuse(f"{option}: give a date as YYYY-MM-DD, not '{raw[:40]}'") from None


def _pairs(raw: list[str], option: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in raw:
        key, sep, value = pair.partition("=")
        value = value.strip()
        if not sep or not value.isdigit() or len(value) > 6:
            raise _refuse(f"{option} '{pair[:40]}': expected SEVERITY=MINUTES, e.g. sev1=30")
        out[key.strip()] = int(value)
    return out


def _part(given: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The options given for one part of the terms over the current part (None: untouched)."""
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    return {**(current or {}), **given}


def _legacy_payment(flags: PlanFlags) -> tuple[str | None, int | None]:
    if flags.invoicing is None:
        return flags.payment, flags.net_days
    if flags.payment is not None or flags.net_days is not None:
        raise _refuse("give either --invoicing or --payment/--net-days, not both")
    match = _NET.match(flags.invoicing)
    if match is None:
        raise _refuse(
            f"--invoicing '{flags.invoicing[:40]}': only 'net N' is understood; "
            "use --payment invoice --net-days N (with --price and --billing-contact-email)"
        )
    return "invoice", int(match.group(1))


def _legacy_uptime(flags: PlanFlags) -> str | None:
    if flags.sla is None:
        return None if flags.sla_uptime is None else flags.sla_uptime.strip().removesuffix("%")
    if flags.sla_uptime is not None:
        raise _refuse("give either --sla or --sla-uptime, not both")
    match = _UPTIME.search(flags.sla)
    if match is None:
        raise _refuse(
            f"--sla '{flags.sla[:40]}': give the uptime target as a percentage, e.g. '99.95%'; "
            "or use --sla-uptime 99.95 and --sla-response sev1=30"
        )
    return match.group(1)


def _features(flags: PlanFlags, current: dict[str, Any] | None) -> list[str] | None:
    if not (flags.add_features or flags.remove_features):
        return flags.features or None
    if current is None:
        raise _refuse("--add-feature and --remove-feature change an existing plan; use --feature")
    if flags.features:
        raise _refuse("give either --feature (the whole set) or --add-feature/--remove-feature")
    missing = sorted(set(flags.remove_features) - set(current["features"]))
    if missing:
        raise _refuse(f"--remove-feature {missing[0]}: the plan does not include it")
    return sorted((set(current["features"]) | set(flags.add_features)) - set(flags.remove_features))


def plan_body(flags: PlanFlags, current: dict[str, Any] | None, today: date) -> dict[str, Any]:
    """The `PlanInput` body the options describe. `current` is the rendered current version
    when editing (enterprise.schemas.render_version), None when creating."""
    if flags.region and flags.data_residency and flags.region != flags.data_residency:
        raise _refuse("--region and --data-residency name the same thing; give one")
    method, net_days = _legacy_payment(flags)
    uptime = _legacy_uptime(flags)
    now = current or {}
    response = None
    if flags.sla_response:  # times given add to (or replace) the ones agreed before
        agreed = (now.get("sla") or {}).get("response_minutes") or {}
        response = agreed | _pairs(flags.sla_response, "--sla-response")
    body: dict[str, Any] = {}
    if flags.name is not None:
        body["name"] = flags.name
    if flags.limits:
        body["limits"] = parse_limits(flags.limits)
    features = _features(flags, current)
    if features is not None:
        body["features"] = features
    if flags.region or flags.data_residency:
        body["region"] = flags.region or flags.data_residency
    if flags.support_channel is not None:
        body["support_channel"] = flags.support_channel
    parts: dict[str, dict[str, Any] | None] = {
        "price": _part(
            {
                "amount": flags.price,
                "currency": flags.currency,
                "interval": flags.price_interval,
                "minimum_commitment": flags.minimum_commitment,
            },
            now.get("price"),
        ),
        "contract": _part(
            {
                "start": _date(flags.contract_start, "--contract-start"),
                "end": _date(flags.contract_end, "--contract-end"),
                "auto_renew": flags.auto_renew,
                "notice_days": flags.notice_days,
                "end_plan": flags.end_plan,
            },
            now.get("contract"),
        ),
        "payment": _part(
            {"method": method, "net_days": net_days, "po_number": flags.po_number}, now.get("payment")
        ),
        "billing_contact": _part(
            {"email": flags.billing_contact_email, "name": flags.billing_contact_name},
            now.get("billing_contact"),
        ),
        "sla": _part({"uptime_percent": uptime, "response_minutes": response}, now.get("sla")),
    }
    for name, part in parts.items():
        if part is not None:
            body[name] = part
    if flags.invoicing is not None and "price" not in body and not now.get("price"):
        raise _refuse("--invoicing invoices the plan's price: give --price (and --billing-contact-email)")
    if "price" in body and body["price"].get("amount") is None:
        raise _refuse("give the price itself with --price AMOUNT", "price.amount")
    if "contract" in body and body["contract"].get("start") is None:
        body["contract"]["start"] = today.isoformat()
    for name in flags.clear:
        if name not in CLEARABLE:
            raise _refuse(f"--clear {name[:40]}: one of {', '.join(CLEARABLE)}")
        if current is None:
            raise _refuse("--clear removes a part of an existing plan; leave it out instead")
        if name in body:
            raise _refuse(f"--clear {name} and {_option(name)} options together: give one")
        body[name] = None
    return body


def read_json(path: str, stdin: Any) -> dict[str, Any]:
    """The whole `PlanInput` body from a file (`-`: standard input)."""
    try:
        if path == "-":
            raw = stdin.read(MAX_JSON_BYTES + 1)
        else:
            with Path(path).open("rb") as file:
                raw = file.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise _refuse(f"--from-json: cannot read {path[:200]} ({exc.strerror})") from None
    if len(raw) > MAX_JSON_BYTES:
        raise _refuse(f"--from-json: the body is larger than {MAX_JSON_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _refuse(f"--from-json: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise _refuse("--from-json: the body is a JSON object, as the API takes it")
    return body
