"""An event exactly as stored, and the bytes its hash covers, rebuilt without re-encoding.

The store writes each payload and meta as canonical JSON text and each timestamp as
fixed-width UTC text (``governance.chain``). The canonical JSON of an event's hashed
fields is therefore the stored texts joined in sorted-key order, which is what
:func:`event_bytes` does: no ``json.loads``/``json.dumps`` round trip on the hot path
of ``audit verify``. A test checks it against ``canonical_json(hashed_fields(...))``.

Standard library only (used by the offline bundle verifier).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Final, NamedTuple

CHECKPOINT_STREAM = "$checkpoints"
"""The stream of signed checkpoints; ``$`` cannot start an instance id, so it never clashes."""


class StoredEvent(NamedTuple):
    """One row of the event log, every field as stored (texts as hashed)."""

    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: str
    meta: str
    occurred_at: str
    recorded_at: str
    actor: str
    definition_hash: str
    prev_hash: str
    hash: str


COLUMNS = StoredEvent._fields

Row = tuple[Any, ...]
"""A stored event's columns in :data:`COLUMNS` order, unnamed (a :class:`StoredEvent` is one).

The verifier's pass reads every row by index: building a StoredEvent for each would add
about a sixth to the driver's own fetch of it.
"""

FoldRow = tuple[str, int, int, str, str, str]
"""What the fold reads of a stored event: stream_id, version, position, type, data, definition_hash."""

FOLD_COLUMNS: Final = ("stream_id", "version", "position", "type", "data", "definition_hash")

# The decoder's scanner, ``(text, index) -> (value, end)``, raising StopIteration where no
# value starts; ``scan_once`` is set by ``JSONDecoder.__init__`` and missing from the stubs.
_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse_json(text: str) -> Any:
    """``json.loads(text)``: the same value, or the same error.

    The stored texts are compact JSON, so the decoder's scanner is called on them
    directly, skipping the whitespace matching and checks of ``json.loads`` (about
    a third of its cost, on every event of a verify or replay). A text the scanner
    does not take whole, or rejects, goes to ``json.loads``, which parses or raises
    as it always does.
    """
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, TypeError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def event_bytes(row: Row) -> bytes:
    """The UTF-8 canonical JSON of the event's hashed fields (see ``governance.chain.hashed_fields``).

    ``data`` and ``meta`` are inserted as stored: when a stored text is not the
    canonical JSON that was sealed, the bytes differ and so does the hash.
    """
    (
        stream_id,
        version,
        position,
        type_,
        schema_version,
        data,
        meta,
        occurred_at,
        recorded_at,
        actor,
        definition,
        prev,
        _,
    ) = row
    if type(version) is not int or type(position) is not int or type(schema_version) is not int:
        raise ValueError("version, position and schema_version must be whole numbers")  # SQLite stores any type
    free, fixed = stream_id + type_ + actor, occurred_at + recorded_at + definition + prev
    if free.isprintable() and '"' not in free and "\\" not in free and '"' not in fixed and "\\" not in fixed:
        # The common case needs no escaping. A control character in a hash or timestamp goes in
        # raw: the sealed text had it escaped, so the hash differs, as it must for such a row.
        return (
            f'{{"actor":"{actor}","data":{data},"definition_hash":"{definition}","meta":{meta},'
            f'"occurred_at":"{occurred_at}","position":{position},"prev_hash":"{prev}",'
            f'"recorded_at":"{recorded_at}","schema_version":{schema_version},"stream_id":"{stream_id}",'
            f'"type":"{type_}","version":{version}}}'
        ).encode()
    return (
        f'{{"actor":{_quoted(actor)},"data":{data},"definition_hash":{_quoted(definition)},"meta":{meta},'
        f'"occurred_at":{_quoted(occurred_at)},"position":{position},"prev_hash":{_quoted(prev)},'
        f'"recorded_at":{_quoted(recorded_at)},"schema_version":{schema_version},"stream_id":{_quoted(stream_id)},'
        f'"type":{_quoted(type_)},"version":{version}}}'
    ).encode()


SPLICE: Final = ',"definition_hash":'
"""The text between ``data`` and the definition hash in :func:`event_bytes`.

When the bytes of an event are known to be bytes once checked (their hash is under
a tree head a sound checkpoint signed, see ``integrity.LogChecker.vouched``), the
columns can still have been re-cut: text moved from ``data`` into ``meta`` or back
keeps the joined bytes, and so the hash. Every other field stays where it was (each
is a number, or a string in quotes whose inner quotes are escaped, so it reads the
same from either end of the text), so a re-cut must end ``data`` at another
occurrence of this text, and then that occurrence or the original one lies inside
``data`` or ``meta`` as stored. When neither holds it, they are the two texts that
were checked, and need not be parsed again.
"""


def recomputed_digest(row: StoredEvent) -> bytes | None:
    """SHA-256 of :func:`event_bytes`, or None when ``data``/``meta`` are not JSON objects.

    Parsing both guarantees that each stored text is one whole JSON value, so that
    no text can borrow bytes from its neighbour and still give the sealed bytes.
    """
    try:
        if type(parse_json(row.data)) is not dict or type(parse_json(row.meta)) is not dict:
            return None
        return hashlib.sha256(event_bytes(row)).digest()
    except (ValueError, TypeError):
        return None


def as_json(row: StoredEvent) -> dict[str, Any]:
    """The row as a JSON object (``data`` and ``meta`` parsed): one event line of a bundle."""
    out: dict[str, Any] = row._asdict()
    out["data"] = json.loads(row.data)
    out["meta"] = json.loads(row.meta)
    return out
