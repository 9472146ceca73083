"""One streaming pass over the log in position order: seals, chains, positions, tree heads.

:class:`LogChecker` is fed every stored event once, in global position order, and
keeps only a head per stream and the Merkle frontier (so memory grows with the
number of streams, never with the number of events). For each event it re-hashes
the stored texts (``records.event_bytes``), checks that its position follows the
previous one and that it chains to the head of its stream, adds it to the tree, and
compares the tree with every expected head (signed checkpoints) as the tree reaches
their size. Streams with a broken seal or link are only *marked* here; ``diagnose``
then reads each of them alone to name what happened (altered, deleted, inserted,
reordered).

Standard library and ``governance`` only, no database: the rows may come from anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final

from governance import merkle
from governance.chain import GENESIS_HASH
from workflows.audit.imported import ImportMark, feed
from workflows.audit.records import SPLICE, Row, event_bytes, parse_json

MAX_FINDINGS: Final = 1000
MAX_GAPS: Final = 10_000
_META_CACHE: Final = 4096
_LEAF_BATCH: Final = 256  # leaves handed to the tree at a time (see LogChecker._consume)


@dataclass(frozen=True)
class Finding:
    """One thing found wrong, named by stream, version and position where it has them."""

    kind: str
    """altered, reordered, renumbered, deleted, inserted, truncated, checkpoint, link, malformed, projection."""
    message: str
    stream: str | None = None
    version: int | None = None
    position: int | None = None

    def __str__(self) -> str:
        where = []
        if self.stream is not None:
            where.append(f"stream '{self.stream}'")
        if self.version is not None:
            where.append(f"version {self.version}")
        if self.position is not None:
            where.append(f"position {self.position}")
        return f"{self.kind}: " + (" ".join(where) + ": " if where else "") + self.message

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream": self.stream,
            "version": self.version,
            "position": self.position,
            "message": self.message,
        }


@dataclass(frozen=True)
class ExpectedHead:
    """A tree head the log must reproduce at ``tree_size``, and where it was stated."""

    tree_size: int
    root: str
    label: str
    position: int | None = None


@dataclass
class LogChecker:
    """Feed it every stored event in position order, then call :meth:`finish`."""

    expected: list[ExpectedHead] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dropped: int = 0
    heads: dict[str, tuple[int, str, int]] = field(default_factory=dict)
    """stream → (version, stored hash, position) of the last event seen."""
    damaged: dict[str, Finding] = field(default_factory=dict)
    """stream → the first problem seen in it (diagnosed later, stream by stream)."""
    gaps: list[tuple[int, int]] = field(default_factory=list)
    """Missing position ranges ``[first, last]``."""
    count: int = 0
    last_position: int = 0
    vouched: int = 0
    """Positions up to which a sound checkpoint vouches that each payload is a JSON object.

    ``audit checkpoint`` signs only events whose payload and meta parse as JSON
    objects; if the tree of these events still gives the signed head, their bytes
    are those, so they are hashed without parsing (see ``records.SPLICE``). When
    the head does not match, that shortcut proves nothing: run the check again
    with ``vouched=0`` (``verify_log`` does, whenever anything is found).
    """

    def __post_init__(self) -> None:
        self.frontier = merkle.Frontier()
        self._pending = sorted(self.expected, key=lambda head: head.tree_size)
        self._next_size = self._pending[0].tree_size if self._pending else -1
        self._meta_ok: dict[str, bool] = {}

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        else:
            self.dropped += 1

    def _damage(self, finding: Finding) -> None:
        if finding.stream is not None and finding.stream not in self.damaged:
            self.damaged[finding.stream] = finding

    def _meta_is_object(self, text: str) -> bool:
        # Meta texts repeat (source, clock): remember the answer instead of parsing each.
        known = self._meta_ok.get(text)
        if known is None:
            try:
                known = type(json.loads(text)) is dict
            except ValueError:
                known = False
            if len(self._meta_ok) < _META_CACHE:
                self._meta_ok[text] = known
        return known

    def consume(self, rows: Iterable[Row]) -> None:
        """Check events in position order: the hot loop of ``audit verify`` (names kept local for speed)."""
        self._consume(rows, self.frontier.extend)

    def consume_imported(
        self, rows: Iterable[Row], mark: ImportMark, checkpoint_frontier: Sequence[bytes] | None
    ) -> None:
        """Check the imported part of a log (positions up to ``mark.tree_size``), before the rest.

        Seals and chains are checked as usual; the tree is then built from these events
        and the subtrees the import recorded for the positions it left out, which must
        tile the prefix exactly. Those gaps are expected, so they are not reported; a
        loaded position that is missing, or one that was not loaded, is. If the prefix
        does not make a tree, the rest is checked from the imported checkpoint's frontier.
        """
        leaves: list[bytes] = []
        positions: list[int] = []

        def tapped() -> Iterator[Row]:
            for row in rows:
                version, position = row[1:3]
                if type(position) is int and type(version) is int:
                    positions.append(position)
                yield row

        size = mark.tree_size
        gaps_before, next_size = len(self.gaps), self._next_size
        self._next_size = -1  # heads inside the prefix are compared once it is whole
        self._consume(tapped(), leaves.extend)
        del self.gaps[gaps_before:]
        self._next_size = next_size
        loaded = mark.loaded()
        for position in sorted(loaded - set(positions))[:MAX_FINDINGS]:
            self.add(Finding("deleted", "an imported event is missing from the log", position=position))
        for position in sorted(set(positions) - loaded)[:MAX_FINDINGS]:
            self.add(Finding("inserted", "the import did not load this position", position=position))
        self.frontier = merkle.Frontier()
        problems = feed(
            self.frontier, ((p - 1, leaf) for p, leaf in zip(positions, leaves, strict=True)), mark.fillers, size
        )
        for gap in problems:
            self.add(Finding(gap.kind, gap.message, position=gap.position))
        if problems and checkpoint_frontier is not None:
            with suppress(ValueError):  # a frontier of the wrong length is reported with its checkpoint
                self.frontier = merkle.Frontier.resume(checkpoint_frontier, size)
        for head in [h for h in self._pending if h.tree_size < size]:
            self.add(
                Finding(
                    "checkpoint",
                    f"{head.label} covers {head.tree_size} events, inside the part of the log imported "
                    f"from a bundle (positions 1 to {size}): it cannot be checked here",
                    position=head.position,
                )
            )
        self._pending = [h for h in self._pending if h.tree_size >= size]
        self._next_size = self._pending[0].tree_size if self._pending else -1
        if self.frontier.size == size == self._next_size:
            self._compare_heads()
        self.last_position = max(self.last_position, size)

    def _consume(self, rows: Iterable[Row], extend: Callable[[list[bytes]], None]) -> None:
        parse, sha256, sealed_bytes = parse_json, hashlib.sha256, event_bytes
        meta_ok, heads, vouched = self._meta_ok, self.heads, self.vouched
        last, count, size = self.last_position, self.count, self.frontier.size
        # Leaves go to the tree in batches (see merkle.Frontier.extend), and whenever the
        # tree reaches the size of an expected head, to compare it.
        leaves: list[bytes] = []
        flush_at = self._flush_point(size)
        try:
            for row in rows:
                stream, version, position, _, _, data, meta, _, _, _, _, prev_hash, stored = row
                if type(position) is not int or type(version) is not int:
                    self._damage(Finding("malformed", "version or position is not a whole number", stream))
                    continue
                if position != last + 1 and len(self.gaps) < MAX_GAPS:
                    self.gaps.append((last + 1, position - 1))
                last = position
                count += 1
                digest = None
                try:
                    # Each stored JSON text must be one whole object: vouched for by a checkpoint
                    # (see ``vouched``), else proved by parsing it (see records.recomputed_digest).
                    if (position <= vouched and SPLICE not in data and SPLICE not in meta) or (
                        type(parse(data)) is dict and (meta_ok.get(meta) or self._meta_is_object(meta))
                    ):
                        digest = sha256(sealed_bytes(row)).digest()
                except (ValueError, TypeError):
                    pass
                if digest is None:
                    digest = sha256(str(row).encode("utf-8", "replace")).digest()
                    self._damage(
                        Finding("malformed", "payload or meta is not a JSON object", stream, version, position)
                    )
                elif digest.hex() != stored:
                    self._damage(Finding("altered", "its content does not match its hash", stream, version, position))
                leaves.append(sha256(b"\x00" + digest).digest())
                size += 1
                if size == flush_at:
                    extend(leaves)
                    leaves.clear()
                    if size == self._next_size:
                        self._compare_heads()
                    flush_at = self._flush_point(size)
                head = heads.get(stream)
                if head is None:
                    if version != 1 or prev_hash != GENESIS_HASH:
                        self._damage(
                            Finding("link", "the stream does not start at version 1", stream, version, position)
                        )
                elif version != head[0] + 1 or prev_hash != head[1]:
                    self._damage(
                        Finding(
                            "link", f"does not follow version {head[0]} (position {head[2]})", stream, version, position
                        )
                    )
                heads[stream] = (version, stored, position)
        finally:
            extend(leaves)
            self.last_position, self.count = last, count

    def _flush_point(self, size: int) -> int:
        """The tree size at which to hand over the leaves gathered after ``size``."""
        batch = size + _LEAF_BATCH - size % _LEAF_BATCH
        return self._next_size if size < self._next_size < batch else batch

    @property
    def clean(self) -> bool:
        """Nothing found: no finding, damaged stream or gap."""
        return not (self.findings or self.dropped or self.damaged or self.gaps)

    def _compare_heads(self) -> None:
        root = self.frontier.root().hex()
        while self._pending and self._pending[0].tree_size == self.frontier.size:
            head = self._pending.pop(0)
            if head.root != root:
                self.add(
                    Finding(
                        "checkpoint",
                        f"{head.label} states a tree of {head.tree_size} events with root {head.root[:12]}…, but the "
                        f"log's first {head.tree_size} events give {root[:12]}…: an event at or before position "
                        f"{head.tree_size} was changed, inserted, deleted or reordered (hashes recomputed)",
                        position=head.position,
                    )
                )
        self._next_size = self._pending[0].tree_size if self._pending else -1

    def finish(self) -> None:
        """Report expected heads the log is too short to reach (a truncated log)."""
        for head in self._pending:
            if head.tree_size == 0:
                continue
            self.add(
                Finding(
                    "truncated",
                    f"{head.label} covers {head.tree_size} events but the log ends at position "
                    f"{self.last_position} ({self.count} events): events after it were removed",
                    position=self.last_position + 1,
                )
            )
        self._pending = []
