"""The reminder commands: ``mail-sink``, ``worker``, ``reminders``, ``notifications``, ``template check``.

Registered through ``workflows.cli.EXTENSIONS``. Nothing heavy is imported at module
level: APScheduler, Jinja2 and aiosmtpd load inside the handlers that need them, so
``govflow status`` starts no slower for their existence. Bad SMTP settings stop
``govflow worker`` at start with one line naming the setting (exit 2).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.errors import BadInput, ConfigError

if TYPE_CHECKING:
    from notifications.mailer import SmtpSettings
    from workflows.config import Settings
    from workflows.worker import TickReport, Worker, WorkerSettings

__all__ = ["register"]


def register(sub: Any, common: argparse.ArgumentParser, writer: argparse.ArgumentParser) -> None:
    """Add the reminder commands to the ``govflow`` parser."""

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        return parser

    sink = add("mail-sink", "run the development SMTP server, keeping messages in a Maildir")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=8025, help="0: any free port")
    sink.add_argument("--maildir", type=Path, default=Path("mail"))
    sink.add_argument(
        "--no-pipelining", dest="pipelining", action="store_false", help="do not advertise PIPELINING (RFC 2920)"
    )
    sink.set_defaults(handler=_cmd_mail_sink)

    worker = add("worker", "send due reminders and escalations (runs until stopped)")
    worker.add_argument("--once", action="store_true", help="process what is due now (or at --now), then exit")
    worker.add_argument("--json", action="store_true", help="with --once: print the tick's report as JSON")
    worker.set_defaults(handler=_cmd_worker)

    for name, help_text, handler in (
        ("reminders", "the planned reminders and escalations of an instance, with due times and state", _cmd_reminders),
        ("notifications", "what was sent for an instance: to whom, when, with Message-ID", _cmd_notifications),
    ):
        parser = add(name, help_text)
        parser.add_argument("instance")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(handler=handler)

    template = add("template", "check the email templates")
    actions = template.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=type(template))
    check = actions.add_parser(
        "check", help="every template renders with sample data, no unknown variable", parents=[common]
    )
    check.add_argument("--dir", type=Path, default=None, help="template folder (default: the shipped one)")
    check.set_defaults(handler=_cmd_template_check)


def smtp_settings(settings: Settings) -> SmtpSettings:
    """``[smtp]`` as the mailer's settings; raises ``SmtpConfigError`` for values that cannot work."""
    from notifications.mailer import SmtpSettings

    smtp = settings.values["smtp"]
    return SmtpSettings(
        host=smtp["host"],
        port=smtp["port"],
        sender=smtp["from"],
        username=smtp["username"],
        password=smtp["password"],
        starttls=smtp["starttls"],
        timeout=float(smtp["timeout_seconds"]),
        pipelining=smtp["pipelining"],
    )


def worker_settings(settings: Settings) -> WorkerSettings:
    from workflows.worker import WorkerSettings

    values = settings.values["worker"]
    if not 0 <= values["send_hour"] <= 23:
        raise ConfigError(f"worker.send_hour: {values['send_hour']} is not an hour of the day (0-23)")
    for key in ("retry_attempts", "batch_size", "safety_interval_seconds"):
        if values[key] < 1:
            raise ConfigError(f"worker.{key}: must be at least 1")
    return WorkerSettings(
        send_hour=values["send_hour"],
        retry_attempts=values["retry_attempts"],
        retry_backoff_seconds=values["retry_backoff_seconds"],
        batch_size=values["batch_size"],
        safety_interval_seconds=values["safety_interval_seconds"],
    )


def build_worker(args: argparse.Namespace) -> Worker:
    """The worker for these options, after checking that the SMTP server takes our settings."""
    from notifications.errors import SmtpConfigError
    from notifications.mailer import SmtpMailer
    from workflows.bootstrap import build_services, settings_for
    from workflows.cli import options_of
    from workflows.worker import Worker

    options = options_of(args)
    settings = settings_for(options)
    try:
        smtp = smtp_settings(settings)
        mailer = SmtpMailer(smtp)
        mailer.check()
    except SmtpConfigError as error:
        raise ConfigError(f"cannot start the worker: {error}") from None
    services = build_services(options, source="worker")
    return Worker(services, mailer, sender=smtp.sender, settings=worker_settings(settings))


def _cmd_worker(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from workflows.alarm import run_until_stopped
    from workflows.cli import print_json

    if getattr(args, "now", None) and not args.once:
        raise BadInput("--now needs --once: a running worker follows the real clock")
    worker = build_worker(args)
    clock = worker.services.clock
    if args.once:
        report = worker.tick(clock.now())
        print_json(report.as_json()) if args.json else print(_tick_line(report))
        return 0
    with _stop_on_signals() as stop:
        # Said once the signals are ours, so whoever waits for this line may stop us at once.
        print(f"govflow worker {worker.settings.worker_id}: running; Ctrl-C or SIGTERM stops it", flush=True)
        run_until_stopped(
            worker,
            clock,
            stop,
            safety_interval=timedelta(seconds=worker.settings.safety_interval_seconds),
            on_tick=lambda report: _print_if_busy(report),
        )
    print("govflow worker: stopped", flush=True)
    return 0


def _tick_line(report: TickReport) -> str:
    data = report.as_json()
    done = ", ".join(
        f"{data[k]} {k}" for k in ("sent", "missed", "failed", "retried", "recovered", "escalated") if data[k]
    )
    wake = f"; next wake {data['next_wake']}" if data["next_wake"] else ""
    planned = f" (planned {data['replanned']} instance(s), {data['planned']} new, {data['cancelled']} cancelled)"
    return f"{data['now']}: {done or 'nothing due'}{planned if data['replanned'] else ''}{wake}"


def _print_if_busy(report: TickReport) -> None:
    if report.claimed or report.replanned:
        print(_tick_line(report), flush=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, with the previous handlers restored afterwards."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_mail_sink(args: argparse.Namespace) -> int:
    from notifications.errors import SmtpConfigError
    from notifications.sink import MailSink

    sink = MailSink(args.maildir, host=args.host, port=args.port, pipelining=args.pipelining)
    try:
        sink.start()
    except SmtpConfigError as error:
        raise ConfigError(str(error)) from None
    try:
        with _stop_on_signals() as stop:
            print(f"mail sink listening on {sink.host}:{sink.port}, keeping messages in {args.maildir}", flush=True)
            stop.wait()
    finally:
        sink.stop()
    print("mail sink stopped", flush=True)
    return 0


def _cmd_reminders(args: argparse.Namespace) -> int:
    from datetime import time

    from governance.commands import local_day
    from governance.reminders import plan_notifications
    from workflows.bootstrap import build_services, settings_for
    from workflows.cli import options_of, print_json
    from workflows.outbox import SqlOutbox
    from workflows.reminder_report import reminders_json, reminders_text

    options = options_of(args)
    send_at = time(worker_settings(settings_for(options)).send_hour)
    services = build_services(options)
    instance = services.load(args.instance)
    today = local_day(services.clock.now(), instance.definition)
    events = services.store.read_stream(args.instance)
    plan = plan_notifications(instance, today, events=events, send_at=send_at)
    rows = SqlOutbox(services.store.engine).rows(args.instance)  # type: ignore[attr-defined]
    head = services.store.stream(args.instance)
    report = reminders_json(instance, plan, rows, head.updated_at if head is not None else None)
    print_json(report) if args.json else print(reminders_text(report))
    return 0


def _cmd_notifications(args: argparse.Namespace) -> int:
    from workflows.bootstrap import build_services
    from workflows.cli import options_of, print_json
    from workflows.notification_log import notification_stream
    from workflows.reminder_report import notifications_json, notifications_text

    services = build_services(options_of(args))
    instance = services.load(args.instance)
    entries = notifications_json(services.store.read_stream(notification_stream(args.instance)))
    print_json(entries) if args.json else print(
        notifications_text(args.instance, entries, instance.definition.timezone)
    )
    return 0


def _cmd_template_check(args: argparse.Namespace) -> int:
    from notifications.errors import TemplateError
    from notifications.templates import KINDS, TemplateRenderer

    if args.dir is not None and not args.dir.is_dir():
        raise BadInput(f"no such template folder: {args.dir}")
    try:
        problems = TemplateRenderer(args.dir).check()
    except TemplateError as error:
        problems = [str(error)]
    if problems:
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(f"govflow: {len(problems)} template problem(s)", file=sys.stderr)
        return 2
    print(f"templates ok: {len(KINDS)} kinds render with their sample data and use no unknown variable")
    return 0
