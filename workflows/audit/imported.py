"""The record an import leaves in the log, and the Merkle tree of a log that holds only part of its past.

``govflow audit import`` loads one instance's events, at their original positions, into
an empty database. The source log's other events below the bundle's checkpoint are not
there, so the tree over the first ``tree_size`` positions cannot be rebuilt from leaves
alone. The import therefore records, in a ``BundleImported`` event (stream ``$imports``,
right after the imported checkpoint):

- the positions it loaded (``positions``, inclusive ranges);
- the *fillers*: the hashes of the largest subtrees of the checkpoint's tree that hold
  none of those positions, taken from the bundle's inclusion proofs (``[start, end,
  hash]``, 0-based half-open entry ranges, each a perfect aligned subtree).

With them the imported leaves rebuild the checkpoint's signed root, and proofs and later
checkpoints are computed as on any log (:func:`feed`). What makes them trustworthy:

- a filler is trusted only because the rebuilt root equals the root the imported
  checkpoint signs (a wrong hash or a moved leaf changes the root);
- the record itself (which positions were loaded, hence which gaps are expected) is
  trusted only because the checkpoint the import signed right after it (the *seal*, by
  the importer's key, linked to the imported one by a consistency proof) covers it. An
  unsealed record explains nothing: ``audit verify`` reports it.

Standard library only, like the rest of the verifier.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from governance import merkle
from workflows.audit.records import StoredEvent

IMPORTS_STREAM: Final = "$imports"
BUNDLE_IMPORTED: Final = "BundleImported"
FORMAT: Final = "govflow-import/1"

Filler = tuple[int, int, bytes]
"""``(start, end, node)``: a perfect, aligned subtree over entries ``[start, end)`` and its hash."""


@dataclass(frozen=True)
class ImportMark:
    """A ``BundleImported`` event, parsed."""

    position: int
    instance: str
    checkpoint_version: int
    checkpoint_position: int
    checkpoint_hash: str
    checkpoint_prev_hash: str
    tree_size: int
    positions: tuple[tuple[int, int], ...]
    fillers: tuple[Filler, ...]

    def loaded(self) -> set[int]:
        """Every position the import loaded."""
        return {p for first, last in self.positions for p in range(first, last + 1)}


def position_ranges(positions: Iterable[int]) -> list[list[int]]:
    """Sorted positions as inclusive ``[first, last]`` runs."""
    runs: list[list[int]] = []
    for position in sorted(positions):
        if runs and position == runs[-1][1] + 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return runs


def mark_payload(
    *,
    instance: str,
    checkpoint: StoredEvent,
    tree_size: int,
    positions: Iterable[int],
    fillers: Sequence[Filler],
    bundle_sha256: str,
    exported_at: str,
    events: int,
) -> dict[str, Any]:
    """The payload of the ``BundleImported`` event."""
    return {
        "format": FORMAT,
        "instance": instance,
        "events": events,
        "bundle_sha256": bundle_sha256,
        "exported_at": exported_at,
        "checkpoint": {
            "version": checkpoint.version,
            "position": checkpoint.position,
            "hash": checkpoint.hash,
            "prev_hash": checkpoint.prev_hash,
            "tree_size": tree_size,
        },
        "positions": position_ranges(positions),
        "fillers": [[start, end, node.hex()] for start, end, node in fillers],
    }


def parse_mark(row: StoredEvent) -> ImportMark:
    """The mark stored in ``row``; raises ``ValueError`` when it is not a well-formed one."""
    try:
        data = json.loads(row.data)
        if row.type != BUNDLE_IMPORTED or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} record")
        point = data["checkpoint"]
        whole = (point["version"], point["position"], point["tree_size"])
        if not all(type(n) is int and n >= 0 for n in whole):
            raise ValueError("checkpoint numbers are not whole numbers")
        positions = tuple((int(first), int(last)) for first, last in data["positions"])
        fillers = tuple((int(start), int(end), bytes.fromhex(node)) for start, end, node in data["fillers"])
        return ImportMark(
            position=row.position,
            instance=str(data["instance"]),
            checkpoint_version=point["version"],
            checkpoint_position=point["position"],
            checkpoint_hash=str(point["hash"]),
            checkpoint_prev_hash=str(point["prev_hash"]),
            tree_size=point["tree_size"],
            positions=positions,
            fillers=fillers,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"malformed import record: {error}") from None


def fillers_from_proofs(
    indices: Sequence[int], paths: Mapping[int, Sequence[str]], tree_size: int, frontier: Sequence[bytes]
) -> list[Filler]:
    """The subtrees of the tree of ``tree_size`` that hold none of ``indices`` (0-based, sorted).

    ``paths`` gives each index's inclusion proof (hex, leaf upwards, already verified
    against the checkpoint's root) and ``frontier`` the checkpoint's frontier. A subtree free of
    imported entries is always a sibling on some imported entry's path, so its hash is in
    that proof; one on the tree's right edge that is not perfect is split into the
    frontier's perfect subtrees, whose hashes the checkpoint carries.
    """
    if not indices:
        raise ValueError("nothing imported")
    edge = dict(zip(merkle.perfect_ranges(0, tree_size), frontier, strict=True))
    out: list[Filler] = []

    def inside(start: int, end: int) -> int:
        return bisect_left(indices, end) - bisect_left(indices, start)

    def node_of(start: int, end: int, sibling: tuple[int, int]) -> bytes:
        witness = indices[bisect_left(indices, sibling[0])]
        return bytes.fromhex(paths[witness][merkle.inclusion_ranges(witness, tree_size).index((start, end))])

    def visit(start: int, end: int, sibling: tuple[int, int]) -> None:
        held = inside(start, end)
        if held == end - start:
            return
        if held == 0:
            width = end - start
            if width & (width - 1) == 0 and start % width == 0:
                out.append((start, end, node_of(start, end, sibling)))
            else:
                out.extend((a, b, edge[(a, b)]) for a, b in merkle.perfect_ranges(start, end))
            return
        split = 1 << ((end - start - 1).bit_length() - 1)
        visit(start, start + split, (start + split, end))
        visit(start + split, end, (start, start + split))

    if tree_size > 1:
        split = 1 << ((tree_size - 1).bit_length() - 1)
        visit(0, split, (split, tree_size))
        visit(split, tree_size, (0, split))
    return out


@dataclass(frozen=True)
class Gap:
    """Why the leaves and fillers of an imported prefix do not make a tree."""

    kind: str
    message: str
    position: int | None


def feed(
    frontier: merkle.Frontier, leaves: Iterable[tuple[int, bytes]], fillers: Iterable[Filler], tree_size: int
) -> list[Gap]:
    """Append the imported prefix to an empty ``frontier``: ``leaves`` (0-based index, leaf hash) and fillers.

    They must tile ``[0, tree_size)`` exactly; each place where they do not is returned
    (the frontier then stops short of ``tree_size``).
    """
    items = sorted([(index, 1, leaf) for index, leaf in leaves] + [(a, b - a, node) for a, b, node in fillers])
    gaps: list[Gap] = []
    for start, width, node in items:
        if start >= tree_size:
            gaps.append(Gap("inserted", f"position {start + 1} lies beyond the imported part", start + 1))
            break
        if start < frontier.size:
            gaps.append(Gap("inserted", f"position {start + 1} is held twice in the imported part", start + 1))
            continue
        if start > frontier.size:
            gaps.append(
                Gap(
                    "deleted",
                    f"positions {frontier.size + 1} to {start} are neither imported events nor left out by the import",
                    frontier.size + 1,
                )
            )
            return gaps
        try:
            frontier.append_subtree(node, width)
        except ValueError as error:
            gaps.append(Gap("malformed", f"the import record's subtree at position {start + 1}: {error}", start + 1))
            return gaps
    if not gaps and frontier.size < tree_size:
        gaps.append(
            Gap("deleted", f"positions {frontier.size + 1} to {tree_size} are missing from the imported part", None)
        )
    return gaps
