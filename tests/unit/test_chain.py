"""The hash chain's canonical text: the fast splice equals the canonical JSON of the fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.chain import (
    canonical_event_text,
    canonical_json,
    event_hash,
    format_timestamp,
    hashed_fields,
    parse_timestamp,
    text_hash,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
texts = st.text(min_size=0, max_size=30)


@given(
    stream_id=texts,
    version=st.integers(min_value=1, max_value=10**9),
    position=st.integers(min_value=1, max_value=10**12),
    type_=texts,
    data=st.dictionaries(st.text(), json_values, max_size=5),
    meta=st.dictionaries(st.text(), json_values, max_size=3),
    actor=texts,
    prev_hash=texts,
)
def test_the_spliced_text_is_the_canonical_json_of_the_fields(
    stream_id: str,
    version: int,
    position: int,
    type_: str,
    data: dict[str, object],
    meta: dict[str, object],
    actor: str,
    prev_hash: str,
) -> None:
    common = {
        "stream_id": stream_id,
        "version": version,
        "position": position,
        "type": type_,
        "schema_version": 1,
        "occurred_at": "2019-10-04T08:30:00.000000Z",
        "recorded_at": "2019-10-07T08:30:00.000000Z",
        "actor": actor,
        "definition_hash": "d" * 64,
        "prev_hash": prev_hash,
    }
    expected = canonical_json(hashed_fields(data=data, meta=meta, **common))  # type: ignore[arg-type]
    spliced = canonical_event_text(data_text=canonical_json(data), meta_text=canonical_json(meta), **common)  # type: ignore[arg-type]
    assert spliced == expected
    assert text_hash(spliced) == event_hash(hashed_fields(data=data, meta=meta, **common))  # type: ignore[arg-type]


def test_timestamps_are_fixed_width_utc_text_and_parse_back() -> None:
    moment = datetime(2019, 10, 4, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    text = format_timestamp(moment)
    assert text == "2019-10-04T08:30:00.000000Z"
    assert parse_timestamp(text) == moment
    assert parse_timestamp(format_timestamp(datetime(2020, 3, 31, tzinfo=UTC))).tzinfo is UTC


def test_a_naive_timestamp_or_foreign_text_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        format_timestamp(datetime(2019, 10, 4))
    with pytest.raises(ValueError, match="not a govflow timestamp"):
        parse_timestamp("2019-10-04 08:30")
