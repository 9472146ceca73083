"""A keyed command is recognised by the hash of its request, which must not change between releases."""

from __future__ import annotations

import hashlib
from datetime import date

from governance.chain import canonical_json
from governance.quorum import DecisionInput
from workflows.services import _request_hash

DECISION = DecisionInput(
    gate="approach-agreed", body="secretariat", outcome="approved", day=date(2019, 7, 26), mode="delegated"
)


def test_a_decision_is_hashed_as_its_description_was_before() -> None:
    # Keys recorded by earlier releases hashed the decision's repr inside canonical JSON.
    recorded = hashlib.sha256(
        canonical_json({"command": "decide", "instance": "selep-lis", "decision": repr(DECISION)}).encode()
    ).hexdigest()

    assert _request_hash({"command": "decide", "instance": "selep-lis", "decision": DECISION}) == recorded


def test_different_decisions_hash_differently() -> None:
    rejected = DecisionInput(
        gate="approach-agreed", body="secretariat", outcome="rejected", day=date(2019, 7, 26), mode="delegated"
    )

    assert _request_hash({"decision": DECISION}) != _request_hash({"decision": rejected})
