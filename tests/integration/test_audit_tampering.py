"""``audit verify`` names each attack on the log, done with raw SQL by someone who dropped our triggers.

Each test records two interleaved LIS histories, signs a checkpoint, records a few
more events, tampers with the tables directly, and checks that verification finds
the attack and names it by stream, version and position. Runs on SQLite and on
PostgreSQL (``GOVFLOW_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from governance.chain import canonical_json
from governance.events import NewEvent
from tests.audit_stories import at, normal, paused_and_superseded
from workflows.audit import ledger, signing
from workflows.audit.integrity import Finding
from workflows.audit.log import SqlAuditLog
from workflows.audit.records import CHECKPOINT_STREAM, SPLICE, StoredEvent, event_bytes
from workflows.audit.replay import replay_log
from workflows.audit.verify import VerifyReport, read_checkpoints, verify_instance, verify_log
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.services import Services
from workflows.store.base import AppendRequest
from workflows.store.sql import SqlEventStore

LIS, KENT = "selep-lis", "kent-lis"


@dataclass
class World:
    """Two instances, a signing key, and the tables to tamper with."""

    engine: Engine
    services: Services
    clock: FixedClock
    log: SqlAuditLog
    signer: signing.Signer

    def checkpoint(self, when: str) -> ledger.Checkpoint:
        self.clock.set(at(when))
        return ledger.create_checkpoint(
            self.services.store,
            self.log,
            public_key=self.signer.public_key,
            sign=self.signer.sign,
            now=self.clock.now(),
            actor="auditor",
            meta={},
        )

    def verify(self, against: list[Any] | None = None) -> VerifyReport:
        return verify_log(self.log, self.signer.public_key, signing.verify, against or [])

    def row(self, stream: str, version: int) -> StoredEvent:
        return next(r for r in self.log.iter_stream(stream) if r.version == version)

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(statement), params)

    def drop_triggers(self) -> None:
        if self.engine.dialect.name == "postgresql":
            self.sql("DROP TRIGGER IF EXISTS events_no_change ON events")
            self.sql("DROP TRIGGER IF EXISTS events_no_truncate ON events")
        else:
            self.sql("DROP TRIGGER IF EXISTS events_no_update")
            self.sql("DROP TRIGGER IF EXISTS events_no_delete")

    def reseal(self, stream: str, from_version: int) -> None:
        """What a careful forger does: recompute the stream's hashes from ``from_version`` on."""
        rows = list(self.log.iter_stream(stream))
        previous = rows[from_version - 2].hash if from_version > 1 else "0" * 64
        for row in rows[from_version - 1 :]:
            digest = hashlib.sha256(event_bytes(row._replace(prev_hash=previous))).hexdigest()
            self.sql(
                "UPDATE events SET prev_hash = :p, hash = :h WHERE stream_id = :s AND version = :v",
                p=previous,
                h=digest,
                s=stream,
                v=row.version,
            )
            previous = digest


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    migrate(database_url)
    engine = make_engine(database_url)
    clock = FixedClock(datetime(2019, 6, 3, tzinfo=UTC))
    services = Services(store=SqlEventStore(engine), clock=clock)
    key = tmp_path / "signing.key"
    signing.ensure_key(key)
    world = World(engine, services, clock, SqlAuditLog(engine, batch_size=7), signing.load_signer(key))
    # Interleave the two histories by time, so that streams share the global positions.
    steps = sorted(
        [(when, LIS, run) for when, run in normal(tmp_path)]
        + [(when, KENT, run) for when, run in paused_and_superseded(tmp_path)[:12]],
        key=lambda step: step[0],
    )
    for when, instance, run in steps:
        clock.set(at(when))
        run(services, instance)
    world.checkpoint("2020-03-24T09:00")
    for when, run in paused_and_superseded(tmp_path)[12:]:
        clock.set(at(when))
        run(services, KENT)
    world.drop_triggers()
    try:
        yield world
    finally:
        engine.dispose()


def kinds(report: VerifyReport) -> set[tuple[str, str | None, int | None, int | None]]:
    return {(f.kind, f.stream, f.version, f.position) for f in report.findings}


def only(report: VerifyReport, kind: str) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind]


def test_an_untouched_log_verifies(world: World) -> None:
    report = world.verify()
    assert report.ok, [str(f) for f in report.findings]
    assert report.checkpoints == 1 and report.covered > 0 and report.streams == 3


def test_the_log_reads_alike_as_events_as_rows_and_for_the_fold(world: World) -> None:
    events = list(world.log.iter_log())
    assert [tuple(e) for e in events] == list(world.log.iter_rows())
    assert [tuple(e) for e in world.log.iter_log(after_position=5, up_to=20)] == list(
        world.log.iter_rows(after_position=5, up_to=20)
    )
    wanted = [(e.stream_id, e.version, e.position, e.type, e.data, e.definition_hash) for e in events]
    assert list(world.log.iter_fold_rows()) == wanted
    folded = replay_log(world.log.iter_fold_rows(), world.services.definition)
    assert folded == {LIS: world.services.load(LIS), KENT: world.services.load(KENT)}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("data", None),  # the payload: the outcome of a decision
        ("occurred_at", "2019-09-20T09:00:00.000000Z"),
        ("recorded_at", "2019-09-24T09:00:00.000000Z"),
        ("actor", "someone else"),
    ],
)
def test_a_changed_payload_timestamp_or_actor_is_named(world: World, column: str, value: str | None) -> None:
    target = next(r for r in world.log.iter_stream(LIS) if r.type == "DecisionRecorded" and '"kmep"' in r.data)
    if value is None:
        value = target.data.replace('"endorsed"', '"not-endorsed"')
    world.sql(
        f"UPDATE events SET {column} = :v WHERE stream_id = :s AND version = :n", v=value, s=LIS, n=target.version
    )

    report = world.verify()

    assert ("altered", LIS, target.version, target.position) in kinds(report)
    assert only(report, "checkpoint"), "the signed tree head no longer matches either"


def test_a_deleted_event_is_named(world: World) -> None:
    target = world.row(LIS, 11)
    world.sql("DELETE FROM events WHERE stream_id = :s AND version = 11", s=LIS)

    report = world.verify()

    deleted = only(report, "deleted")
    assert [(f.stream, f.version, f.position) for f in deleted] == [(LIS, 11, target.position)]
    assert f"position {target.position}" in deleted[0].message


def test_an_inserted_event_is_named_even_with_a_valid_hash(world: World) -> None:
    before = world.row(LIS, 10)
    forged = before._replace(
        version=11,
        position=10_000,
        prev_hash=before.hash,
        data=before.data.replace("team-east-sussex", "ose"),
        actor="forger",
    )
    forged = forged._replace(hash=hashlib.sha256(event_bytes(forged)).hexdigest())
    world.sql("UPDATE events SET version = version + 100000 WHERE stream_id = :s AND version >= 11", s=LIS)
    world.sql("UPDATE events SET version = version - 99999 WHERE stream_id = :s AND version >= 100000", s=LIS)
    columns = ", ".join(StoredEvent._fields)
    world.sql(
        f"INSERT INTO events ({columns}) VALUES ({', '.join(':' + c for c in StoredEvent._fields)})", **forged._asdict()
    )

    report = world.verify()

    assert ("inserted", LIS, 11, 10_000) in kinds(report)
    assert only(report, "renumbered"), "the events after it were shifted"


def test_reordered_events_are_named(world: World) -> None:
    first, second = world.row(LIS, 24), world.row(LIS, 25)
    world.sql("UPDATE events SET version = -1, position = -1 WHERE stream_id = :s AND version = 24", s=LIS)
    world.sql(
        "UPDATE events SET version = 24, position = :p WHERE stream_id = :s AND version = 25", s=LIS, p=first.position
    )
    world.sql(
        "UPDATE events SET version = 25, position = :p WHERE stream_id = :s AND version = -1", s=LIS, p=second.position
    )

    report = world.verify()

    assert {("reordered", LIS, 24, first.position), ("reordered", LIS, 25, second.position)} <= kinds(report)
    assert "sealed as version 25" in next(f.message for f in only(report, "reordered") if f.version == 24)


def test_a_truncated_tail_is_named(world: World) -> None:
    last = max(r.position for r in world.log.iter_stream(KENT))
    world.sql("DELETE FROM events WHERE position > :p", p=last - 2)

    report = world.verify()

    assert ("truncated", None, None, last - 1) in kinds(report)
    assert ("truncated", KENT, world_version(world, KENT) + 1, None) in kinds(report)


def world_version(world: World, stream: str) -> int:
    return max(r.version for r in world.log.iter_stream(stream))


def test_a_truncation_hidden_from_the_database_shows_against_a_checkpoint_held_outside(world: World) -> None:
    held = world.checkpoint("2021-02-02T09:00").payload
    cut = held["tree_size"] - 3
    world.sql("DELETE FROM events WHERE position > :p", p=cut)
    world.sql("UPDATE log_head SET position = :p", p=cut)
    for stream in (LIS, KENT, CHECKPOINT_STREAM):
        world.sql(
            "UPDATE streams SET version = (SELECT MAX(version) FROM events WHERE stream_id = :s) WHERE stream_id = :s",
            s=stream,
        )
    assert world.verify().ok, "nothing in the database itself betrays this truncation"

    report = world.verify(against=[held])

    (truncated,) = only(report, "truncated")
    assert f"ends at position {cut}" in truncated.message and truncated.position == cut + 1


def test_a_rewrite_with_recomputed_hashes_is_caught_by_the_signed_checkpoint(world: World) -> None:
    target = next(r for r in world.log.iter_stream(LIS) if r.type == "DecisionRecorded")
    world.sql("UPDATE events SET actor = 'forger' WHERE stream_id = :s AND version = :v", s=LIS, v=target.version)
    world.reseal(LIS, target.version)

    report = world.verify()

    (mismatch,) = only(report, "checkpoint")
    assert "checkpoint 1" in mismatch.message and mismatch.position is not None
    assert not only(report, "altered"), "the chain itself was made consistent"
    assert not verify_instance(world.log, LIS, world.signer.public_key, signing.verify).ok


@pytest.mark.parametrize("signed", [True, False], ids=["inside-the-signed-tree", "after-the-checkpoint"])
def test_a_payload_resealed_as_not_json_is_named_malformed(world: World, signed: bool) -> None:
    # Inside the signed tree, the first pass trusts the checkpoint for the payload's shape;
    # the head no longer matches, so the log is checked again, parsing every payload.
    stream = LIS if signed else KENT
    target = world.row(stream, 5 if signed else world_version(world, stream))
    world.sql(
        "UPDATE events SET data = :d WHERE stream_id = :s AND version = :v",
        d=target.data[:-1],
        s=stream,
        v=target.version,
    )
    world.reseal(stream, target.version)

    report = world.verify()

    assert ("malformed", stream, target.version, target.position) in kinds(report)
    assert bool(only(report, "checkpoint")) is signed


def test_without_a_trusted_key_a_checkpoint_forged_over_a_bad_payload_vouches_for_nothing(
    world: World, tmp_path: Path
) -> None:
    target = world.row(LIS, 5)
    world.sql("UPDATE events SET data = :d WHERE stream_id = :s AND version = 5", d=target.data[:-1], s=LIS)
    world.reseal(LIS, 5)
    # The forger re-signs the checkpoint with a key of their own, over the log as it now is.
    signing.ensure_key(tmp_path / "forger.key")
    forger = signing.load_signer(tmp_path / "forger.key")
    (_, genuine), *_ = read_checkpoints(world.log)
    size = genuine["tree_size"]
    digests = (hashlib.sha256(event_bytes(row)).digest() for row in world.log.iter_log(up_to=size))
    forged = ledger.next_payload(
        None, digests, size, public_key=forger.public_key, sign=forger.sign, now=at("2020-03-24T09:00")
    )
    world.sql(
        "UPDATE events SET data = :d WHERE stream_id = :s AND version = 1",
        d=canonical_json(forged),
        s=CHECKPOINT_STREAM,
    )
    world.reseal(CHECKPOINT_STREAM, 1)

    report = verify_log(world.log, None, signing.verify)

    assert ("malformed", LIS, 5, target.position) in kinds(report)


def test_a_recut_between_payload_and_meta_is_named_though_the_joined_bytes_are_unchanged(world: World) -> None:
    meta = {"a": 1, "definition_hash": "x", "meta": {"b": 2}}  # holds the text that follows the payload
    request = AppendRequest("recut", 0, "clerk", "", at("2020-05-01T09:00"), "open", meta=meta)
    (event,) = world.services.store.append(request, [NewEvent("Noted", {"k": 1}, at("2020-05-01T09:00"))])
    world.checkpoint("2021-02-02T09:00")
    row = world.row("recut", 1)
    assert row.meta == '{"a":1,"definition_hash":"x","meta":{"b":2}}'
    cut = row._replace(data=f'{row.data}{SPLICE}"","meta":{{"a":1', definition_hash="x", meta='{"b":2}}')
    assert event_bytes(cut) == event_bytes(row), "every hash, link and tree head still holds"
    world.sql(
        "UPDATE events SET data = :d, meta = :m, definition_hash = :h WHERE stream_id = 'recut'",
        d=cut.data,
        m=cut.meta,
        h=cut.definition_hash,
    )

    report = world.verify()

    assert ("malformed", "recut", 1, event.position) in kinds(report)


def test_a_broken_link_between_checkpoints_is_named(world: World) -> None:
    second = world.checkpoint("2021-02-02T09:00")
    row = world.row(CHECKPOINT_STREAM, second.version)
    payload = json.loads(row.data)
    payload["previous"]["root"] = "ab" * 32
    world.sql(
        "UPDATE events SET data = :d WHERE stream_id = :s AND version = :v",
        d=json.dumps(payload, sort_keys=True, separators=(",", ":")),
        s=CHECKPOINT_STREAM,
        v=row.version,
    )
    world.reseal(CHECKPOINT_STREAM, row.version)

    report = world.verify()

    links = only(report, "link")
    assert [(f.stream, f.version, f.position) for f in links] == [(CHECKPOINT_STREAM, 2, row.position)]
    assert any("signature does not verify" in f.message for f in only(report, "checkpoint"))


def test_verify_of_one_instance_names_its_own_damage(world: World) -> None:
    target = world.row(KENT, 3)
    world.sql("UPDATE events SET actor = 'x' WHERE stream_id = :s AND version = 3", s=KENT)

    # The other instance's events are intact and still proven in the signed tree.
    assert verify_instance(world.log, LIS, world.signer.public_key, signing.verify).ok
    report = verify_instance(world.log, KENT, world.signer.public_key, signing.verify)

    assert ("altered", KENT, 3, target.position) in kinds(report)
