"""``govflow audit verify``: is the stored log the log that was sealed and signed?

For the whole log, one streaming pass (``integrity.LogChecker``) re-hashes every
event, checks positions, stream chains and every signed checkpoint's tree head (a
second pass, parsing every payload, follows when the first finds anything: see
``LogChecker.vouched``); then the allocator (``log_head``) and the streams projection are compared with what
was read (a truncated tail shows there), and each damaged stream is diagnosed on
its own (``diagnose``). For one instance, its stream is checked and its events are
shown to be in the newest checkpoint's tree by one scan of the hash column.

Checkpoints are trusted only when signed by the trusted key (the configured key's
public half) and linked head to head, each a consistency proof from the one before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from governance import merkle
from governance.chain import GENESIS_HASH
from workflows.audit import checkpoint as cp
from workflows.audit import ledger
from workflows.audit.diagnose import diagnose
from workflows.audit.imported import IMPORTS_STREAM, ImportMark
from workflows.audit.integrity import ExpectedHead, Finding, LogChecker
from workflows.audit.log import AuditLog
from workflows.audit.records import CHECKPOINT_STREAM, StoredEvent, recomputed_digest

MAX_DIAGNOSED: Final = 50


@dataclass
class VerifyReport:
    """What ``audit verify`` found; ``ok`` only when there is nothing to report."""

    scope: str
    events: int = 0
    streams: int = 0
    checkpoints: int = 0
    covered: int = 0
    """Events covered by the newest valid-looking checkpoint."""
    findings: list[Finding] = field(default_factory=list)
    dropped: int = 0
    imported: int | None = None
    """On a log imported from a bundle: how many positions (from 1) the imported checkpoint covers."""

    @property
    def ok(self) -> bool:
        return not self.findings and not self.dropped

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "checkpoints": self.checkpoints,
            "covered_by_checkpoint": self.covered,
            "findings": [f.as_json() for f in self.findings],
            "more_findings": self.dropped,
            "imported_up_to": self.imported,
        }


def read_checkpoints(log: AuditLog) -> list[tuple[StoredEvent, Any]]:
    """The checkpoint events with their parsed payloads (None when not JSON)."""
    out: list[tuple[StoredEvent, Any]] = []
    for row in log.iter_stream(CHECKPOINT_STREAM):
        try:
            payload = json.loads(row.data)
        except ValueError:
            payload = None
        out.append((row, payload))
    return out


def check_checkpoints(
    checkpoints: Sequence[tuple[StoredEvent, Any]],
    trusted_key: bytes | None,
    verify: cp.Verifier,
    mark: ImportMark | None = None,
) -> tuple[list[Finding], list[ExpectedHead]]:
    """Each checkpoint's signature and frontier, and its link to the one before.

    With ``mark`` (a sealed import record, see :func:`import_record`), the imported
    checkpoint is the first one here: its predecessors stay in the source log, and its
    key is the one the importer trusted, vouched for by the seal signed after it.
    """
    findings: list[Finding] = []
    heads: list[ExpectedHead] = []
    previous: dict[str, Any] | None = None
    for index, row_payload in enumerate(checkpoints):
        row, payload = row_payload
        where = (CHECKPOINT_STREAM, row.version, row.position)
        imported = index == 0 and mark is not None and row.position == mark.checkpoint_position
        problems = cp.problems(payload, None if imported else trusted_key, verify)
        findings.extend(Finding("checkpoint", f"checkpoint {row.version}: {p}", *where) for p in problems)
        if not cp.well_formed(payload):
            continue
        links = [] if imported else cp.link_problems(previous, payload)
        findings.extend(Finding("link", f"checkpoint {row.version} {p}", *where) for p in links)
        size = payload["tree_size"]
        if isinstance(size, int) and size >= row.position:
            findings.append(
                Finding("checkpoint", f"covers {size} events, but stands at position {row.position}", *where)
            )
        heads.append(ExpectedHead(size, str(payload["root"]), f"checkpoint {row.version}", row.position))
        previous = payload
    return findings, heads


def external_heads(against: Iterable[Any], trusted_key: bytes | None, verify: cp.Verifier) -> list[ExpectedHead]:
    """Checkpoints held outside the database (``--against``): a truncated log cannot hide from them."""
    heads: list[ExpectedHead] = []
    for index, payload in enumerate(against, start=1):
        problems = cp.problems(payload, trusted_key, verify)
        if problems:
            raise ValueError(f"--against checkpoint {index}: {'; '.join(problems)}")
        label = f"the checkpoint you hold (signed {payload['signed_at']})"
        heads.append(ExpectedHead(payload["tree_size"], payload["root"], label))
    return heads


def import_record(
    log: AuditLog, checkpoints: Sequence[tuple[StoredEvent, Any]], trusted_key: bytes | None, verify: cp.Verifier
) -> tuple[ImportMark | None, list[Finding]]:
    """The log's import record, if there is one the verifier may trust, and what is wrong with it.

    A record is trusted only when it stands right after the checkpoint it names, that
    checkpoint is the first one in the log, and a later checkpoint signed by the trusted
    key covers the record (the seal ``audit import`` signs). Otherwise it explains no
    gap, and the gaps are reported as deletions.
    """
    try:
        mark = ledger.import_mark(log)
    except ledger.LogTampered as error:
        return None, [Finding("malformed", str(error), IMPORTS_STREAM)]
    if mark is None:
        return None, []
    where = (IMPORTS_STREAM, 1, mark.position)
    first = checkpoints[0] if checkpoints else None
    if (
        first is None
        or (first[0].version, first[0].position, first[0].hash)
        != (mark.checkpoint_version, mark.checkpoint_position, mark.checkpoint_hash)
        or not cp.well_formed(first[1])
        or first[1]["tree_size"] != mark.tree_size
        or mark.position != mark.checkpoint_position + 1
    ):
        message = "the import record does not stand right after the first checkpoint it names"
        return None, [Finding("inserted", message, *where)]
    sealed = any(
        cp.well_formed(payload)
        and payload["tree_size"] >= mark.position
        and not cp.problems(payload, trusted_key, verify)
        for _, payload in checkpoints[1:]
    )
    if not sealed:
        message = "no checkpoint signed by the trusted key covers the import record, so it explains no gap"
        return None, [Finding("checkpoint", message, *where)]
    return mark, []


def verify_log(
    log: AuditLog, trusted_key: bytes | None, verify: cp.Verifier, against: Sequence[Any] = ()
) -> VerifyReport:
    """Verify every stream, position and checkpoint of the log (constant memory in its length).

    On a log imported from a bundle, the positions the import left out are expected;
    the imported events must rebuild the imported checkpoint's tree with the subtrees
    the import recorded (see ``workflows.audit.imported``).
    """
    checkpoints = read_checkpoints(log)
    mark, findings = import_record(log, checkpoints, trusted_key, verify)
    found, heads = check_checkpoints(checkpoints, trusted_key, verify, mark)
    findings.extend(found)
    held = external_heads(against, trusted_key, verify)
    if mark is not None and any(head.tree_size < mark.tree_size for head in held):
        raise ValueError(
            f"--against: positions 1 to {mark.tree_size} of this log were imported from a bundle; "
            "a checkpoint of fewer events can only be checked on the source database"
        )
    # The newest checkpoint, when nothing is wrong with any, vouches for the payloads it covers.
    vouched = heads[-1].tree_size if heads and not findings and trusted_key is not None and mark is None else 0
    checker = _check_log(log, [*heads, *held], vouched, checkpoints, mark)
    if vouched and not checker.clean:
        checker = _check_log(log, [*heads, *held], 0, checkpoints, mark)
    findings.extend(_ends(log, checker))
    diagnosed = list(checker.damaged)[:MAX_DIAGNOSED]
    for stream in diagnosed:
        findings.extend(diagnose(stream, list(log.iter_stream(stream)), checker.gaps))
    findings.extend(checker.damaged[s] for s in list(checker.damaged)[MAX_DIAGNOSED:])
    named = {f.position for f in findings if f.position is not None}
    for first, last in checker.gaps:
        if not any(first <= position <= last for position in named):
            findings.append(Finding("deleted", f"positions {first} to {last} are missing from the log", position=first))
    findings.extend(checker.findings)
    report = VerifyReport("log", checker.count, len(checker.heads), len(checkpoints), findings=findings)
    report.dropped = checker.dropped
    report.covered = heads[-1].tree_size if heads else 0
    report.imported = mark.tree_size if mark is not None else None
    return report


def _check_log(
    log: AuditLog,
    expected: list[ExpectedHead],
    vouched: int,
    checkpoints: Sequence[tuple[StoredEvent, Any]],
    mark: ImportMark | None,
) -> LogChecker:
    """One pass of the checker over the whole log (see ``LogChecker.vouched``)."""
    checker = LogChecker(expected=expected, vouched=vouched)
    if mark is None:
        checker.consume(log.iter_rows())
    else:
        # The imported checkpoint's stream began in the source log: chain on from its stated predecessor.
        checker.heads[CHECKPOINT_STREAM] = (mark.checkpoint_version - 1, mark.checkpoint_prev_hash, 0)
        stack = [bytes.fromhex(node) for node in checkpoints[0][1]["frontier"]]
        checker.consume_imported(log.iter_rows(up_to=mark.tree_size), mark, stack)
        checker.consume(log.iter_rows(after_position=mark.tree_size))
    checker.finish()
    return checker


def _ends(log: AuditLog, checker: LogChecker) -> list[Finding]:
    """The log's end against the allocator and the streams projection."""
    found: list[Finding] = []
    last = checker.last_position
    head = log.head_position()
    if head is not None and head > last:
        found.append(
            Finding(
                "truncated",
                f"the store allocated positions up to {head} but the log ends at {last}: "
                f"positions {last + 1} to {head} were removed",
                position=last + 1,
            )
        )
    elif head is not None and head < last:
        found.append(
            Finding(
                "inserted",
                f"positions {head + 1} to {last} were never allocated by the store (it stopped at {head})",
                position=head + 1,
            )
        )
    projected = dict(log.stream_versions())
    for stream, version in sorted(projected.items()):
        seen = checker.heads.get(stream)
        if seen is None:
            found.append(Finding("deleted", f"all {version} events of the stream are gone", stream))
        elif seen[0] < version:
            found.append(
                Finding(
                    "truncated", f"the stream stood at version {version}; its tail was removed", stream, seen[0] + 1
                )
            )
        elif seen[0] > version:
            found.append(
                Finding("inserted", f"events after the stream's recorded head ({version})", stream, version + 1)
            )
    for stream in sorted(set(checker.heads) - set(projected)):
        found.append(Finding("inserted", "a stream the store never created", stream, 1))
    return found


def verify_instance(log: AuditLog, instance: str, trusted_key: bytes | None, verify: cp.Verifier) -> VerifyReport:
    """Verify one stream, the checkpoints, and that the stream is in the newest checkpoint's tree."""
    rows = list(log.iter_stream(instance))
    report = VerifyReport(instance, len(rows), 1)
    checkpoints = read_checkpoints(log)
    mark, findings = import_record(log, checkpoints, trusted_key, verify)
    found, heads = check_checkpoints(checkpoints, trusted_key, verify, mark)
    findings.extend(found)
    report.checkpoints = len(checkpoints)
    previous = (0, GENESIS_HASH)
    digests: dict[int, bytes] = {}
    for row in rows:
        digest = recomputed_digest(row)
        if digest is not None:
            digests[row.position] = digest
        if digest is None or digest.hex() != row.hash or (row.version - 1, row.prev_hash) != previous:
            findings.extend(diagnose(instance, rows, []))
            break
        previous = (row.version, row.hash)
    projected = dict(log.stream_versions()).get(instance)
    if projected is not None and projected > len(rows):
        findings.append(Finding("truncated", f"the stream stood at version {projected}", instance, len(rows) + 1))
    if heads:
        findings.extend(_in_tree(log, heads[-1], digests, mark))
        report.covered = heads[-1].tree_size
    report.findings = findings
    report.imported = mark.tree_size if mark is not None else None
    return report


def _in_tree(log: AuditLog, head: ExpectedHead, digests: dict[int, bytes], mark: ImportMark | None) -> list[Finding]:
    """Whether the tree of the log's hashes, with this stream's events re-hashed, gives ``head``."""
    try:
        frontier: merkle.Frontier | None = ledger.log_tree(log, head.tree_size, mark=mark, digests=digests)
    except ledger.LogTampered:
        frontier = None
    if frontier is not None and frontier.root().hex() == head.root:
        return []
    return [
        Finding(
            "checkpoint",
            f"{head.label} does not match the log's first {head.tree_size} events as they are now; "
            "run `govflow audit verify` (the whole log) to locate the change",
            position=head.position,
        )
    ]
