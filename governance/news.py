"""News notices: the instance's secretary hears of every decision recorded and gate passed.

Unlike the reminder ladder these follow events, not dates: each ``DecisionRecorded`` and
``GatePassed`` event of the stream gives one notice to the programme-wide ``secretary``
contact, due as soon as it was recorded but never before 09:00 on a working day. They are
sent whatever the instance's state (a gate passed just before a pause is still news), and
stay worth sending for :data:`NEWS_GRACE_WORKING_DAYS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time
from typing import Final
from zoneinfo import ZoneInfo

from governance import events as ev
from governance.events import RecordedEvent
from governance.ladder import Draft
from governance.notice_context import decision_context, gate_passed_context
from governance.state import Instance

__all__ = ["DECISION_RULE", "GATE_PASSED_RULE", "NEWS_GRACE_WORKING_DAYS", "news_drafts"]

DECISION_RULE: Final = "decision-recorded"
GATE_PASSED_RULE: Final = "gate-passed"
NEWS_GRACE_WORKING_DAYS: Final = 10
_TO: Final = ("secretary",)


def news_drafts(instance: Instance, events: Sequence[RecordedEvent], send_at: time) -> list[Draft]:
    """One draft per decision recorded and per gate passed in ``events`` (the instance's stream)."""
    definition, calendar = instance.definition, instance.calendar
    zone = ZoneInfo(definition.timezone)
    drafts = []
    for event in events:
        if event.type not in (ev.DECISION_RECORDED, ev.GATE_PASSED) or event.stream_id != instance.id:
            continue
        recorded_on = event.recorded_at.astimezone(zone).date()
        send_on = calendar.next_working_day(recorded_on)
        data = event.data
        if event.type == ev.DECISION_RECORDED:
            rule, kind, subject = DECISION_RULE, "decision_recorded", str(data["decision"])
            context = decision_context(instance, data, event.actor)
            what = f"'{data['body']}' decided '{data['outcome']}' at gate '{data['gate']}' on {data['date']}"
        else:
            rule, kind, subject = GATE_PASSED_RULE, "gate_passed", f"{data['gate']}@{event.version}"
            context = gate_passed_context(instance, data)
            what = f"gate '{data['gate']}' passed on {data['date']}"
        drafts.append(
            Draft(
                rule=rule,
                kind=kind,
                family="news",
                subject=subject,
                target=date.fromisoformat(data["date"]),
                send_on=send_on,
                roles=_TO,
                concerns=(),
                context=context,
                reason=f"{what} (recorded {recorded_on.isoformat()} by {event.actor}, event v{event.version})",
                stale_from=calendar.shift(send_on, NEWS_GRACE_WORKING_DAYS),
                stale_reason=f"news more than {NEWS_GRACE_WORKING_DAYS} working days old",
                not_before=event.recorded_at,
            )
        )
    return drafts
