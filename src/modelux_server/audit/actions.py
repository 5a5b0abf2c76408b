"""Every action name the audit log records, with what it means (docs/audit-log.md lists them).

`record` refuses a name not listed here, so the documented list is the whole list.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    # organization and plan
    "organization.created": "An organization was created (sign-up, bootstrap).",
    "organization.suspended": "The operator suspended the organization.",
    "organization.unsuspended": "The operator lifted a suspension.",
    "plan.changed": (
        "The plan changed (any source: dashboard, API, MCP, Stripe, portal, operator, reconcile)."
    ),
    "enterprise_plan.created": "The operator gave the organization an Enterprise plan.",
    "enterprise_plan.edited": "The operator saved a new version of the Enterprise plan.",
    "billing.settings_updated": "Billing settings changed (billing email, tax IDs).",
    "invoice.recorded": "The operator recorded an invoice (manual billing).",
    "invoice.updated": "The operator changed a recorded invoice's status.",
    "sales_inquiry.sent": "Someone asked sales about a plan.",
    # projects and keys
    "project.created": "A project was created.",
    "project.updated": "A project was renamed or changed.",
    "project.deleted": "A project was deleted.",
    "api_key.created": "A project API key was created (its secret is never recorded).",
    "api_key.updated": "A project API key was changed (name, rate limit, expiry).",
    "api_key.revoked": "A project API key was revoked.",
    "management_key.created": "A management key was created.",
    "management_key.revoked": "A management key was revoked.",
    "provider_credential.created": "A provider credential was added (only its masked hint is recorded).",
    "provider_credential.updated": "A provider credential was changed.",
    "provider_credential.deleted": "A provider credential was deleted.",
    # routing and budgets
    "routing_config.created": "A routing config was created (version 1).",
    "routing_config.updated": "A routing config got a new version.",
    "routing_config.rolled_back": "A routing config was rolled back to an earlier version.",
    "routing_config.deleted": "A routing config was deleted.",
    "budget.created": "A spend budget was created.",
    "budget.updated": "A spend budget was changed.",
    "budget.deleted": "A spend budget was deleted.",
    # people and sessions
    "member.invited": "Someone was invited.",
    "member.invitation_revoked": "An invitation was revoked.",
    "member.joined": "An invitation was accepted.",
    "member.role_changed": "A member's role changed.",
    "member.removed": "A member was removed.",
    "user.login": "A person signed in to the dashboard.",
    "user.login_failed": "A sign-in failed (wrong password, unknown account).",
    "user.logout": "A person signed out.",
    # compliance
    "access_review.exported": "Someone generated an access review.",
    "audit_log.exported": "Someone exported the audit log.",
}

# who can act
ACTOR_TYPES = ("user", "management_key", "scim_token", "operator", "stripe", "system")
