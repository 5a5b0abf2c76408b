"""Spend budgets: USD caps on an organization, project or API key, enforced at admission."""
