"""The billing processor's life: built from settings once, kept on `Services.billing`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.billing.manual import ManualBilling
from modelux_server.billing.processor import BillingProcessor
from modelux_server.config import Settings
from modelux_server.services import Services


def build_processor(settings: Settings) -> BillingProcessor:
    """Stripe when MODELUX_STRIPE_SECRET_KEY is set, else manual billing."""
    if settings.billing_mode == "stripe" and settings.stripe_secret_key:
        # imported here so manual mode never loads the Stripe SDK
        from modelux_server.billing.stripe.gateway import StripeBilling

        return StripeBilling(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            tolerance=settings.stripe_webhook_tolerance,
            automatic_tax=settings.stripe_automatic_tax,
        )
    return ManualBilling()


@asynccontextmanager
async def billing_processor(rt: Services) -> AsyncIterator[BillingProcessor]:
    """Install the processor for the app (or a CLI command) and close it afterwards.

    A processor already installed (a test's) is used and left open.
    """
    if rt.has_billing:
        yield rt.billing
        return
    processor = build_processor(rt.settings)
    rt.billing = processor
    try:
        yield processor
    finally:
        rt.billing = None
        close = getattr(processor, "aclose", None)
        if close is not None:
            await close()
