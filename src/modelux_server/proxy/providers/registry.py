"""Vendor name -> adapter, plus ownership of the one pooled HTTP client they share."""

from __future__ import annotations

from typing import Any

from ._http import HttpClient, make_http_client
from .anthropic import AnthropicProvider
from .base import Closing, Provider, UpstreamCredential
from .openai_compatible import OpenAICompatibleProvider


class ProviderRegistry(Closing):
    """Create once at startup, ``await aclose()`` at shutdown.

    Any vendor without a dedicated adapter is treated as OpenAI-compatible, so new
    OpenAI-style upstreams only need a credential with a ``base_url``. ``options``
    configure the client it creates (``egress``, ``max_bytes``, ``stream_max_bytes``);
    without ``egress`` every non-public destination is refused.
    """

    def __init__(
        self, client: HttpClient | None = None, *, max_connections: int = 512, **options: Any
    ) -> None:
        self._owns_client = client is None
        self.client = client or make_http_client(max_connections=max_connections, **options)
        self._default: Provider = OpenAICompatibleProvider(self.client)
        self._by_vendor: dict[str, Provider] = {"anthropic": AnthropicProvider(self.client)}

    def get(self, vendor: str) -> Provider:
        return self._by_vendor.get(vendor, self._default)

    def for_credential(self, credential: UpstreamCredential) -> Provider:
        return self.get(credential.vendor)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
