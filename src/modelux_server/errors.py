"""One error family, rendered in the contract's JSON shape.

    ModeluxError                      {"error": {"type", "code", "message", ...}}
     +-- BadRequest          400      malformed body, wrong content type
     +-- Unauthorized        401      missing, bad or revoked credential
     +-- PlanError           402      a plan problem; never 429 or 400
     |    +-- PlanLimitExceeded       type plan_limit_exceeded
     |    +-- FeatureNotInPlan        type feature_not_in_plan
     +-- Forbidden           403      the role may not do this
     +-- NotFound            404      also for another tenant's objects
     +-- Conflict            409
     +-- ValidationFailed    422
     +-- RateLimited         429
     +-- UpstreamRejected    4xx      the provider refused the request (status relayed)
     +-- UpstreamFailed      502/504  the provider failed or timed out
     +-- ServiceUnavailable  503      a dependency of ours is down

Services raise these; the app turns them into responses in one handler.
"""

from __future__ import annotations

from typing import Any


def error_body(kind: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The contract's error shape; `extra` adds `param` and the like."""
    return {"error": {"type": kind, "code": code, "message": message, **extra}}


class ModeluxError(Exception):
    status = 500
    type = "api_error"
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return error_body(self.type, self.code, self.message, **self.extra)


class BadRequest(ModeluxError):
    status = 400
    type = "invalid_request_error"
    code = "bad_request"


class Unauthorized(ModeluxError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PlanError(ModeluxError):
    status = 402


class PlanLimitExceeded(PlanError):
    type = "plan_limit_exceeded"
    code = "resource_limit_reached"


class FeatureNotInPlan(PlanError):
    type = "feature_not_in_plan"
    code = "feature_not_in_plan"


class PaymentActionRequired(ModeluxError):
    """The bank wants the customer to confirm a payment (3-D Secure) before it goes through."""

    status = 402
    type = "payment_error"
    code = "payment_action_required"


class Forbidden(ModeluxError):
    status = 403
    type = "permission_error"
    code = "role_not_allowed"


class NotFound(ModeluxError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(ModeluxError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class ValidationFailed(ModeluxError):
    status = 422
    type = "invalid_request_error"
    code = "validation_error"


class RateLimited(ModeluxError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class UpstreamRejected(ModeluxError):
    """The upstream answered 4xx: its status, code and message reach the caller as they were.

    `"source": "upstream"` in the body (and `x-modelux-error-source: upstream`) tells it
    apart from the gateway's own 4xx: an upstream 429 is the provider's rate limit, not
    the key's; an upstream 401 is the stored provider credential, not the caller's key.
    """

    type = "invalid_request_error"
    code = "upstream_rejected"

    def __init__(self, message: str, *, status: int, kind: str | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.status = status
        self.type = kind or _UPSTREAM_TYPES.get(status, "invalid_request_error")
        self.headers["x-modelux-error-source"] = "upstream"


_UPSTREAM_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class UpstreamFailed(ModeluxError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimedOut(UpstreamFailed):
    status = 504
    code = "upstream_timeout"


class ServiceUnavailable(ModeluxError):
    status = 503
    type = "api_error"
    code = "service_unavailable"
