"""Quorum, votes and decision modes (DOMAIN.md rules 1–3).

:func:`check_decision` is pure: given the body, the membership on the decision
date and what the secretary recorded, it either returns the facts to put in the
decision record (quorum required and counted, eligible members) or raises the
:class:`~governance.errors.RuleViolation` that explains why the decision cannot
stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from governance.definition import Body
from governance.errors import DateOutOfRange, Inquorate, ModeNotAllowed, VotesInvalid

POSITIVE = frozenset({"approved", "approved-with-conditions", "endorsed", "endorsed-with-comments"})
NEGATIVE = frozenset({"rejected", "not-endorsed"})


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """What a secretary records about one decision."""

    gate: str
    body: str
    outcome: str
    day: date
    mode: str | None = None
    present: int | None = None
    votes_for: int | None = None
    against: int | None = None
    abstain: int | None = None
    conflicted: int = 0
    present_private: int | None = None
    present_public: int | None = None
    present_voting: int | None = None
    minute_ref: str | None = None
    authority: str | None = None
    conditions: tuple[str, ...] = ()
    condition_owner: str | None = None
    condition_due: date | None = None
    deferred_to: date | None = None
    comments: str | None = None
    declarations: tuple[str, ...] = field(default=())

    @property
    def has_votes(self) -> bool:
        return any(v is not None for v in (self.votes_for, self.against, self.abstain))


def check_decision(body: Body, decision: DecisionInput, mode: str) -> dict[str, Any]:
    """Check mode, attendance and votes; return the quorum facts for the record."""
    if mode not in body.modes:
        raise ModeNotAllowed(body.id, mode, f"it decides by {', '.join(body.modes)}")
    _check_non_negative(decision)
    membership = body.membership_on(decision.day)
    if membership is None:
        raise DateOutOfRange(f"'{body.id}' has no recorded membership on", decision.day, "outside its periods")
    members = membership.members
    if mode == "meeting":
        return _check_meeting(body, decision, members)
    if mode == "written":
        return _check_written(body, decision, members)
    if decision.present is not None or decision.has_votes:
        raise ModeNotAllowed(body.id, mode, "attendance and votes are recorded only for meetings and written procedure")
    if mode in ("chairs-action", "delegated") and not decision.authority:
        raise ModeNotAllowed(body.id, mode, "cite the delegating resolution with --authority")
    return {"members": members}


def _check_non_negative(decision: DecisionInput) -> None:
    named = {
        "present": decision.present,
        "for": decision.votes_for,
        "against": decision.against,
        "abstain": decision.abstain,
        "conflicted": decision.conflicted,
        "present-private": decision.present_private,
        "present-public": decision.present_public,
        "present-voting": decision.present_voting,
    }
    for name, value in named.items():
        if value is not None and value < 0:
            raise VotesInvalid(f"{name} is {value}, it cannot be negative")


def _votes(decision: DecisionInput) -> tuple[int, int, int]:
    return decision.votes_for or 0, decision.against or 0, decision.abstain or 0


def _check_outcome_matches(decision: DecisionInput) -> None:
    votes_for, against, _ = _votes(decision)
    if votes_for + against == 0:
        return  # agreed by consensus, no vote taken
    if decision.outcome in POSITIVE and votes_for <= against:
        raise VotesInvalid(f"'{decision.outcome}' with {votes_for} for and {against} against")
    if decision.outcome in NEGATIVE and votes_for > against:
        raise VotesInvalid(f"'{decision.outcome}' with {votes_for} for and {against} against")


def _check_meeting(body: Body, decision: DecisionInput, members: int) -> dict[str, Any]:
    if decision.present is None:
        raise VotesInvalid(f"a meeting decision needs --present (members of '{body.id}' attending)")
    present = decision.present
    if present > members:
        raise VotesInvalid(f"{present} present but '{body.id}' has {members} members on {decision.day.isoformat()}")
    votes_for, against, abstain = _votes(decision)
    cast = votes_for + against + abstain + decision.conflicted
    if cast > present:
        raise VotesInvalid(
            f"{votes_for} for + {against} against + {abstain} abstain + {decision.conflicted} conflicted = {cast}, "
            f"more than the {present} present"
        )
    rule = body.quorum
    counted = present if rule.conflicted_count else present - decision.conflicted
    required = rule.required(members)
    if counted < required:
        detail = (
            f"{decision.conflicted} conflicted do not count"
            if decision.conflicted and not rule.conflicted_count
            else ""
        )
        raise Inquorate(body.id, counted, required, detail)
    facts: dict[str, Any] = {"members": members, "quorum": required, "counted": counted}
    if rule.min_voting is not None:
        if decision.present_voting is None:
            facts["voting_quorum"] = "not recorded"
        elif decision.present_voting < rule.min_voting:
            raise Inquorate(body.id, decision.present_voting, rule.min_voting, "voting members present")
        else:
            facts["voting_quorum"] = "met"
    if rule.private_at_least_public:
        if decision.present_private is None or decision.present_public is None:
            facts["sector_balance"] = "not recorded"
        elif decision.present_private < decision.present_public:
            raise Inquorate(
                body.id,
                decision.present_private,
                decision.present_public,
                "private-sector members present must be at least the public-sector ones",
            )
        else:
            facts["sector_balance"] = "met"
    _check_outcome_matches(decision)
    return facts


def _check_written(body: Body, decision: DecisionInput, members: int) -> dict[str, Any]:
    if decision.present is not None:
        raise VotesInvalid("a written procedure has no attendance: record the responses with --for/--against/--abstain")
    eligible = members - decision.conflicted
    if eligible <= 0:
        raise VotesInvalid(f"{decision.conflicted} conflicted leaves no eligible member of '{body.id}'")
    votes_for, against, abstain = _votes(decision)
    if votes_for + against + abstain > eligible:
        raise VotesInvalid(f"{votes_for + against + abstain} responses from {eligible} eligible members")
    majority = eligible // 2 + 1
    if decision.outcome in POSITIVE and votes_for < majority:
        raise VotesInvalid(
            f"a written procedure needs a majority of all {eligible} eligible members ({majority}); "
            f"{votes_for} for (silence is not consent)"
        )
    _check_outcome_matches(decision)
    return {"members": members, "eligible": eligible, "majority": majority}
