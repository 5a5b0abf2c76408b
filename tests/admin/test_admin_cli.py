"""`modelux admin` on SQLite and PostgreSQL: the operator finds organizations by owner email
or name, gives one an Enterprise plan with invoice terms, edits it and reads the history,
suspends it, and keeps its invoices by hand (manual billing mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from modelux_server.cli import app
from modelux_server.config import Settings


class Console:
    """`modelux admin ...` as the operator runs it, against the test's database."""

    def __init__(self, settings: Settings) -> None:
        self.env = {
            "MODELUX_DATABASE_URL": settings.resolved_database_url,
            "MODELUX_DATA_DIR": str(settings.data_dir),
            "MODELUX_SECRET_KEY": "test-secret-key",
            "USER": "carol",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(app, list(args), env=self.env)
        if ok:
            assert result.exit_code == 0, result.output
        else:  # refused as one line, never a traceback
            assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def bootstrap(self, org: str, email: str) -> str:
        out = self("bootstrap", "--org", org, "--email", email).stdout
        return next(word for word in out.split() if word.startswith("org_"))


@pytest.fixture
def console(settings: Settings) -> Console:
    return Console(settings)


def test_the_operator_finds_an_organization_by_owner_email_or_name(console: Console) -> None:
    acme = console.bootstrap("Acme", "ops@acme.test")
    acme_two = console.bootstrap("Acme", "two@acme.test")
    globex = console.bootstrap("Globex", "hank@globex.test")

    shown = console("admin", "org", "HANK@globex.test").stdout
    assert shown.startswith(f"Globex ({globex})") and "owners       hank@globex.test" in shown
    assert "plan         Free [free, monthly]" in shown
    assert console.json("admin", "org", "globex", "--json")["id"] == globex

    listed = console("admin", "orgs", "--search", "hank@").stdout.splitlines()
    assert listed[0].split() == ["ID", "NAME", "OWNER", "PLAN", "STATUS", "REQUESTS"]
    assert [line.split()[:3] for line in listed[1:]] == [[globex, "Globex", "hank@globex.test"]]
    page = console.json("admin", "orgs", "--json", "--limit", "2")
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = console.json("admin", "orgs", "--json", "--after", page["next_cursor"])
    assert {o["id"] for o in page["data"] + rest["data"]} == {acme, acme_two, globex}

    # two organizations are named Acme: every command taking an organization says which
    for args in (("org", "acme"), ("set-plan", "ACME", "team"), ("suspend", "acme")):
        refused = console("admin", *args, ok=False)
        assert refused.exit_code == 2
        assert "matches 2 organizations" in refused.stderr
        assert acme in refused.stderr and acme_two in refused.stderr
    assert console.json("admin", "org", "two@acme.test", "--json")["id"] == acme_two
    missing = console("admin", "org", "nobody@acme.test", ok=False)
    assert missing.exit_code == 1 and "No organization matches 'nobody@acme.test'" in missing.stderr


def test_an_enterprise_plan_with_unlimited_requests_and_invoice_terms_edited_from_the_cli(
    console: Console, tmp_path: Path
) -> None:
    org_id = console.bootstrap("Acme", "ops@acme.test")
    created = console.json(
        "admin", "create-enterprise-plan", "ops@acme.test",
        "--name", "Acme Enterprise",
        "--limit", "monthly_requests=unlimited", "--limit", "projects=500",
        "--feature", "sso", "--feature", "ensembles", "--feature", "audit_log",
        "--region", "eu",
        "--price", "120000", "--price-interval", "annual", "--minimum-commitment", "100000",
        "--contract-start", "2026-12-01", "--contract-end", "2027-11-30", "--end-plan", "pro",
        "--payment", "invoice", "--net-days", "30", "--po-number", "PO-7781",
        "--billing-contact-email", "AP@acme.test", "--billing-contact-name", "Ada Payables",
        "--support-channel", "Slack #acme-modelux",
        "--sla-uptime", "99.95%", "--sla-response", "sev1=30", "--sla-response", "sev2=120",
        "--operator", "alice",
    )  # fmt: skip
    assert created["org_id"] == org_id and created["version"] == 1
    assert created["limits"]["monthly_requests"] is None and created["limits"]["projects"] == 500
    assert created["features"] == ["audit_log", "ensembles", "sso"] and created["region"] == "eu"
    assert created["price"] == {
        "amount": "120000.00",
        "currency": "usd",
        "interval": "annual",
        "minimum_commitment": "100000.00",
    }
    assert created["payment"] == {"method": "invoice", "net_days": 30, "po_number": "PO-7781"}
    assert created["billing_contact"] == {"name": "Ada Payables", "email": "ap@acme.test"}
    assert created["contract"]["end_plan"] == "pro" and created["contract"]["auto_renew"] is False
    assert created["sla"] == {"uptime_percent": "99.95", "response_minutes": {"sev1": 30, "sev2": 120}}
    assert created["created_by"] == "operator:alice"

    shown = console("admin", "org", "ops@acme.test").stdout
    assert "plan         Acme Enterprise [enterprise, monthly]" in shown
    assert "requests     0/unlimited this month" in shown
    assert "payment      invoice, net 30, PO PO-7781" in shown
    assert "contract     2026-12-01 to 2027-11-30 (then pro; notice 30 days)" in shown

    # one feature off and the payment days changed; the PO number stays as it was
    edited = console.json(
        "admin", "edit-enterprise-plan", org_id, "--remove-feature", "sso", "--net-days", "45"
    )
    assert edited["version"] == 2 and edited["features"] == ["audit_log", "ensembles"]
    assert edited["payment"] == {"method": "invoice", "net_days": 45, "po_number": "PO-7781"}
    assert edited["created_by"] == "operator:carol"  # $USER when --operator is not given
    assert {"field": "features", "added": [], "removed": ["sso"]} in edited["changes"]
    assert {"field": "payment.net_days", "from": 30, "to": 45} in edited["changes"]
    detail = console.json("admin", "org", org_id, "--json")
    assert detail["billing"]["features"]["sso"] is False and detail["billing"]["features"]["ensembles"]

    history = console("admin", "enterprise-plan-history", "ops@acme.test").stdout
    newest, oldest = history.split("\n\n")
    assert newest.startswith("version 2") and "by operator:carol" in newest
    assert "  features: -sso" in newest and "  payment.net_days: 30 -> 45" in newest
    assert oldest.startswith("version 1") and "by operator:alice" in oldest and "(first version)" in oldest

    # the whole body as the API takes it, from a file: the feature is back
    body = tmp_path / "plan.json"
    body.write_text(json.dumps({"features": ["audit_log", "ensembles", "sso"], "payment": None}))
    restored = console.json("admin", "edit-enterprise-plan", org_id, "--from-json", str(body))
    assert restored["version"] == 3 and "sso" in restored["features"] and restored["payment"] is None
    versions = console.json("admin", "enterprise-plan-history", org_id, "--json")["data"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert {"field": "features", "added": ["sso"], "removed": []} in versions[0]["changes"]

    actions = [
        (a["operator"], a["via"], a["action"])
        for a in console.json("admin", "org", org_id, "--json")["operator_actions"]
    ]
    assert actions == [
        ("carol", "cli", "enterprise_plan.edited"),
        ("carol", "cli", "enterprise_plan.edited"),
        ("alice", "cli", "enterprise_plan.created"),
    ]

    # refused, as one line naming what is wrong; nothing saved
    bad = console("admin", "edit-enterprise-plan", org_id, "--price-interval", "weekly", ok=False)
    assert "price.interval" in bad.stderr
    bad = console("admin", "edit-enterprise-plan", org_id, "--remove-feature", "scim", ok=False)
    assert "the plan does not include it" in bad.stderr
    bad = console("admin", "edit-enterprise-plan", org_id, "--limit", "seats=5", ok=False)
    assert "NAME one of" in bad.stderr
    bad = console("admin", "edit-enterprise-plan", org_id, "--contract-end", "2026-11-01", ok=False)
    assert "contract.end must be after contract.start" in bad.stderr
    bad = console("admin", "edit-enterprise-plan", org_id, "--from-json", str(body), "--name", "x", ok=False)
    assert "--from-json is the whole plan" in bad.stderr
    assert len(console.json("admin", "enterprise-plan-history", org_id, "--json")["data"]) == 3


def test_the_old_free_text_options_read_as_terms_or_are_refused(console: Console) -> None:
    org_id = console.bootstrap("Acme", "ops@acme.test")
    plan = console.json(
        "admin", "create-enterprise-plan", org_id,
        "--invoicing", "net 30", "--price", "5000", "--billing-contact-email", "ap@acme.test",
        "--sla", "99.9% monthly uptime", "--data-residency", "eu",
    )  # fmt: skip
    assert plan["payment"] == {"method": "invoice", "net_days": 30, "po_number": None}
    assert plan["sla"]["uptime_percent"] == "99.9" and plan["region"] == "eu"
    refused = console("admin", "create-enterprise-plan", org_id, "--invoicing", "quarterly", ok=False)
    assert "--payment invoice --net-days N" in refused.stderr
    refused = console("admin", "create-enterprise-plan", org_id, "--sla", "gold support", ok=False)
    assert "--sla-uptime" in refused.stderr
    refused = console("admin", "create-enterprise-plan", org_id, "--invoicing", "net 30", ok=False)
    assert "--price" in refused.stderr


def test_suspend_and_unsuspend_from_the_cli(console: Console) -> None:
    org_id = console.bootstrap("Acme", "ops@acme.test")
    console.bootstrap("Globex", "hank@globex.test")

    assert console("admin", "suspend", "ops@acme.test", "--reason", "unpaid", "--operator", "bob").stdout == (
        f"{org_id} suspended\n"
    )
    suspended = console("admin", "orgs", "--status", "suspended").stdout.splitlines()
    assert len(suspended) == 2 and suspended[1].split()[0] == org_id and "suspended" in suspended[1]
    shown = console("admin", "org", org_id).stdout
    assert "status       suspended" in shown and ": unpaid" in shown
    active = [o["name"] for o in console.json("admin", "orgs", "--status", "active", "--json")["data"]]
    assert active == ["Globex"]

    assert console("admin", "unsuspend", "Acme").stdout == f"{org_id} active\n"
    detail = console.json("admin", "org", org_id, "--json")
    assert detail["status"] == "active" and detail["suspended_at"] is None
    assert [(a["operator"], a["action"]) for a in detail["operator_actions"]] == [
        ("carol", "organization.unsuspended"),
        ("bob", "organization.suspended"),
    ]


def test_manual_invoices_recorded_and_marked_paid(console: Console) -> None:
    org_id = console.bootstrap("Acme", "ops@acme.test")
    invoice = console.json(
        "admin", "invoices", "record", "ops@acme.test",
        "--amount", "10000.50", "--number", "INV-2026-001", "--due", "2027-01-15", "--po-number", "PO-1",
    )  # fmt: skip
    assert invoice["status"] == "open" and invoice["amount"] == "10000.50" and invoice["source"] == "manual"
    assert invoice["due_at"].startswith("2027-01-15") and invoice["po_number"] == "PO-1"

    listed = console("admin", "invoices", "ops@acme.test").stdout.splitlines()
    assert listed[0].split()[:4] == ["ID", "NUMBER", "STATUS", "AMOUNT"]
    assert listed[1].split()[:5] == [invoice["id"], "INV-2026-001", "open", "10000.50", "USD"]

    paid = console.json("admin", "invoices", "mark", org_id, invoice["id"], "--status", "paid")
    assert paid["status"] == "paid" and paid["paid_at"] is not None
    assert console.json("admin", "invoices", "list", org_id, "--json")["data"][0]["status"] == "paid"

    refused = console("admin", "invoices", "mark", org_id, invoice["id"], "--status", "refunded", ok=False)
    assert refused.stderr.startswith("error: status:")
    refused = console("admin", "invoices", "mark", org_id, "einv_unknown", "--status", "void", ok=False)
    assert "No invoice 'einv_unknown'" in refused.stderr
    refused = console("admin", "invoices", "record", org_id, "--amount", "-5", ok=False)
    assert "amount" in refused.stderr

    actions = [a["action"] for a in console.json("admin", "org", org_id, "--json")["operator_actions"]]
    assert actions == ["invoice.updated", "invoice.recorded"]
    assert console("admin", "sales-inquiries").stdout == "no sales inquiries\n"


def test_an_operator_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    """As the operator's shell sees it: a separate process, the embedded database."""
    env = {**os.environ, "MODELUX_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelux_server.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)

    assert run("migrate").returncode == 0
    assert run("bootstrap", "--org", "Acme", "--email", "ops@acme.test").returncode == 0
    for args, code, words in (
        (("admin", "create-enterprise-plan", "ops@acme.test", "--price", "12.345"), 1, "two decimals"),
        (("admin", "edit-enterprise-plan", "ops@acme.test", "--name", "X"), 1, "no Enterprise plan"),
        (("admin", "set-plan", "ops@acme.test", "enterprise"), 1, "create-enterprise-plan"),
        (("admin", "org", "nobody@acme.test"), 1, "No organization matches"),
    ):
        out = run(*args)
        assert out.returncode == code, out.stderr
        assert out.stderr.startswith("error: ") and words in out.stderr and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1
