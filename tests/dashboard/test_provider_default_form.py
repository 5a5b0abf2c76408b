"""The providers page shows each vendor's default credential and makes another one the default."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelux_server.models import ProviderCredential
from modelux_server.services import Services
from tests.dashboard.forms import browser, post_form, sign_up


async def _ids(rt: Services) -> dict[str, str]:
    async with rt.db.session() as session:
        rows = (await session.execute(select(ProviderCredential))).scalars()
        return {row.name: row.id for row in rows}


async def test_the_owner_sees_the_default_and_makes_another_credential_the_default(
    app: Any, rt: Services
) -> None:
    async with browser(app) as client:
        await sign_up(client)
        for name in ("first", "second"):
            form = {"vendor": "openai", "name": name, "api_key": f"sk-{name}-00000000"}
            assert (await post_form(client, "/providers", "/providers/create", form)).status_code == 303
        ids = await _ids(rt)
        page = (await client.get("/providers")).text
        assert f'data-testid="default-{ids["first"]}"' in page
        assert f'data-testid="default-{ids["second"]}"' not in page
        assert "Make second the default openai credential" in page

        r = await post_form(client, "/providers", "/providers/default", {"id": ids["second"]})
        assert r.status_code == 303 and r.headers["location"] == "/providers?done=default"
        page = (await client.get(r.headers["location"])).text
        assert "Default credential changed." in page
        assert f'data-testid="default-{ids["second"]}"' in page
        assert f'data-testid="default-{ids["first"]}"' not in page
        assert "Make first the default openai credential" in page

        missing = await post_form(client, "/providers", "/providers/default", {"id": "prov_nothing"})
        assert missing.status_code == 404
