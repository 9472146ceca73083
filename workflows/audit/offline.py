"""``govflow audit verify-bundle``: check an exported bundle offline, and replay it.

No database, no configuration, no third-party code: the standard library, the pure
domain (``governance``, whose fold runs the ``transitions`` state machine) and the
definition-file reader. Also runnable as ``python -m workflows.audit.offline FILE``.

Every line must be canonical JSON (so no byte can change without changing a value);
the events must chain from the genesis hash with versions 1, 2, 3 … and re-hash to
their ``hash``; each proof must place its event in the checkpoint's tree; the
checkpoint must be a stored event that re-hashes too, with a valid Ed25519 signature
(``governance.ed25519``) by the bundle's key, or by ``--key`` when one is pinned.
The events are then folded under the definition texts in the bundle, and the final
state printed. The format is documented in ``docs/audit-bundle.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from governance import ed25519, merkle
from governance.chain import GENESIS_HASH, canonical_json
from governance.definition import Definition
from governance.errors import GovernanceError
from governance.state import Instance, begin
from governance.status import status_of
from workflows.audit import checkpoint as cp
from workflows.audit.records import COLUMNS, StoredEvent, recomputed_digest
from workflows.audit.replay import _event
from workflows.definition_file import parse_definition
from workflows.errors import BadInput

BUNDLE_FORMAT: Final = "govflow-audit-bundle/1"
EVENT_KEYS: Final = frozenset({"kind", *COLUMNS, "proof"})
CHECKPOINT_KEYS: Final = frozenset({"kind", *COLUMNS})
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass
class BundleReport:
    """What verify-bundle found, and the state the events replay to."""

    path: Path
    instance: str = ""
    events: int = 0
    covered: int = 0
    checkpoint: int | None = None
    key_id: str | None = None
    pinned: bool = False
    problems: list[str] = field(default_factory=list)
    state: Instance | None = None
    status: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "ok": self.ok,
            "instance": self.instance,
            "events": self.events,
            "covered_by_checkpoint": self.covered,
            "checkpoint": self.checkpoint,
            "key_id": self.key_id,
            "key_pinned": self.pinned,
            "problems": self.problems,
            "state": self.status,
        }


@dataclass
class BundleContents:
    """What a bundle holds, kept while it is verified (for ``audit import``): texts as in the file."""

    header: dict[str, Any] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    checkpoint: StoredEvent | None = None
    checkpoint_payload: dict[str, Any] | None = None
    events: list[StoredEvent] = field(default_factory=list)
    proofs: dict[int, list[str]] = field(default_factory=dict)
    """position → inclusion proof (hex, leaf upwards) of each event whose proof holds."""


def _stored(line: dict[str, Any]) -> StoredEvent:
    """The event as the store held it: the texts its hash covers."""
    values = {name: line[name] for name in COLUMNS}
    if not isinstance(values["data"], dict) or not isinstance(values["meta"], dict):
        raise TypeError("data and meta must be objects")
    for name in ("stream_id", "type", "occurred_at", "recorded_at", "actor", "definition_hash", "hash", "prev_hash"):
        if not isinstance(values[name], str):
            raise TypeError(f"{name} must be text")
    for name in ("version", "position", "schema_version"):
        if type(values[name]) is not int:
            raise TypeError(f"{name} must be a whole number")
    values["data"] = canonical_json(values["data"])
    values["meta"] = canonical_json(values["meta"])
    return StoredEvent(**values)


class _Verifier:
    """Checks the lines of one bundle in order; keeps only the fold and a few heads."""

    def __init__(
        self, report: BundleReport, trusted_key: bytes | None, verify: cp.Verifier, keep: BundleContents | None = None
    ) -> None:
        self.report = report
        self.keep = keep
        self.trusted = trusted_key
        self.verify = verify
        self.definitions: dict[str, Definition] = {}
        self.checkpoint: dict[str, Any] | None = None
        self.header: dict[str, Any] | None = None
        self.previous = (0, GENESIS_HASH, 0)
        self.last: StoredEvent | None = None

    def problem(self, number: int, text: str, row: StoredEvent | None = None) -> None:
        where = f" (stream '{row.stream_id}' version {row.version} position {row.position})" if row else ""
        self.report.problems.append(f"line {number}{where}: {text}")

    def line(self, number: int, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
            value = json.loads(text)
        except ValueError:
            self.problem(number, "not UTF-8 JSON: the line was altered")
            return
        if not isinstance(value, dict) or canonical_json(value) != text:
            self.problem(number, "not in canonical JSON form: the line was altered")
            return
        kind = value.get("kind")
        if number == 1:
            if kind != "header" or value.get("format") != BUNDLE_FORMAT:
                raise BadInput(f"{self.report.path} is not a {BUNDLE_FORMAT} bundle (first line)")
            self.header = value
            if self.keep is not None:
                self.keep.header = value
            self.report.instance = str(value.get("instance"))
        elif kind == "definition":
            self.definition(number, value)
        elif kind == "checkpoint":
            self.checkpoint_line(number, value)
        elif kind == "event":
            self.event(number, value)
        else:
            self.problem(number, f"unknown line kind {kind!r}")

    def definition(self, number: int, value: dict[str, Any]) -> None:
        text, digest = value.get("text"), value.get("hash")
        if not isinstance(text, str) or not isinstance(digest, str):
            self.problem(number, "a definition line needs 'hash' and 'text'")
            return
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest or set(value) != {"kind", "hash", "text"}:
            self.problem(number, "the definition text does not match its hash")
            return
        try:
            self.definitions[digest] = parse_definition(text, f"definition {digest[:12]}")
            if self.keep is not None:
                self.keep.definitions[digest] = text
        except BadInput as error:
            self.problem(number, f"the definition does not load: {error}")

    def _sealed(self, number: int, value: dict[str, Any], keys: frozenset[str]) -> StoredEvent | None:
        try:
            if set(value) != keys:
                raise TypeError(f"fields {sorted(set(value) ^ keys)} differ from the format")
            row = _stored(value)
        except (KeyError, TypeError) as error:
            self.problem(number, f"malformed: {error}")
            return None
        if not (_HEX64.fullmatch(row.hash) and _HEX64.fullmatch(row.prev_hash)):
            self.problem(number, "hash and prev_hash must be 64 lowercase hex digits", row)
            return None
        digest = recomputed_digest(row)
        if digest is None or digest.hex() != row.hash:
            self.problem(number, "its content does not match its hash: the event was altered", row)
            return None
        return row

    def checkpoint_line(self, number: int, value: dict[str, Any]) -> None:
        row = self._sealed(number, value, CHECKPOINT_KEYS)
        if row is None:
            return
        payload = value["data"]
        header_key = (self.header or {}).get("public_key")
        for text in cp.problems(payload, self.trusted, self.verify):
            self.problem(number, f"checkpoint {row.version}: {text}", row)
        if not cp.well_formed(payload) or not _HEX.fullmatch(str(payload.get("signature"))):
            self.problem(number, "the checkpoint is malformed", row)
            return
        if payload["public_key"] != header_key:
            self.problem(number, "the checkpoint's key is not the bundle's key", row)
        self.checkpoint = payload
        if self.keep is not None:
            self.keep.checkpoint, self.keep.checkpoint_payload = row, payload
        self.report.checkpoint = row.version
        self.report.key_id = cp.key_id(bytes.fromhex(payload["public_key"]))
        self.report.pinned = self.trusted is not None

    def event(self, number: int, value: dict[str, Any]) -> None:
        row = self._sealed(number, value, EVENT_KEYS)
        if row is None:
            return
        version, prev_hash, position = self.previous
        if row.stream_id != self.report.instance:
            self.problem(number, "belongs to another instance", row)
        if row.version != version + 1 or row.prev_hash != prev_hash or row.position <= position:
            self.problem(number, f"does not follow version {version}: an event was removed, added or moved", row)
        self.previous = (row.version, row.hash, row.position)
        self.report.events += 1
        if self.keep is not None:
            self.keep.events.append(row)
        self.proof(number, row, value["proof"])
        self.fold(number, row)

    def proof(self, number: int, row: StoredEvent, proof: Any) -> None:
        if proof is None:
            return
        payload = self.checkpoint
        try:
            path = [bytes.fromhex(node) for node in proof["path"] if _HEX64.fullmatch(node)]
            sound = (
                payload is not None
                and set(proof) == {"checkpoint", "tree_size", "leaf_index", "path"}
                and proof["checkpoint"] == self.report.checkpoint
                and proof["tree_size"] == payload["tree_size"]
                and proof["leaf_index"] == row.position - 1
                and len(path) == len(proof["path"])
                and merkle.verify_inclusion(
                    merkle.leaf_hash(bytes.fromhex(row.hash)),
                    row.position - 1,
                    payload["tree_size"],
                    path,
                    bytes.fromhex(payload["root"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            sound = False
        if sound:
            self.report.covered += 1
            if self.keep is not None:
                self.keep.proofs[row.position] = proof["path"]
        else:
            self.problem(number, "its inclusion proof does not lead to the signed checkpoint", row)

    def fold(self, number: int, row: StoredEvent) -> None:
        state = self.report.state
        try:
            if state is None:
                if row.version != 1:
                    return
                definition = self.definitions.get(row.definition_hash)
                if definition is None:
                    self.problem(number, f"its definition {row.definition_hash[:12]}… is not in the bundle", row)
                    return
                self.report.state = begin(row.stream_id, definition, json.loads(row.data))
            else:
                state.apply(_event(row), row.version)
        except (GovernanceError, KeyError, TypeError, ValueError) as error:
            self.problem(number, f"the history does not replay: {error}", row)
        self.last = row


def verify_bundle(
    path: Path,
    trusted_key: bytes | None = None,
    verify: cp.Verifier = ed25519.verify,
    *,
    keep: BundleContents | None = None,
) -> BundleReport:
    """Verify the bundle at ``path`` line by line; raises :class:`BadInput` if it is not one.

    With ``keep``, what the bundle holds is collected into it as the lines are read.
    """
    report = BundleReport(path)
    checker = _Verifier(report, trusted_key, verify, keep)
    try:
        with path.open("rb") as handle:
            number = 0
            for number, raw in enumerate(handle, start=1):
                checker.line(number, raw[:-1] if raw.endswith(b"\n") else raw)
    except FileNotFoundError:
        raise BadInput(f"no such bundle: {path}") from None
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None
    if number == 0:
        raise BadInput(f"{path} is empty")
    expected = (checker.header or {}).get("events")
    if expected != report.events:
        report.problems.append(f"the header announces {expected} events, the bundle holds {report.events}")
    state, last = report.state, checker.last
    if state is not None and last is not None:
        # The state as the record ends: on the day (in the workflow's zone) of its last entry.
        ended = datetime.fromisoformat(last.recorded_at).astimezone(ZoneInfo(state.definition.timezone))
        report.status = status_of(state, ended.date())
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m workflows.audit.offline BUNDLE [PUBLIC_KEY_HEX]``: 0 sound, 4 not, 2 unreadable."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m workflows.audit.offline BUNDLE [PUBLIC_KEY_HEX]", file=sys.stderr)
        return 2
    try:
        report = verify_bundle(Path(args[0]), bytes.fromhex(args[1]) if len(args) > 1 else None)
    except (BadInput, ValueError) as error:
        print(f"verify-bundle: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    return 0 if report.ok else 4


if __name__ == "__main__":
    sys.exit(main())


def load_bundle(path: Path) -> tuple[dict[str, str], list[StoredEvent]]:
    """A bundle's definition texts (by hash) and events, as stored, without checking them."""
    definitions: dict[str, str] = {}
    rows: list[StoredEvent] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            value = json.loads(line)
            if value.get("kind") == "definition":
                definitions[value["hash"]] = value["text"]
            elif value.get("kind") == "event":
                rows.append(_stored({name: value[name] for name in COLUMNS}))
    return definitions, rows
