"""The verifier's pass over the log: the shortcuts it takes on the hot path answer as the slow path does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from governance import merkle
from governance.chain import GENESIS_HASH
from workflows.audit.integrity import ExpectedHead, LogChecker
from workflows.audit.records import SPLICE, StoredEvent, event_bytes, parse_json

DATA = '{"k":1}'
META = '{"a":1,"definition_hash":"x","meta":{"b":2}}'
"""Meta that holds the text between ``data`` and the definition hash, as a key of its own."""


def sealed(data: str, meta: str, definition_hash: str = "d" * 64) -> StoredEvent:
    row = StoredEvent(
        "s-1", 1, 1, "T", 1, data, meta, "2019-01-01T00:00:00.000000Z", "2019-01-01T00:00:00.000000Z", "clerk",
        definition_hash, GENESIS_HASH, "",
    )  # fmt: skip
    return row._replace(hash=hashlib.sha256(event_bytes(row)).hexdigest())


def head_over(row: StoredEvent) -> ExpectedHead:
    root = merkle.leaf_hash(bytes.fromhex(row.hash)).hex()
    return ExpectedHead(1, root, "checkpoint 1", 2)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":[1,2.5,"é",null,true],"b":{"c":"\\u2028"}}',
        "[]",
        '"text"',
        "12",
        ' {"a":1}',
        '{"a":1} ',
        '{"a":1}{"b":2}',
        '{"a":1},"definition_hash":"x"',
        '\ufeff{"a":1}',
        '{"a":tru}',
        "",
        b'{"a":1}',
        7,
    ],
)
def test_parse_json_gives_what_json_loads_gives_value_or_error(text: Any) -> None:
    try:
        expected: Any = json.loads(text)
    except (ValueError, TypeError) as error:
        with pytest.raises(type(error)):
            parse_json(text)
    else:
        assert parse_json(text) == expected


def test_a_recut_between_payload_and_meta_keeps_every_hash() -> None:
    original = sealed(DATA, META)
    recut = original._replace(
        data=f'{DATA}{SPLICE}"{original.definition_hash}","meta":{{"a":1', definition_hash="x", meta='{"b":2}}'
    )
    assert event_bytes(recut) == event_bytes(original), "the attack the splice check exists for"


@pytest.mark.parametrize("vouched", [0, 1])
def test_a_recut_between_payload_and_meta_is_malformed_even_where_a_checkpoint_vouches(vouched: int) -> None:
    original = sealed(DATA, META)
    recut = original._replace(
        data=f'{DATA}{SPLICE}"{original.definition_hash}","meta":{{"a":1', definition_hash="x", meta='{"b":2}}'
    )
    checker = LogChecker(expected=[head_over(original)], vouched=vouched)

    checker.consume([recut])

    assert checker.damaged["s-1"].kind == "malformed"


@pytest.mark.parametrize(("vouched", "clean"), [(0, False), (1, True)])
def test_a_vouched_payload_is_not_parsed_again(vouched: int, clean: bool) -> None:
    # Only a checkpoint made after parsing every payload may vouch (verify_log checks
    # the log again without vouching whenever anything is found).
    row = sealed("not json", '{"m":"x"}')
    checker = LogChecker(expected=[head_over(row)], vouched=vouched)

    checker.consume([row])
    checker.finish()

    assert checker.clean is clean
    assert clean or checker.damaged["s-1"].kind == "malformed"


@pytest.mark.parametrize("vouched", [0, 1])
def test_a_payload_with_whitespace_added_is_altered_not_malformed(vouched: int) -> None:
    row = sealed(DATA, '{"m":"x"}')
    checker = LogChecker(expected=[head_over(row)], vouched=vouched)

    checker.consume([row._replace(data=f" {DATA}")])

    assert checker.damaged["s-1"].kind == "altered"


def test_signed_heads_are_compared_at_their_size_wherever_it_falls_among_the_batches() -> None:
    rows, previous = [], GENESIS_HASH
    for number in range(1, 601):
        row = sealed(DATA, '{"m":"x"}')._replace(version=number, position=number, prev_hash=previous)
        row = row._replace(hash=hashlib.sha256(event_bytes(row)).hexdigest())
        rows.append(row)
        previous = row.hash
    tree = [merkle.leaf_hash(bytes.fromhex(row.hash)) for row in rows]
    sizes = [1, 255, 256, 257, 511, 512, 513, 600]
    heads = [ExpectedHead(size, merkle.root_of(tree[:size]).hex(), f"head {size}") for size in sizes]
    wrong = ExpectedHead(300, "00" * 32, "a wrong head")
    checker = LogChecker(expected=[*heads, wrong])

    checker.consume(rows)
    checker.finish()

    assert [f.message.split(" states")[0] for f in checker.findings] == ["a wrong head"]
    assert not checker.damaged and checker.count == 600
