"""The vendors a provider credential may be for: one registry every caller reads.

The management API (which vendors it accepts, which need a ``base_url``, what a
Bedrock key must look like), the dashboard's form, the MCP tool descriptions, the
docs and the proxy (which adapter speaks to a vendor, its default endpoint) all
read this table, so a vendor is either listed here and works, or is not offered.

``protocol`` names the wire format the proxy's adapter speaks (proxy/providers):
``openai`` for every OpenAI-compatible upstream, and one protocol each for
Anthropic Messages, Azure OpenAI, Amazon Bedrock Converse and Google Gemini.
This module imports nothing of the proxy: the dependency points the other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

WireProtocol = Literal["openai", "anthropic", "azure", "bedrock", "gemini"]

# Azure OpenAI's data-plane version sent when the operator sets none
# (MODELUX_AZURE_API_VERSION); the newest GA version at the time of writing.
AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor as the API, dashboard, MCP tools, docs and proxy know it."""

    id: str
    label: str
    protocol: WireProtocol
    # where a credential without base_url is sent; None: the credential must name one,
    # or (Bedrock) the endpoint follows from the key's region
    default_base_url: str | None
    base_url_required: bool
    # what the api_key looks like, for the docs and the forms (never validated from it)
    key_hint: str
    # bare model names (no `vendor/`) starting with one of these are routed here
    model_prefixes: tuple[str, ...] = ()


def _openai_protocol(vendor_id: str, label: str, base_url: str, key_hint: str) -> Vendor:
    """A vendor that speaks OpenAI's API at a public endpoint of its own."""
    return Vendor(vendor_id, label, "openai", base_url, base_url_required=False, key_hint=key_hint)


REGISTRY: tuple[Vendor, ...] = (
    Vendor(
        "openai",
        "OpenAI",
        "openai",
        "https://api.openai.com/v1",
        base_url_required=False,
        key_hint="sk-...",
        model_prefixes=("gpt-", "o1", "o3", "o4", "text-embedding-", "chatgpt-"),
    ),
    Vendor(
        "anthropic",
        "Anthropic",
        "anthropic",
        "https://api.anthropic.com",
        base_url_required=False,
        key_hint="sk-ant-...",
        model_prefixes=("claude-",),
    ),
    Vendor(
        "google",
        "Google Gemini",
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        base_url_required=False,
        key_hint="a Gemini API key (AIza...)",
        model_prefixes=("gemini-",),
    ),
    Vendor(
        "azure",
        "Azure OpenAI",
        "azure",
        None,
        base_url_required=True,
        key_hint="the resource's key; base_url is https://NAME.openai.azure.com, the model is the deployment",
    ),
    Vendor(
        "bedrock",
        "Amazon Bedrock",
        "bedrock",
        None,  # https://bedrock-runtime.{region}.amazonaws.com, the region from the key
        base_url_required=False,
        key_hint="ACCESS_KEY::SECRET::REGION[::SESSION_TOKEN]",
    ),
    _openai_protocol("groq", "Groq", "https://api.groq.com/openai/v1", "gsk_..."),
    _openai_protocol("fireworks", "Fireworks AI", "https://api.fireworks.ai/inference/v1", "fw_..."),
    _openai_protocol("deepseek", "DeepSeek", "https://api.deepseek.com/v1", "sk-..."),
    _openai_protocol("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "sk-or-..."),
    _openai_protocol("xai", "xAI", "https://api.x.ai/v1", "xai-..."),
    _openai_protocol("mistral", "Mistral AI", "https://api.mistral.ai/v1", "the vendor's API key"),
    _openai_protocol("together", "Together AI", "https://api.together.xyz/v1", "the vendor's API key"),
    Vendor(
        "openai_compatible",
        "OpenAI-compatible (vLLM, Ollama, ...)",
        "openai",
        None,
        base_url_required=True,
        key_hint="whatever the server expects as Bearer (any text if it checks none)",
    ),
)

BY_ID: dict[str, Vendor] = {v.id: v for v in REGISTRY}
IDS: tuple[str, ...] = tuple(v.id for v in REGISTRY)

# (prefix, vendor id) for routing a bare model name, in the registry's order
MODEL_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    (prefix, v.id) for v in REGISTRY for prefix in v.model_prefixes
)


def get(vendor_id: str) -> Vendor | None:
    return BY_ID.get(vendor_id)


# -- Bedrock credentials -------------------------------------------------------------

# AWS access key ids are upper-case letters and digits (AKIA..., ASIA... for temporary ones)
_ACCESS_KEY = re.compile(r"[A-Z0-9]{16,128}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_TOKEN = re.compile(r"[!-~]+")  # printable ASCII, no spaces: it travels in a header


@dataclass(frozen=True, slots=True)
class BedrockKey:
    """The parts of a Bedrock credential's api_key; the secrets stay out of repr."""

    access_key: str
    secret_key: str = field(repr=False)
    region: str
    session_token: str | None = field(default=None, repr=False)


class InvalidBedrockKey(ValueError):
    """The api_key is not ``ACCESS_KEY::SECRET::REGION[::SESSION_TOKEN]``; the message says why."""


def parse_bedrock_key(api_key: str) -> BedrockKey:
    """Split a Bedrock api_key; the one rule the save-time check and the adapter share.

    Raises ``InvalidBedrockKey`` with a message that names the bad part, never its value.
    """
    parts = api_key.split("::")
    if len(parts) not in (3, 4):
        raise InvalidBedrockKey(
            "a Bedrock api_key is ACCESS_KEY::SECRET::REGION or ACCESS_KEY::SECRET::REGION::SESSION_TOKEN"
        )
    access, secret, region = parts[:3]
    token = parts[3] if len(parts) == 4 else None
    if not _ACCESS_KEY.fullmatch(access):
        raise InvalidBedrockKey("the access key id must be 16 to 128 upper-case letters and digits")
    if not _TOKEN.fullmatch(secret):
        raise InvalidBedrockKey("the secret access key must be printable ASCII without spaces")
    if not _REGION.fullmatch(region):
        raise InvalidBedrockKey("the region must look like us-east-1")
    if token is not None and not _TOKEN.fullmatch(token):
        raise InvalidBedrockKey("the session token must be printable ASCII without spaces")
    return BedrockKey(access, secret, region, token)


def bedrock_endpoint(region: str) -> str:
    """The Bedrock runtime endpoint of a region (a credential's base_url overrides it)."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"
