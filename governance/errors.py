"""The domain's errors. Each builds its message from its fields.

GovernanceError                 root of the domain's errors
├── RuleViolation               a command refused by a governance rule (CLI exit 1)
│   ├── InstanceNotActive       paused, superseded or already agreed
│   ├── BodyNotExpected         this body does not decide at this gate
│   ├── GateNotOpen             wrong phase, or an ``after`` gate has not passed
│   ├── Inquorate               too few present (after conflicts) to decide
│   ├── VotesInvalid            votes that do not add up or contradict the outcome
│   ├── DateOutOfRange          before the instance started, or after "now"
│   ├── ModeNotAllowed          a decision mode the body cannot use, or a missing citation
│   ├── BlackoutInForce         a body that cannot decide in a blackout window
│   └── NotApplicable           the command does not apply to the current state
├── UnknownName                 an id the definition or the instance does not know (exit 2)
└── CorruptHistory              the events cannot be folded (a bug or tampering)
"""

from __future__ import annotations

from datetime import date


class GovernanceError(Exception):
    """Root of the domain's errors."""


class RuleViolation(GovernanceError):
    """The command breaks a governance rule; nothing is recorded."""


class InstanceNotActive(RuleViolation):
    def __init__(self, instance_id: str, phase: str) -> None:
        self.instance_id = instance_id
        self.phase = phase
        super().__init__(f"instance '{instance_id}' is {phase}: it accepts no further decisions")


class BodyNotExpected(RuleViolation):
    def __init__(self, gate: str, body: str, expected: tuple[str, ...]) -> None:
        self.gate, self.body, self.expected = gate, body, expected
        super().__init__(f"gate '{gate}' is not decided by '{body}' (it needs: {', '.join(expected)})")


class GateNotOpen(RuleViolation):
    def __init__(self, gate: str, reason: str) -> None:
        self.gate, self.reason = gate, reason
        super().__init__(f"gate '{gate}' is not open: {reason}")


class Inquorate(RuleViolation):
    def __init__(self, body: str, counted: int, required: int, detail: str = "") -> None:
        self.body, self.counted, self.required = body, counted, required
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"'{body}' is inquorate: {counted} counted towards quorum, {required} required{extra}; "
            "an inquorate meeting can discuss but cannot decide"
        )


class VotesInvalid(RuleViolation):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"votes do not add up: {reason}")


class DateOutOfRange(RuleViolation):
    def __init__(self, what: str, day: date, reason: str) -> None:
        self.what, self.day, self.reason = what, day, reason
        super().__init__(f"{what} {day.isoformat()} is {reason}")


class ModeNotAllowed(RuleViolation):
    def __init__(self, body: str, mode: str, reason: str) -> None:
        self.body, self.mode, self.reason = body, mode, reason
        super().__init__(f"'{body}' cannot decide by {mode}: {reason}")


class BlackoutInForce(RuleViolation):
    def __init__(self, body: str, blackout: str, start: date, end: date, reason: str) -> None:
        self.body, self.blackout = body, blackout
        super().__init__(
            f"'{body}' cannot agree during '{blackout}' ({start.isoformat()} to {end.isoformat()}): {reason}"
        )


class NotApplicable(RuleViolation):
    """A command that makes no sense in the current state (e.g. resume when not paused)."""


class UnknownName(GovernanceError):
    def __init__(self, kind: str, name: str, known: tuple[str, ...] = ()) -> None:
        self.kind, self.name = kind, name
        hint = f" (known: {', '.join(known)})" if known and len(known) <= 12 else ""
        super().__init__(f"unknown {kind} '{name}'{hint}")


class CorruptHistory(GovernanceError):
    def __init__(self, stream_id: str, version: int, reason: str) -> None:
        self.stream_id, self.version = stream_id, version
        super().__init__(f"cannot replay '{stream_id}' at version {version}: {reason}")
