"""The audit log's core on SQLite and PostgreSQL: gated reading, the hash chain and its
verification against a tampered row, rollback with the change, filters, streamed exports."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from sqlalchemy import delete, select, text, update

from modelux_server.audit import record as audit
from modelux_server.models import AuditEvent
from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to

URL = "/manage/v1/audit-log"


async def _events(rt: Services, org: Org, n: int, action: str = "project.updated") -> None:
    async with rt.db.session() as session:
        for i in range(n):
            await audit.record(
                session,
                rt,
                org.id,
                audit.Actor("management_key", "mk_test", "ci key", "api"),
                action,
                "project",
                f"proj_{i % 7}",
                before={"name": f"old {i}"},
                after={"name": f"new {i}", "api_key": "sk-should-never-appear"},
            )


async def test_free_and_pro_get_402_pointing_at_team(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    for plan in ("free", "pro"):
        if plan != "free":
            await move_to(rt, org.id, plan)
        for path, headers in (
            (URL, {}),
            (f"{URL}/verify", {}),
            (URL, {"Accept": "text/csv"}),
            (URL, {"Accept": "application/x-ndjson"}),
        ):
            r = await client.get(path, headers={**org.headers, **headers})
            assert r.status_code == 402, (plan, path, r.text)
            error = r.json()["error"]
            assert error["code"] == "feature_not_in_plan" and error["feature"] == "audit_log"
            assert error["upgrade"]["plan"] == "team"


async def test_history_from_before_the_upgrade_shows_and_the_chain_verifies(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await _events(rt, org, 3)  # recorded while on Free
    await move_to(rt, org.id, "team")
    r = await client.get(URL, headers=org.headers)
    assert r.status_code == 200, r.text
    events = r.json()["data"]
    # the organization's own first events (its creation and first key) come from the fixture
    assert [e["action"] for e in events] == [
        "plan.changed",
        "project.updated",
        "project.updated",
        "project.updated",
        "management_key.created",
        "organization.created",
    ]
    assert [e["seq"] for e in events] == [6, 5, 4, 3, 2, 1]
    assert events[0]["changes"]["plan"] == {"from": "free", "to": "team"}
    first = events[-3]
    assert first["actor"] == {
        "type": "management_key",
        "id": "mk_test",
        "label": "ci key",
        "source": "api",
        "ip": None,
        "user_agent": None,
    }
    # a secret handed over by mistake is redacted, never stored
    assert first["changes"]["api_key"] == {"from": None, "to": "[redacted]"}
    async with rt.db.session() as session:
        stored = list(await session.scalars(select(AuditEvent.changes)))
    assert stored and "sk-should-never-appear" not in json.dumps(stored)

    verdict = (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]
    assert verdict == {"ok": True, "events_checked": 6, "broken_at": None}


async def test_a_row_edited_with_sql_breaks_the_chain_at_that_row(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "team")
    await _events(rt, org, 5)
    async with rt.db.session() as session:
        target = (
            await session.scalars(
                text("select id from audit_events where org_id = :org and seq = 5").bindparams(org=org.id)
            )
        ).one()
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == target).values(actor_label="someone else")
        )
    verdict = (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]
    assert verdict["ok"] is False
    assert verdict["broken_at"] == {"id": target, "seq": 5, "reason": "its content does not match its hash"}

    # a deleted row is found too: the next one names the gap
    async with rt.db.session() as session:
        await session.execute(update(AuditEvent).where(AuditEvent.id == target).values(actor_label="ci key"))
    assert (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]["ok"] is True
    async with rt.db.session() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.org_id == org.id, AuditEvent.seq == 6))
    verdict = (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]
    assert verdict["ok"] is False and verdict["broken_at"]["seq"] == 7
    assert verdict["broken_at"]["reason"] == "event 6 is missing"


async def test_the_newest_row_deleted_is_found_by_the_head(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "team")
    await _events(rt, org, 3)
    async with rt.db.session() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.org_id == org.id, AuditEvent.seq == 6))
    verdict = (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]
    assert verdict["ok"] is False and verdict["broken_at"]["seq"] == 6
    assert "head names event 6" in verdict["broken_at"]["reason"]


async def test_an_event_is_rolled_back_with_its_change(org: Org, rt: Services) -> None:
    class Boom(Exception):
        pass

    count_sql = text("select count(*) from audit_events where org_id = :o").bindparams(o=org.id)
    async with rt.db.session() as session:
        before = (await session.execute(count_sql)).scalar_one()
    with pytest.raises(Boom):
        async with rt.db.session() as session:
            await audit.record(
                session, rt, org.id, audit.SYSTEM, "project.created", "project", "proj_x", after={"name": "x"}
            )
            raise Boom
    async with rt.db.session() as session:
        count = (await session.execute(count_sql)).scalar_one()
    assert count == before


async def test_filters_and_pages(client: httpx.AsyncClient, org: Org, rt: Services) -> None:
    await move_to(rt, org.id, "team")
    await _events(rt, org, 10)
    await _events(rt, org, 2, action="api_key.revoked")
    get = lambda **q: client.get(URL, params=q, headers=org.headers)  # noqa: E731
    assert [e["action"] for e in (await get(action="api_key.")).json()["data"]] == ["api_key.revoked"] * 2
    assert len((await get(action="project.updated")).json()["data"]) == 10
    assert len((await get(target_type="project", target_id="proj_0")).json()["data"]) == 2 + 1
    assert len((await get(actor="ci key")).json()["data"]) == 12
    assert (await get(actor="nobody")).json()["data"] == []
    page = (await get(limit="5")).json()
    rest = (await get(limit="50", cursor=page["next_cursor"])).json()
    seqs = [e["seq"] for e in page["data"] + rest["data"]]
    # 12 events, the plan change and the organization's creation and first key
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == 15 and rest["has_more"] is False
    bad = await get(since="yesterday")
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "since"
    assert (await get(cursor="abc")).status_code == 422


async def test_csv_and_ndjson_exports_stream_every_event(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "team")
    await _events(rt, org, 2100)
    r = await client.get(URL, headers={**org.headers, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # the organization's creation and first key, the plan change, 2100 events and the
    # export itself (recorded before it streams)
    assert (
        len(rows) == 2104
        and rows[0]["action"] == "organization.created"
        and rows[2]["action"] == "plan.changed"
        and rows[-1]["action"] == "audit_log.exported"
    )
    assert [int(x["seq"]) for x in rows] == list(range(1, len(rows) + 1))
    r = await client.get(URL, headers={**org.headers, "Accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 2105 and lines[-1]["action"] == "audit_log.exported"
    actions = [
        e["action"]
        for e in (await client.get(URL, params={"action": "audit_log.exported"}, headers=org.headers)).json()[
            "data"
        ]
    ]
    assert actions == ["audit_log.exported", "audit_log.exported"]
    verdict = (await client.get(f"{URL}/verify", headers=org.headers)).json()["data"]
    assert verdict["ok"] is True and verdict["events_checked"] == len(lines)
