"""RFC 6962 tree heads, inclusion and consistency proofs, checked against the recursive definition."""

from __future__ import annotations

import hashlib

from governance import merkle


def leaves(count: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(count)]


def test_the_streaming_frontier_gives_the_recursive_tree_head_at_every_size() -> None:
    hashes = leaves(70)
    frontier = merkle.Frontier()
    assert frontier.root() == merkle.EMPTY_ROOT
    for size, leaf in enumerate(hashes, start=1):
        frontier.append(leaf)
        assert frontier.root() == merkle.root_of(hashes[:size])
        resumed = merkle.Frontier.resume(frontier.stack, size)
        assert resumed.root() == frontier.root()


def test_known_answer_for_two_leaves() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert a == hashlib.sha256(b"\x00a").digest()
    assert merkle.root_of([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()


def test_inclusion_proofs_verify_for_every_leaf_and_fail_elsewhere() -> None:
    for size in range(1, 34):
        hashes = leaves(size)
        root = merkle.root_of(hashes)
        for index in range(size):
            ranges = merkle.inclusion_ranges(index, size)
            frontier = merkle.Frontier(merkle.needed_subtrees(ranges))
            for leaf in hashes:
                frontier.append(leaf)
            proof = merkle.proof_hashes(ranges, frontier.captured)
            assert proof == [merkle.root_of(hashes[a:b]) for a, b in ranges]
            assert merkle.verify_inclusion(hashes[index], index, size, proof, root)
            assert not merkle.verify_inclusion(merkle.leaf_hash(b"x"), index, size, proof, root)
            if size > 1:
                assert not merkle.verify_inclusion(hashes[index], (index + 1) % size, size, proof, root)


def test_consistency_proofs_verify_for_every_pair_of_sizes_and_catch_a_rewrite() -> None:
    hashes = leaves(33)
    for new in range(1, 34):
        new_root = merkle.root_of(hashes[:new])
        for old in range(1, new + 1):
            proof = [merkle.root_of(hashes[a:b]) for a, b in merkle.consistency_ranges(old, new)]
            old_root = merkle.root_of(hashes[:old])
            assert merkle.verify_consistency(old, new, old_root, new_root, proof)
            rewritten = merkle.root_of([merkle.leaf_hash(b"forged"), *hashes[1:old]])
            assert not merkle.verify_consistency(old, new, rewritten, new_root, proof)


def test_extending_by_batches_gives_the_tree_of_appending_one_by_one() -> None:
    hashes = leaves(300)
    for cuts in ([300], [1, 299], [3, 5, 8, 256, 28], [255, 1, 1, 43], [7] * 42 + [6]):
        frontier, start = merkle.Frontier(), 0
        for width in cuts:
            frontier.extend(hashes[start : start + width])
            start += width
            assert frontier.root() == merkle.root_of(hashes[:start])
            assert frontier.stack == merkle.Frontier.resume(frontier.stack, start).stack


def test_extending_a_capturing_frontier_still_captures() -> None:
    hashes = leaves(20)
    wanted = merkle.needed_subtrees([(0, 13), (13, 20)])
    one_by_one, batched = merkle.Frontier(wanted), merkle.Frontier(wanted)
    for leaf in hashes:
        one_by_one.append(leaf)
    batched.extend(hashes[:9])
    batched.extend(hashes[9:])
    assert batched.captured == one_by_one.captured and batched.root() == one_by_one.root()
