"""`/metrics` against its documentation: every metric in the table, and no tenant label by default."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import httpx
import openai
import pytest

from modelux_server.config import Settings
from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

DOC = Path(__file__).parents[2] / "docs" / "observability.md"
ROW = re.compile(r"^\| `(modelux_\w+)` \|\s*(\w+)\s*\|([^|]*)\|[^|]+\|$", re.MULTILINE)
TYPE = re.compile(r"^# TYPE (modelux_\w+) (\w+)$", re.MULTILINE)
SAMPLE = re.compile(r"^(modelux_\w+?)(?:\{(.*)\})? \S+$", re.MULTILINE)


def documented() -> dict[str, tuple[str, set[str]]]:
    """The doc's table: metric -> (type, label names)."""
    rows = ROW.findall(DOC.read_text())
    assert rows, "docs/observability.md has no metrics table"
    return {name: (kind, set(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}


def exported(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The scrape: metric -> type (the `_created` companions left out), and label names seen."""
    types = {name: kind for name, kind in TYPE.findall(text) if not name.endswith("_created")}
    labels: dict[str, set[str]] = defaultdict(set)
    for sample, pairs in SAMPLE.findall(text):
        family = next((name for name in types if sample in (name, *_parts(name))), None)
        if family is not None:
            labels[family] |= {pair.split("=", 1)[0] for pair in re.findall(r'\w+="[^"]*"', pairs)} - {"le"}
    return types, labels


def _parts(histogram: str) -> tuple[str, ...]:
    return (f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count")


def traffic(live: LiveServer, tenant: Tenant) -> str:
    """A request of each outcome, so that every labelled series exists; then the scrape."""
    client = openai.OpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
    client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="openai/fail-500", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="mlx_sk_unknown", base_url=f"{live.url}/v1", max_retries=0).models.list()
    scrape = httpx.get(f"{live.url}/metrics")
    assert scrape.status_code == 200
    return scrape.text


@pytest.mark.parametrize("org_label", [False, True])
def test_every_exported_metric_is_in_the_docs_table_and_org_ids_only_when_asked(
    sqlite_settings: Settings, upstream: FakeUpstream, org_label: bool
) -> None:
    settings = sqlite_settings.model_copy(update={"metrics_org_label": org_label})
    with LiveServer(settings) as live:
        tenant = make_tenant(live, upstream)
        text = traffic(live, tenant)
    types, labels = exported(text)
    table = documented()

    assert types.keys() == table.keys()  # none undocumented, none documented that is gone
    for name, kind in types.items():
        doc_kind, doc_labels = table[name]
        assert kind == doc_kind, name
        expected = doc_labels if org_label else doc_labels - {"org_id"}
        assert labels.get(name, set()) == expected, name
    with_org = {name for name, seen in labels.items() if "org_id" in seen}
    assert with_org == ({"modelux_requests_admitted_total"} if org_label else set())
    if org_label:
        assert f'org_id="{tenant.org_id}"' in text
    else:
        assert tenant.org_id not in text
