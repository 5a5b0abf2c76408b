"""Mailer tests against a real (in-process, threaded) aiosmtpd server."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import pathlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelux_server.notifications.mailer import (
    Mailer,
    MailerError,
    OutboxMailer,
    SmtpMailer,
    mailer_from_settings,
)
from modelux_server.notifications.messages import UsageNotice, usage_email

SENDER = "noreply@modelux.test"
USER = "mailer@modelux.test"
PASSWORD = "s3cr:et/p@ss%word"  # every character that needs percent-encoding


def make_message(message_id: str = "<usage-1@modelux.test>") -> EmailMessage:
    notice = UsageNotice(
        kind="soft_nudge",
        org_name="Acme",
        org_id="org_123",
        limit_name="monthly_requests",
        limit=10_000,
        used=8_000,
        percent=80,
        resets_at=dt.datetime(2026, 12, 14, tzinfo=dt.UTC),
        plan_name="Free",
        upgrade_plan_name="Pro",
        upgrade_url="https://modelux.test/settings/billing?plan=pro",
        billing_url="https://modelux.test/settings/billing",
    )
    return usage_email(
        notice,
        to=["owner@acme.test", "admin@acme.test"],
        sender=f"modelux <{SENDER}>",
        message_id=message_id,
    )


# ------------------------------------------------------------------ SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class CollectingHandler:
    data_reply: str | None = None  # e.g. "451 try later" to reject every message
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        msg = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(msg, EmailMessage)
        auth_data = session.auth_data
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg, login))
        return "250 OK"


def authenticator(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    if not ok:
        # handled=False makes aiosmtpd send the standard "535 ... invalid" reply.
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=auth_data)


class EphemeralController(Controller):
    """Controller bound to port 0; learns the real port before self-testing.

    aiosmtpd's start() connects to ``self.port`` to check the server is up, so
    the OS-assigned port must be filled in first. This avoids the race of
    "find a free port, close it, hope nobody takes it".
    """

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[EphemeralController, CollectingHandler]]]:
    started: list[EphemeralController] = []

    def start(
        handler: CollectingHandler | None = None, **smtp_kwargs: Any
    ) -> tuple[EphemeralController, CollectingHandler]:
        handler = handler or CollectingHandler()
        controller = EphemeralController(handler, hostname="127.0.0.1", port=0, **smtp_kwargs)
        controller.start()
        started.append(controller)
        return controller, handler

    yield start
    for controller in started:
        controller.stop()


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """Self-signed certificate for 127.0.0.1 (EC keys: fast to generate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server=server, client=client)


def url_for(controller: Controller, scheme: str = "smtp", auth: bool = False, query: str = "") -> str:
    userinfo = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@" if auth else ""
    suffix = f"?{query}" if query else ""
    return f"{scheme}://{userinfo}127.0.0.1:{controller.port}{suffix}"


def assert_is_the_usage_email(received: Received, original: EmailMessage) -> None:
    msg = received.message
    assert received.mail_from == SENDER
    assert sorted(received.rcpt_tos) == ["admin@acme.test", "owner@acme.test"]
    assert msg["Message-ID"] == original["Message-ID"]
    assert msg["Subject"] == original["Subject"]
    assert msg["X-Modelux-Notification"] == "soft_nudge"
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "8,000 of 10,000" in text.get_content()  # type: ignore[attr-defined]
    assert "<html" in html.get_content()  # type: ignore[attr-defined]


# --------------------------------------------------------------------- sending


async def test_plain_send_delivers_both_parts(smtp_server: Any) -> None:
    controller, handler = smtp_server()
    mailer = SmtpMailer.from_url(url_for(controller, query="timeout=5"), sender=SENDER)
    original = make_message()

    await mailer.send(original)

    assert len(handler.received) == 1
    assert_is_the_usage_email(handler.received[0], original)
    assert handler.received[0].login is None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_login_without_tls(smtp_server: Any) -> None:
    controller, handler = smtp_server(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    mailer = SmtpMailer.from_url(url_for(controller, auth=True), sender=SENDER)
    original = make_message()

    await mailer.send(original)

    assert len(handler.received) == 1
    assert handler.received[0].login == USER
    assert_is_the_usage_email(handler.received[0], original)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_wrong_password_is_permanent(smtp_server: Any) -> None:
    controller, handler = smtp_server(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    url = f"smtp://{quote(USER, safe='')}:wrong@127.0.0.1:{controller.port}"
    mailer = SmtpMailer.from_url(url, sender=SENDER)

    with pytest.raises(MailerError) as info:
        await mailer.send(make_message())

    assert info.value.transient is False
    assert "535" in str(info.value)
    assert "wrong" not in str(info.value)
    assert handler.received == []


async def test_starttls_with_auth(smtp_server: Any, tls: Tls) -> None:
    # Server insists on STARTTLS before AUTH (aiosmtpd's secure defaults).
    controller, handler = smtp_server(
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    mailer = SmtpMailer.from_url(
        url_for(controller, scheme="smtp+starttls", auth=True),
        sender=SENDER,
        tls_context=tls.client,
    )
    original = make_message()

    await mailer.send(original)

    assert handler.received[0].login == USER
    assert_is_the_usage_email(handler.received[0], original)


async def test_implicit_tls(smtp_server: Any, tls: Tls) -> None:
    controller, handler = smtp_server(ssl_context=tls.server)
    mailer = SmtpMailer.from_url(url_for(controller, scheme="smtps"), sender=SENDER, tls_context=tls.client)

    await mailer.send(make_message())

    assert len(handler.received) == 1


async def test_untrusted_certificate_is_permanent(smtp_server: Any, tls: Tls) -> None:
    controller, _ = smtp_server(ssl_context=tls.server)
    # Default trust store: the self-signed test certificate must be rejected.
    mailer = SmtpMailer.from_url(url_for(controller, scheme="smtps"), sender=SENDER)

    with pytest.raises(MailerError) as info:
        await mailer.send(make_message())

    assert info.value.transient is False


async def test_plain_smtp_does_not_upgrade_opportunistically(smtp_server: Any, tls: Tls) -> None:
    # The server offers STARTTLS with a cert the client would not trust; plain
    # smtp:// must not try it (and therefore must not fail).
    controller, handler = smtp_server(tls_context=tls.server)
    mailer = SmtpMailer.from_url(url_for(controller), sender=SENDER)

    await mailer.send(make_message())

    assert len(handler.received) == 1


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("451 try later", True), ("554 rejected as spam", False)],
)
async def test_server_rejection(smtp_server: Any, reply: str, transient: bool) -> None:
    controller, handler = smtp_server(CollectingHandler(data_reply=reply))
    mailer = SmtpMailer.from_url(url_for(controller), sender=SENDER)

    with pytest.raises(MailerError) as info:
        await mailer.send(make_message())

    assert info.value.transient is transient
    assert reply.split()[0] in str(info.value)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_transient() -> None:
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{_unused_port()}?timeout=2", sender=SENDER)

    with pytest.raises(MailerError) as info:
        await mailer.send(make_message())

    assert info.value.transient is True


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says anything (no SMTP banner)."""
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_timeout_is_transient(silent_server: int) -> None:
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{silent_server}?timeout=0.2", sender=SENDER)

    with pytest.raises(MailerError) as info:
        await mailer.send(make_message())

    assert info.value.transient is True


# ------------------------------------------------------------------ URL parsing


@pytest.mark.parametrize(
    ("url", "security", "port", "timeout"),
    [
        ("smtp://mail.example.com", "plain", 25, 10.0),
        ("smtp://mail.example.com?starttls=true", "starttls", 587, 10.0),
        ("smtp://mail.example.com:2525?starttls=false", "plain", 2525, 10.0),
        ("smtp+starttls://mail.example.com", "starttls", 587, 10.0),
        ("smtps://mail.example.com", "tls", 465, 10.0),
        ("SMTPS://mail.example.com:4650/?timeout=2.5", "tls", 4650, 2.5),
    ],
)
def test_from_url_modes(url: str, security: str, port: int, timeout: float) -> None:
    mailer = SmtpMailer.from_url(url, sender=SENDER)
    assert (mailer.host, mailer.security, mailer.port, mailer.timeout) == (
        "mail.example.com",
        security,
        port,
        timeout,
    )
    assert mailer.username is None
    assert mailer.sender == SENDER


def test_from_url_decodes_credentials_and_redacts() -> None:
    url = f"smtp+starttls://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@smtp.example.com"
    mailer = SmtpMailer.from_url(url, sender=SENDER)
    assert mailer.username == USER
    assert mailer._password == PASSWORD
    assert mailer.redacted_url == "smtp+starttls://mailer%40modelux.test:***@smtp.example.com:587?timeout=10"
    for shown in (mailer.redacted_url, repr(mailer), str(vars(mailer).get("redacted_url", ""))):
        assert PASSWORD not in shown
        assert quote(PASSWORD, safe="") not in shown


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://user:hunter2@host", "unsupported scheme"),
        ("smtp://user:hunter2@", "host is required"),
        ("smtp://user:hunter2@host:notaport", "port"),
        ("smtp://user:hunter2@host:99999", "port"),
        ("smtp://user:hun/ter2@host", "percent-encode"),
        ("smtp://user:hunter2@host?starttls=maybe", "starttls"),
        ("smtps://user:hunter2@host?starttls=true", "starttls"),
        ("smtp+starttls://user:hunter2@host?starttls=false", "contradicts"),
        ("smtp://user:hunter2@host?timeout=-1", "timeout"),
        ("smtp://user:hunter2@host?timeout=soon", "timeout"),
        ("smtp://user:hunter2@host?startls=true", "unknown query parameter"),
        ("smtp://:hunter2@host", "without a username"),
        ("", "unsupported scheme"),
    ],
)
def test_bad_urls_raise_without_leaking_password(url: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        SmtpMailer.from_url(url, sender=SENDER)
    message = str(info.value)
    assert needle in message
    assert message.startswith("Invalid SMTP URL")
    for secret in ("hunter2", "hun", "ter2"):
        assert secret not in message
    # Nothing chained either, so tracebacks do not carry the URL.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


# ----------------------------------------------------------------------- outbox


def all_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(folder.iterdir())


def eml_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(folder.glob("*.eml"))


async def test_outbox_writes_parseable_eml_and_logs(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "does" / "not" / "exist"
    mailer = OutboxMailer(folder)
    original = make_message("<usage/1+x@modelux.test>")

    with caplog.at_level(logging.INFO, logger="modelux_server.notifications.mailer"):
        await mailer.send(original)

    files = all_files(folder)
    assert len(files) == 1, files  # no temp files left behind
    path = files[0]
    assert path.suffix == ".eml"
    stamp, _, rest = path.name.partition("-")
    assert dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ")
    assert rest == "usage_1_x_modelux.test.eml"

    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == "<usage/1+x@modelux.test>"
    assert parsed["X-Modelux-Notification"] == "soft_nudge"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    text = parsed.get_body(("plain",))
    assert text is not None and "December 14, 2026 00:00 UTC" in text.get_content()  # type: ignore[attr-defined]

    records = [r for r in caplog.records if r.name == "modelux_server.notifications.mailer"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.INFO
    assert "owner@acme.test, admin@acme.test" in line
    assert original["Subject"] in line
    assert str(path) in line


async def test_outbox_retry_of_same_message_does_not_overwrite(tmp_path: pathlib.Path) -> None:
    mailer = OutboxMailer(tmp_path)
    await mailer.send(make_message())
    await mailer.send(make_message())
    assert len(eml_files(tmp_path)) == 2


async def test_outbox_unwritable_folder_raises_mailer_error(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    mailer = OutboxMailer(blocker / "outbox")

    with pytest.raises(MailerError):
        await mailer.send(make_message())


# ---------------------------------------------------------------------- factory


def test_mailer_from_settings(tmp_path: pathlib.Path) -> None:
    outbox = mailer_from_settings(None, tmp_path, SENDER)
    assert isinstance(outbox, OutboxMailer) and outbox.folder == tmp_path
    assert isinstance(mailer_from_settings("  ", tmp_path, SENDER), OutboxMailer)

    smtp = mailer_from_settings("smtps://u:p@mail.example.com", tmp_path, SENDER)
    assert isinstance(smtp, SmtpMailer)
    assert smtp.sender == SENDER and smtp.security == "tls"
    assert isinstance(smtp, Mailer) and isinstance(outbox, Mailer)

    with pytest.raises(ValueError):
        mailer_from_settings("ftp://mail.example.com", tmp_path, SENDER)
