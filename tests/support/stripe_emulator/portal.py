"""The customer portal: configurations, sessions, and what a customer does inside it.

``/v1/billing_portal/configurations`` and ``/v1/billing_portal/sessions`` are the API;
:meth:`BillingPortal.change_price`, :meth:`BillingPortal.cancel_at_period_end` and
:meth:`BillingPortal.update_customer` are the customer's clicks on the hosted page.
"""

from __future__ import annotations

from . import objects
from .errors import missing_param
from .resource import Obj, Objs, Resource, merge_metadata


class BillingPortal(Resource):
    # ---------------------------------------------------------------- configurations
    def create_configuration(self, p: Obj) -> Obj:
        is_default = not self.store.all("portal_configurations")
        conf = objects.portal_configuration(self.now(), p, is_default)
        self.store.add("portal_configurations", conf)
        self.events.emit("billing_portal.configuration.created", conf)
        return conf

    def update_configuration(self, conf_id: str, p: Obj) -> Obj:
        conf = self.store.get(conf_id, "billing_portal.configuration")
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
            defaults = [c for c in self.store.all("portal_configurations") if c["is_default"]]
            conf = defaults[0] if defaults else self.create_configuration({"features": {}})
        # Without a return_url anywhere Stripe still opens the portal, with no return link.
        session = objects.portal_session(self.now(), cust["id"], conf["id"], p, self.engine.base_url())
        if not session["return_url"]:
            session["return_url"] = conf["default_return_url"]
        self.store.add("portal_sessions", session)
        return session

    # ---------------------------------------------------------------- customer actions
    def change_price(self, sub_id: str, price_id: str, proration_behavior: str) -> None:
        """Switch the subscription's (first) item to another price."""
        sub = self.store.get(sub_id, "subscription")
        item_id = sub["items"]["data"][0]["id"]
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
