"""Which requests-per-minute limit applies to a credential.

In this order, the first that says something wins:

1. the operator's setting at 0: that kind of limit is off, whatever else says;
2. the key's own override (`rate_limit_per_minute` on a project API key);
3. the plan's `rate_limits` in the catalog (a number, or "unlimited");
4. the setting (`MODELUX_RATE_LIMIT_PROJECT_KEY_PER_MINUTE` = 600,
   `MODELUX_RATE_LIMIT_MANAGEMENT_KEY_PER_MINUTE` = 60).
"""

from __future__ import annotations

from modelux_server.config import Settings
from modelux_server.plans.catalog import MANAGEMENT_KEY_PER_MINUTE, PROJECT_KEY_PER_MINUTE, Catalog, Plan


def project_key_limit(settings: Settings, plan: Plan, override: int | None = None) -> int | None:
    """Requests per minute for one project API key (`mlx_sk_`); None = no limit."""
    return _resolve(_setting(settings, PROJECT_KEY_PER_MINUTE), plan, PROJECT_KEY_PER_MINUTE, override)


def management_key_limit(settings: Settings, plan: Plan | None) -> int | None:
    """Requests per minute for one management key (`mlx_mk_`); None = no limit.

    `plan` may be None when `plan_matters` says no plan changes the setting.
    """
    setting = _setting(settings, MANAGEMENT_KEY_PER_MINUTE)
    if plan is None:
        return setting or None
    return _resolve(setting, plan, MANAGEMENT_KEY_PER_MINUTE, None)


def plan_matters(settings: Settings, catalog: Catalog, name: str) -> bool:
    """Whether an organization's plan must be read to know limit `name` (else the setting decides)."""
    return _setting(settings, name) != 0 and any(name in plan.rate_limits for plan in catalog.plans.values())


def _setting(settings: Settings, name: str) -> int:
    if name == PROJECT_KEY_PER_MINUTE:
        return settings.rate_limit_project_key_per_minute
    return settings.rate_limit_management_key_per_minute


def _resolve(setting: int, plan: Plan, name: str, override: int | None) -> int | None:
    if setting == 0:
        return None
    if override is not None:
        return override
    if name in plan.rate_limits:
        return plan.rate_limits[name]
    return setting
