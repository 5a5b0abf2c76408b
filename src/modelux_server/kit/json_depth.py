"""How deep a JSON document nests, decided on its bytes before anything parses it.

Python's `json` recurses once per level and fails with `RecursionError` near
1,000 levels; pydantic, FastAPI's error rendering and orjson's serialiser (255
levels) give up earlier, each in its own way. No request we serve needs more
than a few dozen levels (a tool's JSON schema is the deepest thing a caller
sends), so every JSON body is held to `MAX_DEPTH` before it is parsed: the
refusal is a 400, never a failure somewhere inside.

`JSONDepthGuard` applies the limit to every JSON request body except the
proxy's, which checks its own bodies on the hot path without a second copy.
"""

from __future__ import annotations

import re
from itertools import accumulate, count
from operator import sub

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelux_server.kit.http_guards import BodyTooLarge, is_json_type, send_error

MAX_DEPTH = 128

# A JSON string, escapes included (unrolled so it never backtracks).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OTHER_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
# An opening bracket counts 2 and a closing one 0: after i brackets the running
# sum minus i is the depth, which keeps the whole scan in C iterators.
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def too_deep(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text nests arrays and objects deeper than ``limit``.

    Brackets inside strings do not count. Invalid JSON gets an answer too (the
    parser refuses it afterwards), so this can run before parsing.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    brackets = _STRING.sub(b"", data).translate(None, _OTHER_BYTES)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    deepest: int = max(map(sub, accumulate(brackets.translate(_WEIGHTS)), count(1)))
    return deepest > limit


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return is_json_type(value.decode("latin-1"))
    return True


class JSONDepthGuard:
    """Refuses a JSON request body nested deeper than ``limit`` with a 400.

    The body is read here (the size guard in front has bounded it) and handed on
    unchanged.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_DEPTH, skip: tuple[str, ...] = ("/v1/",)) -> None:
        self.app = app
        self.limit = limit
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or scope["path"].startswith(self.skip)
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except BodyTooLarge as exc:
            # raised by the size guard's receive; out here no exception handler would see it
            await send_error(send, 413, "body_too_large", str(exc))
            return
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if too_deep(body, self.limit):
            await send_error(send, 400, "body_too_deep", too_deep_message(self.limit))
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def too_deep_message(limit: int = MAX_DEPTH) -> str:
    return f"The JSON body nests deeper than {limit} levels."
