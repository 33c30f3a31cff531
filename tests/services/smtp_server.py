"""A real SMTP server (aiosmtpd) for tests, plain or with STARTTLS, implicit TLS and AUTH.

- `make_smtp_server(tls=None | "starttls" | "implicit", users={"name": "password"})`: a started
  `SMTPServer` on a free loopback port, stopped at teardown. `starttls` requires STARTTLS; with
  users, AUTH (PLAIN/LOGIN) is checked against them and offered only over TLS, as real servers
  do (required with STARTTLS, offered with implicit TLS, where aiosmtpd cannot require it).
- `smtp_server`: a started plain server (no TLS, no AUTH).
- `SMTPServer.messages`: what it received (`ReceivedMail`: envelope sender, recipients, the
  authenticated user and the parsed `EmailMessage`); `await server.wait_for(n)`.
- `smtp_certificate`: a self-signed certificate for `localhost` and 127.0.0.1; trust it with
  its path (`ca_file`).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
TLSMode = Literal["starttls", "implicit"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    auth_user: str | None
    message: EmailMessage


class _Recorder:
    """aiosmtpd handler: keeps every message; checks AUTH against `users`."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.received: list[ReceivedMail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            auth_user=login.decode() if login else None,
            message=message,
        )
        with self.lock:
            self.received.append(mail)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        expected = self.users.get(auth_data.login.decode())
        success = expected is not None and expected == auth_data.password.decode()
        # handled=False: aiosmtpd answers a failure with the standard 535 itself.
        return AuthResult(success=success, handled=False, auth_data=auth_data)


class SMTPServer:
    """A running aiosmtpd server; `messages` is what it received."""

    def __init__(
        self, tls: TLSMode | None, users: dict[str, str], certificate: Path | None
    ) -> None:
        self.host = HOST
        self.port = _free_port()
        self.tls = tls
        self.ca_file = certificate
        self._recorder = _Recorder(users)
        context = _server_context(certificate) if certificate else None
        options: dict[str, Any] = {}
        if tls == "starttls":
            options |= {"tls_context": context, "require_starttls": True}
        if users:
            options["authenticator"] = self._recorder.authenticate
        if users and tls == "implicit":
            # aiosmtpd only counts STARTTLS as TLS, and warns when AUTH is required without it;
            # this connection is TLS from its first byte, so AUTH is offered, not required.
            options["auth_require_tls"] = False
        elif users:
            options["auth_required"] = True
        self._controller = Controller(
            self._recorder,
            hostname=HOST,
            port=self.port,
            ssl_context=context if tls == "implicit" else None,
            **options,
        )

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._recorder.lock:
            return list(self._recorder.received)

    async def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """The first `count` messages, or AssertionError when they do not arrive in time."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.01)
        return self.messages[:count]

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _server_context(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, certificate.with_suffix(".key"))
    return context


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and its .key next to it) for localhost and 127.0.0.1."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(folder / "smtp.key"), "-out", str(folder / "smtp.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder / "smtp.crt"


@pytest.fixture
def make_smtp_server(smtp_certificate: Path) -> Iterator[Callable[..., SMTPServer]]:
    """Builds started SMTP servers: `tls="starttls"` or `"implicit"`, `users={...}` for AUTH."""
    servers: list[SMTPServer] = []

    def make(tls: TLSMode | None = None, users: dict[str, str] | None = None) -> SMTPServer:
        server = SMTPServer(tls, users or {}, smtp_certificate if tls else None)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SMTPServer]) -> SMTPServer:
    """A started plain SMTP server: no TLS, no AUTH."""
    return make_smtp_server()
