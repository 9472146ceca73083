"""Merkle tree heads over the event log, in the style of RFC 6962 (and RFC 9162).

The log's entries, in global position order, are the events' 32-byte SHA-256
digests (``bytes.fromhex(event.hash)``, each the hash of the event's canonical
JSON, see ``governance.chain``). Then, as in RFC 6962 section 2.1:

- leaf hash ``SHA-256(0x00 ‖ entry)``;
- node hash ``SHA-256(0x01 ‖ left ‖ right)``;
- the tree over ``n`` entries splits at the largest power of two below ``n``.

:class:`Frontier` computes the root while the entries stream past, in O(log n)
memory, and can capture the perfect subtrees that inclusion and consistency
proofs need, so that a proof costs one scan of the log and no stored tree.
Standard library only: an auditor's verifier needs nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]
"""A half-open range ``[start, end)`` of entry indices (0-based)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The tree head over leaf hashes, by the RFC's recursive definition (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


class Frontier:
    """The right edge of a growing tree: one perfect subtree root per set bit of the size.

    ``capture`` names perfect, aligned subtrees ``(start, end)`` whose hashes to keep as
    they complete (see :func:`perfect_ranges`); they end up in :attr:`captured`.
    """

    __slots__ = ("_stack", "capture", "captured", "size")

    def __init__(self, capture: Iterable[Range] = ()) -> None:
        self._stack: list[bytes] = []
        self.size = 0
        self.capture = frozenset(capture)
        self.captured: dict[Range, bytes] = {}

    @classmethod
    def resume(cls, stack: Sequence[bytes], size: int, capture: Iterable[Range] = ()) -> Frontier:
        """A frontier restored from :attr:`stack` and :attr:`size` (e.g. kept in a checkpoint)."""
        if len(stack) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier nodes, not {len(stack)}")
        frontier = cls(capture)
        frontier._stack = list(stack)
        frontier.size = size
        return frontier

    @property
    def stack(self) -> list[bytes]:
        """The perfect subtree roots of the right edge, left to right (largest first)."""
        return list(self._stack)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (already prefixed and hashed: see :func:`leaf_hash`)."""
        if self.capture:
            self._append_capturing(leaf)
            return
        # The hot path of verification: no capture, fewest lookups.
        stack = self._stack
        count = self.size
        node = leaf
        while count & 1:
            node = hashlib.sha256(NODE_PREFIX + stack.pop() + node).digest()
            count >>= 1
        stack.append(node)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add leaf hashes in order: the same tree as :meth:`append` for each, with less work.

        Each run of leaves that makes a whole perfect subtree at the current size is
        hashed level by level, a comprehension per level instead of a call per leaf,
        and added by :meth:`append_subtree` (the verifier hands its leaves over in batches).
        """
        if self.capture:
            for leaf in leaves:
                self._append_capturing(leaf)
            return
        start, end = 0, len(leaves)
        while start < end:
            width = 1 << ((end - start).bit_length() - 1)  # the widest power of two left...
            if self.size:
                width = min(width, self.size & -self.size)  # ...that the current size aligns
            level = leaves[start : start + width]
            while len(level) > 1:
                level = [
                    hashlib.sha256(NODE_PREFIX + left + right).digest()
                    for left, right in zip(level[::2], level[1::2], strict=True)
                ]
            self.append_subtree(level[0], width)
            start += width

    def _append_capturing(self, leaf: bytes) -> None:
        stack, capture = self._stack, self.capture
        index = self.size
        node = leaf
        width = 1
        if capture and (index, index + 1) in capture:
            self.captured[(index, index + 1)] = leaf
        # Each trailing 1 bit of the old size is a subtree of equal width to merge with.
        count = index
        while count & 1:
            node = hashlib.sha256(NODE_PREFIX + stack.pop() + node).digest()
            width <<= 1
            count >>= 1
            if capture:
                start = index + 1 - width
                if (start, index + 1) in capture:
                    self.captured[(start, index + 1)] = node
        stack.append(node)
        self.size = index + 1

    def append_subtree(self, node: bytes, width: int) -> None:
        """Add ``width`` leaves at once, given only their perfect subtree's hash.

        ``width`` must be a power of two dividing the current size (the subtree is
        aligned): a log imported from a bundle holds the hashes of the subtrees it left
        out, not their leaves. Captured ranges inside the subtree cannot be captured.
        """
        if width < 1 or width & (width - 1) or self.size % width:
            raise ValueError(f"a subtree of width {width} cannot follow {self.size} leaves")
        stack, capture = self._stack, self.capture
        end = self.size + width
        if capture and (self.size, end) in capture:
            self.captured[(self.size, end)] = node
        count = self.size // width
        span = width
        while count & 1:
            node = hashlib.sha256(NODE_PREFIX + stack.pop() + node).digest()
            span <<= 1
            count >>= 1
            if capture and (end - span, end) in capture:
                self.captured[(end - span, end)] = node
        stack.append(node)
        self.size = end

    def root(self) -> bytes:
        """The tree head over the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def perfect_ranges(start: int, end: int) -> list[Range]:
    """Split a range that arises in the RFC recursion into its perfect, aligned subtrees."""
    out: list[Range] = []
    while start < end:
        width = 1 << ((end - start).bit_length() - 1)
        out.append((start, start + width))
        start += width
    return out


def range_hash(start: int, end: int, perfect: Callable[[Range], bytes]) -> bytes:
    """The subtree hash of ``[start, end)`` from the hashes of its perfect subtrees."""
    parts = [perfect(r) for r in perfect_ranges(start, end)]
    node = parts[-1]
    for left in reversed(parts[:-1]):
        node = node_hash(left, node)
    return node


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make the inclusion proof of entry ``index`` in a tree of ``size``.

    RFC 6962 section 2.1.1 (PATH), listed from the leaf up, as the proof lists them.
    """
    if not 0 <= index < size:
        raise ValueError(f"entry {index} is not in a tree of size {size}")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees that prove a tree of ``old_size`` is a prefix of one of ``new_size``.

    RFC 6962 section 2.1.2 (SUBPROOF), in the order the proof lists them.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    path: list[Range] = []
    m, start, end, whole = old_size, 0, new_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        # The old tree's last subtree closes the proof, unless it is the whole old tree.
        path.append((start, end))
    path.reverse()
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` of the tree with ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    node = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree ``old_root`` (``old_size``) a prefix of ``new_root``?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # a power of two: the old root is itself a node of the new tree
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def needed_subtrees(ranges: Iterable[Range]) -> set[Range]:
    """The perfect subtrees a :class:`Frontier` must capture to hash every range in ``ranges``."""
    return {part for start, end in ranges for part in perfect_ranges(start, end)}


def proof_hashes(ranges: Sequence[Range], captured: dict[Range, bytes]) -> list[bytes]:
    """The proof's hashes, from subtrees captured by a :class:`Frontier` (see :func:`needed_subtrees`)."""
    return [range_hash(start, end, captured.__getitem__) for start, end in ranges]
