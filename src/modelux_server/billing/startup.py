"""The billing provider's life: built from settings once, kept in `rt.extras["billing"]`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.billing.manual import ManualBilling
from modelux_server.billing.provider import BillingProvider
from modelux_server.config import Settings
from modelux_server.runtime import Runtime


def build_provider(settings: Settings) -> BillingProvider:
    """Stripe when MODELUX_STRIPE_SECRET_KEY is set, else manual billing."""
    if settings.billing_mode == "stripe" and settings.stripe_secret_key:
        # imported here so manual mode never loads the Stripe SDK
        from modelux_server.billing.stripe_gateway import StripeBilling

        return StripeBilling(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            tolerance=settings.stripe_webhook_tolerance,
        )
    return ManualBilling()


@asynccontextmanager
async def billing_provider(rt: Runtime) -> AsyncIterator[BillingProvider]:
    """Install the provider for the app (or a CLI command) and close it afterwards.

    A provider already in `rt.extras` (put there by a test) is used and left open.
    """
    existing: BillingProvider | None = rt.extras.get("billing")
    if existing is not None:
        yield existing
        return
    provider = build_provider(rt.settings)
    rt.extras["billing"] = provider
    try:
        yield provider
    finally:
        rt.extras.pop("billing", None)
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()
