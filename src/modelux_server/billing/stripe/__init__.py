"""Stripe: the only package that knows about it.

Which way data flows, by module:
  gateway.py       us <-> Stripe API: the one module importing the `stripe` SDK (the processor port)
  apply.py         Stripe -> us: a subscription as Stripe reports it becomes our plan state
  catalog_push.py  us -> Stripe: the plan catalog becomes products, prices and the portal configuration
  webhooks.py      Stripe -> us: verified events, applied once each through apply.py
  reconcile.py     Stripe -> us: the nightly repair of whatever webhooks missed
  endpoints.py     POST /webhooks/stripe
"""
