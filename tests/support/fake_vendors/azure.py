"""A fake Azure OpenAI resource: deployments, ``api-key`` and ``api-version`` checked.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (plain and
SSE, with Azure's leading content-filter chunk) and ``.../embeddings``. A request
without the resource's key in ``api-key`` gets Azure's 401; one without
``api-version`` its 404; a deployment not in ``deployments`` DeploymentNotFound.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_vendors._server import (
    DEFAULT_CONTENT,
    JSON,
    LoopbackFake,
    Request,
    Send,
    failure_status,
    send_bytes,
    send_json,
    words,
)

API_VERSIONS = frozenset({"2024-06-01", "2024-10-21", "2025-01-01-preview"})


def _error(code: str, message: str) -> JSON:
    return {"error": {"code": code, "message": message}}


class FakeAzureOpenAI(LoopbackFake):
    name = "fake-azure"

    def __init__(
        self, api_key: str, deployments: tuple[str, ...] = ("gpt-4o-prod", "text-embedding-3-small", "echo")
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.deployments = set(deployments)

    async def handle(self, request: Request, send: Send) -> None:
        if request.headers.get("api-key") != self.api_key:
            message = (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                "provide a valid key for an active subscription and use a correct regional API endpoint."
            )
            return await send_json(send, 401, _error("401", message))
        if request.query.get("api-version") not in API_VERSIONS:
            return await send_json(send, 404, _error("404", "Resource not found"))
        parts = request.path.split("/")  # ['', 'openai', 'deployments', NAME, *operation]
        if request.method != "POST" or parts[1:3] != ["openai", "deployments"] or len(parts) < 5:
            return await send_json(send, 404, _error("404", "Resource not found"))
        deployment, operation = parts[3], "/".join(parts[4:])
        status = failure_status(deployment)
        if status is not None:
            return await send_json(
                send, status, _error(str(status), f"fake Azure error {status}"), ((b"retry-after", b"7"),)
            )
        if deployment not in self.deployments:
            message = "The API deployment for this resource does not exist."
            return await send_json(send, 404, _error("DeploymentNotFound", message))
        body: JSON = request.json if isinstance(request.json, dict) else {}
        if operation == "embeddings":
            return await send_json(send, 200, _embeddings(body))
        if operation != "chat/completions":
            return await send_json(send, 404, _error("404", "Resource not found"))
        await _chat(send, body, deployment)


def _embeddings(body: JSON) -> JSON:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    data = [{"object": "embedding", "index": i, "embedding": [0.5, -0.5, 0.25]} for i in range(len(inputs))]
    tokens = sum(len(str(i).split()) for i in inputs)
    return {
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def _chat(send: Send, body: JSON, deployment: str) -> None:
    messages = body.get("messages") or []
    users = [str(m.get("content")) for m in messages if m.get("role") == "user"]
    content = users[-1] if deployment == "echo" and users else DEFAULT_CONTENT
    pieces = words(content)
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}
    base: JSON = {"id": "chatcmpl-azure", "created": 1, "model": "gpt-4o-2024-08-06"}
    if not body.get("stream"):
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "content_filter_results": {}}
        answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return await send_json(send, 200, answer)
    chunks: list[Any] = [
        # Azure opens a stream with the prompt's content-filter verdict and no choices
        {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []},
    ]
    for index, piece in enumerate(pieces):
        delta = {"content": piece, **({"role": "assistant"} if index == 0 else {})}
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [_choice(delta)]})
    chunks.append({**base, "object": "chat.completion.chunk", "choices": [_choice({}, "stop")]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    await send_bytes(send, 200, sse, "text/event-stream")


def _choice(delta: JSON, finish: str | None = None) -> JSON:
    return {"index": 0, "delta": delta, "finish_reason": finish, "content_filter_results": {}}
