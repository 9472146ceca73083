"""The tree of an imported log: kept leaves plus the subtrees standing for the others give the signed root."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from governance import merkle
from workflows.audit.imported import feed, fillers_from_proofs, position_ranges


def _leaves(size: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]


def _full(leaves: list[bytes], capture: set[merkle.Range]) -> merkle.Frontier:
    frontier = merkle.Frontier(capture)
    for leaf in leaves:
        frontier.append(leaf)
    return frontier


@st.composite
def imports(draw: st.DrawFn) -> tuple[int, list[int]]:
    size = draw(st.integers(min_value=1, max_value=300))
    kept = draw(st.sets(st.integers(min_value=0, max_value=size - 1), min_size=1, max_size=size))
    return size, sorted(kept)


@given(imports())
def test_kept_leaves_and_the_subtrees_from_their_proofs_rebuild_the_root(case: tuple[int, list[int]]) -> None:
    size, kept = case
    leaves = _leaves(size)
    paths = {i: merkle.inclusion_ranges(i, size) for i in kept}
    whole = _full(leaves, merkle.needed_subtrees(r for path in paths.values() for r in path))
    proofs = {i: [h.hex() for h in merkle.proof_hashes(path, whole.captured)] for i, path in paths.items()}

    fillers = fillers_from_proofs(kept, proofs, size, whole.stack)

    frontier = merkle.Frontier()
    assert feed(frontier, [(i, leaves[i]) for i in kept], fillers, size) == []
    assert frontier.size == size and frontier.root() == whole.root()
    assert all(end - start & end - start - 1 == 0 and start % (end - start) == 0 for start, end, _ in fillers)
    covered = sorted([*kept, *(i for start, end, _ in fillers for i in range(start, end))])
    assert covered == list(range(size))


@given(imports(), st.data())
def test_the_rebuilt_tree_extends_as_the_full_one_and_captures_the_same_subtrees(
    case: tuple[int, list[int]], data: st.DataObject
) -> None:
    size, kept = case
    more = data.draw(st.integers(min_value=0, max_value=40))
    leaves = _leaves(size + more)
    index = data.draw(st.sampled_from(kept))
    wanted = set(merkle.needed_subtrees(merkle.inclusion_ranges(index, size + more)))
    paths = {i: merkle.inclusion_ranges(i, size) for i in kept}
    prefix = _full(leaves[:size], merkle.needed_subtrees(r for path in paths.values() for r in path))
    proofs = {i: [h.hex() for h in merkle.proof_hashes(path, prefix.captured)] for i, path in paths.items()}
    fillers = fillers_from_proofs(kept, proofs, size, prefix.stack)
    whole = _full(leaves, wanted)

    rebuilt = merkle.Frontier(wanted)
    assert feed(rebuilt, [(i, leaves[i]) for i in kept], fillers, size) == []
    for leaf in leaves[size:]:
        rebuilt.append(leaf)

    assert rebuilt.root() == whole.root()
    assert rebuilt.captured == whole.captured


def test_a_missing_kept_leaf_leaves_a_hole_that_is_reported() -> None:
    leaves = _leaves(8)
    kept = [0, 3, 5]
    paths = {i: merkle.inclusion_ranges(i, 8) for i in kept}
    whole = _full(leaves, merkle.needed_subtrees(r for path in paths.values() for r in path))
    fillers = fillers_from_proofs(
        kept, {i: [h.hex() for h in merkle.proof_hashes(p, whole.captured)] for i, p in paths.items()}, 8, whole.stack
    )

    gaps = feed(merkle.Frontier(), [(0, leaves[0]), (5, leaves[5])], fillers, 8)

    assert [(gap.kind, gap.position) for gap in gaps] == [("deleted", 4)]


def test_positions_are_recorded_as_runs() -> None:
    assert position_ranges([7, 1, 2, 3, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
