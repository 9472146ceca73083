"""Run a scenario: a simulated clock walks day by day while the secretaries' steps play
and the worker ticks, on a fresh SQLite database and the embedded SMTP server.

The code paths are production's — the services the CLI calls, the worker's ``tick``,
the SMTP mailer, the audit export — only the clock and the mail server are local.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from governance.calendar import local_datetime
from governance.errors import GovernanceError, RuleViolation
from governance.quorum import DecisionInput
from workflows.clock import FixedClock
from workflows.demo.scenario import Scenario, Step
from workflows.errors import BadInput, WorkflowError
from workflows.services import Outcome, Services

TICK_AT = time(9, 0)
SENDER = "govflow@selep.example"


class ScenarioFailed(WorkflowError):
    """A step did not do what the scenario expects of it (exit 1)."""

    exit_code = 1


@dataclass
class Happening:
    """One line of the run's story: a decision, a refusal, an escalation, a phase change."""

    moment: datetime
    kind: str
    text: str


@dataclass
class RunLog:
    """What the run did, for the summary and the report."""

    happenings: list[Happening] = field(default_factory=list)
    emails: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    steps: int = 0
    refused: int = 0


def prepare_folder(out: Path, force: bool) -> None:
    """Create the output folder; a non-empty one is replaced only with ``force``."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise BadInput(f"{out} is not empty: choose another --out or add --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def days(scenario: Scenario) -> Iterator[date]:
    day = scenario.start
    while day <= scenario.end:
        yield day
        day += timedelta(days=1)


class ScenarioPlayer:
    """Plays each step through the services, as the matching CLI command would."""

    def __init__(self, services: Services, scenario: Scenario, documents: Path, log: RunLog) -> None:
        self.services = services
        self.scenario = scenario
        self.documents = documents
        self.log = log

    def play(self, step: Step, now: datetime, say: Callable[[Happening], None]) -> None:
        self.log.steps += 1
        try:
            outcome = self._run(step)
        except RuleViolation as refusal:
            if step.expect != "refused":
                raise ScenarioFailed(f"{step.label} on {step.on.isoformat()} was refused: {refusal}") from None
            self.log.refused += 1
            say(Happening(now, "refused", f"refused, as the rules require: {refusal}"))
            return
        except GovernanceError as error:
            raise ScenarioFailed(f"{step.label} on {step.on.isoformat()}: {error}") from None
        if step.expect == "refused":
            raise ScenarioFailed(f"{step.label} on {step.on.isoformat()} was recorded, the scenario expects a refusal")
        for event in outcome.events:
            happening = _happening(now, event["type"], event["data"])
            if happening is not None:
                say(happening)

    def _run(self, step: Step) -> Outcome:
        a, who, instance = step.args, {"actor": step.actor}, self.scenario.instance
        services = self.services
        if step.action == "task":
            return services.complete_task(instance, a["task"], day=a.get("date"), note=a.get("note"), **who)
        if step.action == "decide":
            return services.decide(instance, _decision(step), **who)
        if step.action == "document":
            path = self.documents / a["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(a["content"] + "\n", encoding="utf-8")
            return services.add_document(instance, path, **who)
        if step.action == "meeting-schedule":
            return services.schedule_meeting(
                instance, a["body"], a["date"], meeting_id=a.get("meeting"), note=a.get("note") or "", **who
            )
        if step.action == "meeting-reschedule":
            return services.reschedule_meeting(instance, a["meeting"], a["date"], a["reason"], **who)
        if step.action == "meeting-cancel":
            return services.cancel_meeting(instance, a["meeting"], a["reason"], **who)
        if step.action == "discharge":
            return self._discharge(step)
        if step.action == "pause":
            return services.pause(instance, a["reason"], **who)
        if step.action == "resume":
            return services.resume(instance, a["reason"], **who)
        if step.action == "supersede":
            return services.supersede(instance, a["reason"], by=a.get("by"), **who)
        return services.extend_deadline(instance, a["deadline"], a["reason"], **who)

    def _discharge(self, step: Step) -> Outcome:
        """Discharge every open condition of the step's gate (their ids are made at run time)."""
        state = self.services.load(self.scenario.instance)
        open_ids = sorted(c.id for c in state.open_conditions(step.args["gate"]))
        if not open_ids:
            raise ScenarioFailed(f"{step.label}: gate '{step.args['gate']}' has no open condition to discharge")
        events: list[dict[str, Any]] = []
        outcome: Outcome | None = None
        for condition in open_ids:
            outcome = self.services.discharge_condition(
                self.scenario.instance,
                condition,
                day=step.args.get("date"),
                evidence=step.args.get("evidence"),
                actor=step.actor,
            )
            events.extend(outcome.events)
        assert outcome is not None
        return Outcome(outcome.instance, events, outcome.phase, state=outcome.state)


def _decision(step: Step) -> DecisionInput:
    a = step.args
    return DecisionInput(
        gate=a["gate"],
        body=a["board"],
        outcome=a["outcome"],
        day=a.get("date", step.on),
        mode=a.get("mode"),
        present=a.get("present"),
        votes_for=a.get("for"),
        against=a.get("against"),
        abstain=a.get("abstain"),
        conflicted=a.get("conflicted", 0),
        present_private=a.get("present_private"),
        present_public=a.get("present_public"),
        present_voting=a.get("present_voting"),
        minute_ref=a.get("minute_ref"),
        authority=a.get("authority"),
        conditions=tuple(a.get("conditions", ())),
        condition_owner=a.get("condition_owner"),
        condition_due=a.get("condition_due"),
        deferred_to=a.get("deferred_to"),
        comments=a.get("comments"),
        declarations=tuple(a.get("declarations", ())),
    )


def _happening(now: datetime, kind: str, data: dict[str, Any]) -> Happening | None:
    if kind == "DecisionRecorded":
        return Happening(now, "decision", f"{data['body']} {data['outcome']} at {data['gate']} ({data['date']})")
    if kind == "GatePassed":
        dissent = f", dissent: {', '.join(data['dissent'])}" if data.get("dissent") else ""
        return Happening(now, "gate", f"gate {data['gate']} passed{dissent}")
    if kind == "PhaseEntered":
        return Happening(now, "phase", f"phase {data['from']} → {data['to']} ({data['cause']})")
    if kind in ("InstancePaused", "InstanceResumed", "InstanceSuperseded", "DeadlineExtended"):
        return Happening(now, "phase", f"{kind}: {data.get('reason', '')}")
    if kind == "ConditionDischarged":
        return Happening(now, "condition", f"condition {data['condition']} discharged")
    if kind == "MeetingRescheduled":
        return Happening(now, "meeting", f"meeting {data['meeting']} moved to {data['date']}: {data['reason']}")
    return None


def moments(scenario: Scenario, day: date, working: bool) -> list[tuple[time, Step | None]]:
    """The day's moments in order: the worker's tick (working days, 09:00) and the steps."""
    items: list[tuple[time, int, Step | None]] = [(step.at, 1, step) for step in scenario.steps_on(day)]
    if working:
        items.append((TICK_AT, 0, None))
    return [(at, item) for at, _, item in sorted(items, key=lambda entry: (entry[0], entry[1]))]


def set_clock(clock: FixedClock, day: date, at: time, timezone: str) -> datetime:
    moment = local_datetime(day, at, timezone)
    clock.set(moment)
    return moment
