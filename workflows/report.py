"""Plain-text views of what the CLI prints: status, history, lists, command outcomes.

The JSON forms are the service's dictionaries as they are; these functions only
lay them out for a person reading a terminal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

STATUS_MARK = {"passed": "✔", "conditional": "◐", "open": "○", "waiting": "·"}


def _when(text: str, timezone: str) -> str:
    moment = datetime.fromisoformat(text).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def status_text(status: dict[str, Any]) -> str:
    lines = [
        f"{status['instance']} — {status['title']}",
        f"  definition   {status['definition']} {status['definition_version']}",
        f"  phase        {status['phase']}"
        + (f" (paused in {status['working_phase']}: {status['paused']})" if status["paused"] else "")
        + (f" (superseded: {status['superseded']})" if status["superseded"] else ""),
        f"  deadline     {status['deadline']} {status['deadline_label']}: {status['days_to_deadline']} days from "
        f"{status['as_of']}",
    ]
    risk = status.get("at_risk")
    if risk and risk["active"]:
        # No gate passes while paused: the forecast places the gates as if it resumed today.
        resumed = "if resumed today, " if status["paused"] else ""
        lines.append(f"  forecast     {resumed}{_forecast_words(risk)}")
    document = status["document"]
    if document:
        lines.append(f"  document     v{document['version']} {document['name']} sha256:{document['sha256'][:12]}…")
    lines.append("  gates")
    for gate in status["gates"]:
        due = f" due {gate['due']}" + (" OVERDUE" if gate["overdue"] else "") if gate["due"] else ""
        passed = f" on {gate['passed_on']}" if gate["passed_on"] else ""
        lines.append(f"    {STATUS_MARK[gate['status']]} {gate['id']:<24} {gate['status']}{passed}{due}")
        if gate["status"] in ("open", "conditional"):
            for board in gate["boards"]:
                state = board["outcome"] or "to decide"
                again = " (must decide again: document changed)" if board["must_decide_again"] else ""
                lines.append(
                    f"        {board['id']:<22} {state}{again}  [{board['members']} members, quorum {board['quorum']}]"
                )
            for condition in gate["conditions"]:
                if condition["discharged_on"] is None:
                    due_c = f" by {condition['due']}" if condition["due"] else ""
                    lines.append(f"        condition {condition['id']}{due_c}: {condition['text']}")
        if gate["dissent"]:
            lines.append(f"        dissent: {', '.join(gate['dissent'])} (not endorsed)")
    current = [t for t in status["tasks"] if t["current"]]
    if current:
        lines.append("  tasks of this phase")
        for task in current:
            mark = "✔" if task["done"] else "○"
            lines.append(f"    {mark} {task['id']}" + ("" if task["required"] else " (optional)"))
    if status["next_deadlines"]:
        lines.append("  next deadlines")
        for item in status["next_deadlines"]:
            flag = " OVERDUE" if item["overdue"] else ""
            lines.append(f"    {item['date']}  {item['kind']:<9} {item['what']}{flag}")
    return "\n".join(lines)


def _forecast_words(risk: dict[str, Any]) -> str:
    """The at-risk forecast in one line: the gate that does not fit, or when the last gate can pass."""
    if risk["at_risk"]:
        return f"AT RISK: gate '{risk['gate']}' cannot pass before {risk['deadline']}: {risk['reason']}"
    days = [g["forecast"] for g in risk["gates"] if g["forecast"]]
    if not days:
        return "on track: no gate left to pass"
    return f"on track: the last gate can pass by {max(days)} on the meetings scheduled"


def _summary(event: dict[str, Any]) -> str:
    data = event["data"]
    kind = event["type"]
    if kind == "DecisionRecorded":
        return f"{data['body']} {data['outcome']} at {data['gate']} ({data['mode']}, {data['date']})"
    if kind == "PhaseEntered":
        return f"{data['from']} → {data['to']} ({data['cause']})"
    if kind == "GatePassed":
        return f"gate {data['gate']} passed"
    if kind == "MeetingScheduled":
        return f"{data['meeting']} on {data['date']}" + (" (synthetic)" if data.get("synthetic") else "")
    if kind == "DocumentVersionAdded":
        return f"v{data['number']} {data['name']} sha256:{data['sha256'][:12]}…"
    if kind == "InstanceStarted":
        return f"{data['definition']} {data['definition_version']}"
    for key in ("task", "condition", "meeting", "reason", "deadline"):
        if key in data:
            return f"{key} {data[key]}"
    return ""


def history_text(events: list[dict[str, Any]], timezone: str) -> str:
    lines = [f"{'ver':>4} {'pos':>6}  {'occurred':<20} {'recorded':<20} {'type':<22} {'actor':<28} what"]
    for event in events:
        simulated = "*" if event["meta"].get("clock") == "simulated" else " "
        lines.append(
            f"{event['version']:>4} {event['position']:>6}  {_when(event['occurred_at'], timezone):<20} "
            f"{_when(event['recorded_at'], timezone):<19}{simulated} {event['type']:<22} {event['actor'][:28]:<28} "
            f"{_summary(event)}"
        )
    if any(event["meta"].get("clock") == "simulated" for event in events):
        lines.append("* recorded under a simulated clock (--now)")
    return "\n".join(lines)


def list_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no instances (start one with: govflow start DEFINITION --instance ID)"
    lines = [f"{'instance':<24} {'definition':<24} {'phase':<14} {'events':>6}  updated"]
    for row in rows:
        lines.append(
            f"{row['instance']:<24} {row['definition']:<24} {row['phase']:<14} {row['version']:>6}  {row['updated_at']}"
        )
    return "\n".join(lines)


def outcome_text(outcome: dict[str, Any]) -> str:
    prefix = "already recorded (same --key): " if outcome["replayed"] else "recorded: "
    parts = [f"{e['type']} v{e['version']}" + (f" [{_summary(e)}]" if _summary(e) else "") for e in outcome["events"]]
    return f"{outcome['instance']}: {prefix}" + "; ".join(parts) + f" — phase {outcome['phase']}"
