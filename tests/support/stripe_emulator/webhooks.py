"""Signed webhook delivery with knobs for the failure modes Stripe really exhibits.

Deliveries run on one dedicated worker thread. The API handler that caused an event
never waits for it, so a receiver that calls back into the emulator (re-fetching the
subscription, as it should) cannot deadlock us. Test hooks wait on the worker via
:meth:`Dispatcher.wait_until`, which makes them deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header: HMAC-SHA256 over ``"{t}.{payload}"``."""
    # Real time, not the emulator clock: receivers check the timestamp against their
    # own wall clock with a 300 s tolerance, exactly as they do with test clocks.
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class DeliveryResult:
    event_id: str
    type: str
    status_code: int | None  # None when the endpoint could not be reached
    text: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass
class _Job:
    event: dict[str, Any]
    seq: int
    result: DeliveryResult | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Dispatcher:
    def __init__(
        self,
        *,
        url_getter: Callable[[], str | None],
        secret_getter: Callable[[], str],
        timeout: float = 10.0,
    ) -> None:
        self._url_getter = url_getter
        self._secret_getter = secret_getter
        self._timeout = timeout
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._cond = threading.Condition()
        self._submitted = 0
        self._completed = 0
        self._held: list[dict[str, Any]] = []
        self._holding = False
        self._drop = 0
        self._thread: threading.Thread | None = None
        self.delivered: list[dict[str, Any]] = []
        self.dropped: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stripe-emulator-webhooks")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    # ------------------------------------------------------------------ controls
    def hold(self) -> None:
        with self._cond:
            self._holding = True

    def drop_next(self, n: int) -> None:
        with self._cond:
            self._drop += n

    def release(
        self, order: str = "fifo", duplicate: bool = False, seed: int | None = None
    ) -> list[DeliveryResult]:
        with self._cond:
            events, self._held, self._holding = self._held, [], False
        if order == "reverse":
            events.reverse()
        elif order == "shuffle":
            random.Random(seed).shuffle(events)
        elif order != "fifo":
            raise ValueError("order must be fifo, reverse or shuffle")
        if duplicate:
            events = [e for e in events for _ in range(2)]
        jobs = [self._enqueue(e) for e in events]
        return self._collect(jobs)

    def redeliver(self, event: dict[str, Any]) -> DeliveryResult:
        return self._collect([self._enqueue(event)])[0]

    # ------------------------------------------------------------------ emission
    def submit(self, event: dict[str, Any]) -> None:
        """Called by the engine for every new event (under the engine lock; never blocks)."""
        with self._cond:
            if self._drop > 0:
                self._drop -= 1
                self.dropped.append(event["id"])
                return
            if self._holding:
                self._held.append(event)
                return
        if self._url_getter() is None:
            return
        self._enqueue(event)

    def pending_count(self) -> int:
        with self._cond:
            return len(self._held)

    def wait_idle(self, timeout: float = 30.0) -> None:
        with self._cond:
            target = self._submitted
        self.wait_until(target, timeout)

    def wait_until(self, seq: int, timeout: float = 30.0) -> None:
        if threading.current_thread() is self._thread:
            return  # a receiver calling a test hook from inside a delivery: don't self-wait
        with self._cond:
            if not self._cond.wait_for(lambda: self._completed >= seq, timeout):
                raise TimeoutError("webhook deliveries did not finish in time")

    # ------------------------------------------------------------------ internals
    def _enqueue(self, event: dict[str, Any]) -> _Job:
        with self._cond:
            self._submitted += 1
            job = _Job(event, self._submitted)
        self._queue.put(job)
        return job

    def _collect(self, jobs: list[_Job]) -> list[DeliveryResult]:
        if jobs:
            self.wait_until(jobs[-1].seq)
        return [j.result for j in jobs if j.result is not None]

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while (job := self._queue.get()) is not None:
                try:
                    job.result = self._deliver(client, job.event)
                finally:
                    with self._cond:
                        self._completed = job.seq
                        if job.result is not None:
                            self.delivered.append(job.result.as_dict())
                        self._cond.notify_all()
                    job.done.set()

    def _deliver(self, client: httpx.Client, event: dict[str, Any]) -> DeliveryResult:
        url = self._url_getter()
        if url is None:
            return DeliveryResult(event["id"], event["type"], None, error="no webhook_url")
        # Stripe posts pretty-printed JSON and signs these exact bytes: a receiver that
        # verifies a re-serialised body instead of the raw one fails, as in production.
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, self._secret_getter()),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = client.post(url, content=payload.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return DeliveryResult(event["id"], event["type"], None, error=repr(exc))
        return DeliveryResult(event["id"], event["type"], response.status_code, response.text)
