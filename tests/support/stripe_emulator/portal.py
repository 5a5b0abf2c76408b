"""The customer portal: configurations, sessions, and what a customer does inside it.

``/v1/billing_portal/configurations`` and ``/v1/billing_portal/sessions`` are the API;
:meth:`BillingPortal.change_price`, :meth:`BillingPortal.cancel_at_period_end` and
:meth:`BillingPortal.update_customer` are the customer's clicks on the hosted page.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import StripeApiError, invalid, missing_param
from .resource import Obj, Objs, Resource, merge_metadata

# Stripe docs: SDK docstring of `features.subscription_cancel.proration_behavior`
# (stripe-python params/billing_portal/_configuration_create_params.py): "Possible values
# are `none` and `create_prorations`, which is only compatible with `mode=immediately`.
# Passing `always_invoice` will result in an error."
CANCEL_PRORATIONS = ("none", "create_prorations")


def check_features(features: Any, mode_now: str | None = None) -> None:
    """The server-side rules on `features` that the SDK's types do not express."""
    cancel = (features or {}).get("subscription_cancel") or {}
    behavior = cancel.get("proration_behavior")
    param = "features[subscription_cancel][proration_behavior]"
    if behavior is not None and behavior not in CANCEL_PRORATIONS:
        raise invalid(
            f"Invalid {param}: must be one of {', '.join(CANCEL_PRORATIONS)}",
            param=param,
            code="parameter_invalid",
        )
    mode = cancel.get("mode", mode_now)
    if behavior == "create_prorations" and mode not in (None, "immediately"):
        raise invalid(
            f"{param}=create_prorations is only compatible with "
            "features[subscription_cancel][mode]=immediately",
            param=param,
        )


def no_default_configuration() -> StripeApiError:
    # Stripe's wording for a portal session in an account whose Dashboard portal
    # settings were never saved (so no default configuration exists).
    return invalid(
        "You can't create a portal session in test mode until you save your customer portal "
        "settings in test mode at https://dashboard.stripe.com/test/settings/billing/portal."
    )


class BillingPortal(Resource):
    # ---------------------------------------------------------------- configurations
    def create_configuration(self, p: Obj, *, from_dashboard: bool = False) -> Obj:
        """`from_dashboard`: saved in the Dashboard's portal settings, the only default.

        Stripe docs: SDK docstring of `billing_portal.Configuration.is_default`: "If `true`,
        this configuration can be managed in the Dashboard and portal sessions will use this
        configuration unless it is overriden when creating the session"; one made through
        the API is therefore never the default.
        """
        check_features(p.get("features"))
        is_default = from_dashboard and not any(
            c["is_default"] for c in self.store.all("portal_configurations")
        )
        conf = objects.portal_configuration(self.now(), p, is_default)
        self.store.add("portal_configurations", conf)
        self.events.emit("billing_portal.configuration.created", conf)
        return conf

    def update_configuration(self, conf_id: str, p: Obj) -> Obj:
        conf = self.store.get(conf_id, "billing_portal.configuration")
        if "features" in p:
            mode_now = (conf["features"].get("subscription_cancel") or {}).get("mode")
            check_features(p["features"], mode_now)
        before = self.engine.render(conf)
        for key in ("active", "default_return_url", "name"):
            if key in p:
                conf[key] = p[key] if p[key] != "" else None
        if "features" in p:
            conf["features"] = {**conf["features"], **p["features"]}
        if "business_profile" in p:
            conf["business_profile"].update(p["business_profile"])
        if "metadata" in p:
            conf["metadata"] = merge_metadata(conf["metadata"], p["metadata"])
        conf["updated"] = self.now()
        self.events.emit_updated("billing_portal.configuration.updated", conf, before)
        return conf

    def list_configurations(self, p: Obj) -> Objs:
        return [
            c
            for c in self.store.all("portal_configurations")
            if all(c[k] == p[k] for k in ("active", "is_default") if k in p)
        ]

    # ---------------------------------------------------------------- sessions
    def create_session(self, p: Obj) -> Obj:
        if "customer" not in p:
            raise missing_param("customer")
        cust = self.store.get(p["customer"], "customer", "customer")
        if "configuration" in p:
            conf = self.store.get(p["configuration"], "billing_portal.configuration", "configuration")
        else:
            # Stripe docs: SDK docstring of the session's `configuration`: "If not specified,
            # the session uses the default configuration."
            defaults = [c for c in self.store.all("portal_configurations") if c["is_default"]]
            if not defaults:
                raise no_default_configuration()
            conf = defaults[0]
        # Without a return_url anywhere Stripe still opens the portal, with no return link.
        session = objects.portal_session(self.now(), cust["id"], conf["id"], p, self.engine.base_url())
        if not session["return_url"]:
            session["return_url"] = conf["default_return_url"]
        self.store.add("portal_sessions", session)
        return session

    # ---------------------------------------------------------------- customer actions
    # Through a session the portal offers what its configuration allows: Stripe docs:
    # reference/stripe-and-billing-systems.md §1.2 "Customer portal" (`products[]`, each
    # listing the prices it can switch to; subscription_update `proration_behavior`, `none`
    # by default; subscription_cancel `mode` and `proration_behavior`).
    def session_configuration(self, session_id: str) -> Obj:
        session = self.store.get(session_id, "billing_portal.session")
        return self.store.get(session["configuration"], "billing_portal.configuration")

    def switchable_prices(self, conf: Obj) -> list[str]:
        update = conf["features"].get("subscription_update") or {}
        if not update.get("enabled") or "price" not in (update.get("default_allowed_updates") or []):
            return []
        return [price for product in update.get("products") or [] for price in product.get("prices") or []]

    def session_change_price(self, session_id: str, sub_id: str, price_id: str) -> None:
        conf = self.session_configuration(session_id)
        if price_id not in self.switchable_prices(conf):
            raise invalid(f"This portal does not offer price {price_id}.", param="price")
        behavior = (conf["features"].get("subscription_update") or {}).get("proration_behavior") or "none"
        self.change_price(sub_id, price_id, behavior)

    def session_cancel(self, session_id: str, sub_id: str) -> None:
        cancel = self.session_configuration(session_id)["features"].get("subscription_cancel") or {}
        if not cancel.get("enabled"):
            raise invalid("This portal does not allow cancelling.")
        if cancel.get("mode", "at_period_end") == "at_period_end":
            self.cancel_at_period_end(sub_id)
        else:
            prorate = (cancel.get("proration_behavior") or "none") == "create_prorations"
            self.engine.subscriptions.cancel(sub_id, {"prorate": prorate})

    def change_price(self, sub_id: str, price_id: str, proration_behavior: str) -> None:
        """Switch the subscription's (first) item to another price."""
        sub = self.store.get(sub_id, "subscription")
        item_id = sub["items"]["data"][0]["id"]
        # The customer is on the portal page and completes 3-D Secure there if the bank asks
        # (believed, like Checkout; not found stated in Stripe's docs).
        with self.engine.payments.context(off_session=False, customer_present=True):
            self.engine.changes.update(
                sub_id,
                {"items": [{"id": item_id, "price": price_id}], "proration_behavior": proration_behavior},
            )

    def cancel_at_period_end(self, sub_id: str) -> None:
        self.engine.changes.update(sub_id, {"cancel_at_period_end": True})

    def update_customer(self, customer_id: str, email: str | None, tax_id: tuple[str, str] | None) -> None:
        customers = self.engine.customers
        if email is not None:
            customers.update(customer_id, {"email": email})
        if tax_id is not None:
            # The portal replaces the customer's tax id: delete + create, as Stripe does.
            for old in customers.list_tax_ids(customer_id):
                customers.delete_tax_id(customer_id, old["id"])
            customers.add_tax_id(customer_id, tax_id[0], tax_id[1])
