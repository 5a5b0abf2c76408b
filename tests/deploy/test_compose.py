"""compose.yaml and its Caddyfile, checked as data.

`docker compose config` would be the natural check, but the compose plugin is not
installed on the CI machine and no Docker daemon runs there, so the stack is never
started in CI. These tests read the file the way compose does (YAML merge keys, `${VAR}`
interpolation with an empty environment) and check what the stack promises.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy import dockerfile
from tests.deploy.settings_env import load_with_environment

COMPOSE = dockerfile.REPO / "compose.yaml"
MODELUX_SERVICES = ("migrate", "serve-1", "serve-2", "worker")
SERVE = ("serve-1", "serve-2")
# every value that is a credential; with no .env they must be marked placeholders
SECRET_NAMES = (
    "MODELUX_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "MODELUX_STRIPE_SECRET_KEY",
    "MODELUX_STRIPE_WEBHOOK_SECRET",
    "MODELUX_METRICS_TOKEN",
)
PLACEHOLDER_PREFIX = "dev-only-"
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group("braced") or match.group("bare")
        name, operator, default = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:-|-)?(.*)", expression).groups()  # type: ignore[union-attr]
        if operator == ":-":
            return env.get(name) or default
        if operator == "-":
            return env.get(name, default)
        assert not default, f"unsupported interpolation ${{{expression}}}"
        return env.get(name, "")

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = interpolate(raw, {})
    return resolved


def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {*MODELUX_SERVICES, "proxy", "postgres", "redis", "mailpit"}
    svc = services(compose)
    assert svc["postgres"]["image"].startswith("postgres:16")
    assert svc["redis"]["image"].startswith("redis:7")
    assert svc["mailpit"]["image"].startswith("axllent/mailpit:")
    assert svc["proxy"]["image"].startswith("caddy:2")
    for name in ("postgres", "redis"):
        assert svc[name]["healthcheck"]["test"][0] == "CMD"


def test_each_modelux_service_runs_the_image_built_here_with_its_own_command(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in MODELUX_SERVICES:
        assert svc[name]["build"] == "."
        assert svc[name]["image"] == svc["migrate"]["image"]
    assert (dockerfile.REPO / "Dockerfile").exists()
    assert svc["migrate"]["command"] == ["migrate"]
    assert svc["migrate"]["restart"] == "no"
    assert svc["worker"]["command"] == ["worker"]
    for name in SERVE:
        command = svc[name]["command"]
        assert command[:2] == ["serve", "--workers"] and int(command[2]) >= 1


def test_serve_and_worker_start_after_a_successful_migration(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in (*SERVE, "worker"):
        depends = svc[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert svc["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_environment_points_at_the_stacks_own_services(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in MODELUX_SERVICES:
        env = svc[name]["environment"]
        assert env["MODELUX_ENV"] == "production"
        assert env["MODELUX_LOG_FORMAT"] == "json"
        assert env["MODELUX_ACCESS_LOG"] == "true"
        database = urlsplit(env["MODELUX_DATABASE_URL"])
        assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
        assert database.username == svc["postgres"]["environment"]["POSTGRES_USER"]
        assert database.password == svc["postgres"]["environment"]["POSTGRES_PASSWORD"]
        assert database.path == "/" + svc["postgres"]["environment"]["POSTGRES_DB"]
        assert urlsplit(env["MODELUX_REDIS_URL"]).hostname == "redis"
        assert urlsplit(env["MODELUX_SMTP_URL"])[:2] == ("smtp", "mailpit:1025")
        assert env["MODELUX_SECRET_KEY"] and env["MODELUX_PUBLIC_URL"] and env["MODELUX_EMAIL_FROM"]
    assert services(compose)["worker"]["environment"]["MODELUX_WORKER_HEALTH_PORT"] == "8081"


def test_with_no_env_file_every_secret_is_a_marked_development_placeholder(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    seen = 0
    for name, service in services(raw).items():
        for key, value in service.get("environment", {}).items():
            if key in SECRET_NAMES:
                seen += 1
                # a `.env` beside compose.yaml replaces it
                assert re.fullmatch(rf"\$\{{{key}:-[^}}]*\}}", value), (name, key, value)
                resolved = services(compose)[name]["environment"][key]
                assert resolved == "" or resolved.startswith(PLACEHOLDER_PREFIX), (name, key)
    assert seen >= 6
    password = urlsplit(services(compose)["worker"]["environment"]["MODELUX_DATABASE_URL"]).password
    assert password is not None and password.startswith(PLACEHOLDER_PREFIX)


def test_a_real_env_file_replaces_the_placeholders(raw: dict[str, Any]) -> None:
    real = {"MODELUX_SECRET_KEY": "k" * 40, "POSTGRES_PASSWORD": "pw-from-env"}
    resolved = interpolate(raw, real)["services"]
    assert resolved["serve-1"]["environment"]["MODELUX_SECRET_KEY"] == "k" * 40
    assert urlsplit(resolved["serve-1"]["environment"]["MODELUX_DATABASE_URL"]).password == "pw-from-env"
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw-from-env"


@pytest.mark.parametrize("service", ["serve-1", "worker", "migrate"])
def test_modelux_accepts_the_environment(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = load_with_environment(services(compose)[service]["environment"], monkeypatch, tmp_path)
    assert settings.env == "production"
    assert settings.shared_counters and not settings.serve_runs_background
    assert settings.billing_mode == "manual"  # no Stripe key until .env gives one


def test_only_the_proxy_is_trusted_for_forwarded_headers(compose: dict[str, Any]) -> None:
    svc = services(compose)
    subnets = [
        ipaddress.ip_network(pool["subnet"]) for pool in compose["networks"]["modelux"]["ipam"]["config"]
    ]
    for name in MODELUX_SERVICES:
        trusted = [
            ipaddress.ip_network(t) for t in svc[name]["environment"]["MODELUX_TRUSTED_PROXIES"].split(",")
        ]
        assert trusted == subnets
        assert svc[name]["networks"] == ["modelux"]
        # nothing reaches serve from outside but through the proxy
        assert "ports" not in svc[name]
    assert svc["proxy"]["networks"] == ["modelux"]
    published = [p for s in svc.values() for p in s.get("ports", [])]
    assert "8080:8080" in svc["proxy"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in published if p not in svc["proxy"]["ports"])


def test_the_proxy_balances_both_replicas_and_checks_readiness(compose: dict[str, Any]) -> None:
    proxy = services(compose)["proxy"]
    host_path, container_path = proxy["volumes"][0].split(":")[:2]
    assert container_path == "/etc/caddy/Caddyfile"
    caddyfile = (dockerfile.REPO / host_path).read_text()
    runtime_env = " ".join(i.arguments for i in dockerfile.parse()[-1].all("ENV"))
    port = re.search(r"MODELUX_PORT=(\d+)", runtime_env).group(1)  # type: ignore[union-attr]
    upstreams = re.search(r"^\s*reverse_proxy ([^{]+)\{", caddyfile, re.M).group(1).split()  # type: ignore[union-attr]
    assert sorted(upstreams) == [f"{name}:{port}" for name in SERVE]
    assert re.search(r"^\s*health_uri /readyz$", caddyfile, re.M)
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in SERVE}


def test_containers_get_longer_than_the_shutdown_deadline_to_stop(compose: dict[str, Any]) -> None:
    for name in MODELUX_SERVICES:
        service = services(compose)[name]
        env = service["environment"]
        deadline = float(env["MODELUX_SHUTDOWN_DRAIN_SECONDS"]) + float(env["MODELUX_SHUTDOWN_GRACE_SECONDS"])
        assert seconds(service["stop_grace_period"]) > deadline


def test_the_worker_health_check_asks_the_workers_own_port(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    check = " ".join(worker["healthcheck"]["test"])
    port = worker["environment"]["MODELUX_WORKER_HEALTH_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert services(compose)["migrate"]["healthcheck"] == {"disable": True}
