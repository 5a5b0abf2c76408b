"""A fake Gemini API (``/v1beta``): generateContent, SSE streams and embeddings.

``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (SSE with
``?alt=sse``, a JSON array without, as Google answers), ``:embedContent`` and
``:batchEmbedContents``. The key must come in ``x-goog-api-key`` (Google's 400
``API_KEY_INVALID`` otherwise); roles other than ``user`` and ``model`` are refused
as Google refuses them, so an untranslated OpenAI body fails here.
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

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_STATUS_NAMES |= {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
VECTOR = [0.125, -0.5, 0.75]


def _error(status: int, message: str) -> JSON:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


class FakeGemini(LoopbackFake):
    name = "fake-gemini"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    async def handle(self, request: Request, send: Send) -> None:
        if request.headers.get("x-goog-api-key") != self.api_key:
            message = "API key not valid. Please pass a valid API key."
            return await send_json(send, 400, _error(400, message))
        prefix = "/v1beta/models/"
        if request.method != "POST" or not request.path.startswith(prefix) or ":" not in request.path:
            return await send_json(send, 404, _error(404, "Not found"))
        model, method = request.path.removeprefix(prefix).rsplit(":", 1)
        status = failure_status(model)
        if status is not None:
            return await send_json(send, status, _error(status, f"fake Gemini error {status}"))
        body: JSON = request.json if isinstance(request.json, dict) else {}
        if method == "embedContent":
            return await send_json(send, 200, {"embedding": {"values": VECTOR}})
        if method == "batchEmbedContents":
            count = len(body.get("requests") or [])
            return await send_json(send, 200, {"embeddings": [{"values": VECTOR}] * count})
        problem = _invalid(body)
        if problem:
            return await send_json(send, 400, _error(400, problem))
        answer = _Answer.of(body, model)
        if method == "generateContent":
            return await send_json(send, 200, answer.response("".join(answer.pieces), len(answer.pieces)))
        if method != "streamGenerateContent":
            return await send_json(send, 404, _error(404, f"unknown method {method}"))
        last = len(answer.pieces)
        chunks = [answer.response(piece, n, final=n == last) for n, piece in enumerate(answer.pieces, 1)]
        if request.query.get("alt") != "sse":
            return await send_json(send, 200, chunks)
        # Google ends each event with CRLF CRLF and closes the stream without a marker
        sse = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
        await send_bytes(send, 200, sse, "text/event-stream")


def _invalid(body: JSON) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in contents:
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (got {content.get('role')!r})"
        if not isinstance(content.get("parts"), list):
            return "* GenerateContentRequest.contents.parts: must be a list"
    return None


def _texts(parts: Any) -> list[str]:
    return [p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


class _Answer:
    def __init__(self, text: str, prompt_tokens: int, limit: int, model: str) -> None:
        pieces = words(text)
        self.truncated = 0 < limit < len(pieces)
        self.pieces = pieces[:limit] if self.truncated else pieces
        self.prompt_tokens = prompt_tokens
        self.model = model

    @classmethod
    def of(cls, body: JSON, model: str) -> _Answer:
        texts = _texts((body.get("systemInstruction") or {}).get("parts"))
        for content in body["contents"]:
            texts.extend(_texts(content["parts"]))
        users = [c for c in body["contents"] if c["role"] == "user"]
        last = " ".join(_texts(users[-1]["parts"])) if users else ""
        limit = int((body.get("generationConfig") or {}).get("maxOutputTokens") or 0)
        text = last if model == "echo" else DEFAULT_CONTENT
        return cls(text, len(" ".join(texts).split()), limit, model)

    def response(self, text: str, upto: int, *, final: bool = True) -> JSON:
        """A response carrying ``text``, with the usage of the first ``upto`` pieces."""
        candidate: JSON = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = "MAX_TOKENS" if self.truncated else "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": upto,
                "totalTokenCount": self.prompt_tokens + upto,
            },
            "modelVersion": self.model,
            "responseId": "fake-gemini-response",
        }
