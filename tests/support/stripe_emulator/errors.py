"""Stripe-shaped API errors.

Every failure the emulator reports is raised as :class:`StripeApiError` and rendered
exactly like Stripe's ``{"error": {...}}`` envelope, so the SDK maps it to the same
exception class (``InvalidRequestError``, ``CardError``, ``IdempotencyError``...) that a
real call would raise.
"""

from __future__ import annotations

from typing import Any


class StripeApiError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        return {"error": error}


def missing(kind: str, object_id: str, param: str = "id") -> StripeApiError:
    # Stripe's wording for an unknown id, e.g. "No such customer: 'cus_123'".
    return StripeApiError(f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param)


def missing_param(param: str) -> StripeApiError:
    return StripeApiError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeApiError:
    return StripeApiError(message, param=param, code=code)


def card_declined() -> StripeApiError:
    return StripeApiError(
        "Your card was declined.",
        status=402,
        type="card_error",
        code="card_declined",
        decline_code="generic_decline",
    )
