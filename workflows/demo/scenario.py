"""Demo scenarios: the secretaries' part of a run, read from TOML and checked with key paths.

A scenario names a definition, an instance id, the simulated period and a list of
dated steps. Each step is one command as a secretary would give it (``decide``,
``task``, ``document``, ``meeting-schedule`` …) with the same arguments, plus when it
is entered (``on`` and ``at``), who enters it, whether the rules should refuse it
(``expect = "refused"``) and, where it invents or departs from the historical record,
a ``departs`` note. The format is documented in ``docs/scenario-format.md``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Final

from workflows.errors import BadInput, DefinitionFileError
from workflows.toml_reader import TableReader, syntax_problem

SHIPPED_SCENARIOS: Final = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT_TIME: Final = time(10, 0)

# action -> (required keys, optional keys) besides the common ones
ACTIONS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "task": (("task",), ("date", "note")),
    "decide": (
        ("gate", "board", "outcome"),
        (
            "date",
            "mode",
            "present",
            "for",
            "against",
            "abstain",
            "conflicted",
            "present_private",
            "present_public",
            "present_voting",
            "minute_ref",
            "authority",
            "conditions",
            "condition_owner",
            "condition_due",
            "deferred_to",
            "comments",
            "declarations",
        ),
    ),
    "document": (("file", "content"), ()),
    "meeting-schedule": (("body", "date"), ("meeting", "note")),
    "meeting-reschedule": (("meeting", "date", "reason"), ()),
    "meeting-cancel": (("meeting", "reason"), ()),
    "discharge": (("gate",), ("date", "evidence")),
    "pause": (("reason",), ()),
    "resume": (("reason",), ()),
    "supersede": (("reason",), ("by",)),
    "extend-deadline": (("deadline", "reason"), ()),
}
COUNTS: Final = (
    "present",
    "for",
    "against",
    "abstain",
    "conflicted",
    "present_private",
    "present_public",
    "present_voting",
)
DATES: Final = ("date", "condition_due", "deferred_to", "deadline")
LISTS: Final = ("conditions", "declarations")


@dataclass(frozen=True)
class Step:
    """One command of the scenario, entered on ``on`` at ``at`` (the workflow's local time)."""

    index: int
    on: date
    at: time
    action: str
    actor: str
    args: dict[str, Any]
    expect: str = "recorded"
    departs: str | None = None

    @property
    def label(self) -> str:
        return f"steps[{self.index}] {self.action}"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    definition: str
    instance: str
    start: date
    end: date
    steps: tuple[Step, ...]
    expected_phase: str | None = None
    source: str = ""
    departures: tuple[str, ...] = field(default=())

    def steps_on(self, day: date) -> list[Step]:
        return [step for step in self.steps if step.on == day]


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; every problem is reported at once (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"scenario file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read scenario file '{path}': {error}") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str) -> Scenario:
    problems: list[str] = []
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DefinitionFileError(source, [syntax_problem(str(error))]) from None
    root = TableReader(document, "", problems)
    head = root.required_table("scenario")
    scenario_id = head.ident()
    title = head.text("title")
    definition = head.text("definition")
    instance = head.text("instance")
    start, end = head.day("start"), head.day("end")
    expected_phase = head.optional_text("expected_phase")
    head.finish()
    steps = tuple(_step(index, reader, problems) for index, reader in enumerate(root.tables("steps", required=True)))
    root.finish()
    if head.ok("start", "end") and start > end:
        problems.append(f"scenario.end: {end.isoformat()} is before scenario.start {start.isoformat()}")
    for step in steps:
        if head.ok("start", "end") and not start <= step.on <= end:
            problems.append(f"steps[{step.index}].on: {step.on.isoformat()} is outside the scenario's period")
    if problems:
        raise DefinitionFileError(source, problems)
    ordered = tuple(sorted(steps, key=lambda s: (s.on, s.at, s.index)))
    return Scenario(
        id=scenario_id,
        title=title,
        definition=definition,
        instance=instance,
        start=start,
        end=end,
        steps=ordered,
        expected_phase=expected_phase,
        source=source,
        departures=tuple(f"{s.on.isoformat()} {s.action}: {s.departs}" for s in ordered if s.departs),
    )


def _step(index: int, t: TableReader, problems: list[str]) -> Step:
    on = t.day("on")
    at_text = t.text("at", DEFAULT_TIME.strftime("%H:%M"))
    action = t.choice("action", tuple(ACTIONS))
    actor = t.text("actor", "scenario")
    expect = t.choice("expect", ("recorded", "refused"), "recorded")
    departs = t.optional_text("departs")
    try:
        at = time.fromisoformat(at_text)
    except ValueError:
        t.problem("at", f"'{at_text}' is not a time (HH:MM)")
        at = DEFAULT_TIME
    args: dict[str, Any] = {}
    if t.ok("action"):
        required, optional = ACTIONS[action]
        for key in (*required, *optional):
            needed = key in required
            if key in COUNTS:
                value: Any = t.integer(key, minimum=0) if needed else t.optional_integer(key, minimum=0)
            elif key in DATES:
                value = t.day(key) if needed else t.optional_day(key)
            elif key in LISTS:
                value = t.names(key, default=None if needed else ())
            else:
                value = t.text(key) if needed else t.optional_text(key)
            if value is not None and value != ():
                args[key] = value
    t.finish()
    return Step(index=index, on=on, at=at, action=action, actor=actor, args=args, expect=expect, departs=departs)


def find_scenario(name_or_path: str) -> Path:
    """A scenario file by path, or a shipped one by id (``selep-lis-2019``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise BadInput(f"scenario file '{name_or_path}' not found")
        return path
    shipped = SHIPPED_SCENARIOS / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in SHIPPED_SCENARIOS.glob("*.toml"))
    raise BadInput(f"unknown scenario '{name_or_path}' (shipped: {', '.join(known) or 'none'})")
