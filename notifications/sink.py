"""The embedded development SMTP server: it accepts mail and keeps each message in a Maildir.

``govflow mail-sink``, the demo and the tests use it in place of a real mail server. It
runs aiosmtpd's threaded ``Controller``, with the pitfalls of aiosmtpd 1.4.6 designed
around (see LIBRARIES.md):

- ``Controller(port=0)`` fails, so the sink binds the listening socket itself (any free
  port when ``port`` is 0) and hands that socket to asyncio: no race for the port.
- aiosmtpd's default host is ``::1``, which refuses clients of ``127.0.0.1``; the sink
  listens on ``127.0.0.1`` unless told otherwise.
- Without ``server_hostname`` every session waits for a host-name lookup; it is fixed.

- aiosmtpd does not advertise PIPELINING (RFC 2920), though it answers pipelined commands
  in order as the RFC asks; the sink advertises it, as most mail servers do, unless
  ``pipelining=False`` (``govflow mail-sink --no-pipelining``), which plays a server
  without it.
- The listening socket is made as a TCP socket (``IPPROTO_TCP``), not protocol 0: asyncio
  turns Nagle's algorithm off only on sockets it recognises as TCP, and with it on, the
  second of two replies written in a row (to pipelined commands) waited ~40 ms for the
  client's delayed acknowledgement of the first.

Each stored message gets ``Return-Path``, ``X-RcptTo`` (the envelope) and ``X-Peer`` (the
client's address and port, which tells connections apart) trace headers; the rest is
byte for byte what the client sent. For tests, ``refusals`` maps recipient
addresses to the reply the sink gives them at RCPT (``"451 4.3.0 try later"``),
``rejections`` maps them to the reply it gives at the end of the data instead of
storing the message (as a content filter would), ``drop_connections()`` closes open
client connections as a restarting server would, and ``smtp_options`` passes options to
aiosmtpd's ``SMTP`` (``authenticator``, ``timeout``…).
"""

from __future__ import annotations

import mailbox
import re
import socket
import weakref
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from notifications.errors import SmtpConfigError

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MailSink"]

SERVER_HOSTNAME = "govflow-mail-sink"
_MAILDIR_KEY = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)\.")


class MailSink:
    """An SMTP server on ``host:port`` storing every accepted message in ``maildir``."""

    def __init__(
        self,
        maildir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refusals: Mapping[str, str] | None = None,
        rejections: Mapping[str, str] | None = None,
        smtp_options: Mapping[str, Any] | None = None,
        pipelining: bool = True,
    ) -> None:
        self.maildir = Path(maildir)
        self.smtp_options = dict(smtp_options or {})
        self.refusals: dict[str, str] = {address.lower(): reply for address, reply in (refusals or {}).items()}
        self.rejections: dict[str, str] = {address.lower(): reply for address, reply in (rejections or {}).items()}
        self.pipelining = pipelining
        self._host = host
        self._port = port
        self._controller: Controller | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port listened on; after ``start()`` the real one, also when 0 was asked for."""
        return self._port

    def start(self) -> None:
        """Create the Maildir folders and start serving in a background thread."""
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        if self._controller is not None:
            raise RuntimeError("the mail sink is already running")
        mailbox.Maildir(self.maildir, create=True)
        listener = _listen(self._host, self._port)
        self._port = listener.getsockname()[1]
        sessions = self._sessions

        class BoundController(Controller):
            # Serve on the socket bound above instead of binding (host, port) again.
            def _create_server(self) -> Any:
                return self.loop.create_server(self._factory_invoker, sock=listener, ssl=self.ssl_context)

            def factory(self) -> SMTP:
                # As Controller.factory does, remembering each session for drop_connections().
                server = SMTP(self.handler, **self.SMTP_kwargs)
                sessions.add(server)
                return server

        handler = (_PipeliningHandler if self.pipelining else _MaildirHandler)(
            self.maildir, self.refusals, self.rejections
        )
        controller = BoundController(
            handler, hostname=self._host, port=self._port, server_hostname=SERVER_HOSTNAME, **self.smtp_options
        )
        try:
            controller.start()
        except BaseException:
            listener.close()
            raise
        self._controller = controller

    def stop(self) -> None:
        """Stop serving and close open connections; the Maildir stays."""
        if self._controller is not None:
            # Close client connections first: the loop would otherwise end with them open.
            self.drop_connections()
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first."""
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        keys = sorted(box.keys(), key=_arrival_order)
        return [_parse(box.get_bytes(key)) for key in keys]

    def drop_connections(self) -> None:
        """Close every open client connection from the server side (for tests of reconnection)."""
        import asyncio  # only here: importing asyncio costs the CLI ~40 ms at start

        controller = self._controller
        if controller is None:
            return

        async def close_all() -> None:
            for server in list(self._sessions):
                if server.transport is not None and not server.transport.is_closing():
                    server.transport.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close_all(), controller.loop).result(timeout=5)


class _MaildirHandler:
    """The aiosmtpd handler: refuse the configured recipients, store everything else."""

    def __init__(self, maildir: Path, refusals: dict[str, str], rejections: dict[str, str]) -> None:
        self._maildir = mailbox.Maildir(maildir, create=True)
        self._refusals = refusals
        self._rejections = rejections

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self._refusals.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            reply = self._rejections.get(address.lower())
            if reply:
                return reply
        content = envelope.original_content or b""
        peer = session.peer if isinstance(session.peer, str) else ":".join(map(str, session.peer or ()))
        trace = (
            f"Return-Path: <{envelope.mail_from or ''}>\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Peer: {peer}\r\n"
        )
        # Maildir files use the platform's line ends; mailbox would turn CRLF into CRCRLF.
        self._maildir.add((trace.encode() + content).replace(b"\r\n", b"\n"))
        return "250 OK: stored"


class _PipeliningHandler(_MaildirHandler):
    """The handler of a sink that advertises PIPELINING."""

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # as aiosmtpd does without the hook
        *extensions, last = responses  # the last line, "250 HELP", ends the reply
        return [*extensions, "250-PIPELINING", last]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: only then does asyncio set TCP_NODELAY on the accepted sockets.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restarted sink take its port back while old connections are in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        listener.setblocking(False)
    except OSError as error:
        listener.close()
        reason = (error.strerror or str(error)).lower()
        raise SmtpConfigError(f"the mail sink cannot listen on {host}:{port}: {reason}") from None
    return listener


def _arrival_order(key: str) -> tuple[int, int, int, str]:
    # Maildir keys are "<seconds>.M<microseconds>P<pid>Q<count>.<host>"; the microseconds
    # are not zero-padded, so the key does not sort as text.
    match = _MAILDIR_KEY.match(key)
    if match is None:
        return (0, 0, 0, key)
    seconds, micros, count = (int(group) for group in match.groups())
    return (seconds, micros, count, key)


def _parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)
