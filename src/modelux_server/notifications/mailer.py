"""Email delivery backends.

Two implementations of the small :class:`Mailer` protocol:

* :class:`SmtpMailer` talks to a real SMTP relay configured by URL.
* :class:`OutboxMailer` is the embedded default: it drops ``.eml`` files into a
  folder so a fresh install works (and can be inspected) without any mail setup.

Both raise :class:`MailerError` on failure; the caller owns retrying, so the error
says whether a retry can possibly help (``transient``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.policy
import logging
import os
import pathlib
import re
import ssl
import tempfile
import uuid
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import aiosmtplib

from modelux_server.kit.files import private_dir

__all__ = [
    "Mailer",
    "MailerError",
    "OutboxMailer",
    "SmtpMailer",
    "SmtpSecurity",
    "mailer_from_settings",
]

logger = logging.getLogger(__name__)

SmtpSecurity = Literal["plain", "starttls", "tls"]

# Conventional submission ports for each transport-security mode.
_DEFAULT_PORTS: dict[SmtpSecurity, int] = {"plain": 25, "starttls": 587, "tls": 465}
_SCHEMES: dict[str, SmtpSecurity] = {
    "smtp": "plain",
    "smtp+starttls": "starttls",
    "smtps": "tls",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DEFAULT_TIMEOUT = 10.0


@runtime_checkable
class Mailer(Protocol):
    async def send(self, message: email.message.EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`MailerError`."""
        ...


class MailerError(Exception):
    """Delivery failed.

    ``transient`` is True when the same message may succeed later (network trouble,
    4xx replies); False when retrying cannot help without a configuration or
    content change (bad credentials, 5xx replies, certificate problems).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# --------------------------------------------------------------------------- SMTP


def _bad_url(reason: str) -> ValueError:
    # Deliberately never echoes the URL or any piece of it: a malformed URL may
    # still carry a password in a position we failed to recognise.
    return ValueError(f"Invalid SMTP URL: {reason}")


class SmtpMailer:
    """Send through an SMTP relay using aiosmtplib, one connection per message.

    One connection per message keeps the mailer stateless (no half-dead pooled
    connections to babysit); notification volume is low enough for that.
    """

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        security: SmtpSecurity = "plain",
        timeout: float = _DEFAULT_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in _DEFAULT_PORTS:
            raise ValueError(f"unknown SMTP security mode {security!r}")
        self.host = host
        self.port = port if port is not None else _DEFAULT_PORTS[security]
        self.sender = sender
        self.username = username
        # Kept "private" so it does not show up in casual introspection/logging.
        self._password = password
        self.security: SmtpSecurity = security
        self.timeout = timeout
        # Lets operators (and tests) trust a private CA without disabling verification.
        self.tls_context = tls_context

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sender: str,
        tls_context: ssl.SSLContext | None = None,
    ) -> SmtpMailer:
        """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URLs.

        ``smtp://user:pass@host:port?starttls=true&timeout=10`` -- user and password
        are percent-decoded, so special characters must be percent-encoded.
        """
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            raise _bad_url("could not parse the URL") from None

        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            shown = f" {scheme!r}" if re.fullmatch(r"[a-z0-9+.-]*", scheme) else ""
            raise _bad_url(f"unsupported scheme{shown}; expected smtp://, smtp+starttls:// or smtps://")
        security = _SCHEMES[scheme]

        # Checked before the port: an unencoded '/' in a password also garbles
        # the port, and this message names the actual fix.
        if parts.path not in ("", "/") or parts.fragment:
            # Most often an unencoded '/' or '#' inside the password.
            raise _bad_url(
                "unexpected path or fragment; percent-encode special characters "
                "such as '/', '#', '?' and '@' in the username and password"
            )

        try:
            host = parts.hostname
            port = parts.port
        except ValueError:
            raise _bad_url("the port is not a number between 0 and 65535") from None
        if not host:
            raise _bad_url("a host is required, e.g. smtp://mail.example.com:25")
        if port == 0:
            raise _bad_url("port 0 is not a valid SMTP port")

        timeout = _DEFAULT_TIMEOUT
        seen: set[str] = set()
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in seen:
                raise _bad_url(f"query parameter {key!r} given more than once")
            seen.add(key)
            if key == "timeout":
                try:
                    timeout = float(value)
                except ValueError:
                    raise _bad_url("timeout must be a number of seconds") from None
                if not timeout > 0 or timeout == float("inf"):
                    raise _bad_url("timeout must be a positive number of seconds")
            elif key == "starttls":
                flag = value.lower()
                if flag not in _TRUE | _FALSE:
                    raise _bad_url("starttls must be true or false")
                if flag in _TRUE:
                    if security != "plain":
                        raise _bad_url("starttls=true is only meaningful with smtp://")
                    security = "starttls"
                elif security == "starttls":
                    raise _bad_url("starttls=false contradicts the smtp+starttls:// scheme")
            else:
                # Unknown options are errors rather than silently ignored: a typo
                # such as ?startls=true would otherwise send credentials in clear.
                shown = f" {key!r}" if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", key) else ""
                raise _bad_url(f"unknown query parameter{shown}; supported: starttls, timeout")

        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if username == "":
            username = None
        if username is None and password:
            raise _bad_url("a password was given without a username")

        return cls(
            host=host,
            port=port,
            sender=sender,
            username=username,
            password=password,
            security=security,
            timeout=timeout,
            tls_context=tls_context,
        )

    @property
    def redacted_url(self) -> str:
        """The configuration as a URL that is safe to log (password masked)."""
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[self.security]
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self._password is not None:
                auth += ":***"
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}?timeout={self.timeout:g}"

    def __repr__(self) -> str:
        return f"SmtpMailer({self.redacted_url!r}, sender={self.sender!r})"

    async def send(self, message: email.message.EmailMessage) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            # Explicit True/False: aiosmtplib's default (None) would opportunistically
            # upgrade plain connections, which surprises people pointing smtp:// at
            # a local relay with a self-signed certificate.
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
        )
        try:
            async with client:
                refused, _ = await client.send_message(message, sender=self.sender)
        except Exception as exc:
            raise self._translate(exc) from exc

        if refused:
            # Some recipients were accepted, so the message is already out; raising
            # would make the caller retry and duplicate it for everyone else.
            logger.warning(
                "SMTP server refused some recipients of %s: %s",
                message.get("Message-ID"),
                ", ".join(f"{rcpt} ({resp.code} {resp.message})" for rcpt, resp in refused.items()),
            )
        logger.debug("sent email %s via %s", message.get("Message-ID"), self.redacted_url)

    def _translate(self, exc: Exception) -> MailerError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            return MailerError(
                f"SMTP server {where} refused all recipients: {detail}",
                transient=bool(codes) and all(400 <= c < 500 for c in codes),
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            # RFC 5321: 4yz replies are transient negative completions, 5yz permanent.
            return MailerError(
                f"SMTP server {where} replied {exc.code} {exc.message}",
                transient=400 <= exc.code < 500,
            )
        if isinstance(exc, aiosmtplib.SMTPConnectError) and _is_cert_error(exc):
            return MailerError(
                f"TLS certificate verification failed for SMTP server {where}: {exc}",
                transient=False,
            )
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected):
            return MailerError(f"SMTP server {where}: {exc}", transient=True)
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            return MailerError(f"could not connect to SMTP server {where}: {exc}", transient=True)
        if isinstance(exc, aiosmtplib.SMTPException):
            # Capability mismatches (no AUTH, no STARTTLS, no SMTPUTF8): configuration.
            return MailerError(f"SMTP server {where}: {exc}", transient=False)
        if isinstance(exc, ssl.SSLError):
            return MailerError(f"TLS error talking to SMTP server {where}: {exc}", transient=False)
        if isinstance(exc, OSError | TimeoutError):
            return MailerError(f"network error talking to SMTP server {where}: {exc}", transient=True)
        if isinstance(exc, ValueError):
            # aiosmtplib raises ValueError for messages without From/To headers.
            return MailerError(f"message cannot be sent: {exc}", transient=False)
        return MailerError(f"unexpected error sending via SMTP server {where}: {exc!r}", transient=True)


def _is_cert_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__
    return False


# ------------------------------------------------------------------------- outbox

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxMailer:
    """Write each message as ``<utc timestamp>-<message id>.eml`` into ``folder``."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = pathlib.Path(folder)

    def __repr__(self) -> str:
        return f"OutboxMailer({str(self.folder)!r})"

    async def send(self, message: email.message.EmailMessage) -> None:
        try:
            # File IO is blocking; keep it off the event loop.
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            # A full disk or a permission problem may well be fixed by an operator
            # while the caller is still retrying.
            raise MailerError(
                f"could not write email to outbox {self.folder}: {exc}", transient=True
            ) from exc
        logger.info(
            "outbox: wrote email to=%s subject=%r path=%s",
            ", ".join(message.get_all("To", [])),
            str(message.get("Subject", "")),
            path,
        )

    def _write(self, message: email.message.EmailMessage) -> pathlib.Path:
        # messages carry links with one-time tokens: private like the database
        private_dir(self.folder)
        # CRLF is the canonical line ending of RFC 5322 messages, which is what
        # mail clients expect from an .eml file.
        data = message.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        ident = _UNSAFE_FILENAME_CHARS.sub("_", str(message.get("Message-ID", "")).strip("<> "))
        ident = ident.strip("._")[:100] or uuid.uuid4().hex
        # The temp file lives in the same folder so the final rename stays on one
        # filesystem and is atomic; readers never see a half-written .eml.
        fd, tmp_name = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            final = self.folder / f"{stamp}-{ident}.eml"
            counter = 1
            # os.replace would silently overwrite; a same-microsecond retry of the
            # same message must not clobber the earlier copy.
            while final.exists():
                final = self.folder / f"{stamp}-{ident}-{counter}.eml"
                counter += 1
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return final


# ----------------------------------------------------------------------- factory


def mailer_from_settings(smtp_url: str | None, outbox_dir: pathlib.Path, sender: str) -> Mailer:
    """SMTP when a URL is configured, otherwise the on-disk outbox."""
    if smtp_url and smtp_url.strip():
        return SmtpMailer.from_url(smtp_url, sender=sender)
    return OutboxMailer(outbox_dir)
