"""The report's pictures as inline SVG: the timeline of phases and the state diagram.

Both are computed from the event log and the definition (never from the scenario),
so the report shows what the record says happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from governance.definition import PAUSED, SUPERSEDED, Definition

WIDTH = 1100
LABEL = 190
ROW = 34
TOP = 40
OUTCOME_COLOURS = {
    "approved": "#1b7f3b",
    "approved-with-conditions": "#5aa02c",
    "endorsed": "#1b7f3b",
    "endorsed-with-comments": "#5aa02c",
    "not-endorsed": "#c77700",
    "rejected": "#b3261e",
    "deferred": "#6b6b6b",
    "noted": "#6b6b6b",
    "returned": "#6b6b6b",
}


@dataclass
class PhaseSpan:
    phase: str
    start: date
    end: date | None


@dataclass
class Timeline:
    """What the timeline draws, gathered from the history."""

    spans: list[PhaseSpan] = field(default_factory=list)
    pauses: list[tuple[date, date | None]] = field(default_factory=list)
    gates: list[tuple[date, str, str]] = field(default_factory=list)  # (day, gate, phase)
    decisions: list[tuple[date, str, str, str]] = field(default_factory=list)  # (day, body, gate, outcome)


def gather(definition: Definition, history: list[dict[str, Any]], started: date) -> Timeline:
    """Phase spans, pauses, passed gates and decisions from ``history --json`` events."""
    zone = ZoneInfo(definition.timezone)
    timeline = Timeline()
    current = PhaseSpan(definition.initial_phase, started, None)
    timeline.spans.append(current)
    for event in history:
        data, kind = event["data"], event["type"]
        day = datetime.fromisoformat(event["occurred_at"]).astimezone(zone).date()
        if kind == "PhaseEntered":
            current.end = day
            current = PhaseSpan(data["to"], day, None)
            timeline.spans.append(current)
        elif kind == "InstancePaused":
            timeline.pauses.append((day, None))
        elif kind == "InstanceResumed" and timeline.pauses:
            timeline.pauses[-1] = (timeline.pauses[-1][0], day)
        elif kind == "GatePassed":
            timeline.gates.append((date.fromisoformat(data["date"]), data["gate"], definition.gate_phase[data["gate"]]))
        elif kind == "DecisionRecorded":
            timeline.decisions.append((date.fromisoformat(data["date"]), data["body"], data["gate"], data["outcome"]))
    return timeline


class _Scale:
    def __init__(self, first: date, last: date) -> None:
        self.first, self.days = first, max(1, (last - first).days)

    def x(self, day: date) -> float:
        return LABEL + (WIDTH - LABEL - 50) * (day - self.first).days / self.days


def _months(first: date, last: date) -> list[date]:
    months, day = [], date(first.year, first.month, 1)
    while day <= last:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def timeline_svg(
    definition: Definition, timeline: Timeline, *, deadline: date, end: date, blackouts: list[tuple[date, date, str]]
) -> Markup:
    """Phases planned (light) against actual (dark), gates, decisions, blackouts and the deadline."""
    first = min([definition.starts, *(s.start for s in timeline.spans)])
    last = max(deadline, end) + timedelta(days=10)
    scale = _Scale(first, last)
    height = TOP + ROW * len(definition.phases) + 50
    parts = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="Timeline of the phases, planned against actual">'
    ]
    for month in _months(first, last):
        x = scale.x(month)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 14}" x2="{x:.1f}" y2="{height - 40}" class="grid"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{TOP - 18}" class="month">{month.strftime("%b %Y")}</text>')
    for start, stop, label in blackouts:
        x1, x2 = scale.x(start), scale.x(stop + timedelta(days=1))
        parts.append(
            f'<rect class="blackout" x="{x1:.1f}" y="{TOP - 10}" width="{x2 - x1:.1f}" height="{height - TOP - 30}">'
            f"<title>{escape(label)}</title></rect>"
        )
    for row, phase in enumerate(definition.phases):
        y = TOP + row * ROW
        parts.append(f'<g class="phase" data-phase="{escape(phase.id)}">')
        name = phase.name if len(phase.name) <= 26 else phase.name[:25].rstrip() + "…"
        parts.append(f'<text x="8" y="{y + 20}" class="label">{escape(name)}<title>{escape(phase.name)}</title></text>')
        if phase.start and phase.end:
            x1, x2 = scale.x(phase.start), scale.x(phase.end + timedelta(days=1))
            parts.append(
                f'<rect class="planned" x="{x1:.1f}" y="{y + 4}" width="{x2 - x1:.1f}" height="{ROW - 8}" rx="3">'
                f"<title>{escape(phase.name)} planned {phase.start} – {phase.end}</title></rect>"
            )
        for span in (s for s in timeline.spans if s.phase == phase.id):
            stop = span.end or end
            x1, x2 = scale.x(span.start), scale.x(max(stop, span.start + timedelta(days=1)))
            parts.append(
                f'<rect class="actual" x="{x1:.1f}" y="{y + 10}" width="{max(x2 - x1, 2):.1f}" height="{ROW - 20}" '
                f'rx="2"><title>{escape(phase.name)} actual {span.start} – {span.end or "ongoing"}</title></rect>'
            )
        for day, gate, gate_phase in timeline.gates:
            if gate_phase == phase.id:
                x = scale.x(day)
                parts.append(
                    f'<path class="gate" d="M{x:.1f} {y + 3} l6 6 l-6 6 l-6 -6 z"><title>gate {escape(gate)} '
                    f"passed {day}</title></path>"
                )
        for day, body, gate, outcome in timeline.decisions:
            if definition.gate_phase.get(gate) == phase.id:
                x = scale.x(day)
                colour = OUTCOME_COLOURS.get(outcome, "#444")
                parts.append(
                    f'<circle class="decision" cx="{x:.1f}" cy="{y + ROW - 5}" r="3.5" fill="{colour}">'
                    f"<title>{day}: {escape(body)} {escape(outcome)} at {escape(gate)}</title></circle>"
                )
        parts.append("</g>")
    for paused, resumed in timeline.pauses:
        x1, x2 = scale.x(paused), scale.x(resumed or end)
        parts.append(
            f'<rect class="pause" x="{x1:.1f}" y="{TOP - 10}" width="{max(x2 - x1, 2):.1f}" '
            f'height="{height - TOP - 30}">'
            f"<title>paused {paused} – {resumed or 'end of run'}</title></rect>"
        )
    x = scale.x(deadline)
    parts.append(f'<line class="deadline" x1="{x:.1f}" y1="{TOP - 14}" x2="{x:.1f}" y2="{height - 30}"/>')
    parts.append(
        f'<text class="deadline-label" x="{x - 4:.1f}" y="{height - 16}" text-anchor="end">deadline {deadline}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def diagram_svg(definition: Definition) -> Markup:
    """The state machine: phases left to right, gates under them, rejection routes looping back."""
    phases = definition.phases
    box_w, gap, y = 128, 22, 60
    width = len(phases) * (box_w + gap) + 40
    most_gates = max((len(p.gates) for p in phases), default=0)
    height = y + 84 + most_gates * 14
    parts = [
        f'<svg id="diagram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="State diagram of the phases and gates">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#333"/></marker></defs>',
    ]
    centre: dict[str, float] = {}
    for index, phase in enumerate(phases):
        x = 20 + index * (box_w + gap)
        centre[phase.id] = x + box_w / 2
        parts.append(f'<rect class="state" x="{x}" y="{y}" width="{box_w}" height="42" rx="8"/>')
        parts.append(
            f'<text x="{x + box_w / 2}" y="{y + 26}" text-anchor="middle" class="state-label">{escape(phase.id)}</text>'
        )
        for row, gate in enumerate(phase.gates):
            parts.append(
                f'<text x="{x + box_w / 2}" y="{y + 62 + row * 14}" text-anchor="middle" class="gate-label">'
                f"◆ {escape(gate.id)}</text>"
            )
        if index + 1 < len(phases):
            parts.append(
                f'<line x1="{x + box_w}" y1="{y + 21}" x2="{x + box_w + gap - 2}" y2="{y + 21}" class="edge" '
                'marker-end="url(#arrow)"/>'
            )
    for phase in phases:
        for gate in phase.gates:
            if gate.on_reject is None:
                continue
            x1, x2 = centre[phase.id], centre[gate.on_reject.to_phase]
            lift = 18 + abs(x1 - x2) / 12
            parts.append(
                f'<path class="reject" d="M{x1:.0f} {y} C{x1:.0f} {y - lift:.0f}, '
                f'{x2:.0f} {y - lift:.0f}, {x2:.0f} {y}" '
                f'marker-end="url(#arrow)"><title>rejected at {escape(gate.id)}: back to '
                f"{escape(gate.on_reject.to_phase)}</title></path>"
            )
    parts.append(
        f'<text x="20" y="{height - 8}" class="note">Any active phase can move to {PAUSED} and back, or to '
        f"{SUPERSEDED} (terminal). Dashed arcs: rejection routes.</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))
