"""Events: ``GET /v1/events`` and the emission every state change goes through.

An event is a snapshot rendered at emission time and handed to the webhook dispatcher,
which never blocks, so the engine lock is never held while a receiver is being called.
Its ``request`` names the API call (id and idempotency key) that caused it, as Stripe's do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import objects
from .resource import Obj, Objs, Resource
from .store import created_matches

if TYPE_CHECKING:
    from .engine import Engine


class Events(Resource):
    def __init__(self, engine: Engine, submit: Callable[[Obj], None], api_version: str) -> None:
        super().__init__(engine)
        self._submit = submit
        self.api_version = api_version
        self._request = threading.local()

    def set_request(self, request_id: str | None, idempotency_key: str | None) -> None:
        self._request.value = {"id": request_id, "idempotency_key": idempotency_key}

    def emit(self, type_: str, obj: Obj, previous: Obj | None = None, snapshot: Obj | None = None) -> None:
        request = getattr(self._request, "value", None)
        data = snapshot if snapshot is not None else self.engine.render(obj)
        event = objects.event(self.now(), type_, data, self.api_version, request, previous)
        self.store.add("events", event)
        self._submit(event)

    def emit_updated(self, type_: str, obj: Obj, before: Obj) -> None:
        """Emit ``*.updated`` with Stripe's ``previous_attributes`` (top-level diff)."""
        after = self.engine.render(obj)
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        if previous:
            self.emit(type_, obj, previous)

    def list(self, p: Obj) -> Objs:
        types = [*(p.get("types") or []), *([p["type"]] if "type" in p else [])]

        def type_ok(t: str) -> bool:
            # Stripe accepts one "*" wildcard, e.g. "customer.subscription.*".
            return not types or any(
                t == want or (want.endswith("*") and t.startswith(want[:-1])) for want in types
            )

        return [
            e
            for e in self.store.all("events")
            if type_ok(e["type"]) and created_matches(e["created"], p.get("created"))
        ]
