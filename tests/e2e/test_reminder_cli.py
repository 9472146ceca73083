"""The reminder commands as a user runs them: mail-sink, worker, reminders, notifications, template check."""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifications.sink import MailSink
from tests.e2e.conftest import Cli


@pytest.fixture
def sink(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSink]:
    """The embedded SMTP server, with the worker's configuration pointing at it."""
    with MailSink(workdir / "mail") as running:
        monkeypatch.setenv("GOVFLOW_SMTP_PORT", str(running.port))
        yield running


def first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline()


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


def test_the_worker_sends_what_is_due_once_and_reports_it(lis_started: Cli, sink: MailSink) -> None:
    cli = lis_started

    first = cli("worker", "--once", "--json", now="2019-09-13T09:00")
    again = cli("worker", "--once", "--json", now="2019-09-13T09:05")

    assert first.code == 0, first.err
    assert first.json()["sent"] == len(sink.messages()) > 0
    assert again.json()["sent"] == 0
    assert first.json()["missed"] > 0  # started in June, first run in September: the summer's reminders are late


def test_reminders_shows_the_plan_with_due_times_and_states(lis_started: Cli, sink: MailSink) -> None:
    cli = lis_started
    cli("worker", "--once", now="2019-09-13T09:00")

    report = cli("reminders", "selep-lis", "--json", now="2019-09-13T10:00")
    text = cli("reminders", "selep-lis", now="2019-09-13T10:00")

    assert report.code == 0, report.err
    states = {entry["state"] for entry in report.json()["notifications"]}
    assert {"sent", "planned", "missed"} <= states
    call = next(
        e
        for e in report.json()["notifications"]
        if e["rule"] == "call-for-papers" and e["subject"] == "strategic-board-2019-10-04"
    )
    assert call["due_local"] == "2019-09-13 09:00 BST" and call["state"] == "sent"
    assert text.code == 0 and "call-for-papers" in text.out and "not planned" not in text.out


def test_reminders_work_before_any_worker_has_run(lis_started: Cli) -> None:
    report = lis_started("reminders", "selep-lis", "--json", now="2019-06-03T10:00")

    entries = report.json()["notifications"]
    assert entries and {e["state"] for e in entries} == {"planned"} and not any(e["stored"] for e in entries)


def test_notifications_lists_what_was_sent_with_its_message_id(lis_started: Cli, sink: MailSink) -> None:
    cli = lis_started
    cli("worker", "--once", now="2019-09-13T09:00")

    listing = cli("notifications", "selep-lis", "--json")
    text = cli("notifications", "selep-lis")

    sent = [e for e in listing.json() if e["type"] == "NotificationSent"]
    delivered = {" ".join(str(m["Message-ID"]).split()) for m in sink.messages()}
    assert {e["message_id"] for e in sent} == delivered
    assert all(e["recipient"] and e["sha256"] for e in sent)
    assert text.code == 0 and "sent" in text.out


def test_bad_smtp_settings_stop_the_worker_at_start_with_one_line(
    lis_started: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVFLOW_SMTP_PORT", "1")

    refused = lis_started("worker", "--once", now="2019-09-13T09:00")

    assert refused.code == 2
    assert refused.err.count("\n") == 1
    assert "cannot reach SMTP server 127.0.0.1:1" in refused.err and "smtp.port" in refused.err

    monkeypatch.setenv("GOVFLOW_SMTP_FROM", "not-an-address")
    wrong = lis_started("worker", "--once")
    assert wrong.code == 2 and "smtp.from" in wrong.err


def test_a_running_worker_needs_the_real_clock(lis_started: Cli) -> None:
    result = lis_started("worker", now="2019-09-13T09:00")

    assert result.code == 2 and "--now needs --once" in result.err


def test_reminders_of_an_unknown_instance_is_bad_input(cli: Cli) -> None:
    result = cli("reminders", "nope")

    assert result.code == 2 and "unknown instance 'nope'" in result.err


def test_template_check_passes_on_the_shipped_templates_and_fails_on_a_broken_one(cli: Cli, workdir: Path) -> None:
    assert cli("template", "check").code == 0

    broken = workdir / "templates"
    broken.mkdir()
    (broken / "call_for_papers.txt.j2").write_text("{% block subject %}{{ meeting_dat }}{% endblock %}")
    result = cli("template", "check", "--dir", str(broken))

    assert result.code == 2 and "meeting_dat" in result.err


def test_mail_sink_and_worker_run_until_stopped_by_sigterm(lis_started: Cli, sink: MailSink) -> None:
    cli = lis_started
    mail = cli.spawn("mail-sink", "--port", "0", "--maildir", str(cli.folder / "sink-mail"))
    worker = cli.spawn("worker")
    try:
        assert "mail sink listening on 127.0.0.1:" in first_line(mail)
        assert "running" in first_line(worker)
    finally:
        worker_code, worker_out, worker_err = stop(worker)
        mail_code, mail_out, _ = stop(mail)

    assert worker_code == 0, worker_err
    assert "stopped" in worker_out
    assert mail_code == 0 and "mail sink stopped" in mail_out
    assert (cli.folder / "sink-mail" / "new").is_dir()


@pytest.mark.parametrize(("flags", "advertised"), [((), True), (("--no-pipelining",), False)])
def test_the_mail_sink_advertises_pipelining_unless_told_not_to(
    workdir: Path, flags: tuple[str, ...], advertised: bool
) -> None:
    command = [sys.executable, "-m", "workflows.cli", "mail-sink", "--port", "0", "--maildir", "mail", *flags]
    mail = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listening = re.search(r"listening on (\S+):(\d+),", first_line(mail))
        assert listening is not None
        with smtplib.SMTP(listening[1], int(listening[2]), "localhost", timeout=10) as client:
            client.ehlo()
            assert client.has_extn("pipelining") is advertised
    finally:
        code, _, err = stop(mail)

    assert code == 0, err
