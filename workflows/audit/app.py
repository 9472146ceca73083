"""The audit use cases over one database: what the ``audit`` commands call.

:func:`open_audit` wires them from the command line's global options (the same
configuration, database and clock as every other command); :class:`Audit` holds
the services (for definitions by hash and for appending checkpoints), the stored
log as texts, and where the signing key lives.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from governance import merkle
from governance.chain import format_timestamp
from workflows.audit import checkpoint as cp
from workflows.audit import ledger, signing
from workflows.audit.bundle import Exported, export_bundle
from workflows.audit.diff import diff
from workflows.audit.importer import Imported, Signing, import_bundle
from workflows.audit.log import AuditLog, SqlAuditLog, StoreAuditLog
from workflows.audit.records import StoredEvent, recomputed_digest
from workflows.audit.replay import Replayed, replay_as_of
from workflows.audit.verify import VerifyReport, verify_instance, verify_log
from workflows.audit.views import public_key_arg
from workflows.clock import parse_moment
from workflows.errors import BadInput, UnknownInstance
from workflows.services import Services


@dataclass
class Audit:
    """The auditor's use cases over one event store."""

    services: Services
    log: AuditLog
    key_file: Path

    def _rows(self, instance: str) -> Iterator[StoredEvent]:
        return self.log.iter_stream(instance)

    def _moment(self, instance: str, text: str, *, end_of_day: bool) -> datetime:
        """A user's date or datetime, read in the timezone of the definition the instance runs under."""
        first = next(self._rows(instance), None)
        if first is None:
            raise UnknownInstance(instance)
        definition = self.services.definition(first.definition_hash)
        return parse_moment(text, definition.timezone, end_of_day=end_of_day)

    def replay(self, instance: str, as_of: str, by: str) -> Replayed:
        """The instance as of a date (its end) or a datetime."""
        moment = self._moment(instance, as_of, end_of_day=True)
        replayed = replay_as_of(instance, self._rows(instance), self.services.definition, moment, by)
        if replayed.instance is None:
            raise BadInput(f"instance '{instance}' had not started by {moment.isoformat()}")
        return replayed

    def diff(self, instance: str, start: str, end: str, by: str) -> dict[str, Any]:
        """Changes from the start of ``start`` (a date) to the end of ``end``."""
        begin = self._moment(instance, start, end_of_day=False)
        finish = self._moment(instance, end, end_of_day=True)
        if finish < begin:
            raise BadInput(f"--to ({end}) is before --from ({start})")
        return diff(instance, lambda: self._rows(instance), self.services.definition, begin, finish, by)

    def trusted_key(self, key: str | None) -> bytes | None:
        return public_key_arg(key) if key else signing.trusted_public_key(self.key_file)

    def verify(self, instance: str | None, against: list[Path], key: str | None) -> VerifyReport:
        trusted = self.trusted_key(key)
        if instance is None:
            held = [payload for path in against for payload in _checkpoints_in(path)]
            try:
                return verify_log(self.log, trusted, signing.verify, held)
            except ValueError as error:  # a held checkpoint that is not sound itself
                raise BadInput(str(error)) from None
        if against:
            raise BadInput("--against checks the whole log: leave out INSTANCE")
        if self.services.store.stream(instance) is None and next(self._rows(instance), None) is None:
            raise UnknownInstance(instance)
        return verify_instance(self.log, instance, trusted, signing.verify)

    def checkpoint(self, actor: str) -> ledger.Checkpoint:
        signer = signing.load_signer(self.key_file)
        now = self.services.clock.now()
        meta = self._meta()
        return ledger.create_checkpoint(
            self.services.store,
            self.log,
            public_key=signer.public_key,
            sign=signer.sign,
            now=now,
            actor=actor,
            meta=meta,
        )

    def _sound(self, checkpoint: ledger.Checkpoint) -> None:
        problems = cp.problems(checkpoint.payload, self.trusted_key(None), signing.verify)
        if problems:
            raise ledger.LogTampered(f"checkpoint {checkpoint.version}: {'; '.join(problems)}")

    def prove_inclusion(self, instance: str, version: int, checkpoint_version: int | None) -> dict[str, Any]:
        row = next((r for r in self._rows(instance) if r.version == version), None)
        if row is None:
            raise BadInput(f"instance '{instance}' has no event version {version}")
        digest = recomputed_digest(row)
        if digest is None or digest.hex() != row.hash:
            raise ledger.LogTampered(f"'{instance}' version {version} does not match its hash: nothing to prove")
        chosen = ledger.covering(ledger.checkpoints(self.log), row.position, checkpoint_version)
        self._sound(chosen)
        path = ledger.inclusion_proofs(self.log, chosen, [row.position])[row.position]
        root = chosen.payload["root"]
        verified = merkle.verify_inclusion(
            merkle.leaf_hash(digest),
            row.position - 1,
            chosen.tree_size,
            [bytes.fromhex(p) for p in path],
            bytes.fromhex(root),
        )
        if not verified:
            raise ledger.LogTampered(f"checkpoint {chosen.version} does not contain this event: the log was rewritten")
        return {
            "kind": "inclusion",
            "instance": instance,
            "version": version,
            "position": row.position,
            "event_hash": row.hash,
            "leaf_index": row.position - 1,
            **_head(chosen),
            "path": path,
            "verified": verified,
        }

    def prove_consistency(self, old: int, new: int) -> dict[str, Any]:
        recorded = {c.version: c for c in ledger.checkpoints(self.log)}
        missing = [n for n in (old, new) if n not in recorded]
        if missing:
            raise BadInput(f"no checkpoint {missing[0]} (there are {len(recorded)})")
        if old > new:
            raise BadInput("OLD must not be after NEW")
        first, second = recorded[old], recorded[new]
        for made in (first, second):
            self._sound(made)
        path = ledger.consistency_proof(self.log, first, second) if first.tree_size else []
        verified = first.tree_size == 0 or merkle.verify_consistency(
            first.tree_size,
            second.tree_size,
            bytes.fromhex(first.payload["root"]),
            bytes.fromhex(second.payload["root"]),
            [bytes.fromhex(p) for p in path],
        )
        if not verified:
            raise ledger.LogTampered(f"checkpoint {new} does not extend checkpoint {old}: the log was rewritten")
        return {"kind": "consistency", "old": _head(first), "new": _head(second), "path": path, "verified": verified}

    def export(self, instance: str, out: Path, fmt: str) -> Exported:
        stamp = format_timestamp(self.services.clock.now())
        return export_bundle(self.services.store, self.log, instance, out, fmt=fmt, exported_at=stamp)

    def import_bundle(self, bundle: Path, key: str | None, actor: str) -> Imported:
        """Load a verified bundle into this (empty) database; see ``workflows.audit.importer``."""
        from workflows.store.sql import SqlEventStore

        store = self.services.store
        if not isinstance(store, SqlEventStore):
            raise BadInput("audit import needs a SQL database")
        signer = signing.load_signer(self.key_file)
        return import_bundle(
            store.engine,
            bundle,
            trusted_key=self.trusted_key(key),
            verify=signing.verify,
            signing=Signing(signer.public_key, signer.sign),
            now=self.services.clock.now(),
            actor=actor,
            meta=self._meta(),
        )

    def _meta(self) -> dict[str, Any]:
        return {"source": self.services.source, "clock": "simulated" if self.services.clock.simulated else "system"}


def _head(made: ledger.Checkpoint) -> dict[str, Any]:
    return {
        "checkpoint": made.version,
        "checkpoint_position": made.position,
        "tree_size": made.tree_size,
        "root": made.payload["root"],
        "signed_at": made.payload["signed_at"],
        "key_id": made.payload.get("key_id"),
    }


def _checkpoints_in(path: Path) -> list[Any]:
    """Checkpoint payloads in a file: a bundle (JSON Lines) or ``audit checkpoint --json`` output."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None
    found: list[Any] = []
    try:
        whole = json.loads(text)
        found.append(whole.get("payload", whole) if isinstance(whole, dict) else whole)
    except ValueError:
        for line in text.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                raise BadInput(f"{path} is neither a checkpoint (JSON) nor a bundle (JSON Lines)") from None
            if isinstance(value, dict) and value.get("kind") == "checkpoint":
                found.append(value.get("data"))
    if not found:
        raise BadInput(f"{path} holds no checkpoint")
    return found


def open_audit(args: argparse.Namespace) -> Audit:
    """The audit use cases for the database and configuration the global options name."""
    from workflows.bootstrap import build_services, settings_for
    from workflows.cli import options_of
    from workflows.store.sql import SqlEventStore

    options = options_of(args)
    services = build_services(options, source="audit")
    store = services.store
    log: AuditLog = SqlAuditLog(store.engine) if isinstance(store, SqlEventStore) else StoreAuditLog(store)
    return Audit(services, log, signing.key_path(settings_for(options)))
