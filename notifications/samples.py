"""The contract between the reminder plan and the templates: the variables each kind gets.

``SAMPLE_CONTEXT[kind]`` holds documented sample values for every variable a kind's
templates may use, and nothing else: ``TemplateRenderer.check`` renders each kind with
its sample and reports any variable outside it. Whoever builds a context must supply
every key listed here (``StrictUndefined`` turns a missing one into a ``TemplateError``).

Dates are ``datetime.date`` values or ISO strings (``"2019-10-04"``), so a context can
come back from JSON; templates show them with the ``longdate`` filter. Counts are ints.

Every kind
    recipient_name, recipient_role   who gets it and in what capacity ("Board secretary")
    organisation                     the public body running the workflow ("South East LEP")
    instance_title                   the workflow instance ("Local Industrial Strategy 2019–20")
    reference                        a reference quoted in the footer (e.g. the idempotency key)
    link                             URL of the instance's page, or "" for none
    contact                          who to contact with questions, as a phrase with an address
The HTML template also gets ``subject``, the rendered subject line.

Per kind
    call_for_papers    body_name, meeting_date, paper_deadline, working_days_left (to the paper
                       deadline), item_title (the paper asked for)
    paper_deadline     body_name, meeting_date, paper_deadline, working_days_left (0 = today),
                       item_title
    escalation         escalation_level (1 = lead officer, 2 = chair and chief executive),
                       item_type ("paper" or "minutes"), overdue_item (a phrase: "the paper
                       “…”"), responsible_name, responsible_role, due_date,
                       working_days_overdue, body_name, meeting_date
    publication        body_name, meeting_date, publish_by, outstanding_items (list of str,
                       may be empty)
    quorum_check       body_name, meeting_date, meeting_time ("10:00" or ""), members_count,
                       quorum_required, quorum_rule (the rule in words)
    minutes            body_name, meeting_date, minutes_due, working_days_left, breached (bool:
                       the deadline has passed without publication)
    condition_due      body_name (who set it), decision_date, gate_name, condition_text,
                       condition_owner, due_date, working_days_left (negative = overdue)
    gate_overdue       gate_id, gate_name, due_date, working_days_overdue, escalation_level,
                       waiting_for (list of body names still to decide, may be empty)
    at_risk            gate_id, gate_name (the gate that does not fit), deadline_name,
                       external_deadline, reason, forecast_date (date or None: no meeting
                       can take it), remaining_gates (list of gate names)
    decision_recorded  body_name, decision_date, gate_id, gate_name, outcome (in words:
                       "approved with conditions"), decision_mode ("at a meeting"),
                       recorded_by, conditions (list of {"text", "owner", "due"})
    gate_passed        gate_id, gate_name, passed_on, decided_by (list of body names),
                       next_step (what comes next in words, or "" after the last gate)
"""

from __future__ import annotations

from datetime import date
from typing import Any

_COMMON: dict[str, Any] = {
    "recipient_name": "Alex Morgan",
    "recipient_role": "Lead officer",
    "organisation": "South East LEP",
    "instance_title": "Local Industrial Strategy 2019–20",
    "reference": "selep-lis/call_for_papers/strategic-board/2019-10-04/alex.morgan@selep.example",
    "link": "https://govflow.selep.example/instances/selep-lis",
    "contact": "the SELEP Secretariat (secretariat@selep.example)",
}

_MEETING: dict[str, Any] = {"body_name": "SELEP Strategic Board", "meeting_date": date(2019, 10, 4)}
_PAPER = "Local Industrial Strategy: progress, structure and process for finalisation"
_GATE = {"gate_id": "strategic-board-progress", "gate_name": "Progress and structure agreed"}

SAMPLE_CONTEXT: dict[str, dict[str, Any]] = {
    "call_for_papers": {
        **_COMMON,
        **_MEETING,
        "paper_deadline": date(2019, 9, 20),
        "working_days_left": 5,
        "item_title": _PAPER,
    },
    "paper_deadline": {
        **_COMMON,
        **_MEETING,
        "paper_deadline": date(2019, 9, 20),
        "working_days_left": 0,
        "item_title": _PAPER,
    },
    "escalation": {
        **_COMMON,
        **_MEETING,
        "escalation_level": 1,
        "item_type": "paper",
        "overdue_item": f"the paper “{_PAPER}”",
        "responsible_name": "Sam Patel",
        "responsible_role": "Programme officer",
        "due_date": date(2019, 9, 20),
        "working_days_overdue": 2,
    },
    "publication": {
        **_COMMON,
        **_MEETING,
        "publish_by": date(2019, 9, 26),
        "outstanding_items": [_PAPER],
    },
    "quorum_check": {
        **_COMMON,
        **_MEETING,
        "meeting_time": "10:00",
        "members_count": 27,
        "quorum_required": 9,
        "quorum_rule": "one third of members, with at least as many private-sector as public-sector members present",
    },
    "minutes": {
        **_COMMON,
        **_MEETING,
        "minutes_due": date(2019, 10, 18),
        "working_days_left": 5,
        "breached": False,
    },
    "condition_due": {
        **_COMMON,
        "body_name": "SELEP Strategic Board",
        "decision_date": date(2019, 10, 4),
        "gate_name": _GATE["gate_name"],
        "condition_text": "Add a delivery timetable for the Clean Growth propositions",
        "condition_owner": "Sam Patel, Programme officer",
        "due_date": date(2019, 10, 25),
        "working_days_left": 3,
    },
    "gate_overdue": {
        **_COMMON,
        **_GATE,
        "due_date": date(2019, 10, 4),
        "working_days_overdue": 3,
        "escalation_level": 1,
        "waiting_for": ["SELEP Strategic Board"],
    },
    "at_risk": {
        **_COMMON,
        "gate_id": "government-agreement",
        "gate_name": "Local Industrial Strategy agreed with government",
        "deadline_name": "agreement of the Local Industrial Strategy with government",
        "external_deadline": date(2020, 3, 31),
        "reason": "the final draft needs the Federated Boards and then the Strategic Board, "
        "and the next Strategic Board meeting after the Federated Boards is 20 March 2020",
        "forecast_date": date(2020, 5, 22),
        "remaining_gates": ["Final draft agreed", "Local Industrial Strategy agreed with government"],
    },
    "decision_recorded": {
        **_COMMON,
        **_GATE,
        "body_name": "SELEP Strategic Board",
        "decision_date": date(2019, 10, 4),
        "outcome": "approved with conditions",
        "decision_mode": "at a meeting",
        "recorded_by": "Jo Clarke, Board secretary",
        "conditions": [
            {
                "text": "Add a delivery timetable for the Clean Growth propositions",
                "owner": "Sam Patel, Programme officer",
                "due": date(2019, 10, 25),
            }
        ],
    },
    "gate_passed": {
        **_COMMON,
        **_GATE,
        "passed_on": date(2019, 10, 4),
        "decided_by": ["SELEP Strategic Board"],
        "next_step": "Drafting: the draft is written, consulted on widely and shared with partners",
    },
}
