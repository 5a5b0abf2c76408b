"""Adapter for Azure OpenAI: the OpenAI wire format at a deployment's address.

Azure serves OpenAI's request and answer shapes, so everything but the address and
the key is the OpenAI-compatible adapter's. The credential's ``base_url`` is the
resource endpoint (``https://NAME.openai.azure.com``, a trailing ``/openai`` is
accepted too), the target model is the *deployment* name, and each call goes to
``{base}/openai/deployments/{deployment}/{operation}?api-version=...`` with the
key in an ``api-key`` header (not Bearer).

The ``api-version`` is the operator's (``MODELUX_AZURE_API_VERSION``), defaulting
to the registry's GA version (provider/vendors.py); see docs/providers.md.
"""

from __future__ import annotations

from urllib.parse import quote

from modelux_server.provider.vendors import AZURE_API_VERSION

from ._http import HttpClient
from .base import UpstreamCredential, UpstreamError
from .openai_compatible import OpenAICompatibleProvider


class AzureOpenAIProvider(OpenAICompatibleProvider):
    name = "azure"

    def __init__(self, client: HttpClient, api_version: str = AZURE_API_VERSION) -> None:
        super().__init__(client)
        self.api_version = api_version

    def _headers(self, credential: UpstreamCredential) -> dict[str, str]:
        return {"api-key": credential.api_key}

    def _url(self, credential: UpstreamCredential, model: str, operation: str) -> str:
        if not credential.base_url:
            # the API refuses such a credential at save time; one saved before that rule
            raise UpstreamError(
                "an Azure credential needs its resource endpoint as base_url", retryable=False
            )
        base = credential.base_url.rstrip("/").removesuffix("/openai")
        # the deployment is one path segment, whatever the caller wrote in `model`
        deployment = quote(model, safe="")
        return f"{base}/openai/deployments/{deployment}/{operation}?api-version={self.api_version}"
