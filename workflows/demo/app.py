"""``govflow demo``: set up, walk the scenario day by day, then audit and report.

Writes into the output folder: ``govflow.db`` (the event log), ``mail/`` (every
email the embedded SMTP server received, as a Maildir), ``lis-audit.jsonl`` (the
audit bundle, verifiable offline), ``govflow-signing.key`` (the checkpoint key) and
``report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from workflows.demo.report_page import ReportInputs, render_report
from workflows.demo.runner import (
    SENDER,
    TICK_AT,
    Happening,
    RunLog,
    ScenarioFailed,
    ScenarioPlayer,
    days,
    moments,
    prepare_folder,
    set_clock,
)
from workflows.demo.scenario import Scenario

STYLES = {
    "decision": "green",
    "refused": "yellow",
    "gate": "cyan",
    "phase": "bold magenta",
    "escalation": "red",
    "condition": "cyan",
    "meeting": "blue",
}


@dataclass
class DemoResult:
    out: Path
    services: Any
    instance: str
    decisions: int
    final_phase: str
    log: RunLog
    verified: bool
    bundle: Path
    report: Path
    maildir: Path
    emails_received: int


def _services(database: Path, clock: Any) -> Any:
    from workflows.database import make_engine, migrate
    from workflows.services import Services
    from workflows.store.sql import SqlEventStore

    url = f"sqlite:///{database}"
    migrate(url)
    return Services(store=SqlEventStore(make_engine(url), clock=clock.now), clock=clock, source="demo")


def run_demo(scenario: Scenario, out: Path, *, force: bool = False, fast: bool = False, console: Console) -> DemoResult:
    """Run ``scenario`` into ``out``; raises ScenarioFailed when a step does not go as written."""
    from notifications.mailer import SmtpMailer, SmtpSettings
    from notifications.sink import MailSink
    from workflows.audit.app import Audit
    from workflows.audit.log import SqlAuditLog
    from workflows.audit.signing import ensure_key
    from workflows.clock import FixedClock
    from workflows.worker import Worker

    prepare_folder(out, force)
    log = RunLog()
    sink = MailSink(out / "mail")
    sink.start()
    try:
        from workflows.definition_file import find_definition, load_definition

        definition = load_definition(find_definition(scenario.definition, []))
        timezone = definition.timezone
        from governance.calendar import local_datetime

        clock = FixedClock(local_datetime(scenario.start, TICK_AT, timezone))
        services = _services(out / "govflow.db", clock)
        mailer = SmtpMailer(SmtpSettings(host=sink.host, port=sink.port, sender=SENDER))
        worker = Worker(services, mailer, sender=SENDER)
        services.start(scenario.definition, scenario.instance, actor="LIS programme lead", day=scenario.start)
        player = ScenarioPlayer(services, scenario, out / "drafts", log)
        say = _printer(console, timezone)
        mail = _MailWatch(services, scenario.instance)
        total = (scenario.end - scenario.start).days + 1
        with _progress(console, fast) as progress:
            task = progress.add_task("walking the calendar", total=total)
            for day in days(scenario):
                calendar = services.load(scenario.instance).calendar
                for at, step in moments(scenario, day, calendar.is_working_day(day)):
                    now = set_clock(clock, day, at, timezone)
                    if step is None:
                        worker.tick(now)
                        log.ticks += 1
                        mail.report(now, log, say)
                    else:
                        player.play(step, now, say)
                progress.update(task, advance=1, description=f"{day:%a %d %b %Y}")
        audit = Audit(services, SqlAuditLog(services.store.engine), out / "govflow-signing.key")
        ensure_key(audit.key_file)
        audit.checkpoint("govflow demo")
        report = audit.verify(None, [], None)
        bundle = out / "lis-audit.jsonl"
        audit.export(scenario.instance, bundle, "jsonl")
        final = services.status(scenario.instance)
        page = render_report(
            services,
            ReportInputs(
                instance=scenario.instance,
                start=scenario.start,
                end=scenario.end,
                refused=log.refused,
                departures=scenario.departures,
                verified=report.ok,
                audit_summary=_audit_summary(report.ok, bundle),
            ),
            out,
        )
        received = len(sink.messages())
    finally:
        sink.stop()
    if scenario.expected_phase and final["phase"] != scenario.expected_phase:
        raise ScenarioFailed(f"the run ended in '{final['phase']}', the scenario expects '{scenario.expected_phase}'")
    decisions = sum(1 for e in services.history(scenario.instance) if e["type"] == "DecisionRecorded")
    return DemoResult(
        out,
        services,
        scenario.instance,
        decisions,
        final["phase"],
        log,
        report.ok,
        bundle,
        page,
        out / "mail",
        received,
    )


def _audit_summary(verified: bool, bundle: Path) -> str:
    state = "passed" if verified else "FAILED"
    return (
        f"audit verify {state}: every stream's hash chain, versions, positions and the signed checkpoint. "
        f"The bundle {bundle.name} holds the events, the definition and the checkpoint; check it offline with "
        f"`govflow audit verify-bundle {bundle.name}`."
    )


WARNINGS = {"escalation", "gate_overdue", "at_risk"}


class _MailWatch:
    """Reads what the worker recorded since the last look: counts emails, tells escalations."""

    def __init__(self, services: Any, instance: str) -> None:
        self.services, self.stream, self.seen = services, f"notifications:{instance}", 0

    def report(self, now: datetime, log: RunLog, say: Any) -> None:
        for event in self.services.store.read_stream(self.stream, after_version=self.seen):
            self.seen = event.version
            data = event.data
            if event.type == "NotificationSent":
                log.emails[data["kind"]] += 1
                if data["kind"] in WARNINGS:
                    say(Happening(now, "escalation", f"{data['kind']} to {data['recipient']}: {data['subject']}"))
            elif event.type in ("NotificationFailed", "NotificationMissed"):
                say(Happening(now, "escalation", f"{event.type} {data['kind']} to {data['recipient']}"))


def _printer(console: Console, timezone: str) -> Any:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)

    def say(happening: Happening) -> None:
        style = STYLES.get(happening.kind, "")
        when = happening.moment.astimezone(zone).strftime("%a %d %b %Y %H:%M")
        console.print(f"[dim]{when}[/]  [{style}]{happening.kind:<10}[/] {happening.text}", highlight=False)

    return say


def _progress(console: Console, fast: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=fast,
    )


def summary(console: Console, result: DemoResult) -> None:
    """The end of the run: phases planned and actual, decisions, emails, escalations, audit."""
    from workflows.demo.report_page import phase_rows

    phases = Table(title="Phases", title_justify="left")
    for column in ("phase", "planned", "actual", "gates"):
        phases.add_column(column)
    for row in phase_rows(result.services, result.instance):
        phases.add_row(row["phase"], row["planned"], row["actual"], row["gates"])
    console.print(phases)
    emails = Table(title="Emails sent, by kind", title_justify="left")
    emails.add_column("kind")
    emails.add_column("sent", justify="right")
    for kind, count in sorted(result.log.emails.items()):
        emails.add_row(kind, str(count))
    emails.add_row("[bold]total[/]", f"[bold]{sum(result.log.emails.values())}[/]")
    console.print(emails)
    escalations = sum(count for kind, count in result.log.emails.items() if kind in WARNINGS)
    console.print(
        f"decisions recorded: {result.decisions} ({result.log.refused} refused by the rules, as the scenario expects); "
        f"escalations and warnings: {escalations}; emails received by the SMTP server: {result.emails_received}"
    )
    console.print(f"final state: [bold]{result.final_phase}[/]")
    verdict = "[green]passed[/]" if result.verified else "[red]FAILED[/]"
    console.print(f"audit verify: {verdict}; bundle: {result.bundle}; report: {result.report}; mail: {result.maildir}/")


__all__ = ["DemoResult", "ScenarioFailed", "run_demo", "summary"]
