"""The use cases: one function per command, one transaction each.

Each command loads the instance's events, folds them, asks the domain for the new
events and appends them with the version it read (optimistic concurrency). With a
``key`` a command is idempotent: sent twice, it records once and answers the same.
Queries (status, history, list) read and fold; they never write.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

from governance import commands
from governance.definition import Definition
from governance.errors import CorruptHistory, GovernanceError
from governance.events import NewEvent, RecordedEvent
from governance.quorum import DecisionInput
from governance.state import Instance, fold
from governance.status import status_of
from workflows.bank_holidays import england_and_wales_bank_holidays
from workflows.clock import Clock
from workflows.collector import collector_paused
from workflows.definition_file import find_definition, load_definition, parse_definition
from workflows.errors import (
    BadInput,
    CommandKeyReused,
    ConcurrencyConflict,
    InstanceExists,
    StoreError,
    UnknownInstance,
)
from workflows.store.base import AppendRequest, CommandRecord, EventStore

HOLIDAY_MARGIN_YEARS = 1


@dataclass(slots=True)
class Outcome:
    """What a command did: the events it appended (or had appended, when replayed by key).

    Not frozen: one is made for every command, and a frozen dataclass sets each field
    through ``object.__setattr__``: making one costs nearly three times as much.
    """

    instance: str
    events: list[dict[str, Any]]
    phase: str
    replayed: bool = False
    state: Instance | None = field(default=None, compare=False, repr=False)
    """The instance after the command (None when replayed by key)."""

    def as_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "events": self.events, "phase": self.phase, "replayed": self.replayed}


@dataclass
class Services:
    """The application: commands and queries over one event store."""

    store: EventStore
    clock: Clock
    definition_dirs: list[Path] = field(default_factory=list)
    source: str = "cli"
    cache_size: int = 1024
    _definitions: dict[str, Definition] = field(default_factory=dict, repr=False)
    _instances: OrderedDict[str, Instance] = field(default_factory=OrderedDict, repr=False)

    # -- loading ---------------------------------------------------------------------------

    def definition(self, definition_hash: str) -> Definition:
        """The definition an instance started under, from the store (never today's file)."""
        found = self._definitions.get(definition_hash)
        if found is None:
            text = self.store.load_definition(definition_hash)
            if text is None:
                raise StoreError(f"definition {definition_hash[:12]}… is missing from the database")
            found = parse_definition(text, f"definition {definition_hash[:12]}")
            self._definitions[definition_hash] = found
        return found

    def load(self, instance_id: str) -> Instance:
        """The instance's current state, caught up with the log.

        Folded instances are cached (least recently used first out); each load reads
        only the events appended since, so a command costs one short read, not a
        fold of the whole history. The returned object belongs to the cache: commands
        take it out with :meth:`_checkout` because the domain advances it in place.
        """
        cached = self._instances.pop(instance_id, None)
        if cached is None:
            events = self.store.read_stream(instance_id)
            if not events:
                raise UnknownInstance(instance_id)
            instance = fold(instance_id, events, self.definition)
        else:
            instance = cached
            for event in self.store.read_stream(instance_id, after_version=cached.version):
                if event.version != instance.version + 1:
                    raise CorruptHistory(instance_id, event.version, f"expected version {instance.version + 1}")
                instance.apply(event, event.version)
        self._remember(instance)
        return instance

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """Many instances at once: cached ones caught up, the rest folded from one bulk read.

        Unknown ids are left out of the answer. The instances stay cached (up to
        ``cache_size``), as with :meth:`load`.
        """
        found: dict[str, Instance] = {}
        missing = []
        for ident in instance_ids:
            if ident in self._instances:
                found[ident] = self.load(ident)
            else:
                missing.append(ident)
        with collector_paused():  # see workflows.collector: the fold keeps what it builds
            for ident, payloads in groupby(self.store.iter_payloads(missing), key=attrgetter("stream_id")):
                instance = fold(ident, payloads, self.definition)
                self._remember(instance)
                found[ident] = instance
        return found

    def _remember(self, instance: Instance) -> None:
        self._instances[instance.id] = instance
        while len(self._instances) > self.cache_size:
            self._instances.popitem(last=False)

    def _checkout(self, instance_id: str) -> tuple[Instance, bool]:
        """Take an instance out of the cache for a command; True if it was read just now.

        A cached instance is used without asking the store whether it is current: the
        append's version check finds out, and :meth:`_run` then retries once on a
        fresh read. That keeps the common case (one writer per instance) to a single
        write transaction.
        """
        cached = self._instances.pop(instance_id, None)
        if cached is not None:
            return cached, False
        instance = self.load(instance_id)
        del self._instances[instance_id]
        return instance, True

    def _meta(self, key: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"source": self.source, "clock": "simulated" if self.clock.simulated else "system"}
        if key:
            meta["command_key"] = key
        return meta

    def _append(
        self,
        instance: Instance,
        expected_version: int,
        new_events: list[NewEvent],
        *,
        actor: str,
        key: str | None,
        request: dict[str, Any],
    ) -> Outcome:
        summary = [
            {"version": expected_version + i, "type": e.type, "data": e.data} for i, e in enumerate(new_events, start=1)
        ]
        outcome = Outcome(instance.id, summary, instance.phase, state=instance)
        command = None
        if key:
            command = CommandRecord(key, instance.id, _request_hash(request), outcome.as_json())
        written = self.store.write(
            AppendRequest(
                stream_id=instance.id,
                expected_version=expected_version,
                actor=actor,
                definition_hash=instance.definition.content_hash,
                definition_id=instance.definition.id,
                recorded_at=self.clock.now(),
                phase=instance.phase,
                meta=self._meta(key),
                command=command,
            ),
            new_events,
        )
        if not written and key:
            # Another copy of this keyed command committed first: answer as it did.
            replay = self._replayed(key, request)
            if replay is not None:
                return replay
        return outcome

    def _replayed(self, key: str | None, request: dict[str, Any]) -> Outcome | None:
        """The stored answer of a command already run under ``key``, if any."""
        if not key:
            return None
        record = self.store.find_command(key)
        if record is None:
            return None
        if record.request_hash != _request_hash(request):
            raise CommandKeyReused(key)
        stored = record.response
        return Outcome(stored["instance"], stored["events"], stored["phase"], replayed=True)

    def _run(
        self,
        instance_id: str,
        actor: str,
        key: str | None,
        request: dict[str, Any],
        decide: Callable[[Instance, datetime], list[NewEvent]],
    ) -> Outcome:
        replay = self._replayed(key, request)
        if replay is not None:
            return replay

        def attempt(instance: Instance) -> Outcome:
            version = instance.version  # the domain applies its events to the instance as it decides
            new_events = decide(instance, self.clock.now())
            return self._commit(instance, version, new_events, actor=actor, key=key, request=request)

        instance, fresh = self._checkout(instance_id)
        try:
            try:
                outcome = attempt(instance)
            except ConcurrencyConflict:
                if fresh:
                    raise
                # The cached copy was behind the log: decide again on what the log says now.
                instance, _ = self._checkout(instance_id)
                outcome = attempt(instance)
        except GovernanceError:
            # Another copy of this keyed command may have been recorded since the check above:
            # the rules then refuse it on what the log shows, but it must answer as that copy did.
            replay = self._replayed(key, request)
            if replay is not None:
                return replay
            raise
        if not outcome.replayed:
            self._remember(instance)  # now at the version just appended
        return outcome

    def _commit(
        self,
        instance: Instance,
        expected_version: int,
        new_events: list[NewEvent],
        *,
        actor: str,
        key: str | None,
        request: dict[str, Any],
    ) -> Outcome:
        try:
            return self._append(instance, expected_version, new_events, actor=actor, key=key, request=request)
        except ConcurrencyConflict:
            # The same keyed command sent twice at once: the other copy won; answer as it did.
            replay = self._replayed(key, request)
            if replay is not None:
                return replay
            raise

    # -- commands ---------------------------------------------------------------------------

    def start(
        self, definition_ref: str, instance_id: str, *, actor: str, key: str | None = None, day: date | None = None
    ) -> Outcome:
        """Start an instance of a definition (an id such as ``selep-lis-2019`` or a file path)."""
        _check_instance_id(instance_id)
        request = {"command": "start", "definition": definition_ref, "instance": instance_id, "date": str(day)}
        replay = self._replayed(key, request)
        if replay is not None:
            return replay
        if self.store.stream(instance_id) is not None:
            raise InstanceExists(instance_id)
        path = find_definition(definition_ref, self.definition_dirs)
        definition = load_definition(path)
        self.store.save_definition(
            definition.content_hash, definition.id, definition.version, path.read_bytes().decode("utf-8")
        )
        self._definitions.setdefault(definition.content_hash, definition)
        holidays = england_and_wales_bank_holidays(
            definition.starts.year, definition.deadline.year + HOLIDAY_MARGIN_YEARS
        )
        instance, new_events = commands.start(instance_id, definition, self.clock.now(), holidays, day=day)
        return self._commit(instance, 0, new_events, actor=actor, key=key, request=request)

    def add_document(self, instance_id: str, path: Path, *, actor: str, key: str | None = None) -> Outcome:
        sha256, size = _file_digest(path)
        request = {"command": "document add", "instance": instance_id, "sha256": sha256}
        return self._run(
            instance_id,
            actor,
            key,
            request,
            lambda inst, now: commands.add_document(inst, sha256, path.name, size, now),
        )

    def complete_task(
        self,
        instance_id: str,
        task_id: str,
        *,
        actor: str,
        key: str | None = None,
        day: date | None = None,
        note: str | None = None,
    ) -> Outcome:
        request = {"command": "task complete", "instance": instance_id, "task": task_id, "date": str(day)}
        return self._run(
            instance_id,
            actor,
            key,
            request,
            lambda inst, now: commands.complete_task(inst, task_id, now, day=day, note=note),
        )

    def schedule_meeting(
        self,
        instance_id: str,
        body: str,
        day: date,
        *,
        actor: str,
        key: str | None = None,
        meeting_id: str | None = None,
        note: str = "",
    ) -> Outcome:
        request = {"command": "meeting schedule", "instance": instance_id, "body": body, "date": str(day)}
        return self._run(
            instance_id,
            actor,
            key,
            request,
            lambda inst, now: commands.schedule_meeting(inst, body, day, now, meeting_id=meeting_id, note=note),
        )

    def reschedule_meeting(
        self, instance_id: str, meeting_id: str, day: date, reason: str, *, actor: str, key: str | None = None
    ) -> Outcome:
        request = {"command": "meeting reschedule", "instance": instance_id, "meeting": meeting_id, "date": str(day)}
        return self._run(
            instance_id,
            actor,
            key,
            request,
            lambda inst, now: commands.reschedule_meeting(inst, meeting_id, day, reason, now),
        )

    def cancel_meeting(
        self, instance_id: str, meeting_id: str, reason: str, *, actor: str, key: str | None = None
    ) -> Outcome:
        request = {"command": "meeting cancel", "instance": instance_id, "meeting": meeting_id}
        return self._run(
            instance_id, actor, key, request, lambda inst, now: commands.cancel_meeting(inst, meeting_id, reason, now)
        )

    def decide(self, instance_id: str, decision: DecisionInput, *, actor: str, key: str | None = None) -> Outcome:
        request = {"command": "decide", "instance": instance_id, "decision": decision}
        return self._run(
            instance_id, actor, key, request, lambda inst, now: commands.record_decision(inst, decision, now)
        )

    def discharge_condition(
        self,
        instance_id: str,
        condition_id: str,
        *,
        actor: str,
        key: str | None = None,
        day: date | None = None,
        evidence: str | None = None,
    ) -> Outcome:
        request = {"command": "condition discharge", "instance": instance_id, "condition": condition_id}
        return self._run(
            instance_id,
            actor,
            key,
            request,
            lambda inst, now: commands.discharge_condition(inst, condition_id, now, day=day, evidence=evidence),
        )

    def pause(self, instance_id: str, reason: str, *, actor: str, key: str | None = None) -> Outcome:
        request = {"command": "pause", "instance": instance_id, "reason": reason}
        return self._run(instance_id, actor, key, request, lambda inst, now: commands.pause(inst, reason, now))

    def resume(self, instance_id: str, reason: str, *, actor: str, key: str | None = None) -> Outcome:
        request = {"command": "resume", "instance": instance_id, "reason": reason}
        return self._run(instance_id, actor, key, request, lambda inst, now: commands.resume(inst, reason, now))

    def supersede(
        self, instance_id: str, reason: str, *, actor: str, key: str | None = None, by: str | None = None
    ) -> Outcome:
        request = {"command": "supersede", "instance": instance_id, "reason": reason, "by": by}
        return self._run(
            instance_id, actor, key, request, lambda inst, now: commands.supersede(inst, reason, now, by=by)
        )

    def extend_deadline(
        self, instance_id: str, deadline: date, reason: str, *, actor: str, key: str | None = None
    ) -> Outcome:
        request = {"command": "extend-deadline", "instance": instance_id, "deadline": str(deadline)}

        def decide(inst: Instance, now: datetime) -> list[NewEvent]:
            holidays = england_and_wales_bank_holidays(inst.started_on.year, deadline.year + HOLIDAY_MARGIN_YEARS)
            return commands.extend_deadline(inst, deadline, reason, now, holidays)

        return self._run(instance_id, actor, key, request, decide)

    def correct(self, instance_id: str, version: int, reason: str, *, actor: str, key: str | None = None) -> Outcome:
        """Record a correction of event ``version``, which stays in the log (``EventCorrected``)."""
        request = {"command": "correct", "instance": instance_id, "version": version, "reason": reason}
        corrected = self.store.read_stream(instance_id, after_version=version - 1)[:1] if version > 0 else []

        def decide(inst: Instance, now: datetime) -> list[NewEvent]:
            if not corrected:
                return commands.correct_event(inst, version, "", reason, now)  # refuses: no such event
            event = corrected[0]
            return commands.correct_event(inst, version, event.type, reason, now, event_hash=event.hash)

        return self._run(instance_id, actor, key, request, decide)

    # -- queries ------------------------------------------------------------------------------

    def today(self, instance: Instance) -> date:
        return commands.local_day(self.clock.now(), instance.definition)

    def status(self, instance_id: str) -> dict[str, Any]:
        instance = self.load(instance_id)
        return status_of(instance, self.today(instance))

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        events = self.store.read_stream(instance_id)
        if not events:
            raise UnknownInstance(instance_id)
        return [event_json(e) for e in events]

    def instances(self) -> list[dict[str, Any]]:
        rows = []
        for summary in self.store.streams():
            if not is_instance_stream(summary.stream_id):
                continue
            rows.append(
                {
                    "instance": summary.stream_id,
                    "definition": summary.definition_id,
                    "phase": summary.phase,
                    "version": summary.version,
                    "created_at": summary.created_at.isoformat(),
                    "updated_at": summary.updated_at.isoformat(),
                }
            )
        return rows

    def iter_history(self) -> Iterator[RecordedEvent]:
        return self.store.iter_all()


def event_json(event: RecordedEvent) -> dict[str, Any]:
    """One event as ``history --json`` prints it."""
    return {
        "stream": event.stream_id,
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "actor": event.actor,
        "data": event.data,
        "meta": event.meta,
        "definition_hash": event.definition_hash,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def is_instance_stream(stream_id: str) -> bool:
    """Instance ids never contain ':' nor start with '$'; other streams (checkpoints,
    notifications of an instance as ``notifications:<instance>``) use those marks."""
    return ":" not in stream_id and not stream_id.startswith("$")


# Canonical JSON in which a value JSON lacks (a decision) stands as its repr: described only
# when a keyed command is hashed, not for every command.
_REQUEST_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=repr
)


def _request_hash(request: dict[str, Any]) -> str:
    """The hash a keyed command is recognised by: the same for the same command and arguments."""
    return hashlib.sha256(_REQUEST_ENCODER.encode(request).encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> tuple[str, int]:
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), path.stat().st_size
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a folder, not a document file") from None
    except PermissionError:
        raise BadInput(f"cannot read {path}: permission denied") from None


def _check_instance_id(instance_id: str) -> None:
    if not instance_id or len(instance_id) > 100 or not all(c.isalnum() or c in "-_." for c in instance_id):
        raise BadInput(f"instance id '{instance_id}' must be 1–100 letters, digits, '-', '_' or '.'")
