"""A fake Amazon Bedrock runtime: Converse and ConverseStream behind real SigV4 checks.

``POST /model/{modelId}/converse`` answers Converse JSON; ``/converse-stream`` answers
the AWS event-stream binary framing, built here with its CRCs (independently of the
gateway's reader), written in small pieces so frames straddle reads.

Authentication is checked as AWS does: the Authorization header's scope (access key,
date, region, service ``bedrock``), ``X-Amz-Date`` within five minutes of now, the
session token when one is expected, and the signature itself, recomputed with
botocore's signer over the method, the raw path, the signed headers and the body
exactly as received, with the known secret. Any mismatch is AWS's 403.

Besides ``fail-<status>``: ``midstream-<exception>`` (e.g. ``midstream-throttling``)
sends one delta, then that exception in the stream.
"""

from __future__ import annotations

import hmac
import json
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_ROUTE = re.compile(r"/model/(?P<model>[^/]+)/(?P<operation>converse|converse-stream)")
_MAX_SKEW = timedelta(minutes=5)
_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_TOP_LEVEL = {"messages", "system", "inferenceConfig"}
_INFERENCE = {"maxTokens", "temperature", "topP", "stopSequences"}


class AuthFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude with its CRC, string headers, payload, message CRC."""
    raw_headers = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 16 + len(raw_headers) + len(payload), len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, payload: JSON) -> bytes:
    # Bedrock pads its events with a `p` field so their size does not reveal the text
    body = json.dumps({**payload, "p": "abcdefghij"}).encode()
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, body)


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


class FakeBedrock(LoopbackFake):
    name = "fake-bedrock"

    def __init__(
        self, access_key: str, secret_key: str, region: str = "us-east-1", session_token: str | None = None
    ) -> None:
        super().__init__()
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.session_token = session_token
        self.piece_size = 7  # stream writes: small, so frames straddle reads
        self.models: list[str] = []  # the model ids called, decoded

    async def handle(self, request: Request, send: Send) -> None:
        try:
            self.authenticate(request)
        except AuthFailure as failure:
            return await _error(send, 403, failure.kind, failure.message)
        # the raw path: an ARN's slashes come escaped, inside the one model segment
        match = _ROUTE.fullmatch(request.raw_path)
        if request.method != "POST" or match is None:
            return await _error(send, 404, "UnknownOperationException", "Unknown operation")
        model, operation = unquote(match["model"]), match["operation"]
        self.models.append(model)
        status = failure_status(model)
        if status is not None:
            kind = _ERROR_TYPES.get(status, "InternalServerException")
            return await _error(send, status, kind, f"fake Bedrock error {status}")
        problem = _invalid(request.json)
        if problem:
            return await _error(send, 400, "ValidationException", problem)
        answer = _Answer.of(request.json, model)
        if operation == "converse":
            return await send_json(send, 200, answer.converse())
        await send_bytes(
            send, 200, answer.stream(model), "application/vnd.amazon.eventstream", pieces=self.piece_size
        )

    def authenticate(self, request: Request) -> None:
        """Raise ``AuthFailure`` unless the request is signed as AWS requires."""
        auth = _AUTHORIZATION.match(request.headers.get("authorization", ""))
        if auth is None:
            raise AuthFailure("MissingAuthenticationTokenException", "Missing Authentication Token")
        if auth["key"] != self.access_key:
            raise AuthFailure(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        if (auth["region"], auth["service"]) != (self.region, "bedrock"):
            raise AuthFailure("InvalidSignatureException", "Credential should be scoped to a valid region.")
        stamp = request.headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AuthFailure("IncompleteSignatureException", "X-Amz-Date is missing or malformed") from None
        if abs(datetime.now(UTC) - when) > _MAX_SKEW or auth["day"] != stamp[:8]:
            raise AuthFailure("InvalidSignatureException", "Signature expired")
        if (
            self.session_token is not None
            and request.headers.get("x-amz-security-token") != self.session_token
        ):
            raise AuthFailure(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        names = auth["signed"].split(";")
        if not {"host", "x-amz-date"} <= set(names) or not all(n in request.headers for n in names):
            raise AuthFailure("IncompleteSignatureException", "Signed headers are missing")
        if not hmac.compare_digest(self._signature(request, names, stamp), auth["signature"]):
            raise AuthFailure(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )

    def _signature(self, request: Request, names: list[str], stamp: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in request.query.items())
        url = f"http://{request.headers['host']}{request.raw_path}" + (f"?{query}" if query else "")
        received = AWSRequest(
            method=request.method,
            url=url,
            data=request.body,
            headers={name: request.headers[name] for name in names},
        )
        received.context["timestamp"] = stamp
        signer = SigV4Auth(
            Credentials(self.access_key, self.secret_key, self.session_token), "bedrock", self.region
        )
        canonical = signer.canonical_request(received)
        signature: str = signer.signature(signer.string_to_sign(received, canonical), received)
        return signature


async def _error(send: Send, status: int, kind: str, message: str) -> None:
    error_type = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/".encode()
    await send_json(send, status, {"message": message}, ((b"x-amzn-errortype", error_type),))


def _invalid(body: Any) -> str | None:
    """Why Bedrock would refuse this Converse body (it refuses unknown keys), or None."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages is required"
    if set(body) - _TOP_LEVEL:
        return f"extraneous key [{sorted(set(body) - _TOP_LEVEL)[0]}] is not permitted"
    if set(body.get("inferenceConfig") or {}) - _INFERENCE:
        return "extraneous key in inferenceConfig is not permitted"
    for message in body["messages"]:
        if message.get("role") not in ("user", "assistant") or not isinstance(message.get("content"), list):
            return "messages must have role user or assistant and a content list"
    return None


class _Answer:
    def __init__(self, text: str, prompt_tokens: int, limit: int) -> None:
        pieces = words(text)
        self.truncated = 0 < limit < len(pieces)
        self.pieces = pieces[:limit] if self.truncated else pieces
        self.prompt_tokens = prompt_tokens

    @classmethod
    def of(cls, body: JSON, model: str) -> _Answer:
        texts = [b.get("text", "") for b in body.get("system") or []]
        for message in body["messages"]:
            texts.extend(b.get("text", "") for b in message["content"] if isinstance(b, dict))
        users = [m for m in body["messages"] if m["role"] == "user"]
        last = " ".join(b.get("text", "") for b in users[-1]["content"]) if users else ""
        limit = int((body.get("inferenceConfig") or {}).get("maxTokens") or 0)
        return cls(last if model == "echo" else DEFAULT_CONTENT, len(" ".join(texts).split()), limit)

    @property
    def stop_reason(self) -> str:
        return "max_tokens" if self.truncated else "end_turn"

    def usage(self) -> JSON:
        out = len(self.pieces)
        return {
            "inputTokens": self.prompt_tokens,
            "outputTokens": out,
            "totalTokens": self.prompt_tokens + out,
        }

    def converse(self) -> JSON:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": "".join(self.pieces)}]}},
            "stopReason": self.stop_reason,
            "usage": self.usage(),
            "metrics": {"latencyMs": 12},
        }

    def stream(self, model: str) -> bytes:
        frames = [event("messageStart", {"role": "assistant"})]
        for piece in self.pieces:
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
            if model.startswith("midstream-"):
                kind = model.removeprefix("midstream-") + "Exception"
                return b"".join([*frames, exception(kind, "Too many requests, please wait.")])
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        frames.append(event("messageStop", {"stopReason": self.stop_reason}))
        frames.append(event("metadata", {"usage": self.usage(), "metrics": {"latencyMs": 12}}))
        return b"".join(frames)
