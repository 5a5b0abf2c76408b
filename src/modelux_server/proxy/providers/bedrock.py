"""Adapter for Amazon Bedrock's Converse API, translating to and from OpenAI chat.

The credential's api_key is ``ACCESS_KEY::SECRET::REGION[::SESSION_TOKEN]``
(provider/vendors.py parses it; the API refuses other shapes at save time). Every
request is signed with AWS Signature Version 4 by botocore's signer (service
``bedrock``, the key's region) over the exact bytes sent, and goes to
``{endpoint}/model/{modelId}/converse`` or ``/converse-stream``; the endpoint is
``https://bedrock-runtime.{region}.amazonaws.com`` unless the credential's
``base_url`` names another (a VPC endpoint, say).

Request mapping: system/developer messages -> ``system``; user/assistant turns keep
their order (consecutive same-role turns merged); text parts -> ``text`` blocks,
``data:`` image URLs -> ``image`` blocks; ``max_tokens`` / ``max_completion_tokens``
-> ``inferenceConfig.maxTokens``, ``temperature``, ``top_p`` -> ``topP``, ``stop`` ->
``stopSequences``. Tool calling, remote image URLs and ``n > 1`` are refused with a
non-retryable 400 rather than silently dropped.

Answers: ``output.message.content[].text``, ``stopReason`` -> ``finish_reason``,
``usage`` input/output tokens. ConverseStream answers in the AWS event-stream binary
framing (``_eventstream``), translated here to OpenAI chunks. Embeddings are not
offered through Converse: they are refused with a 400 that says so.
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from modelux_server.provider import vendors

from ..codec import dumps, loads
from ._eventstream import EventStreamReader
from ._http import SSE_DONE, HttpClient, post_json, sse_event
from ._stream import Event, completion_chunks, not_a_stream, open_stream
from .base import (
    JSON,
    ChatStream,
    UpstreamCredential,
    UpstreamError,
    UpstreamResponse,
    Usage,
    inline_image,
    unsupported,
)

SERVICE = "bedrock"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

# Model ids, inference profiles and ARNs; anything else could not be signed as it is
# sent (the HTTP client normalises other characters in a path).
_MODEL_ID = re.compile(r"[A-Za-z0-9._:/-]{1,2048}")
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


# -- the request -------------------------------------------------------------------


def _image_block(part: JSON) -> JSON:
    mime_type, data = inline_image(part, "Bedrock")
    if mime_type not in _IMAGE_FORMATS:
        raise unsupported(f"Bedrock takes png, jpeg, gif or webp images, not {mime_type[:40]!r}")
    return {"image": {"format": _IMAGE_FORMATS[mime_type], "source": {"bytes": data}}}


def _blocks(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[JSON] = []
    for part in content or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported for Bedrock")
    return blocks


def _inference_config(body: JSON) -> JSON:
    config: JSON = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def to_converse(body: JSON) -> JSON:
    """Translate an OpenAI chat request into a Converse request body."""
    if body.get("tools") or body.get("functions"):
        raise unsupported("tool calling is not supported for Bedrock models yet")
    if (body.get("n") or 1) > 1:
        raise unsupported("n > 1 is not supported for Bedrock models")
    system: list[JSON] = []
    messages: list[JSON] = []
    for msg in body.get("messages") or []:
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.extend(b for b in _blocks(msg.get("content")) if "text" in b)
            continue
        if role not in ("user", "assistant") or msg.get("tool_calls"):
            raise unsupported(f"{role!r} messages and tool calls are not supported for Bedrock")
        blocks = _blocks(msg.get("content"))
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    out: JSON = {"messages": messages}
    if system:
        out["system"] = system
    config = _inference_config(body)
    if config:
        out["inferenceConfig"] = config
    return out


def _key(credential: UpstreamCredential) -> vendors.BedrockKey:
    try:
        return vendors.parse_bedrock_key(credential.api_key)
    except vendors.InvalidBedrockKey as exc:
        # saved before the API checked the shape: the operator's data, not the caller's request
        raise UpstreamError(
            f"the Bedrock credential's api_key is malformed: {exc}", retryable=False
        ) from None


def _url(credential: UpstreamCredential, key: vendors.BedrockKey, model: str, operation: str) -> str:
    if not _MODEL_ID.fullmatch(model):
        raise unsupported("a Bedrock model id is letters, digits and . _ : / - only")
    base = (credential.base_url or vendors.bedrock_endpoint(key.region)).rstrip("/")
    # one path segment, as the AWS SDKs send it: an ARN's slashes are escaped
    return f"{base}/model/{quote(model, safe=':')}/{operation}"


def signed_headers(url: str, body: bytes, key: vendors.BedrockKey) -> dict[str, str]:
    """SigV4 headers (Authorization, X-Amz-Date, X-Amz-Security-Token) for a POST of ``body``."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    credentials = Credentials(key.access_key, key.secret_key, key.session_token)
    SigV4Auth(credentials, SERVICE, key.region).add_auth(request)
    return dict(request.headers.items())


# -- the answer --------------------------------------------------------------------


def usage_from_bedrock(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        # OpenAI's prompt_tokens includes cached tokens; Bedrock reports them apart.
        prompt = sum(
            int(raw.get(k) or 0) for k in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
        )
        completion = int(raw.get("outputTokens") or 0)
    except (TypeError, ValueError):  # an upstream's malformed counts are not our failure
        return None
    return Usage(prompt, completion, prompt + completion)


def _finish(reason: Any) -> str:
    return FINISH_REASONS.get(str(reason or ""), "stop")


def _completion_id() -> str:
    # Converse answers carry no id of their own (only a request id header)
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def to_openai(answer: JSON, model: str) -> JSON:
    """Translate a Converse answer into an OpenAI ``chat.completion``."""
    output = answer.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        raise UpstreamError("Bedrock answered without a message", status=502, retryable=True)
    content = message.get("content")
    text = "".join(
        b["text"]
        for b in (content if isinstance(content, list) else [])
        if isinstance(b, dict) and isinstance(b.get("text"), str)
    )
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": _finish(answer.get("stopReason")),
            }
        ],
        "usage": (usage_from_bedrock(answer.get("usage")) or Usage()).to_openai(),
    }


class BedrockProvider:
    name = "bedrock"

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def _request(
        self, body: JSON, model: str, credential: UpstreamCredential, operation: str
    ) -> tuple[str, dict[str, str], bytes]:
        key = _key(credential)
        url = _url(credential, key, model, operation)
        payload = dumps(to_converse(body))
        return url, signed_headers(url, payload, key), payload

    async def chat(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        url, headers, payload = self._request(body, model, credential, "converse")
        status, answer, _raw = await post_json(
            self._client, url, headers=headers, payload=payload, timeout=timeout
        )
        converted = to_openai(answer, model)
        return UpstreamResponse(status, converted, Usage.from_openai(converted["usage"]))

    async def chat_stream(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> ChatStream:
        url, headers, payload = self._request(body, model, credential, "converse-stream")
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return await open_stream(
            self._client,
            url,
            headers=headers,
            payload=payload,
            timeout=timeout,
            translation=_StreamState(model, include_usage),
            framing=EventStreamReader,
        )

    async def embeddings(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        raise unsupported("embeddings are not supported for Bedrock yet (Converse is chat only)")


class _StreamState:
    """Turns ConverseStream events into OpenAI ``chat.completion.chunk`` SSE bytes.

    ``metadata`` (the usage) comes after ``messageStop`` and ends the stream.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.finished = False
        self.stopped = False  # messageStop seen
        self.id = _completion_id()
        self.model = model
        self.created = int(time.time())

    def events(self, stream: ChatStream, events: list[Event]) -> bytes:
        try:
            return b"".join(self._translate(stream, name, payload) for _, name, payload in events)
        except (AttributeError, TypeError, ValueError):
            # not JSON, or a field of the wrong JSON type in an upstream event
            raise not_a_stream("a malformed Bedrock event") from None

    def _translate(self, stream: ChatStream, name: str | None, payload: bytes) -> bytes:
        event: Any = loads(payload) if payload else {}
        if not isinstance(event, dict):
            raise not_a_stream("a Bedrock event that is not a JSON object")
        if name == "messageStart":
            return self._chunk({"role": "assistant", "content": ""})
        if name == "contentBlockDelta":
            text = (event.get("delta") or {}).get("text")
            return self._chunk({"content": text}) if isinstance(text, str) and text else b""
        if name == "messageStop":
            self.stopped = True
            return self._chunk({}, _finish(event.get("stopReason")))
        if name == "metadata":
            stream.usage = usage_from_bedrock(event.get("usage"))
            self.finished = True
            return self._usage_chunk(stream) + SSE_DONE
        return b""  # contentBlockStart/Stop, reasoning and tool deltas

    def end(self, stream: ChatStream, answer: JSON | None) -> bytes:
        if answer is not None:
            # The upstream answered one whole Converse answer instead of a stream.
            converted = to_openai(answer, self.model)
            stream.usage = Usage.from_openai(converted["usage"])
            return b"".join(completion_chunks(converted, stream.usage if self.include_usage else None))
        if not self.stopped:
            raise UpstreamError("Bedrock stream ended before messageStop", retryable=True)
        return self._usage_chunk(stream) + SSE_DONE  # the metadata event never came

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
        )

    def _usage_chunk(self, stream: ChatStream) -> bytes:
        if not self.include_usage:
            return b""
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": (stream.usage or Usage()).to_openai(),
            }
        )
