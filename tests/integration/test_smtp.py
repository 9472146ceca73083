"""The SMTP mailer against the real embedded server (aiosmtpd) on loopback."""

from __future__ import annotations

import hashlib
import mailbox
import re
import smtplib
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from time import monotonic, sleep
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from notifications.errors import PermanentSmtpError, SmtpConfigError, TransientSmtpError
from notifications.ics import meeting_invite
from notifications.mailer import SmtpMailer, SmtpSettings
from notifications.message import OutgoingMessage, build_message, make_message_id
from notifications.sink import MailSink
from notifications.templates import KINDS, SAMPLE_CONTEXT, RenderedMessage, TemplateRenderer

SENDER = "govflow@selep.example"
ALEX = "alex.morgan@selep.example"
BUSY = "busy@selep.example"
GONE = "gone@selep.example"
DUE = datetime(2019, 9, 13, 8, 0, tzinfo=UTC)
RENDERER = TemplateRenderer()


SPAM = "filtered@selep.example"


@pytest.fixture(params=[True, False], ids=["pipelining", "lockstep"])
def sink(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MailSink]:
    """The sink with and without PIPELINING: every test using it runs against both kinds of server."""
    refusals = {BUSY: "451 4.2.1 Mailbox busy, try again later", GONE: "550 5.1.1 No such mailbox"}
    rejections = {SPAM: "554 5.7.1 Message rejected by the content filter"}
    with MailSink(tmp_path / "mail", refusals=refusals, rejections=rejections, pipelining=request.param) as running:
        yield running


@pytest.fixture
def settings(sink: MailSink) -> SmtpSettings:
    return SmtpSettings(host=sink.host, port=sink.port, sender=SENDER, timeout=5)


def notice(key: str, *to: str, kind: str = "call_for_papers", invite: bool = False, **context: Any) -> OutgoingMessage:
    rendered = RENDERER.render(kind, {**SAMPLE_CONTEXT[kind], **context})
    attachments = [board_meeting()] if invite else []
    return build_message(
        sender=SENDER,
        to=list(to) or [ALEX],
        rendered=rendered,
        message_id=make_message_id(key, "selep.example"),
        attachments=attachments,
        date=DUE,
    )


def board_meeting() -> Any:
    return meeting_invite(
        uid="strategic-board-2019-10-04@selep.example",
        summary="SELEP Strategic Board",
        description="Local Industrial Strategy: progress and structure",
        day=date(2019, 10, 4),
        start=time(10),
        end=time(12),
        timezone="Europe/London",
        organizer=SENDER,
        attendees=[ALEX],
        stamp=DUE,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_check_passes_against_a_running_server(settings: SmtpSettings) -> None:
    SmtpMailer(settings).check()


def test_several_messages_over_one_connection_arrive_with_their_message_id_and_invitation(
    sink: MailSink, settings: SmtpSettings
) -> None:
    messages = [notice(f"key-{kind}", kind=kind, invite=True) for kind in KINDS[:4]]

    with SmtpMailer(settings) as mailer:
        returned = [mailer.send(message) for message in messages]

    arrived = sink.messages()
    assert returned == [message.message_id for message in messages]
    assert [message["Message-ID"] for message in arrived] == returned
    assert len({message["X-Peer"] for message in arrived}) == 1  # one connection for the batch
    for message in arrived:
        assert message["X-RcptTo"] == ALEX
        assert message.get_content_type() == "multipart/mixed"
        alternative, calendar = message.iter_parts()
        assert [part.get_content_type() for part in alternative.iter_parts()] == ["text/plain", "text/html"]
        assert calendar.get_content_type() == "text/calendar" and calendar.get_filename() == "invite.ics"
        assert calendar.get_content().encode() == board_meeting().data


def test_what_arrives_is_byte_for_byte_the_message_that_was_hashed(sink: MailSink, settings: SmtpSettings) -> None:
    message = notice("key-hash", kind="gate_passed", gate_name="Final draft – “agreed” by the Strategic Board")

    SmtpMailer(settings).send(message)

    box = mailbox.Maildir(sink.maildir, create=False)
    (stored,) = [box.get_bytes(key) for key in box.iterkeys()]
    trace_headers = 3  # Return-Path, X-RcptTo, X-Peer
    sent = b"\r\n".join(stored.split(b"\n")[trace_headers:])
    assert hashlib.sha256(sent).hexdigest() == message.sha256
    assert sink.messages()[0]["Subject"] == "Gate passed: Final draft – “agreed” by the Strategic Board"


def test_a_resend_carries_the_same_message_id_and_hash(sink: MailSink, settings: SmtpSettings) -> None:
    first, resend = notice("key-once"), notice("key-once")

    with SmtpMailer(settings) as mailer:
        mailer.send(first)
        mailer.send(resend)

    assert first.sha256 == resend.sha256
    assert {message["Message-ID"] for message in sink.messages()} == {first.message_id}


def test_submitted_messages_are_answered_in_order_each_with_its_own_outcome(
    sink: MailSink, settings: SmtpSettings
) -> None:
    messages = [notice(f"key-submitted-{number}") for number in range(3)]

    with SmtpMailer(settings) as mailer:
        first = mailer.submit(messages[0])
        second = mailer.submit(messages[1])  # reads the answer to the first before starting
        gone = mailer.submit(notice("key-submitted-gone", GONE))
        last = mailer.submit(messages[2])
    # The end of the batch read the last answer: the results are known after it.

    assert [first.result(), second.result(), last.result()] == [message.message_id for message in messages]
    with pytest.raises(PermanentSmtpError, match="550"):
        gone.result()
    assert [message["Message-ID"] for message in sink.messages()] == [message.message_id for message in messages]


@pytest.mark.parametrize(
    ("recipient", "error", "code"), [(BUSY, TransientSmtpError, 451), (GONE, PermanentSmtpError, 550)]
)
def test_a_4xx_refusal_is_transient_and_a_5xx_one_permanent(
    sink: MailSink, settings: SmtpSettings, recipient: str, error: type[Exception], code: int
) -> None:
    with pytest.raises(error, match=re.escape(f"recipient refused: {recipient}: {code} ")) as raised:
        SmtpMailer(settings).send(notice("key-refused", recipient))

    assert raised.value.code == code  # type: ignore[attr-defined]
    assert sink.messages() == []


def test_a_refusal_leaves_the_connection_usable_for_the_next_message(sink: MailSink, settings: SmtpSettings) -> None:
    with SmtpMailer(settings) as mailer:
        with pytest.raises(PermanentSmtpError):
            mailer.send(notice("key-gone", GONE))
        mailer.send(notice("key-ok-1"))
        with pytest.raises(TransientSmtpError):
            mailer.send(notice("key-busy", BUSY))
        mailer.send(notice("key-ok-2"))

    arrived = sink.messages()
    assert len(arrived) == 2 and arrived[0]["X-Peer"] == arrived[1]["X-Peer"]


def test_a_partial_refusal_is_permanent_and_names_the_refused_recipient(sink: MailSink, settings: SmtpSettings) -> None:
    with pytest.raises(PermanentSmtpError, match=re.escape(f"but refused for: {GONE}: 550")):
        SmtpMailer(settings).send(notice("key-partial", ALEX, GONE))

    assert [message["X-RcptTo"] for message in sink.messages()] == [ALEX]


def test_a_message_over_the_size_limit_is_permanent(tmp_path: Path) -> None:
    with MailSink(tmp_path / "mail", smtp_options={"data_size_limit": 2000}) as small:
        mailer = SmtpMailer(SmtpSettings(host=small.host, port=small.port, sender=SENDER))
        with pytest.raises(PermanentSmtpError, match="552") as raised:
            mailer.send(notice("key-big"))

    assert raised.value.code == 552


def test_the_mailer_reconnects_after_the_server_drops_the_connection(sink: MailSink, settings: SmtpSettings) -> None:
    with SmtpMailer(settings) as mailer:
        mailer.send(notice("key-before"))
        sink.drop_connections()
        mailer.send(notice("key-after"))

    before, after = sink.messages()
    assert before["X-Peer"] != after["X-Peer"]


def test_the_mailer_reconnects_after_the_server_timed_out_the_idle_connection(tmp_path: Path) -> None:
    with MailSink(tmp_path / "mail", smtp_options={"timeout": 0.2}) as impatient:
        settings = SmtpSettings(host=impatient.host, port=impatient.port, sender=SENDER, timeout=5)
        with SmtpMailer(settings) as mailer:
            mailer.send(notice("key-before"))
            sleep(0.6)  # the server says 421 and closes the idle connection
            mailer.send(notice("key-after"))
        before, after = impatient.messages()

    assert before["X-Peer"] != after["X-Peer"]
    assert after["Message-ID"] == make_message_id("key-after", "selep.example")


def test_sending_while_the_server_is_down_is_transient_and_works_once_it_is_back(
    sink: MailSink, settings: SmtpSettings
) -> None:
    with SmtpMailer(settings) as mailer:
        mailer.send(notice("key-1"))
        sink.stop()
        with pytest.raises(TransientSmtpError, match="connection refused"):
            mailer.send(notice("key-2"))
        sink.start()
        mailer.send(notice("key-2"))

    assert len(sink.messages()) == 2


def test_a_wrong_port_is_a_clear_config_error() -> None:
    port = free_port()

    with pytest.raises(SmtpConfigError) as raised:
        SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, sender=SENDER)).check()

    assert str(raised.value) == f"cannot reach SMTP server 127.0.0.1:{port}: connection refused (smtp.host / smtp.port)"


def test_a_server_that_never_answers_times_out_with_a_clear_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, sender=SENDER, timeout=0.3)

        with pytest.raises(SmtpConfigError, match=re.escape(f"127.0.0.1:{port}: no answer in time")):
            SmtpMailer(settings).check()


def test_starttls_asked_of_a_server_without_it_is_a_config_error(settings: SmtpSettings) -> None:
    with_tls = SmtpSettings(host=settings.host, port=settings.port, sender=SENDER, starttls=True)

    with pytest.raises(SmtpConfigError, match=r"does not support STARTTLS \(smtp.starttls\)"):
        SmtpMailer(with_tls).check()


def _only_the_secretary(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    accepted = auth_data.login == b"secretary" and auth_data.password == b"right-password"
    # handled=False makes aiosmtpd answer a failure; without it the client hangs (LIBRARIES.md).
    return AuthResult(success=accepted, handled=False)


@pytest.fixture
def auth_sink(tmp_path: Path) -> Iterator[MailSink]:
    options = {"authenticator": _only_the_secretary, "auth_require_tls": False}
    with MailSink(tmp_path / "mail", smtp_options=options) as running:
        yield running


def test_a_login_is_used_when_a_username_is_set(auth_sink: MailSink) -> None:
    settings = SmtpSettings(auth_sink.host, auth_sink.port, SENDER, username="secretary", password="right-password")

    SmtpMailer(settings).send(notice("key-auth"))

    assert len(auth_sink.messages()) == 1


def test_a_refused_login_names_the_user_and_never_the_password(auth_sink: MailSink) -> None:
    settings = SmtpSettings(auth_sink.host, auth_sink.port, SENDER, username="secretary", password="hunter2-wrong")

    with pytest.raises(SmtpConfigError, match="refused the login for user 'secretary'") as raised:
        SmtpMailer(settings).check()

    assert "hunter2" not in str(raised.value) and "hunter2" not in repr(settings)


def test_credentials_are_not_sent_to_a_remote_server_without_tls() -> None:
    with pytest.raises(SmtpConfigError, match=r"without TLS: set smtp.starttls = true"):
        SmtpSettings("smtp.selep.example", 587, SENDER, username="govflow", password="secret")

    SmtpSettings("smtp.selep.example", 587, SENDER, username="govflow", password="secret", starttls=True)
    SmtpSettings("127.0.0.1", 2525, SENDER, username="govflow", password="secret")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 0}, "smtp.port"),
        ({"host": ""}, "smtp.host"),
        ({"sender": "govflow"}, "smtp.from"),
        ({"sender": "govflow@selep.example\r\nRCPT TO:<x@example.org>"}, "smtp.from"),
    ],
)
def test_impossible_settings_name_the_key(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"host": "127.0.0.1", "port": 25, "sender": SENDER, **changes}

    with pytest.raises(SmtpConfigError, match=message) as raised:
        SmtpSettings(**arguments)

    assert "\n" not in str(raised.value)


def test_the_sink_picks_free_ports_and_refuses_a_port_in_use(sink: MailSink, tmp_path: Path) -> None:
    with MailSink(tmp_path / "other") as other:
        assert other.port not in {0, sink.port}

    with pytest.raises(SmtpConfigError, match=re.escape(f"cannot listen on 127.0.0.1:{sink.port}")):
        MailSink(tmp_path / "third", port=sink.port).start()


def test_the_sink_returns_messages_in_order_of_arrival(sink: MailSink, settings: SmtpSettings) -> None:
    subjects = [f"Message {number}" for number in range(12)]

    with SmtpMailer(settings) as mailer:
        for number, subject in enumerate(subjects):
            rendered = RenderedMessage("gate_passed", subject, "text\n", "<p>html</p>\n")
            key = make_message_id(f"order-{number}", "selep.example")
            mailer.send(build_message(sender=SENDER, to=[ALEX], rendered=rendered, message_id=key))

    assert [message["Subject"] for message in sink.messages()] == subjects


class SendSpy:
    """Records what the mailer writes to the socket, one entry per write (the bytes still go out)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[bytes] = []
        send = smtplib.SMTP.send

        def recording(connection: smtplib.SMTP, data: str | bytes) -> None:
            self.writes.append(data.encode() if isinstance(data, str) else data)
            send(connection, data)

        monkeypatch.setattr(smtplib.SMTP, "send", recording)

    def commands(self) -> list[list[str]]:
        """The writes holding SMTP commands (not message data), each as its list of command words."""
        return [
            [line.split(b" ", 1)[0].decode().upper() for line in write.splitlines()]
            for write in self.writes
            if write[:4].upper() in (b"MAIL", b"RCPT", b"DATA")
        ]


def test_the_sink_advertises_pipelining_unless_told_not_to(sink: MailSink) -> None:
    with smtplib.SMTP(sink.host, sink.port, "localhost", timeout=5) as client:
        client.ehlo()
        assert client.has_extn("pipelining") is sink.pipelining


def test_with_pipelining_a_message_is_one_write_of_its_commands_and_one_of_its_data(
    sink: MailSink, settings: SmtpSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendSpy(monkeypatch)

    with SmtpMailer(settings) as mailer:
        submitted = [
            mailer.submit(notice(f"key-spy-{number}", ALEX, "beth.okafor@selep.example")) for number in range(3)
        ]

    assert [submission.result() for submission in submitted] == [
        make_message_id(f"key-spy-{n}", "selep.example") for n in range(3)
    ]
    if sink.pipelining:
        assert spy.commands() == [["MAIL", "RCPT", "RCPT", "DATA"]] * 3
    else:
        assert spy.commands() == [["MAIL"], ["RCPT"], ["RCPT"], ["DATA"]] * 3
    assert len(sink.messages()) == 3


def test_pipelining_can_be_turned_off_for_a_server_that_advertises_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendSpy(monkeypatch)
    with MailSink(tmp_path / "mail", pipelining=True) as advertising:
        settings = SmtpSettings(advertising.host, advertising.port, SENDER, timeout=5, pipelining=False)
        with SmtpMailer(settings) as mailer:
            mailer.send(notice("key-off"))

    assert spy.commands() == [["MAIL"], ["RCPT"], ["DATA"]]


def test_a_message_rejected_after_its_data_leaves_the_connection_serving_the_next(
    sink: MailSink, settings: SmtpSettings
) -> None:
    with SmtpMailer(settings) as mailer:
        first = mailer.submit(notice("key-first"))
        filtered = mailer.submit(notice("key-filtered", SPAM))
        after = mailer.submit(notice("key-after-filter"))  # with pipelining, sent before the rejection was read
        last = mailer.submit(notice("key-last"))

    with pytest.raises(
        PermanentSmtpError, match=re.escape("554 5.7.1 Message rejected by the content filter")
    ) as raised:
        filtered.result()
    assert raised.value.code == 554
    assert [first.result(), after.result(), last.result()] == [
        make_message_id(key, "selep.example") for key in ("key-first", "key-after-filter", "key-last")
    ]
    arrived = sink.messages()
    assert [message["Message-ID"] for message in arrived] == [first.result(), after.result(), last.result()]
    assert len({message["X-Peer"] for message in arrived}) == 1


def test_a_message_whose_every_recipient_is_refused_is_not_sent_and_the_next_is(
    sink: MailSink, settings: SmtpSettings
) -> None:
    with SmtpMailer(settings) as mailer:
        refused = mailer.submit(notice("key-nobody", GONE, BUSY))
        sent = mailer.submit(notice("key-somebody"))

    with pytest.raises(PermanentSmtpError, match=re.escape(f"recipient refused: {BUSY}: 451 ")):
        refused.result()
    assert sent.result() == make_message_id("key-somebody", "selep.example")
    assert [message["Message-ID"] for message in sink.messages()] == [sent.result()]


def test_a_connection_dropped_while_an_answer_is_awaited_gives_that_answer_and_sends_the_next_anew(
    sink: MailSink, settings: SmtpSettings
) -> None:
    with SmtpMailer(settings) as mailer:
        first = mailer.submit(notice("key-stored"))
        wait_until(lambda: len(sink.messages()) == 1)  # stored and answered; the answer not read yet
        sink.drop_connections()
        second = mailer.submit(notice("key-anew"))

    assert first.result() == make_message_id("key-stored", "selep.example")
    assert second.result() == make_message_id("key-anew", "selep.example")
    stored, anew = sink.messages()
    assert stored["X-Peer"] != anew["X-Peer"]


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = monotonic() + seconds
    while not condition():
        if monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        sleep(0.01)
