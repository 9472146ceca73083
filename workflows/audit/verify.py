"""``govflow audit verify``: is the stored log the log that was sealed and signed?

For the whole log, one streaming pass (``integrity.LogChecker``) re-hashes every
event, checks positions, stream chains and every signed checkpoint's tree head;
then the allocator (``log_head``) and the streams projection are compared with what
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
from workflows.audit.diagnose import diagnose
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
    checkpoints: Sequence[tuple[StoredEvent, Any]], trusted_key: bytes | None, verify: cp.Verifier
) -> tuple[list[Finding], list[ExpectedHead]]:
    """Each checkpoint's signature and frontier, and its link to the one before."""
    findings: list[Finding] = []
    heads: list[ExpectedHead] = []
    previous: dict[str, Any] | None = None
    for row, payload in checkpoints:
        where = (CHECKPOINT_STREAM, row.version, row.position)
        problems = cp.problems(payload, trusted_key, verify)
        findings.extend(Finding("checkpoint", f"checkpoint {row.version}: {p}", *where) for p in problems)
        if not cp.well_formed(payload):
            continue
        findings.extend(
            Finding("link", f"checkpoint {row.version} {p}", *where) for p in cp.link_problems(previous, payload)
        )
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


def verify_log(
    log: AuditLog, trusted_key: bytes | None, verify: cp.Verifier, against: Sequence[Any] = ()
) -> VerifyReport:
    """Verify every stream, position and checkpoint of the log (constant memory in its length)."""
    checkpoints = read_checkpoints(log)
    findings, heads = check_checkpoints(checkpoints, trusted_key, verify)
    checker = LogChecker(expected=[*heads, *external_heads(against, trusted_key, verify)])
    checker.consume(log.iter_log())
    checker.finish()
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
    return report


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
    findings, heads = check_checkpoints(checkpoints, trusted_key, verify)
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
        findings.extend(_in_tree(log, heads[-1], digests))
        report.covered = heads[-1].tree_size
    report.findings = findings
    return report


def _in_tree(log: AuditLog, head: ExpectedHead, digests: dict[int, bytes]) -> list[Finding]:
    """Whether the tree of the log's hashes, with this stream's events re-hashed, gives ``head``."""
    frontier = merkle.Frontier()
    for position, stored in log.iter_hashes(up_to=head.tree_size):
        if position != frontier.size + 1:
            break
        entry = digests.get(position)
        frontier.append(merkle.leaf_hash(entry if entry is not None else bytes.fromhex(stored)))
    if frontier.size == head.tree_size and frontier.root().hex() == head.root:
        return []
    return [
        Finding(
            "checkpoint",
            f"{head.label} does not match the log's first {head.tree_size} events as they are now; "
            "run `govflow audit verify` (the whole log) to locate the change",
            position=head.position,
        )
    ]
