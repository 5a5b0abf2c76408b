"""Adapter for upstreams that already speak the OpenAI API (OpenAI, Groq, Together, vLLM...).

Requests pass through with only ``model`` swapped. For streams the adapter always asks
the upstream for ``stream_options.include_usage`` so the request log gets token counts;
when the client did not ask for it, the extra usage-only chunk is dropped again so the
client sees exactly what it requested. An upstream that ignores ``stream`` and answers
a whole completion is converted to chunks (see ``_stream``).
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

from modelux_server.provider import vendors

from ..codec import loads
from ._http import SSE_DONE, HttpClient, post_json
from ._stream import Event, completion_chunks, not_a_stream, open_stream, stream_error
from .base import JSON, ChatStream, UpstreamCredential, UpstreamError, UpstreamResponse, Usage

# the OpenAI-protocol vendors' public endpoints, from the one vendor registry
DEFAULT_BASE_URLS: dict[str, str] = {
    v.id: v.default_base_url for v in vendors.REGISTRY if v.protocol == "openai" and v.default_base_url
}


def base_url_for(credential: UpstreamCredential) -> str:
    base = credential.base_url or DEFAULT_BASE_URLS.get(credential.vendor)
    if not base:
        raise UpstreamError(f"no base_url configured for vendor {credential.vendor!r}", retryable=False)
    return base.rstrip("/")


class OpenAICompatibleProvider:
    name = "openai-compatible"

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def _headers(self, credential: UpstreamCredential) -> dict[str, str]:
        return {"authorization": f"Bearer {credential.api_key}"}

    def _url(self, credential: UpstreamCredential, model: str, operation: str) -> str:
        """Where ``operation`` (``chat/completions``, ``embeddings``) is posted for ``model``."""
        return f"{base_url_for(credential)}/{operation}"

    async def chat(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        payload = {**body, "model": model, "stream": False}
        payload.pop("stream_options", None)
        status, answer, raw = await post_json(
            self._client,
            self._url(credential, model, "chat/completions"),
            headers=self._headers(credential),
            payload=payload,
            timeout=timeout,
        )
        return UpstreamResponse(status, answer, Usage.from_openai(answer.get("usage")), raw)

    async def chat_stream(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> ChatStream:
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        payload = {
            **body,
            "model": model,
            "stream": True,
            "stream_options": {**(options or {}), "include_usage": True},
        }
        return await open_stream(
            self._client,
            self._url(credential, model, "chat/completions"),
            headers=self._headers(credential),
            payload=payload,
            timeout=timeout,
            translation=_Passthrough(keep_usage_chunk=client_wants_usage),
        )

    async def embeddings(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        status, answer, raw = await post_json(
            self._client,
            self._url(credential, model, "embeddings"),
            headers=self._headers(credential),
            payload={**body, "model": model},
            timeout=timeout,
        )
        return UpstreamResponse(status, answer, Usage.from_openai(answer.get("usage")), raw)


class _Passthrough:
    """OpenAI chunks relayed as they are, checked, with usage taken on the way."""

    __slots__ = ("finished", "keep_usage_chunk")

    def __init__(self, keep_usage_chunk: bool) -> None:
        self.finished = False
        self.keep_usage_chunk = keep_usage_chunk

    def events(self, stream: ChatStream, events: list[Event]) -> bytes:
        out: list[bytes] = []
        for event, _, payload in events:
            chunk = payload.strip()
            if chunk == b"[DONE]":
                self.finished = True
            elif chunk[:1] not in (b"{", b""):
                # OpenAI chunks are JSON objects; a client SDK would fail on anything else.
                raise not_a_stream("an event whose data is not JSON")
            elif chunk.startswith(b'{"error"'):
                raise stream_error(chunk, "upstream reported an error mid-stream")
            elif (
                # Parse only the rare chunk that can carry usage; the rest
                # pass through untouched.
                b'"prompt_tokens"' in payload and _take_usage(stream, payload) and not self.keep_usage_chunk
            ):
                continue
            out.append(event + b"\n\n")
        return b"".join(out)

    def end(self, stream: ChatStream, answer: JSON | None) -> bytes:
        if answer is not None:
            # The upstream ignored `stream` and answered with a whole completion.
            usage = Usage.from_openai(answer.get("usage"))
            chunks = completion_chunks(answer, usage if self.keep_usage_chunk else None)
            stream.usage = usage
            return b"".join(chunks)
        # Some servers just close after the last chunk; clients still expect [DONE].
        return SSE_DONE


def _take_usage(stream: ChatStream, payload: bytes) -> bool:
    """Record usage from a chunk; True when the chunk is usage-only (no choices)."""
    try:
        chunk = loads(payload)
    except ValueError:
        return False
    if not isinstance(chunk, dict):
        return False
    usage = Usage.from_openai(chunk.get("usage"))
    if usage is None:
        return False
    stream.usage = usage
    return not chunk.get("choices")
