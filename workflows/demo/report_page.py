"""``report.html``: one self-contained page an auditor would rather look at than read the log.

Everything comes from the database the run wrote: the instance's history and
status, the notification stream, the definition it ran under. No script, font or
picture is fetched from anywhere: the page works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from workflows.demo.timeline import diagram_svg, gather, timeline_svg
from workflows.services import Services

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class ReportInputs:
    """What the page needs besides the database."""

    instance: str
    start: date
    end: date
    refused: int
    departures: tuple[str, ...]
    verified: bool
    audit_summary: str


def _when(text: str, timezone: str) -> str:
    return datetime.fromisoformat(text).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _votes(data: dict[str, Any]) -> str:
    votes = data.get("votes") or {}
    if not votes:
        return ""
    parts = [f"{votes[k]} {k}" for k in ("present", "for", "against", "abstain", "conflicted") if votes.get(k)]
    return ", ".join(parts)


def _quorum(data: dict[str, Any]) -> str:
    quorum = data.get("quorum") or {}
    if "quorum" in quorum:
        return f"{quorum['counted']} of {quorum['quorum']} needed"
    if "majority" in quorum:
        return f"majority {quorum['majority']} of {quorum['eligible']}"
    return ""


def decision_rows(history: list[dict[str, Any]], timezone: str, voided: dict[str, str]) -> list[dict[str, str]]:
    rows = []
    for event in history:
        if event["type"] != "DecisionRecorded":
            continue
        data = event["data"]
        rows.append(
            {
                "date": data["date"],
                "body": data["body"],
                "gate": data["gate"],
                "outcome": data["outcome"],
                "mode": data["mode"],
                "votes": _votes(data),
                "quorum": _quorum(data),
                "reference": data.get("minute_ref") or data.get("authority") or "",
                "recorded": _when(event["recorded_at"], timezone),
                "actor": event["actor"],
                "void": voided.get(data["decision"], ""),
            }
        )
    return rows


def notification_rows(services: Services, instance: str, timezone: str) -> list[dict[str, str]]:
    rows = []
    for event in services.store.read_stream(f"notifications:{instance}"):
        if event.type != "NotificationSent":
            continue
        data = event.data
        rows.append(
            {
                "sent": event.recorded_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M"),
                "kind": data.get("kind", ""),
                "rule": data.get("rule", ""),
                "to": data.get("recipient", ""),
                "about": data.get("subject", ""),
                "message_id": data.get("message_id", ""),
            }
        )
    return rows


def phase_rows(services: Services, instance: str) -> list[dict[str, str]]:
    """Each phase: its planned window, when the record shows it open, and its gates' outcome."""
    state = services.load(instance)
    definition = state.definition
    timeline = gather(definition, services.history(instance), state.started_on)
    rows = []
    for phase in definition.phases:
        spans = [s for s in timeline.spans if s.phase == phase.id]
        actual = "; ".join(f"{s.start} – {s.end or 'open'}" for s in spans) or "—"
        planned = f"{phase.start} – {phase.end}" if phase.start and phase.end else "—"
        gates = ", ".join(f"{g.id} {state.gate_status(g)}" for g in phase.gates) or "—"
        rows.append({"phase": phase.id, "planned": planned, "actual": actual, "gates": gates})
    return rows


def render_report(services: Services, inputs: ReportInputs, out: Path) -> Path:
    """Write ``report.html`` into ``out`` and return its path."""
    state = services.load(inputs.instance)
    definition = state.definition
    history = services.history(inputs.instance)
    status = services.status(inputs.instance)
    notifications = notification_rows(services, inputs.instance, definition.timezone)
    voided = {d.id: d.void for d in state.decisions if d.void}
    timeline = gather(definition, history, state.started_on)
    blackouts = [(b.start, b.end, f"{b.id}: {b.reason}") for b in definition.blackouts]
    escalations = sum(1 for n in notifications if n["kind"] in ("escalation", "gate_overdue", "at_risk"))
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html.j2"]), keep_trailing_newline=True
    )
    page = environment.get_template("report.html.j2").render(
        title=definition.title,
        organisation=definition.organisation,
        definition_id=definition.id,
        definition_version=definition.version,
        start=inputs.start.isoformat(),
        end=inputs.end.isoformat(),
        final_phase=status["phase"],
        paused=status["paused"],
        decisions=decision_rows(history, definition.timezone, voided),
        refused=inputs.refused,
        emails_total=len(notifications),
        escalations=escalations,
        verified=inputs.verified,
        event_count=len(history),
        deadline=status["deadline"],
        deadline_label=status["deadline_label"],
        timeline=timeline_svg(definition, timeline, deadline=state.deadline, end=inputs.end, blackouts=blackouts),
        diagram=diagram_svg(definition),
        notifications=notifications,
        departures=inputs.departures,
        audit_summary=inputs.audit_summary,
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
