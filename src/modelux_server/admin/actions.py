"""The record of what operators did (the audit log reads it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin.auth import Operator
from modelux_server.audit import record as audit
from modelux_server.audit.actions import ACTIONS
from modelux_server.kit.ids import new_id
from modelux_server.models import OperatorAction
from modelux_server.services import Services


async def record(
    session: AsyncSession,
    rt: Services,
    operator: Operator,
    action: str,
    org_id: str | None,
    **detail: Any,
) -> OperatorAction:
    """Note an operator action, in the transaction that does it."""
    row = OperatorAction(
        id=new_id("opact"),
        operator=operator.name,
        via=operator.via,
        action=action,
        org_id=org_id,
        detail=detail,
        created_at=rt.clock.now(),
    )
    session.add(row)
    # the organization's own audit log shows it too (a plan move is there already, from
    # the plan change itself)
    if org_id is not None and action in ACTIONS and action != "plan.changed":
        await audit.record(
            session,
            rt,
            org_id,
            audit.operator(operator.name, operator.via),
            action,
            action.split(".")[0],
            str(detail.get("invoice_id") or org_id),
            changes=detail,
        )
    return row


async def for_org(session: AsyncSession, org_id: str, limit: int = 50) -> list[OperatorAction]:
    rows = await session.scalars(
        select(OperatorAction)
        .where(OperatorAction.org_id == org_id)
        .order_by(OperatorAction.created_at.desc(), OperatorAction.id.desc())
        .limit(limit)
    )
    return list(rows)
