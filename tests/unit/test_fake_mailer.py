"""The fake mailer other tests rely on behaves like the SMTP one: same port, same errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifications.errors import PermanentSmtpError, TransientSmtpError
from notifications.mailer import Mailer
from notifications.message import OutgoingMessage, build_message, make_message_id
from notifications.templates import RenderedMessage
from notifications.testing import FakeMailer

RENDERED = RenderedMessage("gate_passed", "Gate passed", "text\n", "<p>html</p>\n")


def message(key: str, *to: str) -> OutgoingMessage:
    return build_message(
        sender="govflow@selep.example",
        to=list(to) or ["alex.morgan@selep.example"],
        rendered=RENDERED,
        message_id=make_message_id(key, "selep.example"),
    )


def test_the_fake_records_accepted_messages_and_returns_their_message_id() -> None:
    fake = FakeMailer()
    mailer: Mailer = fake  # the fake satisfies the port

    returned = mailer.send(message("a"))

    assert returned == make_message_id("a", "selep.example")
    assert fake.message_ids == [returned]
    assert fake.sent_to("ALEX.MORGAN@selep.example") == fake.sent


def test_the_fake_fails_the_next_sends_on_demand() -> None:
    fake = FakeMailer()
    fake.fail_next("transient", times=2)
    fake.fail_next("permanent")

    with pytest.raises(TransientSmtpError) as first:
        fake.send(message("a"))
    with pytest.raises(TransientSmtpError):
        fake.send(message("a"))
    with pytest.raises(PermanentSmtpError) as third:
        fake.send(message("a"))
    fake.send(message("a"))

    assert (first.value.code, third.value.code) == (451, 550)
    assert len(fake.attempts) == 4 and len(fake.sent) == 1


def test_the_fake_fails_every_send_to_a_chosen_address_until_it_recovers() -> None:
    fake = FakeMailer()
    fake.fail_for("gone@selep.example", "permanent")

    with pytest.raises(PermanentSmtpError, match=r"gone@selep\.example"):
        fake.send(message("a", "alex.morgan@selep.example", "Gone <gone@selep.example>"))
    fake.send(message("b"))
    fake.recover()
    fake.send(message("c", "gone@selep.example"))

    assert [fake.recipients(sent) for sent in fake.sent] == [["alex.morgan@selep.example"], ["gone@selep.example"]]


def test_the_fake_refuses_a_message_without_a_message_id() -> None:
    bare = replace(message("a"), message_id="")

    with pytest.raises(ValueError, match="Message-ID"):
        FakeMailer().send(bare)
