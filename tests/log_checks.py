"""What an auditor checks of a whole log after a load or fault test, as assertions.

Positions run 1..N in commit order; each stream's versions run 1..n; each event's hash
covers its fields and chains to the previous event of its stream; and each command
key's events are one unbroken run in one stream (a command is recorded once or not at all).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine, text

from governance.chain import GENESIS_HASH, event_hash, format_timestamp, hashed_fields
from governance.events import RecordedEvent


def recomputed_hash(recorded: RecordedEvent) -> str:
    """The hash an event's own fields (and its stated previous hash) give, computed afresh."""
    return event_hash(
        hashed_fields(
            stream_id=recorded.stream_id,
            version=recorded.version,
            position=recorded.position,
            type=recorded.type,
            schema_version=recorded.schema_version,
            data=recorded.data,
            meta=recorded.meta,
            occurred_at=format_timestamp(recorded.occurred_at),
            recorded_at=format_timestamp(recorded.recorded_at),
            actor=recorded.actor,
            definition_hash=recorded.definition_hash,
            prev_hash=recorded.prev_hash,
        )
    )


def check_log(events: list[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    """Assert gapless positions and versions and an intact hash chain; return the events by stream."""
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    streams: dict[str, list[RecordedEvent]] = defaultdict(list)
    for recorded in events:
        streams[recorded.stream_id].append(recorded)
    for stream_id, stream in streams.items():
        assert [e.version for e in stream] == list(range(1, len(stream) + 1)), stream_id
        previous = GENESIS_HASH
        for recorded in stream:
            assert recorded.prev_hash == previous, (stream_id, recorded.version)
            assert recorded.hash == recomputed_hash(recorded), (stream_id, recorded.version)
            previous = recorded.hash
    return dict(streams)


def commands_in(streams: dict[str, list[RecordedEvent]]) -> dict[str, tuple[str, int, int]]:
    """Each command key in the log: (stream, first version, number of events).

    Asserts that a key's events are one unbroken run in one stream: a command that
    appears twice, or in pieces, fails here.
    """
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for stream in streams.values():
        for recorded in stream:
            found[recorded.meta.get("command_key", "")].append((recorded.stream_id, recorded.version))
    found.pop("", None)
    commands: dict[str, tuple[str, int, int]] = {}
    for key, places in found.items():
        stream_id, first = places[0]
        assert places == [(stream_id, first + n) for n in range(len(places))], key
        commands[key] = (stream_id, first, len(places))
    return commands


def check_store(engine: Engine) -> tuple[dict[str, list[RecordedEvent]], dict[str, tuple[str, int, int]]]:
    """Check a whole database's log (see :func:`check_log`); return its streams and commands by key.

    Also asserts that ``log_head`` is the last position: a transaction cut off after
    allocating positions must have given them back.
    """
    from workflows.store.sql import SqlEventStore

    streams = check_log(list(SqlEventStore(engine).iter_all()))
    with engine.connect() as connection:
        head = connection.execute(text("SELECT position FROM log_head")).scalar_one()
    assert head == sum(len(stream) for stream in streams.values())
    return streams, commands_in(streams)
