"""A real SMTP server (aiosmtpd) for tests, keeping every message it receives.

As a pytest fixture (tests/conftest.py):

    @pytest.fixture
    def mailbox(app: Flask) -> Iterator[Mailbox]:
        with Mailbox() as box:
            app.config["SMTP_URL"] = box.url  # smtp://127.0.0.1:<port>
            yield box
            mail.wait_for_sent(5)  # let queued mails reach the server before it stops

`Mailbox(tls="starttls", auth=True, directory=tmp_path)` gives
`smtp+starttls://mailer:<password>@127.0.0.1:<port>?cafile=<directory>/ca.pem`, and `tls="implicit"`
gives `smtps://…`; `box.url` is always the exact SMTP_URL to set. `Mailbox(port=p)` listens on a
given port (a server coming back where one was down, or hung: `Silent`), and `delay=s` makes it take
that long over each message.
"""

import asyncio
import email
import email.policy
import hmac
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
USER = "mailer"
PASSWORD = "p@ss:w/rd%20 secret"  # characters that must be percent-encoded in a URL

_LINK = re.compile(r"https?://[^\s<>\"']+")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a server certificate for 127.0.0.1/localhost; return (ca, cert, key)."""
    now = datetime.now(UTC)
    start, end = now - timedelta(minutes=5), now + timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp test mail CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     key_cert_sign=True, crl_sign=True, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(IPv4Address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # Bound to port 0: learn the port the OS chose before aiosmtpd connects to it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Mailbox:
    """An SMTP server on a free loopback port; optional STARTTLS or implicit TLS, optional AUTH."""

    user = USER
    password = PASSWORD

    def __init__(self, *, tls: Literal["starttls", "implicit"] | None = None, auth: bool = False,
                 directory: Path | None = None, port: int = 0, delay: float = 0) -> None:
        self.tls = tls
        self.auth = auth
        self.delay = delay
        self.messages: list[EmailMessage] = []
        self._taken: set[int] = set()
        self._arrived = threading.Condition()
        self._tmp: str | None = None
        self.cafile: Path | None = None
        kwargs: dict[str, Any] = {"hostname": HOST, "port": port, "server_hostname": "mailbox.test",
                                  "ready_timeout": 5}
        if tls:
            if directory is None:
                self._tmp = tempfile.mkdtemp(prefix="mailbox-")
                directory = Path(self._tmp)
            self.cafile, cert, key = make_certificates(directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            kwargs["ssl_context" if tls == "implicit" else "tls_context"] = context
            kwargs["require_starttls"] = tls == "starttls"
        if auth:
            kwargs["authenticator"] = self._authenticate
            # aiosmtpd counts only STARTTLS as TLS for AUTH; with implicit TLS the whole
            # connection is encrypted, so allow AUTH there without requiring it (requiring AUTH
            # without auth_require_tls makes aiosmtpd warn).
            kwargs["auth_require_tls"] = tls != "implicit"
            kwargs["auth_required"] = tls != "implicit"
        self._controller = _Controller(self, **kwargs)

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        """The SMTP_URL that sends to this server."""
        scheme = {None: "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[self.tls]
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@" if self.auth else ""
        query = f"?cafile={quote(str(self.cafile))}" if self.cafile else ""
        return f"{scheme}://{credentials}{HOST}:{self.port}{query}"

    def start(self) -> "Mailbox":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "Mailbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, self.user.encode())
              and hmac.compare_digest(auth_data.password, self.password.encode()))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message, with what the test may want to check about how it came."""
        assert isinstance(envelope.content, bytes)
        if self.delay:
            await asyncio.sleep(self.delay)
        # CRLF is the wire format; store the message as a local file would be, with LF.
        content = envelope.content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        tls = server.transport.get_extra_info("ssl_object") if server.transport else None
        # Like aiosmtpd's own Message handler, record the envelope in X- headers.
        message["X-MailFrom"] = envelope.mail_from
        message["X-RcptTo"] = ", ".join(envelope.rcpt_tos)
        message["X-TLS"] = tls.version() if tls else "none"
        message["X-Auth"] = session.auth_data.login.decode() if session.authenticated else "none"
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, timeout: float = 5) -> EmailMessage:
        """Return the next message for `to` that wait_for has not returned yet, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for n, message in enumerate(self.messages):
                    recipients = [r.strip().lower() for r in str(message["X-RcptTo"]).split(",")]
                    if n not in self._taken and to.lower() in recipients:
                        self._taken.add(n)
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no mail to {to} within {timeout} s "
                                         f"({len(self.messages)} other messages)")
                self._arrived.wait(remaining)

    def clear(self) -> None:
        """Forget every message received so far."""
        with self._arrived:
            self.messages.clear()
            self._taken.clear()

    @staticmethod
    def link(message: EmailMessage) -> str:
        """Return the first http(s) link in the message's text part."""
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, "the message has no text part"
        found = _LINK.search(body.get_content())
        assert found, "the text part has no link"
        return found.group().rstrip(".,;:!?)]}")


class Silent:
    """A port that takes TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self, port: int = 0) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a Mailbox may follow on it
        self._socket.bind((HOST, port))
        self._socket.listen(64)  # and never accepts: the kernel completes the handshakes all the same
        self.port: int = self._socket.getsockname()[1]
        self.url = f"smtp://{HOST}:{self.port}"

    def stop(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Silent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
