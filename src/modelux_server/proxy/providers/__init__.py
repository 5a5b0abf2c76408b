"""Upstream LLM providers behind one interface; see ``base`` for the contract."""

from .anthropic import AnthropicProvider
from .azure import AzureOpenAIProvider
from .base import (
    ChatStream,
    Provider,
    UpstreamCredential,
    UpstreamError,
    UpstreamRefused,
    UpstreamResponse,
    UpstreamTimeout,
    Usage,
)
from .bedrock import BedrockProvider
from .gemini import GeminiProvider
from .openai_compatible import DEFAULT_BASE_URLS, OpenAICompatibleProvider
from .registry import ProviderRegistry

__all__ = [
    "DEFAULT_BASE_URLS",
    "AnthropicProvider",
    "AzureOpenAIProvider",
    "BedrockProvider",
    "ChatStream",
    "GeminiProvider",
    "OpenAICompatibleProvider",
    "Provider",
    "ProviderRegistry",
    "UpstreamCredential",
    "UpstreamError",
    "UpstreamRefused",
    "UpstreamResponse",
    "UpstreamTimeout",
    "Usage",
]
