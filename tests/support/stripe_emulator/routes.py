"""REST routes: (method, path pattern) -> params TypedDict from the SDK + the resource call.

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

from .engine import Engine
from .resource import Obj, Objs


@dataclass(frozen=True)
class ListResult:
    """A list endpoint's matches, oldest first; the app paginates them newest first."""

    items: Objs


Handler = Callable[[Engine, Obj, dict[str, str]], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    schema: type
    handler: Handler


def _get(kind: str, arg: str = "id") -> Handler:
    return lambda e, p, a: e.store.get(a[arg], kind)


def _list(fn: Callable[[Engine, Obj, dict[str, str]], Objs]) -> Handler:
    return lambda e, p, a: ListResult(fn(e, p, a))


# "search" is a sibling endpoint, not an id; the emulator does not implement search.
_ID = r"(?P<id>(?!search$)[A-Za-z0-9_]+)"
_TAX_ID = r"(?P<tid>[A-Za-z0-9_]+)"
_TABLE: list[tuple[str, str, type, Handler]] = [
    # customers
    ("POST", "/v1/customers", P.CustomerCreateParams, lambda e, p, a: e.customers.create(p)),
    ("GET", "/v1/customers", P.CustomerListParams, _list(lambda e, p, a: e.customers.list(p))),
    ("GET", f"/v1/customers/{_ID}", P.CustomerRetrieveParams,
     lambda e, p, a: e.customers.retrieve(a["id"])),
    ("POST", f"/v1/customers/{_ID}", P.CustomerUpdateParams,
     lambda e, p, a: e.customers.update(a["id"], p)),
    ("DELETE", f"/v1/customers/{_ID}", P.CustomerDeleteParams,
     lambda e, p, a: e.customers.delete(a["id"])),
    ("GET", f"/v1/customers/{_ID}/tax_ids", P.CustomerTaxIdListParams,
     _list(lambda e, p, a: e.customers.list_tax_ids(a["id"]))),
    ("POST", f"/v1/customers/{_ID}/tax_ids", P.CustomerTaxIdCreateParams,
     lambda e, p, a: e.customers.create_tax_id(a["id"], p)),
    ("GET", f"/v1/customers/{_ID}/tax_ids/{_TAX_ID}", P.CustomerTaxIdRetrieveParams, _get("tax_id", "tid")),
    ("DELETE", f"/v1/customers/{_ID}/tax_ids/{_TAX_ID}", P.CustomerTaxIdDeleteParams,
     lambda e, p, a: e.customers.delete_tax_id(a["id"], a["tid"])),
    # products
    ("POST", "/v1/products", P.ProductCreateParams, lambda e, p, a: e.catalog.create_product(p)),
    ("GET", "/v1/products", P.ProductListParams, _list(lambda e, p, a: e.catalog.list_products(p))),
    ("GET", f"/v1/products/{_ID}", P.ProductRetrieveParams, _get("product")),
    ("POST", f"/v1/products/{_ID}", P.ProductUpdateParams,
     lambda e, p, a: e.catalog.update_product(a["id"], p)),
    # prices
    ("POST", "/v1/prices", P.PriceCreateParams, lambda e, p, a: e.catalog.create_price(p)),
    ("GET", "/v1/prices", P.PriceListParams, _list(lambda e, p, a: e.catalog.list_prices(p))),
    ("GET", f"/v1/prices/{_ID}", P.PriceRetrieveParams, _get("price")),
    ("POST", f"/v1/prices/{_ID}", P.PriceUpdateParams, lambda e, p, a: e.catalog.update_price(a["id"], p)),
    # checkout
    ("POST", "/v1/checkout/sessions", CO.SessionCreateParams, lambda e, p, a: e.checkout.create(p)),
    ("GET", "/v1/checkout/sessions", CO.SessionListParams, _list(lambda e, p, a: e.checkout.list(p))),
    ("GET", f"/v1/checkout/sessions/{_ID}", CO.SessionRetrieveParams, _get("checkout.session")),
    ("POST", f"/v1/checkout/sessions/{_ID}/expire", CO.SessionExpireParams,
     lambda e, p, a: e.checkout.expire(a["id"])),
    ("GET", f"/v1/checkout/sessions/{_ID}/line_items", CO.SessionLineItemListParams,
     _list(lambda e, p, a: e.checkout.line_items(a["id"]))),
    # billing portal
    ("POST", "/v1/billing_portal/sessions", BP.SessionCreateParams,
     lambda e, p, a: e.portal.create_session(p)),
    ("POST", "/v1/billing_portal/configurations", BP.ConfigurationCreateParams,
     lambda e, p, a: e.portal.create_configuration(p)),
    ("GET", "/v1/billing_portal/configurations", BP.ConfigurationListParams,
     _list(lambda e, p, a: e.portal.list_configurations(p))),
    ("GET", f"/v1/billing_portal/configurations/{_ID}", BP.ConfigurationRetrieveParams,
     _get("billing_portal.configuration")),
    ("POST", f"/v1/billing_portal/configurations/{_ID}", BP.ConfigurationUpdateParams,
     lambda e, p, a: e.portal.update_configuration(a["id"], p)),
    # subscriptions
    ("POST", "/v1/subscriptions", P.SubscriptionCreateParams, lambda e, p, a: e.subscriptions.create(p)),
    ("GET", "/v1/subscriptions", P.SubscriptionListParams, _list(lambda e, p, a: e.subscriptions.list(p))),
    ("GET", f"/v1/subscriptions/{_ID}", P.SubscriptionRetrieveParams, _get("subscription")),
    ("POST", f"/v1/subscriptions/{_ID}", P.SubscriptionUpdateParams,
     lambda e, p, a: e.changes.update(a["id"], p)),
    ("DELETE", f"/v1/subscriptions/{_ID}", P.SubscriptionCancelParams,
     lambda e, p, a: e.subscriptions.cancel(a["id"], p)),
    # invoices
    ("GET", "/v1/invoices", P.InvoiceListParams, _list(lambda e, p, a: e.invoices.list(p))),
    ("POST", "/v1/invoices/create_preview", P.InvoiceCreatePreviewParams,
     lambda e, p, a: e.invoices.preview(p)),
    ("GET", f"/v1/invoices/{_ID}", P.InvoiceRetrieveParams, _get("invoice")),
    ("POST", f"/v1/invoices/{_ID}/pay", P.InvoicePayParams, lambda e, p, a: e.invoices.pay(a["id"], p)),
    ("GET", f"/v1/invoices/{_ID}/lines", P.InvoiceLineItemListParams,
     _list(lambda e, p, a: e.store.get(a["id"], "invoice")["lines"]["data"])),
    ("GET", "/v1/invoiceitems", P.InvoiceItemListParams, _list(lambda e, p, a: e.invoices.list_items(p))),
    ("GET", f"/v1/invoiceitems/{_ID}", P.InvoiceItemRetrieveParams, _get("invoiceitem")),
    # payments
    ("GET", "/v1/invoice_payments", P.InvoicePaymentListParams,
     _list(lambda e, p, a: e.payments.list_invoice_payments(p))),
    ("GET", f"/v1/invoice_payments/{_ID}", P.InvoicePaymentRetrieveParams, _get("invoice_payment")),
    ("GET", f"/v1/payment_intents/{_ID}", P.PaymentIntentRetrieveParams, _get("payment_intent")),
    ("GET", f"/v1/payment_methods/{_ID}", P.PaymentMethodRetrieveParams, _get("payment_method")),
    ("GET", f"/v1/charges/{_ID}", P.ChargeRetrieveParams, _get("charge")),
    ("POST", "/v1/refunds", P.RefundCreateParams, lambda e, p, a: e.refunds.create(p)),
    ("GET", f"/v1/refunds/{_ID}", P.RefundRetrieveParams, _get("refund")),
    # credit notes ("preview" before the id pattern, which would also match it)
    ("POST", "/v1/credit_notes", P.CreditNoteCreateParams, lambda e, p, a: e.credit_notes.create(p)),
    ("GET", "/v1/credit_notes", P.CreditNoteListParams, _list(lambda e, p, a: e.credit_notes.list(p))),
    ("GET", "/v1/credit_notes/preview", P.CreditNotePreviewParams, lambda e, p, a: e.credit_notes.preview(p)),
    ("GET", f"/v1/credit_notes/{_ID}", P.CreditNoteRetrieveParams, _get("credit_note")),
    # events
    ("GET", "/v1/events", P.EventListParams, _list(lambda e, p, a: e.events.list(p))),
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
