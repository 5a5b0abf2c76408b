"""Server-side request rules that the SDK's parameter types cannot express.

:mod:`.params` already refuses unknown parameters and wrong types. Real Stripe refuses
more: parameters that exclude each other, parameters that only make sense with another,
and values whose format the docs state but the type (``str``) does not. Each rule here
names its source (or says that Stripe's docs do not state it), so a rule can be checked
against Stripe rather than against what our adapter happens to send.

Two kinds of rule:

- *endpoint rules* (:data:`ENDPOINT_RULES`): per route, keyed by the SDK TypedDict the
  route validates against; a small declarative table.
- *format rules* (:func:`check_formats`): by field name, on every endpoint, because
  Stripe applies them wherever the field appears (``metadata``, ``currency``, URLs).

Rules that depend on stored state (a subscription's ``collection_method``, say) live
with the resource that owns that state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stripe import params as P
from stripe.params import billing_portal as BP
from stripe.params import checkout as CO

from .errors import StripeApiError
from .params import param_name
from .resource import Obj

_MISSING = object()


def _lookup(params: Obj, path: str) -> Any:
    """The value at a dotted path (``subscription_data.trial_end``), or ``_MISSING``."""
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _present(params: Obj, path: str) -> bool:
    # Presence, not truthiness: Stripe refuses `allow_promotion_codes=false` with
    # `discounts` just as it refuses `true`.
    return _lookup(params, path) is not _MISSING


def _wire(path: str) -> str:
    return param_name(tuple(path.split(".")))


# --------------------------------------------------------------------------- rule kinds


@dataclass(frozen=True)
class Exclusive:
    """At most one of these parameters may be sent."""

    paths: tuple[str, ...]

    def check(self, params: Obj) -> None:
        if sum(_present(params, p) for p in self.paths) > 1:
            names = ", ".join(_wire(p) for p in self.paths)
            raise StripeApiError(
                f"You may only specify one of these parameters: {names}.",
                param=_wire(self.paths[0]),
                code="parameters_exclusive",
            )


@dataclass(frozen=True)
class OnlyWith:
    """``path`` may only be sent together with one of ``needs``."""

    path: str
    needs: tuple[str, ...]
    message: str

    def check(self, params: Obj) -> None:
        if _present(params, self.path) and not any(_present(params, n) for n in self.needs):
            raise StripeApiError(self.message, param=_wire(self.path))


@dataclass(frozen=True)
class RefusedWhen:
    """``path`` is refused when ``when(params)`` holds."""

    path: str
    when: Callable[[Obj], bool]
    message: str
    code: str | None = None

    def check(self, params: Obj) -> None:
        if _present(params, self.path) and self.when(params):
            raise StripeApiError(self.message, param=_wire(self.path), code=self.code)


@dataclass(frozen=True)
class MaxLength:
    """A string (or each string of a list) of at most ``limit`` characters."""

    path: str
    limit: int

    def check(self, params: Obj) -> None:
        value = _lookup(params, self.path)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and len(v) > self.limit:
                raise StripeApiError(
                    f"Invalid {_wire(self.path)}: must be at most {self.limit} characters",
                    param=_wire(self.path),
                )


@dataclass(frozen=True)
class MaxItems:
    """A list of at most ``limit`` entries."""

    path: str
    limit: int

    def check(self, params: Obj) -> None:
        value = _lookup(params, self.path)
        if isinstance(value, list) and len(value) > self.limit:
            raise StripeApiError(
                f"Invalid {_wire(self.path)}: must contain at most {self.limit} elements",
                param=_wire(self.path),
            )


@dataclass(frozen=True)
class Matches:
    """A string matching ``pattern`` (a format the docs spell out in words)."""

    path: str
    pattern: str
    message: str

    def check(self, params: Obj) -> None:
        value = _lookup(params, self.path)
        if isinstance(value, str) and value and not re.fullmatch(self.pattern, value):
            raise StripeApiError(self.message, param=_wire(self.path))


@dataclass(frozen=True)
class Each:
    """``rule`` applied to every element of the list at ``path`` (``items[]``, say)."""

    path: str
    rule: Exclusive | OnlyWith | RefusedWhen | MaxLength | MaxItems | Matches

    def check(self, params: Obj) -> None:
        value = _lookup(params, self.path)
        for n, element in enumerate(value if isinstance(value, list) else []):
            if not isinstance(element, dict):
                continue
            try:
                self.rule.check(element)
            except StripeApiError as exc:
                head, _, rest = (exc.param or "").partition("[")
                exc.param = f"{_wire(self.path)}[{n}][{head}]" + (f"[{rest}" if rest else "")
                raise


Rule = Exclusive | OnlyWith | RefusedWhen | MaxLength | MaxItems | Matches | Each


# --------------------------------------------------------------------------- pending updates

# Stripe docs: "Pending updates reference", Supported attributes: "The supported attributes
# for the update subscription endpoint are: expand, payment_behavior, proration_behavior,
# proration_date, billing_cycle_anchor, items (price, quantity), trial_end, trial_from_plan,
# add_invoice_items". SDK docstring of `payment_behavior`: "When you use
# `pending_if_incomplete` you can only pass the parameters supported by pending updates."
# `items[][id]` names the item a price or quantity applies to, so it is part of `items`.
PENDING_UPDATE_PARAMS = frozenset(
    {
        "expand",
        "payment_behavior",
        "proration_behavior",
        "proration_date",
        "billing_cycle_anchor",
        "items",
        "trial_end",
        "trial_from_plan",
        "add_invoice_items",
    }
)
PENDING_UPDATE_ITEM_PARAMS = frozenset({"id", "price", "quantity"})


@dataclass(frozen=True)
class PendingUpdateParams:
    """``payment_behavior=pending_if_incomplete`` takes only the pending-update parameters."""

    def check(self, params: Obj) -> None:
        if params.get("payment_behavior") != "pending_if_incomplete":
            return
        for key in params:
            if key not in PENDING_UPDATE_PARAMS:
                raise _not_pending(param_name((key,)))
        for n, item in enumerate(params.get("items") or []):
            for key in item:
                if key not in PENDING_UPDATE_ITEM_PARAMS:
                    raise _not_pending(param_name(("items", str(n), key)))


# SDK docstrings of `invoice_settings.custom_fields`: "A list of up to 4 custom fields to
# be displayed on the invoice"; its `name` "may be up to 40 characters", its `value` "up to
# 140 characters".
_CUSTOM_FIELDS: tuple[Rule, ...] = (
    MaxItems("invoice_settings.custom_fields", 4),
    Each("invoice_settings.custom_fields", MaxLength("name", 40)),
    Each("invoice_settings.custom_fields", MaxLength("value", 140)),
)


def _not_pending(name: str) -> StripeApiError:
    # Not Stripe's verbatim wording (not found in its docs); the param is what matters.
    return StripeApiError(
        f"The parameter `{name}` cannot be used with `payment_behavior=pending_if_incomplete`: "
        "only the parameters supported by pending updates can be passed "
        "(https://docs.stripe.com/billing/pending-updates-reference#supported-attributes).",
        param=name,
    )


# --------------------------------------------------------------------------- the table


def _not_payment_or_setup(params: Obj) -> bool:
    return params.get("mode") not in ("payment", "setup")


def _embedded(params: Obj) -> bool:
    return params.get("ui_mode") in ("embedded_page", "elements")


def _details(params: Obj) -> Obj:
    details: Obj = params.get("subscription_details") or {}
    return details


# Interval lengths in days, to compare `interval_count`s with the three-year maximum.
_DAYS_PER = {"day": 1.0, "week": 7.0, "month": 365 / 12, "year": 365.0}

_NOT_WITH_EMBEDDED = "This parameter is not allowed if ui_mode is `embedded_page` or `elements`."

# fmt: off
ENDPOINT_RULES: dict[type, list[Rule | PendingUpdateParams]] = {
    CO.SessionCreateParams: [
        # Stripe's answer, quoted in public integrations' comments: "You may only specify
        # one of these parameters: customer, customer_email." (the wording of every
        # `Exclusive`; its code is Stripe's documented `parameters_exclusive`).
        Exclusive(("customer", "customer_email")),
        # SDK docstring of `customer_creation`: "Can only be set in `payment` and `setup`
        # mode." Stripe answers (QuantumNous/new-api#4706, mode=subscription):
        # "`customer_creation` can only be used in `payment` mode."
        RefusedWhen("customer_creation", _not_payment_or_setup,
                    "`customer_creation` can only be used in `payment` mode."),
        # SDK docstring of `customer_update`: "Can only be provided when `customer` is provided."
        OnlyWith("customer_update", ("customer",),
                 "`customer_update` can only be used with `customer`."),
        # Not in Stripe's docs as such: a session has one trial, given as an end or a length.
        Exclusive(("subscription_data.trial_end", "subscription_data.trial_period_days")),
        # SDK docstring of `subscription_data.trial_period_days`: "Has to be at least 1."
        RefusedWhen("subscription_data.trial_period_days",
                    lambda p: int(_lookup(p, "subscription_data.trial_period_days")) < 1,
                    "Invalid subscription_data[trial_period_days]: must be at least 1"),
        # A comment in a public integration, "verified against the API": "You may only
        # specify one of these parameters: allow_promotion_codes, discounts."
        Exclusive(("allow_promotion_codes", "discounts")),
        # SDK docstrings of `success_url` and `cancel_url`: "This parameter is not allowed
        # if ui_mode is `embedded_page` or `elements`."
        RefusedWhen("success_url", _embedded, _NOT_WITH_EMBEDDED),
        RefusedWhen("cancel_url", _embedded, _NOT_WITH_EMBEDDED),
        # SDK docstring of `expires_at`: "anywhere from 30 minutes to 24 hours after
        # Checkout Session creation"; checked against the clock in checkout.py.
    ],
    P.SubscriptionUpdateParams: [
        # SDK docstrings: `items` "A list of up to 20 subscription items"; `items[].price`
        # "You can use either `price` or `price_data`, but not both".
        MaxItems("items", 20),
        Each("items", Exclusive(("price", "price_data"))),
        # Both say when the subscription ends; the brief's rule, not found in Stripe's docs.
        Exclusive(("cancel_at", "cancel_at_period_end")),
        # SDK docstring of `trial_from_plan`: "Setting this flag to `true` together with
        # `trial_end` is not allowed."
        RefusedWhen("trial_from_plan", lambda p: p["trial_from_plan"] is True and "trial_end" in p,
                    "You may only specify one of these parameters: trial_end, trial_from_plan.",
                    code="parameters_exclusive"),
        PendingUpdateParams(),
        *_CUSTOM_FIELDS,
    ],
    P.SubscriptionCreateParams: [
        MaxItems("items", 20),
        Each("items", Exclusive(("price", "price_data"))),
        *_CUSTOM_FIELDS,
        # As for Checkout's subscription_data: one trial, as an end or a length.
        Exclusive(("trial_end", "trial_period_days")),
        RefusedWhen("trial_from_plan", lambda p: p["trial_from_plan"] is True and "trial_end" in p,
                    "You may only specify one of these parameters: trial_end, trial_from_plan.",
                    code="parameters_exclusive"),
    ],
    P.InvoiceCreatePreviewParams: [
        # SDK docstrings: `schedule` "Cannot be used with subscription or subscription
        # fields"; `schedule_details` "Cannot be used with `subscription` or
        # `subscription_` prefixed fields"; `subscription_details` "Cannot be used with
        # `schedule` or `schedule_details` fields".
        Exclusive(("schedule", "subscription")),
        Exclusive(("schedule", "subscription_details")),
        Exclusive(("schedule_details", "subscription")),
        Exclusive(("schedule_details", "subscription_details")),
        # Two ways of naming the same customer. (`customer` with `customer_details` is
        # allowed: the docstring calls `customer_details` "overrides for an existing customer".)
        Exclusive(("customer", "customer_account")),
        # SDK docstring of `customer`: "If `automatic_tax` is enabled then one of `customer`,
        # `customer_details`, `subscription`, or `schedule` must be set."
        RefusedWhen("automatic_tax",
                    lambda p: bool(p["automatic_tax"].get("enabled")) and not any(
                        k in p for k in ("customer", "customer_account", "customer_details",
                                         "subscription", "schedule")),
                    "With `automatic_tax[enabled]=true`, one of `customer`, `customer_details`, "
                    "`subscription` or `schedule` must be set."),
        MaxItems("subscription_details.items", 20),
        Each("subscription_details.items", Exclusive(("price", "price_data"))),
        # SDK docstring of `subscription_details.proration_date`: "If set, `subscription`,
        # and one of `subscription_details.items`, or `subscription_details.trial_end` are
        # required. Also, `subscription_details.proration_behavior` cannot be set to 'none'."
        OnlyWith("subscription_details.proration_date", ("subscription",),
                 "`subscription_details[proration_date]` requires `subscription`."),
        OnlyWith("subscription_details.proration_date",
                 ("subscription_details.items", "subscription_details.trial_end"),
                 "`subscription_details[proration_date]` requires `subscription_details[items]` "
                 "or `subscription_details[trial_end]`."),
        RefusedWhen("subscription_details.proration_date",
                    lambda p: _details(p).get("proration_behavior") == "none",
                    "`subscription_details[proration_date]` cannot be used with "
                    "`subscription_details[proration_behavior]=none`."),
        # SDK docstring of `subscription_details.trial_end`: "If set, one of
        # `subscription_details.items` or `subscription` is required."
        OnlyWith("subscription_details.trial_end", ("subscription_details.items", "subscription"),
                 "`subscription_details[trial_end]` requires `subscription_details[items]` "
                 "or `subscription`."),
    ],
    P.PriceCreateParams: [
        Exclusive(("product", "product_data")),
        # SDK docstring of `unit_amount_decimal`: "Only one of `unit_amount` and
        # `unit_amount_decimal` can be set."
        Exclusive(("unit_amount", "unit_amount_decimal")),
        # SDK docstring of `lookup_key`: "This may be up to 200 characters."
        MaxLength("lookup_key", 200),
        # SDK docstring of `recurring.interval_count`: "Maximum of three years interval
        # allowed (3 years, 36 months, or 156 weeks)."
        RefusedWhen("recurring.interval_count",
                    lambda p: p["recurring"]["interval_count"] * _DAYS_PER[p["recurring"]["interval"]]
                    > 3 * 365,
                    "Invalid recurring[interval_count]: the maximum interval is three years."),
    ],
    P.PriceUpdateParams: [MaxLength("lookup_key", 200)],
    # SDK docstring of `lookup_keys`: "You can specify up to 10 lookup_keys."
    P.PriceListParams: [MaxItems("lookup_keys", 10), MaxLength("lookup_keys", 200)],
    P.ProductCreateParams: [
        # SDK docstring of `statement_descriptor`: "This may be up to 22 characters. The
        # statement description may not include `<`, `>`, `\`, `"`, `'` characters".
        MaxLength("statement_descriptor", 22),
        Matches("statement_descriptor", r"[^<>\\\"']*",
                "Invalid statement_descriptor: it may not include <, >, \\, \" or ' characters."),
        # SDK docstring of `images`: "A list of up to 8 URLs of images for this product".
        MaxItems("images", 8),
    ],
    P.ProductUpdateParams: [
        MaxLength("statement_descriptor", 22),
        Matches("statement_descriptor", r"[^<>\\\"']*",
                "Invalid statement_descriptor: it may not include <, >, \\, \" or ' characters."),
        MaxItems("images", 8),
    ],
    BP.ConfigurationCreateParams: [
        # SDK docstring of `features.subscription_update.products`: "The list of up to 10
        # products that support subscription updates."
        MaxItems("features.subscription_update.products", 10),
    ],
    BP.ConfigurationUpdateParams: [MaxItems("features.subscription_update.products", 10)],
    P.CustomerCreateParams: [
        # SDK docstrings: `email` "up to *512 characters*"; `business_name` and
        # `individual_name` "up to *150 characters*"; `invoice_prefix` "Must be 1–12
        # uppercase letters or numbers."
        MaxLength("email", 512),
        MaxLength("business_name", 150),
        MaxLength("individual_name", 150),
        Matches("invoice_prefix", r"[A-Z0-9]{1,12}",
                "Invalid invoice_prefix: must be 1-12 uppercase letters or numbers."),
    ],
    P.CustomerUpdateParams: [
        MaxLength("email", 512),
        MaxLength("business_name", 150),
        MaxLength("individual_name", 150),
        Matches("invoice_prefix", r"[A-Z0-9]{1,12}",
                "Invalid invoice_prefix: must be 1-12 uppercase letters or numbers."),
    ],
}
# fmt: on

# --------------------------------------------------------------------------- format rules

# Stripe docs: API reference, "Metadata": "You can specify up to 50 keys, with key names up
# to 40 characters long and values up to 500 characters long. [...] you can't use square
# brackets ([ and ]) in keys."
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500

# Fields that hold a URL wherever they appear (SDK docstrings: "The URL to which Stripe
# should send customers...", "A link to the business's publicly available privacy policy",
# "A URL of a publicly-accessible webpage for this product").
URL_FIELDS = frozenset(
    {
        "success_url",
        "cancel_url",
        "return_url",
        "default_return_url",
        "privacy_policy_url",
        "terms_of_service_url",
        "url",
    }
)

# SDK docstrings of every `currency`: "Three-letter ISO currency code, in lowercase."
_CURRENCY = re.compile(r"[a-z]{3}")


def check_formats(params: Obj) -> None:
    """Refuse malformed metadata, currencies and URLs anywhere in the request."""
    for path, key, value in _walk(params, ()):
        name = param_name(path)
        if key == "metadata" and isinstance(value, dict):
            _check_metadata(value, path)
        elif key == "currency" and isinstance(value, str) and not _CURRENCY.fullmatch(value):
            raise StripeApiError(
                f"Invalid currency: {value}. Stripe expects a three-letter ISO code in lowercase.",
                param=name,
            )
        elif key in URL_FIELDS and isinstance(value, str) and value and not _is_url(value):
            raise StripeApiError("Not a valid URL", param=name, code="url_invalid")
        elif key == "images" and isinstance(value, list):
            for n, image in enumerate(value):
                if isinstance(image, str) and not _is_url(image):
                    raise StripeApiError("Not a valid URL", param=f"{name}[{n}]", code="url_invalid")


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            yield here, key, value
            if key != "metadata":  # metadata keys are data, not parameter names
                yield from _walk(value, here)
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _walk(value, (*path, str(n)))


def _check_metadata(metadata: dict[str, Any], path: tuple[str, ...]) -> None:
    name = param_name(path)
    if len(metadata) > METADATA_MAX_KEYS:
        raise StripeApiError(
            f"Invalid {name}: metadata can have at most {METADATA_MAX_KEYS} keys.", param=name
        )
    for key, value in metadata.items():
        key_name = param_name((*path, key))
        if "[" in key or "]" in key:
            raise StripeApiError(
                f"Invalid {name}: metadata keys can't contain square brackets ([ and ]).",
                param=key_name,
            )
        if len(key) > METADATA_KEY_MAX:
            raise StripeApiError(
                f"Invalid {name}: metadata keys can be at most {METADATA_KEY_MAX} characters.",
                param=key_name,
            )
        if isinstance(value, str) and len(value) > METADATA_VALUE_MAX:
            raise StripeApiError(
                f"Invalid {name}: metadata values can be at most {METADATA_VALUE_MAX} characters.",
                param=key_name,
            )


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", value)


# --------------------------------------------------------------------------- entry point


def enforce(schema: type, params: Obj) -> None:
    """Apply the format rules and the endpoint's own rules to validated params."""
    check_formats(params)
    for rule in ENDPOINT_RULES.get(schema, []):
        rule.check(params)
