"""REST routes: (method, path pattern) -> params TypedDict from the SDK + engine call.

Each route names the exact TypedDict the SDK's service method is typed with, so the
validator accepts precisely what ``client.v1.<service>.<method>(params=...)`` may send.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe import params as P
from stripe.params import billing_portal as BP
from stripe.params import checkout as CO

from .billing import Engine


@dataclass(frozen=True)
class ListResult:
    items: list[dict[str, Any]]
    url: str


Handler = Callable[[Engine, dict[str, Any], dict[str, str]], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    schema: type
    handler: Handler


def _get(kind: str) -> Handler:
    return lambda e, p, a: e.store.get(a["id"], kind)


def _list(fn: Callable[[Engine, dict[str, Any], dict[str, str]], list[dict[str, Any]]], url: str):
    def handler(e: Engine, p: dict[str, Any], a: dict[str, str]) -> ListResult:
        return ListResult(fn(e, p, a), url.format(**a))

    return handler


# "search" is a sibling endpoint, not an id; the emulator does not implement search.
_ID = r"(?P<id>(?!search$)[A-Za-z0-9_]+)"
_TABLE: list[tuple[str, str, type, Handler]] = [
    # customers
    ("POST", "/v1/customers", P.CustomerCreateParams, lambda e, p, a: e.create_customer(p)),
    ("GET", "/v1/customers", P.CustomerListParams,
     _list(lambda e, p, a: e.list_customers(p), "/v1/customers")),
    ("GET", f"/v1/customers/{_ID}", P.CustomerRetrieveParams, _get("customer")),
    ("POST", f"/v1/customers/{_ID}", P.CustomerUpdateParams,
     lambda e, p, a: e.update_customer(a["id"], p)),
    ("GET", f"/v1/customers/{_ID}/tax_ids", P.CustomerTaxIdListParams,
     _list(lambda e, p, a: e.list_tax_ids(a["id"]), "/v1/customers/{id}/tax_ids")),
    ("POST", f"/v1/customers/{_ID}/tax_ids", P.CustomerTaxIdCreateParams,
     lambda e, p, a: e.create_tax_id(a["id"], p)),
    ("GET", f"/v1/customers/{_ID}/tax_ids/(?P<tid>[A-Za-z0-9_]+)", P.CustomerTaxIdRetrieveParams,
     lambda e, p, a: e.store.get(a["tid"], "tax_id")),
    ("DELETE", f"/v1/customers/{_ID}/tax_ids/(?P<tid>[A-Za-z0-9_]+)", P.CustomerTaxIdDeleteParams,
     lambda e, p, a: e.delete_tax_id(a["id"], a["tid"])),
    # products
    ("POST", "/v1/products", P.ProductCreateParams, lambda e, p, a: e.create_product(p)),
    ("GET", "/v1/products", P.ProductListParams,
     _list(lambda e, p, a: e.list_products(p), "/v1/products")),
    ("GET", f"/v1/products/{_ID}", P.ProductRetrieveParams, _get("product")),
    ("POST", f"/v1/products/{_ID}", P.ProductUpdateParams,
     lambda e, p, a: e.update_product(a["id"], p)),
    # prices
    ("POST", "/v1/prices", P.PriceCreateParams, lambda e, p, a: e.create_price(p)),
    ("GET", "/v1/prices", P.PriceListParams, _list(lambda e, p, a: e.list_prices(p), "/v1/prices")),
    ("GET", f"/v1/prices/{_ID}", P.PriceRetrieveParams, _get("price")),
    ("POST", f"/v1/prices/{_ID}", P.PriceUpdateParams, lambda e, p, a: e.update_price(a["id"], p)),
    # checkout
    ("POST", "/v1/checkout/sessions", CO.SessionCreateParams,
     lambda e, p, a: e.create_checkout_session(p)),
    ("GET", "/v1/checkout/sessions", CO.SessionListParams,
     _list(lambda e, p, a: e.list_checkout_sessions(p), "/v1/checkout/sessions")),
    ("GET", f"/v1/checkout/sessions/{_ID}", CO.SessionRetrieveParams, _get("checkout.session")),
    ("POST", f"/v1/checkout/sessions/{_ID}/expire", CO.SessionExpireParams,
     lambda e, p, a: e.expire_checkout_session(a["id"])),
    ("GET", f"/v1/checkout/sessions/{_ID}/line_items", CO.SessionLineItemListParams,
     _list(lambda e, p, a: e.session_line_items(a["id"]), "/v1/checkout/sessions/{id}/line_items")),
    # billing portal
    ("POST", "/v1/billing_portal/sessions", BP.SessionCreateParams,
     lambda e, p, a: e.create_portal_session(p)),
    ("POST", "/v1/billing_portal/configurations", BP.ConfigurationCreateParams,
     lambda e, p, a: e.create_portal_configuration(p)),
    ("GET", "/v1/billing_portal/configurations", BP.ConfigurationListParams,
     _list(lambda e, p, a: [
         c for c in e.store.all("portal_configurations")
         if all(c[k] == p[k] for k in ("active", "is_default") if k in p)
     ], "/v1/billing_portal/configurations")),
    ("GET", f"/v1/billing_portal/configurations/{_ID}", BP.ConfigurationRetrieveParams,
     _get("billing_portal.configuration")),
    ("POST", f"/v1/billing_portal/configurations/{_ID}", BP.ConfigurationUpdateParams,
     lambda e, p, a: e.update_portal_configuration(a["id"], p)),
    # subscriptions
    ("POST", "/v1/subscriptions", P.SubscriptionCreateParams,
     lambda e, p, a: e.create_subscription(p)),
    ("GET", "/v1/subscriptions", P.SubscriptionListParams,
     _list(lambda e, p, a: e.list_subscriptions(p), "/v1/subscriptions")),
    ("GET", f"/v1/subscriptions/{_ID}", P.SubscriptionRetrieveParams, _get("subscription")),
    ("POST", f"/v1/subscriptions/{_ID}", P.SubscriptionUpdateParams,
     lambda e, p, a: e.update_subscription(a["id"], p)),
    ("DELETE", f"/v1/subscriptions/{_ID}", P.SubscriptionCancelParams,
     lambda e, p, a: e.cancel_subscription(a["id"], p)),
    # invoices
    ("GET", "/v1/invoices", P.InvoiceListParams,
     _list(lambda e, p, a: e.list_invoices(p), "/v1/invoices")),
    ("POST", "/v1/invoices/create_preview", P.InvoiceCreatePreviewParams,
     lambda e, p, a: e.preview_invoice(p)),
    ("GET", f"/v1/invoices/{_ID}", P.InvoiceRetrieveParams, _get("invoice")),
    ("POST", f"/v1/invoices/{_ID}/pay", P.InvoicePayParams, lambda e, p, a: e.pay_invoice(a["id"], p)),
    ("GET", f"/v1/invoices/{_ID}/lines", P.InvoiceLineItemListParams,
     _list(lambda e, p, a: e.store.get(a["id"], "invoice")["lines"]["data"],
           "/v1/invoices/{id}/lines")),
    ("GET", "/v1/invoiceitems", P.InvoiceItemListParams,
     _list(lambda e, p, a: e.list_invoice_items(p), "/v1/invoiceitems")),
    ("GET", f"/v1/invoiceitems/{_ID}", P.InvoiceItemRetrieveParams, _get("invoiceitem")),
    # events
    ("GET", "/v1/events", P.EventListParams, _list(lambda e, p, a: e.list_events(p), "/v1/events")),
    ("GET", f"/v1/events/{_ID}", P.EventRetrieveParams, _get("event")),
]  # fmt: skip

ROUTES = [Route(m, re.compile(f"^{path}$"), schema, h) for m, path, schema, h in _TABLE]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        if route.method == method and (m := route.pattern.match(path)):
            return route, m.groupdict()
    return None


def path_exists(path: str) -> bool:
    return any(route.pattern.match(path) for route in ROUTES)
