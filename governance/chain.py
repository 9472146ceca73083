"""The hash chain: canonical JSON of an event and the SHA-256 that links it.

Each event's hash covers every field an auditor relies on (stream, version,
global position, type, payload, both timestamps, actor, definition, metadata)
and the hash of the previous event of the same stream. Changing, deleting,
inserting or reordering an event therefore breaks the chain at that point.

Only the standard library is used, so that an auditor can check an exported
bundle with nothing but Python and this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Final

GENESIS_HASH: Final = "0" * 64
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


# One encoder for every call: ``json.dumps`` with options builds a new one each time,
# which costs more than encoding a small payload.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# Its C core, made once: ``JSONEncoder.encode`` makes a new one on every call. It keeps
# no circular-reference marks (they would be shared between calls): a cycle ends in
# RecursionError, reported as the ValueError ``json`` gives.
_chunks: Final[Callable[[Any, int], list[str]] | None] = (
    c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, False)
    if c_make_encoder is not None
    else None
)


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as canonical JSON: sorted keys, no spaces, UTF-8 text."""
    if _chunks is None:  # an interpreter without the C encoder
        return _ENCODER.encode(value)
    try:
        return "".join(_chunks(value, 0))
    except RecursionError as error:
        raise ValueError("JSON value is circular or nested too deeply") from error


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as fixed-width UTC text (sorts as it orders).

    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (the shape of ``TIMESTAMP_FORMAT``), built
    without ``strftime``: it is on the path of every event written.
    """
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no timezone")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse text written by :func:`format_timestamp` back to an aware UTC datetime."""
    if len(text) != 27 or text[-1] != "Z":
        raise ValueError(f"'{text}' is not a govflow timestamp (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def hashed_fields(
    *,
    stream_id: str,
    version: int,
    position: int,
    type: str,
    schema_version: int,
    data: dict[str, Any],
    meta: dict[str, Any],
    occurred_at: str,
    recorded_at: str,
    actor: str,
    definition_hash: str,
    prev_hash: str,
) -> dict[str, Any]:
    """The exact object whose canonical JSON is hashed; timestamps as stored text."""
    return {
        "stream_id": stream_id,
        "version": version,
        "position": position,
        "type": type,
        "schema_version": schema_version,
        "data": data,
        "meta": meta,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "actor": actor,
        "definition_hash": definition_hash,
        "prev_hash": prev_hash,
    }


def event_hash(fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of :func:`hashed_fields`."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


# A JSON string literal, as ``canonical_json`` writes one (the C encoder, called directly).
_text: Final[Callable[[str], str]] = encode_basestring


def canonical_event_text(
    *,
    stream_id: str,
    version: int,
    position: int,
    type: str,
    schema_version: int,
    data_text: str,
    meta_text: str,
    occurred_at: str,
    recorded_at: str,
    actor: str,
    definition_hash: str,
    prev_hash: str,
) -> str:
    """``canonical_json(hashed_fields(...))`` built from texts already canonical.

    ``data_text`` and ``meta_text`` must be canonical JSON themselves (as stored). The
    keys are spliced in sorted order, so the result is byte-for-byte what
    :func:`canonical_json` gives, without decoding and re-encoding the payload: this
    is the path of every append and of every verification.
    """
    return (
        f'{{"actor":{_text(actor)},"data":{data_text},"definition_hash":{_text(definition_hash)},'
        f'"meta":{meta_text},"occurred_at":{_text(occurred_at)},"position":{int(position)},'
        f'"prev_hash":{_text(prev_hash)},"recorded_at":{_text(recorded_at)},'
        f'"schema_version":{int(schema_version)},"stream_id":{_text(stream_id)},"type":{_text(type)},'
        f'"version":{int(version)}}}'
    )


def text_hash(text: str) -> str:
    """SHA-256 (hex) of a canonical text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
