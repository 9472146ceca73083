"""Naming what happened to a damaged stream, from the links its events still carry.

Whoever edits rows by hand rarely rewrites the stored ``hash``/``prev_hash`` columns
consistently, so those links still describe the chain as it was sealed. Reading one
damaged stream alone (a stream is one instance: small), :func:`diagnose` rebuilds
that chain and compares it with the rows as they are now:

- a row no sealed event links to, while its parent has another child that carries
  the chain on, was **inserted**;
- a row whose ``prev_hash`` names a hash no row has follows a **deleted** event;
- a row whose content verifies under another row's version and position was
  **reordered** (the chain runs against the version order there) or **renumbered**
  (shifted by an insertion or deletion);
- any other row whose content no longer matches its hash was **altered** (payload,
  timestamps, actor, type, meta or definition: the hash covers them all).

Standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from governance.chain import GENESIS_HASH
from workflows.audit.integrity import Finding
from workflows.audit.records import StoredEvent, event_bytes, recomputed_digest


def _sealed_at(row: StoredEvent, slots: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The (version, position) among ``slots`` under which the row's content matches its hash."""
    for version, position in slots:
        if (version, position) == (row.version, row.position):
            continue
        if hashlib.sha256(event_bytes(row._replace(version=version, position=position))).hexdigest() == row.hash:
            return version, position
    return None


def _missing_positions(gaps: Sequence[tuple[int, int]], after: int, before: int) -> list[int]:
    found: list[int] = []
    for first, last in gaps:
        found.extend(range(max(first, after + 1), min(last, before - 1) + 1))
    return found


def _chain_order(rows: Sequence[StoredEvent], parent: list[int | None]) -> tuple[list[int], set[int]]:
    """Rows in sealed chain order (segments split by deletions), and the fork losers (inserted)."""
    children: dict[int | None, list[int]] = {}
    for index, up in enumerate(parent):
        children.setdefault(up, []).append(index)

    def continues(index: int) -> tuple[bool, int]:
        # The sealed child carries the chain on; a forged one is usually a dead end with a late position.
        return (not children.get(index), rows[index].position)

    order: list[int] = []
    inserted: set[int] = set()
    starts = sorted((i for i, up in enumerate(parent) if up is None), key=lambda i: rows[i].version)
    seen: set[int] = set()
    for start in starts:
        current: int | None = start
        while current is not None and current not in seen:
            seen.add(current)
            order.append(current)
            kids = sorted((k for k in children.get(current, []) if k not in seen), key=continues)
            inserted.update(kids[1:])
            current = kids[0] if kids else None
    return order, inserted


def diagnose(stream_id: str, rows: Sequence[StoredEvent], gaps: Sequence[tuple[int, int]]) -> list[Finding]:
    """Findings for one stream whose rows (in version order) fail their seals or links."""
    by_hash: dict[str, int] = {}
    sealed_ok: list[bool] = []
    for index, row in enumerate(rows):
        digest = recomputed_digest(row)
        recomputed = digest.hex() if digest is not None else None
        sealed_ok.append(recomputed == row.hash)
        by_hash.setdefault(row.hash, index)
        if recomputed is not None:
            # An edited hash column must not hide the row its successor links to.
            by_hash.setdefault(recomputed, index)
    parent = [None if row.prev_hash == GENESIS_HASH else by_hash.get(row.prev_hash, -1) for row in rows]
    roots = [i for i, up in enumerate(parent) if up is None]
    orphans = {i for i, up in enumerate(parent) if up == -1}
    order, inserted = _chain_order(rows, [None if up == -1 else up for up in parent])
    inserted.update(roots[1:])  # a second "first event" of the stream
    rank = {index: place for place, index in enumerate(order)}
    chain_versions = [rows[i].version for i in order]
    slots = [(row.version, row.position) for row in rows]
    sealed: dict[int, tuple[int, int] | None] = {}
    for index, row in enumerate(rows):
        if not sealed_ok[index] and index not in inserted:
            sealed[index] = _sealed_at(row, slots) or _sealed_at(row, [(rank.get(index, index) + 1, row.position)])

    found = [
        Finding("inserted", "no sealed event links to it: it was added", stream_id, rows[i].version, rows[i].position)
        for i in sorted(inserted)
    ]
    for index in sorted(orphans - inserted):
        row = rows[index]
        version = (sealed.get(index) or (row.version, 0))[0] - 1
        before = rows[index - 1].position if index else 0
        missing = _missing_positions(gaps, before, row.position)
        where = f" (the log lacks position {', '.join(map(str, missing))})" if missing else ""
        found.append(
            Finding(
                "deleted",
                f"version {version + 1} (position {row.position}) chains to an event that is gone{where}",
                stream_id,
                version,
                missing[0] if len(missing) == 1 else None,
            )
        )
    for index, slot in sealed.items():
        row = rows[index]
        if slot is None:
            kind = "altered" if recomputed_digest(row) is not None else "malformed"
            found.append(Finding(kind, ALTERED, stream_id, row.version, row.position))
            continue
        place = rank.get(index, 0)
        against = any(v > row.version for v in chain_versions[:place]) or any(
            v < row.version for v in chain_versions[place + 1 :]
        )
        found.append(
            Finding(
                "reordered" if against else "renumbered",
                f"holds the event sealed as version {slot[0]} at position {slot[1]}",
                stream_id,
                row.version,
                row.position,
            )
        )
    if not any(f.kind == "deleted" for f in found):
        for index in range(1, len(rows)):
            if rows[index].version != rows[index - 1].version + 1:
                first, last = rows[index - 1].version + 1, rows[index].version - 1
                found.append(Finding("deleted", f"versions {first} to {last} are missing", stream_id, first))
    if not found:
        found.append(Finding("link", "its events do not chain in version order", stream_id))
    return found


ALTERED = "its content no longer matches its hash: payload, timestamps, actor, type, meta or definition was changed"
