"""As-of replay: by what had happened (occurred_at) and by what the record showed (recorded_at)."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from governance.chain import canonical_json, hashed_fields
from governance.errors import CorruptHistory
from governance.events import NewEvent
from governance.status import status_of
from tests.audit_stories import at, normal, paused_and_superseded, play
from workflows.audit.log import StoreAuditLog
from workflows.audit.records import StoredEvent, event_bytes
from workflows.audit.replay import BY_OCCURRED, BY_RECORDED, replay_as_of, replay_log
from workflows.clock import FixedClock
from workflows.services import Services
from workflows.store.base import AppendRequest
from workflows.store.memory import InMemoryEventStore

ID = "selep-lis"


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Services, StoreAuditLog]:
    clock = FixedClock(datetime(2019, 6, 3, tzinfo=UTC))
    services = Services(store=InMemoryEventStore(), clock=clock)
    play(services, clock, ID, normal(tmp_path))
    return services, StoreAuditLog(services.store)


def replay(recorded: tuple[Services, StoreAuditLog], when: str, by: str = BY_OCCURRED):  # type: ignore[no-untyped-def]
    services, log = recorded
    return replay_as_of(ID, log.iter_stream(ID), services.definition, at(when), by)


def test_a_decision_entered_after_its_meeting_counts_from_the_meeting_by_occurred_time(
    recorded: tuple[Services, StoreAuditLog],
) -> None:
    # KMEP endorsed the evidence on 24 September; the secretary entered it on the 27th.
    occurred = replay(recorded, "2019-09-25T12:00")
    shown = replay(recorded, "2019-09-25T12:00", BY_RECORDED)

    assert occurred.instance is not None and shown.instance is not None
    assert occurred.instance.phase == "drafting" and "evidence-agreed" in occurred.instance.passed
    assert shown.instance.phase == "evidence" and "evidence-agreed" not in shown.instance.passed
    assert len(occurred.applied) > len(shown.applied)


def test_replay_at_the_end_equals_the_live_state(recorded: tuple[Services, StoreAuditLog]) -> None:
    services, _ = recorded
    for by in (BY_OCCURRED, BY_RECORDED):
        result = replay(recorded, "2030-01-01T00:00", by)
        assert result.instance == services.load(ID)
        assert result.later == 0 and not result.held_back


def test_the_state_on_4_october_2019(recorded: tuple[Services, StoreAuditLog]) -> None:
    result = replay(recorded, "2019-10-04T23:59")
    assert result.instance is not None
    status = status_of(result.instance, at("2019-10-04T12:00").date())
    gates = {g["id"]: g["status"] for g in status["gates"]}
    assert status["phase"] == "drafting"
    # Agreed at the meeting that day, but entered on the 7th: it had happened by the end of the 4th.
    assert gates["structure-agreed"] == "passed"
    assert replay(recorded, "2019-10-04T23:59", BY_RECORDED).instance.passed.keys() >= {"evidence-agreed"}  # type: ignore[union-attr]
    assert "structure-agreed" not in replay(recorded, "2019-10-04T23:59", BY_RECORDED).instance.passed  # type: ignore[union-attr]


def test_before_the_start_there_is_no_instance(recorded: tuple[Services, StoreAuditLog]) -> None:
    result = replay(recorded, "2019-06-01T00:00")
    assert result.instance is None and not result.applied


def _append(services: Services, events: list[NewEvent], when: str) -> None:
    instance = services.load(ID)
    services.store.append(
        AppendRequest(ID, instance.version, "clerk", instance.definition.content_hash, at(when), instance.phase),
        events,
    )


def test_a_fact_dated_before_what_it_depends_on_is_held_back_not_forced(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2019, 6, 3, tzinfo=UTC))
    services = Services(store=InMemoryEventStore(), clock=clock)
    play(services, clock, ID, paused_and_superseded(tmp_path)[:3])
    # A meeting scheduled in October is cancelled "as of" September (a back-dated entry).
    _append(
        services,
        [
            NewEvent(
                "MeetingScheduled",
                {"meeting": "m1", "body": "kmep", "date": "2019-10-20", "source": "secretary"},
                at("2019-10-01T09:00"),
            )
        ],
        "2019-10-01T09:00",
    )
    _append(
        services,
        [NewEvent("MeetingCancelled", {"meeting": "m1", "date": "2019-10-20", "reason": "x"}, at("2019-09-01T09:00"))],
        "2019-10-02T09:00",
    )
    log = StoreAuditLog(services.store)

    result = replay_as_of(ID, log.iter_stream(ID), services.definition, at("2019-09-15T00:00"), BY_OCCURRED)

    assert [(row.type, why.startswith("MeetingCancelled")) for row, why in result.held_back] == [
        ("MeetingCancelled", True)
    ]
    assert result.instance is not None and "m1" not in result.instance.meetings


def test_replaying_the_whole_log_folds_every_instance(recorded: tuple[Services, StoreAuditLog]) -> None:
    services, log = recorded
    assert replay_log(log.iter_fold_rows(), services.definition) == {ID: services.load(ID)}


@pytest.mark.parametrize("collecting", [True, False])
def test_replaying_the_whole_log_leaves_the_garbage_collector_as_it_found_it(
    recorded: tuple[Services, StoreAuditLog], collecting: bool
) -> None:
    services, log = recorded
    broken = [*log.iter_fold_rows()][:3]
    broken[2] = (*broken[2][:1], 9, *broken[2][2:])  # a version out of sequence
    was = gc.isenabled()
    try:
        gc.enable() if collecting else gc.disable()
        replay_log(log.iter_fold_rows(), services.definition)
        assert gc.isenabled() is collecting
        with pytest.raises(CorruptHistory):
            replay_log(broken, services.definition)
        assert gc.isenabled() is collecting
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("actor", ["plain", 'quote " and \\ backslash', "newline\nand tab\t", "non-ascii é ✓ \u2028"])
def test_event_bytes_are_the_canonical_json_the_hash_covers(actor: str) -> None:
    data = {"b": [1, "ü", None], "a": {"z": True}}
    row = StoredEvent(
        "s-1", 3, 9, "T", 1, canonical_json(data), canonical_json({"m": "x"}), "2019-01-01T00:00:00.000000Z",
        "2019-01-02T00:00:00.000000Z", actor, "d" * 64, "0" * 64, "",
    )  # fmt: skip
    fields = hashed_fields(
        stream_id="s-1", version=3, position=9, type="T", schema_version=1, data=data, meta={"m": "x"},
        occurred_at=row.occurred_at, recorded_at=row.recorded_at, actor=actor, definition_hash="d" * 64,
        prev_hash="0" * 64,
    )  # fmt: skip
    assert event_bytes(row) == canonical_json(fields).encode("utf-8")
    assert json.loads(event_bytes(row)) == fields
