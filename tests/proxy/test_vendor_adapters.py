"""Every listed vendor works through the gateway with the official SDK, or the API refuses it.

Azure OpenAI, Amazon Bedrock and Google Gemini speak their own protocols: each is
played by a fake that speaks that protocol and checks its authentication as the
vendor does (tests/support/fake_vendors), so a request that reaches an answer was
addressed, authenticated and translated the way the real vendor needs. The
OpenAI-compatible vendors go through the existing adapter with the registry's
default endpoints. None of this depends on the database or the counter backend,
so the module runs on SQLite with local counters only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import select

from modelux_server.models import RequestLog
from modelux_server.provider import vendors
from modelux_server.provider.schemas import VENDORS
from modelux_server.proxy.providers import (
    DEFAULT_BASE_URLS,
    ProviderRegistry,
    UpstreamCredential,
    UpstreamError,
)
from modelux_server.proxy.providers.openai_compatible import base_url_for
from modelux_server.proxy.resolve import split_model
from tests.proxy.conftest import Tenant, make_tenant
from tests.support import databases
from tests.support.fake_upstream import FakeUpstream
from tests.support.fake_vendors import FakeAzureOpenAI, FakeBedrock, FakeGemini
from tests.support.fake_vendors._server import DEFAULT_CONTENT
from tests.support.fake_vendors.gemini import VECTOR
from tests.support.live_server import LiveServer

AZURE_KEY = "0123456789abcdef0123456789abcdef"
ACCESS_KEY, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLE"
REGION, TOKEN = "eu-west-3", "IQoJb3JpZ2luX2VjEXAMPLE"
GEMINI_KEY = "AIzaSyFAKE-0123456789"
BEDROCK_KEY = f"{ACCESS_KEY}::{SECRET_KEY}::{REGION}::{TOKEN}"
MSG = [{"role": "system", "content": "answer briefly"}, {"role": "user", "content": "say hello please"}]
ARN = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:  # adapters do not depend on the database
    return databases.sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def counter_backend() -> str:  # nor on the counter backend
    return "local"


@pytest.fixture(scope="module")
def azure() -> Iterator[FakeAzureOpenAI]:
    with FakeAzureOpenAI(AZURE_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def bedrock() -> Iterator[FakeBedrock]:
    with FakeBedrock(ACCESS_KEY, SECRET_KEY, REGION, TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def fakes(azure: FakeAzureOpenAI, bedrock: FakeBedrock, gemini: FakeGemini) -> dict[str, Any]:
    """vendor -> (fake, base_url, api_key, model) for a credential that works."""
    return {
        "azure": (azure, azure.url, AZURE_KEY, "gpt-4o-prod"),
        "bedrock": (bedrock, bedrock.url, BEDROCK_KEY, "anthropic.claude-3-haiku-20240307-v1:0"),
        "google": (gemini, f"{gemini.url}/v1beta", GEMINI_KEY, "gemini-2.0-flash"),
    }


@pytest.fixture
def tenant(live: LiveServer, upstream: FakeUpstream) -> Tenant:
    return make_tenant(live, upstream, monthly_requests=1000)  # room for five credentials


def add_provider(t: Tenant, vendor: str, api_key: str, base_url: str | None = None) -> httpx.Response:
    body = {"vendor": vendor, "name": f"{vendor}-{len(api_key)}", "api_key": api_key, "base_url": base_url}
    with t.manage() as c:
        return c.post("/providers", json={k: v for k, v in body.items() if v is not None})


def sdk(t: Tenant) -> openai.OpenAI:
    return openai.OpenAI(api_key=t.key, base_url=f"{t.base}/v1", max_retries=0)


def logged(live: LiveServer, request_id: str) -> RequestLog:
    async def find() -> RequestLog:
        await live.runtime.proxy.request_log.flush()
        async with live.runtime.db.session() as s:
            query = select(RequestLog).where(RequestLog.request_id == request_id)
            return (await s.execute(query)).scalar_one()

    return live.call(find())


# -- one registry --------------------------------------------------------------------


async def test_the_registry_is_the_one_list_of_vendors() -> None:
    assert VENDORS == vendors.IDS
    assert {"azure", "bedrock", "google", "deepseek", "openrouter", "xai"} <= set(VENDORS)
    async with ProviderRegistry() as registry:
        adapters = {v.protocol: type(registry.get(v.id)).__name__ for v in vendors.REGISTRY}
    assert adapters == {
        "openai": "OpenAICompatibleProvider",
        "anthropic": "AnthropicProvider",
        "azure": "AzureOpenAIProvider",
        "bedrock": "BedrockProvider",
        "gemini": "GeminiProvider",
    }
    openai_defaults = {v.id for v in vendors.REGISTRY if v.protocol == "openai" and v.default_base_url}
    assert set(DEFAULT_BASE_URLS) == openai_defaults
    # bare names route as the registry says
    assert split_model("gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert split_model("claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert split_model("gemini-2.5-pro") == ("google", "gemini-2.5-pro")
    listed = Path(__file__).parents[2].joinpath("docs", "providers.md").read_text()
    assert all(f"`{v.id}`" in listed for v in vendors.REGISTRY)


def test_openai_compatible_vendors_are_accepted_with_their_default_endpoint(tenant: Tenant) -> None:
    for vendor, url in (
        ("deepseek", "https://api.deepseek.com/v1"),
        ("openrouter", "https://openrouter.ai/api/v1"),
        ("xai", "https://api.x.ai/v1"),
    ):
        r = add_provider(tenant, vendor, f"sk-{vendor}-0000")
        assert r.status_code == 201, r.text
        assert r.json()["data"]["base_url"] is None  # the default is the registry's, resolved per call
        assert base_url_for(UpstreamCredential(vendor, "k", None)) == url


def test_an_openai_compatible_vendor_answers_through_its_credential(
    live: LiveServer, upstream: FakeUpstream, tenant: Tenant
) -> None:
    assert add_provider(tenant, "deepseek", "sk-deepseek-1111", f"{upstream.url}/v1").status_code == 201
    answer = sdk(tenant).chat.completions.create(model="deepseek/echo", messages=MSG)
    assert answer.choices[0].message.content == "say hello please"
    assert upstream.requests[-1]["headers"]["authorization"] == "Bearer sk-deepseek-1111"


def test_the_api_refuses_credentials_a_vendor_cannot_use(tenant: Tenant) -> None:
    cases = [
        (("bedrock", f"{ACCESS_KEY}:{SECRET_KEY}:{REGION}"), "invalid_api_key_format", "api_key"),
        (("bedrock", f"{ACCESS_KEY}::{SECRET_KEY}::Frankfurt"), "invalid_api_key_format", "api_key"),
        (("azure", AZURE_KEY), "base_url_required", "base_url"),
        (("openai_compatible", "none"), "base_url_required", "base_url"),
        (("acme", "sk-acme-0000"), "unknown_vendor", "vendor"),
    ]
    for (vendor, key), code, param in cases:
        r = add_provider(tenant, vendor, key)
        error = r.json()["error"]
        assert (r.status_code, error["code"], error["param"]) == (422, code, param), r.text
        assert SECRET_KEY not in r.text
    with tenant.manage() as c:
        assert sorted(p["vendor"] for p in c.get("/providers").json()["data"]) == ["anthropic", "openai"]


# -- the native protocols through the gateway ------------------------------------------


@pytest.mark.parametrize("vendor", ["azure", "bedrock", "google"])
def test_each_vendor_answers_the_sdk_plainly_and_streaming_with_usage_logged(
    vendor: str, live: LiveServer, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    fake, base_url, key, model = fakes[vendor]
    assert add_provider(tenant, vendor, key, base_url).status_code == 201
    client = sdk(tenant)

    raw = client.chat.completions.with_raw_response.create(
        model=f"{vendor}/{model}", messages=MSG, max_tokens=64
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == DEFAULT_CONTENT
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 8)
    row = logged(live, raw.headers["x-modelux-request-id"])
    assert (row.provider, row.prompt_tokens, row.completion_tokens, row.total_tokens) == (vendor, 5, 8, 13)

    raw_stream = client.chat.completions.with_raw_response.create(
        model=f"{vendor}/echo", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw_stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "say hello please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    row = logged(live, raw_stream.headers["x-modelux-request-id"])
    assert (row.stream, row.prompt_tokens, row.completion_tokens) == (True, 5, 3)

    sent = fake.requests[-1]
    if vendor == "azure":
        assert sent.path == "/openai/deployments/echo/chat/completions"
        assert sent.query["api-version"] == vendors.AZURE_API_VERSION
        assert "authorization" not in sent.headers
    elif vendor == "bedrock":
        assert sent.path == "/model/echo/converse-stream"
        assert sent.json["system"] == [{"text": "answer briefly"}]
        assert fake.requests[-2].json["inferenceConfig"] == {"maxTokens": 64}
    else:
        assert sent.path == "/v1beta/models/echo:streamGenerateContent" and sent.query == {"alt": "sse"}
        assert sent.json["systemInstruction"] == {"parts": [{"text": "answer briefly"}]}
        assert fake.requests[-2].json["generationConfig"] == {"maxOutputTokens": 64}


def test_a_google_credential_saved_for_geminis_openai_endpoint_keeps_working(
    tenant: Tenant, gemini: FakeGemini
) -> None:
    assert add_provider(tenant, "google", GEMINI_KEY, f"{gemini.url}/v1beta/openai").status_code == 201
    answer = sdk(tenant).chat.completions.create(model="gemini-2.0-flash", messages=MSG)
    assert answer.choices[0].message.content == DEFAULT_CONTENT
    assert gemini.requests[-1].path == "/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.mark.parametrize(
    ("vendor", "bad_key", "refusal"),
    [
        ("azure", "f" * 32, "Access denied due to invalid subscription key"),
        (
            "bedrock",
            f"{ACCESS_KEY}::not-the-secret::{REGION}::{TOKEN}",
            "signature we calculated does not match",
        ),
        ("google", "AIzaSyWRONG", "API key not valid"),
    ],
)
def test_a_wrong_key_is_refused_by_the_vendor(
    vendor: str, bad_key: str, refusal: str, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    _fake, base_url, _key, model = fakes[vendor]
    assert add_provider(tenant, vendor, bad_key, base_url).status_code == 201
    with pytest.raises(openai.APIStatusError) as refused:
        sdk(tenant).chat.completions.create(model=f"{vendor}/{model}", messages=MSG)
    error = refused.value
    body = error.body
    assert isinstance(body, dict) and body["source"] == "upstream" and body["provider"] == vendor
    if error.status_code in (401, 403):
        # the refusal of a stored credential is told in our words (vendors quote part of the
        # key back); that the fake refused it is what its status says
        assert refusal not in error.message and "credential" in error.message
    else:
        assert refusal in error.message


@pytest.mark.parametrize("vendor", ["azure", "google", "bedrock"])
def test_vendor_errors_reach_the_sdk_with_the_vendors_message(
    vendor: str, tenant: Tenant, fakes: dict[str, Any]
) -> None:
    _fake, base_url, key, _model = fakes[vendor]
    assert add_provider(tenant, vendor, key, base_url).status_code == 201
    with pytest.raises(openai.APIStatusError) as failed:
        sdk(tenant).chat.completions.create(model=f"{vendor}/fail-429", messages=MSG)
    assert failed.value.status_code in (429, 502)  # the gateway relays a 4xx, or says the upstream failed
    assert "error 429" in failed.value.message  # the vendor's own message, from its own error shape


def test_a_bedrock_exception_mid_stream_ends_the_stream_with_an_error(
    tenant: Tenant, fakes: dict[str, Any]
) -> None:
    _fake, base_url, key, _model = fakes["bedrock"]
    assert add_provider(tenant, "bedrock", key, base_url).status_code == 201
    stream = sdk(tenant).chat.completions.create(
        model="bedrock/midstream-throttling", messages=MSG, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="stream failed before the answer was complete"):
        received.extend(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "".join(received) == "Hello"  # the delta before the exception was relayed


def test_bedrock_signs_model_arns_with_their_slashes_escaped(tenant: Tenant, fakes: dict[str, Any]) -> None:
    fake, base_url, key, _model = fakes["bedrock"]
    assert add_provider(tenant, "bedrock", key, base_url).status_code == 201
    answer = sdk(tenant).chat.completions.create(model=f"bedrock/{ARN}", messages=MSG)
    assert answer.choices[0].message.content == DEFAULT_CONTENT
    assert fake.models[-1] == ARN and "%2F" in fake.requests[-1].raw_path


@pytest.mark.parametrize("vendor", ["azure", "google", "bedrock"])
def test_embeddings_per_vendor(vendor: str, tenant: Tenant, fakes: dict[str, Any]) -> None:
    _fake, base_url, key, _model = fakes[vendor]
    assert add_provider(tenant, vendor, key, base_url).status_code == 201
    client = sdk(tenant)
    if vendor == "bedrock":
        with pytest.raises(openai.BadRequestError, match="not supported for Bedrock"):
            client.embeddings.create(model="bedrock/amazon.titan-embed-text-v2:0", input="hi")
        return
    model = "text-embedding-3-small" if vendor == "azure" else "text-embedding-004"
    # the SDK asks for base64 unless told otherwise, and decodes it
    got = client.embeddings.create(model=f"{vendor}/{model}", input=["one", "two"])
    assert len(got.data) == 2
    if vendor == "google":
        assert got.data[1].embedding == VECTOR
        floats = client.embeddings.create(model=f"google/{model}", input="one", encoding_format="float")
        assert floats.data[0].embedding == VECTOR


# -- the Bedrock fake really checks signatures --------------------------------------------


def _signed(url: str, body: bytes, secret: str, when: datetime | None = None) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    signer = SigV4Auth(Credentials(ACCESS_KEY, secret, TOKEN), "bedrock", REGION)
    if when is None:
        signer.add_auth(request)
    else:  # a signature made at another time
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        request.headers["X-Amz-Security-Token"] = TOKEN
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        signer._inject_signature_to_request(request, signature)
    return dict(request.headers.items())


def test_the_bedrock_fake_refuses_what_aws_refuses(bedrock: FakeBedrock) -> None:
    url = f"{bedrock.url}/model/echo/converse"
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    with httpx.Client() as http:
        assert http.post(url, content=body, headers=_signed(url, body, SECRET_KEY)).status_code == 200
        tampered = http.post(url, content=body.replace(b"hi", b"yo"), headers=_signed(url, body, SECRET_KEY))
        wrong_secret = http.post(url, content=body, headers=_signed(url, body, "x" * 40))
        stale = datetime.now(UTC) - timedelta(minutes=10)
        expired = http.post(url, content=body, headers=_signed(url, body, SECRET_KEY, stale))
    assert [r.status_code for r in (tampered, wrong_secret, expired)] == [403, 403, 403]
    assert tampered.headers["x-amzn-errortype"].startswith("InvalidSignatureException")
    assert expired.json()["message"] == "Signature expired"


def test_the_bedrock_stream_frames_carry_valid_checksums(bedrock: FakeBedrock) -> None:
    """The fake's framing is read back by the gateway's reader, CRCs checked, in odd pieces."""
    from modelux_server.proxy.providers._eventstream import EventStreamReader

    url = f"{bedrock.url}/model/echo/converse-stream"
    body = b'{"messages":[{"role":"user","content":[{"text":"two words"}]}]}'
    with httpx.Client() as http:
        raw = http.post(url, content=body, headers=_signed(url, body, SECRET_KEY)).content
    reader = EventStreamReader(1 << 20)
    events = [e for at in range(0, len(raw), 5) for e in reader.feed(raw[at : at + 5])]
    assert reader.finish() is None
    assert [name for _, name, _ in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    corrupt = bytearray(raw)
    corrupt[20] ^= 0xFF  # a byte inside the first message
    with pytest.raises(UpstreamError, match="checksum"):
        EventStreamReader(1 << 20).feed(bytes(corrupt))
