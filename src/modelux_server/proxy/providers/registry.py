"""Vendor name -> adapter, plus ownership of the one pooled HTTP client they share."""

from __future__ import annotations

from typing import Any

from modelux_server.provider import vendors
from modelux_server.provider.vendors import AZURE_API_VERSION, WireProtocol

from ._http import HttpClient, make_http_client
from .anthropic import AnthropicProvider
from .azure import AzureOpenAIProvider
from .base import Closing, Provider, UpstreamCredential
from .bedrock import BedrockProvider
from .gemini import GeminiProvider
from .openai_compatible import OpenAICompatibleProvider


class ProviderRegistry(Closing):
    """Create once at startup, ``await aclose()`` at shutdown.

    Each vendor of the registry (provider/vendors.py) gets the adapter of its wire
    protocol. A vendor the registry does not know (a credential saved under a name
    since retired) is treated as OpenAI-compatible. ``options`` configure the client
    it creates (``egress``, ``max_bytes``, ``stream_max_bytes``); without ``egress``
    every non-public destination is refused.
    """

    def __init__(
        self,
        client: HttpClient | None = None,
        *,
        max_connections: int = 512,
        azure_api_version: str = AZURE_API_VERSION,
        **options: Any,
    ) -> None:
        self._owns_client = client is None
        self.client = client or make_http_client(max_connections=max_connections, **options)
        self._default: Provider = OpenAICompatibleProvider(self.client)
        by_protocol: dict[WireProtocol, Provider] = {
            "openai": self._default,
            "anthropic": AnthropicProvider(self.client),
            "azure": AzureOpenAIProvider(self.client, azure_api_version),
            "bedrock": BedrockProvider(self.client),
            "gemini": GeminiProvider(self.client),
        }
        self._by_vendor: dict[str, Provider] = {v.id: by_protocol[v.protocol] for v in vendors.REGISTRY}

    def get(self, vendor: str) -> Provider:
        return self._by_vendor.get(vendor, self._default)

    def for_credential(self, credential: UpstreamCredential) -> Provider:
        return self.get(credential.vendor)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
