"""The operator's console as text: the `modelux admin` tables and views.

Each view takes what the operator API returns (the service's render functions), so the
command line and `/admin/v1` show the same facts. Names, reasons and messages are
tenant text: control characters are shown escaped, so an organization named with
terminal escape sequences cannot rewrite the operator's screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_CELL = 60


def clean(value: Any, limit: int | None = MAX_CELL) -> str:
    """One printable line; long text cut with an ellipsis."""
    if value is None:
        return "-"
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return empty
    cells = [[clean(c) for c in row] for row in rows]
    widths = [max(len(col), *(len(row[i]) for row in cells)) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(columns), *(line(row) for row in cells)])


def _usage(used: Any, limit: Any) -> str:
    return f"{used:,}/{'unlimited' if limit is None else f'{limit:,}'}"


def orgs_table(rows: Sequence[dict[str, Any]]) -> str:
    """`modelux admin orgs`: one line per organization (service.render_row)."""
    return table(
        ("ID", "NAME", "OWNER", "PLAN", "STATUS", "REQUESTS"),
        [
            (
                r["id"],
                r["name"],
                ", ".join(r["owners"]) or "-",
                r["plan"]["name"],
                r["status"],
                _usage(r["usage"]["monthly_requests"]["used"], r["usage"]["monthly_requests"]["limit"]),
            )
            for r in rows
        ],
        "no organizations",
    )


def invoices_table(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        ("ID", "NUMBER", "STATUS", "AMOUNT", "DUE", "PAID", "SOURCE", "LINK"),
        [
            (
                i["id"],
                i["number"],
                i["status"],
                f"{i['amount']} {i['currency'].upper()}",
                (i["due_at"] or "-")[:10],
                (i["paid_at"] or "-")[:10],
                i["source"],
                i["hosted_invoice_url"],
            )
            for i in rows
        ],
        "no invoices",
    )


def inquiries_table(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        ("ID", "RECEIVED", "ORG", "FROM", "SEATS", "REQUESTS/MONTH", "NEEDS", "MESSAGE"),
        [
            (
                q["id"],
                (q["created_at"] or "")[:16].replace("T", " "),
                q["org_id"],
                q["contact_email"] or q["requested_by"],
                q["seats"],
                q["monthly_requests"],
                ", ".join(q["needs"]) or "-",
                q["message"],
            )
            for q in rows
        ],
        "no sales inquiries",
    )


def _terms_lines(plan: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    price = plan.get("price")
    if price:
        minimum = f", minimum commitment {price['minimum_commitment']}" if price["minimum_commitment"] else ""
        amount = f"{price['amount']} {price['currency'].upper()} {price['interval']}"
        lines.append(f"price        {amount}{minimum}")
    contract = plan.get("contract")
    if contract:
        renew = "renews automatically" if contract["auto_renew"] else f"then {contract['end_plan']}"
        lines.append(
            f"contract     {contract['start']} to {contract.get('end') or 'open-ended'} ({renew}; "
            f"notice {contract['notice_days']} days)"
        )
    payment = plan.get("payment")
    if payment:
        po = f", PO {clean(payment['po_number'])}" if payment.get("po_number") else ""
        terms = f"invoice, net {payment['net_days']}" if payment["method"] == "invoice" else "card"
        lines.append(f"payment      {terms}{po}")
    contact = plan.get("billing_contact")
    if contact:
        name = f"{clean(contact['name'])} " if contact.get("name") else ""
        lines.append(f"billing to   {name}<{clean(contact['email'])}>")
    if plan.get("support_channel"):
        lines.append(f"support      {clean(plan['support_channel'], None)}")
    sla = plan.get("sla")
    if sla:
        times = ", ".join(f"{k} {v} min" for k, v in sla["response_minutes"].items())
        lines.append(f"sla          {sla['uptime_percent']}% uptime{'; ' + times if times else ''}")
    return lines


def plan_view(plan: dict[str, Any]) -> str:
    """One Enterprise plan version (enterprise.schemas.render_version)."""
    limits = ", ".join(
        f"{name}={'unlimited' if value is None else value}" for name, value in plan["limits"].items()
    )
    lines = [
        f"{clean(plan['name'])} (version {plan['version']}, {plan['id']}, by {clean(plan['created_by'])} "
        f"at {plan['created_at'][:19].replace('T', ' ')})",
        f"limits       {limits}",
        f"features     {', '.join(plan['features']) or '-'}",
    ]
    if plan.get("region"):
        lines.append(f"region       {plan['region']}")
    return "\n".join(lines + _terms_lines(plan))


def change_line(change: dict[str, Any]) -> str:
    if "added" in change:
        parts = [f"+{x}" for x in change["added"]] + [f"-{x}" for x in change["removed"]]
        return f"  {change['field']}: {' '.join(parts)}"
    return f"  {change['field']}: {clean(change['from'])} -> {clean(change['to'])}"


def history_view(versions: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]) -> str:
    if not versions:
        return "no Enterprise plan"
    blocks = []
    for plan, changes in versions:
        shown = [
            f"version {plan['version']}  {plan['created_at'][:19].replace('T', ' ')}  by "
            f"{clean(plan['created_by'])}  {clean(plan['name'])}"
        ]
        if plan["version"] == versions[-1][0]["version"]:
            shown.append("  (first version)")
        elif changes:
            shown.extend(change_line(c) for c in changes)
        else:
            shown.append("  (no change)")
        blocks.append("\n".join(shown))
    return "\n\n".join(blocks)


def org_view(org: dict[str, Any]) -> str:
    """`modelux admin org ORG`: everything about one organization (service.detail)."""
    usage = org["usage"]["monthly_requests"]
    lines = [
        f"{clean(org['name'])} ({org['id']})",
        f"owners       {', '.join(clean(o) for o in org['owners']) or '-'}",
        f"plan         {clean(org['plan']['name'])} [{org['plan']['id']}, {org['plan']['interval']}]",
        f"status       {org['status']}",
        f"requests     {_usage(usage['used'], usage['limit'])} this month",
        f"created      {org['created_at'][:19].replace('T', ' ')}",
    ]
    if org.get("suspended_at"):
        since = org["suspended_at"][:19].replace("T", " ")
        lines.append(f"suspended    {since}: {clean(org['suspended_reason'])}")
    sub = org.get("subscription") or {}
    if sub.get("stripe_customer_id") or sub.get("stripe_subscription_id"):
        lines.append(
            f"stripe       customer {sub.get('stripe_customer_id') or '-'}, subscription "
            f"{sub.get('stripe_subscription_id') or '-'}, period ends {sub.get('current_period_end') or '-'}"
        )
    sections = ["\n".join(lines)]
    if org.get("enterprise_plan"):
        sections.append("Enterprise plan\n" + plan_view(org["enterprise_plan"]))
    sections.append("Invoices\n" + invoices_table(org.get("invoices") or []))
    changes = org.get("plan_changes") or []
    sections.append(
        "Plan changes\n"
        + table(
            ("WHEN", "FROM", "TO", "SOURCE", "BY"),
            [
                (
                    c["created_at"][:19].replace("T", " "),
                    f"{c['from_plan']} ({c['from_interval']})",
                    f"{c['to_plan']} ({c['to_interval']})",
                    c["source"],
                    c["actor"],
                )
                for c in changes
            ],
            "none",
        )
    )
    done = org.get("operator_actions") or []
    sections.append(
        "Operator actions\n"
        + table(
            ("WHEN", "OPERATOR", "VIA", "ACTION"),
            [(a["created_at"][:19].replace("T", " "), a["operator"], a["via"], a["action"]) for a in done],
            "none",
        )
    )
    return "\n\n".join(sections)
