"""Who is acting, in which organization and with which role (a management key or a dashboard user)."""

from __future__ import annotations

from dataclasses import dataclass

from modelux_server.errors import Forbidden

ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated actor inside one organization.

    `source` says through which door the call came (api, dashboard, mcp), so
    plan changes and audit records can say so.
    """

    org_id: str
    role: str
    actor: str  # "mk_..." for a management key, "usr_..." for a dashboard user
    source: str = "api"

    def require(self, role: str) -> None:
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(
                f"This action needs the {role} role; this credential has the {self.role} role.",
                required_role=role,
            )

    def can_grant(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]
