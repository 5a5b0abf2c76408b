"""The tools an assistant sees: names, descriptions, typed arguments, answers.

Arguments reuse the REST body types (project.schemas.Name, billing's
Interval, ...), so a tool accepts exactly what its endpoint accepts. Each
tool hands its arguments to a `Backend` and turns the REST body it gets back
into a tool result: the body's `data` as structured content and as JSON
text, or a tool error carrying the error body and status.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Protocol

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from modelux_server.api_key.schemas import Name as KeyName
from modelux_server.billing.schemas import Interval
from modelux_server.budget import schemas as budget_schemas
from modelux_server.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from modelux_server.mcp.operations import OPERATIONS, Operation
from modelux_server.project.schemas import Description as ProjectDescription
from modelux_server.project.schemas import Name as ProjectName
from modelux_server.provider.schemas import DEFAULT_HELP, VENDORS, Secret
from modelux_server.provider.schemas import Name as ProviderName
from modelux_server.sales import schemas as sales_schemas
from modelux_server.sales import service as sales_service


class ToolFailure(Exception):
    """An error answer from the management API or its services: status + contract body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Backend(Protocol):
    async def call(self, op: Operation, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Run one operation; return the REST body or raise ToolFailure."""
        ...


def success(body: dict[str, Any]) -> CallToolResult:
    # Structured content must be an object: single objects come as `data`,
    # lists keep their envelope so an assistant can follow `next_cursor`.
    data = body.get("data")
    content = data if isinstance(data, dict) else body
    return CallToolResult(content=[_text(content)], structured_content=content)


def failure(status: int, body: dict[str, Any]) -> CallToolResult:
    content = {"status": status, **body}
    return CallToolResult(content=[_text(content)], structured_content=content, is_error=True)


def _text(content: dict[str, Any]) -> TextContent:
    return TextContent(type="text", text=json.dumps(content, indent=2))


# Typed arguments, with what an assistant needs to fill them in.
PlanId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="A self-serve plan id from list_plans: 'free', 'pro' or 'team'.",
    ),
]
BillingInterval = Annotated[Interval, Field(description="'monthly', or 'annual' (two months free).")]
ReturnUrl = Annotated[
    str | None,
    Field(description="Where the portal's back link goes; default: the dashboard's billing page."),
]
Cursor = Annotated[
    str | None, Field(description="`next_cursor` from the previous page; omit for the first page.")
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}.")]
ProjectId = Annotated[str, Field(min_length=1, max_length=40, description="The project's id (proj_...).")]
Vendor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description=(
            f"{', '.join(VENDORS[:-1])} or {VENDORS[-1]} (docs/providers.md). azure and "
            "openai_compatible need base_url; a bedrock api_key is ACCESS_KEY::SECRET::REGION"
            "[::SESSION_TOKEN]."
        ),
    ),
]

BudgetId = Annotated[str, Field(min_length=1, description="The budget's id (bud_...), from list_budgets.")]
BUDGET_SCOPE = "What the budget caps: 'organization', 'project' or 'api_key'."
BUDGET_SCOPE_ID = (
    "The project's (proj_...) or API key's (key_...) id, for those scopes; left out for 'organization'."
)
BUDGET_PERIOD = (
    "'daily', 'weekly' (from Monday), 'monthly' (from the 1st) or 'billing' (the plan's billing "
    "month); all in UTC."
)
BUDGET_ACTION = "'block' refuses requests at the cap (status 402) until the reset; 'alert' only emails."

AuditText = Annotated[str | None, Field(max_length=320)]
AUDIT_SINCE = "Only events at or after this time: ISO 8601 with a zone, e.g. 2026-12-01T00:00:00Z."
AUDIT_ACTION = "An action name (project.updated), or a prefix ending in '.' (api_key.) for a family."

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
CREATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
LIMITED = (
    " Counts against the plan's {limit} limit: at the limit the call fails with status 402, "
    "error.type 'plan_limit_exceeded', and error.upgrade naming the plan (and billing page URL) "
    "that allows more. Needs an admin or owner key."
)


def build_tools(backend: Backend) -> list[Tool]:
    """The tools, each forwarding to `backend` through its operation."""

    # positional-only, so tool arguments called `name` pass through **args
    async def run(tool: str, ctx: Context, /, **args: Any) -> CallToolResult:
        given = {k: v for k, v in args.items() if v is not None}
        try:
            return success(await backend.call(OPERATIONS[tool], given, ctx))
        except ToolFailure as exc:
            return failure(exc.status, exc.body)

    async def get_billing(ctx: Context) -> CallToolResult:
        return await run("get_billing", ctx)

    async def list_plans(ctx: Context) -> CallToolResult:
        return await run("list_plans", ctx)

    async def create_checkout_session(
        plan: PlanId, ctx: Context, interval: BillingInterval = "monthly"
    ) -> CallToolResult:
        return await run("create_checkout_session", ctx, plan=plan, interval=interval)

    async def change_plan(
        plan: PlanId, ctx: Context, interval: BillingInterval = "monthly"
    ) -> CallToolResult:
        return await run("change_plan", ctx, plan=plan, interval=interval)

    async def preview_change_plan(
        plan: PlanId, ctx: Context, interval: BillingInterval = "monthly"
    ) -> CallToolResult:
        return await run("preview_change_plan", ctx, plan=plan, interval=interval)

    async def create_portal_session(ctx: Context, return_url: ReturnUrl = None) -> CallToolResult:
        return await run("create_portal_session", ctx, return_url=return_url)

    async def list_invoices(
        ctx: Context, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> CallToolResult:
        return await run("list_invoices", ctx, cursor=cursor, limit=limit)

    async def list_projects(
        ctx: Context, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> CallToolResult:
        return await run("list_projects", ctx, cursor=cursor, limit=limit)

    async def create_project(
        name: Annotated[ProjectName, Field(description="The project's name.")],
        ctx: Context,
        description: Annotated[ProjectDescription | None, Field(description="Optional description.")] = None,
    ) -> CallToolResult:
        return await run("create_project", ctx, name=name, description=description)

    async def list_providers(
        ctx: Context, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> CallToolResult:
        return await run("list_providers", ctx, cursor=cursor, limit=limit)

    async def add_provider(
        vendor: Vendor,
        name: Annotated[ProviderName, Field(description="A label for this credential, e.g. 'openai prod'.")],
        api_key: Annotated[Secret, Field(description="The vendor's API key; stored encrypted.")],
        ctx: Context,
        base_url: Annotated[
            str | None,
            Field(description="Required for azure and openai_compatible; else the default endpoint."),
        ] = None,
        default: Annotated[bool | None, Field(description=DEFAULT_HELP)] = None,
    ) -> CallToolResult:
        return await run(
            "add_provider", ctx, vendor=vendor, name=name, api_key=api_key, base_url=base_url, default=default
        )

    async def list_api_keys(
        ctx: Context,
        project_id: Annotated[str | None, Field(description="Only this project's keys.")] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> CallToolResult:
        return await run("list_api_keys", ctx, project_id=project_id, cursor=cursor, limit=limit)

    async def create_api_key(
        project_id: ProjectId,
        ctx: Context,
        name: Annotated[KeyName, Field(description="A label for the key.")] = "default",
        expires_at: Annotated[
            str | None,
            Field(description="When the key stops working, ISO 8601 with a zone, e.g. 2030-01-01T00:00:00Z."),
        ] = None,
    ) -> CallToolResult:
        return await run("create_api_key", ctx, project_id=project_id, name=name, expires_at=expires_at)

    async def list_budgets(
        ctx: Context, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> CallToolResult:
        return await run("list_budgets", ctx, cursor=cursor, limit=limit)

    async def create_budget(
        name: Annotated[
            budget_schemas.Name, Field(description="Unique in the organization, e.g. 'prod monthly'.")
        ],
        scope: Annotated[budget_schemas.Scope, Field(description=BUDGET_SCOPE)],
        amount_usd: budget_schemas.Usd,
        period: Annotated[budget_schemas.PeriodKind, Field(description=BUDGET_PERIOD)],
        ctx: Context,
        scope_id: Annotated[budget_schemas.ScopeId | None, Field(description=BUDGET_SCOPE_ID)] = None,
        action: Annotated[budget_schemas.Action, Field(description=BUDGET_ACTION)] = "block",
        thresholds: budget_schemas.Thresholds | None = None,
    ) -> CallToolResult:
        return await run(
            "create_budget",
            ctx,
            name=name,
            scope=scope,
            scope_id=scope_id,
            amount_usd=budget_schemas.as_number(amount_usd),
            period=period,
            action=action,
            thresholds=thresholds,
        )

    async def update_budget(
        budget_id: BudgetId,
        ctx: Context,
        name: Annotated[budget_schemas.Name | None, Field(description="A new name.")] = None,
        scope: Annotated[budget_schemas.Scope | None, Field(description=BUDGET_SCOPE)] = None,
        scope_id: Annotated[budget_schemas.ScopeId | None, Field(description=BUDGET_SCOPE_ID)] = None,
        amount_usd: budget_schemas.Usd | None = None,
        period: Annotated[budget_schemas.PeriodKind | None, Field(description=BUDGET_PERIOD)] = None,
        action: Annotated[budget_schemas.Action | None, Field(description=BUDGET_ACTION)] = None,
        thresholds: budget_schemas.Thresholds | None = None,
    ) -> CallToolResult:
        return await run(
            "update_budget",
            ctx,
            budget_id=budget_id,
            name=name,
            scope=scope,
            scope_id=scope_id,
            amount_usd=None if amount_usd is None else budget_schemas.as_number(amount_usd),
            period=period,
            action=action,
            thresholds=thresholds,
        )

    async def delete_budget(budget_id: BudgetId, ctx: Context) -> CallToolResult:
        return await run("delete_budget", ctx, budget_id=budget_id)

    async def contact_sales(
        message: sales_schemas.Message,
        ctx: Context,
        seats: sales_schemas.Seats | None = None,
        monthly_requests: sales_schemas.MonthlyRequests | None = None,
        needs: sales_schemas.Needs | None = None,
        contact_email: sales_schemas.ContactEmail | None = None,
    ) -> CallToolResult:
        return await run(
            "contact_sales",
            ctx,
            message=message,
            seats=seats,
            monthly_requests=monthly_requests,
            needs=needs,
            contact_email=contact_email,
        )

    async def list_audit_events(
        ctx: Context,
        since: Annotated[AuditText, Field(description=AUDIT_SINCE)] = None,
        until: Annotated[AuditText, Field(description="Only events before this time (ISO 8601).")] = None,
        actor: Annotated[
            AuditText, Field(description="Who acted: a user or key id, an email or a key's name.")
        ] = None,
        action: Annotated[AuditText, Field(description=AUDIT_ACTION)] = None,
        target_type: Annotated[
            AuditText, Field(description="What was acted on: project, api_key, ...")
        ] = None,
        target_id: Annotated[AuditText, Field(description="The id of what was acted on.")] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> CallToolResult:
        return await run(
            "list_audit_events",
            ctx,
            since=since,
            until=until,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            cursor=cursor,
            limit=limit,
        )

    async def export_access_review(ctx: Context) -> CallToolResult:
        return await run("export_access_review", ctx)

    return [
        Tool.from_function(
            get_billing,
            title="Billing and usage",
            description=(
                "The organization's billing state: current plan (id, name, interval), subscription "
                "status, renewal date, the current monthly window, one usage meter per limit "
                "(monthly_requests, projects, api_keys, provider_credentials: limit, used, percent; "
                "limit null means unlimited), features on/off, billing email, configs made "
                "inactive by a downgrade, and for an Enterprise plan (`custom_plan`) its contract, "
                "price, payment terms, invoices (status, hosted link), billing contact, support "
                "channel and SLA. Read-only; use it before suggesting an upgrade (an Enterprise "
                "plan is changed by the customer's account manager, not self-serve)."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            list_plans,
            title="Plan catalog",
            description=(
                "The public plan catalog: id, name, monthly and annual prices in US cents, limits "
                "(null = unlimited), features, and whether the plan is self-serve (Enterprise is "
                "not: it is arranged with sales). Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            create_checkout_session,
            title="Start a subscription (Stripe Checkout)",
            description=(
                "For an organization with no paid subscription yet: creates a Stripe Checkout "
                "session for a plan and interval and returns {url, id}. Nothing is charged by this "
                "call; a person must open the URL and enter a card, after which the plan changes. "
                "Give the URL to the user. Fails with status 409 when a subscription already exists "
                "(use change_plan) or when billing is not configured on the server. "
                "Needs an admin or owner key."
            ),
            annotations=CREATE,
        ),
        Tool.from_function(
            preview_change_plan,
            title="Preview a plan change (charges nothing)",
            description=(
                "What change_plan with the same plan and interval would do right now, from Stripe's "
                "invoice preview, without changing or charging anything: amount_due_cents (charged to "
                "the card now), credit_cents (kept as account credit for later invoices), "
                "refund_cents (back to the card, when moving to free), the invoice lines, and "
                "features_removed (features the new plan switches off). Amounts are in cents of `currency`. "
                "Call it before change_plan and show the user the amount. Needs an admin or owner key."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            change_plan,
            title="Change plan (charges the card)",
            description=(
                "Switches the organization's existing subscription to another self-serve plan "
                "(free, pro, team) or interval, effective immediately. PAYING AND DESTRUCTIVE: on an "
                "upgrade this charges the customer's card immediately (prorated by Stripe); moving "
                "to free ends the subscription now and refunds the unused paid time to the card; a "
                "downgrade turns off at once the features the new plan lacks (nothing is deleted). "
                "Call preview_change_plan first and confirm plan, interval and amount with the user. "
                "If the bank asks for 3-D Secure, the call fails with status 402, error.code "
                "'payment_action_required' and error.hosted_invoice_url: give that URL to the user "
                "to confirm the payment; the plan changes once it is paid. Returns the new billing "
                "state (as get_billing). Organizations without a subscription use "
                "create_checkout_session instead. Needs an admin or owner key."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
            ),
        ),
        Tool.from_function(
            create_portal_session,
            title="Open the billing portal",
            description=(
                "Creates a Stripe customer portal session and returns {url}, where a person can "
                "update the payment method, billing email and tax IDs, and see invoices. Changes "
                "nothing by itself. Needs an admin or owner key."
            ),
            annotations=CREATE,
        ),
        Tool.from_function(
            list_invoices,
            title="List invoices",
            description=(
                "The organization's Stripe invoices, newest first, paginated: number, status (draft, "
                "open, paid, uncollectible, void), created, period, total_cents, tax_cents, "
                "amount_due_cents, amount_paid_cents, credited_cents (refunded since), and the "
                "hosted_invoice_url and invoice_pdf links to give the user. Empty without a Stripe "
                "customer. Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            list_projects,
            title="List projects",
            description="The organization's projects, oldest first, paginated. Read-only.",
            annotations=READ,
        ),
        Tool.from_function(
            create_project,
            title="Create a project",
            description="Creates a project (API keys and routing configs belong to one)."
            + LIMITED.format(limit="projects"),
            annotations=CREATE,
        ),
        Tool.from_function(
            list_providers,
            title="List provider credentials",
            description=(
                "The organization's upstream provider credentials (vendor, name, base_url and a "
                "masked hint; secrets are never returned), paginated. Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            add_provider,
            title="Add a provider credential",
            description=(
                "Stores an upstream provider API key (encrypted; afterwards only a masked hint is "
                "shown) so the proxy can call that vendor." + LIMITED.format(limit="provider_credentials")
            ),
            annotations=CREATE,
        ),
        Tool.from_function(
            list_api_keys,
            title="List API keys",
            description=(
                "The organization's live project API keys (id, project, name, masked hint; never the "
                "secret), optionally for one project, paginated. Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            create_api_key,
            title="Create a project API key",
            description=(
                "Creates a project API key (mlx_sk_...) for the OpenAI-compatible proxy. The secret "
                "is in this answer's `key` field only, this once: pass it to the user, it cannot be "
                "shown again." + LIMITED.format(limit="api_keys")
            ),
            annotations=CREATE,
        ),
        Tool.from_function(
            list_budgets,
            title="List spend budgets",
            description=(
                "The organization's USD spend budgets, paginated: name, scope (organization, project "
                "or api_key) and scope_id, amount_usd per period (daily, weekly, monthly or billing; "
                "UTC), action (block or alert), thresholds, and the current period's spend "
                "(spend_usd, remaining_usd, used_percent, period_start, period_resets_at). Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            create_budget,
            title="Create a spend budget",
            description=(
                "Caps what the organization, one project or one API key may spend on upstream "
                "models per period, in US dollars. action 'block' refuses requests under the budget "
                "with status 402 (error.code 'budget_exceeded') once the cap is reached, until the "
                "period resets; 'alert' only emails. An email goes to the billing email (or the "
                "owners) when spend reaches each threshold (default 50, 80 and 100 percent). "
                "Needs an admin or owner key."
            ),
            annotations=CREATE,
        ),
        Tool.from_function(
            update_budget,
            title="Change a spend budget",
            description=(
                "Changes the given fields of a budget (the others stay). A new scope names its "
                "scope_id as on create. Takes effect for the next request; the spend counted in "
                "the current period stays. Needs an admin or owner key."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
            ),
        ),
        Tool.from_function(
            delete_budget,
            title="Delete a spend budget",
            description=(
                "Deletes a budget and its spend record for good; requests under it are no longer "
                "capped. Answers the budget as it was, with `deleted: true`. Needs an admin or owner key."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
            ),
        ),
        Tool.from_function(
            contact_sales,
            title="Talk to sales",
            description=(
                "Sends the organization's inquiry about a custom (Enterprise) plan to the sales team, "
                "who reply by email: a message, and optionally seats, expected monthly_requests, "
                "needs (" + ", ".join(sales_schemas.NEEDS) + ") and a contact_email to reply to. "
                "Stored and emailed once; each call is a new inquiry, so call it once per request "
                "of the user, with what they want to say. Any role may call it; "
                f"{sales_service.MAX_PER_DAY} a day per organization (then status 429)."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
            ),
        ),
        Tool.from_function(
            list_audit_events,
            title="Audit log",
            description=(
                "Changes on record in the organization, newest first, paginated: who acted (actor: "
                "type user, management_key, operator, stripe or system; id, label, source, ip, "
                "user_agent), the action (docs/audit-log.md lists them), the target (type, id), the "
                "changes ({field: {from, to}}, secrets redacted), when, the request id and the "
                "event's hash. Filters: since/until, actor, action (or a prefix such as 'api_key.'), "
                "target_type, target_id. Reaches back as far as the plan's audit retention. Needs "
                "the audit_log feature (Team and up): otherwise status 402, error.code "
                "'feature_not_in_plan', error.upgrade naming the plan. Read-only."
            ),
            annotations=READ,
        ),
        Tool.from_function(
            export_access_review,
            title="Access review",
            description=(
                "Who can do what in the organization right now, and since when: every member and "
                "pending invitation (role, status active or invited, login_method, scim_managed, "
                "last_login_at, created_at, invited_by), every management key (role, created_by, "
                "created_at, last_used_at, revoked_at), every project API key (project, created_by, "
                "created_at, expires_at, last_used_at, status active, revoked or expired), SCIM "
                "tokens and the SSO state. Generating one is recorded in the audit log. Needs the "
                "access_review_export feature (Enterprise): otherwise status 402, error.code "
                "'feature_not_in_plan'. Needs an admin or owner key."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
            ),
        ),
    ]
