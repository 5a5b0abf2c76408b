"""Settings, read once where the app is assembled and passed down.

Every value comes from a `MODELUX_` environment variable (or a `.env` file);
nothing else in the package reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelux_server.kit.egress import EgressPolicy
from modelux_server.kit.files import private_dir
from modelux_server.plans.catalog import MAX_PER_MINUTE
from modelux_server.provider.vendors import AZURE_API_VERSION


class SettingsError(Exception):
    """The configuration cannot run; the message says which variable and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELUX_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # the base of every absolute link (402 upgrade URLs, emails, Stripe returns);
    # unset: the host and port actually served (resolved_public_url)
    public_url: str | None = None
    data_dir: Path = Path(".modelux")
    database_url: str | None = None
    redis_url: str | None = None
    smtp_url: str | None = None
    email_from: str = "modelux <billing@localhost>"
    outbox_dir: Path | None = None
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_tolerance: int = Field(300, ge=1)
    # days a past_due subscription keeps its paid plan, counted from the first
    # failed payment, whatever retry schedule is set in Stripe's Dashboard
    past_due_grace_days: int = Field(14, ge=0)
    # the operator API (/admin/v1): `name:secret` per operator, comma-separated (a bare
    # secret is the operator "operator"); unset turns the API off (404)
    admin_token: str | None = None
    # where operator notices go (overdue Enterprise invoices, contract ends)
    operator_email: str | None = None
    # an Enterprise invoice past due: `keep` the plan until the operator acts, or
    # `downgrade` to the plan the contract names for its end
    enterprise_overdue_action: Literal["keep", "downgrade"] = "keep"
    # "Talk to sales": inquiries are emailed here; the link shown beside the form
    sales_email: str | None = None
    sales_url: str | None = None
    # Stripe Tax on Checkout and plan changes; needs Stripe Tax set up in the Dashboard
    stripe_automatic_tax: bool = False
    plan_catalog: Path | None = None
    secret_key: str | None = None
    max_body_bytes: int = Field(1_048_576, ge=1024)
    log_level: str = "INFO"
    # text for people, json for log collectors (one object per line); docs/observability.md
    log_format: Literal["text", "json"] = "text"
    # one line per HTTP request on the `modelux.access` logger (uvicorn's own stays off)
    access_log: bool = True
    # OpenTelemetry traces to this OTLP/HTTP URL (e.g. http://collector:4318/v1/traces);
    # unset: no tracing (needs the `otel` extra)
    otlp_endpoint: str | None = None
    otel_service_name: str = "modelux-server"
    redis_unavailable: Literal["fail_closed", "fail_open"] = "fail_closed"
    request_log_flush_ms: int = Field(200, ge=10)
    # requests reserved in the durable ledger ahead of use: the most a crash
    # can over-count (never under-count); see usage/backends/local.py
    counter_reserve_block: int = Field(32, ge=1, le=100_000)
    counter_reserve_block_max: int = Field(4096, ge=1, le=100_000)
    upstream_timeout_s: float = Field(60.0, gt=0)
    # non-public upstreams the operator admits (CIDRs, host names); empty refuses
    # every non-public destination, loopback included (kit/egress.py)
    egress_allow: str = ""
    # the most an upstream answer may hold: a non-streamed body, and a stream in total
    upstream_max_bytes: int = Field(10_485_760, ge=1024)
    upstream_stream_max_bytes: int = Field(67_108_864, ge=1024)
    # the api-version sent to Azure OpenAI (docs/providers.md); a dated GA or preview version
    azure_api_version: str = Field(AZURE_API_VERSION, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")
    # prices the genai-prices database lacks, or that the operator pays differently:
    # {"vendor/model": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}} (pricing/catalog.py)
    model_prices: str = ""
    # a budgeted request without max_tokens, for a model whose context window is unknown,
    # reserves this many output tokens at worst (docs/budgets.md)
    budget_max_output_tokens: int = Field(32_768, ge=1, le=10_000_000)
    # master switch for background work (mailer, reconcile, future purges and
    # exports) in every process; tests turn it off to drive the jobs by hand
    workers_enabled: bool = True
    # `modelux serve` processes: unset = the CPU count with shared counters
    # (PostgreSQL and Redis), else 1; more than 1 is refused without them
    workers: int | None = Field(None, ge=1, le=256)
    # whether `serve` also runs the background jobs in-process: unset = only on
    # the single-process deployments (no Redis or SQLite); `modelux worker` otherwise
    serve_runs_worker: bool | None = None
    # SIGTERM: /readyz answers 503 for this long while requests are still taken
    # (load balancers notice), then in-flight requests get shutdown_grace_seconds
    shutdown_drain_seconds: float = Field(0.0, ge=0, le=300)
    shutdown_grace_seconds: float = Field(30.0, ge=0, le=3600)
    # `modelux worker` answers GET /healthz on this port when set (container probes)
    worker_health_port: int | None = Field(None, ge=1, le=65535)
    # how often the mailer worker looks for due emails when nothing wakes it
    notifications_poll_seconds: float = Field(1.0, gt=0)
    # /metrics: unset = served in development, off in production unless a token is
    # set; with a token, scrapers must send it as a bearer token
    metrics_enabled: bool | None = None
    metrics_token: str | None = None
    # an org_id label on the admitted-requests counter: one series per organization,
    # so only for deployments with few of them
    metrics_org_label: bool = False

    # reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (comma-separated IPs or CIDRs); empty: nobody's, the peer address is the client
    trusted_proxies: str = ""
    # failed dashboard logins from one client address in 15 minutes, whatever the emails
    login_max_failures_per_address: int = Field(30, ge=1)
    # organizations created through /signup per hour, per client address and per email domain
    signup_max_per_address: int = Field(5, ge=1)
    signup_max_per_domain: int = Field(20, ge=1)
    # invitations one organization may send per hour (each is an email to any address)
    invitations_max_per_hour: int = Field(20, ge=1)
    # requests per minute per key, unless the plan (catalog `rate_limits`) or the key
    # itself says otherwise; 0 turns that kind of limit off everywhere (ratelimit/policy.py)
    rate_limit_project_key_per_minute: int = Field(600, ge=0, le=MAX_PER_MINUTE)
    rate_limit_management_key_per_minute: int = Field(60, ge=0, le=MAX_PER_MINUTE)
    # unset: required when SMTP is configured (the link can actually arrive)
    require_email_verification: bool | None = None

    @field_validator("model_prices")
    @classmethod
    def _prices(cls, value: str) -> str:
        from modelux_server.pricing.catalog import parse_overrides

        parse_overrides(value)  # PriceOverrideError is a ValueError: reported per variable
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: str | None) -> str | None:
        if not value:
            return None
        for entry in value.split(","):
            name, sep, secret = entry.strip().rpartition(":")
            if len(secret) < 24 or (sep and not name.strip()):
                raise ValueError(
                    "MODELUX_ADMIN_TOKEN: each entry is `name:secret` or a bare secret, "
                    "the secret at least 24 characters"
                )
        return value

    @field_validator("public_url", "stripe_api_base", "sales_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("egress_allow")
    @classmethod
    def _egress_allow(cls, value: str) -> str:
        EgressPolicy.parse(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if scheme in ("sqlite", "sqlite+aiosqlite"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        raise ValueError("must be a postgresql:// or sqlite:/// URL")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ValueError("must be an smtp://, smtp+starttls:// or smtps:// URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production":
            if not self.secret_key:
                raise ValueError("MODELUX_SECRET_KEY is required when MODELUX_ENV=production")
            if self.stripe_secret_key and not self.stripe_webhook_secret:
                raise ValueError("MODELUX_STRIPE_WEBHOOK_SECRET is required with a Stripe key")
        return self

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = self.host
        if host in ("0.0.0.0", "::", "", "127.0.0.1", "::1"):
            # loopback or every interface: "localhost" reaches it (the contract's default link)
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def shared_counters(self) -> bool:
        """Counts and claims that hold across processes: PostgreSQL and Redis."""
        return not self.is_sqlite and bool(self.redis_url)

    @property
    def resolved_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return available_cpus() if self.shared_counters else 1

    @property
    def serve_runs_background(self) -> bool:
        if not self.workers_enabled:
            return False
        if self.serve_runs_worker is not None:
            return self.serve_runs_worker
        return not self.shared_counters

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'modelux.db').resolve()}"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def billing_mode(self) -> Literal["stripe", "manual"]:
        return "stripe" if self.stripe_secret_key else "manual"

    @property
    def metrics_served(self) -> bool:
        if self.metrics_enabled is not None:
            return self.metrics_enabled
        return self.env == "development" or bool(self.metrics_token)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def email_verification_required(self) -> bool:
        if self.require_email_verification is not None:
            return self.require_email_verification
        return self.smtp_url is not None

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The key that encrypts provider credentials.

        In development a random key is created once under data_dir, so the
        embedded default works with no configuration and keeps working
        across restarts.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        private_dir(self.data_dir)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, and a container's CPU quota (cgroup v2).

    `os.cpu_count()` is the host's, so a container limited to 2 CPUs on a
    64-core node would start 64 processes, each with its own database pool.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"MODELUX_{field.upper()}" if err["loc"] else field
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
