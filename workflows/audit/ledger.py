"""Signing checkpoints and proving inclusion and consistency against them.

A new checkpoint resumes the Merkle frontier stored in the previous one (after
checking that it folds to the signed root), so it reads only the events appended
since, re-hashing each before it is signed: a checkpoint never vouches for an event
whose content no longer matches its seal. The checkpoint is appended to the
``$checkpoints`` stream with the stream's expected version, so two signers racing
get a conflict, not a fork.

Proofs need hashes of subtrees no table stores: one scan of the hash column up to
the checkpoint's size captures them (``merkle.Frontier(capture=...)``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance import merkle
from governance.chain import format_timestamp
from governance.events import NewEvent
from workflows.audit import checkpoint as cp
from workflows.audit import imported
from workflows.audit.log import AuditLog
from workflows.audit.records import CHECKPOINT_STREAM, StoredEvent, recomputed_digest
from workflows.errors import BadInput, WorkflowError
from workflows.store.base import AppendRequest, EventStore


class LogTampered(WorkflowError):
    """The log fails a check that signing or proving relies on (exit 4, like ``verify``)."""

    exit_code = 4


@dataclass(frozen=True)
class Checkpoint:
    """A recorded checkpoint: where it stands in the log, and its payload."""

    version: int
    position: int
    payload: dict[str, Any]

    @property
    def tree_size(self) -> int:
        return int(self.payload["tree_size"])


def checkpoints(log: AuditLog) -> list[Checkpoint]:
    """Every recorded checkpoint, oldest first (a few per day: small)."""
    return [Checkpoint(row.version, row.position, json.loads(row.data)) for row in log.iter_stream(CHECKPOINT_STREAM)]


def last_position(log: AuditLog) -> int:
    """The newest position in the log (0 when empty)."""
    head = log.head_position()
    if head is not None:
        return head
    last = 0
    for position, _ in log.iter_hashes(up_to=2**62):
        last = position
    return last


def create_checkpoint(
    store: EventStore,
    log: AuditLog,
    *,
    public_key: bytes,
    sign: Callable[[bytes], bytes],
    now: datetime,
    actor: str,
    meta: dict[str, Any],
) -> Checkpoint:
    """Sign the tree head of the whole log and record it; raises :class:`LogTampered`."""
    recorded = checkpoints(log)
    previous = recorded[-1] if recorded else None
    old_size = previous.tree_size if previous else 0
    new_size = last_position(log)
    rows = log.iter_log(after_position=old_size, up_to=new_size)
    digests = (_sealed_digest(row, position) for position, row in enumerate(rows, start=old_size + 1))
    payload = next_payload(
        previous.payload if previous else None, digests, new_size, public_key=public_key, sign=sign, now=now
    )
    request = AppendRequest(
        stream_id=CHECKPOINT_STREAM,
        expected_version=previous.version if previous else 0,
        actor=actor,
        definition_hash="",
        definition_id="audit",
        recorded_at=now,
        phase="checkpoint",
        meta=meta,
    )
    (event,) = store.append(request, [NewEvent(cp.CHECKPOINT_RECORDED, payload, now)])
    return Checkpoint(event.version, event.position, payload)


def next_payload(
    previous: dict[str, Any] | None,
    digests: Iterable[bytes],
    new_size: int,
    *,
    public_key: bytes,
    sign: Callable[[bytes], bytes],
    now: datetime,
) -> dict[str, Any]:
    """The signed payload of the checkpoint after ``previous``, over its tree plus ``digests``.

    The previous checkpoint's frontier is resumed (after checking it folds to its signed
    root), so only the events after it are read; ``digests`` are their seals, in order.
    """
    old_size = previous["tree_size"] if previous else 0
    ranges = merkle.consistency_ranges(old_size, new_size) if old_size else []
    known: dict[merkle.Range, bytes] = {}
    if previous is not None:
        problems = cp.problems(previous, None)
        if problems:
            raise LogTampered(f"the last checkpoint is not sound: {'; '.join(problems)}")
        stack = [bytes.fromhex(node) for node in previous["frontier"]]
        frontier = merkle.Frontier.resume(stack, old_size, merkle.needed_subtrees(ranges))
        known.update(zip(merkle.perfect_ranges(0, old_size), stack, strict=True))
    else:
        frontier = merkle.Frontier()
    for digest in digests:
        frontier.append(merkle.leaf_hash(digest))
    if frontier.size != new_size:
        raise LogTampered(f"the log ends at position {frontier.size}, not {new_size}: events are missing")
    known.update(frontier.captured)
    payload = cp.unsigned_payload(
        tree_size=new_size,
        frontier=frontier,
        signed_at=format_timestamp(now),
        public_key=public_key,
        previous=previous,
        consistency=merkle.proof_hashes(ranges, known),
    )
    payload["signature"] = sign(cp.statement(payload)).hex()
    return payload


def _sealed_digest(row: StoredEvent, expected_position: int) -> bytes:
    if row.position != expected_position:
        raise LogTampered(f"position {expected_position} is missing from the log: run `govflow audit verify`")
    digest = recomputed_digest(row)
    if digest is None or digest.hex() != row.hash:
        raise LogTampered(
            f"stream '{row.stream_id}' version {row.version} (position {row.position}) does not match its hash: "
            "run `govflow audit verify`; nothing was signed"
        )
    return digest


def covering(recorded: list[Checkpoint], position: int, version: int | None = None) -> Checkpoint:
    """The checkpoint to prove against: ``version`` if given, else the newest; it must cover ``position``."""
    if not recorded:
        raise BadInput("no checkpoint yet: run `govflow audit checkpoint` first")
    chosen = recorded[-1] if version is None else next((c for c in recorded if c.version == version), None)
    if chosen is None:
        raise BadInput(f"no checkpoint {version} (there are {len(recorded)})")
    if chosen.tree_size < position:
        raise BadInput(
            f"checkpoint {chosen.version} covers positions 1 to {chosen.tree_size}, not {position}: "
            "run `govflow audit checkpoint` to cover newer events"
        )
    return chosen


def import_mark(log: AuditLog) -> imported.ImportMark | None:
    """The record of the bundle this log was imported from, or None; :class:`LogTampered` if malformed."""
    rows = list(log.iter_stream(imported.IMPORTS_STREAM))
    if not rows:
        return None
    if len(rows) > 1:
        raise LogTampered(f"the log holds {len(rows)} import records; an import is made only into an empty log")
    try:
        return imported.parse_mark(rows[0])
    except ValueError as error:
        raise LogTampered(f"{error}: run `govflow audit verify`") from None


def log_tree(
    log: AuditLog,
    tree_size: int,
    *,
    capture: Iterable[merkle.Range] = (),
    mark: imported.ImportMark | None = None,
    digests: Mapping[int, bytes] | None = None,
) -> merkle.Frontier:
    """The tree of the log's first ``tree_size`` events, from one scan of the hash column.

    On an imported log (``mark``), the positions the import left out are filled with
    the subtree hashes it recorded. ``digests`` (position → recomputed seal) replace the
    stored hashes of those positions. Raises :class:`LogTampered` where a position is missing.
    """
    frontier = merkle.Frontier(capture)
    if mark is not None and 0 < tree_size < mark.tree_size:
        raise LogTampered(
            f"positions 1 to {mark.tree_size} were imported from a bundle: "
            f"no tree of the first {tree_size} events can be computed here"
        )
    prefix = mark.tree_size if mark is not None and tree_size else 0
    filled = not prefix
    leaves: list[tuple[int, bytes]] = []
    for position, stored in log.iter_hashes(up_to=tree_size):
        entry = digests.get(position) if digests else None
        leaf = merkle.leaf_hash(entry if entry is not None else bytes.fromhex(stored))
        if position <= prefix:
            leaves.append((position - 1, leaf))
            continue
        if not filled:
            _fill(frontier, leaves, mark, prefix)
            filled = True
        if position != frontier.size + 1:
            raise LogTampered(f"position {frontier.size + 1} is missing from the log: run `govflow audit verify`")
        frontier.append(leaf)
    if not filled:
        _fill(frontier, leaves, mark, prefix)
    if frontier.size != tree_size:
        raise LogTampered(f"the log has {frontier.size} events, the checkpoint covers {tree_size}: it was truncated")
    return frontier


def _fill(
    frontier: merkle.Frontier, leaves: list[tuple[int, bytes]], mark: imported.ImportMark | None, prefix: int
) -> None:
    assert mark is not None
    gaps = imported.feed(frontier, leaves, mark.fillers, prefix)
    if gaps:
        raise LogTampered(f"{gaps[0].kind}: {gaps[0].message}: run `govflow audit verify`")


def subtree_hashes(log: AuditLog, tree_size: int, ranges: Iterable[merkle.Range]) -> dict[merkle.Range, bytes]:
    """Hashes of the given proof ranges over the log's first ``tree_size`` events (one scan)."""
    wanted = list(ranges)
    frontier = log_tree(log, tree_size, capture=merkle.needed_subtrees(wanted), mark=import_mark(log))
    return dict(zip(wanted, merkle.proof_hashes(wanted, frontier.captured), strict=True))


def inclusion_proofs(log: AuditLog, checkpoint: Checkpoint, positions: Iterable[int]) -> dict[int, list[str]]:
    """Inclusion proofs (hex, leaf upwards) of each position in ``checkpoint``'s tree."""
    paths = {p: merkle.inclusion_ranges(p - 1, checkpoint.tree_size) for p in positions}
    hashes = subtree_hashes(log, checkpoint.tree_size, {r for path in paths.values() for r in path})
    return {p: [hashes[r].hex() for r in path] for p, path in paths.items()}


def consistency_proof(log: AuditLog, old: Checkpoint, new: Checkpoint) -> list[str]:
    """The consistency proof (hex) from ``old``'s tree to ``new``'s, computed from the log."""
    ranges = merkle.consistency_ranges(old.tree_size, new.tree_size)
    hashes = subtree_hashes(log, new.tree_size, ranges)
    return [hashes[r].hex() for r in ranges]
