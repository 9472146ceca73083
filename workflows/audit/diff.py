"""``govflow audit diff``: what changed in an instance between two moments, and who did it.

Both ends are as-of replays (``replay.replay_as_of``) with the same meaning of
"as of"; the answer lists the events in effect at the end but not at the start,
the gates whose status moved, the phase before and after, and the events per actor.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from governance.definition import Definition
from governance.status import status_of
from workflows.audit.records import StoredEvent
from workflows.audit.replay import Replayed, replay_as_of


def event_view(row: StoredEvent) -> dict[str, Any]:
    """One event as the audit commands print it."""
    return {
        "version": row.version,
        "position": row.position,
        "type": row.type,
        "occurred_at": datetime.fromisoformat(row.occurred_at).isoformat(),
        "recorded_at": datetime.fromisoformat(row.recorded_at).isoformat(),
        "actor": row.actor,
        "data": json.loads(row.data),
        "hash": row.hash,
    }


def local_date(moment: datetime, replayed: Replayed) -> date:
    """The calendar day of ``moment`` in the instance's timezone (its status is as of that day)."""
    zone = replayed.instance.definition.timezone if replayed.instance else "UTC"
    return moment.astimezone(ZoneInfo(zone)).date()


def state_view(replayed: Replayed) -> dict[str, Any] | None:
    """``status --json`` as of the replay's moment, or None before the instance started."""
    if replayed.instance is None:
        return None
    return status_of(replayed.instance, local_date(replayed.as_of, replayed))


def diff(
    stream_id: str,
    rows: Callable[[], Iterable[StoredEvent]],
    definition_for: Callable[[str], Definition],
    start: datetime,
    end: datetime,
    by: str,
) -> dict[str, Any]:
    """The changes between the replays as of ``start`` and as of ``end``."""
    before = replay_as_of(stream_id, rows(), definition_for, start, by)
    after = replay_as_of(stream_id, rows(), definition_for, end, by)
    known = {row.version for row in before.applied}
    new = [row for row in after.applied if row.version not in known]
    old_view, new_view = state_view(before), state_view(after)
    old_gates = {g["id"]: g for g in old_view["gates"]} if old_view else {}
    gates = []
    for gate in new_view["gates"] if new_view else []:
        was = old_gates.get(gate["id"])
        was_status = was["status"] if was else None
        outcomes = {b["id"]: b["outcome"] for b in gate["boards"]}
        old_outcomes = {b["id"]: b["outcome"] for b in was["boards"]} if was else {}
        decided = {b: o for b, o in outcomes.items() if o != old_outcomes.get(b)}
        if was_status != gate["status"] or decided:
            gates.append({"gate": gate["id"], "from": was_status, "to": gate["status"], "decisions": decided})
    actors = Counter(row.actor for row in new)
    return {
        "instance": stream_id,
        "by": by,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "phase": {
            "from": old_view["phase"] if old_view else None,
            "to": new_view["phase"] if new_view else None,
        },
        "gates": gates,
        "events": [event_view(row) for row in new],
        "actors": [{"actor": actor, "events": count} for actor, count in actors.most_common()],
        "held_back": [{"version": row.version, "type": row.type, "why": why} for row, why in after.held_back],
    }
