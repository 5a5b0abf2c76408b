"""Logging for every process: plain text by default, one JSON object per line when asked.

`configure_logging(settings)` owns the root logger's handler. It is idempotent, so
`modelux serve`, each worker process's app factory and `modelux worker` can all
call it: a second call replaces the handler it installed, never adds another.

Every line written while a request is served carries the request's id, and its
organization and project once they are known (kit/request_context.py). The access
line (`modelux.access`, kit/observe.py) adds the route, status and latency.

JSON fields: `ts` (ISO-8601 UTC), `level`, `logger`, `message`; when known
`request_id`, `client_request_id`, `org_id`, `project_id`, `method`, `route`; on
access lines also `path` (never the query string), `status`, `latency_ms` and
`client_ip`; `exc` holds a traceback as one string, so no record spans two lines.

Every formatted line passes `redact` on its way out. It is the last guard, not the
first: nothing should log a secret, and the test in
tests/observability/test_no_secrets_in_logs.py proves the paths we know of do not.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from modelux_server.config import Settings
from modelux_server.kit import request_context

# Set on the handler we install, so a second configure_logging finds and replaces it.
_OURS = "_modelux_handler"

# Libraries whose INFO and DEBUG lines cost more than they say, or could say too much.
QUIET = (
    # a line per upstream call, per connection or per statement, on the hot path
    "httpx",
    "httpcore",
    "hpack",
    "aiosqlite",
    "urllib3",  # the OTLP exporter's connections
    "alembic.runtime.migration",
    # their DEBUG lines carry what they are sent: MCP messages (tool arguments hold
    # provider keys), Stripe request parameters, the SMTP conversation (its AUTH)
    "mcp",
    "stripe",
    "aiosmtplib",
    # the SigV4 signer logs the canonical request: a Bedrock session token among its headers
    "botocore",
)

# Record attribute for structured fields a caller adds (`extra={FIELDS: {...}}`).
FIELDS = "modelux_fields"

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What `redact` hides, each behind a substring test so that a line holding none of
# the markers (an access line) costs a few `in` checks, not a regex scan: our own
# token kinds (auth/tokens.py), bearer and basic credentials, the password in a
# URL's userinfo, and values of query parameters that carry tokens.
_TOKEN = re.compile(r"(mlx_[a-z]+_)[A-Za-z0-9]{8,}")
_SCHEME = re.compile(r"((?:Bearer|Basic|bearer|basic) +)[A-Za-z0-9._~+/=-]{8,}")
# (no backslash inside a value: in a JSON line it escapes the quote that ends the string)
_USERINFO = re.compile(r"(://[^/\s:@\"'\\]*:)[^@\s\"'/\\]+(?=@)")
_PARAM = re.compile(r"([?&](?:token|session_id|key|api_key|password|secret|code)=)[^&\s\"'\\]+")
_REDACTED = r"\1[redacted]"


def redact(line: str) -> str:
    """`line` with anything shaped like a credential replaced by `[redacted]`."""
    if "mlx_" in line:
        line = _TOKEN.sub(_REDACTED, line)
    if "earer " in line or "asic " in line:
        line = _SCHEME.sub(_REDACTED, line)
    if "@" in line:
        line = _USERINFO.sub(_REDACTED, line)
    if "=" in line:
        line = _PARAM.sub(_REDACTED, line)
    return line


def _context_fields() -> dict[str, Any]:
    context = request_context.current()
    if context is None:
        return {}
    fields: dict[str, Any] = {"request_id": context.request_id}
    if context.client_request_id is not None:
        fields["client_request_id"] = context.client_request_id
    if context.org_id is not None:
        fields["org_id"] = context.org_id
    if context.project_id is not None:
        fields["project_id"] = context.project_id
    fields["method"] = context.method
    route = context.route
    if route is not None:
        fields["route"] = route
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self) -> None:
        super().__init__()
        # the formatted second, reused by every record within it (one tuple: threads
        # may format at once, and each reads a whole pair)
        self._second: tuple[int, str] = (-1, "")

    def timestamp(self, record: logging.LogRecord) -> str:
        """ISO-8601 in UTC with milliseconds: 2026-11-28T12:00:00.123Z."""
        second = int(record.created)
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context_fields())
        extra = getattr(record, FIELDS, None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # orjson escapes newlines inside strings: a traceback stays on its line
        return redact(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    """The classic line, followed by the request's ids when there is a request."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        context = request_context.current()
        if context is None:
            return line
        tail = [f"request_id={context.request_id}"]
        if context.org_id is not None:
            tail.append(f"org_id={context.org_id}")
        if context.project_id is not None:
            tail.append(f"project_id={context.project_id}")
        return f"{line} [{' '.join(tail)}]"

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(settings: Settings) -> None:
    """Install the root handler for `settings` (format, level); safe to call again."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's own loggers send to the root handler (serve passes log_config=None);
    # its access log stays off: kit/observe.py writes ours
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # warnings.warn() output becomes a record too, so JSON mode stays one object per line
    logging.captureWarnings(True)
